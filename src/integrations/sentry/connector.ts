/**
 * Sentry (sentry.io, its regions, or a self-hosted instance): OAuth 2.0 on
 * Sentry's ApiApplication flow (PKCE S256 AND the client secret: Sentry
 * only lets confidential clients redeem a code or a refresh token), or an
 * auth token pasted by the user: a user auth token (`sntryu_`), an
 * organization auth token (`sntrys_`), or an older unprefixed one. Pasted
 * tokens may name a self-hosted instance (`baseUrl`); every request of such
 * a connection goes there and nowhere else.
 *
 * The test call is `GET /api/0/organizations/`: it answers every kind of
 * token (OAuth tokens scoped to one organization are refused on most other
 * paths, `/api/0/` included) and names the organization(s) the token reaches.
 *
 * Wire facts: providers.md §2 (Sentry) and §5; getsentry/sentry
 * src/sentry/web/frontend/oauth_token.py (token answers and errors),
 * web/frontend/oauth_authorize.py, models/apitoken.py (token format, 30-day
 * lifetime, rotation on refresh), api/authentication.py (401 details),
 * middleware/ratelimit.py (429 body and X-Sentry-Rate-Limit-* headers),
 * utils/security/orgauthtoken_token.py (organization token format),
 * types/token.py (prefixes); getsentry/sentry-docs docs/api/{auth,ratelimits}.mdx.
 *
 * Decisions where the sources are unsure:
 * - Revoke: Sentry documents no RFC 7009 endpoint for ApiApplication tokens
 *   (users revoke under Settings > Account > Authorized Applications, and the
 *   API-token endpoints take a browser session only), so `revokeUrl` is left
 *   undefined and revoke answers "not_supported" without a request.
 * - `token_type` is "Bearer" in current code and "bearer" in older code and
 *   the docs: oauth4webapi compares it case-insensitively.
 * - The 429 body: providers.md shows `{"detail": "..."}`, the middleware sends
 *   the message as a bare JSON string. Both are read; the status decides.
 */
import { z } from "zod";
import type { ConnectorDefinition, Identity, ParsedApiKey, TokenGrant } from "../shared/connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic } from "../shared/contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../shared/errors.js";
import type { ErrorVerdict, ProviderRequest, ProviderResponse } from "../shared/http.js";
import { classifyOAuthError, exchangeCodeStandard, refreshStandard, type StandardGrant } from "../shared/standardOAuth.js";
import { sentryRateLimit } from "./rateLimit.js";
import { sentryRetryPolicy } from "./retryPolicy.js";

/**
 * `auth_token`: a user auth token (`sntryu_`), or an unprefixed token from
 * before Sentry prefixed them (user tokens, internal-integration tokens);
 * `org_auth_token`: an organization auth token (`sntrys_`).
 */
export type SentryAuthMethod = "oauth2" | "auth_token" | "org_auth_token";
/** `baseUrl`: the Sentry instance the credential belongs to; `organizationSlug` when it reaches exactly one organization. */
export const sentryMetadataSchema = z.object({ scopes: z.array(z.string()), baseUrl: z.string(), organizationSlug: z.string().optional() });
export type SentryMetadata = z.infer<typeof sentryMetadataSchema>;
export type SentryConnectionPublic = Tier1ConnectionPublic<SentryAuthMethod, SentryMetadata>;
export type SentryHealth = Tier1ConnectionHealth<SentryAuthMethod, Partial<SentryMetadata>>;

const PROVIDER = "sentry";
const DISPLAY_NAME = "Sentry";

/** The who-am-I path, with the trailing slash Sentry's routes require (without it: 404 "did you forget a trailing slash?"). */
export const ORGANIZATIONS_PATH = "/api/0/organizations/";
const ORGANIZATIONS_OPERATION = `GET ${ORGANIZATIONS_PATH}`;
/** Organization auth tokens carry this one fixed scope (CI: releases, source maps), providers.md §2.3. */
export const ORG_TOKEN_SCOPES: readonly string[] = ["org:ci"];
/** Longest part of Sentry's own message we quote. */
const MAX_QUOTED = 300;

