#!/usr/bin/env node
/**
 * autoflow-integrations serve              run the service (SQLite, sandboxes for unconfigured connectors)
 * autoflow-integrations token --user alice  print a user JWT the local service accepts (signed with its secret; a day by default, 30 days at most)
 * autoflow-integrations migrate            apply database migrations and exit
 * autoflow-integrations sweep              run the refresh-ahead and health sweeps once and print what they did
 * autoflow-integrations rotate-keys        rewrap every data key under the active encryption key (online, resumable)
 */
import { parseArgs } from "node:util";
import type { Kysely } from "kysely";
import { ConfigError, loadConfig } from "./config.js";
import { PROVIDER_IDS } from "./integrations/registry.js";
import { createLogger } from "./server/logging.js";
import { healthSweep, refreshAhead, revokePending } from "./jobs/sweeps.js";
import { connectorsById } from "./sdk.js";
import { startService, storeLocation } from "./service.js";
import { migrateToLatest } from "./store/migrations.js";
import { openPostgres } from "./store/postgres.js";
import { loadKeyring, openStore } from "./store/index.js";
import { openSqlite } from "./store/sqlite.js";
import { tokenCommand } from "./tokenCommand.js";

const USAGE = `usage:
  autoflow-integrations serve
  autoflow-integrations token --user <id> [--expires-in <seconds, default 86400, at most 2592000>]
  autoflow-integrations migrate
  autoflow-integrations sweep
  autoflow-integrations rotate-keys [--batch-size <n>]

Configuration comes from the environment (see README): PORT, AUTOFLOW_DATA_DIR,
AUTOFLOW_PUBLIC_URL, AUTOFLOW_JWT_SECRET, AUTOFLOW_ENCRYPTION_KEY,
AUTOFLOW_<PROVIDER>_CLIENT_ID / _CLIENT_SECRET / _AUTHORIZE_URL / _TOKEN_URL / _REVOKE_URL / _API_URL / _SCOPES
with <PROVIDER> one of ${PROVIDER_IDS.map((p) => p.toUpperCase()).join(", ")}.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // These take no flags: anything after them is a mistake to say, not to ignore.
  if ((command === "serve" || command === "migrate" || command === "sweep") && rest.length > 0) {
    process.stderr.write(`${command} takes no arguments (got ${rest.map((a) => JSON.stringify(a)).join(" ")}); configuration comes from the environment\n${USAGE}\n`);
    return 2;
  }
  switch (command) {
    case "serve":
      return serve();
    case "token":
      return tokenCommand(rest, { env: process.env, out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text), usage: USAGE });
    case "migrate":
      return migrate();
    case "sweep":
      return sweep();
    case "rotate-keys":
      return rotateKeys(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
      return 2;
  }
}

async function serve(): Promise<number> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const service = await startService(config, { logger, listen: true });
  const port = new URL(service.url ?? `http://localhost:${config.port}`).port;
  logger.info(`AutoFlow Integrations listening on ${service.url}`);
  if (!config.jwtSecret) {
    logger.info(`no AUTOFLOW_JWT_SECRET set: get a token for the local service with "npx autoflow-integrations token --user alice" and call e.g. curl -H "Authorization: Bearer $TOKEN" http://localhost:${port}/api/integrations`);
  }
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, "shutting down: finishing requests in flight");
    service.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  return await new Promise<number>(() => undefined);
}

async function migrate(): Promise<number> {
  const config = loadConfig();
  const location = storeLocation(config);
  const db = "postgres" in location ? await openPostgres(location.postgres) : openSqlite(location.sqlitePath);
  try {
    const applied = await migrateToLatest(db as Kysely<unknown>, "postgres" in location ? (location.postgres.schema ?? "public") : undefined);
    process.stdout.write(applied.length === 0 ? "database is up to date\n" : `applied: ${applied.join(", ")}\n`);
    return 0;
  } finally {
    await db.destroy();
  }
}

async function sweep(): Promise<number> {
  const config = { ...loadConfig(), jobs: false };
  const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel);
  const service = await startService(config, { logger, sandboxStandby: false });
  try {
    const deps = { vault: service.store.vault, connectors: connectorsById(service.integrations), concurrency: config.jobSettings.concurrency };
    const refreshed = await refreshAhead({
      ...deps,
      windowMs: config.jobSettings.refreshAheadWindowMinutes * 60_000,
      idleMs: config.jobSettings.idleRefreshHours * 3_600_000,
    });
    const health = await healthSweep(deps);
    const revocations = await revokePending(deps);
    process.stdout.write(`${JSON.stringify({ refreshAhead: refreshed, healthSweep: health, revokePending: revocations })}\n`);
    return 0;
  } finally {
    await service.close();
  }
}

/**
 * Rewraps every connection's data key under the active key-encryption key,
 * batch by batch, while the service runs (instances must hold the old key in
 * AUTOFLOW_ENCRYPTION_KEYS_OLD meanwhile). Safe to interrupt and run again.
 */
async function rotateKeys(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { "batch-size": { type: "string" } }, strict: true });
  const batchSize = values["batch-size"] === undefined ? 500 : Number(values["batch-size"]);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    process.stderr.write("--batch-size must be a whole number from 1 to 10000\n");
    return 2;
  }
  const config = loadConfig();
  const { keys, active } = loadKeyring({ envValue: config.encryptionKey, oldValues: config.encryptionKeysOld, dataDir: config.dataDir, log: (m) => process.stderr.write(`${m}\n`) });
  const store = await openStore({ ...storeLocation(config), keys });
  try {
    const totals = { scanned: 0, rewrapped: 0, alreadyCurrent: 0, changedConcurrently: 0, failed: 0 };
    const failures: { id: string; reason: string }[] = [];
    let afterId: string | undefined;
    do {
      const report = await store.vault.rewrapDataKeys({ batchSize, ...(afterId ? { afterId } : {}) });
      totals.scanned += report.scanned;
      totals.rewrapped += report.rewrapped;
      totals.alreadyCurrent += report.alreadyCurrent;
      totals.changedConcurrently += report.changedConcurrently;
      totals.failed += report.failed.length;
      failures.push(...report.failed);
      afterId = report.scanned < batchSize ? undefined : report.lastId;
      process.stderr.write(`rows done: ${totals.scanned} (rewrapped ${totals.rewrapped}, already current ${totals.alreadyCurrent}, failed ${totals.failed})\n`);
    } while (afterId);
    const remaining = await store.vault.countStaleDataKeys();
    process.stdout.write(`${JSON.stringify({ activeKeyId: store.keyring.activeKeyId, keySource: active.origin, ...totals, stillStale: remaining.stale, failures })}\n`);
    if (remaining.stale === 0 && failures.length === 0) {
      process.stderr.write(
        "rotation complete: every data key is under the active key; the old keys (AUTOFLOW_ENCRYPTION_KEYS_OLD, or the data folder's encryption.key that AUTOFLOW_ENCRYPTION_KEY replaced) can be removed\n",
      );
      return 0;
    }
    process.stderr.write(`rotation incomplete: ${remaining.stale} data keys are still under an old key; run rotate-keys again\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/** node:util parseArgs's refusals (unknown option, missing value, unexpected positional). */
function isParseArgsError(error: unknown): error is Error {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // A flag the command does not take, or one without its value: the caller's mistake, said without a stack trace.
    if (isParseArgsError(error)) {
      process.stderr.write(`${error.message}\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof ConfigError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
