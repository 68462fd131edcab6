/**
 * Builds a {@link Tier1ConnectorLifecycle} from a connector's declaration.
 * This is the only place that sequences OAuth, storage, provider calls and
 * health; connectors never do.
 */
import type { Logger } from "pino";
import type { ConnectorContext, ConnectorDefinition, ConnectorSettings, Identity, TokenGrant } from "./connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ConnectorLifecycle, Tier1OAuthStartResult } from "./contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "./errors.js";
import { isValidUserId, USER_ID_RULE } from "./userId.js";
import { healthFromOutcome, toEnvelope } from "./health.js";
import { REFRESH_LOCK_TIMEOUT, TokenKeeper } from "./tokens.js";
import { checkBaseUrl, type BaseUrlPolicy } from "./baseUrl.js";
import { ProviderHttp, systemClock, type AttemptRecord, type Clock } from "./http.js";
import { maskSecret } from "./mask.js";
import {
  buildUrl,
  checkCompletion,
  checkReturnTo,
  codeChallengeS256,
  createCodeVerifier,
  isBrowserBinding,
  OAUTH_STATE_TTL_SECONDS,
  openState,
  readAuthorizationResponse,
  returnToOf as returnToOfState,
  sealState,
} from "./oauth.js";
import type { ConnectionRecord, ProviderRevocation, Sealer, StoredHealth, Vault } from "./vault.js";

export type LifecycleDeps = {
  vault: Vault;
  sealer: Sealer;
  settings: ConnectorSettings;
  /** Every provider id, so a state presented at the wrong callback is named as such. */
  knownProviders: readonly string[];
  timeoutMs: number;
  clock?: Clock;
  fetch?: typeof fetch;
  logger?: Pick<Logger, "debug" | "info" | "warn" | "error">;
  onAttempt?: (record: AttemptRecord) => void;
  /** How user-supplied base URLs are checked (allow-list, resolver); required by connectors that take one. */
  baseUrlPolicy?: BaseUrlPolicy;
  /** The fetch for user-supplied base URLs, guarded at connect time (see guardedFetch.ts). */
  guardedFetch?: typeof fetch;
  /** URL prefixes a flow may return the browser to after the callback. */
  returnUrlAllowlist?: readonly string[];
};

/** Codes and pasted tokens longer than this are not real ones. */
const MAX_CREDENTIAL_LENGTH = 4096;

export type ConnectionPublic = Tier1ConnectionPublic<string, Record<string, unknown>>;
export type ConnectionHealth = Tier1ConnectionHealth<string, Record<string, unknown>>;

export type { ProviderRevocation } from "./vault.js";

export type DisconnectReport = {
  connection: ConnectionPublic;
  revocation: ProviderRevocation;
  note?: string;
};

