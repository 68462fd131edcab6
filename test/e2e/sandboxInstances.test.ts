/**
 * Two instances in sandbox mode on one PostgreSQL, as behind a load
 * balancer: one process serves each sandbox from the state in the database,
 * the other uses it, so a flow begun on one instance completes on the other
 * and both serve every connection; when the serving instance dies, the other
 * takes its sandboxes over and nothing is lost.
 *
 * Needs PostgreSQL (CI has it): without one this file has nothing to test.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PROVIDER_IDS } from "../../src/integrations/registry.js";
import { mintUserToken } from "../../src/server/auth.js";
import { allOk, checkAll, connectWithKey, connectWithOAuth, sandboxUrls, type MadeConnection } from "../../src/testing/connectAll.js";
import { dropSchema, newSchemaName } from "../../src/testing/databases.js";
import { freePort, freePortBlock, killStartedInstances, startInstance, stopInstance, type Instance } from "../../src/testing/processes.js";

const postgresUrl = inject("postgresUrl");

describe.runIf(postgresUrl)("two instances in sandbox mode on one PostgreSQL", () => {
  const schema = postgresUrl ? newSchemaName() : "";
  const jwtSecret = randomBytes(32).toString("base64url");
  const dirs = [mkdtempSync(join(tmpdir(), "autoflow-sbx-a-")), mkdtempSync(join(tmpdir(), "autoflow-sbx-b-"))];
  let a: Instance;
  let b: Instance;
  let token: string;
  const connections: MadeConnection[] = [];

  beforeAll(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const shared: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: postgresUrl,
      AUTOFLOW_DATABASE_SCHEMA: schema,
      // What users reach: one public address (a load balancer), here instance A's.
      AUTOFLOW_PUBLIC_URL: `http://localhost:${portA}`,
      AUTOFLOW_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      AUTOFLOW_JWT_SECRET: jwtSecret,
      AUTOFLOW_SANDBOX_BASE_PORT: String(await freePortBlock(8)),
      AUTOFLOW_LOG_LEVEL: "warn",
      AUTOFLOW_JOBS: "off",
    };
    // Both start together: each sandbox ends up served by exactly one of them.
    [a, b] = await Promise.all([
      startInstance({ ...shared, AUTOFLOW_DATA_DIR: dirs[0] }, portA),
      startInstance({ ...shared, AUTOFLOW_DATA_DIR: dirs[1] }, portB),
    ]);
    token = await mintUserToken(jwtSecret, "alice");
  }, 90_000);

  afterAll(async () => {
    await Promise.all([stopInstance(a), stopInstance(b)]);
    killStartedInstances();
    if (schema) await dropSchema(schema);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
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
