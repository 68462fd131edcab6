/**
 * Jira: three ways in, one connector.
 *
 *   oauth2                 Atlassian OAuth 2.0 (3LO) for Jira Cloud: authorize at auth.atlassian.com
 *                          (no PKCE), a JSON token endpoint, rotating refresh tokens; the API through the
 *                          gateway, `https://api.atlassian.com/ex/jira/<cloudId>`, after the cloud id is
 *                          read from `/oauth/token/accessible-resources`.
 *   api_token              A Jira Cloud API token with the account's email (HTTP Basic `email:token`)
 *                          against the site itself, `https://<site>.atlassian.net`.
 *   personal_access_token  A Jira Data Center (or Server 8.14+) personal access token (Bearer) against
 *                          the instance's base URL, context path included (`https://jira.corp.example/jira`).
 *
 * The two key paths are told apart by the email: a key that comes with an
 * email is a Cloud API token; a key without one is a Data Center personal
 * access token, unless the key or the site is unmistakably Cloud (an
 * `ATATT...` token, an `*.atlassian.net` site), which is then refused with a
 * schema error asking for the email.
 *
 * Test call: `GET /rest/api/3/myself` on Cloud (gateway or site), `GET
 * /rest/api/2/myself` on Data Center, which has no v3. Data Center users have
 * no `accountId`: `accountId` holds their user `key` there (`JIRAUSER10100`, or
 * the original username for users older than Jira 8), which, unlike the
 * username (`name`), survives a rename.
 *
 * Wire facts: providers.md part 2 §4 (Jira) and §5 (quick comparison);
 * developer.atlassian.com cloud/jira/platform/{oauth-2-3lo-apps, rate-limiting},
 * cloud/oauth/getting-started/{making-calls-to-api, refresh-tokens}; the Atlassian
 * developer community announcement "Deprecating persistent refresh tokens"
 * (10-minute reuse leeway, 90-day idle and 365-day absolute expiry);
 * confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html;
 * MrRefactoring/jira.js (oauth2 guide, models/errorCollection.ts).
 *
 * Decisions where the sources are unsure:
 * - PKCE: off. No official statement either way; a client secret is always required.
 * - Token endpoint body: JSON, as Atlassian's docs show it (whether form encoding
 *   is accepted too is unconfirmed). The answer is still validated by oauth4webapi.
 * - Revocation: none documented (users remove the app at id.atlassian.com ->
 *   Connected apps; API tokens and PATs are revoked in the user's profile), so
 *   disconnect erases the credential here and says "not_supported".
 * - Which site: the first resource of accessible-resources whose scopes are Jira
 *   scopes, in Atlassian's order. A resource-level app lets the user pick exactly
 *   one site at consent; an account-level app may reach several, and the summary
 *   says how many (`jiraSites`) so a UI can tell the user which one was taken.
 * - 404 is a schema error (providers.md's table): on the who-am-I it means the
 *   base URL is not the Jira it claims to be (a Data Center URL given with an
 *   email, a wrong context path), which only a different input fixes.
 */
import { z } from "zod";
import type { CallSender, ConnectorDefinition, ConnectorSettings, Identity, ParsedApiKey, TokenGrant } from "../shared/connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ErrorType } from "../shared/contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../shared/errors.js";
import type { ErrorVerdict, ProviderRequest, ProviderResponse } from "../shared/http.js";
import { parseRetryAfter } from "../shared/retry.js";
import { classifyOAuthError, exchangeCodeStandard, refreshStandard, type StandardGrant } from "../shared/standardOAuth.js";
import { jiraRateLimit } from "./rateLimit.js";
import { jiraRetryPolicy } from "./retryPolicy.js";

export type JiraAuthMethod = "oauth2" | "api_token" | "personal_access_token";
/**
 * The public shape. `cloudId` and `siteName` are known for OAuth connections
 * (accessible-resources tells them); `email` is the Atlassian account an API
 * token belongs to (Basic auth needs it on every call).
 */
export const jiraMetadataSchema = z.object({ scopes: z.array(z.string()), siteUrl: z.string(), cloudId: z.string().optional(), siteName: z.string().optional(), accountId: z.string(), email: z.string().optional() });
export type JiraMetadata = z.infer<typeof jiraMetadataSchema>;
export type JiraConnectionPublic = Tier1ConnectionPublic<JiraAuthMethod, JiraMetadata>;
export type JiraHealth = Tier1ConnectionHealth<JiraAuthMethod, Partial<JiraMetadata>>;

