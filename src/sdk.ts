/**
 * The SDK: `createIntegrations(options)` returns one lifecycle object per
 * connector, each a `Tier1ConnectorLifecycle` of its own public and health
 * types. The HTTP API is a thin layer over it.
 */
import type { Dispatcher } from "undici";
import { lookup } from "node:dns/promises";
import type { Logger } from "pino";
import type { Resolver } from "./integrations/shared/baseUrl.js";
import { createGuardedDispatcher, createGuardedFetch } from "./integrations/shared/guardedFetch.js";
import { CONNECTORS, PROVIDER_IDS, type ProviderId } from "./integrations/registry.js";
import type { ConnectorSettings } from "./integrations/shared/connector.js";
import type { AttemptRecord, Clock, ProviderPacer } from "./integrations/shared/http.js";
import { createConnectorLifecycle, type ConnectorLifecycle } from "./integrations/shared/lifecycle.js";
import type { ConnectionHealthOf as ConnectionHealthOfDefinition, ConnectionPublicOf as ConnectionPublicOfDefinition } from "./integrations/shared/publicShapes.js";
import { MemoryRateWindows, Pacer, type RateWindowStore } from "./integrations/shared/pacing.js";
import type { ProxyLimits } from "./integrations/shared/proxy.js";
import type { RefreshRecord } from "./integrations/shared/tokens.js";
import type { Sealer, Vault } from "./integrations/shared/vault.js";

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
  /** Provider calls go through this fetch when given (tests, a caller's own transport)... */
  fetch?: typeof fetch;
  /** ...or else with undici's `request` over this dispatcher (the caller's keep-alive pools; undici's global one when unset). */
  dispatcher?: Dispatcher;
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

type Registered = typeof CONNECTORS;

/** A registered connector's public connection (`ConnectionPublicOf<"slack">` is `SlackConnectionPublic`). */
export type ConnectionPublicOf<P extends ProviderId> = ConnectionPublicOfDefinition<Registered[P]["definition"]>;
/** A registered connector's health envelope. */
export type ConnectionHealthOf<P extends ProviderId> = ConnectionHealthOfDefinition<Registered[P]["definition"]>;

/**
 * Each connector's lifecycle, typed with its public connection, its health and its actions, all
 * read from the registry: a connector added there is here with its types, with no edit.
 */
export type Integrations = { [P in ProviderId]: LifecycleOf<P> };

/** One connector's lifecycle, typed from its registry entry. */
export type LifecycleOf<P extends ProviderId> = ConnectorLifecycle<ConnectionPublicOf<P>, ConnectionHealthOf<P>, Registered[P]["actions"]>;

export function createIntegrations(options: IntegrationsOptions): Integrations {
  const allowlist = options.baseUrlAllowlist ?? [];
  const baseUrlPolicy = { allowlist, resolve: options.resolve ?? resolveAll };
  // User-supplied base URLs: requests over guarded pools, or a guarded fetch where calls go through the caller's fetch.
  const guarded = options.fetch ? { guardedFetch: createGuardedFetch(allowlist) } : { guardedDispatcher: createGuardedDispatcher(allowlist) };
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
  const build = <P extends ProviderId>(id: P): LifecycleOf<P> =>
    createConnectorLifecycle<Registered[P]["definition"], Registered[P]["actions"]>(CONNECTORS[id].definition, {
      vault: options.vault,
      sealer: options.sealer,
      settings: options.settings[id],
      knownProviders: PROVIDER_IDS,
      timeoutMs: options.providerTimeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      ...(options.logger ? { logger: options.logger.child({ provider: id }) } : {}),
      ...(options.onAttempt ? { onAttempt: options.onAttempt } : {}),
      ...(options.onRefresh ? { onRefresh: options.onRefresh } : {}),
      baseUrlPolicy,
      ...guarded,
      returnUrlAllowlist: options.oauthReturnUrls ?? [],
      ...(options.proxyLimits ? { proxyLimits: options.proxyLimits } : {}),
      ...(pacer ? { pacer } : {}),
    }, CONNECTORS[id].actions);
  // Every id of the registry, each built with its own types (build's signature); the object's
  // key set is PROVIDER_IDS, which is the registry's.
  return Object.fromEntries(PROVIDER_IDS.map((id) => [id, build(id)])) as Integrations;
}

/** Every address `hostname` resolves to (A and AAAA), as the guard must see them all. */
async function resolveAll(hostname: string): Promise<string[]> {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}

/** The connectors of `integrations` by id, for code that serves any of them. */
export function connectorsById(integrations: Integrations): Record<ProviderId, ConnectorLifecycle> {
  return integrations;
}
