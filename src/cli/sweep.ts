/** `sweep`: the refresh-ahead, health and owed-revocation sweeps, once, beside (or without) a running service. */
import { loadConfig } from "../config.js";
import { healthSweep, refreshAhead, revokePending } from "../jobs/sweeps.js";
import { connectorsById } from "../sdk.js";
import { createLogger } from "../server/logging.js";
import { startService } from "../service.js";
import type { CommandIo } from "./command.js";

export async function sweep(io: CommandIo): Promise<number> {
  const config = { ...loadConfig(io.env), jobs: false };
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
    io.out(`${JSON.stringify({ refreshAhead: refreshed, healthSweep: health, revokePending: revocations })}\n`);
    return 0;
  } finally {
    await service.close();
  }
}
