/**
 * Gmail through Google OAuth 2.0 (web-server flow with PKCE S256, offline
 * access), or a Google OAuth access token pasted by the user. Google has no
 * API keys that can read a mailbox.
 *
 * Google answers API errors in one envelope,
 * `{"error":{"code","message","status","errors":[{reason,domain}],"details":[ErrorInfo]}}`,
 * and token-endpoint errors as RFC 6749 `{"error","error_description"}`.
 * The quirk that matters: Google throttles with HTTP 403 as well as 429, so
 * a 403 is read by its reason before it is called an auth failure.
 *
 * Wire facts: providers.md §4 (Gmail via Google OAuth 2.0); google-auth-library-nodejs
 * src/auth/oauth2client.ts (endpoints, tokeninfo fields); googleapis discovery gmail-v1.json
 * (profile scopes and schema); developers.google.com/gmail/api/guides/handle-errors.
 */
import { z } from "zod";
import type { CallSender, ConnectorDefinition, ConnectorSettings, Identity, ParsedApiKey } from "../shared/connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ErrorType } from "../shared/contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../shared/errors.js";
import type { ErrorVerdict, ProviderRequest, ProviderResponse } from "../shared/http.js";
import { parseRetryAfter } from "../shared/retry.js";
import { classifyOAuthError, exchangeCodeStandard, refreshStandard } from "../shared/standardOAuth.js";
import { gmailRateLimit } from "./rateLimit.js";
import { gmailRetryPolicy } from "./retryPolicy.js";

export type GmailAuthMethod = "oauth2" | "access_token";
export const gmailMetadataSchema = z.object({ scopes: z.array(z.string()), emailAddress: z.string() });
export type GmailMetadata = z.infer<typeof gmailMetadataSchema>;
export type GmailConnectionPublic = Tier1ConnectionPublic<GmailAuthMethod, GmailMetadata>;
export type GmailHealth = Tier1ConnectionHealth<GmailAuthMethod, Partial<GmailMetadata>>;

const DISPLAY_NAME = "Gmail";

/** Scope prefix of every Google API scope but the OpenID ones. */
export const GOOGLE_SCOPE_PREFIX = "https://www.googleapis.com/auth/";
/** The scope whose grant lets tokeninfo tell the address (Google's `email` is its alias). */
export const USERINFO_EMAIL_SCOPE = `${GOOGLE_SCOPE_PREFIX}userinfo.email`;
/** Scopes that may call users.getProfile (discovery doc gmail-v1.json). */
export const PROFILE_SCOPES: readonly string[] = [
  "https://mail.google.com/",
  `${GOOGLE_SCOPE_PREFIX}gmail.compose`,
  `${GOOGLE_SCOPE_PREFIX}gmail.metadata`,
  `${GOOGLE_SCOPE_PREFIX}gmail.modify`,
  `${GOOGLE_SCOPE_PREFIX}gmail.readonly`,
];

const PROFILE_PATH = "/gmail/v1/users/me/profile";

// ---------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------

/** Legacy `errors[].reason` and ErrorInfo `details[].reason` values that mean "throttled". */
const RATE_LIMIT_REASONS: ReadonlySet<string> = new Set([
  "rateLimitExceeded",
  "userRateLimitExceeded",
  "dailyLimitExceeded",
  "quotaExceeded",
  "RATE_LIMIT_EXCEEDED",
  "RESOURCE_EXHAUSTED",
]);
/** The credential works but its grant lacks the scope. */
const SCOPE_REASONS: ReadonlySet<string> = new Set(["insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"]);

type GoogleError = { code?: number; message?: string; status?: string; reasons: string[] };

const googleErrorSchema = z.looseObject({
  error: z.looseObject({
    code: z.number().optional(),
    message: z.string().optional(),
    status: z.string().optional(),
    errors: z.array(z.looseObject({ reason: z.string().optional(), domain: z.string().optional() })).optional(),
    details: z.array(z.looseObject({ reason: z.string().optional() })).optional(),
  }),
});

