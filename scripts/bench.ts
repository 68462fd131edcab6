/**
 * `npm run bench`: the hot paths, measured (never asserted in tests).
 *
 * - micro (tinybench): sealing and opening an OAuth state, encrypting and
 *   decrypting a token under a data key, unwrapping a data key, classifying
 *   a provider answer;
 * - HTTP (autocannon): GET .../connections and GET .../health against the
 *   service on SQLite with its sandboxes, on loopback.
 *
 * Prints one JSON line of results at the end, so runs can be compared.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { Bench } from "tinybench";
import { loadConfig } from "../src/config.js";
import { openState, sealState } from "../src/integrations/shared/oauth.js";
import { classifyOAuthError } from "../src/integrations/shared/standardOAuth.js";
import { createLogger } from "../src/server/logging.js";
import { mintUserToken } from "../src/server/auth.js";
import { startService } from "../src/service.js";
import { Keyring } from "../src/store/keyring.js";

const keyring = new Keyring([randomBytes(32)]);
const dataKey = Keyring.newDataKey();
const wrapped = keyring.wrapDataKey(dataKey, "connection:conn_x:data_key");
const token = `xoxb-${randomBytes(30).toString("hex")}`;
const sealedToken = Keyring.sealWithDataKey(dataKey, token, "connection:conn_x:access_token");
const { state } = sealState(keyring, { provider: "slack", userId: "alice", nowMs: Date.now(), codeVerifier: "v".repeat(43) });
const oauthError = { status: 400, headers: new Headers(), text: "", json: { error: "invalid_grant", error_description: "x" } };

async function micro(): Promise<Record<string, number>> {
  const bench = new Bench({ time: 500 });
  bench
    .add("seal OAuth state", () => void sealState(keyring, { provider: "slack", userId: "alice", nowMs: Date.now(), codeVerifier: "v".repeat(43) }))
    .add("open OAuth state", () => void openState(keyring, { provider: "slack", state, nowMs: Date.now() }))
    .add("encrypt token (data key)", () => void Keyring.sealWithDataKey(dataKey, token, "connection:conn_x:access_token"))
    .add("decrypt token (data key)", () => void Keyring.openWithDataKey(dataKey, sealedToken, "connection:conn_x:access_token"))
    .add("unwrap data key", () => void keyring.unwrapDataKey(wrapped, "connection:conn_x:data_key"))
    .add("classify OAuth error", () => void classifyOAuthError(oauthError, "token", "Test"));
  await bench.run();
  const results: Record<string, number> = {};
  for (const task of bench.tasks) {
    const ops = task.result?.state === "completed" ? Math.round(task.result.throughput.mean) : 0;
    results[task.name] = ops;
    process.stdout.write(`${task.name.padEnd(28)} ${ops.toLocaleString("en")} ops/s\n`);
  }
  return results;
}

async function http(): Promise<Record<string, number>> {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-bench-"));
  const config = { ...loadConfig({ AUTOFLOW_DATA_DIR: dataDir, AUTOFLOW_JWT_SECRET: randomBytes(32).toString("hex"), AUTOFLOW_LOG_LEVEL: "silent", PORT: "0", AUTOFLOW_RATE_LIMIT_PER_MINUTE: "1000000" }), jobs: false };
  const service = await startService(config, { logger: createLogger("silent"), listen: true });
  const results: Record<string, number> = {};
  try {
    const bearer = `Bearer ${await mintUserToken(service.jwtSecret as string, "bench")}`;
    const desk = (await (await fetch(`${service.sandboxes.stripe?.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as { apiKey: string };
    await fetch(`${service.url}/api/integrations/stripe/connections`, {
      method: "POST",
      headers: { authorization: bearer, "content-type": "application/json" },
      body: JSON.stringify({ apiKey: desk.apiKey }),
    });
    for (const [name, path] of [
      ["GET connections (vault read)", "/api/integrations/stripe/connections"],
      ["GET health (provider probe)", "/api/integrations/stripe/health"],
    ] as const) {
      const run = await autocannon({ url: `${service.url}${path}`, headers: { authorization: bearer }, connections: 10, duration: 5 });
      results[`${name} req/s`] = Math.round(run.requests.average);
      results[`${name} p99 ms`] = run.latency.p99;
      process.stdout.write(`${name.padEnd(28)} ${Math.round(run.requests.average).toLocaleString("en")} req/s, p99 ${run.latency.p99} ms, ${run.non2xx} non-2xx\n`);
    }
  } finally {
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return results;
}

const results = { node: process.version, ...(await micro()), ...(await http()) };
process.stdout.write(`${JSON.stringify(results)}\n`);
