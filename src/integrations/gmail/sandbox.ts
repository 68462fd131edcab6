/**
 * A local Google for Gmail: the OAuth 2.0 endpoints of accounts.google.com
 * and oauth2.googleapis.com and the Gmail API of gmail.googleapis.com, each
 * at its real path, at the root of one origin. google-auth-library pointed
 * at it (`endpoints: { oauth2AuthBaseUrl, oauth2TokenUrl, oauth2RevokeUrl,
 * tokenInfoUrl }`) and googleapis with `rootUrl` work unchanged.
 *
 *   GET  /o/oauth2/v2/auth            consent, auto-approved: 302 to redirect_uri?state&iss&code=4/...&scope&authuser&prompt
 *                                     (Google's "Error 401: invalid_client" / "Error 400: redirect_uri_mismatch" pages,
 *                                     never redirected; `_sandbox_decision=deny` redirects with error=access_denied)
 *   POST /token                       code exchange (client secret, redirect URI, single use, PKCE S256/plain) and refresh
 *   POST /revoke                      token= in the form or the query: ends the token's grant (GET answers 404, as Google's does)
 *   GET  /tokeninfo?access_token=     {azp, aud, sub?, scope, exp, expires_in, email?, email_verified?, access_type}
 *   GET  /gmail/v1/users/me/profile   {emailAddress, messagesTotal, threadsTotal, historyId}
 *   POST /gmail/v1/users/me/labels    creates a user label (gmail.labels, gmail.modify or mail.google.com): Label_<n>;
 *                                     409 "Label name exists or conflicts" for a name the mailbox has, whatever its case
 *   GET  /gmail/v1/users/me/labels    the system labels (INBOX, SENT, ...) and the user's
 *   GET  /gmail/v1/users/me/labels/{id}  one label with its counts (404 notFound)
 *   POST /gmail/v1/users/me/messages/send  sends {raw} (base64url RFC 5322; gmail.send, gmail.compose, gmail.modify or
 *                                     mail.google.com): {id, threadId, labelIds:["SENT"]}; 400 "Recipient address
 *                                     required" / "Invalid To header"; also /upload/... with uploadType=multipart|media
 *   GET  /gmail/v1/users/me/messages  newest first: maxResults (100, at most 500), pageToken, q (in:, label:, is:,
 *                                     from:, to:, subject:, words), labelIds, includeSpamTrash
 *   GET  /gmail/v1/users/me/messages/{id}  format=full|metadata|minimal|raw, metadataHeaders (404 notFound)
 *                                     (a new mailbox starts with three messages in its inbox; sandboxMail.ts)
 *                                     (`me` or the token's own address in each of these)
 *
 * Tokens look like Google's: `ya29.` access tokens that expire after
 * `accessTokenTtlSeconds` (3599 by default, as Google's `expires_in`), `1//`
 * refresh tokens that do not rotate (the `tokenRotation` option is ignored:
 * Google never rotates them). Errors come as Google sends them: RFC 6749
 * bodies from the token, revoke and tokeninfo endpoints, the Google JSON
 * error envelope from the Gmail API.
 */
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { escapeHtml } from "../shared/html.js";
import { MESSAGE_FORMATS, addressesOf, asSent, headerOf, matchesQuery, messageResource, parseMessage, relatedParts, sendRefusal, type MessageFormat, type StoredMessage } from "./sandboxMail.js";
import { authorizationServer, authorizationState, pkceOf, type CodeRefusal, type Grant as KitGrant } from "../../sandbox/authorizationServer.js";
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

/** Google's access tokens last an hour; the token response says 3599. */
const ACCESS_TOKEN_TTL_SECONDS = 3599;
/** Live refresh tokens per account per OAuth client before the oldest stops working (Google's documented limit). */
const REFRESH_TOKEN_LIMIT = 100;

const SCOPE_PREFIX = "https://www.googleapis.com/auth/";
const EMAIL_SCOPE = `${SCOPE_PREFIX}userinfo.email`;
const USERINFO_PROFILE_SCOPE = `${SCOPE_PREFIX}userinfo.profile`;
/** Scopes that may read users.getProfile (discovery doc gmail-v1.json). */
const PROFILE_SCOPES = new Set(["https://mail.google.com/", ...["gmail.compose", "gmail.metadata", "gmail.modify", "gmail.readonly"].map((s) => SCOPE_PREFIX + s)]);
/** What Google writes for the short OpenID scope names in granted scope strings. */
const SCOPE_ALIASES: Readonly<Record<string, string>> = { email: EMAIL_SCOPE, profile: USERINFO_PROFILE_SCOPE };
const PROFILE_METHOD = "caribou.api.proto.MailboxService.GetProfile";

export type GmailSandboxOptions = SandboxOptions & {
  /**
   * How the rate-limit fault throttles: 429 RESOURCE_EXHAUSTED (default,
   * with Retry-After when the fault gives retryAfterSeconds), or 403
   * userRateLimitExceeded, which tells the time in its message instead.
   */
  rateLimitStatus?: 403 | 429;
  /** Refresh tokens expire (an app in "Testing" publishing status: 604800, seven days). Never by default. */
  refreshTokenTtlSeconds?: number;
  /** Live refresh tokens per account before the oldest stops working. Default 100. */
  refreshTokenLimit?: number;
  /** Ignored: Google does not rotate refresh tokens. Accepted so shared test set-ups can pass it to every sandbox. */
  tokenRotation?: boolean;
};

/** A Google account; its mailbox (labels and messages) is kept apart, by address. */
type Account = { email: string; sub: string; historyId: string; grantedScopes: Set<string>; offlineConsented: boolean };
/** One authorization of one client by one account: its refresh token (if offline) and every access token minted from it end together. */
type Authorization = { account: Account; clientId: string; scopes: string[]; offline: boolean };
type Grant = KitGrant<Authorization>;
/** What a consent decided, for its code's exchange: whether that exchange hands out a refresh token too. */
type Consent = { account: Account; scopes: string[]; offline: boolean; issueRefresh: boolean };

