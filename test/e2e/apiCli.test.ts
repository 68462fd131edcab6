/**
 * The command line of the freeze (scripts/api.ts, what `npm run api:check`
 * and `npm run api:update` run) on a package of one small entry, compiled and
 * reported for real: exit 1 and each removal named on stderr, and an update
 * that refuses. The rules themselves are tested in test/surface/check.test.ts
 * and, on this repository's sources, in test/e2e/freeze.test.ts.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../src/testing/processes.js";
import { apiCheck, apiUpdate } from "../../scripts/surface/freeze.js";

describe("the command line", () => {
  /** `tsx scripts/api.ts <command>` run in `dir`, as `npm run api:<command>` runs it there. */
  const cli = (dir: string, command: string): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "api.ts"), command], { cwd: dir }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      });
    });

  it("generates the report from a package's sources, exits 1 naming a removal, and refuses to accept it", async () => {
    // A package of one entry, compiled and reported for real (no node types, so it is quick).
    const dir = mkdtempSync(join(tmpdir(), "api-cli-"));
    try {
      symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "tiny", version: "1.0.0", type: "module", exports: { ".": { types: "./dist/index.d.ts", default: "./dist/index.js" } } }));
      const compilerOptions = { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2023"], types: [], strict: true, declaration: true, rootDir: "src", outDir: "dist" };
      writeFileSync(join(dir, "tsconfig.build.json"), JSON.stringify({ compilerOptions, include: ["src"] }));
      mkdirSync(join(dir, "src"));
      writeFileSync(join(dir, "src", "index.ts"), `export type Health = { status: "ok" | "down"; checkedAt: string };\nexport function health(): Health {\n  return { status: "ok", checkedAt: "" };\n}\n`);
      // Every package the freeze checks has its HTTP half too: here an API of no paths.
      mkdirSync(join(dir, "src", "api"));
      writeFileSync(join(dir, "src", "api", "openapi.ts"), `export function buildOpenApiDocument() {\n  return { openapi: "3.1.0", info: { title: "tiny", version: "1.0.0" }, paths: {} };\n}\n`);

      // Accepted in this process (generated for real: declarations, API Extractor)...
      expect((await apiUpdate(dir)).written).toEqual(expect.arrayContaining(["api/tiny.api.md", "api/accepted.json", "docs/integrations/openapi.json"]));
      expect(readFileSync(join(dir, "api", "tiny.api.md"), "utf8")).toMatch(/^export type Health = \{$/m);
      expect((await apiCheck(dir)).ok).toBe(true);

      // ...then broken, and checked by the command line.
      writeFileSync(join(dir, "src", "index.ts"), readFileSync(join(dir, "src", "index.ts"), "utf8").replaceAll("checkedAt", "checkedOn"));
      const check = await cli(dir, "check");
      expect(check.code).toBe(1);
      expect(check.stderr).toContain("tiny: Health.checkedAt removed");
      const refused = await cli(dir, "update");
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/REFUSED \(nothing written\):[\s\S]*tiny: Health\.checkedAt removed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
