/**
 * Starts the background jobs on the runner that fits the store: pg-boss on
 * PostgreSQL, timers on SQLite. pg-boss is loaded only when it runs them.
 */
import type { Logger } from "pino";
import type { ProviderId } from "../integrations/registry.js";
import type { ConnectorLifecycle } from "../integrations/shared/lifecycle.js";
import type { Vault } from "../integrations/shared/vault.js";
import type { JobRunner } from "./runner.js";
import { healthSweep, refreshAhead, revokePending } from "./sweeps.js";
import type { JobSettings } from "./settings.js";
import { TimerRunner } from "./timerRunner.js";

export { DEFAULT_JOB_SETTINGS, type JobSettings } from "./settings.js";

export const REFRESH_AHEAD_JOB = "refresh-ahead";
export const HEALTH_SWEEP_JOB = "health-sweep";
export const REVOKE_PENDING_JOB = "revoke-pending";
/** Pulls every configured Jira ticket sync whose interval has passed (each connection keeps its own interval). */
export const TICKET_SYNC_JOB = "ticket-sync";
/** The ticket-sync tick: connections are due by their own intervals (five minutes by default), checked every minute. */
const TICKET_SYNC_EVERY_MINUTES = 1;
/** Minutes between retries of owed revocations: a provider outage is usually over by then. */
const REVOKE_PENDING_EVERY_MINUTES = 15;

async function startPgBoss(postgres: { url: string; schema: string }, logger: Logger | undefined): Promise<JobRunner> {
  const { PgBossRunner } = await import("./pgBossRunner.js");
  return PgBossRunner.start({ connectionString: postgres.url, schema: postgres.schema, ...(logger ? { logger } : {}) });
}

export async function startJobs(input: {
  vault: Vault;
  connectors: Record<ProviderId, ConnectorLifecycle>;
  settings: JobSettings;
  /** PostgreSQL for pg-boss; timers when unset (SQLite, one instance). */
  postgres?: { url: string; schema: string };
  logger?: Logger;
  /** The Jira ticket sync's tick: pulls what is due (once across instances on pg-boss). */
  ticketSync?: { runDue(): Promise<Array<{ outcome: "ran" | "failed" | "skipped" | "forgotten" }>> };
}): Promise<JobRunner> {
  const runner: JobRunner = input.postgres ? await startPgBoss(input.postgres, input.logger) : new TimerRunner(input.logger);
  const { settings } = input;
  const deps = { vault: input.vault, connectors: input.connectors, concurrency: settings.concurrency };
  await runner.schedule(REFRESH_AHEAD_JOB, settings.refreshAheadEveryMinutes, () =>
    refreshAhead({ ...deps, windowMs: settings.refreshAheadWindowMinutes * 60_000, idleMs: settings.idleRefreshHours * 3_600_000 }),
  );
  await runner.schedule(HEALTH_SWEEP_JOB, settings.healthSweepEveryMinutes, () => healthSweep(deps));
  await runner.schedule(REVOKE_PENDING_JOB, REVOKE_PENDING_EVERY_MINUTES, () => revokePending(deps));
  const { ticketSync } = input;
  if (ticketSync) {
    await runner.schedule(TICKET_SYNC_JOB, TICKET_SYNC_EVERY_MINUTES, async () => {
      const outcomes = await ticketSync.runDue();
      const count = (outcome: string) => outcomes.filter((o) => o.outcome === outcome).length;
      // forgotten: syncs of connections disconnected since, whose mirrors were removed.
      return { ran: count("ran"), failed: count("failed"), skipped: count("skipped"), forgotten: count("forgotten") };
    });
  }
  input.logger?.info({ runner: runner.kind, ...settings }, "background jobs scheduled");
  return runner;
}
