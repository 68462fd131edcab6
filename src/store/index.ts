/**
 * Opens the vault the configuration names (SQLite by default, PostgreSQL with
 * a URL), migrated and ready. Each driver is loaded when a store asks for it
 * (`openDatabase`): the SDK entry re-exports this module, and an application
 * on SQLite should not load pg, nor one on PostgreSQL better-sqlite3.
 */
import { SqlOperations } from "./operations.js";
import { sql, type Kysely } from "kysely";
import { MemoryRateWindows, type RateWindowStore } from "../integrations/shared/pacing.js";
import { Keyring } from "./keyring.js";
import { MIGRATION_NAMES, migrateToLatest, pendingMigrations } from "./migrations.js";
import type { PostgresOptions } from "./postgres.js";
import type { Database } from "./schema.js";
import { SqlSandboxStore } from "./sandboxStore.js";
import { checkedOpenedTokensKept, OPENED_TOKENS_KEPT, SqlVault } from "./sqlVault.js";
import { PgRateWindows } from "./pgRateWindows.js";

export { Keyring, parseEncryptionKey, DecryptionError } from "./keyring.js";
export { loadEncryptionKey, loadKeyring } from "./keyFile.js";
export { migrateToLatest, pendingMigrations, ping } from "./migrations.js";
export { SqlVault, type RewrapReport } from "./sqlVault.js";
export { SqlSandboxStore } from "./sandboxStore.js";
export { PgRateWindows } from "./pgRateWindows.js";

export type { StoreDialect } from "./schema.js";
import type { StoreDialect } from "./schema.js";

/**
 * The store holds data keys wrapped under keys this instance does not have:
 * it could open none of those connections (and, on a shared database, it
 * most likely seals OAuth states that the other instances cannot open
 * either). Refusing to start says so at once, by key id.
 */
export class MissingEncryptionKeysError extends Error {
  override readonly name = "MissingEncryptionKeysError";
  constructor(
    readonly missingKeyIds: readonly string[],
    readonly loadedKeyIds: readonly string[],
  ) {
    super(
      `the database holds connections encrypted under key id${missingKeyIds.length === 1 ? "" : "s"} ${missingKeyIds.join(", ")}, ` +
        `which this instance does not have (it has ${loadedKeyIds.join(", ")}): set AUTOFLOW_ENCRYPTION_KEY to the key the other instances use ` +
        "(and AUTOFLOW_ENCRYPTION_KEYS_OLD to the old ones while rotate-keys runs)",
    );
  }
}

/**
 * Key ids the stored data keys are wrapped under that `keyring` lacks. A
 * wrapped key's first 9 bytes (format version and key id) are exactly its
 * first 12 base64url characters, so the database lists the distinct ids
 * without reading every row into memory.
 */
export async function missingKeyIds(db: Kysely<Database>, keyring: Keyring): Promise<string[]> {
  const rows = await db
    .selectFrom("connections")
    .select(sql<string>`substr(data_key_wrapped, 1, 12)`.as("prefix"))
    .where("data_key_wrapped", "is not", null)
    .distinct()
    .execute();
  const ids = new Set(rows.map((row) => Buffer.from(row.prefix, "base64url").subarray(1, 9).toString("hex")));
  return [...ids].filter((id) => !keyring.hasKey(id)).sort();
}

export type OpenedStore = {
  db: Kysely<Database>;
  vault: SqlVault;
  /** Where the sandboxes keep what they issued. */
  sandboxes: SqlSandboxStore;
  /** What the operator view and the metrics read across every user. */
  operations: SqlOperations;
  keyring: Keyring;
  dialect: StoreDialect;
  /** PostgreSQL schema the store lives in (undefined on SQLite). */
  schema?: string;
  close(): Promise<void>;
};

/** Where a store lives: a SQLite file (or ":memory:"), or a PostgreSQL database. */
export type DatabaseLocation = { sqlitePath: string } | { postgres: PostgresOptions };

/** Opens the database of `location` (not migrated), loading only the driver it needs. */
export async function openDatabase(location: DatabaseLocation): Promise<Kysely<Database>> {
  if ("postgres" in location) {
    const { openPostgres } = await import("./postgres.js");
    return openPostgres(location.postgres);
  }
  const { openSqlite } = await import("./sqlite.js");
  return openSqlite(location.sqlitePath);
}

export type StoreOptions = {
  keys: Buffer[];
  /** Apply pending migrations on open (the default); `migrate` does it explicitly otherwise. */
  migrate?: boolean;
  /** How many connections' opened tokens the vault keeps in memory (OPENED_TOKENS_KEPT, 4,096, by default). */
  openedTokensKept?: number;
} & ({ sqlitePath: string; postgres?: undefined } | { postgres: { url: string; schema?: string; maxConnections?: number }; sqlitePath?: undefined });

export async function openStore(options: StoreOptions): Promise<OpenedStore> {
  const keyring = new Keyring(options.keys);
  // Refused before the database is opened, so nothing is left open behind the error.
  const openedTokensKept = checkedOpenedTokensKept(options.openedTokensKept ?? OPENED_TOKENS_KEPT);
  const dialect: StoreDialect = options.postgres ? "postgres" : "sqlite";
  const db = await openDatabase(options.postgres ? { postgres: options.postgres } : { sqlitePath: options.sqlitePath as string });
  const schema = options.postgres ? (options.postgres.schema ?? "public") : undefined;
  try {
    if (options.migrate !== false) await migrateToLatest(db as Kysely<unknown>, schema);
    // A store whose tables do not exist yet (migrate: false, before `migrate`) holds nothing to open.
    const hasTables = options.migrate !== false || !(await pendingMigrations(db as Kysely<unknown>, schema)).includes(MIGRATION_NAMES[0] as string);
    if (hasTables) {
      const missing = await missingKeyIds(db, keyring);
      if (missing.length > 0) throw new MissingEncryptionKeysError(missing, keyring.keyIds);
    }
  } catch (error) {
    await db.destroy();
    throw error;
  }
  // One vault for both databases: its refresh lock (a lease row) works across processes as it is.
  const vault = new SqlVault(db, keyring, undefined, { openedTokensKept });
  return { db, vault, sandboxes: new SqlSandboxStore(db), operations: new SqlOperations(db, dialect), keyring, dialect, ...(schema ? { schema } : {}), close: () => db.destroy() };
}

/**
 * Where the pacer keeps its budgets for a store: PostgreSQL, which several
 * instances share, keeps them in its `rate_windows` table so that one budget
 * holds for all; SQLite serves one process, which keeps them in memory.
 */
export function rateWindowsFor(store: Pick<OpenedStore, "db" | "dialect">): RateWindowStore {
  return store.dialect === "postgres" ? new PgRateWindows(store.db) : new MemoryRateWindows();
}