/** The contract's lifecycle plus additive options (minor-release extensions). */
export interface ConnectorLifecycle<TPublic = ConnectionPublic, THealth = ConnectionHealth>
  extends Tier1ConnectorLifecycle<TPublic, THealth> {
  readonly id: string;
  readonly definition: ConnectorDefinition;
  readonly settings: ConnectorSettings;
  /**
   * `returnTo`: where the callback sends the browser afterwards; it must be on the operator's allow-list.
   * `browserBinding` (from `createBrowserBinding`, kept in the user's browser, e.g. an HttpOnly cookie):
   * the flow can then be completed only with it or with the user's identity (RFC 9700 §4.5).
   */
  beginOAuth(userId: string, options?: { returnTo?: string; browserBinding?: string }): Tier1OAuthStartResult;
  /** The return address sealed in a state this connector issued (undefined for any other). */
  returnToOf(state: string | null): string | undefined;
  /** `baseUrl` (self-hosted or per-site instance) and `email` (Jira API tokens) for connectors that take them. */
  connectApiKey(params: { userId: string; apiKey?: string; accessToken?: string; baseUrl?: string; email?: string }): Promise<TPublic>;
  /**
   * `userId` binds the completion to the caller (who authenticated that user); `browserBinding` is the
   * one the flow was begun with; `iss` is the callback's RFC 9207 parameter. A flow begun with a binding
   * needs the binding or `userId`.
   */
  completeOAuth(params: { code: string; state: string; userId?: string; iss?: string; browserBinding?: string }): Promise<TPublic>;
  /**
   * The browser's bearer-less callback: the whole authorization response (code, state, iss, or error),
   * and the binding that browser holds. Without the binding the state was begun with, nothing is exchanged.
   */
  completeOAuthCallback(query: URLSearchParams, options?: { browserBinding?: string }): Promise<TPublic>;
  listConnections(userId: string, options?: { includeRevoked?: boolean }): Promise<TPublic[]>;
  testConnection(userId: string, options?: { connectionId?: string }): Promise<Record<string, string | undefined>>;
  health(userId: string, options?: { connectionId?: string }): Promise<THealth>;
  disconnectWithReport(userId: string, credentialId: string): Promise<DisconnectReport | undefined>;
  /**
   * Background refresh of one connection (the refresh-ahead job): once for
   * all callers and instances; "skipped" when there is nothing to refresh or
   * another caller already did.
   */
  refreshConnection(record: ConnectionRecord): Promise<"refreshed" | "skipped">;
  /** Settles a revocation owed since a disconnect could not reach the provider (the revoke-pending job). */
  retryRevocation(record: ConnectionRecord): Promise<ProviderRevocation>;
}

