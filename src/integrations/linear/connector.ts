/**
 * Linear: OAuth 2.0 with PKCE (S256) and rotating refresh tokens, or a
 * personal API key (`lin_api_...`) pasted by the user. The API is one
 * GraphQL endpoint; Linear reports almost every failure in the GraphQL body
 * (`errors[].extensions.code` / `.type`) under HTTP 200, 400 or 401 alike,
 * so classification reads the body first and the status only when the body
 * says nothing.
 *
 * Wire facts: providers.md part 2, §1 (Linear); linear.app/developers
 * oauth-2-0-authentication, graphql ("Authentication", "Error handling"),
 * rate-limiting; linear/linear packages/sdk/src/error.ts (the SDK's error
 * types and its status fallback); captured live bodies quoted in
 * providers.md §1.4.
 *
 * Decisions where the sources are unsure or silent:
 * - Refresh tokens rotate (documented); whether the old one keeps working for
 *   a while is not. We always store the newest, and we retry a refresh after a
 *   5xx or a lost answer: if Linear had already rotated, the retry fails with
 *   invalid_grant, which is where not retrying would have left us anyway (the
 *   stored token is the old one either way); if it had not, the retry wins.
 * - Token answers: `scope` is a space-separated string, but apps created
 *   before 2023-12-01 get an array, and some clients report commas. All three
 *   are accepted.
 * - A partial GraphQL result (`data` beside `errors`) counts as the error its
 *   `errors` describe: every field of the who-am-I query is needed to describe
 *   the connection, and a transient field error is then retried like any other.
 * - Revocation: Linear revokes "a user's access to your application" given
 *   either token; we send the refresh token (it outlives the access token) and
 *   fall back to the access token. 400 (already revoked) and 401 (unknown
 *   token) both mean there is nothing left to revoke.
 */
import { z } from "zod";
import type { ConnectorContext, ConnectorDefinition, Identity, ParsedApiKey, TokenGrant } from "../shared/connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ErrorType } from "../shared/contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../shared/errors.js";
import type { ErrorVerdict, ProviderRequest, ProviderResponse } from "../shared/http.js";
import { parseRetryAfter } from "../shared/retry.js";
import { classifyOAuthError, exchangeCodeStandard, refreshStandard, type ClientAuthMethod, type StandardGrant } from "../shared/standardOAuth.js";
import { linearRateLimit } from "./rateLimit.js";
import { linearRetryPolicy } from "./retryPolicy.js";

export type LinearAuthMethod = "oauth2" | "api_key";
export const linearMetadataSchema = z.object({ scopes: z.array(z.string()), organizationId: z.string(), organizationName: z.string().optional(), urlKey: z.string().optional() });
export type LinearMetadata = z.infer<typeof linearMetadataSchema>;
export type LinearConnectionPublic = Tier1ConnectionPublic<LinearAuthMethod, LinearMetadata>;
export type LinearHealth = Tier1ConnectionHealth<LinearAuthMethod, Partial<LinearMetadata>>;

/** The test call: who the credential acts as, and in which workspace (graphql.md, SDK schema). */
export const WHO_AM_I_OPERATION = "AutoFlowWhoAmI";
export const WHO_AM_I_QUERY = `query ${WHO_AM_I_OPERATION} { viewer { id name email } organization { id name urlKey } }`;
const GRAPHQL_OPERATION = `POST /graphql (${WHO_AM_I_OPERATION})`;
export const REVOKE_OPERATION = "POST /oauth/revoke";

/** `extensions.code`, as Linear (an Apollo server) sends it. Codes win over `type` when both are present. */
const CODE_TYPES: Readonly<Record<string, Tier1ErrorType>> = {
  AUTHENTICATION_ERROR: "auth", // no, bad, expired or revoked credential
  FORBIDDEN: "auth", // the credential may not do this (scope, role)
  RATELIMITED: "rate-limit", // under HTTP 200 (docs), 400 (observed) or 429 (SDK)
  GRAPHQL_VALIDATION_FAILED: "schema", // unknown field, syntax error (Linear reports both with this code)
  GRAPHQL_PARSE_FAILED: "schema",
  BAD_USER_INPUT: "schema",
  BAD_REQUEST: "schema", // no query in the body
  INVALID_INPUT: "schema",
  INPUT_ERROR: "schema", // "Entity not found", with type "invalid input"
  INTERNAL_SERVER_ERROR: "upstream",
};

