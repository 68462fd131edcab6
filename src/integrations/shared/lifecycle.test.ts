/**
 * Lifecycle rules that no sandbox can provoke on demand, proven with a
 * made-up connector whose provider is a stub fetch: a grant that cannot be
 * stored is revoked, base URLs are guarded and bind the credential, a
 * pasted token that expires is stored with its expiry, and the SDK's side of
 * the browser binding of OAuth flows.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { openStore, type OpenedStore } from "../../store/index.js";
import type { ConnectorDefinition, ConnectorSettings } from "./connector.js";
import { IntegrationError } from "./errors.js";
import { createConnectorLifecycle } from "./lifecycle.js";
import { createBrowserBinding, sealState } from "./oauth.js";
import { RefreshLockTimeoutError, type RefreshLockOptions, type Vault } from "./vault.js";
import type { LifecycleDeps } from "./session.js";

type Call = { method: string; url: string };

const settings: ConnectorSettings = {
  mode: "live",
  options: {},
  clientId: "client",
  clientSecret: "secret",
  endpoints: { authorizeUrl: "https://auth.example/authorize", tokenUrl: "https://auth.example/token", revokeUrl: "https://auth.example/revoke", apiUrl: "https://api.example" },
  redirectUri: "http://localhost:3000/api/integrations/acme/oauth/callback",
  scopes: ["read"],
};

/** A provider whose answers a test sets, recording every call. */
function stubProvider(answer: (call: Call) => { status: number; body: unknown }) {
  const calls: Call[] = [];
  const fetchStub = (async (input: string | URL | Request, init?: RequestInit) => {
    const call = { method: init?.method ?? "GET", url: String(input) };
    calls.push(call);
    const { status, body } = answer(call);
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
  return { calls, fetchStub };
}

const definition = (overrides: Partial<ConnectorDefinition> = {}): ConnectorDefinition => ({
  id: "acme",
  displayName: "Acme",
  authMethods: ["oauth2", "api_key"],
  oauthAuthMethod: "oauth2",
  liveEndpoints: settings.endpoints,
  pkce: false,
  defaultScopes: ["read"],
  metadataSchema: z.object({ scopes: z.array(z.string()), accountId: z.string(), baseUrl: z.string().optional() }),
  requiredMetadata: ["accountId"],
  acceptsBaseUrl: true,
  retryPolicy: { attempts: 1, baseDelayMs: 1, capDelayMs: 1, budgetMs: 10, maxRetryAfterMs: 1, rationale: "" },
  classify: (response) => (response.status >= 400 ? { type: response.status === 401 ? "auth" : "upstream", message: `HTTP ${response.status}` } : null),
  authorizationParams: () => ({}),
  async exchangeCode() {
    return { accessToken: "acme_access_token_1", refreshToken: "acme_refresh_token_1", expiresInSeconds: 3600, scopes: ["read"], metadata: {} };
  },
  async revoke(ctx, input) {
    await ctx.http.send({ operation: "revoke", method: "POST", url: settings.endpoints.revokeUrl as string, form: { token: input.refreshToken ?? input.accessToken } });
    return "revoked";
  },
  parseApiKey: (input) => ({ token: input.apiKey as string, authMethod: "api_key" }),
  whoAmI: {
    request: () => ({ operation: "me", method: "GET", path: "/me" }),
    process(response) {
      const body = response.json as { id?: string; expires_in?: number };
      return { metadata: body.id ? { accountId: body.id } : {}, summary: {}, ...(body.expires_in ? { expiresInSeconds: body.expires_in } : {}) };
    },
  },
  ...overrides,
});

let store: OpenedStore;
beforeEach(async () => {
  store = await openStore({ sqlitePath: ":memory:", keys: [randomBytes(32)] });
});
afterEach(async () => {
  await store.close();
});

function lifecycleWith(def: ConnectorDefinition, fetchStub: typeof fetch, options: { resolve?: () => Promise<string[]>; vault?: Vault; logger?: LifecycleDeps["logger"] } = {}) {
  const resolve = options.resolve ?? (async () => ["93.184.215.14"]);
  return createConnectorLifecycle(def, {
    vault: options.vault ?? store.vault,
    sealer: store.keyring,
    settings,
    knownProviders: ["acme"],
    timeoutMs: 1000,
    fetch: fetchStub,
    guardedFetch: fetchStub,
    baseUrlPolicy: { allowlist: [], resolve },
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

describe("answers read through the connector's public schema", () => {
  it("refuses to store metadata its schema refuses, naming the field", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: 42 } }));
    const lifecycle = lifecycleWith(definition(), provider.fetchStub);
    const error = await lifecycle.connectApiKey({ userId: "alice", apiKey: "k" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "upstream", code: "unparsable_response", provider: "acme" });
    expect((error as Error).message).toMatch(/accountId: .*string/);
    expect(await lifecycle.listConnections("alice")).toEqual([]);
  });

  it("drops what the schema does not describe, and answers a stored record it refuses as stored (logged), never failing the list or a disconnect", async () => {
    const errors: unknown[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (object: unknown) => void errors.push(object) };
    const provider = stubProvider(() => ({ status: 200, body: {} }));
    const lifecycle = lifecycleWith(definition(), provider.fetchStub, { logger });
    const base = { userId: "alice", provider: "acme", authMethod: "api_key", accessToken: "acme_key_1234567890", tokenMasked: "acme****7890", scopes: [], tokenRefreshStatus: "not_applicable" as const };
    const good = await store.vault.createConnection({ ...base, metadata: { accountId: "acct-1", internalNote: "not public" }, createdAt: new Date(Date.now() - 1000).toISOString() });
    const old = await store.vault.createConnection({ ...base, metadata: {}, createdAt: new Date().toISOString() });
    const listed = (await lifecycle.listConnections("alice")) as Array<Record<string, unknown>>;
    expect(listed.map((c) => c.id)).toEqual([old.id, good.id]);
    expect(listed[1]).not.toHaveProperty("internalNote");
    expect(listed[0]).toMatchObject({ id: old.id, authMethod: "api_key" });
    expect(errors).toEqual([expect.objectContaining({ connectionId: old.id, problem: expect.stringMatching(/accountId/) as unknown })]);
    const report = await lifecycle.disconnectWithReport("alice", old.id);
    expect(report?.connection).toMatchObject({ id: old.id, revokedAt: expect.any(String) as unknown });
  });
});

