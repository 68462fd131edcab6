/**
 * The package's entries load what they are for and no more (issue 14): the
 * SDK (`autoflow-integrations`) no HTTP server, no sandbox and no database
 * driver until a store asks for one; `./server` the service, Fastify and the
 * sandboxes included. Each import runs in a fresh process
 * (src/testing/entryProbe.mjs), on the sources through tsx and on the package
 * as it is built (tsconfig.build.json), imported by its name through the
 * `exports` of package.json.
 */
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../src/testing/processes.js";

const run = promisify(execFile);
const PROBE = join(ROOT, "src", "testing", "entryProbe.mjs");

/** The CommonJS packages the SDK must not load on its own. */
const SERVER_PACKAGES = ["fastify", "@fastify/formbody", "@fastify/rate-limit"];
const DRIVERS = ["pg", "pg-boss", "better-sqlite3"];

type Loaded = {
  outcome: string;
  /** Packages (node_modules folders) a module was loaded from. */
  packages: Set<string>;
  /** The package's own modules, relative to its root (`src/sdk.ts`, `dist/sdk.js`). */
  own: string[];
};

async function probe(moduleUrl: string, action: "import" | "sqlite" | "postgres", options: { cwd: string; tsx: boolean }): Promise<Loaded> {
  const args = [...(options.tsx ? ["--import", "tsx"] : []), PROBE, moduleUrl, action];
  const { stdout } = await run(process.execPath, args, { cwd: options.cwd, timeout: 60_000 });
  const report = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as { outcome: string; esm: string[]; cjs: string[] };
  const paths = [...report.esm.filter((url) => url.startsWith("file:")).map((url) => new URL(url).pathname), ...report.cjs];
  const packages = new Set<string>();
  const own: string[] = [];
  for (const path of paths) {
    const inPackage = /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
    if (inPackage) packages.add(inPackage[1] as string);
    else if (path.startsWith(options.cwd)) own.push(relative(options.cwd, path));
  }
  return { outcome: report.outcome, packages, own };
}

/** The sandboxes' modules: the kit, each provider's sandbox files, and what starts them. */
const isSandboxModule = (path: string) =>
  /^(src|dist)\/(sandbox\/|integrations\/[^/]+\/sandbox[^/]*\.(ts|js)$|integrations\/sandboxRegistry\.(ts|js)$|(sandboxes|serviceSandboxes)\.(ts|js)$)/.test(path);

function expectSdkOnly(loaded: Loaded, ext: "ts" | "js", root: "src" | "dist") {
  // The hook saw the entry's own modules at all (else "none loaded" proves nothing).
  expect(loaded.own).toContain(`${root}/sdk.${ext}`);
  expect(loaded.own).toContain(`${root}/integrations/registry.${ext}`);
  for (const name of [...SERVER_PACKAGES, ...DRIVERS]) expect(loaded.packages, name).not.toContain(name);
  expect(loaded.own.filter(isSandboxModule)).toEqual([]);
  expect(loaded.own).not.toContain(`${root}/service.${ext}`);
  expect(loaded.own).not.toContain(`${root}/server/app.${ext}`);
}

function expectService(loaded: Loaded, ext: "ts" | "js", root: "src" | "dist") {
  expect(loaded.packages).toContain("fastify");
  expect(loaded.own).toContain(`${root}/service.${ext}`);
  expect(loaded.own).toContain(`${root}/sandbox/kit.${ext}`);
  expect(loaded.own).toContain(`${root}/integrations/slack/sandbox.${ext}`);
  // Drivers still come with the store the configuration names, jobs with pg-boss on PostgreSQL only.
  for (const name of DRIVERS) expect(loaded.packages, name).not.toContain(name);
}