// ---------------------------------------------------------------------------
// Classification

/**
 * 401 `detail` strings Sentry's authentication classes raise
 * (api/authentication.py), and the code we keep for each.
 */
const AUTH_DETAIL_CODES: Readonly<Record<string, string>> = {
  "Invalid token": "invalid_token",
  "Token expired": "token_expired",
  "Invalid org token": "invalid_org_token",
  "Authentication credentials were not provided.": "not_authenticated",
  "User inactive or deleted": "user_inactive",
  "UserApplication inactive or deleted": "application_inactive",
  "Unauthorized organization access.": "unauthorized_organization_access",
  "Unauthorized organization access": "unauthorized_organization_access",
  "This token access is limited to organization endpoints.": "organization_endpoints_only",
};
/** DRF's header errors: "Invalid token header. No credentials provided." and "... should not contain spaces." */
const TOKEN_HEADER_DETAIL = /^Invalid token header\./;
/** DRF's PermissionDenied default: a missing scope or role. */
const PERMISSION_DENIED_DETAIL = "You do not have permission to perform this action.";
/** 401 codes after which a refreshed access token may succeed; the others need the user (SSO, 2FA, a disabled app). */
const REFRESHABLE_CODES: ReadonlySet<string> = new Set(["invalid_token", "token_expired", "http_401"]);

type SentryDetail = { text?: string; code?: string };

const quote = (text: string | undefined): string => (text ? `: ${text.slice(0, MAX_QUOTED)}` : "");

/**
 * Sentry's error body, whatever its shape: DRF `{"detail": "..."}`, a
 * structured `{"detail": {"code", "message", "extra"}}`, a serializer's field
 * map `{"field": ["message"]}`, or (the rate limiter) a bare JSON string.
 */
export function readSentryDetail(json: unknown): SentryDetail {
  if (typeof json === "string") return json === "" ? {} : { text: json };
  if (!json || typeof json !== "object" || Array.isArray(json)) return {};
  const detail = (json as { detail?: unknown }).detail;
  if (typeof detail === "string") return { text: detail };
  if (detail && typeof detail === "object") {
    const { code, message } = detail as { code?: unknown; message?: unknown };
    return { ...(typeof message === "string" ? { text: message } : {}), ...(typeof code === "string" && code !== "" ? { code } : {}) };
  }
  // A field map: "name: message; other: message".
  const fields = Object.entries(json as Record<string, unknown>)
    .map(([field, messages]) => {
      const list = Array.isArray(messages) ? messages.filter((m): m is string => typeof m === "string") : typeof messages === "string" ? [messages] : [];
      return list.length > 0 ? `${field}: ${list.join(" ")}` : undefined;
    })
    .filter((f): f is string => f !== undefined);
  return fields.length > 0 ? { text: fields.join("; ") } : {};
}

/**
 * Seconds until Sentry's rate-limit window resets. `X-Sentry-Rate-Limit-Reset`
 * is epoch seconds on Sentry's clock, so it is measured against Sentry's own
 * `Date` header (same clock, same second), which keeps clock skew between us
 * and Sentry out of the wait; our clock is the fallback when Date is missing.
 * At least one second: both values have whole-second resolution.
 */
export function secondsUntilReset(headers: Headers, nowMs: number = Date.now()): number | undefined {
  const reset = headers.get("x-sentry-rate-limit-reset")?.trim();
  if (!reset || !/^\d+(\.\d+)?$/.test(reset)) return undefined;
  const date = Date.parse(headers.get("date") ?? "");
  const now = Number.isNaN(date) ? nowMs / 1000 : date / 1000;
  return Math.max(1, Math.ceil(Number(reset) - now));
}

