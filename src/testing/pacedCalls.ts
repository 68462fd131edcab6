/**
 * Many proxied calls through several service instances against one sandbox
 * that enforces a rate, as a workflow engine would send them: a fixed number
 * in flight, spread over the instances. What the sandbox let through and
 * what it refused with its provider's 429 come from its own counts. The
 * pacing test asserts on it; `npm run bench` reports the rate achieved.
 */
import type { ProviderId } from "../integrations/registry.js";
import { apiOf, connectWithKey, sandboxUrls } from "./connectAll.js";
import type { InstancePair } from "./instancePair.js";
import type { Instance } from "./processes.js";

export type PacedRun = {
  calls: number;
  /** Answers by HTTP status, as the callers saw them. */
  statuses: Record<number, number>;
  elapsedMs: number;
  /** What the sandbox counted since its rate was set. */
  sandbox: { served: number; limited: number };
};

/** The instances' own per-user limit is not what is measured. */
export const PACED_CALLER_ENV: NodeJS.ProcessEnv = { AUTOFLOW_RATE_LIMIT_PER_MINUTE: "1000000" };

/**
 * Connects one account, sets the sandbox's rate, and sends `calls` proxied
 * who-am-I calls (`path`), `inFlight` at a time, alternating between the
 * instances.
 */
export async function runPacedCalls(
  pair: InstancePair,
  options: { provider: ProviderId; path: string; calls: number; inFlight: number; rate: { requests: number; windowMs: number } },
): Promise<PacedRun> {
  const { instances, token } = pair;
  const first = instances[0] as Instance;
  const sandboxUrl = (await sandboxUrls(first.base, token))[options.provider];
  await connectWithKey(options.provider, token, first.base, sandboxUrl);
  const control = (method: string, body?: unknown) =>
    fetch(`${sandboxUrl}/_sandbox/rate-limit`, { method, headers: { "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const set = await control("PUT", options.rate);
  if (!set.ok) throw new Error(`setting the sandbox rate answered ${set.status}: ${await set.text()}`);
  const statuses: Record<number, number> = {};
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next++; i < options.calls; i = next++) {
      const instance = instances[i % instances.length] as Instance;
      const { status } = await apiOf(instance.base, token)("POST", `/api/integrations/${options.provider}/proxy`, { method: "GET", path: options.path });
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  const elapsedMs = performance.now() - started;
  const counted = (await (await control("GET")).json()) as { served: number; limited: number };
  await control("DELETE");
  return { calls: options.calls, statuses, elapsedMs, sandbox: { served: counted.served, limited: counted.limited } };
}
