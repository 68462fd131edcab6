/**
 * A local Sentry: the OAuth pages and endpoints of an ApiApplication and the
 * organizations list at Sentry's own paths, at the root of one origin, so a
 * Sentry client pointed at it (or a connection whose base URL is this origin,
 * as for a self-hosted Sentry) works unchanged.
 *
 *   GET  /oauth/authorize/       consent, auto-approved: 302 to redirect_uri?code&state. A missing or unknown
 *                                client_id, redirect_uri or response_type gets Sentry's "Missing or invalid ...
 *                                parameter." page (400, no redirect); an unknown scope redirects with
 *                                error=invalid_scope; `_sandbox_decision=deny` with error=access_denied;
 *                                `_sandbox_organization=<slug>` picks the organization (the first one otherwise)
 *   POST /oauth/token/           code exchange (client secret required, in the body or HTTP Basic but not both;
 *                                codes last ten minutes; redirect URI and PKCE S256 checked, a verifier for a code
 *                                without a challenge ignored; a failed check burns the code) and refresh (both
 *                                tokens rotate; the old ones stop working at once)
 *   GET  /api/0/organizations/   the organizations the token reaches, with X-Sentry-Rate-Limit-* headers and
 *                                a Link header
 *   GET  /api/0/organizations/{org}/issues/            an organization's issues (`query=is:unresolved` and the
 *                                                       like, `project`, `limit`, `cursor`; Link pagination)
 *   GET  /api/0/organizations/{org}/issues/{id}/       one issue; PUT updates it ({status, ...}: event:write)
 *   GET  /api/0/issues/{id}/                           the same, at the older path (and PUT)
 *   GET  /api/0/organizations/{org}/projects/          the organization's projects (one, `sandbox-web`, seeded
 *                                                       with two unresolved issues; `per_page`, `cursor`, Link)
 *   GET  /api/0/projects/{org}/{project}/issues/       a project's issues (the same search, 100 a page,
 *                                                       `statsPeriod`; Link pagination)
 *
 * Without their trailing slash, /oauth/ paths answer Django's APPEND_SLASH
 * 301 and /api/ paths the catch-all's 404 "did you forget a trailing slash?".
 * Errors come as Sentry sends them: the token endpoint's bare
 * `{"error":"<name>"}` (401 with `WWW-Authenticate: Basic realm="oauth"` for
 * invalid_client), the API's DRF `{"detail":"..."}`, and the rate limiter's
 * 429 whose body is the message as a JSON string, served as text/html, with
 * no Retry-After: the wait is in X-Sentry-Rate-Limit-Reset (epoch seconds),
 * next to a Date header read from the same clock.
 *
 * Behaviour (providers.md §2): OAuth access tokens last
 * `accessTokenTtlSeconds` (30 days by default) and every refresh rotates both
 * tokens (`tokenRotation` is ignored: it is not an app setting at Sentry).
 * The credentials desk hands out a user auth token (`sntryu_`), or with
 * `{"type":"org"}` an organization auth token (`sntrys_`, whose payload names
 * this sandbox as its instance).
 *
 * Wire facts: getsentry/sentry src/sentry/web/frontend/{oauth_authorize,oauth_token}.py,
 * models/apitoken.py, api/authentication.py, middleware/ratelimit.py,
 * api/endpoints/catchall.py, utils/security/orgauthtoken_token.py.
 */
