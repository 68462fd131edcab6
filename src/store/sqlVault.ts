/**
 * The credential vault over Kysely: one implementation for SQLite and
 * PostgreSQL. Tokens are encrypted before they reach the database with the
 * connection's own data key, each ciphertext bound to its row and column by
 * the associated data `connection:<id>:<column>`, so a ciphertext copied to
 * another row (or another column) fails to decrypt. The data key is wrapped
 * by the keyring's key-encryption key; rotating that key rewraps data keys
 * only (see rewrapDataKeys).
 */
import { randomBytes } from "node:crypto";
import DataLoader from "dataloader";
import { LRUCache } from "lru-cache";
import { sql, type Kysely, type Selectable } from "kysely";
import type {
  ConnectionQuery,
  ConnectionRecord,
  ConnectionSecrets,
  NewConnection,
  ProviderRevocation,
  RefreshLockOptions,
  StoredHealth,
  TokenRefreshStatus,
  Vault,
} from "../integrations/shared/vault.js";
import { RefreshLockTimeoutError } from "../integrations/shared/vault.js";
import { changeWatchOf, type ChangeWatch } from "./changeWatch.js";
import { Keyring } from "./keyring.js";
import { preparedQuery } from "./preparedQuery.js";
import type { ConnectionsTable, Database } from "./schema.js";

/** A waiter for a refresh lock polls first after about this long, doubling up to the cap: a refresh usually takes one provider round trip. */
const LEASE_POLL_FIRST_MS = 20;
const LEASE_POLL_MAX_MS = 250;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Characters of a connection id's time part: base36 milliseconds, zero-padded (enough until the year 5188). */
const ID_TIME_CHARS = 9;
/** Characters of its random part (base64url: 78 bits), so that an id keeps the 22 characters after `conn_` it always had. */
const ID_RANDOM_CHARS = 13;

/**
 * A new connection id: `conn_`, the time it was made (base36 milliseconds, digits and lower-case
 * letters only, so that it sorts the same in byte order and under the usual text collations: C,
 * glibc's, ICU's default), then random characters. Ids made
 * later sort after, as in UUIDv7: the jobs walk connections in id order, and SQLite keeps a table's
 * rows in the order they were inserted, so a sweep's consecutive checks write to the same few pages
 * of the table, where random ids put every one on a page of its own (a sweep of 10,000 connections
 * spent about half as long writing its health records). PostgreSQL's primary-key index grows at its
 * end. Ids made before keep their form (`conn_` and 22 base64url characters, as every id has).
 */
export function newConnectionId(now: number = Date.now()): string {
  const time = Number.isFinite(now) && now >= 0 ? Math.floor(now).toString(36).padStart(ID_TIME_CHARS, "0") : "";
  if (time.length !== ID_TIME_CHARS) throw new RangeError(`a connection id's time must be milliseconds from 1970 to 5188, got ${now}`);
  return `conn_${time}${randomBytes(10).toString("base64url").slice(0, ID_RANDOM_CHARS)}`;
}

/** The most health writes committed together. */
const HEALTH_GROUP_MAX = 500;

/** How often (in consumed states) expired state hashes are swept. */
const STATE_SWEEP_EVERY = 100;

/**
 * How many connections' opened tokens a vault keeps (the least recently used dropped first). Every
 * call with a stored connection opened its token: a data key unwrapped and a token decrypted, two
 * AES-GCM decryptions that were about 10% of a proxied call's time here. Each is kept with the exact
 * ciphertexts and wrapped key it was opened from, and answered only while the row holds those, so a
 * token replaced since (refreshed here or by another instance, a key rotated) is opened anew and
 * takes the place of the old; the row is read first every time (or known
 * unchanged, changeWatch.ts): a disconnected one holds nothing to match. What is kept is what the
 * process holds for each call anyway, and no more than its keyring can open. The health sweep reads
 * tokens as a scan (readSecrets' `scan`), as do a refresh and a revocation: such a read fills room
 * that is free (what it keeps then counts as just used) and pushes nothing out, where a walk over
 * more connections than are kept left none of those in use kept once it passed.
 */
export const OPENED_TOKENS_KEPT = 4_096;

