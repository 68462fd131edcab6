/**
 * Linear's quirks: errors in the GraphQL body whatever the status, reset
 * headers in epoch milliseconds, bare API keys beside Bearer OAuth tokens,
 * comma-separated scopes and array scopes, rotating refresh tokens, and the
 * sandbox's fidelity to the wire (including its GraphQL subset). The
 * lifecycle itself is proven by the contract suite.
 */
import { identify } from "../shared/call.js";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { ConnectorContext, ConnectorSettings } from "../shared/connector.js";
import { IntegrationError } from "../shared/errors.js";
import { ProviderHttp, type Clock, type ProviderResponse } from "../shared/http.js";
import { linearRetryPolicy } from "./retryPolicy.js";
import { challengeOf } from "../../sandbox/kit.js";
import type { ConnectionRecord } from "../shared/vault.js";
import {
  classifyLinear,
  linearAuthorization,
  linearConnector,
  linearGrant,
  linearRetryAfterSeconds,
  normaliseTokenAnswer,
  parseLinearKey,
  parseLinearScopes,
  REVOKE_OPERATION,
  WHO_AM_I_QUERY,
} from "./connector.js";
import { startLinearSandbox, type LinearSandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;
const REDIRECT_URI = "http://localhost:3000/api/integrations/linear/oauth/callback";
const OP = { operation: "POST /graphql (AutoFlowWhoAmI)" };
const VERIFIER = "a".repeat(20) + "B".repeat(23);

const response = (status: number, json: unknown, headers: Record<string, string> = {}): ProviderResponse => ({
  status,
  headers: new Headers(headers),
  text: json === undefined ? "<html>error</html>" : JSON.stringify(json),
  json,
});
const classify = (status: number, json: unknown, headers?: Record<string, string>, operation = OP.operation) => classifyLinear(response(status, json, headers), { operation });
const gqlError = (extensions: Json, message = "failed") => ({ errors: [{ message, extensions }] });

/** Captured live (providers.md §1.4): no token and a bad token answer the same. */
const AUTH_BODY = {
  errors: [
    {
      message: "Authentication required, not authenticated",
      extensions: { type: "authentication error", code: "AUTHENTICATION_ERROR", statusCode: 401, userError: true, userPresentableMessage: "You need to authenticate to access this operation.", meta: {}, http: { status: 401 } },
    },
  ],
};
const VALIDATION_BODY = {
  errors: [{ message: 'Cannot query field "nosuchfield" on type "Issue".', locations: [{ line: 1, column: 16 }], extensions: { http: { status: 400, headers: {} }, code: "GRAPHQL_VALIDATION_FAILED", type: "graphql error", userError: true } }],
};

describe("classifyLinear", () => {
  it.each([
    ["the captured 401", 401, AUTH_BODY, "auth", "AUTHENTICATION_ERROR"],
    ["an auth error under 400 (linear/linear#471)", 400, AUTH_BODY, "auth", "AUTHENTICATION_ERROR"],
    ["an auth error under 200", 200, AUTH_BODY, "auth", "AUTHENTICATION_ERROR"],
    ["RATELIMITED under 200 (rate-limiting.md)", 200, { ...gqlError({ code: "RATELIMITED" }), data: null }, "rate-limit", "RATELIMITED"],
    ["RATELIMITED under 400 with statusCode 429 (observed)", 400, gqlError({ type: "ratelimited", code: "RATELIMITED", statusCode: 429, userError: true }), "rate-limit", "RATELIMITED"],
    ["type ratelimited without a code", 200, gqlError({ type: "ratelimited" }), "rate-limit", "RATELIMITED"],
    ["a bare 429", 429, undefined, "rate-limit", "RATELIMITED"],
    ["FORBIDDEN", 403, gqlError({ code: "FORBIDDEN", type: "forbidden", statusCode: 403 }), "auth", "FORBIDDEN"],
    ["type forbidden without a code", 200, gqlError({ type: "forbidden" }), "auth", "FORBIDDEN"],
    ["a feature gate", 200, gqlError({ type: "feature not accessible" }), "auth", "FEATURE_NOT_ACCESSIBLE"],
    ["the captured validation error", 400, VALIDATION_BODY, "schema", "GRAPHQL_VALIDATION_FAILED"],
    ["a syntax error (reported with the validation code)", 400, gqlError({ code: "GRAPHQL_VALIDATION_FAILED", type: "graphql error" }, "Syntax Error: Unterminated string."), "schema", "GRAPHQL_VALIDATION_FAILED"],
    ["INPUT_ERROR (entity not found)", 400, gqlError({ type: "invalid input", code: "INPUT_ERROR", statusCode: 400, userError: true }), "schema", "INPUT_ERROR"],
    ["INVALID_INPUT", 200, gqlError({ code: "INVALID_INPUT" }), "schema", "INVALID_INPUT"],
    ["BAD_USER_INPUT", 400, gqlError({ code: "BAD_USER_INPUT" }), "schema", "BAD_USER_INPUT"],
    ["a plan quota", 200, gqlError({ type: "usage limit exceeded" }), "schema", "USAGE_LIMIT_EXCEEDED"],
    ["INTERNAL_SERVER_ERROR under 200", 200, gqlError({ code: "INTERNAL_SERVER_ERROR", type: "internal error" }), "upstream", "INTERNAL_SERVER_ERROR"],
    ["a lock timeout", 200, gqlError({ type: "lock timeout" }), "upstream", "LOCK_TIMEOUT"],
    ["an unknown error Linear does not blame on the user", 200, gqlError({ type: "unknown" }), "upstream", "UNKNOWN"],
    ["an unknown user error", 200, gqlError({ type: "other", userError: true }), "schema", "OTHER"],
    ["an unknown error under 400", 400, gqlError({}), "schema", "http_400"],
    ["an HTML 502", 502, undefined, "upstream", "http_502"],
    ["a JSON 500 without errors", 500, { message: "oops" }, "upstream", "http_500"],
    ["an HTML 401", 401, undefined, "auth", "http_401"],
    ["an unknown 404", 404, undefined, "schema", "http_404"],
  ])("%s is %s (%s)", (_name, status, body, type, code) => {
    expect(classify(status, body)).toMatchObject({ type, code });
  });

  it.each([
    [{ error: "invalid_grant", error_description: "The refresh token is invalid, expired or revoked" }, 400, "auth"],
    [{ error: "invalid_client", error_description: "Client authentication failed" }, 401, "auth"],
    [{ error: "invalid_request", error_description: "grant_type is required" }, 400, "schema"],
    // The documented refusal of a grant the app has not turned on: not an RFC 6749 code.
    [{ error: "Error", error_description: "Client does not support the client_credentials grant type" }, 400, "schema"],
  ])("reads the token endpoint's %j (HTTP %i) as %s", (body, status, type) => {
    expect(classify(status, body, {}, "token (refresh_token)")).toMatchObject({ type, code: body.error });
  });

  it("answers null for data without errors", () => {
    expect(classify(200, { data: { viewer: { id: "u" }, organization: { id: "o" } } })).toBeNull();
  });

  it("treats a partial result (data beside errors) as the error it carries", () => {
    const partial = { data: { viewer: { id: "u" }, organization: null }, errors: [{ message: "boom", path: ["organization"], extensions: { code: "INTERNAL_SERVER_ERROR" } }] };
    expect(classify(200, partial)).toMatchObject({ type: "upstream", code: "INTERNAL_SERVER_ERROR" });
  });

  it("puts a throttle before any other error of the same answer", () => {
    const body = { errors: [...VALIDATION_BODY.errors, ...gqlError({ code: "RATELIMITED" }).errors] };
    const verdict = classify(400, body);
    expect(verdict).toMatchObject({ type: "rate-limit" });
  });

  it("quotes Linear's userPresentableMessage and counts the other errors", () => {
    expect(classify(401, AUTH_BODY)?.message).toContain("You need to authenticate to access this operation.");
    const two = { errors: [{ message: "a", extensions: { code: "FORBIDDEN" } }, { message: "b", extensions: { code: "FORBIDDEN" } }] };
    expect(classify(200, two)?.message).toMatch(/may not do this.*and 1 more error/);
  });

  it("reads a 400 or 401 from the revoke endpoint as nothing left to revoke (auth), a 5xx as upstream", () => {
    expect(classify(400, { success: false, error: "Token has already been revoked" }, {}, REVOKE_OPERATION)).toMatchObject({ type: "auth", code: "token_not_revocable" });
    expect(classify(401, undefined, {}, REVOKE_OPERATION)).toMatchObject({ type: "auth", code: "invalid_token" });
    expect(classify(503, undefined, {}, REVOKE_OPERATION)).toMatchObject({ type: "upstream" });
  });

  it("says whether an auth error is the token itself (refresh may cure it) or a permission", () => {
    const verdict = classify(400, AUTH_BODY) as { code: string };
    expect(linearConnector.isTokenRejection?.(new IntegrationError({ type: "auth", status: 400, code: verdict.code, message: "x" }))).toBe(true);
    expect(linearConnector.isTokenRejection?.(new IntegrationError({ type: "auth", status: 403, code: "FORBIDDEN", message: "x" }))).toBe(false);
    expect(linearConnector.isTokenRejection?.(new IntegrationError({ type: "auth", status: 200, code: "FEATURE_NOT_ACCESSIBLE", message: "x" }))).toBe(false);
  });
});

describe("rate-limit reset headers (epoch milliseconds)", () => {
  const now = 1_780_000_000_000;
  const headers = (h: Record<string, string>) => new Headers(h);

  it("waits until the spent request limit resets, rounded up to whole seconds", () => {
    expect(linearRetryAfterSeconds(headers({ "x-ratelimit-requests-remaining": "0", "x-ratelimit-requests-reset": String(now + 2_500) }), now)).toBe(3);
  });

  it("waits for the latest of the spent limits", () => {
    const h = headers({
      "x-ratelimit-requests-remaining": "0",
      "x-ratelimit-requests-reset": String(now + 2_000),
      "x-ratelimit-complexity-remaining": "0",
      "x-ratelimit-complexity-reset": String(now + 9_000),
      "x-ratelimit-endpoint-requests-remaining": "5",
      "x-ratelimit-endpoint-requests-reset": String(now + 60_000),
    });
    expect(linearRetryAfterSeconds(h, now)).toBe(9);
  });

  it("reads a per-endpoint limit when it is the spent one", () => {
    const h = headers({
      "x-ratelimit-requests-remaining": "900",
      "x-ratelimit-requests-reset": String(now + 1_000),
      "x-ratelimit-endpoint-name": "issueCreate",
      "x-ratelimit-endpoint-requests-remaining": "0",
      "x-ratelimit-endpoint-requests-reset": String(now + 4_000),
    });
    expect(linearRetryAfterSeconds(h, now)).toBe(4);
  });

  it("falls back on the request limit's reset when no limit says it is spent", () => {
    expect(linearRetryAfterSeconds(headers({ "x-ratelimit-requests-reset": String(now + 7_000) }), now)).toBe(7);
  });

  it("accepts a reset in epoch seconds", () => {
    expect(linearRetryAfterSeconds(headers({ "x-ratelimit-requests-remaining": "0", "x-ratelimit-requests-reset": String(now / 1000 + 5) }), now)).toBe(5);
  });

  it("has no wait for a reset in the past or an unparsable one, and defers to Retry-After", () => {
    expect(linearRetryAfterSeconds(headers({ "x-ratelimit-requests-remaining": "0", "x-ratelimit-requests-reset": String(now - 1) }), now)).toBeUndefined();
    expect(linearRetryAfterSeconds(headers({ "x-ratelimit-requests-reset": "soon" }), now)).toBeUndefined();
    expect(linearRetryAfterSeconds(headers({ "retry-after": "2", "x-ratelimit-requests-remaining": "0", "x-ratelimit-requests-reset": String(now + 60_000) }), now)).toBeUndefined();
  });

  it("puts the wait on the rate-limit verdict (the shared Retry-After parser does not know these headers)", () => {
    const verdict = classify(400, gqlError({ code: "RATELIMITED" }), { "x-ratelimit-requests-remaining": "0", "x-ratelimit-requests-reset": String(Date.now() + 30_000) });
    expect(verdict?.retryAfterSeconds).toBeGreaterThanOrEqual(29);
    expect(verdict?.retryAfterSeconds).toBeLessThanOrEqual(30);
    expect(verdict?.message).toMatch(/requests limit spent/);
  });
});

describe("token answers", () => {
  it.each([
    ["read write", ["read", "write"]],
    ["read,write", ["read", "write"]],
    [["read", "issues:create"], ["read", "issues:create"]],
    [undefined, undefined],
  ])("reads scope %j", (value, scopes) => {
    expect(parseLinearScopes(value)).toEqual(scopes);
  });

  it("joins a legacy array scope so the standard validation accepts the answer", () => {
    const legacy = { access_token: "t", token_type: "Bearer", scope: ["read", "write"] };
    expect(normaliseTokenAnswer(legacy).scope).toBe("read write");
    const modern = { access_token: "t", token_type: "Bearer", scope: "read" };
    expect(normaliseTokenAnswer(modern)).toBe(modern);
  });

  it("keeps the refresh token and lifetime, and reads commas in scope", () => {
    const grant = linearGrant({ accessToken: "a", refreshToken: "r", expiresInSeconds: 86_399, scopes: ["read,write"], metadata: {}, body: { access_token: "a", token_type: "bearer", scope: "read,write" } });
    expect(grant).toEqual({ accessToken: "a", refreshToken: "r", expiresInSeconds: 86_399, scopes: ["read", "write"], metadata: {} });
  });
});

describe("parseLinearKey and the Authorization header", () => {
  const key = `lin_api_${"aB3".repeat(13)}x`;

  it("accepts a personal API key as apiKey or accessToken, and sends it without Bearer", () => {
    expect(parseLinearKey({ apiKey: key })).toEqual({ token: key, authMethod: "api_key" });
    expect(parseLinearKey({ accessToken: key })).toEqual({ token: key, authMethod: "api_key" });
    expect(linearAuthorization(key, "api_key")).toBe(key);
    expect(linearAuthorization("lin_oauth_abc", "oauth2")).toBe("Bearer lin_oauth_abc");
  });

  it.each([
    [{ apiKey: `lin_oauth_${"a".repeat(64)}` }, "apiKey", /OAuth access token.*24 hours/],
    [{ accessToken: "lin_api_short" }, "accessToken", /not a whole Linear personal API key/],
    [{ apiKey: "0123456789abcdef0123456789abcdef" }, "apiKey", /lin_api_ followed by 40/],
    [{}, "apiKey", /required/],
    [{ apiKey: key, accessToken: key }, "apiKey", /not both/],
  ])("refuses %j naming %s", (input, field, message) => {
    let error: unknown;
    try {
      parseLinearKey(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IntegrationError);
    expect(error).toMatchObject({ type: "schema", field });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.startsWith(field)).toBe(true);
  });
});

describe("authorization URL", () => {
  const settings = (options: Record<string, string>, scopes = ["read", "write"]): ConnectorSettings => ({
    mode: "live",
    options,
    clientId: "cid",
    clientSecret: "secret",
    endpoints: linearConnector.liveEndpoints as ConnectorSettings["endpoints"],
    redirectUri: REDIRECT_URI,
    scopes,
  });

  it("asks for a code with comma-separated scopes and the consent screen, and names the actor only when it is the app", () => {
    expect(linearConnector.authorizationParams(settings({ ACTOR: "user" }))).toEqual({
      client_id: "cid",
      redirect_uri: REDIRECT_URI,
      response_type: "code",
      scope: "read,write",
      prompt: "consent",
    });
    expect(linearConnector.authorizationParams(settings({ ACTOR: "app" })).actor).toBe("app");
    expect(linearConnector.options?.ACTOR?.pattern.test("app")).toBe(true);
    expect(linearConnector.options?.ACTOR?.pattern.test("admin")).toBe(false);
  });
});

/** A sandbox plus raw HTTP helpers speaking Linear's wire. */
async function withSandbox(options: LinearSandboxOptions = {}) {
  const sandbox = await startLinearSandbox({ redirectUris: [REDIRECT_URI], ...options });
  const url = (path: string) => `${sandbox.url}${path}`;
  const form = (path: string, params: Record<string, string | undefined>, headers: Record<string, string> = {}) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) body.set(k, v);
    return fetch(url(path), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body });
  };
  const client = { client_id: sandbox.clientId, client_secret: sandbox.clientSecret };
  const consent = (params: Record<string, string | undefined> = {}): Promise<Response> => {
    const authUrl = new URL(url("/oauth/authorize"));
    const all = { client_id: sandbox.clientId, redirect_uri: REDIRECT_URI, response_type: "code", scope: "read,write", state: "st", code_challenge: challengeOf(VERIFIER), code_challenge_method: "S256", ...params };
    for (const [k, v] of Object.entries(all)) if (v !== undefined) authUrl.searchParams.set(k, v);
    return fetch(authUrl, { redirect: "manual" });
  };
  const codeFrom = async (params: Record<string, string | undefined> = {}): Promise<string> => {
    const res = await consent(params);
    expect(res.status).toBe(302);
    return new URL(res.headers.get("location") as string).searchParams.get("code") as string;
  };
  const exchange = (code: string, extra: Record<string, string | undefined> = {}) =>
    form("/oauth/token", { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: VERIFIER, ...client, ...extra });
  const tokensFor = async (params: Record<string, string | undefined> = {}): Promise<Json> => (await (await exchange(await codeFrom(params))).json()) as Json;
  const refresh = (refreshToken: string, extra: Record<string, string | undefined> = {}) => form("/oauth/token", { grant_type: "refresh_token", refresh_token: refreshToken, ...client, ...extra });
  const graphql = (authorization: string | undefined, body: unknown = { query: WHO_AM_I_QUERY }) =>
    fetch(url("/graphql"), { method: "POST", headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) }, body: JSON.stringify(body) });
  const apiKey = async (): Promise<string> =>
    ((await (await fetch(url("/_sandbox/credentials"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Json).apiKey as string;
  const fault = (body: Json) => fetch(url("/_sandbox/faults"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { sandbox, url, form, client, consent, codeFrom, exchange, tokensFor, refresh, graphql, apiKey, fault };
}
type Sandboxed = Awaited<ReturnType<typeof withSandbox>>;
const errorsOf = async (res: Response) => ((await res.json()) as { errors: { message: string; locations?: unknown; extensions: Json }[] }).errors;

describe("sandbox: consent page", () => {
  let s: Sandboxed;
  beforeAll(async () => {
    s = await withSandbox();
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("redirects with a 40-hex code and the state, at linear.app's path", async () => {
    const location = new URL((await s.consent()).headers.get("location") as string);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get("code")).toMatch(/^[0-9a-f]{40}$/);
    expect(location.searchParams.get("state")).toBe("st");
  });

  it.each([
    [{ _sandbox_decision: "deny" }, "access_denied"],
    [{ response_type: undefined }, "unsupported_response_type"],
    // RFC 6749's space separator makes one unknown scope at Linear.
    [{ scope: "read write" }, "invalid_scope"],
    [{ scope: "read,delete" }, "invalid_scope"],
    [{ scope: "read,app:assignable" }, "invalid_scope"],
    [{ actor: "bot" }, "invalid_request"],
    [{ code_challenge_method: "S512" }, "invalid_request"],
  ])("redirects %j back with error=%s and the state", async (params, error) => {
    const res = await s.consent(params);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get("location") as string);
    expect(location.searchParams.get("error")).toBe(error);
    expect(location.searchParams.has("code")).toBe(false);
    expect(location.searchParams.get("state")).toBe("st");
  });

  it.each([[{ client_id: "f".repeat(32) }, /client_id/], [{ redirect_uri: "https://attacker.example/cb" }, /redirect_uri/]])(
    "shows an error page, never a redirect, for %j",
    async (params, message) => {
      const res = await s.consent(params);
      expect(res.status).toBe(400);
      expect(res.headers.get("location")).toBeNull();
      expect(res.headers.get("content-type")).toMatch(/text\/html/);
      expect(await res.text()).toMatch(message);
    },
  );

  it("grants app scopes to an app actor, and always read", async () => {
    const body = await s.tokensFor({ scope: "app:assignable,app:mentionable", actor: "app" });
    expect(body.scope).toBe("read app:assignable app:mentionable");
  });
});

describe("sandbox: token endpoint", () => {
  let s: Sandboxed;
  beforeAll(async () => {
    s = await withSandbox();
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("answers a code exchange as Linear does: Bearer, 86399 s, space-separated scope, a refresh token", async () => {
    const res = await s.exchange(await s.codeFrom());
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as Json;
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in", "refresh_token", "scope", "token_type"]);
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 86_399, scope: "read write" });
    expect(body.access_token).toMatch(/^lin_oauth_[0-9a-f]{64}$/);
    expect(body.refresh_token).toMatch(/^[a-z0-9]{64}$/);
  });

  it.each([
    ["a wrong verifier", { code_verifier: "z".repeat(43) }, 400, "invalid_grant"],
    ["no verifier", { code_verifier: undefined }, 400, "invalid_request"],
    ["another redirect_uri", { redirect_uri: "http://localhost:3000/other" }, 400, "invalid_grant"],
    ["a wrong secret", { client_secret: "0".repeat(32) }, 400, "invalid_client"],
    ["an unknown client", { client_id: "0".repeat(32) }, 400, "invalid_client"],
  ])("refuses %s", async (_what, extra, status, error) => {
    const res = await s.exchange(await s.codeFrom(), extra);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error, error_description: expect.any(String) });
  });

  it("takes the client from HTTP Basic, answering a wrong secret there with 401", async () => {
    const basic = (secret: string) => `Basic ${Buffer.from(`${s.sandbox.clientId}:${secret}`).toString("base64")}`;
    const ok = await s.form("/oauth/token", { grant_type: "authorization_code", code: await s.codeFrom(), redirect_uri: REDIRECT_URI, code_verifier: VERIFIER }, { authorization: basic(s.sandbox.clientSecret) });
    expect(ok.status).toBe(200);
    const bad = await s.form("/oauth/token", { grant_type: "authorization_code", code: await s.codeFrom(), redirect_uri: REDIRECT_URI, code_verifier: VERIFIER }, { authorization: basic("nope") });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: "invalid_client" });
  });

  it("makes client_secret optional under PKCE only", async () => {
    expect((await s.exchange(await s.codeFrom(), { client_secret: undefined })).status).toBe(200);
    const plainCode = await s.codeFrom({ code_challenge: undefined, code_challenge_method: undefined });
    const res = await s.exchange(plainCode, { client_secret: undefined, code_verifier: undefined });
    expect(await res.json()).toMatchObject({ error: "invalid_client" });
  });

  it("accepts the plain PKCE method Linear also offers", async () => {
    const code = await s.codeFrom({ code_challenge: VERIFIER, code_challenge_method: "plain" });
    expect((await s.exchange(code)).status).toBe(200);
  });

  it("refuses a replayed code and revokes what the code minted", async () => {
    const code = await s.codeFrom();
    const first = (await (await s.exchange(code)).json()) as Json;
    expect((await s.graphql(`Bearer ${first.access_token as string}`)).status).toBe(200);
    const replay = await s.exchange(code);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: "invalid_grant" });
    expect((await s.graphql(`Bearer ${first.access_token as string}`)).status).toBe(401);
    expect(await (await s.refresh(first.refresh_token as string)).json()).toMatchObject({ error: "invalid_grant" });
  });

  it("refuses JSON bodies and the client_credentials grant as Linear documents", async () => {
    const json = await fetch(s.url("/oauth/token"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "refresh_token" }) });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: "invalid_request" });
    const cc = await s.form("/oauth/token", { grant_type: "client_credentials", scope: "read", ...s.client });
    expect(await cc.json()).toEqual({ error: "Error", error_description: "Client does not support the client_credentials grant type" });
  });

  it("rotates refresh tokens: a new pair each time, and the used refresh token is refused", async () => {
    const first = await s.tokensFor();
    const res = await s.refresh(first.refresh_token as string);
    expect(res.status).toBe(200);
    const second = (await res.json()) as Json;
    expect(second).toMatchObject({ token_type: "Bearer", expires_in: 86_399, scope: "read write" });
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    const reuse = await s.refresh(first.refresh_token as string);
    expect(reuse.status).toBe(400);
    expect(await reuse.json()).toMatchObject({ error: "invalid_grant" });
    expect((await s.refresh(second.refresh_token as string)).status).toBe(200);
  });

  it("refreshes a PKCE grant with the client_id alone, but not a confidential one", async () => {
    const pkce = await s.tokensFor();
    expect((await s.refresh(pkce.refresh_token as string, { client_secret: undefined })).status).toBe(200);
    const code = await s.codeFrom({ code_challenge: undefined, code_challenge_method: undefined });
    const confidential = (await (await s.exchange(code, { code_verifier: undefined })).json()) as Json;
    expect(await (await s.refresh(confidential.refresh_token as string, { client_secret: undefined })).json()).toMatchObject({ error: "invalid_client" });
  });
});

