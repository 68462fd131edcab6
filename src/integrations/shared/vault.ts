/**
 * What the shared lifecycle needs from storage. `src/store/` implements it
 * (SQLite by default, PostgreSQL for several instances); nothing here knows
 * which. Every method is asynchronous so that a networked database fits the
 * same interface. Secrets cross this boundary in clear and are encrypted by
 * the implementation before they touch a disk.
 */
import type { Tier1ErrorType } from "./contract.js";

export type TokenRefreshStatus = "not_applicable" | "healthy" | "failed";

/**
 * How the revocation went at the provider:
 *   revoked          the provider confirmed it
 *   already_invalid  the provider no longer accepted the credential: nothing to revoke
 *   not_supported    the provider has no way to revoke this kind of credential (the user rolls it there)
 *   pending          the provider could not be reached; the encrypted credential is kept so it can be retried
 */
export type ProviderRevocation = "revoked" | "already_invalid" | "not_supported" | "pending";

/** How long a refresh lock is held at most, and how long a caller waits for it. */
export type RefreshLockOptions = {
  /** The lease: after this long the lock lapses even if its holder never released it (a process that died). */
  leaseMs: number;
  /** How long to wait for another holder before giving up with {@link RefreshLockTimeoutError}. */
  waitMs: number;
};

/** The refresh lock stayed taken for the whole wait: another caller is still refreshing (or disconnecting). */
export class RefreshLockTimeoutError extends Error {
  override readonly name = "RefreshLockTimeoutError";
  constructor(
    readonly connectionId: string,
    readonly waitedMs: number,
  ) {
    super(`the refresh lock of connection ${connectionId} stayed taken for ${waitedMs}ms`);
  }
}

/** The last health probe of a connection, as stored. */
export type StoredHealth = {
  status: "ok" | "degraded" | "down";
  checkedAt: string;
  auth: boolean;
  apiReachable: boolean;
  rateLimited: boolean;
  errorType?: Tier1ErrorType;
  message?: string;
};

/** A connection without its secrets: safe to list, log and return. */
export type ConnectionRecord = {
  id: string;
  userId: string;
  provider: string;
  authMethod: string;
  tokenMasked: string;
  scopes: string[];
  /** Provider-specific public fields (teamId, accountId, ...). */
  metadata: Record<string, unknown>;
  /** When the access token stops working; undefined for tokens that do not expire. */
  accessTokenExpiresAt?: string;
  /** When the current access token was obtained (with an expiry only). */
  accessTokenIssuedAt?: string;
  hasRefreshToken: boolean;
  tokenRefreshStatus: TokenRefreshStatus;
  lastHealth?: StoredHealth;
  createdAt: string;
  updatedAt: string;
  revokedAt?: string;
  /** When the provider confirmed the revocation; unset while it is still owed. */
  providerRevokedAt?: string;
  /** How the provider revocation of the disconnect went (disconnected connections only). */
  revocation?: ProviderRevocation;
  /** The user-supplied instance this credential belongs to; it is never sent anywhere else. */
  baseUrl?: string;
  /** Incremented by every write; compare-and-swap writes name the version they read. */
  version: number;
};

export type ConnectionSecrets = {
  accessToken: string;
  refreshToken?: string;
};

export type NewConnection = ConnectionSecrets & {
  userId: string;
  provider: string;
  authMethod: string;
  tokenMasked: string;
  scopes: string[];
  metadata: Record<string, unknown>;
  accessTokenExpiresAt?: string;
  accessTokenIssuedAt?: string;
  tokenRefreshStatus: TokenRefreshStatus;
  createdAt: string;
  baseUrl?: string;
};

export type ConnectionQuery = { userId: string; provider: string };

