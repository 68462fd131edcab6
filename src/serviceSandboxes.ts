/**
 * The sandboxes of the connectors without live credentials, as the service
 * runs them: on stable ports (the base port plus the connector's index in
 * registry order, so a restart or a CLI command meets them where they were),
 * registered for the service's OAuth callback, and keeping what they issued
 * in the store. `serve` starts them inside the service; `sandbox` alone.
 * (`src/sandboxes.ts` is the SDK's: all eight, no configuration.)
 */
import type { Logger } from "pino";
import { isLive, redirectUriFor, type ServiceConfig } from "./config.js";
import { PROVIDER_IDS, type ProviderId } from "./integrations/registry.js";
import { startSandboxOf } from "./integrations/sandboxRegistry.js";
import type { SandboxStateStore, StartedSandbox } from "./sandbox/kit.js";

export type ServiceSandboxOptions = {
  logger: Logger;
  /** Extra options per sandbox (token lifetime, rotation), for tests and demos. */
  sandboxOptions?: Partial<Record<ProviderId, Record<string, unknown>>>;
  /** When another process on the same store serves a sandbox, stand by to take it over once that process goes. */
  standby: boolean;
  /** Where the sandboxes keep their state; in memory only when left out. */
  persistence?: SandboxStateStore;
};

export type ServiceSandboxes = {
  sandboxes: Partial<Record<ProviderId, StartedSandbox>>;
  /** Closes them newest first; each writes its last state on the way out, so call it before the store closes. */
  close(): Promise<void>;
};

export async function startServiceSandboxes(config: ServiceConfig, options: ServiceSandboxOptions): Promise<ServiceSandboxes> {
  const { logger } = options;
  const sandboxes: Partial<Record<ProviderId, StartedSandbox>> = {};
  const started: StartedSandbox[] = [];
  const close = async (): Promise<void> => {
    for (const sandbox of [...started].reverse()) await sandbox.close();
  };
  try {
    for (const [index, id] of PROVIDER_IDS.entries()) {
      if (isLive(config.providers[id])) continue;
      const sandbox = await startSandboxOf(id, {
        ...(config.sandboxRateLimit ? { rateLimit: config.sandboxRateLimit } : {}),
        ...options.sandboxOptions?.[id],
        port: config.sandboxBasePort === 0 ? 0 : config.sandboxBasePort + index,
        redirectUris: [redirectUriFor(config.publicUrl, id)],
        ...(options.persistence ? { persistence: options.persistence } : {}),
        standby: options.standby,
        log: (level, message) => logger[level]({ provider: id }, message),
      });
      started.push(sandbox);
      sandboxes[id] = sandbox;
    }
  } catch (error) {
    for (const sandbox of [...started].reverse()) await sandbox.close().catch(() => undefined);
    throw error;
  }
  return { sandboxes, close };
}
