/**
 * Stripe: Connect OAuth (Standard accounts, no PKCE) or a secret / restricted
 * API key. Classified by HTTP status first, as stripe-node does; the
 * `Stripe-Should-Retry` header overrides the retry decision when present.
 * Every POST carries an `Idempotency-Key`, so a retry after a lost answer
 * cannot act twice.
 *
 * Wire facts: providers.md §3 (Stripe); docs.stripe.com connect/oauth-reference,
 * error-low-level, rate-limits; stripe/stripe-node RequestSender.ts, Error.ts.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { ConnectorContext, ConnectorDefinition, Identity, ParsedApiKey, TokenGrant } from "../shared/connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ErrorType } from "../shared/contract.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../shared/errors.js";
import type { ErrorVerdict, HttpMethod, ProviderRequest, ProviderResponse } from "../shared/http.js";
import { stripeRateLimit } from "./rateLimit.js";
import { stripeRetryPolicy } from "./retryPolicy.js";

export type StripeAuthMethod = "oauth2" | "api_key";
export const stripeMetadataSchema = z.object({ scopes: z.array(z.string()), accountId: z.string(), accountName: z.string().optional(), accountEmail: z.string().optional(), livemode: z.boolean() });
export type StripeMetadata = z.infer<typeof stripeMetadataSchema>;
export type StripeConnectionPublic = Tier1ConnectionPublic<StripeAuthMethod, StripeMetadata>;
export type StripeHealth = Tier1ConnectionHealth<StripeAuthMethod, Partial<StripeMetadata>>;

/** The API version we read responses in (stripe-node's pin when this was written). */
export const STRIPE_API_VERSION = "2026-07-29.dahlia";

/** HTTP status to error type, as stripe-node maps statuses to error classes. */
const STATUS_TYPES: Readonly<Record<number, Tier1ErrorType>> = {
  400: "schema", // invalid_request_error, idempotency_error
  401: "auth", // missing, invalid, expired or deauthorized key
  402: "schema", // card_error: a business decline, permanent
  403: "auth", // restricted key without the permission
  404: "schema", // resource_missing
  409: "upstream", // concurrent use of one idempotency key: transient
  424: "upstream", // an external dependency failed
  429: "rate-limit", // rate_limit, lock_timeout
};

/** Connect OAuth errors (`{"error": "<code>", "error_description"}`) by code. */
const OAUTH_ERROR_TYPES: Readonly<Record<string, Tier1ErrorType>> = {
  invalid_grant: "auth",
  invalid_client: "auth",
  access_denied: "auth",
  invalid_request: "schema",
  invalid_scope: "schema",
  unsupported_grant_type: "schema",
  unsupported_response_type: "schema",
  invalid_redirect_uri: "schema",
};

type StripeErrorBody = { error?: unknown; error_description?: unknown };
type StripeApiError = { type?: unknown; code?: unknown; message?: unknown };

export function classifyStripe(response: ProviderResponse, request: Pick<ProviderRequest, "operation">): ErrorVerdict | null {
  const header = response.headers.get("stripe-should-retry");
  const providerRetryHint = header === "true" ? true : header === "false" ? false : undefined;
  const hint = providerRetryHint === undefined ? {} : { providerRetryHint };
  if (response.status >= 200 && response.status < 300) return null;
  const body = (response.json ?? {}) as StripeErrorBody;
  // Connect OAuth answers RFC 6749 errors: `error` is a string (stripe-node tells them apart the same way).
  if (typeof body.error === "string") {
    const type = OAUTH_ERROR_TYPES[body.error] ?? (response.status >= 500 ? "upstream" : response.status === 401 ? "auth" : "schema");
    return { type, code: body.error, message: oauthMessage(type, body.error, request.operation), ...hint };
  }
  const error = (typeof body.error === "object" && body.error !== null ? body.error : {}) as StripeApiError;
  const code = typeof error.code === "string" ? error.code : typeof error.type === "string" ? error.type : `http_${response.status}`;
  // A 400 with code rate_limit is a throttle from before API version 2015-09-18 (and a few endpoints still).
  const type: Tier1ErrorType = code === "rate_limit" ? "rate-limit" : (STATUS_TYPES[response.status] ?? (response.status >= 500 ? "upstream" : "schema"));
  return { type, code, message: apiMessage(type, response.status, code, error.message, request.operation), ...hint };
}

function oauthMessage(type: Tier1ErrorType, code: string, operation: string): string {
  if (type === "auth") return `Stripe refused the authorization (${operation}: ${code}); connect the account again`;
  return `Stripe refused ${operation}: ${code}`;
}

