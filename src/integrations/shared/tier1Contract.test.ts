/**
 * Tier 1 contract suite: one suite, run over every registered connector,
 * through the HTTP API, against the sandboxes. What it proves holds for all
 * connectors because it lives once, in shared/; a connector's own test only
 * covers its quirks.
 */
import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { CONNECTORS, PROVIDER_IDS, type ProviderId } from "../registry.js";
import { testDatabases, type TestDatabase } from "../../testing/databases.js";
import { cookieHeader, startHarness, type Harness } from "../../testing/harness.js";
import { metricSum } from "../../testing/metrics.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ConnectorLifecycle, Tier1ErrorType, Tier1OAuthStartResult } from "./contract.js";
import { connectFieldsOf } from "./connector.js";
import type { buildConnectionSchema, buildHealthSchema } from "./publicShapes.js";
import type { ConnectionHealthOf, ConnectionPublicOf } from "../../sdk.js";
import type { SlackConnectionPublic, SlackHealth } from "../connectorTypes.js";
import type { z } from "zod";
import { escapeHtml } from "./html.js";
import { AutoFlowClient } from "../../client/index.js";
import { injectFetch } from "../../testing/injectFetch.js";
import { WRITE_CASES, type ProxiedAnswer, type ProxyStep } from "../../testing/proxyCases.js";
import { ACTION_CASES } from "../../testing/actionCases.js";
import type { ActionMap } from "./action.js";

type Json = Record<string, unknown>;
type ErrorBody = { error: { type: Tier1ErrorType; message: string; retryable: boolean; provider?: string; code?: string } };

/**
 * What a sandbox's credentials desk hands out that POST .../connections takes:
 * the key or token, and for per-site providers the instance and the account's email.
 */
/*
 * The seed's types, transcribed as it prints them (its `interface X<...> { ... } & TMetadata`, not valid
 * TypeScript, written as the alias it means). contract.ts must equal them exactly: a widened union, a field
 * made optional or required, an extra or a missing field fails the type check (npm run typecheck, .ci/run).
 */
type SeedErrorType = "auth" | "rate-limit" | "schema" | "network" | "upstream";
type SeedOAuthStartResult = {
  authUrl: string;
  state: string;
  expiresInSeconds: number;
  codeVerifier?: string;
};
interface SeedConnectorLifecycle<CredentialPublic, Health> {
  beginOAuth(userId: string): SeedOAuthStartResult;
  completeOAuth(params: { code: string; state: string }): Promise<CredentialPublic>;
  connectApiKey(params: { userId: string; apiKey?: string; accessToken?: string }): Promise<CredentialPublic>;
  listConnections(userId: string): Promise<CredentialPublic[]> | CredentialPublic[];
  testConnection(userId: string): Promise<Record<string, string | undefined>>;
  health(userId: string): Promise<Health>;
  disconnect(userId: string, credentialId: string): Promise<boolean> | boolean;
}
type SeedConnectionPublic<TAuthMethod extends string, TMetadata> = {
  id: string;
  userId: string;
  authMethod: TAuthMethod;
  tokenMasked: string;
  createdAt: string;
  revokedAt?: string;
} & TMetadata;
type SeedConnectionHealth<TAuthMethod extends string, TMetadata> = {
  status: "ok" | "degraded" | "down";
  checkedAt: string;
  authMethod?: TAuthMethod;
  tokenRefreshStatus?: "not_applicable" | "healthy" | "failed";
  details: {
    auth: boolean;
    apiReachable: boolean;
    rateLimited: boolean;
    errorType?: "auth" | "rate-limit" | "schema" | "network" | "upstream";
    message?: string;
  };
} & TMetadata;

/** The eight Tier 1 connectors the seed names (Microsoft Teams as `teams`). */
const SEED_TIER1 = ["gmail", "hubspot", "jira", "linear", "sentry", "slack", "stripe", "teams"];

describe("the v1 contract, as the seed has it", () => {
  it("holds contract.ts to the seed's types exactly", () => {
    type Method = "oauth2" | "api_key";
    type Meta = { teamId: string; scopes: string[] };
    expectTypeOf<Tier1ErrorType>().toEqualTypeOf<SeedErrorType>();
    expectTypeOf<Tier1OAuthStartResult>().toEqualTypeOf<SeedOAuthStartResult>();
    expectTypeOf<Tier1ConnectionPublic<Method, Meta>>().toEqualTypeOf<SeedConnectionPublic<Method, Meta>>();
    expectTypeOf<Tier1ConnectionHealth<Method, Meta>>().toEqualTypeOf<SeedConnectionHealth<Method, Meta>>();
    expectTypeOf<Tier1ConnectionHealth<Method, Meta>["details"]>().toEqualTypeOf<SeedConnectionHealth<Method, Meta>["details"]>();
    type Public = SeedConnectionPublic<Method, Meta>;
    type Health = SeedConnectionHealth<Method, Meta>;
    expectTypeOf<Tier1ConnectorLifecycle<Public, Health>>().toEqualTypeOf<SeedConnectorLifecycle<Public, Health>>();
  });

  it("holds each connector's response schemas to its contract types (what the lifecycle parses its answers with)", () => {
    type Def<P extends ProviderId> = (typeof CONNECTORS)[P]["definition"];
    type AuthOf<P extends ProviderId> = Def<P>["authMethods"][number];
    type MetaSchemaOf<P extends ProviderId> = Def<P>["metadataSchema"];
    type ShapeOf<P extends ProviderId> = MetaSchemaOf<P>["shape"];
    type SchemaPublic<P extends ProviderId> = z.output<ReturnType<typeof buildConnectionSchema<AuthOf<P>, ShapeOf<P>>>>;
    type SchemaHealth<P extends ProviderId> = z.output<ReturnType<typeof buildHealthSchema<AuthOf<P>, ShapeOf<P>>>>;
    type ContractPublic<P extends ProviderId> = Tier1ConnectionPublic<AuthOf<P>, z.output<MetaSchemaOf<P>>>;
    type ContractHealth<P extends ProviderId> = Tier1ConnectionHealth<AuthOf<P>, Partial<z.output<MetaSchemaOf<P>>>>;
    expectTypeOf<SchemaPublic<"slack">>().branded.toEqualTypeOf<ContractPublic<"slack">>();
    expectTypeOf<SchemaPublic<"hubspot">>().branded.toEqualTypeOf<ContractPublic<"hubspot">>();
    expectTypeOf<SchemaPublic<"stripe">>().branded.toEqualTypeOf<ContractPublic<"stripe">>();
    expectTypeOf<SchemaPublic<"gmail">>().branded.toEqualTypeOf<ContractPublic<"gmail">>();
    expectTypeOf<SchemaPublic<"linear">>().branded.toEqualTypeOf<ContractPublic<"linear">>();
    expectTypeOf<SchemaPublic<"teams">>().branded.toEqualTypeOf<ContractPublic<"teams">>();
    expectTypeOf<SchemaPublic<"jira">>().branded.toEqualTypeOf<ContractPublic<"jira">>();
    expectTypeOf<SchemaPublic<"sentry">>().branded.toEqualTypeOf<ContractPublic<"sentry">>();
    expectTypeOf<SchemaHealth<"slack">>().branded.toEqualTypeOf<ContractHealth<"slack">>();
    expectTypeOf<SchemaHealth<"hubspot">>().branded.toEqualTypeOf<ContractHealth<"hubspot">>();
    expectTypeOf<SchemaHealth<"stripe">>().branded.toEqualTypeOf<ContractHealth<"stripe">>();
    expectTypeOf<SchemaHealth<"gmail">>().branded.toEqualTypeOf<ContractHealth<"gmail">>();
    expectTypeOf<SchemaHealth<"linear">>().branded.toEqualTypeOf<ContractHealth<"linear">>();
    expectTypeOf<SchemaHealth<"teams">>().branded.toEqualTypeOf<ContractHealth<"teams">>();
    expectTypeOf<SchemaHealth<"jira">>().branded.toEqualTypeOf<ContractHealth<"jira">>();
    expectTypeOf<SchemaHealth<"sentry">>().branded.toEqualTypeOf<ContractHealth<"sentry">>();
    // (branded: the contract's types are intersections, the schemas' flat objects; .branded compares them field by field.)
    // The SDK's per-provider types are those, and the named ones index.ts exports are the same.
    expectTypeOf<ConnectionPublicOf<"slack">>().toEqualTypeOf<SlackConnectionPublic>();
    expectTypeOf<ConnectionHealthOf<"slack">>().toEqualTypeOf<SlackHealth>();
    expectTypeOf<ConnectionPublicOf<"jira">>().branded.toEqualTypeOf<ContractPublic<"jira">>();
    expectTypeOf<ConnectionHealthOf<"sentry">>().branded.toEqualTypeOf<ContractHealth<"sentry">>();
    // Each connector's answers go through its schema: an undeclared field is not answered.
    for (const id of PROVIDER_IDS) {
      const definition = CONNECTORS[id].definition;
      expect(definition.requiredMetadata.every((key) => key in definition.metadataSchema.shape), id).toBe(true);
    }
  });

  it("registers the eight Tier 1 connectors (removing one fails here, not just shrinks the suite)", () => {
    expect([...PROVIDER_IDS].sort()).toEqual(SEED_TIER1);
    expect(Object.keys(CONNECTORS).sort()).toEqual(SEED_TIER1);
  });

  describe.each(testDatabases())("the seed's two HTTP examples, on %s", (database) => {
    let h: Harness;
    // The seed's examples through the typed client (autoflow-integrations/client), as an AutoFlow service would call.
    let client: AutoFlowClient;
    beforeAll(async () => {
      h = await startHarness({ database });
      client = new AutoFlowClient({ baseUrl: "http://127.0.0.1:3000", token: () => h.token("seed"), fetch: injectFetch(h.service.app) });
    });
    afterAll(async () => {
      await h?.close();
    });

    it("POST /api/integrations/slack/oauth/start answers the seed's four fields", async () => {
      const body = await client.startOAuth("slack");
      expect(Object.keys(body).sort()).toEqual(["authUrl", "codeVerifier", "expiresInSeconds", "state"]);
      expect(body).toMatchObject({ expiresInSeconds: 600, state: expect.stringMatching(/^slack_/) as unknown, codeVerifier: expect.any(String) as unknown });
      expect(new URL(body.authUrl).pathname).toBe("/oauth/v2/authorize");
    });

    it("GET /api/integrations/stripe/health, throttled, answers the seed's degraded envelope", async () => {
      const started = await h.request({ method: "POST", url: "/api/integrations/stripe/oauth/start", user: "seed" });
      const consent = await fetch((started.json() as { authUrl: string }).authUrl, { redirect: "manual" });
      const callback = new URL(consent.headers.get("location") as string);
      const done = await h.request({ method: "GET", url: callback.pathname + callback.search, headers: { cookie: cookieHeader(started.headers["set-cookie"]) } });
      expect(done.statusCode, done.body).toBe(200);
      await h.sandbox("stripe", "/_sandbox/faults", { body: { fault: "rate-limit" } });
      try {
        const health = await client.health("stripe");
        expect(health).toMatchObject({
          status: "degraded",
          authMethod: "oauth2",
          accountId: expect.stringMatching(/^acct_/) as unknown,
          details: { auth: true, apiReachable: true, rateLimited: true, errorType: "rate-limit", message: "Stripe API rate limit exceeded" },
        });
        expect(new Date(health.checkedAt).toISOString()).toBe(health.checkedAt);
      } finally {
        await h.sandbox("stripe", "/_sandbox/faults", { method: "DELETE" });
      }
    });
  });
});