/** `extensions.type`, the field the SDK reads (packages/sdk/src/error.ts). */
const EXTENSION_TYPES: Readonly<Record<string, Tier1ErrorType>> = {
  "authentication error": "auth",
  forbidden: "auth",
  // A plan or feature gate: permanent for this workspace, and only an admin can lift it (providers.md: best bucket unsure).
  "feature not accessible": "auth",
  ratelimited: "rate-limit",
  // A plan quota such as the free plan's issue cap: asking again does not help (providers.md: unsure).
  "usage limit exceeded": "schema",
  "invalid input": "schema",
  "user error": "schema",
  "graphql error": "schema",
  "internal error": "upstream",
  "lock timeout": "upstream",
  "network error": "upstream",
  "bootstrap error": "upstream",
};

/** When several errors come back, the one the caller must act on first. */
const PRECEDENCE: readonly Tier1ErrorType[] = ["rate-limit", "auth", "upstream", "network", "schema"];
/** Longest part of Linear's own message we quote. */
const MAX_QUOTED = 300;
/** Epoch values below this are seconds, not milliseconds (10^11 ms is 1973; 10^11 s is the year 5138). */
const EPOCH_MS_FLOOR = 1e11;

type GraphQLErrorEntry = {
  message?: unknown;
  extensions?: { code?: unknown; type?: unknown; statusCode?: unknown; userError?: unknown; userPresentableMessage?: unknown };
};

const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);

/** The type one GraphQL error names: code, then type, then its statusCode, then userError. */
function typeOfEntry(entry: GraphQLErrorEntry): Tier1ErrorType | undefined {
  const ext = entry.extensions ?? {};
  const code = text(ext.code);
  const type = text(ext.type)?.toLowerCase();
  const byName = (code ? CODE_TYPES[code] : undefined) ?? (type ? EXTENSION_TYPES[type] : undefined);
  if (byName) return byName;
  if (typeof ext.statusCode === "number") {
    const fromStatus = typeOfStatus(ext.statusCode);
    if (fromStatus) return fromStatus;
  }
  return ext.userError === true ? "schema" : undefined;
}

/** HTTP statuses with a meaning of their own, for answers whose body says nothing known. */
function typeOfStatus(status: number): Tier1ErrorType | undefined {
  if (status === 401 || status === 403) return "auth";
  if (status === 429) return "rate-limit";
  if (status >= 500) return "upstream";
  if (status >= 400) return "schema";
  return undefined;
}

/**
 * Body first: the GraphQL `errors` (whatever the HTTP status), then an RFC
 * 6749 token-endpoint error, then the status. A 2xx without `errors` is a
 * success; the caller checks `data`.
 */
export function classifyLinear(response: ProviderResponse, request: Pick<ProviderRequest, "operation">): ErrorVerdict | null {
  const { status } = response;
  const op = request.operation;
  const body = typeof response.json === "object" && response.json !== null ? (response.json as { errors?: unknown; error?: unknown }) : undefined;
  const entries = Array.isArray(body?.errors) ? (body.errors.filter((e) => typeof e === "object" && e !== null) as GraphQLErrorEntry[]) : [];

  if (op === REVOKE_OPERATION && (status === 400 || status === 401)) {
    // 400: cannot revoke (already revoked); 401: cannot authenticate with the token. Either way nothing is left to revoke.
    return { type: "auth", code: status === 400 ? "token_not_revocable" : "invalid_token", message: `Linear no longer knows the token it was asked to revoke (HTTP ${status})` };
  }
  if (entries.length > 0) return graphQLVerdict(response, entries, op);
  if (status >= 200 && status < 300) return null;
  // Before the RFC 6749 body: a throttled token call still carries the reset headers.
  if (status === 429) return throttleVerdict(response, undefined, op);
  const oauth = classifyOAuthError(response, op, "Linear");
  if (oauth) return oauth;
  const type = typeOfStatus(status) ?? "upstream";
  const what = type === "auth" ? (status === 403 ? "refused: the credential may not do this" : "refused the credential") : type === "upstream" ? "failed to answer" : "refused the request";
  return { type, code: `http_${status}`, message: `Linear ${what} (${op}, HTTP ${status})` };
}

