/**
 * Two service instances in sandbox mode on one PostgreSQL, as behind a load
 * balancer: each with a data folder of its own, both on one schema of their
 * own (dropped at close), the same keys and JWT secret, and the public
 * address of the first. One process serves each sandbox; the other uses it.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { mintUserToken } from "../server/auth.js";
import { freePort, freePortBlock, startInstance, stopInstance, type Instance } from "./processes.js";

export type InstancePair = { instances: Instance[]; token: string; close(): Promise<void> };

/** Two instances in sandbox mode on one PostgreSQL schema of their own (dropped at close); `env` added to both. */
export async function startInstancePair(postgresUrl: string, env: NodeJS.ProcessEnv = {}, user = "alice"): Promise<InstancePair> {
  const schema = `af_pair_${randomBytes(5).toString("hex")}`;
  const jwtSecret = randomBytes(32).toString("base64url");
  const dirs = [mkdtempSync(join(tmpdir(), "autoflow-pair-a-")), mkdtempSync(join(tmpdir(), "autoflow-pair-b-"))];
  const [portA, portB] = [await freePort(), await freePort()];
  const shared: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: postgresUrl,
    AUTOFLOW_DATABASE_SCHEMA: schema,
    AUTOFLOW_PUBLIC_URL: `http://localhost:${portA}`,
    AUTOFLOW_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    AUTOFLOW_JWT_SECRET: jwtSecret,
    AUTOFLOW_SANDBOX_BASE_PORT: String(await freePortBlock(8)),
    AUTOFLOW_LOG_LEVEL: "warn",
    AUTOFLOW_JOBS: "off",
    ...env,
  };
  const instances = await Promise.all([
    startInstance({ ...shared, AUTOFLOW_DATA_DIR: dirs[0] }, portA),
    startInstance({ ...shared, AUTOFLOW_DATA_DIR: dirs[1] }, portB),
  ]);
  const token = await mintUserToken(jwtSecret, user);
  return {
    instances,
    token,
    async close() {
      await Promise.all(instances.map((instance) => stopInstance(instance)));
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${schema}" cascade`);
        await client.query(`drop schema if exists "${schema}_jobs" cascade`);
      } finally {
        await client.end();
      }
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}