describe("a grant that cannot be stored", () => {
  it("is revoked at the provider, and the error says so", async () => {
    // The who-am-I answers without the account id the connection needs.
    const provider = stubProvider((call) => (call.url.endsWith("/me") ? { status: 200, body: {} } : { status: 200, body: {} }));
    const lifecycle = lifecycleWith(definition(), provider.fetchStub);
    const { state } = sealState(store.keyring, { provider: "acme", userId: "alice", nowMs: Date.now() });
    const error = await lifecycle.completeOAuth({ code: "code-1", state }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrationError);
    expect((error as IntegrationError).message).toMatch(/not stored so the grant was revoked again/);
    expect(provider.calls.map((c) => c.url)).toContain("https://auth.example/revoke");
    expect(await lifecycle.listConnections("alice")).toEqual([]);
  });

  it("is stored, not lost, when only the who-am-I failed for a moment and the token told enough", async () => {
    const provider = stubProvider((call) => (call.url.endsWith("/me") ? { status: 503, body: {} } : { status: 200, body: {} }));
    const def = definition({
      async exchangeCode() {
        return { accessToken: "acme_access_token_2", scopes: ["read"], metadata: { accountId: "acct-from-token" } };
      },
    });
    const lifecycle = lifecycleWith(def, provider.fetchStub);
    const { state } = sealState(store.keyring, { provider: "acme", userId: "alice", nowMs: Date.now() });
    const connection = (await lifecycle.completeOAuth({ code: "code-2", state })) as Record<string, unknown>;
    expect(connection.accountId).toBe("acct-from-token");
    expect(provider.calls.some((c) => c.url.endsWith("/revoke"))).toBe(false);
  });
});

