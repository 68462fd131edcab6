/**
 * The connectors by id. It sits above `shared/` and the connector folders so
 * that `shared/` never imports a provider. Adding a connector is one entry
 * here (its retry row lives in its own folder).
 */
import { gmailConnector } from "./gmail/connector.js";
import { startGmailSandbox } from "./gmail/sandbox.js";
import { gmailActions } from "./gmail/actions/index.js";
import { hubspotConnector } from "./hubspot/connector.js";
import { startHubSpotSandbox } from "./hubspot/sandbox.js";
import { hubspotActions } from "./hubspot/actions/index.js";
import { linearConnector } from "./linear/connector.js";
import { startLinearSandbox } from "./linear/sandbox.js";
import { linearActions } from "./linear/actions/index.js";
import { jiraConnector } from "./jira/connector.js";
import { startJiraSandbox } from "./jira/sandbox.js";
import { jiraActions } from "./jira/actions/index.js";
import type { ActionMap } from "./shared/action.js";
import type { ConnectorDefinition } from "./shared/connector.js";
import type { RetryPolicy } from "./shared/retry.js";
import type { SandboxOptions, StartedSandbox } from "../sandbox/kit.js";
import { sentryConnector } from "./sentry/connector.js";
import { startSentrySandbox } from "./sentry/sandbox.js";
import { sentryActions } from "./sentry/actions/index.js";
import { slackConnector } from "./slack/connector.js";
import { startSlackSandbox } from "./slack/sandbox.js";
import { slackActions } from "./slack/actions/index.js";
import { stripeConnector } from "./stripe/connector.js";
import { startStripeSandbox } from "./stripe/sandbox.js";
import { stripeActions } from "./stripe/actions/index.js";
import { teamsConnector } from "./teams/connector.js";
import { startTeamsSandbox } from "./teams/sandbox.js";
import { teamsActions } from "./teams/actions/index.js";

export type RegisteredConnector = {
  definition: ConnectorDefinition;
  startSandbox(options: SandboxOptions): Promise<StartedSandbox>;
  /** The connector's typed operations (`<provider>/actions/`). */
  actions: ActionMap;
};

export const CONNECTORS = {
  slack: { definition: slackConnector, startSandbox: startSlackSandbox, actions: slackActions },
  hubspot: { definition: hubspotConnector, startSandbox: startHubSpotSandbox, actions: hubspotActions },
  stripe: { definition: stripeConnector, startSandbox: startStripeSandbox, actions: stripeActions },
  gmail: { definition: gmailConnector, startSandbox: startGmailSandbox, actions: gmailActions },
  linear: { definition: linearConnector, startSandbox: startLinearSandbox, actions: linearActions },
  teams: { definition: teamsConnector, startSandbox: startTeamsSandbox, actions: teamsActions },
  jira: { definition: jiraConnector, startSandbox: startJiraSandbox, actions: jiraActions },
  sentry: { definition: sentryConnector, startSandbox: startSentrySandbox, actions: sentryActions },
} as const satisfies Record<string, RegisteredConnector>;

export type ProviderId = keyof typeof CONNECTORS;

export const PROVIDER_IDS = Object.keys(CONNECTORS) as ProviderId[];

/** Each registered connector's retry row as its definition uses it: what the generated retry document is read from. */
export function retryPoliciesOf(connectors: Readonly<Record<string, RegisteredConnector>>): Readonly<Record<string, RetryPolicy>> {
  return Object.fromEntries(Object.entries(connectors).map(([id, c]) => [id, c.definition.retryPolicy]));
}

export const RETRY_POLICIES = retryPoliciesOf(CONNECTORS) as Readonly<Record<ProviderId, RetryPolicy>>;

export function isProviderId(value: string): value is ProviderId {
  return Object.prototype.hasOwnProperty.call(CONNECTORS, value);
}
