/**
 * What importing a package entry loads, in a fresh process (run by
 * test/e2e/entries.test.ts; plain JavaScript, so that it runs on the built
 * package without tsx):
 *
 *   node [--import tsx] src/testing/entryProbe.mjs <module URL> [import|sqlite|postgres]
 *
 * imports the module, then (`sqlite`) opens a store through its `openStore`
 * on an in-memory SQLite, or (`postgres`) tries one on a PostgreSQL that
 * nobody listens on, and prints one JSON line: `esm`, the URL of every ES
 * module loaded after this file, and `cjs`, the path of every CommonJS
 * module loaded at all.
 *
 * `esm` comes from a load hook that appends each URL to a file, synchronously,
 * before Node gets the module: when the import settles, every URL is in the
 * file. `cjs` is require's cache: fastify, pg, pg-boss and better-sqlite3 are
 * CommonJS, and what they require does not pass through the ES module hooks
 * on Node 20.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire, register } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const HOOKS = `
import { appendFileSync } from "node:fs";
let log;
export function initialize(data) { log = data.log; }
export async function load(url, context, nextLoad) {
  appendFileSync(log, url + "\\n");
  return nextLoad(url, context);
}
`;

const [target, action = "import"] = process.argv.slice(2);
if (!target) throw new Error("usage: entryProbe.mjs <module URL> [import|sqlite|postgres]");

const dir = mkdtempSync(join(tmpdir(), "autoflow-entry-probe-"));
const log = join(dir, "loaded.txt");
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, { data: { log } });

let outcome = "imported";
try {
  const entry = await import(target);
  if (action === "sqlite") {
    const store = await entry.openStore({ sqlitePath: ":memory:", keys: [randomBytes(32)] });
    await store.close();
    outcome = `opened ${store.dialect}`;
  } else if (action === "postgres") {
    // Port 1 on loopback refuses at once: the driver is loaded, the store is not opened.
    outcome = await entry.openStore({ postgres: { url: "postgres://nobody@127.0.0.1:1/none" }, keys: [randomBytes(32)] }).then(
      async (store) => {
        await store.close();
        return "opened postgres";
      },
      (error) => `refused: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const esm = readFileSync(log, "utf8").split("\n").filter(Boolean);
  const cjs = Object.keys(createRequire(import.meta.url).cache);
  process.stdout.write(`${JSON.stringify({ outcome, esm, cjs })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