/** `count` if it can size the opened tokens kept (a whole number, at least 1); a RangeError naming it otherwise. */
export function checkedOpenedTokensKept(count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`openedTokensKept must be a whole number of at least 1, got ${count}`);
  return count;
}

export class SqlVault implements Vault {
  private consumedSinceSweep = 0;

  /** Opened tokens by their row's id, with the sealed columns they were opened from (see OPENED_TOKENS_KEPT). */
  private readonly opened: LRUCache<string, { sealed: Sealed; secrets: ConnectionSecrets }>;

  private readonly hot: ReturnType<typeof hotQueries>;

  /**
   * On SQLite, the database's change watch, which keeps the rows of the reads every call makes (a
   * user's connections of a provider, one connection by id; RESULTS_KEPT of each) and answers a read
   * of the same from them while the database has not changed since (a commit by any connection, a
   * write through this one): the rows the query would read, for about a sixth of its cost.
   * Ciphertexts only; never inside a transaction. Undefined on PostgreSQL, where other instances'
   * commits cannot be seen without a query.
   */
  private readonly watch: ChangeWatch | undefined;

  /** The sealed columns of each record this vault made, read with it (readSecrets): ciphertexts. */
  private readonly sealedOf = new WeakMap<ConnectionRecord, Sealed>();

  private readonly toRecord = (row: Selectable<ConnectionsTable>): ConnectionRecord => {
    const record = toRecord(row);
    this.sealedOf.set(record, { data_key_wrapped: row.data_key_wrapped, access_token_enc: row.access_token_enc, refresh_token_enc: row.refresh_token_enc });
    return record;
  };

  constructor(
    readonly db: Kysely<Database>,
    private readonly keyring: Keyring,
    private readonly now: () => Date = () => new Date(),
    /**
     * `keepRows: false`: asks for none of its reads to be kept (another vault on the same connection may
     * have); on a connection of its own, every read goes to the database (what a benchmark of the queries measures).
     * `openedTokensKept`: how many connections' opened tokens are kept (OPENED_TOKENS_KEPT by default).
     */
    options: { keepRows?: boolean; openedTokensKept?: number } = {},
  ) {
    this.opened = new LRUCache({ max: checkedOpenedTokensKept(options.openedTokensKept ?? OPENED_TOKENS_KEPT) });
    this.hot = hotQueries(db);
    this.watch = changeWatchOf(db);
    if (this.watch && options.keepRows !== false) {
      const kept = [this.hot.listActive, this.hot.listAll, this.hot.findOne].map((query) => query.sql());
      for (const query of kept) this.watch.keep(query);
      // A health write changes one row's last_health (TEXT, bound as a string, the row found by its TEXT id;
      // the table has no trigger), which none of those reads filters or orders by, and each selects whole:
      // what they kept is brought up to date, not dropped (after a test, a probe, a call that changed the
      // connection's health, or a grouped write that went alone).
      const { healthWrite } = this.hot;
      this.watch.carry(healthWrite.sql(), {
        into: kept,
        change: (parameters) => {
          const values = healthWrite.valuesOf(parameters);
          return { id: values.id, set: { last_health: values.health } };
        },
      });
    }
  }

  async createConnection(input: NewConnection): Promise<ConnectionRecord> {
    const id = newConnectionId();
    const dataKey = Keyring.newDataKey();
    const row = {
      id,
      user_id: input.userId,
      provider: input.provider,
      auth_method: input.authMethod,
      token_masked: input.tokenMasked,
      scopes: JSON.stringify(input.scopes),
      metadata: JSON.stringify(input.metadata),
      data_key_wrapped: this.keyring.wrapDataKey(dataKey, dataKeyAad(id)),
      access_token_enc: seal(dataKey, id, "access_token", input.accessToken),
      refresh_token_enc: input.refreshToken === undefined ? null : seal(dataKey, id, "refresh_token", input.refreshToken),
      access_token_expires_at: input.accessTokenExpiresAt ?? null,
      access_token_issued_at: input.accessTokenIssuedAt ?? null,
      token_refresh_status: input.tokenRefreshStatus,
      last_health: null,
      created_at: input.createdAt,
      updated_at: input.createdAt,
      revoked_at: null,
      provider_revoked_at: null,
      provider_revocation: null,
      base_url: input.baseUrl ?? null,
    };
    const inserted = await this.db.insertInto("connections").values(row).returningAll().executeTakeFirstOrThrow();
    return this.toRecord(inserted);
  }

