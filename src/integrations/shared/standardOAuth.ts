/**
 * RFC 6749 token endpoint calls for providers that follow the standard
 * (Google, Microsoft, HubSpot, Linear, Sentry, Atlassian): the request is
 * built here and sent through the provider HTTP client (timeouts, retries,
 * classification); the answer is validated by oauth4webapi's
 * `processAuthorizationCodeResponse` / `processRefreshTokenResponse`.
 *
 * Providers that bend the standard (Slack's HTTP 200 `ok:false`, Stripe's
 * platform-key authentication) keep their own small parsers instead.
 */
import {
  processAuthorizationCodeResponse,
  processRefreshTokenResponse,
  type AuthorizationServer,
  type Client,
  type TokenEndpointResponse,
} from "oauth4webapi";
import type { ConnectorContext, TokenGrant } from "./connector.js";
import { ErrorCodes, IntegrationError } from "./errors.js";
import type { ErrorVerdict, ProviderResponse } from "./http.js";
import type { Tier1ErrorType } from "./contract.js";

/** How the client authenticates at the token endpoint (RFC 6749 §2.3.1). */
export type ClientAuthMethod = "client_secret_basic" | "client_secret_post" | "none";

/** RFC 6749 §5.2 error codes (and RFC 8628's slow_down) by type. */
const OAUTH_ERROR_TYPES: Readonly<Record<string, Tier1ErrorType>> = {
  invalid_grant: "auth",
  invalid_client: "auth",
  unauthorized_client: "auth",
  access_denied: "auth",
  invalid_token: "auth",
  invalid_request: "schema",
  invalid_scope: "schema",
  unsupported_grant_type: "schema",
  unsupported_response_type: "schema",
  temporarily_unavailable: "upstream",
  server_error: "upstream",
  slow_down: "rate-limit",
};

/**
 * Classifies an RFC 6749 error body (`{"error": "...", "error_description"}`),
 * or answers undefined when the body is not one. Status first for throttles
 * and 5xx, which no OAuth code overrides.
 */
export function classifyOAuthError(response: ProviderResponse, operation: string, displayName: string): ErrorVerdict | undefined {
  const body = response.json as { error?: unknown; error_description?: unknown } | undefined;
  if (typeof body?.error !== "string") return undefined;
  const code = body.error;
  const type: Tier1ErrorType =
    response.status === 429 ? "rate-limit" : response.status >= 500 ? "upstream" : (OAUTH_ERROR_TYPES[code] ?? (response.status === 401 ? "auth" : "schema"));
  const message =
    type === "auth"
      ? `${displayName} refused the grant at ${operation} (${code}); the user must connect again`
      : `${displayName} refused ${operation}: ${code}`;
  return { type, code, message };
}

export type StandardTokenRequest = {
  operation: string;
  clientAuth: ClientAuthMethod;
  params: Record<string, string | undefined>;
  /** Safe to repeat after a lost answer (a refresh under a grace period); code exchanges are not. */
  idempotent: boolean;
  /** RFC 6749's form body (default), or JSON where a provider documents it (Atlassian). */
  encoding?: "form" | "json";
};

/** Provider-specific adjustments to a standard token call. */
export type StandardTokenOptions = {
  encoding?: "form" | "json";
  extraParams?: Record<string, string | undefined>;
  /**
   * Rewrites a successful answer before oauth4webapi validates it, for a
   * provider that bends one field (Linear's legacy array `scope`).
   */
  normalize?: (json: Record<string, unknown>) => Record<string, unknown>;
};

/** Sends a token request and answers the raw (classified, successful) response. */
export async function tokenEndpointCall(ctx: ConnectorContext, request: StandardTokenRequest): Promise<ProviderResponse> {
  const { settings } = ctx;
  const headers: Record<string, string> = {};
  const form: Record<string, string | undefined> = { ...request.params };
  if (request.clientAuth === "client_secret_basic") {
    // RFC 6749 §2.3.1: form-urlencode id and secret before joining them.
    const encode = (v: string) => encodeURIComponent(v).replace(/%20/g, "+");
    headers.authorization = `Basic ${Buffer.from(`${encode(settings.clientId)}:${encode(settings.clientSecret)}`).toString("base64")}`;
  } else {
    form.client_id = settings.clientId;
    if (request.clientAuth === "client_secret_post") form.client_secret = settings.clientSecret;
  }
  const fields = Object.fromEntries(Object.entries(form).filter(([, value]) => value !== undefined));
  return ctx.http.send({
    operation: request.operation,
    method: "POST",
    url: settings.endpoints.tokenUrl,
    headers,
    ...(request.encoding === "json" ? { json: fields } : { form }),
    idempotent: request.idempotent,
    secrets: [settings.clientSecret, request.params.code, request.params.code_verifier, request.params.refresh_token],
  });
}

