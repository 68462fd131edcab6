/**
 * A local HubSpot: the consent page (app.hubspot.com's paths) and the API
 * with its OAuth endpoints (api.hubapi.com's paths) at the root of one
 * origin, so @hubspot/api-client pointed at it (`basePath`) works unchanged.
 *
 *   GET  /oauth/authorize                   consent, auto-approved: 302 to redirect_uri?code&state
 *   GET  /oauth/{portalId}/authorize        the account-specific form of the same page
 *                                           (a "Couldn't complete the connection" page, no redirect, for a bad
 *                                           client_id, redirect_uri or scope; `_sandbox_decision=deny` redirects
 *                                           with error=access_denied)
 *   POST /oauth/2026-03/token               code exchange and refresh (also /oauth/v3/token, and the legacy
 *                                           /oauth/v1/token, whose errors carry only the legacy `status`)
 *   POST /oauth/2026-03/token/introspect    RFC 7662 introspection (also /oauth/v3/...)
 *   POST /oauth/2026-03/token/revoke        revokes a refresh token (also /oauth/v3/...)
 *   GET  /account-info/v3/details           the account of the token (also /account-info/2026-03/details)
 *   POST /crm/v3/objects/contacts           creates a contact (crm.objects.contacts.write): 201, 409 CONFLICT on a known email
 *   GET  /crm/v3/objects/contacts/{id}      one contact (crm.objects.contacts.read; `properties`, `idProperty=email`)
 *   GET  /crm/v3/objects/contacts           the contacts, `limit` (10, at most 100) and `after` from paging.next.after
 *   POST /crm/v3/objects/contacts/search    CRM search (crm.objects.contacts.read): filterGroups, query, properties,
 *                                           sorts, limit (10, at most 200), after (an offset); {total, results, paging?}
 *                                           (sandboxSearch.ts)
 *
 * Errors come as HubSpot sends them: API errors as `{status:"error", message,
 * correlationId, category, ...}` with `X-HubSpot-Correlation-Id`; token
 * endpoint errors as RFC 6749 `error`/`error_description` with the legacy
 * `status`/`message` kept; throttling as 429 `{errorType:"RATE_LIMIT",
 * policyName}` with the `X-HubSpot-RateLimit-*` headers.
 *
 * Behaviour (providers.md §2): access tokens last `accessTokenTtlSeconds`
 * (1800 by default); refresh tokens do not rotate (a refresh answers the
 * same one, `tokenRotation` is ignored); revoking a refresh token leaves the
 * access tokens already issued working until they expire; a replayed code
 * ends every token of its install. Private app tokens never expire, and the
 * revoke endpoint does not end them.
 */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { escapeHtml } from "../shared/html.js";
import { authorizationServer, authorizationState, type CodeRefusal, type IssuedToken } from "../../sandbox/authorizationServer.js";
import { parseSearch, runSearch } from "./sandboxSearch.js";
import {
  bearerToken,
  bodyParams,
  queryParams,
  randomChars,
  restoreState,
  startSandbox,
  type SandboxApp,
  type SandboxDefinition,
  type SandboxOptions,
  type StartedSandbox,
} from "../../sandbox/kit.js";

/** HubSpot access tokens last 30 minutes (since November 2021). */
const ACCESS_TOKEN_TTL_SECONDS = 1800;
/** The rolling window of the burst limit, and its size (the documented floor for OAuth apps and Free/Starter private apps). */
const WINDOW_MS = 10_000;
const WINDOW_MAX = 100;
/** Private apps also have a daily limit (Free/Starter); OAuth apps have none and get no Daily headers. */
const DAILY_MAX = 250_000;
/** A 477 without a Retry-After asked for: HubSpot says migrations may take up to a day; five minutes keeps demos short. */
const MIGRATION_RETRY_AFTER_SECONDS = 300;

const HEX = "0123456789abcdef";
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const SCOPE_NAME = /^[a-z][a-z0-9._-]*$/;

export const RATE_LIMIT_FAULTS = ["TEN_SECONDLY_ROLLING", "SECONDLY", "DAILY", "MIGRATION_IN_PROGRESS"] as const;
export type HubSpotRateLimitFault = (typeof RATE_LIMIT_FAULTS)[number];

export type HubSpotSandboxOptions = SandboxOptions & {
  /** Ignored: HubSpot refresh tokens do not rotate, whatever the app. Accepted so one option set fits every sandbox. */
  tokenRotation?: boolean;
  /** What the `rate-limit` fault answers: a 429 of this policy, or a 477 Migration in Progress. Default TEN_SECONDLY_ROLLING. */
  rateLimitFault?: HubSpotRateLimitFault;
};

