/**
 * Microsoft Teams: the Microsoft identity platform v2 (authorization code with
 * PKCE S256, a confidential web app sending client_secret in the body) and
 * Microsoft Graph, or a delegated Graph access token pasted by the user.
 * Microsoft has no API keys for Graph and no endpoint that revokes one grant.
 *
 * The who-am-I is one Graph JSON batch (`POST /v1.0/$batch`) of three reads:
 * `/me` (the user), `/me/joinedTeams` (the Teams permission really works) and
 * `/organization` (the tenant id). One round trip, so one throttling budget
 * and one retry decision for the whole check.
 *
 * Wire facts: providers.md §3 (Microsoft Teams); MicrosoftDocs/entra-docs
 * v2-oauth2-auth-code-flow.md (parameters, refresh-token reuse),
 * reference-error-codes.md (AADSTS codes); microsoftgraph/microsoft-graph-docs-contrib
 * concepts/json-batching.md, concepts/errors.md, concepts/throttling.md,
 * api-reference/v1.0/api/{organization-get,user-list-joinedteams}.md.
 */
import { z } from "zod";
import type { ConnectorDefinition, ConnectorSettings, Identity, ParsedApiKey, TokenGrant } from "../shared/connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ErrorType } from "../shared/contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../shared/errors.js";
import type { ErrorVerdict, ProviderRequest, ProviderResponse } from "../shared/http.js";
import { parseRetryAfter } from "../shared/retry.js";
import { classifyOAuthError, exchangeCodeStandard, refreshStandard, type StandardGrant } from "../shared/standardOAuth.js";
import { teamsRateLimit } from "./rateLimit.js";
import { teamsRetryPolicy } from "./retryPolicy.js";

export type TeamsAuthMethod = "oauth2" | "access_token";
export const teamsMetadataSchema = z.object({ scopes: z.array(z.string()), tenantId: z.string(), userPrincipalName: z.string(), displayName: z.string().optional() });
export type TeamsMetadata = z.infer<typeof teamsMetadataSchema>;
export type TeamsConnectionPublic = Tier1ConnectionPublic<TeamsAuthMethod, TeamsMetadata>;
export type TeamsHealth = Tier1ConnectionHealth<TeamsAuthMethod, Partial<TeamsMetadata>>;

const PROVIDER = "teams";
const DISPLAY_NAME = "Microsoft Teams";

/**
 * Who may sign in (the `{tenant}` path segment): `common` (any work, school or
 * personal account), `organizations` (work or school only), a tenant id or one
 * of its domains. `consumers` is refused: joinedTeams does not support
 * personal Microsoft accounts (user-list-joinedteams.md).
 */
const TENANT_PATTERN =
  /^(common|organizations|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})$/i;

const LOGIN_ORIGIN = "https://login.microsoftonline.com";
const GRAPH_ORIGIN = "https://graph.microsoft.com";

/** `https://graph.microsoft.com/User.Read` and `User.Read` name the same permission; Microsoft answers either form. */
const GRAPH_SCOPE_PREFIX = /^https:\/\/graph\.microsoft\.com\//i;
/** Needed for a refresh token (v2-oauth2-auth-code-flow.md): without it the connection dies with its first access token. */
const OFFLINE_ACCESS = "offline_access";

const normalizeScopes = (scopes: readonly string[]): string[] => [...new Set(scopes.map((s) => s.replace(GRAPH_SCOPE_PREFIX, "")).filter(Boolean))];

/** The requested scopes, space-separated, always with offline_access. */
function scopeParam(settings: ConnectorSettings): string {
  const scopes = settings.scopes.some((s) => s.toLowerCase() === OFFLINE_ACCESS) ? settings.scopes : [OFFLINE_ACCESS, ...settings.scopes];
  return scopes.join(" ");
}

/** The operation name of the who-am-I batch; its 200 answer still holds per-request errors. */
const BATCH_OPERATION = "POST /$batch";

// ---------------------------------------------------------------------------
// Classification

/**
 * Graph error codes by type, compared case-insensitively (Graph's casing
 * varies by workload: `itemNotFound` and `ItemNotFound`). Used when the status
 * alone does not decide (concepts/errors.md; providers.md §3.4).
 */
