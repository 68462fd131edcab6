/**
 * Gmail's quirks only (the lifecycle is the contract suite's): Google's
 * error envelope and its 403 throttles, token and tokeninfo parsing, pasted
 * credentials, the profile probe and its tokeninfo fallback, and the
 * sandbox's fidelity to Google's wire.
 */
import { identify } from "../shared/call.js";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startHarness } from "../../testing/harness.js";
import type { ConnectorContext, ConnectorSettings } from "../shared/connector.js";
import { IntegrationError } from "../shared/errors.js";
import { ProviderHttp, type ProviderResponse } from "../shared/http.js";
import { challengeOf } from "../../sandbox/kit.js";
import { createCodeVerifier } from "../shared/oauth.js";
import { gmailRetryPolicy } from "./retryPolicy.js";
import {
  classifyGmail,
  gmailConnector,
  GOOGLE_ENDPOINTS,
  isScopeRefusal,
  parseGmailProfile,
  parseGmailToken,
  parseTokenInfo,
  secondsUntilPacificMidnight,
  tokenInfoUrl,
  USERINFO_EMAIL_SCOPE,
} from "./connector.js";
import { startGmailSandbox, type GmailSandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;

const REDIRECT = "http://localhost:3000/api/integrations/gmail/oauth/callback";
const READONLY = "https://www.googleapis.com/auth/gmail.readonly";
const SEND = "https://www.googleapis.com/auth/gmail.send";
const NOW = Date.parse("2026-03-10T12:00:00.000Z");

const response = (status: number, json: unknown, headers: Record<string, string> = {}): ProviderResponse => ({
  status,
  headers: new Headers(headers),
  text: typeof json === "string" ? json : JSON.stringify(json),
  json: typeof json === "string" ? undefined : json,
});
const envelope = (code: number, status: string, message: string, reasons: { reason: string; domain?: string }[], info?: string) => ({
  error: {
    code,
    message,
    errors: reasons.map((r) => ({ message, domain: r.domain ?? "global", reason: r.reason })),
    status,
    ...(info ? { details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: info, domain: "googleapis.com" }] } : {}),
  },
});
const op = { operation: "GET /gmail/v1/users/me/profile" };

