/**
 * A local Slack that answers Slack's real paths at the root of its own
 * origin, so an official client (@slack/web-api with `slackApiUrl`, or
 * @slack/oauth) pointed at it works unchanged.
 *
 *   GET  /oauth/v2/authorize    consent, auto-approved: 302 to redirect_uri?code&state
 *                               (Slack-style HTML error page, no redirect, for a bad client_id or redirect_uri;
 *                               `_sandbox_decision=deny` redirects with error=access_denied, as a user's Cancel does)
 *   POST /api/oauth.v2.access   code exchange (PKCE S256 checked) and refresh with rotation when on
 *   POST /api/auth.test         who-am-I, with the x-oauth-scopes header
 *   POST /api/auth.revoke       {"ok":true,"revoked":true}
 *   any other /api/<method>     200 {"ok":false,"error":"unknown_method"}
 *
 * Errors come as Slack sends them: HTTP 200, `{"ok":false,"error":code}` and
 * an `x-slack-failure` header; throttling as 429 with Retry-After in seconds.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { escapeHtml } from "../shared/html.js";
import {
  basicCredentials,
  bearerToken,
  bodyParams,
  verifierMatches,
  queryParams,
  randomChars,
  restoreState,
  startSandbox,
  type SandboxApp,
  type SandboxDefinition,
  type SandboxOptions,
  type StartedSandbox,
} from "../shared/sandbox.js";

/** Slack codes are good for ten minutes, once. */
const CODE_TTL_MS = 10 * 60 * 1000;
/** With rotation on, Slack access tokens always last 12 hours. */
const ROTATING_TOKEN_TTL_SECONDS = 43_200;
/**
 * Slack revokes a used refresh token "after a short grace period" it does not
 * publish; ten seconds is our guess. Tests that must see reuse refused set 0.
 */
const REFRESH_GRACE_SECONDS = 10;

export type SlackSandboxOptions = SandboxOptions & {
  /** Token rotation (an app setting at Slack): expiring xoxe.xoxb- tokens and xoxe-1- refresh tokens. */
  tokenRotation?: boolean;
  /** PKCE enabled for the app (Slack makes it a public client). Default true. */
  pkce?: boolean;
  /** How long a used refresh token keeps working (Slack's grace period). */
  refreshTokenGraceSeconds?: number;
};

type Team = { id: string; name: string; domain: string };
type IssuedToken = {
  kind: "bot" | "user" | "refresh";
  teamId: string;
  scopes: string[];
  userId: string;
  botId?: string;
  expiresAt?: number;
  revoked: boolean;
  /** The refresh token that minted this access token (rotation). */
  fromRefresh?: string;
  /** For a used refresh token: when its grace period ends. */
  graceEndsAt?: number;
};
type IssuedCode = {
  clientId: string;
  redirectUri?: string;
  scopes: string[];
  userScopes: string[];
  challenge?: string;
  expiresAt: number;
  used: boolean;
  tokens: string[];
};

const credentialRequest = z.strictObject({
  type: z.enum(["bot", "user"]).optional(),
  scopes: z.array(z.string().regex(/^[a-z:.]+$/)).max(50).optional(),
});

