/**
 * Acceptance test of the v1 freeze (issue 14): in a scratch copy of the
 * repository (the tracked files, node_modules linked), breaking the contract
 * fails the check by name until the major version is raised, an additive
 * change passes without one once the report is updated, and the same holds
 * for the OpenAPI document.
 *
 * To keep it quick, each case generates its surfaces once per state of its
 * sources: the reports in this process (declarations only, API Extractor
 * called through its API), the OpenAPI document with the generator in a
 * child process. It hands them to check and update, whose other inputs
 * (package.json's version, the files in api/ and the checked-in document)
 * are what change between the calls. (The command line itself, exit codes
 * and output, is tested on a small package in test/surface/check.test.ts.)
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../src/testing/processes.js";
import { generateReports } from "../../scripts/surface/apiReport.js";
import { apiCheck, apiUpdate, readAccepted, type FreezeOptions } from "../../scripts/surface/freeze.js";
import { flattenOpenApi } from "../../scripts/surface/openApiSurface.js";
import { generateOpenApiDocument, OPENAPI_DOCUMENT, OPENAPI_GENERATOR } from "../../scripts/surface/openApiSource.js";

const CONTRACT = "src/integrations/shared/contract.ts";
const MAIN_REPORT = "api/autoflow-integrations.api.md";

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the tracked files (as they are in the work tree), with node_modules linked. */
function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "freeze-"));
  scratch.push(dir);
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
  for (const file of files) {
    if (!existsSync(join(ROOT, file))) continue;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  return dir;
}

function edit(dir: string, file: string, from: string, to: string): void {
  const text = readFileSync(join(dir, file), "utf8");
  expect(text, `${file} should contain ${JSON.stringify(from)}`).toContain(from);
  writeFileSync(join(dir, file), text.replace(from, to));
}

