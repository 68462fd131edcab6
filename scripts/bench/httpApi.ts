/**
 * The HTTP API against the floor a bare Fastify route sets in the same
 * process: req/s and p99 of GET health, GET connections, POST proxy and an
 * action, load from a separate process, the service at its default log
 * level (written to a file, as a service's logs go somewhere). The floor is
 * Fastify logging at the same level to the same kind of file (its own two
 * lines a request); a bare route with logging off is shown beside it.
 *
 * RSS: the process's resident memory idle, then after a collection at the
 * end of the warm-up and of each round: flat when the last is within 10% of
 * the first after warm-up.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import pino from "pino";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/server/logging.js";
import { mintUserToken } from "../../src/server/auth.js";
import { startService } from "../../src/service.js";
import { collectGarbage, figure, interleaved, load, type Figure, type Load } from "./compare.js";

const DURATION_S = 3;
const CONNECTIONS = 10;

export async function httpApi(): Promise<Figure[]> {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-bench-http-"));
  const config = {
    ...loadConfig({ AUTOFLOW_DATA_DIR: dataDir, AUTOFLOW_JWT_SECRET: randomBytes(32).toString("hex"), PORT: "0", AUTOFLOW_SANDBOX_BASE_PORT: "0", AUTOFLOW_RATE_LIMIT_PER_MINUTE: "1000000" }),
    jobs: false,
  };
  const logFile = pino.destination({ dest: join(dataDir, "service.log"), sync: false });
  const service = await startService(config, { logger: createLogger(config.logLevel, logFile), listen: true });
  const bare = Fastify({ logger: { level: config.logLevel, stream: pino.destination({ dest: join(dataDir, "bare.log"), sync: false }) } });
  bare.get("/bare", async () => ({ status: "ok" }));
  const bareUrl = await bare.listen({ host: "127.0.0.1", port: 0 });
  const silent = Fastify();
  silent.get("/bare", async () => ({ status: "ok" }));
  const silentUrl = await silent.listen({ host: "127.0.0.1", port: 0 });
  try {
    const bearer = `Bearer ${await mintUserToken(service.jwtSecret as string, "bench")}`;
    const desk = (await (await fetch(`${service.sandboxes.stripe?.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as { apiKey: string };
    const connected = await fetch(`${service.url}/api/integrations/stripe/connections`, {
      method: "POST",
      headers: { authorization: bearer, "content-type": "application/json" },
      body: JSON.stringify({ apiKey: desk.apiKey }),
    });
    if (connected.status !== 201) throw new Error(`connecting Stripe answered ${connected.status}: ${await connected.text()}`);
    const json = { authorization: bearer, "content-type": "application/json" };
    const run = (path: string, method = "GET", body?: unknown) => () =>
      load({ url: `${service.url}${path}`, method, headers: json, ...(body === undefined ? {} : { body: JSON.stringify(body) }), connections: CONNECTIONS, duration: DURATION_S });
    const cases = {
      unlogged: () => load({ url: `${silentUrl}/bare`, connections: CONNECTIONS, duration: DURATION_S }),
      bare: () => load({ url: `${bareUrl}/bare`, connections: CONNECTIONS, duration: DURATION_S }),
      health: run("/api/integrations/stripe/health"),
      connections: run("/api/integrations/stripe/connections"),
      proxy: run("/api/integrations/stripe/proxy", "POST", { method: "GET", path: "/v1/customers", query: { limit: "1" } }),
      action: run("/api/integrations/stripe/actions/listCustomers", "POST", { limit: 1 }),
    };
    const mb = () => Number((process.memoryUsage().rss / 2 ** 20).toFixed(1));
    collectGarbage();
    const idleRss = mb();
    const rss: number[] = [];
    const measured = await interleaved(cases, (r: Load) => r.rps, {
      afterRound: () => {
        collectGarbage();
        rss.push(mb());
      },
    });
    const p99 = (name: keyof typeof cases) => measured[name].last.p99;
    const base = { name: `a bare Fastify route, same process, logging at ${config.logLevel}`, value: Math.round(measured.bare.median) };
    const out: Figure[] = [
      figure({ section: "http", name: `bare Fastify route, logging at ${config.logLevel}`, value: base.value, unit: "req/s", note: `p99 ${p99("bare")} ms` }),
      figure({ section: "http", name: "bare Fastify route, logging off", value: Math.round(measured.unlogged.median), unit: "req/s", note: `p99 ${p99("unlogged")} ms` }),
    ];
    const targets: Record<string, { limit?: number; name: string }> = {
      health: { name: "GET .../stripe/health", limit: 0.3 },
      connections: { name: "GET .../stripe/connections", limit: 0.5 },
      proxy: { name: "POST .../stripe/proxy (GET /v1/customers)" },
      action: { name: "POST .../stripe/actions/listCustomers" },
    };
    for (const key of ["health", "connections", "proxy", "action"] as const) {
      const target = targets[key] as { limit?: number; name: string };
      const failed = measured[key].last.non2xx + measured[key].last.errors;
      out.push(
        figure({
          section: "http",
          name: target.name,
          value: Math.round(measured[key].median),
          unit: "req/s",
          baseline: base,
          better: "higher",
          ...(target.limit !== undefined ? { limit: target.limit, target: `≥ ${target.limit}x` } : {}),
          note: `p99 ${p99(key)} ms${failed ? `, ${failed} non-2xx or errors in the last round` : ""}`,
        }),
      );
    }
    const [afterWarmUp, ...afterRounds] = rss as [number, ...number[]];
    out.push(
      figure({ section: "http", name: "RSS idle", value: idleRss, unit: "MB" }),
      figure({
        section: "http",
        name: "RSS after the last round",
        value: afterRounds.at(-1) as number,
        unit: "MB",
        baseline: { name: "RSS after the warm-up round", value: afterWarmUp },
        better: "lower",
        limit: 1.1,
        target: "flat (≤ 1.10x)",
        note: `after each round: ${rss.join(", ")} MB`,
      }),
    );
    return out;
  } finally {
    await silent.close();
    await bare.close();
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
