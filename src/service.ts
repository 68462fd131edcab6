/**
 * Wires the service together: configuration, vault, sandboxes for the
 * connectors without credentials, the SDK and the HTTP server.
 */
import { createProviderPools } from "./integrations/shared/guardedFetch.js";
import { Pacer, type RateWindowStore } from "./integrations/shared/pacing.js";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { ConfigError, ENCRYPTION_KEY_REQUIRED, resolveSettings, type ServiceConfig } from "./config.js";
import { PROVIDER_IDS, type ProviderId } from "./integrations/registry.js";
import type { ConnectorSettings } from "./integrations/shared/connector.js";
import type { Clock, ProviderPacer } from "./integrations/shared/http.js";
import type { StartedSandbox } from "./sandbox/kit.js";
import { createTicketSync, type TicketSync } from "./integrations/jira/sync/ticketSync.js";
import { createTicketPush } from "./integrations/jira/sync/push.js";
import { startJobs } from "./jobs/index.js";
import { SqlTicketMirror } from "./store/ticketMirror.js";
import type { JobRunner } from "./jobs/runner.js";
import { createMetrics } from "./metrics.js";
import { connectorsById, createIntegrations, type Integrations } from "./sdk.js";
import { loadOrCreateJwtSecret } from "./secrets.js";
import { startServiceSandboxes } from "./serviceSandboxes.js";
import { buildServer } from "./server/app.js";
import { createUserVerifier, mintUserToken } from "./server/auth.js";
import { PAGE_RETURN_PATH } from "./server/pageRoutes.js";
import { loadKeyring, MissingEncryptionKeysError, openStore, pendingMigrations, ping, rateWindowsFor, type OpenedStore } from "./store/index.js";

export const SQLITE_FILE = "autoflow.db";

/** Who the page signs in as, in sandbox mode, without a JWT of one's own; and for how long. */
export const LOCAL_USER = "local";
const LOCAL_TOKEN_SECONDS = 8 * 3600;

export type Service = {
  app: FastifyInstance;
  /** The background jobs' runner, when jobs are on. */
  jobs?: JobRunner;
  integrations: Integrations;
  sandboxes: Partial<Record<ProviderId, StartedSandbox>>;
  store: OpenedStore;
  /** The Jira ticket sync (its routes are the server's; the scheduler runs `runDue`). */
  ticketSync: TicketSync;
  /** Every provider account's rate budget, as the pacer keeps it (in memory on SQLite, shared on PostgreSQL). */
  rateWindows: RateWindowStore;
  /** The pacer of every provider call (none with AUTOFLOW_PACING=off). */
  pacer?: Pacer;
  /** The HS256 secret, when user tokens may be HS256. */
  jwtSecret?: string;
  /** Where the server listens, once `listen` was asked for. */
  url?: string;
  close(): Promise<void>;
};

export type ServiceOptions = {
  logger: Logger;
  /** Bind the HTTP port (the CLI does; tests use `app.inject`). */
  listen?: boolean;
  clock?: Clock;
  fetch?: typeof fetch;
  /** Extra options per sandbox (token lifetime, rotation), for tests and demos. */
  sandboxOptions?: Partial<Record<ProviderId, Record<string, unknown>>>;
  /**
   * When another process on the same database serves a sandbox, stand by to
   * take it over once that process goes (the default). One-shot commands say
   * false: they use the running sandboxes and leave them be.
   */
  sandboxStandby?: boolean;
  /** False: the sandboxes keep their state in memory only (tests of thousands of sandbox writes that need no restart). */
  sandboxPersistence?: boolean;
};

