/**
 * Every route of the HTTP API by operation: method, path (OpenAPI's
 * `{param}` form) and who may call it. Plain data with no imports, so the
 * typed client carries it without the server or the schemas; the schemas
 * of each operation are in ./schemas.ts, keyed the same, and the OpenAPI
 * document is built from both. The server test proves every route Fastify
 * serves is listed here, and each listed one is served.
 */

/** Who may call a route: a user JWT, the operator token, the metrics token (when set), or anyone. */
export type RouteAuth = "user" | "operator" | "metrics" | "none";

export type ApiRoute = {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  readonly path: string;
  readonly auth: RouteAuth;
  readonly summary: string;
  readonly tag: "integrations" | "jira-sync" | "operator" | "service" | "page";
};

export const API_ROUTES = {
  listProviders: { method: "GET", path: "/api/integrations", auth: "user", tag: "integrations", summary: "The connectors: ways in, mode, scopes and the action catalogue (JSON Schema)" },
  listAllConnections: { method: "GET", path: "/api/integrations/connections", auth: "user", tag: "integrations", summary: "The signed-in user's connections at every connector, each with its last recorded health (no provider call)" },
  startOAuth: { method: "POST", path: "/api/integrations/{provider}/oauth/start", auth: "user", tag: "integrations", summary: "beginOAuth: the authorization URL and state; binds the flow to the browser with a cookie" },
  completeOAuth: { method: "POST", path: "/api/integrations/{provider}/oauth/complete", auth: "user", tag: "integrations", summary: "completeOAuth: exchange the code for the caller's user" },
  oauthCallback: { method: "GET", path: "/api/integrations/{provider}/oauth/callback", auth: "none", tag: "integrations", summary: "The browser's redirect target: completes the flow begun by this browser (an HTML page, or 303 to returnTo)" },
  connect: { method: "POST", path: "/api/integrations/{provider}/connections", auth: "user", tag: "integrations", summary: "connectApiKey: store a pasted key or token after the provider confirms it" },
  listConnections: { method: "GET", path: "/api/integrations/{provider}/connections", auth: "user", tag: "integrations", summary: "listConnections: the user's connections at this connector" },
  testConnection: { method: "POST", path: "/api/integrations/{provider}/test", auth: "user", tag: "integrations", summary: "testConnection: a who-am-I with retries; what the provider says of the account" },
  health: { method: "GET", path: "/api/integrations/{provider}/health", auth: "user", tag: "integrations", summary: "health: one probe, answered as the v1 health envelope" },
  runAction: { method: "POST", path: "/api/integrations/{provider}/actions/{action}", auth: "user", tag: "integrations", summary: "Run one of the connector's actions: the body is its input, the answer its output" },
  proxy: { method: "POST", path: "/api/integrations/{provider}/proxy", auth: "user", tag: "integrations", summary: "One authenticated call relative to the connection's API base: the provider's answer as it gave it" },
  disconnect: { method: "DELETE", path: "/api/integrations/{provider}/connections/{id}", auth: "user", tag: "integrations", summary: "disconnect: revoke at the provider where it can be, and mark the connection revoked" },
  putSyncConfig: { method: "PUT", path: "/api/integrations/jira/sync/config", auth: "user", tag: "jira-sync", summary: "Store the ticket sync's configuration (checked; its site against the grant's)" },
  getSyncConfig: { method: "GET", path: "/api/integrations/jira/sync/config", auth: "user", tag: "jira-sync", summary: "The configuration and the sites the grant reaches" },
  runSync: { method: "POST", path: "/api/integrations/jira/sync", auth: "user", tag: "jira-sync", summary: "Run a pull now (a second request joins the run in progress)" },
  syncStatus: { method: "GET", path: "/api/integrations/jira/sync", auth: "user", tag: "jira-sync", summary: "Cursor, run in progress, last run, last delete scan, webhooks" },
  listTickets: { method: "GET", path: "/api/integrations/jira/tickets", auth: "user", tag: "jira-sync", summary: "The ticket mirror, filtered, newest first, paged by nextCursor" },
  ticketEvents: { method: "GET", path: "/api/integrations/jira/tickets/events", auth: "user", tag: "jira-sync", summary: "The mirror's change feed after a sequence number, oldest first" },
  getTicket: { method: "GET", path: "/api/integrations/jira/tickets/{key}", auth: "user", tag: "jira-sync", summary: "One mirrored ticket by key or id" },
  createTicket: { method: "POST", path: "/api/integrations/jira/tickets", auth: "user", tag: "jira-sync", summary: "Create an issue in Jira (Idempotency-Key makes a retry safe)" },
  updateTicket: { method: "PATCH", path: "/api/integrations/jira/tickets/{key}", auth: "user", tag: "jira-sync", summary: "Update the fields named; 409 with both versions when Jira changed them too" },
  transitionTicket: { method: "POST", path: "/api/integrations/jira/tickets/{key}/transitions", auth: "user", tag: "jira-sync", summary: "Move an issue to a status by name" },
  commentTicket: { method: "POST", path: "/api/integrations/jira/tickets/{key}/comments", auth: "user", tag: "jira-sync", summary: "Comment on an issue (plain text)" },
  jiraWebhook: { method: "POST", path: "/api/integrations/jira/webhooks", auth: "none", tag: "jira-sync", summary: "Where Jira delivers webhooks; each delivery proves itself (a JWT or X-Hub-Signature)" },
  operatorOverview: { method: "GET", path: "/api/operator/overview", auth: "operator", tag: "operator", summary: "Every user's connections by connector and status, the ones down, failed refreshes, syncs, owed revocations" },
  liveness: { method: "GET", path: "/healthz", auth: "none", tag: "service", summary: "The process is up" },
  readiness: { method: "GET", path: "/readyz", auth: "none", tag: "service", summary: "The database is reachable and migrated" },
  metrics: { method: "GET", path: "/metrics", auth: "metrics", tag: "service", summary: "Prometheus metrics (behind AUTOFLOW_METRICS_TOKEN when set)" },
  openApi: { method: "GET", path: "/api/openapi.json", auth: "none", tag: "service", summary: "This document" },
  apiDocs: { method: "GET", path: "/api/docs", auth: "none", tag: "service", summary: "This document, as a page" },
  pageConfig: { method: "GET", path: "/ui/config", auth: "none", tag: "page", summary: "What the connect page needs before anyone signs in (nothing secret)" },
  localToken: { method: "POST", path: "/ui/local-token", auth: "none", tag: "page", summary: "A token for the local user: only all-sandbox, service-generated secret, from this machine's page" },
} as const satisfies Record<string, ApiRoute>;

export type OperationId = keyof typeof API_ROUTES;

/** Where the OpenAPI document built from these routes is checked in (relative to the package root). */
export const OPENAPI_PATH = "docs/integrations/openapi.json";

/** `/api/integrations/{provider}/health` as Fastify writes it: `/api/integrations/:provider/health`. */
export function fastifyPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ":$1");
}