type Portal = { id: number; domain: string; userEmail: string; userId: number };
/** An app's install on the portal: the scopes consented to; a private app's own grant also holds its app id (its rate-limit bucket). */
type HubGrant = { scopes: string[]; privateAppId?: number };
/** Access tokens expire; refresh tokens never do (nor rotate); private app tokens never expire and the revoke endpoint cannot end them. */
type TokenKind = "access" | "refresh" | "private_app";
type Token = IssuedToken<HubGrant, TokenKind>;
/** A CRM contact: every property as a string, the system ones (createdate, lastmodifieddate, hs_object_id) included. */
type Contact = { id: string; properties: Record<string, string>; createdAt: string; updatedAt: string };

const credentialRequest = z.strictObject({
  scopes: z.array(z.string().regex(SCOPE_NAME)).max(100).optional(),
});

/** RFC 6749 §5.2 codes with the legacy statuses HubSpot keeps beside them (providers.md §2.1). */
type OAuthFailure = { error: string; description: string; legacy?: string };

const invalidGrant = (description: string, legacy?: string): OAuthFailure => ({ error: "invalid_grant", description, legacy });
const BAD_REDIRECT_URI = invalidGrant("redirect_uri does not match the one the code was issued for", "BAD_REDIRECT_URI");
const BAD_VERIFIER = invalidGrant("code_verifier does not match the code_challenge");
/** How the token endpoint refuses a code. Codes are not bound to a client (one app, checked before the code). */
const CODE_REFUSED: Record<CodeRefusal, OAuthFailure> = {
  unknown: invalidGrant("missing or unknown auth code", "BAD_AUTH_CODE"),
  client_mismatch: invalidGrant("missing or unknown auth code", "BAD_AUTH_CODE"),
  reused: invalidGrant("auth code has already been used", "BAD_AUTH_CODE"),
  expired: invalidGrant("auth code is expired", "EXPIRED_AUTH_CODE"),
  redirect_uri_missing: BAD_REDIRECT_URI,
  redirect_uri_mismatch: BAD_REDIRECT_URI,
  verifier_missing: BAD_VERIFIER,
  verifier_mismatch: BAD_VERIFIER,
  // OAuth 2.1 §4.1.3: a verifier for a code minted without a challenge is refused.
  verifier_unexpected: invalidGrant("code_verifier given for an auth code issued without code_challenge"),
  // Not reached: HubSpot makes no check of its own after the standard ones.
  provider_refused: invalidGrant("missing or unknown auth code", "BAD_AUTH_CODE"),
};
const BAD_REFRESH_TOKEN = invalidGrant("refresh token is invalid, expired or revoked", "BAD_REFRESH_TOKEN");