export function slackSandbox(options: SlackSandboxOptions, app: SandboxApp, restored?: unknown) {
  const slackId = (prefix: string): string => `${prefix}${randomChars(10, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")}`;
  const state = restoreState(restored, () => ({
    team: { id: slackId("T"), name: "AutoFlow Sandbox", domain: "autoflow-sandbox" } as Team,
    installerId: slackId("U"),
    botUserId: slackId("U"),
    botId: slackId("B"),
    appId: slackId("A"),
    tokens: new Map<string, IssuedToken>(),
    codes: new Map<string, IssuedCode>(),
  }));
  const { team, installerId, botUserId, botId, appId, tokens, codes } = state;
  const rotation = options.tokenRotation ?? false;
  const pkceEnabled = options.pkce ?? true;
  const accessTtl = options.accessTokenTtlSeconds ?? ROTATING_TOKEN_TTL_SECONDS;
  const graceMs = (options.refreshTokenGraceSeconds ?? REFRESH_GRACE_SECONDS) * 1000;
  const redirectUris = options.redirectUris ?? [];
  const digits = (n: number): string => randomChars(n, "0123456789");

  const mintAccess = (kind: "bot" | "user", scopes: string[], fromRefresh?: string): { token: string; record: IssuedToken } => {
    const body = kind === "bot" ? `xoxb-${digits(11)}-${digits(13)}-${randomChars(24)}` : `xoxp-${digits(11)}-${digits(11)}-${digits(13)}-${randomChars(32, "0123456789abcdef")}`;
    const token = rotation ? `xoxe.${kind === "bot" ? "xoxb" : "xoxp"}-1-${randomChars(120)}` : body;
    const record: IssuedToken = {
      kind,
      teamId: team.id,
      scopes,
      userId: kind === "bot" ? botUserId : installerId,
      ...(kind === "bot" ? { botId } : {}),
      ...(rotation ? { expiresAt: Date.now() + accessTtl * 1000 } : {}),
      revoked: false,
      ...(fromRefresh ? { fromRefresh } : {}),
    };
    tokens.set(token, record);
    return { token, record };
  };
  const mintRefresh = (scopes: string[], userId = botUserId): string => {
    const token = `xoxe-1-${randomChars(140)}`;
    tokens.set(token, { kind: "refresh", teamId: team.id, scopes, userId, revoked: false });
    return token;
  };

  const reply = (res: FastifyReply, body: Record<string, unknown>, status = 200): FastifyReply => {
    res.code(status).header("content-type", "application/json; charset=utf-8").header("x-slack-req-id", randomChars(32, "0123456789abcdef"));
    if (body.ok === false && typeof body.error === "string") res.header("x-slack-failure", body.error);
    return res.send(JSON.stringify(body));
  };
  const fail = (res: FastifyReply, error: string, extra: Record<string, unknown> = {}): FastifyReply => reply(res, { ok: false, error, ...extra });

  /** Slack's consent error page: shown in the browser, never redirected. */
  const errorPage = (res: FastifyReply, detail: string): FastifyReply =>
    res
      .code(400)
      .type("text/html; charset=utf-8")
      .send(
        `<!DOCTYPE html><html><head><title>Slack</title></head><body><h1>Something went wrong when authorizing this app.</h1>` +
          `<p>Try going back and authorizing again. If problems persist, contact support for help.</p><p>Error details: ${escapeHtml(detail)}</p></body></html>`,
      );

  /** The token a Web API call carries: bearer header, or the `token` argument. */
  const callerToken = (request: FastifyRequest): string | undefined => bearerToken(request) ?? bodyParams(request).token ?? queryParams(request).token;

  /** Resolves a call's token to a live record, or answers the error Slack would. */
  const authenticate = (request: FastifyRequest, res: FastifyReply): { token: string; record: IssuedToken } | undefined => {
    const token = callerToken(request);
    if (!token) {
      fail(res, "not_authed");
      return undefined;
    }
    const record = tokens.get(token);
    if (!record || record.kind === "refresh") {
      fail(res, "invalid_auth");
      return undefined;
    }
    if (record.revoked) {
      fail(res, "token_revoked");
      return undefined;
    }
    if (record.expiresAt !== undefined && Date.now() >= record.expiresAt) {
      fail(res, "token_expired");
      return undefined;
    }
    return { token, record };
  };

  /** Client authentication for oauth.v2.access: Basic, or client_id/client_secret in the body. */
  const clientOf = (request: FastifyRequest, params: Record<string, string>): { error?: string } => {
    const basic = basicCredentials(request);
    // Slack treats a client_id in the body as body authentication and then ignores Basic.
    const id = params.client_id ?? basic?.id;
    const secret = params.client_id !== undefined ? params.client_secret : (basic?.secret ?? params.client_secret);
    if (id !== app.clientId) return { error: "invalid_client_id" };
    if (secret !== undefined && secret !== app.clientSecret) return { error: "bad_client_secret" };
    return {};
  };

  /** The bot part of an oauth.v2.access answer (top level). */
  const botGrant = (scopes: string[], fromRefresh?: string): Record<string, unknown> => ({
    access_token: mintAccess("bot", scopes, fromRefresh).token,
    token_type: "bot",
    scope: scopes.join(","),
    bot_user_id: botUserId,
    ...(rotation ? { refresh_token: mintRefresh(scopes), expires_in: accessTtl } : {}),
  });
  /** The installing user's part (under authed_user), when user scopes were asked for. */
  const userGrant = (scopes: string[], fromRefresh?: string): Record<string, unknown> => ({
    id: installerId,
    scope: scopes.join(","),
    access_token: mintAccess("user", scopes, fromRefresh).token,
    token_type: "user",
    ...(rotation ? { refresh_token: mintRefresh(scopes, installerId), expires_in: accessTtl } : {}),
  });
  const workspace = { team: { id: team.id, name: team.name }, enterprise: null, is_enterprise_install: false };

  const definition: SandboxDefinition = {
    provider: "slack",
    state,
    browserPaths: ["/oauth/v2/authorize"],
    endpoints: (origin) => ({
      authorizeUrl: `${origin}/oauth/v2/authorize`,
      tokenUrl: `${origin}/api/oauth.v2.access`,
      revokeUrl: `${origin}/api/auth.revoke`,
      apiUrl: `${origin}/api`,
    }),
    faults: {
      rateLimit: (res, fault) =>
        res
          .code(429)
          .header("retry-after", String(Math.ceil(fault.retryAfterSeconds ?? 30)))
          .header("x-slack-failure", "ratelimited")
          .header("x-slack-req-id", randomChars(32, "0123456789abcdef"))
          .header("content-type", "application/json; charset=utf-8")
          .send('{"ok":false,"error":"ratelimited"}'),
      serverError: (res) =>
        res.code(500).type("text/html; charset=utf-8").send("<html><body><h1>500 Internal Server Error</h1><p>Slack is having trouble.</p></body></html>"),
      // Slack refuses bad arguments with HTTP 200, like every other error.
      badRequest: (res) => fail(res, "invalid_arguments", { response_metadata: { messages: ["[ERROR] missing required field: channel"] } }),
      malformed: (res) => res.code(200).header("content-type", "application/json; charset=utf-8").send('{"ok":true,"url":"https://autoflow-sandbox.sla'),
    },
    revokeAll: () => {
      for (const record of tokens.values()) record.revoked = true;
    },
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      const kind = parsed.type ?? "bot";
      const scopes = parsed.scopes ?? ["chat:write", "channels:read", "users:read"];
      const { token } = mintAccess(kind, scopes);
      return { accessToken: token, teamId: team.id, teamName: team.name, scopes };
    },
    routes(server: FastifyInstance) {
      server.get("/oauth/v2/authorize", async (request, res) => {
        const q = queryParams(request);
        if (!q.client_id) return errorPage(res, "Please specify client_id");
        if (q.client_id !== app.clientId) return errorPage(res, "Invalid client_id parameter");
        if (q.redirect_uri !== undefined && !redirectUris.includes(q.redirect_uri)) {
          return errorPage(res, `redirect_uri did not match any configured URIs. Passed URI: ${q.redirect_uri}`);
        }
        const redirectUri = q.redirect_uri ?? redirectUris[0];
        if (!redirectUri) return errorPage(res, "redirect_uri did not match any configured URIs. Passed URI: (none)");
        if (q.code_challenge !== undefined) {
          if (!pkceEnabled) return errorPage(res, "PKCE is not enabled for this app (pkce_not_allowed)");
          if (q.code_challenge_method !== "S256") return errorPage(res, "code_challenge_method must be S256");
        }
        const scopes = (q.scope ?? "").split(",").filter(Boolean);
        const userScopes = (q.user_scope ?? "").split(",").filter(Boolean);
        if (scopes.length === 0 && userScopes.length === 0) return errorPage(res, "Invalid permissions requested (no scopes)");
        const target = new URL(redirectUri);
        if (q._sandbox_decision === "deny") {
          target.searchParams.set("error", "access_denied");
        } else {
          const code = `${digits(11)}.${digits(13)}.${randomChars(64, "0123456789abcdef")}`;
          codes.set(code, {
            clientId: q.client_id,
            ...(q.redirect_uri ? { redirectUri: q.redirect_uri } : {}),
            scopes,
            userScopes,
            ...(q.code_challenge ? { challenge: q.code_challenge } : {}),
            expiresAt: Date.now() + CODE_TTL_MS,
            used: false,
            tokens: [],
          });
          target.searchParams.set("code", code);
        }
        target.searchParams.set("state", q.state ?? "");
        return res.redirect(target.toString(), 302);
      });

      server.post("/api/oauth.v2.access", async (request, res) => {
        const params = bodyParams(request);
        const client = clientOf(request, params);
        if (client.error) return fail(res, client.error);
        const grantType = params.grant_type ?? "authorization_code";
        if (grantType === "refresh_token") {
          if (!params.refresh_token) return fail(res, "invalid_refresh_token");
          // Refreshing still needs the client secret, except for PKCE (public) apps.
          if (!pkceEnabled && params.client_secret === undefined && basicCredentials(request) === undefined) return fail(res, "bad_client_secret");
          const record = tokens.get(params.refresh_token);
          if (!record || record.kind !== "refresh" || record.revoked) return fail(res, "invalid_refresh_token");
          if (record.graceEndsAt !== undefined && Date.now() >= record.graceEndsAt) {
            record.revoked = true;
            return fail(res, "invalid_refresh_token");
          }
          // Rotation: a new pair; the used refresh token dies after the grace period.
          record.graceEndsAt ??= Date.now() + graceMs;
          if (graceMs === 0) record.revoked = true;
          // A refresh answers the one token at the top level, whichever kind it is.
          const { id: _installer, ...grant } =
            record.userId === installerId ? userGrant(record.scopes, params.refresh_token) : { id: undefined, ...botGrant(record.scopes, params.refresh_token) };
          return reply(res, { ok: true, app_id: appId, ...grant, ...workspace });
        }
        if (grantType !== "authorization_code") return fail(res, "invalid_grant_type");
        const code = params.code ? codes.get(params.code) : undefined;
        if (!code || code.clientId !== app.clientId) return fail(res, "invalid_code");
        if (code.used || Date.now() >= code.expiresAt) {
          // A replayed code also kills what it minted (RFC 6749 §4.1.2).
          for (const t of code.tokens) {
            const issued = tokens.get(t);
            if (issued) issued.revoked = true;
          }
          return fail(res, "invalid_code");
        }
        if (code.redirectUri !== undefined && params.redirect_uri !== code.redirectUri) return fail(res, "bad_redirect_uri");
        if (code.challenge !== undefined) {
          if (!verifierMatches(params.code_verifier, code.challenge)) return fail(res, "invalid_code_verifier");
        } else if (params.code_verifier !== undefined) {
          return fail(res, "invalid_code_verifier");
        } else if (params.client_secret === undefined && basicCredentials(request) === undefined) {
          // Without PKCE, only the client secret proves who is exchanging the code.
          return fail(res, "bad_client_secret");
        }
        code.used = true;
        const bot = code.scopes.length > 0 ? botGrant(code.scopes) : {};
        const user = code.userScopes.length > 0 ? userGrant(code.userScopes) : { id: installerId };
        for (const part of [bot, user]) {
          for (const key of ["access_token", "refresh_token"]) if (typeof part[key] === "string") code.tokens.push(part[key] as string);
        }
        return reply(res, { ok: true, app_id: appId, ...bot, authed_user: user, ...workspace });
      });

      const authTest = async (request: FastifyRequest, res: FastifyReply) => {
        const caller = authenticate(request, res);
        if (!caller) return res;
        res.header("x-oauth-scopes", caller.record.scopes.join(","));
        return reply(res, {
          ok: true,
          url: `https://${team.domain}.slack.com/`,
          team: team.name,
          user: caller.record.kind === "bot" ? "autoflow_bot" : "sandbox_user",
          team_id: team.id,
          user_id: caller.record.userId,
          ...(caller.record.botId ? { bot_id: caller.record.botId } : {}),
          is_enterprise_install: false,
          ...(caller.record.expiresAt !== undefined ? { expires_in: Math.max(0, Math.floor((caller.record.expiresAt - Date.now()) / 1000)) } : {}),
        });
      };
      server.post("/api/auth.test", authTest);
      server.get("/api/auth.test", authTest);

      server.post("/api/auth.revoke", async (request, res) => {
        const token = callerToken(request);
        if (!token) return fail(res, "not_authed");
        const record = tokens.get(token);
        if (!record) return fail(res, "invalid_auth");
        if (record.revoked) return fail(res, "token_revoked");
        const dryRun = ["1", "true"].includes(bodyParams(request).test ?? queryParams(request).test ?? "");
        if (!dryRun) record.revoked = true;
        return reply(res, { ok: true, revoked: !dryRun });
      });

      server.all("/api/:method", async (request, res) => {
        const { method } = request.params as { method: string };
        return fail(res, "unknown_method", { req_method: method });
      });
    },
  };
  return definition;
}

export async function startSlackSandbox(options: SlackSandboxOptions = {}): Promise<StartedSandbox> {
  const app = {
    clientId: options.clientId ?? `${randomChars(11, "0123456789")}.${randomChars(13, "0123456789")}`,
    clientSecret: options.clientSecret ?? randomChars(32, "0123456789abcdef"),
  };
  return startSandbox("slack", options, app, (registered, restored, redirectUris) => slackSandbox({ ...options, redirectUris }, registered, restored));
}
