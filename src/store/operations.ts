/**
 * What operators read across every user: connections by provider and health
 * status, the ones down and why, refreshes that failed for good, revocations
 * still owed at a provider, and the Jira ticket syncs' runs. Read-only, no
 * secrets: the columns selected here never include a ciphertext.
 */
import { sql, type Kysely } from "kysely";
import type { Database, StoreDialect } from "./schema.js";

/** A connection's last recorded health status, or `unchecked` before its first probe: the labels every report uses. */
export const HEALTH_STATUS_LABELS = ["ok", "degraded", "down", "unchecked"] as const;
export type HealthStatusLabel = (typeof HEALTH_STATUS_LABELS)[number];

/** Active connections of one provider in one health status. */
export type HealthCount = { provider: string; status: HealthStatusLabel; count: number };

/** A connection as the operator view lists it: who, which, and its last health (no credential). */
export type OperatedConnection = {
  id: string;
  provider: string;
  userId: string;
  authMethod: string;
  tokenRefreshStatus: string;
  status: HealthStatusLabel;
  checkedAt?: string;
  errorType?: string;
  message?: string;
  updatedAt: string;
};

export type OwedRevocation = { id: string; provider: string; userId: string; revokedAt: string; revocation?: string };

export type TicketSyncRow = {
  connectionId: string;
  userId?: string;
  configured: boolean;
  cursorAt?: string;
  run?: unknown;
  lastRun?: unknown;
  updatedAt: string;
};

const STATUSES: readonly string[] = HEALTH_STATUS_LABELS;

export class SqlOperations {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: StoreDialect,
  ) {}

  /** The health status inside the stored JSON, read by the database (no row is decoded here). */
  private statusExpr() {
    return this.dialect === "postgres"
      ? sql<string | null>`(last_health::jsonb ->> 'status')`
      : sql<string | null>`json_extract(last_health, '$.status')`;
  }

  async healthCounts(): Promise<HealthCount[]> {
    const status = this.statusExpr();
    const rows = await this.db
      .selectFrom("connections")
      .select(["provider", status.as("status"), (eb) => eb.fn.countAll<string | number>().as("count")])
      .where("revoked_at", "is", null)
      .groupBy(["provider", status])
      .execute();
    const counts = new Map<string, HealthCount>();
    for (const row of rows) {
      const label = STATUSES.includes(row.status as HealthStatusLabel) ? (row.status as HealthStatusLabel) : "unchecked";
      const key = `${row.provider} ${label}`;
      const found = counts.get(key);
      if (found) found.count += Number(row.count);
      else counts.set(key, { provider: row.provider, status: label, count: Number(row.count) });
    }
    return [...counts.values()].sort((a, b) => a.provider.localeCompare(b.provider) || STATUSES.indexOf(a.status) - STATUSES.indexOf(b.status));
  }

  /** Active connections whose last probe said down, most recently updated first. */
  async down(limit: number): Promise<OperatedConnection[]> {
    const rows = await this.connectionRows().where(this.statusExpr(), "=", "down").limit(limit).execute();
    return rows.map(operated);
  }

  /** Active connections whose refresh failed for good (the user must connect again), most recent first. */
  async refreshFailures(limit: number): Promise<OperatedConnection[]> {
    const rows = await this.connectionRows().where("token_refresh_status", "=", "failed").limit(limit).execute();
    return rows.map(operated);
  }

  /** Disconnected connections whose revocation the provider has not confirmed, the credential kept for the retry. */
  async owedRevocations(limit: number): Promise<OwedRevocation[]> {
    const rows = await this.db
      .selectFrom("connections")
      .select(["id", "provider", "user_id", "revoked_at", "provider_revocation"])
      .where("revoked_at", "is not", null)
      .where("provider_revoked_at", "is", null)
      .where("access_token_enc", "is not", null)
      .orderBy("revoked_at", "desc")
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      provider: r.provider,
      userId: r.user_id,
      revokedAt: r.revoked_at as string,
      ...(r.provider_revocation ? { revocation: r.provider_revocation } : {}),
    }));
  }

  /** Every Jira connection's ticket sync: its run in progress and its last, most recently active first. */
  async ticketSyncs(limit: number): Promise<TicketSyncRow[]> {
    const rows = await this.db
      .selectFrom("ticket_sync_states")
      .select(["connection_id", "user_id", "config", "cursor_ms", "run", "last_run", "updated_at"])
      .orderBy("updated_at", "desc")
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      connectionId: r.connection_id,
      ...(r.user_id ? { userId: r.user_id } : {}),
      configured: r.config !== null,
      ...(r.cursor_ms === null ? {} : { cursorAt: new Date(Number(r.cursor_ms)).toISOString() }),
      ...(r.run ? { run: JSON.parse(r.run) as unknown } : {}),
      ...(r.last_run ? { lastRun: JSON.parse(r.last_run) as unknown } : {}),
      updatedAt: r.updated_at,
    }));
  }

  private connectionRows() {
    return this.db
      .selectFrom("connections")
      .select(["id", "provider", "user_id", "auth_method", "token_refresh_status", "last_health", "updated_at"])
      .where("revoked_at", "is", null)
      .orderBy("updated_at", "desc");
  }
}

function operated(row: {
  id: string;
  provider: string;
  user_id: string;
  auth_method: string;
  token_refresh_status: string;
  last_health: string | null;
  updated_at: string;
}): OperatedConnection {
  const health = row.last_health ? (JSON.parse(row.last_health) as { status?: string; checkedAt?: string; errorType?: string; message?: string }) : undefined;
  const status = STATUSES.includes(health?.status as HealthStatusLabel) ? (health?.status as HealthStatusLabel) : "unchecked";
  return {
    id: row.id,
    provider: row.provider,
    userId: row.user_id,
    authMethod: row.auth_method,
    tokenRefreshStatus: row.token_refresh_status,
    status,
    ...(health?.checkedAt ? { checkedAt: health.checkedAt } : {}),
    ...(health?.errorType ? { errorType: health.errorType } : {}),
    ...(health?.message ? { message: health.message } : {}),
    updatedAt: row.updated_at,
  };
}