describe("package entries, from the sources", () => {
  const sdk = pathToFileURL(join(ROOT, "src", "index.ts")).href;
  const source = { cwd: ROOT, tsx: true };

  it("autoflow-integrations loads no Fastify, no sandbox, no pg, pg-boss or better-sqlite3", async () => {
    expectSdkOnly(await probe(sdk, "import", source), "ts", "src");
  }, 60_000);

  it("autoflow-integrations/server does load Fastify and the sandboxes (what the SDK's check would catch)", async () => {
    expectService(await probe(pathToFileURL(join(ROOT, "src", "server.ts")).href, "import", source), "ts", "src");
  }, 60_000);

  it("autoflow-integrations/client loads the route table and the error class only: no zod, no connector, no server", async () => {
    const loaded = await probe(pathToFileURL(join(ROOT, "src", "client", "index.ts")).href, "import", source);
    expect(loaded.own).toContain("src/client/index.ts");
    expect(loaded.own).toContain("src/api/routes.ts");
    // (tsx and esbuild load the sources; nothing else of node_modules is loaded.)
    expect([...loaded.packages].filter((name) => name !== "tsx" && name !== "esbuild")).toEqual([]);
    // The error class and the contract (its list of error types): no connector, no registry.
    const allowed = ["src/integrations/shared/errors.ts", "src/integrations/shared/contract.ts"];
    expect(loaded.own.filter((path) => path.startsWith("src/integrations/") && !allowed.includes(path))).toEqual([]);
  });

  it("the SDK opens a SQLite store, and only then loads better-sqlite3, never pg", async () => {
    const loaded = await probe(sdk, "sqlite", source);
    expect(loaded.outcome).toBe("opened sqlite");
    expect(loaded.packages).toContain("better-sqlite3");
    expect(loaded.packages).not.toContain("pg");
    expect(loaded.packages).not.toContain("pg-boss");
    expect(loaded.packages).not.toContain("fastify");
  }, 60_000);

  it("a PostgreSQL URL loads pg, not better-sqlite3", async () => {
    const loaded = await probe(sdk, "postgres", source);
    expect(loaded.outcome).toMatch(/^refused: .*ECONNREFUSED/);
    expect(loaded.packages).toContain("pg");
    expect(loaded.packages).not.toContain("better-sqlite3");
    expect(loaded.packages).not.toContain("pg-boss");
  }, 60_000);
});

describe("package entries, built and imported by name", () => {
  // A package of its own (package.json, dist/ compiled as `npm run build` does, node_modules linked),
  // so that the real dist/, which other tests build and run, is left alone.
  let dir: string;
  const built = { cwd: "", tsx: false };
  /** A module inside the package that imports `specifier` by the package's name (a self-reference, resolved by `exports`). */
  const importer = (name: string, specifier: string) => {
    const file = join(dir, `${name}.mjs`);
    writeFileSync(file, `export * from ${JSON.stringify(specifier)};\n`);
    return pathToFileURL(file).href;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "autoflow-entries-"));
    built.cwd = dir;
    copyFileSync(join(ROOT, "package.json"), join(dir, "package.json"));
    symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
    await run(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(ROOT, "tsconfig.build.json"), "--outDir", join(dir, "dist")], { cwd: ROOT });
  }, 240_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("every entry of package.json's exports is built, with its types", () => {
    const { exports } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { exports: Record<string, { types: string; default: string }> };
    expect(Object.keys(exports).sort()).toEqual([".", "./client", "./sandboxes", "./server"]);
    for (const target of Object.values(exports)) {
      expect(existsSync(join(dir, target.default)), target.default).toBe(true);
      expect(existsSync(join(dir, target.types)), target.types).toBe(true);
    }
  });

  it("autoflow-integrations loads no Fastify, no sandbox, no pg, pg-boss or better-sqlite3; autoflow-integrations/server loads Fastify", async () => {
    expectSdkOnly(await probe(importer("sdk", "autoflow-integrations"), "import", built), "js", "dist");
    expectService(await probe(importer("server", "autoflow-integrations/server"), "import", built), "js", "dist");
  }, 60_000);

  it("the built SDK opens a SQLite store, loading better-sqlite3 and not pg", async () => {
    const loaded = await probe(importer("sdk", "autoflow-integrations"), "sqlite", built);
    expect(loaded.outcome).toBe("opened sqlite");
    expect(loaded.packages).toContain("better-sqlite3");
    expect(loaded.packages).not.toContain("pg");
  }, 60_000);
});
