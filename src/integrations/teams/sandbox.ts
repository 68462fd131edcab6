/**
 * A local Microsoft identity platform (login.microsoftonline.com's v2 paths)
 * and Microsoft Graph (graph.microsoft.com's /v1.0 paths) at the root of one
 * origin, so MSAL or a Graph SDK pointed at it works unchanged.
 *
 *   GET  /{tenant}/oauth2/v2.0/authorize  consent, auto-approved: 302 to redirect_uri?code&state&session_state
 *                                         (response_mode query, fragment or form_post). A bad tenant, client_id or
 *                                         redirect_uri gets Microsoft's sign-in error page, never a redirect;
 *                                         `_sandbox_decision=deny` redirects with error=access_denied (AADSTS65004)
 *   POST /{tenant}/oauth2/v2.0/token      code exchange (client secret in the body or Basic, redirect URI, PKCE
 *                                         S256 or plain, single use) and refresh: a new refresh token every time,
 *                                         the old one staying valid (Microsoft does not revoke it on use)
 *   GET  /v1.0/me, /v1.0/me/joinedTeams, /v1.0/organization   ($select on me and organization)
 *   GET  /v1.0/teams/{team-id}/channels   the team's channels (each team has General and one more)
 *   POST /v1.0/teams/{team-id}/channels/{channel-id}/messages        send a chatMessage (delegated
 *                                         ChannelMessage.Send): 201 and the message
 *   GET  /v1.0/teams/{team-id}/channels/{channel-id}/messages        the channel's messages, newest first,
 *                                         `$top` (20 by default, 50 at most) a page, @odata.nextLink to the next
 *   GET  /v1.0/teams/{team-id}/channels/{channel-id}/messages/{id}   the message again
 *   POST /v1.0/$batch                     up to 20 of those requests in one
 *
 * {tenant} is common, organizations, consumers, or the sandbox tenant's id or
 * domain; any other is "not found" (AADSTS90002), as at Microsoft. Errors come
 * as Microsoft sends them: RFC 6749 JSON with AADSTS codes, trace and
 * correlation ids from the token endpoint; Graph's
 * `{"error":{"code","message","innerError"}}` with request-id headers.
 *
 * Wire facts: providers.md §3; MicrosoftDocs/entra-docs v2-oauth2-auth-code-flow.md,
 * reference-error-codes.md; microsoftgraph/microsoft-graph-docs-contrib
 * concepts/json-batching.md, api-reference/v1.0/api/{organization-get,user-list-joinedteams}.md.
 */
import { randomInt, randomUUID } from "node:crypto";
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
import { authorizationServer, authorizationState, pkceOf, type Grant as GrantOf } from "../../sandbox/authorizationServer.js";

/** Access tokens get a random lifetime of 60 to 90 minutes (access-tokens.md, via providers.md §3.1). */
const ACCESS_TTL_MIN_SECONDS = 3600;
const ACCESS_TTL_MAX_SECONDS = 5400;
/** Refresh tokens of web apps expire after 90 days of inactivity (refresh-tokens.md). */
const REFRESH_INACTIVITY_SECONDS = 90 * 24 * 3600;
/** Graph's own application id: the `aud` of its tokens and the client_id of its WWW-Authenticate. */
const GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000";
const ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** The throttling guide's example of a decimal Retry-After. */
const DEFAULT_RETRY_AFTER = "2.128";
const WELL_KNOWN_TENANTS = ["common", "organizations", "consumers"];
const OIDC_SCOPES = ["openid", "profile", "email"];
/** What `.default` stands for: the permissions the sandbox app was granted. */
const STATIC_PERMISSIONS = ["User.Read", "Team.ReadBasic.All"];
/** A delegated Graph permission name (`User.Read`, `Team.ReadBasic.All`), short or resource-qualified. */
const GRAPH_SCOPE = /^(https:\/\/graph\.microsoft\.com\/)?([A-Za-z]+(\.[A-Za-z]+)+|\.default)$/i;

