/**
 * HubSpot: OAuth 2.0 on the date-versioned token endpoints (`/oauth/2026-03/...`;
 * the v1 OAuth API sunsets on 2027-02-16), or a private app access token
 * (`pat-<region>-<uuid>`) pasted by the user. HubSpot classifies its errors
 * in the body (`category`: INVALID_AUTHENTICATION, EXPIRED_AUTHENTICATION,
 * MISSING_SCOPES, VALIDATION_ERROR, ...) and throttles with 429 and a
 * `policyName`; classification reads the status first, then the category.
 *
 * Wire facts: providers.md §2 (HubSpot); developers.hubspot.com
 * api-reference/2026-03/authentication (token, token-introspect, revoke-token),
 * legacy OAuth v1 migration guide, api-reference/error-handling,
 * account/account-information (get-account-details); HubSpot/hubspot-api-nodejs
 * (codegen/oauth models, RetryDecorator.ts).
 *
 * Decisions where the sources are unsure (providers.md §7):
 * - PKCE: the token endpoint documents `code_verifier`, but `code_challenge`
 *   on the authorize URL is nowhere documented. A live token endpoint that
 *   saw a verifier for a code minted without a challenge would refuse it
 *   (OAuth 2.1 §4.1.3), so PKCE is off; the client secret authenticates the
 *   exchange. The sandbox still checks a challenge when a client sends one.
 * - Refresh tokens: read as NOT rotating (HubSpot answers a refresh with the
 *   same refresh token, which keeps working; SDK authors call it immutable).
 *   Whatever refresh token an answer carries is stored anyway, so a rotating
 *   HubSpot would also be handled; only the retry of a refresh whose answer
 *   was lost relies on the non-rotating reading.
 * - Who-am-I: `GET /account-info/v3/details` is the test call for every
 *   credential (it proves the API answers to it and tells the hub id). For
 *   OAuth connections the token introspection endpoint adds what the
 *   account call does not tell: the granted scopes, the hub domain and the
 *   installing user. Private app tokens cannot be introspected, so their
 *   scopes are not known (stored as []).
 */
import { z } from "zod";
import type { CallSender, ConnectorDefinition, ConnectorSettings, Identity, ParsedApiKey, TokenGrant } from "../shared/connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ErrorType } from "../shared/contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../shared/errors.js";
import type { ErrorVerdict, ProviderRequest, ProviderResponse } from "../shared/http.js";
import { parseRetryAfter } from "../shared/retry.js";
import { classifyOAuthError, exchangeCodeStandard, refreshStandard, type StandardGrant } from "../shared/standardOAuth.js";
import { hubspotRateLimit } from "./rateLimit.js";
import { hubspotRetryPolicy } from "./retryPolicy.js";

export type HubSpotAuthMethod = "oauth2" | "private_app_token";
export const hubspotMetadataSchema = z.object({ scopes: z.array(z.string()), hubId: z.number(), hubDomain: z.string().optional() });
export type HubSpotMetadata = z.infer<typeof hubspotMetadataSchema>;
export type HubSpotConnectionPublic = Tier1ConnectionPublic<HubSpotAuthMethod, HubSpotMetadata>;
export type HubSpotHealth = Tier1ConnectionHealth<HubSpotAuthMethod, Partial<HubSpotMetadata>>;

/** Our code for an access token the introspection endpoint calls inactive (`{"active": false}`, RFC 7662 §2.2). */
export const INACTIVE_TOKEN = "inactive_token";

/** HTTP statuses whose meaning does not depend on the body (error-handling reference, providers.md §2.4). */
const STATUS_TYPES: Readonly<Record<number, Tier1ErrorType>> = {
  401: "auth", // INVALID_AUTHENTICATION, EXPIRED_AUTHENTICATION
  403: "auth", // MISSING_SCOPES, or a forbidden resource
  408: "upstream", // the request timed out at HubSpot: asking again may work
  423: "rate-limit", // Locked: a bulk sync holds the account for ~2 s
  429: "rate-limit", // errorType RATE_LIMIT, policyName TEN_SECONDLY_ROLLING | SECONDLY | DAILY
  477: "rate-limit", // Migration in Progress: the account moves between data centres; wait Retry-After
};