export function createConnectorLifecycle<TPublic = ConnectionPublic, THealth = ConnectionHealth>(
  definition: ConnectorDefinition,
  deps: LifecycleDeps,
): ConnectorLifecycle<TPublic, THealth> {
  const clock = deps.clock ?? systemClock;
  const provider = definition.id;
  const name = definition.displayName;
  const http = new ProviderHttp({
    provider,
    displayName: name,
    classify: definition.classify,
    policy: definition.retryPolicy,
    timeoutMs: deps.timeoutMs,
    clock,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.onAttempt ? { onAttempt: deps.onAttempt } : {}),
  });
  // Credentials of configured endpoints only ever go to those endpoints' origins.
  const ctx: ConnectorContext = { settings: deps.settings, http: http.boundTo(configuredOrigins(definition, deps.settings)) };
  /** The context of one connection: its user-supplied instance, or the configured endpoints. */
  const contextFor = (baseUrl: string | undefined, retry = true): ConnectorContext => {
    const base: ConnectorContext = baseUrl
      ? { settings: deps.settings, http: http.boundTo([new URL(baseUrl).origin], deps.guardedFetch), baseUrl }
      : ctx;
    return retry ? base : { ...base, http: base.http.withoutRetries() };
  };
  const nowIso = (): string => new Date(clock.now()).toISOString();

  const toPublic = (record: ConnectionRecord): ConnectionPublic => {
    const base = {
      id: record.id,
      userId: record.userId,
      authMethod: record.authMethod,
      tokenMasked: record.tokenMasked,
      createdAt: record.createdAt,
      ...(record.revokedAt ? { revokedAt: record.revokedAt } : {}),
    };
    return { ...base, scopes: record.scopes, ...record.metadata } as ConnectionPublic;
  };
  const publicMetadata = (record: ConnectionRecord): Record<string, unknown> => ({ scopes: record.scopes, ...record.metadata });

  /** The connection `connectionId`, or the user's newest active one. */
  const pickConnection = async (userId: string, connectionId?: string): Promise<ConnectionRecord> => {
    if (connectionId !== undefined) {
      checkConnectionId(connectionId, provider);
      const found = await deps.vault.findConnection({ userId, provider, id: connectionId });
      if (!found) throw notFound(provider, connectionId);
      return found;
    }
    const [newest] = await deps.vault.listConnections({ userId, provider });
    if (!newest) {
      throw new IntegrationError({
        type: "schema",
        code: ErrorCodes.NO_ACTIVE_CONNECTION,
        provider,
        message: `no active ${name} connection for this user; connect one first`,
      });
    }
    return newest;
  };

  /** The who-am-I call with a usable token (refreshed first if due); one attempt unless `retry`. */
  const probe = async (record: ConnectionRecord, retry: boolean): Promise<Identity> => {
    const identityCtx = contextFor(record.baseUrl, retry);
    return tokens.withAccessToken(record, (accessToken) =>
      definition.whoAmI(identityCtx, { accessToken, authMethod: record.authMethod, metadata: record.metadata }),
    );
  };

  const recordProbe = async (record: ConnectionRecord, error?: IntegrationError): Promise<StoredHealth> => {
    const health = healthFromOutcome({
      checkedAt: nowIso(),
      ...(error ? { error } : {}),
      lastKnownAuth: record.lastHealth?.auth ?? true,
      displayName: name,
    });
    await deps.vault.recordHealth(record.id, health);
    return health;
  };

  // A failed refresh is recorded by the token keeper (the refresh-ahead job has no probe to do it);
  // the test or health probe that met it then reports that outcome instead of writing it again.
  const recordedByRefresh = new WeakMap<IntegrationError, StoredHealth>();
  const tokens = new TokenKeeper({
    definition,
    vault: deps.vault,
    ctx,
    clock,
    recordOutcome: async (record, error) => {
      const health = await recordProbe(record, error);
      if (error) recordedByRefresh.set(error, health);
      return health;
    },
  });

  const store = async (input: {
    userId: string;
    authMethod: string;
    accessToken: string;
    refreshToken?: string;
    expiresInSeconds?: number;
    scopes: string[];
    metadata: Record<string, unknown>;
    baseUrl?: string;
  }): Promise<ConnectionRecord> => {
    const missing = definition.requiredMetadata.filter((key) => input.metadata[key] === undefined || input.metadata[key] === null);
    if (missing.length > 0) {
      throw new IntegrationError({
        type: "upstream",
        code: ErrorCodes.UNPARSABLE_RESPONSE,
        provider,
        message: `${name} did not tell us ${missing.join(", ")} for this credential`,
      });
    }
    const now = clock.now();
    const expiresAt = input.expiresInSeconds === undefined ? undefined : new Date(now + input.expiresInSeconds * 1000).toISOString();
    return deps.vault.createConnection({
      userId: input.userId,
      provider,
      authMethod: input.authMethod,
      tokenMasked: maskSecret(input.accessToken),
      scopes: input.scopes,
      metadata: input.metadata,
      accessToken: input.accessToken,
      ...(input.refreshToken === undefined ? {} : { refreshToken: input.refreshToken }),
      ...(expiresAt === undefined ? {} : { accessTokenExpiresAt: expiresAt, accessTokenIssuedAt: new Date(now).toISOString() }),
      // Refresh only matters for tokens that expire and can be renewed (a pasted token that expires cannot).
      tokenRefreshStatus: expiresAt !== undefined && input.refreshToken !== undefined ? "healthy" : "not_applicable",
      createdAt: nowIso(),
      ...(input.baseUrl === undefined ? {} : { baseUrl: input.baseUrl }),
    });
  };

  /**
   * Checks the authorization response, the state and who completes it, exchanges the code, stores the
   * connection. `proof`: the user the caller authenticated, the browser binding presented, and whether
   * this is the bearer-less callback.
   */
  const complete = async (response: URLSearchParams, proof: { userId?: string; browserBinding?: string; viaCallback: boolean }): Promise<ConnectionPublic> => {
    const { userId } = proof;
    const { code, state } = readAuthorizationResponse(response, { provider, displayName: name, issuer: issuerOf(definition, deps.settings) });
    const opened = openState(deps.sealer, {
      provider,
      state,
      nowMs: clock.now(),
      knownProviders: deps.knownProviders,
      ...(userId !== undefined ? { userId } : {}),
    });
    // Before the state is used up and the code spent: a refused completion leaves the user's flow open.
    checkCompletion(opened, { provider, ...proof });
    const firstUse = await deps.vault.consumeOAuthState({ stateHash: opened.hash, provider, expiresAt: opened.expiresAt.toISOString() });
    if (!firstUse) {
      throw new IntegrationError({
        type: "schema",
        code: ErrorCodes.STATE_REUSED,
        field: "state",
        provider,
        message: "state has already been used; start the connection again",
      });
    }
    const grant = await definition.exchangeCode(ctx, { code, ...(opened.codeVerifier ? { codeVerifier: opened.codeVerifier } : {}) });
    // The code is spent: from here on a transient failure to describe the grant must not lose it
    // (it is stored when the token response told enough), and a grant that cannot be stored is
    // revoked rather than left live at the provider with nobody holding it.
    let identity: Identity | undefined;
    let identityError: IntegrationError | undefined;
    let record: ConnectionRecord;
    try {
      try {
        identity = await definition.whoAmI(ctx, { accessToken: grant.accessToken, authMethod: definition.oauthAuthMethod, metadata: grant.metadata });
      } catch (error) {
        if (!(error instanceof IntegrationError) || !error.retryable) throw error;
        identityError = error;
        deps.logger?.warn({ err: error.message }, "who-am-I failed after a successful code exchange; storing the grant");
      }
      record = await store({
        userId: opened.userId,
        authMethod: definition.oauthAuthMethod,
        accessToken: grant.accessToken,
        ...(grant.refreshToken === undefined ? {} : { refreshToken: grant.refreshToken }),
        ...(grant.expiresInSeconds === undefined ? {} : { expiresInSeconds: grant.expiresInSeconds }),
        scopes: identity?.scopes ?? grant.scopes,
        metadata: { ...grant.metadata, ...identity?.metadata },
      });
    } catch (error) {
      throw await abandonGrant(grant, opened.userId, identityError ?? error);
    }
    await recordProbe(record, identityError);
    deps.logger?.info({ connectionId: record.id, userId: record.userId }, "connection created through OAuth");
    return toPublic(record);
  };

  /**
   * Revokes a connection's credential at the provider, and says how it went.
   * A failure other than the provider refusing the credential leaves the
   * revocation owed (`pending`): the encrypted tokens are kept for a retry.
   */
  const revokeAtProvider = async (record: ConnectionRecord): Promise<{ revocation: ProviderRevocation; note?: string }> => {
    try {
      const secrets = await deps.vault.readSecrets(record);
      const revocation = await definition.revoke(contextFor(record.baseUrl), { connection: record, ...secrets });
      return revocation === "not_supported"
        ? { revocation, note: `${name} has no way to revoke this kind of credential; it was erased here (roll it at ${name} to be sure)` }
        : { revocation };
    } catch (error) {
      if (error instanceof IntegrationError && error.type === "auth") {
        return { revocation: "already_invalid", note: `${name} no longer accepted the credential, so there was nothing left to revoke` };
      }
      deps.logger?.warn({ connectionId: record.id, err: error instanceof Error ? error.message : String(error) }, "provider revocation failed");
      return {
        revocation: "pending",
        note: `${name} could not be reached to revoke the credential; it is disconnected here and the revocation is owed (retried in the background)`,
      };
    }
  };

  /** A user-supplied base URL, checked by the guard, or a schema error saying why not. */
  const checkedBaseUrl = async (value: string): Promise<string> => {
    if (!definition.acceptsBaseUrl) throw invalidInput("baseUrl", `${name} does not take a base URL`, provider);
    if (!deps.baseUrlPolicy) throw new Error(`${provider}: no base-URL policy configured`);
    return checkBaseUrl(value, deps.baseUrlPolicy, { provider });
  };

  /** Revokes a grant that could not be stored (best effort) and says so in the error. */
  const abandonGrant = async (grant: TokenGrant, userId: string, cause: unknown): Promise<unknown> => {
    if (!(cause instanceof IntegrationError)) return cause;
    const now = nowIso();
    const unsaved: ConnectionRecord = {
      id: "unsaved",
      userId,
      provider,
      authMethod: definition.oauthAuthMethod,
      tokenMasked: maskSecret(grant.accessToken),
      scopes: grant.scopes,
      metadata: grant.metadata,
      hasRefreshToken: grant.refreshToken !== undefined,
      tokenRefreshStatus: "not_applicable",
      createdAt: now,
      updatedAt: now,
      version: 0,
    };
    let outcome = "and could not be revoked; revoke the app's access at the provider";
    try {
      const revoked = await definition.revoke(ctx, { connection: unsaved, accessToken: grant.accessToken, ...(grant.refreshToken ? { refreshToken: grant.refreshToken } : {}) });
      outcome = revoked === "revoked" ? "so the grant was revoked again" : "and the provider cannot revoke it; revoke the app's access there";
    } catch {
      // Reported in the message below.
    }
    deps.logger?.warn({ err: cause.message }, "a grant could not be stored after the code exchange");
    return new IntegrationError({
      type: cause.type,
      ...(cause.code !== undefined ? { code: cause.code } : {}),
      ...(cause.status !== undefined ? { status: cause.status } : {}),
      provider,
      message: `${cause.message}; the connection was not stored ${outcome}`,
      cause,
    });
  };

  /**
   * Tries again a revocation owed since a disconnect could not reach the
   * provider; once the provider answers, the secrets are erased and the
   * outcome recorded. Call under the connection's lock.
   */
  const settleOwedRevocation = async (record: ConnectionRecord & { revokedAt: string }): Promise<{ record: ConnectionRecord; revocation: ProviderRevocation; note?: string }> => {
    const { revocation, note } = await revokeAtProvider(record);
    if (revocation === "pending") return { record, revocation, ...(note ? { note } : {}) };
    const updated = await deps.vault.markRevoked({
      userId: record.userId,
      provider,
      id: record.id,
      revokedAt: record.revokedAt,
      eraseSecrets: true,
      revocation,
      ...(revocation === "revoked" ? { providerRevokedAt: nowIso() } : {}),
    });
    deps.logger?.info({ connectionId: record.id, revocation }, "owed revocation settled");
    return { record: updated ?? record, revocation, ...(note ? { note } : {}) };
  };

  /**
   * A DELETE of a connection already disconnected answers what is true now:
   * a revocation still owed is tried again (and may still be pending), and
   * otherwise the outcome of the first disconnect stands.
   */
  const repeatDisconnect = async (record: ConnectionRecord & { revokedAt?: string }): Promise<DisconnectReport> => {
    const revokedAt = record.revokedAt as string;
    if (!record.providerRevokedAt && record.revocation === "pending") {
      const settled = await settleOwedRevocation({ ...record, revokedAt });
      return { connection: toPublic(settled.record), revocation: settled.revocation, note: `already disconnected; ${settled.note ?? "the owed revocation is now settled"}` };
    }
    // Connections disconnected before the outcome was recorded: confirmed, or erased without confirmation.
    const revocation: ProviderRevocation = record.providerRevokedAt ? "revoked" : (record.revocation ?? "already_invalid");
    return { connection: toPublic(record), revocation, note: "already disconnected" };
  };

  const lifecycle: ConnectorLifecycle<ConnectionPublic, ConnectionHealth> = {
    id: provider,
    definition,
    settings: deps.settings,

    beginOAuth(userId: string, options?: { returnTo?: string; browserBinding?: string }): Tier1OAuthStartResult {
      checkUserId(userId, provider);
      const returnTo = options?.returnTo === undefined ? undefined : checkReturnTo(options.returnTo, deps.returnUrlAllowlist ?? [], provider);
      const browserBinding = options?.browserBinding;
      if (browserBinding !== undefined && !isBrowserBinding(browserBinding)) {
        throw invalidInput("browserBinding", "must be 43 to 128 base64url characters (use createBrowserBinding())", provider);
      }
      const codeVerifier = definition.pkce ? createCodeVerifier() : undefined;
      const { state } = sealState(deps.sealer, {
        provider,
        userId,
        nowMs: clock.now(),
        ttlSeconds: OAUTH_STATE_TTL_SECONDS,
        ...(codeVerifier ? { codeVerifier } : {}),
        ...(returnTo ? { returnTo } : {}),
        ...(browserBinding !== undefined ? { browserBinding } : {}),
      });
      const authUrl = buildUrl(deps.settings.endpoints.authorizeUrl, {
        ...definition.authorizationParams(deps.settings),
        state,
        ...(codeVerifier ? { code_challenge: codeChallengeS256(codeVerifier), code_challenge_method: "S256" } : {}),
      });
      return { authUrl, state, expiresInSeconds: OAUTH_STATE_TTL_SECONDS, ...(codeVerifier ? { codeVerifier } : {}) };
    },

    returnToOf(state) {
      return returnToOfState(deps.sealer, { provider, state });
    },

    async completeOAuth(params) {
      checkCredential("code", params.code, provider);
      checkCredential("state", params.state, provider);
      if (params.iss !== undefined) checkCredential("iss", params.iss, provider);
      if (params.userId !== undefined) checkUserId(params.userId, provider);
      if (params.browserBinding !== undefined) checkCredential("browserBinding", params.browserBinding, provider);
      const response = new URLSearchParams({ code: params.code, state: params.state, ...(params.iss !== undefined ? { iss: params.iss } : {}) });
      return complete(response, {
        ...(params.userId !== undefined ? { userId: params.userId } : {}),
        ...(params.browserBinding !== undefined ? { browserBinding: params.browserBinding } : {}),
        viaCallback: false,
      });
    },

    async completeOAuthCallback(query, options) {
      for (const field of ["code", "state", "iss"]) {
        const value = query.get(field);
        if (value !== null) checkCredential(field, value, provider);
      }
      // A cookie is whatever the browser sent: one that is not a binding is simply not this flow's.
      const browserBinding = options?.browserBinding;
      return complete(query, { ...(browserBinding !== undefined ? { browserBinding } : {}), viaCallback: true });
    },

    async connectApiKey(params) {
      checkUserId(params.userId, provider);
      if (params.apiKey !== undefined) checkCredential("apiKey", params.apiKey, provider);
      if (params.accessToken !== undefined) checkCredential("accessToken", params.accessToken, provider);
      const baseUrl = params.baseUrl === undefined ? undefined : await checkedBaseUrl(params.baseUrl);
      if (params.email !== undefined) checkCredential("email", params.email, provider);
      const parsed = definition.parseApiKey({
        ...(params.apiKey !== undefined ? { apiKey: params.apiKey } : {}),
        ...(params.accessToken !== undefined ? { accessToken: params.accessToken } : {}),
        ...(baseUrl !== undefined ? { baseUrl } : {}),
        ...(params.email !== undefined ? { email: params.email } : {}),
      });
      const identity = await definition.whoAmI(contextFor(baseUrl), { accessToken: parsed.token, authMethod: parsed.authMethod, metadata: parsed.metadata ?? {} });
      const record = await store({
        userId: params.userId,
        authMethod: parsed.authMethod,
        accessToken: parsed.token,
        ...(identity.expiresInSeconds === undefined ? {} : { expiresInSeconds: identity.expiresInSeconds }),
        scopes: identity.scopes ?? parsed.scopes ?? [],
        metadata: { ...parsed.metadata, ...identity.metadata },
        ...(baseUrl !== undefined ? { baseUrl } : {}),
      });
      await recordProbe(record);
      deps.logger?.info({ connectionId: record.id, userId: record.userId, authMethod: parsed.authMethod }, "connection created with a key");
      return toPublic(record);
    },

    async listConnections(userId, options) {
      checkUserId(userId, provider);
      const records = await deps.vault.listConnections({ userId, provider, includeRevoked: options?.includeRevoked ?? false });
      return records.map(toPublic);
    },

    async testConnection(userId, options) {
      checkUserId(userId, provider);
      const record = await pickConnection(userId, options?.connectionId);
      if (record.revokedAt) throw revoked(provider, record.id);
      try {
        const identity = await probe(record, true);
        await recordProbe(record);
        return {
          connectionId: record.id,
          authMethod: record.authMethod,
          ...identity.summary,
          ...(identity.scopes ? { scopes: identity.scopes.join(",") } : {}),
        };
      } catch (error) {
        if (error instanceof IntegrationError && !recordedByRefresh.has(error) && !isOwnBusiness(error)) await recordProbe(record, error);
        throw error;
      }
    },

    async health(userId, options) {
      checkUserId(userId, provider);
      let record: ConnectionRecord;
      try {
        record = await pickConnection(userId, options?.connectionId);
      } catch (error) {
        if (error instanceof IntegrationError && error.code === ErrorCodes.NO_ACTIVE_CONNECTION) {
          return toEnvelope({
            health: { status: "down", checkedAt: nowIso(), auth: false, apiReachable: false, rateLimited: false, errorType: "auth", message: error.message },
            metadata: {},
          });
        }
        throw error;
      }
      const envelopeOf = (health: StoredHealth, current: ConnectionRecord = record): ConnectionHealth =>
        toEnvelope({ health, authMethod: current.authMethod, tokenRefreshStatus: current.tokenRefreshStatus, metadata: publicMetadata(current) });
      if (record.revokedAt) {
        return envelopeOf({
          status: "down",
          checkedAt: nowIso(),
          auth: false,
          apiReachable: false,
          rateLimited: false,
          errorType: "auth",
          message: `this ${name} connection was disconnected at ${record.revokedAt}; connect again`,
        });
      }
      let outcome: StoredHealth;
      try {
        await probe(record, false);
        outcome = await recordProbe(record);
      } catch (error) {
        // Our own state (another instance still refreshing) says nothing of the connection: answered, not recorded.
        if (!(error instanceof IntegrationError) || isOwnBusiness(error)) throw error;
        outcome = recordedByRefresh.get(error) ?? (await recordProbe(record, error));
      }
      // A refresh may have changed the token, its expiry or its refresh status: report what is stored now.
      const current = await deps.vault.findConnection({ userId, provider, id: record.id });
      return envelopeOf(outcome, current ?? record);
    },

    async disconnectWithReport(userId, credentialId) {
      checkUserId(userId, provider);
      checkConnectionId(credentialId, provider);
      const found = await deps.vault.findConnection({ userId, provider, id: credentialId });
      if (!found) return undefined;
      // Under the refresh lock: a refresh in flight anywhere finishes first, and what is revoked is
      // what is current after it (read again here), never a grant that a refresh just replaced.
      return tokens.exclusive(found, async () => {
        const record = (await deps.vault.findConnection({ userId, provider, id: credentialId })) ?? found;
        if (record.revokedAt) return repeatDisconnect(record);
        const { revocation, note } = await revokeAtProvider(record);
        const revokedAt = nowIso();
        const updated = await deps.vault.markRevoked({
          userId,
          provider,
          id: record.id,
          revokedAt,
          eraseSecrets: revocation !== "pending",
          revocation,
          ...(revocation === "revoked" ? { providerRevokedAt: revokedAt } : {}),
        });
        deps.logger?.info({ connectionId: record.id, userId, revocation }, "connection disconnected");
        return { connection: toPublic(updated ?? record), revocation, ...(note ? { note } : {}) };
      });
    },

    async disconnect(userId, credentialId) {
      return (await lifecycle.disconnectWithReport(userId, credentialId)) !== undefined;
    },

    async retryRevocation(record) {
      if (!record.revokedAt || record.providerRevokedAt) return "revoked";
      return tokens.exclusive(record, async () => {
        const current = (await deps.vault.findConnection({ userId: record.userId, provider, id: record.id })) ?? record;
        // Settled meanwhile (a repeated DELETE, another instance's job): nothing owed any more.
        if (current.providerRevokedAt) return "revoked";
        if (current.revocation !== undefined && current.revocation !== "pending") return current.revocation;
        return (await settleOwedRevocation({ ...current, revokedAt: current.revokedAt ?? (record.revokedAt as string) })).revocation;
      });
    },

    async refreshConnection(record) {
      if (!tokens.canRefresh(record)) return "skipped";
      const before = record.version;
      const after = await tokens.refresh(record);
      return after.version !== before ? "refreshed" : "skipped";
    },
  };
  return lifecycle as unknown as ConnectorLifecycle<TPublic, THealth>;
}

