/**
 * Sentry quirks only: the error table (DRF details, the token endpoint's bare
 * `error`, the rate limiter's JSON-string 429 and its reset header), token and
 * identity parsing, pasted-token parsing, user-supplied base URLs, and the
 * sandbox's fidelity to Sentry's wire format. The generic lifecycle is proven
 * by the contract suite.
 */
import { identify } from "../shared/call.js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig, resolveSettings } from "../../config.js";
import { PROVIDER_IDS } from "../registry.js";
import type { ConnectorContext, ConnectorSettings } from "../shared/connector.js";
import { IntegrationError } from "../shared/errors.js";
import { ProviderHttp, type ProviderResponse } from "../shared/http.js";
import { buildUrl, codeChallengeS256, createCodeVerifier } from "../shared/oauth.js";
import { sentryRetryPolicy } from "./retryPolicy.js";
import type { StartedSandbox } from "../../sandbox/kit.js";
import { startHarness, type Harness } from "../../testing/harness.js";
import {
  checkOrgTokenInstance,
  classifySentry,
  decodeOrgToken,
  hasNextPage,
  parseSentryIdentity,
  parseSentryToken,
  secondsUntilReset,
  sentryConnector,
} from "./connector.js";
import { startSentrySandbox, type SentrySandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;

const REDIRECT = "http://localhost:3000/api/integrations/sentry/oauth/callback";
const API = { operation: "GET /api/0/organizations/" };
const TOKEN = { operation: "token (refresh_token)" };
const response = (status: number, json: unknown, headers: Record<string, string> = {}): ProviderResponse => ({
  status,
  headers: new Headers(headers),
  text: typeof json === "string" ? json : JSON.stringify(json),
  json,
});
const USER_TOKEN = `sntryu_${"a1".repeat(32)}`;
/** An organization token in Sentry's format, issued by `url`. */
const orgToken = (url: string, org = "acme", region = url): string =>
  `sntrys_${Buffer.from(JSON.stringify({ iat: 1_700_000_000.5, url, region_url: region, org })).toString("base64")}_${Buffer.alloc(32, 7).toString("base64").replace(/=+$/, "")}`;

// ---------------------------------------------------------------------------
// Classification

describe("classifySentry: API errors", () => {
  it.each([
    [401, "Invalid token", "invalid_token"],
    [401, "Token expired", "token_expired"],
    [401, "Invalid org token", "invalid_org_token"],
    [401, "Authentication credentials were not provided.", "not_authenticated"],
    [401, "User inactive or deleted", "user_inactive"],
    [401, "UserApplication inactive or deleted", "application_inactive"],
    [401, "Unauthorized organization access.", "unauthorized_organization_access"],
    [401, "This token access is limited to organization endpoints.", "organization_endpoints_only"],
    [401, "Invalid token header. No credentials provided.", "invalid_token_header"],
    [403, "You do not have permission to perform this action.", "permission_denied"],
  ])("HTTP %i %j is auth (%s)", (status, detail, code) => {
    const verdict = classifySentry(response(status, { detail }), API);
    expect(verdict).toMatchObject({ type: "auth", code });
    expect(verdict?.message).toContain(detail);
  });

  it("reads a structured detail's code: SSO and 2FA need the user", () => {
    const sso = { detail: { code: "sso-required", message: "Must login via SSO", extra: { loginUrl: "/auth/login/acme/" } } };
    expect(classifySentry(response(401, sso), API)).toMatchObject({ type: "auth", code: "sso-required", message: expect.stringContaining("Must login via SSO") });
    expect(classifySentry(response(403, { detail: { code: "2fa-required", message: "Organization requires two-factor authentication to be enabled" } }), API)).toMatchObject({
      type: "auth",
      code: "2fa-required",
    });
  });

  it("is schema for a field map (400), a missing resource (404) and the catch-all's trailing-slash hint", () => {
    const fields = classifySentry(response(400, { slug: ["This field is required."], name: ["Ensure this field has no more than 64 characters."] }), API);
    expect(fields).toMatchObject({ type: "schema", code: "http_400" });
    expect(fields?.message).toMatch(/slug: This field is required\.; name: Ensure/);
    expect(classifySentry(response(404, { detail: "The requested resource does not exist" }), API)).toMatchObject({ type: "schema", code: "not_found" });
    const slash: ProviderResponse = { status: 404, headers: new Headers(), text: "Route not found, did you forget a trailing slash?\n\ntry: /api/0/organizations/\n", json: undefined };
    expect(classifySentry(slash, { operation: "GET /api/0/organizations" })?.message).toMatch(/did you forget a trailing slash\?$/);
  });

  it("is upstream for 5xx, JSON with its error id or an HTML page", () => {
    expect(classifySentry(response(500, { detail: "Internal Error", errorId: "9f2c" }), API)).toMatchObject({ type: "upstream", code: "http_500", message: expect.stringContaining("error id 9f2c") });
    expect(classifySentry({ status: 502, headers: new Headers(), text: "<html>Bad Gateway</html>", json: undefined }, API)).toMatchObject({ type: "upstream", code: "http_502" });
    expect(classifySentry(response(200, []), API)).toBeNull();
  });
});

describe("classifySentry: throttling", () => {
  const limited = (headers: Record<string, string>) =>
    response(429, "You are attempting to use this endpoint too frequently. Limit is 40 requests in 1 seconds", {
      "content-type": "text/html; charset=utf-8",
      "x-sentry-rate-limit-limit": "40",
      "x-sentry-rate-limit-remaining": "0",
      "x-sentry-rate-limit-concurrentlimit": "25",
      "x-sentry-rate-limit-concurrentremaining": "24",
      ...headers,
    });

  it("waits until X-Sentry-Rate-Limit-Reset, measured against Sentry's Date, and quotes the JSON-string body", () => {
    const verdict = classifySentry(limited({ date: "Tue, 14 Nov 2023 22:13:20 GMT", "x-sentry-rate-limit-reset": "1700000007" }), API);
    expect(verdict).toMatchObject({ type: "rate-limit", code: "rate_limited", retryAfterSeconds: 7 });
    expect(verdict?.message).toMatch(/Limit is 40 requests in 1 seconds/);
  });

  it("reads the body in its documented {detail} form too", () => {
    expect(classifySentry(response(429, { detail: "You are attempting to use this endpoint too frequently." }), API)?.message).toMatch(/too frequently/);
  });

  it("falls back on our clock without Date, never waits less than a second, and leaves a proxy's Retry-After to the HTTP client", () => {
    const headers = (h: Record<string, string>) => new Headers(h);
    expect(secondsUntilReset(headers({ "x-sentry-rate-limit-reset": "1700000010" }), 1_700_000_004_200)).toBe(6);
    expect(secondsUntilReset(headers({ "x-sentry-rate-limit-reset": "1700000000", date: "Tue, 14 Nov 2023 22:13:25 GMT" }))).toBe(1);
    expect(secondsUntilReset(headers({ "x-sentry-rate-limit-reset": "soon" }))).toBeUndefined();
    expect(secondsUntilReset(headers({}))).toBeUndefined();
    const proxied = classifySentry(limited({ "retry-after": "30", "x-sentry-rate-limit-reset": "1700000007" }), API);
    expect(proxied?.type).toBe("rate-limit");
    expect(proxied?.retryAfterSeconds).toBeUndefined();
  });

  it("does not wait for the window when only the concurrency limit was hit", () => {
    const verdict = classifySentry(limited({ "x-sentry-rate-limit-remaining": "12", "x-sentry-rate-limit-concurrentremaining": "0", "x-sentry-rate-limit-reset": "1700000060" }), API);
    expect(verdict).toMatchObject({ type: "rate-limit", code: "concurrent_limit" });
    expect(verdict?.retryAfterSeconds).toBeUndefined();
  });
});

describe("classifySentry: token endpoint errors (the name only)", () => {
  it.each([
    [400, "invalid_grant", "auth"],
    [401, "invalid_client", "auth"],
    [400, "invalid_request", "schema"],
    [400, "unsupported_grant_type", "schema"],
  ])("HTTP %i %s is %s", (status, error, type) => {
    expect(classifySentry(response(status, { error }), TOKEN)).toMatchObject({ type, code: error });
  });

  it("tells the operator, not the user, when the app's credentials are refused", () => {
    expect(classifySentry(response(401, { error: "invalid_client" }, { "www-authenticate": 'Basic realm="oauth"' }), TOKEN)?.message).toMatch(
      /AUTOFLOW_SENTRY_CLIENT_ID and AUTOFLOW_SENTRY_CLIENT_SECRET/,
    );
    expect(classifySentry(response(400, { error: "invalid_grant" }), TOKEN)?.message).toMatch(/the user must connect again/);
  });
});

describe("which 401s a refresh may cure", () => {
  const rejection = (status: number, code: string) => sentryConnector.isTokenRejection?.(new IntegrationError({ type: "auth", status, code, message: "x" }));
  it("refreshes after an invalid or expired access token only", () => {
    expect(rejection(401, "token_expired")).toBe(true);
    expect(rejection(401, "invalid_token")).toBe(true);
    expect(rejection(401, "http_401")).toBe(true);
    expect(rejection(401, "sso-required")).toBe(false);
    expect(rejection(401, "application_inactive")).toBe(false);
    expect(rejection(403, "permission_denied")).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Pasted tokens and base URLs

describe("parseSentryToken", () => {
  it("takes user, integration and older unprefixed tokens as auth_token, from accessToken or apiKey", () => {
    expect(parseSentryToken({ accessToken: USER_TOKEN })).toEqual({ token: USER_TOKEN, authMethod: "auth_token" });
    expect(parseSentryToken({ apiKey: `sntryi_${"0f".repeat(32)}` }).authMethod).toBe("auth_token");
    expect(parseSentryToken({ apiKey: "ab".repeat(32) }).authMethod).toBe("auth_token");
  });

  it("takes an organization token with its fixed org:ci scope, with or without base64 padding in the payload", () => {
    const token = orgToken("https://sentry.io", "acme", "https://us.sentry.io");
    expect(parseSentryToken({ accessToken: token })).toEqual({ token, authMethod: "org_auth_token", scopes: ["org:ci"] });
    expect(decodeOrgToken(token)).toEqual({ iat: 1_700_000_000.5, url: "https://sentry.io", regionUrl: "https://us.sentry.io", org: "acme" });
    expect(decodeOrgToken(orgToken("https://s.example", "ab"))?.org).toBe("ab");
  });

  it.each([
    [{ accessToken: "sntrys_bm90IGpzb24=_c2VjcmV0" }, "accessToken", /whole organization auth token/],
    [{ accessToken: "sntrys_only-one-part" }, "accessToken", /whole organization auth token/],
    [{ apiKey: `sntrya_${"c".repeat(64)}` }, "apiKey", /client secret/],
    [{ accessToken: "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/2" }, "accessToken", /DSN/],
    [{ accessToken: `sntryu_${"a".repeat(63)}` }, "accessToken", /not a Sentry auth token/],
    [{ accessToken: USER_TOKEN, apiKey: USER_TOKEN }, "accessToken", /not both/],
    [{}, "accessToken", /required/],
    [{ accessToken: USER_TOKEN, email: "me@example.com" }, "email", /without an email/],
    [{ accessToken: USER_TOKEN, baseUrl: "https://sentry.example.com/api/0" }, "baseUrl", /without \/api\/0/],
  ])("refuses %j naming %s", (input, field, message) => {
    const error = (() => {
      try {
        parseSentryToken(input);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toMatchObject({ type: "schema", field, provider: "sentry" });
    expect((error as Error).message).toMatch(message);
  });

  it("takes a base URL with a path of its own", () => {
    expect(parseSentryToken({ accessToken: USER_TOKEN, baseUrl: "https://tools.example.com/sentry" }).authMethod).toBe("auth_token");
  });
});

describe("an organization token names its instance", () => {
  it("goes to the configured instance when it names it, as its URL or its region", () => {
    expect(() => checkOrgTokenInstance(orgToken("https://sentry.io", "a", "https://us.sentry.io"), "https://sentry.io")).not.toThrow();
    expect(() => checkOrgTokenInstance(orgToken("https://sentry.io", "a", "https://us.sentry.io"), "https://us.sentry.io")).not.toThrow();
  });

  it("is refused without a base URL when it names another instance, and the URL it names is quoted escaped", () => {
    expect(() => checkOrgTokenInstance(orgToken("https://sentry.acme.example"), "https://sentry.io")).toThrow(
      expect.objectContaining({ field: "baseUrl", message: expect.stringContaining('issued by "https://sentry.acme.example", not by "https://sentry.io"') }),
    );
  });
});

// ---------------------------------------------------------------------------
// Identity and token answers

describe("parseSentryIdentity", () => {
  const org = (slug: string, id: string | number = "1") => ({ id, slug, name: slug.toUpperCase(), links: { organizationUrl: `https://${slug}.sentry.io`, regionUrl: "https://de.sentry.io" } });

  it("names the organization when the token reaches exactly one", () => {
    const identity = parseSentryIdentity([org("acme", 42)], { baseUrl: "https://sentry.io" });
    expect(identity.metadata).toEqual({ baseUrl: "https://sentry.io", organizationSlug: "acme" });
    expect(identity.summary).toMatchObject({ organizations: "1", organizationId: "42", organizationName: "ACME", regionUrl: "https://de.sentry.io" });
    expect(identity.scopes).toBeUndefined();
  });

  it("leaves the slug out for several, unless an organization token's payload names one, and says 'at least' when more pages follow", () => {
    const two = [org("acme"), org("labs", "2")];
    expect(parseSentryIdentity(two, { baseUrl: "https://s.example" }).metadata).toEqual({ baseUrl: "https://s.example" });
    expect(parseSentryIdentity(two, { baseUrl: "https://s.example", preferredSlug: "labs" }).metadata.organizationSlug).toBe("labs");
    const paged = parseSentryIdentity([org("acme")], { baseUrl: "https://s.example", morePages: true });
    expect(paged.metadata.organizationSlug).toBeUndefined();
    expect(paged.summary).toMatchObject({ organizations: "1+", organizationSlugs: "acme" });
    expect(parseSentryIdentity([], { baseUrl: "https://s.example" }).summary.organizations).toBe("0");
  });

  it("refuses an answer that is not a list of organizations", () => {
    expect(() => parseSentryIdentity({ detail: "x" }, { baseUrl: "https://s.example" })).toThrow(expect.objectContaining({ type: "upstream", code: "unparsable_response" }));
  });

  it("reads Sentry's Link header", () => {
    const link = (results: string) => `<https://sentry.io/api/0/organizations/?&cursor=100:-1:1>; rel="previous"; results="false"; cursor="100:-1:1", <https://sentry.io/api/0/organizations/?&cursor=100:1:0>; rel="next"; results="${results}"; cursor="100:1:0"`;
    expect(hasNextPage(link("true"))).toBe(true);
    expect(hasNextPage(link("false"))).toBe(false);
    expect(hasNextPage(null)).toBe(false);
  });
});

describe("endpoints and configuration", () => {
  const live = (env: Record<string, string> = {}) => {
    const config = loadConfig({ AUTOFLOW_SENTRY_CLIENT_ID: "c".repeat(64), AUTOFLOW_SENTRY_CLIENT_SECRET: `sntrya_${"d".repeat(64)}`, ...env });
    return resolveSettings({ provider: "sentry", config: config.providers.sentry, publicUrl: "http://localhost:3000" });
  };

  it("uses sentry.io's paths with their trailing slashes, and no revoke endpoint", () => {
    expect(live().endpoints).toEqual({ authorizeUrl: "https://sentry.io/oauth/authorize/", tokenUrl: "https://sentry.io/oauth/token/", apiUrl: "https://sentry.io" });
    expect(sentryConnector.extraOrigins).toBeUndefined();
  });

  it("takes every endpoint from configuration, for an OAuth app on a self-hosted Sentry", () => {
    const settings = live({
      AUTOFLOW_SENTRY_AUTHORIZE_URL: "https://sentry.acme.example/oauth/authorize/",
      AUTOFLOW_SENTRY_TOKEN_URL: "https://sentry.acme.example/oauth/token/",
      AUTOFLOW_SENTRY_API_URL: "https://sentry.acme.example/",
    });
    expect(settings.endpoints).toEqual({ authorizeUrl: "https://sentry.acme.example/oauth/authorize/", tokenUrl: "https://sentry.acme.example/oauth/token/", apiUrl: "https://sentry.acme.example" });
  });

  it("asks for a code with space-separated scopes and the redirect URI", () => {
    expect(sentryConnector.authorizationParams(live({ AUTOFLOW_SENTRY_SCOPES: "org:read,event:read" }))).toEqual({
      client_id: "c".repeat(64),
      response_type: "code",
      scope: "org:read event:read",
      redirect_uri: REDIRECT,
    });
  });
});

describe("token requests on the wire", () => {
  let sent: { url: string; body: URLSearchParams; headers: Headers }[] = [];
  let answer: Json = {};
  const fakeFetch: typeof fetch = async (input, init) => {
    sent.push({ url: String(input), body: new URLSearchParams(String(init?.body)), headers: new Headers(init?.headers) });
    return new Response(JSON.stringify(answer), { status: 200, headers: { "content-type": "application/json" } });
  };
  const ctx = (): ConnectorContext => ({
    settings: {
      mode: "live",
      options: {},
      clientId: "c".repeat(64),
      clientSecret: `sntrya_${"d".repeat(64)}`,
      endpoints: { authorizeUrl: "https://sentry.io/oauth/authorize/", tokenUrl: "https://sentry.io/oauth/token/", apiUrl: "https://sentry.io" },
      redirectUri: REDIRECT,
      scopes: ["org:read"],
    },
    http: new ProviderHttp({ provider: "sentry", displayName: "Sentry", classify: classifySentry, policy: sentryRetryPolicy, timeoutMs: 1000, fetch: fakeFetch }),
  });
  beforeEach(() => {
    sent = [];
    answer = {
      access_token: "e".repeat(64),
      refresh_token: "f".repeat(64),
      expires_in: 2591999,
      expires_at: "2024-11-27T23:20:21.054320Z",
      token_type: "Bearer",
      scope: "org:read project:read",
      user: { id: "2", name: "Jane", email: "jane@example.com" },
      organization_id: "123",
    };
  });

  it("redeems a code with the secret in the body (never Basic too), the verifier and the redirect URI, and reads Sentry's answer", async () => {
    const grant = await sentryConnector.exchangeCode(ctx(), { code: "a".repeat(64), codeVerifier: "v".repeat(43) });
    expect(sent[0]?.url).toBe("https://sentry.io/oauth/token/");
    expect(sent[0]?.headers.get("authorization")).toBeNull();
    expect(Object.fromEntries(sent[0]?.body ?? [])).toEqual({
      grant_type: "authorization_code",
      code: "a".repeat(64),
      redirect_uri: REDIRECT,
      code_verifier: "v".repeat(43),
      client_id: "c".repeat(64),
      client_secret: `sntrya_${"d".repeat(64)}`,
    });
    expect(grant).toEqual({ accessToken: "e".repeat(64), refreshToken: "f".repeat(64), expiresInSeconds: 2591999, scopes: ["org:read", "project:read"], metadata: {} });
  });

  it("takes the older lower-case token_type, and expires_at when expires_in is missing", async () => {
    answer = { ...answer, token_type: "bearer", expires_in: undefined, expires_at: new Date(Date.now() + 3600_000).toISOString() };
    const grant = await sentryConnector.exchangeCode(ctx(), { code: "a".repeat(64) });
    expect(grant.expiresInSeconds).toBeGreaterThan(3590);
    expect(grant.expiresInSeconds).toBeLessThanOrEqual(3600);
  });

  it("refreshes without a scope (Sentry refuses one)", async () => {
    await sentryConnector.refreshToken?.(ctx(), "f".repeat(64));
    expect(Object.fromEntries(sent[0]?.body ?? [])).toEqual({ grant_type: "refresh_token", refresh_token: "f".repeat(64), client_id: "c".repeat(64), client_secret: `sntrya_${"d".repeat(64)}` });
  });

  it("revokes nothing at Sentry, and makes no request", async () => {
    const outcome = await sentryConnector.revoke(ctx(), { connection: {} as Parameters<typeof sentryConnector.revoke>[1]["connection"], accessToken: "e".repeat(64), refreshToken: "f".repeat(64) });
    expect(outcome).toBe("not_supported");
    expect(sent).toEqual([]);
  });

  it("refuses, before any request, an organization token issued by another instance and sent without a base URL", async () => {
    const error = await identify(sentryConnector, ctx(), { accessToken: orgToken("https://sentry.acme.example"), authMethod: "org_auth_token", metadata: {} }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "schema", field: "baseUrl" });
    expect(sent).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// The sandbox

describe("sandbox", () => {
  let sandbox: StartedSandbox;
  let clock: { t: number };
  const start = async (options: SentrySandboxOptions = {}) => {
    clock = { t: Date.now() };
    sandbox = await startSentrySandbox({ redirectUris: [REDIRECT], now: () => clock.t, ...options });
  };
  afterEach(async () => {
    await sandbox?.close();
  });

  const authorizeUrl = (params: Record<string, string | undefined> = {}) =>
    buildUrl(`${sandbox.url}/oauth/authorize/`, { client_id: sandbox.clientId, response_type: "code", scope: "org:read event:read", redirect_uri: REDIRECT, state: "st", ...params });
  const consent = async (params: Record<string, string | undefined> = {}): Promise<URL> => {
    const res = await fetch(authorizeUrl(params), { redirect: "manual" });
    expect(res.status).toBe(302);
    return new URL(res.headers.get("location") as string);
  };
  const post = (path: string, form: Record<string, string | undefined>, headers: Record<string, string> = {}) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
    return fetch(`${sandbox.url}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body, redirect: "manual" });
  };
  const secretParams = () => ({ client_id: sandbox.clientId, client_secret: sandbox.clientSecret });
  const redeem = (code: string, extra: Record<string, string | undefined> = {}) => post("/oauth/token/", { ...secretParams(), grant_type: "authorization_code", code, redirect_uri: REDIRECT, ...extra });
  const refresh = (refreshToken: string, extra: Record<string, string | undefined> = {}) => post("/oauth/token/", { ...secretParams(), grant_type: "refresh_token", refresh_token: refreshToken, ...extra });
  const organizations = (authorization?: string) => fetch(`${sandbox.url}/api/0/organizations/`, { headers: authorization ? { authorization } : {} });
  /** A code flow with PKCE; answers the token response. */
  const connect = async (params: Record<string, string> = {}): Promise<Json> => {
    const verifier = createCodeVerifier();
    const code = (await consent({ code_challenge: codeChallengeS256(verifier), code_challenge_method: "S256", ...params })).searchParams.get("code") as string;
    const res = await redeem(code, { code_verifier: verifier });
    expect(res.status).toBe(200);
    return (await res.json()) as Json;
  };
  const expectOAuthError = async (res: Response, status: number, error: string): Promise<void> => {
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ error });
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    if (error === "invalid_client") expect(res.headers.get("www-authenticate")).toBe('Basic realm="oauth"');
  };
  const expectDetail = async (res: Response, status: number, detail: string): Promise<void> => {
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ detail });
  };
  const desk = async (body: Json = {}): Promise<Json> =>
    (await (await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json()) as Json;

  describe("authorize", () => {
    it("redirects with a 64-hex code and the state", async () => {
      await start();
      const callback = await consent();
      expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT);
      expect(callback.searchParams.get("code")).toMatch(/^[0-9a-f]{64}$/);
      expect(callback.searchParams.get("state")).toBe("st");
    });

    it.each([
      [{ client_id: "nope" }, "client_id"],
      [{ client_id: undefined }, "client_id"],
      [{ redirect_uri: "https://attacker.example/cb" }, "redirect_uri"],
      [{ response_type: "id_token" }, "client_id"],
    ])("answers %j with Sentry's error page, never a redirect", async (params, name) => {
      await start();
      const res = await fetch(authorizeUrl(params), { redirect: "manual" });
      expect(res.status).toBe(400);
      expect(res.headers.get("location")).toBeNull();
      expect(await res.text()).toContain(`Missing or invalid <em>${name}</em> parameter.`);
    });

    it("falls back on the one registered redirect URI when none is sent", async () => {
      await start();
      const callback = await consent({ redirect_uri: undefined });
      expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT);
    });

    it("redirects an unknown scope, a plain PKCE challenge and a refusal with the RFC 6749 error and the state", async () => {
      await start();
      expect(Object.fromEntries((await consent({ scope: "org:read org:everything" })).searchParams)).toEqual({ error: "invalid_scope", state: "st" });
      expect(Object.fromEntries((await consent({ code_challenge: "x".repeat(43), code_challenge_method: "plain" })).searchParams)).toEqual({ error: "invalid_request", state: "st" });
      expect(Object.fromEntries((await consent({ _sandbox_decision: "deny" })).searchParams)).toEqual({ error: "access_denied", state: "st" });
      expect(Object.fromEntries((await consent({ _sandbox_organization: "not-mine" })).searchParams)).toEqual({ error: "unauthorized_client", state: "st" });
    });

    it("answers the path without its trailing slash with Django's 301", async () => {
      await start();
      const res = await fetch(`${sandbox.url}/oauth/authorize?client_id=x`, { redirect: "manual" });
      expect(res.status).toBe(301);
      expect(res.headers.get("location")).toBe("/oauth/authorize/?client_id=x");
    });
  });

  describe("token endpoint", () => {
    it("answers Sentry's token response: 64-hex tokens for 30 days, user, organization_id, never cached", async () => {
      await start();
      const verifier = createCodeVerifier();
      const code = (await consent({ code_challenge: codeChallengeS256(verifier), code_challenge_method: "S256", _sandbox_organization: "autoflow-labs" })).searchParams.get("code") as string;
      const res = await redeem(code, { code_verifier: verifier });
      expect(res.headers.get("cache-control")).toBe("max-age=0, no-cache, no-store, must-revalidate, private");
      const body = (await res.json()) as Json;
      expect(body).toEqual({
        access_token: expect.stringMatching(/^[0-9a-f]{64}$/),
        refresh_token: expect.stringMatching(/^[0-9a-f]{64}$/),
        expires_in: 30 * 24 * 3600,
        expires_at: new Date(clock.t + 30 * 24 * 3600 * 1000).toISOString().replace(/Z$/, "000Z"),
        token_type: "Bearer",
        scope: "org:read event:read",
        user: { id: expect.stringMatching(/^\d+$/), name: "Sandbox User", email: "sandbox.user@autoflow.invalid" },
        organization_id: expect.stringMatching(/^\d+$/),
      });
      // Scoped to the organization picked at consent.
      const orgs = (await (await organizations(`Bearer ${body.access_token as string}`)).json()) as Json[];
      expect(orgs.map((o) => o.slug)).toEqual(["autoflow-labs"]);
      expect(orgs[0]?.id).toBe(body.organization_id);
    });

    it("checks the grant type first, then the client: secret required, Basic or body but not both", async () => {
      await start();
      await expectOAuthError(await post("/oauth/token/", { client_id: "wrong" }), 400, "invalid_request");
      await expectOAuthError(await post("/oauth/token/", { grant_type: "password" }), 400, "unsupported_grant_type");
      await expectOAuthError(await post("/oauth/token/", { grant_type: "authorization_code", code: "x", client_id: sandbox.clientId }), 401, "invalid_client");
      await expectOAuthError(await post("/oauth/token/", { grant_type: "authorization_code", code: "x", client_id: sandbox.clientId, client_secret: "sntrya_wrong" }), 401, "invalid_client");
      const basic = `Basic ${Buffer.from(`${sandbox.clientId}:${sandbox.clientSecret}`).toString("base64")}`;
      await expectOAuthError(await post("/oauth/token/", { grant_type: "authorization_code", code: "x", client_id: sandbox.clientId }, { authorization: basic }), 400, "invalid_request");
      await expectOAuthError(await post("/oauth/token/", { grant_type: "authorization_code", code: "x" }, { authorization: "Basic %%%" }), 401, "invalid_client");
      // Basic alone gets as far as the code.
      await expectOAuthError(await post("/oauth/token/", { grant_type: "authorization_code", code: "x" }, { authorization: basic }), 400, "invalid_grant");
      // A JSON body is no body at all to Django's request.POST.
      const json = await fetch(`${sandbox.url}/oauth/token/`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "refresh_token" }) });
      await expectOAuthError(json, 400, "invalid_request");
    });

    it("burns a code whose redemption fails the redirect URI or the PKCE check", async () => {
      await start();
      const verifier = createCodeVerifier();
      const pkce = { code_challenge: codeChallengeS256(verifier), code_challenge_method: "S256" };
      const first = (await consent(pkce)).searchParams.get("code") as string;
      await expectOAuthError(await redeem(first, { code_verifier: verifier, redirect_uri: "http://localhost:3000/other" }), 400, "invalid_grant");
      await expectOAuthError(await redeem(first, { code_verifier: verifier }), 400, "invalid_grant");
      const second = (await consent(pkce)).searchParams.get("code") as string;
      await expectOAuthError(await redeem(second, { code_verifier: createCodeVerifier() }), 400, "invalid_grant");
      await expectOAuthError(await redeem(second, { code_verifier: verifier }), 400, "invalid_grant");
      const third = (await consent(pkce)).searchParams.get("code") as string;
      await expectOAuthError(await redeem(third, { redirect_uri: undefined, code_verifier: verifier }), 400, "invalid_grant");
      const fourth = (await consent(pkce)).searchParams.get("code") as string;
      await expectOAuthError(await redeem(fourth), 400, "invalid_grant");
    });

    it("redeems a code once: a replay is invalid_grant and ends what the code minted", async () => {
      await start();
      const verifier = createCodeVerifier();
      const code = (await consent({ code_challenge: codeChallengeS256(verifier), code_challenge_method: "S256" })).searchParams.get("code") as string;
      const body = (await (await redeem(code, { code_verifier: verifier })).json()) as Json;
      expect((await organizations(`Bearer ${body.access_token as string}`)).status).toBe(200);
      await expectOAuthError(await redeem(code, { code_verifier: verifier }), 400, "invalid_grant");
      await expectDetail(await organizations(`Bearer ${body.access_token as string}`), 401, "Invalid token");
      await expectOAuthError(await refresh(body.refresh_token as string), 400, "invalid_grant");
    });

    it("expires a code after ten minutes", async () => {
      await start();
      const code = (await consent()).searchParams.get("code") as string;
      clock.t += 10 * 60 * 1000;
      await expectOAuthError(await redeem(code), 400, "invalid_grant");
    });

    it("rotates both tokens on refresh: the old refresh token and the old access token stop working at once", async () => {
      await start();
      const first = await connect();
      clock.t += 1000;
      const res = await refresh(first.refresh_token as string);
      expect(res.status).toBe(200);
      const second = (await res.json()) as Json;
      expect(second.refresh_token).not.toBe(first.refresh_token);
      expect(second.access_token).not.toBe(first.access_token);
      expect(second.expires_at).toBe(new Date(clock.t + 30 * 24 * 3600 * 1000).toISOString().replace(/Z$/, "000Z"));
      await expectOAuthError(await refresh(first.refresh_token as string), 400, "invalid_grant");
      await expectDetail(await organizations(`Bearer ${first.access_token as string}`), 401, "Invalid token");
      expect((await organizations(`Bearer ${second.access_token as string}`)).status).toBe(200);
    });

    it("refuses a scope on a refresh, and a refresh without a token, as invalid_request", async () => {
      await start();
      const tokens = await connect();
      await expectOAuthError(await refresh(tokens.refresh_token as string, { scope: "org:read" }), 400, "invalid_request");
      await expectOAuthError(await refresh(""), 400, "invalid_request");
      // The refused requests did not use the token up.
      expect((await refresh(tokens.refresh_token as string)).status).toBe(200);
    });

    it("refuses every token after revoke-all", async () => {
      await start();
      const tokens = await connect();
      await fetch(`${sandbox.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "revoke-all" }) });
      await expectOAuthError(await refresh(tokens.refresh_token as string), 400, "invalid_grant");
      await expectDetail(await organizations(`Bearer ${tokens.access_token as string}`), 401, "Invalid token");
    });
  });

  describe("API", () => {
    it("expires OAuth access tokens after accessTokenTtlSeconds with 'Token expired'", async () => {
      await start({ accessTokenTtlSeconds: 60 });
      const tokens = await connect();
      expect(tokens.expires_in).toBe(60);
      clock.t += 60_000;
      await expectDetail(await organizations(`Bearer ${tokens.access_token as string}`), 401, "Token expired");
    });

    it("answers DRF's authentication errors, with Sentry's WWW-Authenticate", async () => {
      await start();
      const none = await organizations();
      expect(none.headers.get("www-authenticate")).toBe('xBasic realm="api"');
      await expectDetail(none, 401, "Authentication credentials were not provided.");
      await expectDetail(await organizations("Token abc"), 401, "Authentication credentials were not provided.");
      await expectDetail(await organizations("Bearer"), 401, "Invalid token header. No credentials provided.");
      await expectDetail(await organizations("Bearer a b"), 401, "Invalid token header. Token string should not contain spaces.");
      await expectDetail(await organizations(`Bearer ${USER_TOKEN}`), 401, "Invalid token");
      await expectDetail(await organizations(`Bearer ${orgToken(sandbox.url)}`), 401, "Invalid org token");
    });

    it("lists every organization of a user token, with rate-limit and Link headers", async () => {
      await start();
      const credential = await desk();
      expect(credential).toMatchObject({ accessToken: expect.stringMatching(/^sntryu_[0-9a-f]{64}$/), type: "user", scopes: ["org:read", "project:read", "event:read"] });
      expect(credential).not.toHaveProperty("email");
      expect(credential).not.toHaveProperty("baseUrl");
      const res = await organizations(`Bearer ${credential.accessToken as string}`);
      expect(res.status).toBe(200);
      const reset = Math.floor(clock.t / 1000) + 1;
      expect(Object.fromEntries([...res.headers].filter(([k]) => k.startsWith("x-sentry-rate-limit")))).toEqual({
        "x-sentry-rate-limit-limit": "40",
        "x-sentry-rate-limit-remaining": "39",
        "x-sentry-rate-limit-reset": String(reset),
        "x-sentry-rate-limit-concurrentlimit": "25",
        "x-sentry-rate-limit-concurrentremaining": "24",
      });
      expect(res.headers.get("link")).toMatch(/rel="next"; results="false"/);
      const body = (await res.json()) as Json[];
      expect(body.map((o) => o.slug)).toEqual(["autoflow-sandbox", "autoflow-labs"]);
      expect(body[0]).toMatchObject({ id: expect.stringMatching(/^\d+$/), status: { id: "active", name: "active" }, links: { regionUrl: sandbox.url } });
      expect((await organizations(`Bearer ${credential.accessToken as string}`)).headers.get("x-sentry-rate-limit-remaining")).toBe("38");
    });

    it("needs org:read (or write, admin) of user and OAuth tokens: 403 otherwise", async () => {
      await start();
      const credential = await desk({ scopes: ["project:read"] });
      await expectDetail(await organizations(`Bearer ${credential.accessToken as string}`), 403, "You do not have permission to perform this action.");
    });

    it("hands out organization tokens in Sentry's format, naming this sandbox, that list their organization", async () => {
      await start();
      const credential = await desk({ type: "org", organization: "autoflow-labs" });
      expect(credential).toMatchObject({ type: "org", scopes: ["org:ci"], organization: "autoflow-labs" });
      const token = credential.accessToken as string;
      expect(token.split("_")).toHaveLength(3);
      expect(decodeOrgToken(token)).toMatchObject({ url: sandbox.url, regionUrl: sandbox.url, org: "autoflow-labs" });
      expect(((await (await organizations(`Bearer ${token}`)).json()) as Json[]).map((o) => o.slug)).toEqual(["autoflow-labs"]);
      const refused = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "org", scopes: ["org:read"] }) });
      expect(refused.status).toBe(400);
    });

    it("answers a path without its trailing slash with the catch-all's hint, and an unknown one with an empty 404", async () => {
      await start();
      const res = await fetch(`${sandbox.url}/api/0/organizations`);
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      expect(await res.text()).toBe("Route not found, did you forget a trailing slash?\n\ntry: /api/0/organizations/\n                         ^\n");
      const asJson = await fetch(`${sandbox.url}/api/0/organizations`, { headers: { "content-type": "application/json" } });
      expect(await asJson.json()).toEqual({ info: "Route not found, did you forget a trailing slash? try: /api/0/organizations/" });
      const unknown = await fetch(`${sandbox.url}/api/0/nothing/`);
      expect(unknown.status).toBe(404);
      expect(await unknown.text()).toBe("");
    });
  });

  describe("faults, as Sentry answers them", () => {
    const fault = (body: Json) => fetch(`${sandbox.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

    it("throttles with the middleware's 429: a JSON string served as text/html, the reset in epoch seconds beside Date, no Retry-After", async () => {
      await start();
      await fault({ fault: "rate-limit", times: 1, retryAfterSeconds: 5 });
      const res = await organizations(`Bearer ${(await desk()).accessToken as string}`);
      expect(res.status).toBe(429);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("retry-after")).toBeNull();
      expect(await res.json()).toBe("You are attempting to use this endpoint too frequently. Limit is 40 requests in 5 seconds");
      const second = Math.floor(clock.t / 1000);
      expect(res.headers.get("x-sentry-rate-limit-reset")).toBe(String(second + 5));
      expect(res.headers.get("x-sentry-rate-limit-remaining")).toBe("0");
      expect(Date.parse(res.headers.get("date") as string)).toBe(second * 1000);
      // What the connector makes of it: exactly the window, whatever our clock says.
      expect(classifySentry({ status: 429, headers: res.headers, text: "", json: "x" }, API)?.retryAfterSeconds).toBe(5);
    });

    it("fails the API with JSON and an error id, the token endpoint with an HTML page", async () => {
      await start();
      await fault({ fault: "server-error", times: 1 });
      const api = await organizations();
      expect(api.status).toBe(500);
      expect(await api.json()).toEqual({ detail: "Internal Error", errorId: expect.stringMatching(/^[0-9a-f]{32}$/) });
      await fault({ fault: "server-error", times: 1, path: "/oauth/token/" });
      const token = await post("/oauth/token/", {});
      expect(token.status).toBe(500);
      expect(token.headers.get("content-type")).toMatch(/^text\/html/);
    });

    it("refuses for good with a detail on the API and invalid_request at the token endpoint", async () => {
      await start();
      await fault({ fault: "bad-request", times: 1 });
      await expectDetail(await organizations(), 400, "Invalid cursor parameter.");
      await fault({ fault: "bad-request", times: 1, path: "/oauth/token/" });
      await expectOAuthError(await post("/oauth/token/", {}), 400, "invalid_request");
    });

    it("never applies faults to the consent page", async () => {
      await start();
      await fault({ fault: "server-error" });
      expect((await fetch(authorizeUrl(), { redirect: "manual" })).status).toBe(302);
    });
  });

  describe("the connector against the sandbox", () => {
    const ctx = (baseUrl?: string): ConnectorContext => {
      const settings: ConnectorSettings = {
        mode: "sandbox",
        options: {},
        clientId: sandbox.clientId,
        clientSecret: sandbox.clientSecret,
        endpoints: sandbox.endpoints,
        redirectUri: REDIRECT,
        scopes: sentryConnector.defaultScopes,
        sandboxUrl: sandbox.url,
      };
      const http = new ProviderHttp({ provider: "sentry", displayName: "Sentry", classify: classifySentry, policy: { ...sentryRetryPolicy, attempts: 1 }, timeoutMs: 5000 });
      return { settings, http, ...(baseUrl ? { baseUrl } : {}) };
    };

    it("runs the code flow with PKCE and the secret, learns the one organization, and refreshes into a new pair", async () => {
      await start();
      const c = ctx();
      const verifier = createCodeVerifier();
      const url = buildUrl(c.settings.endpoints.authorizeUrl, { ...sentryConnector.authorizationParams(c.settings), state: "s", code_challenge: codeChallengeS256(verifier), code_challenge_method: "S256" });
      const callback = new URL((await fetch(url, { redirect: "manual" })).headers.get("location") as string);
      const grant = await sentryConnector.exchangeCode(c, { code: callback.searchParams.get("code") as string, codeVerifier: verifier });
      expect(grant).toMatchObject({ scopes: ["org:read", "project:read", "event:read"], expiresInSeconds: 30 * 24 * 3600 });
      const identity = await identify(sentryConnector, c, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: grant.metadata });
      expect(identity.metadata).toEqual({ baseUrl: sandbox.url, organizationSlug: "autoflow-sandbox" });
      expect(identity.summary).toMatchObject({ organizations: "1", organizationName: "AutoFlow Sandbox", regionUrl: sandbox.url });
      const renewed = await sentryConnector.refreshToken?.(c, grant.refreshToken as string);
      expect(renewed?.refreshToken).toMatch(/^[0-9a-f]{64}$/);
      const reused = await sentryConnector.refreshToken?.(c, grant.refreshToken as string).catch((e: unknown) => e);
      expect(reused).toMatchObject({ type: "auth", code: "invalid_grant", status: 400 });
    });

    it("names the organization of an organization token, and no organization for a user token with two", async () => {
      await start();
      const org = await desk({ type: "org", organization: "autoflow-labs" });
      const orgIdentity = await identify(sentryConnector, ctx(), { accessToken: org.accessToken as string, authMethod: "org_auth_token", metadata: {} });
      expect(orgIdentity.metadata).toEqual({ baseUrl: sandbox.url, organizationSlug: "autoflow-labs" });
      const user = await desk();
      const userIdentity = await identify(sentryConnector, ctx(sandbox.url), { accessToken: user.accessToken as string, authMethod: "auth_token", metadata: {} });
      expect(userIdentity.metadata).toEqual({ baseUrl: sandbox.url });
      expect(userIdentity.summary).toMatchObject({ organizations: "2", organizationSlugs: "autoflow-sandbox,autoflow-labs" });
    });

    it("turns an expired access token into auth token_expired, which a refresh may cure", async () => {
      await start({ accessTokenTtlSeconds: 60 });
      const tokens = await connect();
      clock.t += 61_000;
      const error = await identify(sentryConnector, ctx(), { accessToken: tokens.access_token as string, authMethod: "oauth2", metadata: {} }).catch((e: unknown) => e);
      expect(error).toMatchObject({ type: "auth", code: "token_expired", status: 401 });
      expect(sentryConnector.isTokenRejection?.(error as IntegrationError)).toBe(true);
    });
  });
});

// ---------------------------------------------------------------------------
// User-supplied base URLs, through the HTTP API

describe("base URLs through the HTTP API", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });
  const connect = (user: string, body: Json) => h.request({ method: "POST", url: "/api/integrations/sentry/connections", user, body });
  const token = async (body: Json = {}) => (await h.sandbox("sentry", "/_sandbox/credentials", { body })) as Json;
  const clearLogs = async () => {
    for (const provider of PROVIDER_IDS) await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
  };
  const allRequests = async () => (await Promise.all(PROVIDER_IDS.map((p) => h.sandboxRequests(p)))).flat();

  it("connects a token to a Sentry at the sandbox's origin, as to a self-hosted one, and keeps calling it there", async () => {
    const origin = h.sandboxUrl("sentry");
    await clearLogs();
    const res = await connect("self-hosted", { accessToken: (await token()).accessToken, baseUrl: `${origin}/` });
    expect(res.statusCode, res.body).toBe(201);
    const connection = res.json() as Json;
    expect(connection).toMatchObject({ authMethod: "auth_token", baseUrl: origin, scopes: [] });
    expect(connection).not.toHaveProperty("organizationSlug");
    const record = await h.service.store.vault.findConnection({ userId: "self-hosted", provider: "sentry", id: connection.id as string });
    expect(record?.baseUrl).toBe(origin);
    const test = await h.request({ method: "POST", url: "/api/integrations/sentry/test", user: "self-hosted" });
    expect(test.statusCode, test.body).toBe(200);
    expect(test.json()).toMatchObject({ baseUrl: origin, organizations: "2" });
    expect((await h.sandboxRequests("sentry")).map((r) => `${r.method} ${r.path}`)).toEqual(["GET /api/0/organizations/", "GET /api/0/organizations/"]);
  });

  it("connects an organization token with its instance, naming its organization", async () => {
    const res = await connect("org-token", { accessToken: (await token({ type: "org" })).accessToken, baseUrl: h.sandboxUrl("sentry") });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ authMethod: "org_auth_token", scopes: ["org:ci"], baseUrl: h.sandboxUrl("sentry"), organizationSlug: "autoflow-sandbox" });
  });

  it.each([
    ["https://127.0.0.1", /127\.0\.0\.1 is not a public address \(loopback\)/],
    ["https://127.0.0.1:8443/sentry", /not a public address/],
    ["https://[::1]/", /not a public address/],
    ["https://169.254.169.254/latest", /link-local/],
    ["https://10.1.2.3", /private/],
    ["https://localhost:9000", /not a public host name/],
    ["http://sentry.example.com", /only https/],
    ["https://admin:pw@sentry.example.com", /credentials/],
  ])("refuses the base URL %s with a 400 schema error, and no request reaches any sandbox", async (baseUrl, why) => {
    const accessToken = (await token()).accessToken;
    await clearLogs();
    const res = await connect("hostile", { accessToken, baseUrl });
    expect(res.statusCode).toBe(400);
    const error = (res.json() as { error: Json }).error;
    expect(error).toMatchObject({ type: "schema", field: "baseUrl", provider: "sentry", retryable: false });
    expect(error.message).toMatch(why);
    expect(await allRequests()).toEqual([]);
    expect((await h.request({ method: "GET", url: "/api/integrations/sentry/connections", user: "hostile" })).json()).toEqual({ connections: [] });
  });

  it("refuses, before any request, a base URL that ends in /api/0, an email, and an organization token from another instance without a base URL", async () => {
    const accessToken = (await token()).accessToken;
    await clearLogs();
    const apiPath = await connect("mistakes", { accessToken, baseUrl: `${h.sandboxUrl("sentry")}/api/0/` });
    expect(apiPath.statusCode).toBe(400);
    expect((apiPath.json() as { error: Json }).error).toMatchObject({ type: "schema", field: "baseUrl" });
    const email = await connect("mistakes", { accessToken, email: "me@example.com" });
    expect((email.json() as { error: Json }).error).toMatchObject({ type: "schema", field: "email" });
    const foreign = await connect("mistakes", { accessToken: orgToken("https://sentry.acme.example") });
    expect(foreign.statusCode).toBe(400);
    expect((foreign.json() as { error: Json }).error).toMatchObject({ type: "schema", field: "baseUrl", message: expect.stringContaining('"https://sentry.acme.example"') });
    expect(await allRequests()).toEqual([]);
  });
});
