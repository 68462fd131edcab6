#!/usr/bin/env node
/**
 * `npm run build` compiles `src/` into `dist/` and stamps the result;
 * `--if-stale` (and `npm start`, through scripts/start.mjs) compiles only
 * when a source, a tsconfig or package.json is newer than the last stamp (or
 * there is none). Install (`prepare`) builds once, so a start costs a stat
 * walk, not a compile. Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(root, "dist", ".build-stamp");
const inputs = ["package.json", "tsconfig.json", "tsconfig.build.json"];

/** The newest modification time under `dir` of the files that go into the build. */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    // What tsconfig.build.json leaves out (tests and their helpers) does not make a build stale.
    if (entry.isDirectory()) latest = entry.name === "testing" ? latest : Math.max(latest, newest(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}

function stale() {
  let built;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    return "no build yet";
  }
  const latestInput = Math.max(newest(join(root, "src")), ...inputs.map((f) => statSync(join(root, f)).mtimeMs));
  return latestInput > built ? "sources changed since the last build" : undefined;
}

/** Compiles src/ into dist/ and stamps the result; exits the process with tsc's status when it fails. */
export function build() {
  const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

/** Builds only when a source, a tsconfig or package.json is newer than the last build. */
export function buildIfStale() {
  const why = stale();
  if (!why) return;
  process.stderr.write(`building dist/ (${why})\n`);
  build();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--if-stale")) buildIfStale();
  else build();
}
