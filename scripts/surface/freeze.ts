/**
 * The v1 freeze, enforced: `npm run api:check` and `npm run api:update`
 * (scripts/api.ts) over two surfaces, the TypeScript one (an API Extractor
 * report per package entry, api/*.api.md) and the HTTP one (the OpenAPI
 * document, docs/integrations/openapi.json).
 *
 * api/accepted.json records the version the checked-in surface was accepted
 * at and which report belongs to which entry. The rule (rule.ts): removals
 * need package.json's major version above the accepted one; the check also
 * fails when a checked-in file differs from the generated one, and when the
 * major was raised but the surface was not accepted at it yet (otherwise a
 * later removal in that major would pass unnoticed).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { analysisCompilerOptions, API_FOLDER, generateReports, readPackageJson, reportEntries, type GeneratedReports, type ReportEntry } from "./apiReport.js";
import { flattenOpenApi } from "./openApiSurface.js";
import { formatOpenApi, generateOpenApiDocument, OPENAPI_DOCUMENT, OPENAPI_GENERATOR, readCheckedInOpenApi } from "./openApiSource.js";
import { checkVerdict, majorOf, removedPaths, updateVerdict, type SurfaceComparison, type Verdict } from "./rule.js";
import { flattenReportGroups } from "./tsSurface.js";

export const ACCEPTED_FILE = `${API_FOLDER}/accepted.json`;

export type Accepted = {
  /** package.json's version when the checked-in surface was accepted (`api:update` last ran). */
  version: string;
  /** Package entry → its report in api/. */
  reports: Record<string, string>;
};

