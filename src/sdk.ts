/**
 * The SDK: `createIntegrations(options)` returns one lifecycle object per
 * connector, each a `Tier1ConnectorLifecycle` of its own public and health
 * types. The HTTP API is a thin layer over it.
 */
import type { Logger } from "pino";
import type { HubSpotConnectionPublic, HubSpotHealth } from "./integrations/hubspot/connector.js";
import type { LinearConnectionPublic, LinearHealth } from "./integrations/linear/connector.js";
import { CONNECTORS, PROVIDER_IDS, type ProviderId } from "./integrations/registry.js";
import type { ConnectorSettings } from "./integrations/shared/connector.js";
import type { AttemptRecord, Clock } from "./integrations/shared/http.js";
import { createConnectorLifecycle, type ConnectorLifecycle } from "./integrations/shared/lifecycle.js";
import type { Sealer, Vault } from "./integrations/shared/vault.js";
import type { SlackConnectionPublic, SlackHealth } from "./integrations/slack/connector.js";
import type { StripeConnectionPublic, StripeHealth } from "./integrations/stripe/connector.js";

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
};

export type Integrations = {
  slack: ConnectorLifecycle<SlackConnectionPublic, SlackHealth>;
  hubspot: ConnectorLifecycle<HubSpotConnectionPublic, HubSpotHealth>;
  stripe: ConnectorLifecycle<StripeConnectionPublic, StripeHealth>;
  linear: ConnectorLifecycle<LinearConnectionPublic, LinearHealth>;
};

export function createIntegrations(options: IntegrationsOptions): Integrations {
  const build = <TPublic, THealth>(id: ProviderId) =>
    createConnectorLifecycle<TPublic, THealth>(CONNECTORS[id].definition, {
      vault: options.vault,
      sealer: options.sealer,
      settings: options.settings[id],
      knownProviders: PROVIDER_IDS,
      timeoutMs: options.providerTimeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.logger ? { logger: options.logger.child({ provider: id }) } : {}),
      ...(options.onAttempt ? { onAttempt: options.onAttempt } : {}),
    });
  return {
    slack: build<SlackConnectionPublic, SlackHealth>("slack"),
    hubspot: build<HubSpotConnectionPublic, HubSpotHealth>("hubspot"),
    stripe: build<StripeConnectionPublic, StripeHealth>("stripe"),
    linear: build<LinearConnectionPublic, LinearHealth>("linear"),
  };
}

/** The connectors of `integrations` by id, for code that serves any of them. */
export function connectorsById(integrations: Integrations): Record<ProviderId, ConnectorLifecycle> {
  return integrations as unknown as Record<ProviderId, ConnectorLifecycle>;
}
