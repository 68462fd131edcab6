#!/usr/bin/env node
/**
 * `npm run build` compiles `src/` into a clean `dist/` and stamps the result;
 * `--if-stale` (and `npm start`, through scripts/start.mjs) compiles only
 * when the build is stale: a source, a tsconfig, package.json or the lock
 * file changed since the compile began, or a source was added, removed or
 * renamed. Install (`prepare`) builds once, so a start costs a walk of
 * src/, not a compile. Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from "node:child_process";
import { cpSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const stamp = join(dist, ".build-stamp");
const inputs = ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"];

/** The sources that go into the build (what tsconfig.build.json leaves out, tests and their helpers, does not). */
function sources(dir = join(root, "src")) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "testing") found.push(...sources(path));
    } else if ((entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) || isPageAsset(path)) found.push(path);
  }
  return found;
}

/** The page's static files (src/server/page/), copied beside the compiled server as they are. */
const pageFolder = join(root, "src", "server", "page");
const isPageAsset = (path) => dirname(path) === pageFolder;

const listOf = (files) => files.map((f) => relative(root, f)).sort().join("\n");

/** Why the build is stale, or undefined when it is not. */
function stale() {
  let built;
  let listed;
  try {
    built = statSync(stamp).mtimeMs;
    listed = readFileSync(stamp, "utf8");
  } catch {
    return "no build yet";
  }
  const files = sources();
  if (listed !== `${listOf(files)}\n`) return "sources were added, removed or renamed";
  const mtimes = [...files, ...inputs.map((f) => join(root, f))].map((f) => {
    try {
      return statSync(f).mtimeMs;
    } catch {
      return 0;
    }
  });
  return Math.max(...mtimes) > built ? "sources changed since the last build" : undefined;
}

/** Compiles src/ into a clean dist/ and stamps it; exits the process with tsc's status when it fails. */
export function build() {
  // The stamp carries the time the compile began: a file saved while it ran is newer, so the next start builds again.
  const began = new Date();
  const files = sources();
  rmSync(dist, { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  cpSync(pageFolder, join(dist, "server", "page"), { recursive: true });
  writeFileSync(stamp, `${listOf(files)}\n`);
  utimesSync(stamp, began, began);
}

/** Builds only when the build is stale (see the header). */
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
