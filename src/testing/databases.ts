/** The databases this test run covers: SQLite always, PostgreSQL when test/globalSetup.ts found one. */
import { randomBytes } from "node:crypto";
import BetterSqlite from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect, type CompiledQuery, type LogEvent } from "kysely";
import pg from "pg";
import { inject } from "vitest";
import type { Database } from "../store/schema.js";

export type TestDatabase = "sqlite" | "postgres";

export function testDatabases(): TestDatabase[] {
  return inject("postgresUrl") ? ["sqlite", "postgres"] : ["sqlite"];
}

/** A fresh schema name for one harness or store, under this run's prefix. */
export function newSchemaName(): string {
  return `${inject("schemaPrefix")}${randomBytes(5).toString("hex")}`;
}

export function postgresUrl(): string {
  const url = inject("postgresUrl");
  if (!url) throw new Error("no PostgreSQL in this run");
  return url;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

/** Where a test store lives: a SQLite file (or memory), or a PostgreSQL schema. */
export type StoreLocation = { sqlitePath: string } | { postgres: { url: string; schema: string } };

/** A fresh, empty location on `database`, and how to remove it afterwards. */
export function freshLocation(database: TestDatabase, sqlitePath = ":memory:"): { location: StoreLocation; dispose(): Promise<void> } {
  if (database === "sqlite") return { location: { sqlitePath }, dispose: async () => undefined };
  const schema = newSchemaName();
  return { location: { postgres: { url: postgresUrl(), schema } }, dispose: () => dropSchema(schema) };
}

/**
 * A second handle on the store at `location` (a SQLite file or a PostgreSQL
 * schema) that records every statement it sends with its bound values: a
 * SqlVault over it shows what the vault runs.
 */
export function watchedDatabase(location: StoreLocation): { db: Kysely<Database>; sent: CompiledQuery[] } {
  const sent: CompiledQuery[] = [];
  const log = (event: LogEvent) => void (event.level === "query" && sent.push(event.query));
  if ("sqlitePath" in location) {
    if (location.sqlitePath === ":memory:") throw new Error("watchedDatabase: a second handle on :memory: is another database; give the store a file");
    return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite(location.sqlitePath) }), log }), sent };
  }
  const pool = new pg.Pool({ connectionString: location.postgres.url, max: 1, options: `-c search_path=${location.postgres.schema}` });
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log }), sent };
}
