/**
 * Response schemas of the HTTP API (zod): what each route answers, built
 * from the same schemas the lifecycle checks its answers with
 * (publicShapes.ts) and the sync's own. Responses may grow fields in a minor
 * release, so the OpenAPI document never closes them (no
 * `additionalProperties: false`); requests stay strict.
 */
import { z } from "zod";
import { CONNECTORS, PROVIDER_IDS, type ProviderId } from "../integrations/registry.js";
import { ERROR_CODES } from "../integrations/shared/errors.js";
import { connectionSchemaOf, errorTypeSchema, healthSchemaOf } from "../integrations/shared/publicShapes.js";
import { syncConfigSchema } from "../integrations/jira/sync/config.js";
import { siteSchema } from "../integrations/jira/sync/jiraApi.js";

const iso = z.string().describe("ISO-8601");

/** The one error body: `{"error": {type, message, retryable, ...}}`. */
export const errorBodySchema = z
  .object({
    error: z.object({
      type: errorTypeSchema,
      message: z.string(),
      retryable: z.boolean().describe("Derived from type: true for rate-limit, network and upstream only"),
      provider: z.string().optional(),
      code: z
        .union([z.enum(ERROR_CODES as [string, ...string[]]), z.string()])
        .optional()
        .describe("One of the service's own codes, or (with providerStatus) the provider's own code verbatim"),
      field: z.string().optional().describe("The request field at fault, for a schema error about the caller's input"),
      providerStatus: z.number().int().optional().describe("The provider's HTTP status, when it answered"),
      retryAfterSeconds: z.number().optional(),
    }),
  })
  .meta({ id: "ErrorBody", title: "Error body" });

export type ErrorBody = z.output<typeof errorBodySchema>;

/** A 409 of a Jira push refused by the conflict policy: both versions of each field, beside the error. */
export const conflictBodySchema = errorBodySchema
  .extend({
    conflicts: z.array(z.object({ field: z.string(), jira: z.unknown(), autoflow: z.unknown() })),
    jiraUpdated: z.string().nullable().optional(),
  })
  .meta({ id: "TicketConflictBody", title: "Ticket conflict" });

const byProvider = <T extends z.ZodType>(of: (id: ProviderId) => T): T[] => PROVIDER_IDS.map(of);

/** Any connector's public connection (the route's `provider` says which). */
export const connectionSchema = z.union(byProvider((id) => connectionSchemaOf(CONNECTORS[id].definition)));
/** Any connector's health envelope. */
export const healthSchema = z.union(byProvider((id) => healthSchemaOf(CONNECTORS[id].definition)));

export const oauthStartSchema = z
  .object({
    authUrl: z.string().describe("Where to send the user's browser"),
    state: z.string(),
    expiresInSeconds: z.number().int(),
    codeVerifier: z.string().optional().describe("PKCE connectors only"),
  })
  .meta({ id: "OAuthStartResult", title: "Tier1OAuthStartResult" });

export const actionDescriptionSchema = z.object({
  name: z.string(),
  description: z.string(),
  scopes: z.array(z.string()).optional(),
  input: z.record(z.string(), z.unknown()).describe("JSON Schema of the action's input"),
  output: z.record(z.string(), z.unknown()).describe("JSON Schema of the action's output"),
});

export const providersSchema = z.object({
  providers: z.array(
    z
      .object({
        id: z.enum(PROVIDER_IDS as [ProviderId, ...ProviderId[]]),
        displayName: z.string(),
        authMethods: z.array(z.string()),
        oauthAuthMethod: z.string(),
        pkce: z.boolean(),
        acceptsBaseUrl: z.boolean(),
        acceptsEmail: z.boolean(),
        accountLabel: z.array(z.string()),
        scopes: z.array(z.string()),
        mode: z.enum(["live", "sandbox"]),
        sandboxUrl: z.string().optional(),
        redirectUri: z.string(),
        actions: z.array(actionDescriptionSchema),
      })
      .meta({ id: "Provider", title: "Connector" }),
  ),
});

export const connectionsOverviewSchema = z.object({
  connections: z.array(z.object({ provider: z.enum(PROVIDER_IDS as [ProviderId, ...ProviderId[]]), connection: connectionSchema, health: healthSchema.nullable() })),
});

export const connectionListSchema = z.object({ connections: z.array(connectionSchema) });

export const testResultSchema = z
  .record(z.string(), z.string())
  .describe("What the provider says of the account: connectionId, authMethod and the connector's own fields (team, site, email)");

export const disconnectSchema = z.object({
  disconnected: z.literal(true),
  connection: connectionSchema,
  revocation: z.enum(["revoked", "already_invalid", "not_supported", "pending"]),
  note: z.string().optional(),
});

// --- the Jira ticket sync

/** The webhook registration or what to set up for an admin webhook (webhooks.ts). */
const webhookStateSchema = z.union([
  z.object({
    kind: z.literal("dynamic"),
    status: z.enum(["registered", "failed", "unsupported", "unavailable"]),
    url: z.string(),
    site: z.object({ id: z.string(), url: z.string() }).nullable(),
    ids: z.array(z.number()),
    events: z.array(z.string()),
    jqlFilter: z.string().nullable(),
    expiresAtMs: z.number().nullable(),
    expirationDate: z.string().nullable(),
    attemptedAt: z.string(),
    registeredAt: z.string().nullable(),
    refreshedAt: z.string().nullable(),
    error: z.string().nullable(),
    errorType: z.string().nullable(),
    note: z.string().nullable(),
  }),
  z.object({ kind: z.literal("admin"), url: z.string(), secretConfigured: z.boolean(), secret: z.string().optional(), note: z.string() }),
]);
// `unreadable` is left out of runs recorded before it was counted.
const counts = z.object({ pages: z.number(), created: z.number(), updated: z.number(), unchanged: z.number(), stale: z.number(), deleted: z.number(), unreadable: z.number().optional() });
export const runRecordSchema = z
  .object({
    trigger: z.enum(["manual", "schedule"]),
    startedAt: iso,
    finishedAt: iso.optional(),
    counts,
    deleteScan: z.boolean(),
    error: z.string().optional(),
    errorType: z.string().optional(),
  })
  .meta({ id: "SyncRun", title: "Sync run" });

