/**
 * The credential vault over Kysely: one implementation for SQLite and
 * PostgreSQL. Tokens are encrypted before they reach the database, each
 * ciphertext bound to its row and column by the associated data
 * `connection:<id>:<column>`, so a ciphertext copied to another row (or
 * another column) fails to decrypt.
 */
import { randomBytes } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import type {
  ConnectionQuery,
  ConnectionRecord,
  ConnectionSecrets,
  NewConnection,
  StoredHealth,
  TokenRefreshStatus,
  Vault,
} from "../integrations/shared/vault.js";
import type { Keyring } from "./keyring.js";
import type { ConnectionsTable, Database } from "./schema.js";

/** Encryption purpose of the vault's columns (the OAuth state uses another). */
const VAULT_PURPOSE = "vault";

/** How often (in consumed states) expired state hashes are swept. */
const STATE_SWEEP_EVERY = 100;

export class SqlVault implements Vault {
  private consumedSinceSweep = 0;

  constructor(
    readonly db: Kysely<Database>,
    private readonly keyring: Keyring,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async createConnection(input: NewConnection): Promise<ConnectionRecord> {
    const id = `conn_${randomBytes(16).toString("base64url")}`;
    const row = {
      id,
      user_id: input.userId,
      provider: input.provider,
      auth_method: input.authMethod,
      token_masked: input.tokenMasked,
      scopes: JSON.stringify(input.scopes),
      metadata: JSON.stringify(input.metadata),
      access_token_enc: this.seal(id, "access_token", input.accessToken),
      refresh_token_enc: input.refreshToken === undefined ? null : this.seal(id, "refresh_token", input.refreshToken),
      access_token_expires_at: input.accessTokenExpiresAt ?? null,
      access_token_issued_at: input.accessTokenIssuedAt ?? null,
      token_refresh_status: input.tokenRefreshStatus,
      last_health: null,
      created_at: input.createdAt,
      updated_at: input.createdAt,
      revoked_at: null,
      provider_revoked_at: null,
      base_url: input.baseUrl ?? null,
    };
    const inserted = await this.db.insertInto("connections").values(row).returningAll().executeTakeFirstOrThrow();
    return toRecord(inserted);
  }

  async listConnections(query: ConnectionQuery & { includeRevoked?: boolean }): Promise<ConnectionRecord[]> {
    let q = this.db
      .selectFrom("connections")
      .selectAll()
      .where("user_id", "=", query.userId)
      .where("provider", "=", query.provider);
    if (!query.includeRevoked) q = q.where("revoked_at", "is", null);
    const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").execute();
    return rows.map(toRecord);
  }

  async findConnection(query: ConnectionQuery & { id: string }): Promise<ConnectionRecord | undefined> {
    const row = await this.db
      .selectFrom("connections")
      .selectAll()
      .where("id", "=", query.id)
      .where("user_id", "=", query.userId)
      .where("provider", "=", query.provider)
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  async readSecrets(connection: ConnectionRecord): Promise<ConnectionSecrets> {
    const row = await this.db
      .selectFrom("connections")
      .select(["access_token_enc", "refresh_token_enc"])
      .where("id", "=", connection.id)
      .executeTakeFirst();
    if (!row?.access_token_enc) throw new Error(`connection ${connection.id} holds no token`);
    const secrets: ConnectionSecrets = { accessToken: this.open(connection.id, "access_token", row.access_token_enc) };
    if (row.refresh_token_enc) secrets.refreshToken = this.open(connection.id, "refresh_token", row.refresh_token_enc);
    return secrets;
  }

  async updateTokens(input: {
    id: string;
    expectedVersion: number;
    secrets: { accessToken: string; refreshToken?: string };
    tokenMasked: string;
    accessTokenExpiresAt?: string;
    accessTokenIssuedAt?: string;
    tokenRefreshStatus: TokenRefreshStatus;
  }): Promise<ConnectionRecord | undefined> {
    // One statement, so the new access token and a rotated refresh token land together or not at all.
    const row = await this.db
      .updateTable("connections")
      .set((eb) => ({
        access_token_enc: this.seal(input.id, "access_token", input.secrets.accessToken),
        ...(input.secrets.refreshToken === undefined
          ? {}
          : { refresh_token_enc: this.seal(input.id, "refresh_token", input.secrets.refreshToken) }),
        token_masked: input.tokenMasked,
        access_token_expires_at: input.accessTokenExpiresAt ?? null,
        access_token_issued_at: input.accessTokenIssuedAt ?? null,
        token_refresh_status: input.tokenRefreshStatus,
        updated_at: this.now().toISOString(),
        version: eb("version", "+", 1),
      }))
      .where("id", "=", input.id)
      .where("version", "=", input.expectedVersion)
      .where("revoked_at", "is", null)
      .returningAll()
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  /** SQLite serves one process: the lifecycle's single flight is the lock. */
  async withRefreshLock<T>(_connectionId: string, task: () => Promise<T>): Promise<T> {
    return task();
  }

  async setTokenRefreshStatus(id: string, status: TokenRefreshStatus): Promise<void> {
    await this.db
      .updateTable("connections")
      .set((eb) => ({ token_refresh_status: status, updated_at: this.now().toISOString(), version: eb("version", "+", 1) }))
      .where("id", "=", id)
      .execute();
  }

  async markRevoked(
    input: ConnectionQuery & { id: string; revokedAt: string; eraseSecrets: boolean; providerRevokedAt?: string },
  ): Promise<ConnectionRecord | undefined> {
    const row = await this.db
      .updateTable("connections")
      .set((eb) => ({
        revoked_at: eb.fn.coalesce("revoked_at", eb.val(input.revokedAt)),
        updated_at: this.now().toISOString(),
        version: eb("version", "+", 1),
        ...(input.providerRevokedAt === undefined ? {} : { provider_revoked_at: input.providerRevokedAt }),
        ...(input.eraseSecrets ? { access_token_enc: null, refresh_token_enc: null } : {}),
      }))
      .where("id", "=", input.id)
      .where("user_id", "=", input.userId)
      .where("provider", "=", input.provider)
      .returningAll()
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  async recordHealth(id: string, health: StoredHealth): Promise<void> {
    // Health is an observation, not a token write: it does not bump the version,
    // so it never makes a concurrent refresh's compare-and-swap fail.
    await this.db.updateTable("connections").set({ last_health: JSON.stringify(health) }).where("id", "=", id).execute();
  }

  async scanConnections(query: {
    afterId?: string;
    limit: number;
    provider?: string;
    dueForRefresh?: { expiresBefore: string; issuedBefore: string };
  }): Promise<ConnectionRecord[]> {
    let q = this.db.selectFrom("connections").selectAll().where("revoked_at", "is", null);
    if (query.afterId !== undefined) q = q.where("id", ">", query.afterId);
    if (query.provider !== undefined) q = q.where("provider", "=", query.provider);
    if (query.dueForRefresh) {
      q = q
        .where("refresh_token_enc", "is not", null)
        .where("token_refresh_status", "=", "healthy")
        .where("access_token_expires_at", "<", query.dueForRefresh.expiresBefore)
        .where("access_token_issued_at", "<", query.dueForRefresh.issuedBefore);
    }
    const rows = await q.orderBy("id").limit(query.limit).execute();
    return rows.map(toRecord);
  }

  async consumeOAuthState(input: { stateHash: string; provider: string; expiresAt: string }): Promise<boolean> {
    const now = this.now().toISOString();
    if (++this.consumedSinceSweep >= STATE_SWEEP_EVERY) {
      this.consumedSinceSweep = 0;
      await this.db.deleteFrom("oauth_states_used").where("expires_at", "<", now).execute();
    }
    // The primary key makes this atomic across instances: exactly one insert wins.
    const result = await this.db
      .insertInto("oauth_states_used")
      .values({ state_hash: input.stateHash, provider: input.provider, expires_at: input.expiresAt, used_at: now })
      .onConflict((oc) => oc.column("state_hash").doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  private seal(id: string, column: string, plaintext: string): string {
    return this.keyring.encrypt(plaintext, VAULT_PURPOSE, `connection:${id}:${column}`);
  }

  private open(id: string, column: string, ciphertext: string): string {
    return this.keyring.decrypt(ciphertext, VAULT_PURPOSE, `connection:${id}:${column}`);
  }
}

function toRecord(row: Selectable<ConnectionsTable>): ConnectionRecord {
  const record: ConnectionRecord = {
    id: row.id,
    userId: row.user_id,
    provider: row.provider,
    authMethod: row.auth_method,
    tokenMasked: row.token_masked,
    scopes: JSON.parse(row.scopes) as string[],
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    hasRefreshToken: row.refresh_token_enc !== null,
    tokenRefreshStatus: row.token_refresh_status as TokenRefreshStatus,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: Number(row.version),
  };
  if (row.access_token_expires_at !== null) record.accessTokenExpiresAt = row.access_token_expires_at;
  if (row.access_token_issued_at !== null) record.accessTokenIssuedAt = row.access_token_issued_at;
  if (row.last_health !== null) record.lastHealth = JSON.parse(row.last_health) as StoredHealth;
  if (row.revoked_at !== null) record.revokedAt = row.revoked_at;
  if (row.provider_revoked_at !== null) record.providerRevokedAt = row.provider_revoked_at;
  if (row.base_url !== null) record.baseUrl = row.base_url;
  return record;
}
