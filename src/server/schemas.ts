/**
 * Request schemas of the HTTP API (zod). Strict: an unknown field is an
 * error that names it, so a typo never passes silently.
 */
import { z } from "zod";
import { ErrorCodes, IntegrationError, invalidInput } from "../integrations/shared/errors.js";
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

/** DELETE .../connections/:id: every malformed id is the one error about the field `id`. */
export const connectionParams = z.object({ id: connectionId });

export const listQuery = z.strictObject({
  includeRevoked: z.enum(["true", "false"], { error: 'must be "true" or "false"' }).optional(),
});

/** Parses `value` with `schema`, or throws a schema error naming each wrong field. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, where: "body" | "query" | "params"): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5);
  const describe = (issue: z.core.$ZodIssue): string => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") return `${where} has ${unknownFields(issue.keys)}`;
    if (issue.code === "invalid_type" && path === "") return `${where} must be a JSON object`;
    return `${path || where}: ${issue.message}`;
  };
  const first = issues[0];
  const field = first?.code === "unrecognized_keys" ? first.keys[0]?.slice(0, MAX_FIELD_NAME) : first?.path.map(String).join(".");
  const message = issues.map(describe).join("; ");
  // An unknown field's message names it already (quoted); any other names its path.
  if (first?.code === "unrecognized_keys") throw new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: field || where, message });
  throw invalidInput(field || where, message);
}

/**
 * Unknown fields named in an error: a few, and how many more. A body of
 * 60,000 made-up fields gets a short answer, not its names echoed back.
 */
const MAX_LISTED_FIELDS = 5;
/** Longest part of an unknown field's name quoted back: ours are short, a longer one is no typo. */
const MAX_FIELD_NAME = 64;

function unknownFields(keys: readonly string[]): string {
  const listed = keys.slice(0, MAX_LISTED_FIELDS).map((k) => JSON.stringify(k.slice(0, MAX_FIELD_NAME)));
  const more = keys.length - listed.length;
  const names = more > 0 ? `${listed.join(", ")} and ${more} more` : listed.join(", ");
  return `unknown field${keys.length === 1 ? "" : "s"} ${names}`;
}