/** The Google JSON error envelope, reduced to what classification reads; undefined when the body is not one. */
export function readGoogleError(json: unknown): GoogleError | undefined {
  const parsed = googleErrorSchema.safeParse(json);
  if (!parsed.success) return undefined;
  const e = parsed.data.error;
  const reasons = [...(e.errors ?? []).map((x) => x.reason), ...(e.details ?? []).map((x) => x.reason)].filter((r): r is string => typeof r === "string");
  return { ...(e.code !== undefined ? { code: e.code } : {}), ...(e.message !== undefined ? { message: e.message } : {}), ...(e.status !== undefined ? { status: e.status } : {}), reasons };
}

const isRateLimitReason = (reason: string): boolean => RATE_LIMIT_REASONS.has(reason) || /LimitExceeded$/.test(reason);

/**
 * Status and reason to type, in the order checked: throttling first (Google
 * throttles with 403 as well as 429, providers.md §4.4), then 5xx, then
 * auth (401, and every other 403: scope, domain policy, API disabled), then
 * permanent 4xx.
 */
function typeOf(status: number, error: GoogleError | undefined): Tier1ErrorType {
  const reasons = error?.reasons ?? [];
  if (status === 429 || error?.status === "RESOURCE_EXHAUSTED" || reasons.some(isRateLimitReason)) return "rate-limit";
  if (status >= 500) return "upstream";
  if (status === 401 || status === 403 || error?.status === "UNAUTHENTICATED") return "auth";
  // A request that timed out at Google's front end; asking again may work.
  if (status === 408) return "upstream";
  return "schema";
}

/** Gmail's per-user throttles say when to come back in the message: "User-rate limit exceeded.  Retry after 2024-11-12T11:16:42.247Z". */
const RETRY_AFTER_IN_MESSAGE = /Retry after (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)/;

/** Seconds until the next midnight in America/Los_Angeles, when Google's daily quotas reset. Off by an hour on the two DST days. */
export function secondsUntilPacificMidnight(nowMs: number): number {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: "America/Los_Angeles", hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(new Date(nowMs));
  const part = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return 86_400 - (part("hour") * 3600 + part("minute") * 60 + part("second"));
}

/** How long Google asked us to wait, when it said so other than in a Retry-After header (which the HTTP client reads itself). */
function retryAfterOf(response: ProviderResponse, error: GoogleError | undefined, nowMs: number): number | undefined {
  if (parseRetryAfter(response.headers.get("retry-after"), nowMs) !== undefined) return undefined;
  const stated = RETRY_AFTER_IN_MESSAGE.exec(error?.message ?? "")?.[1];
  if (stated !== undefined) return Math.max(1, Math.ceil((Date.parse(stated) - nowMs) / 1000));
  // A daily quota will not clear within any retry budget: say so, so the caller is not told "retry in 1s".
  if (error?.reasons.includes("dailyLimitExceeded")) return secondsUntilPacificMidnight(nowMs);
  return undefined;
}

const quote = (text: string | undefined): string => (text ? `: ${text.slice(0, 300)}` : "");

function messageOf(type: Tier1ErrorType, status: number, code: string, operation: string, providerMessage: string | undefined, scopeRefusal: boolean): string {
  switch (type) {
    case "auth":
      if (scopeRefusal) return `Gmail refused ${operation}: the grant lacks a scope this call needs (${code}); connect again granting it`;
      if (status === 401) return `Gmail refused the access token for ${operation} (HTTP 401 ${code}): it is invalid, expired or revoked`;
      return `Gmail refused ${operation} (HTTP ${status} ${code})${quote(providerMessage)}`;
    case "rate-limit":
      return `Gmail API rate limit exceeded (${code})${quote(providerMessage)}`;
    case "upstream":
      return `Gmail failed to answer ${operation} (HTTP ${status}${code.startsWith("http_") ? "" : ` ${code}`})`;
    default:
      return `Gmail refused ${operation} (HTTP ${status} ${code})${quote(providerMessage)}`;
  }
}

/**
 * Classifies a Google answer: RFC 6749 bodies (token, revoke, tokeninfo)
 * through the shared table, Google API envelopes (Gmail) through
 * {@link typeOf}; bodies that are neither (an HTML 502 page) by status.
 */