/** Origins of the configured endpoints (and the connector's extra ones): where its credentials may go. */
function configuredOrigins(definition: ConnectorDefinition, settings: ConnectorSettings): string[] {
  const { endpoints } = settings;
  const urls = [endpoints.authorizeUrl, endpoints.tokenUrl, endpoints.apiUrl, ...(endpoints.revokeUrl ? [endpoints.revokeUrl] : [])];
  return [...new Set([...urls.map((u) => new URL(u).origin), ...(definition.extraOrigins?.(settings) ?? [])])];
}

/**
 * The issuer identifier (RFC 9207) the authorization response may name: the
 * provider's own in live mode (or the origin of a self-hosted authorize
 * URL), the sandbox's origin in sandbox mode.
 */
function issuerOf(definition: ConnectorDefinition, settings: ConnectorSettings): string {
  if (settings.mode === "sandbox" && settings.sandboxUrl) return settings.sandboxUrl;
  const origin = new URL(settings.endpoints.authorizeUrl).origin;
  return definition.issuers?.find((issuer) => new URL(issuer).origin === origin) ?? origin;
}

function checkUserId(userId: unknown, provider: string): void {
  if (!isValidUserId(userId)) throw invalidInput("userId", `userId must be ${USER_ID_RULE}`, provider);
}