describe("sandbox: options", () => {
  it("keeps a used refresh token working during refreshTokenGraceSeconds", async () => {
    const s = await withSandbox({ refreshTokenGraceSeconds: 60 });
    try {
      const first = await s.tokensFor();
      expect((await s.refresh(first.refresh_token as string)).status).toBe(200);
      expect((await s.refresh(first.refresh_token as string)).status).toBe(200);
    } finally {
      await s.sandbox.close();
    }
  });

  it("answers scope as an array for a legacy app, and the connector reads it", async () => {
    const s = await withSandbox({ legacyScopeArray: true });
    try {
      const body = await s.tokensFor();
      expect(body.scope).toEqual(["read", "write"]);
      const ctx = contextFor(s, []);
      const grant = await linearConnector.exchangeCode(ctx, { code: await s.codeFrom({ redirect_uri: REDIRECT_URI }), codeVerifier: VERIFIER });
      expect(grant.scopes).toEqual(["read", "write"]);
    } finally {
      await s.sandbox.close();
    }
  });

  it("expires access tokens after accessTokenTtlSeconds", async () => {
    const s = await withSandbox({ accessTokenTtlSeconds: 600 });
    try {
      const body = await s.tokensFor();
      expect(body.expires_in).toBe(599);
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(Date.now() + 599_000);
      expect((await s.graphql(`Bearer ${body.access_token as string}`)).status).toBe(200);
      vi.setSystemTime(Date.now() + 2_000);
      const expired = await s.graphql(`Bearer ${body.access_token as string}`);
      expect(expired.status).toBe(401);
      expect((await errorsOf(expired))[0]?.extensions.code).toBe("AUTHENTICATION_ERROR");
      // The refresh token outlives it.
      expect((await s.refresh(body.refresh_token as string)).status).toBe(200);
    } finally {
      vi.useRealTimers();
      await s.sandbox.close();
    }
  });

  it("answers RATELIMITED with the status it is told to", async () => {
    const s = await withSandbox({ rateLimitStatus: 200 });
    try {
      await s.fault({ fault: "rate-limit", times: 1 });
      const res = await s.graphql(await s.apiKey());
      expect(res.status).toBe(200);
      expect((await errorsOf(res))[0]?.extensions.code).toBe("RATELIMITED");
    } finally {
      await s.sandbox.close();
    }
  });
});

