/**
 * The session of one connector: everything an authenticated call with a
 * stored connection needs, built once per connector and shared by the
 * lifecycle's parts (connect, connections, health, disconnect). It holds the
 * provider client bound to the configured origins (or a connection's own
 * base URL), the token keeper (refresh ahead of expiry, single flight,
 * lock), and the one way to make an authenticated call with a stored
 * connection: `call` (the proxy's, and the who-am-I probe's).
 */
import type { Dispatcher } from "undici";
import type { Logger } from "pino";
import type { BaseUrlPolicy } from "./baseUrl.js";
import { credentialOf, identify, paceKeyOf, senderFor } from "./call.js";
import type { ApiCall, ConnectorContext, ConnectorDefinition, ConnectorSettings, Credential, Identity } from "./connector.js";
import { IntegrationError, isPermissionRefusal } from "./errors.js";
import { healthFromOutcome } from "./healthEnvelope.js";
import { ProviderHttp, systemClock, type AttemptRecord, type Clock, type ProviderPacer, type ProviderResponse } from "./http.js";
import type { ProxyLimits } from "./proxyLimits.js";
import { isOwnBusiness, TokenKeeper, type RefreshRecord } from "./tokens.js";
import type { ConnectionRecord, Sealer, StoredHealth, Vault } from "./vault.js";

export type LifecycleDeps = {
  vault: Vault;
  sealer: Sealer;
  settings: ConnectorSettings;
  /** Every provider id, so a state presented at the wrong callback is named as such. */
  knownProviders: readonly string[];
  timeoutMs: number;
  clock?: Clock;
  /** Provider calls go through this fetch when given, else with undici's `request` over `dispatcher` (see exchange.ts). */
  fetch?: typeof fetch;
  dispatcher?: Dispatcher;
  logger?: Pick<Logger, "debug" | "info" | "warn" | "error">;
  onAttempt?: (record: AttemptRecord) => void;
  /** Every refresh that reached the provider, by outcome (metrics). */
  onRefresh?: (record: RefreshRecord) => void;
  /** How user-supplied base URLs are checked (allow-list, resolver); required by connectors that take one. */
  baseUrlPolicy?: BaseUrlPolicy;
  /** The fetch for user-supplied base URLs, guarded at connect time (see guardedFetch.ts). */
  guardedFetch?: typeof fetch;
  /** ...or the guarded pools to make their requests over (createGuardedDispatcher), which take precedence. */
  guardedDispatcher?: Dispatcher;
  /** URL prefixes a flow may return the browser to after the callback. */
  returnUrlAllowlist?: readonly string[];
  /** Bounds on proxied calls' bodies. */
  proxyLimits?: ProxyLimits;
  /** Paces every call of a stored connection by its account's rate budget (shared between instances on PostgreSQL). */
  pacer?: ProviderPacer;
};

export type Session = {
  definition: ConnectorDefinition;
  deps: LifecycleDeps;
  provider: string;
  /** The provider's name for messages. */
  name: string;
  clock: Clock;
  /** The context of the configured endpoints: credentials go only to their origins. */
  ctx: ConnectorContext;
  /** The context of one connection: its user-supplied instance, or the configured endpoints; one attempt unless `retry`. */
  contextFor(baseUrl: string | undefined, retry?: boolean): ConnectorContext;
  nowIso(): string;
  tokens: TokenKeeper;
  /** Failed refreshes the token keeper already recorded as health: a probe that met one reports it instead of writing it again. */
  recordedByRefresh: WeakMap<IntegrationError, StoredHealth>;
  /** The who-am-I call with a usable token (refreshed first if due); one attempt unless `retry`; the token read as a scan's with `scan` (the sweep's). */
  probe(record: ConnectionRecord, retry: boolean, options?: { scan?: boolean }): Promise<Identity>;
  /**
   * One authenticated call with a stored connection: a usable token
   * (refreshed ahead of expiry, and once after the provider rejects it),
   * authorized the connector's way, sent to the connection's API base only,
   * classified and retried within the connector's budget. What it saw
   * updates the connection's health when it tells something new.
   */
  call(record: ConnectionRecord, call: ApiCall, options?: { retry?: boolean }): Promise<ProviderResponse>;
  /** The one place health is recorded: what a probe (or a refresh) saw, stored with the connection. */
  recordHealth(record: ConnectionRecord, error?: IntegrationError, options?: { grouped?: boolean }): Promise<StoredHealth>;
};