const PROVIDER = "jira";
const DISPLAY_NAME = "Jira";

/** The gateway's audience: required on the authorize URL (oauth-2-3lo-apps). */
export const ATLASSIAN_AUDIENCE = "api.atlassian.com";
/** Needed for a refresh token; it goes only in the authorize URL's scope. */
const OFFLINE_ACCESS = "offline_access";

/** Our codes for the cases Jira's status alone does not name. */
export const JiraErrorCodes = {
  /** Gateway 401 "Unauthorized; scope does not match": a missing scope, which no refresh cures. */
  SCOPE_MISMATCH: "scope_mismatch",
  /** Basic logins locked behind a CAPTCHA after failures (X-Seraph-LoginReason: AUTHENTICATION_DENIED). */
  CAPTCHA_REQUIRED: "captcha_required",
  /** The OAuth grant reaches no Jira site (the user picked none, or the app was removed from it). */
  NO_JIRA_SITE: ErrorCodes.NO_JIRA_SITE,
} as const;

// ---------------------------------------------------------------------------
// Where a connection's REST calls go (the who-am-I now, ticket sync later)

/** The REST base and API version of one connection. Data Center has only v2. */
export type JiraRestBase = { base: string; apiVersion: "2" | "3" };

/**
 * The REST base of a connection: the gateway for OAuth, the site's origin for
 * a Cloud API token (the REST API sits at a Cloud site's root, whatever page
 * URL the user pasted), the base URL as given (context path included) for
 * Data Center.
 */
export function jiraRestBase(
  settings: Pick<ConnectorSettings, "endpoints">,
  connection: { authMethod: string; metadata: Record<string, unknown>; baseUrl?: string | undefined },
): JiraRestBase {
  if (connection.authMethod === "oauth2") {
    const cloudId = connection.metadata.cloudId;
    if (typeof cloudId !== "string" || cloudId === "") throw missingSetup("this OAuth connection has no cloud id");
    return { base: `${settings.endpoints.apiUrl}/ex/jira/${encodeURIComponent(cloudId)}`, apiVersion: "3" };
  }
  if (connection.baseUrl === undefined) throw missingSetup(`this ${connection.authMethod} connection has no base URL`);
  if (connection.authMethod === "api_token") return { base: new URL(connection.baseUrl).origin, apiVersion: "3" };
  return { base: connection.baseUrl, apiVersion: "2" };
}

/** The Authorization header of a connection's calls. */
export function jiraAuthorization(authMethod: string, token: string, metadata: Record<string, unknown>): string {
  if (authMethod !== "api_token") return `Bearer ${token}`;
  const email = metadata.email;
  if (typeof email !== "string" || email === "") throw missingSetup("this API token connection has no email");
  return `Basic ${Buffer.from(`${email}:${token}`, "utf8").toString("base64")}`;
}

function missingSetup(what: string): IntegrationError {
  return new IntegrationError({ type: "schema", code: ErrorCodes.CONNECTION_INCOMPLETE, provider: PROVIDER, message: `${what}; connect again` });
}

// ---------------------------------------------------------------------------
// Classification

/** Statuses whose meaning does not depend on the body (providers.md §4.4 mapping table). */
const STATUS_TYPES: Readonly<Record<number, Tier1ErrorType>> = {
  400: "schema", // ErrorCollection: invalid or unbounded JQL, bad fields
  401: "auth", // site "Client must be authenticated ...", gateway {"code":401,"message":"Unauthorized"}
  403: "auth", // no permission, or CAPTCHA-locked Basic logins
  404: "schema",
  405: "schema",
  409: "schema",
  410: "schema", // removed APIs (the old /search)
  413: "schema",
  415: "schema",
  429: "rate-limit",
};

/** Longest part of Jira's own message we quote. */
const MAX_QUOTED = 300;
/** `X-RateLimit-Reset` is `yyyy-MM-ddTHH:mmZ` (rate-limiting); full ISO 8601 is accepted too. */
const ISO_RESET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
/** Seconds Atlassian's rate-limiting guide starts its backoff with when a 429 says nothing. */
const DEFAULT_THROTTLE_SECONDS = 5;

