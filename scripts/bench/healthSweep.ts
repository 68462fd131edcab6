/**
 * Health sweep: 10,000 connections spread across the eight sandboxes, every
 * sandbox answering every request after 20 ms (`PUT /_sandbox/latency`),
 * swept by the health-sweep job (`healthSweep`) at concurrency 200, over the
 * ideal: ceil(10,000 / 200) rounds of 20 ms. Beside it, the same run, a
 * plain `fetch` sweep of the same 10,000 who-am-I calls at the same
 * concurrency against the same sandboxes (what the job's own work adds
 * beyond sending the calls), and the same calls again with undici's
 * `request` over keep-alive pools like the service's and nothing else done.
 *
 * Each run also reads the CPU time spent on a call, by this process and by
 * the sandbox host (which answers `cpu` on its stdin with its own), on all
 * threads and on the main one. From plain undici's the section reads this
 * machine's bound: no sweep of these calls is faster than either side's main
 * thread (10,000 × its CPU a call: JavaScript runs there one piece at a
 * time), nor than both sides' threads together on the machine's cores, as
 * the sandboxes answer on the same ones. Where that bound is above the
 * target, the target is out of this machine's reach, and the figure says so;
 * the job's own CPU a check beside plain undici's is what it adds, whatever
 * the machine.
 *
 * The sandboxes run in a process of their own (scripts/bench/sandboxHost.ts),
 * so that what this process measures is the sweep's work (or the plain
 * client's) and the sandboxes' answers, not the sandboxes' own work. The
 * store is SQLite in a file, as the service keeps it; provider calls go over
 * the service's keep-alive pools (createProviderPools).
 *
 * The connections: one per provider connected through the SDK with a key
 * from the sandbox's credentials desk, then the rest stored through the
 * vault, each with its own key from the desk and the first one's shape
 * (authMethod, scopes, base URL, metadata, with the fields the desk names
 * taken from its own answer); a second SDK connection per provider checks
 * that the shape so made is the one the SDK stores, and where it is not
 * (Stripe: each key is an account of its own, named in the metadata) all of
 * that provider's are connected through the SDK. Each Linear key is a new
 * workspace member's, as Linear counts requests per user.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { isDeepStrictEqual } from "node:util";
import { request, type Dispatcher } from "undici";
import { healthSweep } from "../../src/jobs/sweeps.js";
import { CONNECTORS, PROVIDER_IDS, type ProviderId } from "../../src/integrations/registry.js";
import { toProviderRequest } from "../../src/integrations/shared/call.js";
import { connectFieldsOf, type ConnectorSettings } from "../../src/integrations/shared/connector.js";
import { createProviderPools } from "../../src/integrations/shared/guardedFetch.js";
import { maskSecret } from "../../src/integrations/shared/mask.js";
import type { ConnectorLifecycle } from "../../src/integrations/shared/lifecycle.js";
import type { ConnectionRecord, NewConnection } from "../../src/integrations/shared/vault.js";
import { connectorsById, createIntegrations } from "../../src/sdk.js";
import { openStore, SqlVault } from "../../src/store/index.js";
import { ROOT } from "../../src/testing/processes.js";
import { figure, interleaved, median, type Figure } from "./compare.js";
import { readCpu, type CpuReading } from "./threadCpu.js";

const CONNECTIONS = 10_000;
const CONCURRENCY = 200;
const LATENCY_MS = 20;
/** Users the connections belong to (ten each). */
const USERS = 1_000;
const IDEAL_MS = Math.ceil(CONNECTIONS / CONCURRENCY) * LATENCY_MS;

type Host = {
  child: ChildProcess;
  settings: Record<ProviderId, ConnectorSettings>;
  baseUrlAllowlist: string[];
  urls: Record<ProviderId, string>;
  /** The sandbox host's CPU reading (threadCpu.ts). */
  cpu(): Promise<CpuReading>;
};