function throttleVerdict(response: ProviderResponse, operation: string, detail: SentryDetail): ErrorVerdict {
  const { headers } = response;
  const remaining = Number(headers.get("x-sentry-rate-limit-remaining"));
  const concurrentRemaining = headers.get("x-sentry-rate-limit-concurrentremaining");
  // Too many requests in flight, not too many in the window: the window's reset is not what frees a slot.
  if (concurrentRemaining !== null && Number(concurrentRemaining) <= 0 && Number.isFinite(remaining) && remaining > 0) {
    return { type: "rate-limit", code: "concurrent_limit", message: `Sentry throttled ${operation}: too many concurrent requests for this credential${quote(detail.text)}` };
  }
  // Sentry sends no Retry-After (a proxy in front of a self-hosted Sentry may: the HTTP client reads it then).
  const wait = headers.has("retry-after") ? undefined : secondsUntilReset(headers);
  return {
    type: "rate-limit",
    code: "rate_limited",
    ...(wait === undefined ? {} : { retryAfterSeconds: wait }),
    message: `Sentry rate limit exceeded on ${operation}${quote(detail.text)}`,
  };
}

/** Status first (Sentry's statuses are reliable), then the token endpoint's RFC 6749 `error`, then `detail`. */
export function classifySentry(response: ProviderResponse, request: Pick<ProviderRequest, "operation">): ErrorVerdict | null {
  const { status } = response;
  if (status >= 200 && status < 300) return null;
  const op = request.operation;
  const detail = readSentryDetail(response.json);
  if (status === 429) return throttleVerdict(response, op, detail);
  // The token endpoint answers `{"error": "<name>"}` and nothing else.
  const oauth = classifyOAuthError(response, op, DISPLAY_NAME);
  if (oauth) {
    if (oauth.code === "invalid_client") {
      return { ...oauth, message: `${DISPLAY_NAME} refused this app's client credentials at ${op} (invalid_client); check AUTOFLOW_SENTRY_CLIENT_ID and AUTOFLOW_SENTRY_CLIENT_SECRET` };
    }
    return oauth;
  }
  if (status >= 500) {
    const errorId = (response.json as { errorId?: unknown } | undefined)?.errorId;
    return { type: "upstream", code: `http_${status}`, message: `Sentry failed to answer ${op} (HTTP ${status})${typeof errorId === "string" ? ` (error id ${errorId})` : ""}` };
  }
  if (status === 401) {
    const code = detail.code ?? (detail.text ? (AUTH_DETAIL_CODES[detail.text] ?? (TOKEN_HEADER_DETAIL.test(detail.text) ? "invalid_token_header" : undefined)) : undefined) ?? "http_401";
    return { type: "auth", code, message: `Sentry refused the credential for ${op} (${code})${quote(detail.text)}` };
  }
  if (status === 403) {
    const code = detail.code ?? (detail.text === PERMISSION_DENIED_DETAIL ? "permission_denied" : "http_403");
    return { type: "auth", code, message: `Sentry denied ${op}: the credential lacks a scope or role it needs (${code})${quote(detail.text)}` };
  }
  if (status === 404) {
    return { type: "schema", code: "not_found", message: `Sentry has no ${op}${quote(detail.text ?? response.text.split("\n")[0])}` };
  }
  return { type: "schema", code: detail.code ?? `http_${status}`, message: `Sentry refused ${op} (HTTP ${status})${quote(detail.text)}` };
}

// ---------------------------------------------------------------------------
// Tokens the user pastes

/** `sntryu_` + 64 hex (apitoken.py `generate_token`); hex is matched case-insensitively. */
const USER_TOKEN = /^sntryu_[0-9a-f]{64}$/i;
/** The prefix Sentry reserves for integration tokens, same body. */
const INTEGRATION_TOKEN = /^sntryi_[0-9a-f]{64}$/i;
/** Tokens minted before the prefixes (user and internal-integration tokens; OAuth tokens look the same). */
const UNPREFIXED_TOKEN = /^[0-9a-f]{64}$/i;
/** `sntrys_<base64 JSON payload>_<base64 secret>`: exactly two underscores, as Sentry's `parse_token` requires. */
const ORG_TOKEN = /^sntrys_([A-Za-z0-9+/]+={0,2})_([A-Za-z0-9+/]+={0,2})$/;
/** An OAuth application's client secret is `sntrya_` + 64 hex (apiapplication.py). */
const CLIENT_SECRET = /^sntrya_/i;
/** A DSN (`https://<key>@o1.ingest.sentry.io/2`) only sends events. */
const DSN = /^https?:\/\/[0-9a-f]{32}(:[0-9a-f]{32})?@/i;

