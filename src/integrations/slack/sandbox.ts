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
 *   POST /api/chat.postMessage  posts `text` and/or `blocks` to a channel the token's user is in (chat:write)
 *   GET|POST /api/conversations.list     the team's channels, cursor-paged (channels:read for public_channel)
 *   GET|POST /api/conversations.history  a channel's messages, newest first (channels:history)
 *   any other /api/<method>     200 {"ok":false,"error":"unknown_method"}
 *
 * Errors come as Slack sends them: HTTP 200, `{"ok":false,"error":code}` and
 * an `x-slack-failure` header; throttling as 429 with Retry-After in seconds.
 * Codes are good for ten minutes (the kit's default), once; a replayed code
 * revokes what its exchange granted.
 */
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
import {
  authorizationServer,
  authorizationState,
  type CodeRefusal,
  type IssuedToken,
  type TokenRefusal,
} from "../../sandbox/authorizationServer.js";

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
/**
 * What one actor of an install was granted: the bot (`botId` set, token_type
 * "bot") or the installing user (token_type "user"), with its scopes. Its
 * access token and, with rotation on, its refresh token share it.
 */
type SlackGrant = { userId: string; botId?: string; scopes: string[] };
type TokenKind = "access" | "refresh";
/** What the consent decided: bot scopes (`scope`) and user scopes (`user_scope`). */
type Consent = { scopes: string[]; userScopes: string[] };
type Caller = IssuedToken<SlackGrant, TokenKind>;

/** How Slack words a refused code at oauth.v2.access. */
const CODE_ERRORS: Readonly<Record<CodeRefusal, string>> = {
  unknown: "invalid_code",
  client_mismatch: "invalid_code",
  reused: "invalid_code",
  expired: "invalid_code",
  redirect_uri_missing: "bad_redirect_uri",
  redirect_uri_mismatch: "bad_redirect_uri",
  verifier_missing: "invalid_code_verifier",
  verifier_mismatch: "invalid_code_verifier",
  verifier_unexpected: "invalid_code_verifier",
  provider_refused: "bad_client_secret",
};
/** How the Web API words a refused token. A refresh token is no token to it at all. */
const TOKEN_ERRORS: Readonly<Record<TokenRefusal, string>> = {
  missing: "not_authed",
  unknown: "invalid_auth",
  wrong_kind: "invalid_auth",
  revoked: "token_revoked",
  expired: "token_expired",
};

/** A workspace channel: who is in it and what was posted there (newest last). */
type Channel = {
  id: string;
  name: string;
  created: number;
  creator: string;
  isGeneral: boolean;
  topic: string;
  purpose: string;
  members: string[];
  messages: PostedMessage[];
};
type PostedMessage = { ts: string; user: string; text: string; botId?: string; blocks?: unknown[] };

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
    authorization: authorizationState<SlackGrant, TokenKind, Consent>(),
    /** The team's channels by id, seeded below once the team's members are known. */
    channels: new Map<string, Channel>(),
  }));
  const { team, installerId, botUserId, botId, appId, channels } = state;
  if (channels.size === 0) {
    // A workspace comes with #general; #random is where the app was invited too; the bot was never added to #sandbox-lab.
    const created = Math.floor(Date.now() / 1000);
    const seed = (name: string, isGeneral: boolean, purpose: string, members: string[]): void => {
      const id = slackId("C");
      channels.set(id, { id, name, created, creator: installerId, isGeneral, topic: "", purpose, members, messages: [] });
    };
    seed("general", true, "This is the one channel that will always include everyone.", [installerId, botUserId]);
    seed("random", false, "A place for non-work-related flimflam.", [installerId, botUserId]);
    seed("sandbox-lab", false, "The app is not a member here (not_in_channel).", [installerId]);
  }
  // Date.now read at each call: tests move the clock with fake timers.
  const auth = authorizationServer(state.authorization, { now: () => Date.now() });
  const rotation = options.tokenRotation ?? false;
  const pkceEnabled = options.pkce ?? true;
  const accessTtl = options.accessTokenTtlSeconds ?? ROTATING_TOKEN_TTL_SECONDS;
  const graceMs = (options.refreshTokenGraceSeconds ?? REFRESH_GRACE_SECONDS) * 1000;
  const redirectUris = options.redirectUris ?? [];
  const digits = (n: number): string => randomChars(n, "0123456789");

  const botGrant = (scopes: string[]): SlackGrant => ({ userId: botUserId, botId, scopes });
  const userGrant = (scopes: string[]): SlackGrant => ({ userId: installerId, scopes });
  /** xoxb- (bot) or xoxp- (user); with rotation, xoxe.xoxb-1- / xoxe.xoxp-1- lasting `accessTtl`. */
  const mintAccess = (grant: SlackGrant): string => {
    const bot = grant.botId !== undefined;
    const value = rotation
      ? `xoxe.${bot ? "xoxb" : "xoxp"}-1-${randomChars(120)}`
      : bot
        ? `xoxb-${digits(11)}-${digits(13)}-${randomChars(24)}`
        : `xoxp-${digits(11)}-${digits(11)}-${digits(13)}-${randomChars(32, "0123456789abcdef")}`;
    auth.mint(value, "access", grant, rotation ? accessTtl * 1000 : undefined);
    return value;
  };
  const mintRefresh = (grant: SlackGrant): string => {
    const value = `xoxe-1-${randomChars(140)}`;
    auth.mint(value, "refresh", grant);
    return value;
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

  /** Resolves a call's token to a live access token, or answers the error Slack would. */
  const authenticate = (request: FastifyRequest, res: FastifyReply): Caller | undefined => {
    const checked = auth.verify(callerToken(request), ["access"]);
    if (checked.ok) return checked.token;
    fail(res, TOKEN_ERRORS[checked.reason]);
    return undefined;
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

  /** A grant's new tokens as oauth.v2.access answers them (the bot's at the top level, the user's under authed_user). */
  const tokensOf = (grant: SlackGrant): Record<string, unknown> => ({
    access_token: mintAccess(grant),
    token_type: grant.botId !== undefined ? "bot" : "user",
    scope: grant.scopes.join(","),
    ...(grant.botId !== undefined ? { bot_user_id: grant.userId } : {}),
    ...(rotation ? { refresh_token: mintRefresh(grant), expires_in: accessTtl } : {}),
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
    revokeAll: () => auth.revokeAll(),
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      const scopes = parsed.scopes ?? ["chat:write", "channels:read", "users:read"];
      const accessToken = mintAccess(auth.grant(parsed.type === "user" ? userGrant(scopes) : botGrant(scopes)));
      return { accessToken, teamId: team.id, teamName: team.name, scopes };
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
          // Bound to the redirect URI only when the request named one (the exchange must then name it again).
          auth.issueCode(code, { scopes, userScopes }, {
            ...(q.redirect_uri ? { redirectUri: q.redirect_uri } : {}),
            pkce: q.code_challenge ? { challenge: q.code_challenge, method: "S256" } : undefined,
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
        const secretSent = params.client_secret !== undefined || basicCredentials(request) !== undefined;
        const grantType = params.grant_type ?? "authorization_code";
        if (grantType === "refresh_token") {
          if (!params.refresh_token) return fail(res, "invalid_refresh_token");
          // Refreshing still needs the client secret, except for PKCE (public) apps.
          if (!pkceEnabled && !secretSent) return fail(res, "bad_client_secret");
          // Rotation: a new pair; the used refresh token keeps working for the grace period.
          const rotated = auth.rotate(params.refresh_token, "refresh", { graceMs });
          if (!rotated.ok) return fail(res, "invalid_refresh_token");
          // A refresh answers the one token at the top level, whichever kind it is.
          return reply(res, { ok: true, app_id: appId, ...tokensOf(rotated.grant), ...workspace });
        }
        if (grantType !== "authorization_code") return fail(res, "invalid_grant_type");
        // Without PKCE, only the client secret proves who is exchanging the code.
        const redeemed = auth.redeemCode(params.code, { redirectUri: params.redirect_uri, verifier: params.code_verifier }, { last: (code) => (!secretSent && !code.pkce ? "bad_client_secret" : undefined) });
        if (!redeemed.ok) return fail(res, CODE_ERRORS[redeemed.reason]);
        const { code } = redeemed;
        const bot = code.data.scopes.length > 0 ? tokensOf(auth.grantFromCode(code, botGrant(code.data.scopes))) : {};
        const user = code.data.userScopes.length > 0 ? tokensOf(auth.grantFromCode(code, userGrant(code.data.userScopes))) : {};
        return reply(res, { ok: true, app_id: appId, ...bot, authed_user: { id: installerId, ...user }, ...workspace });
      });

      const authTest = async (request: FastifyRequest, res: FastifyReply) => {
        const caller = authenticate(request, res);
        if (!caller) return res;
        res.header("x-oauth-scopes", caller.grant.scopes.join(","));
        const expiresIn = auth.secondsLeft(caller);
        return reply(res, {
          ok: true,
          url: `https://${team.domain}.slack.com/`,
          team: team.name,
          user: caller.grant.botId !== undefined ? "autoflow_bot" : "sandbox_user",
          team_id: team.id,
          user_id: caller.grant.userId,
          ...(caller.grant.botId ? { bot_id: caller.grant.botId } : {}),
          is_enterprise_install: false,
          ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}),
        });
      };
      server.post("/api/auth.test", authTest);
      server.get("/api/auth.test", authTest);

      server.post("/api/auth.revoke", async (request, res) => {
        const token = callerToken(request);
        // Any token Slack issued, refresh tokens and expired ones included, may be revoked.
        const checked = auth.verify(token);
        if (!checked.ok && checked.reason !== "expired") return fail(res, TOKEN_ERRORS[checked.reason]);
        const dryRun = ["1", "true"].includes(bodyParams(request).test ?? queryParams(request).test ?? "");
        if (!dryRun) auth.revokeToken(token);
        return reply(res, { ok: true, revoked: !dryRun });
      });

      /** A Web API call's arguments: the query, then the form or JSON body over it (JSON keeps arrays and objects). */
      const argsOf = (request: FastifyRequest): Record<string, unknown> => {
        const body = request.body && typeof request.body === "object" && !Array.isArray(request.body) ? (request.body as Record<string, unknown>) : {};
        return { ...queryParams(request), ...body };
      };
      const stringArg = (args: Record<string, unknown>, name: string): string | undefined => {
        const value = args[name];
        return typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;
      };
      /**
       * The token's granted scopes in `x-oauth-scopes` and the method's in `x-accepted-oauth-scopes`, as Slack
       * answers every call; false (after answering missing_scope) when the grant holds none of `accepted`.
       */
      const scoped = (res: FastifyReply, caller: { grant: SlackGrant }, accepted: string[], needed = accepted[0] ?? ""): boolean => {
        res.header("x-oauth-scopes", caller.grant.scopes.join(",")).header("x-accepted-oauth-scopes", accepted.join(","));
        if (accepted.some((scope) => caller.grant.scopes.includes(scope))) return true;
        fail(res, "missing_scope", { needed, provided: caller.grant.scopes.join(",") });
        return false;
      };
      /** A channel by id, or by name with or without its `#` (chat.postMessage takes both). */
      const channelOf = (value: string | undefined): Channel | undefined => {
        if (!value) return undefined;
        const byId = channels.get(value);
        if (byId) return byId;
        const name = value.replace(/^#/, "").toLowerCase();
        return [...channels.values()].find((c) => c.name === name);
      };
      const channelBody = (c: Channel, caller: SlackGrant) => ({
        id: c.id,
        name: c.name,
        is_channel: true,
        is_group: false,
        is_im: false,
        is_mpim: false,
        is_private: false,
        created: c.created,
        is_archived: false,
        is_general: c.isGeneral,
        unlinked: 0,
        name_normalized: c.name,
        is_shared: false,
        is_org_shared: false,
        is_pending_ext_shared: false,
        pending_shared: [],
        context_team_id: team.id,
        updated: c.created * 1000,
        parent_conversation: null,
        creator: c.creator,
        is_ext_shared: false,
        shared_team_ids: [team.id],
        pending_connected_team_ids: [],
        is_member: c.members.includes(caller.userId),
        topic: { value: c.topic, creator: c.topic ? c.creator : "", last_set: 0 },
        purpose: { value: c.purpose, creator: c.purpose ? c.creator : "", last_set: c.purpose ? c.created : 0 },
        properties: {},
        previous_names: [],
        num_members: c.members.length,
      });
      const messageBody = (m: PostedMessage) => ({
        user: m.user,
        type: "message",
        ts: m.ts,
        ...(m.botId
          ? {
              bot_id: m.botId,
              app_id: appId,
            }
          : {}),
        text: m.text,
        team: team.id,
        ...(m.botId ? { bot_profile: { id: m.botId, deleted: false, name: "AutoFlow", updated: Math.floor(Number(m.ts)), app_id: appId, team_id: team.id } } : {}),
        ...(m.blocks ? { blocks: m.blocks } : {}),
      });
      /** Slack's cursors are base64 of a position ("team:C…", "next_ts:…"); anything else is invalid_cursor. */
      const cursorOf = (args: Record<string, unknown>, prefix: string): { position?: string; invalid: boolean } => {
        const cursor = stringArg(args, "cursor");
        if (!cursor) return { invalid: false };
        const decoded = Buffer.from(cursor, "base64").toString("utf8");
        return decoded.startsWith(prefix) ? { position: decoded.slice(prefix.length), invalid: false } : { invalid: true };
      };
      const cursorFor = (prefix: string, position: string): string => Buffer.from(`${prefix}${position}`).toString("base64");
      /** `limit` as Slack reads it: an integer in 1..max, or `fallback` when left out. */
      const limitOf = (args: Record<string, unknown>, fallback: number, max: number): number | undefined => {
        const raw = stringArg(args, "limit");
        if (raw === undefined || raw === "" || raw === "0") return fallback;
        const n = Number(raw);
        return Number.isInteger(n) && n > 0 && n <= max ? n : undefined;
      };
      /** A ts after every other in the channel: seconds and six digits, as Slack's are. */
      const nextTs = (c: Channel): string => {
        const last = c.messages.at(-1)?.ts;
        let micros = Date.now() * 1000;
        if (last) {
          const [secs, frac] = last.split(".");
          micros = Math.max(micros, Number(secs) * 1_000_000 + Number(frac) + 1);
        }
        return `${Math.floor(micros / 1_000_000)}.${String(micros % 1_000_000).padStart(6, "0")}`;
      };

      /** Slack's cap on a message's text, and on its blocks. */
      const MAX_TEXT = 40_000;
      const MAX_BLOCKS = 50;
      const postMessage = async (request: FastifyRequest, res: FastifyReply) => {
        const caller = authenticate(request, res);
        if (!caller) return res;
        if (!scoped(res, caller, ["chat:write", "chat:write:bot", "chat:write:user"])) return res;
        const args = argsOf(request);
        const channel = channelOf(stringArg(args, "channel"));
        if (!channel) return fail(res, "channel_not_found");
        // Forms carry blocks as a JSON string (what @slack/web-api sends); JSON bodies as an array.
        let blocks: unknown = args.blocks;
        if (typeof blocks === "string") {
          try {
            blocks = blocks.trim() === "" ? undefined : JSON.parse(blocks);
          } catch {
            return fail(res, "invalid_blocks_format");
          }
        }
        if (blocks !== undefined && !Array.isArray(blocks)) return fail(res, "invalid_blocks_format");
        if (Array.isArray(blocks)) {
          const bad = blocks.findIndex((b) => !b || typeof b !== "object" || typeof (b as { type?: unknown }).type !== "string");
          if (bad >= 0) return fail(res, "invalid_blocks", { errors: [`missing required field: type [json-pointer:/blocks/${bad}/type]`], response_metadata: { messages: [`[ERROR] missing required field: type [json-pointer:/blocks/${bad}/type]`] } });
          if (blocks.length > MAX_BLOCKS) return fail(res, "invalid_blocks", { errors: [`must provide an array with no more than ${MAX_BLOCKS} items [json-pointer:/blocks]`] });
        }
        const text = stringArg(args, "text") ?? "";
        const hasBlocks = Array.isArray(blocks) && blocks.length > 0;
        if (text === "" && !hasBlocks && args.attachments === undefined) return fail(res, "no_text");
        if (text.length > MAX_TEXT) return fail(res, "msg_too_long");
        const { userId, botId: bot, scopes } = caller.grant;
        // chat:write.public lets a bot post in a public channel it was never added to.
        if (!channel.members.includes(userId) && !(bot && scopes.includes("chat:write.public"))) return fail(res, "not_in_channel");
        const message: PostedMessage = { ts: nextTs(channel), user: userId, text, ...(bot ? { botId: bot } : {}), ...(hasBlocks ? { blocks: blocks as unknown[] } : {}) };
        channel.messages.push(message);
        return reply(res, { ok: true, channel: channel.id, ts: message.ts, message: messageBody(message) });
      };
      server.post("/api/chat.postMessage", postMessage);

      /** The scope each conversation type needs to be listed. */
      const LIST_SCOPES: Readonly<Record<string, string>> = { public_channel: "channels:read", private_channel: "groups:read", mpim: "mpim:read", im: "im:read" };
      const conversationsList = async (request: FastifyRequest, res: FastifyReply) => {
        const caller = authenticate(request, res);
        if (!caller) return res;
        const args = argsOf(request);
        const types = (stringArg(args, "types") ?? "public_channel").split(",").map((t) => t.trim()).filter(Boolean);
        if (types.some((t) => !(t in LIST_SCOPES))) return fail(res, "invalid_types");
        const needed = [...new Set(types.map((t) => LIST_SCOPES[t] as string))];
        const missing = needed.filter((scope) => !caller.grant.scopes.includes(scope));
        res.header("x-accepted-oauth-scopes", needed.join(","));
        if (missing.length > 0) {
          res.header("x-oauth-scopes", caller.grant.scopes.join(","));
          return fail(res, "missing_scope", { needed: missing.join(","), provided: caller.grant.scopes.join(",") });
        }
        res.header("x-oauth-scopes", caller.grant.scopes.join(","));
        const limit = limitOf(args, 100, 1000);
        if (limit === undefined) return fail(res, "invalid_limit");
        const cursor = cursorOf(args, "team:");
        if (cursor.invalid) return fail(res, "invalid_cursor");
        // The sandbox's channels are all public ones.
        const listed = types.includes("public_channel") ? [...channels.values()] : [];
        const start = cursor.position === undefined ? 0 : listed.findIndex((c) => c.id === cursor.position);
        if (start < 0) return fail(res, "invalid_cursor");
        const page = listed.slice(start, start + limit);
        const next = listed[start + limit];
        return reply(res, { ok: true, channels: page.map((c) => channelBody(c, caller.grant)), response_metadata: { next_cursor: next ? cursorFor("team:", next.id) : "" } });
      };
      server.get("/api/conversations.list", conversationsList);
      server.post("/api/conversations.list", conversationsList);

      const conversationsHistory = async (request: FastifyRequest, res: FastifyReply) => {
        const caller = authenticate(request, res);
        if (!caller) return res;
        if (!scoped(res, caller, ["channels:history"])) return res;
        const args = argsOf(request);
        const channel = channelOf(stringArg(args, "channel"));
        if (!channel || stringArg(args, "channel") !== channel.id) return fail(res, "channel_not_found");
        if (!channel.members.includes(caller.grant.userId)) return fail(res, "not_in_channel");
        const limit = limitOf(args, 100, 999);
        if (limit === undefined) return fail(res, "invalid_limit");
        const cursor = cursorOf(args, "next_ts:");
        if (cursor.invalid) return fail(res, "invalid_cursor");
        // Newest first; a cursor names the first ts of the next page.
        const newestFirst = [...channel.messages].reverse();
        const start = cursor.position === undefined ? 0 : newestFirst.findIndex((m) => m.ts.replace(".", "") === cursor.position);
        if (start < 0) return fail(res, "invalid_cursor");
        const page = newestFirst.slice(start, start + limit);
        const next = newestFirst[start + limit];
        return reply(res, {
          ok: true,
          messages: page.map(messageBody),
          has_more: next !== undefined,
          pin_count: 0,
          channel_actions_ts: null,
          channel_actions_count: 0,
          ...(next ? { response_metadata: { next_cursor: cursorFor("next_ts:", next.ts.replace(".", "")) } } : {}),
        });
      };
      server.get("/api/conversations.history", conversationsHistory);
      server.post("/api/conversations.history", conversationsHistory);

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