export const ticketSchema = z
  .object({
    id: z.string(),
    key: z.string(),
    project: z.string().nullable(),
    summary: z.string().nullable(),
    status: z.string().nullable(),
    assignee: z.object({ accountId: z.string().optional(), displayName: z.string().optional() }).nullable(),
    priority: z.string().nullable(),
    labels: z.array(z.string()),
    descriptionText: z.string().nullable(),
    descriptionAdf: z.record(z.string(), z.unknown()).nullable().describe("Cloud's description document (ADF)"),
    created: z.string().nullable(),
    updated: z.string(),
    updatedMs: z.number(),
    fields: z.record(z.string(), z.unknown()).describe("Every field the search named, as Jira answered them"),
    deletedAt: z.string().nullable(),
    mirroredAt: z.string(),
  })
  .meta({ id: "Ticket", title: "Mirrored ticket" });

export const syncConfigAnswerSchema = z.object({ connectionId: z.string(), config: syncConfigSchema, sites: z.array(siteSchema), webhooks: webhookStateSchema.nullable() });
export const syncConfigReadSchema = z.object({ connectionId: z.string(), config: syncConfigSchema.nullable(), sites: z.array(siteSchema) });
export const syncRunSchema = z.object({ run: runRecordSchema });
export const syncStatusSchema = z.object({
  connectionId: z.string(),
  config: syncConfigSchema.nullable(),
  cursor: z.object({ updatedMs: z.number(), updated: z.string(), jqlFrom: z.string().nullable(), timeZone: z.string().nullable() }).nullable(),
  running: z.boolean(),
  resumeFrom: z.object({ jql: z.string(), pagesDone: z.number() }).nullable(),
  lastRun: runRecordSchema.nullable(),
  lastDeleteScanAt: z.string().nullable(),
  webhooks: webhookStateSchema.nullable(),
});
export const ticketListSchema = z.object({ connectionId: z.string(), tickets: z.array(ticketSchema), nextCursor: z.string().optional() });
export const ticketEventsSchema = z.object({
  connectionId: z.string(),
  events: z.array(
    z.object({
      seq: z.number(),
      issueId: z.string(),
      key: z.string(),
      kind: z.enum(["created", "updated", "deleted"]),
      origin: z.enum(["jira", "autoflow", "webhook"]),
      changedFields: z.array(z.string()),
      updated: z.string().nullable(),
      at: z.string(),
    }),
  ),
  next: z.number().describe("The seq to ask after next"),
});
export const ticketAnswerSchema = z.object({ ticket: ticketSchema });
/** An update: the fields sent to Jira, and those where Jira's value was kept by the conflict policy. */
export const ticketUpdateSchema = ticketAnswerSchema.extend({ sent: z.array(z.string()), kept: z.array(z.string()) });
export const commentAnswerSchema = z.object({ ticket: ticketSchema, comment: z.object({ id: z.string(), created: z.string().optional() }) });
export const webhookAnswerSchema = z.object({
  received: z.literal(true),
  duplicate: z.boolean(),
  via: z.enum(["jwt", "hmac"]).optional(),
  outcomes: z.array(z.enum(["created", "updated", "unchanged", "stale", "deleted", "ignored", "failed"])),
});

// --- the operator view, the service, the page

const statusLabel = z.enum(["ok", "degraded", "down", "unchecked"]);
const operated = z.object({
  id: z.string(),
  provider: z.string(),
  userId: z.string(),
  authMethod: z.string(),
  tokenRefreshStatus: z.string(),
  status: statusLabel,
  checkedAt: z.string().optional(),
  errorType: z.string().optional(),
  message: z.string().optional(),
  updatedAt: z.string(),
});
export const operatorOverviewSchema = z.object({
  generatedAt: iso,
  connectors: z.array(
    z.object({
      provider: z.string(),
      displayName: z.string(),
      mode: z.enum(["live", "sandbox"]),
      connections: z.object({ ok: z.number(), degraded: z.number(), down: z.number(), unchecked: z.number(), total: z.number() }),
    }),
  ),
  down: z.array(operated),
  refreshFailures: z.array(operated),
  ticketSyncs: z.array(
    z.object({ connectionId: z.string(), userId: z.string().optional(), configured: z.boolean(), cursorAt: z.string().optional(), run: z.unknown().optional(), lastRun: z.unknown().optional(), updatedAt: z.string() }),
  ),
  owedRevocations: z.array(z.object({ id: z.string(), provider: z.string(), userId: z.string(), revokedAt: z.string(), revocation: z.string().optional() })),
});

export const livenessSchema = z.object({ status: z.literal("ok") });
export const readinessSchema = z.object({ status: z.enum(["ready", "not_ready"]), detail: z.string().optional() });
export const pageConfigSchema = z.object({ localSignIn: z.object({ userId: z.string() }).nullable(), operatorView: z.boolean(), publicUrl: z.string() });
export const localTokenSchema = z.object({ token: z.string().describe("An HS256 user JWT, 8 hours"), userId: z.string() });