function graphQLVerdict(response: ProviderResponse, entries: GraphQLErrorEntry[], op: string): ErrorVerdict {
  const typed = entries.map((entry) => ({ entry, type: typeOfEntry(entry) }));
  const known = typed.filter((t): t is { entry: GraphQLErrorEntry; type: Tier1ErrorType } => t.type !== undefined);
  const pick = PRECEDENCE.map((type) => known.find((t) => t.type === type)).find((t) => t !== undefined);
  // Nothing known: Linear's own "unknown"/"other" types. A 4xx is a refusal; otherwise it is Linear's trouble.
  const entry = pick?.entry ?? (entries[0] as GraphQLErrorEntry);
  const type = pick?.type ?? typeOfStatus(response.status) ?? "upstream";
  const ext = entry.extensions ?? {};
  const code = text(ext.code) ?? text(ext.type)?.toUpperCase().replace(/\s+/g, "_") ?? `http_${response.status}`;
  const said = (text(ext.userPresentableMessage) ?? text(entry.message))?.slice(0, MAX_QUOTED);
  const quoted = said ? `: ${said}` : "";
  const more = entries.length > 1 ? ` (and ${entries.length - 1} more error${entries.length > 2 ? "s" : ""})` : "";
  switch (type) {
    case "rate-limit":
      return throttleVerdict(response, said, op);
    case "auth":
      return {
        type,
        code,
        message:
          code === "FORBIDDEN" || ext.type === "forbidden"
            ? `Linear refused ${op}: the credential may not do this (${code})${quoted}${more}`
            : code === "AUTHENTICATION_ERROR"
              ? `Linear refused the credential for ${op}: it is invalid, expired or revoked (${code})${quoted}`
              : `Linear refused ${op} (${code})${quoted}${more}`,
      };
    case "upstream":
      return { type, code, message: `Linear failed to answer ${op} (${code}, HTTP ${response.status})${quoted}${more}` };
    default:
      return { type, code, message: `Linear refused ${op} (${code})${quoted}${more}` };
  }
}

type Bucket = { name: string; remaining: number | undefined; resetMs: number | undefined };

/** Epoch milliseconds (what Linear sends), or seconds from a proxy that rewrote them. */
function epochMs(value: string | null): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) return undefined;
  return n < EPOCH_MS_FLOOR ? n * 1000 : n;
}

function buckets(headers: Headers): Bucket[] {
  const read = (name: string, prefix: string): Bucket => {
    const remaining = headers.get(`${prefix}-remaining`);
    return { name, remaining: remaining === null || remaining.trim() === "" ? undefined : Number(remaining), resetMs: epochMs(headers.get(`${prefix}-reset`)) };
  };
  return [
    read("requests", "x-ratelimit-requests"),
    read("complexity", "x-ratelimit-complexity"),
    read(headers.get("x-ratelimit-endpoint-name") ?? "endpoint", "x-ratelimit-endpoint-requests"),
  ];
}

/**
 * Seconds to wait before Linear takes requests again, from its
 * `X-RateLimit-*-Reset` headers (UTC epoch milliseconds, which the shared
 * Retry-After parser does not read): the latest reset among the limits that
 * are spent, or the request limit's reset when none says it is spent.
 * Undefined when a Retry-After header is there (the HTTP client reads it) or
 * when no reset lies in the future.
 */
export function linearRetryAfterSeconds(headers: Headers, nowMs: number = Date.now()): number | undefined {
  if (parseRetryAfter(headers.get("retry-after"), nowMs) !== undefined) return undefined;
  const all = buckets(headers).filter((b) => b.resetMs !== undefined);
  const spent = all.filter((b) => b.remaining !== undefined && b.remaining <= 0);
  const resets = (spent.length > 0 ? spent : all.filter((b) => b.name === "requests")).map((b) => b.resetMs as number);
  if (resets.length === 0) return undefined;
  const waitMs = Math.max(...resets) - nowMs;
  return waitMs > 0 ? Math.ceil(waitMs / 1000) : undefined;
}

function throttleVerdict(response: ProviderResponse, said: string | undefined, op: string): ErrorVerdict {
  const retryAfterSeconds = linearRetryAfterSeconds(response.headers);
  const spent = buckets(response.headers).filter((b) => b.remaining !== undefined && b.remaining <= 0);
  const which = spent.length > 0 ? ` (${spent.map((b) => `${b.name} limit spent`).join(", ")})` : "";
  return {
    type: "rate-limit",
    code: "RATELIMITED",
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    message: `Linear API rate limit exceeded on ${op}${which}${said ? `: ${said}` : ""}`,
  };
}

/**
 * Scopes of a token answer: a space-separated string (documented), an array
 * (apps created before 2023-12-01), or commas (seen in the wild).
 */
