/**
 * The connectors by id. It sits above `shared/` and the connector folders so
 * that `shared/` never imports a provider. Adding a connector is one entry
 * here (its retry row lives in its own folder) and one in sandboxRegistry.ts,
 * which the type check asks for. The sandboxes are not here: they are
 * Fastify servers, and the SDK entry (src/index.ts), which reads this
 * registry, must load no HTTP server.
 */
import { gmailConnector } from "./gmail/connector.js";
import { gmailActions } from "./gmail/actions/index.js";
import { hubspotConnector } from "./hubspot/connector.js";
import { hubspotActions } from "./hubspot/actions/index.js";
import { linearConnector } from "./linear/connector.js";
import { linearActions } from "./linear/actions/index.js";
import { jiraConnector } from "./jira/connector.js";
import { jiraActions } from "./jira/actions/index.js";
import type { ActionMap } from "./shared/action.js";
import type { ConnectorDefinition } from "./shared/connector.js";
import type { RetryPolicy } from "./shared/retry.js";
import { sentryConnector } from "./sentry/connector.js";
import { sentryActions } from "./sentry/actions/index.js";
import { slackConnector } from "./slack/connector.js";
import { slackActions } from "./slack/actions/index.js";
import { stripeConnector } from "./stripe/connector.js";
import { stripeActions } from "./stripe/actions/index.js";
import { teamsConnector } from "./teams/connector.js";
import { teamsActions } from "./teams/actions/index.js";

export type RegisteredConnector = {
  definition: ConnectorDefinition;
  /** The connector's typed operations (`<provider>/actions/`). */
  actions: ActionMap;
};

export const CONNECTORS = {
  slack: { definition: slackConnector, actions: slackActions },
  hubspot: { definition: hubspotConnector, actions: hubspotActions },
  stripe: { definition: stripeConnector, actions: stripeActions },
  gmail: { definition: gmailConnector, actions: gmailActions },
  linear: { definition: linearConnector, actions: linearActions },
  teams: { definition: teamsConnector, actions: teamsActions },
  jira: { definition: jiraConnector, actions: jiraActions },
  sentry: { definition: sentryConnector, actions: sentryActions },
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
