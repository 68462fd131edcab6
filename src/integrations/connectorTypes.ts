/**
 * Each connector's named public types, for callers who prefer `SlackHealth` to
 * `ConnectionHealthOf<"slack">` (the same type). A connector added to the
 * registry is typed without this list; add its line here to name its types too.
 */
export type { SlackConnectionPublic, SlackHealth, SlackAuthMethod } from "./slack/connector.js";
export type { HubSpotConnectionPublic, HubSpotHealth, HubSpotAuthMethod } from "./hubspot/connector.js";
export type { StripeConnectionPublic, StripeHealth, StripeAuthMethod } from "./stripe/connector.js";
export type { GmailConnectionPublic, GmailHealth, GmailAuthMethod } from "./gmail/connector.js";
export type { LinearConnectionPublic, LinearHealth, LinearAuthMethod } from "./linear/connector.js";
export type { TeamsConnectionPublic, TeamsHealth, TeamsAuthMethod, TeamsMetadata } from "./teams/connector.js";
export type { JiraConnectionPublic, JiraHealth, JiraAuthMethod, JiraMetadata, JiraRestBase } from "./jira/connector.js";
export type { SentryConnectionPublic, SentryHealth, SentryAuthMethod, SentryMetadata } from "./sentry/connector.js";
