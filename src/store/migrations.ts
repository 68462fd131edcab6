/**
 * Schema migrations, in code so that they ship inside the build and run the
 * same on SQLite and PostgreSQL (only portable types: text and integer, and
 * bigint for epoch milliseconds, which SQLite stores as its 64-bit integer).
 * Append new migrations; never edit one that has shipped.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from "kysely";

const migrations: Record<string, Migration> = {
  "0001_connections_and_oauth_states": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("connections")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("user_id", "text", (c) => c.notNull())
        .addColumn("provider", "text", (c) => c.notNull())
        .addColumn("auth_method", "text", (c) => c.notNull())
        .addColumn("token_masked", "text", (c) => c.notNull())
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("metadata", "text", (c) => c.notNull())
        .addColumn("data_key_wrapped", "text")
        .addColumn("access_token_enc", "text")
        .addColumn("refresh_token_enc", "text")
        .addColumn("access_token_expires_at", "text")
        .addColumn("access_token_issued_at", "text")
        .addColumn("token_refresh_status", "text", (c) => c.notNull())
        .addColumn("last_health", "text")
        .addColumn("version", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addColumn("revoked_at", "text")
        .addColumn("provider_revoked_at", "text")
        .addColumn("base_url", "text")
        .execute();
      await db.schema
        .createIndex("connections_user_provider_created")
        .on("connections")
        .columns(["user_id", "provider", "created_at"])
        .execute();
      await db.schema
        .createTable("oauth_states_used")
        .addColumn("state_hash", "text", (c) => c.primaryKey())
        .addColumn("provider", "text", (c) => c.notNull())
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addColumn("used_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("oauth_states_used_expires").on("oauth_states_used").column("expires_at").execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("oauth_states_used").execute();
      await db.schema.dropTable("connections").execute();
    },
  },
  "0002_refresh_leases": {
    async up(db: Kysely<unknown>) {
      // The refresh lock as a lease row: no database connection is held while the provider answers.
      await db.schema
        .createTable("refresh_leases")
        .addColumn("connection_id", "text", (c) => c.primaryKey())
        .addColumn("holder", "text", (c) => c.notNull())
        .addColumn("expires_at", "text", (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("refresh_leases").execute();
    },
  },
  "0003_revocation_outcome": {
    async up(db: Kysely<unknown>) {
      // How the provider revocation of a disconnect went, so that a repeated DELETE answers the same truth.
      await db.schema.alterTable("connections").addColumn("provider_revocation", "text").execute();
      await sql`update connections set provider_revocation = 'revoked' where provider_revoked_at is not null`.execute(db);
      await sql`update connections set provider_revocation = 'pending'
        where revoked_at is not null and provider_revoked_at is null and access_token_enc is not null`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable("connections").dropColumn("provider_revocation").execute();
      },
    },
  "0004_sandbox_state": {
    // What the sandboxes issued and were written, kept where the service keeps its own state,
    // so a restart, a second instance and a CLI command all meet the same sandbox.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("sandbox_states")
        .addColumn("provider", "text", (c) => c.primaryKey())
        .addColumn("client_id", "text", (c) => c.notNull())
        .addColumn("client_secret", "text", (c) => c.notNull())
        .addColumn("url", "text")
        // The process whose writes are taken: claimed by whoever serves the sandbox, checked on every write.
        .addColumn("owner", "text")
        .addColumn("state", "text")
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("sandbox_redirect_uris")
        .addColumn("provider", "text", (c) => c.notNull())
        .addColumn("uri", "text", (c) => c.notNull())
        .addColumn("registered_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("sandbox_redirect_uris_pk", ["provider", "uri"])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("sandbox_redirect_uris").execute();
      await db.schema.dropTable("sandbox_states").execute();
    },
  },
  "0005_rate_windows": {
    // The pacer's budget per provider account, shared by the instances on one PostgreSQL (see pgRateWindows.ts).
    // SQLite gets the table too, so both databases keep one list of migrations; its single process paces in memory.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("rate_windows")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("limit_count", "integer")
        .addColumn("remaining", "integer")
        // Epoch milliseconds of the instances' clocks, as the provider signals are.
        .addColumn("reset_at", "bigint")
        .addColumn("window_ms", "bigint")
        .addColumn("hold_until", "bigint")
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("rate_windows").execute();
    },
  },
  "0006_ticket_mirror": {
    // The Jira ticket sync: each connection's copy of its issues, the change feed, the sync's own state
    // (cursor, run in progress, last run, webhooks), received deliveries and the idempotency keys of pushes.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("ticket_sync_states")
        .addColumn("connection_id", "text", (c) => c.primaryKey())
        // Whose connection it is, for the scheduler's runs (no request names the user then).
        .addColumn("user_id", "text")
        // The configuration (JSON), as PUT .../sync/config stored it; null until one is.
        .addColumn("config", "text")
        // The newest `updated` applied (epoch ms), and the account's time zone it is written in.
        .addColumn("cursor_ms", "bigint")
        // What the cursor was read over (site, scope, fields): a cursor of another scope is no cursor.
        .addColumn("cursor_scope", "text")
        .addColumn("time_zone", "text")
        // A run in progress: its JQL and the page token after the last committed page (JSON).
        .addColumn("run", "text")
        .addColumn("last_run", "text")
        .addColumn("webhooks", "text")
        .addColumn("last_delete_scan_at", "text")
        // The change feed's next sequence number: taken under this row's lock.
        .addColumn("next_event_seq", "bigint", (c) => c.notNull().defaultTo(1))
        // Which instance runs this connection's sync, until when (epoch ms): one run at a time across instances.
        .addColumn("lease_owner", "text")
        .addColumn("lease_until", "bigint")
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("tickets")
        .addColumn("connection_id", "text", (c) => c.notNull())
        .addColumn("issue_id", "text", (c) => c.notNull())
        .addColumn("issue_key", "text", (c) => c.notNull())
        .addColumn("project", "text")
        .addColumn("summary", "text")
        .addColumn("status", "text")
        .addColumn("assignee", "text")
        .addColumn("priority", "text")
        .addColumn("labels", "text", (c) => c.notNull())
        .addColumn("description_text", "text")
        .addColumn("description_adf", "text")
        .addColumn("created", "text")
        .addColumn("updated", "text", (c) => c.notNull())
        .addColumn("updated_ms", "bigint", (c) => c.notNull())
        .addColumn("fields", "text", (c) => c.notNull())
        .addColumn("deleted_at", "text")
        .addColumn("mirrored_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("tickets_pk", ["connection_id", "issue_id"])
        .execute();
      await db.schema.createIndex("tickets_connection_key").on("tickets").columns(["connection_id", "issue_key"]).execute();
      await db.schema.createIndex("tickets_connection_updated").on("tickets").columns(["connection_id", "updated_ms", "issue_id"]).execute();
      await db.schema
        .createTable("ticket_events")
        .addColumn("connection_id", "text", (c) => c.notNull())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("issue_id", "text", (c) => c.notNull())
        .addColumn("issue_key", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("origin", "text", (c) => c.notNull())
        .addColumn("changed_fields", "text", (c) => c.notNull())
        .addColumn("updated", "text")
        .addColumn("at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("ticket_events_pk", ["connection_id", "seq"])
        .execute();
      await db.schema
        .createTable("ticket_webhook_deliveries")
        .addColumn("identifier", "text", (c) => c.primaryKey())
        .addColumn("connection_id", "text", (c) => c.notNull())
        .addColumn("received_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("ticket_webhook_deliveries_received").on("ticket_webhook_deliveries").column("received_at").execute();
      await db.schema
        .createTable("ticket_idempotency_keys")
        .addColumn("connection_id", "text", (c) => c.notNull())
        .addColumn("idempotency_key", "text", (c) => c.notNull())
        // What the first request asked (a hash): the same key with another request is refused.
        .addColumn("request_hash", "text", (c) => c.notNull())
        // pending while the first request runs; then its answer (status and JSON body).
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("status", "integer")
        .addColumn("response", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("ticket_idempotency_keys_pk", ["connection_id", "idempotency_key"])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable("ticket_idempotency_keys").execute();
      await db.schema.dropTable("ticket_webhook_deliveries").execute();
      await db.schema.dropTable("ticket_events").execute();
      await db.schema.dropTable("tickets").execute();
      await db.schema.dropTable("ticket_sync_states").execute();
    },
  },
  "0007_scan_indexes": {
    // The jobs' scans read the few rows due out of every connection: each has an index holding only
    // those (partial: the conditions are the scans' own, written as they write them), in the scan's
    // order (the refresh-ahead scan's expiry then id). scanIndexes.test.ts checks both planners.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createIndex("connections_refresh_due")
        .on("connections")
        .columns(["access_token_expires_at", "id"])
        .where(sql.ref("revoked_at"), "is", null)
        .where(sql.ref("refresh_token_enc"), "is not", null)
        .execute();
      await db.schema
        .createIndex("connections_revocation_owed")
        .on("connections")
        .column("id")
        .where(sql.ref("revoked_at"), "is not", null)
        .where(sql.ref("provider_revoked_at"), "is", null)
        .where(sql.ref("access_token_enc"), "is not", null)
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex("connections_revocation_owed").execute();
      await db.schema.dropIndex("connections_refresh_due").execute();
    },
  },
  "0008_scan_indexes_exact": {
    // The refresh-ahead scan reads healthy connections only: connections_refresh_due also held those
    // whose refresh failed (status failed: the user must connect again), which keep their past expiry for
    // good and pile up ahead of the due ones in expiry order, so the scan stepped over all of them on
    // every run. Its successor holds exactly what the scan reads. The health sweep reads the active
    // connections by id: connections_active holds only those, so the disconnected ones (kept for
    // their audit trail) are not stepped over either once they are many (while they are few, the
    // primary key serves as well, and a planner may take either).
    async up(db: Kysely<unknown>) {
      await db.schema
        .createIndex("connections_refresh_due_healthy")
        .on("connections")
        .columns(["access_token_expires_at", "id"])
        .where(sql.ref("revoked_at"), "is", null)
        .where(sql.ref("refresh_token_enc"), "is not", null)
        .where(sql.ref("token_refresh_status"), "=", sql.lit("healthy"))
        .execute();
      await db.schema.dropIndex("connections_refresh_due").execute();
      await db.schema.createIndex("connections_active").on("connections").column("id").where(sql.ref("revoked_at"), "is", null).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex("connections_active").execute();
      await db.schema
        .createIndex("connections_refresh_due")
        .on("connections")
        .columns(["access_token_expires_at", "id"])
        .where(sql.ref("revoked_at"), "is", null)
        .where(sql.ref("refresh_token_enc"), "is not", null)
        .execute();
      await db.schema.dropIndex("connections_refresh_due_healthy").execute();
    },
  },
};

class InCodeMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

export const MIGRATION_NAMES: readonly string[] = Object.keys(migrations);

/**
 * The migrator. On PostgreSQL its bookkeeping tables must be looked up in our
 * own schema: Kysely otherwise finds another schema's `kysely_migration_lock`
 * by name and then fails to use it through our search_path.
 */