async function startHost(): Promise<Host> {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts/bench/sandboxHost.ts")], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`the sandbox host exited ${String(code)} before it answered`))));
  exited.catch(() => undefined);
  // Its lines in order, each to the first one waiting for it: where it listens, then each CPU answer.
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => waiting.shift()?.(line));
  const nextLine = (): Promise<string> => Promise.race([new Promise<string>((resolve) => waiting.push(resolve)), exited]);
  const started = JSON.parse(await nextLine()) as Omit<Host, "child" | "cpu">;
  const cpu = async (): Promise<CpuReading> => {
    const answer = nextLine();
    child.stdin?.write("cpu\n");
    const line = await answer;
    const { all, main } = JSON.parse(line) as { all?: unknown; main?: unknown };
    if (typeof all !== "number" || (main !== null && typeof main !== "number")) throw new Error(`the sandbox host answered "cpu" with ${line}`);
    return { all, main: main ?? Number.NaN };
  };
  return { child, ...started, cpu };
}

async function stopHost(host: Host | undefined): Promise<void> {
  if (!host || host.child.exitCode !== null) return;
  const exited = new Promise((resolve) => host.child.once("exit", resolve));
  host.child.stdin?.end();
  await exited;
}

/** Runs `task` over 0..count-1, `limit` at a time. */
async function eachLimited(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) await task(next++);
  }));
}

const json = async (url: string, method: string, body?: unknown): Promise<Record<string, unknown>> => {
  const res = await fetch(url, { method, ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }) });
  if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
};

/** The token a desk credential connects with (as POST .../connections takes it). */
const tokenOf = (credential: Record<string, unknown>): string => {
  const fields = connectFieldsOf(credential);
  return (fields.apiKey ?? fields.accessToken) as string;
};

/** The template's metadata, with each field that came from its credential taken from `credential` instead. */
function metadataFor(template: { record: ConnectionRecord; credential: Record<string, unknown> }, credential: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(template.record.metadata).map(([key, value]) => [key, key in credential && isDeepStrictEqual(template.credential[key], value) ? credential[key] : value]),
  );
}

/** A new connection like the template's, with `credential`'s token and fields; its token's lifetime is the template's. */
function likeTemplate(template: { record: ConnectionRecord; credential: Record<string, unknown> }, credential: Record<string, unknown>, userId: string): NewConnection {
  const { record } = template;
  const now = Date.now();
  const token = tokenOf(credential);
  const lifetime = record.accessTokenExpiresAt === undefined ? undefined : Date.parse(record.accessTokenExpiresAt) - Date.parse(record.createdAt);
  return {
    userId,
    provider: record.provider,
    authMethod: record.authMethod,
    accessToken: token,
    tokenMasked: maskSecret(token),
    scopes: record.scopes,
    metadata: metadataFor(template, credential),
    tokenRefreshStatus: record.tokenRefreshStatus,
    createdAt: new Date(now).toISOString(),
    ...(lifetime === undefined ? {} : { accessTokenExpiresAt: new Date(now + lifetime).toISOString() }),
    ...(record.accessTokenIssuedAt === undefined ? {} : { accessTokenIssuedAt: new Date(now).toISOString() }),
    ...(record.baseUrl === undefined ? {} : { baseUrl: record.baseUrl }),
  };
}

/** What the section sweeps: the store, the SDK on the sandbox host, the connections seeded, each one's plain who-am-I call. */
export type SweepFixture = {
  store: Awaited<ReturnType<typeof openStore>>;
  connectors: Record<ProviderId, ConnectorLifecycle>;
  urls: Record<ProviderId, string>;
  records: ConnectionRecord[];
  calls: { url: string; init: RequestInit }[];
  /** Providers whose connections were all made through the SDK: the vault cannot be given them as the SDK stores them (Stripe's metadata names each key's own account). */
  throughSdk: ProviderId[];
  /** The sandbox host's CPU reading (threadCpu.ts). */
  sandboxCpu(): Promise<CpuReading>;
  close(): Promise<void>;
};