/** How /token refuses a code (all 400): as oauth2.googleapis.com words it. */
const CODE_REFUSALS: Readonly<Record<CodeRefusal, [error: string, description: string]>> = {
  unknown: ["invalid_grant", "Malformed auth code."],
  // Not reached: codes are not bound to a client, and only this app's client gets past client authentication.
  client_mismatch: ["invalid_grant", "Bad Request"],
  reused: ["invalid_grant", "Bad Request"],
  expired: ["invalid_grant", "Bad Request"],
  redirect_uri_missing: ["invalid_request", "Missing required parameter: redirect_uri"],
  redirect_uri_mismatch: ["redirect_uri_mismatch", "Bad Request"],
  verifier_missing: ["invalid_grant", "Missing code verifier."],
  verifier_mismatch: ["invalid_grant", "Invalid code verifier."],
  verifier_unexpected: ["invalid_grant", "code_verifier or verifier is not needed."],
  // Not reached: Google makes no check of its own after the standard ones.
  provider_refused: ["invalid_grant", "Bad Request"],
};
/** How the consent page refuses a code_challenge (Error 400: invalid_request). */
const CHALLENGE_REFUSALS = {
  unsupported_method: "Invalid code_challenge_method value.",
  challenge_malformed: "Invalid code_challenge value.",
  method_without_challenge: "Missing code_challenge.",
} as const;

/** A label the user made; system labels are constants. */
type UserLabel = { id: string; name: string; messageListVisibility?: string; labelListVisibility?: string; color?: { textColor: string; backgroundColor: string } };
/** One mailbox's labels, the number the next one's id takes, and its messages (oldest first). */
type Mailbox = { labels: UserLabel[]; nextLabel: number; messages?: StoredMessage[] };

const credentialRequest = z.strictObject({
  scopes: z.array(z.string().min(1).max(200)).min(1).max(50).optional(),
  email: z.email().optional(),
});