/** The body's `category`, for statuses the table above does not settle (error-handling reference). */
const CATEGORY_TYPES: Readonly<Record<string, Tier1ErrorType>> = {
  INVALID_AUTHENTICATION: "auth",
  EXPIRED_AUTHENTICATION: "auth",
  MISSING_SCOPES: "auth",
  RATE_LIMITS: "rate-limit",
  VALIDATION_ERROR: "schema",
  OBJECT_NOT_FOUND: "schema",
  CONFLICT: "schema",
};

/**
 * The token endpoint's legacy `status` codes, for an answer that carries
 * only them (the v1 body before HubSpot added RFC 6749 fields). Only
 * BAD_REFRESH_TOKEN, BAD_AUTH_CODE and EXPIRED_AUTH_CODE are seen in real
 * answers; the client and redirect ones are uncertain (providers.md §2.1).
 */
const LEGACY_OAUTH_STATUSES: Readonly<Record<string, Tier1ErrorType>> = {
  BAD_REFRESH_TOKEN: "auth",
  BAD_AUTH_CODE: "auth",
  EXPIRED_AUTH_CODE: "auth",
  BAD_CLIENT_ID: "auth",
  BAD_REDIRECT_URI: "auth",
};

/** A 423 Locked is a bulk-sync lock that HubSpot says lasts about two seconds: wait at least that. */
const LOCKED_MIN_WAIT_SECONDS = 2;
/**
 * Waits for a 429 without Retry-After, as HubSpot's own SDK waits: the
 * rolling window is ten seconds (X-HubSpot-RateLimit-Interval-Milliseconds
 * says so when present); the per-second search limit clears in one.
 */
const THROTTLE_WINDOW_SECONDS: Readonly<Record<string, number>> = { TEN_SECONDLY_ROLLING: 10, SECONDLY: 1 };
/** The exact message HubSpot sends for the per-second limit (the SDK keys on it too). */
const SECONDLY_LIMIT_MESSAGE = "You have reached your secondly limit.";
/** Longest part of HubSpot's own message we quote. */
const MAX_QUOTED = 300;

type HubSpotErrorBody = {
  status?: unknown;
  message?: unknown;
  correlationId?: unknown;
  category?: unknown;
  errorType?: unknown;
  policyName?: unknown;
  errors?: unknown;
  context?: unknown;
};

const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);

/** Status first where HubSpot uses one (throttles, 5xx), then the RFC 6749 body of the OAuth endpoints, then `category`. */
export function classifyHubSpot(response: ProviderResponse, request: Pick<ProviderRequest, "operation">): ErrorVerdict | null {
  const { status } = response;
  if (status >= 200 && status < 300) return null;
  const body = (typeof response.json === "object" && response.json !== null ? response.json : {}) as HubSpotErrorBody;
  const correlation = text(body.correlationId) ?? response.headers.get("x-hubspot-correlation-id") ?? undefined;
  const ref = correlation ? ` (correlation id ${correlation})` : "";
  const op = request.operation;

  if (STATUS_TYPES[status] === "rate-limit" || body.errorType === "RATE_LIMIT" || body.category === "RATE_LIMITS") {
    return throttleVerdict(response, body, op);
  }
  // The OAuth endpoints answer RFC 6749 errors, keeping the legacy `status` beside them.
  const oauth = classifyOAuthError(response, op, "HubSpot");
  if (oauth) {
    const legacy = text(body.status);
    return legacy && legacy !== "error" ? { ...oauth, message: `${oauth.message} [${legacy}]` } : oauth;
  }
  if (status >= 500) {
    return { type: "upstream", code: text(body.category) ?? `http_${status}`, message: `HubSpot failed to answer ${op} (HTTP ${status})${ref}` };
  }
  const category = text(body.category);
  const legacy = text(body.status);
  const type: Tier1ErrorType =
    (category ? CATEGORY_TYPES[category] : undefined) ?? (legacy ? LEGACY_OAUTH_STATUSES[legacy] : undefined) ?? STATUS_TYPES[status] ?? "schema";
  const code = category ?? (legacy && legacy !== "error" ? legacy : `http_${status}`);
  const quoted = text(body.message)?.slice(0, MAX_QUOTED);
  if (type === "auth") return { type, code, message: `${authMessage(code, status, op, body)}${ref}` };
  return { type, code, message: `HubSpot refused ${op} (HTTP ${status} ${code})${quoted ? `: ${quoted}` : ""}${ref}` };
}

