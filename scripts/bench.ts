/**
 * `npm run bench`: the hot paths, measured (never asserted in tests).
 *
 * - micro (tinybench): sealing and opening an OAuth state, encrypting and
 *   decrypting a token under a data key, unwrapping a data key, classifying
 *   a provider answer;
 * - HTTP (autocannon): GET .../connections and GET .../health against the
 *   service on SQLite with its sandboxes, on loopback.
 *
 * - pacing: 1,000 proxied calls through two instances on PostgreSQL against a
 *   sandbox that allows 50 requests a second, paced and (the baseline, same
 *   run) unpaced: the rate achieved against the rate allowed, and the share
 *   of the sandbox's answers that were its 429. Skipped without PostgreSQL
 *   (`DATABASE_URL`, or postgres://postgres@127.0.0.1:5432/test).
 *
 * - start-up: time to the first answer of /healthz for `npm start` beside
 *   `node dist/cli.js serve` (the floor), measured alternately in this run;
 *   the target is a ratio of at most 1.5.
 *
 * Prints one JSON line of results at the end, so runs can be compared.
 */
import { spawn } from "node:child_process";
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
import { freePort, freePortBlock, ROOT } from "../src/testing/processes.js";
import { startInstancePair } from "../src/testing/instancePair.js";
import { PACED_CALLER_ENV, runPacedCalls } from "../src/testing/pacedCalls.js";
import pg from "pg";

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
  const config = { ...loadConfig({ AUTOFLOW_DATA_DIR: dataDir, AUTOFLOW_JWT_SECRET: randomBytes(32).toString("hex"), AUTOFLOW_LOG_LEVEL: "silent", PORT: "0", AUTOFLOW_SANDBOX_BASE_PORT: "0", AUTOFLOW_RATE_LIMIT_PER_MINUTE: "1000000" }), jobs: false };
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

/** Milliseconds from spawning `command` to its first 200 from /healthz, on a fresh data folder. */
async function timeToFirstAnswer(command: string, args: string[]): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-bench-start-"));
  const port = await freePort();
  const env = { ...process.env, PORT: String(port), AUTOFLOW_DATA_DIR: dataDir, AUTOFLOW_SANDBOX_BASE_PORT: String(await freePortBlock(8)), AUTOFLOW_LOG_LEVEL: "warn" };
  const started = performance.now();
  const child = spawn(command, args, { cwd: ROOT, env, stdio: "ignore", detached: true });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${command} ${args.join(" ")} exited ${child.exitCode}`);
      if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) return performance.now() - started;
      if (performance.now() - started > 120_000) throw new Error(`${command} ${args.join(" ")} did not answer in 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(-(child.pid as number), "SIGTERM");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function startup(): Promise<Record<string, number>> {
  const runs = 5;
  const npm: number[] = [];
  const node: number[] = [];
  // Alternating, so that a busy moment of the machine hits both alike.
  for (let i = 0; i < runs; i++) {
    npm.push(await timeToFirstAnswer("npm", ["start", "--silent"]));
    node.push(await timeToFirstAnswer(process.execPath, ["dist/cli.js", "serve"]));
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  const ratio = median(npm) / median(node);
  process.stdout.write(
    `${"start: npm start".padEnd(28)} ${Math.round(median(npm))} ms median of ${runs}\n` +
      `${"start: node dist/cli.js serve".padEnd(28)} ${Math.round(median(node))} ms median of ${runs}\n` +
      `${"start: ratio".padEnd(28)} ${ratio.toFixed(2)}x (target at most 1.5x)\n`,
  );
  return { "start npm start ms": Math.round(median(npm)), "start node dist ms": Math.round(median(node)), "start ratio": Number(ratio.toFixed(2)) };
}

async function pacing(): Promise<Record<string, number>> {
  const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    await probe.end();
  } catch {
    process.stdout.write(`pacing: skipped, no PostgreSQL at ${url}\n`);
    return {};
  }
  const results: Record<string, number> = {};
  const rate = { requests: 50, windowMs: 1000 };
  for (const mode of ["on", "off"] as const) {
    const pair = await startInstancePair(url, { ...PACED_CALLER_ENV, AUTOFLOW_PACING: mode });
    try {
      const run = await runPacedCalls(pair, { provider: "sentry", path: "/api/0/organizations/", calls: 1000, inFlight: 20, rate });
      const perSecond = run.calls / (run.elapsedMs / 1000);
      const answers = run.sandbox.served + run.sandbox.limited;
      const share = (100 * run.sandbox.limited) / answers;
      const ok = run.statuses[200] ?? 0;
      process.stdout.write(
        `${`pacing ${mode}: rate`.padEnd(28)} ${perSecond.toFixed(1)} calls/s of ${rate.requests} allowed (${((100 * perSecond) / rate.requests).toFixed(0)}%), ` +
          `${ok}/${run.calls} succeeded, ${run.sandbox.limited} of ${answers} sandbox answers were 429 (${share.toFixed(1)}%)\n`,
      );
      results[`pacing ${mode} calls/s`] = Number(perSecond.toFixed(1));
      results[`pacing ${mode} succeeded`] = ok;
      results[`pacing ${mode} 429 %`] = Number(share.toFixed(2));
    } finally {
      await pair.close();
    }
  }
  return results;
}

const results = { node: process.version, ...(await micro()), ...(await http()), ...(await pacing()), ...(await startup()) };
process.stdout.write(`${JSON.stringify(results)}\n`);
