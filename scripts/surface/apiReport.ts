/**
 * API Extractor reports of the package's entries, generated from the sources:
 * declarations are emitted with the build's own tsconfig (tsconfig.build.json,
 * declarations only, into a temporary folder), then API Extractor reads each
 * entry's declaration file (one compiler program for all of them) and writes
 * its report. Entries come from package.json `exports` (each with a `types`
 * condition), so a new entry gets a report of its own.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { CompilerState, Extractor, ExtractorConfig, ExtractorLogLevel, type ExtractorMessage, type IConfigFile } from "@microsoft/api-extractor";
import ts from "typescript";

export type PackageJson = {
  name: string;
  version: string;
  exports?: unknown;
  types?: string;
  typings?: string;
};

export type ReportEntry = {
  /** The key in package.json `exports`: `.`, `./sandboxes`. */
  entry: string;
  /** How a user imports it: `autoflow-integrations`, `autoflow-integrations/sandboxes`. */
  specifier: string;
  /** Its declaration file as package.json names it (`./dist/sandboxes.d.ts`). */
  types: string;
  /** Its report's file name in api/: `autoflow-integrations.api.md`, `autoflow-integrations-sandboxes.api.md`. */
  reportFile: string;
};

/** Where the checked-in reports and the accepted version live. */
export const API_FOLDER = "api";

const CONDITION_ORDER = ["types", "import", "node", "default", "require"];

/** The declaration file a package.json `exports` target resolves to for TypeScript, if any. */
export function typesOf(target: unknown): string | undefined {
  if (typeof target === "string") {
    if (/\.d\.[mc]?ts$/.test(target)) return target;
    const js = /\.([mc]?)js$/.exec(target);
    return js ? `${target.slice(0, -js[0].length)}.d.${js[1]}ts` : undefined;
  }
  if (Array.isArray(target)) {
    for (const item of target) {
      const found = typesOf(item);
      if (found) return found;
    }
    return undefined;
  }
  if (typeof target !== "object" || target === null) return undefined;
  const conditions = target as Record<string, unknown>;
  if (typeof conditions.types === "string") return conditions.types;
  const keys = [...CONDITION_ORDER.filter((k) => k in conditions), ...Object.keys(conditions).filter((k) => !CONDITION_ORDER.includes(k))];
  for (const key of keys) {
    const found = typesOf(conditions[key]);
    if (found) return found;
  }
  return undefined;
}

const unscoped = (name: string): string => name.replace(/^@[^/]+\//, "");

/** The report file of an entry: `<package>.api.md` for `.`, `<package>-<sub-path>.api.md` for the others. */
export function reportFileFor(packageName: string, entry: string): string {
  const sub = entry === "." ? "" : `-${entry.replace(/^\.\//, "").replaceAll("/", "-")}`;
  return `${unscoped(packageName)}${sub}.api.md`;
}

/** The entries with TypeScript declarations, from package.json `exports` (or `types` when there is no `exports`), sorted by entry. */
export function reportEntries(pkg: PackageJson): ReportEntry[] {
  const make = (entry: string, types: string): ReportEntry => ({
    entry,
    specifier: entry === "." ? pkg.name : `${pkg.name}/${entry.replace(/^\.\//, "")}`,
    types,
    reportFile: reportFileFor(pkg.name, entry),
  });
  const { exports } = pkg;
  if (exports === undefined) {
    const types = pkg.types ?? pkg.typings;
    return types ? [make(".", types)] : [];
  }
  const subpaths =
    typeof exports === "object" && exports !== null && !Array.isArray(exports) && Object.keys(exports).some((k) => k.startsWith("."))
      ? (exports as Record<string, unknown>)
      : { ".": exports };
  const entries: ReportEntry[] = [];
  for (const [entry, target] of Object.entries(subpaths)) {
    if (entry.includes("*")) throw new Error(`package.json exports ${JSON.stringify(entry)}: subpath patterns have no single declaration file to report on`);
    const types = typesOf(target);
    if (types && /\.d\.[mc]?ts$/.test(types)) entries.push(make(entry, types));
  }
  return entries.sort((a, b) => (a.entry < b.entry ? -1 : a.entry > b.entry ? 1 : 0));
}

export const readPackageJson = (root: string): PackageJson => JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as PackageJson;

const formatHost: ts.FormatDiagnosticsHost = {
  getCanonicalFileName: (f) => f,
  getCurrentDirectory: () => process.cwd(),
  getNewLine: () => "\n",
};

function parseBuildConfig(root: string, extend: ts.CompilerOptions = {}): ts.ParsedCommandLine {
  const problems: ts.Diagnostic[] = [];
  const parsed = ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.build.json"), extend, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => problems.push(d),
  });
  if (!parsed || problems.length > 0 || parsed.errors.length > 0) {
    throw new Error(`tsconfig.build.json: ${ts.formatDiagnostics([...problems, ...(parsed?.errors ?? [])], formatHost)}`);
  }
  return parsed;
}

/**
 * Emits the declarations `npm run build` would write to dist/ into `outDir`
 * (declarations only, no type check beyond what declaration emit needs: type
 * errors are `npm run typecheck`'s business). Returns the build's own
 * declaration folder, which package.json's `types` paths point into.
 */
