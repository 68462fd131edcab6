/**
 * Test harness: the whole service (SQLite in a temporary folder, every
 * connector on its own loopback sandbox) driven through its HTTP API with
 * `app.inject`, plus a virtual clock so retry waits and state expiry cost no
 * real time.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LightMyRequestResponse } from "fastify";
import type { ServiceConfig } from "../config.js";
import { PROVIDER_IDS, type ProviderId } from "../integrations/registry.js";
import type { Clock } from "../integrations/shared/http.js";
import { startService, type Service } from "../service.js";
import { mintUserToken } from "../server/auth.js";
import { createLogger } from "../server/logging.js";
import { DEFAULT_JOB_SETTINGS } from "../jobs/settings.js";
import { DEFAULT_LIMITS } from "../server/limits.js";
import { dropSchema, newSchemaName, postgresUrl, type TestDatabase } from "./databases.js";

/** A clock whose sleeps return at once and move its time forward instead. */
export class VirtualClock implements Clock {
  offsetMs = 0;
  readonly sleeps: number[] = [];
  now(): number {
    return Date.now() + this.offsetMs;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.offsetMs += ms;
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/**
 * The `Cookie` header a browser would send back from the `Set-Cookie`
 * headers of `response`: each cookie's name=value, those being cleared
 * (Max-Age=0) left out. Paths are not checked: callers send it where it
 * belongs (the OAuth callback).
 */
export function cookieHeader(setCookie: string | string[] | number | undefined): string {
  const lines = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [String(setCookie)];
  return lines
    .filter((line) => !/;\s*max-age=0\s*(;|$)/i.test(line))
    .map((line) => line.split(";")[0]?.trim() ?? "")
    .filter((pair) => pair.includes("="))
    .join("; ");
}

export const TEST_JWT_SECRET = "test-secret-that-is-at-least-32-characters-long";
export const PUBLIC_URL = "http://localhost:3000";

export type Harness = {
  service: Service;
  clock: VirtualClock;
  /** Every response body the harness saw, for leak checks. */
  responses: string[];
  token(userId: string): Promise<string>;
  request(input: { method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"; url: string; user?: string; body?: unknown; headers?: Record<string, string> }): Promise<LightMyRequestResponse>;
  sandboxUrl(provider: ProviderId): string;
  /** POSTs to the provider sandbox's control plane. */
  sandbox(provider: ProviderId, path: string, init?: { method?: string; body?: unknown }): Promise<unknown>;
  sandboxRequests(provider: ProviderId): Promise<{ method: string; path: string; time: string; status?: number }[]>;
  close(): Promise<void>;
};

/**
 * The configuration a test service runs with: loopback, free ports, silent,
 * every connector on its sandbox, no jobs, a small pool; no encryption key
 * (the caller sets one, or tests what happens without).
 */
export function testServiceConfig(overrides: Partial<ServiceConfig> & { dataDir: string }): ServiceConfig {
  return {
    port: 0,
    host: "127.0.0.1",
    publicUrl: PUBLIC_URL,
    jwtSecret: TEST_JWT_SECRET,
    encryptionKeysOld: [],
    logLevel: "silent",
    providerTimeoutMs: 2_000,
    sandboxBasePort: 0,
    providers: Object.fromEntries(PROVIDER_IDS.map((id) => [id, {}])) as ServiceConfig["providers"],
    // A small pool: many harnesses share one test server's connection limit.
    databasePoolSize: 3,
    baseUrlAllowlist: [],
    oauthReturnUrls: [],
    limits: DEFAULT_LIMITS,
    // Tests ask what a probe sees now; the stored answer within a max age is tested on its own (healthAge.test.ts).
    healthMaxAgeSeconds: 0,
    jobs: false,
    jobSettings: DEFAULT_JOB_SETTINGS,
    ...overrides,
  };
}

export async function startHarness(
  options: {
    providerTimeoutMs?: number;
    config?: Partial<ServiceConfig>;
    sandboxOptions?: Partial<Record<ProviderId, Record<string, unknown>>>;
    /** SQLite in a temporary folder (default), or a fresh schema of the run's PostgreSQL. */
    database?: TestDatabase;
    /** Collects every log line, written at debug level through the service's own (redacting) logger. */
    logLines?: string[];
    /** False: sandboxes in memory only, for tests of thousands of sandbox writes that restart nothing. */
    sandboxPersistence?: boolean;
  } = {},
): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-test-"));
  const schema = options.database === "postgres" ? newSchemaName() : undefined;
  const clock = new VirtualClock();
  const config: ServiceConfig = {
    ...testServiceConfig({ dataDir, providerTimeoutMs: options.providerTimeoutMs ?? 2_000, ...(schema ? { databaseUrl: postgresUrl(), databaseSchema: schema } : {}) }),
    encryptionKey: Buffer.alloc(32, 7).toString("base64"),
    ...options.config,
  };
  const service = await startService(config, {
    logger: options.logLines
      ? createLogger("debug", { write: (line: string) => void options.logLines?.push(line) })
      : createLogger("silent"),
    clock,
    ...(options.sandboxOptions ? { sandboxOptions: options.sandboxOptions } : {}),
    ...(options.sandboxPersistence === false ? { sandboxPersistence: false } : {}),
  });
  const responses: string[] = [];
  const tokens = new Map<string, string>();
  const token = async (userId: string): Promise<string> => {
    let t = tokens.get(userId);
    if (!t) {
      t = await mintUserToken(TEST_JWT_SECRET, userId);
      tokens.set(userId, t);
    }
    return t;
  };
  const sandboxUrl = (provider: ProviderId): string => {
    const url = service.sandboxes[provider]?.url;
    if (!url) throw new Error(`${provider} has no sandbox`);
    return url;
  };
  return {
    service,
    clock,
    responses,
    token,
    async request(input) {
      const headers: Record<string, string> = { ...input.headers };
      if (input.user) headers.authorization = `Bearer ${await token(input.user)}`;
      const response = await service.app.inject({
        method: input.method,
        url: input.url,
        headers,
        ...(input.body === undefined ? {} : { payload: input.body as string | object }),
      });
      responses.push(response.body);
      return response;
    },
    sandboxUrl,
    async sandbox(provider, path, init) {
      const response = await fetch(`${sandboxUrl(provider)}${path}`, {
        method: init?.method ?? "POST",
        ...(init?.body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(init.body) }),
      });
      if (response.status >= 400) throw new Error(`sandbox ${path} answered ${response.status}: ${await response.text()}`);
      return response.json();
    },
    async sandboxRequests(provider) {
      const body = (await (await fetch(`${sandboxUrl(provider)}/_sandbox/requests`)).json()) as { requests: { method: string; path: string; time: string; status?: number }[] };
      return body.requests;
    },
    async close() {
      await service.close();
      rmSync(dataDir, { recursive: true, force: true });
      if (schema) await dropSchema(schema);
    },
  };
}