/** Starts the sandbox host and the SDK, seeds `count` connections round-robin over `providers`, then sets every sandbox's latency. */
export async function sweepFixture(options: { count: number; providers?: readonly ProviderId[]; latencyMs: number }): Promise<SweepFixture> {
  const providers = options.providers ?? PROVIDER_IDS;
  let host: Host | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-bench-sweep-"));
  const store = await openStore({ sqlitePath: join(dataDir, "autoflow.db"), keys: [randomBytes(32)] });
  const pools = createProviderPools();
  const close = async (): Promise<void> => {
    await stopHost(host);
    await pools.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    host = await startHost();
    const { settings, urls } = host;
    const integrations = createIntegrations({ vault: store.vault, sealer: store.keyring, settings, baseUrlAllowlist: host.baseUrlAllowlist, dispatcher: pools });
    // The fixture's own reads of the tokens go through a vault of their own, so the sweep finds
    // the service's vault as nothing but its own runs left it (no opened token kept for it here).
    const reader = new SqlVault(store.db, store.keyring, undefined, { keepRows: false });
    const connectors = connectorsById(integrations);
    // Linear counts requests per user: each key is a new member's, or 1,250 connections would share one user's hourly quota.
    const desk = (provider: ProviderId) => json(`${urls[provider]}/_sandbox/credentials`, "POST", provider === "linear" ? { member: true } : {});

    // One connection per provider through the SDK, the shape of the others; a second checks that shape.
    const templates = {} as Record<ProviderId, { record: ConnectionRecord; credential: Record<string, unknown> }>;
    const throughSdk = new Set<ProviderId>();
    const sdkConnect = async (provider: ProviderId, userId: string) => {
      const credential = await desk(provider);
      const made = await connectors[provider].connectApiKey({ userId, ...(connectFieldsOf(credential) as { apiKey?: string }) });
      const record = await store.vault.findConnection({ userId, provider, id: made.id });
      if (!record) throw new Error(`${provider}: the connection made is not stored`);
      if ((await reader.readSecrets(record)).accessToken !== tokenOf(credential)) throw new Error(`${provider}: the stored token is not the desk's`);
      return { record, credential };
    };
    const shape = (r: Pick<ConnectionRecord, "authMethod" | "scopes" | "metadata" | "baseUrl" | "tokenRefreshStatus" | "tokenMasked">) =>
      ({ authMethod: r.authMethod, scopes: r.scopes, metadata: r.metadata, baseUrl: r.baseUrl, tokenRefreshStatus: r.tokenRefreshStatus, tokenMasked: r.tokenMasked });
    for (const [index, provider] of providers.entries()) {
      const template = await sdkConnect(provider, `bench-user-${index}`);
      templates[provider] = template;
      const check = await sdkConnect(provider, `bench-user-${index + providers.length}`);
      if (!isDeepStrictEqual(shape(likeTemplate(template, check.credential, check.record.userId)), shape(check.record))) throughSdk.add(provider);
    }
    // The rest round-robin over the providers, each with a credential of its own: through the vault, or the SDK.
    const made = 2 * providers.length;
    const providerOf = (i: number): ProviderId => providers[i % providers.length] as ProviderId;
    const userOf = (i: number): string => `bench-user-${(i + made) % USERS}`;
    await eachLimited(options.count - made, 32, async (i) => {
      const provider = providerOf(i);
      if (throughSdk.has(provider)) await sdkConnect(provider, userOf(i));
      else await store.vault.createConnection(likeTemplate(templates[provider], await desk(provider), userOf(i)));
    });

    // Every answer late, at every sandbox.
    for (const url of Object.values(urls)) await json(`${url}/_sandbox/latency`, "PUT", { latencyMs: options.latencyMs });

    // The plain client's calls: each connection's who-am-I request, as the connector builds it.
    const records: ConnectionRecord[] = [];
    for (let after: string | undefined; ; ) {
      const page = await store.vault.scanConnections({ limit: 1000, ...(after ? { afterId: after } : {}) });
      records.push(...page);
      if (page.length < 1000) break;
      after = page[page.length - 1]?.id;
    }
    if (records.length !== options.count) throw new Error(`${records.length} connections stored, not ${options.count}`);
    const calls = await Promise.all(
      records.map(async (record) => {
        const definition = CONNECTORS[record.provider as ProviderId].definition;
        const providerSettings = settings[record.provider as ProviderId];
        const { accessToken } = await reader.readSecrets(record);
        const credential = { accessToken, authMethod: record.authMethod, metadata: record.metadata, scopes: record.scopes, ...(record.baseUrl ? { baseUrl: record.baseUrl } : {}) };
        const request = toProviderRequest(definition, providerSettings, credential, definition.whoAmI.request(credential, providerSettings));
        const body = request.form ? new URLSearchParams(Object.entries(request.form).filter((e): e is [string, string] => e[1] !== undefined)).toString() : request.json !== undefined ? JSON.stringify(request.json) : request.body;
        const headers = { accept: "application/json", ...request.headers, ...(request.form ? { "content-type": "application/x-www-form-urlencoded" } : request.json !== undefined ? { "content-type": "application/json" } : {}) };
        return { url: request.url, init: { method: request.method, headers, ...(body === undefined ? {} : { body }) } as RequestInit };
      }),
    );

    return { store, connectors, urls, records, calls, throughSdk: [...throughSdk], sandboxCpu: host.cpu, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * A case's run: its time, and the CPU time (µs) spent on each call by this process and by the sandbox
 * host, on all their threads and on their main ones (NaN where a main thread's cannot be read).
 */
type Run = { ms: number; clientMicros: number; sandboxMicros: number; clientMainMicros: number; sandboxMainMicros: number };

export async function healthSweepBench(): Promise<Figure[]> {
  const fixture = await sweepFixture({ count: CONNECTIONS, latencyMs: LATENCY_MS });
  const { store, connectors, calls } = fixture;
  const plainPools = createProviderPools();
  /** `work`'s time, and the CPU time each side spent on it, a call. */
  const measuredRun = async (work: () => Promise<void>): Promise<Run> => {
    const sandboxBefore = await fixture.sandboxCpu();
    const clientBefore = readCpu();
    const started = performance.now();
    await work();
    const ms = performance.now() - started;
    const [client, sandbox] = [readCpu(), await fixture.sandboxCpu()];
    const perCall = (after: number, before: number) => (after - before) / CONNECTIONS;
    return {
      ms,
      clientMicros: perCall(client.all, clientBefore.all),
      sandboxMicros: perCall(sandbox.all, sandboxBefore.all),
      clientMainMicros: perCall(client.main, clientBefore.main),
      sandboxMainMicros: perCall(sandbox.main, sandboxBefore.main),
    };
  };
  try {
    const cases = {
      sweep: () =>
        measuredRun(async () => {
          const report = await healthSweep({ vault: store.vault, connectors, concurrency: CONCURRENCY });
          if (report.checked !== CONNECTIONS || report.ok !== CONNECTIONS) throw new Error(`the sweep checked ${report.checked} of ${CONNECTIONS}, ${report.ok} ok: ${JSON.stringify(report)}`);
        }),
      // The transport's floor: undici's request over pools like the service's, nothing else done.
      request: () =>
        measuredRun(async () => {
          let failed = 0;
          await eachLimited(calls.length, CONCURRENCY, async (i) => {
            const call = calls[i] as (typeof calls)[number];
            const answer = await request(call.url, { method: call.init.method as Dispatcher.HttpMethod, headers: call.init.headers as Record<string, string>, body: (call.init.body as string | undefined) ?? null, dispatcher: plainPools });
            await answer.body.text();
            if (answer.statusCode >= 300) failed++;
          });
          if (failed > 0) throw new Error(`${failed} of ${calls.length} plain who-am-I requests failed`);
        }),
      fetch: () =>
        measuredRun(async () => {
          let failed = 0;
          await eachLimited(calls.length, CONCURRENCY, async (i) => {
            const call = calls[i] as (typeof calls)[number];
            const res = await fetch(call.url, call.init);
            await res.text();
            if (!res.ok) failed++;
          });
          if (failed > 0) throw new Error(`${failed} of ${calls.length} plain who-am-I calls failed`);
        }),
    };
    const measured = await interleaved(cases, (run) => run.ms);
    const ms = (key: keyof typeof cases) => Math.round(measured[key].median);
    const rounds = (key: keyof typeof cases) => measured[key].runs.map(Math.round).join(", ");
    // CPU a call: the median over the same rounds (the warm-up left out, as for the times).
    const cpu = (key: keyof typeof cases, side: Exclude<keyof Run, "ms">) => Math.round(median(measured[key].results.map((run) => run[side])));
    // No sweep of these calls runs faster here than the CPU they take: each side's main thread (the
    // JavaScript that must run one piece at a time, where it can be read), and both sides' threads
    // together on the machine's cores (the sandboxes answer on the same ones).
    const cores = availableParallelism();
    const plainClient = cpu("request", "clientMicros");
    const plainSandbox = cpu("request", "sandboxMicros");
    const plainClientMain = cpu("request", "clientMainMicros");
    const plainSandboxMain = cpu("request", "sandboxMainMicros");
    const serial = [plainClientMain, plainSandboxMain].filter(Number.isFinite);
    const boundMs = Math.round((CONNECTIONS * Math.max(...serial, (plainClient + plainSandbox) / cores)) / 1000);
    const mainThreads = serial.length === 2 ? `each side's main thread (here ${plainClientMain} µs, the sandboxes' ${plainSandboxMain} µs) and ` : "";
    const beyondReach = boundMs / IDEAL_MS > 1.3 ? `; this machine's bound is ${(boundMs / IDEAL_MS).toFixed(2)}x, so the target is out of its reach` : "";
    const ideal = { name: `ideal: ${Math.ceil(CONNECTIONS / CONCURRENCY)} rounds × ${LATENCY_MS} ms`, value: IDEAL_MS };
    const sdkMade = fixture.throughSdk.length > 0 ? `${fixture.throughSdk.join(", ")} connected through the SDK, the others stored as it stores them` : "stored as the SDK stores them";
    return [
      figure({ section: "sweep", name: "health sweep: plain undici request", value: ms("request"), unit: "ms", baseline: ideal, better: "lower", note: `the same calls over keep-alive pools, nothing else done; CPU a call ${plainClient} µs here, ${plainSandbox} µs in the sandboxes; rounds ${rounds("request")} ms` }),
      figure({
        section: "sweep",
        name: "health sweep: this machine's bound",
        value: boundMs,
        unit: "ms",
        baseline: ideal,
        better: "lower",
        note: `the CPU plain undici's calls take: ${CONNECTIONS.toLocaleString("en-US")} × the largest of ${mainThreads}both sides' ${plainClient + plainSandbox} µs on all threads over ${cores} cores; no sweep of these calls is faster here`,
      }),
      figure({ section: "sweep", name: "health sweep: plain fetch", value: ms("fetch"), unit: "ms", baseline: ideal, better: "lower", note: `the same who-am-I calls; rounds ${rounds("fetch")} ms` }),
      figure({ section: "sweep", name: "health sweep: healthSweep", value: ms("sweep"), unit: "ms", baseline: ideal, better: "lower", limit: 1.3, target: "≤ 1.3x of the ideal", note: `10,000 checked, all ok (${sdkMade}); rounds ${rounds("sweep")} ms${beyondReach}` }),
      figure({ section: "sweep", name: "health sweep: healthSweep beside plain undici request", value: ms("sweep"), unit: "ms", baseline: { name: "plain undici request, same calls", value: ms("request") }, better: "lower", note: "what the job adds to its own transport" }),
      figure({
        section: "sweep",
        name: "health sweep: healthSweep's CPU a check",
        value: cpu("sweep", "clientMicros"),
        unit: "µs",
        baseline: { name: "plain undici request's, same calls", value: plainClient },
        better: "lower",
        note: `what the job spends on a check (token opened, call paced, answer read, health recorded); the sandboxes ${cpu("sweep", "sandboxMicros")} µs`,
      }),
      figure({ section: "sweep", name: "health sweep: healthSweep beside plain fetch", value: ms("sweep"), unit: "ms", baseline: { name: "plain fetch, same calls", value: ms("fetch") }, better: "lower", note: "what the job adds to sending the calls" }),
    ];
  } finally {
    await plainPools.close();
    await fixture.close();
  }
}