export async function startService(config: ServiceConfig, options: ServiceOptions): Promise<Service> {
  const { logger } = options;
  // Instances on one PostgreSQL must share one key: a key each in its own data folder would make every
  // flow begun on one "not issued by this service" on the others, and every token one stores unreadable.
  if (config.databaseUrl && !config.encryptionKey) throw new ConfigError(ENCRYPTION_KEY_REQUIRED);
  const { keys } = loadKeyring({ envValue: config.encryptionKey, oldValues: config.encryptionKeysOld, dataDir: config.dataDir, log: (m) => logger.warn(m) });
  const store = await openStore({ ...storeLocation(config), keys }).catch((error: unknown) => {
    throw error instanceof MissingEncryptionKeysError ? new ConfigError(`refusing to start: ${error.message}`, { cause: error }) : error;
  });
  logger.info({ database: store.dialect }, store.dialect === "postgres" ? "using PostgreSQL" : `using SQLite in ${config.dataDir}`);
  const cleanups: (() => Promise<void>)[] = [() => store.close()];
  try {
    // With a JWKS and no shared secret, user tokens are asymmetric only: no local secret is made.
    const jwtSecret = config.jwtSecret ?? (config.jwksUrl ? undefined : createLocalJwtSecret(config.dataDir, logger));
    const started = await startServiceSandboxes(config, {
      logger,
      ...(options.sandboxOptions ? { sandboxOptions: options.sandboxOptions } : {}),
      standby: options.sandboxStandby ?? true,
      ...(options.sandboxPersistence === false ? {} : { persistence: store.sandboxes }),
    });
    // Before the store closes: a sandbox writes its last state on the way out.
    cleanups.unshift(() => started.close());
    const { sandboxes } = started;
    const settings = {} as Record<ProviderId, ConnectorSettings>;
    for (const id of PROVIDER_IDS) {
      const providerConfig = config.providers[id];
      const sandbox = sandboxes[id];
      settings[id] = resolveSettings({ provider: id, config: providerConfig, publicUrl: config.publicUrl, ...(sandbox ? { sandbox } : {}) });
      logger.info(
        { provider: id, mode: settings[id].mode, ...(sandbox ? { sandboxUrl: sandbox.url, sandboxServedBy: sandbox.role() === "serving" ? "this process" : "another process on this database" } : {}) },
        `${id} connector ready`,
      );
    }
    const metrics = createMetrics(PROVIDER_IDS);
    const rateWindows = rateWindowsFor(store);
    // Keep-alive pools per provider origin, closed after the server stops taking requests.
    const pools = createProviderPools();
    cleanups.unshift(() => pools.close());
    const pacer =
      config.pacing === false
        ? undefined
        : new Pacer({
            store: rateWindows,
            ...(options.clock ? { clock: options.clock } : {}),
            onError: (error, key) => logger.warn({ err: String(error), key }, "rate budget store failed; calls go unpaced for a moment"),
          });
    const integrations = createIntegrations({
      vault: store.vault,
      sealer: store.keyring,
      settings,
      providerTimeoutMs: config.providerTimeoutMs,
      logger,
      onAttempt: metrics.onAttempt,
      onRefresh: metrics.onRefresh,
      // The operator's allow-list, plus the sandboxes' own origins (loopback, for offline use) and nothing else.
      baseUrlAllowlist: [...config.baseUrlAllowlist, ...Object.values(sandboxes).map((s) => s.url)],
      // The operator's list, and the page's own return page (it tells the page the outcome and closes).
      oauthReturnUrls: [...config.oauthReturnUrls, `${config.publicUrl}${PAGE_RETURN_PATH}`],
      ...(config.proxyLimits ? { proxyLimits: config.proxyLimits } : {}),
      // On PostgreSQL every instance spends one budget per account; on SQLite (one process) it is kept in memory.
      pacing: pacer ? timedPacer(pacer, metrics.onPacing) : false,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.fetch ? { fetch: options.fetch } : { dispatcher: pools }),
    });
    const ticketSync = createTicketSync({
      jira: integrations.jira,
      mirror: new SqlTicketMirror(store.db),
      apiUrl: settings.jira.endpoints.apiUrl ?? "",
      // Jira delivers to the public URL; admin webhooks are checked with the operator's secret.
      webhooks: {
        publicUrl: config.publicUrl,
        db: store.db,
        ...(config.jiraWebhookSecret ? { adminSecret: config.jiraWebhookSecret } : {}),
        ...(options.clock ? { now: clockNow(options.clock) } : {}),
      },
      onRun: metrics.onSyncRun,
    });
    metrics.syncLag(() => ticketSync.lags());
    metrics.connectionHealth(() => store.operations.healthCounts());
    const app = await buildServer({
      connectors: connectorsById(integrations),
      // Development and tests (vitest.config.ts sets it): every answer is held to its schema.
      checkResponses: process.env.AUTOFLOW_CHECK_RESPONSES === "1",
      ticketSync,
      ticketPush: createTicketPush(ticketSync, store.db),
      verifyUser: createUserVerifier({
        ...(jwtSecret ? { secret: jwtSecret } : {}),
        ...(config.jwksUrl ? { jwksUrl: config.jwksUrl } : {}),
        ...(config.jwtIssuer ? { issuer: config.jwtIssuer } : {}),
        ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
      }),
      logger,
      page: {
        operatorView: config.operatorToken !== undefined,
        publicUrl: config.publicUrl,
        // Signing in without a JWT of one's own only where nothing real can be reached (every connector on its
        // sandbox) and the secret is this service's own (generated in its data folder): never with a secret
        // other services may share (AUTOFLOW_JWT_SECRET), a JWKS, or an issuer or audience to honour.
        ...(jwtSecret && !config.jwtSecret && !config.jwtIssuer && !config.jwtAudience && PROVIDER_IDS.every((id) => settings[id].mode === "sandbox")
          ? { localSignIn: { userId: LOCAL_USER, mint: () => mintUserToken(jwtSecret, LOCAL_USER, LOCAL_TOKEN_SECONDS) } }
          : {}),
      },
      operator: { operations: store.operations, ...(config.operatorToken ? { token: config.operatorToken } : {}) },
      metrics: metrics.registry,
      observeRequest: metrics.onRequest,
      ...(config.metricsToken ? { metricsToken: config.metricsToken } : {}),
      limits: config.limits,
      ...(config.proxyLimits ? { proxyLimits: config.proxyLimits } : {}),
      ...(config.healthMaxAgeSeconds !== undefined ? { healthMaxAgeSeconds: config.healthMaxAgeSeconds } : {}),
      ...(options.clock ? { now: clockNow(options.clock) } : {}),
      storeChangeToken: () => store.vault.changeToken(),
      readiness: async () => {
        await ping(store.db as Kysely<unknown>);
        const pending = await pendingMigrations(store.db as Kysely<unknown>, store.schema);
        return pending.length === 0 ? { ready: true } : { ready: false, detail: `pending migrations: ${pending.join(", ")}` };
      },
    });
    cleanups.unshift(() => app.close());
    let jobs: JobRunner | undefined;
    if (config.jobs) {
      const location = storeLocation(config);
      jobs = await startJobs({
        vault: store.vault,
        connectors: connectorsById(integrations),
        settings: config.jobSettings,
        logger,
        ticketSync,
        // pg-boss keeps its tables in a schema of its own, beside ours.
        ...("postgres" in location ? { postgres: { url: location.postgres.url, schema: `${location.postgres.schema ?? "autoflow"}_jobs` } } : {}),
      });
      const runner = jobs;
      // Stopped first: no new job starts while requests drain.
      cleanups.unshift(() => runner.stop());
    }
    let url: string | undefined;
    if (options.listen) url = await app.listen({ port: config.port, host: config.host });
    return {
      app,
      integrations,
      sandboxes,
      store,
      rateWindows,
      ticketSync,
      ...(pacer ? { pacer } : {}),
      ...(jwtSecret ? { jwtSecret } : {}),
      ...(jobs ? { jobs } : {}),
      ...(url ? { url } : {}),
      close: async () => {
        for (const cleanup of cleanups) await cleanup();
      },
    };
  } catch (error) {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    throw error;
  }
}

