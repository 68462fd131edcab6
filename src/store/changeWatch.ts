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

/** How many carried writes (ChangeWatch.carry) are remembered; a result kept from before the oldest is read anew. */
export const WRITES_CARRIED = 256;

/** How ChangeWatch.carry carries a write: into which kept queries, and what a run with these parameters changed. */
export type Carrier = {
  into: readonly string[];
  change(parameters: readonly unknown[]): { id: unknown; set: Readonly<Record<string, unknown>> };
};

/** A carried write: from the version it ran at to the one after it, the queries it is carried into, the row it changed (none: it changed nothing). */
type Carried = { to: string; into: ReadonlySet<string>; id?: unknown; set?: Readonly<Record<string, unknown>> };

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
   * Carries this connection's runs of `sql` into the results kept of the queries `into`, which then stay
   * current rather than going stale. `change` names, from a run's parameters, the row's id and the values
   * it sets, and the rows kept are patched with exactly those, so the caller promises what is not checked:
   * - `sql` is an UPDATE of at most one row of the table the queries read, found by its `id` column, bound
   *   with the id as that column stores it (a string for a TEXT id: rows are matched with `===`);
   * - it sets only TEXT columns, which none of the queries filters or orders by, and which each selects as
   *   it is (`select *`, not under another name or in an expression);
   * - no trigger on the table changes anything (better-sqlite3's `changes` leaves out a trigger's).
   * Checked: a value set that is not a string or null, a row kept whose id is not of the type named, or a
   * run that changed more than one row is not carried. A run that changed no row leaves what they kept as
   * it was. Results of other queries go stale, as after any write; so does everything after a run inside a
   * transaction, after another connection's commit or another write, or after one that fails. Carried into
   * a kept result when it is next read, the last {@link WRITES_CARRIED} at most.
   */
  carry(sql: string, carrier: Carrier): void;
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
  const dataVersion = (): string | undefined => {
    if (sqlite.inTransaction || open > 0) return undefined;
    try {
      return String(probe.get());
    } catch {
      // Unreadable now (a lock held through the busy timeout, a closed database): no version, so nothing kept is used.
      return undefined;
    }
  };
  const version = (): string | undefined => {
    const data = dataVersion();
    return data === undefined ? undefined : `${writes}:${data}`;
  };
  const kept = new Map<string, LRUCache<string, { version: string; rows: readonly unknown[] }>>();
  const answered = { fromMemory: 0, fromDatabase: 0 };
  const carriers = new Map<string, { into: ReadonlySet<string>; change: Carrier["change"] }>();
  // Carried writes by the version each ran at, oldest first: each version has at most one write after it.
  const carried = new Map<string, Carried>();
  /** The rows `found` of query `sql` brought to version `now` along the writes carried since it was read; undefined when they do not reach it. */
  const carriedTo = (sql: string, found: { version: string; rows: readonly unknown[] }, now: string): readonly unknown[] | undefined => {
    let rows = found.rows;
    for (let at = found.version; at !== now; ) {
      const next = carried.get(at);
      if (!next || !next.into.has(sql)) return undefined;
      if (next.set) {
        const { id, set } = next;
        // An id of another type may still be the same row to SQLite (2 and "2"): not known here, so read again.
        if (rows.some((row) => typeof (row as { id?: unknown }).id !== typeof id)) return undefined;
        rows = rows.map((row) => ((row as { id?: unknown }).id === id ? { ...(row as object), ...set } : row));
      }
      at = next.to;
    }
    return rows;
  };
  /**
   * After a run of a carried write that ran at `before`: remembered as the step from there to the version
   * after it. Another connection's commit just before it (after `before` was read) needs no check here: the
   * step ends at `before`'s data_version, which is then no longer the database's, so no read reaches it.
   */
  const carryRun = (before: { writes: number; data: string }, into: ReadonlySet<string>, change: ReturnType<Carrier["change"]>, changes: number): void => {
    if (changes !== 0 && changes !== 1) return;
    if (changes === 1 && !Object.values(change.set).every((value) => value === null || typeof value === "string")) return;
    carried.set(`${before.writes}:${before.data}`, { to: `${before.writes + 1}:${before.data}`, into, ...(changes === 1 ? { id: change.id, set: change.set } : {}) });
    if (carried.size > WRITES_CARRIED) carried.delete(carried.keys().next().value as string);
  };
  const watched = (statement: ReturnType<Watched["prepare"]>, sql: string): SqliteStatement & { readonly busy?: boolean } => {
    const writing = statement.readonly === false;
    const read = (parameters: readonly unknown[]): unknown[] => {
      const results = kept.get(sql);
      const now = results && keyable(parameters) ? version() : undefined;
      if (!results || now === undefined) return statement.all(parameters);
      const key = JSON.stringify(parameters);
      const found = results.get(key);
      const current = found && (found.version === now ? found.rows : carriedTo(sql, found, now));
      if (current) {
        answered.fromMemory++;
        if (current !== found?.rows) results.set(key, { version: now, rows: current });
        return current.map(copy);
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
        const carrier = writing ? carriers.get(sql) : undefined;
        const data = carrier ? dataVersion() : undefined;
        const before = data === undefined ? undefined : { writes, data };
        let result: ReturnType<typeof statement.run>;
        try {
          result = statement.run(parameters);
        } finally {
          if (writing) writes++;
        }
        if (carrier && before) {
          let change: ReturnType<Carrier["change"]> | undefined;
          try {
            change = carrier.change(parameters);
          } catch {
            // Not known what it changed: not carried, so what is kept goes stale (the write itself stands).
          }
          if (change) carryRun(before, carrier.into, change, Number(result.changes));
        }
        return result;
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
    carry(sql, carrier) {
      carriers.set(sql, { into: new Set(carrier.into), change: carrier.change });
    },
    forget() {
      for (const results of kept.values()) results.clear();
      carried.clear();
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