function migratorFor(db: Kysely<unknown>, schema: string | undefined): Migrator {
  return new Migrator({ db, provider: new InCodeMigrationProvider(), ...(schema ? { migrationTableSchema: schema } : {}) });
}

/**
 * Whether `error` is PostgreSQL's "schema does not exist" for a schema other
 * than ours. Kysely's introspector lists the tables of every schema on the
 * server to find its own bookkeeping tables; a schema that another database
 * user drops meanwhile (another test run's, another tenant's) fails that
 * listing, and the answer is to list again.
 */
function isOtherSchemaDropped(error: unknown, schema: string | undefined): boolean {
  const e = error as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  if (!e) return false;
  if (e.code === "3F000") return typeof e.message !== "string" || schema === undefined || !e.message.includes(`"${schema}"`);
  return e.cause !== undefined && e.cause !== error && isOtherSchemaDropped(e.cause, schema);
}

/** How often a migration run is tried again after another schema vanished under the introspector. */
const DROPPED_SCHEMA_RETRIES = 5;

/** Applies every pending migration; throws with the failing migration's name. `schema`: PostgreSQL only. */
export async function migrateToLatest(db: Kysely<unknown>, schema?: string): Promise<string[]> {
  const migrator = migratorFor(db, schema);
  let outcome = await migrator.migrateToLatest();
  for (let retry = 0; retry < DROPPED_SCHEMA_RETRIES && outcome.error && isOtherSchemaDropped(outcome.error, schema); retry++) {
    outcome = await migrator.migrateToLatest();
  }
  const { error, results } = outcome;
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** Names of the migrations not yet applied (for readiness checks). */
export async function pendingMigrations(db: Kysely<unknown>, schema?: string): Promise<string[]> {
  const migrator = migratorFor(db, schema);
  let all;
  for (let retry = 0; ; retry++) {
    try {
      all = await migrator.getMigrations();
      break;
    } catch (error) {
      if (retry >= DROPPED_SCHEMA_RETRIES || !isOtherSchemaDropped(error, schema)) throw error;
    }
  }
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/** A trivial round trip, for readiness. */
export async function ping(db: Kysely<unknown>): Promise<void> {
  await sql`select 1`.execute(db);
}