describe("user-supplied base URLs", () => {
  it("are refused for a connector that does not take one", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "a" } }));
    const lifecycle = lifecycleWith(definition({ acceptsBaseUrl: false }), provider.fetchStub);
    await expect(lifecycle.connectApiKey({ userId: "alice", apiKey: "k", baseUrl: "https://acme.example" })).rejects.toMatchObject({
      type: "schema",
      field: "baseUrl",
    });
    expect(provider.calls).toEqual([]);
  });

  it("are checked by the guard before any request", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "a" } }));
    const lifecycle = lifecycleWith(definition(), provider.fetchStub, { resolve: async () => ["10.0.0.7"] });
    const error = await lifecycle.connectApiKey({ userId: "alice", apiKey: "k", baseUrl: "https://acme.corp.example" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "schema", field: "baseUrl" });
    expect((error as Error).message).toMatch(/10\.0\.0\.7.*not public/);
    expect(provider.calls).toEqual([]);
  });

  it("bind the credential: it is sent to that instance and refused anywhere else", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-1" } }));
    let target = "";
    const def = definition({
      whoAmI: {
        request: () => (target ? { operation: "me", method: "GET", url: target } : { operation: "me", method: "GET", path: "/me" }),
        process: (response) => ({ metadata: { accountId: (response.json as { id: string }).id }, summary: {} }),
      },
    });
    const lifecycle = lifecycleWith(def, provider.fetchStub);
    await lifecycle.connectApiKey({ userId: "alice", apiKey: "k", baseUrl: "https://acme.example/instance/" });
    expect(provider.calls.map((c) => c.url)).toEqual(["https://acme.example/instance/me"]);
    // A connector that would send this credential to the configured API instead is stopped.
    target = "https://api.example/me";
    await expect(lifecycle.testConnection("alice")).rejects.toMatchObject({ type: "schema", code: "origin_not_allowed" });
    expect(provider.calls).toHaveLength(1);
  });
});

describe("a pasted token that expires", () => {
  it("is stored with its expiry and no refresh to report", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-9", expires_in: 1800 } }));
    const lifecycle = lifecycleWith(definition(), provider.fetchStub);
    const connection = (await lifecycle.connectApiKey({ userId: "alice", apiKey: "pasted-token" })) as Record<string, unknown>;
    const record = await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id as string });
    expect(record?.accessTokenExpiresAt).toBeDefined();
    expect(Date.parse(record?.accessTokenExpiresAt as string) - Date.now()).toBeGreaterThan(1700_000);
    expect(record?.tokenRefreshStatus).toBe("not_applicable");
  });
});