function apiMessage(type: Tier1ErrorType, status: number, code: string, providerMessage: unknown, operation: string): string {
  switch (type) {
    case "auth":
      // Stripe's own text quotes part of the key; ours never does.
      return status === 403
        ? `Stripe refused ${operation}: the key lacks the permission for it (HTTP 403)`
        : `Stripe refused the API key or token for ${operation} (HTTP 401); it is invalid, expired or revoked`;
    case "rate-limit":
      return code === "lock_timeout" ? `Stripe object is locked by another request (${operation})` : "Stripe API rate limit exceeded";
    case "upstream":
      return `Stripe failed to answer ${operation} (HTTP ${status}${code.startsWith("http_") ? "" : ` ${code}`})`;
    default:
      return `Stripe refused ${operation} (HTTP ${status} ${code})${typeof providerMessage === "string" ? `: ${providerMessage.slice(0, 300)}` : ""}`;
  }
}

/** A Stripe request. Every POST gets a fresh Idempotency-Key, as stripe-node adds one. */
export function stripeRequest(input: {
  operation: string;
  method: HttpMethod;
  url: string;
  token: string;
  form?: Record<string, string | undefined>;
  secrets?: readonly (string | undefined)[];
}): ProviderRequest {
  return {
    operation: input.operation,
    method: input.method,
    url: input.url,
    headers: {
      authorization: `Bearer ${input.token}`,
      "stripe-version": STRIPE_API_VERSION,
      ...(input.method === "POST" ? { "idempotency-key": randomUUID() } : {}),
    },
    ...(input.form ? { form: input.form } : {}),
    secrets: [input.token, ...(input.secrets ?? [])],
  };
}

const tokenResponseSchema = z.looseObject({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1).optional(),
  token_type: z.string().optional(),
  stripe_user_id: z.string().regex(/^acct_/),
  stripe_publishable_key: z.string().optional(),
  livemode: z.boolean(),
  scope: z.string().optional(),
});

export function parseStripeTokenResponse(json: unknown): TokenGrant {
  const parsed = tokenResponseSchema.safeParse(json);
  if (!parsed.success) {
    throw new IntegrationError({ type: "upstream", provider: "stripe", code: ErrorCodes.UNPARSABLE_RESPONSE, message: "Stripe's /oauth/token answer is not the documented shape" });
  }
  const body = parsed.data;
  return {
    accessToken: body.access_token,
    ...(body.refresh_token ? { refreshToken: body.refresh_token } : {}),
    // Connect access tokens do not expire.
    scopes: body.scope ? [body.scope] : [],
    metadata: { accountId: body.stripe_user_id, livemode: body.livemode },
  };
}

const accountSchema = z.looseObject({
  id: z.string().regex(/^acct_/),
  email: z.string().nullable().optional(),
  business_profile: z.looseObject({ name: z.string().nullable().optional() }).nullable().optional(),
  settings: z
    .looseObject({ dashboard: z.looseObject({ display_name: z.string().nullable().optional() }).nullable().optional() })
    .nullable()
    .optional(),
  country: z.string().nullable().optional(),
  type: z.string().nullable().optional(),
});

const KEY_PATTERN = /^(sk|rk)_(test|live)_[A-Za-z0-9]{10,255}$/;

export function parseStripeKey(input: { apiKey?: string; accessToken?: string }): ParsedApiKey<StripeAuthMethod> {
  if (input.apiKey !== undefined && input.accessToken !== undefined) {
    throw invalidInput("apiKey", "give a Stripe key as apiKey, not both apiKey and accessToken", "stripe");
  }
  const field = input.apiKey !== undefined ? "apiKey" : "accessToken";
  const key = input.apiKey ?? input.accessToken;
  if (key === undefined) throw invalidInput("apiKey", "apiKey is required: a Stripe secret key (sk_...) or restricted key (rk_...)", "stripe");
  if (/^pk_(test|live)_/.test(key)) {
    throw invalidInput(field, "that is a publishable key (pk_), which cannot call Stripe's API from a server; give a secret (sk_) or restricted (rk_) key", "stripe");
  }
  const match = KEY_PATTERN.exec(key);
  if (!match) throw invalidInput(field, "not a Stripe API key: expected sk_test_..., sk_live_..., rk_test_... or rk_live_...", "stripe");
  return {
    token: key,
    authMethod: "api_key",
    metadata: { livemode: match[2] === "live" },
    scopes: [match[1] === "sk" ? "read_write" : "restricted"],
  };
}