/** Exchanges an authorization code (RFC 6749 §4.1.3, with the RFC 7636 verifier). */
export async function exchangeCodeStandard(
  ctx: ConnectorContext,
  input: { code: string; codeVerifier?: string; clientAuth: ClientAuthMethod } & StandardTokenOptions,
): Promise<StandardGrant> {
  const response = await tokenEndpointCall(ctx, {
    operation: "token (authorization_code)",
    clientAuth: input.clientAuth,
    idempotent: false,
    ...(input.encoding ? { encoding: input.encoding } : {}),
    params: { grant_type: "authorization_code", code: input.code, redirect_uri: ctx.settings.redirectUri, code_verifier: input.codeVerifier, ...input.extraParams },
  });
  return processStandardTokenResponse(ctx, response, "authorization_code", input.normalize);
}

/** Refreshes an access token (RFC 6749 §6). */
export async function refreshStandard(
  ctx: ConnectorContext,
  input: { refreshToken: string; clientAuth: ClientAuthMethod; idempotent: boolean } & StandardTokenOptions,
): Promise<StandardGrant> {
  const response = await tokenEndpointCall(ctx, {
    operation: "token (refresh_token)",
    clientAuth: input.clientAuth,
    idempotent: input.idempotent,
    ...(input.encoding ? { encoding: input.encoding } : {}),
    params: { grant_type: "refresh_token", refresh_token: input.refreshToken, ...input.extraParams },
  });
  return processStandardTokenResponse(ctx, response, "refresh_token", input.normalize);
}

/** A standard grant: what the lifecycle stores, plus the validated body for provider-specific fields. */
export type StandardGrant = TokenGrant & { body: TokenEndpointResponse };

/**
 * Validates a successful token response with oauth4webapi. An `id_token` is
 * not used by any connector (identity comes from the who-am-I call) and is
 * dropped before validation rather than half-checked.
 */
export async function processStandardTokenResponse(
  ctx: ConnectorContext,
  response: ProviderResponse,
  grantType: "authorization_code" | "refresh_token",
  normalize?: StandardTokenOptions["normalize"],
): Promise<StandardGrant> {
  const answer = { ...(response.json as Record<string, unknown>) };
  const json = normalize ? normalize(answer) : answer;
  delete json.id_token;
  const as: AuthorizationServer = { issuer: new URL(ctx.settings.endpoints.tokenUrl).origin, token_endpoint: ctx.settings.endpoints.tokenUrl };
  const client: Client = { client_id: ctx.settings.clientId };
  const replay = new Response(JSON.stringify(json), { status: 200, headers: { "content-type": "application/json" } });
  let body: TokenEndpointResponse;
  try {
    body =
      grantType === "authorization_code" ? await processAuthorizationCodeResponse(as, client, replay) : await processRefreshTokenResponse(as, client, replay);
  } catch (error) {
    throw new IntegrationError({
      type: "upstream",
      code: ErrorCodes.UNPARSABLE_RESPONSE,
      provider: ctx.http.provider,
      message: `the token endpoint's answer is not a valid OAuth token response: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
  return {
    accessToken: body.access_token,
    ...(body.refresh_token ? { refreshToken: body.refresh_token } : {}),
    ...(typeof body.expires_in === "number" && body.expires_in > 0 ? { expiresInSeconds: Math.floor(body.expires_in) } : {}),
    // RFC 6749 §5.1: scope may be left out when it equals what was asked for.
    scopes: typeof body.scope === "string" ? body.scope.split(" ").filter(Boolean) : [...ctx.settings.scopes],
    metadata: {},
    body,
  };
}