function authMessage(code: string, status: number, op: string, body: HubSpotErrorBody): string {
  switch (code) {
    case "EXPIRED_AUTHENTICATION":
      return `HubSpot refused the token for ${op}: it has expired (EXPIRED_AUTHENTICATION)`;
    case "MISSING_SCOPES": {
      const needed = requiredScopes(body);
      return `HubSpot refused ${op}: the token has not been granted the scopes it needs (MISSING_SCOPES${needed.length > 0 ? `; needs ${needed.join(" or ")}` : ""})`;
    }
    case "INVALID_AUTHENTICATION":
      return `HubSpot refused the token for ${op}: it is invalid or was revoked (INVALID_AUTHENTICATION)`;
    default:
      return status === 403
        ? `HubSpot refused ${op}: the credential may not do this (HTTP 403 ${code})`
        : `HubSpot refused the credential for ${op} (HTTP ${status} ${code})`;
  }
}

/** `errors[].context.requiredScopes` (what HubSpot sends) or `context.missingScopes` (what its reference shows). */
function requiredScopes(body: HubSpotErrorBody): string[] {
  const found = new Set<string>();
  const add = (value: unknown) => {
    if (Array.isArray(value)) for (const s of value) if (typeof s === "string") found.add(s);
  };
  if (Array.isArray(body.errors)) for (const e of body.errors as { context?: { requiredScopes?: unknown } }[]) add(e?.context?.requiredScopes);
  add((body.context as { missingScopes?: unknown } | undefined)?.missingScopes);
  return [...found];
}

function throttleVerdict(response: ProviderResponse, body: HubSpotErrorBody, op: string): ErrorVerdict {
  const header = parseRetryAfter(response.headers.get("retry-after"));
  if (response.status === 477) {
    // The Retry-After header is read by the HTTP client for rate-limit verdicts; it may say up to a day.
    return { type: "rate-limit", code: "MIGRATION_IN_PROGRESS", message: `HubSpot is moving this account to another data centre (HTTP 477 on ${op}); try again after Retry-After` };
  }
  if (response.status === 423) {
    return {
      type: "rate-limit",
      code: "LOCKED",
      retryAfterSeconds: Math.max(LOCKED_MIN_WAIT_SECONDS, header ?? 0),
      message: `HubSpot has locked this account for a bulk sync (HTTP 423 on ${op}); it clears in a few seconds`,
    };
  }
  const policy = text(body.policyName) ?? (body.message === SECONDLY_LIMIT_MESSAGE ? "SECONDLY" : undefined);
  if (policy === "DAILY") {
    // Resets at midnight in the account's time zone, which the answer does not tell: no retry can outwait it.
    return {
      type: "rate-limit",
      code: "DAILY",
      providerRetryHint: false,
      message: `HubSpot's daily API limit for this account is spent (${op}); it resets at midnight in the account's time zone`,
    };
  }
  const intervalMs = Number(response.headers.get("x-hubspot-ratelimit-interval-milliseconds"));
  const window = Number.isFinite(intervalMs) && intervalMs > 0 ? intervalMs / 1000 : policy ? THROTTLE_WINDOW_SECONDS[policy] : undefined;
  return {
    type: "rate-limit",
    code: policy ?? "RATE_LIMIT",
    // A Retry-After header wins (the HTTP client reads it); without one, wait out the window.
    ...(header === undefined && window !== undefined ? { retryAfterSeconds: window } : {}),
    message: `HubSpot API rate limit exceeded (${policy ?? "RATE_LIMIT"}) on ${op}`,
  };
}