export function parseLinearScopes(value: unknown): string[] | undefined {
  const parts = typeof value === "string" ? value.split(/[\s,]+/) : Array.isArray(value) ? value.filter((s): s is string => typeof s === "string") : undefined;
  return parts?.map((s) => s.trim()).filter(Boolean);
}

/** The token answer with an array `scope` joined, so oauth4webapi (which wants a string) validates the rest. */
export function normaliseTokenAnswer(json: Record<string, unknown>): Record<string, unknown> {
  return Array.isArray(json.scope) ? { ...json, scope: (parseLinearScopes(json.scope) ?? []).join(" ") } : json;
}

/** A validated token answer, reduced to what the lifecycle stores. */
export function linearGrant(grant: StandardGrant): TokenGrant {
  const scopes = parseLinearScopes(grant.body.scope) ?? grant.scopes;
  return {
    accessToken: grant.accessToken,
    ...(grant.refreshToken ? { refreshToken: grant.refreshToken } : {}),
    // 86399 for a 24 h token; a legacy app's ten-year token (315705599) is stored as it is: it has no refresh token.
    ...(grant.expiresInSeconds !== undefined ? { expiresInSeconds: grant.expiresInSeconds } : {}),
    scopes,
    metadata: {},
  };
}

/** Client authentication at the token endpoint: id and secret in the form (documented for both grants); a PKCE app may have no secret. */
const clientAuth = (ctx: ConnectorContext): ClientAuthMethod => (ctx.settings.clientSecret ? "client_secret_post" : "none");

/** POST /graphql answer to the who-am-I query. Only the ids are relied on. */
const whoAmISchema = z.looseObject({
  data: z.looseObject({
    viewer: z.looseObject({ id: z.string().min(1), name: z.string().nullish(), email: z.string().nullish() }),
    organization: z.looseObject({ id: z.string().min(1), name: z.string().nullish(), urlKey: z.string().nullish() }),
  }),
});

/**
 * Personal API keys: `lin_api_` and 40 letters and digits today (secret
 * scanners match exactly 40); a little room either way so a longer key does
 * not lock users out.
 */
const PERSONAL_API_KEY = /^lin_api_[A-Za-z0-9]{32,64}$/;
/** OAuth access tokens (the prefix is not documented, so nothing relies on it but this hint). */
const OAUTH_TOKEN = /^lin_oauth_[A-Za-z0-9]+$/;

export function parseLinearKey(input: { apiKey?: string; accessToken?: string }): ParsedApiKey<LinearAuthMethod> {
  if (input.apiKey !== undefined && input.accessToken !== undefined) {
    throw invalidInput("apiKey", "give a Linear personal API key as apiKey (or accessToken), not both", "linear");
  }
  const field = input.apiKey !== undefined ? "apiKey" : "accessToken";
  const key = input.apiKey ?? input.accessToken;
  if (key === undefined) throw invalidInput("apiKey", "apiKey is required: a Linear personal API key (lin_api_...)", "linear");
  if (PERSONAL_API_KEY.test(key)) return { token: key, authMethod: "api_key" };
  if (OAUTH_TOKEN.test(key)) {
    throw invalidInput(field, "that is a Linear OAuth access token, which expires after 24 hours; connect through OAuth, or give a personal API key (lin_api_...)", "linear");
  }
  if (/^lin_api_/.test(key)) throw invalidInput(field, "not a whole Linear personal API key: expected lin_api_ followed by 40 letters and digits", "linear");
  throw invalidInput(field, "not a Linear personal API key: expected lin_api_ followed by 40 letters and digits (Settings > Security & access > Personal API keys)", "linear");
}

/** Personal API keys go bare (`Authorization: <key>`: Linear refuses `Bearer lin_api_...`); OAuth tokens as Bearer. */
export function linearAuthorization(token: string, authMethod: string): string {
  return authMethod === "api_key" ? token : `Bearer ${token}`;
}

function unparsable(what: string): IntegrationError {
  return new IntegrationError({ type: "upstream", provider: "linear", code: ErrorCodes.UNPARSABLE_RESPONSE, message: `Linear's ${what} answer is not the documented shape` });
}

