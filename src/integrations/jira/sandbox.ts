/**
 * A local Atlassian: auth.atlassian.com's OAuth paths, api.atlassian.com's
 * gateway paths and a Jira site's REST paths, all at the root of one origin,
 * so jira.js or any Atlassian client pointed at it works unchanged.
 *
 *   GET  /authorize                                  consent, auto-approved: 302 to redirect_uri?code&state.
 *                                                    A bad client_id, redirect_uri or audience gets an error
 *                                                    page, never a redirect; `_sandbox_decision=deny` redirects
 *                                                    with error=access_denied
 *   POST /oauth/token                                code exchange and refresh; JSON body as documented (form
 *                                                    encoding accepted too), client credentials in the body or Basic
 *   GET  /oauth/token/accessible-resources           the sites the token reaches: this sandbox's one Jira site
 *   GET  /ex/jira/{cloudId}/rest/api/{2,3}/myself    the caller, through the gateway (3LO access tokens)
 *   GET  /rest/api/{2,3}/myself                      the caller, on the site itself: a Cloud API token (Basic
 *                                                    email:token), or a Data Center personal access token (Bearer),
 *                                                    which, as on Data Center, has no v3
 *   POST [/ex/jira/{cloudId}]/rest/api/{2,3}/issue   create an issue in the site's project (SBX, issue types Task
 *                                                    and Bug): 201 {id, key, self}; v3 takes the description as
 *                                                    Atlassian Document Format, v2 as a wiki-markup string
 *   GET  [/ex/jira/{cloudId}]/rest/api/{2,3}/issue/{idOrKey}   the issue (`fields=` picks fields)
 *   GET  [/ex/jira/{cloudId}]/rest/api/{2,3}/project           the projects, each with its issue types
 *   GET|POST [/ex/jira/{cloudId}]/rest/api/{2,3}/search/jql    the enhanced search (`jql`, `nextPageToken`,
 *                                                    `maxResults`, `fields`): {issues, nextPageToken?, isLast};
 *                                                    the JQL that sandboxJql.ts reads, refused as Jira refuses it
 *   GET|POST [/ex/jira/{cloudId}]/rest/api/{2,3}/search        the old search: 410 Gone, as since its shutdown
 *
 * One origin plays three hosts, so everything stays on loopback: the site
 * URL that accessible-resources reports, and that the credentials desk hands
 * out as `baseUrl`, is this sandbox's own origin. It is at once the Jira Cloud
 * site (Basic) and a Data Center instance (Bearer PAT), told apart by the
 * credential, as the two never share one.
 *
 * Behaviour (providers.md part 2 §4): access tokens last `accessTokenTtlSeconds`
 * (3600 by default); refresh tokens always rotate (`tokenRotation` is ignored).
 * A used refresh token stays good for `refreshTokenGraceSeconds` (the 10-minute
 * reuse leeway); reused after that it fails with 403 invalid_grant and
 * invalidates every refresh token of the chain, so the user must consent again.
 * Refresh tokens also die after 90 days unused and 365 days after consent.
 * Access tokens already issued keep working until they expire (they are JWTs
 * the gateway checks by signature); a replayed code and `revoke-all` revoke
 * them as well. Codes last ten minutes; there is no PKCE.
 *
 * Errors as Atlassian sends them: the token endpoint's RFC 6749 bodies (403
 * invalid_grant, 401 access_denied for bad client credentials); the gateway's
 * `{"code":401,"message":"Unauthorized"}` (`Unauthorized; scope does not
 * match` for a missing scope); the site's ErrorCollection
 * `{"errorMessages":[...],"errors":{}}` with X-Seraph-LoginReason on failed
 * Basic logins; 429 with Retry-After, X-RateLimit-Reset (ISO, minute
 * precision) and RateLimit-Reason.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { escapeHtml } from "../shared/html.js";
import {
  basicCredentials,
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
import { authorizationServer, authorizationState, type Grant, type IssuedToken } from "../../sandbox/authorizationServer.js";
import { JqlError, parseJql, type JqlIssue } from "./sandboxJql.js";

/** 3LO access tokens live one hour (Atlassian staff, providers.md §4.1). */
const ACCESS_TOKEN_TTL_SECONDS = 3600;
/** A used refresh token stays good this long ("The leeway interval is 10 minutes"). */
const REFRESH_LEEWAY_SECONDS = 600;
/** Rotating refresh tokens expire after 90 days unused, and 365 days after the first consent. */
const REFRESH_INACTIVITY_MS = 90 * 86_400_000;
const REFRESH_ABSOLUTE_MS = 365 * 86_400_000;
/** API tokens are created with a lifetime of 1 to 365 days. */
const API_TOKEN_MAX_DAYS = 365;
/** What a 429 without an asked-for Retry-After says (the burst limit clears in seconds). */
const DEFAULT_RETRY_AFTER_SECONDS = 5;
/** X-RateLimit-NearLimit: true is added once less than this share of a budget remains (20%, per the rate-limiting docs). */
const NEAR_LIMIT_FRACTION = 0.2;
/** The burst limit's budget reported in X-RateLimit-Limit. [UNCERTAIN] Atlassian publishes no number. */
const BURST_LIMIT = 100;

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX_UPPER = "0123456789ABCDEF";
const JSON_TYPE = "application/json;charset=UTF-8";
const AUDIENCE = "api.atlassian.com";
/** A scope name: classic (`read:jira-work`), granular (`read:issue:jira`), identity (`read:me`), or offline_access. */
const SCOPE_NAME = /^((read|write|delete|manage):[a-z0-9-]+(:[a-z0-9-]+)?|offline_access)$/;
/** Scopes that say who the user is rather than what a site allows; accessible-resources does not list them. */
const ACCOUNT_SCOPES = new Set(["offline_access", "read:me", "read:account"]);
const isJiraScope = (scope: string): boolean => /(^|:)jira(-[a-z-]+)?(:|$)/.test(scope);
/** What GET /myself needs: the classic scope, or its granular bundle (REST v3 reference). */
const MYSELF_CLASSIC = "read:jira-user";
const MYSELF_GRANULAR = ["read:application-role:jira", "read:group:jira", "read:user:jira", "read:avatar:jira"];
/** What reading issues and projects needs (classic, or the granular scope at the heart of its bundle). */
const READ_WORK = ["read:jira-work", "read:issue:jira"];
/** What creating an issue needs (REST v3 reference, "Create issue"). */
const WRITE_WORK = ["write:jira-work", "write:issue:jira"];
/** Jira limits a summary to 255 characters. */
const SUMMARY_MAX = 255;
const ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it.";
/** The enhanced search's page: 50 issues unless maxResults asks otherwise (REST v3 reference, "Search for issues using JQL enhanced search"). */
const SEARCH_PAGE = 50;
/** At most 5,000 issues a page when only id or key is asked for; fewer with more fields ([UNCERTAIN] the figure: 100, as the old search's cap). */
const SEARCH_PAGE_MAX_IDS = 5000;
const SEARCH_PAGE_MAX = 100;
/** A nextPageToken expires after 7 days (jira.js searchAndReconcileResults.ts). */
const PAGE_TOKEN_TTL_MS = 7 * 86_400_000;
const UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.";
/** What the old search answers since its shutdown (providers.md part 2 §4.4). */
const SEARCH_REMOVED = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046";