export interface Vault {
  createConnection(input: NewConnection): Promise<ConnectionRecord>;
  /** Newest first. Revoked connections only when asked for. */
  listConnections(query: ConnectionQuery & { includeRevoked?: boolean }): Promise<ConnectionRecord[]>;
  /** The connection `id` if it belongs to this user and provider (revoked or not). */
  findConnection(query: ConnectionQuery & { id: string }): Promise<ConnectionRecord | undefined>;
  /**
   * Decrypts the connection's tokens, as stored now. Rejects if a ciphertext
   * fails to authenticate. With `asRead`, a vault may answer the tokens as
   * stored when it read `connection` (the same row read, so the record's
   * expiry and refresh status are theirs) without reading again; a call
   * with a token since replaced is rejected by the provider and renewed.
   * With `scan` (a read not soon repeated: the health sweep's walk over
   * every connection, the read of tokens about to be replaced by a refresh
   * or revoked), a vault that keeps opened tokens in memory keeps these
   * only where it has room, and neither drops nor moves up any it keeps for
   * them: a walk over more connections than it keeps would push out those
   * in use and then find none of its own again.
   */
  readSecrets(connection: ConnectionRecord, options?: { asRead?: boolean; scan?: boolean }): Promise<ConnectionSecrets>;
  /**
   * Replaces the tokens if the row is still at `expectedVersion`, in one
   * transaction; answers the new record, or undefined when another writer got
   * there first. A missing `refreshToken` keeps the stored one.
   */
  updateTokens(input: {
    id: string;
    expectedVersion: number;
    secrets: { accessToken: string; refreshToken?: string };
    tokenMasked: string;
    accessTokenExpiresAt?: string;
    accessTokenIssuedAt?: string;
    tokenRefreshStatus: TokenRefreshStatus;
  }): Promise<ConnectionRecord | undefined>;
  /**
   * Runs `task` while holding the connection's refresh lock, so that one
   * caller at a time, in any instance, refreshes or disconnects it. The lock
   * lapses after `leaseMs`; waiting for it longer than `waitMs` rejects with
   * {@link RefreshLockTimeoutError}.
   */
  withRefreshLock<T>(connectionId: string, options: RefreshLockOptions, task: () => Promise<T>): Promise<T>;
  setTokenRefreshStatus(id: string, status: TokenRefreshStatus): Promise<void>;
  /**
   * Marks the connection revoked. `eraseSecrets` when nothing more is owed at
   * the provider; otherwise the (encrypted) secrets are kept so that the
   * revocation can be retried. `providerRevokedAt` when the provider confirmed;
   * `revocation` records how it went.
   */
  markRevoked(
    input: ConnectionQuery & { id: string; revokedAt: string; eraseSecrets: boolean; providerRevokedAt?: string; revocation?: ProviderRevocation },
  ): Promise<ConnectionRecord | undefined>;
  /**
   * `grouped`: the write may wait for the end of the event loop's turn, to
   * share one commit with the others asked for in it (a sweep's checks); a
   * caller waiting on the answer writes at once. Either way the promise
   * settles once the write is committed.
   */
  recordHealth(id: string, health: StoredHealth, options?: { grouped?: boolean }): Promise<void>;
  /**
   * Active connections of every user, for background work: by id, after
   * `afterId`, at most `limit`. `dueForRefresh` keeps those whose access token
   * can be refreshed (healthy, with a refresh token) and expires before
   * `expiresBefore`, obtained before `issuedBefore`.
   */
  scanConnections(query: {
    afterId?: string;
    /**
     * With `dueForRefresh`, the scan runs in expiry order (soonest first, then by id): a page
     * continues after the last one's expiry and id, both given.
     */
    afterExpiresAt?: string;
    limit: number;
    provider?: string;
    dueForRefresh?: { expiresBefore: string; issuedBefore: string };
    /** Disconnected connections whose provider revocation is still owed, instead of active ones. */
    revocationOwed?: boolean;
  }): Promise<ConnectionRecord[]>;
  /**
   * Records that an OAuth state was used. True the first time for a given
   * hash, false ever after (until it has expired and been swept).
   */
  consumeOAuthState(input: { stateHash: string; provider: string; expiresAt: string }): Promise<boolean>;
}

/**
 * Authenticated encryption of small values outside the vault's rows (the
 * OAuth state). Synchronous, because `beginOAuth` is. `open` throws when the
 * value was not sealed by us for this `purpose`.
 */
export interface Sealer {
  seal(plaintext: string, purpose: string): string;
  open(sealed: string, purpose: string): string;
}