/**
 * The token endpoint's answer beyond RFC 6749 (changelog 2025-08-18, and the
 * 2026-03 reference): `hub_id`, `scopes` as an array, `user_id`, `token_use`.
 */
const tokenExtrasSchema = z.looseObject({
  hub_id: z.number().int().positive().optional(),
  scopes: z.array(z.string()).optional(),
  user_id: z.number().int().optional(),
});

/** Adds HubSpot's own fields of a validated token answer to the grant. */
export function hubspotGrant(grant: StandardGrant): TokenGrant {
  const extras = tokenExtrasSchema.safeParse(grant.body);
  const hubId = extras.success ? extras.data.hub_id : undefined;
  const scopes = extras.success && extras.data.scopes ? extras.data.scopes : grant.scopes;
  return {
    accessToken: grant.accessToken,
    ...(grant.refreshToken ? { refreshToken: grant.refreshToken } : {}),
    ...(grant.expiresInSeconds !== undefined ? { expiresInSeconds: grant.expiresInSeconds } : {}),
    scopes,
    metadata: hubId !== undefined ? { hubId } : {},
  };
}

/** GET /account-info/v3/details. Every field is required in HubSpot's schema; only portalId is relied on. */
const accountDetailsSchema = z.looseObject({
  portalId: z.number().int().positive(),
  accountType: z.string().optional(),
  timeZone: z.string().optional(),
  companyCurrency: z.string().optional(),
  utcOffset: z.string().optional(),
  uiDomain: z.string().optional(),
  dataHostingLocation: z.string().optional(),
  portalName: z.string().optional(), // 2027-03 beta
});

/** POST /oauth/2026-03/token/introspect (2026-03 reference; RFC 7662: an inactive token is just `{"active": false}`). */
const introspectionSchema = z.looseObject({
  active: z.boolean(),
  hub_id: z.number().int().positive().optional(),
  scopes: z.array(z.string()).optional(),
  hub_domain: z.string().optional(),
  user: z.string().optional(),
  user_id: z.number().int().optional(),
  app_id: z.number().int().optional(),
  expires_in: z.number().optional(),
});

/**
 * Private app access tokens (legacy private apps): `pat-<hublet>-<uuid>`.
 * The hublet is the data centre (na1, na2, eu1, ap1, ...). The character
 * class follows the scanners' pattern (trufflehog), which is wider than hex.
 */
const PRIVATE_APP_TOKEN = /^pat-[a-z]{2}\d-[A-Za-z0-9]{8}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{12}$/;
/** OAuth refresh tokens: region-prefixed, `na1-ab12-cd34-ef56-gh78-abcdef123456`. */
const REFRESH_TOKEN = /^[a-z]{2}\d-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{12}$/;
/** The shape of the sunset API keys (and of client secrets and developer keys): a bare UUID. */
const BARE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseHubSpotToken(input: { apiKey?: string; accessToken?: string }): ParsedApiKey<HubSpotAuthMethod> {
  if (input.apiKey !== undefined && input.accessToken !== undefined) {
    throw invalidInput("accessToken", "give a HubSpot private app access token as accessToken (or apiKey), not both", "hubspot");
  }
  const field = input.accessToken !== undefined ? "accessToken" : "apiKey";
  const token = input.accessToken ?? input.apiKey;
  if (token === undefined) throw invalidInput("accessToken", "accessToken is required: a HubSpot private app access token (pat-na1-...)", "hubspot");
  if (PRIVATE_APP_TOKEN.test(token)) return { token, authMethod: "private_app_token" };
  if (REFRESH_TOKEN.test(token)) {
    throw invalidInput(field, "that is an OAuth refresh token; connect through OAuth, or give a private app access token (pat-na1-...)", "hubspot");
  }
  if (BARE_UUID.test(token)) {
    throw invalidInput(field, "HubSpot API keys (hapikey) were sunset on 2022-11-30; give a private app access token (pat-na1-...) instead", "hubspot");
  }
  throw invalidInput(
    field,
    "not a HubSpot private app access token: expected pat-<region>-<uuid>, e.g. pat-na1-... (OAuth access tokens expire after 30 minutes: connect those through OAuth)",
    "hubspot",
  );
}