async function tokenCall(ctx: ConnectorContext, operation: string, form: Record<string, string | undefined>): Promise<TokenGrant> {
  const response = await ctx.http.send(
    // The platform's secret key authenticates the call (as stripe-node sends it).
    stripeRequest({ operation, method: "POST", url: ctx.settings.endpoints.tokenUrl, token: ctx.settings.clientSecret, form, secrets: [form.code, form.refresh_token] }),
  );
  return parseStripeTokenResponse(response.json);
}

export const stripeConnector: ConnectorDefinition<StripeAuthMethod, typeof stripeMetadataSchema> = {
  metadataSchema: stripeMetadataSchema,
  id: "stripe",
  displayName: "Stripe",
  authMethods: ["oauth2", "api_key"],
  oauthAuthMethod: "oauth2",
  liveEndpoints: {
    authorizeUrl: "https://connect.stripe.com/oauth/authorize",
    tokenUrl: "https://connect.stripe.com/oauth/token",
    revokeUrl: "https://connect.stripe.com/oauth/deauthorize",
    apiUrl: "https://api.stripe.com",
  },
  issuers: ["https://connect.stripe.com"],
  pkce: false,
  // One value, not a list: read_write (read_only is for extensions).
  defaultScopes: ["read_write"],
  requiredMetadata: ["accountId", "livemode"],
  accountLabel: ["accountName", "accountEmail", "accountId"],
  retryPolicy: stripeRetryPolicy,
  rateLimit: stripeRateLimit,
  classify: classifyStripe,

  authorizationParams(settings) {
    return { response_type: "code", client_id: settings.clientId, scope: settings.scopes[0] ?? "read_write", redirect_uri: settings.redirectUri };
  },

  exchangeCode(ctx, input) {
    return tokenCall(ctx, "POST /oauth/token", { grant_type: "authorization_code", code: input.code });
  },

  refreshToken(ctx, refreshToken) {
    return tokenCall(ctx, "POST /oauth/token (refresh)", { grant_type: "refresh_token", refresh_token: refreshToken });
  },

  async revoke(ctx, input) {
    // API keys are the account owner's: only they can roll one, in the dashboard.
    if (input.connection.authMethod !== "oauth2") return "not_supported";
    const accountId = input.connection.metadata.accountId;
    if (typeof accountId !== "string") return "not_supported";
    await ctx.http.send(
      stripeRequest({
        operation: "POST /oauth/deauthorize",
        method: "POST",
        url: ctx.settings.endpoints.revokeUrl ?? "https://connect.stripe.com/oauth/deauthorize",
        token: ctx.settings.clientSecret,
        form: { client_id: ctx.settings.clientId, stripe_user_id: accountId },
      }),
    );
    return "revoked";
  },

  parseApiKey: parseStripeKey,

  // Stripe saves a POST's answer under its Idempotency-Key and replays it for a repeat: a keyed POST may be retried.
  idempotencyKeyHeader: "idempotency-key",
  // A platform's secret key may act as any of its connected accounts: a proxied call stays with this one.
  proxyForbiddenHeaders: ["stripe-account", "stripe-context"],

  whoAmI: {
    // The API version the parser is written for (a proxied call sends the caller's, or the account's default).
    request: () => ({ operation: "GET /v1/account", method: "GET", path: "/v1/account", headers: { "stripe-version": STRIPE_API_VERSION } }),
    process(response, credential): Identity {
      const parsed = accountSchema.safeParse(response.json);
      if (!parsed.success) {
        throw new IntegrationError({ type: "upstream", provider: "stripe", code: ErrorCodes.UNPARSABLE_RESPONSE, message: "Stripe's /v1/account answer is not the documented shape" });
      }
      const account = parsed.data;
      const accountName = account.settings?.dashboard?.display_name ?? account.business_profile?.name ?? undefined;
      const accountEmail = account.email ?? undefined;
      // The Account object has no livemode: it comes from the token response or the key's prefix.
      const livemode = typeof credential.metadata.livemode === "boolean" ? credential.metadata.livemode : /_live_/.test(credential.accessToken);
      return {
        metadata: { accountId: account.id, ...(accountName ? { accountName } : {}), ...(accountEmail ? { accountEmail } : {}), livemode },
        summary: {
          accountId: account.id,
          accountName,
          accountEmail,
          livemode: String(livemode),
          country: account.country ?? undefined,
          requestId: response.headers.get("request-id") ?? undefined,
        },
      };
    },
  },
};
