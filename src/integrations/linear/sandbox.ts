/**
 * A local Linear: the consent page (linear.app's path) and the OAuth and
 * GraphQL endpoints (api.linear.app's paths) at the root of one origin, so
 * an OAuth client, and a GraphQL client pointed at `<origin>/graphql` (the
 * SDK's `apiUrl`), work unchanged for what the sandbox models; a field it does
 * not model is refused as Linear refuses an unknown field.
 *
 *   GET  /oauth/authorize   consent, auto-approved: 302 to redirect_uri?code&state (`_sandbox_decision=deny`
 *                           redirects with error=access_denied; a bad client_id or redirect_uri gets an error
 *                           page and no redirect; other mistakes redirect with an RFC 6749 error)
 *   POST /oauth/token       authorization_code (PKCE S256 or plain; client_secret optional with PKCE),
 *                           refresh_token (rotating: the used refresh token stops working), client_credentials
 *                           (refused as for an app that has not enabled it)
 *   POST /oauth/revoke      revokes the grant behind an access token (Bearer or access_token) or a refresh token
 *   POST /graphql           `viewer`, `organization`, `teams`, `team(id:)`, `issue(id:)`, `issues`, `user(id:)`,
 *                           `workflowState(id:)` and the
 *                           `issueCreate(input:)` mutation, every field of their types (sandboxSchema.ts; the
 *                           values in sandboxViews.ts); see sandboxGraphql.ts for what is parsed and refused
 *
 * The wire (providers.md part 2 §1): personal API keys go bare in
 * Authorization, OAuth tokens as Bearer; every GraphQL answer carries
 * X-RateLimit-Requests-* and X-RateLimit-Complexity-* (resets in epoch
 * milliseconds) and X-Complexity; errors are GraphQL `errors` with
 * `extensions.code`/`type` (401 AUTHENTICATION_ERROR, 400
 * GRAPHQL_VALIDATION_FAILED, RATELIMITED); token errors are RFC 6749 bodies.
 *
 * Behaviour: access tokens last `accessTokenTtlSeconds` (24 h by default);
 * refresh tokens rotate, and a used one keeps working for
 * `refreshTokenGraceSeconds` (0 by default: Linear documents no grace);
 * `tokenRotation` is ignored (Linear always rotates); requests and query
 * complexity are metered in leaky buckets at Linear's documented hourly limits,
 * one per user. The credentials desk hands out the owner's keys, or with
 * `{"member": true}` a key of a new member of the workspace (its own user,
 * viewer and quota), so that many connections need not share one user's.
 */
import { randomUUID } from "node:crypto";
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
  type Fault,
  type RateWindow,
  type SandboxDefinition,
  type SandboxOptions,
  type StartedSandbox,
} from "../../sandbox/kit.js";
import { authorizationServer, authorizationState, pkceOf, type ChallengeOutcome, type CodeRefusal } from "../../sandbox/authorizationServer.js";
import { execute, FieldError, GraphQLSyntaxError, OperationError, parse, type GraphQLProblem, type Location } from "./sandboxGraphql.js";
import { ARGUMENTS, INPUTS, SCHEMA, UNIONS } from "./sandboxSchema.js";
import { connection, entityNotFound, invalidInput, views, workflowStatesOf, type IssueRecord, type Organization, type Person, type Team, type Workspace } from "./sandboxViews.js";

/** Linear access tokens last 24 hours (oauth-2-0-authentication.md). */
const ACCESS_TOKEN_TTL_SECONDS = 86_400;
const HOUR_MS = 3_600_000;
/** Hourly limits by kind of caller (rate-limiting.md). */
const LIMITS = {
  api_key: { requests: 1_500, complexity: 250_000 },
  oauth: { requests: 1_200, complexity: 200_000 },
  unauthenticated: { requests: 60, complexity: 10_000 },
} as const;
/** No single query may cost more (rate-limiting.md "Maximum complexity"). */
const MAX_QUERY_COMPLEXITY = 10_000;
/** The scopes Linear documents; `read` is always granted. */
const KNOWN_SCOPES = new Set(["read", "write", "issues:create", "comments:create", "timeSchedule:write", "admin", "app:assignable", "app:mentionable"]);

const HEX = "0123456789abcdef";
const LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";

export type LinearSandboxOptions = SandboxOptions & {
  /** Ignored: Linear always rotates refresh tokens. Accepted so one option set fits every sandbox. */
  tokenRotation?: boolean;
  /** How long a used refresh token keeps working. Default 0: Linear documents no grace period. */
  refreshTokenGraceSeconds?: number;
  /**
   * The HTTP status of a RATELIMITED answer: 200 (the docs), 400 (observed in 2025) or 429 (what the
   * SDK also handles). Default 400.
   */
  rateLimitStatus?: 200 | 400 | 429;
  /** Answer `scope` as an array of strings, as Linear does for apps created before 2023-12-01. */
  legacyScopeArray?: boolean;
};

