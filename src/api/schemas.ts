/**
 * The schemas of each operation of ./routes.ts, keyed the same: its path
 * parameters, query, body and answers by status. The server parses input
 * with the request ones; with AUTOFLOW_CHECK_RESPONSES=1 (the test suite)
 * it checks every JSON answer against these before it is sent; the OpenAPI
 * document and the typed client are read off them.
 */
import { z } from "zod";
import { createTicketSchema, commentSchema, transitionSchema, updateTicketSchema } from "../integrations/jira/sync/push.js";
import { syncConfigSchema } from "../integrations/jira/sync/config.js";
import { PROVIDER_IDS, type ProviderId } from "../integrations/registry.js";
import { proxyInputSchema } from "../integrations/shared/proxy.js";
import {
  completeBody,
  connectBody,
  connectionParams,
  connectionQuery,
  emptyBody,
  eventsQuery,
  healthQuery,
  keyParams,
  listQuery,
  overviewQuery,
  runBody,
  startBody,
  ticketsQuery,
} from "./requests.js";
import {
  commentAnswerSchema,
  conflictBodySchema,
  connectionListSchema,
  connectionSchema,
  connectionsOverviewSchema,
  disconnectSchema,
  errorBodySchema,
  healthSchema,
  livenessSchema,
  localTokenSchema,
  oauthStartSchema,
  operatorOverviewSchema,
  pageConfigSchema,
  providersSchema,
  readinessSchema,
  syncConfigAnswerSchema,
  syncConfigReadSchema,
  syncRunSchema,
  syncStatusSchema,
  testResultSchema,
  ticketAnswerSchema,
  ticketEventsSchema,
  ticketListSchema,
  ticketUpdateSchema,
  webhookAnswerSchema,
} from "./responses.js";
import type { OperationId } from "./routes.js";

/** One answer: a JSON body of this schema, or another content type (a page, metrics, the provider's bytes). */
export type ApiResponse = { description: string; schema?: z.ZodType; contentType?: string; headers?: Readonly<Record<string, string>> };

export type OperationSchemas = {
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** The request body is required (otherwise it may be left out). */
  bodyRequired?: boolean;
  /** Request headers the operation reads, by name, with what each is for. */
  headers?: Readonly<Record<string, string>>;
  responses: Readonly<Record<number, ApiResponse>>;
  /** Answers with statuses and bodies that are not ours (the proxy: the provider's answer as it gave it). */
  passthrough?: boolean;
};

export const providerParams = z.object({ provider: z.enum(PROVIDER_IDS as [ProviderId, ...ProviderId[]]) });
const providerConnectionParams = providerParams.extend(connectionParams.shape);
const actionParams = providerParams.extend({ action: z.string().describe("An action name of the connector's catalogue (GET /api/integrations)") });

const error = (description: string): ApiResponse => ({ description, schema: errorBodySchema });
/** What every authenticated route may answer besides its own outcomes. */
const USER_ERRORS = {
  401: error("No user JWT, or one that does not verify (WWW-Authenticate: Bearer)"),
  429: error("Past the service's per-user request limit (Retry-After)"),
  503: error("The database is unavailable right now (Retry-After)"),
} as const;
/** The provider-facing failures of the contract's taxonomy, as statuses. */
const PROVIDER_ERRORS = {
  404: error("Unknown provider, no such connection, or no active connection"),
  422: error("The provider refused the request for good (schema, with providerStatus)"),
  424: error("The provider refused the stored credential (auth)"),
  502: error("The provider failed or answered unreadably (upstream)"),
  503: error("The provider could not be reached (network), or another instance holds the token refresh"),
} as const;
const BAD_INPUT = { 400: error("A request field is missing, unknown or malformed; the error names it") } as const;
/** What a write to Jira may answer besides its outcome: under an Idempotency-Key, a 409 while its first attempt runs. */
const TICKET_WRITE_ERRORS = { ...BAD_INPUT, ...USER_ERRORS, ...PROVIDER_ERRORS, 409: error("The key's first attempt is running, or its outcome is unknown") } as const;
/** A 200 (or a 201 of a creation) with a JSON body of this schema. */
const ok = <T extends z.ZodType>(schema: T, description: string) => ({ 200: { description, schema } });
const created = <T extends z.ZodType>(schema: T, description: string) => ({ 201: { description, schema } });