describe("a refresh that fails during test or health", () => {
  /** The vault, counting the health rows written. */
  function countingVault() {
    const writes: { id: string; errorType?: string }[] = [];
    const vault = new Proxy(store.vault, {
      get(target, key, receiver) {
        if (key === "recordHealth") {
          return async (id: string, health: { errorType?: string }) => {
            writes.push({ id, ...(health.errorType ? { errorType: health.errorType } : {}) });
            return target.recordHealth(id, health as Parameters<typeof target.recordHealth>[1]);
          };
        }
        const value: unknown = Reflect.get(target, key, receiver);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    return { vault, writes };
  }

  // Once connected, the who-am-I refuses the access token (401), so the keeper refreshes it, and the refresh fails.
  it.each([
    ["refused for good (auth)", new IntegrationError({ type: "auth", status: 400, code: "invalid_grant", message: "invalid_grant" }), "down"],
    ["failing for a moment (upstream)", new IntegrationError({ type: "upstream", status: 503, message: "try later" }), "degraded"],
  ])("is recorded once, not twice, when %s", async (_name, refusal, status) => {
    let refused = false;
    const provider = stubProvider((call) => (call.url.endsWith("/me") ? (refused ? { status: 401, body: {} } : { status: 200, body: { id: "acct" } }) : { status: 200, body: {} }));
    const { vault, writes } = countingVault();
    const def = definition({
      async exchangeCode() {
        return { accessToken: "acme_access_token_3", refreshToken: "acme_refresh_token_3", expiresInSeconds: 3600, scopes: ["read"], metadata: { accountId: "acct-3" } };
      },
      async refreshToken() {
        throw refusal;
      },
    });
    const lifecycle = lifecycleWith(def, provider.fetchStub, { vault });
    const { state } = sealState(store.keyring, { provider: "acme", userId: "alice", nowMs: Date.now() });
    await lifecycle.completeOAuth({ code: "code-3", state });
    refused = true;
    writes.length = 0;

    await expect(lifecycle.testConnection("alice")).rejects.toMatchObject({ type: refusal.type });
    expect(writes).toHaveLength(1);

    // Health then: a transient failure is met again through a new refresh, a refusal for good is
    // reported without asking the provider; either way one row is written.
    writes.length = 0;
    const health = (await lifecycle.health("alice")) as { status: string; details: { errorType?: string } };
    expect(health).toMatchObject({ status, details: { errorType: refusal.type } });
    expect(writes).toHaveLength(1);
  });

  it("is recorded once when health meets it first", async () => {
    let refused = false;
    const provider = stubProvider((call) => (call.url.endsWith("/me") ? (refused ? { status: 401, body: {} } : { status: 200, body: { id: "acct" } }) : { status: 200, body: {} }));
    const { vault, writes } = countingVault();
    const def = definition({
      async exchangeCode() {
        return { accessToken: "acme_access_token_4", refreshToken: "acme_refresh_token_4", expiresInSeconds: 3600, scopes: ["read"], metadata: { accountId: "acct-4" } };
      },
      async refreshToken() {
        throw new IntegrationError({ type: "auth", status: 400, code: "invalid_grant", message: "invalid_grant" });
      },
    });
    const lifecycle = lifecycleWith(def, provider.fetchStub, { vault });
    const { state } = sealState(store.keyring, { provider: "acme", userId: "alice", nowMs: Date.now() });
    await lifecycle.completeOAuth({ code: "code-4", state });
    refused = true;
    writes.length = 0;
    const health = (await lifecycle.health("alice")) as { status: string; tokenRefreshStatus?: string; details: { errorType?: string } };
    expect(health).toMatchObject({ status: "down", tokenRefreshStatus: "failed", details: { errorType: "auth" } });
    expect(writes).toHaveLength(1);
  });
});

describe("the health sweep's check of a scanned connection", () => {
  it("probes once and records what health records, with the record it was given: no other read of the connection, no envelope", async () => {
    let status = 200;
    const provider = stubProvider((call) => (call.url.endsWith("/me") ? { status, body: { id: "acct-7" } } : { status: 200, body: {} }));
    const reads: string[] = [];
    const vault = new Proxy(store.vault, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          reads.push(String(key));
          if (key === "readSecrets") secretsRead.push(args[1]);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const secretsRead: unknown[] = [];
    const lifecycle = lifecycleWith(definition(), provider.fetchStub, { vault });
    const connection = await lifecycle.connectApiKey({ userId: "alice", apiKey: "acme_key_for_the_sweep" });
    const [record] = await store.vault.scanConnections({ limit: 10 });
    reads.length = 0;
    provider.calls.length = 0;
    const ok = await lifecycle.checkHealth(record as NonNullable<typeof record>);
    expect(ok).toMatchObject({ status: "ok", auth: true, apiReachable: true });
    expect(reads).toEqual(["readSecrets", "recordHealth"]);
    // Read as a scan's: the sweep's walk over every connection pushes no token in use out of memory.
    expect(secretsRead).toEqual([{ asRead: true, scan: true }]);
    expect(provider.calls.map((c) => c.url)).toEqual(["https://api.example/me"]);
    expect((await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id }))?.lastHealth).toEqual(ok);
    // What health() then answers (and records) is the same outcome.
    status = 503;
    const degraded = await lifecycle.checkHealth(record as NonNullable<typeof record>);
    expect(degraded).toMatchObject({ status: "degraded", errorType: "upstream" });
    expect((await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id }))?.lastHealth).toEqual(degraded);
    expect(await lifecycle.health("alice")).toMatchObject({ status: "degraded", details: { errorType: "upstream" } });
  });

  it("answers a disconnected record down without probing or recording, and refuses another connector's record", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-8" } }));
    const lifecycle = lifecycleWith(definition(), provider.fetchStub);
    const connection = await lifecycle.connectApiKey({ userId: "alice", apiKey: "acme_key_disconnected" });
    const record = await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id });
    await lifecycle.disconnectWithReport("alice", connection.id);
    const revoked = await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id });
    provider.calls.length = 0;
    expect(await lifecycle.checkHealth(revoked as NonNullable<typeof revoked>)).toMatchObject({ status: "down", auth: false, errorType: "auth", message: expect.stringMatching(/disconnected/) as unknown });
    expect(provider.calls).toEqual([]);
    expect((await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id }))?.lastHealth).toEqual(revoked?.lastHealth);
    await expect(lifecycle.checkHealth({ ...(record as NonNullable<typeof record>), provider: "other" })).rejects.toThrow(/other connection checked by the acme connector/);
  });
});