const GRAPH_CODE_TYPES: Readonly<Record<string, Tier1ErrorType>> = {
  invalidauthenticationtoken: "auth",
  unauthenticated: "auth",
  authorization_requestdenied: "auth",
  authorization_identitynotfound: "auth",
  erroraccessdenied: "auth",
  accessdenied: "auth",
  forbidden: "auth",
  insufficient_claims: "auth",
  toomanyrequests: "rate-limit",
  activitylimitreached: "rate-limit",
  throttledrequest: "rate-limit",
  servicenotavailable: "upstream",
  generalexception: "upstream",
  internalservererror: "upstream",
  unknownerror: "upstream",
};

/** Status first where Graph uses it; 509 is SharePoint's bandwidth throttle. */
function graphStatusType(status: number): Tier1ErrorType | undefined {
  if (status === 401 || status === 403) return "auth";
  if (status === 429 || status === 509) return "rate-limit";
  if (status >= 500) return "upstream";
  return undefined;
}

/**
 * Identity-platform error values whose RFC 6749 reading is not Microsoft's:
 * `interaction_required` (MFA, Conditional Access: AADSTS50076, 53003) and
 * `consent_required` (AADSTS65001) need the user, so they are auth
 * (v2-oauth2-auth-code-flow.md, "Error codes for token endpoint errors").
 */
const STS_TYPES: Readonly<Record<string, Tier1ErrorType>> = {
  interaction_required: "auth",
  consent_required: "auth",
  invalid_resource: "schema",
};

/** The app's own registration is wrong (AADSTS7000215 bad secret, 7000222 expired secret, 700016 unknown app): an operator fix. */
const APP_CREDENTIAL_ERRORS: ReadonlySet<string> = new Set(["invalid_client", "unauthorized_client"]);

type GraphErrorBody = { error?: { code?: unknown; message?: unknown; innerError?: { code?: unknown }; innererror?: { code?: unknown } } };
type SubResponse = { id?: unknown; status?: unknown; headers?: unknown; body?: unknown };

const headerOf = (headers: unknown, name: string): string | undefined => {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  if (!headers || typeof headers !== "object") return undefined;
  const entry = Object.entries(headers as Record<string, unknown>).find(([k]) => k.toLowerCase() === name);
  return typeof entry?.[1] === "string" ? entry[1] : undefined;
};

/** A Graph error (outer response or one answer of a batch) as a verdict. */
function graphVerdict(input: { status: number; body: unknown; headers: unknown; operation: string }): ErrorVerdict {
  const error = (input.body as GraphErrorBody | undefined)?.error;
  const rawCode = typeof error?.code === "string" && error.code !== "" ? error.code : undefined;
  const innerCode = error?.innerError?.code ?? error?.innererror?.code;
  // A Conditional Access / CAE claims challenge rides in WWW-Authenticate (providers.md §3.4).
  const challenge = /error="insufficient_claims"/i.test(headerOf(input.headers, "www-authenticate") ?? "") ? "insufficient_claims" : undefined;
  const code = challenge ?? rawCode ?? `http_${input.status}`;
  const type: Tier1ErrorType =
    graphStatusType(input.status) ??
    GRAPH_CODE_TYPES[code.toLowerCase()] ??
    (typeof innerCode === "string" ? GRAPH_CODE_TYPES[innerCode.toLowerCase()] : undefined) ??
    (input.status >= 400 ? "schema" : "upstream");
  const detail = typeof error?.message === "string" && error.message !== "" ? `: ${error.message.slice(0, 300)}` : "";
  const what = `${input.operation} (HTTP ${input.status}${code.startsWith("http_") ? "" : ` ${code}`})`;
  const message =
    type === "auth"
      ? input.status === 401
        ? `Microsoft Graph refused the access token for ${what}${detail}`
        : `Microsoft Graph denied ${what}: the token lacks a permission or the user may not do this${detail}`
      : type === "rate-limit"
        ? `Microsoft Graph throttled ${what}`
        : type === "upstream"
          ? `Microsoft Graph failed to answer ${what}`
          : `Microsoft Graph refused ${what}${detail}`;
  // Graph may send Retry-After on 429 and on 503, in seconds that may be decimal (throttling.md).
  const retryAfter = type === "rate-limit" || type === "upstream" ? parseRetryAfter(headerOf(input.headers, "retry-after")) : undefined;
  return { type, code, status: input.status, message, ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }) };
}