/** The introspection endpoint sits under the token endpoint, in every version (2026-03, v3). */
export function introspectionUrl(tokenUrl: string): string {
  return `${tokenUrl.replace(/\/+$/, "")}/introspect`;
}

function unparsable(what: string): IntegrationError {
  return new IntegrationError({ type: "upstream", provider: "hubspot", code: ErrorCodes.UNPARSABLE_RESPONSE, message: `HubSpot's ${what} answer is not the documented shape` });
}

async function introspect(send: CallSender, settings: ConnectorSettings, accessToken: string): Promise<z.infer<typeof introspectionSchema>> {
  const response = await send({
    operation: "POST /oauth/2026-03/token/introspect",
    method: "POST",
    url: introspectionUrl(settings.endpoints.tokenUrl),
    // The client authenticates with its secret; every parameter in the form body (the 2026-03 endpoints read nothing from the query).
    authorize: false,
    form: { client_id: settings.clientId, client_secret: settings.clientSecret, token: accessToken, token_type_hint: "access_token" },
    idempotent: true, // a read, despite the POST
    secrets: [settings.clientSecret],
  });
  const parsed = introspectionSchema.safeParse(response.json);
  if (!parsed.success) throw unparsable("token introspection");
  if (!parsed.data.active) {
    throw new IntegrationError({
      type: "auth",
      code: INACTIVE_TOKEN,
      provider: "hubspot",
      message: "HubSpot's token introspection says the access token is no longer active (expired or revoked)",
    });
  }
  return parsed.data;
}

