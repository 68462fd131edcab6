/**
 * Stripe's quirks only (the generic lifecycle is the contract suite's):
 * classification by status with Stripe-Should-Retry as a hint, Connect OAuth's
 * string errors, key prefixes, Idempotency-Key on every POST, and the sandbox
 * answering as Stripe does (providers.md §3, research/slack-stripe.md S1–S7).
 */
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Tier1ErrorType } from "../shared/contract.js";
import { IntegrationError } from "../shared/errors.js";
import type { ProviderResponse } from "../shared/http.js";
import type { StartedSandbox } from "../../sandbox/kit.js";
import { STRIPE_API_VERSION, classifyStripe, parseStripeKey, parseStripeTokenResponse, stripeRequest } from "./connector.js";
import { startStripeSandbox } from "./sandbox.js";

type Json = Record<string, unknown>;

function response(status: number, body: unknown, headers: Record<string, string> = {}): ProviderResponse {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, headers: new Headers(headers), text, json };
}

const apiError = (status: number, error: Json, headers: Record<string, string> = {}) => response(status, { error }, headers);
const op = { operation: "GET /v1/account" };

describe("classifyStripe", () => {
  const cases: [string, ProviderResponse, Tier1ErrorType, string][] = [
    ["401 invalid key", apiError(401, { message: "Invalid API Key provided: sk_test_****c123", type: "invalid_request_error" }), "auth", "invalid_request_error"],
    ["401 expired key", apiError(401, { code: "api_key_expired", message: "Expired API Key provided: rk_test_***123", type: "invalid_request_error" }), "auth", "api_key_expired"],
    [
      "403 restricted key",
      apiError(403, { message: "The provided key 'rk_test_***qs8Kgd' does not have the required permissions for this endpoint. Having the 'rak_accounts_read' permission would allow this request to continue.", type: "invalid_request_error" }),
      "auth",
      "invalid_request_error",
    ],
    ["402 card_error", apiError(402, { code: "card_declined", decline_code: "generic_decline", message: "Your card was declined.", type: "card_error" }), "schema", "card_declined"],
    ["400 invalid_request_error", apiError(400, { code: "parameter_unknown", message: "Received unknown parameter: foo", param: "foo", type: "invalid_request_error" }), "schema", "parameter_unknown"],
    ["400 idempotency_error", apiError(400, { message: "Keys for idempotent requests can only be used with the same parameters", type: "idempotency_error" }), "schema", "idempotency_error"],
    ["400 legacy rate_limit", apiError(400, { code: "rate_limit", message: "Request rate limit exceeded.", type: "invalid_request_error" }), "rate-limit", "rate_limit"],
    ["404 resource_missing", apiError(404, { code: "resource_missing", message: "No such customer: 'cus_x'", param: "customer", type: "invalid_request_error" }), "schema", "resource_missing"],
    ["409 idempotency key in use", apiError(409, { message: "There is currently another in-progress request using this Idempotent Key", type: "idempotency_error" }), "upstream", "idempotency_error"],
    ["429 rate_limit", apiError(429, { code: "rate_limit", message: "Request rate limit exceeded.", type: "invalid_request_error" }), "rate-limit", "rate_limit"],
    ["429 lock_timeout", apiError(429, { code: "lock_timeout", message: "This object cannot be accessed right now", type: "invalid_request_error" }), "rate-limit", "lock_timeout"],
    ["500 api_error", apiError(500, { message: "Error while communicating with one of our backends.", type: "api_error" }), "upstream", "api_error"],
    ["502 HTML", response(502, "<html><body>502 Bad Gateway</body></html>"), "upstream", "http_502"],
    ["503 empty", response(503, ""), "upstream", "http_503"],
    ["OAuth 400 invalid_grant", response(400, { error: "invalid_grant", error_description: "Authorization code does not exist: ac_123" }), "auth", "invalid_grant"],
    ["OAuth 401 invalid_client", response(401, { error: "invalid_client", error_description: "No such API key: sk_test_abc" }), "auth", "invalid_client"],
    ["OAuth 400 invalid_request", response(400, { error: "invalid_request", error_description: "No grant type specified" }), "schema", "invalid_request"],
    ["OAuth 400 unsupported_grant_type", response(400, { error: "unsupported_grant_type", error_description: "Unsupported grant type: x" }), "schema", "unsupported_grant_type"],
  ];

  it.each(cases)("%s", (_name, res, type, code) => {
    const verdict = classifyStripe(res, op);
    expect(verdict).not.toBeNull();
    expect(verdict?.type).toBe(type);
    expect(verdict?.code).toBe(code);
    expect(verdict?.providerRetryHint).toBeUndefined();
  });

  it("a 200 is a success", () => {
    expect(classifyStripe(response(200, { id: "acct_1", object: "account" }), op)).toBeNull();
    expect(classifyStripe(response(200, { id: "acct_1" }, { "stripe-should-retry": "false" }), op)).toBeNull();
  });

  it("never quotes Stripe's text about the key in an auth message", () => {
    const key = "sk_test_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789c123";
    for (const res of [
      apiError(401, { message: `Invalid API Key provided: sk_test_****************************************c123`, type: "invalid_request_error" }),
      apiError(401, { message: `Invalid API Key provided: ${key}`, type: "invalid_request_error" }),
      apiError(403, { message: `The provided key '${key}' does not have the required permissions`, type: "invalid_request_error" }),
      response(401, { error: "invalid_client", error_description: `No such API key: ${key}` }),
    ]) {
      const verdict = classifyStripe(res, op);
      expect(verdict?.type).toBe("auth");
      expect(verdict?.message).not.toContain("sk_test_");
      expect(verdict?.message).not.toContain("c123");
      expect(verdict?.message).toContain("GET /v1/account");
    }
  });

  it("does not quote the authorization code of an OAuth error", () => {
    const verdict = classifyStripe(response(400, { error: "invalid_grant", error_description: "Authorization code does not exist: ac_SECRETCODE" }), { operation: "POST /oauth/token" });
    expect(verdict?.message).not.toContain("ac_SECRETCODE");
  });

  it("Stripe-Should-Retry is kept as the provider's retry hint", () => {
    const noRetry = classifyStripe(apiError(500, { type: "api_error", message: "x" }, { "stripe-should-retry": "false" }), op);
    expect(noRetry?.type).toBe("upstream");
    expect(noRetry?.providerRetryHint).toBe(false);

    const retry = classifyStripe(apiError(409, { type: "idempotency_error", message: "x" }, { "stripe-should-retry": "true" }), op);
    expect(retry?.type).toBe("upstream");
    expect(retry?.providerRetryHint).toBe(true);

    const lock = classifyStripe(apiError(429, { code: "lock_timeout", type: "invalid_request_error", message: "x" }, { "Stripe-Should-Retry": "true" }), op);
    expect(lock?.providerRetryHint).toBe(true);

    const odd = classifyStripe(apiError(500, { type: "api_error", message: "x" }, { "stripe-should-retry": "maybe" }), op);
    expect(odd?.providerRetryHint).toBeUndefined();
  });
});

