/**
 * Lifecycle rules that no sandbox can provoke on demand, proven with a
 * made-up connector whose provider is a stub fetch: a grant that cannot be
 * stored is revoked, base URLs are guarded and bind the credential, and a
 * pasted token that expires is stored with its expiry.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore, type OpenedStore } from "../../store/index.js";
import type { ConnectorDefinition, ConnectorSettings } from "./connector.js";
import { IntegrationError } from "./errors.js";
import { createConnectorLifecycle } from "./lifecycle.js";
import { sealState } from "./oauth.js";
import { RefreshLockTimeoutError, type RefreshLockOptions, type Vault } from "./vault.js";

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
  async whoAmI(ctx, input) {
    const base = ctx.baseUrl ?? settings.endpoints.apiUrl;
    const response = await ctx.http.send({ operation: "me", method: "GET", url: `${base}/me`, headers: { authorization: `Bearer ${input.accessToken}` } });
    const body = response.json as { id?: string; expires_in?: number };
    return { metadata: body.id ? { accountId: body.id } : {}, summary: {}, ...(body.expires_in ? { expiresInSeconds: body.expires_in } : {}) };
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

function lifecycleWith(def: ConnectorDefinition, fetchStub: typeof fetch, resolve = async () => ["93.184.215.14"]) {
  return createConnectorLifecycle(def, {
    vault: store.vault,
    sealer: store.keyring,
    settings,
    knownProviders: ["acme"],
    timeoutMs: 1000,
    fetch: fetchStub,
    guardedFetch: fetchStub,
    baseUrlPolicy: { allowlist: [], resolve },
  });
}

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
    const lifecycle = lifecycleWith(definition(), provider.fetchStub, async () => ["10.0.0.7"]);
    const error = await lifecycle.connectApiKey({ userId: "alice", apiKey: "k", baseUrl: "https://acme.corp.example" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "schema", field: "baseUrl" });
    expect((error as Error).message).toMatch(/10\.0\.0\.7.*not public/);
    expect(provider.calls).toEqual([]);
  });

  it("bind the credential: it is sent to that instance and refused anywhere else", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-1" } }));
    let target = "";
    const def = definition({
      async whoAmI(ctx, input) {
        const response = await ctx.http.send({ operation: "me", method: "GET", url: target || `${ctx.baseUrl}/me`, headers: { authorization: `Bearer ${input.accessToken}` } });
        return { metadata: { accountId: (response.json as { id: string }).id }, summary: {} };
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

describe("a refresh lock that stays taken", () => {
  it("is a retryable error naming the wait, never an unexpected one", async () => {
    const provider = stubProvider(() => ({ status: 200, body: { id: "acct-4" } }));
    // The lock another instance holds for longer than this one waits.
    const busy = Object.create(store.vault, {
      withRefreshLock: {
        value: async (id: string, options: RefreshLockOptions) => {
          throw new RefreshLockTimeoutError(id, options.waitMs);
        },
      },
    }) as Vault;
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
