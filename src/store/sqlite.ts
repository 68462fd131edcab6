/** The embedded default: SQLite in the data folder, through Kysely. */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import type { Database as Schema } from "./schema.js";
import { keepChangeWatch, watchChanges } from "./changeWatch.js";
import { withStatementCache } from "./statementCache.js";

/**
 * The database and its WAL files hold the encrypted tokens and whose accounts
 * they are: readable and writable by the service's user alone.
 */
export const DATABASE_FILE_MODE = 0o600;

/** Opens (creating if needed) the SQLite file at `path`, or an in-memory database for ":memory:". */
export function openSqlite(path: string): Kysely<Schema> {
  const onDisk = path !== ":memory:";
  if (onDisk) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Created by us, 0600, before SQLite opens it: SQLite creates the -wal and -shm files with the
    // database file's mode, and would otherwise create the database 0666 less the umask.
    closeSync(openSync(path, "a", DATABASE_FILE_MODE));
  }
  const sqlite = new Database(path);
  // WAL lets readers run beside the writer; the busy timeout rides out a
  // concurrent writer (another CLI command on the same file) instead of failing.
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("foreign_keys = ON");
  // A database an older version or another tool created keeps its mode (0644 in a folder that
  // existed already), and so would the WAL files opened just now: tighten all three.
  if (onDisk) for (const file of [path, `${path}-wal`, `${path}-shm`]) ownerOnly(file);
  const watch = watchChanges(sqlite);
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: withStatementCache(watch.database) }) });
  return keepChangeWatch(db, watch);
}

function ownerOnly(file: string): void {
  if (existsSync(file) && (statSync(file).mode & 0o777) !== DATABASE_FILE_MODE) chmodSync(file, DATABASE_FILE_MODE);
}
