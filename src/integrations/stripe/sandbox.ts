/**
 * A local Stripe: Connect OAuth (connect.stripe.com's paths) and the API
 * (api.stripe.com's paths) at the root of one origin, so stripe-node pointed
 * at it (`host`, `port`, `protocol: "http"`) works unchanged.
 *
 *   GET  /oauth/authorize     consent, auto-approved: 302 to redirect_uri?code=ac_...&scope&state
 *                             (JSON error, no redirect, for a bad request; `_sandbox_decision=deny`
 *                             redirects with error=access_denied, as a user's refusal does)
 *   POST /oauth/token         code exchange (single use, five minutes; a replay revokes the connection) and
 *                             refresh (a new access key, the old one revoked; the refresh token stays),
 *                             authenticated with the platform's secret key
 *   POST /oauth/deauthorize   disconnects a connected account, revoking its keys: {"stripe_user_id": ...}
 *   GET  /v1/account          the account that owns the key
 *   POST /v1/customers        creates a customer (form body, metadata[key]=value); a read_only Connect token gets 403
 *   GET  /v1/customers/{id}   one customer of the key's account (404 resource_missing)
 *   GET  /v1/customers        the account's customers, newest first: limit, starting_after, ending_before, email
 *
 * Every POST honours `Idempotency-Key` (same key and parameters: the first
 * answer again with `Idempotent-Replayed: true`; other parameters: 400
 * idempotency_error). Every answer carries `Request-Id`.
 */
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
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

/** Stripe's authorization codes expire after five minutes. */
const STRIPE_CODE_TTL_MS = 5 * 60 * 1000;
const DEFAULT_VERSION = "2026-07-29.dahlia";

type Account = { id: string; email: string; name: string; created: number };
type Scope = "read_write" | "read_only";
/** What a key may do: the account it acts on, and for Connect the scope granted (an API key is its own grant). */
type Access = { accountId: string; canReadAccount: boolean; scope?: Scope };
/** API keys (`secret` and `restricted` an account's own, `oauth` a Connect access token) and Connect refresh tokens. */
type TokenKind = "secret" | "restricted" | "oauth" | "refresh";
type Key = IssuedToken<Access, TokenKind>;
const API_KEYS: readonly TokenKind[] = ["secret", "restricted", "oauth"];
type Stored = { fingerprint: string; status: number; body: string };
/** A customer of one account (the key's, or the connected account's). */
type Customer = {
  id: string;
  accountId: string;
  created: number;
  email: string | null;
  name: string | null;
  description: string | null;
  phone: string | null;
  metadata: Record<string, string>;
  invoicePrefix: string;
};

const credentialRequest = z.strictObject({
  type: z.enum(["secret", "restricted"]).optional(),
  /** Restricted keys only: whether the key may read the account (rak_accounts_read). */
  canReadAccount: z.boolean().optional(),
});