describe("parseStripeTokenResponse", () => {
  it("reads the documented /oauth/token answer", () => {
    const grant = parseStripeTokenResponse({
      access_token: "sk_test_51AbCdEfGhIjKlMnOp",
      livemode: false,
      refresh_token: "rt_AbCdEfGhIjKlMnOpQrStUv",
      token_type: "bearer",
      stripe_publishable_key: "pk_test_51AbCdEf",
      stripe_user_id: "acct_1PgafTB7WZ01zgkW",
      scope: "read_write",
    });
    expect(grant).toEqual({
      accessToken: "sk_test_51AbCdEfGhIjKlMnOp",
      refreshToken: "rt_AbCdEfGhIjKlMnOpQrStUv",
      scopes: ["read_write"],
      metadata: { accountId: "acct_1PgafTB7WZ01zgkW", livemode: false },
    });
    // Connect access tokens do not expire.
    expect(grant.expiresInSeconds).toBeUndefined();
  });

  it("keeps livemode true from a live connection", () => {
    const grant = parseStripeTokenResponse({ access_token: "sk_live_x", livemode: true, stripe_user_id: "acct_1", scope: "read_only" });
    expect(grant.metadata).toEqual({ accountId: "acct_1", livemode: true });
    expect(grant.scopes).toEqual(["read_only"]);
    expect(grant.refreshToken).toBeUndefined();
  });

  it.each([
    ["an OAuth error", { error: "invalid_grant", error_description: "This authorization code has already been used." }],
    ["no stripe_user_id", { access_token: "sk_test_x", livemode: false }],
    ["a stripe_user_id that is not an account", { access_token: "sk_test_x", livemode: false, stripe_user_id: "cus_123" }],
    ["no livemode", { access_token: "sk_test_x", stripe_user_id: "acct_1" }],
    ["livemode as a string", { access_token: "sk_test_x", livemode: "false", stripe_user_id: "acct_1" }],
    ["an empty access token", { access_token: "", livemode: false, stripe_user_id: "acct_1" }],
    ["null", null],
    ["a string", "sk_test_x"],
  ])("refuses %s as upstream unparsable_response", (_name, body) => {
    let caught: unknown;
    try {
      parseStripeTokenResponse(body);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(IntegrationError);
    expect((caught as IntegrationError).type).toBe("upstream");
    expect((caught as IntegrationError).code).toBe("unparsable_response");
    expect((caught as IntegrationError).provider).toBe("stripe");
  });
});

describe("parseStripeKey", () => {
  it.each([
    ["sk_test_51AbCdEfGhIjKlMnOpQrSt", false, "read_write"],
    ["sk_live_51AbCdEfGhIjKlMnOpQrSt", true, "read_write"],
    ["rk_test_51AbCdEfGhIjKlMnOpQrSt", false, "restricted"],
    ["rk_live_51AbCdEfGhIjKlMnOpQrSt", true, "restricted"],
  ] as const)("accepts %s (livemode %s, scope %s)", (key, livemode, scope) => {
    const parsed = parseStripeKey({ apiKey: key });
    expect(parsed).toEqual({ token: key, authMethod: "api_key", metadata: { livemode }, scopes: [scope] });
  });

  it("also accepts the key as accessToken", () => {
    expect(parseStripeKey({ accessToken: "sk_test_51AbCdEfGhIjKlMnOpQrSt" }).token).toBe("sk_test_51AbCdEfGhIjKlMnOpQrSt");
  });

  function refusal(input: { apiKey?: string; accessToken?: string }): IntegrationError {
    try {
      parseStripeKey(input);
    } catch (error) {
      expect(error).toBeInstanceOf(IntegrationError);
      return error as IntegrationError;
    }
    throw new Error(`parseStripeKey accepted ${JSON.stringify(input)}`);
  }

  it.each([
    ["a test publishable key", { apiKey: "pk_test_51AbCdEfGhIjKlMnOpQrSt" }, "apiKey"],
    ["a live publishable key as accessToken", { accessToken: "pk_live_51AbCdEfGhIjKlMnOpQrSt" }, "accessToken"],
  ])("refuses %s with a message about publishable keys", (_name, input, field) => {
    const error = refusal(input);
    expect(error.type).toBe("schema");
    expect(error.field).toBe(field);
    expect(error.message.startsWith(field)).toBe(true);
    expect(error.message).toMatch(/publishable/);
  });

  it.each([
    ["junk", { apiKey: "hello" }, "apiKey"],
    ["junk as accessToken", { accessToken: "hello" }, "accessToken"],
    ["an empty key", { apiKey: "" }, "apiKey"],
    ["a Connect client id", { apiKey: "ca_32charactersAbCdEfGhIjKlMnOpQr" }, "apiKey"],
    ["a refresh token", { apiKey: "rt_AbCdEfGhIjKlMnOpQrStUv" }, "apiKey"],
    ["an unknown mode", { apiKey: "sk_prod_51AbCdEfGhIjKlMnOpQrSt" }, "apiKey"],
    ["a key with a space", { apiKey: "sk_test_51AbCdEf GhIjKlMnOp" }, "apiKey"],
    ["both fields", { apiKey: "sk_test_51AbCdEfGhIjKlMnOpQrSt", accessToken: "sk_test_51AbCdEfGhIjKlMnOpQrSt" }, "apiKey"],
    ["nothing", {}, "apiKey"],
  ])("refuses %s with a schema error naming the field", (_name, input, field) => {
    const error = refusal(input);
    expect(error.type).toBe("schema");
    expect(error.code).toBe("invalid_input");
    expect(error.field).toBe(field);
    expect(error.message.startsWith(field)).toBe(true);
  });
});

describe("stripeRequest", () => {
  const base = { operation: "POST /oauth/token", url: "http://127.0.0.1:1/oauth/token", token: "sk_test_platform" };

  it("gives every POST a fresh Idempotency-Key", () => {
    const a = stripeRequest({ ...base, method: "POST", form: { grant_type: "authorization_code", code: "ac_1" } });
    const b = stripeRequest({ ...base, method: "POST", form: { grant_type: "authorization_code", code: "ac_1" } });
    const keyA = a.headers?.["idempotency-key"];
    const keyB = b.headers?.["idempotency-key"];
    expect(keyA).toMatch(/^[0-9a-f-]{36}$/);
    expect(keyB).toMatch(/^[0-9a-f-]{36}$/);
    expect(keyA).not.toBe(keyB);
    expect(a.form).toEqual({ grant_type: "authorization_code", code: "ac_1" });
  });

  it("sends no Idempotency-Key on a GET", () => {
    const req = stripeRequest({ ...base, method: "GET", url: "http://127.0.0.1:1/v1/account" });
    const names = Object.keys(req.headers ?? {}).map((h) => h.toLowerCase());
    expect(names).not.toContain("idempotency-key");
    expect(req.form).toBeUndefined();
  });

  it("sets Stripe-Version and Bearer auth, and marks the token and extra secrets for scrubbing", () => {
    for (const method of ["GET", "POST"] as const) {
      const req = stripeRequest({ ...base, method, secrets: ["ac_code"] });
      expect(req.headers?.["stripe-version"]).toBe(STRIPE_API_VERSION);
      expect(req.headers?.authorization).toBe("Bearer sk_test_platform");
      expect(req.secrets).toEqual(["sk_test_platform", "ac_code"]);
    }
    expect(STRIPE_API_VERSION).toMatch(/^\d{4}-\d{2}-\d{2}\.[a-z]+$/);
  });
});

// ---------------------------------------------------------------------------------------------
// Sandbox
// ---------------------------------------------------------------------------------------------

const REDIRECT = "http://localhost:3000/api/integrations/stripe/oauth/callback";

type Answer = { status: number; headers: Headers; text: string; body: Json };

async function call(url: string, init: { method?: string; headers?: Record<string, string>; form?: Record<string, string> } = {}): Promise<Answer> {
  const res = await fetch(url, {
    method: init.method ?? (init.form ? "POST" : "GET"),
    headers: init.headers ?? {},
    ...(init.form ? { body: new URLSearchParams(init.form) } : {}),
    redirect: "manual",
  });
  const text = await res.text();
  let body: Json = {};
  try {
    body = JSON.parse(text) as Json;
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, body };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const oauthError = (a: Answer) => a.body as { error?: string; error_description?: string; state?: string };
const apiErr = (a: Answer) => (a.body as { error?: { type?: string; code?: string; message?: string } }).error ?? {};

describe("Stripe sandbox", () => {
  let sb: StartedSandbox;

  beforeAll(async () => {
    sb = await startStripeSandbox({ redirectUris: [REDIRECT] });
  });
  afterEach(async () => {
    await fetch(`${sb.url}/_sandbox/faults`, { method: "DELETE" });
  });
  afterAll(async () => {
    await sb?.close();
  });

  const authorize = (params: Record<string, string>) => fetch(`${sb.endpoints.authorizeUrl}?${new URLSearchParams(params).toString()}`, { redirect: "manual" });
  const approve = (extra: Record<string, string> = {}) =>
    authorize({ response_type: "code", client_id: sb.clientId, scope: "read_write", redirect_uri: REDIRECT, state: "st-1", ...extra });

  async function newCode(): Promise<string> {
    const res = await approve();
    expect(res.status).toBe(302);
    return new URL(res.headers.get("location") as string).searchParams.get("code") as string;
  }
  const token = (form: Record<string, string>, headers: Record<string, string> = bearer(sb.clientSecret)) => call(sb.endpoints.tokenUrl, { form, headers });
  const account = (key?: string, headers: Record<string, string> = {}) => call(`${sb.endpoints.apiUrl}/v1/account`, { headers: { ...(key ? bearer(key) : {}), ...headers } });
  const fault = (body: Json) => fetch(`${sb.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  async function connect(): Promise<{ accessToken: string; refreshToken: string; accountId: string }> {
    const res = await token({ grant_type: "authorization_code", code: await newCode() });
    expect(res.status).toBe(200);
    return { accessToken: res.body.access_token as string, refreshToken: res.body.refresh_token as string, accountId: res.body.stripe_user_id as string };
  }

  it("serves Connect and the API at Stripe's paths on one loopback origin", () => {
    expect(sb.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sb.clientId).toMatch(/^ca_/);
    expect(sb.clientSecret).toMatch(/^sk_test_/);
    expect(sb.endpoints).toEqual({
      authorizeUrl: `${sb.url}/oauth/authorize`,
      tokenUrl: `${sb.url}/oauth/token`,
      revokeUrl: `${sb.url}/oauth/deauthorize`,
      apiUrl: sb.url,
    });
  });

  describe("authorize", () => {
    it("answers JSON invalid_redirect_uri, and no redirect, for an unregistered redirect_uri", async () => {
      const res = await approve({ redirect_uri: "http://evil.example/cb", state: "s-9" });
      expect(res.status >= 300 && res.status < 400).toBe(false);
      expect(res.headers.get("location")).toBeNull();
      expect(res.headers.get("content-type")).toMatch(/application\/json/);
      const body = (await res.json()) as Json;
      expect(body.error).toBe("invalid_redirect_uri");
      expect(body.error_description).toContain("http://evil.example/cb");
      expect(body.state).toBe("s-9");
    });

    it("answers JSON, and no redirect, for an unknown client_id or scope", async () => {
      for (const res of [await approve({ client_id: "ca_unknown" }), await approve({ scope: "admin" }), await approve({ response_type: "token" })]) {
        expect(res.headers.get("location")).toBeNull();
        expect(res.status).toBe(400);
        expect(typeof ((await res.json()) as Json).error).toBe("string");
      }
    });

    it("redirects with code=ac_..., the scope and the state on approval", async () => {
      const res = await approve({ state: "abc" });
      expect(res.status).toBe(302);
      const location = new URL(res.headers.get("location") as string);
      expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
      expect(location.searchParams.get("code")).toMatch(/^ac_[A-Za-z0-9]+$/);
      expect(location.searchParams.get("scope")).toBe("read_write");
      expect(location.searchParams.get("state")).toBe("abc");
    });

    it("redirects with error=access_denied and the state on refusal", async () => {
      const res = await approve({ state: "xyz", _sandbox_decision: "deny" });
      expect(res.status).toBe(302);
      const location = new URL(res.headers.get("location") as string);
      expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
      expect(location.searchParams.get("error")).toBe("access_denied");
      expect(location.searchParams.get("state")).toBe("xyz");
      expect(location.searchParams.has("code")).toBe(false);
    });
  });

  describe("/oauth/token", () => {
    it("accepts the platform key as Bearer, and answers the documented body", async () => {
      const res = await token({ grant_type: "authorization_code", code: await newCode() });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ livemode: false, token_type: "bearer", scope: "read_write" });
      expect(res.body.access_token).toMatch(/^sk_test_/);
      expect(res.body.refresh_token).toMatch(/^rt_/);
      expect(res.body.stripe_publishable_key).toMatch(/^pk_test_/);
      expect(res.body.stripe_user_id).toMatch(/^acct_/);
      const grant = parseStripeTokenResponse(res.body);
      const acct = await account(grant.accessToken);
      expect(acct.status).toBe(200);
      expect(acct.body.id).toBe(grant.metadata.accountId);
    });

    it("accepts the platform key as Basic (key as user name)", async () => {
      const basic = Buffer.from(`${sb.clientSecret}:`).toString("base64");
      const res = await token({ grant_type: "authorization_code", code: await newCode() }, { authorization: `Basic ${basic}` });
      expect(res.status).toBe(200);
      expect(res.body.stripe_user_id).toMatch(/^acct_/);
    });

    it("accepts the platform key as a client_secret form field", async () => {
      const res = await token({ grant_type: "authorization_code", code: await newCode(), client_secret: sb.clientSecret }, {});
      expect(res.status).toBe(200);
      expect(res.body.stripe_user_id).toMatch(/^acct_/);
    });

    it("refuses a wrong or missing platform key with 401 invalid_client", async () => {
      const code = await newCode();
      const wrong = await token({ grant_type: "authorization_code", code }, bearer("sk_test_51WrongWrongWrongWrong"));
      expect(wrong.status).toBe(401);
      expect(oauthError(wrong).error).toBe("invalid_client");
      const none = await token({ grant_type: "authorization_code", code }, {});
      expect(none.status).toBe(401);
      expect(oauthError(none).error).toBe("invalid_client");
      // The refusals did not consume the code.
      expect((await token({ grant_type: "authorization_code", code })).status).toBe(200);
    });

    it("refuses a reused code with 400 invalid_grant and revokes the first access token", async () => {
      const code = await newCode();
      const first = await token({ grant_type: "authorization_code", code });
      expect(first.status).toBe(200);
      const accessToken = first.body.access_token as string;
      expect((await account(accessToken)).status).toBe(200);

      const again = await token({ grant_type: "authorization_code", code });
      expect(again.status).toBe(400);
      expect(oauthError(again).error).toBe("invalid_grant");
      expect(oauthError(again).error_description).toContain("already been used");

      const after = await account(accessToken);
      expect(after.status).toBe(401);
      expect(classifyStripe({ status: after.status, headers: after.headers, text: after.text, json: after.body }, op)?.type).toBe("auth");
      // The refresh token it minted is gone too.
      const refresh = await token({ grant_type: "refresh_token", refresh_token: first.body.refresh_token as string });
      expect(refresh.status).toBe(400);
      expect(oauthError(refresh).error).toBe("invalid_grant");
    });

    it("refuses an unknown code with invalid_grant", async () => {
      const res = await token({ grant_type: "authorization_code", code: "ac_doesnotexist" });
      expect(res.status).toBe(400);
      expect(oauthError(res).error).toBe("invalid_grant");
      expect(oauthError(res).error_description).toMatch(/does not exist/);
    });

    it('refuses a missing grant_type with invalid_request "No grant type specified"', async () => {
      const res = await token({ code: await newCode() });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: "invalid_request", error_description: "No grant type specified" });
    });

    it("refuses an unknown grant_type with unsupported_grant_type", async () => {
      const res = await token({ grant_type: "password" });
      expect(res.status).toBe(400);
      expect(oauthError(res).error).toBe("unsupported_grant_type");
    });

    it("a refresh revokes the access token of the same scope and keeps the refresh token", async () => {
      const { accessToken, refreshToken, accountId } = await connect();
      const res = await token({ grant_type: "refresh_token", refresh_token: refreshToken });
      expect(res.status).toBe(200);
      expect(res.body.stripe_user_id).toBe(accountId);
      expect(res.body.refresh_token).toBe(refreshToken);
      expect(res.body.access_token).not.toBe(accessToken);
      expect((await account(accessToken)).status).toBe(401);
      expect((await account(res.body.access_token as string)).status).toBe(200);
    });
  });

  describe("/oauth/deauthorize", () => {
    it("disconnects once with {stripe_user_id}, then answers 401 invalid_client not connected", async () => {
      const { accessToken, accountId } = await connect();
      const first = await call(sb.endpoints.revokeUrl as string, { form: { client_id: sb.clientId, stripe_user_id: accountId }, headers: bearer(sb.clientSecret) });
      expect(first.status).toBe(200);
      expect(first.body).toEqual({ stripe_user_id: accountId });
      expect((await account(accessToken)).status).toBe(401);

      const again = await call(sb.endpoints.revokeUrl as string, { form: { client_id: sb.clientId, stripe_user_id: accountId }, headers: bearer(sb.clientSecret) });
      expect(again.status).toBe(401);
      expect(oauthError(again).error).toBe("invalid_client");
      expect(oauthError(again).error_description).toContain("not connected");
      expect(oauthError(again).error_description).toContain(accountId);
    });
  });

  describe("/v1/account", () => {
    it("answers the platform account to the platform key", async () => {
      const res = await account(sb.clientSecret);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ object: "account", type: "standard" });
      expect(res.body.id).toMatch(/^acct_/);
      expect(res.headers.get("stripe-version")).toBeTruthy();
    });

    it("echoes the Stripe-Version the client asked for", async () => {
      const res = await account(sb.clientSecret, { "stripe-version": STRIPE_API_VERSION });
      expect(res.headers.get("stripe-version")).toBe(STRIPE_API_VERSION);
    });

    it('with no key: 401, "You did not provide an API key", WWW-Authenticate: Basic realm="Stripe"', async () => {
      const res = await account();
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="Stripe"');
      expect(apiErr(res).type).toBe("invalid_request_error");
      expect(apiErr(res).message).toMatch(/^You did not provide an API key\. You need to provide your API key in the Authorization header, using Bearer auth/);
    });

    it.each([
      ["sk_test_", "AbCdEfGhIjKlMnOpQrSt9876"],
      ["rk_live_", "ZyXwVuTsRqPoNmLk5432"],
    ])("with an unknown %s key: Invalid API Key provided, masked to the prefix and last 4", async (prefix, rest) => {
      const key = `${prefix}${rest}`;
      const res = await account(key);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="Stripe"');
      expect(apiErr(res).message).toBe(`Invalid API Key provided: ${prefix}${"*".repeat(rest.length - 4)}${rest.slice(-4)}`);
      // No other character of the key anywhere in the answer.
      expect(res.text).not.toContain(rest.slice(0, -4));
      expect(res.text).not.toContain(rest.slice(-5));
    });

    it("also takes the key as Basic (key as user name)", async () => {
      const basic = Buffer.from(`${sb.clientSecret}:`).toString("base64");
      expect((await account(undefined, { authorization: `Basic ${basic}` })).status).toBe(200);
    });

    it("refuses a restricted key without account read with 403 mentioning rak_", async () => {
      const issued = await fetch(`${sb.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "restricted", canReadAccount: false }) });
      expect(issued.status).toBe(201);
      const { apiKey } = (await issued.json()) as { apiKey: string };
      expect(apiKey).toMatch(/^rk_test_/);
      expect(parseStripeKey({ apiKey }).scopes).toEqual(["restricted"]);
      const res = await account(apiKey);
      expect(res.status).toBe(403);
      expect(apiErr(res).message).toMatch(/rak_\w+/);
      expect(res.text).not.toContain(apiKey);
      expect(classifyStripe({ status: res.status, headers: res.headers, text: res.text, json: res.body }, op)?.type).toBe("auth");
    });

    it("a restricted key that may read the account gets it", async () => {
      const issued = await fetch(`${sb.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "restricted" }) });
      const { apiKey, accountId } = (await issued.json()) as { apiKey: string; accountId: string };
      const res = await account(apiKey);
      expect(res.status).toBe(200);
      expect(res.body.id).toBe(accountId);
    });
  });

  it("every response carries a Request-Id starting req_", async () => {
    const { accessToken } = await connect();
    const restricted = (await (await fetch(`${sb.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "restricted", canReadAccount: false }) })).json()) as { apiKey: string };
    const answers: [string, Answer][] = [
      ["200 account", await account(accessToken)],
      ["401 no key", await account()],
      ["401 bad key", await account("sk_test_51nopenopenope")],
      ["403", await account(restricted.apiKey)],
      ["404", await call(`${sb.url}/v1/nothing_here`, { headers: bearer(sb.clientSecret) })],
      ["oauth 401", await token({ grant_type: "authorization_code", code: "ac_x" }, {})],
      ["oauth 400", await token({ grant_type: "authorization_code", code: "ac_x" })],
      ["oauth 200", await token({ grant_type: "authorization_code", code: await newCode() })],
    ];
    await fault({ fault: "rate-limit", times: 1 });
    answers.push(["429", await account(sb.clientSecret)]);
    await fault({ fault: "server-error", times: 1 });
    answers.push(["500", await account(sb.clientSecret)]);
    await fault({ fault: "bad-request", times: 1 });
    answers.push(["400", await account(sb.clientSecret)]);
    for (const [name, a] of answers) expect(a.headers.get("request-id"), name).toMatch(/^req_[A-Za-z0-9]+$/);
    expect(answers.map(([, a]) => a.status)).toEqual([200, 401, 401, 403, 404, 401, 400, 200, 429, 500, 400]);
  });

  it("an unknown path is a 404 invalid_request_error naming it", async () => {
    const res = await call(`${sb.url}/v1/widgets`, { headers: bearer(sb.clientSecret) });
    expect(res.status).toBe(404);
    expect(apiErr(res).type).toBe("invalid_request_error");
    expect(apiErr(res).message).toContain("GET: /v1/widgets");
  });

  describe("idempotency", () => {
    it("same key and parameters replay the first answer with Idempotent-Replayed: true", async () => {
      const code = await newCode();
      const key = randomUUID();
      const headers = { ...bearer(sb.clientSecret), "idempotency-key": key };
      const first = await token({ grant_type: "authorization_code", code }, headers);
      expect(first.status).toBe(200);
      expect(first.headers.get("idempotent-replayed")).toBeNull();
      expect(first.headers.get("idempotency-key")).toBe(key);

      const replay = await token({ grant_type: "authorization_code", code }, headers);
      expect(replay.status).toBe(200);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      expect(replay.text).toBe(first.text);
      // A replay does not run the exchange again, so the code was not "reused" and the token lives.
      expect((await account(first.body.access_token as string)).status).toBe(200);
    });

    it("the same key with other parameters is a 400 idempotency_error", async () => {
      const key = randomUUID();
      const headers = { ...bearer(sb.clientSecret), "idempotency-key": key };
      expect((await token({ grant_type: "authorization_code", code: await newCode() }, headers)).status).toBe(200);
      const other = await token({ grant_type: "authorization_code", code: await newCode() }, headers);
      expect(other.status).toBe(400);
      expect(apiErr(other).type).toBe("idempotency_error");
      expect(apiErr(other).message).toContain(key);
      expect(classifyStripe({ status: other.status, headers: other.headers, text: other.text, json: other.body }, op)?.type).toBe("schema");
    });

    it("a stored error is replayed too", async () => {
      const key = randomUUID();
      const headers = { ...bearer(sb.clientSecret), "idempotency-key": key };
      const first = await token({ grant_type: "authorization_code", code: "ac_unknown" }, headers);
      expect(first.status).toBe(400);
      const replay = await token({ grant_type: "authorization_code", code: "ac_unknown" }, headers);
      expect(replay.status).toBe(400);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
    });

    it("a 401 is not stored for replay", async () => {
      const key = randomUUID();
      const headers = { ...bearer("sk_test_51NotThePlatformKey"), "idempotency-key": key };
      const first = await token({ grant_type: "authorization_code", code: "ac_1" }, headers);
      expect(first.status).toBe(401);
      const again = await token({ grant_type: "authorization_code", code: "ac_1" }, headers);
      expect(again.status).toBe(401);
      expect(again.headers.get("idempotent-replayed")).toBeNull();
      // Nothing stored, so other parameters under the same key are no idempotency_error either.
      const other = await token({ grant_type: "authorization_code", code: "ac_2" }, headers);
      expect(other.status).toBe(401);
      expect(oauthError(other).error).toBe("invalid_client");
    });

    it("a 429 is not stored: the retry with the same key runs", async () => {
      const code = await newCode();
      const headers = { ...bearer(sb.clientSecret), "idempotency-key": randomUUID() };
      await fault({ fault: "rate-limit", times: 1 });
      expect((await token({ grant_type: "authorization_code", code }, headers)).status).toBe(429);
      const retry = await token({ grant_type: "authorization_code", code }, headers);
      expect(retry.status).toBe(200);
      expect(retry.headers.get("idempotent-replayed")).toBeNull();
    });

    it("keys are scoped to the API key that sent them", async () => {
      const key = randomUUID();
      const code = await newCode();
      expect((await token({ grant_type: "authorization_code", code }, { ...bearer(sb.clientSecret), "idempotency-key": key })).status).toBe(200);
      const otherCaller = await token({ grant_type: "authorization_code", code }, { ...bearer("sk_test_51SomeoneElse"), "idempotency-key": key });
      expect(otherCaller.status).toBe(401);
      expect(otherCaller.headers.get("idempotent-replayed")).toBeNull();
    });
  });

  describe("faults", () => {
    it("rate-limit: 429 code rate_limit, type invalid_request_error, no Retry-After", async () => {
      await fault({ fault: "rate-limit", times: 1 });
      const res = await account(sb.clientSecret);
      expect(res.status).toBe(429);
      expect(apiErr(res).code).toBe("rate_limit");
      expect(apiErr(res).type).toBe("invalid_request_error");
      expect(res.headers.get("retry-after")).toBeNull();
      expect(res.headers.get("stripe-rate-limited-reason")).toBeTruthy();
      const verdict = classifyStripe({ status: res.status, headers: res.headers, text: res.text, json: res.body }, op);
      expect(verdict?.type).toBe("rate-limit");
      expect((await account(sb.clientSecret)).status).toBe(200);
    });

    it("rate-limit with retryAfterSeconds adds Retry-After", async () => {
      await fault({ fault: "rate-limit", times: 1, retryAfterSeconds: 3 });
      const res = await account(sb.clientSecret);
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("3");
    });

    it("server-error: 500 api_error, with Stripe-Should-Retry: false only on a POST", async () => {
      await fault({ fault: "server-error", times: 2 });
      const get = await account(sb.clientSecret);
      expect(get.status).toBe(500);
      expect(apiErr(get).type).toBe("api_error");
      expect(get.headers.get("stripe-should-retry")).toBeNull();
      expect(classifyStripe({ status: get.status, headers: get.headers, text: get.text, json: get.body }, op)).toMatchObject({ type: "upstream", code: "api_error" });

      const post = await token({ grant_type: "authorization_code", code: "ac_x" });
      expect(post.status).toBe(500);
      expect(apiErr(post).type).toBe("api_error");
      expect(post.headers.get("stripe-should-retry")).toBe("false");
      expect(classifyStripe({ status: post.status, headers: post.headers, text: post.text, json: post.body }, op)).toMatchObject({ type: "upstream", providerRetryHint: false });
    });

    it("bad-request: a 400 invalid_request_error that classifies as schema", async () => {
      await fault({ fault: "bad-request", times: 1 });
      const res = await account(sb.clientSecret);
      expect(res.status).toBe(400);
      expect(apiErr(res).type).toBe("invalid_request_error");
      expect(classifyStripe({ status: res.status, headers: res.headers, text: res.text, json: res.body }, op)?.type).toBe("schema");
    });

    it("faults never touch the consent page", async () => {
      await fault({ fault: "server-error" });
      expect((await approve()).status).toBe(302);
    });

    it("revoke-all kills issued keys and tokens but not the platform key", async () => {
      const local = await startStripeSandbox({ redirectUris: [REDIRECT] });
      try {
        const issued = await fetch(`${local.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
        const { apiKey } = (await issued.json()) as { apiKey: string };
        expect((await call(`${local.url}/v1/account`, { headers: bearer(apiKey) })).status).toBe(200);
        await fetch(`${local.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "revoke-all" }) });
        const after = await call(`${local.url}/v1/account`, { headers: bearer(apiKey) });
        expect(after.status).toBe(401);
        expect(apiErr(after).code).toBe("api_key_expired");
        expect(after.text).not.toContain(apiKey);
        expect((await call(`${local.url}/v1/account`, { headers: bearer(local.clientSecret) })).status).toBe(200);
      } finally {
        await local.close();
      }
    });
  });
});