/** The identity platform's RFC 6749 errors, with the AADSTS code kept in the message. */
function stsVerdict(response: ProviderResponse, operation: string): ErrorVerdict | undefined {
  const base = classifyOAuthError(response, operation, DISPLAY_NAME);
  if (!base) return undefined;
  const body = response.json as { error_description?: unknown };
  const description = typeof body.error_description === "string" ? body.error_description : "";
  // "AADSTS70008: <text>\r\nTrace ID: ...": the first line names the cause; the rest is diagnostics.
  const aadsts = /^AADSTS\d+/.test(description) ? description.split(/\r?\n/)[0]?.slice(0, 300) : undefined;
  const override = response.status < 500 && response.status !== 429 && base.code ? STS_TYPES[base.code] : undefined;
  const type = override ?? base.type;
  const message =
    override === "auth"
      ? `${DISPLAY_NAME} needs the user at ${operation} (${base.code}); the user must connect again`
      : base.code !== undefined && APP_CREDENTIAL_ERRORS.has(base.code) && type === "auth"
        ? `${DISPLAY_NAME} refused this app's registration at ${operation} (${base.code}); check AUTOFLOW_TEAMS_CLIENT_ID, AUTOFLOW_TEAMS_CLIENT_SECRET and AUTOFLOW_TEAMS_TENANT`
        : base.message;
  const retryAfter = type === "rate-limit" || type === "upstream" ? parseRetryAfter(response.headers.get("retry-after")) : undefined;
  return { ...base, type, message: aadsts ? `${message}: ${aadsts}` : message, ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }) };
}

/** Which batch answer decides: one that retrying cannot fix first, then throttling, then server trouble. */
const SEVERITY: Readonly<Record<Tier1ErrorType, number>> = { auth: 4, schema: 3, "rate-limit": 2, upstream: 1, network: 0 };

/** A batch answers 200 even when its requests failed: each answer carries its own status (json-batching.md). */
function batchVerdict(response: ProviderResponse, operation: string): ErrorVerdict | null {
  const answers = (response.json as { responses?: unknown }).responses;
  if (!Array.isArray(answers)) return null;
  let worst: ErrorVerdict | null = null;
  for (const answer of answers as SubResponse[]) {
    if (typeof answer?.status !== "number" || answer.status < 400) continue;
    const verdict = graphVerdict({ status: answer.status, body: answer.body, headers: answer.headers, operation: `${operation} [${String(answer.id)}]` });
    if (!worst || SEVERITY[verdict.type] > SEVERITY[worst.type]) worst = verdict;
    else if (verdict.type === "rate-limit" && worst.type === "rate-limit" && (verdict.retryAfterSeconds ?? 0) > (worst.retryAfterSeconds ?? 0)) worst = verdict;
  }
  return worst;
}

export function classifyTeams(response: ProviderResponse, request: Pick<ProviderRequest, "operation">): ErrorVerdict | null {
  if (response.status >= 200 && response.status < 300) {
    return request.operation === BATCH_OPERATION && response.json && typeof response.json === "object" ? batchVerdict(response, request.operation) : null;
  }
  // The token endpoint answers RFC 6749 errors (`error` is a string); Graph nests them (`error` is an object).
  return stsVerdict(response, request.operation) ?? graphVerdict({ status: response.status, body: response.json, headers: response.headers, operation: request.operation });
}

// ---------------------------------------------------------------------------
// Keys

/** A JWS compact serialization: Graph access tokens for work and school accounts (`eyJ0eXAi...`). */
const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Refresh tokens and authorization codes of the v2 endpoint (`0.A...`, `1.A...`). */
const REFRESH_SHAPE = /^[01]\.A[A-Za-z0-9_.-]{20,}$/;