type Actor = "user" | "app";
/** What the consent page decided: the scopes (with `read`) and who the tokens act as. */
type Decision = { scopes: string[]; actor: Actor };
/** One consent; `pkce` when its code was issued under PKCE (its refresh tokens then need no client secret). */
type Consent = Decision & { via: "oauth"; pkce: boolean };
/** A personal API key, a grant of its own: it acts as its user (the owner, or the member `userId`), with that user's rights. */
type KeyGrant = { via: "api_key"; label: string; userId?: string };
type Grant = Consent | KeyGrant;
type TokenKind = "access" | "refresh" | "api_key";
type Caller = { kind: keyof typeof LIMITS; bucket: string; actor?: Actor; userId?: string };
type Bucket = { requests: number; complexity: number; at: number };
type OAuthFailure = { status?: number; error: string; description: string };

/** Linear's answers to a code the exchange cannot use. */
const CODE_REFUSED: Record<CodeRefusal, OAuthFailure> = {
  unknown: { error: "invalid_grant", description: "The authorization code is invalid" },
  // Codes are not bound to a client (the sandbox has one app): never the outcome.
  client_mismatch: { error: "invalid_grant", description: "The authorization code is invalid" },
  // A replayed code also revokes what it minted (RFC 6749 §4.1.2).
  reused: { error: "invalid_grant", description: "The authorization code has already been used" },
  expired: { error: "invalid_grant", description: "The authorization code has expired" },
  redirect_uri_missing: { error: "invalid_request", description: "redirect_uri is required" },
  redirect_uri_mismatch: { error: "invalid_grant", description: "redirect_uri does not match the one used in the authorization request" },
  verifier_missing: { error: "invalid_request", description: "code_verifier is required" },
  verifier_mismatch: { error: "invalid_grant", description: "code_verifier does not match the code_challenge" },
  verifier_unexpected: { error: "invalid_grant", description: "code_verifier given for an authorization code issued without code_challenge" },
  // The one check of Linear's own: a code issued without PKCE needs the client secret.
  provider_refused: { error: "invalid_client", description: "client_secret is required" },
};
const SECRET_REQUIRED = CODE_REFUSED.provider_refused;
/** What the consent page redirects with (invalid_request) for PKCE parameters it cannot take. */
const CHALLENGE_REFUSED: Record<Extract<ChallengeOutcome, { ok: false }>["reason"], string> = {
  unsupported_method: "code_challenge_method must be S256 or plain",
  challenge_malformed: "code_challenge is malformed",
  method_without_challenge: "code_challenge_method without code_challenge",
};

const credentialRequest = z.strictObject({
  label: z.string().min(1).max(100).optional(),
  /** A key of a new member of the workspace rather than the owner's: a user of its own, with its own hourly quota. */
  member: z.boolean().optional(),
});

