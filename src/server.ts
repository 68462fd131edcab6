/**
 * `autoflow-integrations/server`: the service, to host it in a process of
 * one's own (what `autoflow-integrations serve` runs): configuration from the
 * environment, the vault, the sandboxes of unconfigured connectors, the jobs
 * and the HTTP API. It loads Fastify and the sandboxes, which the SDK entry
 * (`autoflow-integrations`) does not.
 */
export { ConfigError, loadConfig, resolveSettings, type ProviderConfig, type ServiceConfig } from "./config.js";
export { startService, type Service, type ServiceOptions } from "./service.js";
export { createLogger } from "./server/logging.js";