describe("an OAuth flow bound to a browser, through the SDK", () => {
  /** A connector whose code exchanges are counted: a refused completion must not spend the code. */
  function counting() {
    const exchanged: string[] = [];
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-b" } }));
    const def = definition({
      async exchangeCode(_ctx, input) {
        exchanged.push(input.code);
        return { accessToken: `acme_access_${input.code}`, scopes: ["read"], metadata: {} };
      },
    });
    return { exchanged, lifecycle: lifecycleWith(def, provider.fetchStub) };
  }
  const callbackQuery = (code: string, state: string) => new URLSearchParams({ code, state });

  it("completes at the callback only with the binding it was begun with, and spends no code otherwise", async () => {
    const { exchanged, lifecycle } = counting();
    const binding = createBrowserBinding();
    const { state, authUrl } = lifecycle.beginOAuth("alice", { browserBinding: binding });
    expect(authUrl).not.toContain(binding);
    for (const options of [undefined, {}, { browserBinding: createBrowserBinding() }, { browserBinding: "not a binding" }]) {
      await expect(lifecycle.completeOAuthCallback(callbackQuery("attacker-code", state), options)).rejects.toMatchObject({ code: "state_wrong_browser" });
    }
    await expect(lifecycle.completeOAuth({ code: "attacker-code", state })).rejects.toMatchObject({ code: "state_wrong_browser" });
    expect(exchanged).toEqual([]);
    const connection = (await lifecycle.completeOAuthCallback(callbackQuery("code-1", state), { browserBinding: binding })) as Record<string, unknown>;
    expect(connection.userId).toBe("alice");
    expect(exchanged).toEqual(["code-1"]);
  });

  it("completes with the user's identity or the binding, without the other", async () => {
    const { lifecycle } = counting();
    const binding = createBrowserBinding();
    const byUser = lifecycle.beginOAuth("alice", { browserBinding: binding });
    expect(((await lifecycle.completeOAuth({ code: "code-2", state: byUser.state, userId: "alice" })) as Record<string, unknown>).userId).toBe("alice");
    const byBinding = lifecycle.beginOAuth("alice", { browserBinding: binding });
    expect(((await lifecycle.completeOAuth({ code: "code-3", state: byBinding.state, browserBinding: binding })) as Record<string, unknown>).userId).toBe("alice");
  });

  it("keeps the contract's beginOAuth(userId) and completeOAuth({code, state}), which the bearer-less callback cannot complete", async () => {
    const { exchanged, lifecycle } = counting();
    const unbound = lifecycle.beginOAuth("alice");
    await expect(lifecycle.completeOAuthCallback(callbackQuery("code-4", unbound.state))).rejects.toMatchObject({ code: "state_wrong_browser" });
    expect(exchanged).toEqual([]);
    expect(((await lifecycle.completeOAuth({ code: "code-4", state: unbound.state })) as Record<string, unknown>).userId).toBe("alice");
  });

  it("refuses a binding too weak to be one", () => {
    const { lifecycle } = counting();
    expect(() => lifecycle.beginOAuth("alice", { browserBinding: "guessable" })).toThrow(expect.objectContaining({ type: "schema", field: "browserBinding" }));
  });
});

