/**
 * PostgreSQL, for any number of stateless instances: the same schema and
 * vault as SQLite (whose refresh lock, a lease row, already works across
 * processes), on a pool of connections.
 */
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Database } from "./schema.js";

/** Schema names we create: letters, digits and underscores, so they never need quoting tricks. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export type PostgresOptions = {
  url: string;
  /** A schema of its own (tests give each run one); `public` when left out. */
  schema?: string;
  /** Pool size per instance. */
  maxConnections?: number;
  applicationName?: string;
};

export async function openPostgres(options: PostgresOptions): Promise<Kysely<Database>> {
  const schema = options.schema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  if (schema) {
    const client = new pg.Client({ connectionString: options.url });
    await client.connect();
    try {
      await client.query(`create schema if not exists "${schema}"`);
    } catch (error) {
      // Two instances starting together both create it: "if not exists" is not safe against a concurrent
      // create, which loses with a unique violation (or duplicate_schema). The schema is there either way.
      const code = (error as { code?: unknown }).code;
      if (code !== "23505" && code !== "42P06") throw error;
    } finally {
      await client.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    // Fail fast when the server is down, so a request gets a clear 503 instead of hanging.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // Names our sessions in pg_stat_activity (operators, and the fault test, find them by it).
    application_name: options.applicationName ?? (schema ? `autoflow-integrations:${schema}` : "autoflow-integrations"),
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // A server restart or pg_terminate_backend kills connections. The pool replaces idle ones (its "error"
  // event); a connection checked out at that moment emits "error" on its own client, which would crash
  // the process without a listener. The query on it fails and is answered 503; nothing else to do.
  pool.on("error", () => undefined);
  pool.on("connect", (client) => {
    client.on("error", () => undefined);
  });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
