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
 * - Jira sync: a full pull of 10,000 seeded sandbox issues through the
 *   service (POST /api/integrations/jira/sync, into an empty mirror, no
 *   delete scan) beside plain `fetch` paging of the same search/jql (the same
 *   JQL, fields, page size and nextPageToken, the issues parsed and dropped)
 *   against the same sandbox, alternating, three of each: the median time,
 *   the peak growth of the heap and of the RSS over the start of each run
 *   (sampled every 5 ms, after a GC; the RSS's is noisy, as a process keeps
 *   what it once took), and the ratios. The service runs in
 *   this process, the sandbox in a `serve` process of its own on the same
 *   data folder: the memory is the pull's or the client's alone, the time
 *   includes the sandbox's answers (the same for both). Pulls of 2,000
 *   issues (made before the rest is seeded) give the peak heap beside the
 *   10,000's: flat in the number of issues when the two are alike.
 *
 * - sweep: the health-sweep job over 10,000 connections across the eight
 *   sandboxes (in a process of their own), each answering after 20 ms, at
 *   concurrency 200, over the ideal (50 rounds of 20 ms) and beside a plain
 *   `fetch` of the same who-am-I calls (scripts/bench/healthSweep.ts).
 *
 * - vault: listing a user's connections, the refresh-ahead scan, health sweep
 *   pages and the owed-revocation scan at 1,000,000 connections over the same
 *   at 1,000, on SQLite and PostgreSQL (scripts/bench/vaultScale.ts).
 *
 * Prints one JSON line of results at the end, so runs can be compared.
 * `npm run bench -- <section>...` runs only the sections named (micro, http,
 * pacing, startup, jira-sync, sweep, vault).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bench } from "tinybench";
import { loadConfig } from "../src/config.js";
import { scopeJql } from "../src/integrations/jira/sync/config.js";
import { PAGE_SIZE } from "../src/integrations/jira/sync/ticketSync.js";
import { connectWithOAuth } from "../src/testing/connectAll.js";
import { openState, sealState } from "../src/integrations/shared/oauth.js";
import { classifyOAuthError } from "../src/integrations/shared/standardOAuth.js";
import { createLogger } from "../src/server/logging.js";
import { mintUserToken } from "../src/server/auth.js";
import { startService, type Service } from "../src/service.js";
import { Keyring } from "../src/store/keyring.js";
import { freePort, freePortBlock, ROOT, startInstance, stopInstance } from "../src/testing/processes.js";
import { startInstancePair } from "../src/testing/instancePair.js";
import { PACED_CALLER_ENV, runPacedCalls } from "../src/testing/pacedCalls.js";
import pg from "pg";
import { collectGarbage, type Figure } from "./bench/compare.js";
import { healthSweepBench } from "./bench/healthSweep.js";
import { httpApi } from "./bench/httpApi.js";
import { machine, renderDoc, renderTable } from "./bench/report.js";
import { sdkOverhead } from "./bench/sdkOverhead.js";
import { vaultScale } from "./bench/vaultScale.js";

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


/** The peak growth of the heap and the RSS while `work` runs, sampled every 5 ms from a collected start, and its time. */
async function measured<T>(work: () => Promise<T>): Promise<{ ms: number; heapMb: number; rssMb: number; value: T }> {
  collectGarbage();
  const start = process.memoryUsage();
  let heap = start.heapUsed;
  let rss = start.rss;
  const sample = (): void => {
    const now = process.memoryUsage();
    heap = Math.max(heap, now.heapUsed);
    rss = Math.max(rss, now.rss);
  };
  const timer = setInterval(sample, 5);
  const began = performance.now();
  try {
    const value = await work();
    const ms = performance.now() - began;
    sample();
    return { ms, heapMb: (heap - start.heapUsed) / 2 ** 20, rssMb: (rss - start.rss) / 2 ** 20, value };
  } finally {
    clearInterval(timer);
  }
}