/** OAuth scopes that may create issues (oauth-2-0-authentication.md): `issues:create` is the narrow one; `admin` includes `write`. */
const ISSUE_CREATE_SCOPES = ["write", "issues:create", "admin"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A member of the sandbox's workspace (stores written before may carry more of its view: ignored). */
const person = (organization: Organization, name: string, displayName: string, email: string, isApp: boolean): Person => ({
  id: randomUUID(),
  name,
  displayName,
  email,
  admin: !isApp,
  app: isApp,
  createdAt: organization.createdAt,
  timezone: "Etc/UTC",
});
export function linearSandbox(options: LinearSandboxOptions, app: SandboxApp, restored?: unknown) {
  const accessTtlMs = (options.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS) * 1000;
  const graceMs = (options.refreshTokenGraceSeconds ?? 0) * 1000;
  const rateLimitStatus = options.rateLimitStatus ?? 400;
  if (![200, 400, 429].includes(rateLimitStatus)) throw new Error("rateLimitStatus must be 200, 400 or 429");
  const redirectUris = options.redirectUris ?? [];
  const state = restoreState(restored, () => {
    const createdAt = new Date().toISOString();
    const organization: Organization = { id: randomUUID(), name: "AutoFlow Sandbox", urlKey: "autoflow-sandbox", createdAt, userCount: 2, logoUrl: null };
    return {
      organization,
      owner: person(organization, "Sandbox Owner", "owner", "owner@sandbox.autoflow.invalid", false),
      // The user an `actor=app` token acts as.
      appUser: person(organization, "AutoFlow", "autoflow", "autoflow-app@sandbox.autoflow.invalid", true),
      /** Members the desk added (`member: true`), each the user of the keys issued for them. */
      members: [] as Person[],
      authorization: authorizationState<Grant, TokenKind, Decision>(),
      /** The workspace's one team, as a new Linear workspace has; issues count up per team (`SBX-1`, ...). */
      teams: [{ id: randomUUID(), key: "SBX", name: "Sandbox", description: null, private: false, createdAt, updatedAt: createdAt, issueCount: 0 }] as Team[],
      issues: new Map<string, IssueRecord>(),
      /** Linear's sync id: every write moves it on. */
      lastSyncId: 1000,
    };
  });
  const { organization, owner, appUser, teams, issues, members } = state;
  // Linear does not document a code's lifetime: the kit's ten minutes (RFC 6749 §4.1.2's most). Date.now is
  // read at each call, so that a test's fake clock moves the sandbox's.
  const auth = authorizationServer(state.authorization, { now: () => Date.now() });
  const buckets = new Map<string, Bucket>();

  // ---- answers -------------------------------------------------------------------------------

  const json = (res: FastifyReply, status: number, body: unknown): FastifyReply =>
    res.code(status).header("content-type", "application/json; charset=utf-8").send(JSON.stringify(body));
  const oauthError = (res: FastifyReply, failure: OAuthFailure): FastifyReply => json(res, failure.status ?? 400, { error: failure.error, error_description: failure.description });
  /** A GraphQL error answer: Linear's `extensions` beside graphql-js's message and locations. */
  const graphqlErrors = (res: FastifyReply, status: number, problems: GraphQLProblem[], extensions: Record<string, unknown>): FastifyReply =>
    json(res, status, { errors: problems.map((p) => ({ message: p.message, ...(p.locations ? { locations: p.locations } : {}), extensions })) });
  /** HTTP 400, as captured live: Apollo's http extension first, code, type, userError. */
  const validationFailed = (res: FastifyReply, problems: GraphQLProblem[]): FastifyReply =>
    graphqlErrors(res, 400, problems, { http: { status: 400, headers: {} }, code: "GRAPHQL_VALIDATION_FAILED", type: "graphql error", userError: true });
  /** HTTP 401 for no, bad, expired or revoked credentials alike (captured live in 2026). */
  const unauthenticated = (res: FastifyReply): FastifyReply =>
    graphqlErrors(res, 401, [{ message: "Authentication required, not authenticated" }], {
      type: "authentication error",
      code: "AUTHENTICATION_ERROR",
      statusCode: 401,
      userError: true,
      userPresentableMessage: "You need to authenticate to access this operation.",
      meta: {},
      http: { status: 401 },
    });
  const rateLimited = (res: FastifyReply, message: string): FastifyReply =>
    json(res, rateLimitStatus, {
      errors: [{ message, extensions: { type: "ratelimited", code: "RATELIMITED", statusCode: 429, userError: true, userPresentableMessage: message, meta: {} } }],
      data: null,
    });

  /** Linear's consent page error, shown in the browser and never redirected (the wording is the sandbox's). */
  const errorPage = (res: FastifyReply, detail: string): FastifyReply =>
    res
      .code(400)
      .type("text/html; charset=utf-8")
      .send(`<!DOCTYPE html><html><head><title>Linear</title></head><body><h1>Authorization failed</h1><p>${escapeHtml(detail)}</p></body></html>`);

  // ---- tokens --------------------------------------------------------------------------------

  const mintAccess = (grant: Consent): string => {
    // The documented example is 64 hex characters; newer tokens carry a lin_oauth_ prefix (providers.md: unsure).
    const token = `lin_oauth_${randomChars(64, HEX)}`;
    auth.mint(token, "access", grant, accessTtlMs);
    return token;
  };
  const mintRefresh = (grant: Consent): string => {
    const token = randomChars(64, LOWER_ALNUM);
    auth.mint(token, "refresh", grant);
    return token;
  };
  const tokenBody = (grant: Consent) => ({
    access_token: mintAccess(grant),
    token_type: "Bearer",
    // 86399 for a 24 h token: Linear counts the second already begun.
    expires_in: Math.max(1, Math.round(accessTtlMs / 1000) - 1),
    scope: options.legacyScopeArray ? grant.scopes : grant.scopes.join(" "),
    refresh_token: mintRefresh(grant),
  });
  const isForm = (request: FastifyRequest): boolean => (request.headers["content-type"] ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded");

  /** Client authentication: HTTP Basic or client_id (+ client_secret) in the form; the secret may be left out under PKCE. */
  const authenticateClient = (request: FastifyRequest, p: Record<string, string>): { pkceOnly: boolean } | OAuthFailure => {
    const basic = basicCredentials(request);
    const id = basic?.id ?? p.client_id;
    const secret = basic?.secret ?? p.client_secret;
    // RFC 6749 §5.2: 401 when the client tried HTTP Basic.
    const status = basic ? 401 : 400;
    if (!id || id !== app.clientId) return { status, error: "invalid_client", description: "Client authentication failed: unknown client_id" };
    if (basic && p.client_id !== undefined && p.client_id !== basic.id) return { error: "invalid_request", description: "client_id in the body differs from the Authorization header" };
    if (secret === undefined || secret === "") return { pkceOnly: true };
    if (secret !== app.clientSecret) return { status, error: "invalid_client", description: "Client authentication failed: invalid client_secret" };
    return { pkceOnly: false };
  };

  const grantFor = (p: Record<string, string>, client: { pkceOnly: boolean }): { body: Record<string, unknown> } | OAuthFailure => {
    switch (p.grant_type) {
      case "authorization_code": {
        // A code issued without PKCE needs the client secret, asked for once the code itself passes.
        const redeemed = auth.redeemCode(
          p.code,
          { redirectUri: p.redirect_uri || undefined, verifier: p.code_verifier },
          { last: (code) => (client.pkceOnly && code.pkce === undefined ? "secret_required" : undefined) },
        );
        if (!redeemed.ok) return CODE_REFUSED[redeemed.reason];
        const { code } = redeemed;
        const grant: Consent = { via: "oauth", ...code.data, pkce: code.pkce !== undefined };
        auth.grantFromCode(code, grant);
        return { body: tokenBody(grant) };
      }
      case "refresh_token": {
        const invalid = { error: "invalid_grant", description: "The refresh token is invalid, expired or revoked" };
        const presented = auth.verify(p.refresh_token, ["refresh"]);
        // Linear revokes grants, never one refresh token: one revoked while its grant lives was rotated away (answered as used).
        const rotatedAway = !presented.ok && presented.reason === "revoked" && presented.token?.grant.revokedAs === undefined;
        const grant = presented.ok || rotatedAway ? presented.token?.grant : undefined;
        if (grant?.via !== "oauth") return invalid;
        // Tokens minted under PKCE may be refreshed with the client_id alone (oauth-2-0-authentication.md).
        if (client.pkceOnly && !grant.pkce) return SECRET_REQUIRED;
        if (!auth.rotate(p.refresh_token, "refresh", { graceMs }).ok) return { error: "invalid_grant", description: "The refresh token has already been used" };
        return { body: tokenBody(grant) };
      }
      case "client_credentials":
        // The documented answer for an app that has not turned the grant on (its only body not in RFC 6749 terms).
        return { error: "Error", description: "Client does not support the client_credentials grant type" };
      case undefined:
      case "":
        return { error: "invalid_request", description: "grant_type is required" };
      default:
        return { error: "unsupported_grant_type", description: `Unsupported grant_type: ${p.grant_type.slice(0, 40)}` };
    }
  };

  const tokenRoute = async (request: FastifyRequest, res: FastifyReply) => {
    if (!isForm(request)) return oauthError(res, { error: "invalid_request", description: "Content-Type must be application/x-www-form-urlencoded" });
    const p = bodyParams(request);
    const client = authenticateClient(request, p);
    if ("error" in client) return oauthError(res, client);
    const outcome = grantFor(p, client);
    if ("error" in outcome) return oauthError(res, outcome);
    return json(res.header("cache-control", "no-store").header("pragma", "no-cache"), 200, outcome.body);
  };

  /**
   * 200 revoked, 400 cannot revoke (already revoked), 401 cannot
   * authenticate with the token (oauth-2-0-authentication.md). The bodies are
   * not documented; `{success, error}` follows what Nango's client expects.
   */
  const revokeRoute = async (request: FastifyRequest, res: FastifyReply) => {
    const p = isForm(request) ? bodyParams(request) : {};
    const access = bearerToken(request) ?? p.access_token;
    const refresh = access === undefined ? p.refresh_token : undefined;
    const fail = (status: number, error: string) => json(res, status, { success: false, error });
    if (access !== undefined) {
      const checked = auth.verify(access, ["access"]);
      // An expired token cannot authenticate, revoked or not.
      if (!checked.ok && (checked.reason !== "revoked" || (checked.token !== undefined && auth.isExpired(checked.token)))) return fail(401, "Unable to authenticate with the provided token");
      if (!checked.ok) return fail(400, "Token has already been revoked");
      auth.revokeGrant(checked.token.grant);
      return json(res, 200, { success: true });
    }
    if (refresh === undefined) return fail(400, "Provide the access token (Bearer or access_token) or the refresh_token to revoke");
    // Rotating says whether the token may still be exchanged (one spent past its grace is as good as revoked);
    // spending it here changes nothing, as its grant goes next.
    const rotated = auth.rotate(refresh, "refresh", { graceMs });
    if (!rotated.ok) return fail(400, rotated.reason === "revoked" || rotated.reason === "spent" ? "Token has already been revoked" : "Unknown refresh token");
    // The whole grant goes: its access tokens and its refresh token.
    auth.revokeGrant(rotated.grant);
    return json(res, 200, { success: true });
  };

  // ---- consent -------------------------------------------------------------------------------

  const authorize = async (request: FastifyRequest, res: FastifyReply) => {
    const q = queryParams(request);
    if (!q.client_id || q.client_id !== app.clientId) return errorPage(res, "Invalid client_id: no OAuth application with this id.");
    if (!q.redirect_uri || !redirectUris.includes(q.redirect_uri)) return errorPage(res, "Invalid redirect_uri: it is not one of the application's callback URLs.");
    const target = new URL(q.redirect_uri);
    const back = (params: Record<string, string>): FastifyReply => {
      for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
      if (q.state !== undefined) target.searchParams.set("state", q.state);
      return res.redirect(target.toString(), 302);
    };
    const refuse = (error: string, description: string) => back({ error, error_description: description });
    if (q.response_type !== "code") return refuse("unsupported_response_type", "response_type must be code");
    const actor = q.actor ?? "user";
    if (actor !== "user" && actor !== "app") return refuse("invalid_request", "actor must be user or app");
    // Comma-separated: a space-separated list arrives as one unknown scope.
    const asked = (q.scope ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    if (asked.length === 0) return refuse("invalid_scope", "scope is required");
    const unknown = asked.filter((s) => !KNOWN_SCOPES.has(s));
    if (unknown.length > 0) return refuse("invalid_scope", `Invalid scope: ${unknown.join(",").slice(0, 100)}`);
    if (actor !== "app" && asked.some((s) => s.startsWith("app:"))) return refuse("invalid_scope", "app:assignable and app:mentionable need actor=app");
    // RFC 7636 §4.3: no method means plain, which Linear accepts beside S256. A parameter sent empty counts as
    // sent (an empty challenge is malformed, an empty method not one Linear takes), where pkceOf reads it as absent.
    const pkce = pkceOf(q.code_challenge, q.code_challenge_method, ["plain", "S256"]);
    if (!pkce.ok) return refuse("invalid_request", CHALLENGE_REFUSED[pkce.reason]);
    if (q._sandbox_decision === "deny") return refuse("access_denied", "The user denied the authorization request");
    // `read` is always granted, asked for or not.
    const scopes = [...new Set(["read", ...asked])];
    const code = randomChars(40, HEX);
    auth.issueCode(code, { scopes, actor }, { redirectUri: q.redirect_uri, pkce: pkce.pkce });
    return back({ code });
  };

  // ---- GraphQL -------------------------------------------------------------------------------

  /** Who is calling: an API key bare, an OAuth token as Bearer; anything else is unauthenticated (metered by IP). */
  const identify = (request: FastifyRequest): { caller: Caller; authenticated: boolean; scopes?: string[] } => {
    const bearer = bearerToken(request);
    const presented = bearer !== undefined ? auth.verify(bearer, ["access"]) : auth.verify(request.headers.authorization?.trim(), ["api_key"]);
    const grant = presented.ok ? presented.token.grant : undefined;
    if (grant?.via === "oauth") {
      const actor = grant.actor;
      return { caller: { kind: "oauth", bucket: `oauth:${actor === "app" ? appUser.id : owner.id}`, actor }, authenticated: true, scopes: grant.scopes };
    }
    // Every API key of one user shares that user's quota (rate-limiting.md).
    if (grant) {
      const userId = grant.userId ?? owner.id;
      return { caller: { kind: "api_key", bucket: `api_key:${userId}`, userId }, authenticated: true };
    }
    return { caller: { kind: "unauthenticated", bucket: `ip:${request.ip}` }, authenticated: false };
  };

  /** The caller's leaky bucket, refilled at limit per hour up to the limit. */
  const bucketOf = (caller: Caller): Bucket => {
    const limits = LIMITS[caller.kind];
    const now = Date.now();
    const bucket = buckets.get(caller.bucket) ?? { requests: limits.requests, complexity: limits.complexity, at: now };
    const elapsed = now - bucket.at;
    bucket.requests = Math.min(limits.requests, bucket.requests + (elapsed * limits.requests) / HOUR_MS);
    bucket.complexity = Math.min(limits.complexity, bucket.complexity + (elapsed * limits.complexity) / HOUR_MS);
    bucket.at = now;
    buckets.set(caller.bucket, bucket);
    return bucket;
  };
  /** When a bucket holding `level` of `limit` is full again, in epoch milliseconds. */
  const fullAt = (level: number, limit: number): number => Date.now() + Math.ceil(((limit - level) * HOUR_MS) / limit);

  const rateLimitHeaders = (res: FastifyReply, caller: Caller, bucket: Bucket, overrides: { requestsResetAt?: number } = {}): FastifyReply => {
    const limits = LIMITS[caller.kind];
    const requestsLeft = Math.max(0, Math.floor(bucket.requests));
    return res
      .header("x-ratelimit-requests-limit", String(limits.requests))
      .header("x-ratelimit-requests-remaining", String(overrides.requestsResetAt !== undefined ? 0 : requestsLeft))
      .header("x-ratelimit-requests-reset", String(overrides.requestsResetAt ?? fullAt(bucket.requests, limits.requests)))
      .header("x-ratelimit-complexity-limit", String(limits.complexity))
      .header("x-ratelimit-complexity-remaining", String(Math.max(0, Math.floor(bucket.complexity))))
      .header("x-ratelimit-complexity-reset", String(fullAt(bucket.complexity, limits.complexity)));
  };
  const requestsMessage = (caller: Caller): string => `Rate limit exceeded. Only ${LIMITS[caller.kind].requests} requests are allowed per 1 hour.`;

  // ---- teams and issues ----------------------------------------------------------------------

  const workspace: Workspace = { organization, owner, appUser, members, teams, issues };
  /** A team by its id or its key, as `team(id:)` takes either. */
  const findTeam = (id: unknown): Team | undefined => (typeof id === "string" ? teams.find((t) => t.id === id || t.key === id) : undefined);
  /** An issue by its id or its identifier (`SBX-1`), as `issue(id:)` takes either. */
  const findIssue = (id: unknown): IssueRecord | undefined => {
    if (typeof id !== "string") return undefined;
    const byId = issues.get(id);
    if (byId) return byId;
    const match = /^([A-Za-z0-9]+)-(\d+)$/.exec(id);
    const team = match ? teams.find((t) => t.key === match[1]?.toUpperCase()) : undefined;
    return team ? [...issues.values()].find((i) => i.teamId === team.id && i.number === Number(match?.[2])) : undefined;
  };
  /** The IssueCreateInput fields that name an entity of a kind the sandbox never holds: any id given is unknown. */
  const ABSENT_REFERENCES: Readonly<Record<string, string>> = {
    cycleId: "Cycle",
    delegateId: "User",
    lastAppliedTemplateId: "Template",
    parentId: "Issue",
    projectId: "Project",
    projectMilestoneId: "ProjectMilestone",
    referenceCommentId: "Comment",
    sourceCommentId: "Comment",
    sourcePullRequestCommentId: "Comment",
    templateId: "Template",
  };

  /**
   * `issueCreate(input:)`: OAuth tokens need `write` or `issues:create`; a personal API key writes as its user.
   * Kept: team, title, description, priority, state, assignee, due date, estimate, sort order, id; the rest of
   * IssueCreateInput is accepted and has no effect, except ids of things the sandbox has none of (unknown).
   */
  const issueCreate = (scopes: string[] | undefined, creatorId: string, view: ReturnType<typeof views>) => (args: Record<string, unknown>) => {
    if (scopes !== undefined && !scopes.some((s) => ISSUE_CREATE_SCOPES.includes(s))) {
      // As captured from Linear for a read-only token: the `forbidden` type, no userPresentableMessage.
      throw new FieldError("Invalid scope: `write` required", { type: "forbidden", code: "FORBIDDEN", statusCode: 403, userError: true });
    }
    const input = args.input;
    if (typeof input !== "object" || input === null || Array.isArray(input)) throw invalidInput("Argument Validation Error", "input must be an object.");
    const { teamId, title, description, priority, stateId, assigneeId, dueDate, estimate, sortOrder, id, parentId } = input as Record<string, unknown>;
    if (typeof teamId !== "string" || !UUID.test(teamId)) throw invalidInput("Argument Validation Error", "teamId must be a UUID.");
    if (typeof title !== "string" || title.trim() === "") throw invalidInput("Argument Validation Error", "title should not be empty");
    if (description !== undefined && description !== null && typeof description !== "string") throw invalidInput("Argument Validation Error", "description must be a string");
    if (priority !== undefined && priority !== null && !(typeof priority === "number" && Number.isInteger(priority) && priority >= 0 && priority <= 4)) {
      throw invalidInput("Argument Validation Error", "priority must not be greater than 4");
    }
    if (id !== undefined && id !== null && (typeof id !== "string" || !UUID.test(id))) throw invalidInput("Argument Validation Error", "id must be a UUID.");
    if (typeof id === "string" && issues.has(id)) throw invalidInput("Argument Validation Error", "An issue with this id already exists.");
    if (dueDate !== undefined && dueDate !== null && (typeof dueDate !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(dueDate))) throw invalidInput("Argument Validation Error", "dueDate must be a date (YYYY-MM-DD).");
    if (estimate !== undefined && estimate !== null && !(typeof estimate === "number" && Number.isInteger(estimate))) throw invalidInput("Argument Validation Error", "estimate must be an integer.");
    const team = teams.find((t) => t.id === teamId);
    if (!team) throw entityNotFound("Team");
    for (const [field, entity] of Object.entries(ABSENT_REFERENCES)) {
      const value = (input as Record<string, unknown>)[field];
      if (value === undefined || value === null) continue;
      if (field === "parentId" && typeof parentId === "string" && findIssue(parentId)) throw invalidInput("Argument Validation Error", "The sandbox does not model sub-issues.");
      throw entityNotFound(entity);
    }
    const workflowState = stateId === undefined || stateId === null ? undefined : workflowStatesOf(team).find((s) => s.id === stateId);
    if (stateId !== undefined && stateId !== null && !workflowState) throw entityNotFound("WorkflowState");
    if (assigneeId !== undefined && assigneeId !== null && !view.people.some((p) => p.id === assigneeId)) throw entityNotFound("User");
    const now = new Date().toISOString();
    team.issueCount += 1;
    const issue: IssueRecord = {
      id: typeof id === "string" ? id : randomUUID(),
      teamId: team.id,
      number: team.issueCount,
      title,
      description: typeof description === "string" ? description : null,
      priority: typeof priority === "number" ? priority : 0,
      createdAt: now,
      updatedAt: now,
      creatorId,
      ...(workflowState ? { stateId: workflowState.id } : {}),
      assigneeId: typeof assigneeId === "string" ? assigneeId : null,
      dueDate: typeof dueDate === "string" ? dueDate : null,
      estimate: typeof estimate === "number" ? estimate : null,
      ...(typeof sortOrder === "number" ? { sortOrder } : {}),
    };
    issues.set(issue.id, issue);
    state.lastSyncId += 1;
    return { success: true, lastSyncId: state.lastSyncId, issue: () => view.issue(issue) };
  };
  const rootsFor = (viewer: Person, scopes: string[] | undefined) => {
    const view = views(workspace, viewer);
    return {
      Query: {
        viewer: () => view.user(viewer),
        organization: view.organization,
        teams: connection(teams, view.team),
        team: (args: Record<string, unknown>) => {
          const team = findTeam(args.id);
          if (!team) throw entityNotFound("Team");
          return view.team(team);
        },
        issue: (args: Record<string, unknown>) => {
          const issue = findIssue(args.id);
          if (!issue) throw entityNotFound("Issue");
          return view.issue(issue);
        },
        issues: connection([...issues.values()], view.issue),
        user: (args: Record<string, unknown>) => {
          const person = view.people.find((p) => p.id === args.id);
          if (!person) throw entityNotFound("User");
          return view.user(person);
        },
        workflowState: (args: Record<string, unknown>) => {
          const state = teams.flatMap(workflowStatesOf).find((s) => s.id === args.id);
          if (!state) throw entityNotFound("WorkflowState");
          return view.workflowState(state);
        },
      },
      Mutation: { issueCreate: issueCreate(scopes, viewer.id, view) },
    };
  };

  const graphql = async (request: FastifyRequest, res: FastifyReply) => {
    const { caller, authenticated, scopes } = identify(request);
    const bucket = bucketOf(caller);
    if (bucket.requests < 1) return rateLimited(rateLimitHeaders(res, caller, bucket), requestsMessage(caller));
    bucket.requests -= 1;
    rateLimitHeaders(res, caller, bucket);
    if (!authenticated) return unauthenticated(res);

    const body = request.body as { query?: unknown; operationName?: unknown; variables?: unknown } | undefined;
    const badRequest = (message: string) => graphqlErrors(res, 400, [{ message }], { code: "BAD_REQUEST", type: "graphql error", userError: true });
    if (!(request.headers["content-type"] ?? "").toLowerCase().startsWith("application/json") || typeof body !== "object" || body === null) {
      return badRequest("POST body missing, invalid Content-Type, or JSON object has no keys.");
    }
    if (typeof body.query !== "string" || body.query.trim() === "") return badRequest("GraphQL operations must contain a non-empty `query` or a `persistedQuery` extension.");
    if (body.operationName !== undefined && body.operationName !== null && typeof body.operationName !== "string") return badRequest("`operationName` in a POST body must be a string if provided.");
    if (body.variables !== undefined && body.variables !== null && (typeof body.variables !== "object" || Array.isArray(body.variables))) {
      return badRequest("`variables` in a POST body should be provided as an object.");
    }
    let document;
    try {
      document = parse(body.query);
    } catch (error) {
      if (!(error instanceof GraphQLSyntaxError)) throw error;
      // Linear answers syntax errors with the validation code (captured live), not Apollo's GRAPHQL_PARSE_FAILED.
      return validationFailed(res, [{ message: error.message, locations: [error.location] }]);
    }
    const viewer = caller.actor === "app" ? appUser : (members.find((m) => m.id === caller.userId) ?? owner);
    let result;
    try {
      result = execute({
        schema: SCHEMA,
        document,
        ...(typeof body.operationName === "string" ? { operationName: body.operationName } : {}),
        variables: (body.variables as Record<string, unknown> | null | undefined) ?? {},
        roots: rootsFor(viewer, scopes),
        arguments: ARGUMENTS,
        inputs: INPUTS,
        unions: UNIONS,
      });
    } catch (error) {
      if (!(error instanceof OperationError)) throw error;
      return graphqlErrors(res, 400, [{ message: error.message }], { code: "OPERATION_RESOLUTION_FAILURE", type: "graphql error", userError: true });
    }
    if ("errors" in result) return validationFailed(res, result.errors);
    if (result.complexity > MAX_QUERY_COMPLEXITY) {
      return graphqlErrors(res, 400, [{ message: `Query too complex: ${result.complexity} points, the maximum is ${MAX_QUERY_COMPLEXITY}.` }], {
        type: "invalid input",
        code: "INVALID_INPUT",
        statusCode: 400,
        userError: true,
      });
    }
    res.header("x-complexity", String(result.complexity));
    if (bucket.complexity < result.complexity) {
      return rateLimited(res, `Rate limit exceeded. Only ${LIMITS[caller.kind].complexity} complexity points are allowed per 1 hour.`);
    }
    bucket.complexity -= result.complexity;
    rateLimitHeaders(res, caller, bucket);
    if (result.fieldErrors.length === 0) return json(res, 200, { data: result.data });
    // A failed field: 400 when nothing came back (as captured for an unknown team), 200 beside partial data.
    return json(res, result.data === null ? 400 : 200, { errors: result.fieldErrors, data: result.data });
  };

  // ---- faults --------------------------------------------------------------------------------

  const isGraphql = (res: FastifyReply): boolean => res.request.url.split("?")[0] === "/graphql";
  const faultRateLimit = (res: FastifyReply, fault: Fault, enforced?: RateWindow): FastifyReply => {
    const { caller } = identify(res.request);
    const bucket = bucketOf(caller);
    // Without a wait asked for: until one request has dripped back into the bucket; an enforced rate: its window's end.
    const waitMs = fault.retryAfterSeconds !== undefined ? fault.retryAfterSeconds * 1000 : Math.ceil(HOUR_MS / LIMITS[caller.kind].requests);
    rateLimitHeaders(res, caller, bucket, { requestsResetAt: enforced?.resetAtMs ?? Date.now() + waitMs });
    // The token endpoint's throttle is not documented; a 429 with the same headers is the sandbox's guess.
    if (!isGraphql(res)) return json(res, 429, { error: "rate_limited", error_description: requestsMessage(caller) });
    return rateLimited(res, requestsMessage(caller));
  };

  const definition: SandboxDefinition = {
    provider: "linear",
    state,
    browserPaths: ["/oauth/authorize"],
    endpoints: (origin) => ({
      authorizeUrl: `${origin}/oauth/authorize`,
      tokenUrl: `${origin}/oauth/token`,
      revokeUrl: `${origin}/oauth/revoke`,
      apiUrl: origin,
    }),
    faults: {
      rateLimit: faultRateLimit,
      // Linear's 5xx bodies are not documented; these keep the GraphQL and RFC 6749 shapes.
      serverError: (res) =>
        isGraphql(res)
          ? json(res, 500, {
              errors: [{ message: "Internal server error", extensions: { type: "internal error", code: "INTERNAL_SERVER_ERROR", statusCode: 500, userError: false } }],
              data: null,
            })
          : oauthError(res, { status: 500, error: "server_error", description: "Internal server error" }),
      badRequest: (res) =>
        isGraphql(res)
          ? validationFailed(res, [{ message: 'Cannot query field "sandboxBadRequest" on type "Query".', locations: [{ line: 1, column: 3 } satisfies Location] }])
          : oauthError(res, { error: "invalid_request", description: "The request is missing a required parameter" }),
      malformed: (res) => res.code(200).header("content-type", "application/json; charset=utf-8").send(`{"data":{"viewer":{"id":"${owner.id}","na`),
    },
    // An enforced rate's window in the request headers Linear sends on every answer (reset in epoch
    // milliseconds), replacing the sandbox's own hourly bucket; the complexity headers stay the bucket's.
    rateLimitHeaders: (res, window) => {
      res
        .header("x-ratelimit-requests-limit", String(window.limit))
        .header("x-ratelimit-requests-remaining", String(window.remaining))
        .header("x-ratelimit-requests-reset", String(window.resetAtMs));
    },
    revokeAll: () => auth.revokeAll(),
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      // Settings > Security & access > Personal API keys: lin_api_ and 40 letters and digits.
      const apiKey = `lin_api_${randomChars(40)}`;
      const label = parsed.label ?? "AutoFlow sandbox";
      let user = owner;
      if (parsed.member) {
        const n = members.length + 1;
        user = { ...person(organization, `Sandbox Member ${n}`, `member${n}`, `member${n}@sandbox.autoflow.invalid`, false), admin: false };
        members.push(user);
        organization.userCount += 1;
      }
      auth.mint(apiKey, "api_key", auth.grant({ via: "api_key", label, ...(user === owner ? {} : { userId: user.id }) }));
      return { apiKey, label, viewerId: user.id, organizationId: organization.id, urlKey: organization.urlKey };
    },
    routes(server: FastifyInstance) {
      server.get("/oauth/authorize", authorize);
      server.post("/oauth/token", tokenRoute);
      server.post("/oauth/revoke", revokeRoute);
      server.post("/graphql", graphql);
    },
  };
  return definition;
}

export async function startLinearSandbox(options: LinearSandboxOptions = {}): Promise<StartedSandbox> {
  // Linear client ids and secrets are 32 hex characters.
  const app = { clientId: options.clientId ?? randomChars(32, HEX), clientSecret: options.clientSecret ?? randomChars(32, HEX) };
  return startSandbox("linear", options, app, (registered, restored, redirectUris) => linearSandbox({ ...options, redirectUris }, registered, restored));
}