type ErrorCollection = { errorMessages?: unknown; errors?: unknown; message?: unknown; code?: unknown };

/**
 * Jira's own words: an ErrorCollection (`errorMessages` and field `errors`),
 * the gateway's `{code, message}`, or a short plain-text body (the site's 401).
 */
export function jiraErrorText(response: Pick<ProviderResponse, "json" | "text" | "headers">): string | undefined {
  const body = response.json;
  if (body && typeof body === "object" && !Array.isArray(body)) {
    const b = body as ErrorCollection;
    const parts: string[] = [];
    if (Array.isArray(b.errorMessages)) for (const m of b.errorMessages) if (typeof m === "string" && m !== "") parts.push(m);
    if (b.errors && typeof b.errors === "object" && !Array.isArray(b.errors)) {
      for (const [field, m] of Object.entries(b.errors as Record<string, unknown>)) if (typeof m === "string" && m !== "") parts.push(`${field}: ${m}`);
    }
    if (parts.length === 0 && typeof b.message === "string" && b.message !== "") parts.push(b.message);
    return parts.length > 0 ? parts.join("; ").slice(0, MAX_QUOTED) : undefined;
  }
  const type = response.headers.get("content-type") ?? "";
  const text = response.text.trim();
  // A sentence, not an HTML error page.
  if (text !== "" && !/html/i.test(type) && !text.startsWith("<") && text.length <= MAX_QUOTED) return text;
  return undefined;
}

/** Seconds until `X-RateLimit-Reset`, or undefined when absent or unreadable. At least one: its precision is a minute. */
export function secondsUntilReset(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null || !ISO_RESET.test(value.trim())) return undefined;
  const at = Date.parse(value.trim());
  if (Number.isNaN(at)) return undefined;
  return Math.max(1, Math.ceil((at - nowMs) / 1000));
}

/** Jira's (and Atlassian's) CAPTCHA lock on Basic logins, from its headers (providers.md §4.4). */
function captchaLocked(headers: Headers): boolean {
  const reason = headers.get("x-seraph-loginreason") ?? "";
  const denied = headers.get("x-authentication-denied-reason") ?? "";
  return /AUTHENTICATION_DENIED/i.test(reason) || /CAPTCHA/i.test(denied);
}

/** The token endpoint's RFC 6749 errors, worded for Atlassian. */
function tokenEndpointVerdict(response: ProviderResponse, operation: string): ErrorVerdict | undefined {
  const base = classifyOAuthError(response, operation, DISPLAY_NAME);
  if (!base) return undefined;
  const description = (response.json as { error_description?: unknown }).error_description;
  const said = typeof description === "string" && description !== "" ? `: ${description.slice(0, MAX_QUOTED)}` : "";
  // At the token endpoint access_denied means the app's client credentials are wrong (a user's
  // refusal comes back on the authorize redirect instead): an operator fix, not a consent loop (jira.js).
  if (base.code === "access_denied" || base.code === "invalid_client") {
    return {
      ...base,
      message: `Atlassian refused this app's client credentials at ${operation} (${base.code}); check AUTOFLOW_JIRA_CLIENT_ID and AUTOFLOW_JIRA_CLIENT_SECRET${said}`,
    };
  }
  if (base.code === "invalid_grant") {
    // 403 "Unknown or invalid refresh token.": rotated away, reused after the leeway, idle 90 days,
    // past its 365 days, or the user changed their password.
    return { ...base, message: `${base.message}${said}` };
  }
  const retryAfter = base.type === "rate-limit" || base.type === "upstream" ? parseRetryAfter(response.headers.get("retry-after")) : undefined;
  return { ...base, message: `${base.message}${said}`, ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }) };
}

/**
 * Status first (Jira uses it), then the body for what the status does not
 * say: the gateway's scope mismatch, the CAPTCHA lock, the 429's reason.
 */
