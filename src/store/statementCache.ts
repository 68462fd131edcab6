/**
 * better-sqlite3 compiles a statement on every `prepare`, and Kysely
 * prepares each query it runs: the same few dozen statements, compiled again
 * on every request. This keeps the compiled ones by their SQL (at most
 * `max`, the least recently used dropped first) and hands a statement back
 * again once it is free; one still being iterated (a stream) is never shared.
 * SQLite recompiles a kept statement by itself after a schema change.
 */
import type { SqliteDatabase, SqliteStatement } from "kysely";

/** The part of better-sqlite3's Database and Statement this uses. */
type Prepared = SqliteStatement & { readonly busy?: boolean };
type Preparer = { prepare(sql: string): Prepared; close(): unknown };

export const STATEMENT_CACHE_SIZE = 256;

export function withStatementCache(database: Preparer, max = STATEMENT_CACHE_SIZE): SqliteDatabase {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`the statement cache holds at least 1 statement, not ${max}`);
  const kept = new Map<string, Prepared>();
  return {
    prepare(sql: string): SqliteStatement {
      const found = kept.get(sql);
      if (found && !found.busy) {
        // Most recently used last: Map keeps insertion order.
        kept.delete(sql);
        kept.set(sql, found);
        return found;
      }
      const statement = database.prepare(sql);
      if (!found) {
        kept.set(sql, statement);
        if (kept.size > max) kept.delete(kept.keys().next().value as string);
      }
      return statement;
    },
    close() {
      kept.clear();
      database.close();
    },
  };
}