export function classifyGmail(response: ProviderResponse, request: Pick<ProviderRequest, "operation">, nowMs: number = Date.now()): ErrorVerdict | null {
  if (response.status >= 200 && response.status < 300) return null;
  const oauth = classifyOAuthError(response, request.operation, DISPLAY_NAME);
  if (oauth) {
    // Google's descriptions are what tells the cases apart ("Token has been expired or revoked.", "Missing code verifier.").
    const description = (response.json as { error_description?: unknown }).error_description;
    return typeof description === "string" ? { ...oauth, message: `${oauth.message} (Google says: ${description.slice(0, 200)})` } : oauth;
  }
  const error = readGoogleError(response.json);
  const type = typeOf(response.status, error);
  const scopeRefusal = type === "auth" && (error?.reasons.some((r) => SCOPE_REASONS.has(r)) ?? false);
  const code = (scopeRefusal ? error?.reasons.find((r) => SCOPE_REASONS.has(r)) : error?.reasons[0]) ?? error?.status ?? `http_${response.status}`;
  const retryAfterSeconds = type === "rate-limit" ? retryAfterOf(response, error, nowMs) : undefined;
  return {
    type,
    code,
    message: messageOf(type, response.status, code, request.operation, error?.message, scopeRefusal),
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  };
}