export function classifyJira(response: ProviderResponse, request: Pick<ProviderRequest, "operation">): ErrorVerdict | null {
  const { status, headers } = response;
  if (status >= 200 && status < 300) return null;
  const op = request.operation;
  const token = tokenEndpointVerdict(response, op);
  if (token) return token;
  const said = jiraErrorText(response);
  const quoted = said ? `: ${said}` : "";
  const requestId = headers.get("x-arequestid") ?? headers.get("atl-traceid");
  const ref = requestId ? ` (request id ${requestId})` : "";

  if (status === 429) {
    const reason = headers.get("ratelimit-reason") ?? undefined;
    // Retry-After wins (the HTTP client reads it); without it the reset time says how long.
    const hasRetryAfter = parseRetryAfter(headers.get("retry-after")) !== undefined;
    const fromReset = hasRetryAfter ? undefined : (secondsUntilReset(headers.get("x-ratelimit-reset")) ?? DEFAULT_THROTTLE_SECONDS);
    return {
      type: "rate-limit",
      code: reason ?? "rate_limited",
      message: `Jira API rate limit exceeded on ${op}${reason ? ` (${reason})` : ""}${ref}`,
      ...(fromReset === undefined ? {} : { retryAfterSeconds: fromReset }),
    };
  }
  if (status >= 500) {
    // A 503 "when a resource limit has been reached" may carry Retry-After (rate-limiting).
    const retryAfter = parseRetryAfter(headers.get("retry-after"));
    return {
      type: "upstream",
      code: `http_${status}`,
      message: `Jira failed to answer ${op} (HTTP ${status})${ref}`,
      ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
    };
  }
  const type = STATUS_TYPES[status] ?? "schema";
  if (type === "auth") {
    if (captchaLocked(headers)) {
      return {
        type,
        code: JiraErrorCodes.CAPTCHA_REQUIRED,
        message: `Jira refused ${op}: after failed logins this account must pass a CAPTCHA; sign in to Jira in a browser once, then connect again${ref}`,
      };
    }
    if (status === 401 && /scope does not match/i.test(said ?? "")) {
      return {
        type,
        code: JiraErrorCodes.SCOPE_MISMATCH,
        message: `Jira refused ${op}: the grant lacks a scope this call needs (Unauthorized; scope does not match); connect again with the scopes in AUTOFLOW_JIRA_SCOPES${ref}`,
      };
    }
    return status === 401
      ? { type, code: "unauthorized", message: `Jira refused the credential for ${op} (HTTP 401): it is invalid, expired or revoked${quoted}${ref}` }
      : { type, code: "forbidden", message: `Jira denied ${op} (HTTP 403): the account may not do this${quoted}${ref}` };
  }
  return { type, code: status === 404 ? "not_found" : status === 410 ? "gone" : `http_${status}`, message: `Jira refused ${op} (HTTP ${status})${quoted}${ref}` };
}

// ---------------------------------------------------------------------------
// Keys

/** Cloud API tokens since 2023: `ATATT3xFfGF0` ... `=` and an 8-digit hex checksum (scanners' pattern). */
const CLOUD_API_TOKEN = /^ATATT[A-Za-z0-9_\-=]{20,250}$/;
/** The older Cloud API tokens: 24 letters and digits (expired by now, but still well-formed). */
const LEGACY_CLOUD_API_TOKEN = /^[A-Za-z0-9]{24}$/;
/**
 * Data Center PATs are not documented beyond "a token"; the ones seen are 44
 * base64 characters (an id and a secret). Anything of the base64 alphabet of a
 * plausible length is sent to the instance, which decides.
 */
const DATA_CENTER_PAT = /^[A-Za-z0-9+/]{30,250}={0,2}$/;
/** A 3LO access token (a JWT), pasted where a key was expected. */
const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** Atlassian's Cloud hosts (jira.com and jira-dev.com are older and staging Cloud domains). */
const CLOUD_HOST = /(^|\.)(atlassian\.net|jira\.com|jira-dev\.com)$/i;

const isCloudHost = (baseUrl: string): boolean => CLOUD_HOST.test(new URL(baseUrl).hostname);

/**
 * Recognises a pasted Jira credential. `baseUrl` has been checked by the
 * lifecycle's guard already; `email` decides Cloud (Basic) or Data Center (Bearer).
 */