export type OrgTokenPayload = { iat: number; url?: string; regionUrl?: string; org?: string };

/** The payload of an organization auth token, as Sentry's `parse_token` reads it; undefined when it is not one. */
export function decodeOrgToken(token: string): OrgTokenPayload | undefined {
  const match = ORG_TOKEN.exec(token);
  if (!match?.[1]) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(match[1], "base64").toString("utf8")) as Record<string, unknown>;
    if (!payload || typeof payload !== "object" || !payload.iat) return undefined;
    const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : undefined);
    const url = text(payload.url);
    const regionUrl = text(payload.region_url);
    const org = text(payload.org);
    return { iat: Number(payload.iat), ...(url ? { url } : {}), ...(regionUrl ? { regionUrl } : {}), ...(org ? { org } : {}) };
  } catch {
    return undefined;
  }
}

export function parseSentryToken(input: { apiKey?: string; accessToken?: string; baseUrl?: string; email?: string }): ParsedApiKey<SentryAuthMethod> {
  if (input.email !== undefined) throw invalidInput("email", "Sentry auth tokens are used without an email: leave email out", PROVIDER);
  if (input.apiKey !== undefined && input.accessToken !== undefined) {
    throw invalidInput("accessToken", "give the Sentry auth token as accessToken (or apiKey), not both", PROVIDER);
  }
  // The lifecycle hands the base URL over normalised (no query, no trailing slash).
  if (input.baseUrl !== undefined && /\/api(\/0)?\/?$/i.test(input.baseUrl)) {
    throw invalidInput("baseUrl", "give the Sentry instance's own address (https://sentry.example.com), without /api/0: the API path is added to it", PROVIDER);
  }
  const field = input.accessToken !== undefined ? "accessToken" : "apiKey";
  const token = input.accessToken ?? input.apiKey;
  if (token === undefined) {
    throw invalidInput("accessToken", "accessToken is required: a Sentry auth token (sntryu_... from User Settings > Personal Tokens, or sntrys_... from Organization Settings > Auth Tokens)", PROVIDER);
  }
  if (USER_TOKEN.test(token) || INTEGRATION_TOKEN.test(token) || UNPREFIXED_TOKEN.test(token)) return { token, authMethod: "auth_token" };
  if (token.startsWith("sntrys_")) {
    if (!decodeOrgToken(token)) {
      throw invalidInput(field, "not a whole organization auth token: sntrys_ tokens are a base64 payload and a secret joined by _ ; copy the entire token again", PROVIDER);
    }
    return { token, authMethod: "org_auth_token", scopes: [...ORG_TOKEN_SCOPES] };
  }
  if (CLIENT_SECRET.test(token)) {
    throw invalidInput(field, "that is an OAuth application's client secret (sntrya_), not a token; connect through OAuth, or give an auth token (sntryu_... or sntrys_...)", PROVIDER);
  }
  if (DSN.test(token)) throw invalidInput(field, "that is a DSN, which only sends events; give an auth token (sntryu_... or sntrys_...)", PROVIDER);
  throw invalidInput(
    field,
    "not a Sentry auth token: expected sntryu_ followed by 64 hex characters (a user auth token), sntrys_... (an organization auth token) or 64 hex characters (an older token)",
    PROVIDER,
  );
}

const originOf = (url: string | undefined): string | undefined => {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
};

/**
 * An organization auth token names the instance that issued it. Sent without
 * a base URL it would go to the configured instance (sentry.io): when it
 * names another one, it is refused here, before a self-hosted secret leaves
 * for a third party and comes back as a puzzling "Invalid org token".
 */