export type JiraSandboxOptions = SandboxOptions & {
  /** Ignored: Atlassian always rotates refresh tokens; it is not an app setting. */
  tokenRotation?: boolean;
  /** How long a used refresh token keeps working (the reuse leeway). Default 600 seconds. */
  refreshTokenGraceSeconds?: number;
  /** The sandbox's clock (tests move it to expire codes and tokens). Default Date.now. */
  now?: () => number;
};

/** One 3LO consent: its code, access and refresh tokens live and die together. */
type Consent = { scopes: string[]; consentedAt: number };
/** Whose site credential it is: an API token's account email; a PAT's owner is the user it was made by. */
type KeyOwner = { email?: string };
type TokenKind = "access" | "refresh" | "api_token" | "pat";
const isConsent = (grant: Consent | KeyOwner): grant is Consent => "scopes" in grant;
type IssueType = { id: string; name: string; description: string; avatarId: number };
type Project = { id: string; key: string; name: string; issueTypes: IssueType[]; issueCount: number };
/** A Jira issue as stored: the description as ADF (what v3 speaks), times in epoch milliseconds. */
type IssueRecord = { id: string; key: string; projectId: string; issueTypeId: string; summary: string; description: unknown; labels: string[]; created: number; updated: number };
/** Who is calling the REST API, and so how its answers look: Cloud (through the gateway or the site) or Data Center. */
type RestCaller = { deployment: "cloud" | "datacenter"; base: string };

const credentialRequest = z.strictObject({
  /** A Cloud API token (default) or a Data Center personal access token. */
  type: z.enum(["cloud", "datacenter"]).optional(),
  /** Lifetime of the token, as chosen at creation. Cloud: 1 to 365 days (default 365); Data Center: none by default. */
  expiresInDays: z.int().min(1).max(API_TOKEN_MAX_DAYS).optional(),
});

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
const pathOf = (request: FastifyRequest): string => request.url.split("?")[0] ?? request.url;
const isTokenPath = (path: string): boolean => path === "/oauth/token";
const isGatewayPath = (path: string): boolean => path.startsWith("/ex/") || path === "/oauth/token/accessible-resources";

type PageToken = { o: number; q: string; t: number };
/** An opaque nextPageToken: the offset, the query's fingerprint and when it was made. */
const pageToken = (token: PageToken): string => Buffer.from(JSON.stringify(token)).toString("base64url");
const readPageToken = (text: string): PageToken | undefined => {
  try {
    const t = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as Partial<PageToken>;
    return Number.isInteger(t.o) && typeof t.q === "string" && typeof t.t === "number" ? (t as PageToken) : undefined;
  } catch {
    return undefined;
  }
};