export function parseJiraCredential(input: { apiKey?: string; accessToken?: string; baseUrl?: string; email?: string }): ParsedApiKey<JiraAuthMethod> {
  if (input.apiKey !== undefined && input.accessToken !== undefined) {
    throw invalidInput("accessToken", "give the token once, as apiKey (a Jira Cloud API token) or accessToken (a Data Center personal access token), not both", PROVIDER);
  }
  const field = input.accessToken !== undefined ? "accessToken" : "apiKey";
  const token = input.accessToken ?? input.apiKey;
  if (token === undefined) {
    throw invalidInput("apiKey", "apiKey is required: a Jira Cloud API token (with email and baseUrl), or a Data Center personal access token as accessToken (with baseUrl)", PROVIDER);
  }
  if (JWT_SHAPE.test(token)) {
    throw invalidInput(field, "that is an Atlassian OAuth access token; connect through OAuth instead (it only works through api.atlassian.com and expires within the hour)", PROVIDER);
  }
  const { baseUrl, email } = input;
  if (baseUrl === undefined) {
    throw invalidInput("baseUrl", "baseUrl is required with a key: your Jira Cloud site (https://your-domain.atlassian.net) or your Data Center base URL", PROVIDER);
  }
  const cloudToken = CLOUD_API_TOKEN.test(token);
  if (email !== undefined || cloudToken || isCloudHost(baseUrl)) {
    if (email === undefined) {
      throw invalidInput("email", "email is required with a Jira Cloud API token: the email address of the Atlassian account that created the token", PROVIDER);
    }
    if (!cloudToken && !LEGACY_CLOUD_API_TOKEN.test(token)) {
      throw invalidInput(
        field,
        "not a Jira Cloud API token: expected ATATT3... from id.atlassian.com > Security > API tokens (a Data Center personal access token goes without email)",
        PROVIDER,
      );
    }
    return { token, authMethod: "api_token", metadata: { email, siteUrl: new URL(baseUrl).origin } };
  }
  if (!DATA_CENTER_PAT.test(token)) {
    throw invalidInput(
      field,
      "not a Jira Data Center personal access token (Profile > Personal Access Tokens); a Jira Cloud API token needs email as well",
      PROVIDER,
    );
  }
  return { token, authMethod: "personal_access_token", metadata: { siteUrl: baseUrl } };
}

// ---------------------------------------------------------------------------
// Tokens

/** The validated token answer as a grant. Atlassian answers no public fields with it. */
function toGrant(standard: StandardGrant): TokenGrant {
  return {
    accessToken: standard.accessToken,
    ...(standard.refreshToken ? { refreshToken: standard.refreshToken } : {}),
    ...(standard.expiresInSeconds !== undefined ? { expiresInSeconds: standard.expiresInSeconds } : {}),
    scopes: standard.scopes,
    metadata: {},
  };
}


/** The requested scopes, space-separated, always with offline_access (without it there is no refresh token). */
function scopeParam(settings: ConnectorSettings): string {
  return (settings.scopes.includes(OFFLINE_ACCESS) ? settings.scopes : [...settings.scopes, OFFLINE_ACCESS]).join(" ");
}

// ---------------------------------------------------------------------------
// Who am I

/** One entry of GET /oauth/token/accessible-resources (making-calls-to-api). */
const resourceSchema = z.looseObject({
  id: z.string().min(1),
  url: z.url(),
  name: z.string().optional(),
  scopes: z.array(z.string()).default([]),
  avatarUrl: z.string().optional(),
});
const resourcesSchema = z.array(z.unknown());
export type AccessibleResource = z.infer<typeof resourceSchema>;

/** A Jira scope: classic (`read:jira-work`, `manage:jira-webhook`) or granular (`read:issue:jira`). */
const isJiraScope = (scope: string): boolean => /(^|:)jira(-[a-z-]+)?(:|$)/.test(scope);

/**
 * The Jira sites of an accessible-resources answer, in Atlassian's order.
 * Entries of other products (Confluence) and entries that are not the
 * documented shape are skipped.
 */
export function jiraSites(json: unknown): AccessibleResource[] {
  const list = resourcesSchema.safeParse(json);
  if (!list.success) throw unparsable("/oauth/token/accessible-resources");
  const sites: AccessibleResource[] = [];
  for (const entry of list.data) {
    const parsed = resourceSchema.safeParse(entry);
    if (parsed.success && parsed.data.scopes.some(isJiraScope)) sites.push(parsed.data);
  }
  return sites;
}

/** GET /rest/api/{2,3}/myself: Cloud users have accountId; Data Center users key and name (providers.md §4.3). */
const myselfSchema = z.looseObject({
  accountId: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
  accountType: z.string().optional(),
  displayName: z.string().optional(),
  // Hidden or empty under profile visibility settings.
  emailAddress: z.string().optional(),
  active: z.boolean().optional(),
  timeZone: z.string().optional(),
  locale: z.string().optional(),
});