/** [what, HTTP status, body, expected type, expected code] */
const CLASSIFICATION = [
  ["401 authError (legacy body)", 401, { error: { code: 401, message: "Invalid Credentials", errors: [{ domain: "global", reason: "authError", message: "Invalid Credentials", locationType: "header", location: "Authorization" }] } }, "auth", "authError"],
  ["401 UNAUTHENTICATED (new body, no errors[])", 401, { error: { code: 401, message: "Request had invalid authentication credentials.", status: "UNAUTHENTICATED" } }, "auth", "UNAUTHENTICATED"],
  ["403 insufficientPermissions", 403, envelope(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.", [{ reason: "insufficientPermissions" }], "ACCESS_TOKEN_SCOPE_INSUFFICIENT"), "auth", "insufficientPermissions"],
  ["403 ErrorInfo ACCESS_TOKEN_SCOPE_INSUFFICIENT only", 403, { error: { code: 403, message: "Request had insufficient authentication scopes.", status: "PERMISSION_DENIED", details: [{ reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT" }] } }, "auth", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"],
  ["403 rateLimitExceeded (per-minute quota)", 403, envelope(403, "PERMISSION_DENIED", "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'gmail.googleapis.com' for consumer 'project_number:1'.", [{ reason: "rateLimitExceeded", domain: "usageLimits" }]), "rate-limit", "rateLimitExceeded"],
  ["403 userRateLimitExceeded", 403, envelope(403, "PERMISSION_DENIED", "User Rate Limit Exceeded", [{ reason: "userRateLimitExceeded", domain: "usageLimits" }]), "rate-limit", "userRateLimitExceeded"],
  ["403 dailyLimitExceeded", 403, envelope(403, "PERMISSION_DENIED", "Daily Limit Exceeded", [{ reason: "dailyLimitExceeded", domain: "usageLimits" }]), "rate-limit", "dailyLimitExceeded"],
  ["403 domainPolicy", 403, envelope(403, "PERMISSION_DENIED", "The domain administrators have disabled Gmail apps.", [{ reason: "domainPolicy" }]), "auth", "domainPolicy"],
  ["403 accessNotConfigured (domain usageLimits, but not a throttle)", 403, envelope(403, "PERMISSION_DENIED", "Gmail API has not been used in project 1 before or it is disabled.", [{ reason: "accessNotConfigured", domain: "usageLimits" }], "SERVICE_DISABLED"), "auth", "accessNotConfigured"],
  ["403 forbidden (delegation denied)", 403, envelope(403, "PERMISSION_DENIED", "Delegation denied for a@b.example", [{ reason: "forbidden" }]), "auth", "forbidden"],
  ["429 RESOURCE_EXHAUSTED", 429, envelope(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [{ reason: "rateLimitExceeded" }], "RATE_LIMIT_EXCEEDED"), "rate-limit", "rateLimitExceeded"],
  ["429 concurrent requests", 429, envelope(429, "RESOURCE_EXHAUSTED", "Too many concurrent requests for user", [{ reason: "rateLimitExceeded" }]), "rate-limit", "rateLimitExceeded"],
  ["400 invalidArgument", 400, envelope(400, "INVALID_ARGUMENT", "Invalid id value", [{ reason: "invalidArgument" }]), "schema", "invalidArgument"],
  ["400 failedPrecondition", 400, envelope(400, "FAILED_PRECONDITION", "Precondition check failed.", [{ reason: "failedPrecondition" }]), "schema", "failedPrecondition"],
  ["404 notFound", 404, envelope(404, "NOT_FOUND", "Requested entity was not found.", [{ reason: "notFound" }]), "schema", "notFound"],
  ["500 backendError", 500, envelope(500, "INTERNAL", "Backend Error", [{ reason: "backendError" }]), "upstream", "backendError"],
  ["503 UNAVAILABLE", 503, envelope(503, "UNAVAILABLE", "The service is currently unavailable.", [{ reason: "backendError" }]), "upstream", "backendError"],
  ["502 HTML page", 502, "<html><title>Error 502 (Server Error)!!1</title></html>", "upstream", "http_502"],
  ["token 400 invalid_grant", 400, { error: "invalid_grant", error_description: "Token has been expired or revoked." }, "auth", "invalid_grant"],
  ["token 401 invalid_client", 401, { error: "invalid_client", error_description: "The OAuth client was not found." }, "auth", "invalid_client"],
  ["token 400 redirect_uri_mismatch", 400, { error: "redirect_uri_mismatch", error_description: "Bad Request" }, "schema", "redirect_uri_mismatch"],
  ["token 400 invalid_request", 400, { error: "invalid_request", error_description: "client_secret is missing." }, "schema", "invalid_request"],
  ["revoke 400 invalid_token", 400, { error: "invalid_token", error_description: "Token expired or revoked" }, "auth", "invalid_token"],
] as const;

describe("classifyGmail: Google's envelope, status and reason", () => {
  it.each(CLASSIFICATION.map(([what, status, body, type, code]) => ({ name: `${what} -> ${type}`, status, body, type, code })))("$name", ({ status, body, type, code }) => {
    expect(classifyGmail(response(status, body), op, NOW)).toMatchObject({ type, code });
  });

  it("answers null for a success", () => {
    expect(classifyGmail(response(200, { emailAddress: "a@b.example" }), op, NOW)).toBeNull();
  });

  it("says which grant error Google meant, from its description", () => {
    const verdict = classifyGmail(response(400, { error: "invalid_grant", error_description: "Missing code verifier." }), { operation: "token (authorization_code)" }, NOW);
    expect(verdict?.message).toMatch(/Missing code verifier/);
  });

  it("names the missing scope case apart from a bad token", () => {
    const scope = classifyGmail(response(403, envelope(403, "PERMISSION_DENIED", "x", [{ reason: "insufficientPermissions" }])), op, NOW);
    expect(scope?.message).toMatch(/lacks a scope/);
    const bad = classifyGmail(response(401, envelope(401, "UNAUTHENTICATED", "x", [{ reason: "authError" }])), op, NOW);
    expect(bad?.message).toMatch(/invalid, expired or revoked/);
    expect(isScopeRefusal(new IntegrationError({ type: "auth", status: 403, code: "insufficientPermissions", message: "x" }))).toBe(true);
    expect(isScopeRefusal(new IntegrationError({ type: "auth", status: 401, code: "authError", message: "x" }))).toBe(false);
  });

  it("reads the time to retry from Gmail's message when there is no Retry-After header", () => {
    const body = envelope(403, "PERMISSION_DENIED", `User-rate limit exceeded.  Retry after ${new Date(NOW + 90_000).toISOString()}`, [{ reason: "userRateLimitExceeded" }]);
    expect(classifyGmail(response(403, body), op, NOW)).toMatchObject({ type: "rate-limit", retryAfterSeconds: 90 });
    // With a header, the HTTP client reads that instead.
    expect(classifyGmail(response(403, body, { "retry-after": "5" }), op, NOW)?.retryAfterSeconds).toBeUndefined();
  });

  it("surfaces a daily quota with the time until Pacific midnight, so nothing retries it in vain", () => {
    const body = envelope(403, "PERMISSION_DENIED", "Daily Limit Exceeded", [{ reason: "dailyLimitExceeded", domain: "usageLimits" }]);
    // 12:00 UTC on 10 March 2026 is 05:00 PDT: 19 hours to midnight.
    expect(classifyGmail(response(403, body), op, NOW)?.retryAfterSeconds).toBe(19 * 3600);
  });

  it("computes seconds to Pacific midnight in winter and summer time", () => {
    expect(secondsUntilPacificMidnight(Date.parse("2026-01-15T08:00:00Z"))).toBe(86_400); // 00:00 PST
    expect(secondsUntilPacificMidnight(Date.parse("2026-07-15T06:59:00Z"))).toBe(60); // 23:59 PDT
  });
});

describe("pasted credentials", () => {
  const refuse = (input: { apiKey?: string; accessToken?: string }) => {
    try {
      parseGmailToken(input);
    } catch (error) {
      return error as IntegrationError;
    }
    throw new Error("accepted");
  };

  it("refuses any apiKey, naming the field and saying why", () => {
    for (const apiKey of ["AIzaSyD-0123456789abcdefghijklmnopqrstu", "ya29.a0AfB_byC0123456789abcdef"]) {
      const error = refuse({ apiKey });
      expect(error).toMatchObject({ type: "schema", field: "apiKey" });
      expect(error.message).toMatch(/^apiKey: Google has no API keys for Gmail/);
    }
  });

  it.each([
    ["AIzaSyD-0123456789abcdefghijklmnopqrstu", /no API keys/],
    ["1//0gABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh", /refresh token/],
    ["4/0AX4XfWh0123456789abcdefghijklmnop", /authorization code/],
    ["eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", /JWT/],
    ["GOCSPX-0123456789abcdefghijklmnop", /client secret/],
    ["not-a-key", /not a Google OAuth access token/],
    ["ya29.short", /not a Google OAuth access token/],
  ])("refuses %s as accessToken", (accessToken, why) => {
    const error = refuse({ accessToken });
    expect(error).toMatchObject({ type: "schema", field: "accessToken" });
    expect(error.message).toMatch(why);
  });

  it("requires accessToken", () => {
    expect(refuse({}).message).toMatch(/^accessToken is required/);
  });

  it("accepts a ya29. token as access_token", () => {
    expect(parseGmailToken({ accessToken: "ya29.a0AfB_byC0123456789abcdef-_.x" })).toEqual({ token: "ya29.a0AfB_byC0123456789abcdef-_.x", authMethod: "access_token" });
  });
});

describe("response parsing", () => {
  it("reads tokeninfo's string numbers and booleans (and accepts real ones)", () => {
    expect(parseTokenInfo({ aud: "x", scope: `${READONLY} ${USERINFO_EMAIL_SCOPE}`, exp: "1770000000", expires_in: "3245", email: "a@b.example", email_verified: "true", access_type: "offline" })).toEqual({
      scopes: [READONLY, USERINFO_EMAIL_SCOPE],
      email: "a@b.example",
      emailVerified: true,
      expiresInSeconds: 3245,
      accessType: "offline",
    });
    expect(parseTokenInfo({ scope: SEND, expires_in: 12, email_verified: false })).toEqual({ scopes: [SEND], expiresInSeconds: 12, emailVerified: false });
  });

  it.each([[{ expires_in: "soon" }], [{ email: "not an address" }], [[]]])("refuses a malformed tokeninfo answer as upstream: %j", (body) => {
    expect(() => parseTokenInfo(body)).toThrow(expect.objectContaining({ type: "upstream", code: "unparsable_response" }) as Error);
  });

  it("reads the profile with historyId as a string, and refuses other shapes", () => {
    expect(parseGmailProfile({ emailAddress: "a@b.example", messagesTotal: 3, threadsTotal: 2, historyId: "987654" })).toMatchObject({ historyId: "987654" });
    expect(() => parseGmailProfile({ emailAddress: "a@b.example", historyId: 987654 })).toThrow(IntegrationError);
    expect(() => parseGmailProfile({ messagesTotal: 3 })).toThrow(IntegrationError);
  });

  it("finds tokeninfo beside the token endpoint, also behind a proxy path", () => {
    expect(tokenInfoUrl({ endpoints: { authorizeUrl: "", apiUrl: "", tokenUrl: "https://oauth2.googleapis.com/token" } })).toBe("https://oauth2.googleapis.com/tokeninfo");
    expect(tokenInfoUrl({ endpoints: { authorizeUrl: "", apiUrl: "", tokenUrl: "https://proxy.example/google/token" } })).toBe("https://proxy.example/google/tokeninfo");
  });

  it("asks Google for offline access, fresh consent and space-separated scopes, without openid", () => {
    const settings: ConnectorSettings = {
      mode: "live",
      options: {},
      clientId: "c",
      clientSecret: "s",
      endpoints: { ...GOOGLE_ENDPOINTS },
      redirectUri: REDIRECT,
      scopes: [READONLY, SEND],
    };
    const params = gmailConnector.authorizationParams(settings);
    expect(params).toEqual({ client_id: "c", redirect_uri: REDIRECT, response_type: "code", scope: `${READONLY} ${SEND}`, access_type: "offline", prompt: "consent" });
    expect(gmailConnector.defaultScopes).toEqual([READONLY]);
  });
});

// ---------------------------------------------------------------------------
// The sandbox, and the connector against it
// ---------------------------------------------------------------------------

async function sandboxKit(options: GmailSandboxOptions = {}) {
  const sandbox = await startGmailSandbox({ redirectUris: [REDIRECT], ...options });
  const settings: ConnectorSettings = {
    mode: "sandbox",
    options: {},
    clientId: sandbox.clientId,
    clientSecret: sandbox.clientSecret,
    endpoints: sandbox.endpoints,
    redirectUri: REDIRECT,
    scopes: [READONLY],
    sandboxUrl: sandbox.url,
  };
  const ctx: ConnectorContext = {
    settings,
    http: new ProviderHttp({ provider: "gmail", displayName: "Gmail", classify: gmailConnector.classify, policy: { ...gmailRetryPolicy, attempts: 1 }, timeoutMs: 2_000 }),
  };
  const authorize = (params: Record<string, string | undefined>) => {
    const url = new URL(sandbox.endpoints.authorizeUrl);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
    return fetch(url, { redirect: "manual" });
  };
  const consentParams = (extra: Record<string, string | undefined> = {}) => ({
    client_id: sandbox.clientId,
    redirect_uri: REDIRECT,
    response_type: "code",
    scope: READONLY,
    access_type: "offline",
    prompt: "consent",
    state: "s1",
    ...extra,
  });
  /** Consent (auto-approved) and the callback's query. */
  const consent = async (extra: Record<string, string | undefined> = {}): Promise<URLSearchParams> => {
    const res = await authorize(consentParams(extra));
    expect(res.status).toBe(302);
    return new URL(res.headers.get("location") as string).searchParams;
  };
  const post = async (path: string, form: Record<string, string | undefined>, query = "") => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
    const res = await fetch(`${sandbox.url}${path}${query}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  const token = (form: Record<string, string | undefined>) => post("/token", { client_id: sandbox.clientId, client_secret: sandbox.clientSecret, ...form });
  /** A full code exchange with S256 PKCE; answers the token response. */
  const grant = async (extra: Record<string, string | undefined> = {}): Promise<Json> => {
    const verifier = createCodeVerifier();
    const params = await consent({ code_challenge: challengeOf(verifier), code_challenge_method: "S256", ...extra });
    const res = await token({ grant_type: "authorization_code", code: params.get("code") as string, redirect_uri: REDIRECT, code_verifier: verifier });
    expect(res.status, res.text).toBe(200);
    return JSON.parse(res.text) as Json;
  };
  const profile = async (accessToken?: string, path = "/gmail/v1/users/me/profile") => {
    const res = await fetch(`${sandbox.url}${path}`, accessToken ? { headers: { authorization: `Bearer ${accessToken}` } } : {});
    return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
  };
  const control = async (path: string, body?: unknown, method = "POST") => {
    const res = await fetch(`${sandbox.url}${path}`, { method, ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const requests = async () => ((await control("/_sandbox/requests", undefined, "GET")).body as { requests: { method: string; path: string }[] }).requests;
  return { sandbox, ctx, authorize, consentParams, consent, post, token, grant, profile, control, requests };
}
type Kit = Awaited<ReturnType<typeof sandboxKit>>;

describe("sandbox: Google's authorization endpoint", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit();
  });
  afterAll(async () => k.sandbox.close());

  it.each([
    ["an unknown client_id", { client_id: "123-abc.apps.googleusercontent.com" }, 401, "Error 401: invalid_client", /OAuth client was not found/],
    ["no client_id", { client_id: undefined }, 400, "Error 400: invalid_request", /client_id/],
    ["an unregistered redirect_uri", { redirect_uri: "https://evil.example/cb" }, 400, "Error 400: redirect_uri_mismatch", /redirect_uri=https:\/\/evil\.example\/cb/],
    ["no scope", { scope: undefined }, 400, "Error 400: invalid_request", /scope/],
    ["an unknown scope", { scope: "gmail.readonly" }, 400, "Error 400: invalid_scope", /invalid=\[gmail\.readonly\]/],
    ["a bad code_challenge_method", { code_challenge: "a".repeat(43), code_challenge_method: "S512" }, 400, "Error 400: invalid_request", /code_challenge_method/],
  ])("shows Google's error page for %s, without redirecting", async (_name, extra, status, title, detail) => {
    const res = await k.authorize(k.consentParams(extra));
    expect(res.status).toBe(status);
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain(title);
    expect(html).toMatch(detail);
  });

  it("redirects with the code, granted scopes, state and its issuer", async () => {
    const params = await k.consent({ scope: `${READONLY} email` });
    expect(params.get("code")).toMatch(/^4\/0A[A-Za-z0-9_-]{60,}$/);
    // Google writes the short OpenID names out in full.
    expect(params.get("scope")).toBe(`${READONLY} ${USERINFO_EMAIL_SCOPE}`);
    expect(params.get("state")).toBe("s1");
    expect(params.get("iss")).toBe(k.sandbox.url);
    expect(params.get("prompt")).toBe("consent");
  });

  it("redirects a refusal as error=access_denied with the state", async () => {
    const params = await k.consent({ _sandbox_decision: "deny" });
    expect(params.get("error")).toBe("access_denied");
    expect(params.get("state")).toBe("s1");
    expect(params.has("code")).toBe(false);
  });
});

describe("sandbox: Google's token endpoint", () => {
  let k: Kit;
  beforeAll(async () => {
    // tokenRotation is an app setting at Slack, not at Google: it must change nothing here.
    k = await sandboxKit({ tokenRotation: true });
  });
  afterAll(async () => k.sandbox.close());

  it("answers a code exchange as Google does", async () => {
    const verifier = createCodeVerifier();
    const params = await k.consent({ code_challenge: challengeOf(verifier), code_challenge_method: "S256" });
    const res = await k.token({ grant_type: "authorization_code", code: params.get("code") as string, redirect_uri: REDIRECT, code_verifier: verifier });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    const body = JSON.parse(res.text) as Json;
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in", "refresh_token", "scope", "token_type"]);
    expect(body).toMatchObject({ expires_in: 3599, token_type: "Bearer", scope: READONLY });
    expect(body.access_token).toMatch(/^ya29\.a0[A-Za-z0-9_-]{100,}$/);
    expect(body.refresh_token).toMatch(/^1\/\/0g[A-Za-z0-9_-]{60,}$/);
  });

  it.each([
    ["an unknown client", { client_id: "1-x.apps.googleusercontent.com" }, 401, "invalid_client", "The OAuth client was not found."],
    ["a wrong secret", { client_secret: "GOCSPX-wrong" }, 401, "invalid_client", "Unauthorized"],
    ["no secret", { client_secret: undefined }, 400, "invalid_request", "client_secret is missing."],
    ["no client id", { client_id: undefined }, 400, "invalid_request", "Could not determine client ID from request."],
    ["an unknown grant type", { grant_type: "password" }, 400, "unsupported_grant_type", "Invalid grant_type: password"],
    ["an unknown code", { code: "4/0Anothing" }, 400, "invalid_grant", "Malformed auth code."],
  ])("refuses %s", async (_name, override, status, error, description) => {
    const res = await k.token({ grant_type: "authorization_code", code: "4/0Aplaceholder", redirect_uri: REDIRECT, ...override });
    expect(res.status).toBe(status);
    expect(JSON.parse(res.text)).toEqual({ error, error_description: description });
  });

  it("checks the PKCE verifier: missing, wrong, or sent for a code without a challenge", async () => {
    const verifier = createCodeVerifier();
    const s256 = () => k.consent({ code_challenge: challengeOf(verifier), code_challenge_method: "S256" });
    const exchange = async (code: string, codeVerifier?: string) =>
      JSON.parse((await k.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: codeVerifier })).text) as Json;
    expect(await exchange((await s256()).get("code") as string)).toEqual({ error: "invalid_grant", error_description: "Missing code verifier." });
    expect(await exchange((await s256()).get("code") as string, createCodeVerifier())).toEqual({ error: "invalid_grant", error_description: "Invalid code verifier." });
    expect(await exchange((await k.consent()).get("code") as string, verifier)).toEqual({ error: "invalid_grant", error_description: "code_verifier or verifier is not needed." });
    // Google defaults the method to plain when a challenge comes without one.
    const plain = await k.consent({ code_challenge: verifier });
    expect(await exchange(plain.get("code") as string, verifier)).toMatchObject({ token_type: "Bearer" });
  });

  it("refuses a redirect_uri other than the authorization request's", async () => {
    const code = (await k.consent()).get("code") as string;
    const res = await k.token({ grant_type: "authorization_code", code, redirect_uri: "http://localhost:3000/other" });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({ error: "redirect_uri_mismatch", error_description: "Bad Request" });
  });

  it("refuses a reused code and revokes what it minted", async () => {
    const code = (await k.consent()).get("code") as string;
    const first = JSON.parse((await k.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT })).text) as Json;
    expect((await k.profile(first.access_token as string)).status).toBe(200);
    const again = await k.token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT });
    expect(again.status).toBe(400);
    expect(JSON.parse(again.text)).toEqual({ error: "invalid_grant", error_description: "Bad Request" });
    expect((await k.profile(first.access_token as string)).status).toBe(401);
    const refresh = await k.token({ grant_type: "refresh_token", refresh_token: first.refresh_token as string });
    expect(JSON.parse(refresh.text)).toEqual({ error: "invalid_grant", error_description: "Token has been expired or revoked." });
  });

  it("refreshes without rotating: no refresh_token in the answer, and the same one works again", async () => {
    const issued = await k.grant();
    for (let i = 0; i < 2; i++) {
      const res = await k.token({ grant_type: "refresh_token", refresh_token: issued.refresh_token as string });
      expect(res.status).toBe(200);
      const body = JSON.parse(res.text) as Json;
      expect(body).not.toHaveProperty("refresh_token");
      expect(body).toMatchObject({ expires_in: 3599, token_type: "Bearer", scope: READONLY });
      expect(body.access_token).not.toBe(issued.access_token);
      expect((await k.profile(body.access_token as string)).status).toBe(200);
    }
  });

  it("gives a refresh token only for offline access, and again only when consent is shown", async () => {
    expect(await k.grant({ access_type: undefined, prompt: undefined, login_hint: "online@sandbox.autoflow.invalid" })).not.toHaveProperty("refresh_token");
    expect(await k.grant({ prompt: undefined, login_hint: "fresh@sandbox.autoflow.invalid" })).toHaveProperty("refresh_token");
    expect(await k.grant({ prompt: undefined, login_hint: "fresh@sandbox.autoflow.invalid" })).not.toHaveProperty("refresh_token");
    expect(await k.grant({ prompt: "consent", login_hint: "fresh@sandbox.autoflow.invalid" })).toHaveProperty("refresh_token");
  });

  it("adds an id_token only when openid was asked for", async () => {
    const body = await k.grant({ scope: `openid ${READONLY}` });
    expect(body.id_token).toMatch(/^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/);
    expect(body.scope).toBe(`openid ${READONLY}`);
  });
});

describe("sandbox: expiry (Google's clock moved on)", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit({ refreshTokenTtlSeconds: 7 * 86_400 });
  });
  afterAll(async () => k.sandbox.close());
  afterEach(() => {
    vi.useRealTimers();
  });

  it("expires access tokens after accessTokenTtlSeconds with Google's 401, and tokeninfo refuses them", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const { access_token: accessToken } = await k.grant();
    vi.setSystemTime(Date.now() + 3598 * 1000);
    expect((await k.profile(accessToken as string)).status).toBe(200);
    vi.setSystemTime(Date.now() + 2 * 1000);
    const expired = await k.profile(accessToken as string);
    expect(expired.status).toBe(401);
    expect(expired.headers.get("www-authenticate")).toBe('Bearer realm="https://accounts.google.com/", error="invalid_token"');
    expect(expired.body).toMatchObject({ error: { code: 401, status: "UNAUTHENTICATED", errors: [{ reason: "authError" }], details: [{ reason: "ACCESS_TOKEN_EXPIRED" }] } });
    const info = await fetch(`${k.sandbox.url}/tokeninfo?access_token=${accessToken as string}`);
    expect(info.status).toBe(400);
    expect(await info.json()).toEqual({ error: "invalid_token", error_description: "Invalid Value" });
  });

  it("expires refresh tokens of an app in Testing status after seven days", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const { refresh_token: refreshToken } = await k.grant();
    vi.setSystemTime(Date.now() + 6 * 86_400 * 1000);
    expect((await k.token({ grant_type: "refresh_token", refresh_token: refreshToken as string })).status).toBe(200);
    vi.setSystemTime(Date.now() + 86_400 * 1000);
    const res = await k.token({ grant_type: "refresh_token", refresh_token: refreshToken as string });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({ error: "invalid_grant", error_description: "Token has been expired or revoked." });
  });
});

describe("sandbox: the live refresh token limit", () => {
  it("stops the oldest refresh token when the account holds more than the limit", async () => {
    const k = await sandboxKit({ refreshTokenLimit: 2 });
    try {
      const [first, second, third] = [await k.grant(), await k.grant(), await k.grant()];
      const refresh = async (t: Json) => (await k.token({ grant_type: "refresh_token", refresh_token: t.refresh_token as string })).status;
      expect(await refresh(first as Json)).toBe(400);
      expect(await refresh(second as Json)).toBe(200);
      expect(await refresh(third as Json)).toBe(200);
      // Its access token lives out its hour.
      expect((await k.profile((first as Json).access_token as string)).status).toBe(200);
    } finally {
      await k.sandbox.close();
    }
  });
});

describe("sandbox: revoke, tokeninfo and the Gmail profile", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit();
  });
  afterAll(async () => k.sandbox.close());

  it("revokes the whole grant from its refresh token, then answers invalid_token", async () => {
    const issued = await k.grant();
    const res = await k.post("/revoke", { token: issued.refresh_token as string });
    expect(res.status).toBe(200);
    expect((await k.profile(issued.access_token as string)).status).toBe(401);
    expect(JSON.parse((await k.token({ grant_type: "refresh_token", refresh_token: issued.refresh_token as string })).text)).toMatchObject({ error: "invalid_grant" });
    const again = await k.post("/revoke", { token: issued.refresh_token as string });
    expect(again.status).toBe(400);
    expect(JSON.parse(again.text)).toEqual({ error: "invalid_token", error_description: "Token expired or revoked" });
  });

  it("takes the token in the query too, and an access token ends its refresh token", async () => {
    const issued = await k.grant();
    const res = await k.post("/revoke", {}, `?token=${encodeURIComponent(issued.access_token as string)}`);
    expect(res.status).toBe(200);
    expect((await k.token({ grant_type: "refresh_token", refresh_token: issued.refresh_token as string })).status).toBe(400);
  });

  it("answers GET /revoke with 404, as the current host does", async () => {
    const res = await fetch(`${k.sandbox.url}/revoke?token=x`);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain("Error 404 (Not Found)!!1");
  });

  it("tells a token's scopes and expiry as strings, and the address only with userinfo.email", async () => {
    const readonly = await k.grant();
    const info = (await (await fetch(`${k.sandbox.url}/tokeninfo?access_token=${readonly.access_token as string}`)).json()) as Json;
    expect(info).toMatchObject({ aud: k.sandbox.clientId, azp: k.sandbox.clientId, scope: READONLY, access_type: "offline" });
    expect(info.expires_in).toMatch(/^\d+$/);
    expect(info.exp).toMatch(/^\d{10}$/);
    expect(info).not.toHaveProperty("email");
    const withEmail = await k.grant({ scope: `${SEND} email` });
    const info2 = (await (await fetch(`${k.sandbox.url}/tokeninfo?access_token=${withEmail.access_token as string}`)).json()) as Json;
    expect(info2).toMatchObject({ scope: `${SEND} ${USERINFO_EMAIL_SCOPE}`, email: "user1@sandbox.autoflow.invalid", email_verified: "true" });
  });

  it("answers the profile, for me or the account's own address, and via the access_token parameter", async () => {
    const { access_token: accessToken } = await k.grant();
    const me = await k.profile(accessToken as string);
    expect(me.status).toBe(200);
    expect(Object.keys(me.body).sort()).toEqual(["emailAddress", "historyId", "messagesTotal", "threadsTotal"]);
    expect(me.body.historyId).toMatch(/^\d+$/);
    expect((await k.profile(accessToken as string, `/gmail/v1/users/${me.body.emailAddress as string}/profile`)).status).toBe(200);
    const query = await fetch(`${k.sandbox.url}/gmail/v1/users/me/profile?access_token=${accessToken as string}`);
    expect(query.status).toBe(200);
    const other = await k.profile(accessToken as string, "/gmail/v1/users/someone@else.example/profile");
    expect(other.status).toBe(403);
    expect(other.body).toMatchObject({ error: { errors: [{ reason: "forbidden" }] } });
  });

  it("refuses a send-only grant at the profile with Google's insufficient-scope answer", async () => {
    const { access_token: accessToken } = await k.grant({ scope: SEND });
    const res = await k.profile(accessToken as string);
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toMatch(/error="insufficient_scope"/);
    expect(res.body).toMatchObject({
      error: {
        code: 403,
        message: "Request had insufficient authentication scopes.",
        status: "PERMISSION_DENIED",
        errors: [{ reason: "insufficientPermissions", domain: "global" }],
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT" }],
      },
    });
  });

  it("refuses a missing token as Login Required, and a refresh token as a bearer", async () => {
    const missing = await k.profile();
    expect(missing.status).toBe(401);
    expect(missing.body).toMatchObject({ error: { errors: [{ reason: "required", message: "Login Required." }], status: "UNAUTHENTICATED" } });
    const { refresh_token: refreshToken } = await k.grant();
    expect((await k.profile(refreshToken as string)).body).toMatchObject({ error: { errors: [{ reason: "authError" }] } });
  });

  it("hands out pasted-token credentials with the scopes asked for", async () => {
    const desk = await k.control("/_sandbox/credentials", { scopes: [SEND] });
    expect(desk.status).toBe(201);
    expect(desk.body).toMatchObject({ scopes: [SEND], expiresInSeconds: 3599 });
    expect(desk.body.accessToken).toMatch(/^ya29\./);
    expect((await k.profile(desk.body.accessToken as string)).status).toBe(403);
    expect((await k.control("/_sandbox/credentials", { scopes: ["gmail.readonly"] })).status).toBe(400);
  });

  it("answers unknown paths with Google's 404 page", async () => {
    const res = await fetch(`${k.sandbox.url}/gmail/v1/users/me/nothing`);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain("That’s an error.");
  });
});

describe("sandbox: faults as Google sends them", () => {
  let k: Kit;
  let accessToken: string;
  beforeAll(async () => {
    k = await sandboxKit();
    accessToken = (await k.control("/_sandbox/credentials", {})).body.accessToken as string;
  });
  afterAll(async () => k.sandbox.close());
  afterEach(async () => {
    await k.control("/_sandbox/faults", undefined, "DELETE");
  });

  it("throttles with 429 RESOURCE_EXHAUSTED, with Retry-After only when the fault gives one", async () => {
    await k.control("/_sandbox/faults", { fault: "rate-limit", times: 1 });
    const plain = await k.profile(accessToken);
    expect(plain.status).toBe(429);
    expect(plain.headers.get("retry-after")).toBeNull();
    expect(plain.body).toMatchObject({ error: { code: 429, status: "RESOURCE_EXHAUSTED", errors: [{ reason: "rateLimitExceeded" }] } });
    await k.control("/_sandbox/faults", { fault: "rate-limit", times: 1, retryAfterSeconds: 7 });
    expect((await k.profile(accessToken)).headers.get("retry-after")).toBe("7");
  });

  it("fails with 503 backendError", async () => {
    await k.control("/_sandbox/faults", { fault: "server-error", times: 1 });
    const res = await k.profile(accessToken);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error: { code: 503, status: "UNAVAILABLE", errors: [{ reason: "backendError", message: "Backend Error" }] } });
  });

  it("refuses for good with the API's envelope on Gmail paths and RFC 6749 on the token endpoint", async () => {
    await k.control("/_sandbox/faults", { fault: "bad-request", times: 1, path: "/gmail/v1/users/me/profile" });
    expect((await k.profile(accessToken)).body).toMatchObject({ error: { code: 400, status: "FAILED_PRECONDITION", errors: [{ reason: "failedPrecondition" }] } });
    await k.control("/_sandbox/faults", { fault: "bad-request", times: 1, path: "/token" });
    expect(JSON.parse((await k.token({ grant_type: "refresh_token", refresh_token: "x" })).text)).toEqual({ error: "invalid_request", error_description: "Bad Request" });
  });

  it("throttles with 403 userRateLimitExceeded and the time in the message when told to", async () => {
    const k403 = await sandboxKit({ rateLimitStatus: 403 });
    try {
      const token = (await k403.control("/_sandbox/credentials", {})).body.accessToken as string;
      await k403.control("/_sandbox/faults", { fault: "rate-limit", times: 1, retryAfterSeconds: 60 });
      const res = await k403.profile(token);
      expect(res.status).toBe(403);
      expect(res.headers.get("retry-after")).toBeNull();
      expect(res.body).toMatchObject({ error: { errors: [{ reason: "userRateLimitExceeded", domain: "usageLimits" }] } });
      expect((res.body.error as Json).message).toMatch(/^User-rate limit exceeded\. {2}Retry after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    } finally {
      await k403.sandbox.close();
    }
  });
});

describe("the connector against the sandbox", () => {
  let k: Kit;
  beforeAll(async () => {
    k = await sandboxKit();
  });
  afterAll(async () => k.sandbox.close());

  /** The connector's own exchange of a consented code (S256). */
  const connect = async (scope: string) => {
    const verifier = createCodeVerifier();
    const params = await k.consent({ scope, code_challenge: challengeOf(verifier), code_challenge_method: "S256" });
    return gmailConnector.exchangeCode(k.ctx, { code: params.get("code") as string, codeVerifier: verifier });
  };

  it("exchanges a code for an expiring grant with a refresh token, and identifies it by the profile", async () => {
    const grant = await connect(READONLY);
    expect(grant).toMatchObject({ expiresInSeconds: 3599, scopes: [READONLY] });
    expect(grant.refreshToken).toMatch(/^1\/\//);
    const identity = await identify(gmailConnector, k.ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: {} });
    expect(identity.metadata).toEqual({ emailAddress: "user1@sandbox.autoflow.invalid" });
    expect(identity.summary).toMatchObject({ emailAddress: "user1@sandbox.autoflow.invalid", historyId: expect.stringMatching(/^\d+$/) as string });
    expect(typeof identity.summary.messagesTotal).toBe("string");
  });

  it("refreshes without a new refresh token, so the stored one is kept", async () => {
    const grant = await connect(READONLY);
    const renewed = await gmailConnector.refreshToken?.(k.ctx, grant.refreshToken as string);
    expect(renewed?.refreshToken).toBeUndefined();
    expect(renewed?.accessToken).toMatch(/^ya29\./);
    expect(renewed?.expiresInSeconds).toBe(3599);
  });

  it("identifies a send-only grant through tokeninfo when it holds userinfo.email", async () => {
    const grant = await connect(`${SEND} ${USERINFO_EMAIL_SCOPE}`);
    const identity = await identify(gmailConnector, k.ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: {} });
    expect(identity.metadata).toEqual({ emailAddress: "user1@sandbox.autoflow.invalid" });
    expect(identity.scopes).toEqual([SEND, USERINFO_EMAIL_SCOPE]);
    expect(identity.summary.profile).toMatch(/not readable/);
  });

  it("refuses a send-only grant that reveals no address with an auth error saying which scope to add", async () => {
    const grant = await connect(SEND);
    const error = await identify(gmailConnector, k.ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: {} }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "auth", code: "email_address_unavailable", provider: "gmail" });
    expect((error as Error).message).toContain(USERINFO_EMAIL_SCOPE);
    expect((error as Error).message).toContain(SEND);
    // A connection stored earlier already knows its address: its probe succeeds.
    const probe = await identify(gmailConnector, k.ctx, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: { emailAddress: "kept@sandbox.autoflow.invalid" } });
    expect(probe.metadata).toEqual({ emailAddress: "kept@sandbox.autoflow.invalid" });
  });

  it("learns a pasted token's scopes from tokeninfo when it first sees it, and probes with the profile alone after", async () => {
    const desk = await k.control("/_sandbox/credentials", { scopes: [READONLY, "email"] });
    const token = desk.body.accessToken as string;
    const first = await identify(gmailConnector, k.ctx, { accessToken: token, authMethod: "access_token", metadata: {} });
    expect(first.scopes).toEqual([READONLY, USERINFO_EMAIL_SCOPE]);
    await k.control("/_sandbox/requests", undefined, "DELETE");
    const probe = await identify(gmailConnector, k.ctx, { accessToken: token, authMethod: "access_token", metadata: first.metadata });
    expect(probe.scopes).toBeUndefined();
    expect((await k.requests()).map((r) => r.path)).toEqual(["/gmail/v1/users/me/profile"]);
  });

  it("revokes with the refresh token in the form body; a second revoke is an auth error (nothing left to revoke)", async () => {
    const grant = await connect(READONLY);
    const connection = { authMethod: "oauth2", metadata: {} } as never;
    await k.control("/_sandbox/requests", undefined, "DELETE");
    await expect(gmailConnector.revoke(k.ctx, { connection, accessToken: grant.accessToken, refreshToken: grant.refreshToken as string })).resolves.toBe("revoked");
    expect(await k.requests()).toMatchObject([{ method: "POST", path: "/revoke" }]);
    await expect(gmailConnector.refreshToken?.(k.ctx, grant.refreshToken as string)).rejects.toMatchObject({ type: "auth", code: "invalid_grant" });
    await expect(gmailConnector.revoke(k.ctx, { connection, accessToken: grant.accessToken, refreshToken: grant.refreshToken as string })).rejects.toMatchObject({ type: "auth", code: "invalid_token" });
  });

  it("passes Google's reason on when a code comes back without its PKCE challenge", async () => {
    const params = await k.consent();
    const error = await gmailConnector.exchangeCode(k.ctx, { code: params.get("code") as string, codeVerifier: createCodeVerifier() }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "auth", code: "invalid_grant" });
    expect((error as Error).message).toMatch(/verifier is not needed/);
  });
});

describe("through the service: Gmail's 403 throttle", () => {
  it("waits the time in Gmail's message, and surfaces a longer one as 429 with Retry-After", async () => {
    const h = await startHarness({ sandboxOptions: { gmail: { rateLimitStatus: 403 } } });
    try {
      const credential = (await h.sandbox("gmail", "/_sandbox/credentials", { body: {} })) as Json;
      const connected = await h.request({ method: "POST", url: "/api/integrations/gmail/connections", user: "u", body: { accessToken: credential.accessToken } });
      expect(connected.statusCode, connected.body).toBe(201);
      expect(connected.json()).toMatchObject({ authMethod: "access_token", emailAddress: credential.emailAddress, scopes: [READONLY] });

      await h.sandbox("gmail", "/_sandbox/faults", { body: { fault: "rate-limit", times: 1, retryAfterSeconds: 2 } });
      const retried = await h.request({ method: "POST", url: "/api/integrations/gmail/test", user: "u" });
      expect(retried.statusCode, retried.body).toBe(200);
      expect(h.clock.sleeps).toEqual([2000]);

      await h.sandbox("gmail", "/_sandbox/faults", { body: { fault: "rate-limit", times: 1, retryAfterSeconds: 3600 } });
      const throttled = await h.request({ method: "POST", url: "/api/integrations/gmail/test", user: "u" });
      expect(throttled.statusCode).toBe(429);
      expect(Number(throttled.headers["retry-after"])).toBeGreaterThan(3500);
      expect(throttled.json()).toMatchObject({ error: { type: "rate-limit", code: "userRateLimitExceeded", providerStatus: 403 } });
    } finally {
      await h.close();
    }
  });

  it("reports a pasted token's connection as not refreshable, and revokes it at disconnect", async () => {
    const h = await startHarness();
    try {
      const credential = (await h.sandbox("gmail", "/_sandbox/credentials", { body: {} })) as Json;
      const connected = (await h.request({ method: "POST", url: "/api/integrations/gmail/connections", user: "u", body: { accessToken: credential.accessToken } })).json() as Json;
      const health = (await h.request({ method: "GET", url: "/api/integrations/gmail/health", user: "u" })).json() as Json;
      expect(health).toMatchObject({ status: "ok", authMethod: "access_token", tokenRefreshStatus: "not_applicable", emailAddress: credential.emailAddress });
      const report = (await h.request({ method: "DELETE", url: `/api/integrations/gmail/connections/${connected.id as string}`, user: "u" })).json() as Json;
      expect(report.revocation).toBe("revoked");
      const probe = await fetch(`${h.sandboxUrl("gmail")}/gmail/v1/users/me/profile`, { headers: { authorization: `Bearer ${credential.accessToken as string}` } });
      expect(probe.status).toBe(401);
    } finally {
      await h.close();
    }
  });
});

describe("through the service: actions a grant's scopes cannot run", () => {
  it("refuses sendMessage for a read-only grant before any call, naming the scopes to add; a send grant sends", async () => {
    const h = await startHarness();
    try {
      const connect = async (user: string, scopes: string[]) => {
        const credential = (await h.sandbox("gmail", "/_sandbox/credentials", { body: { scopes } })) as Record<string, unknown>;
        const res = await h.request({ method: "POST", url: "/api/integrations/gmail/connections", user, body: { accessToken: credential.accessToken } });
        expect(res.statusCode, res.body).toBe(201);
      };
      await connect("reader", [READONLY]);
      await h.sandbox("gmail", "/_sandbox/requests", { method: "DELETE" });
      const input = { to: ["someone@example.com"], subject: "Hi", text: "Hello" };
      const refused = await h.request({ method: "POST", url: "/api/integrations/gmail/actions/sendMessage", user: "reader", body: input });
      expect(refused.statusCode).toBe(424);
      expect(refused.json()).toMatchObject({ error: { type: "auth", code: "missing_scope", provider: "gmail" } });
      expect((refused.json() as { error: { message: string } }).error.message).toContain(SEND);
      expect(await h.sandboxRequests("gmail")).toEqual([]);
      await connect("sender", [SEND, READONLY]);
      const sent = await h.request({ method: "POST", url: "/api/integrations/gmail/actions/sendMessage", user: "sender", body: input });
      expect(sent.statusCode, sent.body).toBe(200);
      expect(sent.json()).toMatchObject({ labelIds: expect.arrayContaining(["SENT"]) as unknown });
    } finally {
      await h.close();
    }
  });
});
