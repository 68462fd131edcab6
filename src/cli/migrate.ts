/** `migrate`: applies the database migrations and exits. */
import type { Kysely } from "kysely";
import { loadConfig } from "../config.js";
import { storeLocation } from "../service.js";
import { migrateToLatest } from "../store/migrations.js";
import { openDatabase } from "../store/index.js";
import type { CommandIo } from "./command.js";

export async function migrate(io: CommandIo): Promise<number> {
  const config = loadConfig(io.env);
  const location = storeLocation(config);
  const db = await openDatabase(location);
  try {
    const applied = await migrateToLatest(db as Kysely<unknown>, "postgres" in location ? (location.postgres.schema ?? "public") : undefined);
    io.out(applied.length === 0 ? "database is up to date\n" : `applied: ${applied.join(", ")}\n`);
    return 0;
  } finally {
    await db.destroy();
  }
}
