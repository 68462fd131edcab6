/**
 * Slack: OAuth v2 with PKCE (S256 only), or a bot / user token pasted by the
 * user. Slack answers almost everything with HTTP 200 and `{"ok": false,
 * "error": code}`, so classification reads the body's code, not the status.
 *
 * Wire facts: providers.md §1 (Slack); docs.slack.dev oauth.v2.access,
 * using-pkce, using-token-rotation, rate-limits; slackapi/node-slack-sdk.
 */
import { z } from "zod";
import type { ConnectorContext, ConnectorDefinition, Identity, ParsedApiKey, TokenGrant } from "../shared/connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ErrorType } from "../shared/contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../shared/errors.js";
import type { ErrorVerdict, ProviderRequest, ProviderResponse } from "../shared/http.js";
import { slackRateLimit } from "./rateLimit.js";
import { slackRetryPolicy } from "./retryPolicy.js";

export type SlackAuthMethod = "oauth2" | "bot_token" | "user_token";
export const slackMetadataSchema = z.object({ scopes: z.array(z.string()), teamId: z.string(), teamName: z.string().optional() });
export type SlackMetadata = z.infer<typeof slackMetadataSchema>;
export type SlackConnectionPublic = Tier1ConnectionPublic<SlackAuthMethod, SlackMetadata>;
export type SlackHealth = Tier1ConnectionHealth<SlackAuthMethod, Partial<SlackMetadata>>;

/**
 * Slack error codes by type. Codes not listed are method-specific refusals
 * (`channel_not_found`, `msg_too_long`, ...) and count as schema: permanent.
 */
const ERROR_TYPES: Readonly<Record<string, Tier1ErrorType>> = {
  // The credential does not work.
  not_authed: "auth",
  invalid_auth: "auth",
  account_inactive: "auth",
  token_revoked: "auth",
  token_expired: "auth",
  not_bearer_token: "auth",
  // The credential works but may not do this.
  missing_scope: "auth",
  no_permission: "auth",
  not_allowed_token_type: "auth",
  team_access_not_granted: "auth",
  access_denied: "auth",
  accesslimited: "auth",
  ekm_access_denied: "auth",
  org_login_required: "auth",
  two_factor_setup_required: "auth",
  enterprise_is_restricted: "auth",
  // oauth.v2.access: the grant or the app's credentials are refused.
  invalid_code: "auth",
  invalid_refresh_token: "auth",
  invalid_grant: "auth",
  bad_client_secret: "auth",
  invalid_client_id: "auth",
  bad_redirect_uri: "auth",
  invalid_grant_type: "auth",
  invalid_code_verifier: "auth",
  pkce_not_allowed: "auth",
  // Throttled (chat.postMessage spells it with an underscore).
  ratelimited: "rate-limit",
  rate_limited: "rate-limit",
  // Slack-side trouble; fatal_error may have partly succeeded.
  internal_error: "upstream",
  fatal_error: "upstream",
  service_unavailable: "upstream",
  team_added_to_org: "upstream",
  request_timeout: "upstream",
};

const MESSAGES: Readonly<Record<Tier1ErrorType, string>> = {
  auth: "Slack refused the credential",
  "rate-limit": "Slack API rate limit exceeded",
  schema: "Slack refused the request",
  network: "Slack could not be reached",
  upstream: "Slack failed to answer",
};

/** Status first where Slack uses one (429, 5xx), then the body's `ok`/`error`. */
export function classifySlack(response: ProviderResponse, request: Pick<ProviderRequest, "operation">): ErrorVerdict | null {
  const body = response.json as { ok?: unknown; error?: unknown; needed?: unknown; provided?: unknown } | undefined;
  const code = typeof body?.error === "string" ? body.error : undefined;
  if (response.status === 429) {
    return { type: "rate-limit", code: code ?? "ratelimited", message: `${MESSAGES["rate-limit"]} (${request.operation})` };
  }
  if (response.status >= 500) {
    return { type: "upstream", code: code ?? `http_${response.status}`, message: `${MESSAGES.upstream}: ${request.operation} answered HTTP ${response.status}` };
  }
  if (body === undefined || typeof body !== "object") {
    return { type: "upstream", code: ErrorCodes.UNPARSABLE_RESPONSE, message: `Slack answered ${request.operation} with a body that is not JSON (HTTP ${response.status})` };
  }
  if (response.status === 200 && body.ok === true) return null;
  if (code === undefined) {
    return { type: "upstream", code: `http_${response.status}`, message: `Slack answered ${request.operation} with HTTP ${response.status} and no error code` };
  }
  const type = ERROR_TYPES[code] ?? "schema";
  let message = `${MESSAGES[type]}: ${request.operation} answered ${code}`;
  if (code === "missing_scope" && typeof body.needed === "string") {
    message += ` (needs ${body.needed}${typeof body.provided === "string" ? `, granted ${body.provided}` : ""})`;
  }
  return { type, code, message };
}

