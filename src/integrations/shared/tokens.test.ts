/**
 * The refresh lock across instances. Two lifecycles on one database, each
 * with its own single flight as two processes would have, against one Slack
 * sandbox whose refresh tokens rotate and die the moment they are used, so
 * that a refresh made twice shows at the provider.
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
import { createConnectorLifecycle, type ConnectorLifecycle } from "./lifecycle.js";
import type { StartedSandbox } from "./sandbox.js";
import type { Vault } from "./vault.js";

/** Past the 12-hour lifetime of the sandbox's rotating access tokens: every stored token is due. */
const PAST_EXPIRY_MS = 13 * 3600 * 1000;

/** Every token the sandbox's token endpoint handed out, seen on the wire. */
type Issued = { accessTokens: string[]; refreshTokens: string[] };

// The pool and the lock across processes are PostgreSQL's concern; SQLite serves one process.
describe.each(testDatabases().filter((database) => database === "postgres"))("the refresh lock on %s", (database: TestDatabase) => {
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