export type JiraUser = { accountId: string; displayName?: string; summary: Record<string, string | undefined> };

/** The caller of /myself: `accountId` is the Cloud account id, or the Data Center user key. */
export function parseJiraMyself(json: unknown): JiraUser {
  const parsed = myselfSchema.safeParse(json);
  if (!parsed.success) throw unparsable("/myself");
  const me = parsed.data;
  const accountId = me.accountId ?? me.key ?? me.name;
  if (accountId === undefined) throw unparsable("/myself");
  return {
    accountId,
    ...(me.displayName ? { displayName: me.displayName } : {}),
    summary: {
      accountId,
      ...(me.accountId === undefined ? { key: me.key, name: me.name } : { accountType: me.accountType }),
      displayName: me.displayName,
      emailAddress: me.emailAddress || undefined,
      active: me.active === undefined ? undefined : String(me.active),
      timeZone: me.timeZone,
      locale: me.locale,
    },
  };
}

function unparsable(what: string): IntegrationError {
  return new IntegrationError({ type: "upstream", provider: PROVIDER, code: ErrorCodes.UNPARSABLE_RESPONSE, message: `Jira's ${what} answer is not the documented shape` });
}

/** The site an OAuth grant works on: stored on the connection, or the first Jira site it reaches. */
/** The site an OAuth grant reaches: the first Jira site of its accessible resources. */
async function oauthSite(send: CallSender, settings: ConnectorSettings): Promise<{ cloudId: string; siteUrl: string; siteName?: string; jiraSites: number }> {
  const response = await send({ operation: "GET /oauth/token/accessible-resources", method: "GET", url: `${settings.endpoints.apiUrl}/oauth/token/accessible-resources` });
  const sites = jiraSites(response.json);
  const site = sites[0];
  if (!site) {
    throw new IntegrationError({
      type: "auth",
      code: JiraErrorCodes.NO_JIRA_SITE,
      provider: PROVIDER,
      message: "the Atlassian grant reaches no Jira site: the user must choose a Jira site on the consent screen (or the app was removed from the site); connect again",
    });
  }
  return { cloudId: site.id, siteUrl: site.url.replace(/\/+$/, ""), ...(site.name ? { siteName: site.name } : {}), jiraSites: sites.length };
}

