/** Table types for Kysely. Timestamps are ISO-8601 UTC strings in both dialects. */
import type { ColumnType, Generated } from "kysely";

/** Which database the store runs on. */
export type StoreDialect = "sqlite" | "postgres";

export interface ConnectionsTable {
  id: string;
  user_id: string;
  provider: string;
  auth_method: string;
  token_masked: string;
  /** JSON array of scope names. */
  scopes: string;
  /** JSON object of the provider's public fields. */
  metadata: string;
  /** The connection's data key, wrapped by a key-encryption key (with its id); null once crypto-shredded. */
  data_key_wrapped: string | null;
  access_token_enc: string | null;
  refresh_token_enc: string | null;
  access_token_expires_at: string | null;
  access_token_issued_at: string | null;
  token_refresh_status: string;
  /** JSON of the last health probe. */
  last_health: string | null;
  version: Generated<number>;
  created_at: string;
  updated_at: string;
  revoked_at: string | null;
  provider_revoked_at: string | null;
  base_url: string | null;
  /** How the provider revocation went (`revoked`, `already_invalid`, `not_supported`, `pending`); null while connected. */
  provider_revocation: string | null;
}

/** Who holds a connection's refresh lock, until when (ISO-8601); a lapsed lease may be taken over. */
export interface RefreshLeasesTable {
  connection_id: string;
  holder: string;
  expires_at: string;
}

export interface OAuthStatesUsedTable {
  state_hash: string;
  provider: string;
  expires_at: string;
  used_at: string;
}

/** One provider's sandbox: its OAuth app and the snapshot of what it issued (devalue text). */
export interface SandboxStatesTable {
  provider: string;
  client_id: string;
  /** A sandbox app's secret: it opens nothing but that loopback sandbox. */
  client_secret: string;
  url: string | null;
  /** The serving process's claim; writes from any other are refused. */
  owner: string | null;
  state: string | null;
  updated_at: string;
}

export interface SandboxRedirectUrisTable {
  provider: string;
  uri: string;
  registered_at: string;
}

/** Epoch milliseconds in a bigint column: PostgreSQL's driver reads int8 as text, so read it with Number(). */
type Millis = ColumnType<string | number, number, number>;

/** The pacer's budget of one provider account (see integrations/shared/pacing.ts for the rules). */
export interface RateWindowsTable {
  key: string;
  limit_count: number | null;
  /** Calls left in the window ending at reset_at; null together with it. */
  remaining: number | null;
  reset_at: Millis | null;
  window_ms: Millis | null;
  hold_until: Millis | null;
  updated_at: Millis;
}

/** One Jira connection's ticket sync: configuration, cursor, the run in progress and the last, webhooks (JSON columns). */
export interface TicketSyncStatesTable {
  connection_id: string;
  user_id: string | null;
  config: string | null;
  cursor_ms: Millis | null;
  cursor_scope: string | null;
  time_zone: string | null;
  run: string | null;
  last_run: string | null;
  webhooks: string | null;
  last_delete_scan_at: string | null;
  next_event_seq: ColumnType<string | number, number | undefined, number>;
  lease_owner: string | null;
  lease_until: Millis | null;
  updated_at: string;
}

/** The mirror of one Jira issue, as the last applied change left it. */
export interface TicketsTable {
  connection_id: string;
  issue_id: string;
  issue_key: string;
  project: string | null;
  summary: string | null;
  status: string | null;
  /** JSON {accountId, displayName} or null. */
  assignee: string | null;
  priority: string | null;
  /** JSON array. */
  labels: string;
  description_text: string | null;
  /** The description as Jira's ADF (JSON), kept so an unchanged one goes back untouched. */
  description_adf: string | null;
  created: string | null;
  /** Jira's own `updated`, as it wrote it, and in epoch ms. */
  updated: string;
  updated_ms: Millis;
  /** JSON of every field the sync reads, as Jira answered them. */
  fields: string;
  deleted_at: string | null;
  mirrored_at: string;
}

/** The change feed: one row per applied change, numbered per connection. */
export interface TicketEventsTable {
  connection_id: string;
  seq: Millis;
  issue_id: string;
  issue_key: string;
  kind: string;
  origin: string;
  /** JSON array of field ids. */
  changed_fields: string;
  updated: string | null;
  at: string;
}

export interface TicketWebhookDeliveriesTable {
  identifier: string;
  connection_id: string;
  received_at: string;
}

export interface TicketIdempotencyKeysTable {
  connection_id: string;
  idempotency_key: string;
  request_hash: string;
  state: string;
  status: number | null;
  response: string | null;
  created_at: string;
}

export interface Database {
  connections: ConnectionsTable;
  oauth_states_used: OAuthStatesUsedTable;
  sandbox_states: SandboxStatesTable;
  sandbox_redirect_uris: SandboxRedirectUrisTable;
  refresh_leases: RefreshLeasesTable;
  rate_windows: RateWindowsTable;
  ticket_sync_states: TicketSyncStatesTable;
  tickets: TicketsTable;
  ticket_events: TicketEventsTable;
  ticket_webhook_deliveries: TicketWebhookDeliveriesTable;
  ticket_idempotency_keys: TicketIdempotencyKeysTable;
}