export function checkOrgTokenInstance(token: string, apiUrl: string): void {
  const payload = decodeOrgToken(token);
  const issuers = [originOf(payload?.url), originOf(payload?.regionUrl)].filter((o): o is string => o !== undefined);
  const target = new URL(apiUrl).origin;
  if (issuers.length === 0 || issuers.includes(target)) return;
  throw invalidInput(
    "baseUrl",
    `this organization token was issued by ${JSON.stringify((issuers[0] as string).slice(0, 200))}, not by ${JSON.stringify(target)}: connect it with baseUrl set to its Sentry instance`,
    PROVIDER,
  );
}

// ---------------------------------------------------------------------------
// Who am I

/** GET /api/0/organizations/: Sentry's OrganizationSerializer, reduced to what is read (ids were numbers long ago). */
const organizationsSchema = z.array(
  z.looseObject({
    id: z.union([z.string().min(1), z.number()]).transform(String),
    slug: z.string().min(1),
    name: z.string(),
    status: z.looseObject({ id: z.string() }).optional(),
    links: z.looseObject({ organizationUrl: z.string().optional(), regionUrl: z.string().optional() }).optional(),
  }),
);

/** Whether Sentry's `Link` header says another page follows (`rel="next"; results="true"`). */
export function hasNextPage(link: string | null | undefined): boolean {
  if (!link) return false;
  return link.split(/,\s*(?=<)/).some((part) => /rel="next"/.test(part) && /results="true"/.test(part));
}

/**
 * Reduces the organizations answer to the connection's identity. The slug is
 * known when the token reaches one organization (OAuth tokens scoped at
 * consent, organization tokens), or when an organization token's own payload
 * names one of several.
 */
export function parseSentryIdentity(json: unknown, context: { baseUrl: string; morePages?: boolean; preferredSlug?: string }): Identity {
  const parsed = organizationsSchema.safeParse(json);
  if (!parsed.success) {
    throw new IntegrationError({ type: "upstream", provider: PROVIDER, code: ErrorCodes.UNPARSABLE_RESPONSE, message: `Sentry's ${ORGANIZATIONS_OPERATION} answer is not a list of organizations` });
  }
  const organizations = parsed.data;
  const only = organizations.length === 1 && !context.morePages ? organizations[0] : organizations.find((o) => o.slug === context.preferredSlug);
  return {
    metadata: { baseUrl: context.baseUrl, ...(only ? { organizationSlug: only.slug } : {}) },
    summary: {
      baseUrl: context.baseUrl,
      organizations: `${organizations.length}${context.morePages ? "+" : ""}`,
      organizationSlugs: organizations.length > 0 ? organizations.slice(0, 20).map((o) => o.slug).join(",") : undefined,
      organizationSlug: only?.slug,
      organizationName: only?.name,
      organizationId: only?.id,
      // Where sentry.io serves this organization's data (https://us.sentry.io, https://de.sentry.io); empty on self-hosted.
      regionUrl: only?.links?.regionUrl || undefined,
    },
  };
}

/** The grant as the lifecycle stores it; `expires_at` stands in when an answer has no `expires_in`. */
export function sentryGrant(grant: StandardGrant, nowMs: number = Date.now()): TokenGrant {
  const expiresAt = (grant.body as { expires_at?: unknown }).expires_at;
  const fromExpiresAt = typeof expiresAt === "string" && !Number.isNaN(Date.parse(expiresAt)) ? Math.floor((Date.parse(expiresAt) - nowMs) / 1000) : undefined;
  const expiresInSeconds = grant.expiresInSeconds ?? (fromExpiresAt !== undefined && fromExpiresAt > 0 ? fromExpiresAt : undefined);
  return {
    accessToken: grant.accessToken,
    ...(grant.refreshToken ? { refreshToken: grant.refreshToken } : {}),
    ...(expiresInSeconds !== undefined ? { expiresInSeconds } : {}),
    scopes: grant.scopes,
    metadata: {},
  };
}

const SENTRY_ORIGIN = "https://sentry.io";