import { randomBytes, randomInt } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { escapeHtml } from "../shared/html.js";
import {
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
import { authorizationServer, authorizationState, type CodePresented, type Grant } from "../../sandbox/authorizationServer.js";

/** OAuth access tokens expire after 30 days (apitoken.py DEFAULT_EXPIRATION). */
const ACCESS_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
/** Sentry's default per-caller limit (40 requests a second) and concurrency limit (25). */
const RATE_LIMIT = 40;
const RATE_WINDOW_SECONDS = 1;
const CONCURRENT_LIMIT = 25;
/** Django's never_cache, on every token endpoint answer. */
const NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private";
const HEX = "0123456789abcdef";
const SLUG = /^[a-z0-9][a-z0-9_-]{0,49}$/;

/** settings.SENTRY_SCOPES: an authorization request naming anything else is refused with invalid_scope. */
export const SENTRY_SCOPES = [
  "org:read",
  "org:write",
  "org:admin",
  "org:integrations",
  "org:ci",
  "member:read",
  "member:write",
  "member:admin",
  "member:invite",
  "team:read",
  "team:write",
  "team:admin",
  "project:read",
  "project:write",
  "project:admin",
  "project:releases",
  "project:distribution",
  "event:read",
  "event:write",
  "event:admin",
  "alerts:read",
  "alerts:write",
  "openid",
  "profile",
  "email",
] as const;
/** OrganizationPermission's scopes for GET: what the organizations list asks of user and OAuth tokens. */
const ORG_READ_SCOPES: readonly string[] = ["org:read", "org:write", "org:admin"];
const DEFAULT_TOKEN_SCOPES = ["org:read", "project:read", "event:read"];
/** GroupPermission / OrganizationEventPermission: what reading and updating issues ask of a token. */
const EVENT_READ_SCOPES: readonly string[] = ["event:read", "event:write", "event:admin"];
const EVENT_WRITE_SCOPES: readonly string[] = ["event:write", "event:admin"];
/** The organization issues list answers 25 issues a page unless `limit` asks otherwise, at most 100. */
const ISSUES_PAGE = 25;
const ISSUES_PAGE_MAX = 100;
/** Paginated endpoints answer 100 a page unless `per_page` asks for fewer (api/base.py). */
const PROJECTS_PAGE = 100;
/** The statuses an issue update takes (GroupValidator's `status` choices). */
const UPDATE_STATUSES = ["resolved", "resolvedInNextRelease", "unresolved", "ignored"];
const NOT_FOUND = "The requested resource does not exist";

const NOT_PROVIDED = "Authentication credentials were not provided.";
const PERMISSION_DENIED = "You do not have permission to perform this action.";

export type SentrySandboxOptions = SandboxOptions & {
  /** Ignored: Sentry rotates refresh tokens on every use, whatever the app. Accepted so one option set fits every sandbox. */
  tokenRotation?: boolean;
  /** The sandbox's clock (tests move it to expire codes and tokens). Default Date.now. */
  now?: () => number;
};

type Organization = { id: string; slug: string; name: string; dateCreated: string };
type Project = { id: string; slug: string; name: string; platform: string; organizationId: string; dateCreated: string; issueCount: number };
/** A Group, as Sentry calls an issue: status as the API reports it, times in epoch milliseconds. */
type Group = {
  id: string;
  projectId: string;
  shortNumber: number;
  title: string;
  culprit: string;
  level: "error" | "warning";
  errorType: string;
  errorValue: string;
  status: "unresolved" | "resolved" | "ignored";
  substatus: string | null;
  statusDetails: Record<string, unknown>;
  isBookmarked: boolean;
  isPublic: boolean;
  hasSeen: boolean;
  isSubscribed: boolean;
  count: number;
  userCount: number;
  firstSeen: number;
  lastSeen: number;
};
/**
 * What a token acts with: an OAuth consent's scopes and the organization picked at consent, a user auth token's
 * scopes (every organization of the user), or an organization auth token's org:ci on its organization.
 */
type SentryGrant = { scopes: string[]; organizationId?: string };
/** An ApiToken's access and refresh values (OAuth, rotated together), a user auth token (sntryu_), an OrgAuthToken (sntrys_). */
type TokenKind = "access" | "refresh" | "user" | "org";
/** What an ApiGrant (the code) records of the consent. */
type Consent = { scopes: string[]; organizationId: string };
type Caller = { kind: "api" | "org"; grant: SentryGrant } | { kind: "refused"; detail: string };

const credentialRequest = z.strictObject({
  type: z.enum(["user", "org"]).optional(),
  scopes: z.array(z.enum(SENTRY_SCOPES)).min(1).max(SENTRY_SCOPES.length).optional(),
  organization: z.string().regex(SLUG).optional(),
});

const hex = (bytes: number): string => randomBytes(bytes).toString("hex");
const pathOf = (request: FastifyRequest): string => request.url.split("?")[0] ?? request.url;
const queryOf = (request: FastifyRequest): string => {
  const q = request.url.indexOf("?");
  return q < 0 ? "" : request.url.slice(q);
};
/** Sentry's datetimes: ISO-8601 with microseconds and Z (`2024-11-27T23:20:21.054320Z`). */
const sentryTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
const isForm = (request: FastifyRequest): boolean => (request.headers["content-type"] ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded");

export function sentrySandbox(options: SentrySandboxOptions, app: SandboxApp, restored?: unknown) {
  const now = options.now ?? Date.now;
  const accessTtlMs = (options.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS) * 1000;
  const redirectUris = options.redirectUris ?? [];
  const state = restoreState(restored, () => {
    const created = sentryTime(now() - 400 * 24 * 3600 * 1000);
    return {
      user: { id: String(randomInt(100_000, 9_999_999)), name: "Sandbox User", email: "sandbox.user@autoflow.invalid" },
      organizations: [
        { id: String(randomInt(1_000_000, 9_999_999)), slug: "autoflow-sandbox", name: "AutoFlow Sandbox", dateCreated: created },
        { id: String(randomInt(1_000_000, 9_999_999)), slug: "autoflow-labs", name: "AutoFlow Labs", dateCreated: created },
      ] as Organization[],
      /** ApiGrants (codes), ApiTokens, user and organization auth tokens. */
      authorization: authorizationState<SentryGrant, TokenKind, Consent>(),
      projects: [] as Project[],
      /** Issues by id; ids count up across the whole sandbox, as Sentry's group ids do. */
      groups: new Map<string, Group>(),
      nextGroupId: 4_100_000_000 + randomInt(1_000_000),
    };
  });
  const { user, organizations, projects, groups } = state;
  // ApiGrants expire after ten minutes: the kit's default.
  const auth = authorizationServer(state.authorization, { now });
  // Every organization has a project with two unresolved issues to list and update (a state saved
  // before projects existed gets them on the organizations it has).
  for (const org of organizations) {
    if (projects.some((p) => p.organizationId === org.id)) continue;
    const project: Project = { id: String(randomInt(1_000_000, 9_999_999)), slug: "sandbox-web", name: "sandbox-web", platform: "javascript", organizationId: org.id, dateCreated: org.dateCreated, issueCount: 0 };
    projects.push(project);
    const seeds = [
      { title: "TypeError: Cannot read properties of undefined (reading 'map')", culprit: "components/Dashboard.render", level: "error", errorType: "TypeError", errorValue: "Cannot read properties of undefined (reading 'map')", count: 1243, userCount: 147 },
      { title: "ChunkLoadError: Loading chunk 412 failed.", culprit: "app/routes/checkout", level: "warning", errorType: "ChunkLoadError", errorValue: "Loading chunk 412 failed.", count: 58, userCount: 21 },
    ] as const;
    for (const [i, seed] of seeds.entries()) {
      project.issueCount += 1;
      const id = String(state.nextGroupId++);
      const firstSeen = now() - (30 - i * 10) * 24 * 3600 * 1000;
      groups.set(id, { id, projectId: project.id, shortNumber: project.issueCount, ...seed, status: "unresolved", substatus: "ongoing", statusDetails: {}, isBookmarked: false, isPublic: false, hasSeen: false, isSubscribed: false, firstSeen, lastSeen: now() - (i + 1) * 3600 * 1000 });
    }
  }
  /** This sandbox's origin, once it listens: the `url` an organization token names, and the organizations' links. */
  let origin = "";
  /** Fixed windows of the rate limiter, by caller. */
  const windows = new Map<string, { second: number; count: number }>();

  // ---- answers -----------------------------------------------------------

  const json = (res: FastifyReply, status: number, body: unknown): FastifyReply =>
    res.code(status).header("content-type", "application/json").send(JSON.stringify(body));
  /** DRF's error body; a 401 names the authentication scheme (QuietBasicAuthentication's header). */
  const apiError = (res: FastifyReply, status: number, detail: string): FastifyReply => {
    if (status === 401) res.header("www-authenticate", 'xBasic realm="api"');
    return json(res, status, { detail });
  };
  /** The token endpoint's error: the name and nothing else. */
  const oauthError = (res: FastifyReply, error: string, status = 400): FastifyReply => {
    res.header("cache-control", NEVER_CACHE);
    if (error === "invalid_client") res.header("www-authenticate", 'Basic realm="oauth"');
    return json(res, status, { error });
  };
  /** sentry/oauth-error.html: no redirect, so nothing reaches a redirect URI that was not checked. */
  const errorPage = (res: FastifyReply, message: string, markup = escapeHtml(message)): FastifyReply =>
    res
      .code(400)
      .type("text/html; charset=utf-8")
      .send(`<!DOCTYPE html><html><head><title>Sentry</title></head><body><h2>Authorization Error</h2><p>${markup}</p></body></html>`);
  const invalidParameter = (res: FastifyReply, name: string): FastifyReply =>
    errorPage(res, `Missing or invalid ${name} parameter.`, `Missing or invalid <em>${escapeHtml(name)}</em> parameter.`);
  const redirectTo = (res: FastifyReply, redirectUri: string, params: Record<string, string | undefined>): FastifyReply => {
    const target = new URL(redirectUri);
    for (const [key, value] of Object.entries(params)) if (value !== undefined) target.searchParams.append(key, value);
    return res.redirect(target.toString(), 302);
  };

  /** The fixed window of the rate limiter (counted, not enforced: the `rate-limit` fault throttles). */
  const rateLimitHeaders = (res: FastifyReply, key: string): void => {
    const second = Math.floor(now() / 1000 / RATE_WINDOW_SECONDS) * RATE_WINDOW_SECONDS;
    const window = windows.get(key)?.second === second ? (windows.get(key) as { second: number; count: number }) : { second, count: 0 };
    window.count += 1;
    windows.set(key, window);
    res
      .header("x-sentry-rate-limit-remaining", String(Math.max(0, RATE_LIMIT - window.count)))
      .header("x-sentry-rate-limit-limit", String(RATE_LIMIT))
      .header("x-sentry-rate-limit-reset", String(second + RATE_WINDOW_SECONDS))
      .header("x-sentry-rate-limit-concurrentremaining", String(CONCURRENT_LIMIT - 1))
      .header("x-sentry-rate-limit-concurrentlimit", String(CONCURRENT_LIMIT));
  };

  /** Who the Authorization header names, as Sentry's authentication classes decide it (DRF splits the header on whitespace). */
  const authenticate = (request: FastifyRequest): Caller => {
    const header = request.headers.authorization;
    const parts = (typeof header === "string" ? header : "").split(/\s+/).filter(Boolean);
    if (parts.length === 0 || parts[0]?.toLowerCase() !== "bearer") return { kind: "refused", detail: NOT_PROVIDED };
    if (parts.length === 1) return { kind: "refused", detail: "Invalid token header. No credentials provided." };
    if (parts.length > 2) return { kind: "refused", detail: "Invalid token header. Token string should not contain spaces." };
    const value = parts[1] as string;
    if (value.startsWith("sntrys_")) {
      const org = auth.verify(value, ["org"]);
      return org.ok ? { kind: "org", grant: org.token.grant } : { kind: "refused", detail: "Invalid org token" };
    }
    // A refresh token is no ApiToken to the API, and a revoked one's row is gone: only a live row's expiry is told apart.
    const checked = auth.verify(value, ["access", "user"]);
    if (checked.ok) return { kind: "api", grant: checked.token.grant };
    return { kind: "refused", detail: checked.reason === "expired" ? "Token expired" : "Invalid token" };
  };

  const serializeOrganization = (org: Organization) => ({
    id: org.id,
    slug: org.slug,
    status: { id: "active", name: "active" },
    name: org.name,
    dateCreated: org.dateCreated,
    isEarlyAdopter: false,
    require2FA: false,
    avatar: { avatarType: "letter_avatar", avatarUuid: null, avatarUrl: null },
    links: { organizationUrl: origin, regionUrl: origin },
    hasAuthProvider: false,
    allowMemberInvite: true,
    allowMemberProjectCreation: true,
    allowSuperuserAccess: false,
    features: ["discover-basic", "performance-view", "session-replay"],
  });

  // ---- routes ------------------------------------------------------------

  const authorize = async (request: FastifyRequest, res: FastifyReply) => {
    const q = queryParams(request);
    if (!q.client_id || q.client_id !== app.clientId) return invalidParameter(res, "client_id");
    let redirectUri = q.redirect_uri;
    if (!redirectUri) {
      // Optional only while the app has exactly one registered redirect URI.
      if (redirectUris.length !== 1) return invalidParameter(res, "redirect_uri");
      redirectUri = redirectUris[0] as string;
    } else if (!redirectUris.includes(redirectUri)) {
      return invalidParameter(res, "redirect_uri");
    }
    // Sentry names client_id when the response type is not allowed for the app.
    if (q.response_type !== "code") return invalidParameter(res, "client_id");
    const scopes = (q.scope ?? "").split(" ").filter(Boolean);
    if (scopes.some((s) => !(SENTRY_SCOPES as readonly string[]).includes(s))) return redirectTo(res, redirectUri, { error: "invalid_scope", state: q.state });
    // PKCE: the docs say code_challenge_method "Must be S256"; refused here, before a code is minted (the
    // token endpoint would refuse a plain one with invalid_grant anyway).
    if (q.code_challenge !== undefined && (q.code_challenge_method !== "S256" || !/^[A-Za-z0-9_-]{43}$/.test(q.code_challenge))) {
      return redirectTo(res, redirectUri, { error: "invalid_request", state: q.state });
    }
    if (q._sandbox_decision === "deny") return redirectTo(res, redirectUri, { error: "access_denied", state: q.state });
    // The user picks the organization the token will be scoped to.
    const organization = q._sandbox_organization === undefined ? organizations[0] : organizations.find((o) => o.slug === q._sandbox_organization);
    if (!organization) return redirectTo(res, redirectUri, { error: "unauthorized_client", state: q.state });
    const code = hex(32);
    auth.issueCode(code, { scopes, organizationId: organization.id }, { redirectUri, pkce: q.code_challenge !== undefined ? { challenge: q.code_challenge, method: "S256" } : undefined });
    return redirectTo(res, redirectUri, { code, state: q.state });
  };

  /** Client credentials from Basic or the body, never both (oauth_token.py `_extract_basic_auth_credentials`). */
  const clientCredentials = (request: FastifyRequest, p: Record<string, string>): { id?: string; secret?: string } | { error: string; status: number } => {
    const header = request.headers.authorization;
    const [scheme, param] = typeof header === "string" ? [header.slice(0, header.indexOf(" ")), header.slice(header.indexOf(" ") + 1).trim()] : ["", ""];
    if (header && scheme.toLowerCase() === "basic" && param) {
      if (p.client_id || p.client_secret) return { error: "invalid_request", status: 400 };
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(param)) return { error: "invalid_client", status: 401 };
      const decoded = Buffer.from(param, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) return { error: "invalid_client", status: 401 };
      return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
    }
    return { ...(p.client_id ? { id: p.client_id } : {}), ...(p.client_secret ? { secret: p.client_secret } : {}) };
  };

  /**
   * The ApiGrant's check at the exchange (oauth_token.py), as the kit makes it but for two things: a verifier is
   * checked only against a code issued with a challenge (PKCE is optional, and a verifier sent for a code without
   * one is ignored), and a redemption failing a check deletes the ApiGrant, so the code is burnt (RFC 6749 §10.5).
   */
  const redeem = (value: string | undefined, presented: CodePresented) => auth.redeemCode(value, presented, { verifier: "when-challenged", spendOnRefusal: true });

  /** A new ApiToken on `grant`, answered: OAuth tokens carry no prefix, 64 hex characters, and so do their refresh tokens (apitoken.py). */
  const tokenAnswer = (res: FastifyReply, grant: Grant<SentryGrant>): FastifyReply => {
    const access = hex(32);
    const refresh = hex(32);
    const minted = auth.mint(access, "access", grant, accessTtlMs);
    auth.mint(refresh, "refresh", grant);
    return json(res.header("cache-control", NEVER_CACHE), 200, {
      access_token: access,
      refresh_token: refresh,
      expires_in: auth.secondsLeft(minted),
      expires_at: sentryTime(minted.expiresAt as number),
      token_type: "Bearer",
      scope: grant.scopes.join(" "),
      user: { id: user.id, name: user.name, email: user.email },
      ...(grant.organizationId ? { organization_id: grant.organizationId } : {}),
    });
  };

  const token = async (request: FastifyRequest, res: FastifyReply) => {
    // Django's request.POST: form bodies only; anything else reads as no parameters at all.
    const p = isForm(request) ? bodyParams(request) : {};
    if (!p.grant_type) return oauthError(res, "invalid_request");
    const known = ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"];
    if (!known.includes(p.grant_type)) return oauthError(res, "unsupported_grant_type");
    const client = clientCredentials(request, p);
    if ("error" in client) return oauthError(res, client.error, client.status);
    // Only the device flow admits public clients; the code and refresh grants need the secret.
    if (!client.id || !client.secret) return oauthError(res, "invalid_client", 401);
    if (client.id !== app.clientId || client.secret !== app.clientSecret) return oauthError(res, "invalid_client", 401);

    if (p.grant_type === "authorization_code") {
      // Every refusal is the bare invalid_grant: a code unknown, replayed (which also ends what it minted, RFC 6749
      // §4.1.2) or expired, a redirect URI left out or different (from_grant's binding check), a verifier missing or wrong.
      const redeemed = redeem(p.code, { redirectUri: p.redirect_uri, verifier: p.code_verifier });
      if (!redeemed.ok) return oauthError(res, "invalid_grant");
      const { scopes, organizationId } = redeemed.code.data;
      return tokenAnswer(res, auth.grantFromCode(redeemed.code, { scopes, organizationId }));
    }
    if (p.grant_type === "refresh_token") {
      if (!p.refresh_token) return oauthError(res, "invalid_request");
      // "TODO(dcramer): support scope": a scope on a refresh is refused.
      if (p.scope) return oauthError(res, "invalid_request");
      const rotated = auth.rotate(p.refresh_token, "refresh", { graceMs: 0 });
      if (!rotated.ok) return oauthError(res, "invalid_grant");
      // ApiToken.refresh(): a new access token AND a new refresh token in the same row; the old ones are gone at once.
      auth.revokeTokensWhere((t) => t.grant === rotated.grant);
      return tokenAnswer(res, rotated.grant);
    }
    // The device and ID-JAG grants exist at Sentry; the sandbox has no device codes and trusts no identity provider.
    if (p.grant_type === "urn:ietf:params:oauth:grant-type:device_code") return oauthError(res, p.device_code ? "invalid_grant" : "invalid_request");
    return oauthError(res, p.assertion ? "invalid_grant" : "invalid_request");
  };

  const listOrganizations = async (request: FastifyRequest, res: FastifyReply) => {
    const caller = authenticate(request);
    if (caller.kind === "refused") return apiError(res, 401, caller.detail);
    // The limiter keys users by id; organization tokens have no user, so by address.
    rateLimitHeaders(res, caller.kind === "api" ? `user:${user.id}` : `ip:${request.ip}`);
    let list: Organization[];
    if (caller.kind === "org") {
      // Organization tokens (org:ci only) are answered with their organization, as providers.md §2.4 reads
      // Sentry; whether OrganizationPermission's GET scopes admit org:ci is not confirmed by its source.
      list = organizations.filter((o) => o.id === caller.grant.organizationId);
    } else {
      if (!caller.grant.scopes.some((s) => ORG_READ_SCOPES.includes(s))) return apiError(res, 403, PERMISSION_DENIED);
      // A token scoped to one organization at consent sees that one only.
      list = caller.grant.organizationId ? organizations.filter((o) => o.id === caller.grant.organizationId) : organizations;
    }
    const self = `${origin}/api/0/organizations/`;
    res.header(
      "link",
      `<${self}?&cursor=100:-1:1>; rel="previous"; results="false"; cursor="100:-1:1", <${self}?&cursor=100:1:0>; rel="next"; results="false"; cursor="100:1:0"`,
    );
    return json(res, 200, list.map(serializeOrganization));
  };

  // ---- projects and issues -------------------------------------------------

  /**
   * The organization `slug` names, when the caller may act on it with one of `accepted` scopes; else
   * Sentry's refusal, sent: 401 unauthenticated, 404 no such organization, 403 without the scope (or an
   * OAuth token consented for another organization, or an organization token, whose org:ci reaches no issue).
   */
  const organizationFor = (request: FastifyRequest, res: FastifyReply, slug: string, accepted: readonly string[]): Organization | undefined => {
    const caller = authenticate(request);
    if (caller.kind === "refused") {
      apiError(res, 401, caller.detail);
      return undefined;
    }
    rateLimitHeaders(res, caller.kind === "api" ? `user:${user.id}` : `ip:${request.ip}`);
    const org = organizations.find((o) => o.slug === slug || o.id === slug);
    if (!org) {
      apiError(res, 404, NOT_FOUND);
      return undefined;
    }
    const allowed = caller.kind === "api" && (caller.grant.organizationId === undefined || caller.grant.organizationId === org.id) && caller.grant.scopes.some((s) => accepted.includes(s));
    if (!allowed) {
      apiError(res, 403, PERMISSION_DENIED);
      return undefined;
    }
    return org;
  };
  const projectOf = (group: Group): Project => projects.find((p) => p.id === group.projectId) as Project;
  const shortIdOf = (group: Group): string => `${projectOf(group).slug.toUpperCase()}-${group.shortNumber.toString(36).toUpperCase()}`;
  /** An issue by its id or its short id (`SANDBOX-WEB-1`), as the organization's issue paths take either. */
  const findGroup = (idOrShortId: string): Group | undefined => groups.get(idOrShortId) ?? [...groups.values()].find((g) => shortIdOf(g) === idOrShortId.toUpperCase());
  const serializeProjectRef = (project: Project) => ({ id: project.id, name: project.name, slug: project.slug, platform: project.platform });
  /** GroupSerializer's fields (what the list and the detail share). */
  const serializeGroup = (group: Group, org: Organization) => ({
    id: group.id,
    shareId: null,
    shortId: shortIdOf(group),
    title: group.title,
    culprit: group.culprit,
    permalink: `${origin}/organizations/${org.slug}/issues/${group.id}/`,
    logger: null,
    level: group.level,
    status: group.status,
    statusDetails: group.statusDetails,
    substatus: group.substatus,
    isPublic: group.isPublic,
    platform: projectOf(group).platform,
    project: serializeProjectRef(projectOf(group)),
    type: "error",
    metadata: { type: group.errorType, value: group.errorValue, filename: group.culprit, function: group.culprit.split(".").pop() ?? "" },
    numComments: 0,
    assignedTo: null,
    isBookmarked: group.isBookmarked,
    isSubscribed: group.isSubscribed,
    subscriptionDetails: null,
    hasSeen: group.hasSeen,
    annotations: [],
    issueType: "error",
    issueCategory: "error",
    priority: group.level === "error" ? "high" : "medium",
    priorityLockedAt: null,
    isUnhandled: group.level === "error",
    count: String(group.count),
    userCount: group.userCount,
    firstSeen: sentryTime(group.firstSeen),
    lastSeen: sentryTime(group.lastSeen),
  });
  const groupsOf = (org: Organization): Group[] => [...groups.values()].filter((g) => projectOf(g).organizationId === org.id);

  /**
   * One page of `candidates` as the issue streams answer it: `query` (`is:` tokens pick a status, other words
   * match the title; is:unresolved when left out, everything when empty), `limit`, `cursor`, newest first, with
   * Sentry's Link header (both rels, `results` saying whether a page is there) and X-Hits.
   */
  const issueStream = (request: FastifyRequest, res: FastifyReply, org: Organization, candidates: Group[], path: string, defaultLimit: number, extra: (g: Group) => Record<string, unknown> = () => ({})) => {
    const q = queryParams(request);
    const limit = q.limit === undefined ? defaultLimit : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > ISSUES_PAGE_MAX) return json(res, 400, { detail: `Invalid limit: must be between 1 and ${ISSUES_PAGE_MAX}.` });
    const cursor = /^\d+:(\d+):[01]$/.exec(q.cursor ?? "0:0:0");
    if (!cursor) return json(res, 400, { detail: "Invalid cursor parameter." });
    const offset = Number(cursor[1]);
    const terms = (q.query ?? "is:unresolved").split(/\s+/).filter(Boolean);
    const statuses = terms.filter((t) => t.startsWith("is:")).map((t) => (t.slice(3) === "archived" ? "ignored" : t.slice(3)));
    const words = terms.filter((t) => !t.includes(":")).map((t) => t.toLowerCase());
    const matched = candidates
      .filter((g) => statuses.length === 0 || statuses.includes(g.status))
      .filter((g) => words.every((w) => g.title.toLowerCase().includes(w)))
      .sort((a, b) => b.lastSeen - a.lastSeen);
    const page = matched.slice(offset, offset + limit);
    const self = new URL(`${origin}${path}`);
    for (const [key, value] of Object.entries(q)) if (key !== "cursor" && key !== "project") self.searchParams.set(key, value);
    const raw = (request.query as Record<string, unknown>).project;
    for (const p of Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) self.searchParams.append("project", String(p));
    const link = (cursorValue: string, rel: string, results: boolean): string => {
      self.searchParams.set("cursor", cursorValue);
      return `<${self.toString()}>; rel="${rel}"; results="${results}"; cursor="${cursorValue}"`;
    };
    const previous = `0:${Math.max(0, offset - limit)}:1`;
    const next = `0:${offset + limit}:0`;
    res.header("link", `${link(previous, "previous", offset > 0)}, ${link(next, "next", offset + limit < matched.length)}`);
    res.header("x-hits", String(matched.length)).header("x-max-hits", String(matched.length));
    return json(res, 200, page.map((g) => ({ ...serializeGroup(g, org), ...extra(g) })));
  };

  const listIssues = async (request: FastifyRequest<{ Params: { org: string } }>, res: FastifyReply) => {
    const org = organizationFor(request, res, request.params.org, EVENT_READ_SCOPES);
    if (!org) return res;
    // `project` may repeat; -1 (or none) is every project the caller can see.
    const raw = (request.query as Record<string, unknown>).project;
    const wanted = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(String).filter((p) => p !== "-1");
    const candidates = groupsOf(org).filter((g) => wanted.length === 0 || wanted.includes(g.projectId));
    return issueStream(request, res, org, candidates, `/api/0/organizations/${org.slug}/issues/`, ISSUES_PAGE);
  };

  /**
   * GET /api/0/projects/{org}/{project}/issues/ (ProjectGroupIndexEndpoint, deprecated but served): ProjectEventPermission
   * (event:read for GET), 100 issues a page, `statsPeriod` "24h" (default), "14d" or "" adding StreamGroupSerializer's
   * `stats` (an hourly or daily count series), anything else a 400.
   */
  const listProjectIssues = async (request: FastifyRequest<{ Params: { org: string; project: string } }>, res: FastifyReply) => {
    const org = organizationFor(request, res, request.params.org, EVENT_READ_SCOPES);
    if (!org) return res;
    const project = projects.find((p) => p.organizationId === org.id && (p.slug === request.params.project || p.id === request.params.project));
    if (!project) return apiError(res, 404, NOT_FOUND);
    const period = queryParams(request).statsPeriod ?? "24h";
    if (!["", "24h", "14d"].includes(period)) return json(res, 400, { detail: "Invalid stats_period. Valid choices are '', '24h', and '14d'" });
    const stats = (g: Group): Record<string, unknown> => {
      if (period === "") return {};
      // Buckets of an hour (24h) or a day (14d), epoch seconds, oldest first; the issue's events fall in the last one.
      const [buckets, size] = period === "24h" ? [24, 3600] : [14, 86_400];
      const end = Math.floor(now() / 1000 / size) * size;
      return { stats: { [period]: Array.from({ length: buckets }, (_, i) => [end - (buckets - 1 - i) * size, i === buckets - 1 ? Math.min(g.count, 99) : 0]) } };
    };
    return issueStream(request, res, org, groupsOf(org).filter((g) => g.projectId === project.id), `/api/0/projects/${org.slug}/${project.slug}/issues/`, ISSUES_PAGE_MAX, stats);
  };

  const updateSchema = z.looseObject({
    status: z.string().optional(),
    isBookmarked: z.boolean().optional(),
    isPublic: z.boolean().optional(),
    hasSeen: z.boolean().optional(),
    isSubscribed: z.boolean().optional(),
  });
  /** GroupValidator's refusals: DRF's field map, one message a field. */
  const updateErrors = (body: unknown): Record<string, string[]> | undefined => {
    if (typeof body !== "object" || body === null || Array.isArray(body)) return { non_field_errors: ["Invalid data. Expected a dictionary, but got list."] };
    const errors: Record<string, string[]> = {};
    const b = body as Record<string, unknown>;
    if (b.status !== undefined && !(typeof b.status === "string" && UPDATE_STATUSES.includes(b.status))) errors.status = [`"${String(b.status)}" is not a valid choice.`];
    for (const flag of ["isBookmarked", "isPublic", "hasSeen", "isSubscribed"]) if (b[flag] !== undefined && typeof b[flag] !== "boolean") errors[flag] = ["Must be a valid boolean."];
    return Object.keys(errors).length > 0 ? errors : undefined;
  };
  /** Reads or updates one issue of `org` (PUT: only what the body names changes; the answer is the whole issue). */
  const issueDetail = (request: FastifyRequest, res: FastifyReply, org: Organization, group: Group | undefined) => {
    if (!group || projectOf(group).organizationId !== org.id) return apiError(res, 404, NOT_FOUND);
    if (request.method === "PUT") {
      const errors = updateErrors(request.body);
      if (errors) return json(res, 400, errors);
      const update = updateSchema.parse(request.body);
      if (update.status === "resolved" || update.status === "resolvedInNextRelease") {
        group.status = "resolved";
        group.substatus = null;
        group.statusDetails = update.status === "resolvedInNextRelease" ? { inNextRelease: true } : {};
      } else if (update.status === "unresolved") {
        group.status = "unresolved";
        group.substatus = "ongoing";
        group.statusDetails = {};
      } else if (update.status === "ignored") {
        // "Archived forever" in today's UI; the API still says ignored.
        group.status = "ignored";
        group.substatus = "archived_forever";
        group.statusDetails = {};
      }
      if (update.isBookmarked !== undefined) group.isBookmarked = update.isBookmarked;
      if (update.isPublic !== undefined) group.isPublic = update.isPublic;
      if (update.hasSeen !== undefined) group.hasSeen = update.hasSeen;
      if (update.isSubscribed !== undefined) group.isSubscribed = update.isSubscribed;
    }
    return json(res, 200, serializeGroup(group, org));
  };
  const organizationIssue = async (request: FastifyRequest<{ Params: { org: string; issueId: string } }>, res: FastifyReply) => {
    const org = organizationFor(request, res, request.params.org, request.method === "PUT" ? EVENT_WRITE_SCOPES : EVENT_READ_SCOPES);
    if (!org) return res;
    return issueDetail(request, res, org, findGroup(request.params.issueId));
  };
  /** The older path names no organization: the issue's own is checked (a numeric id only). */
  const bareIssue = async (request: FastifyRequest<{ Params: { issueId: string } }>, res: FastifyReply) => {
    const group = groups.get(request.params.issueId);
    const org = group ? organizations.find((o) => o.id === projectOf(group).organizationId) : undefined;
    if (!group || !org) {
      const caller = authenticate(request);
      return caller.kind === "refused" ? apiError(res, 401, caller.detail) : apiError(res, 404, NOT_FOUND);
    }
    const allowed = organizationFor(request, res, org.slug, request.method === "PUT" ? EVENT_WRITE_SCOPES : EVENT_READ_SCOPES);
    if (!allowed) return res;
    return issueDetail(request, res, org, group);
  };
  /** The project's first event, null while it has none. */
  const firstEventOf = (project: Project): string | null => {
    const seen = [...groups.values()].filter((g) => g.projectId === project.id).map((g) => g.firstSeen);
    return seen.length === 0 ? null : sentryTime(Math.min(...seen));
  };
  /** OrganizationProjectsEndpoint: `per_page` (100 by default and at most) and `cursor`, by slug, with the Link header. */
  const listProjects = async (request: FastifyRequest<{ Params: { org: string } }>, res: FastifyReply) => {
    const org = organizationFor(request, res, request.params.org, ORG_READ_SCOPES);
    if (!org) return res;
    const q = queryParams(request);
    const perPage = q.per_page === undefined ? PROJECTS_PAGE : Number(q.per_page);
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > PROJECTS_PAGE) return json(res, 400, { detail: `Invalid per_page value. Cannot exceed ${PROJECTS_PAGE}.` });
    const cursor = /^\d+:(\d+):[01]$/.exec(q.cursor ?? "0:0:0");
    if (!cursor) return json(res, 400, { detail: "Invalid cursor parameter." });
    const offset = Number(cursor[1]);
    const list = projects.filter((p) => p.organizationId === org.id).sort((a, b) => a.slug.localeCompare(b.slug));
    const self = new URL(`${origin}/api/0/organizations/${org.slug}/projects/`);
    for (const [key, value] of Object.entries(q)) if (key !== "cursor") self.searchParams.set(key, value);
    const link = (value: string, rel: string, results: boolean): string => {
      self.searchParams.set("cursor", value);
      return `<${self.toString()}>; rel="${rel}"; results="${results}"; cursor="${value}"`;
    };
    res.header("link", `${link(`${perPage}:${Math.max(0, offset - perPage)}:1`, "previous", offset > 0)}, ${link(`${perPage}:${offset + perPage}:0`, "next", offset + perPage < list.length)}`);
    return json(
      res,
      200,
      list.slice(offset, offset + perPage).map((p) => ({ ...serializeProjectRef(p), dateCreated: p.dateCreated, isBookmarked: false, isMember: true, hasAccess: true, features: [], firstEvent: firstEventOf(p), status: "active" })),
    );
  };

  const ROUTED = new Set(["/oauth/authorize/", "/oauth/token/", "/api/0/organizations/"]);
  const notFound = async (request: FastifyRequest, res: FastifyReply) => {
    const path = pathOf(request);
    if (path.startsWith("/api/")) {
      // api/endpoints/catchall.py: point at the missing trailing slash, in JSON only for JSON requests.
      if (path.endsWith("/")) return res.code(404).send();
      const help = "Route not found, did you forget a trailing slash?";
      const suggestion = `try: ${path}/`;
      if ((request.headers["content-type"] ?? "").startsWith("application/json")) return json(res, 404, { info: `${help} ${suggestion}` });
      return res.code(404).type("text/plain").send(`${help}\n\n${suggestion}\n${" ".repeat(suggestion.length - 1)}^\n`);
    }
    // Django's CommonMiddleware (APPEND_SLASH) for the pages.
    if (!path.endsWith("/") && ROUTED.has(`${path}/`)) return res.redirect(`${path}/${queryOf(request)}`, 301);
    return res.code(404).type("text/html; charset=utf-8").send("<!DOCTYPE html><html><body><h1>Page Not Found</h1></body></html>");
  };

  const isTokenPath = (res: FastifyReply): boolean => pathOf(res.request) === "/oauth/token/";

  const definition: SandboxDefinition = {
    provider: "sentry",
    state,
    browserPaths: ["/oauth/authorize/"],
    endpoints: (at) => ({ authorizeUrl: `${at}/oauth/authorize/`, tokenUrl: `${at}/oauth/token/`, apiUrl: at }),
    faults: {
      rateLimit: (res, fault, enforced) => {
        // middleware/ratelimit.py: the message as a JSON string in a default (text/html) response, the
        // X-Sentry-Rate-Limit-* headers, and no Retry-After. Reset and Date come from one reading of the clock.
        // An enforced rate's message tells its own limit and window (its headers are set by rateLimitHeaders).
        if (enforced) {
          return res
            .code(429)
            .header("content-type", "text/html; charset=utf-8")
            .send(JSON.stringify(`You are attempting to use this endpoint too frequently. Limit is ${enforced.limit} requests in ${enforced.windowMs / 1000} seconds`));
        }
        const window = Math.max(1, Math.ceil(fault.retryAfterSeconds ?? RATE_WINDOW_SECONDS));
        const second = Math.floor(now() / 1000);
        return res
          .code(429)
          .header("content-type", "text/html; charset=utf-8")
          .header("date", new Date(second * 1000).toUTCString())
          .header("x-sentry-rate-limit-remaining", "0")
          .header("x-sentry-rate-limit-limit", String(RATE_LIMIT))
          .header("x-sentry-rate-limit-reset", String(second + window))
          .header("x-sentry-rate-limit-concurrentremaining", String(CONCURRENT_LIMIT - 1))
          .header("x-sentry-rate-limit-concurrentlimit", String(CONCURRENT_LIMIT))
          .send(JSON.stringify(`You are attempting to use this endpoint too frequently. Limit is ${RATE_LIMIT} requests in ${window} seconds`));
      },
      // The API's exception handler answers JSON with the event id; the token endpoint is a plain Django view.
      serverError: (res) =>
        isTokenPath(res)
          ? res.code(500).type("text/html; charset=utf-8").send("<!DOCTYPE html><html><body><h1>Server Error (500)</h1></body></html>")
          : json(res, 500, { detail: "Internal Error", errorId: hex(16) }),
      badRequest: (res) => (isTokenPath(res) ? oauthError(res, "invalid_request") : json(res, 400, { detail: "Invalid cursor parameter." })),
      malformed: (res) => res.code(200).header("content-type", "application/json").send(`[{"id":"${organizations[0]?.id ?? "1"}","slug":"autoflow-sand`),
    },
    // An enforced rate's window in the middleware's headers (reset in epoch seconds), replacing the sandbox's
    // own count; the concurrency pair says one request in flight, as the routes do.
    rateLimitHeaders: (res, window) => {
      res
        .header("x-sentry-rate-limit-remaining", String(window.remaining))
        .header("x-sentry-rate-limit-limit", String(window.limit))
        .header("x-sentry-rate-limit-reset", String(Math.ceil(window.resetAtMs / 1000)))
        .header("x-sentry-rate-limit-concurrentremaining", String(CONCURRENT_LIMIT - 1))
        .header("x-sentry-rate-limit-concurrentlimit", String(CONCURRENT_LIMIT));
    },
    revokeAll: () => {
      // Nothing issued before the fault works after it, a pending code included.
      auth.revokeAll();
    },
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      const organization = parsed.organization === undefined ? organizations[0] : organizations.find((o) => o.slug === parsed.organization);
      if (!organization) throw new Error(`no organization ${parsed.organization}; the sandbox has ${organizations.map((o) => o.slug).join(", ")}`);
      if (parsed.type === "org") {
        if (parsed.scopes) throw new Error("organization auth tokens have the fixed scope org:ci");
        // orgauthtoken_token.py: base64 of the JSON payload, `_`, base64 of 32 random bytes without padding.
        const payload = { iat: now() / 1000, url: origin, region_url: origin, org: organization.slug };
        const secret = randomBytes(32).toString("base64").replace(/=+$/, "");
        const value = `sntrys_${Buffer.from(JSON.stringify(payload)).toString("base64")}_${secret}`;
        auth.mint(value, "org", auth.grant({ scopes: ["org:ci"], organizationId: organization.id }));
        return { accessToken: value, type: "org", scopes: ["org:ci"], organization: organization.slug };
      }
      if (parsed.organization !== undefined) throw new Error("user auth tokens reach every organization of the user; organization is for type org");
      const scopes = parsed.scopes ?? DEFAULT_TOKEN_SCOPES;
      const value = `sntryu_${randomChars(64, HEX)}`;
      auth.mint(value, "user", auth.grant({ scopes: [...scopes] }));
      return { accessToken: value, type: "user", scopes, userId: user.id, organizations: organizations.map((o) => o.slug) };
    },
    routes(server: FastifyInstance) {
      server.get("/oauth/authorize/", authorize);
      server.post("/oauth/token/", token);
      server.get("/api/0/organizations/", listOrganizations);
      server.get("/api/0/organizations/:org/projects/", listProjects);
      server.get("/api/0/organizations/:org/issues/", listIssues);
      server.get("/api/0/projects/:org/:project/issues/", listProjectIssues);
      server.route({ method: ["GET", "PUT"], url: "/api/0/organizations/:org/issues/:issueId/", handler: organizationIssue });
      server.route({ method: ["GET", "PUT"], url: "/api/0/issues/:issueId/", handler: bareIssue });
      server.setNotFoundHandler(notFound);
    },
    listening(url) {
      origin = url;
    },
  };
  return definition;
}

export async function startSentrySandbox(options: SentrySandboxOptions = {}): Promise<StartedSandbox> {
  // client_id is 64 hex; the client secret is `sntrya_` + 64 hex (apiapplication.py).
  const app = { clientId: options.clientId ?? hex(32), clientSecret: options.clientSecret ?? `sntrya_${hex(32)}` };
  return startSandbox("sentry", options, app, (registered, restored, redirectUris) => sentrySandbox({ ...options, redirectUris }, registered, restored));
}