export const hubspotConnector: ConnectorDefinition<HubSpotAuthMethod, typeof hubspotMetadataSchema> = {
  metadataSchema: hubspotMetadataSchema,
  id: "hubspot",
  displayName: "HubSpot",
  authMethods: ["oauth2", "private_app_token"],
  oauthAuthMethod: "oauth2",
  liveEndpoints: {
    // The consent page lives on app.hubspot.com, the API on api.hubapi.com.
    authorizeUrl: "https://app.hubspot.com/oauth/authorize",
    tokenUrl: "https://api.hubapi.com/oauth/2026-03/token",
    revokeUrl: "https://api.hubapi.com/oauth/2026-03/token/revoke",
    apiUrl: "https://api.hubapi.com",
  },
  options: {
    OPTIONAL_SCOPES: {
      default: "",
      pattern: /^[a-z][a-z0-9._-]*([ ,]+[a-z][a-z0-9._-]*)*$/,
      description: "scopes HubSpot may drop when the account lacks the product, space- or comma-separated (sent as optional_scope)",
    },
  },
  pkce: false,
  // `oauth` is what the account-info test call needs; every scope checked as required in the app's settings must be listed too.
  defaultScopes: ["oauth", "crm.objects.contacts.read"],
  requiredMetadata: ["hubId"],
  // The burst limit (100 or 190 calls in 10 s) is each private app's own, not the hub's: paced as the hub,
  // a hub's private apps would share one app's budget. The daily limit is the hub's, shared by its private
  // apps: a daily hold learnt on one connection costs each other one refused call an hour.
  paceOwnBudget: (target) => target.authMethod === "private_app_token",
  accountLabel: ["hubDomain", "hubId"],
  retryPolicy: hubspotRetryPolicy,
  rateLimit: hubspotRateLimit,
  classify: classifyHubSpot,

  authorizationParams(settings) {
    const optional = (settings.options.OPTIONAL_SCOPES ?? "").split(/[\s,]+/).filter(Boolean);
    return {
      client_id: settings.clientId,
      // Space-separated (URL-encoded), unlike Slack's commas.
      scope: settings.scopes.join(" "),
      redirect_uri: settings.redirectUri,
      ...(optional.length > 0 ? { optional_scope: optional.join(" ") } : {}),
    };
  },

  async exchangeCode(ctx, input) {
    // client_id and client_secret in the form body, as the 2026-03 endpoints require.
    return hubspotGrant(await exchangeCodeStandard(ctx, { code: input.code, clientAuth: "client_secret_post", ...(input.codeVerifier ? { codeVerifier: input.codeVerifier } : {}) }));
  },

  async refreshToken(ctx, refreshToken) {
    // The refresh token does not rotate, so repeating a refresh whose answer was lost is safe.
    return hubspotGrant(await refreshStandard(ctx, { refreshToken, clientAuth: "client_secret_post", idempotent: true }));
  },

  async revoke(ctx, input) {
    // A private app token is rotated or deleted by an admin in HubSpot's settings; no API revokes it.
    if (input.connection.authMethod !== "oauth2" || !input.refreshToken || !ctx.settings.endpoints.revokeUrl) return "not_supported";
    const { settings } = ctx;
    // Revokes the refresh token: no new access token can be minted. HubSpot does not revoke access
    // tokens already issued; the last one stops working when it expires (30 minutes at most).
    await ctx.http.send({
      operation: "POST /oauth/2026-03/token/revoke",
      method: "POST",
      url: settings.endpoints.revokeUrl as string,
      form: { client_id: settings.clientId, client_secret: settings.clientSecret, token: input.refreshToken, token_type_hint: "refresh_token" },
      idempotent: true,
      expectJson: false,
      secrets: [settings.clientSecret, input.refreshToken, input.accessToken],
    });
    return "revoked";
  },

  parseApiKey: parseHubSpotToken,

  // HubSpot answers an expired or unknown token with 401; the introspection's `active: false` means the same.
  isTokenRejection: (error) => error.status === 401 || error.code === INACTIVE_TOKEN,

  // An OAuth token's user, app and scopes are told only by introspection, which also says whether it is still active.
  async describeGrant(send, credential, _identity, settings) {
    if (credential.authMethod !== "oauth2") return {};
    const token = await introspect(send, settings, credential.accessToken);
    const hubDomain = token.hub_domain || undefined;
    return {
      ...(hubDomain ? { metadata: { hubDomain } } : {}),
      ...(token.scopes ? { scopes: token.scopes } : {}),
      summary: {
        hubDomain,
        user: token.user,
        userId: token.user_id === undefined ? undefined : String(token.user_id),
        appId: token.app_id === undefined ? undefined : String(token.app_id),
      },
    };
  },

  whoAmI: {
    request: () => ({ operation: "GET /account-info/v3/details", method: "GET", path: "/account-info/v3/details" }),
    process(response): Identity {
      const parsed = accountDetailsSchema.safeParse(response.json);
      if (!parsed.success) throw unparsable("/account-info/v3/details");
      const account = parsed.data;
      return {
        metadata: { hubId: account.portalId },
        summary: {
          hubId: String(account.portalId),
          accountType: account.accountType,
          portalName: account.portalName,
          timeZone: account.timeZone,
          companyCurrency: account.companyCurrency,
          uiDomain: account.uiDomain,
          dataHostingLocation: account.dataHostingLocation,
        },
      };
    },
  },
};