const version = (dir: string): string => (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;

function raiseMajor(dir: string): string {
  const raised = `${Number(version(dir).split(".")[0]) + 1}.0.0`;
  edit(dir, "package.json", `"version": "${version(dir)}"`, `"version": "${raised}"`);
  return raised;
}

/**
 * The surfaces `dir`'s sources generate, once: the reports, and the OpenAPI
 * document when there is a generator (in its child process, while the
 * declarations compile here). Check and update take them as given.
 */
async function generate(dir: string): Promise<FreezeOptions> {
  const openApi = existsSync(join(dir, OPENAPI_GENERATOR)) ? generateOpenApiDocument(dir) : undefined;
  openApi?.catch(() => undefined);
  const reports = generateReports(dir);
  return openApi ? { reports, openApiDocument: await openApi } : { reports };
}

describe("the v1 freeze", () => {
  it("(a) renaming a Tier1ConnectionHealth field fails the check, naming the removal, until the major version is raised and api:update run", async () => {
    const dir = scratchCopy();
    const acceptedReport = readFileSync(join(dir, MAIN_REPORT), "utf8");
    edit(dir, CONTRACT, "  checkedAt: string; // ISO-8601", "  checkedOn: string; // ISO-8601");
    const removal = "autoflow-integrations: Tier1ConnectionHealth.checkedAt removed";

    const generated = await generate(dir);

    const check = await apiCheck(dir, generated);
    expect(check.ok).toBe(false);
    expect(check.problems).toContain(`  ${removal}`);
    const refused = await apiUpdate(dir, generated);
    expect(refused.ok).toBe(false);
    expect(refused.problems).toContain(`  ${removal}`);
    expect(refused.written).toEqual([]);
    expect(readFileSync(join(dir, MAIN_REPORT), "utf8")).toBe(acceptedReport);

    const raised = raiseMajor(dir);
    const updated = await apiUpdate(dir, generated);
    expect(updated.problems).toEqual([]);
    expect(updated.written).toEqual(expect.arrayContaining([MAIN_REPORT, "api/accepted.json"]));
    expect(readAccepted(dir)?.version).toBe(raised);
    expect(readFileSync(join(dir, MAIN_REPORT), "utf8")).toMatch(/^\s+checkedOn: string;$/m);
    expect(await apiCheck(dir, generated)).toMatchObject({ ok: true, problems: [] });
  }, 240_000);

  it("(b) adding an optional field passes without a major bump once the report is updated, and fails while it is stale", async () => {
    const dir = scratchCopy();
    const before = version(dir);
    edit(dir, CONTRACT, "  checkedAt: string; // ISO-8601\n", "  checkedAt: string; // ISO-8601\n  region?: string;\n");
    const generated = await generate(dir);

    const stale = await apiCheck(dir, generated);
    expect(stale.ok).toBe(false);
    // Each entry whose report shows the type is stale (the SDK's, and the client's and server's, which name it too), with nothing removed.
    expect(stale.problems).toContainEqual(expect.stringMatching(/^autoflow-integrations: api\/autoflow-integrations\.api\.md differs from the generated one \(\d+ paths? added, 0 removed\): run npm run api:update/));
    for (const problem of stale.problems) expect(problem).toMatch(/differs from the generated one \(\d+ paths? added, 0 removed\): run npm run api:update/);
    const main = stale.state.surfaces.find((s) => s.name === "autoflow-integrations");
    expect(main?.added).toContain("Tier1ConnectionHealth.region");
    expect(stale.state.surfaces.flatMap((s) => s.removed)).toEqual([]);

    const updated = await apiUpdate(dir, generated);
    expect(updated.problems).toEqual([]);
    expect(version(dir)).toBe(before);
    expect(readAccepted(dir)?.version).toBe(before);
    expect(readFileSync(join(dir, MAIN_REPORT), "utf8")).toMatch(/^\s+region\?: string;$/m);
    expect(await apiCheck(dir, generated)).toMatchObject({ ok: true, problems: [] });
  }, 240_000);

  it("(c) removing an enum value from an OpenAPI response fails the same way", async () => {
    const dir = scratchCopy();
    expect(existsSync(join(dir, OPENAPI_GENERATOR)), `${OPENAPI_GENERATOR} (buildOpenApiDocument) generates the document`).toBe(true);
    const reports = generateReports(dir);
    expect(await apiCheck(dir, { reports }), "the copy starts with the checked-in surface current (the generator run by the check)").toMatchObject({ ok: true, problems: [] });

    // An enum value of a response, from the checked-in document: the health status's "down" when there is one.
    const responseValues = flattenOpenApi(JSON.parse(readFileSync(join(dir, OPENAPI_DOCUMENT), "utf8"))).filter((p) =>
      /^\S+ \S+ response \S+ \S+ \$.*: "[^"]*"$/.test(p),
    );
    const path = responseValues.find((p) => p.endsWith(': "down"')) ?? responseValues[0];
    expect(path, "the document has an enum value in a response").toBeDefined();
    const value = JSON.parse(/: ("[^"]*")$/.exec(path as string)?.[1] as string) as string;

    // The generator, wrapped: the same document without that value (in every enum or const that holds it).
    renameSync(join(dir, OPENAPI_GENERATOR), join(dir, "src/api/openapiBeforeRemoval.ts"));
    writeFileSync(
      join(dir, OPENAPI_GENERATOR),
      [
        `import { buildOpenApiDocument as generate } from "./openapiBeforeRemoval.js";`,
        `const VALUE = ${JSON.stringify(value)};`,
        `function drop(node: unknown): unknown {`,
        `  if (Array.isArray(node)) return node.map(drop);`,
        `  if (typeof node !== "object" || node === null) return node;`,
        `  const out: Record<string, unknown> = {};`,
        `  for (const [key, inner] of Object.entries(node)) {`,
        `    if (key === "const" && inner === VALUE) continue;`,
        `    out[key] = key === "enum" && Array.isArray(inner) ? inner.filter((v) => v !== VALUE) : drop(inner);`,
        `  }`,
        `  return out;`,
        `}`,
        `export function buildOpenApiDocument(): Record<string, unknown> {`,
        `  return drop(generate()) as Record<string, unknown>;`,
        `}`,
        ``,
      ].join("\n"),
    );

    // The wrapped generator, run once (the sources do not change again below).
    const generated: FreezeOptions = { reports, openApiDocument: await generateOpenApiDocument(dir) };
    const check = await apiCheck(dir, generated);
    expect(check.ok).toBe(false);
    expect(check.problems).toContain(`  OpenAPI: ${path} removed`);
    const refused = await apiUpdate(dir, generated);
    expect(refused.ok).toBe(false);
    expect(refused.problems).toContain(`  OpenAPI: ${path} removed`);

    raiseMajor(dir);
    const updated = await apiUpdate(dir, generated);
    expect(updated.problems).toEqual([]);
    expect(updated.written).toContain(OPENAPI_DOCUMENT);
    expect(await apiCheck(dir, generated)).toMatchObject({ ok: true, problems: [] });
  }, 240_000);
});