/**
 * Recognises a pasted Graph access token. The token is not decoded:
 * Microsoft documents access tokens as opaque to clients (access-tokens.md),
 * and Graph itself says whether it is good.
 */
export function parseTeamsToken(input: { apiKey?: string; accessToken?: string }): ParsedApiKey<TeamsAuthMethod> {
  if (input.apiKey !== undefined) {
    throw invalidInput("apiKey", "Microsoft Teams has no API keys: give a delegated Microsoft Graph access token as accessToken, or connect through OAuth", PROVIDER);
  }
  const token = input.accessToken;
  if (token === undefined) throw invalidInput("accessToken", "accessToken is required: a delegated Microsoft Graph access token (eyJ0eXAi...)", PROVIDER);
  if (REFRESH_SHAPE.test(token)) {
    throw invalidInput("accessToken", "that is a refresh token or authorization code (0.A... / 1.A...), not an access token; connect through OAuth to keep a refresh token", PROVIDER);
  }
  if (!JWT_SHAPE.test(token)) {
    throw invalidInput("accessToken", "not a Microsoft Graph access token: expected a JWT of three base64url parts starting with eyJ", PROVIDER);
  }
  return { token, authMethod: "access_token" };
}

// ---------------------------------------------------------------------------
// Who am I

/** The three reads of the check, by batch id. `$select` keeps /me small; joinedTeams takes no OData parameters. */
const WHO_AM_I_REQUESTS = [
  { id: "me", method: "GET", url: "/me?$select=id,displayName,userPrincipalName,mail" },
  { id: "joinedTeams", method: "GET", url: "/me/joinedTeams" },
  { id: "organization", method: "GET", url: "/organization?$select=id,displayName" },
] as const;

const batchSchema = z.looseObject({
  responses: z.array(z.looseObject({ id: z.string(), status: z.number(), body: z.unknown().optional() })),
});
const meSchema = z.looseObject({
  id: z.string().min(1),
  userPrincipalName: z.string().min(1),
  displayName: z.string().nullable().optional(),
  mail: z.string().nullable().optional(),
});
const joinedTeamsSchema = z.looseObject({
  value: z.array(z.looseObject({ id: z.string(), displayName: z.string().nullable().optional() })),
  "@odata.nextLink": z.string().optional(),
});
const organizationSchema = z.looseObject({
  value: z.array(z.looseObject({ id: z.string().min(1), displayName: z.string().nullable().optional() })).min(1),
});

const unparsable = (message: string): IntegrationError => new IntegrationError({ type: "upstream", provider: PROVIDER, code: ErrorCodes.UNPARSABLE_RESPONSE, message });

function answerOf<T>(answers: z.infer<typeof batchSchema>["responses"], id: string, schema: z.ZodType<T>): T {
  const answer = answers.find((a) => a.id === id);
  if (!answer) throw unparsable(`Microsoft Graph's batch answer has no response to ${id}`);
  const parsed = schema.safeParse(answer.body);
  if (!parsed.success) throw unparsable(`Microsoft Graph's answer to ${id} is not the documented shape`);
  return parsed.data;
}

/** Reduces the batch answer to the connection's identity. */
export function parseTeamsIdentity(json: unknown, requestId?: string): Identity {
  const batch = batchSchema.safeParse(json);
  if (!batch.success) throw unparsable("Microsoft Graph's batch answer is not the documented shape");
  const me = answerOf(batch.data.responses, "me", meSchema);
  const teams = answerOf(batch.data.responses, "joinedTeams", joinedTeamsSchema);
  const organization = answerOf(batch.data.responses, "organization", organizationSchema);
  const tenant = organization.value[0] as z.infer<typeof organizationSchema>["value"][number];
  const displayName = me.displayName ?? undefined;
  return {
    metadata: { tenantId: tenant.id, userPrincipalName: me.userPrincipalName, ...(displayName ? { displayName } : {}) },
    summary: {
      tenantId: tenant.id,
      tenantName: tenant.displayName ?? undefined,
      userId: me.id,
      userPrincipalName: me.userPrincipalName,
      displayName,
      mail: me.mail ?? undefined,
      // joinedTeams does not page today; say "at least" if it ever does.
      joinedTeams: `${teams.value.length}${teams["@odata.nextLink"] ? "+" : ""}`,
      requestId,
    },
  };
}

