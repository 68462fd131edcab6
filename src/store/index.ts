/** Opens the vault the configuration names, migrated and ready. */
import type { Kysely } from "kysely";
import { Keyring } from "./keyring.js";
import { migrateToLatest } from "./migrations.js";
import type { Database } from "./schema.js";
import { openSqlite } from "./sqlite.js";
import { SqlVault } from "./sqlVault.js";

export { Keyring, parseEncryptionKey, DecryptionError } from "./keyring.js";
export { loadEncryptionKey } from "./keyFile.js";
export { migrateToLatest, pendingMigrations, ping } from "./migrations.js";
export { SqlVault } from "./sqlVault.js";

export type OpenedStore = {
  db: Kysely<Database>;
  vault: SqlVault;
  keyring: Keyring;
  dialect: "sqlite";
  close(): Promise<void>;
};

export async function openStore(options: { sqlitePath: string; keys: Buffer[]; migrate?: boolean }): Promise<OpenedStore> {
  const db = openSqlite(options.sqlitePath);
  if (options.migrate !== false) await migrateToLatest(db as Kysely<unknown>);
  const keyring = new Keyring(options.keys);
  return { db, vault: new SqlVault(db, keyring), keyring, dialect: "sqlite", close: () => db.destroy() };
}