export const sentryConnector: ConnectorDefinition<SentryAuthMethod, typeof sentryMetadataSchema> = {
  metadataSchema: sentryMetadataSchema,
  id: PROVIDER,
  displayName: DISPLAY_NAME,
  authMethods: ["oauth2", "auth_token", "org_auth_token"],
  oauthAuthMethod: "oauth2",
  liveEndpoints: {
    // Trailing slashes as Sentry routes them; for a self-hosted OAuth app, set every AUTOFLOW_SENTRY_*_URL.
    authorizeUrl: `${SENTRY_ORIGIN}/oauth/authorize/`,
    tokenUrl: `${SENTRY_ORIGIN}/oauth/token/`,
    // No revokeUrl: Sentry has no endpoint that revokes one grant with the app's credentials.
    // The instance root: API paths (/api/0/...) are appended, as for a user-supplied base URL.
    apiUrl: SENTRY_ORIGIN,
  },
  // sentry.io proxies every org-scoped path to the organization's region, and the
  // who-am-I stays on the configured host: no regional host is called, so none is declared.
  pkce: true,
  // org:read is what the organizations list needs (OrganizationPermission); project and event reads for the integrations built on it.
  defaultScopes: ["org:read", "project:read", "event:read"],
  requiredMetadata: ["baseUrl"],
  accountLabel: ["organizationSlug", "baseUrl"],
  acceptsBaseUrl: true,
  retryPolicy: sentryRetryPolicy,
  rateLimit: sentryRateLimit,
  // Sentry limits each caller (user or token) per endpoint: every connection's own budget, per route
  // (ids and slugs of the path stood for by their position).
  paceBy: "connection",
  paceScope: (call) => call.path?.split("?", 1)[0]?.replace(/\/[^/]*\d[^/]*(?=\/|$)/g, "/:id"),
  classify: classifySentry,

  authorizationParams(settings) {
    // Space-separated scopes; redirect_uri always (documented optional, required once several are registered).
    return { client_id: settings.clientId, response_type: "code", scope: settings.scopes.join(" "), redirect_uri: settings.redirectUri };
  },

  async exchangeCode(ctx, input) {
    // A confidential client: the secret in the body (Sentry refuses Basic and body together), PKCE on top.
    return sentryGrant(await exchangeCodeStandard(ctx, { code: input.code, clientAuth: "client_secret_post", ...(input.codeVerifier ? { codeVerifier: input.codeVerifier } : {}) }));
  },

  async refreshToken(ctx, refreshToken) {
    // Sentry rotates both tokens on every refresh, with no grace for the old refresh token, and
    // refuses `scope` here. Asking again after a lost answer is no worse than asking later: the
    // stored refresh token is the only one held either way, so the request counts as repeatable.
    return sentryGrant(await refreshStandard(ctx, { refreshToken, clientAuth: "client_secret_post", idempotent: true }));
  },

  revoke() {
    // No revocation endpoint (providers.md §2.1): the lifecycle erases the tokens here and says so.
    return Promise.resolve("not_supported");
  },

  parseApiKey: parseSentryToken,

  // Only an invalid or expired access token is cured by a refresh; SSO, 2FA and a disabled app need the user.
  isTokenRejection: (error) => error.status === 401 && REFRESHABLE_CODES.has(error.code ?? "http_401"),

  whoAmI: {
    request(credential, settings) {
      // With a base URL the user chose the instance (a proxy may front it under another name): trust it.
      if (credential.authMethod === "org_auth_token" && credential.baseUrl === undefined) checkOrgTokenInstance(credential.accessToken, settings.endpoints.apiUrl);
      return { operation: ORGANIZATIONS_OPERATION, method: "GET", path: ORGANIZATIONS_PATH };
    },
    process(response, credential, settings): Identity {
      const orgToken = credential.authMethod === "org_auth_token" ? decodeOrgToken(credential.accessToken) : undefined;
      return parseSentryIdentity(response.json, {
        baseUrl: credential.baseUrl ?? settings.endpoints.apiUrl,
        morePages: hasNextPage(response.headers.get("link")),
        ...(orgToken?.org ? { preferredSlug: orgToken.org } : {}),
      });
    },
  },
};
