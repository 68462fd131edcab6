/**
 * The refresh lock across instances. Two lifecycles on one database, each
 * with its own single flight as two processes would have, against one Slack
 * sandbox whose refresh tokens rotate and die the moment they are used, so
 * that a refresh made twice, or a grant nobody holds, shows at the provider.
 * Which grants are still live is asked of the sandbox itself: each refresh
 * token is tried at its token endpoint, each access token at auth.test.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { redirectUriFor, resolveSettings } from "../../config.js";
import { openStore, type OpenedStore } from "../../store/index.js";
import { freshLocation, testDatabases, type StoreLocation, type TestDatabase } from "../../testing/databases.js";
import { PUBLIC_URL, VirtualClock } from "../../testing/harness.js";
import { slackConnector } from "../slack/connector.js";
import { startSlackSandbox } from "../slack/sandbox.js";
import { IntegrationError } from "./errors.js";
import { createConnectorLifecycle, type ConnectorLifecycle } from "./lifecycle.js";
import type { StartedSandbox } from "../../sandbox/kit.js";
import type { Vault } from "./vault.js";

/** Past the 12-hour lifetime of the sandbox's rotating access tokens: every stored token is due. */
const PAST_EXPIRY_MS = 13 * 3600 * 1000;

type Deferred<T = void> = { promise: Promise<T>; resolve(value: T): void };
function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Every token the sandbox's token endpoint handed out, seen on the wire. */
type Issued = { accessTokens: string[]; refreshTokens: string[] };