export function jiraSandbox(options: JiraSandboxOptions, app: SandboxApp, restored?: unknown) {
  const now = options.now ?? Date.now;
  const accessTtlSeconds = options.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS;
  const leewayMs = (options.refreshTokenGraceSeconds ?? REFRESH_LEEWAY_SECONDS) * 1000;
  const redirectUris = options.redirectUris ?? [];
  const state = restoreState(restored, () => ({
    site: { cloudId: randomUUID(), name: "autoflow-sandbox" },
    user: {
      accountId: `712020:${randomUUID()}`,
      displayName: "Sandbox User",
      email: "sandbox.user@autoflow-sandbox.invalid",
      // Data Center identities: the stable user key and the (renamable) username.
      key: "JIRAUSER10100",
      name: "sandbox.user",
    },
    accessKeyId: `auth.atlassian.com-ACCESS-${randomUUID()}`,
    refreshKeyId: randomChars(24, "0123456789abcdef"),
    /** A code carries its consent, which is a grant from the start: a revoke-all before the exchange reaches it. */
    authorization: authorizationState<Consent | KeyOwner, TokenKind, Grant<Consent>>(),
    /** The site's one project, as a new Jira Software site offers; issue ids count up site-wide, keys per project. */
    projects: [
      {
        id: "10000",
        key: "SBX",
        name: "Sandbox",
        issueTypes: [
          { id: "10001", name: "Task", description: "A small, distinct piece of work.", avatarId: 10318 },
          { id: "10002", name: "Bug", description: "A problem or error.", avatarId: 10303 },
        ],
        issueCount: 0,
      },
    ] as Project[],
    issues: new Map<string, IssueRecord>(),
    nextIssueId: 10000,
  }));
  const { site, user, accessKeyId, refreshKeyId, projects, issues } = state;
  const auth = authorizationServer(state.authorization, { now });
  /** This sandbox's origin, once it listens: the site URL it reports. */
  let ownOrigin: string | undefined;
  const origin = (request: FastifyRequest): string => ownOrigin ?? `http://${request.headers.host ?? "127.0.0.1"}`;

  // ---- tokens that look like Atlassian's ----------------------------------

  /** A 3LO access token: an RS256 JWT for the gateway, with the 3LO claims. */
  const mintAccess = (grant: Consent): string => {
    const seconds = Math.floor(now() / 1000);
    const header = { kid: accessKeyId, alg: "RS256" };
    const payload = {
      jti: randomUUID(),
      sub: user.accountId,
      nbf: seconds,
      iss: "https://auth.atlassian.com",
      iat: seconds,
      exp: seconds + accessTtlSeconds,
      aud: app.clientId,
      scope: grant.scopes.join(" "),
      client_id: app.clientId,
      "https://atlassian.com/oauthClientId": app.clientId,
      "https://atlassian.com/3lo": true,
      "https://atlassian.com/firstParty": false,
      "https://atlassian.com/verified": true,
      "https://id.atlassian.com/verified": true,
      "https://id.atlassian.com/processRegion": "us-east-1",
      "https://id.atlassian.com/session_id": randomUUID(),
    };
    const token = `${base64url(header)}.${base64url(payload)}.${randomChars(342, B64URL)}`;
    auth.mint(token, "access", grant, accessTtlSeconds * 1000);
    return token;
  };
  /** [UNCERTAIN] the refresh token's exact form; what is seen is a long JWS as well. It dies unused or at the chain's end, whichever is first. */
  const mintRefresh = (grant: Consent): string => {
    const seconds = Math.floor(now() / 1000);
    const payload = { jti: randomUUID(), sub: user.accountId, nbf: seconds, iss: "https://auth.atlassian.com", iat: seconds, aud: "auth.atlassian.com", "https://id.atlassian.com/refresh_chain_id": `${app.clientId}-${user.accountId}` };
    const token = `${base64url({ kid: refreshKeyId, alg: "RS256" })}.${base64url(payload)}.${randomChars(342, B64URL)}`;
    auth.mint(token, "refresh", grant, Math.min(REFRESH_INACTIVITY_MS, grant.consentedAt + REFRESH_ABSOLUTE_MS - now()));
    return token;
  };
  /** [UNCERTAIN] codes are seen as short HS256 JWS strings. */
  const mintCode = (): string => `${base64url({ alg: "HS256" })}.${base64url({ jti: randomUUID() })}.${randomChars(43, B64URL)}`;
  /** `ATATT3xFfGF0`, random base64url, `=` and an 8-digit upper-case hex checksum: 192 characters. */
  const mintApiToken = (): string => `ATATT3xFfGF0${randomChars(171, B64URL)}=${randomChars(8, HEX_UPPER)}`;
  /** A Data Center PAT: base64 of a 12-digit token id, a colon and 20 random bytes (44 characters). */
  const mintPat = (): string => Buffer.concat([Buffer.from(`${randomChars(12, "0123456789")}:`), randomBytes(20)]).toString("base64");

  // ---- answers -------------------------------------------------------------

  /** The token endpoint's answers (Auth0 underneath): never cached. */
  const oauthSend = (res: FastifyReply, status: number, body: unknown): FastifyReply =>
    res.code(status).header("content-type", "application/json").header("cache-control", "no-store").header("pragma", "no-cache").send(JSON.stringify(body));
  const oauthError = (res: FastifyReply, status: number, error: string, description: string): FastifyReply => oauthSend(res, status, { error, error_description: description });

  /** Jira's REST answers carry a request id (x-arequestid) and a trace id. */
  const jiraSend = (res: FastifyReply, status: number, body: unknown, headers: Record<string, string> = {}): FastifyReply => {
    res.code(status).header("content-type", JSON_TYPE).header("x-arequestid", randomUUID()).header("atl-traceid", randomChars(32, "0123456789abcdef")).header("cache-control", "no-cache, no-store, no-transform");
    for (const [name, value] of Object.entries(headers)) res.header(name, value);
    return res.send(JSON.stringify(body));
  };
  const errorCollection = (messages: string[], errors: Record<string, string> = {}) => ({ errorMessages: messages, errors });
  /** The gateway's own error shape: `code` and `message`, not an ErrorCollection. */
  const gatewayError = (res: FastifyReply, status: number, message: string): FastifyReply => jiraSend(res, status, { code: status, message });
  /** The site's answer to a request without a credential it accepts. */
  const siteUnauthorized = (res: FastifyReply, failedLogin: boolean): FastifyReply =>
    jiraSend(res, 401, errorCollection(["Client must be authenticated to access this resource."]), {
      "www-authenticate": 'Basic realm="protected-area"',
      ...(failedLogin ? { "x-seraph-loginreason": "AUTHENTICATED_FAILED" } : {}),
    });

  /** The consent flow's error page: shown in the browser, never redirected to the app. */
  const errorPage = (res: FastifyReply, detail: string): FastifyReply =>
    res
      .code(400)
      .type("text/html; charset=utf-8")
      .send(`<!DOCTYPE html><html><head><title>Atlassian</title></head><body><h1>Something went wrong</h1><p>${escapeHtml(detail)}</p></body></html>`);

  const avatarUrls = (base: string) => Object.fromEntries(["48x48", "24x24", "16x16", "32x32"].map((size) => [size, `${base}/secure/useravatar?size=${size}&avatarId=10122`]));

  /** The Cloud caller of /myself (v2 and v3 answer the same user). */
  const cloudMyself = (base: string, version: string) => ({
    self: `${base}/rest/api/${version}/user?accountId=${encodeURIComponent(user.accountId)}`,
    accountId: user.accountId,
    accountType: "atlassian",
    emailAddress: user.email,
    avatarUrls: avatarUrls(base),
    displayName: user.displayName,
    active: true,
    timeZone: "Etc/UTC",
    locale: "en_US",
    groups: { size: 2, items: [] },
    applicationRoles: { size: 1, items: [] },
    expand: "groups,applicationRoles",
  });
  /** The Data Center caller: key and name, no accountId. */
  const dataCenterMyself = (base: string) => ({
    self: `${base}/rest/api/2/user?username=${user.name}`,
    key: user.key,
    name: user.name,
    emailAddress: user.email,
    avatarUrls: avatarUrls(base),
    displayName: user.displayName,
    active: true,
    deleted: false,
    timeZone: "Etc/UTC",
    locale: "en_US",
    groups: { size: 2, items: [] },
    applicationRoles: { size: 1, items: [] },
    expand: "groups,applicationRoles",
  });

  // ---- auth.atlassian.com ---------------------------------------------------

  const authorize = async (request: FastifyRequest, res: FastifyReply) => {
    const q = queryParams(request);
    if (!q.client_id || q.client_id !== app.clientId) return errorPage(res, "The app's client_id is missing or unknown. Contact the app's developer.");
    if (!q.redirect_uri || !redirectUris.includes(q.redirect_uri)) {
      return errorPage(res, `The redirect_uri '${q.redirect_uri ?? ""}' does not match any callback URL configured for this app.`);
    }
    // [UNCERTAIN] what Atlassian shows without the gateway audience; a page is what a developer can act on.
    if (q.audience !== AUDIENCE) return errorPage(res, `The audience parameter must be ${AUDIENCE}.`);
    const target = new URL(q.redirect_uri);
    const fail = (error: string, description: string) => {
      target.searchParams.set("error", error);
      target.searchParams.set("error_description", description);
      if (q.state !== undefined) target.searchParams.set("state", q.state);
      return res.redirect(target.toString(), 302);
    };
    if (q.response_type !== "code") return fail("unsupported_response_type", `Unsupported response type: ${(q.response_type ?? "").slice(0, 40)}`);
    const scopes = [...new Set((q.scope ?? "").split(" ").filter(Boolean))];
    if (scopes.length === 0) return fail("invalid_scope", "The scope parameter is required.");
    const bad = scopes.find((s) => !SCOPE_NAME.test(s));
    if (bad !== undefined) return fail("invalid_scope", `The scope '${bad.slice(0, 80)}' is not valid.`);
    if (q._sandbox_decision === "deny") return fail("access_denied", "User did not authorize the request");
    // No PKCE at Atlassian: a code_challenge is ignored here, and so is a verifier later.
    const code = mintCode();
    const consent: Consent = { scopes, consentedAt: now() };
    auth.grantFromCode(auth.issueCode(code, consent, { redirectUri: q.redirect_uri }), consent);
    target.searchParams.set("code", code);
    if (q.state !== undefined) target.searchParams.set("state", q.state);
    return res.redirect(target.toString(), 302);
  };

  /** The token answer: a refresh token only with offline_access. */
  const tokenAnswer = (grant: Consent): Record<string, unknown> => {
    const accessToken = mintAccess(grant);
    return {
      access_token: accessToken,
      expires_in: accessTtlSeconds,
      token_type: "Bearer",
      ...(grant.scopes.includes("offline_access") ? { refresh_token: mintRefresh(grant) } : {}),
      scope: grant.scopes.join(" "),
    };
  };

  const redeemCode = (res: FastifyReply, p: Record<string, string>): FastifyReply => {
    if (!p.code) return oauthError(res, 400, "invalid_request", "Missing required parameter: code");
    // A verifier is not looked at. A replayed code also revokes what its consent minted (RFC 6749 §4.1.2).
    const redeemed = auth.redeemCode(p.code, { redirectUri: p.redirect_uri });
    // Unknown, replayed, expired, issued for another redirect URI (or none named), or revoked since: the same answer (Auth0's).
    if (!redeemed.ok || redeemed.code.data.revokedAs !== undefined) return oauthError(res, 403, "invalid_grant", "Invalid authorization code");
    return oauthSend(res, 200, tokenAnswer(redeemed.code.data));
  };

  const redeemRefresh = (res: FastifyReply, p: Record<string, string>): FastifyReply => {
    if (!p.refresh_token) return oauthError(res, 400, "invalid_request", "Missing required parameter: refresh_token");
    // Reuse after the leeway: every refresh token of the chain dies, so the user must consent again; its access tokens live on.
    const rotated = auth.rotate(p.refresh_token, "refresh", { graceMs: leewayMs, onReuse: "revoke-refresh" });
    if (rotated.ok && isConsent(rotated.grant)) return oauthSend(res, 200, tokenAnswer(rotated.grant));
    return oauthError(res, 403, "invalid_grant", "Unknown or invalid refresh token.");
  };

  const token = async (request: FastifyRequest, res: FastifyReply) => {
    const p = bodyParams(request);
    const basic = basicCredentials(request);
    const clientId = basic?.id ?? p.client_id;
    const clientSecret = basic?.secret ?? p.client_secret;
    if (!clientId) return oauthError(res, 400, "invalid_request", "Missing required parameter: client_id");
    // An unknown client and a wrong secret look alike: access_denied, as a user's refusal does (jira.js).
    if (clientId !== app.clientId || clientSecret !== app.clientSecret) return oauthError(res, 401, "access_denied", "Unauthorized");
    switch (p.grant_type) {
      case "authorization_code":
        return redeemCode(res, p);
      case "refresh_token":
        return redeemRefresh(res, p);
      case undefined:
      case "":
        return oauthError(res, 400, "invalid_request", "Missing required parameter: grant_type");
      default:
        return oauthError(res, 403, "unauthorized_client", `Grant type '${p.grant_type.slice(0, 40)}' not allowed for the client.`);
    }
  };

  // ---- api.atlassian.com ----------------------------------------------------

  /** The 3LO access token of a gateway call, or the gateway's 401. */
  const gatewayGrant = (request: FastifyRequest, res: FastifyReply): Consent | undefined => {
    // A refresh chain that died (reuse) leaves its access tokens good until they expire.
    const checked = auth.verify(bearerToken(request), ["access"]);
    if (checked.ok && isConsent(checked.token.grant)) return checked.token.grant;
    gatewayError(res, 401, "Unauthorized");
    return undefined;
  };

  const siteScopes = (grant: Consent): string[] => grant.scopes.filter((s) => !ACCOUNT_SCOPES.has(s));

  const accessibleResources = async (request: FastifyRequest, res: FastifyReply) => {
    const grant = gatewayGrant(request, res);
    if (!grant) return res;
    const scopes = siteScopes(grant);
    // The site appears for a consent that covers Jira; its URL is this sandbox's own origin.
    const resources = scopes.some(isJiraScope)
      ? [{ id: site.cloudId, url: origin(request), name: site.name, scopes, avatarUrl: "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png" }]
      : [];
    return jiraSend(res, 200, resources);
  };

  const gatewayMyself = async (request: FastifyRequest, res: FastifyReply) => {
    const { cloudId, version } = request.params as { cloudId: string; version: string };
    const grant = gatewayGrant(request, res);
    if (!grant) return res;
    // [UNCERTAIN] a cloud the token does not reach: the gateway refuses it as unauthorized.
    if (cloudId !== site.cloudId) return gatewayError(res, 401, "Unauthorized");
    const granular = MYSELF_GRANULAR.every((s) => grant.scopes.includes(s));
    if (!grant.scopes.includes(MYSELF_CLASSIC) && !granular) return gatewayError(res, 401, "Unauthorized; scope does not match");
    return jiraSend(res, 200, cloudMyself(origin(request), version), { "x-aaccountid": encodeURIComponent(user.accountId) });
  };

  // ---- the site (Cloud, Basic) and the instance (Data Center, Bearer) -------

  /**
   * The caller of a site path, or the site's refusal (sent): a Cloud API token (Basic email:token), or a
   * Data Center PAT (Bearer), which has REST v2 only. `resource` names the path in Data Center's 404.
   */
  const siteCaller = (request: FastifyRequest, res: FastifyReply, version: string, resource: string): RestCaller | undefined => {
    const header = request.headers.authorization ?? "";
    if (/^basic /i.test(header)) {
      const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      const email = colon < 0 ? "" : decoded.slice(0, colon);
      const checked = colon < 0 ? undefined : auth.verify(decoded.slice(colon + 1), ["api_token"]);
      const owner = checked?.ok ? checked.token.grant : undefined;
      // The token and the email of its account, compared as Jira does, case-insensitively.
      if (!owner || isConsent(owner) || owner.email?.toLowerCase() !== email.toLowerCase()) {
        siteUnauthorized(res, true);
        return undefined;
      }
      return { deployment: "cloud", base: origin(request) };
    }
    // A 3LO token is no good against the site (providers.md §4.1); only a PAT is, and only on Data Center.
    if (!auth.verify(bearerToken(request), ["pat"]).ok) {
      siteUnauthorized(res, false);
      return undefined;
    }
    if (version !== "2") {
      // Data Center has only REST v2; its REST layer answers an unknown resource like this.
      jiraSend(res, 404, { message: `null for uri: ${origin(request)}/rest/api/${version}/${resource}`, "status-code": 404 });
      return undefined;
    }
    return { deployment: "datacenter", base: origin(request) };
  };

  const siteMyself = async (request: FastifyRequest, res: FastifyReply) => {
    const { version } = request.params as { version: string };
    const caller = siteCaller(request, res, version, "myself");
    if (!caller) return res;
    if (caller.deployment === "datacenter") return jiraSend(res, 200, dataCenterMyself(caller.base), { "x-ausername": user.name });
    return jiraSend(res, 200, cloudMyself(caller.base, version), { "x-aaccountid": encodeURIComponent(user.accountId) });
  };

  /** The caller of a gateway path holding one of `accepted` scopes, or the gateway's 401 (sent). */
  const gatewayCaller = (request: FastifyRequest, res: FastifyReply, accepted: readonly string[]): RestCaller | undefined => {
    const { cloudId } = request.params as { cloudId: string };
    const grant = gatewayGrant(request, res);
    if (!grant) return undefined;
    if (cloudId !== site.cloudId) {
      gatewayError(res, 401, "Unauthorized");
      return undefined;
    }
    if (!grant.scopes.some((s) => accepted.includes(s))) {
      gatewayError(res, 401, "Unauthorized; scope does not match");
      return undefined;
    }
    return { deployment: "cloud", base: `${origin(request)}/ex/jira/${cloudId}` };
  };

  // ---- projects and issues ----------------------------------------------------

  /** Jira's timestamps: milliseconds and an offset without a colon (`2026-12-01T10:00:00.000+0000`). */
  const jiraTime = (ms: number): string => new Date(ms).toISOString().replace("Z", "+0000");
  const isAdfDoc = (value: unknown): boolean => {
    const doc = value as { type?: unknown; version?: unknown; content?: unknown } | null;
    return typeof doc === "object" && doc !== null && doc.type === "doc" && doc.version === 1 && Array.isArray(doc.content);
  };
  /** A wiki-markup string as ADF: a paragraph a line (what Jira shows v3 callers of an issue written through v2). */
  const textToAdf = (text: string) => ({ type: "doc", version: 1, content: text.split("\n").map((line) => ({ type: "paragraph", content: line === "" ? [] : [{ type: "text", text: line }] })) });
  /** ADF as the plain text v2 callers get (marks and non-text nodes dropped). */
  const adfToText = (node: unknown): string => {
    const n = node as { type?: string; text?: string; content?: unknown[] };
    if (n.type === "text") return n.text ?? "";
    const inner = (n.content ?? []).map(adfToText);
    return n.type === "doc" ? inner.join("\n") : inner.join("");
  };
  const avatarSet = (base: string, kind: string, id: number) => Object.fromEntries(["48x48", "24x24", "16x16", "32x32"].map((size) => [size, `${base}/rest/api/2/universal_avatar/view/type/${kind}/avatar/${id}?size=${size.split("x")[0]}`]));
  const issueTypeView = (type: IssueType, caller: RestCaller, version: string) => ({
    self: `${caller.base}/rest/api/${version}/issuetype/${type.id}`,
    id: type.id,
    description: type.description,
    iconUrl: `${caller.base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/${type.avatarId}?size=medium`,
    name: type.name,
    subtask: false,
    avatarId: type.avatarId,
    hierarchyLevel: 0,
  });
  const projectRef = (project: Project, caller: RestCaller, version: string) => ({
    self: `${caller.base}/rest/api/${version}/project/${project.id}`,
    id: project.id,
    key: project.key,
    name: project.name,
    projectTypeKey: "software",
    simplified: false,
    avatarUrls: avatarSet(caller.base, "project", 10424),
  });
  const projectView = (project: Project, caller: RestCaller, version: string, withIssueTypes: boolean) => ({
    expand: "description,lead,issueTypes,url,projectKeys,permissions,insight",
    ...projectRef(project, caller, version),
    ...(withIssueTypes ? { issueTypes: project.issueTypes.map((t) => issueTypeView(t, caller, version)) } : {}),
    style: "classic",
    isPrivate: false,
    properties: {},
  });
  const userRef = (caller: RestCaller, version: string) =>
    caller.deployment === "cloud"
      ? { self: `${caller.base}/rest/api/${version}/user?accountId=${encodeURIComponent(user.accountId)}`, accountId: user.accountId, emailAddress: user.email, avatarUrls: avatarUrls(caller.base), displayName: user.displayName, active: true, timeZone: "Etc/UTC", accountType: "atlassian" }
      : { self: `${caller.base}/rest/api/2/user?username=${user.name}`, name: user.name, key: user.key, emailAddress: user.email, avatarUrls: avatarUrls(caller.base), displayName: user.displayName, active: true, timeZone: "Etc/UTC" };
  /** Every new issue is in the workflow's first status. */
  const statusView = (caller: RestCaller, version: string) => ({
    self: `${caller.base}/rest/api/${version}/status/10000`,
    description: "",
    iconUrl: `${caller.base}/`,
    name: "To Do",
    id: "10000",
    statusCategory: { self: `${caller.base}/rest/api/${version}/statuscategory/2`, id: 2, key: "new", colorName: "blue-gray", name: "To Do" },
  });
  const issueView = (issue: IssueRecord, caller: RestCaller, version: string, fieldsParam: string | undefined) => {
    const project = projects.find((p) => p.id === issue.projectId) as Project;
    const issueType = project.issueTypes.find((t) => t.id === issue.issueTypeId) as IssueType;
    const description = issue.description === null ? null : version === "3" ? issue.description : adfToText(issue.description);
    const all: Record<string, unknown> = {
      statuscategorychangedate: jiraTime(issue.created),
      issuetype: issueTypeView(issueType, caller, version),
      project: projectRef(project, caller, version),
      fixVersions: [],
      resolution: null,
      resolutiondate: null,
      workratio: -1,
      lastViewed: null,
      watches: { self: `${caller.base}/rest/api/${version}/issue/${issue.key}/watchers`, watchCount: 1, isWatching: true },
      created: jiraTime(issue.created),
      priority: { self: `${caller.base}/rest/api/${version}/priority/3`, iconUrl: `${caller.base}/images/icons/priorities/medium.svg`, name: "Medium", id: "3" },
      labels: issue.labels,
      assignee: null,
      updated: jiraTime(issue.updated),
      status: statusView(caller, version),
      components: [],
      description,
      summary: issue.summary,
      creator: userRef(caller, version),
      subtasks: [],
      reporter: userRef(caller, version),
      duedate: null,
      votes: { self: `${caller.base}/rest/api/${version}/issue/${issue.key}/votes`, votes: 0, hasVoted: false },
    };
    // `fields`: a comma list, `*all` / `*navigable` for every field, `-name` to leave one out.
    const asked = (fieldsParam ?? "*all").split(",").map((f) => f.trim()).filter(Boolean);
    const everything = asked.some((f) => f === "*all" || f === "*navigable");
    const fields = Object.fromEntries(Object.entries(all).filter(([name]) => (everything || asked.includes(name)) && !asked.includes(`-${name}`)));
    return {
      expand: "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
      id: issue.id,
      self: `${caller.base}/rest/api/${version}/issue/${issue.id}`,
      key: issue.key,
      fields,
    };
  };
  const findIssue = (idOrKey: string): IssueRecord | undefined => issues.get(idOrKey) ?? [...issues.values()].find((i) => i.key.toLowerCase() === idOrKey.toLowerCase());
  const findProject = (ref: unknown): Project | undefined => {
    const r = ref as { id?: unknown; key?: unknown } | null;
    if (typeof r !== "object" || r === null) return undefined;
    if (r.id !== undefined) return projects.find((p) => p.id === String(r.id));
    return typeof r.key === "string" ? projects.find((p) => p.key.toLowerCase() === (r.key as string).toLowerCase()) : undefined;
  };

  const CREATABLE = new Set(["project", "issuetype", "summary", "description", "labels"]);
  /** POST .../issue: the issue's fields checked as Jira checks them, every problem in one ErrorCollection. */
  const createIssue = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const body = request.body as { fields?: unknown } | undefined;
    const given = body?.fields;
    if (typeof given !== "object" || given === null || Array.isArray(given)) {
      return jiraSend(res, 400, errorCollection([], { project: "Specify a valid project ID or key", summary: "You must specify a summary of the issue.", issuetype: "Specify an issue type" }));
    }
    const f = given as Record<string, unknown>;
    const errors: Record<string, string> = {};
    const project = findProject(f.project);
    if (!project) errors.project = "Specify a valid project ID or key";
    const typeRef = f.issuetype as { id?: unknown; name?: unknown } | undefined;
    let issueType: IssueType | undefined;
    if (typeof typeRef !== "object" || typeRef === null || (typeRef.id === undefined && typeRef.name === undefined)) errors.issuetype = "Specify an issue type";
    else if (project) {
      issueType = project.issueTypes.find((t) => (typeRef.id !== undefined ? t.id === String(typeRef.id) : typeof typeRef.name === "string" && t.name.toLowerCase() === typeRef.name.toLowerCase()));
      if (!issueType) errors.issuetype = "The issue type selected is invalid.";
    }
    if (typeof f.summary !== "string" || f.summary.trim() === "") errors.summary = "You must specify a summary of the issue.";
    else if (f.summary.length > SUMMARY_MAX) errors.summary = `Summary must be less than ${SUMMARY_MAX} characters.`;
    let description: unknown = null;
    if (f.description !== undefined && f.description !== null) {
      // v3 speaks ADF only (a plain string is refused); v2 takes wiki markup.
      if (version === "3") {
        if (isAdfDoc(f.description)) description = f.description;
        else errors.description = "Operation value must be an Atlassian Document";
      } else if (typeof f.description === "string") description = textToAdf(f.description);
      else errors.description = "Operation value must be a string";
    }
    const labels = f.labels ?? [];
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string" || /\s/.test(l))) errors.labels = "The label can't contain spaces.";
    for (const name of Object.keys(f)) if (!CREATABLE.has(name)) errors[name] = `Field '${name}' cannot be set. It is not on the appropriate screen, or unknown.`;
    if (Object.keys(errors).length > 0 || !project || !issueType) return jiraSend(res, 400, errorCollection([], errors));
    project.issueCount += 1;
    const at = now();
    const issue: IssueRecord = {
      id: String(state.nextIssueId++),
      key: `${project.key}-${project.issueCount}`,
      projectId: project.id,
      issueTypeId: issueType.id,
      summary: f.summary as string,
      description,
      labels: labels as string[],
      created: at,
      updated: at,
    };
    issues.set(issue.id, issue);
    return jiraSend(res, 201, { id: issue.id, key: issue.key, self: `${caller.base}/rest/api/${version}/issue/${issue.id}` });
  };
  const getIssue = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const { idOrKey } = request.params as { idOrKey: string };
    const issue = findIssue(idOrKey);
    if (!issue) return jiraSend(res, 404, errorCollection([ISSUE_NOT_FOUND]));
    return jiraSend(res, 200, issueView(issue, caller, version, queryParams(request).fields));
  };
  /** A search's JQL parsed against the site's projects and issues, or the messages of Jira's 400. */
  const queryOf = (jql: string): ReturnType<typeof parseJql> | { messages: string[] } => {
    try {
      return parseJql(jql, { projectKeys: projects.map((p) => p.key), issueKeys: [...issues.values()].map((i) => i.key) });
    } catch (error) {
      if (error instanceof JqlError) return { messages: error.messages };
      throw error;
    }
  };
  /**
   * GET/POST .../search/jql, the enhanced search: `jql`, `nextPageToken`, `maxResults`, `fields` (only `id` when
   * left out), answering `{issues, nextPageToken?, isLast}` with no total; on the last page nextPageToken is
   * absent, not null (JRACLOUD-92184). The token is opaque: it names the query it pages and when it was made,
   * so it survives a restart and is refused for another query or after 7 days.
   */
  const searchJql = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    // Data Center has no enhanced search: its REST layer answers the unknown resource.
    if (caller.deployment === "datacenter") return jiraSend(res, 404, { message: `null for uri: ${caller.base}/rest/api/${version}/search/jql`, "status-code": 404 });
    const post = request.method === "POST";
    const input = (post ? (request.body ?? {}) : request.query) as Record<string, unknown>;
    if (post && (typeof input !== "object" || Array.isArray(input))) return jiraSend(res, 400, errorCollection(["Invalid request payload. Refer to the REST API documentation and try again."]));
    const list = (value: unknown): string[] | undefined => {
      if (value === undefined) return undefined;
      const items = Array.isArray(value) ? value : [value];
      return items.flatMap((v) => String(v).split(",")).map((f) => f.trim()).filter(Boolean);
    };
    const jql = typeof input.jql === "string" ? input.jql : "";
    const fields = list(input.fields);
    const rawMax = input.maxResults;
    const maxResults = rawMax === undefined || rawMax === "" ? SEARCH_PAGE : Number(rawMax);
    if (!Number.isInteger(maxResults) || maxResults < 0) return jiraSend(res, 400, errorCollection([`The value '${String(rawMax)}' is invalid for the parameter maxResults.`]));
    const idsOnly = fields === undefined || fields.every((f) => f === "id" || f === "key");
    const limit = Math.min(maxResults, idsOnly ? SEARCH_PAGE_MAX_IDS : SEARCH_PAGE_MAX);
    const query = queryOf(jql);
    if (!("sort" in query)) return jiraSend(res, 400, errorCollection(query.messages));
    if (!query.where) return jiraSend(res, 400, errorCollection([UNBOUNDED]));
    const fingerprint = createHash("sha256").update(jql.trim()).digest("base64url").slice(0, 16);
    let offset = 0;
    if (input.nextPageToken !== undefined && input.nextPageToken !== "") {
      const decoded = readPageToken(String(input.nextPageToken));
      // [UNCERTAIN] Jira's wording for a token it will not take; the status and shape are its ErrorCollection's.
      if (!decoded || decoded.q !== fingerprint || now() - decoded.t > PAGE_TOKEN_TTL_MS) return jiraSend(res, 400, errorCollection(["The provided next page token is invalid or expired."]));
      offset = decoded.o;
    }
    const matched = query.sort([...issues.values()].map(jqlIssue).filter(query.where));
    const page = matched.slice(offset, offset + limit);
    const isLast = offset + page.length >= matched.length;
    const fieldsParam = fields?.filter((f) => f !== "id" && f !== "key").join(",");
    const body: Record<string, unknown> = {
      issues: page.map((i) => {
        const issue = issues.get(i.id) as IssueRecord;
        if (fields === undefined || (fields.length === 1 && fields[0] === "id")) return { id: issue.id };
        // Only key asked for besides id: the issue with no fields ("-all" leaves out a field no issue has, so every one).
        return issueView(issue, caller, version, fieldsParam === "" ? "-all" : fieldsParam);
      }),
      ...(isLast ? {} : { nextPageToken: pageToken({ o: offset + page.length, q: fingerprint, t: now() }) }),
      isLast,
    };
    return jiraSend(res, 200, body);
  };
  /** What the JQL sees of a stored issue. */
  const jqlIssue = (issue: IssueRecord): JqlIssue => {
    const project = projects.find((p) => p.id === issue.projectId) as Project;
    const issueType = project.issueTypes.find((t) => t.id === issue.issueTypeId) as IssueType;
    return {
      id: issue.id,
      key: issue.key,
      projectKey: project.key,
      issueType: issueType.name,
      summary: issue.summary,
      descriptionText: issue.description === null ? "" : adfToText(issue.description),
      labels: issue.labels,
      created: issue.created,
      updated: issue.updated,
    };
  };
  /**
   * GET/POST .../search: removed from Jira Cloud (410, CHANGE-2046); Data Center still serves it, paged by
   * `startAt` with a `total`, every navigable field when `fields` is left out.
   */
  const removedSearch = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    if (caller.deployment !== "datacenter") return jiraSend(res, 410, errorCollection([SEARCH_REMOVED]));
    const input = (request.method === "POST" ? (request.body ?? {}) : request.query) as Record<string, unknown>;
    const jql = typeof input.jql === "string" ? input.jql : "";
    const startAt = input.startAt === undefined ? 0 : Number(input.startAt);
    const maxResults = input.maxResults === undefined ? SEARCH_PAGE : Number(input.maxResults);
    if (!Number.isInteger(startAt) || startAt < 0) return jiraSend(res, 400, errorCollection([`The value '${String(input.startAt)}' is invalid for the parameter startAt.`]));
    if (!Number.isInteger(maxResults) || maxResults < 0) return jiraSend(res, 400, errorCollection([`The value '${String(input.maxResults)}' is invalid for the parameter maxResults.`]));
    const query = queryOf(jql);
    if (!("sort" in query)) return jiraSend(res, 400, errorCollection(query.messages));
    const matched = query.sort([...issues.values()].map(jqlIssue).filter(query.where ?? (() => true)));
    const fields = Array.isArray(input.fields) ? input.fields.map(String).join(",") : typeof input.fields === "string" ? input.fields : undefined;
    const page = matched.slice(startAt, startAt + Math.min(maxResults, SEARCH_PAGE_MAX));
    return jiraSend(res, 200, {
      startAt,
      maxResults: Math.min(maxResults, SEARCH_PAGE_MAX),
      total: matched.length,
      issues: page.map((i) => issueView(issues.get(i.id) as IssueRecord, caller, version, fields)),
    });
  };

  const listProjects = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const expand = (queryParams(request).expand ?? "").split(",");
    return jiraSend(res, 200, projects.map((p) => projectView(p, caller, version, expand.includes("issueTypes"))));
  };
  const getProject = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const { idOrKey } = request.params as { idOrKey: string };
    const project = projects.find((p) => p.id === idOrKey || p.key.toLowerCase() === idOrKey.toLowerCase());
    if (!project) return jiraSend(res, 404, errorCollection([`No project could be found with key '${idOrKey}'.`]));
    // A single project carries its issue types without being asked.
    return jiraSend(res, 200, projectView(project, caller, version, true));
  };

  // ---- faults, as each host sends them ---------------------------------------

  /** X-RateLimit-Reset: the request time plus Retry-After, to the minute (`yyyy-MM-ddTHH:mmZ`). */
  const resetHeader = (seconds: number): string => minuteOf(now() + seconds * 1000);
  /** An instant as X-RateLimit-Reset writes it: rounded up to the minute, so that nobody comes back early. */
  const minuteOf = (ms: number): string => `${new Date(Math.ceil(ms / 60_000) * 60_000).toISOString().slice(0, 16)}Z`;

  const definition: SandboxDefinition = {
    provider: "jira",
    state,
    browserPaths: ["/authorize"],
    endpoints: (url) => {
      ownOrigin = url;
      return { authorizeUrl: `${url}/authorize`, tokenUrl: `${url}/oauth/token`, apiUrl: url };
    },
    faults: {
      rateLimit: (res, fault) => {
        const seconds = Math.ceil(fault.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS);
        res.header("retry-after", String(seconds));
        if (isTokenPath(pathOf(res.request))) return oauthError(res, 429, "too_many_requests", "Too Many Requests");
        // [UNCERTAIN] the body of a Jira 429; the headers are what clients act on.
        return jiraSend(res, 429, errorCollection(["Rate limit exceeded."]), {
          "x-ratelimit-limit": String(BURST_LIMIT),
          "x-ratelimit-remaining": "0",
          "x-ratelimit-reset": resetHeader(seconds),
          "ratelimit-reason": "jira-burst-based",
        });
      },
      serverError: (res, fault) => {
        if (fault.retryAfterSeconds !== undefined) res.header("retry-after", String(Math.ceil(fault.retryAfterSeconds)));
        const path = pathOf(res.request);
        if (isTokenPath(path)) return oauthError(res, 503, "temporarily_unavailable", "The service is temporarily unavailable. Please try again later.");
        if (isGatewayPath(path)) return gatewayError(res, 503, "Service Unavailable");
        return jiraSend(res, 500, errorCollection(["Internal server error"]));
      },
      badRequest: (res) => {
        if (isTokenPath(pathOf(res.request))) return oauthError(res, 400, "invalid_request", "Invalid request body");
        return jiraSend(res, 400, errorCollection([], { expand: "The value of 'expand' is not valid." }));
      },
      malformed: (res) => {
        const body = isTokenPath(pathOf(res.request)) ? '{"access_token":"eyJraWQiOiJhdXRoLmF0bGFzc2lhbi5jb20tQUNDRVNT' : `{"self":"http://127.0.0.1/rest/api/3/user?accountId=${user.accountId}","accountId":"7`;
        return res.code(200).header("content-type", JSON_TYPE).send(body);
      },
    },
    // An enforced rate's window in Jira Cloud's headers; X-RateLimit-NearLimit on an answer let through when
    // less than a fifth of the budget is left (rate-limiting docs). The token endpoint is auth.atlassian.com,
    // another service, and gets none.
    rateLimitHeaders: (res, window) => {
      if (isTokenPath(pathOf(res.request))) return;
      res
        .header("x-ratelimit-limit", String(window.limit))
        .header("x-ratelimit-remaining", String(window.remaining))
        .header("x-ratelimit-reset", minuteOf(window.resetAtMs));
      if (res.statusCode !== 429 && window.remaining < window.limit * NEAR_LIMIT_FRACTION) res.header("x-ratelimit-nearlimit", "true");
    },
    revokeAll: () => auth.revokeAll(),
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      const baseUrl = ownOrigin ?? "";
      const expiry = (token: IssuedToken) => (token.expiresAt === undefined ? {} : { expiresAt: new Date(token.expiresAt).toISOString() });
      if (parsed.type === "datacenter") {
        const accessToken = mintPat();
        const pat = auth.mint(accessToken, "pat", auth.grant({}), parsed.expiresInDays === undefined ? undefined : parsed.expiresInDays * 86_400_000);
        return { accessToken, baseUrl, key: user.key, name: user.name, displayName: user.displayName, ...expiry(pat) };
      }
      const apiKey = mintApiToken();
      const apiToken = auth.mint(apiKey, "api_token", auth.grant({ email: user.email }), (parsed.expiresInDays ?? API_TOKEN_MAX_DAYS) * 86_400_000);
      return { apiKey, email: user.email, baseUrl, accountId: user.accountId, displayName: user.displayName, ...expiry(apiToken) };
    },
    routes(server: FastifyInstance) {
      server.get("/authorize", authorize);
      server.post("/oauth/token", token);
      server.get("/oauth/token/accessible-resources", accessibleResources);
      server.get<{ Params: { cloudId: string; version: string } }>("/ex/jira/:cloudId/rest/api/:version/myself", async (request, res) => {
        if (!["2", "3"].includes(request.params.version)) return gatewayError(res, 404, "Not Found");
        return gatewayMyself(request, res);
      });
      server.get<{ Params: { version: string } }>("/rest/api/:version/myself", async (request, res) => {
        if (!["2", "3"].includes(request.params.version)) return jiraSend(res, 404, errorCollection(["The requested API version is not supported."]));
        return siteMyself(request, res);
      });
      // Projects and issues, through the gateway (3LO, scope-checked) and on the site (API token or PAT).
      type Handler = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string) => FastifyReply;
      const both = (method: "GET" | "POST", resource: string, accepted: readonly string[], handler: Handler): void => {
        server.route<{ Params: { cloudId: string; version: string } }>({
          method,
          url: `/ex/jira/:cloudId/rest/api/:version/${resource}`,
          handler: async (request, res) => {
            if (!["2", "3"].includes(request.params.version)) return gatewayError(res, 404, "Not Found");
            const caller = gatewayCaller(request, res, accepted);
            return caller ? handler(request, res, caller, request.params.version) : res;
          },
        });
        server.route<{ Params: { version: string } }>({
          method,
          url: `/rest/api/:version/${resource}`,
          handler: async (request, res) => {
            const { version } = request.params;
            if (!["2", "3"].includes(version)) return jiraSend(res, 404, errorCollection(["The requested API version is not supported."]));
            const caller = siteCaller(request, res, version, resource.replace(/:[a-zA-Z]+/g, (name) => String((request.params as Record<string, unknown>)[name.slice(1)])));
            return caller ? handler(request, res, caller, version) : res;
          },
        });
      };
      both("POST", "issue", WRITE_WORK, createIssue);
      both("GET", "issue/:idOrKey", READ_WORK, getIssue);
      both("GET", "search/jql", READ_WORK, searchJql);
      both("POST", "search/jql", READ_WORK, searchJql);
      both("GET", "search", READ_WORK, removedSearch);
      both("POST", "search", READ_WORK, removedSearch);
      both("GET", "project", READ_WORK, listProjects);
      both("GET", "project/:idOrKey", READ_WORK, getProject);
      server.setNotFoundHandler(async (request, res) => {
        const path = pathOf(request);
        if (isGatewayPath(path)) return gatewayError(res, 404, "Not Found");
        return jiraSend(res, 404, errorCollection([`No resource at ${request.method} ${path.slice(0, 200)}`]));
      });
    },
  };
  return definition;
}

export async function startJiraSandbox(options: JiraSandboxOptions = {}): Promise<StartedSandbox> {
  // Client ids are 32 characters; secrets are long base64url strings starting ATOA (developer console).
  const app = { clientId: options.clientId ?? randomChars(32), clientSecret: options.clientSecret ?? `ATOA${randomChars(60, B64URL)}${randomChars(8, HEX_UPPER)}` };
  return startSandbox("jira", options, app, (registered, restored, redirectUris) => jiraSandbox({ ...options, redirectUris }, registered, restored));
}
