/**
 * `autoflow-integrations/sandboxes`: every connector's sandbox, started for
 * the SDK, so that code built on `createIntegrations` runs and is tested
 * offline. The service starts its own (src/service.ts), mixing live and
 * sandbox connectors; this entry is for SDK users who want all eight local.
 */
import { redirectUriFor, resolveSettings } from "./config.js";
import { PROVIDER_IDS, type ProviderId } from "./integrations/registry.js";
import { startSandboxOf } from "./integrations/sandboxRegistry.js";
import type { ConnectorSettings } from "./integrations/shared/connector.js";
import type { SandboxStateStore, StartedSandbox } from "./sandbox/kit.js";

export type { SandboxStateStore, StartedSandbox } from "./sandbox/kit.js";

export type StartedSandboxes = {
  sandboxes: Record<ProviderId, StartedSandbox>;
  /** What `createIntegrations` takes as `settings`: every connector on its sandbox. */
  settings: Record<ProviderId, ConnectorSettings>;
  /** The sandboxes' origins, for `createIntegrations`'s `baseUrlAllowlist` (Jira and Sentry base URLs). */
  baseUrlAllowlist: string[];
  close(): Promise<void>;
};

export async function startSandboxes(options: {
  /** Where the OAuth callback lives: the redirect URI registered with each sandbox's app is `${publicUrl}/api/integrations/<provider>/oauth/callback`. */
  publicUrl: string;
  /** First port (the others follow in registry order); free ports when left out. */
  basePort?: number;
  /** Keep what the sandboxes issue across restarts (an opened store's `sandboxes`). */
  persistence?: SandboxStateStore;
}): Promise<StartedSandboxes> {
  const sandboxes = {} as Record<ProviderId, StartedSandbox>;
  const settings = {} as Record<ProviderId, ConnectorSettings>;
  try {
    for (const [index, id] of PROVIDER_IDS.entries()) {
      const sandbox = await startSandboxOf(id, {
        port: options.basePort === undefined ? 0 : options.basePort + index,
        redirectUris: [redirectUriFor(options.publicUrl, id)],
        ...(options.persistence ? { persistence: options.persistence } : {}),
      });
      sandboxes[id] = sandbox;
      settings[id] = resolveSettings({ provider: id, config: {}, publicUrl: options.publicUrl, sandbox });
    }
  } catch (error) {
    for (const sandbox of Object.values(sandboxes)) await sandbox.close().catch(() => undefined);
    throw error;
  }
  return {
    sandboxes,
    settings,
    baseUrlAllowlist: Object.values(sandboxes).map((s) => s.url),
    close: async () => {
      for (const sandbox of Object.values(sandboxes)) await sandbox.close();
    },
  };
}
