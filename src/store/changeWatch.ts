/**
 * Whether a SQLite database may have changed since a moment, and the
 * results of the queries asked for kept by it: a read answered again from
 * memory exactly while nothing it read could have changed.
 *
 * Two kinds of change are watched. A commit by any other connection (another
 * process on the file, a CLI command, another connection in this process)
 * changes `PRAGMA data_version` as this connection sees it; it costs about
 * a sixth of the simplest read of a row. A write through this connection
 * does not change it, so every statement that can write (better-sqlite3's
 * `readonly` is false) counts itself when it runs. Inside a transaction
 * there is no version at all (what it reads may yet be rolled back), nor
 * while a statement is being iterated (a stream holds the snapshot it began
 * in, and data_version would be read in that snapshot too).
 */
import type { SqliteStatement } from "kysely";
import { LRUCache } from "lru-cache";

/** The part of better-sqlite3's Database this uses. */
type Watched = {
  prepare(sql: string): SqliteStatement & { readonly readonly?: boolean; readonly busy?: boolean };
  close(): unknown;
  readonly inTransaction: boolean;
};

/** How many results of each kept query are kept (by their parameters), the least recently used dropped first. */
export const RESULTS_KEPT = 4_096;

export type ChangeWatch = {
  /**
   * A token that stays the same exactly while the database has not changed:
   * equal tokens at two moments mean nothing was committed in between (by
   * this connection or another). Undefined inside a transaction, while a
   * statement is being iterated (it holds an older snapshot), or when the
   * database cannot be read.
   */
  version(): string | undefined;
  /**
   * Keeps the results of `sql`, a query that only reads, by its parameters
   * (when each is a string, a finite number or null): run again with the same
   * ones while the version is the one it was read under, it answers copies
   * of the rows it read then, as it runs, in its turn on the connection: what
   * the query would read at that moment.
   */
  keep(sql: string): void;
  /**
   * Drops every kept result (this process's crypto-shred leaves its ciphertexts nowhere; another
   * process's leaves them here until a read of the same replaces them or they are the least recently used).
   */
  forget(): void;
  /** How many runs of kept queries were answered from memory, and how many read the database (tests, figures). */
  readonly answered: { readonly fromMemory: number; readonly fromDatabase: number };
  /** The database, for Kysely: each statement that can write counted as it runs. */
  readonly database: { prepare(sql: string): SqliteStatement; close(): unknown };
};

export function watchChanges(sqlite: Watched, options: { resultsKept?: number } = {}): ChangeWatch {
  let writes = 0;
  // Statements being iterated: each holds the read snapshot it began in, which data_version is then read in too.
  let open = 0;
  const probe = (sqlite.prepare("PRAGMA data_version") as unknown as { pluck(): { get(): unknown } }).pluck();
  const version = (): string | undefined => {
    if (sqlite.inTransaction || open > 0) return undefined;
    try {
      return `${writes}:${String(probe.get())}`;
    } catch {
      // Unreadable now (a lock held through the busy timeout, a closed database): no version, so nothing kept is used.
      return undefined;
    }
  };
  const kept = new Map<string, LRUCache<string, { version: string; rows: readonly unknown[] }>>();
  const answered = { fromMemory: 0, fromDatabase: 0 };
  const watched = (statement: ReturnType<Watched["prepare"]>, sql: string): SqliteStatement & { readonly busy?: boolean } => {
    const writing = statement.readonly === false;
    const read = (parameters: readonly unknown[]): unknown[] => {
      const results = kept.get(sql);
      const now = results && keyable(parameters) ? version() : undefined;
      if (!results || now === undefined) return statement.all(parameters);
      const key = JSON.stringify(parameters);
      const found = results.get(key);
      if (found?.version === now) {
        answered.fromMemory++;
        return found.rows.map(copy);
      }
      answered.fromDatabase++;
      const rows = statement.all(parameters);
      // Copies each way: a caller (a result plugin, say) may change the rows it is handed, and no other may see that.
      results.set(key, { version: now, rows: rows.map(copy) });
      return rows;
    };
    return {
      get reader() {
        return statement.reader;
      },
      get busy() {
        return statement.busy;
      },
      all(parameters) {
        if (!writing) return read(parameters);
        try {
          return statement.all(parameters);
        } finally {
          writes++;
        }
      },
      run(parameters) {
        try {
          return statement.run(parameters);
        } finally {
          if (writing) writes++;
        }
      },
      // A writer counted at each row too: a version read between two rows must not match one read after the last.
      *iterate(parameters) {
        open++;
        try {
          for (const row of statement.iterate(parameters)) {
            if (writing) writes++;
            yield row;
          }
        } finally {
          open--;
          if (writing) writes++;
        }
      },
    };
  };
  return {
    version,
    keep(sql) {
      if (!kept.has(sql)) kept.set(sql, new LRUCache({ max: options.resultsKept ?? RESULTS_KEPT }));
    },
    forget() {
      for (const results of kept.values()) results.clear();
    },
    answered,
    database: {
      prepare: (sql: string) => watched(sqlite.prepare(sql), sql),
      close: () => sqlite.close(),
    },
  };
}

/** A row's copy (its values are strings, numbers and null: a shallow copy is a whole one). */
const copy = (row: unknown): unknown => ({ ...(row as object) });

/**
 * Parameters whose JSON names them exactly as SQLite binds them: strings,
 * finite numbers and null. Others (Infinity and NaN print as null, a Date as
 * its string, a bigint not at all) run as they are, never kept.
 */
function keyable(parameters: readonly unknown[]): boolean {
  return parameters.every((value) => value === null || typeof value === "string" || (typeof value === "number" && Number.isFinite(value)));
}

const WATCHES = new WeakMap<object, ChangeWatch>();

/** `db`, known from now on to be watched by `watch` (openSqlite's). */
export function keepChangeWatch<D extends object>(db: D, watch: ChangeWatch): D {
  WATCHES.set(db, watch);
  return db;
}

/** The watch of the SQLite database behind `db`; undefined for one openSqlite did not open (PostgreSQL, a test's own). */
export function changeWatchOf(db: object): ChangeWatch | undefined {
  return WATCHES.get(db);
}
