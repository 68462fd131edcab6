/**
 * Public API of the package: the SDK, the contract types and the store. It
 * loads no HTTP server, no sandbox and only the database driver a store asks
 * for; the service is `autoflow-integrations/server`, the sandboxes
 * `autoflow-integrations/sandboxes` (test/e2e/entries.test.ts holds it to that).
 */
export {
  createIntegrations,
  connectorsById,
  DEFAULT_PROVIDER_TIMEOUT_MS,
  type ConnectionHealthOf,
  type ConnectionPublicOf,
  type Integrations,
  type IntegrationsOptions,
  type LifecycleOf,
} from "./sdk.js";
// Each connector's named types (SlackConnectionPublic, SlackHealth, ...), listed beside the registry.
export type * from "./integrations/connectorTypes.js";
export type {
  Tier1ConnectionHealth,
  Tier1ConnectionPublic,
  Tier1ConnectorLifecycle,
  Tier1ErrorType,
  Tier1OAuthStartResult,
} from "./integrations/shared/contract.js";
export { IntegrationError, ErrorCodes, ERROR_CODES, isRetryableType, type ErrorCode } from "./integrations/shared/errors.js";
export { createBrowserBinding } from "./integrations/shared/oauth.js";
export type { RetryPolicy } from "./integrations/shared/retry.js";
export type { ConnectorLifecycle, DisconnectReport, ProxyAnswer, ProxyInput } from "./integrations/shared/lifecycle.js";
export type { ActionDescription, ActionMap, ActionRunners } from "./integrations/shared/action.js";
export { MemoryRateWindows, Pacer, PacingTimeoutError, type RateWindowStore } from "./integrations/shared/pacing.js";
export type { Vault, Sealer, ConnectionRecord } from "./integrations/shared/vault.js";
export type { ConnectorSettings, ConnectorEndpoints } from "./integrations/shared/connector.js";
export { CONNECTORS, PROVIDER_IDS, RETRY_POLICIES, type ProviderId } from "./integrations/registry.js";
export { resolveSettings } from "./config.js";
export { openStore, Keyring, SqlVault, PgRateWindows, rateWindowsFor } from "./store/index.js";
