/**
 * Keeps a connection's access token usable: refreshes it before it expires,
 * answers a provider's rejection of it with at most one refresh and one
 * retry, and stores a rotated refresh token together with its access token.
 *
 * Concurrency: callers in this process share one refresh per connection
 * (single flight); the vault's refresh lock extends that to other instances;
 * after taking it the connection is read again, so a refresh another
 * instance already made is used instead of repeated. A disconnect takes the
 * same lock ({@link TokenKeeper.exclusive}), so it revokes what is current
 * after any refresh in flight, and a refresh after it finds the connection
 * gone.
 */
import type { ConnectorContext, ConnectorDefinition, TokenGrant } from "./connector.js";
import { connectionRevoked, ErrorCodes, IntegrationError } from "./errors.js";
import type { Clock } from "./http.js";
import { maskSecret } from "./mask.js";
import { refreshDue, SingleFlight } from "./refresh.js";
import { RETRY_BUDGET_MARGIN_MS } from "./retry.js";
import { RefreshLockTimeoutError, type ConnectionRecord, type RefreshLockOptions, type Vault } from "./vault.js";

export type TokenKeeperDeps = {
  definition: ConnectorDefinition;
  vault: Vault;
  ctx: ConnectorContext;
  clock: Clock;
  /** Records a health outcome for the connection (the lifecycle's). */
  recordOutcome(record: ConnectionRecord, error?: IntegrationError): Promise<unknown>;
  /** Told of every refresh that reached the provider, for metrics; never throws into the refresh. */
  onRefresh?: (record: RefreshRecord) => void;
};

/**
 * One refresh that reached the provider's token endpoint:
 *   refreshed  a new access token is stored
 *   rejected   the provider refused the grant for good; the user must connect again
 *   failed     a transient failure (throttled, unreachable, 5xx) after the retries; the old token stays
 */
export type RefreshRecord = { provider: string; outcome: "refreshed" | "rejected" | "failed"; errorType?: IntegrationError["type"] };


/** An error about this service's own state (another instance still refreshing), not the connection's: health does not record it. */
export function isOwnBusiness(error: IntegrationError): boolean {
  return error.code === ErrorCodes.REFRESH_LOCK_TIMEOUT;
}

/**
 * Beyond the holder's own bound, how long a waiter keeps waiting for the
 * refresh lock: the database round trips around the provider call, and the
 * poll interval in which the release is noticed.
 */
export const REFRESH_LOCK_WAIT_SLACK_MS = 5_000;

/**
 * The refresh lock's bounds, derived from the connector's retry budget. A
 * holder's provider calls end within the budget (and its margin) each; a
 * disconnect may make two (Slack revokes the refresh token, then the access
 * token), so the lease allows two of them, and lapses only for a holder that
 * died. A waiter outlasts one live holder's call: it waits the budget, the
 * margin and the slack, so a lock that is merely busy is never reported as a
 * failure, and one that stays taken longer is a retryable error.
 */
export function refreshLockOptions(budgetMs: number): RefreshLockOptions {
  return {
    leaseMs: 2 * (budgetMs + RETRY_BUDGET_MARGIN_MS) + REFRESH_LOCK_WAIT_SLACK_MS,
    waitMs: budgetMs + RETRY_BUDGET_MARGIN_MS + REFRESH_LOCK_WAIT_SLACK_MS,
  };
}

export class TokenKeeper {
  private readonly flights = new SingleFlight<ConnectionRecord>();

  constructor(private readonly deps: TokenKeeperDeps) {}

  /** True when this connection's access token expires and can be renewed. */
  canRefresh(record: ConnectionRecord): boolean {
    return record.hasRefreshToken && record.accessTokenExpiresAt !== undefined && this.deps.definition.refreshToken !== undefined;
  }

  /**
   * Runs `call` with a usable access token. A token due to expire is
   * refreshed first; a token the provider rejects is refreshed once and the
   * call repeated once. With `scan`, the token is read as a walk over every
   * connection reads it (Vault.readSecrets).
   */
  async withAccessToken<T>(record: ConnectionRecord, call: (accessToken: string) => Promise<T>, options?: { scan?: boolean }): Promise<T> {
    if (record.tokenRefreshStatus === "failed") throw this.refreshFailed(record);
    let current = record;
    if (this.canRefresh(current) && refreshDue(current, this.deps.clock.now())) current = await this.refresh(current);
    // The token read with the record (no second query): one another instance replaced since is rejected, and renewed below.
    const { accessToken } = await this.deps.vault.readSecrets(current, { asRead: true, ...(options?.scan ? { scan: true } : {}) });
    try {
      return await call(accessToken);
    } catch (error) {
      if (!(error instanceof IntegrationError) || !this.canRefresh(current) || !this.isRejection(error)) throw error;
      const renewed = await this.refresh(current);
      const { accessToken: fresh } = await this.deps.vault.readSecrets(renewed, options?.scan ? { scan: true } : undefined);
      return call(fresh);
    }
  }

  /**
   * Refreshes the connection's access token (once for all concurrent callers)
   * and answers the record that holds the newest one.
   */
  refresh(record: ConnectionRecord): Promise<ConnectionRecord> {
    return this.flights.run(record.id, () => this.exclusive(record, () => this.refreshLocked(record)));
  }