describe.each(testDatabases())("the refresh lock on %s", (database: TestDatabase) => {
  const key = randomBytes(32);
  let sandbox: StartedSandbox;
  let location: StoreLocation;
  let dispose: () => Promise<void>;
  let dir: string;
  const stores: OpenedStore[] = [];
  let clock: VirtualClock;
  let issued: Issued;

  beforeEach(async () => {
    sandbox = await startSlackSandbox({ tokenRotation: true, refreshTokenGraceSeconds: 0, redirectUris: [redirectUriFor(PUBLIC_URL, "slack")] });
    dir = mkdtempSync(join(tmpdir(), "autoflow-lock-"));
    ({ location, dispose } = freshLocation(database, join(dir, "autoflow.db")));
    clock = new VirtualClock();
    issued = { accessTokens: [], refreshTokens: [] };
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await sandbox.close();
    await dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const openInstanceStore = async (maxConnections?: number): Promise<OpenedStore> => {
    const store = await openStore({
      ...("postgres" in location ? { postgres: { ...location.postgres, ...(maxConnections ? { maxConnections } : {}) } } : location),
      keys: [key],
    });
    stores.push(store);
    return store;
  };

  /**
   * One instance: its own lifecycle (and so its own single flight) over `vault`. `hold`, when given,
   * is awaited after the token endpoint answered a refresh and before the instance sees the answer.
   */
  const instance = (store: OpenedStore, options: { vault?: Vault; hold?: (tokens: { accessToken: string; refreshToken: string }) => Promise<void> } = {}) => {
    const recordingFetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const response = await fetch(input, init);
      if (String(input) !== sandbox.endpoints.tokenUrl) return response;
      const body = (await response.clone().json()) as { access_token?: string; refresh_token?: string; authed_user?: { access_token?: string } };
      for (const token of [body.access_token, body.authed_user?.access_token]) if (token) issued.accessTokens.push(token);
      if (body.refresh_token) issued.refreshTokens.push(body.refresh_token);
      const isRefresh = String(init?.body ?? "").includes("grant_type=refresh_token");
      if (isRefresh && options.hold && body.access_token && body.refresh_token) {
        await options.hold({ accessToken: body.access_token, refreshToken: body.refresh_token });
      }
      return response;
    }) as typeof fetch;
    return createConnectorLifecycle(slackConnector, {
      vault: options.vault ?? store.vault,
      sealer: store.keyring,
      settings: resolveSettings({ provider: "slack", config: {}, publicUrl: PUBLIC_URL, sandbox }),
      knownProviders: ["slack"],
      timeoutMs: 5_000,
      clock,
      fetch: recordingFetch,
    });
  };

  const connect = async (lifecycle: ConnectorLifecycle, userId: string): Promise<string> => {
    const { authUrl, state } = lifecycle.beginOAuth(userId);
    const consent = await fetch(authUrl, { redirect: "manual" });
    const code = new URL(consent.headers.get("location") as string).searchParams.get("code") as string;
    const connection = await lifecycle.completeOAuth({ code, state });
    return connection.id;
  };

  const refreshTokenLive = async (refreshToken: string): Promise<boolean> => {
    const response = await fetch(sandbox.endpoints.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: sandbox.clientId, client_secret: sandbox.clientSecret }),
    });
    return ((await response.json()) as { ok: boolean }).ok;
  };
  const accessTokenLive = async (accessToken: string): Promise<boolean> => {
    const response = await fetch(`${sandbox.endpoints.apiUrl}/auth.test`, { method: "POST", headers: { authorization: `Bearer ${accessToken}` } });
    return ((await response.json()) as { ok: boolean }).ok;
  };
  /** What the provider still honours: every refresh token, and the newest access token (older ones are superseded and expire). */
  const liveGrants = async (): Promise<string[]> => {
    const live: string[] = [];
    for (const token of issued.refreshTokens) if (await refreshTokenLive(token)) live.push(`refresh ${token.slice(0, 12)}…`);
    const newest = issued.accessTokens.at(-1);
    if (newest && (await accessTokenLive(newest))) live.push(`access ${newest.slice(0, 12)}…`);
    return live;
  };

  it("makes a disconnect wait for a refresh in flight on another instance, then revoke what the refresh obtained", async () => {
    const [storeA, storeB] = [await openInstanceStore(), await openInstanceStore()];
    const refreshAnswered = deferred();
    const release = deferred();
    const a = instance(storeA, {
      hold: async () => {
        refreshAnswered.resolve();
        await release.promise;
      },
    });
    // B's vault tells the test when B asks for the lock (a disconnect that takes it waits there).
    const lockAsked = deferred();
    const vaultB = Object.create(storeB.vault, {
      withRefreshLock: {
        value: (...args: Parameters<Vault["withRefreshLock"]>) => {
          lockAsked.resolve();
          return storeB.vault.withRefreshLock(...args);
        },
      },
    }) as Vault;
    const b = instance(storeB, { vault: vaultB });
    const id = await connect(a, "alice");
    clock.advance(PAST_EXPIRY_MS);

    // A refreshes: the provider has minted a new grant, and A has not stored it yet.
    const testing = a.testConnection("alice").then(
      () => "ok",
      (error: unknown) => (error instanceof IntegrationError ? `integration error: ${error.type}` : `unexpected: ${String(error)}`),
    );
    await refreshAnswered.promise;
    // B disconnects meanwhile; A's answer arrives once B is waiting for the lock (or, without one, done).
    const disconnecting = b.disconnectWithReport("alice", id);
    await Promise.race([disconnecting, lockAsked.promise]);
    release.resolve();
    const report = await disconnecting;
    expect(await testing).not.toMatch(/^unexpected/);

    expect(report?.revocation).toBe("revoked");
    expect(issued.refreshTokens).toHaveLength(2);
    expect(await liveGrants()).toEqual([]);
    const stored = await storeA.vault.findConnection({ userId: "alice", provider: "slack", id });
    expect(stored?.revokedAt).toBeDefined();
    await expect(storeA.vault.readSecrets(stored as NonNullable<typeof stored>)).rejects.toThrow(/holds no token/);
  });

  it("revokes, and never stores, a grant whose refresh completes after the connection was disconnected", async () => {
    const [storeA, storeB] = [await openInstanceStore(), await openInstanceStore()];
    const refreshAnswered = deferred();
    const release = deferred();
    // A's lock does not exclude anyone: as if its lease had lapsed while the provider was slow to answer.
    const lapsed = Object.create(storeA.vault, {
      withRefreshLock: { value: (...args: unknown[]) => (args.at(-1) as () => Promise<unknown>)() },
    }) as Vault;
    const a = instance(storeA, {
      vault: lapsed,
      hold: async () => {
        refreshAnswered.resolve();
        await release.promise;
      },
    });
    const b = instance(storeB);
    const id = await connect(a, "bob");
    clock.advance(PAST_EXPIRY_MS);

    const refreshing = a.refreshConnection((await storeA.vault.findConnection({ userId: "bob", provider: "slack", id })) as NonNullable<Awaited<ReturnType<Vault["findConnection"]>>>).then(
      (outcome) => outcome,
      (error: unknown) => error,
    );
    await refreshAnswered.promise;
    const report = await b.disconnectWithReport("bob", id);
    expect(report?.connection.revokedAt).toBeDefined();
    release.resolve();
    const outcome = await refreshing;
    expect(outcome).toMatchObject({ type: "auth", code: "connection_revoked" });

    expect(issued.refreshTokens).toHaveLength(2);
    expect(await liveGrants()).toEqual([]);
    const stored = await storeA.vault.findConnection({ userId: "bob", provider: "slack", id });
    await expect(storeA.vault.readSecrets(stored as NonNullable<typeof stored>)).rejects.toThrow(/holds no token/);
  });

  // The pool and the lock across processes are PostgreSQL's concern; SQLite serves one process.
  if (database === "postgres")
    it(
    "refreshes 100 connections expiring at once through two instances with pools of 5: each once, no pool timeout, no unexpected error",
    async () => {
      const [storeA, storeB] = [await openInstanceStore(5), await openInstanceStore(5)];
      const [a, b] = [instance(storeA), instance(storeB)];
      const users = Array.from({ length: 100 }, (_, i) => `user-${i}`);
      for (let i = 0; i < users.length; i += 10) await Promise.all(users.slice(i, i + 10).map((user) => connect(a, user)));
      expect(issued.refreshTokens).toHaveLength(100);
      clock.advance(PAST_EXPIRY_MS);
      await fetch(`${sandbox.url}/_sandbox/requests`, { method: "DELETE" });

      const outcomes = await Promise.all(
        users.flatMap((user) => [a, b].map((lifecycle) => lifecycle.testConnection(user).then(() => "ok", (error: unknown) => (error instanceof Error ? error.message : String(error))))),
      );
      const failures = outcomes.filter((o) => o !== "ok");
      expect(failures.slice(0, 5), `${failures.length} of ${outcomes.length} failed`).toEqual([]);
      const log = (await (await fetch(`${sandbox.url}/_sandbox/requests`)).json()) as { requests: { path: string }[] };
      expect(log.requests.filter((r) => r.path === "/api/oauth.v2.access")).toHaveLength(100);
      // With rotation and no grace period, a second refresh of any connection would have been refused.
      expect(issued.refreshTokens).toHaveLength(200);
    },
    60_000,
  );
});