/** Permissions each read accepts, least privileged first (the API reference pages). */
const ME_PERMISSIONS = ["User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const JOINED_TEAMS_PERMISSIONS = ["Team.ReadBasic.All", "TeamSettings.Read.All", "TeamSettings.ReadWrite.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
/** Channel and message permissions, least privileged first (channel-list, channel-post-messages, chatmessage-get). */
const CHANNEL_LIST_PERMISSIONS = ["Channel.ReadBasic.All", "ChannelSettings.Read.All", "ChannelSettings.ReadWrite.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const MESSAGE_SEND_PERMISSIONS = ["ChannelMessage.Send", "Group.ReadWrite.All"];
const MESSAGE_READ_PERMISSIONS = ["ChannelMessage.Read.All", "Group.Read.All", "Group.ReadWrite.All"];
/** The longest chatMessage body Teams takes: about 28 KB (Teams limits; [UNCERTAIN] the exact figure). */
const MESSAGE_MAX_BYTES = 28 * 1024;
/** Listing channel messages: 20 a page unless $top asks otherwise, 50 at most (chatmessage-list / channel-list-messages.md). */
const MESSAGES_PAGE = 20;
const MESSAGES_PAGE_MAX = 50;
const ORGANIZATION_PERMISSIONS = ["User.Read", "Organization.Read.All", "Directory.Read.All", "Organization.ReadWrite.All", "Directory.ReadWrite.All"];

export type TeamsSandboxOptions = SandboxOptions & {
  /** Ignored: Microsoft always answers a refresh with a new refresh token; it is not an app setting. */
  tokenRotation?: boolean;
  /** Inactivity lifetime of refresh tokens (AADSTS700082 after it). Default 90 days. */
  refreshTokenTtlSeconds?: number;
  /** The sandbox's clock (tests move it to expire codes and tokens). Default Date.now. */
  now?: () => number;
};

/** One consent: its code, access and refresh tokens live and die together, revoked as `sessions` (revoke-all) or `reuse` (a replayed code). */
type Consent = { scopes: string[]; oidc: string[]; offline: boolean; issuedAt: number };
type Grant = GrantOf<Consent>;
type TokenKind = "access" | "refresh";

/** What a Graph read answers, before it is sent on its own or inside a batch. */
type GraphAnswer = { status: number; headers: Record<string, string>; body: unknown };
type GraphContext = { requestId: string; clientRequestId: string };
type Channel = { id: string; teamId: string; displayName: string; description: string | null; createdDateTime: string };
type ChannelMessage = { id: string; teamId: string; channelId: string; contentType: "text" | "html"; content: string; createdDateTime: string };

const credentialRequest = z.strictObject({
  scopes: z.array(z.string().regex(GRAPH_SCOPE)).max(50).optional(),
});

const batchRequest = z.strictObject({
  requests: z
    .array(
      z.looseObject({
        id: z.string().min(1),
        method: z.string().min(1),
        url: z.string().min(1),
        headers: z.record(z.string(), z.string()).optional(),
        body: z.unknown().optional(),
        dependsOn: z.array(z.string()).optional(),
      }),
    )
    .min(1),
});

const shortScope = (scope: string): string => scope.replace(/^https:\/\/graph\.microsoft\.com\//i, "");
const hasAny = (granted: readonly string[], accepted: readonly string[]): boolean =>
  granted.some((g) => accepted.some((a) => a.toLowerCase() === g.toLowerCase()));
/** The identity platform's timestamp format: `2016-01-09 02:02:12Z`. */
const stsTimestamp = (): string => new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
/** Graph's innerError date: `2025-02-13T10:17:05`. */
const graphDate = (): string => new Date().toISOString().replace(/\.\d+Z$/, "");
const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
const pathOf = (request: FastifyRequest): string => request.url.split("?")[0] ?? request.url;
const isTokenPath = (path: string): boolean => /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(path);

export function teamsSandbox(options: TeamsSandboxOptions, app: SandboxApp, restored?: unknown) {
  const state = restoreState(restored, () => {
    const tenant = { id: randomUUID(), domain: "autoflowsandbox.onmicrosoft.com", name: "AutoFlow Sandbox" };
    return {
      tenant,
      user: {
        id: randomUUID(),
        displayName: "Sandbox User",
        givenName: "Sandbox",
        surname: "User",
        userPrincipalName: `sandbox.user@${tenant.domain}`,
        mail: `sandbox.user@${tenant.domain}`,
      },
      teams: [
        { id: randomUUID(), displayName: "AutoFlow Sandbox", description: "Everyone in the sandbox tenant." },
        { id: randomUUID(), displayName: "Release Train", description: "Ship dates and incident follow-ups." },
      ],
      keyId: randomChars(27, B64URL),
      /** Each code's data is the grant its consent made. */
      authorization: authorizationState<Consent, TokenKind, Grant>(),
      /** When revoke-all last ran: Microsoft's TokensValidFrom for the user. */
      tokensValidFrom: undefined as number | undefined,
      channels: [] as Channel[],
      messages: new Map<string, ChannelMessage>(),
    };
  });
  const { tenant, user, teams, keyId } = state;
  const now = options.now ?? Date.now;
  // Codes live about ten minutes, the kit's default (v2-oauth2-auth-code-flow.md).
  const auth = authorizationServer(state.authorization, { now });
  const redirectUris = options.redirectUris ?? [];
  const refreshTtlSeconds = options.refreshTokenTtlSeconds ?? REFRESH_INACTIVITY_SECONDS;
  // Channels and messages live in the state too; a state saved before they existed gets each team's channels now.
  const { channels, messages } = state;
  /** This sandbox's origin once it listens: where the @odata.nextLink of a page points. */
  let graphOrigin = "https://graph.microsoft.com";
  for (const team of teams) {
    if (channels.some((c) => c.teamId === team.id)) continue;
    const created = new Date(now() - 200 * 86_400_000).toISOString();
    // Every team has its General channel; its id is a thread id like every other channel's.
    channels.push({ id: `19:${randomChars(32, "0123456789abcdef")}@thread.tacv2`, teamId: team.id, displayName: "General", description: team.description, createdDateTime: created });
    channels.push({ id: `19:${randomChars(32, "0123456789abcdef")}@thread.tacv2`, teamId: team.id, displayName: "Announcements", description: "Ship notes and incident updates.", createdDateTime: created });
  }

  const knownTenant = (segment: string): boolean => [...WELL_KNOWN_TENANTS, tenant.id, tenant.domain].includes(segment.toLowerCase());
  const accessTtl = (): number => options.accessTokenTtlSeconds ?? randomInt(ACCESS_TTL_MIN_SECONDS, ACCESS_TTL_MAX_SECONDS + 1);

  const newGrant = (scopes: string[], oidc: string[], offline: boolean): Grant => auth.grant({ scopes, oidc, offline, issuedAt: now() });

  // ---- tokens that look like Microsoft's ---------------------------------

  /** A Graph access token: a v1.0 JWT whose header carries a nonce, so no one but Graph can check its signature. */
  const mintAccess = (grant: Grant, ttlSeconds: number): string => {
    const seconds = Math.floor(now() / 1000);
    const header = { typ: "JWT", nonce: randomChars(43, B64URL), alg: "RS256", x5t: keyId, kid: keyId };
    const payload = {
      aud: GRAPH_APP_ID,
      iss: `https://sts.windows.net/${tenant.id}/`,
      iat: seconds,
      nbf: seconds,
      exp: seconds + ttlSeconds,
      acct: 0,
      acr: "1",
      aio: randomChars(92, B64URL),
      amr: ["pwd"],
      app_displayname: "AutoFlow Sandbox App",
      appid: app.clientId,
      appidacr: "1",
      family_name: user.surname,
      given_name: user.givenName,
      idtyp: "user",
      ipaddr: "127.0.0.1",
      name: user.displayName,
      oid: user.id,
      platf: "3",
      puid: randomChars(16, "0123456789ABCDEF"),
      rh: `1.A${randomChars(60, B64URL)}.`,
      scp: [...grant.scopes, ...grant.oidc].join(" "),
      sid: randomUUID(),
      sub: randomChars(43, B64URL),
      tenant_region_scope: "EU",
      tid: tenant.id,
      unique_name: user.userPrincipalName,
      upn: user.userPrincipalName,
      uti: randomChars(22, B64URL),
      ver: "1.0",
      xms_tcdt: seconds - 86_400 * 400,
    };
    const token = `${base64url(header)}.${base64url(payload)}.${randomChars(342, B64URL)}`;
    auth.mint(token, "access", grant, ttlSeconds * 1000);
    return token;
  };
  const mintRefresh = (grant: Grant): string => {
    const token = `1.A${randomChars(1000, B64URL)}`;
    auth.mint(token, "refresh", grant, refreshTtlSeconds * 1000);
    return token;
  };
  /** An id_token when openid was asked for: v2.0, audience the app. */
  const mintIdToken = (grant: Grant): string => {
    const seconds = Math.floor(now() / 1000);
    const payload = {
      aud: app.clientId,
      iss: `https://login.microsoftonline.com/${tenant.id}/v2.0`,
      iat: seconds,
      nbf: seconds,
      exp: seconds + 3600,
      ...(grant.oidc.includes("profile") ? { name: user.displayName, preferred_username: user.userPrincipalName } : {}),
      ...(grant.oidc.includes("email") ? { email: user.mail } : {}),
      oid: user.id,
      sub: randomChars(43, B64URL),
      tid: tenant.id,
      ver: "2.0",
    };
    return `${base64url({ typ: "JWT", alg: "RS256", kid: keyId })}.${base64url(payload)}.${randomChars(342, B64URL)}`;
  };

  const tokenAnswer = (grant: Grant): Record<string, unknown> => {
    const ttl = accessTtl();
    return {
      token_type: "Bearer",
      // Graph permissions in their short form, then the OIDC ones; offline_access is not echoed.
      scope: [...grant.scopes, ...grant.oidc].join(" "),
      expires_in: ttl,
      ext_expires_in: ttl,
      access_token: mintAccess(grant, ttl),
      ...(grant.offline ? { refresh_token: mintRefresh(grant) } : {}),
      ...(grant.oidc.includes("openid") ? { id_token: mintIdToken(grant) } : {}),
    };
  };

  // ---- the identity platform's answers -----------------------------------

  const stsSend = (res: FastifyReply, status: number, body: unknown): FastifyReply =>
    res
      .code(status)
      .header("cache-control", "no-store, no-cache")
      .header("pragma", "no-cache")
      .header("content-type", "application/json; charset=utf-8")
      .header("strict-transport-security", "max-age=31536000; includeSubDomains")
      .header("x-ms-request-id", randomUUID())
      .header("x-ms-ests-server", "2.1.19371.5 - WEULR1 ProdSlices")
      .send(JSON.stringify(body));

  /** An RFC 6749 error as the identity platform words it (reference-error-codes.md). */
  const sts = (res: FastifyReply, status: number, error: string, code: number, description: string): FastifyReply => {
    const traceId = randomUUID();
    const correlationId = randomUUID();
    const timestamp = stsTimestamp();
    return stsSend(res, status, {
      error,
      error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    });
  };
  const missing = (res: FastifyReply, name: string): FastifyReply =>
    sts(res, 400, "invalid_request", 900144, `The request body must contain the following parameter: '${name}'.`);

  /** The sign-in error page: shown in the browser, never redirected to the app. */
  const errorPage = (res: FastifyReply, code: number, message: string): FastifyReply => {
    const text = `AADSTS${code}: ${message}`;
    return res
      .code(400)
      .type("text/html; charset=utf-8")
      .send(
        `<!DOCTYPE html><html dir="ltr" lang="en"><head><title>Sign in to your account</title></head><body>` +
          `<div id="login"><h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p><p id="error">${escapeHtml(text)}</p>` +
          `<table><tr><td>Request Id:</td><td>${randomUUID()}</td></tr><tr><td>Correlation Id:</td><td>${randomUUID()}</td></tr>` +
          `<tr><td>Timestamp:</td><td>${new Date().toISOString().replace(/\.\d+Z$/, "Z")}</td></tr><tr><td>Message:</td><td>${escapeHtml(text)}</td></tr></table></div></body></html>`,
      );
  };

  /** Sends the authorization response the way response_mode asks. */
  const answer = (res: FastifyReply, redirectUri: string, mode: string, params: Record<string, string | undefined>): FastifyReply => {
    const entries = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined);
    if (mode === "form_post") {
      const inputs = entries.map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}" />`).join("");
      return res
        .code(200)
        .type("text/html; charset=utf-8")
        .send(
          `<html><head><title>Working...</title></head><body><form method="POST" name="hiddenform" action="${escapeHtml(redirectUri)}">${inputs}` +
            `<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit" /></noscript></form>` +
            `<script language="javascript">document.forms[0].submit();</script></body></html>`,
        );
    }
    const target = new URL(redirectUri);
    if (mode === "fragment") target.hash = new URLSearchParams(entries).toString();
    else for (const [k, v] of entries) target.searchParams.set(k, v);
    return res.redirect(target.toString(), 302);
  };
  /** An error sent back to the app (only once client and redirect URI are known good). */
  const redirectError = (res: FastifyReply, redirectUri: string, mode: string, state: string | undefined, error: string, code: number, text: string) =>
    answer(res, redirectUri, mode, {
      error,
      error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${stsTimestamp()}`,
      state,
    });

  const authorize = (request: FastifyRequest, res: FastifyReply): FastifyReply => {
    const { tenant: segment } = request.params as { tenant: string };
    const q = queryParams(request);
    if (!knownTenant(segment)) {
      return errorPage(res, 90002, `Tenant '${segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
    if (!q.client_id) return errorPage(res, 900144, "The request body must contain the following parameter: 'client_id'.");
    if (q.client_id !== app.clientId) {
      return errorPage(
        res,
        700016,
        `Application with identifier '${q.client_id}' was not found in the directory '${tenant.name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );
    }
    const redirectUri = q.redirect_uri ?? (redirectUris.length === 1 ? redirectUris[0] : undefined);
    if (!redirectUri) return errorPage(res, 900971, "No reply address provided.");
    if (!redirectUris.includes(redirectUri)) {
      return errorPage(
        res,
        50011,
        `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${app.clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.`,
      );
    }
    const mode = q.response_mode ?? "query";
    const fail = (error: string, code: number, text: string) => redirectError(res, redirectUri, ["query", "fragment", "form_post"].includes(mode) ? mode : "query", q.state, error, code, text);
    if (!["query", "fragment", "form_post"].includes(mode)) return fail("invalid_request", 70007, `'${mode}' is not a supported value of 'response_mode' when requesting a token.`);
    if (!q.response_type) return fail("invalid_request", 900144, "The request body must contain the following parameter: 'response_type'.");
    if (q.response_type !== "code") {
      return fail("unsupported_response_type", q.response_type.includes("id_token") ? 700054 : 700051, `response_type '${q.response_type}' is not enabled for the application.`);
    }
    const requested = (q.scope ?? "").split(" ").filter(Boolean);
    if (requested.length === 0) return fail("invalid_request", 900144, "The request body must contain the following parameter: 'scope'.");
    const invalid = requested.find((s) => !OIDC_SCOPES.includes(s.toLowerCase()) && s.toLowerCase() !== "offline_access" && !GRAPH_SCOPE.test(s));
    if (invalid !== undefined) return fail("invalid_scope", 70011, `The provided value for the input parameter 'scope' is not valid. The scope ${invalid} is not valid.`);
    // PKCE is S256 or plain, plain when no method is named; an empty parameter counts as sent (and invalid).
    const pkce = pkceOf(q.code_challenge, q.code_challenge_method, ["plain", "S256"]);
    if (!pkce.ok && pkce.reason === "method_without_challenge") return fail("invalid_request", 900144, "The request body must contain the following parameter: 'code_challenge'.");
    if (!pkce.ok && pkce.reason === "unsupported_method") return fail("invalid_request", 90100, "The 'code_challenge_method' parameter is empty or not valid.");
    // An S256 challenge is a SHA-256 in base64url: exactly 43 characters.
    if (!pkce.ok || (pkce.pkce?.method === "S256" && !/^[A-Za-z0-9_-]{43}$/.test(pkce.pkce.challenge))) {
      return fail("invalid_request", 501491, "Invalid size of Code_Challenge parameter.");
    }
    if (q._sandbox_decision === "deny") return fail("access_denied", 65004, "User declined to consent to access the app.");
    const graphScopes = requested.filter((s) => GRAPH_SCOPE.test(s)).map(shortScope);
    const scopes = [...new Set(graphScopes.flatMap((s) => (s.toLowerCase() === ".default" ? STATIC_PERMISSIONS : [s])))];
    const grant = newGrant(
      scopes,
      OIDC_SCOPES.filter((o) => requested.some((s) => s.toLowerCase() === o)),
      requested.some((s) => s.toLowerCase() === "offline_access"),
    );
    const code = `1.A${randomChars(760, B64URL)}`;
    // At Microsoft the consent is the grant, made when the user consents: a revoke-all before the exchange covers it.
    auth.issueCode(code, grant, { redirectUri, pkce: pkce.pkce, grant });
    return answer(res, redirectUri, mode, { code, state: q.state, session_state: randomUUID() });
  };

  /** The optional `scope` of a token request: at most what the user consented to (else AADSTS65001). */
  const scopeRefused = (grant: Grant, scope: string | undefined): boolean => {
    const allowed = [...grant.scopes, ...OIDC_SCOPES, "offline_access", ".default"].map((s) => s.toLowerCase());
    return (scope ?? "")
      .split(" ")
      .filter(Boolean)
      .some((s) => !allowed.includes(shortScope(s).toLowerCase()));
  };
  const notConsented = (res: FastifyReply) =>
    sts(res, 400, "invalid_grant", 65001, `The user or administrator has not consented to use the application with ID '${app.clientId}' named 'AutoFlow Sandbox App'. Send an interactive authorization request for this user and resource.`);
  const expiredGrant = (res: FastifyReply) =>
    sts(res, 400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.");


  const redeemCode = (res: FastifyReply, p: Record<string, string>): FastifyReply => {
    if (!p.code) return missing(res, "code");
    // Microsoft ignores a code_verifier sent for a code issued without a challenge, and checks the scope asked for last.
    const redeemed = auth.redeemCode(
      p.code,
      { redirectUri: p.redirect_uri || undefined, verifier: p.code_verifier },
      { verifier: "when-challenged", last: (code) => (scopeRefused(code.data, p.scope) ? "scope_refused" : undefined) },
    );
    if (redeemed.ok) return stsSend(res, 200, tokenAnswer(redeemed.code.data));
    switch (redeemed.reason) {
      // A replay also revokes what the code minted (RFC 6749 §4.1.2): the kit has done so.
      case "reused": return sts(res, 400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.");
      case "expired": return expiredGrant(res);
      case "redirect_uri_missing": return missing(res, "redirect_uri");
      case "redirect_uri_mismatch":
        if (!redirectUris.includes(p.redirect_uri ?? "")) return sts(res, 400, "invalid_client", 50011, `The reply URL specified in the request does not match the reply URLs configured for the application: '${app.clientId}'.`);
        // [UNCERTAIN] Microsoft's wording for a registered URI other than the authorize leg's.
        return sts(res, 400, "invalid_grant", 70000, "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used to obtain the authorization code.");
      case "verifier_missing":
      case "verifier_mismatch": return sts(res, 400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.");
      case "provider_refused": return notConsented(res);
      // Unknown (codes are bound to no client: client_id is checked first, and a stray verifier is ignored).
      default: return sts(res, 400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.");
    }
  };

  const redeemRefresh = (res: FastifyReply, p: Record<string, string>): FastifyReply => {
    if (!p.refresh_token) return missing(res, "refresh_token");
    // A new refresh token comes with every answer; the presented one is not revoked (v2-oauth2-auth-code-flow.md).
    const rotated = auth.rotate(p.refresh_token, "refresh", { graceMs: Number.POSITIVE_INFINITY });
    if (rotated.ok) return scopeRefused(rotated.grant, p.scope) ? notConsented(res) : stsSend(res, 200, tokenAnswer(rotated.grant));
    const record = rotated.token;
    if (rotated.reason === "revoked" && record?.grant.revokedAs === "sessions") {
      return sts(
        res,
        400,
        "invalid_grant",
        50173,
        `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '${new Date(record.grant.issuedAt).toISOString()}' and the TokensValidFrom date (before which tokens are not valid) for this user is '${new Date(state.tokensValidFrom ?? now()).toISOString()}'.`,
      );
    }
    if (rotated.reason === "revoked") return expiredGrant(res);
    if (rotated.reason === "expired" && record) {
      const days = (refreshTtlSeconds / 86_400).toFixed(2);
      const issuedAt = (record.expiresAt ?? now()) - refreshTtlSeconds * 1000;
      return sts(res, 400, "invalid_grant", 700082, `The refresh token has expired due to inactivity. The token was issued on '${new Date(issuedAt).toISOString()}' and was inactive for ${days} days.`);
    }
    // Unknown, or an access token.
    return sts(res, 400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.");
  };

  const token = (request: FastifyRequest, res: FastifyReply): FastifyReply => {
    const { tenant: segment } = request.params as { tenant: string };
    if (!knownTenant(segment)) return sts(res, 400, "invalid_request", 90002, `Tenant '${segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    // Form-encoded only: any other body has no grant_type as far as the endpoint is concerned.
    if (!(request.headers["content-type"] ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")) return missing(res, "grant_type");
    const p = bodyParams(request);
    const basic = basicCredentials(request);
    const clientId = p.client_id ?? basic?.id;
    if (!clientId) return missing(res, "client_id");
    if (clientId !== app.clientId) {
      return sts(res, 400, "unauthorized_client", 700016, `Application with identifier '${clientId}' was not found in the directory '${tenant.name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
    }
    // The sandbox app is a confidential web app: its secret is required on every grant.
    const secret = p.client_secret ?? basic?.secret;
    if (secret === undefined) return sts(res, 401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    if (secret !== app.clientSecret) {
      return sts(res, 401, "invalid_client", 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`);
    }
    if (!p.grant_type) return missing(res, "grant_type");
    if (p.grant_type === "authorization_code") return redeemCode(res, p);
    if (p.grant_type === "refresh_token") return redeemRefresh(res, p);
    return sts(res, 400, "unsupported_grant_type", 70003, `The app requested an unsupported grant type '${p.grant_type}'.`);
  };

  // ---- Microsoft Graph ----------------------------------------------------

  const graphError = (ctx: GraphContext, status: number, code: string, message: string, headers: Record<string, string> = {}, innerCode?: string): GraphAnswer => ({
    status,
    headers: { "Cache-Control": "no-cache", "Content-Type": "application/json", ...headers },
    body: {
      error: { code, message, innerError: { ...(innerCode ? { code: innerCode } : {}), date: graphDate(), "request-id": ctx.requestId, "client-request-id": ctx.clientRequestId } },
    },
  });
  const graphOk = (body: unknown): GraphAnswer => ({
    status: 200,
    headers: { "Cache-Control": "no-cache", "x-ms-resource-unit": "1", "OData-Version": "4.0", "Content-Type": ODATA_JSON },
    body,
  });
  const challengeHeader = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="${GRAPH_APP_ID}"`;
  const unauthorized = (ctx: GraphContext, message: string, extra = ""): GraphAnswer =>
    graphError(ctx, 401, "InvalidAuthenticationToken", message, { "WWW-Authenticate": challengeHeader + extra });


  /** The bearer token's grant, or Graph's 401. */
  const authenticate = (ctx: GraphContext, token: string | undefined): { grant: Grant } | GraphAnswer => {
    if (!token) return unauthorized(ctx, "Access token is empty.");
    if (!token.includes(".")) return unauthorized(ctx, "CompactToken parsing failed with error code: 80049217");
    const checked = auth.verify(token, ["access"]);
    if (checked.ok) return { grant: checked.token.grant };
    // Graph tells an expired token before a revoked one.
    if (checked.reason === "expired" || (checked.reason === "revoked" && checked.token && auth.isExpired(checked.token))) {
      return unauthorized(ctx, "Access token has expired or is not yet valid.");
    }
    // Unknown, or a refresh token.
    if (checked.reason !== "revoked") return unauthorized(ctx, "Access token validation failure.");
    // Graph rejects a revoked session at once for CAE sessions, with a claims challenge; a token
    // outside CAE may keep working at Microsoft until it expires. The sandbox always rejects.
    const claims = Buffer.from(JSON.stringify({ access_token: { nbf: { essential: true, value: String(Math.floor((state.tokensValidFrom ?? now()) / 1000)) } } })).toString("base64");
    return unauthorized(
      ctx,
      "Continuous access evaluation resulted in claims challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
      `, error="insufficient_claims", claims="${claims}"`,
    );
  };

  /** `$select` on one resource: the chosen properties, or Graph's 400 for an unknown one. */
  const select = (ctx: GraphContext, resource: Record<string, unknown>, query: URLSearchParams, type: string): Record<string, unknown> | GraphAnswer => {
    const raw = query.get("$select");
    if (raw === null) return resource;
    const wanted = raw.split(",").map((p) => p.trim()).filter(Boolean);
    const unknown = wanted.find((p) => !Object.keys(resource).some((k) => k.toLowerCase() === p.toLowerCase()));
    if (unknown !== undefined) return graphError(ctx, 400, "BadRequest", `Could not find a property named '${unknown}' on type '${type}'.`);
    // In the order asked for, under the property's own name (Graph's @odata.context follows $select).
    return Object.fromEntries(wanted.map((p) => Object.entries(resource).find(([k]) => k.toLowerCase() === p.toLowerCase()) as [string, unknown]));
  };
  const isAnswer = (value: unknown): value is GraphAnswer => typeof value === "object" && value !== null && "status" in value && "headers" in value;
  const denied = (ctx: GraphContext) => graphError(ctx, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");

  const reads: Readonly<Record<string, (ctx: GraphContext, grant: Grant, query: URLSearchParams) => GraphAnswer>> = {
    "/me": (ctx, grant, query) => {
      if (!hasAny(grant.scopes, ME_PERMISSIONS)) return denied(ctx);
      const resource = { businessPhones: [], displayName: user.displayName, givenName: user.givenName, jobTitle: null, mail: user.mail, mobilePhone: null, officeLocation: null, preferredLanguage: null, surname: user.surname, userPrincipalName: user.userPrincipalName, id: user.id };
      const chosen = select(ctx, resource, query, "microsoft.graph.user");
      if (isAnswer(chosen)) return chosen;
      const context = query.has("$select") ? `users(${Object.keys(chosen).join(",")})/$entity` : "users/$entity";
      return graphOk({ "@odata.context": `https://graph.microsoft.com/v1.0/$metadata#${context}`, ...chosen });
    },
    "/me/joinedteams": (ctx, grant) => {
      if (!hasAny(grant.scopes, JOINED_TEAMS_PERMISSIONS)) {
        return graphError(ctx, 403, "Forbidden", `Missing scope permissions on the request. API requires one of '${JOINED_TEAMS_PERMISSIONS.join(", ")}'. Scopes on the request '${[...grant.scopes, ...grant.oidc].join(", ")}'`);
      }
      // joinedTeams supports no OData parameters and answers only id, displayName and description with data.
      const value = teams.map((t) => ({ id: t.id, createdDateTime: null, displayName: t.displayName, description: t.description, internalId: null, classification: null, specialization: null, visibility: null, webUrl: null, isArchived: false, tenantId: tenant.id, isMembershipLimitedToOwners: null, memberSettings: null, guestSettings: null, messagingSettings: null, funSettings: null, discoverySettings: null, summary: null }));
      return graphOk({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#teams", "@odata.count": value.length, value });
    },
    "/organization": (ctx, grant, query) => {
      if (!hasAny(grant.scopes, ORGANIZATION_PERMISSIONS)) return denied(ctx);
      // With User.Read only id, displayName and verifiedDomains have values (organization-get.md).
      const resource = {
        id: tenant.id,
        deletedDateTime: null,
        businessPhones: [],
        city: null,
        country: null,
        countryLetterCode: null,
        createdDateTime: null,
        displayName: tenant.name,
        tenantType: null,
        verifiedDomains: [{ capabilities: "Email, OfficeCommunicationsOnline", isDefault: true, isInitial: true, name: tenant.domain, type: "Managed" }],
      };
      const chosen = select(ctx, resource, query, "microsoft.graph.organization");
      if (isAnswer(chosen)) return chosen;
      const context = query.has("$select") ? `organization(${Object.keys(chosen).join(",")})` : "organization";
      return graphOk({ "@odata.context": `https://graph.microsoft.com/v1.0/$metadata#${context}`, value: [chosen] });
    },
  };

  // ---- teams, channels and messages ---------------------------------------------------------

  const missingScope = (ctx: GraphContext, grant: Grant, accepted: readonly string[]): GraphAnswer =>
    graphError(ctx, 403, "Forbidden", `Missing scope permissions on the request. API requires one of '${accepted.join(", ")}'. Scopes on the request '${[...grant.scopes, ...grant.oidc].join(", ")}'`);
  /** [UNCERTAIN] the wording of Graph's 404s for teams, channels and messages; the code and status are Graph's. */
  const teamNotFound = (ctx: GraphContext, teamId: string) => graphError(ctx, 404, "NotFound", `No team found with Group Id ${teamId}`);
  const channelNotFound = (ctx: GraphContext) => graphError(ctx, 404, "NotFound", "Channel not found.");
  const channelContext = (channel: Channel): string => `https://graph.microsoft.com/v1.0/$metadata#teams('${channel.teamId}')/channels('${encodeURIComponent(channel.id)}')`;
  const teamsUrl = (channel: Channel): string => `https://teams.microsoft.com/l/channel/${encodeURIComponent(channel.id)}/${encodeURIComponent(channel.displayName)}?groupId=${channel.teamId}&tenantId=${tenant.id}`;
  const channelView = (channel: Channel) => ({
    id: channel.id,
    createdDateTime: channel.createdDateTime,
    displayName: channel.displayName,
    description: channel.description,
    isFavoriteByDefault: null,
    email: "",
    tenantId: tenant.id,
    webUrl: teamsUrl(channel),
    membershipType: "standard",
    isArchived: false,
  });
  const messageView = (message: ChannelMessage, channel: Channel) => ({
    id: message.id,
    replyToId: null,
    etag: message.id,
    messageType: "message",
    createdDateTime: message.createdDateTime,
    lastModifiedDateTime: message.createdDateTime,
    lastEditedDateTime: null,
    deletedDateTime: null,
    subject: null,
    summary: null,
    chatId: null,
    importance: "normal",
    locale: "en-us",
    webUrl: `https://teams.microsoft.com/l/message/${encodeURIComponent(channel.id)}/${message.id}?groupId=${channel.teamId}&tenantId=${tenant.id}&createdTime=${message.id}&parentMessageId=${message.id}`,
    policyViolation: null,
    eventDetail: null,
    from: { application: null, device: null, user: { "@odata.type": "#microsoft.graph.teamworkUserIdentity", id: user.id, displayName: user.displayName, userIdentityType: "aadUser", tenantId: tenant.id } },
    body: { contentType: message.contentType, content: message.content },
    channelIdentity: { teamId: channel.teamId, channelId: channel.id },
    attachments: [],
    mentions: [],
    reactions: [],
  });
  /** A message id is its creation time in epoch milliseconds, unique within the sandbox. */
  const newMessageId = (): string => {
    let at = now();
    while (messages.has(String(at))) at += 1;
    return String(at);
  };
  const sendMessage = (ctx: GraphContext, grant: Grant, channel: Channel, body: unknown): GraphAnswer => {
    if (!hasAny(grant.scopes, MESSAGE_SEND_PERMISSIONS)) return missingScope(ctx, grant, MESSAGE_SEND_PERMISSIONS);
    const given = (body as { body?: { content?: unknown; contentType?: unknown } } | null | undefined)?.body;
    // [UNCERTAIN] the wording of Graph's 400s for a bad message; BadRequest is its code.
    if (typeof given !== "object" || given === null || typeof given.content !== "string" || given.content.trim() === "") return graphError(ctx, 400, "BadRequest", "Message body cannot be empty.");
    const contentType = given.contentType === undefined ? "text" : typeof given.contentType === "string" ? given.contentType.toLowerCase() : "";
    if (contentType !== "text" && contentType !== "html") return graphError(ctx, 400, "BadRequest", `Requested value '${String(given.contentType)}' was not found.`);
    if (Buffer.byteLength(given.content) > MESSAGE_MAX_BYTES) return graphError(ctx, 413, "RequestEntityTooLarge", "Message size exceeds the limit.");
    const id = newMessageId();
    const message: ChannelMessage = { id, teamId: channel.teamId, channelId: channel.id, contentType, content: given.content, createdDateTime: new Date(Number(id)).toISOString() };
    messages.set(id, message);
    return { ...graphOk({ "@odata.context": `${channelContext(channel)}/messages/$entity`, ...messageView(message, channel) }), status: 201 };
  };
  /** `/teams/{team-id}/channels[/{channel-id}/messages[/{message-id}]]`: undefined for any other path. */
  /**
   * GET .../messages: the channel's top-level messages, newest first ([UNCERTAIN] the order), a page of `$top`
   * with `@odata.nextLink` to the next while there is one: an absolute URL at this sandbox (Graph's points at
   * graph.microsoft.com; the SDK's PageIterator follows whatever the answer says) carrying an opaque $skiptoken.
   */
  const listMessages = (ctx: GraphContext, channel: Channel, query: URLSearchParams): GraphAnswer => {
    const topText = query.get("$top");
    const top = topText === null ? MESSAGES_PAGE : Number(topText);
    if (!Number.isInteger(top) || top < 1 || top > MESSAGES_PAGE_MAX) return graphError(ctx, 400, "BadRequest", `Invalid page size specified: '${topText ?? ""}'. Must be between 1 and ${MESSAGES_PAGE_MAX} inclusive.`);
    const skip = query.get("$skiptoken");
    let offset = 0;
    if (skip !== null) {
      const decoded = Buffer.from(skip, "base64url").toString("utf8");
      // [UNCERTAIN] Graph's wording for a skip token it cannot read.
      if (!/^\d{1,9}$/.test(decoded)) return graphError(ctx, 400, "BadRequest", "The skip token is invalid.");
      offset = Number(decoded);
    }
    const all = [...messages.values()].filter((m) => m.channelId === channel.id).sort((a, b) => Number(b.id) - Number(a.id));
    const page = all.slice(offset, offset + top);
    const base = `${graphOrigin}/v1.0/teams/${channel.teamId}/channels/${encodeURIComponent(channel.id)}/messages`;
    const more = offset + page.length < all.length;
    return graphOk({
      "@odata.context": `${channelContext(channel)}/messages`,
      "@odata.count": page.length,
      ...(more ? { "@odata.nextLink": `${base}?$top=${top}&$skiptoken=${Buffer.from(String(offset + page.length)).toString("base64url")}` } : {}),
      value: page.map((m) => messageView(m, channel)),
    });
  };
  const channelRequest = (ctx: GraphContext, grant: Grant, method: string, pathname: string, body: unknown, query: URLSearchParams): GraphAnswer | undefined => {
    const segments = pathname.replace(/^\/+|\/+$/g, "").split("/").map((segment) => decodeURIComponent(segment));
    if (segments[0]?.toLowerCase() !== "teams" || segments[2]?.toLowerCase() !== "channels" || segments.length > 6) return undefined;
    if (segments.length === 5 && segments[4]?.toLowerCase() !== "messages") return undefined;
    if (segments.length === 6 && segments[4]?.toLowerCase() !== "messages") return undefined;
    if (segments.length === 4) return graphError(ctx, 400, "BadRequest", "Reading a single channel is not modelled by the sandbox; list the team's channels.");
    const upper = method.toUpperCase();
    const isSend = segments.length === 5 && upper === "POST";
    if (!isSend && upper !== "GET") return graphError(ctx, 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.");
    // Graph checks the permission before it looks the team up.
    const accepted = segments.length === 3 ? CHANNEL_LIST_PERMISSIONS : isSend ? MESSAGE_SEND_PERMISSIONS : MESSAGE_READ_PERMISSIONS;
    if (!hasAny(grant.scopes, accepted)) return missingScope(ctx, grant, accepted);
    const teamId = segments[1] as string;
    if (!teams.some((t) => t.id === teamId.toLowerCase())) return teamNotFound(ctx, teamId);
    if (segments.length === 3) {
      // One answer, no @odata.nextLink: the channel list takes $filter and $select only, and no $top (channel-list.md);
      // joinedTeams takes no OData parameter at all. Of the Teams actions' lists, only a channel's messages page.
      const value = channels.filter((c) => c.teamId === teamId.toLowerCase()).map(channelView);
      return graphOk({ "@odata.context": `https://graph.microsoft.com/v1.0/$metadata#teams('${teamId}')/channels`, "@odata.count": value.length, value });
    }
    const channel = channels.find((c) => c.teamId === teamId.toLowerCase() && c.id === segments[3]);
    if (!channel) return channelNotFound(ctx);
    if (isSend) return sendMessage(ctx, grant, channel, body);
    if (segments.length === 5) return listMessages(ctx, channel, query);
    const message = messages.get(segments[5] as string);
    if (!message || message.channelId !== channel.id) return graphError(ctx, 404, "NotFound", "Message not found.");
    return graphOk({ "@odata.context": `${channelContext(channel)}/messages/$entity`, ...messageView(message, channel) });
  };

  /** One Graph request by its path under /v1.0 (segments are case-insensitive at Graph, ids are not). */
  const read = (ctx: GraphContext, grant: Grant, method: string, url: string, body?: unknown): GraphAnswer => {
    const parsed = new URL(url.startsWith("/") ? url : `/${url}`, "http://graph.invalid");
    const channelAnswer = channelRequest(ctx, grant, method, parsed.pathname, body, parsed.searchParams);
    if (channelAnswer) return channelAnswer;
    const path = parsed.pathname.replace(/\/+$/, "").toLowerCase();
    const handler = reads[path];
    if (!handler) return graphError(ctx, 400, "BadRequest", `Resource not found for the segment '${decodeURIComponent(path.split("/").pop() ?? "")}'.`);
    if (method.toUpperCase() !== "GET") return graphError(ctx, 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.");
    return handler(ctx, grant, parsed.searchParams);
  };

  const graphContext = (request: FastifyRequest): GraphContext => {
    const requestId = randomUUID();
    const sent = request.headers["client-request-id"];
    return { requestId, clientRequestId: typeof sent === "string" && sent !== "" ? sent : requestId };
  };
  const sendGraph = (res: FastifyReply, ctx: GraphContext, answer: GraphAnswer): FastifyReply => {
    res
      .code(answer.status)
      .header("request-id", ctx.requestId)
      .header("client-request-id", ctx.clientRequestId)
      .header("x-ms-ags-diagnostic", JSON.stringify({ ServerInfo: { DataCenter: "West Europe", Slice: "E", Ring: "5", ScaleUnit: "001", RoleInstance: "AM4PEPF00027A1B" } }))
      .header("strict-transport-security", "max-age=31536000");
    for (const [name, value] of Object.entries(answer.headers)) res.header(name.toLowerCase(), value);
    return res.send(JSON.stringify(answer.body));
  };

  // ---- faults, as each host sends them -------------------------------------

  const definition: SandboxDefinition = {
    provider: "teams",
    listening: (origin) => {
      graphOrigin = origin;
    },
    state,
    browserPaths: [...WELL_KNOWN_TENANTS, tenant.id, tenant.domain].map((t) => `/${t}/oauth2/v2.0/authorize`),
    endpoints: (origin) => ({
      authorizeUrl: `${origin}/common/oauth2/v2.0/authorize`,
      tokenUrl: `${origin}/common/oauth2/v2.0/token`,
      apiUrl: `${origin}/v1.0`,
    }),
    faults: {
      rateLimit: (res, fault) => {
        const retryAfter = fault.retryAfterSeconds !== undefined ? String(fault.retryAfterSeconds) : DEFAULT_RETRY_AFTER;
        res.header("retry-after", retryAfter);
        if (isTokenPath(pathOf(res.request))) {
          // [UNCERTAIN] the identity platform's throttle: AADSTS90055 is its "too many incoming requests".
          return sts(res, 429, "temporarily_unavailable", 90055, "There are too many incoming requests. Please try again later.");
        }
        // The whole request is over the app's limit; throttled requests inside a batch answer 429 each instead.
        const ctx = graphContext(res.request);
        return sendGraph(res, ctx, graphError(ctx, 429, "TooManyRequests", "Too many requests", { "Retry-After": retryAfter }, "throttledRequest"));
      },
      serverError: (res, fault) => {
        const retryAfter: Record<string, string> = fault.retryAfterSeconds !== undefined ? { "Retry-After": String(fault.retryAfterSeconds) } : {};
        if (isTokenPath(pathOf(res.request))) return sts(res, 503, "temporarily_unavailable", 50033, "A transient error has occurred. Please try again.");
        const ctx = graphContext(res.request);
        return sendGraph(
          res,
          ctx,
          graphError(ctx, 503, "serviceNotAvailable", "The service is temporarily unavailable for maintenance or is overloaded. You may repeat the request after a delay.", retryAfter),
        );
      },
      badRequest: (res) => {
        const path = pathOf(res.request);
        if (isTokenPath(path)) return sts(res, 400, "invalid_request", 9002313, "Invalid request. Request is malformed or invalid.");
        const ctx = graphContext(res.request);
        return sendGraph(res, ctx, graphError(ctx, 400, "BadRequest", path.endsWith("/$batch") ? "Invalid batch payload format." : "Invalid request."));
      },
      malformed: (res) => {
        const body = isTokenPath(pathOf(res.request))
          ? '{"token_type":"Bearer","scope":"User.Read Team.ReadBasic.All","expires_in":43'
          : '{"responses":[{"id":"me","status":200,"headers":{"Cache-Control":"no-cache"},"body":{"@odata.context":"https://graph.microsoft.com/v1.0/$meta';
        return res.code(200).header("content-type", "application/json; charset=utf-8").send(body);
      },
    },
    revokeAll: () => {
      // As revokeSignInSessions: every refresh token of the user, and (CAE) every access token.
      state.tokensValidFrom = now();
      auth.revokeAll("sessions");
    },
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      const scopes = [...new Set((parsed.scopes ?? STATIC_PERMISSIONS).map(shortScope))];
      const ttl = accessTtl();
      const accessToken = mintAccess(newGrant(scopes, [], false), ttl);
      return { accessToken, tokenType: "Bearer", expiresInSeconds: ttl, scopes, tenantId: tenant.id, userPrincipalName: user.userPrincipalName, displayName: user.displayName };
    },
    routes(server: FastifyInstance) {
      server.get("/:tenant/oauth2/v2.0/authorize", async (request, res) => authorize(request, res));
      server.post("/:tenant/oauth2/v2.0/token", async (request, res) => token(request, res));

      server.post("/v1.0/$batch", async (request, res) => {
        const ctx = graphContext(request);
        // The batch itself is authenticated first; [UNCERTAIN] Graph may instead answer 401 per request.
        const caller = authenticate(ctx, bearerToken(request));
        if (isAnswer(caller)) return sendGraph(res, ctx, caller);
        const parsed = batchRequest.safeParse(request.body);
        if (!parsed.success) return sendGraph(res, ctx, graphError(ctx, 400, "BadRequest", "Invalid batch payload format."));
        const requests = parsed.data.requests;
        if (requests.length > 20) return sendGraph(res, ctx, graphError(ctx, 400, "BadRequest", "The number of requests in a batch must not exceed 20."));
        const ids = new Set(requests.map((r) => r.id.toLowerCase()));
        if (ids.size !== requests.length) return sendGraph(res, ctx, graphError(ctx, 400, "BadRequest", "Batch request ids must be unique."));
        if (requests.some((r) => r.dependsOn?.some((d) => !ids.has(d.toLowerCase())))) {
          return sendGraph(res, ctx, graphError(ctx, 400, "BadRequest", "A dependsOn id does not name a request of the batch."));
        }
        // Requests run in the order given (a message sent in one is there for the next); a request whose
        // dependency failed is not run and answers 424 (json-batching.md; [UNCERTAIN] its body).
        const statuses = new Map<string, number>();
        const responses = requests.map((r) => {
          const failed = r.dependsOn?.find((d) => (statuses.get(d.toLowerCase()) ?? 200) >= 400);
          const result = failed !== undefined ? graphError(ctx, 424, "FailedDependency", `The request depends on request '${failed}', which failed.`) : read(ctx, caller.grant, r.method, r.url, r.body);
          statuses.set(r.id.toLowerCase(), result.status);
          return { id: r.id, ...result };
        });
        return sendGraph(res, ctx, { status: 200, headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache" }, body: { responses } });
      });

      server.get("/v1.0/*", async (request, res) => {
        const ctx = graphContext(request);
        const caller = authenticate(ctx, bearerToken(request));
        if (isAnswer(caller)) return sendGraph(res, ctx, caller);
        return sendGraph(res, ctx, read(ctx, caller.grant, "GET", request.url.slice("/v1.0".length)));
      });
      server.route({
        method: ["POST", "PUT", "PATCH", "DELETE"],
        url: "/v1.0/*",
        handler: async (request, res) => {
          const ctx = graphContext(request);
          const caller = authenticate(ctx, bearerToken(request));
          if (isAnswer(caller)) return sendGraph(res, ctx, caller);
          return sendGraph(res, ctx, read(ctx, caller.grant, request.method, request.url.slice("/v1.0".length), request.body));
        },
      });
    },
  };
  return definition;
}

/** A client secret in the shape the Entra admin center shows once: 40 characters with `Q~` in them. */
const clientSecretShape = (): string => `${randomChars(3)}8Q~${randomChars(34, `${B64URL}.~`)}`;

export async function startTeamsSandbox(options: TeamsSandboxOptions = {}): Promise<StartedSandbox> {
  const app = { clientId: options.clientId ?? randomUUID(), clientSecret: options.clientSecret ?? clientSecretShape() };
  return startSandbox("teams", options, app, (registered, restored, redirectUris) => teamsSandbox({ ...options, redirectUris }, registered, restored));
}