describe("a repeated DELETE", () => {
  const revokeCalls = (calls: Call[]) => calls.filter((c) => c.url === "https://auth.example/revoke").length;

  it("tries an owed revocation again: still pending while the provider is unreachable, revoked once it answers", async () => {
    let reachable = false;
    const provider = stubProvider((call) =>
      call.url.endsWith("/revoke") ? (reachable ? { status: 200, body: {} } : { status: 503, body: {} }) : { status: 200, body: { id: "acct-1" } },
    );
    const lifecycle = lifecycleWith(definition(), provider.fetchStub);
    const { id } = await lifecycle.connectApiKey({ userId: "alice", apiKey: "acme_key_pending" });

    expect(await lifecycle.disconnectWithReport("alice", id)).toMatchObject({ revocation: "pending" });
    expect(revokeCalls(provider.calls)).toBe(1);
    const again = await lifecycle.disconnectWithReport("alice", id);
    expect(again).toMatchObject({ revocation: "pending", note: expect.stringMatching(/already disconnected.*owed/) as unknown });
    expect(revokeCalls(provider.calls)).toBe(2);

    reachable = true;
    expect(await lifecycle.disconnectWithReport("alice", id)).toMatchObject({ revocation: "revoked" });
    expect(revokeCalls(provider.calls)).toBe(3);
    // Settled: the credential is erased and nothing more is sent.
    expect(await lifecycle.disconnectWithReport("alice", id)).toMatchObject({ revocation: "revoked" });
    expect(revokeCalls(provider.calls)).toBe(3);
    const record = await store.vault.findConnection({ userId: "alice", provider: "acme", id });
    await expect(store.vault.readSecrets(record as NonNullable<typeof record>)).rejects.toThrow(/holds no token/);
  });

  it("answers not_supported again for a credential the provider cannot revoke", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-2" } }));
    const lifecycle = lifecycleWith(definition({ revoke: async () => "not_supported" }), provider.fetchStub);
    const { id } = await lifecycle.connectApiKey({ userId: "alice", apiKey: "acme_key_unrevokable" });
    expect(await lifecycle.disconnectWithReport("alice", id)).toMatchObject({ revocation: "not_supported" });
    expect(await lifecycle.disconnectWithReport("alice", id)).toMatchObject({ revocation: "not_supported", note: "already disconnected" });
  });

  it("answers already_invalid again when the provider had already refused the credential", async () => {
    const provider = stubProvider((call) => (call.url.endsWith("/revoke") ? { status: 401, body: {} } : { status: 200, body: { id: "acct-3" } }));
    const lifecycle = lifecycleWith(definition(), provider.fetchStub);
    const { id } = await lifecycle.connectApiKey({ userId: "alice", apiKey: "acme_key_dead" });
    expect(await lifecycle.disconnectWithReport("alice", id)).toMatchObject({ revocation: "already_invalid" });
    expect(await lifecycle.disconnectWithReport("alice", id)).toMatchObject({ revocation: "already_invalid" });
    expect(revokeCalls(provider.calls)).toBe(1);
  });
});

/** The vault, with the refresh lock held by another instance for longer than this one waits. */
function busyVault(): Vault {
  return Object.create(store.vault, {
    withRefreshLock: {
      value: async (id: string, options: RefreshLockOptions) => {
        throw new RefreshLockTimeoutError(id, options.waitMs);
      },
    },
  }) as Vault;
}