describe("sandbox: revoke", () => {
  let s: Sandboxed;
  beforeAll(async () => {
    s = await withSandbox();
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("revokes the whole grant given the refresh token, then says it is already revoked", async () => {
    const body = await s.tokensFor();
    const res = await s.form("/oauth/revoke", { refresh_token: body.refresh_token as string });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect((await s.graphql(`Bearer ${body.access_token as string}`)).status).toBe(401);
    expect((await s.form("/oauth/revoke", { refresh_token: body.refresh_token as string })).status).toBe(400);
    expect((await s.form("/oauth/revoke", {}, { authorization: `Bearer ${body.access_token as string}` })).status).toBe(400);
  });

  it("revokes given the access token as Bearer or as access_token; 401 for a token it cannot authenticate with", async () => {
    const a = await s.tokensFor();
    expect((await s.form("/oauth/revoke", {}, { authorization: `Bearer ${a.access_token as string}` })).status).toBe(200);
    expect(await (await s.refresh(a.refresh_token as string)).json()).toMatchObject({ error: "invalid_grant" });
    const b = await s.tokensFor();
    expect((await s.form("/oauth/revoke", { access_token: b.access_token as string })).status).toBe(200);
    expect((await s.form("/oauth/revoke", {}, { authorization: `Bearer lin_oauth_${"0".repeat(64)}` })).status).toBe(401);
  });
});

describe("sandbox: GraphQL", () => {
  let s: Sandboxed;
  beforeAll(async () => {
    s = await withSandbox();
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("answers the who-am-I for a bare API key, with Linear's rate-limit headers in epoch milliseconds", async () => {
    const key = await s.apiKey();
    const before = Date.now();
    const res = await s.graphql(key);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { viewer: Json; organization: Json } };
    expect(Object.keys(body.data)).toEqual(["viewer", "organization"]);
    expect(Object.keys(body.data.viewer)).toEqual(["id", "name", "email"]);
    expect(body.data.organization).toMatchObject({ name: "AutoFlow Sandbox", urlKey: "autoflow-sandbox" });
    expect(res.headers.get("x-ratelimit-requests-limit")).toBe("1500");
    expect(res.headers.get("x-ratelimit-complexity-limit")).toBe("250000");
    // Two objects (1 point each) and six properties (0.1 each), rounded up.
    expect(res.headers.get("x-complexity")).toBe("3");
    const reset = Number(res.headers.get("x-ratelimit-requests-reset"));
    expect(reset).toBeGreaterThan(before);
    expect(reset).toBeLessThan(before + 3_600_000 + 60_000);
    const remaining = Number(res.headers.get("x-ratelimit-requests-remaining"));
    const next = await s.graphql(key);
    expect(Number(next.headers.get("x-ratelimit-requests-remaining"))).toBe(remaining - 1);
    expect(Number(next.headers.get("x-ratelimit-complexity-remaining"))).toBeLessThan(250_000);
  });

  it("hands out a key of a new workspace member when asked: that member is the viewer, with a quota of its own", async () => {
    const desk = async (body: Json) => (await (await fetch(s.url("/_sandbox/credentials"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json()) as Json;
    const ownerKey = await s.apiKey();
    const member = await desk({ member: true });
    const other = await desk({ member: true });
    const viewerOf = async (key: string) => ((await (await s.graphql(key)).json()) as { data: { viewer: Json } }).data.viewer;
    const owner = await viewerOf(ownerKey);
    expect(await viewerOf(member.apiKey as string)).toMatchObject({ id: member.viewerId, email: expect.stringMatching(/^member\d+@/) as unknown });
    expect(member.viewerId).not.toBe(owner.id);
    expect(other.viewerId).not.toBe(member.viewerId);
    // Every key of one user shares its quota; another user's keys count apart.
    const remaining = async (key: string) => Number((await s.graphql(key)).headers.get("x-ratelimit-requests-remaining"));
    await s.graphql(ownerKey);
    const ownerLeft = await remaining(ownerKey);
    expect(await remaining(other.apiKey as string)).toBeGreaterThan(ownerLeft);
    expect(await remaining(await s.apiKey())).toBe(ownerLeft - 1);
  });

  it("refuses an API key sent as Bearer and an OAuth token sent bare, with the captured 401 body", async () => {
    const key = await s.apiKey();
    const oauth = (await s.tokensFor()).access_token as string;
    for (const authorization of [`Bearer ${key}`, oauth, undefined]) {
      const res = await s.graphql(authorization);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual(AUTH_BODY);
    }
    const ok = await s.graphql(`Bearer ${oauth}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-ratelimit-requests-limit")).toBe("1200");
  });

  it("answers an app-actor token as the app user", async () => {
    const token = (await s.tokensFor({ actor: "app" })).access_token as string;
    const body = (await (await s.graphql(`Bearer ${token}`, { query: "{ viewer { name app } }" })).json()) as { data: { viewer: Json } };
    expect(body.data.viewer).toEqual({ name: "AutoFlow", app: true });
  });

  it("reads aliases, fragments, __typename, directives, variables and operation names", async () => {
    const key = await s.apiKey();
    const query = `
      query Other { viewer { id } }
      query Mine($withOrg: Boolean = false) {
        me: viewer { ...Who __typename organization @include(if: $withOrg) { urlKey } }
        org: organization { ... on Organization { name } id @skip(if: true) }
      }
      fragment Who on User { displayName }`;
    const res = await s.graphql(key, { query, operationName: "Mine", variables: { withOrg: true } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { me: { displayName: "owner", __typename: "User", organization: { urlKey: "autoflow-sandbox" } }, org: { name: "AutoFlow Sandbox" } } });
  });

  it.each([
    ["an unknown field", "{ viewer { id nosuchfield } }", 'Cannot query field "nosuchfield" on type "User".', { line: 1, column: 15 }],
    ["an object without a selection", "{ viewer }", 'Field "viewer" of type "User!" must have a selection of subfields. Did you mean "viewer { ... }"?', { line: 1, column: 3 }],
    ["a selection on a scalar", "{ viewer { id { x } } }", 'Field "id" must not have a selection since type "ID!" has no subfields.', { line: 1, column: 12 }],
    ["an argument the field does not take", "{ viewer(id: 1) { id } }", 'Unknown argument "id" on field "Query.viewer".', { line: 1, column: 10 }],
    ["a mutation the sandbox does not model", 'mutation { issueDelete(id: "x") { success } }', 'Cannot query field "issueDelete" on type "Mutation".', { line: 1, column: 12 }],
    ["a syntax error", '{ viewer { name(x: "open } }', "Syntax Error: Unterminated string.", { line: 1, column: 29 }],
    ["an unknown fragment", "{ viewer { ...Nope } }", 'Unknown fragment "Nope".', { line: 1, column: 12 }],
    ["an undefined variable", "query Q { viewer @include(if: $v) { id } }", 'Variable "$v" is not defined by operation "Q".', { line: 1, column: 1 }],
  ])("answers %s with Linear's 400 validation error", async (_what, query, message, location) => {
    const res = await s.graphql(await s.apiKey(), { query });
    expect(res.status).toBe(400);
    const [error] = await errorsOf(res);
    expect(error).toEqual({ message, locations: [location], extensions: { http: { status: 400, headers: {} }, code: "GRAPHQL_VALIDATION_FAILED", type: "graphql error", userError: true } });
    expect(classifyLinear(response(400, { errors: [error] }), OP)).toMatchObject({ type: "schema" });
  });

  it.each([
    [{ query: "" }, /non-empty `query`/],
    [{ query: "query A { viewer { id } } query B { viewer { id } }" }, /Must provide operation name/],
    [{ query: "{ viewer { id } }", operationName: "Missing" }, /Unknown operation named "Missing"/],
    [{ query: "{ viewer { id } }", variables: [1] }, /variables/],
  ])("refuses the request %j as a bad request", async (body, message) => {
    const res = await s.graphql(await s.apiKey(), body);
    expect(res.status).toBe(400);
    expect((await errorsOf(res))[0]?.message).toMatch(message);
  });

  it("meters unauthenticated callers by address, 60 an hour, then throttles them", async () => {
    const own = await withSandbox();
    try {
      for (let i = 0; i < 60; i++) expect((await own.graphql(undefined)).status).toBe(401);
      const throttled = await own.graphql(undefined);
      expect(throttled.status).toBe(400);
      expect((await errorsOf(throttled))[0]?.extensions).toMatchObject({ code: "RATELIMITED", type: "ratelimited", statusCode: 429 });
      expect(throttled.headers.get("x-ratelimit-requests-remaining")).toBe("0");
      // An authenticated caller has a bucket of its own.
      expect((await own.graphql(await own.apiKey())).status).toBe(200);
    } finally {
      await own.sandbox.close();
    }
  });
});

describe("sandbox: faults", () => {
  let s: Sandboxed;
  beforeAll(async () => {
    s = await withSandbox();
  });
  afterEach(async () => {
    await fetch(s.url("/_sandbox/faults"), { method: "DELETE" });
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("throttles with RATELIMITED under 400 and a request reset Retry-After seconds away, in epoch milliseconds, with no Retry-After", async () => {
    const key = await s.apiKey();
    await s.fault({ fault: "rate-limit", retryAfterSeconds: 30 });
    const before = Date.now();
    const res = await s.graphql(key);
    expect(res.status).toBe(400);
    const [error] = await errorsOf(res);
    expect(error?.extensions).toMatchObject({ code: "RATELIMITED", type: "ratelimited", statusCode: 429, userError: true });
    expect(res.headers.get("retry-after")).toBeNull();
    expect(res.headers.get("x-ratelimit-requests-remaining")).toBe("0");
    const reset = Number(res.headers.get("x-ratelimit-requests-reset"));
    expect(reset).toBeGreaterThanOrEqual(before + 30_000);
    expect(reset).toBeLessThan(before + 31_000);
    expect(res.headers.get("x-ratelimit-complexity-limit")).toBe("250000");
  });

  it("answers a server error, a bad request and a malformed body in Linear's shapes", async () => {
    const key = await s.apiKey();
    await s.fault({ fault: "server-error", times: 1 });
    const failed = await s.graphql(key);
    expect(failed.status).toBe(500);
    expect((await errorsOf(failed))[0]?.extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR", type: "internal error" });
    await s.fault({ fault: "bad-request", times: 1 });
    const bad = await s.graphql(key);
    expect(bad.status).toBe(400);
    expect((await errorsOf(bad))[0]?.extensions).toMatchObject({ code: "GRAPHQL_VALIDATION_FAILED", type: "graphql error" });
    await s.fault({ fault: "bad-request", times: 1, path: "/oauth/token" });
    expect(await (await s.refresh("x")).json()).toMatchObject({ error: "invalid_request" });
    await s.fault({ fault: "malformed", times: 1 });
    const malformed = await s.graphql(key);
    expect(malformed.status).toBe(200);
    await expect(malformed.json()).rejects.toThrow();
  });

  it("revoke-all stops API keys, access tokens and refresh tokens", async () => {
    const key = await s.apiKey();
    const oauth = await s.tokensFor();
    await s.fault({ fault: "revoke-all" });
    expect((await s.graphql(key)).status).toBe(401);
    expect((await s.graphql(`Bearer ${oauth.access_token as string}`)).status).toBe(401);
    expect(await (await s.refresh(oauth.refresh_token as string)).json()).toMatchObject({ error: "invalid_grant" });
  });
});

function contextFor(s: Sandboxed, sleeps: number[]): ConnectorContext {
  const clock: Clock = { now: () => Date.now(), sleep: async (ms) => void sleeps.push(ms) };
  return {
    settings: {
      mode: "sandbox",
      options: { ACTOR: "user" },
      clientId: s.sandbox.clientId,
      clientSecret: s.sandbox.clientSecret,
      endpoints: s.sandbox.endpoints,
      redirectUri: REDIRECT_URI,
      scopes: ["read", "write"],
      sandboxUrl: s.sandbox.url,
    },
    http: new ProviderHttp({ provider: "linear", displayName: "Linear", classify: classifyLinear, policy: linearRetryPolicy, timeoutMs: 2000, clock }),
  };
}

describe("connector against the sandbox", () => {
  let s: Sandboxed;
  const sleeps: number[] = [];
  let ctx: ConnectorContext;
  const record = (authMethod: string): ConnectionRecord => ({ authMethod, metadata: {} }) as unknown as ConnectionRecord;
  beforeAll(async () => {
    s = await withSandbox();
    ctx = contextFor(s, sleeps);
  });
  afterEach(async () => {
    sleeps.length = 0;
    await fetch(s.url("/_sandbox/faults"), { method: "DELETE" });
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("exchanges a code with the verifier, describes the workspace, refreshes with rotation", async () => {
    const grant = await linearConnector.exchangeCode(ctx, { code: await s.codeFrom(), codeVerifier: VERIFIER });
    expect(grant).toMatchObject({ expiresInSeconds: 86_399, scopes: ["read", "write"], metadata: {} });
    const identity = await identify(linearConnector, ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: {} });
    expect(identity.metadata).toEqual({ organizationId: expect.any(String), organizationName: "AutoFlow Sandbox", urlKey: "autoflow-sandbox" });
    expect(identity.scopes).toBeUndefined();
    expect(identity.summary).toMatchObject({ urlKey: "autoflow-sandbox", viewerName: "Sandbox Owner", viewerEmail: "owner@sandbox.autoflow.invalid" });
    const refreshed = await linearConnector.refreshToken?.(ctx, grant.refreshToken as string);
    expect(refreshed?.refreshToken).not.toBe(grant.refreshToken);
    const reuse = await linearConnector.refreshToken?.(ctx, grant.refreshToken as string).catch((e: unknown) => e);
    expect(reuse).toMatchObject({ type: "auth", code: "invalid_grant", status: 400 });
  });

  it("sends a personal API key bare and describes it", async () => {
    const key = await s.apiKey();
    const identity = await identify(linearConnector, ctx, { accessToken: key, authMethod: "api_key", metadata: {} });
    expect(identity.summary.viewerName).toBe("Sandbox Owner");
    const asOAuth = await identify(linearConnector, ctx, { accessToken: key, authMethod: "oauth2", metadata: {} }).catch((e: unknown) => e);
    expect(asOAuth).toMatchObject({ type: "auth", code: "AUTHENTICATION_ERROR", status: 401 });
  });

  it("waits out the reset header (epoch ms) of a RATELIMITED answer before retrying", async () => {
    const key = await s.apiKey();
    await s.fault({ fault: "rate-limit", times: 1, retryAfterSeconds: 4 });
    await identify(linearConnector, ctx, { accessToken: key, authMethod: "api_key", metadata: {} });
    expect(sleeps).toEqual([4_000]);
  });

  it("surfaces a reset further away than the policy waits at once, with the wait", async () => {
    const key = await s.apiKey();
    await s.fault({ fault: "rate-limit", times: 1, retryAfterSeconds: 600 });
    const error = await identify(linearConnector, ctx, { accessToken: key, authMethod: "api_key", metadata: {} }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "rate-limit", code: "RATELIMITED", status: 400 });
    expect((error as IntegrationError).retryAfterSeconds).toBeGreaterThanOrEqual(599);
    expect(sleeps).toEqual([]);
  });

  it("revokes with the refresh token, and falls back to the access token when the refresh token is spent", async () => {
    const a = await linearConnector.exchangeCode(ctx, { code: await s.codeFrom(), codeVerifier: VERIFIER });
    expect(await linearConnector.revoke(ctx, { connection: record("oauth2"), accessToken: a.accessToken, refreshToken: a.refreshToken as string })).toBe("revoked");
    expect((await s.graphql(`Bearer ${a.accessToken}`)).status).toBe(401);

    const b = await linearConnector.exchangeCode(ctx, { code: await s.codeFrom(), codeVerifier: VERIFIER });
    const rotated = await linearConnector.refreshToken?.(ctx, b.refreshToken as string);
    // A stale refresh token (rotated away) cannot revoke; the live access token can.
    expect(await linearConnector.revoke(ctx, { connection: record("oauth2"), accessToken: rotated?.accessToken as string, refreshToken: b.refreshToken as string })).toBe("revoked");
    expect((await s.graphql(`Bearer ${rotated?.accessToken as string}`)).status).toBe(401);

    // Both gone: an auth error, which the lifecycle reports as already invalid.
    const again = await linearConnector.revoke(ctx, { connection: record("oauth2"), accessToken: a.accessToken, refreshToken: a.refreshToken as string }).catch((e: unknown) => e);
    expect(again).toMatchObject({ type: "auth" });
  });

  it("cannot revoke a personal API key", async () => {
    expect(await linearConnector.revoke(ctx, { connection: record("api_key"), accessToken: await s.apiKey() })).toBe("not_supported");
  });
});
