/** The embedded default: SQLite in the data folder, through Kysely. */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import type { Database as Schema } from "./schema.js";

/** Opens (creating if needed) the SQLite file at `path`, or an in-memory database for ":memory:". */
export function openSqlite(path: string): Kysely<Schema> {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const sqlite = new Database(path);
  // WAL lets readers run beside the writer; the busy timeout rides out a
  // concurrent writer (another CLI command on the same file) instead of failing.
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("foreign_keys = ON");
  return new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
}