async function jiraSync(): Promise<Record<string, number>> {
  const issues = 10_000;
  const rounds = 3;
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-bench-sync-"));
  const env = {
    AUTOFLOW_DATA_DIR: dataDir,
    AUTOFLOW_JWT_SECRET: randomBytes(32).toString("hex"),
    AUTOFLOW_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    AUTOFLOW_SANDBOX_BASE_PORT: String(await freePortBlock(8)),
    AUTOFLOW_PUBLIC_URL: "http://localhost:3000",
    AUTOFLOW_RATE_LIMIT_PER_MINUTE: "1000000",
    AUTOFLOW_JOBS: "off",
    AUTOFLOW_LOG_LEVEL: "warn",
  };
  // The sandboxes are served by a process of their own (a `serve` on the same data folder, otherwise idle), so that
  // what this process measures is the pull's work, or the plain client's, without the sandbox's.
  const hostEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete hostEnv.DATABASE_URL;
  const host = await startInstance(hostEnv, await freePort());
  let service: Service | undefined;
  try {
    service = await startService({ ...loadConfig({ ...env, PORT: "0", AUTOFLOW_LOG_LEVEL: "silent" }), jobs: false }, { logger: createLogger("silent"), listen: true });
    const jira = service.sandboxes.jira;
    const base = service.url;
    if (!jira || !base) throw new Error("no Jira sandbox, or the service does not listen");
    if (jira.role() !== "remote") throw new Error("the Jira sandbox is served by this process, not by the host process");
    const json = async (url: string, init: RequestInit = {}): Promise<Record<string, unknown>> => {
      const res = await fetch(url, init);
      if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url} answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as Record<string, unknown>;
    };
    const post = (url: string, body: unknown, headers: Record<string, string> = {}) => json(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    const seed = (count: number) => post(`${jira.url}/_sandbox/jira/issues`, { count, fields: { summary: "Bench issue {n}", description: "A seeded issue to pull, with a line of text." } });

    // One user a pull, so that each pull fills an empty mirror.
    const users: { bearer: string; config: Parameters<typeof service.ticketSync.internals.fieldsOf>[0] }[] = [];
    for (let i = 0; i < 2 * rounds; i++) {
      const bearer = `Bearer ${await mintUserToken(service.jwtSecret as string, `bench-sync-${i}`)}`;
      await connectWithOAuth("jira", bearer.slice(7), base);
      const stored = await json(`${base}/api/integrations/jira/sync/config`, { method: "PUT", headers: { authorization: bearer, "content-type": "application/json" }, body: JSON.stringify({ projects: ["SBX"], direction: "pull" }) });
      users.push({ bearer, config: stored.config as (typeof users)[number]["config"] });
    }
    const pull = async (bearer: string): Promise<number> => {
      const { run } = (await post(`${base}/api/integrations/jira/sync`, { deleteScan: false }, { authorization: bearer })) as { run: { counts: { created: number } } };
      return run.counts.created;
    };
    // The pull's memory in the number of issues: pulls of the first fifth, before the rest is seeded, beside the full ones.
    const fewer = issues / 5;
    await seed(fewer);
    const small: Awaited<ReturnType<typeof measured>>[] = [];
    for (const user of users.splice(rounds)) {
      const p = await measured(() => pull(user.bearer));
      if (p.value !== fewer) throw new Error(`the pull created ${String(p.value)} tickets of ${fewer}`);
      small.push(p);
    }
    await seed(issues - fewer);
    // The plain client's own grant, at the same sandbox and site.
    const start = await json(`${base}/api/integrations/jira/oauth/start`, { method: "POST", headers: { authorization: users[0]?.bearer as string } });
    const authUrl = new URL(start.authUrl as string);
    const redirectUri = authUrl.searchParams.get("redirect_uri") as string;
    const code = new URL((await fetch(authUrl, { redirect: "manual" })).headers.get("location") as string).searchParams.get("code");
    const grant = await post(jira.endpoints.tokenUrl, { grant_type: "authorization_code", client_id: jira.clientId, client_secret: jira.clientSecret, code, redirect_uri: redirectUri });
    const authorization = `Bearer ${grant.access_token as string}`;
    const resources = (await (await fetch(`${jira.endpoints.apiUrl}/oauth/token/accessible-resources`, { headers: { authorization } })).json()) as { id: string }[];
    const searchUrl = `${jira.endpoints.apiUrl}/ex/jira/${resources[0]?.id}/rest/api/3/search/jql`;
    const syncConfig = users[0]?.config as (typeof users)[number]["config"];
    const query = { jql: `${scopeJql(syncConfig)} ORDER BY updated ASC, key ASC`, fields: service.ticketSync.internals.fieldsOf(syncConfig), maxResults: PAGE_SIZE };

    const plain = async (): Promise<number> => {
      let read = 0;
      let token: string | undefined;
      do {
        const page = (await post(searchUrl, { ...query, ...(token ? { nextPageToken: token } : {}) }, { authorization })) as { issues: unknown[]; nextPageToken?: string; isLast?: boolean };
        read += page.issues.length;
        token = page.isLast === false ? page.nextPageToken : undefined;
      } while (token);
      return read;
    };
    const fetches: Awaited<ReturnType<typeof measured>>[] = [];
    const pulls: Awaited<ReturnType<typeof measured>>[] = [];
    for (const user of users) {
      const f = await measured(plain);
      if (f.value !== issues) throw new Error(`plain paging read ${String(f.value)} issues of ${issues}`);
      fetches.push(f);
      const p = await measured(() => pull(user.bearer));
      if (p.value !== issues) throw new Error(`the pull created ${String(p.value)} tickets of ${issues}`);
      pulls.push(p);
    }
    const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
    const of = (runs: typeof pulls) => ({ ms: median(runs.map((r) => r.ms)), heapMb: median(runs.map((r) => r.heapMb)), rssMb: median(runs.map((r) => r.rssMb)) });
    const [f, p, q] = [of(fetches), of(pulls), of(small)];
    const line = (name: string, r: typeof f) => `${name.padEnd(28)} ${Math.round(r.ms)} ms median of ${rounds}, peak heap +${r.heapMb.toFixed(1)} MB, peak RSS +${r.rssMb.toFixed(1)} MB\n`;
    process.stdout.write(
      line(`jira sync: pull ${issues.toLocaleString("en")}`, p) +
        line("jira sync: plain fetch paging", f) +
        line(`jira sync: pull ${fewer.toLocaleString("en")}`, q) +
        `${"jira sync: ratio".padEnd(28)} ${(p.ms / f.ms).toFixed(2)}x the time (${p.ms >= f.ms ? "+" : ""}${Math.round(p.ms - f.ms)} ms), ${(p.heapMb / f.heapMb).toFixed(2)}x the peak heap growth (${(issues / (p.ms / 1000)).toFixed(0)} issues/s pulled)\n`,
    );
    return {
      "jira sync pull ms": Math.round(p.ms),
      "jira sync pull peak heap MB": Number(p.heapMb.toFixed(1)),
      "jira sync pull peak rss MB": Number(p.rssMb.toFixed(1)),
      "jira sync fetch ms": Math.round(f.ms),
      "jira sync fetch peak heap MB": Number(f.heapMb.toFixed(1)),
      "jira sync fetch peak rss MB": Number(f.rssMb.toFixed(1)),
      "jira sync time ratio": Number((p.ms / f.ms).toFixed(2)),
      "jira sync heap ratio": Number((p.heapMb / f.heapMb).toFixed(2)),
      [`jira sync pull ${fewer} ms`]: Math.round(q.ms),
      [`jira sync pull ${fewer} peak heap MB`]: Number(q.heapMb.toFixed(1)),
      [`jira sync pull heap ratio ${issues}/${fewer} issues`]: Number((p.heapMb / q.heapMb).toFixed(2)),
    };
  } finally {
    await service?.close();
    await stopInstance(host);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const sections: Record<string, () => Promise<Figure[] | Record<string, number>>> = { sdk: sdkOverhead, http: httpApi, micro, pacing, "jira-sync": jiraSync, startup, sweep: healthSweepBench, vault: vaultScale };
const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !(name in sections));
if (unknown.length > 0) {
  process.stderr.write(`no bench section ${unknown.join(", ")}: the sections are ${Object.keys(sections).join(", ")}\n`);
  process.exit(2);
}
const figures: Figure[] = [];
const values: Record<string, number> = {};
for (const [name, section] of Object.entries(sections)) {
  if (asked.length > 0 && !asked.includes(name)) continue;
  const got = await section();
  if (Array.isArray(got)) {
    figures.push(...got);
    process.stdout.write(renderTable(got));
  } else Object.assign(values, got);
}
const results = { date: new Date().toISOString(), machine: machine(), sections: asked.length > 0 ? asked : Object.keys(sections), figures, values };
mkdirSync(join(ROOT, "bench"), { recursive: true });
if (asked.length > 0) {
  // Some sections only: the full table (results.json, docs/benchmarks.md) stays as the last full run left it.
  writeFileSync(join(ROOT, "bench", "results.partial.json"), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`wrote bench/results.partial.json (${asked.join(", ")} only; a full run writes bench/results.json and docs/benchmarks.md)\n`);
} else {
  writeFileSync(join(ROOT, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(ROOT, "docs", "benchmarks.md"), renderDoc(results));
  process.stdout.write(`wrote bench/results.json and docs/benchmarks.md\n`);
}