export function readAccepted(root: string): Accepted | undefined {
  const file = join(root, ACCEPTED_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<Accepted>;
  if (typeof parsed.version !== "string" || typeof parsed.reports !== "object" || parsed.reports === null) {
    throw new Error(`${ACCEPTED_FILE} must hold {"version": "<semver>", "reports": {"<entry>": "<file>"}}`);
  }
  majorOf(parsed.version);
  return { version: parsed.version, reports: parsed.reports };
}

export const formatAccepted = (accepted: Accepted): string => `${JSON.stringify(accepted, null, 2)}\n`;

const lf = (text: string): string => text.replaceAll("\r\n", "\n");

export type FreezeOptions = {
  /** Reports already generated from `root`'s current sources (generated here when left out). */
  reports?: GeneratedReports;
  /** List every removed path (`--all`), not only the topmost of each removed subtree. */
  all?: boolean;
  /** The OpenAPI document already generated from `root`'s current sources (generated here by src/api/openapi.ts when left out). */
  openApiDocument?: unknown;
};

type Write = { file: string; text: string } | { file: string; remove: true };

export type FreezeState = {
  acceptedVersion: string;
  currentVersion: string;
  surfaces: SurfaceComparison[];
  /** What the run says besides the verdict (a skipped half, path counts). */
  notes: string[];
  /** What `api:update` writes (relative to the root). */
  writes: Write[];
};

/** Reads the checked-in surfaces, generates the current ones and compares them. Writes nothing. */
export async function compareSurfaces(root: string, options: FreezeOptions = {}): Promise<FreezeState> {
  const pkg = readPackageJson(root);
  const accepted = readAccepted(root);
  const acceptedVersion = accepted?.version ?? pkg.version;
  const entries = reportEntries(pkg);
  const notes: string[] = [];
  const writes: Write[] = [];

  // The generator runs in a child process: start it first, so it runs while the declarations compile here.
  const openApi = openApiHalf(root, notes, writes, options);
  openApi.catch(() => undefined);

  const reports = options.reports ?? generateReports(root, entries);
  const surfaces: SurfaceComparison[] = [];
  const acceptedReports = accepted?.reports ?? {};
  const current = new Map<string, ReportEntry>(entries.map((e) => [e.entry, e]));
  type Pending = { entry: string; e: ReportEntry | undefined; checkedInFile: string; checkedIn: string | undefined; accepted: boolean; generated: string | undefined };
  const pending: Pending[] = [];
  for (const entry of [...new Set([...Object.keys(acceptedReports), ...current.keys()])].sort()) {
    const e = current.get(entry);
    const checkedInFile = `${API_FOLDER}/${acceptedReports[entry] ?? e?.reportFile}`;
    const checkedIn = existsSync(join(root, checkedInFile)) ? lf(readFileSync(join(root, checkedInFile), "utf8")) : undefined;
    const generated = e ? reports.get(entry) : undefined;
    if (e && generated === undefined) throw new Error(`no report was generated for ${e.specifier}`);
    pending.push({ entry, e, checkedInFile, checkedIn, accepted: checkedIn !== undefined && entry in acceptedReports, generated });
  }
  // One compiler program reads every report; the accepted and the generated one of an entry are flattened as a pair.
  const groups = pending.map((p) => [...(p.accepted ? [p.checkedIn as string] : []), ...(p.generated !== undefined ? [p.generated] : [])]);
  const flattened = flattenReportGroups(groups, { root, compilerOptions: analysisCompilerOptions(root) });
  pending.forEach((p, i) => {
    const group = flattened[i] ?? [];
    const acceptedPaths = p.accepted ? (group[0] ?? []) : [];
    const generatedPaths = p.generated !== undefined ? (group[p.accepted ? 1 : 0] ?? []) : [];
    if (!p.e) {
      // An entry accepted before and gone from package.json exports: all of it is removed.
      surfaces.push({ name: `${pkg.name}${p.entry === "." ? "" : p.entry.slice(1)}`, file: p.checkedInFile, upToDate: false, missing: false, removed: acceptedPaths, added: [] });
      writes.push({ file: p.checkedInFile, remove: true });
      return;
    }
    const file = `${API_FOLDER}/${p.e.reportFile}`;
    surfaces.push({
      name: p.e.specifier,
      file,
      upToDate: p.checkedIn === p.generated && file === p.checkedInFile && p.accepted,
      missing: p.checkedIn === undefined,
      removed: removedPaths(acceptedPaths, generatedPaths),
      added: removedPaths(generatedPaths, acceptedPaths),
    });
    notes.push(`${p.e.specifier}: ${generatedPaths.length} paths (${file})`);
    if (p.checkedIn !== p.generated || file !== p.checkedInFile) writes.push({ file, text: p.generated as string });
    if (file !== p.checkedInFile && p.checkedIn !== undefined) writes.push({ file: p.checkedInFile, remove: true });
  });

  const openApiSurface = await openApi;
  if (openApiSurface) surfaces.push(openApiSurface);

  const nextAccepted: Accepted = { version: pkg.version, reports: Object.fromEntries(entries.map((e) => [e.entry, e.reportFile])) };
  if (!accepted || formatAccepted(accepted) !== formatAccepted(nextAccepted)) writes.push({ file: ACCEPTED_FILE, text: formatAccepted(nextAccepted) });
  return { acceptedVersion, currentVersion: pkg.version, surfaces, notes, writes };
}

async function openApiHalf(root: string, notes: string[], writes: Write[], options: FreezeOptions): Promise<SurfaceComparison | undefined> {
  if (!("openApiDocument" in options) && !existsSync(join(root, OPENAPI_GENERATOR))) {
    throw new Error(`${OPENAPI_GENERATOR} does not exist: the OpenAPI half of the freeze generates ${OPENAPI_DOCUMENT} with its buildOpenApiDocument()`);
  }
  const generated = JSON.parse(JSON.stringify("openApiDocument" in options ? options.openApiDocument : await generateOpenApiDocument(root))) as unknown;
  const checkedIn = readCheckedInOpenApi(root);
  const generatedPaths = flattenOpenApi(generated);
  const acceptedPaths = checkedIn ? flattenOpenApi(checkedIn.document) : [];
  const upToDate = checkedIn !== undefined && isDeepStrictEqual(checkedIn.document, generated);
  if (!upToDate) writes.push({ file: OPENAPI_DOCUMENT, text: formatOpenApi(generated) });
  notes.push(`OpenAPI: ${generatedPaths.length} paths (${OPENAPI_DOCUMENT})`);
  return {
    name: "OpenAPI",
    file: OPENAPI_DOCUMENT,
    upToDate,
    missing: checkedIn === undefined,
    removed: removedPaths(acceptedPaths, generatedPaths),
    added: removedPaths(generatedPaths, acceptedPaths),
  };
}

export type FreezeResult = Verdict & { state: FreezeState; written: string[] };

/** The major was raised but the surface was not accepted at it: until `api:update` runs, a removal in the new major would pass. */
function unacceptedMajor(state: FreezeState): string[] {
  return majorOf(state.currentVersion) > majorOf(state.acceptedVersion) && state.surfaces.every((s) => s.upToDate)
    ? [`package.json's version ${state.currentVersion} is a major above ${state.acceptedVersion}, the version the surface was accepted at: run npm run api:update to accept it at ${state.currentVersion}`]
    : [];
}

/** `npm run api:check`. */
export async function apiCheck(root: string, options: FreezeOptions = {}): Promise<FreezeResult> {
  const state = await compareSurfaces(root, options);
  const verdict = checkVerdict(state.surfaces, state.acceptedVersion, state.currentVersion, options.all);
  const problems = [...verdict.problems, ...unacceptedMajor(state)];
  return { ok: problems.length === 0, problems, state, written: [] };
}

/** `npm run api:update`: writes the generated surfaces and the accepted version, unless that would accept a removal without a major version bump. */
export async function apiUpdate(root: string, options: FreezeOptions = {}): Promise<FreezeResult> {
  const state = await compareSurfaces(root, options);
  const verdict = updateVerdict(state.surfaces, state.acceptedVersion, state.currentVersion, options.all);
  if (!verdict.ok) return { ...verdict, state, written: [] };
  mkdirSync(join(root, API_FOLDER), { recursive: true });
  for (const write of state.writes) {
    if ("remove" in write) rmSync(join(root, write.file), { force: true });
    else {
      mkdirSync(dirname(join(root, write.file)), { recursive: true });
      writeFileSync(join(root, write.file), write.text);
    }
  }
  return { ...verdict, state, written: state.writes.map((w) => ("remove" in w ? `${w.file} (removed)` : w.file)) };
}

/** What the CLI prints for a result. */
export function describeResult(command: "api:check" | "api:update", result: FreezeResult): string {
  const { state } = result;
  const lines = [`${command}: surface accepted at ${state.acceptedVersion}, package.json at ${state.currentVersion}`];
  for (const note of state.notes) lines.push(`  ${note}`);
  for (const s of state.surfaces) {
    if (s.added.length > 0 && !s.upToDate) lines.push(`  ${s.name}: ${s.added.length} path${s.added.length === 1 ? "" : "s"} added`);
    if (s.removed.length > 0) lines.push(`  ${s.name}: ${s.removed.length} path${s.removed.length === 1 ? "" : "s"} removed`);
  }
  if (result.ok) {
    if (command === "api:update") lines.push(result.written.length > 0 ? `wrote ${result.written.join(", ")}` : "nothing to write: the checked-in surface is current");
    else lines.push("ok: the checked-in surface is the generated one, and nothing accepted was removed without a major version bump");
  } else {
    lines.push(command === "api:update" ? "REFUSED (nothing written):" : "FAILED:");
    for (const problem of result.problems) lines.push(`  ${problem}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The result split into its two halves, for release:check's summary: the TypeScript reports and the OpenAPI document. */
export function halves(result: FreezeResult): { typescript: Verdict; openapi: Verdict | "skipped" } {
  const { state } = result;
  const ts = state.surfaces.filter((s) => s.name !== "OpenAPI");
  const openapi = state.surfaces.filter((s) => s.name === "OpenAPI");
  const typescript = checkVerdict(ts, state.acceptedVersion, state.currentVersion);
  const major = unacceptedMajor(state);
  return {
    typescript: { ok: typescript.ok && major.length === 0, problems: [...typescript.problems, ...major] },
    openapi: openapi.length === 0 ? "skipped" : checkVerdict(openapi, state.acceptedVersion, state.currentVersion),
  };
}