export function createSession(definition: ConnectorDefinition, deps: LifecycleDeps): Session {
  const clock = deps.clock ?? systemClock;
  const http = new ProviderHttp({
    provider: definition.id,
    displayName: definition.displayName,
    classify: definition.classify,
    policy: definition.retryPolicy,
    timeoutMs: deps.timeoutMs,
    clock,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
    ...(deps.onAttempt ? { onAttempt: deps.onAttempt } : {}),
    ...(deps.pacer ? { pacer: deps.pacer } : {}),
    ...(definition.rateLimit ? { rateLimit: definition.rateLimit } : {}),
    ...(definition.idempotencyKeyHeader ? { idempotencyKeyHeader: definition.idempotencyKeyHeader } : {}),
  });
  // Credentials of configured endpoints only ever go to those endpoints' origins.
  const ctx: ConnectorContext = { settings: deps.settings, http: http.boundTo(configuredOrigins(definition, deps.settings)) };
  const contextFor = (baseUrl: string | undefined, retry = true): ConnectorContext => {
    const base: ConnectorContext = baseUrl
      ? { settings: deps.settings, http: http.boundTo([new URL(baseUrl).origin], deps.guardedDispatcher ? { dispatcher: deps.guardedDispatcher } : deps.guardedFetch), baseUrl }
      : ctx;
    return retry ? base : { ...base, http: base.http.withoutRetries() };
  };
  const recordedByRefresh = new WeakMap<IntegrationError, StoredHealth>();
  /** What an outcome means for the connection's health now (recorded by a probe, and by a call when it changed). */
  const healthOf = (record: ConnectionRecord, error?: IntegrationError): StoredHealth =>
    healthFromOutcome({ checkedAt: new Date(clock.now()).toISOString(), ...(error ? { error } : {}), lastKnownAuth: record.lastHealth?.auth ?? true, displayName: definition.displayName });
  const session: Session = {
    definition,
    deps,
    provider: definition.id,
    name: definition.displayName,
    clock,
    ctx,
    contextFor,
    nowIso: () => new Date(clock.now()).toISOString(),
    recordedByRefresh,
    // A failed refresh is recorded by the token keeper (the refresh-ahead job has no probe to do it);
    // the test or health probe that met it then reports that outcome instead of writing it again.
    tokens: new TokenKeeper({
      definition,
      vault: deps.vault,
      ctx,
      clock,
      ...(deps.onRefresh ? { onRefresh: deps.onRefresh } : {}),
      recordOutcome: async (record, error) => {
        const health = await session.recordHealth(record, error);
        if (error) recordedByRefresh.set(error, health);
        return health;
      },
    }),
    recordHealth: async (record, error, options) => {
      const health = healthOf(record, error);
      await deps.vault.recordHealth(record.id, health, ...(options?.grouped ? [{ grouped: true }] : []));
      return health;
    },
    probe: async (record, retry, options) => {
      const identityCtx = contextFor(record.baseUrl, retry);
      return session.tokens.withAccessToken(
        record,
        (accessToken) => identify(definition, identityCtx, { accessToken, authMethod: record.authMethod, metadata: record.metadata, scopes: record.scopes }, paceKeyOf(definition, record)),
        options,
      );
    },
    call: async (record, call, options) => {
      const callCtx = contextFor(record.baseUrl, options?.retry ?? true);
      const credential = (accessToken: string): Credential => credentialOf(callCtx, { accessToken, authMethod: record.authMethod, metadata: record.metadata, scopes: record.scopes });
      try {
        const response = await session.tokens.withAccessToken(record, (accessToken) => senderFor(definition, callCtx, credential(accessToken), paceKeyOf(definition, record))(call));
        await observe(record);
        return response;
      } catch (error) {
        if (error instanceof IntegrationError) await observe(record, error);
        throw error;
      }
    },
  };
  /**
   * What a call saw, recorded as health when it changes what is stored: a
   * rejected credential is down at once, a throttle or an unreachable
   * provider degraded, a success after either clears it. A refusal of the
   * request itself (a bad path, a missing permission for one resource) says
   * nothing of the connection, and neither does our own lock's business.
   */
  const observe = async (record: ConnectionRecord, error?: IntegrationError): Promise<void> => {
    if (error && (error.type === "schema" || isOwnBusiness(error) || recordedByRefresh.has(error) || isPermissionRefusal(error))) return;
    const next = healthOf(record, error);
    const last = record.lastHealth;
    if (last && last.status === next.status && last.auth === next.auth && last.apiReachable === next.apiReachable && last.rateLimited === next.rateLimited && last.errorType === next.errorType) return;
    await deps.vault.recordHealth(record.id, next).catch((failure: unknown) => deps.logger?.warn({ err: String(failure), connectionId: record.id }, "could not record what a call saw"));
  };
  return session;
}


/** Origins of the configured endpoints (and the connector's extra ones): where its credentials may go. */
function configuredOrigins(definition: ConnectorDefinition, settings: ConnectorSettings): string[] {
  const { endpoints } = settings;
  const urls = [endpoints.authorizeUrl, endpoints.tokenUrl, endpoints.apiUrl, ...(endpoints.revokeUrl ? [endpoints.revokeUrl] : [])];
  return [...new Set([...urls.map((u) => new URL(u).origin), ...(definition.extraOrigins?.(settings) ?? [])])];
}