describe("a refresh lock that stays taken", () => {
  it("is a retryable error naming the wait, never an unexpected one", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-4" } }));
    const busy = busyVault();
    const refreshable = definition({ refreshToken: async () => ({ accessToken: "acme_access_token_r", expiresInSeconds: 3600, scopes: ["read"], metadata: {} }) });
    const lifecycle = createConnectorLifecycle(refreshable, {
      vault: busy,
      sealer: store.keyring,
      settings,
      knownProviders: ["acme"],
      timeoutMs: 1000,
      fetch: provider.fetchStub,
    });
    const { state } = sealState(store.keyring, { provider: "acme", userId: "alice", nowMs: Date.now() });
    const connection = await lifecycle.completeOAuth({ code: "code-lock", state });
    const record = await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id });
    const refreshing = await lifecycle.refreshConnection(record as NonNullable<typeof record>).catch((e: unknown) => e);
    expect(refreshing).toBeInstanceOf(IntegrationError);
    expect(refreshing).toMatchObject({ type: "upstream", code: "refresh_lock_timeout", retryable: true, retryAfterSeconds: 1 });
    const disconnecting = await lifecycle.disconnectWithReport("alice", connection.id).catch((e: unknown) => e);
    expect(disconnecting).toMatchObject({ type: "upstream", code: "refresh_lock_timeout", retryable: true });
  });
});

describe("a refresh lock wait that runs out during test or health", () => {
  it("is answered, retryable, and not recorded as the connection's health: it is our state, not the connection's", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-5" } }));
    const busy = busyVault();
    let offsetMs = 0;
    const clock = { now: () => Date.now() + offsetMs, sleep: async (ms: number) => void (offsetMs += ms) };
    const def = definition({
      async exchangeCode() {
        return { accessToken: "acme_access_token_5", refreshToken: "acme_refresh_token_5", expiresInSeconds: 3600, scopes: ["read"], metadata: { accountId: "acct-5" } };
      },
      refreshToken: async () => ({ accessToken: "acme_access_token_6", expiresInSeconds: 3600, scopes: ["read"], metadata: {} }),
    });
    const lifecycle = createConnectorLifecycle(def, { vault: busy, sealer: store.keyring, settings, knownProviders: ["acme"], timeoutMs: 1000, fetch: provider.fetchStub, clock });
    const { state } = sealState(store.keyring, { provider: "acme", userId: "alice", nowMs: clock.now() });
    const connection = await lifecycle.completeOAuth({ code: "code-busy", state });
    await lifecycle.testConnection("alice");
    const before = (await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id }))?.lastHealth;
    expect(before).toMatchObject({ status: "ok" });
    // Past expiry: the next use must refresh, and the lock stays taken.
    offsetMs += 3_600_000;
    await expect(lifecycle.testConnection("alice")).rejects.toMatchObject({ code: "refresh_lock_timeout", retryable: true });
    await expect(lifecycle.health("alice")).rejects.toMatchObject({ code: "refresh_lock_timeout", retryable: true });
    const after = (await store.vault.findConnection({ userId: "alice", provider: "acme", id: connection.id }))?.lastHealth;
    expect(after).toEqual(before);
  });
});

describe("user ids through the SDK", () => {
  // The same rule as the HTTP API's `sub`: a caller of the SDK cannot store an id the service would refuse.
  it.each([["victim\ud800"], ["victim\udfff"], ["nul\u0000byte"], ["tab\tid"], ["   "], ["x".repeat(256)]])("refuses %j with a schema error naming userId", async (userId) => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-u" } }));
    const lifecycle = lifecycleWith(definition(), provider.fetchStub);
    expect(() => lifecycle.beginOAuth(userId)).toThrow(expect.objectContaining({ type: "schema", field: "userId" }));
    await expect(lifecycle.connectApiKey({ userId, apiKey: "acme_key_for_odd_user" })).rejects.toMatchObject({ type: "schema", field: "userId" });
    expect(provider.calls).toHaveLength(0);
  });
});
