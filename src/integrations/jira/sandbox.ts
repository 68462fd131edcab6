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
 *   GET  /oauth/token/accessible-resources           the sites the token reaches: `sites` of them (default 1), each
 *                                                    with its own cloudId, name, url, projects (SBX) and issues
 *   GET  /ex/jira/{cloudId}/rest/api/{2,3}/myself    the caller, through the gateway (3LO access tokens); its
 *                                                    `timeZone` is the `timeZone` option
 *   GET  /rest/api/{2,3}/myself                      the caller, on the site itself: a Cloud API token (Basic
 *                                                    email:token), or a Data Center personal access token (Bearer),
 *                                                    which, as on Data Center, has no v3
 *   [/ex/jira/{cloudId}]/rest/api/{2,3}/...          issues (create, get, edit, delete, changelog, transitions,
 *                                                    comments), projects, the enhanced search and the removed
 *                                                    old search: sandboxIssues.ts says how each answers
 *   /ex/jira/{cloudId}/rest/api/{2,3}/webhook[/refresh]  dynamic webhooks and their signed deliveries (3LO only):
 *                                                    sandboxWebhooks.ts
 *   /_sandbox/jira/...                               the control plane: changes "made in Jira" by other people,
 *                                                    the search's lag, the deliveries sent (both files above)
 *
 * Writes need `write:jira-work` (or `write:issue:jira`) on 3LO, reads `read:jira-work` (or `read:issue:jira`),
 * webhooks `manage:jira-webhook` and `read:jira-work`; a missing one is the gateway's scope mismatch.
 *
 * Sites: the first is the sandbox's own origin, reachable through the gateway and on the site paths (Basic, PAT)
 * as before; the others (option `sites`) are reachable only through the gateway, and the url accessible-resources
 * reports for them (`https://autoflow-sandbox-N.atlassian.invalid`) is a name to match, never contacted.
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
import { randomBytes, randomUUID } from "node:crypto";
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
import { checkTimeZone, errorCollection, freshProjects, freshSite, jiraIssues, jiraSend, type IssueEvent, type IssueRecord, type JiraSite, type JiraUser, type RestCaller, type WebhookRecord } from "./sandboxIssues.js";
import { jiraWebhooks } from "./sandboxWebhooks.js";

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
/** What managing dynamic webhooks needs: both scopes (REST v3 reference, "Register dynamic webhooks"). */
const WEBHOOK_SCOPES = ["manage:jira-webhook", "read:jira-work"];

export type JiraSandboxOptions = SandboxOptions & {
  /** Ignored: Atlassian always rotates refresh tokens; it is not an app setting. */
  tokenRotation?: boolean;
  /** How long a used refresh token keeps working (the reuse leeway). Default 600 seconds. */
  refreshTokenGraceSeconds?: number;
  /** The sandbox's clock (tests move it to expire codes and tokens). Default Date.now. */
  now?: () => number;
  /** The account's IANA time zone: /myself reports it, JQL dates are read in it, timestamps written in it. Default UTC. */
  timeZone?: string;
  /** How many Jira sites the grant reaches (each its own cloudId, projects and issues). Default 1. */
  sites?: number;
  /** How long a change stays out of the enhanced search (eventual consistency). Default 0. */
  searchLagMs?: number;
  /** The waits before each retry of a failed webhook delivery. Default [100, 200, 400]. */
  webhookRetryDelaysMs?: number[];
};

/** One 3LO consent: its code, access and refresh tokens live and die together. */
type Consent = { scopes: string[]; consentedAt: number };
/** Whose site credential it is: an API token's account email; a PAT's owner is the user it was made by. */
type KeyOwner = { email?: string };
type TokenKind = "access" | "refresh" | "api_token" | "pat";
const isConsent = (grant: Consent | KeyOwner): grant is Consent => "scopes" in grant;
/** What a gateway path needs of a 3LO token: one of some scopes, or all of them. */
type Need = { any: readonly string[] } | { all: readonly string[] };
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