/** The pacer, with each wait for a budget timed for the metrics (a key starts with its provider's id). */
function timedPacer(pacer: Pacer, onPacing: (provider: string, outcome: "granted" | "rejected", waitedMs: number) => void): ProviderPacer {
  const providerOf = (key: string): string => key.slice(0, Math.max(0, key.indexOf(":"))) || key;
  return {
    tryAcquire: (key) => {
      if (!pacer.tryAcquire(key)) return false;
      onPacing(providerOf(key), "granted", 0);
      return true;
    },
    acquire: async (key, deadlineMs) => {
      const started = performance.now();
      const provider = providerOf(key);
      try {
        await pacer.acquire(key, deadlineMs);
        onPacing(provider, "granted", performance.now() - started);
      } catch (error) {
        onPacing(provider, "rejected", performance.now() - started);
        throw error;
      }
    },
    observe: (key, signal) => pacer.observe(key, signal),
  };
}

/** A clock's time as a function (the Jira webhooks' JWT times and expiries read it). */
const clockNow = (clock: Clock) => () => clock.now();

/** Where the vault lives: PostgreSQL when DATABASE_URL is set, SQLite in the data folder otherwise. */
export function storeLocation(
  config: ServiceConfig,
): { sqlitePath: string } | { postgres: { url: string; schema?: string; maxConnections: number } } {
  if (config.databaseUrl) {
    return {
      postgres: { url: config.databaseUrl, maxConnections: config.databasePoolSize, ...(config.databaseSchema ? { schema: config.databaseSchema } : {}) },
    };
  }
  return { sqlitePath: join(config.dataDir, SQLITE_FILE) };
}

function createLocalJwtSecret(dataDir: string, logger: Logger): string {
  const local = loadOrCreateJwtSecret(dataDir, true);
  if (!local) throw new Error("could not create a local JWT secret");
  if (local.generated) {
    logger.warn(`AUTOFLOW_JWT_SECRET is not set: generated a local one in ${local.path} (mode 600). Set AUTOFLOW_JWT_SECRET in production.`);
  }
  return local.secret;
}
