/** Opens the vault the configuration names (SQLite by default, PostgreSQL with a URL), migrated and ready. */
import type { Kysely } from "kysely";
import { Keyring } from "./keyring.js";
import { migrateToLatest } from "./migrations.js";
import { openPostgres, PostgresVault } from "./postgres.js";
import type { Database } from "./schema.js";
import { openSqlite } from "./sqlite.js";
import { SqlSandboxStore } from "./sandboxStore.js";
import { SqlVault } from "./sqlVault.js";

export { Keyring, parseEncryptionKey, DecryptionError } from "./keyring.js";
export { loadEncryptionKey, loadKeyring } from "./keyFile.js";
export { migrateToLatest, pendingMigrations, ping } from "./migrations.js";
export { SqlVault, type RewrapReport } from "./sqlVault.js";
export { PostgresVault } from "./postgres.js";
export { SqlSandboxStore } from "./sandboxStore.js";

export type StoreDialect = "sqlite" | "postgres";

export type OpenedStore = {
  db: Kysely<Database>;
  vault: SqlVault;
  /** Where the sandboxes keep what they issued. */
  sandboxes: SqlSandboxStore;
  keyring: Keyring;
  dialect: StoreDialect;
  /** PostgreSQL schema the store lives in (undefined on SQLite). */
  schema?: string;
  close(): Promise<void>;
};

export type StoreOptions = {
  keys: Buffer[];
  /** Apply pending migrations on open (the default); `migrate` does it explicitly otherwise. */
  migrate?: boolean;
} & ({ sqlitePath: string; postgres?: undefined } | { postgres: { url: string; schema?: string; maxConnections?: number }; sqlitePath?: undefined });

export async function openStore(options: StoreOptions): Promise<OpenedStore> {
  const keyring = new Keyring(options.keys);
  const dialect: StoreDialect = options.postgres ? "postgres" : "sqlite";
  const db = options.postgres ? await openPostgres(options.postgres) : openSqlite(options.sqlitePath as string);
  const schema = options.postgres ? (options.postgres.schema ?? "public") : undefined;
  try {
    if (options.migrate !== false) await migrateToLatest(db as Kysely<unknown>, schema);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const vault = dialect === "postgres" ? new PostgresVault(db, keyring) : new SqlVault(db, keyring);
  return { db, vault, sandboxes: new SqlSandboxStore(db), keyring, dialect, ...(schema ? { schema } : {}), close: () => db.destroy() };
}
