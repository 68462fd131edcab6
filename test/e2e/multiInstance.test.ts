/**
 * Two service processes on one PostgreSQL database, as behind a load
 * balancer: a flow begun on one completes on the other; 100 concurrent
 * requests over both, on a connection whose rotating token has expired, make
 * exactly one refresh at the provider; killing the database's connections
 * under load gives 503s, never 500s, and the service recovers by itself.
 *
 * Needs PostgreSQL (CI has it): without one this file has nothing to test.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startSlackSandbox } from "../../src/integrations/slack/sandbox.js";
import type { StartedSandbox } from "../../src/sandbox/kit.js";
import { mintUserToken } from "../../src/server/auth.js";
import { openStore, type OpenedStore } from "../../src/store/index.js";
import { dropSchema, newSchemaName } from "../../src/testing/databases.js";
import { freePort, freePortBlock, killStartedInstances, startInstance, stopInstance, type Instance } from "../../src/testing/processes.js";

const postgresUrl = inject("postgresUrl");
/** Access tokens live this long at the sandbox; the service refreshes them after half of it. */
const TOKEN_TTL_SECONDS = 6;

describe.runIf(postgresUrl)("several instances on one PostgreSQL", () => {
  const schema = postgresUrl ? newSchemaName() : "";
  const key = randomBytes(32);
  const jwtSecret = randomBytes(32).toString("base64url");
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-multi-"));
  let sandbox: StartedSandbox;
  let a: Instance;
  let b: Instance;
  let store: OpenedStore;
  let token: string;

  beforeAll(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    // What users reach: one public address (a load balancer), here instance A's.
    const publicUrl = `http://localhost:${portA}`;
    sandbox = await startSlackSandbox({
      redirectUris: [`${publicUrl}/api/integrations/slack/oauth/callback`],
      tokenRotation: true,
      accessTokenTtlSeconds: TOKEN_TTL_SECONDS,
      refreshTokenGraceSeconds: 0,
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: postgresUrl,
      AUTOFLOW_DATABASE_SCHEMA: schema,
      AUTOFLOW_DATA_DIR: dataDir,
      AUTOFLOW_PUBLIC_URL: publicUrl,
      AUTOFLOW_ENCRYPTION_KEY: key.toString("base64"),
      AUTOFLOW_JWT_SECRET: jwtSecret,
      AUTOFLOW_LOG_LEVEL: "warn",
      // The other seven run on sandboxes both instances share: ports of this file's own.
      AUTOFLOW_SANDBOX_BASE_PORT: String(await freePortBlock(8)),
      AUTOFLOW_SLACK_CLIENT_ID: sandbox.clientId,
      AUTOFLOW_SLACK_CLIENT_SECRET: sandbox.clientSecret,
      AUTOFLOW_SLACK_AUTHORIZE_URL: sandbox.endpoints.authorizeUrl,
      AUTOFLOW_SLACK_TOKEN_URL: sandbox.endpoints.tokenUrl,
      AUTOFLOW_SLACK_REVOKE_URL: sandbox.endpoints.revokeUrl,
      AUTOFLOW_SLACK_API_URL: sandbox.endpoints.apiUrl,
    };
    // Both start together: migrations must be safe to race.
    [a, b] = await Promise.all([startInstance(env, portA), startInstance(env, portB)]);
    store = await openStore({ postgres: { url: postgresUrl, schema }, keys: [key], migrate: false });
    token = await mintUserToken(jwtSecret, "alice");
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stopInstance(a), stopInstance(b)]);
    killStartedInstances();
    await store?.close();
    await sandbox?.close();
    if (schema) await dropSchema(schema);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const api = (instance: Instance, path: string, init: RequestInit = {}) =>
    fetch(`${instance.base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });
  const sandboxLog = async () =>
    ((await (await fetch(`${sandbox.url}/_sandbox/requests`)).json()) as { requests: { method: string; path: string }[] }).requests;

  it("completes on the second instance a flow begun on the first, then refreshes once for 100 requests over both", async () => {
    const started = await api(a, "/api/integrations/slack/oauth/start", { method: "POST" });
    const start = (await started.json()) as { authUrl: string };
    const consent = await fetch(start.authUrl, { redirect: "manual" });
    const callback = new URL(consent.headers.get("location") as string);
    // The browser binding set by the first instance is checked by the second: from the sealed state alone.
    const cookie = started.headers.getSetCookie().map((line) => line.split(";")[0]).join("; ");
    const page = await fetch(`${b.base}${callback.pathname}${callback.search}`, { headers: { cookie } });
    expect(page.status, await page.text()).toBe(200);
    const listed = (await (await api(a, "/api/integrations/slack/connections")).json()) as { connections: { id: string }[] };
    expect(listed.connections).toHaveLength(1);
    const id = listed.connections[0]?.id as string;

    // Past the refresh margin (half the lifetime), before the next one comes due.
    await new Promise((resolve) => setTimeout(resolve, (TOKEN_TTL_SECONDS / 2) * 1000 + 300));
    await fetch(`${sandbox.url}/_sandbox/requests`, { method: "DELETE" });
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => api(i % 2 === 0 ? a : b, "/api/integrations/slack/test", { method: "POST" })),
    );
    const statuses = await Promise.all(responses.map(async (r) => (r.status === 200 ? 200 : `${r.status} ${await r.text()}`)));
    expect(statuses).toEqual(Array(100).fill(200));
    const refreshes = (await sandboxLog()).filter((r) => r.path === "/api/oauth.v2.access");
    expect(refreshes).toHaveLength(1);

    // The stored refresh token is the newest: with rotation and no grace period, only the newest still works.
    const record = await store.vault.findConnection({ userId: "alice", provider: "slack", id });
    const { refreshToken } = await store.vault.readSecrets(record as NonNullable<typeof record>);
    const check = await fetch(sandbox.endpoints.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken as string, client_id: sandbox.clientId, client_secret: sandbox.clientSecret }),
    });
    expect(((await check.json()) as { ok: boolean }).ok).toBe(true);
  }, 60_000);

  it("answers 503, never 500, while the database's connections are killed, and recovers by itself", async () => {
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    try {
      const statuses: number[] = [];
      let stop = false;
      const load = (async () => {
        while (!stop) {
          const batch = await Promise.all(Array.from({ length: 10 }, (_, i) => api(i % 2 === 0 ? a : b, "/api/integrations/slack/connections")));
          statuses.push(...batch.map((r) => r.status));
        }
      })();
      for (let round = 0; round < 5; round++) {
        await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1", [`autoflow-integrations:${schema}`]);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      stop = true;
      await load.catch((error: unknown) => {
        throw new Error(`an instance stopped answering: ${String(error)}\nA:\n${a.output()}\nB:\n${b.output()}`);
      });
      const counts = JSON.stringify(statuses.reduce<Record<number, number>>((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {}));
      process.stdout.write(`[autoflow] statuses while connections were killed: ${counts}\n`);
      expect(statuses.length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s !== 200 && s !== 503), counts).toEqual([]);
      // Afterwards: every request succeeds, with no restart.
      const after = await Promise.all(Array.from({ length: 20 }, (_, i) => api(i % 2 === 0 ? a : b, "/api/integrations/slack/connections")));
      expect(after.map((r) => r.status)).toEqual(Array(20).fill(200));
      const ready = await Promise.all([fetch(`${a.base}/readyz`), fetch(`${b.base}/readyz`)]);
      expect(ready.map((r) => r.status)).toEqual([200, 200]);
    } finally {
      await admin.end();
    }
  }, 60_000);
});
