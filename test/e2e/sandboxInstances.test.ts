/**
 * Two instances in sandbox mode on one PostgreSQL, as behind a load
 * balancer: one process serves each sandbox from the state in the database,
 * the other uses it, so a flow begun on one instance completes on the other
 * and both serve every connection; when the serving instance dies, the other
 * takes its sandboxes over and nothing is lost.
 *
 * Needs PostgreSQL (CI has it): without one this file has nothing to test.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PROVIDER_IDS } from "../../src/integrations/registry.js";
import { allOk, checkAll, connectWithKey, connectWithOAuth, sandboxUrls, type MadeConnection } from "../../src/testing/connectAll.js";
import { startInstancePair, type InstancePair } from "../../src/testing/instancePair.js";
import { killStartedInstances, stopInstance, type Instance } from "../../src/testing/processes.js";

const postgresUrl = inject("postgresUrl");

describe.runIf(postgresUrl)("two instances in sandbox mode on one PostgreSQL", () => {
  let pair: InstancePair;
  let a: Instance;
  let b: Instance;
  let token: string;
  const connections: MadeConnection[] = [];

  beforeAll(async () => {
    // Both start together: each sandbox ends up served by exactly one of them.
    pair = await startInstancePair(postgresUrl as string);
    [a, b] = pair.instances as [Instance, Instance];
    token = pair.token;
  }, 90_000);

  afterAll(async () => {
    await pair?.close();
    killStartedInstances();
  });

  it("lists the same sandboxes on both instances", async () => {
    expect(await sandboxUrls(b.base, token)).toEqual(await sandboxUrls(a.base, token));
  });

  it("completes on one instance every flow begun on the other, and both serve every connection", async () => {
    const urls = await sandboxUrls(a.base, token);
    for (const [i, provider] of PROVIDER_IDS.entries()) {
      const [first, second] = i % 2 === 0 ? [a, b] : [b, a];
      connections.push(await connectWithOAuth(provider, token, first.base, second.base));
      connections.push(await connectWithKey(provider, token, second.base, urls[provider]));
    }
    expect(await checkAll(a.base, token, connections)).toEqual(allOk(connections));
    expect(await checkAll(b.base, token, connections)).toEqual(allOk(connections));
  }, 90_000);

  it("keeps every connection working on the survivor when one instance dies", async () => {
    await stopInstance(a, "SIGKILL");
    // The survivor takes the dead instance's sandboxes over within a few seconds.
    let lines: string[] = [];
    for (let i = 0; i < 40; i++) {
      lines = await checkAll(b.base, token, connections);
      if (JSON.stringify(lines) === JSON.stringify(allOk(connections))) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(lines, b.output()).toEqual(allOk(connections));
  }, 90_000);
});