/** An error about this service's own state, not the connection's: health does not record it. */
function isOwnBusiness(error: IntegrationError): boolean {
  return error.code === REFRESH_LOCK_TIMEOUT;
}

function checkCredential(field: string, value: unknown, provider: string): void {
  if (typeof value !== "string" || value.trim() === "") throw invalidInput(field, `${field} must be a non-empty string`, provider);
  if (value.length > MAX_CREDENTIAL_LENGTH) throw invalidInput(field, `${field} must be at most ${MAX_CREDENTIAL_LENGTH} characters`, provider);
  if (/[\s\p{Cc}]/u.test(value)) throw invalidInput(field, `${field} must not contain whitespace or control characters`, provider);
}

/** Connection ids are ours (`conn_` + base64url); anything else cannot exist. */
const CONNECTION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

function checkConnectionId(id: unknown, provider: string): void {
  if (typeof id !== "string" || !CONNECTION_ID_PATTERN.test(id)) throw notFound(provider, String(id));
}

function notFound(provider: string, id: string): IntegrationError {
  return new IntegrationError({
    type: "schema",
    code: ErrorCodes.CONNECTION_NOT_FOUND,
    provider,
    field: "connectionId",
    message: `no ${provider} connection ${JSON.stringify(id.slice(0, 80))} for this user`,
  });
}

function revoked(provider: string, id: string): IntegrationError {
  return new IntegrationError({
    type: "auth",
    code: "connection_revoked",
    provider,
    message: `${provider} connection ${id} was disconnected; connect again`,
  });
}
