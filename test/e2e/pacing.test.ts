/**
 * Pacing across instances: 1,000 proxied calls through two instances on one
 * PostgreSQL, against a sandbox that allows 50 requests a second. Every
 * call succeeds, and the instances, sharing the account's budget through
 * the database, hold back before the provider says 429: at most 1% of the
 * sandbox's answers are its throttle. (The rate achieved is `npm run
 * bench`'s to report, not asserted here.)
 *
 * Needs PostgreSQL (CI has it): without one this file has nothing to test.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { killStartedInstances } from "../../src/testing/processes.js";
import { startInstancePair, type InstancePair } from "../../src/testing/instancePair.js";
import { PACED_CALLER_ENV, runPacedCalls } from "../../src/testing/pacedCalls.js";

const postgresUrl = inject("postgresUrl");

describe.runIf(postgresUrl)("pacing ahead of the provider's limit, shared by two instances", () => {
  let pair: InstancePair;
  beforeAll(async () => {
    pair = await startInstancePair(postgresUrl as string, PACED_CALLER_ENV);
  }, 90_000);
  afterAll(async () => {
    await pair?.close();
    killStartedInstances();
  });

  it("queues 1,000 proxied calls at 50 requests a second: all succeed, at most 1% of the sandbox's answers are 429", async () => {
    const run = await runPacedCalls(pair, { provider: "sentry", path: "/api/0/organizations/", calls: 1000, inFlight: 20, rate: { requests: 50, windowMs: 1000 } });
    expect(run.statuses).toEqual({ 200: 1000 });
    // Every call reached the sandbox at least once; a throttled one was tried again.
    expect(run.sandbox.served).toBe(1000);
    expect(run.sandbox.limited).toBeLessThanOrEqual(Math.floor((run.sandbox.served + run.sandbox.limited) / 100));
  }, 120_000);
});
