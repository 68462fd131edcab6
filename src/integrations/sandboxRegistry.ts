/**
 * Each connector's sandbox starter, by the registry's ids. Kept apart from
 * registry.ts because every sandbox is a Fastify server (src/sandbox/kit.ts):
 * the service, the CLI, `autoflow-integrations/sandboxes` and the tests start
 * them from here, and the SDK entry, which reads only the registry, loads
 * none of them.
 */
import type { SandboxOptions, StartedSandbox } from "../sandbox/kit.js";
import { startGmailSandbox } from "./gmail/sandbox.js";
import { startHubSpotSandbox } from "./hubspot/sandbox.js";
import { startJiraSandbox } from "./jira/sandbox.js";
import { startLinearSandbox } from "./linear/sandbox.js";
import type { ProviderId } from "./registry.js";
import { startSentrySandbox } from "./sentry/sandbox.js";
import { startSlackSandbox } from "./slack/sandbox.js";
import { startStripeSandbox } from "./stripe/sandbox.js";
import { startTeamsSandbox } from "./teams/sandbox.js";

/** A sandbox's own options beyond the kit's (token lifetime, rotation) are optional, so each takes the kit's. */
export type SandboxStarter = (options: SandboxOptions) => Promise<StartedSandbox>;

/**
 * One starter per registered connector, no more and no fewer: `satisfies
 * Record<ProviderId, ...>` on this literal fails the type check when a
 * connector of registry.ts has no sandbox here, or when one here has no
 * connector there.
 */
export const SANDBOXES = {
  slack: startSlackSandbox,
  hubspot: startHubSpotSandbox,
  stripe: startStripeSandbox,
  gmail: startGmailSandbox,
  linear: startLinearSandbox,
  teams: startTeamsSandbox,
  jira: startJiraSandbox,
  sentry: startSentrySandbox,
} as const satisfies Record<ProviderId, SandboxStarter>;

/** Starts the sandbox of connector `id`. */
export function startSandboxOf(id: ProviderId, options: SandboxOptions): Promise<StartedSandbox> {
  const start: SandboxStarter = SANDBOXES[id];
  return start(options);
}
