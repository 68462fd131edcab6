/**
 * The seed's two HTTP examples, against the service as `npm start` runs it
 * (build, then `node dist/cli.js serve`, SQLite under a data folder, every
 * connector on its sandbox), with a token from the CLI's `token` command.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, freePortBlock } from "../../src/testing/processes.js";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

describe("npm start", () => {
  let child: ChildProcess;
  let dataDir: string;
  let base: string;
  let token: string;
  let output = "";
  let sandboxBasePort: number;
  const env = () => ({
    ...process.env,
    PORT: new URL(base).port,
    AUTOFLOW_DATA_DIR: dataDir,
    AUTOFLOW_JWT_SECRET: "",
    AUTOFLOW_ENCRYPTION_KEY: "",
    AUTOFLOW_SANDBOX_BASE_PORT: String(sandboxBasePort),
  });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "autoflow-e2e-"));
    base = `http://localhost:${await freePort()}`;
    sandboxBasePort = await freePortBlock(8);
    // Its own process group, so that stopping it stops npm's child (node) too.
    child = spawn("npm", ["start", "--silent"], { cwd: root, env: env(), stdio: ["ignore", "pipe", "pipe"], detached: true });
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`npm start exited ${child.exitCode}:\n${output}`);
      const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 600) throw new Error(`npm start did not come up:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const minted = await run("node", ["dist/cli.js", "token", "--user", "alice"], { cwd: root, env: env() });
    token = minted.stdout.trim();
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      process.kill(-(child.pid as number), "SIGTERM");
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });

  it("says how to get a token, and made the key and secret files", () => {
    expect(output).toMatch(/autoflow-integrations token --user alice/);
    expect(output).toMatch(/generated a new encryption key/);
  });

  it("POST /api/integrations/slack/oauth/start answers authUrl, state, expiresInSeconds 600 and codeVerifier", async () => {
    const res = await api("/api/integrations/slack/oauth/start", { method: "POST" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["authUrl", "codeVerifier", "expiresInSeconds", "state"]);
    expect(body.expiresInSeconds).toBe(600);
    expect(new URL(body.authUrl as string).pathname).toBe("/oauth/v2/authorize");
    expect(body.state).toMatch(/^slack_/);
  });

  it("GET /api/integrations/stripe/health while the Stripe sandbox throttles answers degraded with the seed's fields", async () => {
    const started = await api("/api/integrations/stripe/oauth/start", { method: "POST" });
    const start = (await started.json()) as { authUrl: string };
    const consent = await fetch(start.authUrl, { redirect: "manual" });
    // Back at the callback as the browser that began the flow: with the cookie the start answer set.
    const cookie = started.headers.getSetCookie().map((line) => line.split(";")[0]).join("; ");
    const callback = await fetch(consent.headers.get("location") as string, { headers: { cookie } });
    expect(callback.status).toBe(200);
    const sandboxUrl = new URL(start.authUrl).origin;
    await fetch(`${sandboxUrl}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "rate-limit" }) });
    // Within the max age the envelope the connect recorded is the answer (ok); maxAge=0 probes now.
    const stored = (await (await api("/api/integrations/stripe/health")).json()) as Record<string, unknown>;
    expect(stored.status).toBe("ok");
    const res = await api("/api/integrations/stripe/health?maxAge=0");
    expect(res.status).toBe(200);
    const health = (await res.json()) as Record<string, unknown>;
    expect(health).toMatchObject({
      status: "degraded",
      authMethod: "oauth2",
      details: { auth: true, apiReachable: true, rateLimited: true, errorType: "rate-limit", message: "Stripe API rate limit exceeded" },
    });
    expect(health.accountId).toMatch(/^acct_/);
    expect(new Date(health.checkedAt as string).toISOString()).toBe(health.checkedAt);
  });

  it("refuses a user-supplied base URL of https://127.0.0.1 (only the sandboxes' own origins are allow-listed)", async () => {
    const listed = (await (await api("/api/integrations")).json()) as { providers: { id: string; sandboxUrl: string; acceptsBaseUrl: boolean }[] };
    const sentry = listed.providers.find((p) => p.id === "sentry");
    expect(sentry?.acceptsBaseUrl).toBe(true);
    const desk = (await (await fetch(`${sentry?.sandboxUrl}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as {
      accessToken: string;
    };
    const refused = await api("/api/integrations/sentry/connections", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ accessToken: desk.accessToken, baseUrl: "https://127.0.0.1" }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { type: string; field: string; message: string } }).error).toMatchObject({ type: "schema", field: "baseUrl" });
    // The sandbox's own origin is the one base URL that passes.
    const accepted = await api("/api/integrations/sentry/connections", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ accessToken: desk.accessToken, baseUrl: sentry?.sandboxUrl }),
    });
    expect(accepted.status, await accepted.text()).toBe(201);
  });
});