/** Drops oauth4webapi's validated body: the lifecycle stores the grant only. */
function toGrant(standard: StandardGrant): TokenGrant {
  return {
    accessToken: standard.accessToken,
    ...(standard.refreshToken ? { refreshToken: standard.refreshToken } : {}),
    ...(standard.expiresInSeconds !== undefined ? { expiresInSeconds: standard.expiresInSeconds } : {}),
    scopes: normalizeScopes(standard.scopes),
    metadata: {},
  };
}

export const teamsConnector: ConnectorDefinition<TeamsAuthMethod, typeof teamsMetadataSchema> = {
  metadataSchema: teamsMetadataSchema,
  id: PROVIDER,
  displayName: DISPLAY_NAME,
  authMethods: ["oauth2", "access_token"],
  oauthAuthMethod: "oauth2",
  options: {
    TENANT: {
      default: "common",
      pattern: TENANT_PATTERN,
      description:
        "the Microsoft Entra tenant users sign in to: common, organizations (work or school accounts only), a tenant id (GUID) " +
        "or a verified domain such as contoso.onmicrosoft.com; consumers is not accepted because Teams needs work or school accounts",
    },
  },
  liveEndpoints: (options) => {
    const tenant = options.TENANT ?? "common";
    return {
      authorizeUrl: `${LOGIN_ORIGIN}/${tenant}/oauth2/v2.0/authorize`,
      tokenUrl: `${LOGIN_ORIGIN}/${tenant}/oauth2/v2.0/token`,
      // No revokeUrl: Microsoft cannot revoke one grant. revokeSignInSessions signs the user out of every app.
      apiUrl: `${GRAPH_ORIGIN}/v1.0`,
    };
  },
  // No `issuers`: Microsoft sends no RFC 9207 `iss` on the authorization response, and its issuer is per tenant.
  pkce: true,
  defaultScopes: [OFFLINE_ACCESS, "User.Read", "Team.ReadBasic.All"],
  requiredMetadata: ["tenantId", "userPrincipalName"],
  accountLabel: ["displayName", "userPrincipalName"],
  retryPolicy: teamsRetryPolicy,
  rateLimit: teamsRateLimit,
  classify: classifyTeams,

  authorizationParams(settings) {
    return { client_id: settings.clientId, response_type: "code", redirect_uri: settings.redirectUri, response_mode: "query", scope: scopeParam(settings) };
  },

  async exchangeCode(ctx, input) {
    // client_secret_post: what Microsoft documents for web apps (Basic is accepted too).
    const grant = await exchangeCodeStandard(ctx, {
      code: input.code,
      ...(input.codeVerifier ? { codeVerifier: input.codeVerifier } : {}),
      clientAuth: "client_secret_post",
      // Microsoft's extension: the resource the token is for. Same scopes as the authorize leg.
      extraParams: { scope: scopeParam(ctx.settings) },
    });
    return toGrant(grant);
  },

  async refreshToken(ctx, refreshToken) {
    // Every refresh answers a new refresh token (stored by the lifecycle); the old one is
    // not revoked on use, so repeating a refresh whose answer was lost is safe.
    // `scope` is left out (optional): the grant's own scopes come back, and a later change of
    // AUTOFLOW_TEAMS_SCOPES cannot turn every stored connection into an AADSTS65001 consent error.
    const grant = await refreshStandard(ctx, { refreshToken, clientAuth: "client_secret_post", idempotent: true });
    return toGrant(grant);
  },

  revoke() {
    // No RFC 7009 endpoint (providers.md §3.1): the lifecycle erases the tokens here and says so.
    return Promise.resolve("not_supported");
  },

  parseApiKey: parseTeamsToken,

  whoAmI: {
    // Three GETs in one batch, despite the POST.
    request: () => ({ operation: BATCH_OPERATION, method: "POST", path: "/$batch", json: { requests: WHO_AM_I_REQUESTS }, idempotent: true }),
    process: (response) => parseTeamsIdentity(response.json, response.headers.get("request-id") ?? undefined),
  },
};