/** oauth.v2.access, code exchange or refresh (bot install, optionally with user scopes). */
const tokenResponseSchema = z.looseObject({
  ok: z.literal(true),
  access_token: z.string().min(1).optional(),
  token_type: z.string().optional(),
  scope: z.string().optional(),
  refresh_token: z.string().min(1).optional(),
  expires_in: z.number().int().positive().optional(),
  team: z.looseObject({ id: z.string().min(1), name: z.string().optional() }).nullable().optional(),
  enterprise: z.looseObject({ id: z.string().min(1), name: z.string().optional() }).nullable().optional(),
  authed_user: z
    .looseObject({
      id: z.string().optional(),
      scope: z.string().optional(),
      access_token: z.string().min(1).optional(),
      refresh_token: z.string().min(1).optional(),
      expires_in: z.number().int().positive().optional(),
    })
    .optional(),
});

/** Slack separates scopes with commas, in URLs and responses. */
const splitScopes = (value: string | null | undefined): string[] =>
  (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/** Reduces an oauth.v2.access answer to a grant. A user-scopes-only install carries its token under authed_user. */
export function parseSlackTokenResponse(json: unknown): TokenGrant {
  const parsed = tokenResponseSchema.safeParse(json);
  if (!parsed.success) {
    throw new IntegrationError({ type: "upstream", provider: "slack", code: ErrorCodes.UNPARSABLE_RESPONSE, message: "Slack's oauth.v2.access answer is not the documented shape" });
  }
  const body = parsed.data;
  const bot = body.access_token !== undefined;
  const accessToken = body.access_token ?? body.authed_user?.access_token;
  if (!accessToken) {
    throw new IntegrationError({ type: "upstream", provider: "slack", code: ErrorCodes.UNPARSABLE_RESPONSE, message: "Slack's oauth.v2.access answer holds no access token" });
  }
  const workspace = body.team ?? body.enterprise ?? undefined;
  const refreshToken = bot ? body.refresh_token : body.authed_user?.refresh_token;
  const expiresIn = bot ? body.expires_in : body.authed_user?.expires_in;
  return {
    accessToken,
    ...(refreshToken ? { refreshToken } : {}),
    ...(expiresIn ? { expiresInSeconds: expiresIn } : {}),
    scopes: splitScopes(bot ? body.scope : body.authed_user?.scope),
    metadata: workspace ? { teamId: workspace.id, ...(workspace.name ? { teamName: workspace.name } : {}) } : {},
  };
}

const authTestSchema = z.looseObject({
  ok: z.literal(true),
  team_id: z.string().min(1),
  team: z.string().optional(),
  user: z.string().optional(),
  user_id: z.string().optional(),
  url: z.string().optional(),
  bot_id: z.string().optional(),
  enterprise_id: z.string().optional(),
});

/** Tokens a workspace hands out that can call the Web API for it. */
const TOKEN_KINDS: readonly { pattern: RegExp; authMethod: SlackAuthMethod }[] = [
  { pattern: /^(xoxe\.)?xoxb-[A-Za-z0-9-]+$/, authMethod: "bot_token" },
  { pattern: /^(xoxe\.)?xoxp-[A-Za-z0-9-]+$/, authMethod: "user_token" },
];

export function parseSlackToken(input: { apiKey?: string; accessToken?: string }): ParsedApiKey<SlackAuthMethod> {
  if (input.apiKey !== undefined && input.accessToken !== undefined) {
    throw invalidInput("accessToken", "give a Slack token as accessToken (or apiKey), not both", "slack");
  }
  const field = input.accessToken !== undefined ? "accessToken" : "apiKey";
  const token = input.accessToken ?? input.apiKey;
  if (token === undefined) throw invalidInput("accessToken", "accessToken is required: a Slack bot token (xoxb-...) or user token (xoxp-...)", "slack");
  if (token.startsWith("xapp-")) {
    throw invalidInput(field, "an app-level token (xapp-) cannot act on a workspace; give a bot token (xoxb-...) or user token (xoxp-...)", "slack");
  }
  if (/^xoxe-/.test(token)) throw invalidInput(field, "that is a refresh token (xoxe-); give the access token (xoxb-... or xoxp-...)", "slack");
  const kind = TOKEN_KINDS.find((k) => k.pattern.test(token));
  if (!kind) throw invalidInput(field, "not a Slack token: expected a bot token (xoxb-...) or user token (xoxp-...)", "slack");
  return { token, authMethod: kind.authMethod };
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function tokenCall(ctx: ConnectorContext, operation: string, form: Record<string, string | undefined>, idempotent: boolean): Promise<TokenGrant> {
  const { settings } = ctx;
  const response = await ctx.http.send({
    operation,
    method: "POST",
    url: settings.endpoints.tokenUrl,
    // Client credentials in the body, as @slack/oauth sends them. A PKCE
    // (public) app may have no secret; then the verifier proves the client.
    form: { ...form, client_id: settings.clientId, client_secret: settings.clientSecret || undefined },
    idempotent,
    secrets: [settings.clientSecret, form.code, form.code_verifier, form.refresh_token],
  });
  return parseSlackTokenResponse(response.json);
}

export const slackConnector: ConnectorDefinition<SlackAuthMethod, typeof slackMetadataSchema> = {
  metadataSchema: slackMetadataSchema,
  id: "slack",
  displayName: "Slack",
  authMethods: ["oauth2", "bot_token", "user_token"],
  oauthAuthMethod: "oauth2",
  liveEndpoints: {
    authorizeUrl: "https://slack.com/oauth/v2/authorize",
    tokenUrl: "https://slack.com/api/oauth.v2.access",
    revokeUrl: "https://slack.com/api/auth.revoke",
    apiUrl: "https://slack.com/api",
  },
  issuers: ["https://slack.com"],
  pkce: true,
  defaultScopes: ["chat:write", "channels:read", "users:read"],
  requiredMetadata: ["teamId"],
  accountLabel: ["teamName", "teamId"],
  retryPolicy: slackRetryPolicy,
  rateLimit: slackRateLimit,
  // Slack limits each Web API method per workspace on its own tier: a throttled chat.postMessage leaves auth.test free.
  paceScope: (call) => call.path?.split("?", 1)[0]?.replace(/^\/+/, ""),
  classify: classifySlack,

  authorizationParams(settings) {
    return { client_id: settings.clientId, scope: settings.scopes.join(","), redirect_uri: settings.redirectUri };
  },

  exchangeCode(ctx, input) {
    // A code is single use: a lost answer cannot be retried safely.
    return tokenCall(
      ctx,
      "oauth.v2.access",
      { grant_type: "authorization_code", code: input.code, redirect_uri: ctx.settings.redirectUri, code_verifier: input.codeVerifier },
      false,
    );
  },

  refreshToken(ctx, refreshToken) {
    // Slack revokes a used refresh token only "after a short grace period",
    // so repeating a refresh whose answer was lost is safe.
    return tokenCall(ctx, "oauth.v2.access (refresh)", { grant_type: "refresh_token", refresh_token: refreshToken }, true);
  },

  async revoke(ctx, input) {
    const revokeUrl = ctx.settings.endpoints.revokeUrl ?? `${ctx.settings.endpoints.apiUrl}/auth.revoke`;
    // With rotation on, auth.revoke revokes one token: the refresh token first, so no new access token can be minted.
    for (const token of [input.refreshToken, input.accessToken]) {
      if (!token) continue;
      await ctx.http.send({ operation: "auth.revoke", method: "POST", url: revokeUrl, headers: bearer(token), idempotent: true, secrets: [token] });
    }
    return "revoked";
  },

  parseApiKey: parseSlackToken,

  // Slack answers an expired rotating token with HTTP 200 token_expired, not a 401.
  isTokenRejection: (error) => error.code === "token_expired" || error.code === "invalid_auth",

  whoAmI: {
    // A read, despite the POST.
    request: () => ({ operation: "auth.test", method: "POST", path: "/auth.test", idempotent: true }),
    process(response): Identity {
      const parsed = authTestSchema.safeParse(response.json);
      if (!parsed.success) {
        throw new IntegrationError({ type: "upstream", provider: "slack", code: ErrorCodes.UNPARSABLE_RESPONSE, message: "Slack's auth.test answer is not the documented shape" });
      }
      const body = parsed.data;
      const scopesHeader = response.headers.get("x-oauth-scopes");
      return {
        metadata: { teamId: body.team_id, ...(body.team ? { teamName: body.team } : {}) },
        ...(scopesHeader !== null ? { scopes: splitScopes(scopesHeader) } : {}),
        summary: { teamId: body.team_id, teamName: body.team, user: body.user, userId: body.user_id, url: body.url, botId: body.bot_id },
      };
    },
  },
};