  /**
   * A token that stays the same exactly while nothing this vault's database holds has changed: equal
   * tokens at two moments mean no commit in between, by this connection or any other (another process
   * on the file, a CLI command). What an answer made from the vault's reads can be kept by: the same
   * token, the same answer. Undefined when that cannot be known: on PostgreSQL (other instances'
   * commits are not seen without a query), inside a transaction, or while the database cannot be read.
   */
  changeToken(): string | undefined {
    return this.watch?.version();
  }

  async listConnections(query: ConnectionQuery & { includeRevoked?: boolean }): Promise<ConnectionRecord[]> {
    const rows = await (query.includeRevoked ? this.hot.listAll : this.hot.listActive)({ userId: query.userId, provider: query.provider });
    return rows.map(this.toRecord);
  }

  async findConnection(query: ConnectionQuery & { id: string }): Promise<ConnectionRecord | undefined> {
    const [row] = await this.hot.findOne({ id: query.id, userId: query.userId, provider: query.provider });
    return row ? this.toRecord(row) : undefined;
  }

  /**
   * The tokens as stored now; with `asRead`, as they were stored when this
   * vault read `connection` (the same row read), with no second query (a
   * record this vault did not make is read again).
   */
  async readSecrets(connection: ConnectionRecord, options?: { asRead?: boolean; scan?: boolean }): Promise<ConnectionSecrets> {
    const row = (options?.asRead ? this.sealedOf.get(connection) : undefined) ?? (await this.hot.secretsOf({ id: connection.id }))[0];
    if (!row?.access_token_enc || !row.data_key_wrapped) throw new Error(`connection ${connection.id} holds no token`);
    // A scan's read leaves what is kept as it was: no entry moved up, none dropped for its own.
    const kept = options?.scan ? this.opened.peek(connection.id) : this.opened.get(connection.id);
    if (kept && sameSealed(kept.sealed, row)) return { ...kept.secrets };
    const dataKey = this.keyring.unwrapDataKey(row.data_key_wrapped, dataKeyAad(connection.id));
    const secrets: ConnectionSecrets = { accessToken: open(dataKey, connection.id, "access_token", row.access_token_enc) };
    if (row.refresh_token_enc) secrets.refreshToken = open(dataKey, connection.id, "refresh_token", row.refresh_token_enc);
    if (!options?.scan || this.opened.size < this.opened.max) {
      const sealed = { data_key_wrapped: row.data_key_wrapped, access_token_enc: row.access_token_enc, refresh_token_enc: row.refresh_token_enc ?? null };
      this.opened.set(connection.id, { sealed, secrets: { ...secrets } });
    }
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
    // The data key never changes for a row (a key rotation only rewraps it), so reading it first is safe.
    const keyRow = await this.db.selectFrom("connections").select("data_key_wrapped").where("id", "=", input.id).executeTakeFirst();
    if (!keyRow?.data_key_wrapped) return undefined;
    const dataKey = this.keyring.unwrapDataKey(keyRow.data_key_wrapped, dataKeyAad(input.id));
    // One statement, so the new access token and a rotated refresh token land together or not at all.
    const row = await this.db
      .updateTable("connections")
      .set((eb) => ({
        access_token_enc: seal(dataKey, input.id, "access_token", input.secrets.accessToken),
        ...(input.secrets.refreshToken === undefined
          ? {}
          : { refresh_token_enc: seal(dataKey, input.id, "refresh_token", input.secrets.refreshToken) }),
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
    return row ? this.toRecord(row) : undefined;
  }

  /**
   * The refresh lock is a lease row, taken by compare-and-swap: inserted, or
   * taken over once the previous lease has lapsed. Nothing is held while
   * `task` runs (no transaction, no pooled connection), so the provider call
   * inside it never starves the pool, and a waiter polls for the row rather
   * than queueing on a database lock. A holder that dies leaves its lease to
   * lapse after `leaseMs`. The same code serves SQLite and PostgreSQL, one
   * process or many.
   */
  async withRefreshLock<T>(connectionId: string, options: RefreshLockOptions, task: () => Promise<T>): Promise<T> {
    const holder = randomBytes(12).toString("base64url");
    const started = this.now().getTime();
    for (let poll = LEASE_POLL_FIRST_MS; !(await this.takeLease(connectionId, holder, options.leaseMs)); poll = Math.min(poll * 2, LEASE_POLL_MAX_MS)) {
      const left = started + options.waitMs - this.now().getTime();
      if (left <= 0) throw new RefreshLockTimeoutError(connectionId, options.waitMs);
      // Jittered, so that waiters of many instances do not poll in step.
      await sleep(Math.min(left, poll / 2 + Math.random() * (poll / 2)));
    }
    try {
      return await task();
    } finally {
      // Only our own lease: one that lapsed and was taken over belongs to its new holder. A failed
      // release (the database went away) is not the task's failure; the lease lapses by itself.
      await this.db
        .deleteFrom("refresh_leases")
        .where("connection_id", "=", connectionId)
        .where("holder", "=", holder)
        .execute()
        .catch(() => undefined);
    }
  }

  private async takeLease(connectionId: string, holder: string, leaseMs: number): Promise<boolean> {
    const now = this.now();
    const expiresAt = new Date(now.getTime() + leaseMs).toISOString();
    const result = await this.db
      .insertInto("refresh_leases")
      .values({ connection_id: connectionId, holder, expires_at: expiresAt })
      .onConflict((oc) =>
        oc
          .column("connection_id")
          .doUpdateSet({ holder, expires_at: expiresAt })
          .where("refresh_leases.expires_at", "<=", now.toISOString()),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async setTokenRefreshStatus(id: string, status: TokenRefreshStatus): Promise<void> {
    await this.db
      .updateTable("connections")
      .set((eb) => ({ token_refresh_status: status, updated_at: this.now().toISOString(), version: eb("version", "+", 1) }))
      .where("id", "=", id)
      .execute();
  }

  async markRevoked(
    input: ConnectionQuery & { id: string; revokedAt: string; eraseSecrets: boolean; providerRevokedAt?: string; revocation?: ProviderRevocation },
  ): Promise<ConnectionRecord | undefined> {
    const row = await this.db
      .updateTable("connections")
      .set((eb) => ({
        revoked_at: eb.fn.coalesce("revoked_at", eb.val(input.revokedAt)),
        updated_at: this.now().toISOString(),
        version: eb("version", "+", 1),
        ...(input.providerRevokedAt === undefined ? {} : { provider_revoked_at: input.providerRevokedAt }),
        ...(input.revocation === undefined ? {} : { provider_revocation: input.revocation }),
        // Erasing the data key too (crypto-shredding): no copy of the row, backup included, opens again.
        ...(input.eraseSecrets ? { access_token_enc: null, refresh_token_enc: null, data_key_wrapped: null } : {}),
      }))
      .where("id", "=", input.id)
      .where("user_id", "=", input.userId)
      .where("provider", "=", input.provider)
      .returningAll()
      .executeTakeFirst();
    // Crypto-shredded: nothing this process kept of it (its opened token, rows holding its ciphertexts) stays in memory.
    if (input.eraseSecrets) this.forget(input.id);
    return row ? this.toRecord(row) : undefined;
  }

  /** Drops what this vault keeps in memory of connection `id`: its opened tokens, and every kept read. */
  private forget(id: string): void {
    this.opened.delete(id);
    this.watch?.forget();
  }

  async recordHealth(id: string, health: StoredHealth, options?: { grouped?: boolean }): Promise<void> {
    // Health is an observation, not a token write: it does not bump the version,
    // so it never makes a concurrent refresh's compare-and-swap fail.
    const write = { id, health: JSON.stringify(health) };
    if (options?.grouped) await this.healthWrites.load(write);
    else await this.hot.healthWrite(write);
  }

  /**
   * Grouped health writes (a sweep's), committed in groups: those asked for in one turn of the
   * event loop (the checks whose answers came in together) are written
   * in one transaction, so they share one commit, and one fsync on SQLite
   * (about 250 µs here, with the event loop held), where each paid its own.
   * Each caller's promise settles once its write is committed, as before:
   * nothing is acknowledged before it is durable. Writes to one connection
   * keep their order within a group. A write asked for alone is not held for
   * the turn (holding it cost a test of one connection about 10% of its time).
   */
  private readonly healthWrites = new DataLoader<{ id: string; health: string }, undefined>(
    async (writes) => {
      if (writes.length === 1) await this.hot.healthWrite(writes[0] as { id: string; health: string });
      else await this.db.transaction().execute(async (tx) => {
        for (const write of writes) await this.hot.healthWrite(write, tx as unknown as Kysely<never>);
      });
      return writes.map(() => undefined);
    },
    { cache: false, batchScheduleFn: (flush) => setImmediate(flush), maxBatchSize: HEALTH_GROUP_MAX },
  );

  async scanConnections(query: {
    afterId?: string;
    afterExpiresAt?: string;
    limit: number;
    provider?: string;
    dueForRefresh?: { expiresBefore: string; issuedBefore: string };
    revocationOwed?: boolean;
  }): Promise<ConnectionRecord[]> {
    let q = query.revocationOwed
      ? this.db
          .selectFrom("connections")
          .selectAll()
          .where("revoked_at", "is not", null)
          .where("provider_revoked_at", "is", null)
          .where("access_token_enc", "is not", null)
      : this.db.selectFrom("connections").selectAll().where("revoked_at", "is", null);
    if (query.provider !== undefined) q = q.where("provider", "=", query.provider);
    if (query.dueForRefresh) {
      // In expiry order, through connections_refresh_due_healthy: the few due, not every connection.
      q = q
        .where("refresh_token_enc", "is not", null)
        // Written in, not bound: the partial index's condition then holds for every plan of the statement
        // (a bound value makes SQLite plan again on each new value, and a generic PostgreSQL plan not use it).
        .where("token_refresh_status", "=", sql.lit("healthy"))
        .where("access_token_expires_at", "<", query.dueForRefresh.expiresBefore)
        .where("access_token_issued_at", "<", query.dueForRefresh.issuedBefore);
      if (query.afterId !== undefined) {
        if (query.afterExpiresAt === undefined) throw new TypeError("a refresh-ahead scan continues after an expiry and an id: give afterExpiresAt with afterId");
        const after = { expiresAt: query.afterExpiresAt, id: query.afterId };
        q = q.where((eb) => eb(eb.refTuple("access_token_expires_at", "id"), ">", eb.tuple(after.expiresAt, after.id)));
      }
      const rows = await q.orderBy("access_token_expires_at").orderBy("id").limit(query.limit).execute();
      return rows.map(this.toRecord);
    }
    if (query.afterId !== undefined) q = q.where("id", ">", query.afterId);
    const rows = await q.orderBy("id").limit(query.limit).execute();
    return rows.map(this.toRecord);
  }

  /**
   * Connections of any user for an operator's listing (the CLI's `connections
   * list`): by id, after `afterId`, at most `limit`, narrowed to a user and a
   * provider when given; disconnected ones only when asked for. Not part of
   * the lifecycle's Vault: no connector lists across users.
   */
  async browseConnections(query: { afterId?: string; limit: number; userId?: string; provider?: string; includeRevoked?: boolean }): Promise<ConnectionRecord[]> {
    let q = this.db.selectFrom("connections").selectAll();
    if (!query.includeRevoked) q = q.where("revoked_at", "is", null);
    if (query.afterId !== undefined) q = q.where("id", ">", query.afterId);
    if (query.userId !== undefined) q = q.where("user_id", "=", query.userId);
    if (query.provider !== undefined) q = q.where("provider", "=", query.provider);
    const rows = await q.orderBy("id").limit(query.limit).execute();
    return rows.map(this.toRecord);
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

  /**
   * Rewraps data keys still under an older key-encryption key with the
   * active one: one batch of rows after `afterId`, each written with
   * compare-and-swap on the wrapped value it read, so a concurrent rotation
   * never double-writes and a concurrent token refresh (which writes other
   * columns, under the same data key) is never overwritten. Resumable: run it
   * again from `lastId`, or from the start; rows already current are skipped.
   */
  async rewrapDataKeys(input: { afterId?: string; batchSize: number }): Promise<RewrapReport> {
    let q = this.db.selectFrom("connections").select(["id", "data_key_wrapped"]).where("data_key_wrapped", "is not", null);
    if (input.afterId !== undefined) q = q.where("id", ">", input.afterId);
    const rows = await q.orderBy("id").limit(input.batchSize).execute();
    const report: RewrapReport = { scanned: rows.length, rewrapped: 0, alreadyCurrent: 0, failed: [], changedConcurrently: 0 };
    for (const row of rows) {
      const wrapped = row.data_key_wrapped as string;
      if (this.keyring.isCurrent(wrapped)) {
        report.alreadyCurrent++;
        continue;
      }
      let rewrapped: string;
      try {
        rewrapped = this.keyring.wrapDataKey(this.keyring.unwrapDataKey(wrapped, dataKeyAad(row.id)), dataKeyAad(row.id));
      } catch (error) {
        report.failed.push({ id: row.id, reason: error instanceof Error ? error.message : String(error) });
        continue;
      }
      const result = await this.db
        .updateTable("connections")
        .set({ data_key_wrapped: rewrapped })
        .where("id", "=", row.id)
        .where("data_key_wrapped", "=", wrapped)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) report.rewrapped++;
      else report.changedConcurrently++;
    }
    if (rows.length > 0) report.lastId = rows[rows.length - 1]?.id;
    return report;
  }

  /** Rows whose data key is not yet under the active key-encryption key. */
  async countStaleDataKeys(): Promise<{ total: number; stale: number }> {
    const rows = await this.db.selectFrom("connections").select("data_key_wrapped").where("data_key_wrapped", "is not", null).execute();
    return { total: rows.length, stale: rows.filter((r) => !this.keyring.isCurrent(r.data_key_wrapped as string)).length };
  }
}

export type RewrapReport = {
  scanned: number;
  rewrapped: number;
  alreadyCurrent: number;
  /** Rewritten by someone else between our read and write (another rotation): left as they wrote it. */
  changedConcurrently: number;
  failed: { id: string; reason: string }[];
  lastId?: string;
};

type Sealed = Pick<Selectable<ConnectionsTable>, "data_key_wrapped" | "access_token_enc" | "refresh_token_enc">;

const dataKeyAad = (id: string): string => `connection:${id}:data_key`;

/** Whether a row holds exactly the sealed values `kept` was opened from (a token replaced, or a key rewrapped, is not). */
const sameSealed = (kept: Sealed, row: Sealed): boolean =>
  kept.data_key_wrapped === row.data_key_wrapped && kept.access_token_enc === row.access_token_enc && kept.refresh_token_enc === (row.refresh_token_enc ?? null);

function seal(dataKey: Buffer, id: string, column: string, plaintext: string): string {
  return Keyring.sealWithDataKey(dataKey, plaintext, `connection:${id}:${column}`);
}

function open(dataKey: Buffer, id: string, column: string, ciphertext: string): string {
  return Keyring.openWithDataKey(dataKey, ciphertext, `connection:${id}:${column}`);
}

/** The queries every request runs, compiled once (preparedQuery.ts). */
function hotQueries(db: Kysely<Database>) {
  return {
    listActive: preparedQuery(db, ["userId", "provider"], (p) =>
    db.selectFrom("connections").selectAll().where("user_id", "=", p("userId")).where("provider", "=", p("provider")).where("revoked_at", "is", null).orderBy("created_at", "desc").orderBy("id", "desc"),
    ),
    listAll: preparedQuery(db, ["userId", "provider"], (p) =>
    db.selectFrom("connections").selectAll().where("user_id", "=", p("userId")).where("provider", "=", p("provider")).orderBy("created_at", "desc").orderBy("id", "desc"),
    ),
    findOne: preparedQuery(db, ["id", "userId", "provider"], (p) =>
    db.selectFrom("connections").selectAll().where("id", "=", p("id")).where("user_id", "=", p("userId")).where("provider", "=", p("provider")),
    ),
    secretsOf: preparedQuery(db, ["id"], (p) =>
    db.selectFrom("connections").select(["data_key_wrapped", "access_token_enc", "refresh_token_enc"]).where("id", "=", p("id")),
    ),
    healthWrite: preparedQuery(db, ["id", "health"], (p) =>
    db.updateTable("connections").set({ last_health: p("health") }).where("id", "=", p("id")),
    ),
  };
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
  if (row.provider_revocation !== null) record.revocation = row.provider_revocation as ProviderRevocation;
  return record;
}
