/**
 * Jira's quirks only (the lifecycle is the contract suite's): two error body
 * shapes and the rate-limit headers, the JSON token endpoint, credential
 * parsing (Cloud API token with email, Data Center PAT without), the site
 * rule of accessible-resources, Data Center's key in place of accountId, the
 * sandbox's fidelity to Atlassian's wire, and the three ways in through the
 * HTTP API.
 */
import { identify } from "../shared/call.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../../testing/harness.js";
import type { ConnectorContext, ConnectorSettings } from "../shared/connector.js";
import { IntegrationError } from "../shared/errors.js";
import { ProviderHttp, type ProviderResponse } from "../shared/http.js";
import { jiraRetryPolicy } from "./retryPolicy.js";
import {
  classifyJira,
  jiraAuthorization,
  jiraConnector,
  JiraErrorCodes,
  jiraErrorText,
  jiraRestBase,
  jiraSites,
  parseJiraCredential,
  parseJiraMyself,
  secondsUntilReset,
} from "./connector.js";
import { startJiraSandbox, type JiraSandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;

const REDIRECT = "http://localhost:3000/api/integrations/jira/oauth/callback";
const SCOPES = ["read:jira-user", "read:jira-work", "offline_access"];
const CLOUD_TOKEN = `ATATT3xFfGF0${"a1B2-c3_D4".repeat(17)}X=0A1B2C3D`;
const PAT = "MTIzNDU2Nzg5MDEyOlmNb3J0aGlzaXNyYW5kb20xMjM0";
const SITE = "https://acme.atlassian.net";
const DC = "https://jira.acme.example/jira";

const response = (status: number, body: unknown, headers: Record<string, string> = {}): ProviderResponse => ({
  status,
  headers: new Headers(headers),
  text: typeof body === "string" ? body : JSON.stringify(body),
  json: typeof body === "string" ? undefined : body,
});
const myself = { operation: "GET /rest/api/3/myself" };
const tokenOp = { operation: "POST /oauth/token (refresh_token)" };

// ---------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------

/** [what, status, body, headers, type, code] */
const CLASSIFICATION: [string, number, unknown, Record<string, string>, string, string][] = [
  ["site 401 ErrorCollection", 401, { errorMessages: ["Client must be authenticated to access this resource."], errors: {} }, { "x-seraph-loginreason": "AUTHENTICATED_FAILED" }, "auth", "unauthorized"],
  ["site 401 plain text", 401, "Client must be authenticated to access this resource.", { "content-type": "text/plain" }, "auth", "unauthorized"],
  ["gateway 401", 401, { code: 401, message: "Unauthorized" }, {}, "auth", "unauthorized"],
  ["gateway 401 scope mismatch", 401, { code: 401, message: "Unauthorized; scope does not match" }, {}, "auth", JiraErrorCodes.SCOPE_MISMATCH],
  ["403 no permission", 403, { errorMessages: ["You do not have permission to see the specified project."], errors: {} }, {}, "auth", "forbidden"],
  ["403 CAPTCHA lock", 403, "", { "x-seraph-loginreason": "AUTHENTICATION_DENIED", "x-authentication-denied-reason": "CAPTCHA_CHALLENGE; login-url=https://acme.atlassian.net/login.jsp" }, "auth", JiraErrorCodes.CAPTCHA_REQUIRED],
  ["401 CAPTCHA lock", 401, "", { "x-seraph-loginreason": "AUTHENTICATION_DENIED" }, "auth", JiraErrorCodes.CAPTCHA_REQUIRED],
  ["400 field errors", 400, { errorMessages: [], errors: { summary: "You must specify a summary of the issue." } }, {}, "schema", "http_400"],
  ["400 invalid JQL", 400, { errorMessages: ["Error in the JQL Query: Expecting operator but got 'x'."], errors: {} }, {}, "schema", "http_400"],
  ["404 issue", 404, { errorMessages: ["Issue does not exist or you do not have permission to see it."], errors: {} }, {}, "schema", "not_found"],
  ["404 Data Center REST layer", 404, { message: "null for uri: https://jira.acme.example/rest/api/3/myself", "status-code": 404 }, {}, "schema", "not_found"],
  ["405", 405, "", {}, "schema", "http_405"],
  ["409", 409, { errorMessages: ["conflict"], errors: {} }, {}, "schema", "http_409"],
  ["410 removed API", 410, { errorMessages: ["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."] }, {}, "schema", "gone"],
  ["413", 413, "", {}, "schema", "http_413"],
  ["415", 415, "", {}, "schema", "http_415"],
  ["429 burst", 429, "", { "retry-after": "5", "ratelimit-reason": "jira-burst-based" }, "rate-limit", "jira-burst-based"],
  ["429 per issue", 429, "", { "retry-after": "2", "ratelimit-reason": "jira-per-issue-on-write" }, "rate-limit", "jira-per-issue-on-write"],
  ["429 without a reason", 429, "", { "retry-after": "1" }, "rate-limit", "rate_limited"],
  ["500", 500, { errorMessages: ["Internal server error"], errors: {} }, {}, "upstream", "http_500"],
  ["502 HTML", 502, "<html><body>Bad gateway</body></html>", { "content-type": "text/html" }, "upstream", "http_502"],
  ["503 resource limit", 503, { code: 503, message: "Service Unavailable" }, { "retry-after": "30" }, "upstream", "http_503"],
  ["504", 504, "", {}, "upstream", "http_504"],
  ["token 403 invalid_grant", 403, { error: "invalid_grant", error_description: "Unknown or invalid refresh token." }, {}, "auth", "invalid_grant"],
  ["token 401 access_denied (client secret)", 401, { error: "access_denied", error_description: "Unauthorized" }, {}, "auth", "access_denied"],
  ["token 400 invalid_request", 400, { error: "invalid_request", error_description: "Missing required parameter: grant_type" }, {}, "schema", "invalid_request"],
  ["token 403 unauthorized_client", 403, { error: "unauthorized_client", error_description: "Grant type 'password' not allowed for the client." }, {}, "auth", "unauthorized_client"],
  ["token 429", 429, { error: "too_many_requests", error_description: "Too Many Requests" }, { "retry-after": "3" }, "rate-limit", "too_many_requests"],
  ["token 503", 503, { error: "temporarily_unavailable", error_description: "try later" }, {}, "upstream", "temporarily_unavailable"],
];

describe("classifyJira: ErrorCollection, the gateway's {code, message}, and the token endpoint", () => {
  it.each(CLASSIFICATION)("%s is %s", (_what, status, body, headers, type, code) => {
    expect(classifyJira(response(status, body, headers), myself)).toMatchObject({ type, code });
  });

  it("answers null for a success", () => {
    expect(classifyJira(response(200, { accountId: "a" }), myself)).toBeNull();
    expect(classifyJira(response(204, ""), myself)).toBeNull();
  });

  it("quotes both body shapes (messages and field errors), and never an HTML page", () => {
    expect(jiraErrorText(response(400, { errorMessages: ["Bad JQL."], errors: { summary: "required" } }))).toBe("Bad JQL.; summary: required");
    expect(jiraErrorText(response(401, { code: 401, message: "Unauthorized" }))).toBe("Unauthorized");
    expect(jiraErrorText(response(401, "Client must be authenticated to access this resource.", { "content-type": "text/plain" }))).toBe("Client must be authenticated to access this resource.");
    expect(jiraErrorText(response(502, "<html>x</html>", { "content-type": "text/html" }))).toBeUndefined();
    expect(classifyJira(response(404, { errorMessages: ["Issue does not exist or you do not have permission to see it."], errors: {} }), myself)?.message).toMatch(/Issue does not exist/);
  });

  it("tells the operator, not the user, when Atlassian refuses the app's client credentials", () => {
    const verdict = classifyJira(response(401, { error: "access_denied", error_description: "Unauthorized" }), tokenOp);
    expect(verdict?.message).toMatch(/AUTOFLOW_JIRA_CLIENT_SECRET/);
    expect(classifyJira(response(403, { error: "invalid_grant", error_description: "Unknown or invalid refresh token." }), tokenOp)?.message).toMatch(/connect again.*Unknown or invalid refresh token/);
  });

  it("names the request id Jira gives, so support can find the call", () => {
    expect(classifyJira(response(500, "", { "x-arequestid": "abc-123" }), myself)?.message).toMatch(/request id abc-123/);
  });
});

describe("classifyJira: rate limits", () => {
  it("leaves Retry-After to the HTTP client when present", () => {
    const verdict = classifyJira(response(429, "", { "retry-after": "7", "x-ratelimit-reset": "2099-01-01T00:00Z" }), myself);
    expect(verdict?.retryAfterSeconds).toBeUndefined();
  });

  it("waits for X-RateLimit-Reset (an ISO minute) when Retry-After is missing", () => {
    const reset = new Date(Date.now() + 90_000);
    const header = `${reset.toISOString().slice(0, 16)}Z`;
    const seconds = classifyJira(response(429, "", { "x-ratelimit-reset": header }), myself)?.retryAfterSeconds as number;
    expect(seconds).toBeGreaterThanOrEqual(30);
    expect(seconds).toBeLessThanOrEqual(90);
  });

  it("falls back to Atlassian's first backoff step when a 429 says nothing", () => {
    expect(classifyJira(response(429, ""), myself)?.retryAfterSeconds).toBe(5);
  });

  it("reads a 503's Retry-After (a resource limit), and no Retry-After on a permanent error", () => {
    expect(classifyJira(response(503, "", { "retry-after": "30" }), myself)).toMatchObject({ type: "upstream", retryAfterSeconds: 30 });
    expect(classifyJira(response(400, "", { "retry-after": "30" }), myself)?.retryAfterSeconds).toBeUndefined();
  });

  it("parses X-RateLimit-Reset as minutes and full ISO, at least one second, and refuses other forms", () => {
    const now = Date.parse("2026-03-10T12:00:30Z");
    expect(secondsUntilReset("2026-03-10T12:01Z", now)).toBe(30);
    expect(secondsUntilReset("2026-03-10T12:00:40.000+00:00", now)).toBe(10);
    expect(secondsUntilReset("2026-03-10T11:00Z", now)).toBe(1);
    expect(secondsUntilReset("1773144090", now)).toBeUndefined();
    expect(secondsUntilReset(null, now)).toBeUndefined();
  });
});

describe("isTokenRejection", () => {
  const rejection = (code: string, status = 401) => jiraConnector.isTokenRejection?.(new IntegrationError({ type: "auth", status, code, message: "x" }));
  it("refreshes for an expired or revoked access token only, not for a missing scope, a CAPTCHA lock or a 403", () => {
    expect(rejection("unauthorized")).toBe(true);
    expect(rejection(JiraErrorCodes.SCOPE_MISMATCH)).toBe(false);
    expect(rejection(JiraErrorCodes.CAPTCHA_REQUIRED)).toBe(false);
    expect(rejection("forbidden", 403)).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Credentials, identity, and where calls go
// ---------------------------------------------------------------------------

describe("parseJiraCredential: an email means a Cloud API token; none means a Data Center PAT", () => {
  it("takes a Cloud API token with email and site, keeping only the site's origin", () => {
    expect(parseJiraCredential({ apiKey: CLOUD_TOKEN, email: "a@acme.example", baseUrl: `${SITE}/jira/software/projects` })).toEqual({
      token: CLOUD_TOKEN,
      authMethod: "api_token",
      metadata: { email: "a@acme.example", siteUrl: SITE },
    });
    // The older 24-character tokens are still recognised.
    expect(parseJiraCredential({ apiKey: "a".repeat(12) + "B".repeat(12), email: "a@acme.example", baseUrl: SITE }).authMethod).toBe("api_token");
  });

  it("takes a Data Center PAT without email, as accessToken or apiKey, keeping the context path", () => {
    expect(parseJiraCredential({ accessToken: PAT, baseUrl: DC })).toEqual({ token: PAT, authMethod: "personal_access_token", metadata: { siteUrl: DC } });
    expect(parseJiraCredential({ apiKey: PAT, baseUrl: DC }).authMethod).toBe("personal_access_token");
  });

  it.each([
    ["an ATATT token without email", "email", { apiKey: CLOUD_TOKEN, baseUrl: DC }],
    ["an atlassian.net site without email", "email", { accessToken: PAT, baseUrl: SITE }],
    ["no base URL", "baseUrl", { apiKey: CLOUD_TOKEN, email: "a@acme.example" }],
    ["no token at all", "apiKey", { baseUrl: SITE, email: "a@acme.example" }],
    ["both fields", "accessToken", { apiKey: CLOUD_TOKEN, accessToken: PAT, baseUrl: SITE }],
    ["a malformed Cloud token", "apiKey", { apiKey: "not-a-key", email: "a@acme.example", baseUrl: SITE }],
    ["a PAT given with an email", "accessToken", { accessToken: PAT, email: "a@acme.example", baseUrl: DC }],
    ["a malformed PAT", "accessToken", { accessToken: "not-a-key", baseUrl: DC }],
    ["a 3LO access token", "accessToken", { accessToken: "eyJraWQiOiJ4In0.eyJzdWIiOiJ4In0.c2ln", baseUrl: DC }],
  ])("refuses %s with a schema error naming %s", (_what, field, input) => {
    const error = (() => {
      try {
        parseJiraCredential(input);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toMatchObject({ type: "schema", field, provider: "jira" });
    expect((error as Error).message.startsWith(field)).toBe(true);
  });
});

describe("identity and site parsing", () => {
  it("picks the first Jira site of accessible-resources, skipping other products and odd entries", () => {
    const sites = jiraSites([
      { id: "c-conf", url: "https://wiki.atlassian.net", name: "wiki", scopes: ["read:confluence-content.all"] },
      { url: "https://broken.atlassian.net" },
      { id: "c-1", url: "https://acme.atlassian.net", name: "acme", scopes: ["read:jira-work", "read:jira-user"], avatarUrl: "x" },
      { id: "c-2", url: "https://beta.atlassian.net", name: "beta", scopes: ["read:issue:jira"] },
    ]);
    expect(sites.map((s) => s.id)).toEqual(["c-1", "c-2"]);
    expect(jiraSites([])).toEqual([]);
    expect(() => jiraSites({ id: "not a list" })).toThrow(IntegrationError);
  });

  it("reads a Cloud user's accountId, and a Data Center user's key in its place", () => {
    const cloud = parseJiraMyself({ accountId: "712020:abc", accountType: "atlassian", displayName: "A", emailAddress: "", active: true, timeZone: "Europe/Berlin" });
    expect(cloud).toMatchObject({ accountId: "712020:abc", displayName: "A", summary: { accountType: "atlassian", timeZone: "Europe/Berlin", active: "true" } });
    // A hidden email comes as "" and is not reported.
    expect(cloud.summary.emailAddress).toBeUndefined();
    const dc = parseJiraMyself({ key: "JIRAUSER10100", name: "jdoe", displayName: "J", emailAddress: "j@corp.example" });
    expect(dc).toMatchObject({ accountId: "JIRAUSER10100", summary: { key: "JIRAUSER10100", name: "jdoe", emailAddress: "j@corp.example" } });
    expect(() => parseJiraMyself({ displayName: "nobody" })).toThrow(/not the documented shape/);
  });

  it("sends each kind of connection to its own REST base and API version", () => {
    const settings = { endpoints: { authorizeUrl: "", tokenUrl: "", apiUrl: "https://api.atlassian.com" } };
    expect(jiraRestBase(settings, { authMethod: "oauth2", metadata: { cloudId: "c-1" } })).toEqual({ base: "https://api.atlassian.com/ex/jira/c-1", apiVersion: "3" });
    expect(jiraRestBase(settings, { authMethod: "api_token", metadata: {}, baseUrl: `${SITE}/wiki` })).toEqual({ base: SITE, apiVersion: "3" });
    expect(jiraRestBase(settings, { authMethod: "personal_access_token", metadata: {}, baseUrl: DC })).toEqual({ base: DC, apiVersion: "2" });
    expect(() => jiraRestBase(settings, { authMethod: "personal_access_token", metadata: {} })).toThrow(/no base URL/);
    expect(jiraAuthorization("api_token", "tok", { email: "a@b.example" })).toBe(`Basic ${Buffer.from("a@b.example:tok").toString("base64")}`);
    expect(jiraAuthorization("personal_access_token", "tok", {})).toBe("Bearer tok");
  });

  it("asks for the gateway audience, consent, space-separated scopes and always offline_access, without PKCE", () => {
    const settings = { clientId: "c", redirectUri: REDIRECT, scopes: ["read:jira-work", "write:jira-work"] } as unknown as ConnectorSettings;
    expect(jiraConnector.authorizationParams(settings)).toEqual({
      audience: "api.atlassian.com",
      client_id: "c",
      scope: "read:jira-work write:jira-work offline_access",
      redirect_uri: REDIRECT,
      response_type: "code",
      prompt: "consent",
    });
    expect(jiraConnector.pkce).toBe(false);
    expect(jiraConnector.defaultScopes).toEqual(SCOPES);
  });
});

describe("the token endpoint takes JSON", () => {
  it("sends the code exchange and the refresh as JSON with the client credentials inside, and validates the answer", async () => {
    const sent: { body: Json; contentType: string | null }[] = [];
    const answer = { access_token: "eyJ.a.b", expires_in: 3600, token_type: "Bearer", refresh_token: "eyJ.r.t", scope: "read:jira-work offline_access" };
    const fetchStub = (async (_url: string | URL | Request, init?: RequestInit) => {
      sent.push({ body: JSON.parse(String(init?.body)) as Json, contentType: new Headers(init?.headers).get("content-type") });
      return new Response(JSON.stringify(answer), { status: 200, headers: { "content-type": "application/json" } });
    }) as typeof fetch;
    const ctx = stubContext(fetchStub);
    const grant = await jiraConnector.exchangeCode(ctx, { code: "the-code" });
    expect(grant).toEqual({ accessToken: "eyJ.a.b", refreshToken: "eyJ.r.t", expiresInSeconds: 3600, scopes: ["read:jira-work", "offline_access"], metadata: {} });
    await jiraConnector.refreshToken?.(ctx, "eyJ.r.t");
    expect(sent.map((s) => s.contentType)).toEqual(["application/json; charset=utf-8", "application/json; charset=utf-8"]);
    expect(sent[0]?.body).toEqual({ grant_type: "authorization_code", client_id: "client", client_secret: "secret", code: "the-code", redirect_uri: REDIRECT });
    expect(sent[1]?.body).toEqual({ grant_type: "refresh_token", client_id: "client", client_secret: "secret", refresh_token: "eyJ.r.t" });
  });

  it("turns an answer that is not a token response into an upstream error", async () => {
    const fetchStub = (async () => new Response(JSON.stringify({ expires_in: 3600 }), { status: 200 })) as typeof fetch;
    await expect(jiraConnector.exchangeCode(stubContext(fetchStub), { code: "c" })).rejects.toMatchObject({ type: "upstream", code: "unparsable_response" });
  });
});

function stubContext(fetchStub: typeof fetch): ConnectorContext {
  const settings: ConnectorSettings = {
    mode: "live",
    options: {},
    clientId: "client",
    clientSecret: "secret",
    endpoints: { authorizeUrl: "https://auth.atlassian.com/authorize", tokenUrl: "https://auth.atlassian.com/oauth/token", apiUrl: "https://api.atlassian.com" },
    redirectUri: REDIRECT,
    scopes: SCOPES,
  };
  return {
    settings,
    http: new ProviderHttp({ provider: "jira", displayName: "Jira", classify: classifyJira, policy: { ...jiraRetryPolicy, attempts: 1 }, timeoutMs: 2_000, fetch: fetchStub }),
  };
}

// ---------------------------------------------------------------------------
// The sandbox, and the connector against it
// ---------------------------------------------------------------------------

async function sandboxKit(options: JiraSandboxOptions = {}) {
  let offsetMs = 0;
  const sandbox = await startJiraSandbox({ redirectUris: [REDIRECT], now: () => Date.now() + offsetMs, ...options });
  const settings: ConnectorSettings = {
    mode: "sandbox",
    options: {},
    clientId: sandbox.clientId,
    clientSecret: sandbox.clientSecret,
    endpoints: sandbox.endpoints,
    redirectUri: REDIRECT,
    scopes: SCOPES,
    sandboxUrl: sandbox.url,
  };
  const http = new ProviderHttp({ provider: "jira", displayName: "Jira", classify: classifyJira, policy: { ...jiraRetryPolicy, attempts: 1 }, timeoutMs: 2_000 });
  const ctx: ConnectorContext = { settings, http };
  const siteCtx: ConnectorContext = { settings, http, baseUrl: sandbox.url };
  const consentParams = (extra: Record<string, string | undefined> = {}) => ({
    audience: "api.atlassian.com",
    client_id: sandbox.clientId,
    scope: SCOPES.join(" "),
    redirect_uri: REDIRECT,
    state: "s1",
    response_type: "code",
    prompt: "consent",
    ...extra,
  });
  const authorize = (params: Record<string, string | undefined>) => {
    const url = new URL(sandbox.endpoints.authorizeUrl);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
    return fetch(url, { redirect: "manual" });
  };
  const consent = async (extra: Record<string, string | undefined> = {}): Promise<URLSearchParams> => {
    const res = await authorize(consentParams(extra));
    expect(res.status).toBe(302);
    return new URL(res.headers.get("location") as string).searchParams;
  };
  const tokenJson = async (body: Json) => {
    const res = await fetch(sandbox.endpoints.tokenUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
  };
  const client = { client_id: sandbox.clientId, client_secret: sandbox.clientSecret };
  /** A full consent and code exchange: the token answer. */
  const grant = async (scope = SCOPES.join(" ")): Promise<Json> => {
    const code = (await consent({ scope })).get("code") as string;
    const res = await tokenJson({ grant_type: "authorization_code", ...client, code, redirect_uri: REDIRECT });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };
  const refresh = (refreshToken: string) => tokenJson({ grant_type: "refresh_token", ...client, refresh_token: refreshToken });
  const get = async (path: string, authorization?: string) => {
    const res = await fetch(`${sandbox.url}${path}`, authorization ? { headers: { authorization } } : {});
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Json & Json[] };
  };
  const control = async (path: string, body?: unknown, method = "POST") => {
    const res = await fetch(`${sandbox.url}${path}`, { method, ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const requests = async () => ((await control("/_sandbox/requests", undefined, "GET")).body as { requests: { method: string; path: string; status?: number }[] }).requests;
  const basic = (email: string, token: string) => `Basic ${Buffer.from(`${email}:${token}`).toString("base64")}`;
  const advance = (ms: number) => {
    offsetMs += ms;
  };
  return { sandbox, ctx, siteCtx, consentParams, authorize, consent, tokenJson, client, grant, refresh, get, control, requests, basic, advance };
}
type Kit = Awaited<ReturnType<typeof sandboxKit>>;

describe("sandbox: the consent page (auth.atlassian.com/authorize)", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit();
  });
  afterAll(async () => k.sandbox.close());

  it("redirects with a code and the state", async () => {
    const params = await k.consent();
    expect(params.get("state")).toBe("s1");
    expect(params.get("code")).toMatch(/^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/);
  });

  it.each([
    ["an unknown client_id", { client_id: "nope" }, /client_id/],
    ["an unregistered redirect_uri", { redirect_uri: "https://evil.example/cb" }, /redirect_uri/],
    ["no audience", { audience: undefined }, /audience/],
    ["another audience", { audience: "auth.atlassian.com" }, /audience/],
  ])("shows an error page for %s, never a redirect", async (_what, extra, text) => {
    const res = await k.authorize(k.consentParams(extra));
    expect(res.status).toBe(400);
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    expect(await res.text()).toMatch(text);
  });

  it("escapes what it echoes on the error page", async () => {
    const res = await k.authorize(k.consentParams({ redirect_uri: "https://x.example/<script>" }));
    expect(await res.text()).not.toContain("<script>");
  });

  it.each([
    ["the user declines", { _sandbox_decision: "deny" }, "access_denied"],
    ["another response_type", { response_type: "token" }, "unsupported_response_type"],
    ["no scope", { scope: "" }, "invalid_scope"],
    ["a comma-separated scope list", { scope: "read:jira-work,read:jira-user" }, "invalid_scope"],
  ])("redirects back with an error when %s", async (_what, extra, error) => {
    const params = await k.consent(extra);
    expect(params.get("error")).toBe(error);
    expect(params.get("state")).toBe("s1");
    expect(params.has("code")).toBe(false);
  });
});

describe("sandbox: the token endpoint (auth.atlassian.com/oauth/token)", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit();
  });
  afterAll(async () => k.sandbox.close());

  it("answers a JSON code exchange with a 1-hour JWT access token and a refresh token (offline_access)", async () => {
    const body = await k.grant();
    expect(body).toMatchObject({ expires_in: 3600, token_type: "Bearer", scope: SCOPES.join(" ") });
    expect(body.access_token).toMatch(/^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/);
    const claims = JSON.parse(Buffer.from((body.access_token as string).split(".")[1] as string, "base64url").toString()) as Json;
    expect(claims).toMatchObject({ iss: "https://auth.atlassian.com", aud: k.sandbox.clientId, "https://atlassian.com/3lo": true });
    expect(typeof body.refresh_token).toBe("string");
  });

  it("gives no refresh token without offline_access", async () => {
    const body = await k.grant("read:jira-user read:jira-work");
    expect(body.refresh_token).toBeUndefined();
  });

  it("accepts the form encoding and client credentials in Basic too", async () => {
    const code = (await k.consent()).get("code") as string;
    const res = await fetch(k.sandbox.endpoints.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${k.sandbox.clientId}:${k.sandbox.clientSecret}`).toString("base64")}` },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT }),
    });
    expect(res.status).toBe(200);
  });

  it("refuses bad client credentials with 401 access_denied, the same code a declining user gets", async () => {
    const code = (await k.consent()).get("code") as string;
    const res = await k.tokenJson({ grant_type: "authorization_code", client_id: k.sandbox.clientId, client_secret: "wrong", code, redirect_uri: REDIRECT });
    expect(res).toMatchObject({ status: 401, body: { error: "access_denied", error_description: "Unauthorized" } });
    expect(res.headers.get("cache-control")).toBe("no-store");
    // The code was not spent by the refused attempt.
    expect((await k.tokenJson({ grant_type: "authorization_code", ...k.client, code, redirect_uri: REDIRECT })).status).toBe(200);
  });

  it("refuses a code for another redirect URI, an unknown one, and a reused one with 403 invalid_grant; reuse also revokes what it minted", async () => {
    const code = (await k.consent()).get("code") as string;
    expect(await k.tokenJson({ grant_type: "authorization_code", ...k.client, code, redirect_uri: "http://localhost:3000/other" })).toMatchObject({
      status: 403,
      body: { error: "invalid_grant", error_description: "Invalid authorization code" },
    });
    expect((await k.tokenJson({ grant_type: "authorization_code", ...k.client, code: "eyJx.eyJy.z", redirect_uri: REDIRECT })).status).toBe(403);
    const first = await k.tokenJson({ grant_type: "authorization_code", ...k.client, code, redirect_uri: REDIRECT });
    expect(first.status).toBe(200);
    const me = () => k.get(`/ex/jira/${"x"}/rest/api/3/myself`, `Bearer ${first.body.access_token as string}`);
    const resources = () => k.get("/oauth/token/accessible-resources", `Bearer ${first.body.access_token as string}`);
    expect((await resources()).status).toBe(200);
    expect((await k.tokenJson({ grant_type: "authorization_code", ...k.client, code, redirect_uri: REDIRECT })).status).toBe(403);
    expect((await resources()).status).toBe(401);
    expect((await me()).status).toBe(401);
    expect((await k.refresh(first.body.refresh_token as string)).body).toMatchObject({ error: "invalid_grant" });
  });

  it("ignores a PKCE verifier (Atlassian has no PKCE)", async () => {
    const code = (await k.consent({ code_challenge: "x".repeat(43), code_challenge_method: "S256" })).get("code") as string;
    expect((await k.tokenJson({ grant_type: "authorization_code", ...k.client, code, redirect_uri: REDIRECT, code_verifier: "y".repeat(43) })).status).toBe(200);
  });

  it.each([
    [{ grant_type: "authorization_code", redirect_uri: REDIRECT }, 400, "invalid_request"],
    [{ code: "c" }, 400, "invalid_request"],
    [{ grant_type: "password" }, 403, "unauthorized_client"],
    [{ grant_type: "refresh_token" }, 400, "invalid_request"],
  ])("answers %j with %i %s", async (body, status, error) => {
    expect(await k.tokenJson({ ...k.client, ...body })).toMatchObject({ status, body: { error } });
  });
});

describe("sandbox: rotating refresh tokens", () => {
  it("rotates; a used one still works within the leeway, and reused after it kills the whole chain with 403 invalid_grant", async () => {
    const k = await sandboxKit();
    try {
      const first = await k.grant();
      const r1 = first.refresh_token as string;
      const second = await k.refresh(r1);
      expect(second.status).toBe(200);
      const r2 = second.body.refresh_token as string;
      expect(r2).not.toBe(r1);
      // A concurrent refresh with the same token inside the 10-minute leeway succeeds.
      k.advance(9 * 60_000);
      expect((await k.refresh(r1)).status).toBe(200);
      k.advance(2 * 60_000);
      expect(await k.refresh(r1)).toMatchObject({ status: 403, body: { error: "invalid_grant", error_description: "Unknown or invalid refresh token." } });
      // The newest one died with the chain; the access tokens already issued still work until they expire.
      expect((await k.refresh(r2)).status).toBe(403);
      expect((await k.get("/oauth/token/accessible-resources", `Bearer ${second.body.access_token as string}`)).status).toBe(200);
    } finally {
      await k.sandbox.close();
    }
  });

  it("refuses any reuse when the leeway is zero", async () => {
    const k = await sandboxKit({ refreshTokenGraceSeconds: 0 });
    try {
      const r1 = (await k.grant()).refresh_token as string;
      expect((await k.refresh(r1)).status).toBe(200);
      expect((await k.refresh(r1)).status).toBe(403);
    } finally {
      await k.sandbox.close();
    }
  });

  it("expires access tokens after accessTokenTtlSeconds, and refresh tokens after 90 days unused and 365 days after consent", async () => {
    const k = await sandboxKit({ accessTokenTtlSeconds: 60 });
    try {
      const first = await k.grant();
      const resources = (token: unknown) => k.get("/oauth/token/accessible-resources", `Bearer ${token as string}`);
      k.advance(61_000);
      expect(await resources(first.access_token)).toMatchObject({ status: 401, body: { code: 401, message: "Unauthorized" } });
      // Kept alive by a refresh every 80 days, the chain still ends at 365 days.
      let refreshToken = first.refresh_token as string;
      for (let day = 80; day < 365; day += 80) {
        k.advance(80 * 86_400_000);
        const next = await k.refresh(refreshToken);
        expect(next.status, `day ${day}`).toBe(200);
        refreshToken = next.body.refresh_token as string;
      }
      k.advance(60 * 86_400_000);
      expect((await k.refresh(refreshToken)).status).toBe(403);

      const idle = (await k.grant()).refresh_token as string;
      k.advance(91 * 86_400_000);
      expect((await k.refresh(idle)).status).toBe(403);
    } finally {
      await k.sandbox.close();
    }
  });
});

describe("sandbox: the gateway and the site", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit();
  });
  afterAll(async () => k.sandbox.close());

  it("lists this sandbox's own origin as the Jira site, with the granted Jira scopes", async () => {
    const token = (await k.grant()).access_token as string;
    const res = await k.get("/oauth/token/accessible-resources", `Bearer ${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([{ id: expect.stringMatching(/^[0-9a-f-]{36}$/) as string, url: k.sandbox.url, name: "autoflow-sandbox", scopes: ["read:jira-user", "read:jira-work"], avatarUrl: expect.any(String) as string }]);
    // A consent without Jira scopes reaches no Jira site.
    const other = (await k.grant("read:me offline_access")).access_token as string;
    expect((await k.get("/oauth/token/accessible-resources", `Bearer ${other}`)).body).toEqual([]);
  });

  it("answers /myself through the gateway for the site's cloud id, and 401 for another cloud or a missing scope", async () => {
    const token = (await k.grant()).access_token as string;
    const [site] = (await k.get("/oauth/token/accessible-resources", `Bearer ${token}`)).body as unknown as { id: string }[];
    const me = await k.get(`/ex/jira/${site?.id as string}/rest/api/3/myself`, `Bearer ${token}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ accountId: expect.stringMatching(/^712020:/) as string, accountType: "atlassian", displayName: "Sandbox User" });
    expect(me.headers.get("x-arequestid")).toBeTruthy();
    expect((await k.get(`/ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/myself`, `Bearer ${token}`)).status).toBe(401);
    const narrow = (await k.grant("read:jira-work offline_access")).access_token as string;
    expect(await k.get(`/ex/jira/${site?.id as string}/rest/api/3/myself`, `Bearer ${narrow}`)).toMatchObject({ status: 401, body: { code: 401, message: "Unauthorized; scope does not match" } });
  });

  it("takes a Cloud API token as Basic email:token on /rest/api/3 and /2, and refuses a wrong email or token like Jira", async () => {
    const desk = (await k.control("/_sandbox/credentials", {})).body;
    expect(desk).toMatchObject({ apiKey: expect.stringMatching(/^ATATT3xFfGF0[\w-]+=[0-9A-F]{8}$/) as string, email: expect.any(String) as string, baseUrl: k.sandbox.url });
    expect((desk.apiKey as string).length).toBe(192);
    const ok = await k.get("/rest/api/3/myself", k.basic(desk.email as string, desk.apiKey as string));
    expect(ok.status).toBe(200);
    expect(ok.body.accountId).toBe(desk.accountId);
    expect((await k.get("/rest/api/2/myself", k.basic(desk.email as string, desk.apiKey as string))).body.accountId).toBe(desk.accountId);
    const wrong = await k.get("/rest/api/3/myself", k.basic("someone@else.example", desk.apiKey as string));
    expect(wrong).toMatchObject({ status: 401, body: { errorMessages: ["Client must be authenticated to access this resource."], errors: {} } });
    expect(wrong.headers.get("x-seraph-loginreason")).toBe("AUTHENTICATED_FAILED");
    expect((await k.get("/rest/api/3/myself")).status).toBe(401);
    // A 3LO token does not work against the site.
    expect((await k.get("/rest/api/3/myself", `Bearer ${(await k.grant()).access_token as string}`)).status).toBe(401);
  });

  it("takes a Data Center PAT as Bearer on /rest/api/2 only, answering key and name instead of accountId", async () => {
    const desk = (await k.control("/_sandbox/credentials", { type: "datacenter" })).body;
    expect(desk).toMatchObject({ accessToken: expect.stringMatching(/^[A-Za-z0-9+/]{44}$/) as string, baseUrl: k.sandbox.url, key: "JIRAUSER10100", name: "sandbox.user" });
    expect(desk).not.toHaveProperty("email");
    const me = await k.get("/rest/api/2/myself", `Bearer ${desk.accessToken as string}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ key: "JIRAUSER10100", name: "sandbox.user" });
    expect(me.body).not.toHaveProperty("accountId");
    expect(me.headers.get("x-ausername")).toBe("sandbox.user");
    expect(await k.get("/rest/api/3/myself", `Bearer ${desk.accessToken as string}`)).toMatchObject({ status: 404, body: { "status-code": 404 } });
  });

  it("refuses an expired API token", async () => {
    const desk = (await k.control("/_sandbox/credentials", { expiresInDays: 1 })).body;
    expect((await k.get("/rest/api/3/myself", k.basic(desk.email as string, desk.apiKey as string))).status).toBe(200);
    k.advance(86_400_000 + 1000);
    expect((await k.get("/rest/api/3/myself", k.basic(desk.email as string, desk.apiKey as string))).status).toBe(401);
  });

  it("refuses an unknown desk request", async () => {
    expect((await k.control("/_sandbox/credentials", { type: "server" })).status).toBe(400);
    expect((await k.control("/_sandbox/credentials", { expiresInDays: 366 })).status).toBe(400);
  });
});

describe("sandbox: faults as Atlassian sends them", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit();
  });
  afterAll(async () => k.sandbox.close());

  it("throttles the site with Retry-After, X-RateLimit-Reset (an ISO minute) and RateLimit-Reason", async () => {
    const desk = (await k.control("/_sandbox/credentials", {})).body;
    await k.control("/_sandbox/faults", { fault: "rate-limit", times: 1, retryAfterSeconds: 90 });
    const res = await k.get("/rest/api/3/myself", k.basic(desk.email as string, desk.apiKey as string));
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("90");
    expect(res.headers.get("x-ratelimit-reset")).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\dZ$/);
    expect(res.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(res.headers.get("ratelimit-reason")).toBe("jira-burst-based");
    const reset = secondsUntilReset(res.headers.get("x-ratelimit-reset")) as number;
    expect(reset).toBeGreaterThanOrEqual(90);
    expect(reset).toBeLessThanOrEqual(150);
  });

  it("fails each host in its own shape: the token endpoint RFC 6749, the gateway {code, message}, the site an ErrorCollection", async () => {
    await k.control("/_sandbox/faults", { fault: "server-error", times: 3 });
    expect(await k.tokenJson({ grant_type: "refresh_token", ...k.client, refresh_token: "x" })).toMatchObject({ status: 503, body: { error: "temporarily_unavailable" } });
    expect(await k.get("/oauth/token/accessible-resources", "Bearer x")).toMatchObject({ status: 503, body: { code: 503, message: "Service Unavailable" } });
    expect(await k.get("/rest/api/3/myself")).toMatchObject({ status: 500, body: { errorMessages: ["Internal server error"] } });
    await k.control("/_sandbox/faults", { fault: "bad-request", times: 1 });
    expect(await k.get("/rest/api/3/myself")).toMatchObject({ status: 400, body: { errorMessages: [], errors: { expand: expect.any(String) as string } } });
  });

  it("revoke-all revokes access and refresh tokens, API tokens and PATs", async () => {
    const granted = await k.grant();
    const cloud = (await k.control("/_sandbox/credentials", {})).body;
    const dc = (await k.control("/_sandbox/credentials", { type: "datacenter" })).body;
    await k.control("/_sandbox/faults", { fault: "revoke-all" });
    expect((await k.get("/oauth/token/accessible-resources", `Bearer ${granted.access_token as string}`)).status).toBe(401);
    expect((await k.refresh(granted.refresh_token as string)).status).toBe(403);
    expect((await k.get("/rest/api/3/myself", k.basic(cloud.email as string, cloud.apiKey as string))).status).toBe(401);
    expect((await k.get("/rest/api/2/myself", `Bearer ${dc.accessToken as string}`)).status).toBe(401);
  });
});

describe("the connector against the sandbox", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit();
  });
  afterAll(async () => k.sandbox.close());

  it("reads the cloud id, site and account of a new grant, then probes /myself through the gateway alone", async () => {
    const code = (await k.consent()).get("code") as string;
    const grant = await jiraConnector.exchangeCode(k.ctx, { code });
    expect(grant).toMatchObject({ expiresInSeconds: 3600, scopes: SCOPES });
    expect(grant.refreshToken).toBeDefined();
    const first = await identify(jiraConnector, k.ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: {} });
    expect(first.metadata).toEqual({ siteUrl: k.sandbox.url, accountId: expect.stringMatching(/^712020:/) as string, cloudId: expect.any(String) as string, siteName: "autoflow-sandbox" });
    expect(first.summary).toMatchObject({ jiraSites: "1", deployment: "Cloud", displayName: "Sandbox User" });
    await k.control("/_sandbox/requests", undefined, "DELETE");
    await identify(jiraConnector, k.ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: first.metadata });
    expect((await k.requests()).map((r) => r.path)).toEqual([`/ex/jira/${first.metadata.cloudId as string}/rest/api/3/myself`]);
  });

  it("refuses a grant that reaches no Jira site as auth", async () => {
    const code = (await k.consent({ scope: "read:me offline_access" })).get("code") as string;
    const grant = await jiraConnector.exchangeCode(k.ctx, { code });
    await expect(identify(jiraConnector, k.ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: {} })).rejects.toMatchObject({ type: "auth", code: JiraErrorCodes.NO_JIRA_SITE });
  });

  it("refreshes with rotation, and a reused refresh token is an auth error", async () => {
    const k0 = await sandboxKit({ refreshTokenGraceSeconds: 0 });
    try {
      const code = (await k0.consent()).get("code") as string;
      const grant = await jiraConnector.exchangeCode(k0.ctx, { code });
      const renewed = await jiraConnector.refreshToken?.(k0.ctx, grant.refreshToken as string);
      expect(renewed?.refreshToken).toBeDefined();
      expect(renewed?.refreshToken).not.toBe(grant.refreshToken);
      await expect(jiraConnector.refreshToken?.(k0.ctx, grant.refreshToken as string)).rejects.toMatchObject({ type: "auth", code: "invalid_grant", status: 403 });
    } finally {
      await k0.sandbox.close();
    }
  });

  it("identifies a Data Center PAT by its user key, through /rest/api/2/myself", async () => {
    const desk = (await k.control("/_sandbox/credentials", { type: "datacenter" })).body;
    const parsed = parseJiraCredential({ accessToken: desk.accessToken as string, baseUrl: desk.baseUrl as string });
    await k.control("/_sandbox/requests", undefined, "DELETE");
    const identity = await identify(jiraConnector, k.siteCtx, { accessToken: parsed.token, authMethod: parsed.authMethod, metadata: parsed.metadata ?? {} });
    expect(identity.metadata).toEqual({ siteUrl: k.sandbox.url, accountId: "JIRAUSER10100" });
    expect(identity.summary).toMatchObject({ deployment: "Data Center", key: "JIRAUSER10100", name: "sandbox.user" });
    expect((await k.requests()).map((r) => r.path)).toEqual(["/rest/api/2/myself"]);
  });

  it("refuses a PAT sent as Basic, and says which input to fix when the context path is wrong", async () => {
    const desk = (await k.control("/_sandbox/credentials", { type: "datacenter" })).body;
    const error = await identify(jiraConnector, k.siteCtx, { accessToken: desk.accessToken as string, authMethod: "api_token", metadata: { email: "sandbox.user@autoflow-sandbox.invalid" } })
      .catch((e: unknown) => e);
    // Basic with a PAT is refused first: Data Center PATs are Bearer only.
    expect(error).toMatchObject({ type: "auth", status: 401 });
    const notFound = await identify(jiraConnector, { ...k.siteCtx, baseUrl: `${k.sandbox.url}/wiki` }, { accessToken: desk.accessToken as string, authMethod: "personal_access_token", metadata: {} })
      .catch((e: unknown) => e);
    expect(notFound).toMatchObject({ type: "schema", status: 404, field: "baseUrl" });
    expect((notFound as Error).message).toMatch(/context path included/);
  });
});

// ---------------------------------------------------------------------------
// Through the HTTP API: the two key paths, and a hostile base URL
// ---------------------------------------------------------------------------

describe("through the service: Jira's key paths", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());
  const base = "/api/integrations/jira";

  it("lists Jira with its three auth methods and no PKCE", async () => {
    const res = await h.request({ method: "GET", url: "/api/integrations", user: "u" });
    const entry = (res.json() as { providers: Json[] }).providers.find((p) => p.id === "jira");
    expect(entry).toMatchObject({ authMethods: ["oauth2", "api_token", "personal_access_token"], pkce: false });
  });

  it("connects a Cloud API token with email and site: Basic against /rest/api/3/myself, the email kept for Basic", async () => {
    const desk = (await h.sandbox("jira", "/_sandbox/credentials", { body: {} })) as Json;
    await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
    const res = await h.request({ method: "POST", url: `${base}/connections`, user: "cloud", body: { apiKey: desk.apiKey, email: desk.email, baseUrl: desk.baseUrl } });
    expect(res.statusCode, res.body).toBe(201);
    const connection = res.json() as Json;
    expect(connection).toMatchObject({ authMethod: "api_token", siteUrl: h.sandboxUrl("jira"), accountId: desk.accountId, email: desk.email, scopes: [] });
    expect(connection).not.toHaveProperty("cloudId");
    expect(connection.tokenMasked).toMatch(/^ATAT\*{4}[0-9A-F]{4}$/);
    expect((await h.sandboxRequests("jira")).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(["GET /rest/api/3/myself 200"]);
    const test = (await h.request({ method: "POST", url: `${base}/test`, user: "cloud" })).json() as Json;
    expect(test).toMatchObject({ authMethod: "api_token", accountId: desk.accountId, deployment: "Cloud" });
  });

  it("connects a Data Center PAT without email: Bearer against /rest/api/2/myself, the user key as accountId", async () => {
    const desk = (await h.sandbox("jira", "/_sandbox/credentials", { body: { type: "datacenter" } })) as Json;
    await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
    const res = await h.request({ method: "POST", url: `${base}/connections`, user: "dc", body: { accessToken: desk.accessToken, baseUrl: desk.baseUrl } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ authMethod: "personal_access_token", siteUrl: h.sandboxUrl("jira"), accountId: "JIRAUSER10100" });
    expect((await h.sandboxRequests("jira")).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(["GET /rest/api/2/myself 200"]);
    const health = (await h.request({ method: "GET", url: `${base}/health`, user: "dc" })).json() as Json;
    expect(health).toMatchObject({ status: "ok", authMethod: "personal_access_token", tokenRefreshStatus: "not_applicable", accountId: "JIRAUSER10100" });
  });

  it("refuses a Cloud API token without its email as a schema error naming email, before any request", async () => {
    const desk = (await h.sandbox("jira", "/_sandbox/credentials", { body: {} })) as Json;
    await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
    const res = await h.request({ method: "POST", url: `${base}/connections`, user: "cloud", body: { apiKey: desk.apiKey, baseUrl: desk.baseUrl } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { type: "schema", field: "email", retryable: false, provider: "jira" } });
    expect(await h.sandboxRequests("jira")).toEqual([]);
  });

  it.each([
    ["the cloud metadata service", "https://169.254.169.254/latest", /not a public address/],
    ["plain http", "http://jira.acme.example", /only https/],
    ["a private address", "https://10.0.0.7:8443/jira", /not a public address/],
    ["credentials in the URL", "https://admin:pw@jira.acme.example", /credentials/],
  ])("refuses %s as a base URL with a 400 schema error before any request", async (_what, baseUrl, why) => {
    const desk = (await h.sandbox("jira", "/_sandbox/credentials", { body: { type: "datacenter" } })) as Json;
    await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
    const res = await h.request({ method: "POST", url: `${base}/connections`, user: "hostile", body: { accessToken: desk.accessToken, baseUrl } });
    expect(res.statusCode).toBe(400);
    const error = (res.json() as { error: Json }).error;
    expect(error).toMatchObject({ type: "schema", field: "baseUrl", code: "base_url_refused", provider: "jira" });
    expect(error.message).toMatch(why);
    expect(await h.sandboxRequests("jira")).toEqual([]);
    const listed = (await h.request({ method: "GET", url: `${base}/connections`, user: "hostile" })).json() as { connections: Json[] };
    expect(listed.connections).toEqual([]);
  });
});

describe("through the service: the actions on a Data Center connection (v2, startAt paging)", () => {
  it("creates issues with a text description and pages a JQL search by its numeric token", async () => {
    const h = await startHarness();
    try {
      const desk = (await h.sandbox("jira", "/_sandbox/credentials?form=connect", { body: { type: "datacenter" } })) as Record<string, unknown>;
      const connected = await h.request({ method: "POST", url: "/api/integrations/jira/connections", user: "dc", body: desk });
      expect(connected.statusCode, connected.body).toBe(201);
      expect((connected.json() as Record<string, unknown>).authMethod).toBe("personal_access_token");
      const run = async (action: string, input: unknown) => h.request({ method: "POST", url: `/api/integrations/jira/actions/${action}`, user: "dc", body: input });
      for (const n of [1, 2, 3]) {
        const created = await run("createIssue", { projectKey: "SBX", summary: `DC ${n}`, description: "plain text" });
        expect(created.statusCode, created.body).toBe(200);
      }
      await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
      const first = await run("searchIssues", { jql: 'project = SBX AND summary ~ "DC" ORDER BY created ASC', limit: 2 });
      expect(first.statusCode, first.body).toBe(200);
      const page = first.json() as { issues: { summary: string }[]; nextPageToken?: string };
      expect(page.issues.map((i) => i.summary)).toEqual(["DC 1", "DC 2"]);
      expect(page.nextPageToken).toBe("2");
      expect((await h.sandboxRequests("jira")).map((r) => `${r.method} ${r.path}`)).toEqual(["POST /rest/api/2/search"]);
      const rest = (await run("searchIssues", { jql: 'project = SBX AND summary ~ "DC" ORDER BY created ASC', nextPageToken: page.nextPageToken })).json() as { issues: { summary: string }[]; nextPageToken?: string };
      expect(rest.issues.map((i) => i.summary)).toEqual(["DC 3"]);
      expect(rest.nextPageToken).toBeUndefined();
      const refused = await run("searchIssues", { jql: "project = SBX", nextPageToken: "abc" });
      expect(refused.statusCode).toBe(400);
      expect(refused.json()).toMatchObject({ error: { field: "input.nextPageToken" } });
    } finally {
      await h.close();
    }
  });
});
