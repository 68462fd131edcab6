/**
 * `npm run api:check` / `npm run api:update`: the v1 freeze of the public
 * surface (the API Extractor reports in api/ and the OpenAPI document); see
 * scripts/surface/freeze.ts for the rule. Exits 1 when the check fails or
 * the update is refused. `--all` lists every removed path, not only the
 * topmost of each removed subtree (`npm run api:check -- --all`).
 */
import process from "node:process";
import { apiCheck, apiUpdate, describeResult } from "./surface/freeze.js";

const command = process.argv[2];
if (command !== "check" && command !== "update") {
  process.stderr.write("usage: tsx scripts/api.ts check|update [--all]  (--all: list every removed path)\n");
  process.exit(2);
}
const root = process.cwd();
try {
  const options = { all: process.argv.includes("--all") };
  const result = command === "check" ? await apiCheck(root, options) : await apiUpdate(root, options);
  (result.ok ? process.stdout : process.stderr).write(describeResult(`api:${command}`, result));
  process.exitCode = result.ok ? 0 : 1;
} catch (error) {
  process.stderr.write(`api:${command} could not run: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
