/**
 * The session of one connector: everything an authenticated call with a
 * stored connection needs, built once per connector and shared by the
 * lifecycle's parts (connect, connections, health, disconnect). It holds the
 * provider client bound to the configured origins (or a connection's own
 * base URL), the token keeper (refresh ahead of expiry, single flight,
 * lock), and the who-am-I probe through it.
 */
import type { Logger } from "pino";
import type { BaseUrlPolicy } from "./baseUrl.js";
import type { ConnectorContext, ConnectorDefinition, ConnectorSettings, Identity } from "./connector.js";
import type { IntegrationError } from "./errors.js";
import { healthFromOutcome } from "./healthEnvelope.js";
import { ProviderHttp, systemClock, type AttemptRecord, type Clock } from "./http.js";
import { TokenKeeper } from "./tokens.js";
import type { ConnectionRecord, Sealer, StoredHealth, Vault } from "./vault.js";

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
  /** The who-am-I call with a usable token (refreshed first if due); one attempt unless `retry`. */
  probe(record: ConnectionRecord, retry: boolean): Promise<Identity>;
  /** The one place health is recorded: what a probe (or a refresh) saw, stored with the connection. */
  recordHealth(record: ConnectionRecord, error?: IntegrationError): Promise<StoredHealth>;
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
    ...(deps.onAttempt ? { onAttempt: deps.onAttempt } : {}),
  });
  // Credentials of configured endpoints only ever go to those endpoints' origins.
  const ctx: ConnectorContext = { settings: deps.settings, http: http.boundTo(configuredOrigins(definition, deps.settings)) };
  const contextFor = (baseUrl: string | undefined, retry = true): ConnectorContext => {
    const base: ConnectorContext = baseUrl
      ? { settings: deps.settings, http: http.boundTo([new URL(baseUrl).origin], deps.guardedFetch), baseUrl }
      : ctx;
    return retry ? base : { ...base, http: base.http.withoutRetries() };
  };
  const recordedByRefresh = new WeakMap<IntegrationError, StoredHealth>();
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
      recordOutcome: async (record, error) => {
        const health = await session.recordHealth(record, error);
        if (error) recordedByRefresh.set(error, health);
        return health;
      },
    }),
    recordHealth: async (record, error) => {
      const health = healthFromOutcome({
        checkedAt: session.nowIso(),
        ...(error ? { error } : {}),
        lastKnownAuth: record.lastHealth?.auth ?? true,
        displayName: definition.displayName,
      });
      await deps.vault.recordHealth(record.id, health);
      return health;
    },
    probe: async (record, retry) => {
      const identityCtx = contextFor(record.baseUrl, retry);
      return session.tokens.withAccessToken(record, (accessToken) =>
        definition.whoAmI(identityCtx, { accessToken, authMethod: record.authMethod, metadata: record.metadata }),
      );
    },
  };
  return session;
}

/** Origins of the configured endpoints (and the connector's extra ones): where its credentials may go. */
function configuredOrigins(definition: ConnectorDefinition, settings: ConnectorSettings): string[] {
  const { endpoints } = settings;
  const urls = [endpoints.authorizeUrl, endpoints.tokenUrl, endpoints.apiUrl, ...(endpoints.revokeUrl ? [endpoints.revokeUrl] : [])];
  return [...new Set([...urls.map((u) => new URL(u).origin), ...(definition.extraOrigins?.(settings) ?? [])])];
}