export function emitDeclarations(root: string, outDir: string): { buildDeclarationDir: string } {
  const build = parseBuildConfig(root);
  const buildDeclarationDir = build.options.declarationDir ?? build.options.outDir ?? root;
  const parsed = parseBuildConfig(root, {
    outDir,
    declarationDir: outDir,
    declaration: true,
    emitDeclarationOnly: true,
    noEmit: false,
    declarationMap: false,
    sourceMap: false,
    incremental: false,
    composite: false,
  });
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options, projectReferences: parsed.projectReferences });
  const result = program.emit(undefined, undefined, undefined, true);
  const errors = result.diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (result.emitSkipped || errors.length > 0) {
    throw new Error(`declaration emit failed:\n${ts.formatDiagnostics(errors, formatHost)}`);
  }
  return { buildDeclarationDir };
}

/** Compiler options for API Extractor's analysis of the declarations: the build's, without its input and output folders. */
function analysisOptions(root: string): Record<string, unknown> {
  const read = (file: string): Record<string, unknown> => {
    const { config, error } = ts.readConfigFile(file, ts.sys.readFile);
    if (error) throw new Error(ts.formatDiagnostics([error], formatHost));
    const raw = config as { extends?: unknown; compilerOptions?: Record<string, unknown> };
    const base = typeof raw.extends === "string" && raw.extends.startsWith(".") ? read(resolve(dirname(file), raw.extends)) : {};
    return { ...base, ...(raw.compilerOptions ?? {}) };
  };
  const options = read(join(root, "tsconfig.build.json"));
  for (const key of ["outDir", "declarationDir", "rootDir", "rootDirs", "noEmit", "emitDeclarationOnly", "declaration", "declarationMap", "sourceMap", "composite", "incremental", "tsBuildInfoFile"]) {
    delete options[key];
  }
  return options;
}

/** The same, as compiler options: how the surface flattener (tsSurface.ts) reads the reports' declarations. */
export function analysisCompilerOptions(root: string): ts.CompilerOptions {
  const { options, errors } = ts.convertCompilerOptionsFromJson(analysisOptions(root), root);
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, formatHost));
  return options;
}

export type GeneratedReports = Map<string, string>;

/**
 * Generates the API Extractor report of every entry from the sources in
 * `root`: entry (`.`) → the report's markdown. Works in a temporary folder,
 * removed afterwards; writes nothing under `root`.
 */
export function generateReports(root: string, entries: readonly ReportEntry[] = reportEntries(readPackageJson(root))): GeneratedReports {
  const reports: GeneratedReports = new Map();
  if (entries.length === 0) return reports;
  const work = mkdtempSync(join(tmpdir(), "api-report-"));
  try {
    const dts = join(work, "dts");
    const { buildDeclarationDir } = emitDeclarations(root, dts);
    const compilerOptions = analysisOptions(root);
    const entryFiles = entries.map((e) => {
      const within = relative(buildDeclarationDir, resolve(root, e.types));
      if (within.startsWith("..") || isAbsolute(within)) {
        throw new Error(`package.json exports ${JSON.stringify(e.entry)}: ${e.types} is not under the build's declaration folder ${relative(root, buildDeclarationDir)}`);
      }
      return join(dts, within);
    });
    const configs = entries.map((e, i) => {
      const configObject: IConfigFile = {
        // Relative to the emitted declarations, so that a location a message names does not depend on the temporary folder.
        projectFolder: dts,
        mainEntryPointFilePath: entryFiles[i] as string,
        compiler: { overrideTsconfig: { compilerOptions, files: entryFiles } },
        apiReport: {
          enabled: true,
          reportFileName: e.reportFile,
          reportFolder: join(work, "report"),
          reportTempFolder: join(work, "report-temp"),
          // Every type the entry reaches is part of its surface, exported or not.
          includeForgottenExports: true,
        },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        newlineKind: "lf",
        messages: {
          compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Error } },
          // The report lists forgotten exports as declarations (above); no warnings about them, nor about TSDoc style.
          extractorMessageReporting: {
            default: { logLevel: ExtractorLogLevel.Warning, addToApiReportFile: false },
            "ae-forgotten-export": { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
            "ae-missing-release-tag": { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
          },
          tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
        },
      };
      return ExtractorConfig.prepare({ configObject, configObjectFullPath: undefined, packageJsonFullPath: join(root, "package.json") });
    });
    mkdirSync(join(work, "report"), { recursive: true });
    mkdirSync(join(work, "report-temp"), { recursive: true });
    const first = configs[0];
    if (!first) return reports;
    const compilerState = CompilerState.create(first, { additionalEntryPoints: entryFiles });
    entries.forEach((e, i) => {
      const errors: string[] = [];
      const onMessage = (message: ExtractorMessage): void => {
        if (message.logLevel === ExtractorLogLevel.Error) errors.push(message.formatMessageWithLocation(dts));
        message.handled = true;
      };
      const result = Extractor.invoke(configs[i] as ExtractorConfig, { localBuild: true, compilerState, messageCallback: onMessage });
      if (!result.succeeded || errors.length > 0) {
        throw new Error(`API Extractor failed on ${e.specifier} (${e.types}):\n${errors.join("\n")}`);
      }
      reports.set(e.entry, readFileSync(join(work, "report", e.reportFile), "utf8"));
    });
    return reports;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