export const OPERATION_SCHEMAS = {
  listProviders: { responses: { ...ok(providersSchema, "Every connector"), ...USER_ERRORS } },
  listAllConnections: { responses: { ...ok(connectionsOverviewSchema, "The user's active connections, each with its last recorded health (null before the first)"), ...USER_ERRORS } },
  startOAuth: {
    params: providerParams,
    body: startBody,
    responses: {
      200: { description: "The flow is begun; Set-Cookie binds it to this browser", schema: oauthStartSchema, headers: { "set-cookie": "The flow's browser binding (HttpOnly, path of the callback)" } },
      ...BAD_INPUT,
      ...USER_ERRORS,
      404: error("Unknown provider"),
    },
  },
  completeOAuth: {
    params: providerParams,
    body: completeBody,
    bodyRequired: true,
    responses: { ...created(connectionSchema, "Connected"), ...BAD_INPUT, ...USER_ERRORS, ...PROVIDER_ERRORS },
  },
  oauthCallback: {
    params: providerParams,
    query: z.looseObject({ code: z.string().optional(), state: z.string().optional(), iss: z.string().optional(), error: z.string().optional(), error_description: z.string().optional() }),
    responses: {
      200: { description: "An HTML page saying the account is connected", contentType: "text/html" },
      303: { description: "Back to the flow's returnTo with integration, status (connected or error) and connectionId or error", headers: { location: "The returnTo address" } },
      400: { description: "An HTML page: the user declined, or the callback is malformed", contentType: "text/html" },
      404: error("Unknown provider"),
      422: { description: "An HTML page: the provider refused the exchange for good", contentType: "text/html" },
      424: { description: "An HTML page: the provider refused the exchange", contentType: "text/html" },
      429: { description: "An HTML page: the provider throttled the exchange", contentType: "text/html" },
      500: { description: "An HTML page: something unexpected failed (logged)", contentType: "text/html" },
      502: { description: "An HTML page: the provider failed", contentType: "text/html" },
      503: { description: "An HTML page: the provider could not be reached", contentType: "text/html" },
    },
  },
  connect: {
    params: providerParams,
    body: connectBody,
    bodyRequired: true,
    responses: { ...created(connectionSchema, "Connected"), ...BAD_INPUT, ...USER_ERRORS, ...PROVIDER_ERRORS },
  },
  listConnections: { params: providerParams, query: listQuery, responses: { ...ok(connectionListSchema, "The user's connections, newest first"), ...BAD_INPUT, ...USER_ERRORS, 404: error("Unknown provider") } },
  testConnection: {
    params: providerParams,
    query: connectionQuery,
    body: emptyBody,
    responses: { ...ok(testResultSchema, "The credential works"), ...BAD_INPUT, ...USER_ERRORS, ...PROVIDER_ERRORS },
  },
  health: {
    params: providerParams,
    query: healthQuery,
    responses: { ...ok(healthSchema, "The v1 health envelope (ok, degraded or down: a failed probe is an answer, not an error)"), ...BAD_INPUT, ...USER_ERRORS, 404: error("Unknown provider or connection") },
  },
  runAction: {
    params: actionParams,
    query: connectionQuery,
    body: z.record(z.string(), z.unknown()).describe("The action's input (its JSON Schema is in the catalogue)"),
    responses: { ...ok(z.record(z.string(), z.unknown()).describe("The action's output"), "The action's output, checked against its schema"), ...BAD_INPUT, ...USER_ERRORS, ...PROVIDER_ERRORS, 429: error("The provider throttled the call, or the service's own limit") },
  },
  proxy: {
    params: providerParams,
    body: proxyInputSchema,
    bodyRequired: true,
    passthrough: true,
    responses: {
      200: { description: "The provider's answer, status, headers and body as it gave them (X-AutoFlow-Connection-Id; X-AutoFlow-Error-Type on a refusal)", contentType: "*/*" },
      ...BAD_INPUT,
      ...USER_ERRORS,
      413: error("The body passed the proxy's bound"),
    },
  },
  disconnect: { params: providerConnectionParams, responses: { ...ok(disconnectSchema, "Disconnected (again, for a connection already revoked), with how the revocation went"), ...BAD_INPUT, ...USER_ERRORS, 404: error("No such connection for this user") } },
  putSyncConfig: {
    query: connectionQuery,
    body: syncConfigSchema,
    bodyRequired: true,
    responses: { ...ok(syncConfigAnswerSchema, "Stored, with the sites the grant reaches and the webhook registration"), ...BAD_INPUT, ...USER_ERRORS, ...PROVIDER_ERRORS },
  },
  getSyncConfig: { query: connectionQuery, responses: { ...ok(syncConfigReadSchema, "The configuration (null before one is stored)"), ...BAD_INPUT, ...USER_ERRORS, ...PROVIDER_ERRORS } },
  runSync: { query: connectionQuery, body: runBody, responses: { ...ok(syncRunSchema, "The run, finished"), ...BAD_INPUT, ...USER_ERRORS, ...PROVIDER_ERRORS, 409: error("Another instance is running this connection's sync") } },
  syncStatus: { query: connectionQuery, responses: { ...ok(syncStatusSchema, "The sync's state"), ...BAD_INPUT, ...USER_ERRORS, 404: error("No Jira connection") } },
  listTickets: { query: ticketsQuery, responses: { ...ok(ticketListSchema, "A page of the mirror"), ...BAD_INPUT, ...USER_ERRORS, 404: error("No Jira connection") } },
  ticketEvents: { query: eventsQuery, responses: { ...ok(ticketEventsSchema, "The change feed after `after`"), ...BAD_INPUT, ...USER_ERRORS, 404: error("No Jira connection") } },
  getTicket: { params: keyParams, query: connectionQuery, responses: { ...ok(ticketAnswerSchema, "The ticket"), ...BAD_INPUT, ...USER_ERRORS, 404: error("No such ticket in the mirror") } },
  createTicket: {
    query: connectionQuery,
    body: createTicketSchema,
    bodyRequired: true,
    headers: { "idempotency-key": "1 to 255 printable characters: a retry with the same key and body answers the first answer (Idempotent-Replayed: true)" },
    responses: { ...created(ticketAnswerSchema, "Created in Jira and mirrored"), ...TICKET_WRITE_ERRORS },
  },
  updateTicket: {
    params: keyParams,
    query: connectionQuery,
    body: updateTicketSchema,
    bodyRequired: true,
    headers: { "idempotency-key": "As for create" },
    responses: {
      ...ok(ticketUpdateSchema, "Updated in Jira and mirrored"),
      ...BAD_INPUT,
      ...USER_ERRORS,
      ...PROVIDER_ERRORS,
      409: { description: "Jira changed a field too and the conflict policy refuses: both versions", schema: z.union([conflictBodySchema, errorBodySchema]) },
    },
  },
  transitionTicket: {
    params: keyParams,
    query: connectionQuery,
    body: transitionSchema,
    bodyRequired: true,
    headers: { "idempotency-key": "As for create" },
    responses: { ...ok(ticketAnswerSchema, "Moved"), ...TICKET_WRITE_ERRORS },
  },
  commentTicket: {
    params: keyParams,
    query: connectionQuery,
    body: commentSchema,
    bodyRequired: true,
    headers: { "idempotency-key": "As for create" },
    responses: { ...created(commentAnswerSchema, "Commented"), ...TICKET_WRITE_ERRORS },
  },
  jiraWebhook: {
    query: connectionQuery,
    body: z.record(z.string(), z.unknown()).describe("Jira's webhook event, as Jira sends it"),
    bodyRequired: true,
    headers: { authorization: "A dynamic webhook's JWT (HS256, the app's client secret)", "x-hub-signature": "An admin webhook's HMAC-SHA256 of the body" },
    responses: {
      ...ok(webhookAnswerSchema, "Received (a duplicate is acknowledged and not applied again)"),
      400: error("Not a webhook event"),
      401: error("The delivery does not prove itself"),
      403: error("A verified delivery that names no connection of ours"),
      404: error("No such connection"),
    },
  },
  operatorOverview: {
    query: overviewQuery,
    responses: {
      ...ok(operatorOverviewSchema, "The overview; each list newest first, at most `limit`"),
      ...BAD_INPUT,
      401: error("No operator token, or another one (user tokens are not accepted)"),
      404: error("The operator view is off: AUTOFLOW_OPERATOR_TOKEN is not set"),
    },
  },
  liveness: { responses: ok(livenessSchema, "Up") },
  readiness: { responses: { ...ok(readinessSchema, "Ready"), 503: { description: "Not ready (the database)", schema: readinessSchema } } },
  metrics: { responses: { 200: { description: "Prometheus text exposition", contentType: "text/plain" }, 401: error("AUTOFLOW_METRICS_TOKEN is set and was not sent") } },
  openApi: { responses: { 200: { description: "The OpenAPI 3.1 document", contentType: "application/json" } } },
  apiDocs: { responses: { 200: { description: "The API reference page", contentType: "text/html" } } },
  pageConfig: { responses: ok(pageConfigSchema, "The page's settings") },
  localToken: {
    responses: { ...ok(localTokenSchema, "A token for the local user"), 403: error("Not offered here: a live connector, a configured secret, or a request not from this machine's page") },
  },
} as const satisfies Record<OperationId, OperationSchemas>;

/** The zod schemas of each operation, as the typed client reads them. */
export type OperationSchemasOf<O extends OperationId> = (typeof OPERATION_SCHEMAS)[O];
