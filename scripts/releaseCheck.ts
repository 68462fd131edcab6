/**
 * `npm run release:check` (and `prepublishOnly`): what must hold before a
 * version is published. The Tier 1 contract suite passes, the API reports
 * in api/ are the generated ones with nothing accepted removed unless the
 * major version was raised, and the same for the OpenAPI document. Runs
 * every step, prints a summary, exits 1 when any step failed.
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { apiCheck, describeResult, halves } from "./surface/freeze.js";

export const CONTRACT_SUITE = "src/integrations/shared/tier1Contract.test.ts";

const root = process.cwd();
const summary: string[] = [];
let failed = false;
const step = (name: string, ok: boolean | "skipped", detail = ""): void => {
  if (ok === false) failed = true;
  summary.push(`  ${ok === "skipped" ? "SKIPPED" : ok ? "ok     " : "FAILED "} ${name}${detail ? `: ${detail}` : ""}`);
};

process.stdout.write(`release:check 1/2: the Tier 1 contract suite (${CONTRACT_SUITE})\n`);
const suite = spawnSync("npx", ["vitest", "run", CONTRACT_SUITE], { cwd: root, stdio: "inherit" });
step("Tier 1 contract suite", suite.status === 0, suite.status === 0 ? "" : `vitest exited with ${suite.status ?? suite.signal}`);

process.stdout.write("release:check 2/2: the API surface (TypeScript reports and the OpenAPI document)\n");
try {
  const result = await apiCheck(root);
  (result.ok ? process.stdout : process.stderr).write(describeResult("api:check", result));
  const { typescript, openapi } = halves(result);
  step("API report (api/*.api.md)", typescript.ok);
  step("OpenAPI document (docs/integrations/openapi.json)", openapi === "skipped" ? "skipped" : openapi.ok, openapi === "skipped" ? "src/api/openapi.ts does not exist yet" : "");
} catch (error) {
  step("API surface check", false, error instanceof Error ? error.message : String(error));
}

process.stdout.write(`\nrelease:check ${failed ? "FAILED" : "passed"}\n${summary.join("\n")}\n`);
process.exitCode = failed ? 1 : 0;
