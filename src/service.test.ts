/**
 * Start-up refuses a key set that cannot read what the database holds: on
 * PostgreSQL without AUTOFLOW_ENCRYPTION_KEY (a key per instance would make
 * instances unable to read each other), and on either database when stored
 * data keys are wrapped under a key this instance lacks, naming those keys.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, type ServiceConfig } from "./config.js";
import { createLogger } from "./server/logging.js";
import { startService } from "./service.js";
import { Keyring } from "./store/index.js";
import { KEY_FILE_NAME } from "./store/keyFile.js";
import { dropSchema, newSchemaName, postgresUrl, testDatabases, type TestDatabase } from "./testing/databases.js";
import { startHarness, testServiceConfig } from "./testing/harness.js";
import { PROVIDER_IDS } from "./integrations/registry.js";

const dirs: string[] = [];
const schemas: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const schema of schemas.splice(0)) await dropSchema(schema);
});

function configFor(database: TestDatabase, overrides: Partial<ServiceConfig> & { schema?: string } = {}): ServiceConfig {
  const { schema, ...rest } = overrides;
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-start-"));
  dirs.push(dataDir);
  return testServiceConfig({
    dataDir,
    ...(database === "postgres" ? { databaseUrl: postgresUrl(), databaseSchema: schema ?? newSchemaName() } : {}),
    ...rest,
  });
}

const start = (config: ServiceConfig) => startService(config, { logger: createLogger("silent") });
const keyId = (key: Buffer) => new Keyring([key]).activeKeyId;

/** Starts a service on `config`, stores one connection through its vault, and stops it. */
async function storeOneConnection(config: ServiceConfig): Promise<void> {
  const service = await start(config);
  try {
    await service.store.vault.createConnection({
      userId: "alice",
      provider: "slack",
      authMethod: "oauth2",
      tokenMasked: "xoxb****abcd",
      scopes: [],
      metadata: { teamId: "T1" },
      accessToken: `xoxb-${randomBytes(8).toString("hex")}`,
      tokenRefreshStatus: "not_applicable",
      createdAt: new Date().toISOString(),
    });
  } finally {
    await service.close();
  }
}

describe("the call path's settings", () => {
  it("reads the proxy's bounds, pacing and the sandboxes' rate, and names a bad value", () => {
    const config = loadConfig({ AUTOFLOW_PROXY_MAX_REQUEST_BYTES: "2048", AUTOFLOW_PROXY_MAX_RESPONSE_BYTES: "4096", AUTOFLOW_PACING: "off", AUTOFLOW_SANDBOX_RATE_LIMIT: "50/1s" });
    expect(config).toMatchObject({ proxyLimits: { maxRequestBytes: 2048, maxResponseBytes: 4096 }, pacing: false, sandboxRateLimit: { requests: 50, windowMs: 1000 } });
    expect(loadConfig({ AUTOFLOW_SANDBOX_RATE_LIMIT: "600/1m" }).sandboxRateLimit).toEqual({ requests: 600, windowMs: 60_000 });
    expect(loadConfig({})).toMatchObject({ pacing: true, proxyLimits: { maxRequestBytes: 1024 * 1024, maxResponseBytes: 10 * 1024 * 1024 } });
    expect(loadConfig({}).sandboxRateLimit).toBeUndefined();
    expect(() => loadConfig({ AUTOFLOW_SANDBOX_RATE_LIMIT: "50 per second" })).toThrow(/AUTOFLOW_SANDBOX_RATE_LIMIT.*<requests>\/<window>/);
    expect(() => loadConfig({ AUTOFLOW_PACING: "maybe" })).toThrow(/AUTOFLOW_PACING/);
    expect(() => loadConfig({ AUTOFLOW_PROXY_MAX_REQUEST_BYTES: "10" })).toThrow(/AUTOFLOW_PROXY_MAX_REQUEST_BYTES/);
  });

  it("has every sandbox enforce AUTOFLOW_SANDBOX_RATE_LIMIT with its provider's answer", async () => {
    const h = await startHarness({ config: { sandboxRateLimit: { requests: 3, windowMs: 60_000 } } });
    try {
      for (const provider of PROVIDER_IDS) {
        const state = (await (await fetch(`${h.sandboxUrl(provider)}/_sandbox/rate-limit`)).json()) as Record<string, unknown>;
        expect(state.rateLimit, provider).toEqual({ requests: 3, windowMs: 60_000 });
      }
    } finally {
      await h.close();
    }
  });
});

describe("on PostgreSQL without AUTOFLOW_ENCRYPTION_KEY", () => {
  it("loadConfig reports the variable as required", () => {
    const attempt = () => loadConfig({ DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test" });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/AUTOFLOW_ENCRYPTION_KEY: required with DATABASE_URL/);
    expect(() => loadConfig({ DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test", AUTOFLOW_ENCRYPTION_KEY: randomBytes(32).toString("base64") })).not.toThrow();
  });

  if (testDatabases().includes("postgres")) {
    it("the service refuses to start, naming the variable, and generates no key of its own", async () => {
      const schema = newSchemaName();
      schemas.push(schema);
      const config = configFor("postgres", { schema });
      const error = await start(config).then(
        async (service) => (await service.close(), undefined),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/AUTOFLOW_ENCRYPTION_KEY/);
      expect(existsSync(join(config.dataDir, KEY_FILE_NAME))).toBe(false);
    });
  }
});

describe.each(testDatabases())("on %s, stored data under a key this instance lacks", (database) => {
  it("refuses the start, naming the missing key id; with that key as an old one it starts", async () => {
    const schema = newSchemaName();
    if (database === "postgres") schemas.push(schema);
    const [first, second] = [randomBytes(32), randomBytes(32)];
    const one = configFor(database, { schema, encryptionKey: first.toString("base64") });
    await storeOneConnection(one);

    // Another instance (or the same one after its key changed) with a key of its own, on the same data.
    const other: ServiceConfig = { ...one, encryptionKey: second.toString("base64") };
    const error = await start(other).then(
      async (service) => (await service.close(), undefined),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(keyId(first));
    expect((error as Error).message).toMatch(/refusing to start/);

    const withOld = await start({ ...other, encryptionKeysOld: [first.toString("base64")] });
    await withOld.close();
  });
});

describe("on SQLite, a data folder whose generated key was replaced", () => {
  it("refuses the start, naming the key the stored connections need", async () => {
    const config = configFor("sqlite");
    await storeOneConnection(config);
    const original = Buffer.from(readFileSync(join(config.dataDir, KEY_FILE_NAME), "utf8").trim(), "base64");
    rmSync(join(config.dataDir, KEY_FILE_NAME));
    const error = await start(config).then(
      async (service) => (await service.close(), undefined),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(keyId(original));
  });
});