export function hubspotSandbox(options: HubSpotSandboxOptions, app: SandboxApp, restored?: unknown) {
  const rateLimitFault = options.rateLimitFault ?? "TEN_SECONDLY_ROLLING";
  if (!RATE_LIMIT_FAULTS.includes(rateLimitFault)) throw new Error(`rateLimitFault must be one of ${RATE_LIMIT_FAULTS.join(", ")}`);
  const accessTtlMs = (options.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS) * 1000;
  const redirectUris = options.redirectUris ?? [];
  const digits = (n: number): number => Number(`${1 + Math.floor(Math.random() * 9)}${randomChars(n - 1, "0123456789")}`);
  const state = restoreState(restored, () => ({
    portal: { id: digits(8), domain: "sandbox.autoflow.invalid", userEmail: "owner@sandbox.autoflow.invalid", userId: digits(8) } as Portal,
    appId: digits(7),
    authorization: authorizationState<HubGrant, TokenKind, { scopes: string[] }>(),
    /** The portal's contacts by id, in the order they were made (HubSpot's ids grow). */
    contacts: new Map<string, Contact>(),
    nextContactId: digits(5),
  }));
  const { portal, appId, contacts } = state;
  // HubSpot does not document a code's lifetime: the kit's ten minutes (RFC 6749 §4.1.2's ceiling).
  const auth = authorizationServer(state.authorization, { now: () => Date.now() });
  /** Request times per rate-limit bucket (the OAuth app, or one private app), for the X-HubSpot-RateLimit-* headers. */
  const windows = new Map<string, number[]>();
  const daily = new Map<string, { day: string; count: number }>();

  const uuid = (): string => randomUUID();
  /** `narrowed`: the scopes a refresh asked for, when it named any. */
  const mintAccess = (grant: HubGrant, narrowed?: string[]): string => {
    // Opaque, base64url-ish and long (HubSpot: allow for up to 300 characters).
    const token = `C${randomChars(1, "IJKLMNOP")}${randomChars(150, BASE64URL)}`;
    const minted = auth.mint(token, "access", grant, accessTtlMs);
    if (narrowed) minted.scopes = narrowed;
    return token;
  };
  const mintRefresh = (grant: HubGrant): string => {
    const token = `na1-${randomChars(4, HEX)}-${randomChars(4, HEX)}-${randomChars(4, HEX)}-${randomChars(4, HEX)}-${randomChars(12, HEX)}`;
    auth.mint(token, "refresh", grant);
    return token;
  };
  const scopesOf = (token: Token): string[] => token.scopes ?? token.grant.scopes;

  /** Every answer carries X-HubSpot-Correlation-Id: the body's correlationId when it has one. */
  const json = (res: FastifyReply, status: number, body: Record<string, unknown>): FastifyReply =>
    res
      .code(status)
      .header("content-type", "application/json;charset=utf-8")
      .header("x-hubspot-correlation-id", typeof body.correlationId === "string" ? body.correlationId : uuid())
      .send(JSON.stringify(body));
  /** HubSpot's API error body; every field but `status` and `message` may be missing. */
  const apiError = (res: FastifyReply, status: number, message: string, extra: Record<string, unknown> = {}): FastifyReply =>
    json(res, status, { status: "error", message, correlationId: uuid(), ...extra });
  const oauthError = (res: FastifyReply, failure: OAuthFailure, legacyOnly: boolean): FastifyReply => {
    if (legacyOnly) {
      // v1: the legacy status where HubSpot has one, else its generic error shape.
      return json(res, 400, failure.legacy ? { status: failure.legacy, message: failure.description } : { status: "error", message: failure.description, correlationId: uuid(), category: "VALIDATION_ERROR" });
    }
    return json(res, 400, {
      error: failure.error,
      error_description: failure.description,
      ...(failure.legacy ? { status: failure.legacy } : {}),
      message: failure.description,
      correlationId: uuid(),
    });
  };

  const NO_CREDENTIALS =
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview";
  const unauthenticated = (res: FastifyReply, message: string, category: string, extra: Record<string, unknown> = {}): FastifyReply =>
    apiError(res.header("x-hubspot-auth-failure", "401 Unauthorized"), 401, message, { category, ...extra });

  /** "expired 12 second(s) ago", as HubSpot words it. */
  const ago = (ms: number): string => {
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s} second(s)`;
    if (s < 3600) return `${Math.floor(s / 60)} minute(s)`;
    if (s < 86_400) return `${Math.floor(s / 3600)} hour(s)`;
    return `${Math.floor(s / 86_400)} day(s)`;
  };

  /** Resolves the bearer token of an API call, or answers HubSpot's 401. */
  const authenticate = (request: FastifyRequest, res: FastifyReply): { token: Token; scopes: string[] } | undefined => {
    const checked = auth.verify(bearerToken(request), ["access", "private_app"]);
    if (checked.ok) return { token: checked.token, scopes: scopesOf(checked.token) };
    const expiresAt = checked.token?.expiresAt;
    if (checked.reason === "expired" && expiresAt !== undefined) {
      unauthenticated(res, `The OAuth token used to make this call expired ${ago(auth.now() - expiresAt)} ago.`, "EXPIRED_AUTHENTICATION", {
        context: { "expire time": [new Date(expiresAt).toISOString()] },
      });
    } else {
      unauthenticated(res, NO_CREDENTIALS, "INVALID_AUTHENTICATION");
    }
    return undefined;
  };

  /** Counts the call in its bucket and sets the rate-limit headers HubSpot sends (Daily only for private apps). */
  const rateLimitHeaders = (res: FastifyReply, token: Token): void => {
    const privateAppId = token.kind === "private_app" ? token.grant.privateAppId : undefined;
    const bucket = privateAppId !== undefined ? `pat:${privateAppId}` : `oauth:${app.clientId}`;
    const now = Date.now();
    const recent = (windows.get(bucket) ?? []).filter((t) => now - t < WINDOW_MS);
    recent.push(now);
    windows.set(bucket, recent);
    res
      .header("x-hubspot-ratelimit-interval-milliseconds", String(WINDOW_MS))
      .header("x-hubspot-ratelimit-max", String(WINDOW_MAX))
      .header("x-hubspot-ratelimit-remaining", String(Math.max(0, WINDOW_MAX - recent.length)));
    if (privateAppId !== undefined) {
      // The sandbox portal's time zone is UTC, so its day is the UTC day.
      const day = new Date(now).toISOString().slice(0, 10);
      const used = daily.get(bucket)?.day === day ? (daily.get(bucket)?.count ?? 0) + 1 : 1;
      daily.set(bucket, { day, count: used });
      res.header("x-hubspot-ratelimit-daily", String(DAILY_MAX)).header("x-hubspot-ratelimit-daily-remaining", String(Math.max(0, DAILY_MAX - used)));
    }
  };

  /** The consent page's error, shown in the browser and never redirected. */
  const errorPage = (res: FastifyReply, detail: string): FastifyReply =>
    res
      .code(400)
      .type("text/html; charset=utf-8")
      .send(
        `<!DOCTYPE html><html><head><title>HubSpot</title></head><body><h1>Couldn’t complete the connection</h1>` +
          `<p>${escapeHtml(detail)}</p></body></html>`,
      );

  /** Client authentication: client_id and client_secret in the form body (the 2026-03 endpoints read nothing else). */
  const checkClient = (p: Record<string, string>): OAuthFailure | undefined => {
    if (!p.client_id || p.client_id !== app.clientId) return { error: "invalid_client", description: "missing or unknown client id", legacy: "BAD_CLIENT_ID" };
    if (p.client_secret !== app.clientSecret) return { error: "invalid_client", description: "missing or invalid client secret" };
    return undefined;
  };
  const isForm = (request: FastifyRequest): boolean => (request.headers["content-type"] ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded");

  const tokenBody = (accessToken: string, refreshToken: string, scopes: string[]) => ({
    token_type: "bearer",
    refresh_token: refreshToken,
    access_token: accessToken,
    expires_in: Math.round(accessTtlMs / 1000),
    hub_id: portal.id,
    scopes,
    user_id: portal.userId,
    token_use: "access_token",
  });

  /** The grant behind a token request, or the RFC 6749 failure HubSpot answers. */
  const grant = (p: Record<string, string>): { body: Record<string, unknown> } | { failure: OAuthFailure } => {
    if (p.grant_type === "authorization_code") {
      // The redirect URI must be named again; a replayed code also revokes what it granted (RFC 6749 §4.1.2).
      const redeemed = auth.redeemCode(p.code, { redirectUri: p.redirect_uri, verifier: p.code_verifier });
      if (!redeemed.ok) return { failure: CODE_REFUSED[redeemed.reason] };
      const { scopes } = redeemed.code.data;
      const installed = auth.grantFromCode(redeemed.code, { scopes });
      return { body: tokenBody(mintAccess(installed), mintRefresh(installed), scopes) };
    }
    if (p.grant_type === "refresh_token") {
      // Refresh tokens never expire; revoking one (or revoke-all, or its code's replay) ends it.
      const checked = auth.verify(p.refresh_token, ["refresh"]);
      if (!checked.ok) return { failure: BAD_REFRESH_TOKEN };
      const installed = checked.token.grant;
      // Not rotated: the same refresh token comes back and keeps working.
      if (p.scope === undefined) return { body: tokenBody(mintAccess(installed), checked.value, installed.scopes) };
      // A narrower set may be asked for; never a wider one.
      const scopes = p.scope.split(" ").filter(Boolean);
      const extra = scopes.filter((s) => !installed.scopes.includes(s));
      if (scopes.length === 0 || extra.length > 0) return { failure: { error: "invalid_scope", description: `scope exceeds the grant: ${extra.join(" ")}` } };
      return { body: tokenBody(mintAccess(installed, scopes), checked.value, scopes) };
    }
    if (p.grant_type === "client_credentials") {
      return { failure: { error: "unauthorized_client", description: "client_credentials is only available to apps using the webhooks journal" } };
    }
    if (!p.grant_type) return { failure: { error: "invalid_request", description: "missing grant_type" } };
    return { failure: { error: "unsupported_grant_type", description: `unsupported grant_type: ${p.grant_type.slice(0, 40)}` } };
  };

  /** POST token: `legacy` is the v1 endpoint (parameters also from the query, errors with the legacy status only). */
  const tokenRoute = (legacy: boolean) => async (request: FastifyRequest, res: FastifyReply) => {
    if (!isForm(request)) return oauthError(res, { error: "invalid_request", description: "Content-Type must be application/x-www-form-urlencoded" }, legacy);
    const p = legacy ? { ...queryParams(request), ...bodyParams(request) } : bodyParams(request);
    const client = checkClient(p);
    if (client) return oauthError(res, client, legacy);
    const outcome = grant(p);
    if ("failure" in outcome) return oauthError(res, outcome.failure, legacy);
    return json(res.header("cache-control", "no-store"), 200, outcome.body);
  };

  const introspectRoute = async (request: FastifyRequest, res: FastifyReply) => {
    if (!isForm(request)) return oauthError(res, { error: "invalid_request", description: "Content-Type must be application/x-www-form-urlencoded" }, false);
    const p = bodyParams(request);
    const client = checkClient(p);
    if (client) return oauthError(res, client, false);
    if (!p.token) return oauthError(res, { error: "invalid_request", description: "missing token" }, false);
    // RFC 7662 §2.2: unknown, revoked, expired and other clients' (private apps') tokens are all just inactive.
    const checked = auth.verify(p.token, ["access", "refresh"]);
    if (!checked.ok) return json(res, 200, { active: false });
    const { token } = checked;
    const common = {
      active: true,
      token: p.token,
      hub_id: portal.id,
      user_id: portal.userId,
      client_id: app.clientId,
      app_id: appId,
      scopes: scopesOf(token),
      user: portal.userEmail,
      hub_domain: portal.domain,
    };
    if (token.kind === "refresh") return json(res, 200, { ...common, token_use: "refresh_token", token_type: "refresh" });
    return json(res, 200, {
      token_use: "access_token",
      ...common,
      signed_access_token: {
        appId,
        expiresAt: token.expiresAt,
        hubId: portal.id,
        hublet: "na1",
        installingUserId: portal.userId,
        isPrivateDistribution: true,
        isServiceAccount: false,
        isUserLevel: false,
        newSignature: randomChars(43, BASE64URL),
        scopes: randomChars(24, BASE64URL),
        signature: randomChars(28, BASE64URL),
        userId: portal.userId,
      },
      expires_in: auth.secondsLeft(token),
      is_private_distribution: true,
      token_type: "bearer",
    });
  };

  const revokeRoute = async (request: FastifyRequest, res: FastifyReply) => {
    if (!isForm(request)) return oauthError(res, { error: "invalid_request", description: "Content-Type must be application/x-www-form-urlencoded" }, false);
    const p = bodyParams(request);
    const client = checkClient(p);
    if (client) return oauthError(res, client, false);
    if (!p.token) return oauthError(res, { error: "invalid_request", description: "missing token" }, false);
    // The token itself only: access tokens minted from a revoked refresh token keep working until they expire.
    // An unknown token is not an error (RFC 7009 §2.2); a private app token is not ended here.
    if (auth.find(p.token)?.kind !== "private_app") auth.revokeToken(p.token);
    return res.code(200).header("x-hubspot-correlation-id", uuid()).send();
  };

  const accountDetails = async (request: FastifyRequest, res: FastifyReply) => {
    const caller = authenticate(request, res);
    if (!caller) return res;
    rateLimitHeaders(res, caller.token);
    // The account-info API asks OAuth tokens for the `oauth` scope; private app tokens need none.
    if (caller.token.kind === "access" && !caller.scopes.includes("oauth")) {
      return apiError(res, 403, "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.", {
        errors: [{ message: "One or more of the following scopes are required.", context: { requiredScopes: ["oauth"] } }],
        links: { scopes: "https://developers.hubspot.com/scopes" },
        category: "MISSING_SCOPES",
      });
    }
    return json(res, 200, {
      portalId: portal.id,
      accountType: "STANDARD",
      timeZone: "UTC",
      companyCurrency: "USD",
      additionalCurrencies: [],
      utcOffset: "+00:00",
      utcOffsetMilliseconds: 0,
      uiDomain: "app.hubspot.com",
      dataHostingLocation: "na1",
    });
  };

  const authorize = async (request: FastifyRequest, res: FastifyReply) => {
    const q = queryParams(request);
    if (!q.client_id || q.client_id !== app.clientId) return errorPage(res, "An invalid app client_id was provided. Please contact the app developer.");
    if (!q.redirect_uri || !redirectUris.includes(q.redirect_uri)) {
      return errorPage(res, `Authorization failed as the redirect URL '${q.redirect_uri ?? ""}' doesn't match the app's registered redirect URL`);
    }
    // Scopes are space-separated (a '+' in the query decodes to a space too).
    const required = (q.scope ?? "").split(" ").filter(Boolean);
    const optional = (q.optional_scope ?? "").split(" ").filter(Boolean);
    if (required.length === 0 || ![...required, ...optional].every((s) => SCOPE_NAME.test(s))) {
      return errorPage(res, "An invalid scope name was provided. Please contact the app developer.");
    }
    // A challenge without a method would be `plain` (RFC 7636 §4.3), which is not offered.
    if (q.code_challenge !== undefined && q.code_challenge_method !== "S256") return errorPage(res, "code_challenge_method must be S256.");
    const target = new URL(q.redirect_uri);
    if (q._sandbox_decision === "deny") {
      target.searchParams.set("error", "access_denied");
      target.searchParams.set("error_description", "The user declined to install the app");
    } else {
      const code = uuid();
      // The sandbox account has every product, so every optional scope is granted.
      const scopes = [...new Set([...required, ...optional])];
      auth.issueCode(code, { scopes }, { redirectUri: q.redirect_uri, ...(q.code_challenge ? { pkce: { challenge: q.code_challenge, method: "S256" } } : {}) });
      target.searchParams.set("code", code);
    }
    if (q.state !== undefined) target.searchParams.set("state", q.state);
    return res.redirect(target.toString(), 302);
  };

  const definition: SandboxDefinition = {
    provider: "hubspot",
    state,
    browserPaths: ["/oauth/authorize", `/oauth/${portal.id}/authorize`],
    endpoints: (origin) => ({
      authorizeUrl: `${origin}/oauth/authorize`,
      tokenUrl: `${origin}/oauth/2026-03/token`,
      revokeUrl: `${origin}/oauth/2026-03/token/revoke`,
      apiUrl: origin,
    }),
    faults: {
      rateLimit: (res, fault, enforced) => {
        // An enforced rate is a burst limit: its 429 names the policy of the nearest window, and its headers
        // are the enforced window's (set by rateLimitHeaders below as the answer leaves).
        const policy: HubSpotRateLimitFault = enforced ? (enforced.windowMs <= 1000 ? "SECONDLY" : "TEN_SECONDLY_ROLLING") : rateLimitFault;
        // HubSpot documents Retry-After only for 477; the sandbox adds one to a 429 when an injected fault asks for it.
        if (policy === "MIGRATION_IN_PROGRESS") {
          return apiError(res.header("retry-after", String(Math.ceil(fault.retryAfterSeconds ?? MIGRATION_RETRY_AFTER_SECONDS))), 477, "This account is being migrated to another data hosting location; retry after the time given in Retry-After.");
        }
        if (!enforced && fault.retryAfterSeconds !== undefined) res.header("retry-after", String(Math.ceil(fault.retryAfterSeconds)));
        if (policy === "DAILY") {
          res.header("x-hubspot-ratelimit-daily", String(DAILY_MAX)).header("x-hubspot-ratelimit-daily-remaining", "0");
        } else {
          res
            .header("x-hubspot-ratelimit-interval-milliseconds", String(policy === "SECONDLY" ? 1000 : WINDOW_MS))
            .header("x-hubspot-ratelimit-max", String(WINDOW_MAX))
            .header("x-hubspot-ratelimit-remaining", "0");
        }
        const message =
          policy === "DAILY"
            ? "You have reached your daily limit."
            : policy === "SECONDLY"
              ? "You have reached your secondly limit."
              : "You have reached your ten_secondly_rolling limit.";
        return json(res, 429, { status: "error", message, errorType: "RATE_LIMIT", correlationId: uuid(), policyName: policy, requestId: randomChars(32, HEX) });
      },
      // HubSpot's 5xx bodies are not documented; this keeps its error shape.
      serverError: (res) => apiError(res, 500, "internal error"),
      badRequest: (res) => apiError(res, 400, "Invalid input JSON on line 1, column 1: Unexpected end of input", { category: "VALIDATION_ERROR" }),
      malformed: (res) => res.code(200).header("content-type", "application/json;charset=utf-8").send(`{"portalId":${portal.id},"accountType":"STAN`),
    },
    // An enforced rate's window in HubSpot's burst headers, replacing the sandbox's own 10-second count under
    // the same names (the Daily headers of private apps are another limit and stay). On every answer it counts.
    rateLimitHeaders: (res, window) => {
      res
        .header("x-hubspot-ratelimit-interval-milliseconds", String(window.windowMs))
        .header("x-hubspot-ratelimit-max", String(window.limit))
        .header("x-hubspot-ratelimit-remaining", String(window.remaining));
    },
    revokeAll: () => auth.revokeAll(),
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      const scopes = parsed.scopes ?? ["crm.objects.contacts.read", "crm.objects.contacts.write"];
      const token = `pat-na1-${uuid()}`;
      const privateAppId = digits(7);
      // Each private app token is its own app's grant.
      auth.mint(token, "private_app", auth.grant({ scopes, privateAppId }));
      return { accessToken: token, hubId: portal.id, appId: privateAppId, scopes };
    },
    routes(server: FastifyInstance) {
      server.get("/oauth/authorize", authorize);
      server.get("/oauth/:portalId/authorize", async (request, res) => {
        const { portalId } = request.params as { portalId: string };
        if (portalId !== String(portal.id)) return errorPage(res, "You don't have access to this HubSpot account.");
        return authorize(request, res);
      });
      for (const version of ["2026-03", "v3"]) {
        server.post(`/oauth/${version}/token`, tokenRoute(false));
        server.post(`/oauth/${version}/token/introspect`, introspectRoute);
        server.post(`/oauth/${version}/token/revoke`, revokeRoute);
      }
      server.post("/oauth/v1/token", tokenRoute(true));
      server.get("/account-info/v3/details", accountDetails);
      server.get("/account-info/2026-03/details", accountDetails);
      /** The API call's token, counted for the rate headers, holding one of `accepted`; otherwise HubSpot's 401 or 403 answered. */
      const caller = (request: FastifyRequest, res: FastifyReply, accepted: string[], windowHeaders = true): Token | undefined => {
        const found = authenticate(request, res);
        if (!found) return undefined;
        if (windowHeaders) rateLimitHeaders(res, found.token);
        if (!accepted.some((scope) => found.scopes.includes(scope))) {
          apiError(res, 403, "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.", {
            errors: [{ message: "One or more of the following scopes are required.", context: { requiredScopes: accepted } }],
            links: { scopes: "https://developers.hubspot.com/scopes" },
            category: "MISSING_SCOPES",
          });
          return undefined;
        }
        return found.token;
      };
      /** What GET answers when no `properties` are asked for. */
      const DEFAULT_CONTACT_PROPERTIES = ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"];
      /** Set by HubSpot on every object, and answered whatever `properties` asks for. */
      const SYSTEM_PROPERTIES = ["createdate", "hs_object_id", "lastmodifieddate"];
      /** The contact properties a sandbox portal has (HubSpot's default ones); any other name is PROPERTY_DOESNT_EXIST. */
      const CONTACT_PROPERTIES = new Set([
        ...SYSTEM_PROPERTIES,
        ...["email", "firstname", "lastname", "phone", "mobilephone", "company", "website", "jobtitle", "address", "city", "state", "zip", "country"],
        ...["lifecyclestage", "hs_lead_status", "hubspot_owner_id", "industry", "annualrevenue", "numemployees", "fax", "message", "date_of_birth", "salutation"],
      ]);
      const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
      const contactBody = (contact: Contact, names: string[]) => ({
        id: contact.id,
        // An asked-for property the contact has no value for is answered as null.
        properties: Object.fromEntries([...new Set([...names, ...SYSTEM_PROPERTIES])].sort().map((name) => [name, contact.properties[name] ?? null])),
        createdAt: contact.createdAt,
        updatedAt: contact.updatedAt,
        archived: false,
      });
      /** `properties=a,b` and `properties=a&properties=b` alike. */
      const askedProperties = (request: FastifyRequest): string[] | undefined => {
        const raw = (request.query as Record<string, unknown>).properties;
        const values = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
        const names = values.flatMap((v) => String(v).split(",")).map((n) => n.trim()).filter(Boolean);
        return names.length > 0 ? names : undefined;
      };
      const validationError = (res: FastifyReply, message: string, extra: Record<string, unknown> = {}): FastifyReply => apiError(res, 400, message, { category: "VALIDATION_ERROR", ...extra });

      server.post("/crm/v3/objects/contacts", async (request, res) => {
        if (!caller(request, res, ["crm.objects.contacts.write"])) return res;
        const body = request.body as { properties?: unknown } | undefined;
        if (!body || typeof body !== "object" || Array.isArray(body) || !body.properties || typeof body.properties !== "object" || Array.isArray(body.properties)) {
          return validationError(res, "Invalid input JSON on line 1, column 2: Cannot build SimplePublicObjectInputForCreate, some of required attributes are not set [properties]");
        }
        const given: Record<string, string> = {};
        const invalid: { isValid: false; message: string; error: string; name: string }[] = [];
        for (const [name, value] of Object.entries(body.properties as Record<string, unknown>)) {
          if (!CONTACT_PROPERTIES.has(name)) {
            invalid.push({ isValid: false, message: `Property "${name}" does not exist`, error: "PROPERTY_DOESNT_EXIST", name });
            continue;
          }
          if (value === null || value === undefined) continue;
          if (typeof value === "object") {
            invalid.push({ isValid: false, message: `${JSON.stringify(value)} is not a valid value for ${name}`, error: "INVALID_OPTION", name });
            continue;
          }
          given[name] = String(value);
        }
        if (given.email !== undefined) {
          // HubSpot keeps addresses in lower case, and one contact per address.
          given.email = given.email.trim().toLowerCase();
          if (!EMAIL.test(given.email)) invalid.push({ isValid: false, message: `Email address ${given.email} is invalid`, error: "INVALID_EMAIL", name: "email" });
        }
        if (invalid.length > 0) return validationError(res, `Property values were not valid: ${JSON.stringify(invalid)}`);
        if (given.email !== undefined) {
          const existing = [...contacts.values()].find((c) => c.properties.email === given.email);
          if (existing) return apiError(res, 409, `Contact already exists. Existing ID: ${existing.id}`, { category: "CONFLICT" });
        }
        const id = String(state.nextContactId++);
        const now = new Date().toISOString();
        const contact: Contact = { id, properties: { ...given, createdate: now, lastmodifieddate: now, hs_object_id: id }, createdAt: now, updatedAt: now };
        contacts.set(id, contact);
        return json(res, 201, contactBody(contact, Object.keys(contact.properties)));
      });

      server.get("/crm/v3/objects/contacts/:contactId", async (request, res) => {
        if (!caller(request, res, ["crm.objects.contacts.read"])) return res;
        const { contactId } = request.params as { contactId: string };
        const q = queryParams(request);
        // idProperty=email reads a contact by its address, as HubSpot allows for unique properties.
        const contact = q.idProperty === "email" ? [...contacts.values()].find((c) => c.properties.email === contactId.toLowerCase()) : contacts.get(contactId);
        if (!contact) return apiError(res, 404, "Object not found.  objectId are usually numeric.", { context: { id: [contactId] }, category: "OBJECT_NOT_FOUND" });
        return json(res, 200, contactBody(contact, askedProperties(request) ?? DEFAULT_CONTACT_PROPERTIES));
      });

      /** HubSpot's `after` is base64 of the next id and a newline ("NTI1Cg==" for 525); a bare id is taken too. */
      const afterCursor = (id: string): string => Buffer.from(`${id}\n`).toString("base64");
      const afterId = (after: string): string => {
        if (/^\d+$/.test(after)) return after;
        return Buffer.from(decodeURIComponent(after), "base64").toString("utf8").trim();
      };
      /** A page of a list: 10 by default, at most 100 (HubSpot's limits for the objects API). */
      const DEFAULT_PAGE = 10;
      const MAX_PAGE = 100;
      server.get("/crm/v3/objects/contacts", async (request, res) => {
        if (!caller(request, res, ["crm.objects.contacts.read"])) return res;
        const q = queryParams(request);
        const limit = q.limit === undefined ? DEFAULT_PAGE : Number(q.limit);
        if (!Number.isInteger(limit) || limit < 1) return validationError(res, `Unable to parse limit: ${q.limit ?? ""}`);
        const size = Math.min(limit, MAX_PAGE);
        const all = [...contacts.values()];
        let start = 0;
        if (q.after !== undefined && q.after !== "") {
          const from = afterId(q.after);
          if (!/^\d+$/.test(from)) return validationError(res, `Invalid after: ${q.after}`);
          // The first contact whose id is the cursor's or later (ids grow, so order is by id).
          start = all.findIndex((c) => Number(c.id) >= Number(from));
          if (start < 0) start = all.length;
        }
        const page = all.slice(start, start + size);
        const next = all[start + size];
        const names = askedProperties(request) ?? DEFAULT_CONTACT_PROPERTIES;
        const link = (after: string): string => {
          const url = new URL(`http://${request.headers.host ?? "localhost"}/crm/v3/objects/contacts`);
          url.searchParams.set("limit", String(size));
          url.searchParams.set("after", after);
          return url.toString();
        };
        return json(res, 200, {
          results: page.map((c) => contactBody(c, names)),
          ...(next ? { paging: { next: { after: afterCursor(next.id), link: link(afterCursor(next.id)) } } } : {}),
        });
      });

      server.post("/crm/v3/objects/contacts/search", async (request, res) => {
        // The search endpoints answer without the X-HubSpot-RateLimit-* headers (providers.md §2.5, a community report).
        if (!caller(request, res, ["crm.objects.contacts.read"], false)) return res;
        const length = Number(request.headers["content-length"] ?? 0) || JSON.stringify(request.body ?? {}).length;
        const search = parseSearch(request.body, length, (name) => CONTACT_PROPERTIES.has(name));
        if ("refused" in search) return validationError(res, search.refused);
        const found = runSearch([...contacts.values()], search);
        const names = search.properties ?? DEFAULT_CONTACT_PROPERTIES;
        return json(res, 200, {
          total: found.total,
          results: found.page.map((c) => contactBody(c, names)),
          // A search's `after` is the next page's offset (HubSpot answers "10", not the objects list's base64 id).
          ...(found.nextAfter !== undefined ? { paging: { next: { after: String(found.nextAfter) } } } : {}),
        });
      });

      // HubSpot's body for an unknown path is not documented; this keeps its error shape.
      server.setNotFoundHandler(async (request, res) => apiError(res, 404, `No route found for ${request.method} ${request.url.split("?")[0]}`, { category: "OBJECT_NOT_FOUND" }));
    },
  };
  return definition;
}

export async function startHubSpotSandbox(options: HubSpotSandboxOptions = {}): Promise<StartedSandbox> {
  // Client ids and secrets are UUIDs at HubSpot.
  const app = { clientId: options.clientId ?? randomUUID(), clientSecret: options.clientSecret ?? randomUUID() };
  return startSandbox("hubspot", options, app, (registered, restored, redirectUris) => hubspotSandbox({ ...options, redirectUris }, registered, restored));
}