/** True when Gmail refused a call because the grant lacks its scope (not because the token is bad). */
export function isScopeRefusal(error: unknown): boolean {
  return error instanceof IntegrationError && error.type === "auth" && error.status === 403 && SCOPE_REASONS.has(error.code ?? "");
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/** users.getProfile (discovery doc `Profile`): historyId is a uint64 as a string. */
const profileSchema = z.looseObject({
  emailAddress: z.string().min(3).includes("@"),
  messagesTotal: z.number().int().nonnegative().optional(),
  threadsTotal: z.number().int().nonnegative().optional(),
  historyId: z.string().regex(/^\d+$/).optional(),
});
export type GmailProfile = z.infer<typeof profileSchema>;

export function parseGmailProfile(json: unknown): GmailProfile {
  const parsed = profileSchema.safeParse(json);
  if (!parsed.success) {
    throw new IntegrationError({ type: "upstream", provider: "gmail", code: ErrorCodes.UNPARSABLE_RESPONSE, message: "Gmail's users.getProfile answer is not the documented shape" });
  }
  return parsed.data;
}

/**
 * tokeninfo. The live endpoint sends `exp`, `expires_in` and
 * `email_verified` as strings although google-auth-library types them as
 * numbers and a boolean: both are accepted. `email` is present only when the
 * grant holds the userinfo.email scope.
 */
const tokenInfoSchema = z.looseObject({
  aud: z.string().optional(),
  azp: z.string().optional(),
  sub: z.string().optional(),
  scope: z.string().optional(),
  exp: z.union([z.string(), z.number()]).optional(),
  expires_in: z.union([z.string().regex(/^\d+$/), z.number().int()]).optional(),
  email: z.string().includes("@").optional(),
  email_verified: z.union([z.string(), z.boolean()]).optional(),
  access_type: z.string().optional(),
});
export type GoogleTokenInfo = { scopes?: string[]; email?: string; emailVerified?: boolean; expiresInSeconds?: number; accessType?: string };

export function parseTokenInfo(json: unknown): GoogleTokenInfo {
  const parsed = tokenInfoSchema.safeParse(json);
  if (!parsed.success) {
    throw new IntegrationError({ type: "upstream", provider: "gmail", code: ErrorCodes.UNPARSABLE_RESPONSE, message: "Google's tokeninfo answer is not the documented shape" });
  }
  const body = parsed.data;
  return {
    ...(body.scope !== undefined ? { scopes: body.scope.split(" ").filter(Boolean) } : {}),
    ...(body.email !== undefined ? { email: body.email } : {}),
    ...(body.email_verified !== undefined ? { emailVerified: body.email_verified === true || body.email_verified === "true" } : {}),
    ...(body.expires_in !== undefined ? { expiresInSeconds: Number(body.expires_in) } : {}),
    ...(body.access_type !== undefined ? { accessType: body.access_type } : {}),
  };
}

/**
 * Where tokeninfo lives: beside the token endpoint (oauth2.googleapis.com/token
 * and /tokeninfo, google-auth-library's defaults), so overriding
 * AUTOFLOW_GMAIL_TOKEN_URL moves both and no further setting is needed.
 */
export function tokenInfoUrl(settings: Pick<ConnectorSettings, "endpoints">): string {
  return new URL("tokeninfo", settings.endpoints.tokenUrl).toString();
}

// ---------------------------------------------------------------------------
// Pasted credentials
// ---------------------------------------------------------------------------

/**
 * Google OAuth access tokens start `ya29.` (an observed convention, not a
 * contract, providers.md §4.2); the rest is opaque base64url with dots.
 */
const ACCESS_TOKEN_PATTERN = /^ya29\.[A-Za-z0-9_\-.]{16,}$/;

const NO_API_KEYS =
  "Google has no API keys for Gmail: an API key (AIza...) identifies a Cloud project and cannot read a mailbox. " +
  "Give a Google OAuth access token (ya29...) as accessToken, or connect through OAuth";

export function parseGmailToken(input: { apiKey?: string; accessToken?: string }): ParsedApiKey<GmailAuthMethod> {
  if (input.apiKey !== undefined) throw invalidInput("apiKey", NO_API_KEYS, "gmail");
  const token = input.accessToken;
  if (token === undefined) throw invalidInput("accessToken", "accessToken is required: a Google OAuth access token (ya29...) with a Gmail scope", "gmail");
  const refuse = (why: string) => invalidInput("accessToken", `${why}; give a Google OAuth access token (ya29...)`, "gmail");
  if (token.startsWith("AIza")) throw invalidInput("accessToken", NO_API_KEYS, "gmail");
  if (token.startsWith("1//")) throw refuse("that is a Google refresh token (1//...), which only its OAuth client can use");
  if (token.startsWith("4/")) throw refuse("that is an authorization code (4/...), not a token");
  if (/^eyJ[\w-]*\.[\w-]*\.[\w-]*$/.test(token)) throw refuse("that is a JWT (an ID token or service-account assertion), which cannot call Gmail");
  if (token.startsWith("GOCSPX-")) throw refuse("that is an OAuth client secret");
  if (!ACCESS_TOKEN_PATTERN.test(token)) throw refuse("not a Google OAuth access token");
  // A pasted token cannot be refreshed and its expiry is not stored: the connection works until Google's
  // hour is up (tokenRefreshStatus not_applicable), then reports auth down.
  return { token, authMethod: "access_token" };
}

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

async function getTokenInfo(send: CallSender, settings: ConnectorSettings, accessToken: string): Promise<GoogleTokenInfo> {
  // As google-auth-library's getTokenInfo sends it: the token in the query of a GET to Google's own endpoint.
  const response = await send({ operation: "GET /tokeninfo", method: "GET", url: tokenInfoUrl(settings), query: { access_token: accessToken }, authorize: false });
  return parseTokenInfo(response.json);
}

/**
 * The address when the profile cannot be read (a gmail.send-only grant):
 * tokeninfo tells it with the userinfo.email scope; a connection stored
 * earlier already knows it. Otherwise the grant cannot be identified, which
 * is an auth problem the user fixes by granting one more scope.
 */
async function identifyWithoutProfile(send: CallSender, settings: ConnectorSettings, accessToken: string, known: unknown): Promise<Identity> {
  const info = await getTokenInfo(send, settings, accessToken);
  const emailAddress = info.email ?? (typeof known === "string" ? known : undefined);
  if (emailAddress === undefined) {
    throw new IntegrationError({
      type: "auth",
      code: ErrorCodes.EMAIL_ADDRESS_UNAVAILABLE,
      status: 403,
      provider: "gmail",
      message:
        `Gmail: this grant's scopes (${(info.scopes ?? []).join(" ") || "none reported"}) can neither read the Gmail profile nor reveal the address; ` +
        `add ${USERINFO_EMAIL_SCOPE} (or a Gmail read scope such as gmail.metadata) to AUTOFLOW_GMAIL_SCOPES and connect again`,
    });
  }
  return {
    metadata: { emailAddress },
    ...(info.scopes ? { scopes: info.scopes } : {}),
    summary: {
      emailAddress,
      profile: "not readable with the granted scopes",
      expiresInSeconds: info.expiresInSeconds === undefined ? undefined : String(info.expiresInSeconds),
    },
  };
}

/** The real Google endpoints (google-auth-library's defaults) and the Gmail API base. */
export const GOOGLE_ENDPOINTS = {
  authorizeUrl: "https://accounts.google.com/o/oauth2/v2/auth",
  tokenUrl: "https://oauth2.googleapis.com/token",
  revokeUrl: "https://oauth2.googleapis.com/revoke",
  apiUrl: "https://gmail.googleapis.com",
} as const;

export const gmailConnector: ConnectorDefinition<GmailAuthMethod, typeof gmailMetadataSchema> = {
  metadataSchema: gmailMetadataSchema,
  id: "gmail",
  displayName: DISPLAY_NAME,
  authMethods: ["oauth2", "access_token"],
  oauthAuthMethod: "oauth2",
  liveEndpoints: GOOGLE_ENDPOINTS,
  // Google has started to send iss in authorization responses; it names this issuer.
  issuers: ["https://accounts.google.com"],
  pkce: true,
  // Reading the profile needs one of PROFILE_SCOPES; identity comes from it, so no openid.
  defaultScopes: [`${GOOGLE_SCOPE_PREFIX}gmail.readonly`],
  requiredMetadata: ["emailAddress"],
  accountLabel: ["emailAddress"],
  retryPolicy: gmailRetryPolicy,
  rateLimit: gmailRateLimit,
  classify: (response, request) => classifyGmail(response, request),

  authorizationParams(settings) {
    return {
      client_id: settings.clientId,
      redirect_uri: settings.redirectUri,
      response_type: "code",
      // Google separates scopes with spaces.
      scope: settings.scopes.join(" "),
      // Without offline access there is no refresh token, and the connection dies with its first hour.
      access_type: "offline",
      // Google sends a refresh token on the first consent only; asking again for consent makes every connect get one.
      prompt: "consent",
    };
  },

  exchangeCode(ctx, input) {
    // google-auth-library posts client_id and client_secret in the form.
    return exchangeCodeStandard(ctx, { code: input.code, ...(input.codeVerifier ? { codeVerifier: input.codeVerifier } : {}), clientAuth: "client_secret_post" });
  },

  refreshToken(ctx, refreshToken) {
    // Google keeps the refresh token (the answer has none; the lifecycle keeps the stored one),
    // so repeating a refresh whose answer was lost is safe.
    return refreshStandard(ctx, { refreshToken, clientAuth: "client_secret_post", idempotent: true });
  },

  async revoke(ctx, input) {
    // Revoking the refresh token ends the grant and every access token minted from it; a pasted
    // access token ends the grant it came from too (Google revokes a token's whole family).
    const token = input.refreshToken ?? input.accessToken;
    await ctx.http.send({
      operation: "POST /revoke",
      method: "POST",
      url: ctx.settings.endpoints.revokeUrl ?? GOOGLE_ENDPOINTS.revokeUrl,
      // Google also accepts ?token=; the form body keeps the token out of URLs and their logs.
      form: { token },
      idempotent: true,
      expectJson: false,
      secrets: [token],
    });
    return "revoked";
  },

  parseApiKey: parseGmailToken,

  // A pasted token's scopes are not known until tokeninfo tells them; once stored, the profile alone is the probe.
  async describeGrant(send, credential, identity, settings) {
    if (credential.authMethod !== "access_token" || credential.metadata.emailAddress !== undefined || identity.scopes !== undefined) return {};
    const info = await getTokenInfo(send, settings, credential.accessToken);
    return info.scopes ? { scopes: info.scopes } : {};
  },

  whoAmI: {
    request: () => ({ operation: `GET ${PROFILE_PATH}`, method: "GET", path: PROFILE_PATH }),
    process(response): Identity {
      const profile = parseGmailProfile(response.json);
      return {
        metadata: { emailAddress: profile.emailAddress },
        summary: {
          emailAddress: profile.emailAddress,
          messagesTotal: profile.messagesTotal === undefined ? undefined : String(profile.messagesTotal),
          threadsTotal: profile.threadsTotal === undefined ? undefined : String(profile.threadsTotal),
          historyId: profile.historyId,
        },
      };
    },
    // A gmail.send-only (or labels-only) grant may not read the profile: identify it another way.
    recover(error, send, credential, settings) {
      if (!isScopeRefusal(error)) throw error;
      return identifyWithoutProfile(send, settings, credential.accessToken, credential.metadata.emailAddress);
    },
  },
};