const connectBodyOf = (credential: Json): Json => connectFieldsOf(credential);

const OTHER_USER = "bob";
/** Every connector on every database of this run (SQLite, and PostgreSQL when there is one). */
const CASES = PROVIDER_IDS.flatMap((provider) => testDatabases().map((database) => ({ provider, database })));

describe.each(CASES)("Tier 1 contract: $provider on $database", ({ provider, database }: { provider: ProviderId; database: TestDatabase }) => {
  const definition = CONNECTORS[provider].definition;
  const base = `/api/integrations/${provider}`;
  const user = `alice-${provider}`;
  let h: Harness;
  /** Every secret the run handled, for the leak check at the end. */
  const secrets = new Set<string>();

  beforeAll(async () => {
    // A short provider timeout so the "delay" fault turns into a network error quickly.
    h = await startHarness({ providerTimeoutMs: 400, database });
  });
  afterEach(async () => {
    await h.sandbox(provider, "/_sandbox/faults", { method: "DELETE" });
    // A throttle a fault made up holds the account back for as long as it said: gone with the fault.
    await h.service.pacer?.settled();
    await h.service.rateWindows.clear?.();
    h.clock.sleeps.length = 0;
    // Back in step with the sandboxes' clock: a provider's reset instant means the same to both, as in production.
    h.clock.offsetMs = 0;
  });
  afterAll(async () => {
    await h?.close();
  });

  const settings = () => h.service.integrations[provider].settings;
  const revokePath = () => new URL(settings().endpoints.revokeUrl as string).pathname;
  const probePath = async (): Promise<string> => {
    // The who-am-I path is whatever the last health probe hit at the sandbox.
    await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
    await h.request({ method: "GET", url: `${base}/health`, user });
    const requests = await h.sandboxRequests(provider);
    const last = requests.at(-1);
    if (!last) throw new Error("health made no request");
    return last.path;
  };
  const fault = (body: Json) => h.sandbox(provider, "/_sandbox/faults", { body });
  const countTo = async (path: string) => (await h.sandboxRequests(provider)).filter((r) => r.path === path).length;

  /** start (sets the flow's cookie) -> plain GET of authUrl (consent auto-approved) -> 302 -> callback with the cookie. */
  async function oauthRoundTrip(forUser: string): Promise<{ connection: Json; start: Json; callback: URL }> {
    const startRes = await h.request({ method: "POST", url: `${base}/oauth/start`, user: forUser });
    expect(startRes.statusCode).toBe(200);
    const start = startRes.json() as Json;
    // The binding cookie: only the callback sees it, no script reads it, it goes back on the provider's redirect.
    const setCookie = String(startRes.headers["set-cookie"]);
    expect(setCookie).toMatch(/^af_oauth_[A-Za-z0-9_-]{22}=[A-Za-z0-9_-]{43};/);
    expect(setCookie.split("; ").slice(1).sort()).toEqual(["HttpOnly", `Max-Age=${String(start.expiresInSeconds)}`, `Path=${base}/oauth/callback`, "SameSite=Lax"]);
    const cookie = cookieHeader(startRes.headers["set-cookie"]);
    secrets.add(cookie.slice(cookie.indexOf("=") + 1));
    const consent = await fetch(start.authUrl as string, { redirect: "manual" });
    expect(consent.status).toBe(302);
    const callback = new URL(consent.headers.get("location") as string);
    expect(callback.pathname).toBe(`${base}/oauth/callback`);
    secrets.add(callback.searchParams.get("code") as string);
    const page = await h.request({ method: "GET", url: callback.pathname + callback.search, headers: { cookie } });
    expect(page.statusCode, page.body).toBe(200);
    expect(page.headers["content-type"]).toMatch(/text\/html/);
    expect(page.headers["referrer-policy"]).toBe("no-referrer");
    // Done with: the browser drops it.
    expect(String(page.headers["set-cookie"])).toBe(`${cookie.slice(0, cookie.indexOf("="))}=; Max-Age=0; Path=${base}/oauth/callback; HttpOnly; SameSite=Lax`);
    const list = await h.request({ method: "GET", url: `${base}/connections`, user: forUser });
    const connections = (list.json() as { connections: Json[] }).connections;
    const connection = connections.find((c) => c.authMethod === definition.oauthAuthMethod) as Json;
    expect(connection).toBeDefined();
    // The page names the account that was connected, so a user sees what was linked.
    const label = (definition.accountLabel ?? definition.requiredMetadata).map((k) => connection[k]).find((v) => v !== undefined && v !== null);
    expect(page.body).toContain(escapeHtml(String(label)));
    await rememberSecrets(connection.id as string, forUser);
    return { connection, start, callback };
  }

  async function rememberSecrets(connectionId: string, forUser: string): Promise<void> {
    const record = await h.service.store.vault.findConnection({ userId: forUser, provider, id: connectionId });
    if (!record || record.revokedAt) return;
    const stored = await h.service.store.vault.readSecrets(record);
    secrets.add(stored.accessToken);
    if (stored.refreshToken) secrets.add(stored.refreshToken);
  }

  async function connectWithKey(forUser: string, desk: Json = {}): Promise<Json> {
    const credential = (await h.sandbox(provider, "/_sandbox/credentials", { body: desk })) as Json;
    const body = connectBodyOf(credential);
    for (const key of ["apiKey", "accessToken"]) if (typeof body[key] === "string") secrets.add(body[key]);
    const res = await h.request({ method: "POST", url: `${base}/connections`, user: forUser, body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Json;
  }

  function expectPublicShape(connection: Json, forUser: string, authMethod: string): void {
    expect(connection.id).toMatch(/^conn_[A-Za-z0-9_-]+$/);
    expect(connection.userId).toBe(forUser);
    expect(connection.authMethod).toBe(authMethod);
    expect(typeof connection.createdAt).toBe("string");
    expect(new Date(connection.createdAt as string).toISOString()).toBe(connection.createdAt);
    expect(connection.tokenMasked).toMatch(/^[^*]{0,4}\*{4}[^*]{0,4}$/);
    expect(Array.isArray(connection.scopes)).toBe(true);
    for (const key of definition.requiredMetadata) expect(connection[key], key).toBeDefined();
    expect(connection).not.toHaveProperty("accessToken");
    expect(connection).not.toHaveProperty("refreshToken");
  }

  async function health(forUser = user): Promise<Json & { details: Json }> {
    const res = await h.request({ method: "GET", url: `${base}/health`, user: forUser });
    expect(res.statusCode).toBe(200);
    return res.json() as Json & { details: Json };
  }

  async function expectError(res: { statusCode: number; json(): unknown }, status: number, type: Tier1ErrorType): Promise<ErrorBody["error"]> {
    expect(res.statusCode).toBe(status);
    const body = res.json() as ErrorBody;
    expect(body.error.type).toBe(type);
    expect(body.error.retryable).toBe(["rate-limit", "network", "upstream"].includes(type));
    expect(typeof body.error.message).toBe("string");
    return body.error;
  }

  it("lists the connector with its auth methods, PKCE use, mode and sandbox URL", async () => {
    const res = await h.request({ method: "GET", url: "/api/integrations", user });
    const entry = (res.json() as { providers: Json[] }).providers.find((p) => p.id === provider) as Json;
    expect(entry).toMatchObject({
      id: provider,
      authMethods: definition.authMethods,
      pkce: definition.pkce,
      acceptsBaseUrl: definition.acceptsBaseUrl ?? false,
      mode: "sandbox",
      sandboxUrl: h.sandboxUrl(provider),
    });
  });

  it("begins OAuth with a bound state, S256 PKCE where used, and the registered redirect URI", async () => {
    const res = await h.request({ method: "POST", url: `${base}/oauth/start`, user });
    const start = res.json() as Json;
    expect(start.expiresInSeconds).toBe(600);
    expect(start.state).toMatch(new RegExp(`^${provider}_[A-Za-z0-9_-]{22,}$`));
    const authUrl = new URL(start.authUrl as string);
    expect(authUrl.origin).toBe(h.sandboxUrl(provider));
    expect(authUrl.searchParams.get("state")).toBe(start.state);
    expect(authUrl.searchParams.get("redirect_uri")).toBe(`http://localhost:3000${base}/oauth/callback`);
    if (definition.pkce) {
      expect(start.codeVerifier).toMatch(/^[A-Za-z0-9\-._~]{43,128}$/);
      expect(authUrl.searchParams.get("code_challenge_method")).toBe("S256");
      expect(authUrl.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    } else {
      expect(start).not.toHaveProperty("codeVerifier");
      expect(authUrl.searchParams.has("code_challenge")).toBe(false);
    }
  });

  it("completes the OAuth round trip and lists the connection", async () => {
    const { connection } = await oauthRoundTrip(user);
    expectPublicShape(connection, user, definition.oauthAuthMethod);
    const test = await h.request({ method: "POST", url: `${base}/test`, user, headers: { "content-type": "application/json" }, body: "" });
    expect(test.statusCode, test.body).toBe(200);
    expect((test.json() as Json).connectionId).toBe(connection.id);
  });

  it("completes OAuth through POST .../oauth/complete for the same user", async () => {
    const start = (await h.request({ method: "POST", url: `${base}/oauth/start`, user })).json() as Json;
    const consent = await fetch(start.authUrl as string, { redirect: "manual" });
    const callback = new URL(consent.headers.get("location") as string);
    const res = await h.request({
      method: "POST",
      url: `${base}/oauth/complete`,
      user,
      body: { code: callback.searchParams.get("code"), state: callback.searchParams.get("state") },
    });
    expect(res.statusCode, res.body).toBe(201);
    expectPublicShape(res.json() as Json, user, definition.oauthAuthMethod);
    await rememberSecrets((res.json() as Json).id as string, user);
  });

  it("connects with an API key or token and tests it", async () => {
    const connection = await connectWithKey(user);
    expectPublicShape(connection, user, connection.authMethod as string);
    expect(definition.authMethods).toContain(connection.authMethod);
    const test = await h.request({ method: "POST", url: `${base}/test?connectionId=${connection.id as string}`, user });
    expect(test.statusCode, test.body).toBe(200);
    expect((test.json() as Json).connectionId).toBe(connection.id);
  });

  it("refuses a well-formed key the provider never issued as auth, and a malformed one as schema", async () => {
    const credential = (await h.sandbox(provider, "/_sandbox/credentials", { body: {} })) as Json;
    const [field, value] = Object.entries(credential).find(([k]) => k === "apiKey" || k === "accessToken") as [string, string];
    const forged = value.slice(0, -6) + (value.endsWith("AAAAAA") ? "BBBBBB" : "AAAAAA");
    const refused = await h.request({ method: "POST", url: `${base}/connections`, user, body: { ...connectBodyOf(credential), [field]: forged } });
    await expectError(refused, 424, "auth");
    const malformed = await h.request({ method: "POST", url: `${base}/connections`, user, body: { ...connectBodyOf(credential), [field]: "not-a-key" } });
    const error = await expectError(malformed, 400, "schema");
    expect(error.message).toMatch(new RegExp(field));
  });

  it("reports health ok, degraded while throttled, and down once revoked", async () => {
    await connectWithKey(user);
    expect(await health()).toMatchObject({ status: "ok", details: { auth: true, apiReachable: true, rateLimited: false } });
    await fault({ fault: "rate-limit", retryAfterSeconds: 1 });
    const throttled = await health();
    expect(throttled).toMatchObject({ status: "degraded", details: { auth: true, apiReachable: true, rateLimited: true, errorType: "rate-limit" } });
    expect(typeof throttled.details.message).toBe("string");
    expect(typeof throttled.checkedAt).toBe("string");
    for (const key of definition.requiredMetadata) expect(throttled[key], key).toBeDefined();
    await h.sandbox(provider, "/_sandbox/faults", { method: "DELETE" });
    await fault({ fault: "revoke-all" });
    expect(await health()).toMatchObject({ status: "down", details: { auth: false, errorType: "auth" } });
  });

  it("disconnects: revoked at the provider where it has a revoke endpoint, revokedAt set, health down after", async () => {
    const { connection } = await oauthRoundTrip("carol");
    const hasRevokeEndpoint = settings().endpoints.revokeUrl !== undefined;
    await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
    const res = await h.request({ method: "DELETE", url: `${base}/connections/${connection.id as string}`, user: "carol" });
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json() as { disconnected: boolean; revocation: string; connection: Json; note?: string };
    expect(report.disconnected).toBe(true);
    expect(typeof report.connection.revokedAt).toBe("string");
    if (hasRevokeEndpoint) {
      expect(report.revocation).toBe("revoked");
      expect(await countTo(revokePath())).toBeGreaterThan(0);
    } else {
      // No way to revoke one grant at this provider: revoked here, and the answer says so.
      expect(report.revocation).toBe("not_supported");
      expect(report.note).toMatch(/revoke/);
      expect(await h.sandboxRequests(provider)).toEqual([]);
    }
    const after = await health("carol");
    expect(after).toMatchObject({ status: "down", details: { auth: false } });
    const listed = (await h.request({ method: "GET", url: `${base}/connections?includeRevoked=true`, user: "carol" })).json() as { connections: Json[] };
    expect(listed.connections.find((c) => c.id === connection.id)?.revokedAt).toBe(report.connection.revokedAt);
    const active = (await h.request({ method: "GET", url: `${base}/connections`, user: "carol" })).json() as { connections: Json[] };
    expect(active.connections.some((c) => c.id === connection.id)).toBe(false);
  });

  describe("each error type from a sandbox fault, classified", () => {
    const cases: { fault: Json; status: number; type: Tier1ErrorType }[] = [
      { fault: { fault: "rate-limit", retryAfterSeconds: 3600 }, status: 429, type: "rate-limit" },
      { fault: { fault: "server-error" }, status: 502, type: "upstream" },
      { fault: { fault: "malformed" }, status: 502, type: "upstream" },
      { fault: { fault: "disconnect" }, status: 503, type: "network" },
      { fault: { fault: "delay", delayMs: 1_500 }, status: 503, type: "network" },
      // The provider refusing for good is 422, not the 400 of a malformed request to us.
      { fault: { fault: "bad-request" }, status: 422, type: "schema" },
      { fault: { fault: "revoke-all" }, status: 424, type: "auth" },
    ];
    it.each(cases)("$fault.fault -> $type", async ({ fault: f, status, type }) => {
      await connectWithKey(`errors-${provider}`);
      await fault(f);
      const res = await h.request({ method: "POST", url: `${base}/test`, user: `errors-${provider}` });
      const error = await expectError(res, status, type);
      expect(error.provider).toBe(provider);
      if (type === "rate-limit") expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
      if (type === "schema") expect(error).toHaveProperty("providerStatus");
    });
  });

  describe("retries", () => {
    it("retries upstream failures within the budget and then succeeds", async () => {
      await connectWithKey("retry");
      const path = await probePath();
      await fault({ fault: "server-error", times: 2 });
      const before = await countTo(path);
      const res = await h.request({ method: "POST", url: `${base}/test`, user: "retry" });
      expect(res.statusCode, res.body).toBe(200);
      expect((await countTo(path)) - before).toBe(3);
      expect(h.clock.sleeps).toHaveLength(2);
      for (const [i, ms] of h.clock.sleeps.entries()) {
        expect(ms).toBeLessThanOrEqual(Math.min(definition.retryPolicy.capDelayMs, definition.retryPolicy.baseDelayMs * 2 ** i));
      }
    });

    it("waits the provider's Retry-After before retrying a throttled call", async () => {
      await connectWithKey("retry-after");
      await fault({ fault: "rate-limit", times: 1, retryAfterSeconds: 2 });
      const res = await h.request({ method: "POST", url: `${base}/test`, user: "retry-after" });
      expect(res.statusCode, res.body).toBe(200);
      expect(h.clock.sleeps).toEqual([2000]);
    });

    it("gives up after the policy's attempts", async () => {
      await connectWithKey("retry-out");
      const path = await probePath();
      await fault({ fault: "server-error" });
      const before = await countTo(path);
      const res = await h.request({ method: "POST", url: `${base}/test`, user: "retry-out" });
      await expectError(res, 502, "upstream");
      expect((await countTo(path)) - before).toBe(definition.retryPolicy.attempts);
      const waited = h.clock.sleeps.reduce((a, b) => a + b, 0);
      expect(waited).toBeLessThanOrEqual(definition.retryPolicy.budgetMs);
    });

    it.each([
      { fault: { fault: "revoke-all" }, type: "auth" as const },
      { fault: { fault: "bad-request" }, type: "schema" as const },
    ])("does not retry $type errors", async ({ fault: f, type }) => {
      await connectWithKey(`no-retry-${type}`);
      const path = await probePath();
      await fault(f);
      const before = await countTo(path);
      const res = await h.request({ method: "POST", url: `${base}/test`, user: `no-retry-${type}` });
      expect((res.json() as ErrorBody).error.type).toBe(type);
      expect((await countTo(path)) - before).toBe(1);
      expect(h.clock.sleeps).toHaveLength(0);
    });
  });

  describe("the proxy", () => {
    const proxyAs = (forUser: string) => async (step: ProxyStep & { connectionId?: string }): Promise<ProxiedAnswer> => {
      const res = await h.request({ method: "POST", url: `${base}/proxy`, user: forUser, body: step });
      let json: unknown;
      try {
        json = JSON.parse(res.body);
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, json };
    };
    /** The who-am-I request of a stored connection, as the connector makes it. */
    const whoAmIStep = async (forUser: string, connectionId: string): Promise<ProxyStep> => {
      const record = await h.service.store.vault.findConnection({ userId: forUser, provider, id: connectionId });
      if (!record) throw new Error("no record");
      const { accessToken } = await h.service.store.vault.readSecrets(record);
      const call = definition.whoAmI.request({ accessToken, authMethod: record.authMethod, metadata: record.metadata, ...(record.baseUrl ? { baseUrl: record.baseUrl } : {}) }, settings());
      if (call.path === undefined) throw new Error("who-am-I has no path");
      return { method: call.method, path: call.path, ...(call.json !== undefined ? { body: call.json } : {}), ...(call.headers ? { headers: { ...call.headers } } : {}) };
    };

    it("proxies the who-am-I: the connector reads the answer as its own, and the connection is named", async () => {
      const connection = await connectWithKey("proxy-who");
      const step = await whoAmIStep("proxy-who", connection.id as string);
      await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
      const answer = await proxyAs("proxy-who")(step);
      expect(answer.status, answer.body).toBe(200);
      expect(answer.headers["x-autoflow-connection-id"]).toBe(connection.id);
      expect(answer.headers["x-autoflow-error-type"]).toBeUndefined();
      for (const name of ["set-cookie", "www-authenticate", "authorization", "transfer-encoding", "content-encoding"]) expect(answer.headers, name).not.toHaveProperty(name);
      const record = await h.service.store.vault.findConnection({ userId: "proxy-who", provider, id: connection.id as string });
      const { accessToken } = await h.service.store.vault.readSecrets(record as never);
      const identity = definition.whoAmI.process(
        { status: answer.status, headers: new Headers(answer.headers as Record<string, string>), text: answer.body, json: answer.json },
        { accessToken, authMethod: record?.authMethod as string, metadata: record?.metadata ?? {}, ...(record?.baseUrl ? { baseUrl: record.baseUrl } : {}) },
        settings(),
      );
      for (const key of definition.requiredMetadata) expect(identity.metadata[key], key).toEqual(connection[key]);
      const seen = await h.sandboxRequests(provider);
      expect(seen).toHaveLength(1);
      expect(seen[0]?.method).toBe(step.method);
      expect(seen[0]?.path.endsWith(new URL(step.path, "http://x").pathname), seen[0]?.path).toBe(true);
    });

    it("proxies a write: the provider's answer and status come back as it gave them", async () => {
      const writes = WRITE_CASES[provider];
      await connectWithKey("proxy-write", writes.desk);
      const proxy = proxyAs("proxy-write");
      const step = await writes.write(proxy);
      const answer = await proxy(step);
      expect(answer.status, answer.body).toBe(writes.status);
      writes.check(answer.json as Json);
      expect(answer.headers["content-type"]).toMatch(/json/);
    });

    it("retries a write after a dropped connection only with the key of a provider that honours one, sent through", async () => {
      const writes = WRITE_CASES[provider];
      await connectWithKey("proxy-idem", writes.desk);
      const proxy = proxyAs("proxy-idem");
      const step = await writes.write(proxy);
      if (step.method !== "POST" && step.method !== "PATCH") return expect(step.method).toMatch(/^(PUT|DELETE)$/);
      const path = new URL(`${settings().endpoints.apiUrl}${step.path}`).pathname;
      await fault({ fault: "disconnect", times: 1, path });
      await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
      const once = await proxy(step);
      expect(once.status, once.body).toBe(503);
      expect((once.json as ErrorBody).error.type).toBe("network");
      expect(await countTo(path)).toBe(1);
      await fault({ fault: "disconnect", times: 1, path });
      await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
      const keyedStep = { ...step, headers: { ...step.headers, "Idempotency-Key": `proxy-${Math.random().toString(36).slice(2)}` } };
      const keyed = await proxy(keyedStep);
      const { idempotencyKeyHeader } = definition;
      if (!idempotencyKeyHeader) {
        // This provider ignores the header: had the write happened, a repeat would make it twice.
        expect(keyed.status, keyed.body).toBe(503);
        expect(await countTo(path)).toBe(1);
        return;
      }
      expect(keyed.status, keyed.body).toBe(writes.status);
      expect(await countTo(path)).toBe(2);
      // The key reached the provider: the same call again is its saved answer, replayed.
      const again = await proxy(keyedStep);
      expect(again.body).toBe(keyed.body);
      expect(again.headers["idempotent-replayed"]).toBe("true");
    });

    it("passes a provider's refusal of the request through, with the connector's error type", async () => {
      const connection = await connectWithKey("proxy-refused");
      const step = await whoAmIStep("proxy-refused", connection.id as string);
      await fault({ fault: "bad-request" });
      const answer = await proxyAs("proxy-refused")(step);
      expect(answer.headers["x-autoflow-error-type"]).toBe("schema");
      expect(answer.headers["x-autoflow-connection-id"]).toBe(connection.id);
      // The provider's own status (Slack refuses with a 200 and ok:false), not one of ours.
      expect(answer.status === 200 || (answer.status >= 400 && answer.status < 500), String(answer.status)).toBe(true);
      expect([422, 424, 429]).not.toContain(answer.status);
      expect(answer.json).toBeDefined();
      expect(answer.json).not.toHaveProperty("error.retryable");
    });

    it("answers a throttle that outlasts the budget, and a revoked credential, with the one error body; health goes down", async () => {
      const connection = await connectWithKey("proxy-down");
      const step = await whoAmIStep("proxy-down", connection.id as string);
      const proxy = proxyAs("proxy-down");
      await fault({ fault: "rate-limit", retryAfterSeconds: 3600 });
      const throttled = await proxy(step);
      expect(throttled.status).toBe(429);
      expect(Number(throttled.headers["retry-after"])).toBeGreaterThan(0);
      expect((throttled.json as ErrorBody).error).toMatchObject({ type: "rate-limit", retryable: true, provider });
      const stored = async () => (await h.service.store.vault.findConnection({ userId: "proxy-down", provider, id: connection.id as string }))?.lastHealth;
      // What the calls saw is the connection's health: throttled, then clear again after a success.
      expect(await stored()).toMatchObject({ status: "degraded", rateLimited: true, errorType: "rate-limit" });
      await h.sandbox(provider, "/_sandbox/faults", { method: "DELETE" });
      await h.service.pacer?.settled();
      await h.service.rateWindows.clear?.();
      expect((await proxy(step)).status).toBe(200);
      expect(await stored()).toMatchObject({ status: "ok", rateLimited: false, auth: true });
      await fault({ fault: "revoke-all" });
      const revoked = await proxy(step);
      expect(revoked.status, revoked.body).toBe(424);
      expect((revoked.json as ErrorBody).error).toMatchObject({ type: "auth", retryable: false, provider });
      // Recorded by the call itself: no probe ran.
      const record = await h.service.store.vault.findConnection({ userId: "proxy-down", provider, id: connection.id as string });
      expect(record?.lastHealth).toMatchObject({ status: "down", auth: false, errorType: "auth" });
    });

    const refused: { name: string; step: Json; field: string; status?: number }[] = [
      { name: "an absolute URL", step: { method: "GET", path: "https://evil.example/steal" }, field: "path" },
      { name: "a protocol-relative URL", step: { method: "GET", path: "//evil.example/steal" }, field: "path" },
      { name: "a path not starting with /", step: { method: "GET", path: "v1/account" }, field: "path" },
      { name: "a .. segment", step: { method: "GET", path: "/a/../../oauth/token" }, field: "path" },
      { name: "an encoded .. segment", step: { method: "GET", path: "/a/%2e%2E/b" }, field: "path" },
      { name: "a double-encoded .. segment", step: { method: "GET", path: "/a/%252e%252e/b" }, field: "path" },
      { name: "an encoded slash around ..", step: { method: "GET", path: "/a/..%2f..%2fb" }, field: "path" },
      { name: "a backslash", step: { method: "GET", path: "/a\\..\\b" }, field: "path" },
      { name: "a malformed escape", step: { method: "GET", path: "/a/%zz" }, field: "path" },
      { name: "an Authorization header", step: { method: "GET", path: "/x", headers: { Authorization: "Bearer stolen" } }, field: "headers.Authorization" },
      { name: "a Cookie header", step: { method: "GET", path: "/x", headers: { cookie: "session=1" } }, field: "headers.cookie" },
      { name: "a hop-by-hop header", step: { method: "GET", path: "/x", headers: { Connection: "close" } }, field: "headers.Connection" },
      { name: "a Transfer-Encoding header", step: { method: "POST", path: "/x", headers: { "Transfer-Encoding": "chunked" }, body: "x" }, field: "headers.Transfer-Encoding" },
      { name: "a Host header", step: { method: "GET", path: "/x", headers: { Host: "evil.example" } }, field: "headers.Host" },
      { name: "an X-Forwarded-For header", step: { method: "GET", path: "/x", headers: { "X-Forwarded-For": "1.2.3.4" } }, field: "headers.X-Forwarded-For" },
      { name: "a header value with a line break", step: { method: "GET", path: "/x", headers: { "x-a": "1\r\nAuthorization: Bearer x" } }, field: "headers.x-a" },
      { name: "an unknown method", step: { method: "TRACE", path: "/x" }, field: "method" },
      { name: "a body on a GET", step: { method: "GET", path: "/x", body: { a: 1 } }, field: "body" },
      { name: "an unknown field", step: { method: "GET", path: "/x", url: "https://evil.example" }, field: "url" },
      { name: "a body over the bound", step: { method: "POST", path: "/x", body: "x".repeat(1024 * 1024 + 1) }, field: "body", status: 413 },
      { name: "a .. segment with ;parameters", step: { method: "GET", path: "/a/..;/..;/b" }, field: "path" },
      { name: "a method-override header", step: { method: "GET", path: "/x", headers: { "X-HTTP-Method-Override": "DELETE" } }, field: "headers.X-HTTP-Method-Override" },
      { name: "a header value past Latin-1", step: { method: "GET", path: "/x", headers: { "x-note": "\u0100" } }, field: "headers.x-note" },
    ];
    it.each(refused)("refuses $name with a 400 naming the field, and nothing reaches the provider", async ({ step, field, status }) => {
      await connectWithKey("proxy-guard");
      await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
      const res = await h.request({ method: "POST", url: `${base}/proxy`, user: "proxy-guard", body: step });
      const error = await expectError(res, status ?? 400, "schema");
      expect((error as Json).field).toBe(field);
      expect(await h.sandboxRequests(provider)).toEqual([]);
    });
  });

  describe("actions", () => {
    const actions = CONNECTORS[provider].actions;
    const names = Object.keys(actions);
    const runAs = (forUser: string) => async (action: string, input: unknown): Promise<Json> => {
      const res = await h.request({ method: "POST", url: `${base}/actions/${action}`, user: forUser, body: input });
      if (res.statusCode !== 200) throw new Error(`${action} answered ${res.statusCode}: ${res.body}`);
      return res.json() as Json;
    };

    it("lists every action with the JSON Schema of its input and output, and each has a case here", async () => {
      expect(names.length).toBeGreaterThanOrEqual(2);
      expect(Object.keys(ACTION_CASES[provider]).sort()).toEqual([...names].sort());
      const res = await h.request({ method: "GET", url: "/api/integrations", user });
      const listed = ((res.json() as { providers: Json[] }).providers.find((p) => p.id === provider) as { actions: Json[] }).actions;
      expect(listed.map((a) => a.name)).toEqual(names);
      for (const action of listed) {
        expect(typeof action.description).toBe("string");
        expect(action.input).toMatchObject({ type: "object" });
        expect(action.output).toMatchObject({ type: "object" });
      }
    });

    it("answers an unknown action with a 404 naming it", async () => {
      const res = await h.request({ method: "POST", url: `${base}/actions/noSuchAction`, user, body: {} });
      const error = await expectError(res, 404, "schema");
      expect(error).toMatchObject({ code: "unknown_action" });
      expect(error.message).toContain(names[0] as string);
    });

    describe.each(names)("%s", (name) => {
      const forUser = `action-${name}`;
      const actionCase = () => {
        const found = ACTION_CASES[provider][name];
        if (!found) throw new Error(`no case for ${provider} ${name}`);
        return found;
      };

      it("runs over HTTP against the sandbox, and answers its output's shape", async () => {
        await connectWithKey(forUser, actionCase().desk ?? {});
        const run = runAs(forUser);
        const output = await run(name, await actionCase().input(run));
        expect(() => (actions as ActionMap)[name]?.output.parse(output)).not.toThrow();
        actionCase().check(output);
      });

      it("refuses a bad input with a 400 naming the field, and sends nothing", async () => {
        await connectWithKey(forUser, actionCase().desk ?? {});
        await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
        const res = await h.request({ method: "POST", url: `${base}/actions/${name}`, user: forUser, body: actionCase().refused.input });
        const error = await expectError(res, 400, "schema");
        expect((error as Json).field).toBe(actionCase().refused.field);
        expect(await h.sandboxRequests(provider)).toEqual([]);
      });

      it("classifies a provider's refusal as the taxonomy says", async () => {
        await connectWithKey(forUser, actionCase().desk ?? {});
        const run = runAs(forUser);
        const input = await actionCase().input(run);
        await fault({ fault: "bad-request", times: 1 });
        const res = await h.request({ method: "POST", url: `${base}/actions/${name}`, user: forUser, body: input });
        const error = await expectError(res, 422, "schema");
        expect(error.provider).toBe(provider);
        expect(error).toHaveProperty("providerStatus");
      });
    });
  });

  describe("OAuth state", () => {
    async function consentFor(forUser: string): Promise<URL> {
      return (await consentWithCookie(forUser)).callback;
    }
    /** The provider's redirect back, and the cookie the start answer set in the browser that began the flow. */
    async function consentWithCookie(forUser: string): Promise<{ callback: URL; cookie: string }> {
      const res = await h.request({ method: "POST", url: `${base}/oauth/start`, user: forUser });
      const start = res.json() as Json;
      const consent = await fetch(start.authUrl as string, { redirect: "manual" });
      return { callback: new URL(consent.headers.get("location") as string), cookie: cookieHeader(res.headers["set-cookie"]) };
    }
    const complete = (callback: URL, forUser: string, url = `${base}/oauth/complete`) =>
      h.request({ method: "POST", url, user: forUser, body: { code: callback.searchParams.get("code"), state: callback.searchParams.get("state") } });

    it("works once: a replayed state is refused", async () => {
      const { callback, cookie } = await consentWithCookie(user);
      const first = await h.request({ method: "GET", url: callback.pathname + callback.search, headers: { cookie } });
      expect(first.statusCode).toBe(200);
      const replay = await complete(callback, user);
      const error = await expectError(replay, 400, "schema");
      expect(error.code).toBe("state_reused");
      const page = await h.request({ method: "GET", url: callback.pathname + callback.search, headers: { cookie } });
      expect(page.body).toMatch(/already been used/);
      expect(page.statusCode).toBe(400);
      expect(page.headers["referrer-policy"]).toBe("no-referrer");
    });

    it("expires after expiresInSeconds", async () => {
      const callback = await consentFor(user);
      h.clock.advance(601_000);
      try {
        expect((await expectError(await complete(callback, user), 400, "schema")).code).toBe("state_expired");
      } finally {
        h.clock.advance(-601_000);
      }
    });

    it("is refused for another user", async () => {
      const callback = await consentFor(user);
      expect((await expectError(await complete(callback, OTHER_USER), 400, "schema")).code).toBe("state_wrong_user");
      // The rightful user can still finish: a refused attempt does not burn the state.
      const ok = await complete(callback, user);
      expect(ok.statusCode, ok.body).toBe(201);
    });

    it("is refused at another provider's callback", async () => {
      const callback = await consentFor(user);
      const other = PROVIDER_IDS.find((p) => p !== provider) as ProviderId;
      const res = await complete(callback, user, `/api/integrations/${other}/oauth/complete`);
      expect((await expectError(res, 400, "schema")).code).toBe("state_wrong_provider");
    });

    it("is refused when forged or altered", async () => {
      const callback = await consentFor(user);
      const state = callback.searchParams.get("state") as string;
      const altered = state.slice(0, -4) + (state.endsWith("AAAA") ? "BBBB" : "AAAA");
      const res = await h.request({ method: "POST", url: `${base}/oauth/complete`, user, body: { code: callback.searchParams.get("code"), state: altered } });
      expect((await expectError(res, 400, "schema")).code).toBe("state_invalid");
      const forged = await h.request({ method: "POST", url: `${base}/oauth/complete`, user, body: { code: "x", state: `${provider}_${"A".repeat(40)}` } });
      expect((await expectError(forged, 400, "schema")).code).toBe("state_invalid");
    });

    describe("bound to the browser that began it (RFC 9700 §4.5: code injection)", () => {
      const tokenPath = () => new URL(settings().endpoints.tokenUrl).pathname;
      const tokenCalls = async () => (await h.sandboxRequests(provider)).filter((r) => r.path === tokenPath());
      const connectionsOf = async (forUser: string) =>
        ((await h.request({ method: "GET", url: `${base}/connections`, user: forUser })).json() as { connections: Json[] }).connections;
      /** A flow begun by `forUser`'s browser: the start answer, and the cookie it set there. */
      async function begin(forUser: string): Promise<{ start: Json; cookie: string }> {
        const res = await h.request({ method: "POST", url: `${base}/oauth/start`, user: forUser });
        expect(res.statusCode).toBe(200);
        const cookie = cookieHeader(res.headers["set-cookie"]);
        secrets.add(cookie.slice(cookie.indexOf("=") + 1));
        return { start: res.json() as Json, cookie };
      }
      /** The provider's redirect back: consent at the sandbox, as the account that opens `authUrl`. */
      async function authorize(start: Json): Promise<URL> {
        const consent = await fetch(start.authUrl as string, { redirect: "manual" });
        const callback = new URL(consent.headers.get("location") as string);
        secrets.add(callback.searchParams.get("code") as string);
        return callback;
      }
      const callbackWith = (code: string, state: string, cookie?: string) =>
        h.request({ method: "GET", url: `${base}/oauth/callback?${new URLSearchParams({ code, state }).toString()}`, ...(cookie ? { headers: { cookie } } : {}) });

      it("refuses an attacker's own code with the victim's state, never redeems it, and leaves both flows usable", async () => {
        const victim = `victim-${provider}`;
        const attacker = `attacker-${provider}`;
        const victimFlow = await begin(victim);
        // The attacker authorizes with their own account and keeps the code instead of letting it reach the callback.
        const attackerFlow = await begin(attacker);
        const attackerCode = (await authorize(attackerFlow.start)).searchParams.get("code") as string;
        await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });

        // The attacker's browser has no cookie of the victim's: none at all, or its own.
        for (const cookie of [undefined, attackerFlow.cookie]) {
          const injected = await callbackWith(attackerCode, victimFlow.start.state as string, cookie);
          expect(injected.statusCode, injected.body).toBe(400);
          expect(injected.body).toMatch(/browser that began/);
          expect(injected.headers.location).toBeUndefined();
        }
        expect(await tokenCalls()).toEqual([]);
        expect(await connectionsOf(victim)).toEqual([]);

        // The victim's state is not burnt: the victim's browser still finishes the flow.
        const victimCallback = await authorize(victimFlow.start);
        const page = await h.request({ method: "GET", url: victimCallback.pathname + victimCallback.search, headers: { cookie: victimFlow.cookie } });
        expect(page.statusCode, page.body).toBe(200);
        expect(await connectionsOf(victim)).toHaveLength(1);
        // The attacker's code was never spent: it still completes the attacker's own flow, for the attacker.
        const own = await h.request({ method: "POST", url: `${base}/oauth/complete`, user: attacker, body: { code: attackerCode, state: attackerFlow.start.state } });
        expect(own.statusCode, own.body).toBe(201);
        expect((own.json() as Json).userId).toBe(attacker);
      });

      it("is not opened by the cookie of another flow, the same user's or another user's, even under this flow's cookie name", async () => {
        const first = await begin(user);
        const second = await begin(user);
        const other = await begin(OTHER_USER);
        const callback = await authorize(second.start);
        const code = callback.searchParams.get("code") as string;
        const state = callback.searchParams.get("state") as string;
        const nameOf = (cookie: string) => cookie.slice(0, cookie.indexOf("="));
        const valueOf = (cookie: string) => cookie.slice(cookie.indexOf("=") + 1);
        expect(nameOf(first.cookie)).not.toBe(nameOf(second.cookie));
        await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
        for (const cookie of [first.cookie, other.cookie, `${nameOf(second.cookie)}=${valueOf(first.cookie)}`, `${nameOf(second.cookie)}=${valueOf(other.cookie)}`]) {
          const res = await callbackWith(code, state, cookie);
          expect(res.statusCode, res.body).toBe(400);
          expect(res.body).toMatch(/browser that began/);
        }
        expect(await tokenCalls()).toEqual([]);
        // One browser, two flows at once: each completes with its own cookie among the browser's others.
        const jar = [first.cookie, second.cookie, other.cookie].join("; ");
        expect((await callbackWith(code, state, jar)).statusCode).toBe(200);
        const firstCallback = await authorize(first.start);
        const res = await h.request({ method: "GET", url: firstCallback.pathname + firstCallback.search, headers: { cookie: jar } });
        expect(res.statusCode, res.body).toBe(200);
      });
    });

    it("shows a clear page when the user declines, and for an iss that is not the provider (RFC 9207)", async () => {
      const startRes = await h.request({ method: "POST", url: `${base}/oauth/start`, user });
      const start = startRes.json() as Json;
      const deny = new URL(start.authUrl as string);
      deny.searchParams.set("_sandbox_decision", "deny");
      const consent = await fetch(deny, { redirect: "manual" });
      const callback = new URL(consent.headers.get("location") as string);
      expect(callback.searchParams.get("error")).toBe("access_denied");
      const page = await h.request({ method: "GET", url: callback.pathname + callback.search, headers: { cookie: cookieHeader(startRes.headers["set-cookie"]) } });
      expect(page.statusCode).toBe(400);
      expect(page.body).toMatch(/declined/);
      expect(page.headers["referrer-policy"]).toBe("no-referrer");
      expect(page.headers.location).toBeUndefined();

      const { callback: good, cookie } = await consentWithCookie(user);
      good.searchParams.set("iss", "https://attacker.example");
      const mixUp = await h.request({ method: "GET", url: good.pathname + good.search, headers: { cookie } });
      expect(mixUp.statusCode).toBe(424);
      expect(mixUp.body).toMatch(/issuer/);
      expect(mixUp.headers.location).toBeUndefined();
    });
  });

  it("counts what this suite did in /metrics: calls by outcome, retries, pacing waits, connections by health, API requests", async () => {
    const body = (await h.service.app.inject({ method: "GET", url: "/metrics" })).body;
    const calls = (labels: Record<string, string>) => metricSum(body, "autoflow_provider_attempts_total", { provider, ...labels });
    expect(calls({ outcome: "ok" })).toBeGreaterThan(0);
    // Every error type the faults above produced was counted as itself.
    for (const type of ["rate-limit", "upstream", "network", "schema", "auth"]) expect(calls({ outcome: type }), type).toBeGreaterThan(0);
    expect(metricSum(body, "autoflow_provider_retries_total", { provider, error_type: "upstream" })).toBeGreaterThan(0);
    expect(metricSum(body, "autoflow_provider_retry_wait_seconds_total", { provider })).toBeGreaterThan(0);
    expect(metricSum(body, "autoflow_provider_attempt_duration_seconds_count", { provider, outcome: "network" })).toBeGreaterThan(0);
    expect(metricSum(body, "autoflow_provider_pacing_wait_seconds_count", { provider, outcome: "granted" })).toBeGreaterThan(0);
    // The gauge agrees with the vault: every active connection of this provider, by its last health.
    const active = await h.service.store.operations.healthCounts();
    const mine = active.filter((c) => c.provider === provider);
    expect(mine.reduce((n, c) => n + c.count, 0)).toBeGreaterThan(0);
    for (const c of mine) expect(metricSum(body, "autoflow_connections", { provider, status: c.status }), c.status).toBe(c.count);
    expect(metricSum(body, "autoflow_http_requests_total", { route: "/api/integrations/:provider/test", method: "POST", status: "200" })).toBeGreaterThan(0);
  });

  it("never returns a raw token, code, verifier or key in any response", () => {
    expect(secrets.size).toBeGreaterThan(3);
    const leaks = [...secrets].filter((s) => s.length >= 8 && h.responses.some((body) => body.includes(s)));
    expect(leaks).toEqual([]);
  });
});

/**
 * Connectors whose access tokens expire (Slack with token rotation on, as
 * the sandboxes run here). Stripe Connect tokens do not expire: its
 * connections report tokenRefreshStatus "not_applicable".
 */
const NON_EXPIRING: readonly ProviderId[] = ["stripe"];
const EXPIRING = PROVIDER_IDS.filter((id) => !NON_EXPIRING.includes(id));
const EXPIRING_CASES = EXPIRING.flatMap((provider) => testDatabases().map((database) => ({ provider, database })));
/** Sandbox token lifetime in this block; the virtual clock moves past it. */
const TOKEN_TTL_SECONDS = 3600;

describe.each(NON_EXPIRING)("Tier 1 contract, tokens that do not expire: %s", (provider) => {
  it("reports tokenRefreshStatus not_applicable", async () => {
    const h = await startHarness();
    try {
      const credential = (await h.sandbox(provider, "/_sandbox/credentials", { body: {} })) as Json;
      const body = connectBodyOf(credential);
      expect((await h.request({ method: "POST", url: `/api/integrations/${provider}/connections`, user: "u", body })).statusCode).toBe(201);
      const health = (await h.request({ method: "GET", url: `/api/integrations/${provider}/health`, user: "u" })).json() as Json;
      expect(health.tokenRefreshStatus).toBe("not_applicable");
    } finally {
      await h.close();
    }
  });
});

describe.each(EXPIRING_CASES)("Tier 1 contract, token refresh: $provider on $database", ({ provider, database }) => {
  const base = `/api/integrations/${provider}`;
  let h: Harness;
  beforeAll(async () => {
    // No grace period for used refresh tokens, so keeping a stale one would show.
    const options = { tokenRotation: true, accessTokenTtlSeconds: TOKEN_TTL_SECONDS, refreshTokenGraceSeconds: 0 };
    h = await startHarness({ sandboxOptions: Object.fromEntries(PROVIDER_IDS.map((id) => [id, options])), database });
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(async () => {
    await h.sandbox(provider, "/_sandbox/faults", { method: "DELETE" });
  });

  const tokenPath = () => new URL(h.service.integrations[provider].settings.endpoints.tokenUrl).pathname;
  /** Token-endpoint calls since the log was last cleared, excluding the code exchange. */
  const refreshes = async () => (await h.sandboxRequests(provider)).filter((r) => r.method === "POST" && r.path === tokenPath()).length;

  async function connect(user: string): Promise<Json> {
    const start = (await h.request({ method: "POST", url: `${base}/oauth/start`, user })).json() as Json;
    const consent = await fetch(start.authUrl as string, { redirect: "manual" });
    const callback = new URL(consent.headers.get("location") as string);
    const res = await h.request({ method: "POST", url: `${base}/oauth/complete`, user, body: { code: callback.searchParams.get("code"), state: callback.searchParams.get("state") } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Json;
  }
  const storedRefreshToken = async (user: string, id: string) => {
    const record = await h.service.store.vault.findConnection({ userId: user, provider, id });
    return record ? (await h.service.store.vault.readSecrets(record)).refreshToken : undefined;
  };
  /** Moves our clock past the token's expiry, for the duration of `fn`. */
  async function afterExpiry<T>(fn: () => Promise<T>): Promise<T> {
    h.clock.advance((TOKEN_TTL_SECONDS + 5) * 1000);
    try {
      return await fn();
    } finally {
      h.clock.advance(-(TOKEN_TTL_SECONDS + 5) * 1000);
      // What the pacer learnt in the hour ahead (a window's end, a hold) would lie an hour in the future now.
      await h.service.pacer?.settled();
      await h.service.rateWindows.clear?.();
    }
  }

  it("stores the expiry and reports tokenRefreshStatus healthy", async () => {
    await connect("fresh");
    const health = (await h.request({ method: "GET", url: `${base}/health`, user: "fresh" })).json() as Json;
    expect(health).toMatchObject({ status: "ok", tokenRefreshStatus: "healthy" });
  });

  it("refreshes an expired token exactly once for 50 concurrent calls, and keeps a refresh token that still works", async () => {
    const connection = await connect("burst");
    expect(await storedRefreshToken("burst", connection.id as string)).toBeDefined();
    await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
    const results = await afterExpiry(() => Promise.all(Array.from({ length: 50 }, () => h.request({ method: "POST", url: `${base}/test`, user: "burst" }))));
    expect(results.map((r) => r.statusCode)).toEqual(Array(50).fill(200));
    expect(await refreshes()).toBe(1);
    // The stored refresh token is the one the provider honours now: the newest where it rotates
    // (an old one is refused), the same one where it does not. A second expiry proves it.
    await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
    h.clock.advance((TOKEN_TTL_SECONDS + 5) * 1000);
    try {
      const again = await afterExpiry(() => h.request({ method: "POST", url: `${base}/test`, user: "burst" }));
      expect(again.statusCode, again.body).toBe(200);
    } finally {
      h.clock.advance(-(TOKEN_TTL_SECONDS + 5) * 1000);
      await h.service.pacer?.settled();
      await h.service.rateWindows.clear?.();
    }
    expect(await refreshes()).toBe(1);
  });

  it("turns health down with tokenRefreshStatus failed when the refresh token is revoked, until the user reconnects", async () => {
    await connect("revoked");
    await h.sandbox(provider, "/_sandbox/faults", { body: { fault: "revoke-all" } });
    const health = await afterExpiry(async () => (await h.request({ method: "GET", url: `${base}/health`, user: "revoked" })).json() as Json);
    expect(health).toMatchObject({ status: "down", tokenRefreshStatus: "failed", details: { auth: false, errorType: "auth" } });
    await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
    const again = (await h.request({ method: "GET", url: `${base}/health`, user: "revoked" })).json() as Json;
    expect(again).toMatchObject({ status: "down", tokenRefreshStatus: "failed" });
    expect(await h.sandboxRequests(provider)).toEqual([]);
    await connect("revoked");
    const reconnected = (await h.request({ method: "GET", url: `${base}/health`, user: "revoked" })).json() as Json;
    expect(reconnected.status, JSON.stringify(reconnected)).toBe("ok");
  });

  it("turns health degraded on a transient token-endpoint 503, and ok once the provider recovers", async () => {
    await connect("transient");
    await h.sandbox(provider, "/_sandbox/faults", { body: { fault: "server-error", path: tokenPath() } });
    await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
    const degraded = await afterExpiry(async () => (await h.request({ method: "GET", url: `${base}/health`, user: "transient" })).json() as Json);
    expect(degraded).toMatchObject({ status: "degraded", tokenRefreshStatus: "healthy", details: { errorType: "upstream" } });
    expect(await refreshes()).toBe(CONNECTORS[provider].definition.retryPolicy.attempts);
    await h.sandbox(provider, "/_sandbox/faults", { method: "DELETE" });
    const ok = await afterExpiry(async () => (await h.request({ method: "GET", url: `${base}/health`, user: "transient" })).json() as Json);
    expect(ok).toMatchObject({ status: "ok", tokenRefreshStatus: "healthy" });
  });

  it("counts the refreshes above in /metrics by outcome", async () => {
    const body = (await h.service.app.inject({ method: "GET", url: "/metrics" })).body;
    const refreshed = (outcome: string, errorType?: string) =>
      metricSum(body, "autoflow_token_refreshes_total", { provider, outcome, ...(errorType ? { error_type: errorType } : {}) });
    expect(refreshed("refreshed")).toBeGreaterThanOrEqual(3);
    expect(refreshed("rejected", "auth")).toBeGreaterThan(0);
    // The 503s were retried inside one refresh: counted once, as the failure it ended in.
    expect(refreshed("failed", "upstream")).toBe(1);
  });
});

describe.each(testDatabases())("Tier 1 contract, a proxied call with a token the provider no longer takes: %s", (database) => {
  it("refreshes once, repeats the call once, and it succeeds, for every connector whose tokens expire", async () => {
    const options = { tokenRotation: true, accessTokenTtlSeconds: 2, refreshTokenGraceSeconds: 0 };
    const h = await startHarness({ sandboxOptions: Object.fromEntries(PROVIDER_IDS.map((id) => [id, options])), database });
    const user = "rejected-token";
    try {
      // Connected with our clock an hour ahead: back in step, each stored token has an hour left by our
      // reckoning, while the sandbox stops taking it after its two seconds. The provider's 401 is the news.
      h.clock.advance(3_600_000);
      for (const provider of EXPIRING) {
        const base = `/api/integrations/${provider}`;
        const start = (await h.request({ method: "POST", url: `${base}/oauth/start`, user })).json() as Json;
        const consent = await fetch(start.authUrl as string, { redirect: "manual" });
        const callback = new URL(consent.headers.get("location") as string);
        const res = await h.request({ method: "POST", url: `${base}/oauth/complete`, user, body: { code: callback.searchParams.get("code"), state: callback.searchParams.get("state") } });
        expect(res.statusCode, res.body).toBe(201);
      }
      h.clock.advance(-3_600_000);
      await h.service.pacer?.settled();
      await h.service.rateWindows.clear?.();
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      for (const provider of EXPIRING) {
        const { definition } = CONNECTORS[provider];
        const settings = h.service.integrations[provider].settings;
        const [record] = await h.service.store.vault.listConnections({ userId: user, provider });
        if (!record) throw new Error(`no ${provider} connection`);
        expect(Date.parse(record.accessTokenExpiresAt as string) - h.clock.now(), provider).toBeGreaterThan(3_000_000);
        const { accessToken } = await h.service.store.vault.readSecrets(record);
        const call = definition.whoAmI.request({ accessToken, authMethod: record.authMethod, metadata: record.metadata }, settings);
        await h.sandbox(provider, "/_sandbox/requests", { method: "DELETE" });
        const res = await h.request({
          method: "POST",
          url: `/api/integrations/${provider}/proxy`,
          user,
          body: { method: call.method, path: call.path, ...(call.json !== undefined ? { body: call.json } : {}), ...(call.headers ? { headers: call.headers } : {}) },
        });
        expect(res.statusCode, `${provider}: ${res.body}`).toBe(200);
        const tokenPath = new URL(settings.endpoints.tokenUrl).pathname;
        const seen = await h.sandboxRequests(provider);
        expect(seen.filter((r) => r.method === "POST" && r.path === tokenPath), provider).toHaveLength(1);
        // The rejected call, the one refresh, then the call repeated with the new token.
        const callPath = seen[0]?.path as string;
        expect(seen.map((r) => r.path), provider).toEqual([callPath, tokenPath, callPath]);
        expect(seen.at(-1)?.status, provider).toBe(200);
        expect(seen[0]?.status === 401 || provider === "slack", `${provider} refused with ${String(seen[0]?.status)}`).toBe(true);
        expect((await h.service.store.vault.readSecrets((await h.service.store.vault.listConnections({ userId: user, provider }))[0] as never)).accessToken, provider).not.toBe(accessToken);
      }
    } finally {
      await h.close();
    }
  }, 90_000);
});
