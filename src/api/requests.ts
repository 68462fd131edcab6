/**
 * Request schemas of the HTTP API (zod). Strict: an unknown field is an
 * error that names it, so a typo never passes silently. The server reads
 * each input with these (server/schemas.ts), the OpenAPI document and the
 * typed client describe them.
 */
import { z } from "zod";
import { CONNECTION_ID_PATTERN } from "../integrations/shared/connections.js";

/** Longest code, state, key or token we accept; real ones are far shorter. */
const MAX_CREDENTIAL = 4096;
const credential = z.string().min(1, "must not be empty").max(MAX_CREDENTIAL, `must be at most ${MAX_CREDENTIAL} characters`);

export const emptyBody = z.strictObject({}).optional();

export const startBody = z
  .strictObject({
    /** Where the callback sends the browser afterwards; must be on AUTOFLOW_OAUTH_RETURN_URLS. */
    returnTo: z.string().min(1, "must not be empty").max(2048, "must be at most 2048 characters").optional(),
  })
  .optional();

export const completeBody = z.strictObject({
  code: credential,
  state: credential,
  /** RFC 9207 issuer from the callback, when the client relays it. */
  iss: credential.optional(),
});

export const connectBody = z
  .strictObject({
    apiKey: credential.optional(),
    accessToken: credential.optional(),
    /** A self-hosted or per-site instance (Sentry, Jira); checked by the base-URL guard. */
    baseUrl: z.string().min(1, "must not be empty").max(2048, "must be at most 2048 characters").optional(),
    /** The account's email, for Jira API tokens (Basic email:token). */
    email: z.email("must be an email address").max(320).optional(),
  })
  .refine((body) => body.apiKey !== undefined || body.accessToken !== undefined, {
    message: "give apiKey or accessToken",
    path: ["apiKey"],
  });

/** Our connection ids (`conn_` + base64url); anything else cannot exist and is refused before the vault is asked. */
const connectionId = z.string().regex(CONNECTION_ID_PATTERN, "must be a connection id (1 to 64 letters, digits, _ and -)");

export const connectionQuery = z.strictObject({ connectionId: connectionId.optional() });

/** The longest a stored health envelope may be answered for (a day); 0 asks for a probe now. */
export const MAX_HEALTH_AGE_SECONDS = 86_400;

/** GET .../health: `maxAge` in seconds, as HTTP's own Cache-Control max-age; the service's default when absent. */
export const healthQuery = connectionQuery.extend({
  maxAge: z.coerce.number().int().min(0).max(MAX_HEALTH_AGE_SECONDS).optional().describe("Answer the last recorded envelope when younger than this many seconds; 0 probes now"),
});

/** DELETE .../connections/:id: every malformed id is the one error about the field `id`. */
export const connectionParams = z.object({ id: connectionId });

export const listQuery = z.strictObject({
  includeRevoked: z.enum(["true", "false"], { error: 'must be "true" or "false"' }).optional(),
});


/** The Jira ticket sync's routes. */
export const runBody = z.strictObject({ deleteScan: z.boolean().optional() }).optional();
const flag = z.enum(["true", "false"], { error: 'must be "true" or "false"' });
export const ticketsQuery = connectionQuery.extend({
  project: z.string().min(1).max(64).optional(),
  status: z.string().min(1).max(255).optional(),
  assignee: z.string().min(1).max(128).optional(),
  label: z.string().min(1).max(255).optional(),
  includeDeleted: flag.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: z.string().min(1).max(512).optional(),
});
export const eventsQuery = connectionQuery.extend({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export const keyParams = z.object({ key: z.string().regex(/^(?:[A-Z][A-Z0-9_]*-\d+|\d+)$/, "must be an issue key (SBX-12) or id") });


/** The operator view. */
export const overviewQuery = z.strictObject({
  /** How many rows each list holds at most (newest first). */
  limit: z.coerce.number().int("must be a whole number").min(1, "must be at least 1").max(500, "must be at most 500").default(50),
});