export function gmailSandbox(options: GmailSandboxOptions, app: SandboxApp, restored?: unknown) {
  const state = restoreState(restored, () => ({
    accounts: new Map<string, Account>(),
    /** Codes, grants and their tokens (`access` and `refresh`). */
    authorization: authorizationState<Authorization, "access" | "refresh", Consent>(),
    /** Each account's user labels, by its (lower-case) address. */
    mailboxes: new Map<string, Mailbox>(),
    /** The OAuth client that minted the tokens the credentials desk hands out (the user's own tool, not this app). */
    otherClientId: `${randomChars(12, "0123456789")}-${randomChars(32, "abcdefghijklmnopqrstuvwxyz0123456789")}.apps.googleusercontent.com`,
  }));
  const { accounts, mailboxes, otherClientId } = state;
  // The clock is read at each call, so that tests moving Date move the sandbox's too.
  const auth = authorizationServer(state.authorization, { now: () => Date.now() });
  const redirectUris = options.redirectUris ?? [];
  const accessTtl = options.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS;
  const refreshLimit = options.refreshTokenLimit ?? REFRESH_TOKEN_LIMIT;
  const rateLimitStatus = options.rateLimitStatus ?? 429;
  /** This sandbox's origin, its issuer identifier: known once it listens (startSandbox asks for the endpoints then). */
  let origin = "";

  const accountFor = (email: string): Account => {
    const key = email.toLowerCase();
    let account = accounts.get(key);
    if (!account) {
      account = {
        email: key,
        sub: `1${randomChars(20, "0123456789")}`,
        historyId: randomChars(7, "123456789"),
        grantedScopes: new Set(),
        offlineConsented: false,
      };
      accounts.set(key, account);
    }
    return account;
  };
  /** The account signed in to the sandbox's browser, when no login_hint names another. */
  const signedIn = accountFor("user1@sandbox.autoflow.invalid");

  const mintAccess = (grant: Grant): string => {
    // Real ones are ya29.a0 followed by a couple of hundred base64url characters.
    const token = `ya29.a0${randomChars(180, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}`;
    auth.mint(token, "access", grant, accessTtl * 1000);
    return token;
  };
  const mintRefresh = (grant: Grant): string => {
    const token = `1//0g${randomChars(100, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}`;
    auth.mint(token, "refresh", grant, options.refreshTokenTtlSeconds === undefined ? undefined : options.refreshTokenTtlSeconds * 1000);
    // Past the limit, the account's oldest live refresh token for this client stops working (that token alone: its access tokens live on).
    const live = auth.tokensWhere((t) => t.kind === "refresh" && t.grant.account === grant.account && t.grant.clientId === grant.clientId && auth.isLive(t));
    for (const old of live.slice(0, Math.max(0, live.length - refreshLimit))) auth.revokeToken(old.value);
    return token;
  };

  const json = (res: FastifyReply, status: number, body: unknown): FastifyReply =>
    res
      .code(status)
      .header("content-type", "application/json; charset=utf-8")
      .header("cache-control", "no-cache, no-store, max-age=0, must-revalidate")
      .header("pragma", "no-cache")
      .header("vary", "X-Origin, Referer, Origin,Accept-Encoding")
      .send(JSON.stringify(body, null, 2));
  /** RFC 6749 §5.2 error, as oauth2.googleapis.com answers it. */
  const oauthError = (res: FastifyReply, status: number, error: string, description: string): FastifyReply => json(res, status, { error, error_description: description });
  /** Google's JSON error envelope (legacy errors[] plus status and details). */
  const apiError = (
    res: FastifyReply,
    input: { code: number; message: string; status: string; reason: string; domain?: string; errorMessage?: string; location?: string; info?: string; method?: string },
  ): FastifyReply =>
    json(res, input.code, {
      error: {
        code: input.code,
        message: input.message,
        errors: [
          {
            message: input.errorMessage ?? input.message,
            domain: input.domain ?? "global",
            reason: input.reason,
            ...(input.location ? { location: input.location, locationType: "header" } : {}),
          },
        ],
        status: input.status,
        ...(input.info
          ? { details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: input.info, domain: "googleapis.com", metadata: { service: "gmail.googleapis.com", method: input.method ?? PROFILE_METHOD } }] }
          : {}),
      },
    });

  /** Google's consent error page ("Access blocked"), shown in the browser and never redirected. */
  const errorPage = (res: FastifyReply, status: 400 | 401, error: string, detail: string): FastifyReply =>
    res
      .code(status)
      .type("text/html; charset=utf-8")
      .send(
        `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Google Accounts</title></head><body>` +
          `<h1>Access blocked: ${status === 401 ? "Authorization Error" : "This app&#39;s request is invalid"}</h1>` +
          `<p>${escapeHtml(detail)}</p><p><b>Error ${status}: ${escapeHtml(error)}</b></p></body></html>`,
      );

  const notFoundPage = (res: FastifyReply, path: string): FastifyReply =>
    res
      .code(404)
      .type("text/html; charset=UTF-8")
      .send(
        `<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error 404 (Not Found)!!1</title>` +
          `<p><b>404.</b> <ins>That’s an error.</ins><p>The requested URL <code>${escapeHtml(path)}</code> was not found on this server. <ins>That’s all we know.</ins>`,
      );

  /** Normalises requested scopes (Google's spelling, no repeats) and lists those that are not Google scopes. */
  const parseScopes = (value: string): { scopes: string[]; invalid: string[] } => {
    const scopes: string[] = [];
    const invalid: string[] = [];
    for (const raw of value.split(" ").filter(Boolean)) {
      const scope = SCOPE_ALIASES[raw] ?? raw;
      const known = scope === "openid" || scope === "https://mail.google.com/" || /^https:\/\/www\.googleapis\.com\/auth\/[a-z][a-z0-9._-]*$/.test(scope);
      if (!known) invalid.push(raw);
      else if (!scopes.includes(scope)) scopes.push(scope);
    }
    return { scopes, invalid };
  };

  /** An unsigned-looking ID token: issued only with openid, never verified by the connector (it drops it). */
  const idToken = (account: Account): string => {
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    return `${part({ alg: "RS256", kid: randomChars(40, "0123456789abcdef"), typ: "JWT" })}.${part({
      iss: origin,
      azp: app.clientId,
      aud: app.clientId,
      sub: account.sub,
      email: account.email,
      email_verified: true,
      iat: now,
      exp: now + 3600,
    })}.${randomBytes(256).toString("base64url")}`;
  };

  const tokenBody = (grant: Grant, access: string, refresh: string | undefined): Record<string, unknown> => ({
    access_token: access,
    expires_in: accessTtl,
    ...(refresh ? { refresh_token: refresh } : {}),
    scope: grant.scopes.join(" "),
    token_type: "Bearer",
    ...(grant.scopes.includes("openid") ? { id_token: idToken(grant.account) } : {}),
  });

  /** Client authentication at /token: the form (as google-auth-library sends it) or HTTP Basic. */
  const authenticateClient = (request: FastifyRequest, params: Record<string, string>, res: FastifyReply): boolean => {
    const basic = basicCredentials(request);
    const id = params.client_id ?? basic?.id;
    const secret = params.client_secret ?? basic?.secret;
    if (!id) {
      oauthError(res, 400, "invalid_request", "Could not determine client ID from request.");
      return false;
    }
    if (id !== app.clientId) {
      oauthError(res, 401, "invalid_client", "The OAuth client was not found.");
      return false;
    }
    if (secret === undefined) {
      // A web application client always authenticates; PKCE does not replace its secret.
      oauthError(res, 400, "invalid_request", "client_secret is missing.");
      return false;
    }
    if (secret !== app.clientSecret) {
      oauthError(res, 401, "invalid_client", "Unauthorized");
      return false;
    }
    return true;
  };

  const rateLimitBody = (res: FastifyReply, fault: Fault, enforced?: RateWindow): FastifyReply => {
    if (rateLimitStatus === 403) {
      // Gmail's per-user throttle: a 403 whose message tells when to retry (no Retry-After header).
      const retryAt = enforced ? enforced.resetAtMs : fault.retryAfterSeconds !== undefined ? Date.now() + fault.retryAfterSeconds * 1000 : undefined;
      const message = retryAt !== undefined ? `User-rate limit exceeded.  Retry after ${new Date(retryAt).toISOString()}` : "User Rate Limit Exceeded";
      return apiError(res, { code: 403, message, status: "PERMISSION_DENIED", reason: "userRateLimitExceeded", domain: "usageLimits" });
    }
    // Google documents no Retry-After on 429 (providers.md §4.5): sent only when an injected fault asks for one.
    if (!enforced && fault.retryAfterSeconds !== undefined) res.header("retry-after", String(Math.ceil(fault.retryAfterSeconds)));
    return apiError(res, { code: 429, message: "Resource has been exhausted (e.g. check quota).", status: "RESOURCE_EXHAUSTED", reason: "rateLimitExceeded", info: "RATE_LIMIT_EXCEEDED" });
  };

  /** A label's (or the mailbox's) counts: messages, and threads, each with how many are unread. */
  const countsOf = (messages: readonly StoredMessage[]) => {
    const threads = new Set(messages.map((m) => m.threadId));
    const unread = messages.filter((m) => m.labelIds.includes("UNREAD"));
    return { messagesTotal: messages.length, messagesUnread: unread.length, threadsTotal: threads.size, threadsUnread: new Set(unread.map((m) => m.threadId)).size };
  };
  /** Gmail message ids: 16 hex digits that grow with time. */
  const messageId = (nowMs: number): string => `${nowMs.toString(16).padStart(11, "0")}${randomChars(5, "0123456789abcdef")}`;
  /** What a new mailbox's inbox holds: three unread messages from the last day, each its own thread. */
  const seedInbox = (account: Account): StoredMessage[] => {
    const seeds = [
      { from: "AutoFlow Sandbox <welcome@sandbox.autoflow.invalid>", subject: "Welcome to your sandbox mailbox", text: "This mailbox belongs to the Gmail sandbox. Messages you send appear under SENT.", hoursAgo: 26 },
      { from: "Billing <billing@vendor.example>", subject: "Your invoice INV-1042 is ready", text: "Invoice INV-1042 for $120.00 is ready. It is due in 14 days.", hoursAgo: 5 },
      { from: "Grace Hopper <grace@navy.example>", subject: "Lunch on Thursday?", text: "Are you free for lunch on Thursday? There is a new place near the office.", hoursAgo: 1 },
    ];
    return seeds.map((seed) => {
      const at = Date.now() - seed.hoursAgo * 3_600_000;
      const raw = [
        `From: ${seed.from}`,
        `To: ${account.email}`,
        `Subject: ${seed.subject}`,
        `Date: ${new Date(at).toUTCString().replace("GMT", "+0000")}`,
        `Message-ID: <${randomChars(24, "0123456789abcdef")}@sandbox.autoflow.invalid>`,
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="UTF-8"',
        "",
        seed.text,
        "",
      ].join("\r\n");
      const id = messageId(at);
      return { id, threadId: id, labelIds: ["UNREAD", "CATEGORY_PERSONAL", "INBOX"], internalDate: at, historyId: account.historyId, raw: Buffer.from(raw, "utf8").toString("base64url") };
    });
  };

  const OAUTH_PATHS = new Set(["/token", "/revoke", "/tokeninfo"]);
  const pathOf = (res: FastifyReply): string => res.request.url.split("?")[0] ?? "";

  const definition: SandboxDefinition = {
    provider: "gmail",
    state,
    browserPaths: ["/o/oauth2/v2/auth"],
    endpoints: (url) => {
      origin = url;
      return { authorizeUrl: `${url}/o/oauth2/v2/auth`, tokenUrl: `${url}/token`, revokeUrl: `${url}/revoke`, apiUrl: url };
    },
    faults: {
      rateLimit: rateLimitBody,
      serverError: (res) =>
        apiError(res, { code: 503, message: "The service is currently unavailable.", status: "UNAVAILABLE", reason: "backendError", errorMessage: "Backend Error" }),
      badRequest: (res) =>
        OAUTH_PATHS.has(pathOf(res))
          ? oauthError(res, 400, "invalid_request", "Bad Request")
          : // What users.getProfile answers for an account without Gmail (a Workspace user without the service).
            apiError(res, { code: 400, message: "Precondition check failed.", status: "FAILED_PRECONDITION", reason: "failedPrecondition" }),
      malformed: (res) => res.code(200).header("content-type", "application/json; charset=utf-8").send('{\n  "emailAddress": "user1@sandbox.autoflow.inv'),
    },
    revokeAll: () => auth.revokeAll(),
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      const requested = parseScopes((parsed.scopes ?? [`${SCOPE_PREFIX}gmail.readonly`]).join(" "));
      if (requested.invalid.length > 0) throw new Error(`unknown scopes: ${requested.invalid.join(", ")}`);
      const account = accountFor(parsed.email ?? `user${accounts.size + 1}@sandbox.autoflow.invalid`);
      // As if the user had minted it in their own tool (OAuth Playground, gcloud): another client, online access.
      const token = mintAccess(auth.grant({ account, clientId: otherClientId, scopes: requested.scopes, offline: false }));
      return { accessToken: token, emailAddress: account.email, scopes: requested.scopes, expiresInSeconds: accessTtl };
    },
    routes(server: FastifyInstance) {
      server.get("/o/oauth2/v2/auth", async (request, res) => {
        const q = queryParams(request);
        if (!q.client_id) return errorPage(res, 400, "invalid_request", "Missing required parameter: client_id");
        if (q.client_id !== app.clientId) return errorPage(res, 401, "invalid_client", "The OAuth client was not found.");
        if (!q.redirect_uri) return errorPage(res, 400, "invalid_request", "Missing required parameter: redirect_uri");
        if (!redirectUris.includes(q.redirect_uri)) {
          return errorPage(
            res,
            400,
            "redirect_uri_mismatch",
            `You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. If you're the app developer, register the redirect URI in the Google Cloud Console. Request details: redirect_uri=${q.redirect_uri}`,
          );
        }
        if (!q.response_type) return errorPage(res, 400, "invalid_request", "Required parameter is missing: response_type");
        if (q.response_type !== "code") return errorPage(res, 400, "unsupported_response_type", `Invalid response_type: ${q.response_type}`);
        if (!q.scope) return errorPage(res, 400, "invalid_request", "Missing required parameter: scope");
        const requested = parseScopes(q.scope);
        if (requested.invalid.length > 0) return errorPage(res, 400, "invalid_scope", `Some requested scopes were invalid. {invalid=[${requested.invalid.join(", ")}]}`);
        const accessType = q.access_type ?? "online";
        if (accessType !== "online" && accessType !== "offline") return errorPage(res, 400, "invalid_request", `Invalid access_type: ${accessType}`);
        const prompts = (q.prompt ?? "").split(" ").filter(Boolean);
        if (prompts.some((p) => !["none", "consent", "select_account"].includes(p)) || (prompts.includes("none") && prompts.length > 1)) {
          return errorPage(res, 400, "invalid_request", `Invalid prompt: ${q.prompt ?? ""}`);
        }
        // Google defaults the method to plain when a challenge comes without one. A parameter sent empty counts as
        // sent (an empty challenge is malformed, an empty method unknown), where pkceOf reads it as absent: " " keeps that.
        const pkce = pkceOf(q.code_challenge, q.code_challenge_method, ["plain", "S256"]);
        if (!pkce.ok) return errorPage(res, 400, "invalid_request", CHALLENGE_REFUSALS[pkce.reason]);

        const account = q.login_hint && z.email().safeParse(q.login_hint).success ? accountFor(q.login_hint) : signedIn;
        const target = new URL(q.redirect_uri);
        const finish = (): FastifyReply => {
          if (q.state !== undefined) target.searchParams.set("state", q.state);
          // Google has begun to name itself in authorization responses (RFC 9207); the sandbox names its own origin.
          target.searchParams.set("iss", origin);
          return res.redirect(target.toString(), 302);
        };
        if (q._sandbox_decision === "deny") {
          target.searchParams.set("error", "access_denied");
          return finish();
        }
        const consentNeeded = requested.scopes.some((s) => !account.grantedScopes.has(s)) || (accessType === "offline" && !account.offlineConsented);
        if (prompts.includes("none") && consentNeeded) {
          target.searchParams.set("error", "consent_required");
          return finish();
        }
        const consentShown = prompts.includes("consent") || consentNeeded;
        // Incremental authorization: the new grant also covers what the user granted this app before.
        const scopes = q.include_granted_scopes === "true" ? [...new Set([...account.grantedScopes, ...requested.scopes])] : requested.scopes;
        for (const s of requested.scopes) account.grantedScopes.add(s);
        // A refresh token comes with offline access on the first consent, and again whenever consent is shown.
        const issueRefresh = accessType === "offline" && (consentShown || !account.offlineConsented);
        if (accessType === "offline") account.offlineConsented = true;
        const code = `4/0A${randomChars(70, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}`;
        auth.issueCode(code, { account, scopes, offline: accessType === "offline", issueRefresh }, { redirectUri: q.redirect_uri, pkce: pkce.pkce });
        target.searchParams.set("code", code);
        target.searchParams.set("scope", scopes.join(" "));
        target.searchParams.set("authuser", "0");
        if (consentShown) target.searchParams.set("prompt", "consent");
        return finish();
      });

      server.post("/token", async (request, res) => {
        const p = bodyParams(request);
        if (!authenticateClient(request, p, res)) return res;
        if (!p.grant_type) return oauthError(res, 400, "unsupported_grant_type", "Invalid grant_type: ");
        if (p.grant_type === "refresh_token") {
          if (!p.refresh_token) return oauthError(res, 400, "invalid_request", "Missing required parameter: refresh_token");
          const refresh = auth.verify(p.refresh_token, ["refresh"]);
          if (!refresh.ok) return oauthError(res, 400, "invalid_grant", refresh.reason === "unknown" || refresh.reason === "wrong_kind" ? "Bad Request" : "Token has been expired or revoked.");
          const { grant } = refresh.token;
          if (grant.clientId !== app.clientId) return oauthError(res, 400, "unauthorized_client", "Unauthorized");
          // No refresh_token in the answer: Google keeps the one the client has (it never rotates).
          return json(res, 200, tokenBody(grant, mintAccess(grant), undefined));
        }
        if (p.grant_type !== "authorization_code") return oauthError(res, 400, "unsupported_grant_type", `Invalid grant_type: ${p.grant_type}`);
        if (!p.code) return oauthError(res, 400, "invalid_request", "Missing required parameter: code");
        // Single use (a replay revokes what the code granted, RFC 6749 §10.5), ten minutes, the redirect URI again, PKCE.
        // An empty redirect_uri is a missing one.
        const redeemed = auth.redeemCode(p.code, { redirectUri: p.redirect_uri || undefined, verifier: p.code_verifier });
        if (!redeemed.ok) return oauthError(res, 400, ...CODE_REFUSALS[redeemed.reason]);
        const { account, scopes, offline, issueRefresh } = redeemed.code.data;
        const grant = auth.grantFromCode(redeemed.code, { account, clientId: app.clientId, scopes, offline });
        return json(res, 200, tokenBody(grant, mintAccess(grant), issueRefresh ? mintRefresh(grant) : undefined));
      });

      server.post("/revoke", async (request, res) => {
        const token = bodyParams(request).token ?? queryParams(request).token;
        if (!token) return oauthError(res, 400, "invalid_request", "Missing required parameter: token");
        const revoked = auth.verify(token);
        // Google's failure body is not documented (providers.md §7): invalid_token, as seen in the field.
        if (!revoked.ok) return oauthError(res, 400, "invalid_token", revoked.reason === "unknown" ? "Bad Request" : "Token expired or revoked");
        // Revoking either kind of token ends the whole grant: its refresh token and every access token from it.
        auth.revokeGrant(revoked.token.grant);
        // 200 is documented; the body is not (an empty object here; the connector does not read it).
        return json(res, 200, {});
      });
      // The current revoke host takes POST only; a GET (what the old accounts.google.com endpoint took) is not found.
      server.get("/revoke", async (request, res) => notFoundPage(res, "/revoke"));

      const tokenInfo = async (request: FastifyRequest, res: FastifyReply) => {
        const token = queryParams(request).access_token ?? bodyParams(request).access_token;
        const access = auth.verify(token, ["access"]);
        if (!access.ok) return oauthError(res, 400, "invalid_token", "Invalid Value");
        const { grant, expiresAt = 0 } = access.token;
        const identified = grant.scopes.some((s) => s === EMAIL_SCOPE || s === USERINFO_PROFILE_SCOPE || s === "openid");
        return json(res, 200, {
          azp: grant.clientId,
          aud: grant.clientId,
          ...(identified ? { sub: grant.account.sub } : {}),
          scope: grant.scopes.join(" "),
          // Strings, as the live endpoint sends them.
          exp: String(Math.floor(expiresAt / 1000)),
          expires_in: String(auth.secondsLeft(access.token)),
          ...(grant.scopes.includes(EMAIL_SCOPE) ? { email: grant.account.email, email_verified: "true" } : {}),
          access_type: grant.offline ? "offline" : "online",
        });
      };
      server.get("/tokeninfo", tokenInfo);
      server.post("/tokeninfo", tokenInfo);

      /**
       * The grant behind a Gmail API call whose token holds one of `scopes`, for the mailbox of `userId` (`me` or
       * the token's own address); otherwise Google's 401 or 403 answered, naming `method` in its ErrorInfo.
       */
      const mailboxCaller = (request: FastifyRequest, res: FastifyReply, scopes: ReadonlySet<string>, method: string): Grant | undefined => {
        // The discovery doc allows the token as a bearer header or an access_token query parameter.
        const presented = bearerToken(request) ?? queryParams(request).access_token;
        const access = auth.verify(presented, ["access"]);
        if (!access.ok) {
          const why = access.reason;
          // Google APIs answer with a Bearer challenge (its exact form is uncertain, providers.md §4.4).
          res.header("www-authenticate", `Bearer realm="https://accounts.google.com/"${why === "missing" ? "" : ', error="invalid_token"'}`);
          if (why === "missing") {
            apiError(res, {
              code: 401,
              message:
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
              status: "UNAUTHENTICATED",
              reason: "required",
              errorMessage: "Login Required.",
              location: "Authorization",
              info: "CREDENTIALS_MISSING",
              method,
            });
            return undefined;
          }
          apiError(res, {
            code: 401,
            message:
              "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            status: "UNAUTHENTICATED",
            reason: "authError",
            errorMessage: "Invalid Credentials",
            location: "Authorization",
            ...(why === "expired" ? { info: "ACCESS_TOKEN_EXPIRED" } : {}),
            method,
          });
          return undefined;
        }
        const { grant } = access.token;
        if (!grant.scopes.some((s) => scopes.has(s))) {
          res.header("www-authenticate", `Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="${[...scopes].join(" ")}"`);
          apiError(res, {
            code: 403,
            message: "Request had insufficient authentication scopes.",
            status: "PERMISSION_DENIED",
            reason: "insufficientPermissions",
            errorMessage: "Insufficient Permission",
            info: "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            method,
          });
          return undefined;
        }
        const { userId } = request.params as { userId: string };
        if (userId !== "me" && userId.toLowerCase() !== grant.account.email) {
          apiError(res, { code: 403, message: `Delegation denied for ${grant.account.email}`, status: "PERMISSION_DENIED", reason: "forbidden" });
          return undefined;
        }
        return grant;
      };

      server.get("/gmail/v1/users/:userId/profile", async (request, res) => {
        const grant = mailboxCaller(request, res, PROFILE_SCOPES, PROFILE_METHOD);
        if (!grant) return res;
        const account = grant.account;
        // The totals are the mailbox's own, so a connector can check them against what messages.list answers.
        const { messagesTotal, threadsTotal } = countsOf(mailboxOf(account).messages ?? []);
        return json(res, 200, { emailAddress: account.email, messagesTotal, threadsTotal, historyId: account.historyId });
      });

      /** Scopes that may create labels, and those that may read them (discovery doc gmail-v1.json, users.labels.*). */
      const LABEL_WRITE_SCOPES = new Set(["https://mail.google.com/", `${SCOPE_PREFIX}gmail.labels`, `${SCOPE_PREFIX}gmail.modify`]);
      const LABEL_READ_SCOPES = new Set([...LABEL_WRITE_SCOPES, `${SCOPE_PREFIX}gmail.metadata`, `${SCOPE_PREFIX}gmail.readonly`]);
      const LABEL_METHOD = (verb: "Create" | "List" | "Get"): string => `caribou.api.proto.MailboxService.${verb}Label${verb === "List" ? "s" : ""}`;
      /** Every mailbox's system labels, as labels.list answers them (the hidden ones say so). */
      const SYSTEM_LABELS: readonly { id: string; hidden?: true }[] = [
        { id: "CHAT", hidden: true },
        { id: "SENT" },
        { id: "INBOX" },
        { id: "IMPORTANT", hidden: true },
        { id: "TRASH", hidden: true },
        { id: "DRAFT" },
        { id: "SPAM", hidden: true },
        { id: "CATEGORY_FORUMS" },
        { id: "CATEGORY_UPDATES" },
        { id: "CATEGORY_PERSONAL" },
        { id: "CATEGORY_PROMOTIONS" },
        { id: "CATEGORY_SOCIAL" },
        { id: "STARRED" },
        { id: "UNREAD" },
      ];
      const systemLabel = (l: { id: string; hidden?: true }) => ({
        id: l.id,
        name: l.id,
        ...(l.hidden ? { messageListVisibility: "hide", labelListVisibility: "labelHide" } : {}),
        type: "system",
      });
      const userLabel = (l: UserLabel) => ({
        id: l.id,
        name: l.name,
        ...(l.messageListVisibility ? { messageListVisibility: l.messageListVisibility } : {}),
        ...(l.labelListVisibility ? { labelListVisibility: l.labelListVisibility } : {}),
        type: "user",
        ...(l.color ? { color: l.color } : {}),
      });
      const mailboxOf = (account: Account): Mailbox => {
        let mailbox = mailboxes.get(account.email);
        if (!mailbox) {
          mailbox = { labels: [], nextLabel: 1 };
          mailboxes.set(account.email, mailbox);
        }
        // A mailbox has a few messages in its inbox from the start (also one a state saved before messages were kept).
        mailbox.messages ??= seedInbox(account);
        return mailbox;
      };
      const invalidArgument = (res: FastifyReply, message: string, reason = "invalidArgument"): FastifyReply => apiError(res, { code: 400, message, status: "INVALID_ARGUMENT", reason });
      /** The values Gmail's Label enums take. */
      const VISIBILITY = { labelListVisibility: ["labelShow", "labelShowIfUnread", "labelHide"], messageListVisibility: ["show", "hide"] } as const;
      const FIELD_NAME = { labelListVisibility: "label_list_visibility", messageListVisibility: "message_list_visibility" } as const;

      server.post("/gmail/v1/users/:userId/labels", async (request, res) => {
        const grant = mailboxCaller(request, res, LABEL_WRITE_SCOPES, LABEL_METHOD("Create"));
        if (!grant) return res;
        const body = (request.body && typeof request.body === "object" && !Array.isArray(request.body) ? request.body : {}) as Record<string, unknown>;
        const name = typeof body.name === "string" ? body.name.trim() : "";
        if (name === "") return invalidArgument(res, "Invalid label name");
        const label: UserLabel = { id: "", name };
        for (const field of ["labelListVisibility", "messageListVisibility"] as const) {
          const value = body[field];
          if (value === undefined || value === null) continue;
          if (typeof value !== "string" || !(VISIBILITY[field] as readonly string[]).includes(value)) {
            return invalidArgument(res, `Invalid value at 'label.${FIELD_NAME[field]}' (type.googleapis.com/caribou.api.proto.Label.${field[0]?.toUpperCase()}${field.slice(1)}), ${JSON.stringify(value)}`, "invalid");
          }
          label[field] = value;
        }
        const color = body.color as { textColor?: unknown; backgroundColor?: unknown } | undefined;
        if (color !== undefined && color !== null) {
          if (typeof color !== "object" || typeof color.textColor !== "string" || typeof color.backgroundColor !== "string") return invalidArgument(res, "Invalid label color");
          label.color = { textColor: color.textColor, backgroundColor: color.backgroundColor };
        }
        // System label names are reserved; a user label's name is unique whatever its case.
        if (SYSTEM_LABELS.some((l) => l.id === name.toUpperCase())) return invalidArgument(res, "Invalid label name");
        const mailbox = mailboxOf(grant.account);
        if (mailbox.labels.some((l) => l.name.toLowerCase() === name.toLowerCase())) {
          return apiError(res, { code: 409, message: "Label name exists or conflicts", status: "ABORTED", reason: "aborted" });
        }
        label.id = `Label_${mailbox.nextLabel++}`;
        mailbox.labels.push(label);
        return json(res, 200, userLabel(label));
      });

      server.get("/gmail/v1/users/:userId/labels", async (request, res) => {
        const grant = mailboxCaller(request, res, LABEL_READ_SCOPES, LABEL_METHOD("List"));
        if (!grant) return res;
        return json(res, 200, { labels: [...SYSTEM_LABELS.map(systemLabel), ...mailboxOf(grant.account).labels.map(userLabel)] });
      });

      server.get("/gmail/v1/users/:userId/labels/:id", async (request, res) => {
        const grant = mailboxCaller(request, res, LABEL_READ_SCOPES, LABEL_METHOD("Get"));
        if (!grant) return res;
        const { id } = request.params as { id: string };
        const account = grant.account;
        const system = SYSTEM_LABELS.find((l) => l.id === id);
        const user = mailboxOf(account).labels.find((l) => l.id === id);
        if (!system && !user) return apiError(res, { code: 404, message: "Requested entity was not found.", status: "NOT_FOUND", reason: "notFound" });
        const counts = countsOf((mailboxOf(account).messages ?? []).filter((m) => m.labelIds.includes(id)));
        return json(res, 200, { ...(system ? systemLabel(system) : userLabel(user as UserLabel)), ...counts });
      });

      /** Scopes that may send (users.messages.send in the discovery doc), and those that may list and read messages. */
      const SEND_SCOPES = new Set(["https://mail.google.com/", ...["gmail.modify", "gmail.compose", "gmail.send"].map((s) => SCOPE_PREFIX + s)]);
      const READ_SCOPES = new Set(["https://mail.google.com/", ...["gmail.modify", "gmail.readonly", "gmail.metadata"].map((s) => SCOPE_PREFIX + s)]);
      const METADATA_SCOPE = `${SCOPE_PREFIX}gmail.metadata`;
      /** A grant whose only reading scope is gmail.metadata: no `q`, no bodies. */
      const metadataOnly = (grant: Grant): boolean => grant.scopes.filter((s) => READ_SCOPES.has(s)).every((s) => s === METADATA_SCOPE);
      const MESSAGE_METHOD = (verb: "Send" | "List" | "Get"): string => `caribou.api.proto.MailboxService.${verb}Message${verb === "List" ? "s" : ""}`;
      const forbidden = (res: FastifyReply, message: string): FastifyReply => apiError(res, { code: 403, message, status: "PERMISSION_DENIED", reason: "forbidden" });

      /** Stores `bytes` as a message the account sent: SENT, and INBOX and UNREAD too when it is addressed to the account itself. */
      const send = (res: FastifyReply, grant: Grant, bytes: Buffer, threadId: unknown): FastifyReply => {
        if (bytes.length === 0) return invalidArgument(res, "'raw' RFC822 payload message string or uploading message via /upload/* URL required");
        const refusal = sendRefusal(parseMessage(bytes));
        if (refusal) return invalidArgument(res, refusal);
        const account = grant.account;
        const mailbox = mailboxOf(account);
        const messages = mailbox.messages as StoredMessage[];
        // Strictly after the mailbox's last message, so that two sent in one millisecond still list newest first.
        const now = Math.max(Date.now(), ...messages.map((m) => m.internalDate + 1));
        const stored = asSent(bytes, account.email, new Date(now));
        const headers = parseMessage(stored).headers;
        const toSelf = ["To", "Cc", "Bcc"].some((name) => (addressesOf(headerOf(headers, name) ?? "") ?? []).includes(account.email));
        const id = messageId(now);
        // A threadId the mailbox has continues that thread; Gmail's further rule (the Subject must match) is not checked.
        const thread = typeof threadId === "string" && messages.some((m) => m.threadId === threadId) ? threadId : id;
        account.historyId = String(BigInt(account.historyId) + 1n);
        const message: StoredMessage = { id, threadId: thread, labelIds: toSelf ? ["UNREAD", "SENT", "INBOX"] : ["SENT"], internalDate: now, historyId: account.historyId, raw: stored.toString("base64url") };
        messages.push(message);
        return json(res, 200, { id: message.id, threadId: message.threadId, labelIds: message.labelIds });
      };

      server.post("/gmail/v1/users/:userId/messages/send", async (request, res) => {
        const grant = mailboxCaller(request, res, SEND_SCOPES, MESSAGE_METHOD("Send"));
        if (!grant) return res;
        const body = (request.body && typeof request.body === "object" && !Array.isArray(request.body) ? request.body : {}) as Record<string, unknown>;
        const raw = typeof body.raw === "string" ? body.raw : "";
        // `raw` is base64url; Gmail also takes the standard alphabet and padding.
        return send(res, grant, Buffer.from(raw.replace(/\+/g, "-").replace(/\//g, "_"), "base64url"), body.threadId);
      });

      // googleapis sends a message given as `media` here: `uploadType=multipart` (JSON metadata, then the message, as
      // multipart/related) or `uploadType=media` (the message alone, message/rfc822). A `requestBody: {raw}` goes to the route above.
      const asBuffer = (_request: FastifyRequest, body: Buffer, done: (error: Error | null, body?: unknown) => void): void => done(null, body);
      server.addContentTypeParser(["multipart/related", "message/rfc822"], { parseAs: "buffer" }, asBuffer);
      server.post("/upload/gmail/v1/users/:userId/messages/send", async (request, res) => {
        const grant = mailboxCaller(request, res, SEND_SCOPES, MESSAGE_METHOD("Send"));
        if (!grant) return res;
        const uploadType = queryParams(request).uploadType;
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const type = (request.headers["content-type"] ?? "").toLowerCase();
        if (uploadType === "media") return send(res, grant, body, undefined);
        if (uploadType !== "multipart") return invalidArgument(res, `Invalid upload type: ${uploadType ?? "(none)"}; this sandbox takes multipart and media`, "badRequest");
        if (!type.startsWith("multipart/related")) return invalidArgument(res, "Invalid multipart request with 0 mime parts.", "badRequest");
        const parts = relatedParts(request.headers["content-type"] as string, body);
        const [metadata, message] = parts;
        if (!metadata || !message) return invalidArgument(res, `Invalid multipart request with ${parts.length} mime parts.`, "badRequest");
        let threadId: unknown;
        try {
          const text = metadata.body.toString("utf8").trim();
          threadId = text === "" ? undefined : (JSON.parse(text) as { threadId?: unknown }).threadId;
        } catch {
          return invalidArgument(res, "Invalid JSON payload received. Unexpected token.", "invalid");
        }
        return send(res, grant, message.body, threadId);
      });

      /** The repeated query parameters (labelIds, metadataHeaders): `a=1&a=2` arrives as an array. */
      const repeated = (request: FastifyRequest, name: string): string[] => {
        const value = (request.query as Record<string, unknown>)[name];
        return (Array.isArray(value) ? value : value === undefined ? [] : [value]).map(String).filter(Boolean);
      };
      /** A list page: 100 by default, at most 500 (Gmail caps a larger maxResults). */
      const DEFAULT_PAGE = 100;
      const MAX_PAGE = 500;
      server.get("/gmail/v1/users/:userId/messages", async (request, res) => {
        const grant = mailboxCaller(request, res, READ_SCOPES, MESSAGE_METHOD("List"));
        if (!grant) return res;
        const q = queryParams(request);
        if (q.q !== undefined && q.q !== "" && metadataOnly(grant)) return forbidden(res, "Metadata scope does not support 'q' parameter");
        let size = DEFAULT_PAGE;
        if (q.maxResults !== undefined) {
          const n = Number(q.maxResults);
          if (!Number.isInteger(n) || n < 0) return invalidArgument(res, `Invalid value at 'max_results' (TYPE_UINT32), "${q.maxResults}"`, "invalid");
          size = Math.min(n === 0 ? DEFAULT_PAGE : n, MAX_PAGE);
        }
        // The sandbox's page tokens are the offset of the next page, in digits (as Gmail's look).
        let start = 0;
        if (q.pageToken !== undefined && q.pageToken !== "") {
          if (!/^\d{1,20}$/.test(q.pageToken)) return invalidArgument(res, "Invalid pageToken", "invalid");
          start = Number(q.pageToken);
        }
        const mailbox = mailboxOf(grant.account);
        const labelName = (id: string): string | undefined => mailbox.labels.find((l) => l.id === id)?.name;
        const labelIds = repeated(request, "labelIds");
        const includeSpamTrash = q.includeSpamTrash === "true";
        const matching = [...(mailbox.messages as StoredMessage[])]
          .filter((m) => includeSpamTrash || !m.labelIds.some((l) => l === "SPAM" || l === "TRASH"))
          .filter((m) => labelIds.every((l) => m.labelIds.includes(l)))
          .filter((m) => q.q === undefined || matchesQuery(m, q.q, labelName))
          // Newest first, as Gmail lists.
          .sort((a, b) => b.internalDate - a.internalDate || b.id.localeCompare(a.id));
        const page = matching.slice(start, start + size);
        const next = start + size < matching.length ? String(start + size) : undefined;
        // No `messages` key at all when nothing matches, as Gmail answers.
        return json(res, 200, { ...(page.length > 0 ? { messages: page.map((m) => ({ id: m.id, threadId: m.threadId })) } : {}), ...(next ? { nextPageToken: next } : {}), resultSizeEstimate: matching.length });
      });

      server.get("/gmail/v1/users/:userId/messages/:id", async (request, res) => {
        const grant = mailboxCaller(request, res, READ_SCOPES, MESSAGE_METHOD("Get"));
        if (!grant) return res;
        const { id } = request.params as { id: string };
        const format = (queryParams(request).format ?? "full").toLowerCase();
        if (!(MESSAGE_FORMATS as readonly string[]).includes(format)) {
          return invalidArgument(res, `Invalid value at 'format' (type.googleapis.com/caribou.api.proto.MessageFormat), "${queryParams(request).format ?? ""}"`, "invalid");
        }
        if ((format === "full" || format === "raw") && metadataOnly(grant)) return forbidden(res, `Metadata scope doesn't allow format ${format.toUpperCase()}`);
        if (!/^[0-9a-f]{1,24}$/i.test(id)) return invalidArgument(res, "Invalid id value");
        const message = (mailboxOf(grant.account).messages as StoredMessage[]).find((m) => m.id === id);
        if (!message) return apiError(res, { code: 404, message: "Requested entity was not found.", status: "NOT_FOUND", reason: "notFound" });
        return json(res, 200, messageResource(message, format as MessageFormat, repeated(request, "metadataHeaders")));
      });

      server.setNotFoundHandler(async (request, res) => notFoundPage(res, request.url.split("?")[0] ?? "/"));
    },
  };
  return definition;
}

/** A Google OAuth web client: `<project number>-<32 characters>.apps.googleusercontent.com` and a `GOCSPX-` secret. */
export async function startGmailSandbox(options: GmailSandboxOptions = {}): Promise<StartedSandbox> {
  const app = {
    clientId: options.clientId ?? `${randomChars(12, "0123456789")}-${randomChars(32, "abcdefghijklmnopqrstuvwxyz0123456789")}.apps.googleusercontent.com`,
    clientSecret: options.clientSecret ?? `GOCSPX-${randomChars(28, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}`,
  };
  return startSandbox("gmail", options, app, (registered, restored, redirectUris) => gmailSandbox({ ...options, redirectUris }, registered, restored));
}
