/**
 * The SDK: `createIntegrations(options)` returns one lifecycle object per
 * connector, each a `Tier1ConnectorLifecycle` of its own public and health
 * types. The HTTP API is a thin layer over it.
 */
import { lookup } from "node:dns/promises";
import type { Logger } from "pino";
import type { Resolver } from "./integrations/shared/baseUrl.js";
import { createGuardedFetch } from "./integrations/shared/guardedFetch.js";
import type { HubSpotConnectionPublic, HubSpotHealth } from "./integrations/hubspot/connector.js";
import type { LinearConnectionPublic, LinearHealth } from "./integrations/linear/connector.js";
import type { JiraConnectionPublic, JiraHealth } from "./integrations/jira/connector.js";
import { CONNECTORS, PROVIDER_IDS, type ProviderId } from "./integrations/registry.js";
import type { GmailConnectionPublic, GmailHealth } from "./integrations/gmail/connector.js";
import type { ConnectorSettings } from "./integrations/shared/connector.js";
import type { AttemptRecord, Clock, ProviderPacer } from "./integrations/shared/http.js";
import type { SentryConnectionPublic, SentryHealth } from "./integrations/sentry/connector.js";
import { createConnectorLifecycle, type ConnectorLifecycle } from "./integrations/shared/lifecycle.js";
import { MemoryRateWindows, Pacer, type RateWindowStore } from "./integrations/shared/pacing.js";
import type { ProxyLimits } from "./integrations/shared/proxy.js";
import type { RefreshRecord } from "./integrations/shared/tokens.js";
import type { Sealer, Vault } from "./integrations/shared/vault.js";
import type { SlackConnectionPublic, SlackHealth } from "./integrations/slack/connector.js";
import type { StripeConnectionPublic, StripeHealth } from "./integrations/stripe/connector.js";
import type { TeamsConnectionPublic, TeamsHealth } from "./integrations/teams/connector.js";

/** Default bound on one provider request. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;

export type IntegrationsOptions = {
  vault: Vault;
  /** Seals OAuth states; every instance that may complete a flow must share its key. */
  sealer: Sealer;
  /** Resolved settings (live or sandbox) of each connector. */
  settings: Record<ProviderId, ConnectorSettings>;
  providerTimeoutMs?: number;
  clock?: Clock;
  fetch?: typeof fetch;
  logger?: Logger;
  onAttempt?: (record: AttemptRecord) => void;
  /** Every token refresh that reached a provider, by outcome (metrics). */
  onRefresh?: (record: RefreshRecord) => void;
  /** Origins that user-supplied base URLs may name beyond public https (the operator's and the sandboxes'). */
  baseUrlAllowlist?: readonly string[];
  /** Resolves host names for the base-URL guard (DNS by default; tests stub it). */
  resolve?: Resolver;
  /** URL prefixes an OAuth flow may return the browser to. */
  oauthReturnUrls?: readonly string[];
  /** Bounds on proxied calls' bodies (`request()`); 1 MiB out, 10 MiB back by default. */
  proxyLimits?: ProxyLimits;
  /**
   * Where each provider account's rate budget is kept: in this process by
   * default; `rateWindowsFor(store)` (a `PgRateWindows` on PostgreSQL) shares it
   * between instances, so a throttle one meets holds the others back.
   */
  rateWindows?: RateWindowStore;
  /** Set false to send calls without pacing (the provider's 429 and the retry rule remain); or the pacer to use. */
  pacing?: boolean | ProviderPacer;
};

/** Each connector's lifecycle, typed with its public connection, its health and its actions. */
export type Integrations = {
  slack: ConnectorLifecycle<SlackConnectionPublic, SlackHealth, (typeof CONNECTORS)["slack"]["actions"]>;
  hubspot: ConnectorLifecycle<HubSpotConnectionPublic, HubSpotHealth, (typeof CONNECTORS)["hubspot"]["actions"]>;
  stripe: ConnectorLifecycle<StripeConnectionPublic, StripeHealth, (typeof CONNECTORS)["stripe"]["actions"]>;
  gmail: ConnectorLifecycle<GmailConnectionPublic, GmailHealth, (typeof CONNECTORS)["gmail"]["actions"]>;
  linear: ConnectorLifecycle<LinearConnectionPublic, LinearHealth, (typeof CONNECTORS)["linear"]["actions"]>;
  teams: ConnectorLifecycle<TeamsConnectionPublic, TeamsHealth, (typeof CONNECTORS)["teams"]["actions"]>;
  jira: ConnectorLifecycle<JiraConnectionPublic, JiraHealth, (typeof CONNECTORS)["jira"]["actions"]>;
  sentry: ConnectorLifecycle<SentryConnectionPublic, SentryHealth, (typeof CONNECTORS)["sentry"]["actions"]>;
};

export function createIntegrations(options: IntegrationsOptions): Integrations {
  const allowlist = options.baseUrlAllowlist ?? [];
  const baseUrlPolicy = { allowlist, resolve: options.resolve ?? resolveAll };
  const guardedFetch = createGuardedFetch(allowlist);
  // One pacer for every connector: its lines are keyed by provider and account.
  const pacer =
    options.pacing === false
      ? undefined
      : typeof options.pacing === "object"
        ? options.pacing
        : new Pacer({
          store: options.rateWindows ?? new MemoryRateWindows(),
          ...(options.clock ? { clock: options.clock } : {}),
          onError: (error, key) => options.logger?.warn({ err: String(error), key }, "rate budget store failed; calls go unpaced for a moment"),
        });
  const build = <TPublic, THealth, I extends ProviderId>(id: I) =>
    createConnectorLifecycle<TPublic, THealth, (typeof CONNECTORS)[I]["actions"]>(CONNECTORS[id].definition, {
      vault: options.vault,
      sealer: options.sealer,
      settings: options.settings[id],
      knownProviders: PROVIDER_IDS,
      timeoutMs: options.providerTimeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.logger ? { logger: options.logger.child({ provider: id }) } : {}),
      ...(options.onAttempt ? { onAttempt: options.onAttempt } : {}),
      ...(options.onRefresh ? { onRefresh: options.onRefresh } : {}),
      baseUrlPolicy,
      guardedFetch,
      returnUrlAllowlist: options.oauthReturnUrls ?? [],
      ...(options.proxyLimits ? { proxyLimits: options.proxyLimits } : {}),
      ...(pacer ? { pacer } : {}),
    }, CONNECTORS[id].actions);
  return {
    slack: build<SlackConnectionPublic, SlackHealth, "slack">("slack"),
    hubspot: build<HubSpotConnectionPublic, HubSpotHealth, "hubspot">("hubspot"),
    stripe: build<StripeConnectionPublic, StripeHealth, "stripe">("stripe"),
    gmail: build<GmailConnectionPublic, GmailHealth, "gmail">("gmail"),
    linear: build<LinearConnectionPublic, LinearHealth, "linear">("linear"),
    teams: build<TeamsConnectionPublic, TeamsHealth, "teams">("teams"),
    jira: build<JiraConnectionPublic, JiraHealth, "jira">("jira"),
    sentry: build<SentryConnectionPublic, SentryHealth, "sentry">("sentry"),
  };
}

/** Every address `hostname` resolves to (A and AAAA), as the guard must see them all. */
async function resolveAll(hostname: string): Promise<string[]> {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}

/** The connectors of `integrations` by id, for code that serves any of them. */
export function connectorsById(integrations: Integrations): Record<ProviderId, ConnectorLifecycle> {
  return integrations as unknown as Record<ProviderId, ConnectorLifecycle>;
}
