/**
 * HubSpot's quirks: its error table, its token and account answers, private
 * app token parsing, and the sandbox's fidelity to the wire. The lifecycle
 * itself is proven by the contract suite.
 */
import { identify, paceKeyOf } from "../shared/call.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectorContext, ConnectorSettings } from "../shared/connector.js";
import { IntegrationError } from "../shared/errors.js";
import { ProviderHttp, type Clock, type ProviderResponse } from "../shared/http.js";
import { hubspotRetryPolicy } from "./retryPolicy.js";
import { challengeOf } from "../../sandbox/kit.js";
import type { ConnectionRecord } from "../shared/vault.js";
import { classifyHubSpot, hubspotConnector, hubspotGrant, INACTIVE_TOKEN, introspectionUrl, parseHubSpotToken } from "./connector.js";
import { startHubSpotSandbox, type HubSpotSandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;
const REDIRECT_URI = "http://localhost:3000/api/integrations/hubspot/oauth/callback";
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

const response = (status: number, json: unknown, headers: Record<string, string> = {}): ProviderResponse => ({
  status,
  headers: new Headers(headers),
  text: json === undefined ? "<html>error</html>" : JSON.stringify(json),
  json,
});
const classify = (status: number, json: unknown, headers?: Record<string, string>) => classifyHubSpot(response(status, json, headers), { operation: "GET /account-info/v3/details" });

describe("classifyHubSpot", () => {
  it.each([
    [401, { status: "error", message: "Authentication credentials not found.", correlationId: "c1", category: "INVALID_AUTHENTICATION" }, "auth", "INVALID_AUTHENTICATION"],
    [401, { status: "error", message: "The OAuth token used to make this call expired 5 hour(s) ago.", category: "EXPIRED_AUTHENTICATION", context: { "expire time": ["2026-03-10T23:04:41.164Z"] } }, "auth", "EXPIRED_AUTHENTICATION"],
    [403, { status: "error", message: "This app hasn't been granted all required scopes", category: "MISSING_SCOPES", errors: [{ context: { requiredScopes: ["oauth"] } }] }, "auth", "MISSING_SCOPES"],
    [403, { status: "error", message: "forbidden" }, "auth", "http_403"],
    [400, { status: "error", message: "Property values were not valid", category: "VALIDATION_ERROR" }, "schema", "VALIDATION_ERROR"],
    [404, { status: "error", message: "Object not found", category: "OBJECT_NOT_FOUND" }, "schema", "OBJECT_NOT_FOUND"],
    [409, { status: "error", message: "Contact already exists", category: "CONFLICT" }, "schema", "CONFLICT"],
    [414, undefined, "schema", "http_414"],
    [500, { status: "error", message: "internal error" }, "upstream", "http_500"],
    [502, undefined, "upstream", "http_502"],
    [521, undefined, "upstream", "http_521"],
    [524, undefined, "upstream", "http_524"],
  ])("HTTP %i %j is %s (%s)", (status, body, type, code) => {
    expect(classify(status, body)).toMatchObject({ type, code });
  });

  it("answers null for a success", () => {
    expect(classify(200, { portalId: 1 })).toBeNull();
  });

  it("names the scopes a MISSING_SCOPES answer asks for, and the correlation id", () => {
    const verdict = classify(403, { category: "MISSING_SCOPES", correlationId: "abc-123", errors: [{ context: { requiredScopes: ["crm.objects.owners.read"] } }] });
    expect(verdict?.message).toContain("crm.objects.owners.read");
    expect(verdict?.message).toContain("abc-123");
  });

  it("waits out the ten-second window of a TEN_SECONDLY_ROLLING 429 without Retry-After, as HubSpot's SDK does", () => {
    const body = { status: "error", message: "You have reached your ten_secondly_rolling limit.", errorType: "RATE_LIMIT", policyName: "TEN_SECONDLY_ROLLING" };
    expect(classify(429, body)).toMatchObject({ type: "rate-limit", code: "TEN_SECONDLY_ROLLING", retryAfterSeconds: 10 });
    expect(classify(429, body, { "x-hubspot-ratelimit-interval-milliseconds": "5000" })).toMatchObject({ retryAfterSeconds: 5 });
    // A Retry-After header wins: left to the HTTP client, which reads it.
    expect(classify(429, body, { "retry-after": "3" })?.retryAfterSeconds).toBeUndefined();
  });

  it("recognises the per-second limit by its exact message when policyName is missing", () => {
    expect(classify(429, { status: "error", message: "You have reached your secondly limit.", errorType: "RATE_LIMIT" })).toMatchObject({ code: "SECONDLY", retryAfterSeconds: 1 });
  });

  it("does not retry a DAILY 429: it resets at midnight in the account's time zone", () => {
    const verdict = classify(429, { status: "error", message: "You have reached your daily limit.", errorType: "RATE_LIMIT", policyName: "DAILY" });
    expect(verdict).toMatchObject({ type: "rate-limit", code: "DAILY", providerRetryHint: false });
    expect(verdict?.message).toMatch(/midnight/);
  });

  it("treats 477 Migration in Progress and 423 Locked as throttles", () => {
    expect(classify(477, { status: "error", message: "migrating" }, { "retry-after": "3600" })).toMatchObject({ type: "rate-limit", code: "MIGRATION_IN_PROGRESS" });
    expect(classify(423, undefined)).toMatchObject({ type: "rate-limit", code: "LOCKED", retryAfterSeconds: 2 });
    expect(classify(423, undefined, { "retry-after": "5" })).toMatchObject({ retryAfterSeconds: 5 });
  });

  it("reads the token endpoint's RFC 6749 errors and keeps the legacy status in the message", () => {
    const verdict = classify(400, { error: "invalid_grant", error_description: "refresh token is invalid, expired or revoked", status: "BAD_REFRESH_TOKEN", message: "refresh token is invalid, expired or revoked" });
    expect(verdict).toMatchObject({ type: "auth", code: "invalid_grant" });
    expect(verdict?.message).toContain("BAD_REFRESH_TOKEN");
    expect(classify(400, { error: "invalid_client", error_description: "missing or unknown client id", status: "BAD_CLIENT_ID" })).toMatchObject({ type: "auth", code: "invalid_client" });
    expect(classify(400, { error: "invalid_request", error_description: "missing grant_type" })).toMatchObject({ type: "schema" });
  });

  it.each(["BAD_REFRESH_TOKEN", "BAD_AUTH_CODE", "EXPIRED_AUTH_CODE"])("reads a legacy-only token error %s as auth", (status) => {
    expect(classify(400, { status, message: "missing or invalid" })).toMatchObject({ type: "auth", code: status });
  });
});

describe("token and account answers", () => {
  const base = { accessToken: "CJX", refreshToken: "na1-ab12-cd34-ef56-gh78-abcdef123456", expiresInSeconds: 1800, scopes: ["fallback"], metadata: {} };

  it("takes the hub id and the scopes array HubSpot adds to the token answer", () => {
    const grant = hubspotGrant({ ...base, body: { access_token: "CJX", token_type: "bearer", hub_id: 62515, scopes: ["oauth", "crm.objects.contacts.read"], user_id: 1 } });
    expect(grant).toEqual({ ...base, scopes: ["oauth", "crm.objects.contacts.read"], metadata: { hubId: 62515 } });
  });

  it("falls back to the standard scopes when the answer has no array", () => {
    const grant = hubspotGrant({ ...base, body: { access_token: "CJX", token_type: "bearer" } });
    expect(grant.scopes).toEqual(["fallback"]);
    expect(grant.metadata).toEqual({});
  });

  it("finds the introspection endpoint under the token endpoint", () => {
    expect(introspectionUrl("https://api.hubapi.com/oauth/2026-03/token")).toBe("https://api.hubapi.com/oauth/2026-03/token/introspect");
    expect(introspectionUrl("https://api.hubapi.com/oauth/v3/token/")).toBe("https://api.hubapi.com/oauth/v3/token/introspect");
  });
});

describe("pacing", () => {
  it("paces a private app as its own budget and OAuth installs as their hub's", () => {
    const on = (id: string, authMethod: string) => ({ id, authMethod, metadata: { hubId: 4242 } });
    // Each private app has its own burst limit: two on one hub do not share it.
    expect(paceKeyOf(hubspotConnector, on("conn_a", "private_app_token"))).toBe("hubspot:conn_a");
    expect(paceKeyOf(hubspotConnector, on("conn_b", "private_app_token"))).toBe("hubspot:conn_b");
    // The app's installs on one hub share the app's limit there.
    expect(paceKeyOf(hubspotConnector, on("conn_c", "oauth2"))).toBe("hubspot:4242");
    expect(paceKeyOf(hubspotConnector, on("conn_d", "oauth2"))).toBe("hubspot:4242");
  });
});

describe("parseHubSpotToken", () => {
  const pat = "pat-na1-0b6f2a41-77c0-4a5e-9d2f-3c1e8a7b9d10";

  it.each([pat, "pat-eu1-0b6f2a41-77c0-4a5e-9d2f-3c1e8a7b9d10", "pat-na2-0B6F2A41-77C0-4A5E-9D2F-3C1E8A7B9D10"])("accepts the private app token %s", (token) => {
    expect(parseHubSpotToken({ accessToken: token })).toEqual({ token, authMethod: "private_app_token" });
    expect(parseHubSpotToken({ apiKey: token })).toEqual({ token, authMethod: "private_app_token" });
  });

  it.each([
    [{ accessToken: "na1-ab12-cd34-ef56-gh78-abcdef123456" }, "accessToken", /refresh token/],
    [{ apiKey: "0b6f2a41-77c0-4a5e-9d2f-3c1e8a7b9d10" }, "apiKey", /sunset/],
    [{ accessToken: "CKDZpunPLhICAQEYs-gDIIGOBii1hQIyGQAf3xBKEgsYjYMJVvlHEz9tFHAwSq1TQAM40s0D" }, "accessToken", /OAuth access tokens expire/],
    [{ accessToken: "pat-na1-short" }, "accessToken", /pat-<region>-<uuid>/],
    [{}, "accessToken", /required/],
    [{ apiKey: pat, accessToken: pat }, "accessToken", /not both/],
  ])("refuses %j naming %s", (input, field, message) => {
    const error = (() => {
      try {
        parseHubSpotToken(input);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(IntegrationError);
    expect(error).toMatchObject({ type: "schema", field });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.startsWith(field)).toBe(true);
  });
});

describe("authorization URL", () => {
  const settings = (options: Record<string, string>): ConnectorSettings => ({
    mode: "live",
    options,
    clientId: "cid",
    clientSecret: "secret",
    endpoints: hubspotConnector.liveEndpoints as ConnectorSettings["endpoints"],
    redirectUri: REDIRECT_URI,
    scopes: ["oauth", "crm.objects.contacts.read"],
  });

  it("separates scopes with spaces and sends optional_scope only when configured", () => {
    expect(hubspotConnector.authorizationParams(settings({ OPTIONAL_SCOPES: "" }))).toEqual({ client_id: "cid", scope: "oauth crm.objects.contacts.read", redirect_uri: REDIRECT_URI });
    expect(hubspotConnector.authorizationParams(settings({ OPTIONAL_SCOPES: "automation, content" })).optional_scope).toBe("automation content");
    expect(hubspotConnector.options?.OPTIONAL_SCOPES?.pattern.test("automation content")).toBe(true);
    expect(hubspotConnector.options?.OPTIONAL_SCOPES?.pattern.test("automation;drop")).toBe(false);
  });
});

/** A sandbox plus raw HTTP helpers speaking HubSpot's wire. */
async function withSandbox(options: HubSpotSandboxOptions = {}) {
  const sandbox = await startHubSpotSandbox({ redirectUris: [REDIRECT_URI], ...options });
  const url = (path: string) => `${sandbox.url}${path}`;
  const form = (path: string, params: Record<string, string | undefined>, headers: Record<string, string> = {}) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) body.set(k, v);
    return fetch(url(path), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body });
  };
  const client = { client_id: sandbox.clientId, client_secret: sandbox.clientSecret };
  const consent = async (params: Record<string, string> = {}): Promise<Response> => {
    const authUrl = new URL(url("/oauth/authorize"));
    for (const [k, v] of Object.entries({ client_id: sandbox.clientId, redirect_uri: REDIRECT_URI, scope: "oauth crm.objects.contacts.read", state: "st", ...params })) {
      authUrl.searchParams.set(k, v);
    }
    return fetch(authUrl, { redirect: "manual" });
  };
  const codeFrom = async (params: Record<string, string> = {}): Promise<string> => {
    const res = await consent(params);
    expect(res.status).toBe(302);
    return new URL(res.headers.get("location") as string).searchParams.get("code") as string;
  };
  const exchange = (code: string, extra: Record<string, string> = {}) => form("/oauth/2026-03/token", { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, ...client, ...extra });
  const tokensFor = async (params: Record<string, string> = {}): Promise<Json> => (await (await exchange(await codeFrom(params))).json()) as Json;
  const details = (token?: string) => fetch(url("/account-info/v3/details"), token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const fault = (body: Json) => fetch(url("/_sandbox/faults"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { sandbox, url, form, client, consent, codeFrom, exchange, tokensFor, details, fault };
}
type Sandboxed = Awaited<ReturnType<typeof withSandbox>>;

describe("sandbox: consent page", () => {
  let s: Sandboxed;
  beforeAll(async () => {
    s = await withSandbox();
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("redirects with code and state when consent is given, at app.hubspot.com's path", async () => {
    const res = await s.consent();
    const location = new URL(res.headers.get("location") as string);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get("code")).toMatch(new RegExp(`^${UUID}$`));
    expect(location.searchParams.get("state")).toBe("st");
  });

  it("redirects with error=access_denied when the user declines", async () => {
    const location = new URL((await s.consent({ _sandbox_decision: "deny" })).headers.get("location") as string);
    expect(location.searchParams.get("error")).toBe("access_denied");
    expect(location.searchParams.has("code")).toBe(false);
    expect(location.searchParams.get("state")).toBe("st");
  });

  it.each([
    [{ client_id: "00000000-0000-0000-0000-000000000000" }, /invalid app client_id/],
    [{ redirect_uri: "https://attacker.example/cb" }, /doesn(&#39;|')t match the app(&#39;|')s registered redirect URL/],
    [{ scope: "" }, /invalid scope name/],
    // Slack separates scopes with commas; HubSpot with spaces, so a comma list is one bad name.
    [{ scope: "oauth,crm.objects.contacts.read" }, /invalid scope name/],
    // A challenge without a method is `plain`, which is not offered.
    [{ code_challenge: "x".repeat(43) }, /S256/],
  ])("shows an error page, never a redirect, for %j", async (params, message) => {
    const res = await s.consent(params);
    expect(res.status).toBe(400);
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const page = await res.text();
    expect(page).toMatch(/Couldn’t complete the connection/);
    expect(page).toMatch(message);
  });

  it("grants optional scopes beside the required ones", async () => {
    const body = await s.tokensFor({ optional_scope: "automation" });
    expect(body.scopes).toEqual(["oauth", "crm.objects.contacts.read", "automation"]);
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

  it("answers a code exchange as HubSpot does: bearer, 30 minutes, hub_id, scopes array, na1- refresh token", async () => {
    const res = await s.exchange(await s.codeFrom());
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({ token_type: "bearer", expires_in: 1800, token_use: "access_token", scopes: ["oauth", "crm.objects.contacts.read"] });
    expect(typeof body.hub_id).toBe("number");
    expect(body.refresh_token).toMatch(/^na1-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(body.access_token).toMatch(/^C[A-Za-z0-9_-]{100,300}$/);
  });

  it("refuses a replayed code and revokes what it minted", async () => {
    const code = await s.codeFrom();
    const first = (await (await s.exchange(code)).json()) as Json;
    expect((await s.details(first.access_token as string)).status).toBe(200);
    const replay = await s.exchange(code);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: "invalid_grant", status: "BAD_AUTH_CODE" });
    expect((await s.details(first.access_token as string)).status).toBe(401);
    const refresh = await s.form("/oauth/2026-03/token", { grant_type: "refresh_token", refresh_token: first.refresh_token as string, ...s.client });
    expect(refresh.status).toBe(400);
  });

  it("checks the redirect URI and the client", async () => {
    const mismatch = await s.exchange(await s.codeFrom(), { redirect_uri: "http://localhost:3000/other" });
    expect(await mismatch.json()).toMatchObject({ error: "invalid_grant", status: "BAD_REDIRECT_URI" });
    const badSecret = await s.exchange(await s.codeFrom(), { client_secret: "00000000-0000-0000-0000-000000000000" });
    expect(badSecret.status).toBe(400);
    expect(await badSecret.json()).toMatchObject({ error: "invalid_client" });
    const badId = await s.exchange(await s.codeFrom(), { client_id: "nope" });
    expect(await badId.json()).toMatchObject({ error: "invalid_client", status: "BAD_CLIENT_ID" });
  });

  it("takes every parameter in a form body, never JSON or the query", async () => {
    const code = await s.codeFrom();
    const json = await fetch(s.url("/oauth/2026-03/token"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, ...s.client }),
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: "invalid_request" });
    const query = new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, ...s.client });
    const inQuery = await fetch(s.url(`/oauth/2026-03/token?${query.toString()}`), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" });
    expect(await inQuery.json()).toMatchObject({ error: "invalid_client" });
    // The code was not spent by those refusals.
    expect((await s.exchange(code)).status).toBe(200);
  });

  it("checks an S256 code_verifier when the authorization carried a challenge, and refuses one when it did not", async () => {
    const verifier = "v".repeat(43);
    const withChallenge = await s.codeFrom({ code_challenge: challengeOf(verifier), code_challenge_method: "S256" });
    expect(await (await s.exchange(withChallenge)).json()).toMatchObject({ error: "invalid_grant" });
    const again = await s.codeFrom({ code_challenge: challengeOf(verifier), code_challenge_method: "S256" });
    expect(await (await s.exchange(again, { code_verifier: "w".repeat(43) })).json()).toMatchObject({ error: "invalid_grant" });
    const third = await s.codeFrom({ code_challenge: challengeOf(verifier), code_challenge_method: "S256" });
    expect((await s.exchange(third, { code_verifier: verifier })).status).toBe(200);
    expect(await (await s.exchange(await s.codeFrom(), { code_verifier: verifier })).json()).toMatchObject({ error: "invalid_grant" });
  });

  it("does not rotate refresh tokens: a refresh answers the same one, which keeps working, and old access tokens live on", async () => {
    const first = await s.tokensFor();
    const refresh = () => s.form("/oauth/2026-03/token", { grant_type: "refresh_token", refresh_token: first.refresh_token as string, ...s.client });
    const second = (await (await refresh()).json()) as Json;
    expect(second.refresh_token).toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    const third = (await (await refresh()).json()) as Json;
    expect(third.refresh_token).toBe(first.refresh_token);
    expect((await s.details(first.access_token as string)).status).toBe(200);
    expect((await s.details(third.access_token as string)).status).toBe(200);
  });

  it("answers a bad refresh token with invalid_grant and BAD_REFRESH_TOKEN, and only the legacy fields at /oauth/v1/token", async () => {
    const params = { grant_type: "refresh_token", refresh_token: "na1-0000-0000-0000-0000-000000000000", ...s.client };
    const current = await s.form("/oauth/2026-03/token", params);
    expect(current.status).toBe(400);
    expect(await current.json()).toMatchObject({ error: "invalid_grant", error_description: "refresh token is invalid, expired or revoked", status: "BAD_REFRESH_TOKEN" });
    const v3 = await s.form("/oauth/v3/token", params);
    expect(await v3.json()).toMatchObject({ error: "invalid_grant", status: "BAD_REFRESH_TOKEN" });
    const legacy = (await (await s.form("/oauth/v1/token", params)).json()) as Json;
    expect(legacy).toMatchObject({ status: "BAD_REFRESH_TOKEN" });
    expect(legacy).not.toHaveProperty("error");
  });

  it("revokes a refresh token at /oauth/2026-03/token/revoke; access tokens already issued keep working", async () => {
    const tokens = await s.tokensFor();
    const revoke = await s.form("/oauth/2026-03/token/revoke", { ...s.client, token: tokens.refresh_token as string, token_type_hint: "refresh_token" });
    expect(revoke.status).toBe(200);
    const refresh = await s.form("/oauth/2026-03/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token as string, ...s.client });
    expect(await refresh.json()).toMatchObject({ status: "BAD_REFRESH_TOKEN" });
    expect((await s.details(tokens.access_token as string)).status).toBe(200);
    // RFC 7009: an unknown token is not an error; a missing one is.
    expect((await s.form("/oauth/2026-03/token/revoke", { ...s.client, token: "na1-0000-0000-0000-0000-000000000000" })).status).toBe(200);
    expect(await (await s.form("/oauth/2026-03/token/revoke", { ...s.client })).json()).toMatchObject({ error: "invalid_request" });
  });

  it("introspects an access token with the documented fields, and an unknown or revoked one as inactive", async () => {
    const tokens = await s.tokensFor();
    const res = await s.form("/oauth/2026-03/token/introspect", { ...s.client, token: tokens.access_token as string, token_type_hint: "access_token" });
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({ active: true, token_use: "access_token", hub_id: tokens.hub_id, client_id: s.sandbox.clientId, scopes: tokens.scopes, token_type: "bearer" });
    for (const key of ["user", "hub_domain", "user_id", "app_id", "expires_in", "signed_access_token", "is_private_distribution"]) expect(body).toHaveProperty(key);
    expect(await (await s.form("/oauth/2026-03/token/introspect", { ...s.client, token: "CJunknown" })).json()).toEqual({ active: false });
    expect(await (await s.form("/oauth/2026-03/token/introspect", { client_id: s.sandbox.clientId, client_secret: "wrong", token: tokens.access_token as string })).json()).toMatchObject({ error: "invalid_client" });
  });
});

describe("sandbox: the API", () => {
  let s: Sandboxed;
  beforeAll(async () => {
    s = await withSandbox();
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("answers /account-info/v3/details with the documented fields and the burst-limit headers, without Daily ones for OAuth", async () => {
    const tokens = await s.tokensFor();
    const res = await s.details(tokens.access_token as string);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-hubspot-correlation-id")).toMatch(new RegExp(`^${UUID}$`));
    expect(res.headers.get("x-hubspot-ratelimit-interval-milliseconds")).toBe("10000");
    expect(res.headers.get("x-hubspot-ratelimit-max")).toBe("100");
    const remaining = Number(res.headers.get("x-hubspot-ratelimit-remaining"));
    expect(Number((await s.details(tokens.access_token as string)).headers.get("x-hubspot-ratelimit-remaining"))).toBe(remaining - 1);
    expect(res.headers.get("x-hubspot-ratelimit-daily")).toBeNull();
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({ portalId: tokens.hub_id, accountType: "STANDARD", uiDomain: "app.hubspot.com", dataHostingLocation: "na1" });
    for (const key of ["timeZone", "companyCurrency", "additionalCurrencies", "utcOffset", "utcOffsetMilliseconds"]) expect(body).toHaveProperty(key);
    expect((await fetch(s.url("/account-info/2026-03/details"), { headers: { authorization: `Bearer ${tokens.access_token as string}` } })).status).toBe(200);
  });

  it("sends Daily headers to private app tokens, which /_sandbox/credentials hands out", async () => {
    const credential = (await (await fetch(s.url("/_sandbox/credentials"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Json;
    expect(parseHubSpotToken({ accessToken: credential.accessToken as string }).authMethod).toBe("private_app_token");
    const res = await s.details(credential.accessToken as string);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-hubspot-ratelimit-daily")).toBe("250000");
    expect(Number(res.headers.get("x-hubspot-ratelimit-daily-remaining"))).toBeLessThan(250000);
  });

  it("answers a missing or unknown token with 401 INVALID_AUTHENTICATION", async () => {
    for (const res of [await s.details(), await s.details("pat-na1-00000000-0000-0000-0000-000000000000")]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("x-hubspot-auth-failure")).toBe("401 Unauthorized");
      const body = (await res.json()) as Json;
      expect(body).toMatchObject({ status: "error", category: "INVALID_AUTHENTICATION" });
      expect(body.message).toMatch(/^Authentication credentials not found/);
      expect(body.correlationId).toMatch(new RegExp(`^${UUID}$`));
      expect(res.headers.get("x-hubspot-correlation-id")).toBe(body.correlationId);
    }
  });

  it("answers a token without the oauth scope with 403 MISSING_SCOPES naming it", async () => {
    const tokens = await s.tokensFor({ scope: "crm.objects.contacts.read" });
    const res = await s.details(tokens.access_token as string);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ category: "MISSING_SCOPES", errors: [{ context: { requiredScopes: ["oauth"] } }] });
  });

  it("revoke-all revokes every access, refresh and private app token", async () => {
    const tokens = await s.tokensFor();
    const credential = (await (await fetch(s.url("/_sandbox/credentials"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Json;
    await s.fault({ fault: "revoke-all" });
    expect((await s.details(tokens.access_token as string)).status).toBe(401);
    expect((await s.details(credential.accessToken as string)).status).toBe(401);
    const refresh = await s.form("/oauth/2026-03/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token as string, ...s.client });
    expect(await refresh.json()).toMatchObject({ error: "invalid_grant", status: "BAD_REFRESH_TOKEN" });
  });
});

describe("sandbox: expiry and faults", () => {
  it("expires access tokens after accessTokenTtlSeconds with 401 EXPIRED_AUTHENTICATION and the expire time", async () => {
    const s = await withSandbox({ accessTokenTtlSeconds: 0 });
    try {
      const tokens = await s.tokensFor();
      expect(tokens.expires_in).toBe(0);
      const res = await s.details(tokens.access_token as string);
      expect(res.status).toBe(401);
      const body = (await res.json()) as { message: string; category: string; context: Record<string, string[]> };
      expect(body.category).toBe("EXPIRED_AUTHENTICATION");
      expect(body.message).toMatch(/^The OAuth token used to make this call expired \d+ second\(s\) ago\.$/);
      expect(Date.parse(body.context["expire time"]?.[0] ?? "")).not.toBeNaN();
      expect(await (await s.form("/oauth/2026-03/token/introspect", { ...s.client, token: tokens.access_token as string })).json()).toEqual({ active: false });
    } finally {
      await s.sandbox.close();
    }
  });

  it("throttles with HubSpot's 429 body and headers, Retry-After only when asked", async () => {
    const s = await withSandbox();
    try {
      await s.fault({ fault: "rate-limit", times: 2 });
      const res = await s.details();
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBeNull();
      expect(res.headers.get("x-hubspot-ratelimit-remaining")).toBe("0");
      expect(await res.json()).toMatchObject({ status: "error", errorType: "RATE_LIMIT", policyName: "TEN_SECONDLY_ROLLING", message: "You have reached your ten_secondly_rolling limit." });
      await s.fault({ fault: "rate-limit", times: 1, retryAfterSeconds: 4 });
      // The first fault still has one use left; then the one with Retry-After.
      expect((await s.details()).headers.get("retry-after")).toBeNull();
      expect((await s.details()).headers.get("retry-after")).toBe("4");
    } finally {
      await s.sandbox.close();
    }
  });

  it.each([
    ["DAILY", 429, { policyName: "DAILY", errorType: "RATE_LIMIT" }, "x-hubspot-ratelimit-daily-remaining"],
    ["SECONDLY", 429, { policyName: "SECONDLY", message: "You have reached your secondly limit." }, "x-hubspot-ratelimit-remaining"],
    ["MIGRATION_IN_PROGRESS", 477, { status: "error" }, "retry-after"],
  ] as const)("answers the rate-limit fault as %s when told to", async (rateLimitFault, status, body, header) => {
    const s = await withSandbox({ rateLimitFault });
    try {
      await s.fault({ fault: "rate-limit", times: 1 });
      const res = await s.details();
      expect(res.status).toBe(status);
      expect(res.headers.get(header)).not.toBeNull();
      expect(await res.json()).toMatchObject(body);
    } finally {
      await s.sandbox.close();
    }
  });

  it("refuses an unknown rateLimitFault option", async () => {
    await expect(startHubSpotSandbox({ rateLimitFault: "HOURLY" as never })).rejects.toThrow(/rateLimitFault/);
  });

  it("answers bad-request with VALIDATION_ERROR and server-error with a 5xx in HubSpot's shape", async () => {
    const s = await withSandbox();
    try {
      await s.fault({ fault: "bad-request", times: 1 });
      const bad = await s.details();
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
      await s.fault({ fault: "server-error", times: 1 });
      const failed = await s.details();
      expect(failed.status).toBe(500);
      expect(await failed.json()).toMatchObject({ status: "error" });
    } finally {
      await s.sandbox.close();
    }
  });
});

describe("connector against the sandbox", () => {
  let s: Sandboxed;
  const sleeps: number[] = [];
  const clock: Clock = { now: () => Date.now(), sleep: async (ms) => void sleeps.push(ms) };
  let ctx: ConnectorContext;
  const record = (authMethod: string): ConnectionRecord => ({ authMethod, metadata: {} }) as unknown as ConnectionRecord;
  const requests = async (path: string) =>
    ((await (await fetch(s.url("/_sandbox/requests"))).json()) as { requests: { path: string }[] }).requests.filter((r) => r.path === path).length;

  beforeAll(async () => {
    s = await withSandbox();
    ctx = {
      settings: {
        mode: "sandbox",
        options: {},
        clientId: s.sandbox.clientId,
        clientSecret: s.sandbox.clientSecret,
        endpoints: s.sandbox.endpoints,
        redirectUri: REDIRECT_URI,
        scopes: ["oauth", "crm.objects.contacts.read"],
        sandboxUrl: s.sandbox.url,
      },
      http: new ProviderHttp({ provider: "hubspot", displayName: "HubSpot", classify: classifyHubSpot, policy: hubspotRetryPolicy, timeoutMs: 2000, clock }),
    };
  });
  afterAll(async () => {
    await s.sandbox.close();
  });

  it("exchanges a code, reads hub id and scopes, and learns the hub domain and user from introspection", async () => {
    const grant = await hubspotConnector.exchangeCode(ctx, { code: await s.codeFrom() });
    expect(grant).toMatchObject({ expiresInSeconds: 1800, scopes: ["oauth", "crm.objects.contacts.read"] });
    expect(grant.refreshToken).toMatch(/^na1-/);
    const identity = await identify(hubspotConnector, ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: grant.metadata });
    expect(identity.metadata).toEqual({ hubId: grant.metadata.hubId, hubDomain: "sandbox.autoflow.invalid" });
    expect(identity.scopes).toEqual(["oauth", "crm.objects.contacts.read"]);
    expect(identity.summary).toMatchObject({ hubId: String(grant.metadata.hubId), user: "owner@sandbox.autoflow.invalid", accountType: "STANDARD" });
    expect(JSON.stringify(identity)).not.toContain(grant.accessToken);
  });

  it("describes a private app token by its account alone: no scopes, no hub domain, no introspection", async () => {
    const credential = (await (await fetch(s.url("/_sandbox/credentials"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Json;
    const before = await requests("/oauth/2026-03/token/introspect");
    const identity = await identify(hubspotConnector, ctx, { accessToken: credential.accessToken as string, authMethod: "private_app_token", metadata: {} });
    expect(identity.metadata).toEqual({ hubId: credential.hubId });
    expect(identity.scopes).toBeUndefined();
    expect(await requests("/oauth/2026-03/token/introspect")).toBe(before);
  });

  it("refreshes without rotation and revokes the refresh token on disconnect", async () => {
    const grant = await hubspotConnector.exchangeCode(ctx, { code: await s.codeFrom() });
    const refreshed = await hubspotConnector.refreshToken?.(ctx, grant.refreshToken as string);
    expect(refreshed?.refreshToken).toBe(grant.refreshToken);
    expect(refreshed?.metadata).toEqual(grant.metadata);
    const outcome = await hubspotConnector.revoke(ctx, { connection: record("oauth2"), accessToken: grant.accessToken, refreshToken: grant.refreshToken as string });
    expect(outcome).toBe("revoked");
    const error = await hubspotConnector.refreshToken?.(ctx, grant.refreshToken as string).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "auth", code: "invalid_grant" });
  });

  it("cannot revoke a private app token", async () => {
    const before = await requests("/oauth/2026-03/token/revoke");
    expect(await hubspotConnector.revoke(ctx, { connection: record("private_app_token"), accessToken: "pat-na1-0b6f2a41-77c0-4a5e-9d2f-3c1e8a7b9d10" })).toBe("not_supported");
    expect(await requests("/oauth/2026-03/token/revoke")).toBe(before);
  });

  it("reports an inactive token from introspection as a token rejection, so the lifecycle refreshes", async () => {
    const grant = await hubspotConnector.exchangeCode(ctx, { code: await s.codeFrom() });
    await s.form("/oauth/2026-03/token/revoke", { ...s.client, token: grant.accessToken, token_type_hint: "access_token" });
    // The account call refuses the revoked token first; the rejection is a 401 either way.
    const error = (await identify(hubspotConnector, ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: {} }).catch((e: unknown) => e)) as IntegrationError;
    expect(error).toMatchObject({ type: "auth", status: 401, code: "INVALID_AUTHENTICATION" });
    expect(hubspotConnector.isTokenRejection?.(error)).toBe(true);
    const inactive = new IntegrationError({ type: "auth", code: INACTIVE_TOKEN, message: "x" });
    expect(hubspotConnector.isTokenRejection?.(inactive)).toBe(true);
    const scopes = new IntegrationError({ type: "auth", status: 403, code: "MISSING_SCOPES", message: "x" });
    expect(hubspotConnector.isTokenRejection?.(scopes)).toBe(false);
  });

  it("waits out a TEN_SECONDLY_ROLLING window (from the interval header) before retrying", async () => {
    const credential = (await (await fetch(s.url("/_sandbox/credentials"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Json;
    sleeps.length = 0;
    await s.fault({ fault: "rate-limit", times: 1 });
    const identity = await identify(hubspotConnector, ctx, { accessToken: credential.accessToken as string, authMethod: "private_app_token", metadata: {} });
    expect(identity.metadata.hubId).toBe(credential.hubId);
    expect(sleeps).toEqual([10_000]);
  });
});

describe("connector: DAILY limit", () => {
  it("does not retry a DAILY 429", async () => {
    const s = await withSandbox({ rateLimitFault: "DAILY" });
    try {
      const sleeps: number[] = [];
      const http = new ProviderHttp({
        provider: "hubspot",
        displayName: "HubSpot",
        classify: classifyHubSpot,
        policy: hubspotRetryPolicy,
        timeoutMs: 2000,
        clock: { now: () => Date.now(), sleep: async (ms) => void sleeps.push(ms) },
      });
      const ctx = { settings: { endpoints: s.sandbox.endpoints } as ConnectorSettings, http };
      await s.fault({ fault: "rate-limit" });
      const error = await identify(hubspotConnector, ctx, { accessToken: "pat-na1-0b6f2a41-77c0-4a5e-9d2f-3c1e8a7b9d10", authMethod: "private_app_token", metadata: {} }).catch((e: unknown) => e);
      expect(error).toMatchObject({ type: "rate-limit", code: "DAILY", status: 429 });
      expect(sleeps).toEqual([]);
    } finally {
      await s.sandbox.close();
    }
  });
});