export const jiraConnector: ConnectorDefinition<JiraAuthMethod, typeof jiraMetadataSchema> = {
  metadataSchema: jiraMetadataSchema,
  id: PROVIDER,
  displayName: DISPLAY_NAME,
  authMethods: ["oauth2", "api_token", "personal_access_token"],
  oauthAuthMethod: "oauth2",
  liveEndpoints: {
    authorizeUrl: "https://auth.atlassian.com/authorize",
    tokenUrl: "https://auth.atlassian.com/oauth/token",
    // No revokeUrl: Atlassian documents no endpoint that revokes one grant.
    // accessible-resources and the /ex/jira/<cloudId> gateway both live here.
    apiUrl: "https://api.atlassian.com",
  },
  // No `issuers`: Atlassian sends no RFC 9207 `iss` on the authorization response.
  pkce: false,
  // /myself needs read:jira-user; ticket sync adds write:jira-work (and manage:jira-webhook) through AUTOFLOW_JIRA_SCOPES.
  defaultScopes: ["read:jira-user", "read:jira-work", OFFLINE_ACCESS],
  requiredMetadata: ["siteUrl", "accountId"],
  accountLabel: ["siteName", "siteUrl"],
  acceptsBaseUrl: true,
  acceptsEmail: true,
  retryPolicy: jiraRetryPolicy,
  rateLimit: jiraRateLimit,
  classify: classifyJira,

  authorizationParams(settings) {
    return {
      audience: ATLASSIAN_AUDIENCE,
      client_id: settings.clientId,
      // Space-separated (oauth-2-3lo-apps).
      scope: scopeParam(settings),
      redirect_uri: settings.redirectUri,
      response_type: "code",
      // Always show the consent screen, so a resource-level app lets the user pick the site.
      prompt: "consent",
    };
  },

  async exchangeCode(ctx, input) {
    // A code is single use: a lost answer cannot be retried safely. No PKCE, so no verifier.
    // POST https://auth.atlassian.com/oauth/token with a JSON body, client credentials inside it
    // (oauth-2-3lo-apps, refresh-tokens): JSON is what Atlassian documents.
    return toGrant(await exchangeCodeStandard(ctx, { code: input.code, clientAuth: "client_secret_post", encoding: "json" }));
  },

  async refreshToken(ctx, refreshToken) {
    // Rotating refresh tokens: the answer's new one is stored by the lifecycle. A used one stays
    // good for a 10-minute leeway (Atlassian's announcement), so repeating a refresh whose answer
    // was lost is safe; reuse after the leeway invalidates the whole chain (403 invalid_grant).
    return toGrant(await refreshStandard(ctx, { refreshToken, clientAuth: "client_secret_post", encoding: "json", idempotent: true }));
  },

  revoke() {
    // Nothing revokes one grant, API token or PAT through the API: the lifecycle erases it here and says so.
    return Promise.resolve("not_supported");
  },

  parseApiKey: parseJiraCredential,

  // A 401 for a missing scope or a CAPTCHA lock is not cured by a new access token.
  isTokenRejection: (error) => error.status === 401 && error.code !== JiraErrorCodes.SCOPE_MISMATCH && error.code !== JiraErrorCodes.CAPTCHA_REQUIRED,

  authorize: (credential) => ({ authorization: jiraAuthorization(credential.authMethod, credential.accessToken, credential.metadata) }),
  apiBase: (target, settings) => jiraRestBase(settings, target).base,

  // A new OAuth grant's site (and so its API base) is told by its accessible resources; a stored one knows it.
  async locateGrant(send, credential, settings) {
    const { metadata } = credential;
    if (credential.authMethod !== "oauth2" || (typeof metadata.cloudId === "string" && typeof metadata.siteUrl === "string")) return {};
    const site = await oauthSite(send, settings);
    return {
      metadata: { cloudId: site.cloudId, siteUrl: site.siteUrl, ...(site.siteName ? { siteName: site.siteName } : {}) },
      summary: { jiraSites: String(site.jiraSites) },
    };
  },

  whoAmI: {
    request(credential, settings) {
      const { apiVersion } = jiraRestBase(settings, credential);
      return { operation: `GET /rest/api/${apiVersion}/myself`, method: "GET", path: `/rest/api/${apiVersion}/myself` };
    },
    process(response, credential): Identity {
      const { metadata, authMethod } = credential;
      const text = (key: string): string | undefined => (typeof metadata[key] === "string" ? (metadata[key] as string) : undefined);
      const user = parseJiraMyself(response.json);
      const siteUrl = text("siteUrl") ?? credential.baseUrl;
      const [cloudId, siteName] = authMethod === "oauth2" ? [text("cloudId"), text("siteName")] : [undefined, undefined];
      return {
        metadata: {
          ...(siteUrl !== undefined ? { siteUrl } : {}),
          accountId: user.accountId,
          ...(cloudId !== undefined ? { cloudId } : {}),
          ...(siteName !== undefined ? { siteName } : {}),
        },
        summary: {
          siteUrl,
          cloudId,
          siteName,
          deployment: authMethod === "personal_access_token" ? "Data Center" : "Cloud",
          ...user.summary,
          requestId: response.headers.get("x-arequestid") ?? undefined,
        },
      };
    },
    recover: async (error, _send, credential) => {
      throw explainNotFound(error, credential.authMethod);
    },
  },
};

/** A 404 on /myself says the base URL is not that kind of Jira: say which input to fix. */
function explainNotFound(error: unknown, authMethod: string): unknown {
  if (!(error instanceof IntegrationError) || error.status !== 404 || authMethod === "oauth2") return error;
  const hint =
    authMethod === "api_token"
      ? "is baseUrl a Jira Cloud site (https://your-domain.atlassian.net)? A Data Center instance takes a personal access token as accessToken, without email"
      : "is baseUrl the Jira Data Center base URL, context path included (https://jira.example.com/jira)? A Jira Cloud site takes an API token with email";
  return new IntegrationError({ type: "schema", code: error.code ?? "not_found", status: 404, field: "baseUrl", provider: PROVIDER, message: `${error.message}; ${hint}`, cause: error });
}