export function stripeSandbox(options: SandboxOptions, app: SandboxApp, restored?: unknown) {
  const state = restoreState(restored, () => ({
    accounts: new Map<string, Account>(),
    authorization: authorizationState<Access, TokenKind, { accountId: string; scope: Scope }>(),
    /** The accounts connected to the platform: a code's exchange connects one, a replay of it or a deauthorize ends that. */
    connected: new Set<string>(),
    idempotency: new Map<string, Stored>(),
    /** The platform account (the Connect application's own), made once. */
    platformId: "",
    /** Every account's customers by id, oldest first. */
    customers: new Map<string, Customer>(),
  }));
  const { accounts, connected, idempotency, customers } = state;
  // Date.now read at each call, as the rest of the sandbox reads it (a test's fake clock moves codes too).
  const auth = authorizationServer(state.authorization, { codeTtlMs: STRIPE_CODE_TTL_MS, now: () => Date.now() });
  const redirectUris = options.redirectUris ?? [];

  const newAccount = (): Account => {
    const n = accounts.size + 1;
    const id = `acct_1${randomChars(15)}`;
    const account = { id, email: `owner${n}@sandbox.autoflow.invalid`, name: `Sandbox Business ${n}`, created: Math.floor(Date.now() / 1000) };
    accounts.set(id, account);
    return account;
  };
  if (!accounts.has(state.platformId)) state.platformId = newAccount().id;
  if (!auth.find(app.clientSecret)) auth.mint(app.clientSecret, "secret", auth.grant({ accountId: state.platformId, canReadAccount: true }));
  /** An API key of `grant`: `rk_test_...` restricted, `sk_test_...` otherwise (a Connect access token too). */
  const mintKey = (grant: Grant<Access>, kind: "secret" | "restricted" | "oauth", mintedBy?: string): string => {
    const key = `${kind === "restricted" ? "rk" : "sk"}_test_51${randomChars(97)}`;
    auth.mint(key, kind, grant, undefined, mintedBy);
    return key;
  };

  const send = (res: FastifyReply, status: number, body: unknown): FastifyReply =>
    res
      .code(status)
      .header("content-type", "application/json")
      .header("cache-control", "no-cache, no-store")
      .header("request-id", `req_${randomChars(14)}`)
      .header("stripe-version", (res.request.headers["stripe-version"] as string | undefined) ?? DEFAULT_VERSION)
      .send(JSON.stringify(body, null, 2));
  const apiError = (res: FastifyReply, status: number, error: Record<string, unknown>): FastifyReply => {
    if (status === 401) res.header("www-authenticate", 'Basic realm="Stripe"');
    return send(res, status, { error });
  };
  const oauthError = (res: FastifyReply, status: number, error: string, description: string, state?: string): FastifyReply =>
    send(res, status, { error, error_description: description, ...(state !== undefined ? { state } : {}) });

  /** Stripe's way of quoting a key: its prefix, a star a character, the last four. */
  const maskKey = (key: string): string => {
    const prefix = /^[a-z]{2}_(test|live)_/.exec(key)?.[0] ?? "";
    const rest = key.slice(prefix.length);
    return rest.length <= 4 ? `${prefix}${rest}` : `${prefix}${"*".repeat(rest.length - 4)}${rest.slice(-4)}`;
  };

  /** A key from Bearer, Basic (key as the user name) or, for Connect OAuth, client_secret. */
  const presentedKey = (request: FastifyRequest, allowClientSecret: boolean): string | undefined =>
    bearerToken(request) ?? basicCredentials(request)?.id ?? (allowClientSecret ? bodyParams(request).client_secret : undefined);

  const NO_KEY =
    "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.";

  /** Resolves the API key of a request, or answers Stripe's 401. */
  const authenticate = (request: FastifyRequest, res: FastifyReply): Key | undefined => {
    const key = presentedKey(request, false);
    if (!key) {
      apiError(res, 401, { message: NO_KEY, type: "invalid_request_error" });
      return undefined;
    }
    const checked = auth.verify(key, API_KEYS);
    if (checked.ok) return checked.token;
    if (!checked.token || checked.reason === "wrong_kind") {
      apiError(res, 401, { message: `Invalid API Key provided: ${maskKey(key)}`, type: "invalid_request_error" });
      return undefined;
    }
    // A replayed code revokes the keys its exchange issued; a key refreshed since is refused for the connection the replay ended (apiKey).
    const refreshedBeforeReplay = checked.token.grant.revokedAs === "reuse" && !checked.token.revoked && checked.token.mintedBy !== undefined;
    if (!refreshedBeforeReplay) {
      apiError(res, 401, {
        code: "api_key_expired",
        doc_url: "https://stripe.com/docs/error-codes/api-key-expired",
        message: `Expired API Key provided: ${maskKey(key)}`,
        type: "invalid_request_error",
      });
      return undefined;
    }
    return checked.token;
  };

  /** The platform's secret key on a Connect OAuth call, or Stripe's invalid_client. */
  const authenticatePlatform = (request: FastifyRequest, res: FastifyReply): boolean => {
    const key = presentedKey(request, true);
    if (key !== app.clientSecret) {
      oauthError(res, 401, "invalid_client", key ? `No such API key: ${maskKey(key)}` : "No API key provided.");
      return false;
    }
    return true;
  };

  const account = (a: Account) => ({
    id: a.id,
    object: "account",
    business_profile: { mcc: null, name: a.name, support_email: null, support_phone: null, url: null },
    business_type: "company",
    capabilities: { card_payments: "active", transfers: "active" },
    charges_enabled: true,
    controller: { type: "account" },
    country: "US",
    created: a.created,
    default_currency: "usd",
    details_submitted: true,
    email: a.email,
    metadata: {},
    payouts_enabled: true,
    requirements: { currently_due: [], disabled_reason: null, eventually_due: [], past_due: [] },
    settings: { dashboard: { display_name: a.name, timezone: "Etc/UTC" } },
    type: "standard",
  });

  const definition: SandboxDefinition = {
    provider: "stripe",
    state,
    browserPaths: ["/oauth/authorize"],
    endpoints: (origin) => ({
      authorizeUrl: `${origin}/oauth/authorize`,
      tokenUrl: `${origin}/oauth/token`,
      revokeUrl: `${origin}/oauth/deauthorize`,
      apiUrl: origin,
    }),
    faults: {
      rateLimit: (res, fault, enforced) => {
        // Stripe sends no Retry-After; the sandbox adds one only when an injected fault asks for it.
        if (!enforced && fault.retryAfterSeconds !== undefined) res.header("retry-after", String(Math.ceil(fault.retryAfterSeconds)));
        return res
          .code(429)
          .header("content-type", "application/json")
          .header("request-id", `req_${randomChars(14)}`)
          .header("stripe-rate-limited-reason", "global-rate")
          .send(
            JSON.stringify({
              error: {
                code: "rate_limit",
                doc_url: "https://stripe.com/docs/error-codes/rate-limit",
                message:
                  "Testmode request rate limit exceeded, the rate limits in testmode are lower than livemode. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
                type: "invalid_request_error",
              },
            }),
          );
      },
      badRequest: (res) =>
        apiError(res, 400, {
          code: "parameter_unknown",
          doc_url: "https://stripe.com/docs/error-codes/parameter-unknown",
          message: "Received unknown parameter: expand_everything",
          param: "expand_everything",
          type: "invalid_request_error",
        }),
      serverError: (res) => {
        // Stripe's idempotency layer replays a POST's 500, so it tells clients not to retry those.
        if (res.request.method === "POST") res.header("stripe-should-retry", "false");
        return apiError(res, 500, {
          message:
            "Error while communicating with one of our backends.  Sorry about that!  We have been notified of the problem.  If you have any questions, we can help at https://support.stripe.com/.",
          type: "api_error",
        });
      },
    },
    // Every key and refresh token but the platform's own secret key; connections stay (a deauthorize still answers).
    revokeAll: () => auth.revokeTokensWhere((_token, value) => value !== app.clientSecret),
    issueCredential: (body) => {
      const parsed = credentialRequest.parse(body ?? {});
      const owner = newAccount();
      const kind = parsed.type ?? "secret";
      const apiKey = mintKey(auth.grant({ accountId: owner.id, canReadAccount: kind === "secret" || parsed.canReadAccount !== false }), kind);
      return { apiKey, accountId: owner.id, livemode: false };
    },
    routes(server: FastifyInstance) {
      // Idempotency: replay the first answer to a POST with the same key and parameters.
      server.addHook("preHandler", async (request, res) => {
        const key = request.headers["idempotency-key"];
        if (request.method !== "POST" || typeof key !== "string") return;
        const scope = `${presentedKey(request, true) ?? ""}:${key}`;
        const fingerprint = createHash("sha256").update(`${request.url}\n${JSON.stringify(request.body ?? {})}`).digest("hex");
        const stored = idempotency.get(scope);
        if (stored) {
          if (stored.fingerprint !== fingerprint) {
            return apiError(res, 400, {
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
              type: "idempotency_error",
            });
          }
          return res.code(stored.status).header("content-type", "application/json").header("idempotent-replayed", "true").header("request-id", `req_${randomChars(14)}`).send(stored.body);
        }
        res.header("idempotency-key", key);
        (request as FastifyRequest & { idempotencyScope?: { scope: string; fingerprint: string } }).idempotencyScope = { scope, fingerprint };
      });
      server.addHook("onSend", async (request, res, payload) => {
        const marker = (request as FastifyRequest & { idempotencyScope?: { scope: string; fingerprint: string } }).idempotencyScope;
        // Stripe stores answers once execution began: not 401s or 429s, which are refused before it.
        if (marker && typeof payload === "string" && res.statusCode !== 401 && res.statusCode !== 429) {
          idempotency.set(marker.scope, { fingerprint: marker.fingerprint, status: res.statusCode, body: payload });
        }
        return payload;
      });

      server.get("/oauth/authorize", async (request, res) => {
        const q = queryParams(request);
        if (q.response_type === undefined) return oauthError(res, 400, "invalid_request", "No response_type specified", q.state);
        if (q.response_type !== "code") return oauthError(res, 400, "unsupported_response_type", "Only 'code' response_type is supported.", q.state);
        if (q.client_id !== app.clientId) return oauthError(res, 400, "invalid_request", `No such application: '${q.client_id ?? ""}'`, q.state);
        const redirectUri = q.redirect_uri ?? redirectUris[0];
        if (!redirectUri || !redirectUris.includes(redirectUri)) {
          return oauthError(res, 400, "invalid_redirect_uri", `Invalid redirect URI '${q.redirect_uri ?? ""}'. Ensure this uri exactly matches one of the uris specified in your application settings`, q.state);
        }
        const scope = q.scope ?? "read_only";
        if (scope !== "read_write" && scope !== "read_only") return oauthError(res, 400, "invalid_scope", `Invalid scope '${scope}': must be read_write or read_only.`, q.state);
        const target = new URL(redirectUri);
        if (q._sandbox_decision === "deny") {
          target.searchParams.set("error", "access_denied");
          target.searchParams.set("error_description", "The user denied your request");
        } else {
          const owner = newAccount();
          const code = `ac_${randomChars(32)}`;
          auth.issueCode(code, { accountId: owner.id, scope });
          target.searchParams.set("code", code);
          target.searchParams.set("scope", scope);
        }
        if (q.state !== undefined) target.searchParams.set("state", q.state);
        return res.redirect(target.toString(), 302);
      });

      server.post("/oauth/token", async (request, res) => {
        if (!authenticatePlatform(request, res)) return res;
        const p = bodyParams(request);
        if (!p.grant_type) return oauthError(res, 400, "invalid_request", "No grant type specified");
        if (p.grant_type === "authorization_code") {
          if (!p.code) return oauthError(res, 400, "invalid_request", "No authorization code provided");
          // The exchange names neither the redirect URI nor a PKCE verifier: Stripe checks neither.
          const redeemed = auth.redeemCode(p.code, {});
          if (!redeemed.ok) {
            if (redeemed.reason === "reused") {
              // "Consuming an authorization code more than once revokes the account connection."
              if (redeemed.code) connected.delete(redeemed.code.data.accountId);
              return oauthError(res, 400, "invalid_grant", "This authorization code has already been used. All tokens issued with this code have been revoked.");
            }
            if (redeemed.reason === "expired") return oauthError(res, 400, "invalid_grant", `Authorization code expired: ${p.code}`);
            return oauthError(res, 400, "invalid_grant", `Authorization code does not exist: ${p.code}`);
          }
          connected.add(redeemed.code.data.accountId);
          const grant = auth.grantFromCode(redeemed.code, { ...redeemed.code.data, canReadAccount: true });
          const accessToken = mintKey(grant, "oauth");
          const refreshToken = `rt_${randomChars(40)}`;
          auth.mint(refreshToken, "refresh", grant);
          return send(res, 200, tokenBody(accessToken, refreshToken, grant));
        }
        if (p.grant_type === "refresh_token") {
          if (!p.refresh_token) return oauthError(res, 400, "invalid_request", "No refresh token provided");
          // A disconnected account's refresh tokens are revoked with it (deauthorize, a replayed code).
          const refresh = auth.verify(p.refresh_token, ["refresh"]);
          if (!refresh.ok) return oauthError(res, 400, "invalid_grant", `Refresh token does not exist: ${p.refresh_token}`);
          const { grant } = refresh.token;
          // A refresh revokes existing access tokens of the same scope and mode; the refresh token stays.
          auth.revokeTokensWhere((t) => t.kind === "oauth" && t.grant.accountId === grant.accountId && t.grant.scope === grant.scope);
          const accessToken = mintKey(grant, "oauth", p.refresh_token);
          return send(res, 200, tokenBody(accessToken, p.refresh_token, grant));
        }
        return oauthError(res, 400, "unsupported_grant_type", `Unsupported grant type: ${p.grant_type}`);
      });

      server.post("/oauth/deauthorize", async (request, res) => {
        if (!authenticatePlatform(request, res)) return res;
        const p = bodyParams(request);
        if (!p.client_id || !p.stripe_user_id) return oauthError(res, 400, "invalid_request", "client_id and stripe_user_id are required");
        if (p.client_id !== app.clientId || !connected.has(p.stripe_user_id)) {
          return oauthError(res, 401, "invalid_client", `This application is not connected to stripe account ${p.stripe_user_id}, or that account does not exist.`);
        }
        const accountId = p.stripe_user_id;
        connected.delete(accountId);
        auth.revokeTokensWhere((t) => t.grant.accountId === accountId && (t.kind === "oauth" || t.kind === "refresh"));
        return send(res, 200, { stripe_user_id: p.stripe_user_id });
      });

      /** The key of an API call, or Stripe's refusal: none, unknown, expired, or a connection the account ended. */
      const apiKey = (request: FastifyRequest, res: FastifyReply): Access | undefined => {
        const key = authenticate(request, res);
        if (!key) return undefined;
        if (key.kind === "oauth" && !connected.has(key.grant.accountId)) {
          apiError(res, 401, {
            message: `The provided key '${maskKey(bearerToken(request) ?? "")}' does not have access to account '${key.grant.accountId}' (or that account does not exist). Application access may have been revoked.`,
            type: "invalid_request_error",
          });
          return undefined;
        }
        return key.grant;
      };

      server.get("/v1/account", async (request, res) => {
        const key = apiKey(request, res);
        if (!key) return res;
        if (!key.canReadAccount) {
          return apiError(res, 403, {
            message: `The provided key '${maskKey(presentedKey(request, false) ?? "")}' does not have the required permissions for this endpoint on account '${key.accountId}'. Having the 'rak_accounts_read' permission would allow this request to continue.`,
            type: "invalid_request_error",
          });
        }
        return send(res, 200, account(accounts.get(key.accountId) as Account));
      });
      const invalidParam = (res: FastifyReply, param: string, message: string, code?: string): FastifyReply =>
        apiError(res, 400, { ...(code ? { code, doc_url: `https://stripe.com/docs/error-codes/${code.replace(/_/g, "-")}` } : {}), message, param, type: "invalid_request_error" });
      const noSuchCustomer = (res: FastifyReply, status: 400 | 404, id: string, param: string): FastifyReply =>
        apiError(res, status, { code: "resource_missing", doc_url: "https://stripe.com/docs/error-codes/resource-missing", message: `No such customer: '${id}'`, param, type: "invalid_request_error" });

      const customerBody = (c: Customer) => ({
        id: c.id,
        object: "customer",
        address: null,
        balance: 0,
        created: c.created,
        currency: null,
        default_source: null,
        delinquent: false,
        description: c.description,
        discount: null,
        email: c.email,
        invoice_prefix: c.invoicePrefix,
        invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
        livemode: false,
        metadata: c.metadata,
        name: c.name,
        next_invoice_sequence: 1,
        phone: c.phone,
        preferred_locales: [],
        shipping: null,
        tax_exempt: "none",
        test_clock: null,
      });

      /** Stripe's metadata limits: 50 keys, keys of 40 characters, values of 500. */
      const METADATA_KEYS = 50;
      const METADATA_KEY_LENGTH = 40;
      const METADATA_VALUE_LENGTH = 500;
      const CUSTOMER_TEXT = ["email", "name", "description", "phone"] as const;
      const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
      server.post("/v1/customers", async (request, res) => {
        const key = apiKey(request, res);
        if (!key) return res;
        // A Connect token granted read_only may read, not write.
        if (key.scope === "read_only") {
          return apiError(res, 403, {
            message: `The provided key '${maskKey(bearerToken(request) ?? "")}' does not have the required permissions for this endpoint on account '${key.accountId}'. Having the 'rak_customer_write' permission would allow this request to continue.`,
            type: "invalid_request_error",
          });
        }
        const params = bodyParams(request);
        const text: Partial<Record<(typeof CUSTOMER_TEXT)[number], string>> = {};
        const metadata: Record<string, string> = {};
        for (const [name, value] of Object.entries(params)) {
          // Form bodies name nested values with brackets: metadata[plan]=pro, expand[0]=...
          const nested = /^([a-z_]+)\[([^\]]*)\]$/.exec(name);
          if (nested?.[1] === "metadata") {
            const field = nested[2] as string;
            if (field.length > METADATA_KEY_LENGTH) return invalidParam(res, `metadata[${field}]`, `Metadata keys can have up to ${METADATA_KEY_LENGTH} characters.`);
            if (value.length > METADATA_VALUE_LENGTH) return invalidParam(res, `metadata[${field}]`, `Metadata values can have up to ${METADATA_VALUE_LENGTH} characters, but you passed in a value that is ${value.length} characters.`);
            // An empty value unsets the key.
            if (value !== "") metadata[field] = value;
          } else if (nested?.[1] === "expand") {
            // Nothing on a customer is expandable in the sandbox; the customer answers as it is.
          } else if ((CUSTOMER_TEXT as readonly string[]).includes(name)) {
            text[name as (typeof CUSTOMER_TEXT)[number]] = value;
          } else if (name === "metadata" && value === "") {
            // metadata= clears every key: nothing to do on a new customer.
          } else {
            return invalidParam(res, name.replace(/\[.*$/, ""), `Received unknown parameter: ${name.replace(/\[.*$/, "")}`, "parameter_unknown");
          }
        }
        if (Object.keys(metadata).length > METADATA_KEYS) return invalidParam(res, "metadata", `You can specify up to ${METADATA_KEYS} keys in metadata.`);
        if (text.email && !EMAIL.test(text.email)) return invalidParam(res, "email", `Invalid email address: ${text.email}`, "email_invalid");
        const customer: Customer = {
          id: `cus_${randomChars(14)}`,
          accountId: key.accountId,
          created: Math.floor(Date.now() / 1000),
          email: text.email || null,
          name: text.name || null,
          description: text.description || null,
          phone: text.phone || null,
          metadata,
          invoicePrefix: randomChars(8, "0123456789ABCDEF"),
        };
        customers.set(customer.id, customer);
        return send(res, 200, customerBody(customer));
      });

      server.get("/v1/customers/:id", async (request, res) => {
        const key = apiKey(request, res);
        if (!key) return res;
        const { id } = request.params as { id: string };
        const customer = customers.get(id);
        // Another account's customer does not exist for this key.
        if (!customer || customer.accountId !== key.accountId) return noSuchCustomer(res, 404, id, "id");
        return send(res, 200, customerBody(customer));
      });

      /** A list page: 10 by default, 1 to 100. */
      const DEFAULT_LIMIT = 10;
      const MAX_LIMIT = 100;
      server.get("/v1/customers", async (request, res) => {
        const key = apiKey(request, res);
        if (!key) return res;
        const q = queryParams(request);
        let limit = DEFAULT_LIMIT;
        if (q.limit !== undefined) {
          if (!/^-?\d+$/.test(q.limit)) return invalidParam(res, "limit", `Invalid integer: ${q.limit}`, "parameter_invalid_integer");
          limit = Number(q.limit);
          if (limit < 1) return invalidParam(res, "limit", "This value must be greater than or equal to 1.");
          if (limit > MAX_LIMIT) return invalidParam(res, "limit", `This value must be less than or equal to ${MAX_LIMIT}.`);
        }
        // Newest first, as Stripe lists.
        let listed = [...customers.values()].filter((c) => c.accountId === key.accountId && (q.email === undefined || c.email === q.email)).reverse();
        let hasMore: boolean;
        if (q.starting_after) {
          const at = listed.findIndex((c) => c.id === q.starting_after);
          if (at < 0) return noSuchCustomer(res, 400, q.starting_after, "starting_after");
          listed = listed.slice(at + 1);
          hasMore = listed.length > limit;
          listed = listed.slice(0, limit);
        } else if (q.ending_before) {
          const at = listed.findIndex((c) => c.id === q.ending_before);
          if (at < 0) return noSuchCustomer(res, 400, q.ending_before, "ending_before");
          listed = listed.slice(0, at);
          hasMore = listed.length > limit;
          listed = listed.slice(Math.max(0, listed.length - limit));
        } else {
          hasMore = listed.length > limit;
          listed = listed.slice(0, limit);
        }
        return send(res, 200, { object: "list", data: listed.map(customerBody), has_more: hasMore, url: "/v1/customers" });
      });

      server.setNotFoundHandler(async (request, res) =>
        apiError(res, 404, {
          message: `Unrecognized request URL (${request.method}: ${request.url.split("?")[0]}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
          type: "invalid_request_error",
        }),
      );
    },
  };
  return definition;

  function tokenBody(accessToken: string, refreshToken: string, { accountId, scope }: Access) {
    return {
      access_token: accessToken,
      livemode: false,
      refresh_token: refreshToken,
      token_type: "bearer",
      stripe_publishable_key: `pk_test_51${randomChars(97)}`,
      stripe_user_id: accountId,
      scope,
    };
  }
}

export async function startStripeSandbox(options: SandboxOptions = {}): Promise<StartedSandbox> {
  const app = { clientId: options.clientId ?? `ca_${randomChars(32)}`, clientSecret: options.clientSecret ?? `sk_test_51${randomChars(97)}` };
  return startSandbox("stripe", options, app, (registered, restored, redirectUris) => stripeSandbox({ ...options, redirectUris }, registered, restored));
}