  /**
   * Runs `task` holding the connection's refresh lock: no refresh, here or
   * in another instance, runs meanwhile. A lock that stays taken for the
   * whole wait is a retryable error, never an unexpected one.
   */
  async exclusive<T>(record: ConnectionRecord, task: () => Promise<T>): Promise<T> {
    const { vault, definition } = this.deps;
    try {
      return await vault.withRefreshLock(record.id, refreshLockOptions(definition.retryPolicy.budgetMs), task);
    } catch (error) {
      if (!(error instanceof RefreshLockTimeoutError) || error.connectionId !== record.id) throw error;
      throw new IntegrationError({
        type: "upstream",
        code: ErrorCodes.REFRESH_LOCK_TIMEOUT,
        provider: record.provider,
        retryAfterSeconds: 1,
        message: `another request has been refreshing or disconnecting this ${definition.displayName} connection for ${Math.round(error.waitedMs / 1000)} s; retry shortly`,
        cause: error,
      });
    }
  }

  private async refreshLocked(seen: ConnectionRecord): Promise<ConnectionRecord> {
    const { vault, definition, ctx, clock } = this.deps;
    const current = await vault.findConnection({ userId: seen.userId, provider: seen.provider, id: seen.id });
    if (!current || current.revokedAt) {
      throw connectionRevoked(seen.provider, definition.displayName, seen.id);
    }
    if (current.tokenRefreshStatus === "failed") throw this.refreshFailed(current);
    // Another caller or instance refreshed since this one read the record: use its token.
    if (current.version !== seen.version && !refreshDue(current, clock.now())) return current;
    // Read as a scan's: these tokens are replaced in a moment, so nothing kept is pushed out for them.
    const { refreshToken } = await vault.readSecrets(current, { scan: true });
    if (!refreshToken || !definition.refreshToken) throw this.refreshFailed(current);
    let grant: TokenGrant;
    try {
      grant = await definition.refreshToken(ctx, refreshToken);
    } catch (error) {
      if (!(error instanceof IntegrationError)) {
        this.told({ provider: current.provider, outcome: "failed" });
        throw error;
      }
      this.told({ provider: current.provider, outcome: error.type === "auth" ? "rejected" : "failed", errorType: error.type });
      if (error.type === "auth") {
        // The grant is gone (revoked, expired, reused): only the user can fix that.
        await vault.setTokenRefreshStatus(current.id, "failed");
        const failed = new IntegrationError({
          type: "auth",
          code: error.code ?? ErrorCodes.REFRESH_FAILED,
          status: error.status,
          provider: current.provider,
          message: `${definition.displayName} refused to refresh the token (${error.code ?? "auth"}); the user must connect again`,
          cause: error,
        });
        await this.deps.recordOutcome(current, failed);
        throw failed;
      }
      // Transient: retried within budget already; the connection is degraded, not down.
      await this.deps.recordOutcome(current, error);
      throw error;
    }
    const now = clock.now();
    const updated = await vault.updateTokens({
      id: current.id,
      expectedVersion: current.version,
      // No new refresh token in the answer keeps the stored one.
      secrets: { accessToken: grant.accessToken, ...(grant.refreshToken ? { refreshToken: grant.refreshToken } : {}) },
      tokenMasked: maskSecret(grant.accessToken),
      ...(grant.expiresInSeconds === undefined
        ? {}
        : { accessTokenExpiresAt: new Date(now + grant.expiresInSeconds * 1000).toISOString(), accessTokenIssuedAt: new Date(now).toISOString() }),
      tokenRefreshStatus: "healthy",
    });
    // Counted once stored (a grant revoked below, its connection gone meanwhile, was not a refresh that took).
    if (updated) {
      this.told({ provider: current.provider, outcome: "refreshed" });
      return updated;
    }
    // Lost a race with another writer: what is stored now is newer than what this read.
    const stored = await vault.findConnection({ userId: current.userId, provider: current.provider, id: current.id });
    if (!stored || stored.revokedAt) {
      // Disconnected while the provider answered (only when a lease lapsed under a holder that was too
      // slow): nobody will ever use or revoke this grant, so it is revoked now rather than left live.
      await definition
        .revoke(ctx, { connection: current, accessToken: grant.accessToken, ...(grant.refreshToken ? { refreshToken: grant.refreshToken } : {}) })
        .catch(() => undefined);
      throw connectionRevoked(current.provider, definition.displayName, current.id);
    }
    this.told({ provider: current.provider, outcome: "refreshed" });
    return stored;
  }

  private told(record: RefreshRecord): void {
    try {
      this.deps.onRefresh?.(record);
    } catch {
      // A metrics hook's failure is not the refresh's.
    }
  }

  private isRejection(error: IntegrationError): boolean {
    if (error.type !== "auth") return false;
    return this.deps.definition.isTokenRejection ? this.deps.definition.isTokenRejection(error) : error.status === 401;
  }

  private refreshFailed(record: ConnectionRecord): IntegrationError {
    return new IntegrationError({
      type: "auth",
      code: ErrorCodes.REFRESH_FAILED,
      provider: record.provider,
      message: `the ${this.deps.definition.displayName} token could not be refreshed; the user must connect again`,
    });
  }
}