export const linearConnector: ConnectorDefinition<LinearAuthMethod, typeof linearMetadataSchema> = {
  metadataSchema: linearMetadataSchema,
  id: "linear",
  displayName: "Linear",
  authMethods: ["oauth2", "api_key"],
  oauthAuthMethod: "oauth2",
  liveEndpoints: {
    // The consent page is on linear.app; tokens, revocation and the API on api.linear.app.
    authorizeUrl: "https://linear.app/oauth/authorize",
    tokenUrl: "https://api.linear.app/oauth/token",
    revokeUrl: "https://api.linear.app/oauth/revoke",
    apiUrl: "https://api.linear.app",
  },
  options: {
    ACTOR: {
      default: "user",
      pattern: /^(user|app)$/,
      description: "who creates resources: user (the person who connected, Linear's default) or app (the application; needed for app:* scopes)",
    },
  },
  pkce: true,
  // `read` is always granted; the who-am-I query needs nothing more.
  defaultScopes: ["read"],
  requiredMetadata: ["organizationId"],
  accountLabel: ["organizationName", "urlKey", "organizationId"],
  retryPolicy: linearRetryPolicy,
  rateLimit: linearRateLimit,
  // Linear counts requests and complexity per user (or API key), not per organization.
  paceBy: "connection",
  classify: classifyLinear,

  authorizationParams(settings) {
    const actor = settings.options.ACTOR;
    return {
      client_id: settings.clientId,
      redirect_uri: settings.redirectUri,
      response_type: "code",
      // Comma-separated, unlike the space of RFC 6749.
      scope: settings.scopes.join(","),
      // Always show the consent screen, so a user who connects again can pick another workspace.
      prompt: "consent",
      // Linear's default is user; sent only when the app is to act as itself.
      ...(actor === "app" ? { actor } : {}),
    };
  },

  async exchangeCode(ctx, input) {
    // A code is single use: a lost answer cannot be retried safely.
    return linearGrant(
      await exchangeCodeStandard(ctx, {
        code: input.code,
        ...(input.codeVerifier ? { codeVerifier: input.codeVerifier } : {}),
        clientAuth: clientAuth(ctx),
        normalize: normaliseTokenAnswer,
      }),
    );
  },

  async refreshToken(ctx, refreshToken) {
    // Retried after a 5xx or a lost answer: see the header comment on rotation.
    return linearGrant(await refreshStandard(ctx, { refreshToken, clientAuth: clientAuth(ctx), idempotent: true, normalize: normaliseTokenAnswer }));
  },

  async revoke(ctx, input) {
    const revokeUrl = ctx.settings.endpoints.revokeUrl;
    // A personal API key is revoked by its owner in Linear's settings; no API revokes it.
    if (input.connection.authMethod !== "oauth2" || !revokeUrl) return "not_supported";
    const send = (init: { form?: Record<string, string>; headers?: Record<string, string>; secret: string }) =>
      ctx.http.send({ operation: REVOKE_OPERATION, method: "POST", url: revokeUrl, ...init, idempotent: true, expectJson: false, secrets: [init.secret] });
    if (input.refreshToken) {
      try {
        await send({ form: { refresh_token: input.refreshToken }, secret: input.refreshToken });
        return "revoked";
      } catch (error) {
        // Already revoked or unknown: the access token may still name a live grant.
        if (!(error instanceof IntegrationError) || error.type !== "auth") throw error;
      }
    }
    await send({ headers: { authorization: `Bearer ${input.accessToken}` }, secret: input.accessToken });
    return "revoked";
  },

  parseApiKey: parseLinearKey,

  // Linear answers a bad or expired token with AUTHENTICATION_ERROR under 400, 401 or 200; FORBIDDEN is a scope, not the token.
  isTokenRejection: (error) => error.code === "AUTHENTICATION_ERROR" || (error.status === 401 && error.code !== "FORBIDDEN"),

  authorize: (credential) => ({ authorization: linearAuthorization(credential.accessToken, credential.authMethod) }),

  whoAmI: {
    // A query, despite the POST.
    request: () => ({ operation: GRAPHQL_OPERATION, method: "POST", path: "/graphql", json: { query: WHO_AM_I_QUERY, operationName: WHO_AM_I_OPERATION }, idempotent: true }),
    process(response): Identity {
      const parsed = whoAmISchema.safeParse(response.json);
      if (!parsed.success) throw unparsable("viewer/organization query");
      const { viewer, organization } = parsed.data.data;
      const organizationName = organization.name || undefined;
      const urlKey = organization.urlKey || undefined;
      return {
        metadata: { organizationId: organization.id, ...(organizationName ? { organizationName } : {}), ...(urlKey ? { urlKey } : {}) },
        summary: {
          organizationId: organization.id,
          organizationName,
          urlKey,
          viewerId: viewer.id,
          viewerName: viewer.name || undefined,
          viewerEmail: viewer.email || undefined,
        },
      };
    },
  },
};