export function jiraSandbox(options: JiraSandboxOptions, app: SandboxApp, restored?: unknown) {
  const now = options.now ?? Date.now;
  const accessTtlSeconds = options.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS;
  const leewayMs = (options.refreshTokenGraceSeconds ?? REFRESH_LEEWAY_SECONDS) * 1000;
  const redirectUris = options.redirectUris ?? [];
  const timeZone = options.timeZone ?? "UTC";
  try {
    checkTimeZone(timeZone);
  } catch {
    throw new Error(`the jira sandbox's timeZone option is not an IANA time zone: ${timeZone}`);
  }
  const siteCount = options.sites ?? 1;
  if (!Number.isInteger(siteCount) || siteCount < 1 || siteCount > 20) throw new Error("the jira sandbox's sites option is an integer from 1 to 20");
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
    projects: freshProjects(),
    issues: new Map<string, IssueRecord>(),
    nextIssueId: 10000,
    /** The sites after the first (the first keeps `site`, `projects`, `issues` and `nextIssueId` above, as before). */
    otherSites: [] as JiraSite[],
    /** The first site's changelog, comment and webhook counters and webhooks. */
    firstSite: { nextChangeId: 10000, nextCommentId: 10000, webhooks: new Map<number, WebhookRecord>() },
    /** The people of the sites besides the calling user, who make the control plane's changes. */
    colleagues: [
      { accountId: `712020:${randomUUID()}`, displayName: "Avery Colleague", email: "avery.colleague@autoflow-sandbox.invalid" },
      { accountId: `712020:${randomUUID()}`, displayName: "Jordan Teammate", email: "jordan.teammate@autoflow-sandbox.invalid" },
    ] as JiraUser[],
  }));
  const { site, user, accessKeyId, refreshKeyId } = state;
  const people: JiraUser[] = [user, ...state.colleagues];
  const searchLag = { ms: options.searchLagMs ?? 0 };
  while (state.otherSites.length < siteCount - 1) state.otherSites.push(freshSite(`autoflow-sandbox-${state.otherSites.length + 2}`, `https://autoflow-sandbox-${state.otherSites.length + 2}.atlassian.invalid`));
  /**
   * The first site as the issue handlers see it: a view over the state's fields of old (so a stored state of an
   * earlier version keeps its issues), whose counters write through to them.
   */
  const firstSite: JiraSite = {
    get cloudId() {
      return site.cloudId;
    },
    get name() {
      return site.name;
    },
    get projects() {
      return state.projects;
    },
    get issues() {
      return state.issues;
    },
    get nextIssueId() {
      return state.nextIssueId;
    },
    set nextIssueId(value: number) {
      state.nextIssueId = value;
    },
    get nextChangeId() {
      return state.firstSite.nextChangeId;
    },
    set nextChangeId(value: number) {
      state.firstSite.nextChangeId = value;
    },
    get nextCommentId() {
      return state.firstSite.nextCommentId;
    },
    set nextCommentId(value: number) {
      state.firstSite.nextCommentId = value;
    },
    get webhooks() {
      return state.firstSite.webhooks;
    },
  };
  /** Every site the grant reaches, the sandbox's own origin first. */
  const sites = (): JiraSite[] => [firstSite, ...state.otherSites.slice(0, siteCount - 1)];
  const siteOf = (cloudId: string): JiraSite | undefined => sites().find((s) => s.cloudId === cloudId);
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

  /** The zone /myself names: the option as given ("Etc/UTC", Jira's own name for UTC, when left out). */
  const reportedZone = options.timeZone ?? "Etc/UTC";
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
    timeZone: reportedZone,
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
    timeZone: reportedZone,
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
      ? sites().map((s) => ({ id: s.cloudId, url: s.url ?? origin(request), name: s.name, scopes, avatarUrl: "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png" }))
      : [];
    return jiraSend(res, 200, resources);
  };

  const gatewayMyself = async (request: FastifyRequest, res: FastifyReply) => {
    const { cloudId, version } = request.params as { cloudId: string; version: string };
    const grant = gatewayGrant(request, res);
    if (!grant) return res;
    // [UNCERTAIN] a cloud the token does not reach: the gateway refuses it as unauthorized.
    if (!siteOf(cloudId)) return gatewayError(res, 401, "Unauthorized");
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
      return { deployment: "cloud", base: origin(request), site: firstSite };
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
    return { deployment: "datacenter", base: origin(request), site: firstSite };
  };

  const siteMyself = async (request: FastifyRequest, res: FastifyReply) => {
    const { version } = request.params as { version: string };
    const caller = siteCaller(request, res, version, "myself");
    if (!caller) return res;
    if (caller.deployment === "datacenter") return jiraSend(res, 200, dataCenterMyself(caller.base), { "x-ausername": user.name });
    return jiraSend(res, 200, cloudMyself(caller.base, version), { "x-aaccountid": encodeURIComponent(user.accountId) });
  };

  /** The caller of a gateway path holding the scopes it needs (one of `accepted`, or all of `required`), or the gateway's 401 (sent). */
  const gatewayCaller = (request: FastifyRequest, res: FastifyReply, need: Need): RestCaller | undefined => {
    const { cloudId } = request.params as { cloudId: string };
    const grant = gatewayGrant(request, res);
    if (!grant) return undefined;
    // [UNCERTAIN] a cloud the token does not reach: the gateway refuses it as unauthorized.
    const target = siteOf(cloudId);
    if (!target) {
      gatewayError(res, 401, "Unauthorized");
      return undefined;
    }
    const granted = "all" in need ? need.all.every((s) => grant.scopes.includes(s)) : grant.scopes.some((s) => need.any.includes(s));
    if (!granted) {
      gatewayError(res, 401, "Unauthorized; scope does not match");
      return undefined;
    }
    return { deployment: "cloud", base: `${origin(request)}/ex/jira/${cloudId}`, site: target };
  };

  // ---- projects, issues and webhooks (sandboxIssues.ts, sandboxWebhooks.ts) ----------

  /** Events of the request under way: delivered once its answer has left. */
  let batch: IssueEvent[] = [];
  const issuesApi = jiraIssues({ now, timeZone, origin: () => ownOrigin ?? "", people, searchLag, onEvent: (event) => batch.push(event) });
  const webhooks = jiraWebhooks({
    now,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    owner: user,
    issues: issuesApi,
    siteUrl: (s) => s.url ?? ownOrigin ?? "",
    retryDelaysMs: options.webhookRetryDelaysMs ?? [100, 200, 400],
  });
  /** Hands the request's events to the webhooks once the answer is sent. */
  const release = (res: FastifyReply): void => {
    if (batch.length === 0) return;
    const events = batch;
    batch = [];
    if (res.raw.writableFinished) webhooks.enqueue(events);
    else res.raw.once("finish", () => webhooks.enqueue(events));
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
    // The enhanced search (and the old one's 410) is a POST that changes nothing.
    readOnly: (method, path) => method === "POST" && /\/rest\/api\/[23]\/search(?:\/jql)?$/.test(path),
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
      /** Sends the handler's answer, then hands what it changed to the webhooks. */
      const run = (handler: Handler, request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
        batch = [];
        try {
          return handler(request, res, caller, version);
        } finally {
          release(res);
        }
      };
      const both = (method: "GET" | "POST" | "PUT" | "DELETE", resource: string, need: Need, handler: Handler, onSite: Handler = handler): void => {
        server.route<{ Params: { cloudId: string; version: string } }>({
          method,
          url: `/ex/jira/:cloudId/rest/api/:version/${resource}`,
          handler: async (request, res) => {
            if (!["2", "3"].includes(request.params.version)) return gatewayError(res, 404, "Not Found");
            const caller = gatewayCaller(request, res, need);
            return caller ? run(handler, request, res, caller, request.params.version) : res;
          },
        });
        server.route<{ Params: { version: string } }>({
          method,
          url: `/rest/api/:version/${resource}`,
          handler: async (request, res) => {
            const { version } = request.params;
            if (!["2", "3"].includes(version)) return jiraSend(res, 404, errorCollection(["The requested API version is not supported."]));
            const caller = siteCaller(request, res, version, resource.replace(/:[a-zA-Z]+/g, (name) => String((request.params as Record<string, unknown>)[name.slice(1)])));
            return caller ? run(onSite, request, res, caller, version) : res;
          },
        });
      };
      const read = { any: READ_WORK };
      const write = { any: WRITE_WORK };
      const r = issuesApi.rest;
      both("POST", "issue", write, r.createIssue);
      both("GET", "issue/:idOrKey", read, r.getIssue);
      both("PUT", "issue/:idOrKey", write, r.editIssue);
      both("DELETE", "issue/:idOrKey", write, r.deleteIssue);
      both("GET", "issue/:idOrKey/changelog", read, r.getChangelog);
      both("GET", "issue/:idOrKey/transitions", read, r.listTransitions);
      both("POST", "issue/:idOrKey/transitions", write, r.doTransition);
      both("GET", "issue/:idOrKey/comment", read, r.listComments);
      both("POST", "issue/:idOrKey/comment", write, r.addComment);
      both("GET", "search/jql", read, r.searchJql);
      both("POST", "search/jql", read, r.searchJql);
      both("GET", "search", read, r.removedSearch);
      both("POST", "search", read, r.removedSearch);
      both("GET", "project", read, r.listProjects);
      both("GET", "project/:idOrKey", read, r.getProject);
      // Dynamic webhooks are for OAuth 2.0 (and Connect) apps: an API token or a PAT on the site is refused.
      // [UNCERTAIN] the wording of that refusal.
      const appsOnly: Handler = (_request, res) => jiraSend(res, 403, errorCollection(["Only Connect and OAuth 2.0 apps can use this operation."]));
      const hooks = { all: WEBHOOK_SCOPES };
      const w = webhooks.rest;
      both("POST", "webhook", hooks, w.register, appsOnly);
      both("GET", "webhook", hooks, w.list, appsOnly);
      both("DELETE", "webhook", hooks, w.remove, appsOnly);
      both("PUT", "webhook/refresh", hooks, w.refresh, appsOnly);
      // The control plane: changes made in Jira by other people, the search's lag, the deliveries sent.
      const control = (handler: (request: FastifyRequest, res: FastifyReply) => FastifyReply) => async (request: FastifyRequest, res: FastifyReply) => {
        batch = [];
        try {
          return handler(request, res);
        } finally {
          release(res);
        }
      };
      const c = issuesApi.control;
      server.post("/_sandbox/jira/issues", control((request, res) => c.seedIssues(sites(), request, res)));
      server.patch("/_sandbox/jira/issues/:key", control((request, res) => c.patchIssue(sites(), request, res)));
      server.delete("/_sandbox/jira/issues/:key", control((request, res) => c.deleteByOther(sites(), request, res)));
      server.put("/_sandbox/jira/search-lag", control((request, res) => c.setSearchLag(request, res)));
      server.get("/_sandbox/jira/search-lag", async () => ({ searchLagMs: searchLag.ms }));
      server.get("/_sandbox/jira/users", async () => ({ users: people.map((p) => ({ accountId: p.accountId, displayName: p.displayName, emailAddress: p.email })) }));
      server.get("/_sandbox/jira/sites", async (request) => ({ sites: sites().map((s) => ({ cloudId: s.cloudId, name: s.name, url: s.url ?? origin(request) })) }));
      server.get("/_sandbox/jira/deliveries", webhooks.listDeliveries);
      server.delete("/_sandbox/jira/deliveries", async (_request, res) => webhooks.clearDeliveries(res));
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
