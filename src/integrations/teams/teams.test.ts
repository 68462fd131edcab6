/**
 * Microsoft Teams quirks only: the error table (identity platform and Graph,
 * batch answers included), token and identity parsing, pasted-token parsing,
 * the tenant option, and the sandbox's fidelity to Microsoft's wire format.
 * The generic lifecycle is proven by the contract suite.
 */
import { identify } from "../shared/call.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig, resolveSettings } from "../../config.js";
import type { ConnectorContext, ConnectorSettings } from "../shared/connector.js";
import { IntegrationError } from "../shared/errors.js";
import { ProviderHttp, type ProviderResponse } from "../shared/http.js";
import { buildUrl, codeChallengeS256, createCodeVerifier } from "../shared/oauth.js";
import { teamsRetryPolicy } from "./retryPolicy.js";
import type { StartedSandbox } from "../../sandbox/kit.js";
import { classifyTeams, parseTeamsIdentity, parseTeamsToken, teamsConnector } from "./connector.js";
import { startTeamsSandbox, type TeamsSandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;

const REDIRECT = "http://localhost:3000/api/integrations/teams/oauth/callback";
const response = (status: number, json: unknown, headers: Record<string, string> = {}): ProviderResponse => ({
  status,
  headers: new Headers(headers),
  text: JSON.stringify(json),
  json,
});
const graphError = (code: string, message = "x") => ({ error: { code, message, innerError: { date: "2025-02-13T10:17:05", "request-id": "r", "client-request-id": "c" } } });
const stsError = (error: string, aadsts: number, text: string) => ({
  error,
  error_description: `AADSTS${aadsts}: ${text}\r\nTrace ID: 0000aaaa\r\nCorrelation ID: bbbb1111\r\nTimestamp: 2016-01-09 02:02:12Z`,
  error_codes: [aadsts],
  timestamp: "2016-01-09 02:02:12Z",
  trace_id: "0000aaaa",
  correlation_id: "bbbb1111",
});
const token = (op = "POST /common/oauth2/v2.0/token") => ({ operation: op });
const batch = { operation: "POST /$batch" };

describe("classifyTeams: Microsoft Graph errors", () => {
  it.each([
    [401, "InvalidAuthenticationToken", "auth"],
    [401, "Authorization_IdentityNotFound", "auth"],
    [403, "Authorization_RequestDenied", "auth"],
    [403, "ErrorAccessDenied", "auth"],
    [403, "Forbidden", "auth"],
    [403, "accessDenied", "auth"],
    [429, "TooManyRequests", "rate-limit"],
    [429, "activityLimitReached", "rate-limit"],
    [509, "bandwidthLimitExceeded", "rate-limit"],
    [400, "BadRequest", "schema"],
    [400, "invalidRequest", "schema"],
    [404, "ItemNotFound", "schema"],
    [405, "Request_BadRequest", "schema"],
    [500, "generalException", "upstream"],
    [503, "serviceNotAvailable", "upstream"],
    [504, "UnknownError", "upstream"],
  ])("HTTP %i %s is %s", (status, code, type) => {
    expect(classifyTeams(response(status, graphError(code)), { operation: "GET /me" })).toMatchObject({ type, code, status });
  });

  it("compares codes case-insensitively when the status does not decide", () => {
    expect(classifyTeams(response(400, graphError("ACTIVITYLIMITREACHED")), { operation: "GET /me" })?.type).toBe("rate-limit");
    expect(classifyTeams(response(400, { error: { code: "x", innerError: { code: "throttledRequest" } } }), { operation: "GET /me" })?.type).toBe("rate-limit");
  });

  it("reads a decimal Retry-After on 429 and on 503", () => {
    expect(classifyTeams(response(429, graphError("TooManyRequests"), { "retry-after": "2.128" }), { operation: "GET /me" })).toMatchObject({ retryAfterSeconds: 2.128 });
    expect(classifyTeams(response(503, graphError("serviceNotAvailable"), { "retry-after": "10" }), { operation: "GET /me" })).toMatchObject({ type: "upstream", retryAfterSeconds: 10 });
    expect(classifyTeams(response(400, graphError("BadRequest"), { "retry-after": "10" }), { operation: "GET /me" })?.retryAfterSeconds).toBeUndefined();
  });

  it("names a CAE claims challenge and keeps Graph's message", () => {
    const verdict = classifyTeams(
      response(401, graphError("InvalidAuthenticationToken", "Continuous access evaluation resulted in claims challenge"), {
        "www-authenticate": 'Bearer realm="", error="insufficient_claims", claims="eyJ9"',
      }),
      { operation: "GET /me" },
    );
    expect(verdict).toMatchObject({ type: "auth", code: "insufficient_claims", status: 401 });
    expect(verdict?.message).toMatch(/Continuous access evaluation/);
  });

  it("falls back on the status when the body is not Graph's", () => {
    expect(classifyTeams({ status: 502, headers: new Headers(), text: "<html>Bad Gateway</html>", json: undefined }, { operation: "GET /me" })).toMatchObject({ type: "upstream", code: "http_502" });
    expect(classifyTeams({ status: 401, headers: new Headers(), text: "", json: undefined }, { operation: "GET /me" })).toMatchObject({ type: "auth" });
    expect(classifyTeams(response(200, { value: [] }), { operation: "GET /me/joinedTeams" })).toBeNull();
  });
});

describe("classifyTeams: identity platform (token endpoint) errors", () => {
  it.each([
    [400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity.", "auth"],
    [400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.", "auth"],
    [400, "invalid_grant", 700082, "The refresh token has expired due to inactivity.", "auth"],
    [400, "invalid_grant", 70043, "The refresh token has expired or is invalid due to sign-in frequency checks by Conditional Access.", "auth"],
    [400, "invalid_grant", 50173, "The provided grant has expired due to it being revoked.", "auth"],
    [400, "invalid_grant", 65001, "The user or administrator has not consented to use the application.", "auth"],
    [401, "invalid_client", 7000215, "Invalid client secret provided.", "auth"],
    [400, "unauthorized_client", 700016, "Application with identifier 'x' was not found in the directory 'y'.", "auth"],
    [400, "interaction_required", 50076, "Due to a configuration change made by your administrator, you must use multi-factor authentication.", "auth"],
    [400, "consent_required", 65001, "The user or administrator has not consented to use the application.", "auth"],
    [400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid.", "schema"],
    [400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", "schema"],
    [400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.", "schema"],
    [503, "temporarily_unavailable", 50033, "A transient error has occurred.", "upstream"],
    [429, "temporarily_unavailable", 90055, "There are too many incoming requests.", "rate-limit"],
  ])("HTTP %i %s AADSTS%i is classified", (status, error, aadsts, text, type) => {
    const verdict = classifyTeams(response(status, stsError(error, aadsts, text)), token());
    expect(verdict).toMatchObject({ type, code: error });
    // The AADSTS code survives in the message, without the trace ids that follow it.
    expect(verdict?.message).toContain(`AADSTS${aadsts}`);
    expect(verdict?.message).not.toMatch(/Trace ID/);
  });

  it("tells the operator, not the user, when the app's registration is refused", () => {
    expect(classifyTeams(response(401, stsError("invalid_client", 7000222, "The provided client secret keys are expired.")), token())?.message).toMatch(/AUTOFLOW_TEAMS_CLIENT_SECRET.*AADSTS7000222/);
    expect(classifyTeams(response(400, stsError("invalid_grant", 70008, "Expired.")), token())?.message).toMatch(/the user must connect again/);
  });
});

describe("classifyTeams: a batch answers 200 with an error per request", () => {
  const answer = (...responses: Json[]) => response(200, { responses });
  const ok = { id: "me", status: 200, headers: {}, body: { id: "u" } };

  it("is a success when every request succeeded", () => {
    expect(classifyTeams(answer(ok), batch)).toBeNull();
  });

  it("carries the failing request's status, code and Retry-After", () => {
    const verdict = classifyTeams(
      answer(ok, { id: "joinedTeams", status: 429, headers: { "Retry-After": "0.249" }, body: graphError("TooManyRequests") }),
      batch,
    );
    expect(verdict).toMatchObject({ type: "rate-limit", code: "TooManyRequests", status: 429, retryAfterSeconds: 0.249 });
    expect(verdict?.message).toContain("joinedTeams");
  });

  it("lets a failure that retrying cannot fix decide over a throttle", () => {
    const verdict = classifyTeams(
      answer(
        { id: "me", status: 429, headers: { "retry-after": "1" }, body: graphError("TooManyRequests") },
        { id: "joinedTeams", status: 403, headers: {}, body: graphError("Forbidden", "Missing scope permissions on the request.") },
      ),
      batch,
    );
    expect(verdict).toMatchObject({ type: "auth", code: "Forbidden", status: 403 });
  });

  it("waits for the longest Retry-After among throttled requests", () => {
    const throttled = (id: string, after: string) => ({ id, status: 429, headers: { "Retry-After": after }, body: graphError("TooManyRequests") });
    expect(classifyTeams(answer(throttled("me", "1"), throttled("organization", "3.5")), batch)?.retryAfterSeconds).toBe(3.5);
  });

  it("reads a 401 inside a batch as a token rejection (status 401)", () => {
    expect(classifyTeams(answer({ id: "me", status: 401, body: graphError("InvalidAuthenticationToken") }), batch)).toMatchObject({ type: "auth", status: 401 });
  });
});

describe("parseTeamsIdentity", () => {
  const batchAnswer = (overrides: Partial<Record<"me" | "joinedTeams" | "organization", unknown>> = {}) => ({
    responses: [
      { id: "organization", status: 200, body: overrides.organization ?? { value: [{ id: "84841066-274d-4ec0-a5c1-276be684bdd3", displayName: "Contoso" }] } },
      { id: "me", status: 200, body: overrides.me ?? { id: "u1", displayName: "Adele Vance", userPrincipalName: "AdeleV@contoso.com", mail: null } },
      { id: "joinedTeams", status: 200, body: overrides.joinedTeams ?? { value: [{ id: "t1", displayName: "Contoso Team", description: "d" }, { id: "t2", displayName: null }] } },
    ],
  });

  it("takes the tenant from /organization and the user from /me, in any answer order", () => {
    const identity = parseTeamsIdentity(batchAnswer(), "req-1");
    expect(identity.metadata).toEqual({ tenantId: "84841066-274d-4ec0-a5c1-276be684bdd3", userPrincipalName: "AdeleV@contoso.com", displayName: "Adele Vance" });
    expect(identity.summary).toMatchObject({ tenantName: "Contoso", userId: "u1", joinedTeams: "2", requestId: "req-1", mail: undefined });
  });

  it("leaves displayName out when Graph has none, and says 'at least' when joinedTeams pages", () => {
    const identity = parseTeamsIdentity(
      batchAnswer({ me: { id: "u1", userPrincipalName: "a@b.c", displayName: null }, joinedTeams: { value: [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/next" } }),
    );
    expect(identity.metadata).not.toHaveProperty("displayName");
    expect(identity.summary.joinedTeams).toBe("0+");
  });

  it.each([
    ["no batch envelope", { value: [] }],
    ["a missing answer", { responses: [{ id: "me", status: 200, body: { id: "u", userPrincipalName: "a@b.c" } }] }],
    ["no tenant", batchAnswer({ organization: { value: [] } })],
    ["a user without userPrincipalName", batchAnswer({ me: { id: "u" } })],
  ])("refuses %s as upstream", (_what, json) => {
    expect(() => parseTeamsIdentity(json)).toThrow(expect.objectContaining({ type: "upstream", code: "unparsable_response", provider: "teams" }));
  });
});

describe("parseTeamsToken", () => {
  const jwt = "eyJ0eXAiOiJKV1QiLCJub25jZSI6IngiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiIwMDAwMDAwMy0wMDAwIn0.c2lnbmF0dXJl";

  it("accepts a Graph access token", () => {
    expect(parseTeamsToken({ accessToken: jwt })).toEqual({ token: jwt, authMethod: "access_token" });
  });

  it.each([
    [{ apiKey: "abc" }, "apiKey", /no API keys/],
    [{ apiKey: jwt, accessToken: jwt }, "apiKey", /no API keys/],
    [{}, "accessToken", /required/],
    [{ accessToken: `1.AXoA${"a".repeat(60)}` }, "accessToken", /refresh token/],
    [{ accessToken: "EwBwA8l6BAAU" }, "accessToken", /JWT/],
    [{ accessToken: "eyJhbGciOiJub25lIn0.eyJ4IjoxfQ." }, "accessToken", /JWT/],
  ])("refuses %j naming %s", (input, field, message) => {
    const error = (() => {
      try {
        parseTeamsToken(input);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(IntegrationError);
    expect(error).toMatchObject({ type: "schema", field });
    expect((error as Error).message).toMatch(new RegExp(`^${field}\\b`));
    expect((error as Error).message).toMatch(message);
  });
});

describe("tenant option and endpoints", () => {
  const live = (env: Record<string, string>) => {
    const config = loadConfig({ AUTOFLOW_TEAMS_CLIENT_ID: "11111111-2222-3333-4444-555555555555", AUTOFLOW_TEAMS_CLIENT_SECRET: "s", ...env });
    return resolveSettings({ provider: "teams", config: config.providers.teams, publicUrl: "http://localhost:3000" });
  };

  it("defaults to common, on login.microsoftonline.com and graph.microsoft.com/v1.0, with no revoke endpoint", () => {
    expect(live({}).endpoints).toEqual({
      authorizeUrl: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
      tokenUrl: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
      apiUrl: "https://graph.microsoft.com/v1.0",
    });
  });

  it.each(["organizations", "9188040d-6c67-4c5b-b112-36a304b66dad", "contoso.onmicrosoft.com"])("puts AUTOFLOW_TEAMS_TENANT=%s in both paths", (tenant) => {
    const { endpoints, options } = live({ AUTOFLOW_TEAMS_TENANT: tenant });
    expect(options.TENANT).toBe(tenant);
    expect(endpoints.authorizeUrl).toBe(`https://login.microsoftonline.com/${tenant}/oauth2/v2.0/authorize`);
    expect(endpoints.tokenUrl).toBe(`https://login.microsoftonline.com/${tenant}/oauth2/v2.0/token`);
  });

  it.each(["consumers", "contoso", "evil.example/x", "../common"])("refuses AUTOFLOW_TEAMS_TENANT=%s by name", (tenant) => {
    expect(() => loadConfig({ AUTOFLOW_TEAMS_TENANT: tenant })).toThrow(/AUTOFLOW_TEAMS_TENANT: .*work or school/);
  });

  it("asks for a code, in the query, with space-separated scopes that always include offline_access", () => {
    const settings = { ...live({}), scopes: ["User.Read", "Team.ReadBasic.All"] };
    expect(teamsConnector.authorizationParams(settings)).toEqual({
      client_id: "11111111-2222-3333-4444-555555555555",
      response_type: "code",
      redirect_uri: REDIRECT,
      response_mode: "query",
      scope: "offline_access User.Read Team.ReadBasic.All",
    });
    expect(teamsConnector.authorizationParams(live({})).scope).toBe("offline_access User.Read Team.ReadBasic.All");
  });
});

describe("token requests on the wire", () => {
  let sent: { url: string; body: URLSearchParams; headers: Headers }[] = [];
  const answer: Json = {
    token_type: "Bearer",
    scope: "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Team.ReadBasic.All profile",
    expires_in: 4377,
    ext_expires_in: 4377,
    access_token: "eyJ0eXAiOiJKV1QifQ.eyJ4IjoxfQ.c2ln",
    refresh_token: "1.AXoA-refresh",
    id_token: "eyJ0eXAiOiJKV1QifQ.eyJ4IjoxfQ.c2ln",
  };
  const fakeFetch: typeof fetch = async (input, init) => {
    sent.push({ url: String(input), body: new URLSearchParams(String(init?.body)), headers: new Headers(init?.headers) });
    return new Response(JSON.stringify(answer), { status: 200, headers: { "content-type": "application/json" } });
  };
  const ctx = (): ConnectorContext => ({
    settings: {
      mode: "live",
      options: { TENANT: "organizations" },
      clientId: "app-id",
      clientSecret: "Abc8Q~secret",
      endpoints: { authorizeUrl: "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize", tokenUrl: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token", apiUrl: "https://graph.microsoft.com/v1.0" },
      redirectUri: REDIRECT,
      scopes: ["User.Read", "Team.ReadBasic.All"],
    },
    http: new ProviderHttp({ provider: "teams", displayName: "Microsoft Teams", classify: classifyTeams, policy: teamsRetryPolicy, timeoutMs: 1000, fetch: fakeFetch }),
  });
  beforeEach(() => {
    sent = [];
  });

  it("redeems a code with the secret in the body, the verifier, the redirect URI and the scopes", async () => {
    const grant = await teamsConnector.exchangeCode(ctx(), { code: "1.AXoA-code", codeVerifier: "v".repeat(43) });
    const request = sent[0];
    expect(request?.url).toBe("https://login.microsoftonline.com/organizations/oauth2/v2.0/token");
    expect(request?.headers.get("authorization")).toBeNull();
    expect(Object.fromEntries(request?.body ?? [])).toEqual({
      grant_type: "authorization_code",
      code: "1.AXoA-code",
      redirect_uri: REDIRECT,
      code_verifier: "v".repeat(43),
      scope: "offline_access User.Read Team.ReadBasic.All",
      client_id: "app-id",
      client_secret: "Abc8Q~secret",
    });
    // Resource-qualified Graph scopes are stored in their short form; ext_expires_in is not the expiry.
    expect(grant).toEqual({ accessToken: answer.access_token, refreshToken: "1.AXoA-refresh", expiresInSeconds: 4377, scopes: ["User.Read", "Team.ReadBasic.All", "profile"], metadata: {} });
  });

  it("refreshes without a scope, so a later change of configured scopes cannot break stored grants", async () => {
    const grant = await teamsConnector.refreshToken?.(ctx(), "1.AXoA-old");
    expect(Object.fromEntries(sent[0]?.body ?? [])).toEqual({ grant_type: "refresh_token", refresh_token: "1.AXoA-old", client_id: "app-id", client_secret: "Abc8Q~secret" });
    expect(grant?.refreshToken).toBe("1.AXoA-refresh");
  });

  it("revokes nothing at Microsoft, and makes no request", async () => {
    const outcome = await teamsConnector.revoke(ctx(), {
      connection: {} as Parameters<typeof teamsConnector.revoke>[1]["connection"],
      accessToken: "eyJ.eyJ.x",
      refreshToken: "1.A",
    });
    expect(outcome).toBe("not_supported");
    expect(sent).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// The sandbox

describe("sandbox", () => {
  let sandbox: StartedSandbox;
  let clock: { t: number };
  const start = async (options: TeamsSandboxOptions = {}) => {
    clock = { t: Date.now() };
    sandbox = await startTeamsSandbox({ redirectUris: [REDIRECT], now: () => clock.t, ...options });
  };
  afterEach(async () => {
    await sandbox?.close();
  });

  const authorizeUrl = (params: Record<string, string | undefined> = {}, tenant = "common") =>
    buildUrl(`${sandbox.url}/${tenant}/oauth2/v2.0/authorize`, {
      client_id: sandbox.clientId,
      response_type: "code",
      redirect_uri: REDIRECT,
      response_mode: "query",
      scope: "offline_access User.Read Team.ReadBasic.All",
      state: "st",
      ...params,
    });
  const consent = async (params: Record<string, string | undefined> = {}, tenant = "common"): Promise<URL> => {
    const res = await fetch(authorizeUrl(params, tenant), { redirect: "manual" });
    expect(res.status).toBe(302);
    return new URL(res.headers.get("location") as string);
  };
  const post = (path: string, form: Record<string, string | undefined>, headers: Record<string, string> = {}) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
    return fetch(`${sandbox.url}${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body });
  };
  const TOKEN = "/common/oauth2/v2.0/token";
  const redeem = (code: string, extra: Record<string, string | undefined> = {}) =>
    post(TOKEN, { client_id: sandbox.clientId, client_secret: sandbox.clientSecret, grant_type: "authorization_code", code, redirect_uri: REDIRECT, ...extra });
  const refresh = (refreshToken: string, extra: Record<string, string | undefined> = {}) =>
    post(TOKEN, { client_id: sandbox.clientId, client_secret: sandbox.clientSecret, grant_type: "refresh_token", refresh_token: refreshToken, ...extra });
  const graph = (path: string, accessToken?: string, headers: Record<string, string> = {}) =>
    fetch(`${sandbox.url}/v1.0${path}`, { headers: { ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}), ...headers } });
  const pkce = () => {
    const verifier = createCodeVerifier();
    return { verifier, challenge: codeChallengeS256(verifier) };
  };
  /** A full code flow with PKCE; answers the token response. */
  const connect = async (scope?: string): Promise<Json> => {
    const { verifier, challenge } = pkce();
    const code = (await consent({ code_challenge: challenge, code_challenge_method: "S256", ...(scope ? { scope } : {}) })).searchParams.get("code") as string;
    const res = await redeem(code, { code_verifier: verifier });
    expect(res.status).toBe(200);
    return (await res.json()) as Json;
  };
  const expectSts = async (res: Response, status: number, error: string, aadsts: number): Promise<Json> => {
    expect(res.status).toBe(status);
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({ error, error_codes: [aadsts], error_uri: `https://login.microsoftonline.com/error?code=${aadsts}` });
    expect(body.error_description).toMatch(new RegExp(`^AADSTS${aadsts}: .+\\r\\nTrace ID: [0-9a-f-]{36}\\r\\nCorrelation ID: [0-9a-f-]{36}\\r\\nTimestamp: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`));
    expect(body.trace_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
    return body;
  };
  const expectGraphError = async (res: Response, status: number, code: string): Promise<string> => {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; message: string; innerError: Json } };
    expect(body.error.code).toBe(code);
    expect(body.error.innerError).toMatchObject({ "request-id": res.headers.get("request-id"), date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/) });
    return body.error.message;
  };

  describe("authorize", () => {
    it("serves the real path under any tenant segment Microsoft accepts", async () => {
      await start();
      const tenantId = ((await (await graph("/organization", ((await connect()) as { access_token: string }).access_token)).json()) as { value: { id: string; verifiedDomains: { name: string }[] }[] }).value[0];
      for (const tenant of ["common", "organizations", tenantId?.id as string, tenantId?.verifiedDomains[0]?.name as string]) {
        const callback = await consent({}, tenant);
        expect(callback.origin + callback.pathname).toBe(REDIRECT);
        expect(callback.searchParams.get("code")).toMatch(/^1\.A[A-Za-z0-9_-]{700,}$/);
        expect(callback.searchParams.get("state")).toBe("st");
        expect(callback.searchParams.get("session_state")).toMatch(/^[0-9a-f-]{36}$/);
        expect(callback.searchParams.has("iss")).toBe(false);
      }
    });

    it.each([
      ["an unknown tenant", {}, "00000000-0000-0000-0000-000000000000", /AADSTS90002: Tenant &#39;00000000-0000-0000-0000-000000000000&#39; not found/],
      ["an unknown client_id", { client_id: "11111111-1111-1111-1111-111111111111" }, "common", /AADSTS700016: Application with identifier &#39;11111111-1111-1111-1111-111111111111&#39; was not found/],
      ["an unregistered redirect_uri", { redirect_uri: "https://evil.example/cb" }, "common", /AADSTS50011: The redirect URI &#39;https:\/\/evil.example\/cb&#39; specified in the request does not match/],
    ])("shows Microsoft's error page, never a redirect, for %s", async (_what, params, tenant, message) => {
      await start();
      const res = await fetch(authorizeUrl(params, tenant), { redirect: "manual" });
      expect(res.status).toBe(400);
      expect(res.headers.get("location")).toBeNull();
      expect(res.headers.get("content-type")).toMatch(/text\/html/);
      const page = await res.text();
      expect(page).toMatch(/Sorry, but we're having trouble signing you in\./);
      expect(page).toMatch(message);
    });

    it("redirects a refusal with error=access_denied and the AADSTS65004 description", async () => {
      await start();
      const callback = await consent({ _sandbox_decision: "deny" });
      expect(callback.searchParams.get("error")).toBe("access_denied");
      expect(callback.searchParams.get("error_description")).toMatch(/^AADSTS65004: User declined to consent to access the app\.\r\nTrace ID: /);
      expect(callback.searchParams.get("state")).toBe("st");
      expect(callback.searchParams.has("code")).toBe(false);
    });

    it.each([
      ["comma-separated scopes", { scope: "User.Read,Team.ReadBasic.All" }, "invalid_scope", "AADSTS70011"],
      ["a token response_type", { response_type: "token" }, "unsupported_response_type", "AADSTS700051"],
      ["no scope", { scope: undefined }, "invalid_request", "AADSTS900144"],
      ["an unknown challenge method", { code_challenge: "a".repeat(43), code_challenge_method: "S512" }, "invalid_request", "AADSTS90100"],
      ["a short S256 challenge", { code_challenge: "abc", code_challenge_method: "S256" }, "invalid_request", "AADSTS501491"],
    ])("redirects %s back with the error", async (_what, params, error, aadsts) => {
      await start();
      const callback = await consent(params);
      expect(callback.searchParams.get("error")).toBe(error);
      expect(callback.searchParams.get("error_description")).toMatch(new RegExp(`^${aadsts}: `));
    });

    it("answers in the fragment or as an auto-posted form when response_mode asks", async () => {
      await start();
      const fragment = await consent({ response_mode: "fragment" });
      expect(fragment.search).toBe("");
      expect(new URLSearchParams(fragment.hash.slice(1)).get("code")).toMatch(/^1\.A/);
      const form = await fetch(authorizeUrl({ response_mode: "form_post" }), { redirect: "manual" });
      expect(form.status).toBe(200);
      const html = await form.text();
      expect(html).toContain(`action="${REDIRECT}"`);
      expect(html).toMatch(/<input type="hidden" name="code" value="1\.A[A-Za-z0-9_-]+" \/>/);
    });
  });

  describe("token endpoint", () => {
    it("answers Microsoft's token response: a JWT access token of 60 to 90 minutes, a 1.A refresh token, no offline_access echoed", async () => {
      await start();
      const body = await connect();
      expect(body).toMatchObject({ token_type: "Bearer", scope: "User.Read Team.ReadBasic.All" });
      expect(body.expires_in).toBeGreaterThanOrEqual(3600);
      expect(body.expires_in).toBeLessThanOrEqual(5400);
      expect(body.ext_expires_in).toBe(body.expires_in);
      expect(body.access_token).toMatch(/^eyJ0eXAiOiJKV1QiLCJub25jZSI6[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{342}$/);
      const claims = JSON.parse(Buffer.from((body.access_token as string).split(".")[1] as string, "base64url").toString()) as Json;
      expect(claims).toMatchObject({ aud: "00000003-0000-0000-c000-000000000000", ver: "1.0", scp: "User.Read Team.ReadBasic.All", appid: sandbox.clientId });
      expect(claims.iss).toBe(`https://sts.windows.net/${claims.tid as string}/`);
      expect(body.refresh_token).toMatch(/^1\.A[A-Za-z0-9_-]{1000}$/);
      expect(body).not.toHaveProperty("id_token");
    });

    it("gives no refresh token without offline_access, and an id_token with openid", async () => {
      await start();
      const body = await connect("openid profile User.Read");
      expect(body).not.toHaveProperty("refresh_token");
      expect(body.scope).toBe("User.Read openid profile");
      expect(body.id_token).toMatch(/^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    });

    it("accepts the client secret as HTTP Basic too", async () => {
      await start();
      const code = (await consent()).searchParams.get("code") as string;
      const basic = `Basic ${Buffer.from(`${sandbox.clientId}:${sandbox.clientSecret}`).toString("base64")}`;
      const res = await post(TOKEN, { grant_type: "authorization_code", code, redirect_uri: REDIRECT }, { authorization: basic });
      expect(res.status).toBe(200);
    });

    it.each([
      ["a wrong secret", { client_secret: "nope" }, 401, "invalid_client", 7000215],
      ["no secret", { client_secret: undefined }, 401, "invalid_client", 7000218],
      ["an unknown client_id", { client_id: "11111111-1111-1111-1111-111111111111" }, 400, "unauthorized_client", 700016],
      ["an unregistered redirect_uri", { redirect_uri: "https://evil.example/cb" }, 400, "invalid_client", 50011],
      ["an unknown code", { code: "1.AXoAforged" }, 400, "invalid_grant", 9002313],
      ["no grant_type", { grant_type: undefined }, 400, "invalid_request", 900144],
      ["a password grant", { grant_type: "password" }, 400, "unsupported_grant_type", 70003],
      ["a scope the user did not consent to", { scope: "User.Read Mail.Send" }, 400, "invalid_grant", 65001],
    ])("refuses %s as Microsoft does", async (_what, extra, status, error, aadsts) => {
      await start();
      const code = (await consent()).searchParams.get("code") as string;
      await expectSts(await redeem(code, extra), status, error, aadsts);
    });

    it("refuses a tenant it does not know (AADSTS90002)", async () => {
      await start();
      await expectSts(await post("/contoso.example/oauth2/v2.0/token", { grant_type: "authorization_code" }), 400, "invalid_request", 90002);
    });

    it("checks the PKCE verifier: missing or wrong is AADSTS501481, plain challenges work too", async () => {
      await start();
      const { verifier, challenge } = pkce();
      const code = (await consent({ code_challenge: challenge, code_challenge_method: "S256" })).searchParams.get("code") as string;
      await expectSts(await redeem(code), 400, "invalid_grant", 501481);
      await expectSts(await redeem(code, { code_verifier: createCodeVerifier() }), 400, "invalid_grant", 501481);
      // A refused attempt does not spend the code.
      expect((await redeem(code, { code_verifier: verifier })).status).toBe(200);
      const plain = (await consent({ code_challenge: verifier })).searchParams.get("code") as string;
      expect((await redeem(plain, { code_verifier: verifier })).status).toBe(200);
    });

    it("redeems a code once: a replay is AADSTS54005 and revokes what the code minted", async () => {
      await start();
      const code = (await consent()).searchParams.get("code") as string;
      const first = (await (await redeem(code)).json()) as { access_token: string; refresh_token: string };
      expect((await graph("/me", first.access_token)).status).toBe(200);
      await expectSts(await redeem(code), 400, "invalid_grant", 54005);
      expect((await graph("/me", first.access_token)).status).toBe(401);
      await expectSts(await refresh(first.refresh_token), 400, "invalid_grant", 70008);
    });

    it("expires a code after ten minutes (AADSTS70008)", async () => {
      await start();
      const code = (await consent()).searchParams.get("code") as string;
      clock.t += 10 * 60 * 1000 + 1;
      await expectSts(await redeem(code), 400, "invalid_grant", 70008);
    });

    it("answers every refresh with a new refresh token, and keeps the old one valid", async () => {
      await start();
      const first = (await connect()) as { refresh_token: string; access_token: string };
      const second = (await (await refresh(first.refresh_token)).json()) as { refresh_token: string; access_token: string; scope: string };
      expect(second.refresh_token).toMatch(/^1\.A/);
      expect(second.refresh_token).not.toBe(first.refresh_token);
      expect(second.scope).toBe("User.Read Team.ReadBasic.All");
      // Microsoft does not revoke a refresh token on use; the client is expected to discard it.
      expect((await refresh(first.refresh_token)).status).toBe(200);
      expect((await refresh(second.refresh_token)).status).toBe(200);
      await expectSts(await refresh(second.refresh_token, { scope: "Mail.Send" }), 400, "invalid_grant", 65001);
    });

    it("ends a refresh token after its inactivity lifetime (AADSTS700082)", async () => {
      await start({ refreshTokenTtlSeconds: 3600 });
      const first = (await connect()) as { refresh_token: string };
      clock.t += 3600 * 1000;
      const body = await expectSts(await refresh(first.refresh_token), 400, "invalid_grant", 700082);
      expect(body.error_description).toMatch(/has expired due to inactivity/);
    });

    it("refuses every refresh token after revoke-all (AADSTS50173)", async () => {
      await start();
      const first = (await connect()) as { refresh_token: string };
      await fetch(`${sandbox.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "revoke-all" }) });
      const body = await expectSts(await refresh(first.refresh_token), 400, "invalid_grant", 50173);
      expect(body.error_description).toMatch(/TokensValidFrom/);
    });

    it("takes form bodies only", async () => {
      await start();
      const res = await fetch(`${sandbox.url}${TOKEN}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "refresh_token" }) });
      await expectSts(res, 400, "invalid_request", 900144);
    });
  });

  describe("Graph", () => {
    const issue = async (body: Json = {}) => {
      const res = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return (await res.json()) as { accessToken: string; tenantId: string; userPrincipalName: string; scopes: string[]; expiresInSeconds: number };
    };

    it("hands out a delegated access token with its descriptive fields", async () => {
      await start({ accessTokenTtlSeconds: 60 });
      const credential = await issue();
      expect(credential).toMatchObject({ scopes: ["User.Read", "Team.ReadBasic.All"], expiresInSeconds: 60, userPrincipalName: expect.stringMatching(/@autoflowsandbox\.onmicrosoft\.com$/) });
      expect(parseTeamsToken({ accessToken: credential.accessToken }).authMethod).toBe("access_token");
    });

    it("answers /me with the default property set, or the $select-ed one, with Graph's headers", async () => {
      await start();
      const { accessToken, userPrincipalName } = await issue();
      const full = await graph("/me", accessToken, { "client-request-id": "my-id" });
      expect(full.status).toBe(200);
      expect(full.headers.get("content-type")).toMatch(/^application\/json;odata\.metadata=minimal/);
      expect(full.headers.get("request-id")).toMatch(/^[0-9a-f-]{36}$/);
      expect(full.headers.get("client-request-id")).toBe("my-id");
      expect(JSON.parse(full.headers.get("x-ms-ags-diagnostic") as string)).toHaveProperty("ServerInfo");
      const me = (await full.json()) as Json;
      expect(me).toMatchObject({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity", userPrincipalName, businessPhones: [], jobTitle: null });
      const selected = (await (await graph("/me?$select=id,userPrincipalName", accessToken)).json()) as Json;
      expect(Object.keys(selected).sort()).toEqual(["@odata.context", "id", "userPrincipalName"]);
      expect(selected["@odata.context"]).toBe("https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName)/$entity");
      expect(await expectGraphError(await graph("/me?$select=shoeSize", accessToken), 400, "BadRequest")).toBe("Could not find a property named 'shoeSize' on type 'microsoft.graph.user'.");
    });

    it("answers joinedTeams and the organization", async () => {
      await start();
      const { accessToken, tenantId } = await issue();
      const teams = (await (await graph("/me/joinedTeams", accessToken)).json()) as { value: Json[] };
      expect(teams.value.length).toBeGreaterThan(0);
      expect(teams.value[0]).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), displayName: expect.any(String), description: expect.any(String), tenantId });
      const org = (await (await graph("/organization", accessToken)).json()) as { value: Json[] };
      expect(org.value[0]).toMatchObject({ id: tenantId, verifiedDomains: [expect.objectContaining({ isInitial: true, type: "Managed" })] });
    });

    it.each([
      ["no token", undefined, "Access token is empty."],
      ["a token that is not a JWT", "EwBwA8l6BAAU", "CompactToken parsing failed with error code: 80049217"],
      ["a token it never issued", "eyJ0eXAiOiJKV1QifQ.eyJ4IjoxfQ.c2ln", "Access token validation failure."],
    ])("answers 401 InvalidAuthenticationToken with Graph's challenge for %s", async (_what, accessToken, message) => {
      await start();
      const res = await graph("/me", accessToken);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"');
      expect(await expectGraphError(res, 401, "InvalidAuthenticationToken")).toBe(message);
    });

    it("expires access tokens after accessTokenTtlSeconds", async () => {
      await start({ accessTokenTtlSeconds: 60 });
      const { accessToken } = await issue();
      expect((await graph("/me", accessToken)).status).toBe(200);
      clock.t += 60_000;
      expect(await expectGraphError(await graph("/me", accessToken), 401, "InvalidAuthenticationToken")).toBe("Access token has expired or is not yet valid.");
    });

    it("rejects a revoked session with a CAE claims challenge", async () => {
      await start();
      const { accessToken } = await issue();
      await fetch(`${sandbox.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "revoke-all" }) });
      const res = await graph("/me", accessToken);
      expect(res.headers.get("www-authenticate")).toMatch(/error="insufficient_claims", claims="[A-Za-z0-9+/=]+"$/);
      expect(await expectGraphError(res, 401, "InvalidAuthenticationToken")).toMatch(/^Continuous access evaluation resulted in claims challenge/);
    });

    it("checks each read's permission: 403 Forbidden naming the Teams scopes, Authorization_RequestDenied for directory reads", async () => {
      await start();
      const userOnly = await issue({ scopes: ["User.Read"] });
      expect(await expectGraphError(await graph("/me/joinedTeams", userOnly.accessToken), 403, "Forbidden")).toMatch(/^Missing scope permissions on the request\. API requires one of 'Team\.ReadBasic\.All, .*'\. Scopes on the request 'User\.Read'$/);
      const teamsOnly = await issue({ scopes: ["Team.ReadBasic.All"] });
      expect(await expectGraphError(await graph("/me", teamsOnly.accessToken), 403, "Authorization_RequestDenied")).toBe("Insufficient privileges to complete the operation.");
      expect((await graph("/me/joinedTeams", teamsOnly.accessToken)).status).toBe(200);
    });

    it("answers an unknown segment with 400 BadRequest and segments case-insensitively", async () => {
      await start();
      const { accessToken } = await issue();
      expect(await expectGraphError(await graph("/me/chatz", accessToken), 400, "BadRequest")).toBe("Resource not found for the segment 'chatz'.");
      expect((await graph("/Me/JoinedTeams", accessToken)).status).toBe(200);
    });

    it("batches reads: 200 with a status per request, and a 401 for the whole batch when the token is bad", async () => {
      await start();
      const userOnly = await issue({ scopes: ["User.Read"] });
      const send = (body: unknown, accessToken = userOnly.accessToken) =>
        fetch(`${sandbox.url}/v1.0/$batch`, { method: "POST", headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      const res = await send({
        requests: [
          { id: "1", method: "GET", url: "/me?$select=id" },
          { id: "2", method: "GET", url: "me/joinedTeams" },
          { id: "3", method: "DELETE", url: "/me" },
        ],
      });
      expect(res.status).toBe(200);
      const { responses } = (await res.json()) as { responses: { id: string; status: number; headers: Json; body: { error?: { code: string } } }[] };
      expect(responses.map((r) => [r.id, r.status])).toEqual([
        ["1", 200],
        ["2", 403],
        ["3", 405],
      ]);
      expect(responses[0]?.headers).toMatchObject({ "Content-Type": expect.stringMatching(/^application\/json;odata/) });
      expect(responses[1]?.body.error?.code).toBe("Forbidden");
      const dependent = (await (
        await send({ requests: [{ id: "t", method: "GET", url: "/me/joinedTeams" }, { id: "m", method: "GET", url: "/me", dependsOn: ["t"] }] })
      ).json()) as { responses: { id: string; status: number }[] };
      expect(dependent.responses.map((r) => r.status)).toEqual([403, 424]);
      await expectGraphError(await send({ requests: [{ id: "m", method: "GET", url: "/me", dependsOn: ["nope"] }] }), 400, "BadRequest");
      await expectGraphError(await send({ requests: [] }), 400, "BadRequest");
      await expectGraphError(await send({ requests: Array.from({ length: 21 }, (_, i) => ({ id: String(i), method: "GET", url: "/me" })) }), 400, "BadRequest");
      await expectGraphError(await send({ requests: [{ id: "a", method: "GET", url: "/me" }, { id: "A", method: "GET", url: "/me" }] }), 400, "BadRequest");
      await expectGraphError(await send({ requests: [{ id: "1", method: "GET", url: "/me" }] }, "eyJ0eXAiOiJKV1QifQ.eyJ4IjoxfQ.c2ln"), 401, "InvalidAuthenticationToken");
    });
  });

  describe("faults, in each host's own format", () => {
    const fault = (body: Json) => fetch(`${sandbox.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

    it("throttles Graph with 429 TooManyRequests, a decimal Retry-After by default, and the identity platform with its own body", async () => {
      await start();
      await fault({ fault: "rate-limit", times: 1 });
      const res = await graph("/me");
      expect(res.headers.get("retry-after")).toBe("2.128");
      const body = (await res.clone().json()) as { error: { innerError: { code?: string } } };
      expect(body.error.innerError.code).toBe("throttledRequest");
      const message = await expectGraphError(res, 429, "TooManyRequests");
      expect(message).toBe("Too many requests");
      await fault({ fault: "rate-limit", times: 1, path: TOKEN, retryAfterSeconds: 5 });
      const sts = await post(TOKEN, { grant_type: "refresh_token" });
      expect(sts.headers.get("retry-after")).toBe("5");
      await expectSts(sts, 429, "temporarily_unavailable", 90055);
    });

    it("fails Graph with 503 serviceNotAvailable (Retry-After when asked) and the token endpoint with temporarily_unavailable", async () => {
      await start();
      await fault({ fault: "server-error", times: 1, retryAfterSeconds: 7 });
      const res = await graph("/me");
      expect(res.headers.get("retry-after")).toBe("7");
      await expectGraphError(res, 503, "serviceNotAvailable");
      await fault({ fault: "server-error", times: 1, path: TOKEN });
      await expectSts(await post(TOKEN, {}), 503, "temporarily_unavailable", 50033);
    });

    it("does not apply faults to the consent page under any tenant the sandbox knows", async () => {
      await start();
      await fault({ fault: "server-error" });
      expect((await fetch(authorizeUrl({}, "organizations"), { redirect: "manual" })).status).toBe(302);
    });
  });

  describe("the connector against the sandbox", () => {
    const ctx = (): ConnectorContext => {
      const settings: ConnectorSettings = {
        mode: "sandbox",
        options: { TENANT: "common" },
        clientId: sandbox.clientId,
        clientSecret: sandbox.clientSecret,
        endpoints: sandbox.endpoints,
        redirectUri: REDIRECT,
        scopes: teamsConnector.defaultScopes,
        sandboxUrl: sandbox.url,
      };
      return { settings, http: new ProviderHttp({ provider: "teams", displayName: "Microsoft Teams", classify: classifyTeams, policy: { ...teamsRetryPolicy, attempts: 1 }, timeoutMs: 5000 }) };
    };

    it("runs the code flow, learns who the user is in one batch, and refreshes with a new refresh token", async () => {
      await start();
      const c = ctx();
      const verifier = createCodeVerifier();
      const url = buildUrl(c.settings.endpoints.authorizeUrl, { ...teamsConnector.authorizationParams(c.settings), state: "s", code_challenge: codeChallengeS256(verifier), code_challenge_method: "S256" });
      const callback = new URL((await fetch(url, { redirect: "manual" })).headers.get("location") as string);
      const grant = await teamsConnector.exchangeCode(c, { code: callback.searchParams.get("code") as string, codeVerifier: verifier });
      expect(grant.scopes).toEqual(["User.Read", "Team.ReadBasic.All"]);
      await fetch(`${sandbox.url}/_sandbox/requests`, { method: "DELETE" });
      const identity = await identify(teamsConnector, c, { accessToken: grant.accessToken, authMethod: "oauth2", metadata: {} });
      expect(identity.metadata).toEqual({ tenantId: expect.stringMatching(/^[0-9a-f-]{36}$/), userPrincipalName: expect.stringMatching(/@autoflowsandbox\.onmicrosoft\.com$/), displayName: "Sandbox User" });
      expect(identity.summary).toMatchObject({ tenantName: "AutoFlow Sandbox", joinedTeams: "2", requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      const log = (await (await fetch(`${sandbox.url}/_sandbox/requests`)).json()) as { requests: { method: string; path: string }[] };
      expect(log.requests).toEqual([expect.objectContaining({ method: "POST", path: "/v1.0/$batch" })]);
      const renewed = await teamsConnector.refreshToken?.(c, grant.refreshToken as string);
      expect(renewed?.refreshToken).toMatch(/^1\.A/);
      expect(renewed?.refreshToken).not.toBe(grant.refreshToken);
    });

    it("refuses a pasted token without the Teams permission as auth, naming what Graph wants", async () => {
      await start();
      const credential = (await (
        await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes: ["User.Read"] }) })
      ).json()) as { accessToken: string };
      const error = await identify(teamsConnector, ctx(), { accessToken: credential.accessToken, authMethod: "access_token", metadata: {} }).catch((e: unknown) => e);
      expect(error).toMatchObject({ type: "auth", code: "Forbidden", status: 403, provider: "teams" });
      expect((error as Error).message).toMatch(/joinedTeams.*Team\.ReadBasic\.All/);
    });

    it("turns a refused refresh into auth with the AADSTS code in the message", async () => {
      await start();
      const error = await teamsConnector.refreshToken?.(ctx(), "1.AXoAnever-issued-refresh-token").catch((e: unknown) => e);
      expect(error).toMatchObject({ type: "auth", code: "invalid_grant", status: 400 });
      expect((error as Error).message).toMatch(/AADSTS9002313/);
    });
  });
});
