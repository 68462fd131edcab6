/**
 * `sandbox`: the sandboxes of every connector without live credentials, run
 * alone, exactly as `serve` runs them (src/serviceSandboxes.ts): on their
 * stable ports (AUTOFLOW_SANDBOX_BASE_PORT plus the connector's index in
 * registry order), loopback only, keeping what they issue in the store, so a
 * `serve` started later on the same data folder or database uses them.
 * Stops on SIGINT or SIGTERM, each sandbox writing its last state first.
 * Exit codes: 0 stopped by a signal, 1 nothing to run or a start that failed.
 */
import { loadConfig } from "../config.js";
import { PROVIDER_IDS } from "../integrations/registry.js";
import { createLogger } from "../server/logging.js";
import { storeLocation } from "../service.js";
import { startServiceSandboxes } from "../serviceSandboxes.js";
import { loadKeyring, openStore } from "../store/index.js";
import type { CommandIo } from "./command.js";
import pino from "pino";

export async function sandbox(io: CommandIo): Promise<number> {
  const config = loadConfig(io.env);
  const logger = createLogger(config.logLevel, pino.destination({ fd: 2, sync: true }));
  const { keys } = loadKeyring({ envValue: config.encryptionKey, oldValues: config.encryptionKeysOld, dataDir: config.dataDir, log: (m) => logger.warn(m) });
  const store = await openStore({ ...storeLocation(config), keys });
  try {
    const running = await startServiceSandboxes(config, { logger, standby: true, persistence: store.sandboxes });
    try {
      const ids = PROVIDER_IDS.filter((id) => running.sandboxes[id]);
      if (ids.length === 0) {
        io.err("every connector has live credentials (AUTOFLOW_<PROVIDER>_CLIENT_ID and _CLIENT_SECRET): there is no sandbox to run\n");
        return 1;
      }
      const width = Math.max(...ids.map((id) => id.length));
      for (const id of ids) {
        const started = running.sandboxes[id];
        if (!started) continue;
        const note = started.role() === "serving" ? "" : "  (served by another process on this database; this one stands by to take over)";
        io.out(`${id.padEnd(width)}  ${started.url}${note}\n`);
      }
      io.err("sandboxes running: Ctrl-C (SIGINT) or SIGTERM stops them\n");
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once("SIGINT", () => resolve("SIGINT"));
        process.once("SIGTERM", () => resolve("SIGTERM"));
      });
      logger.info({ signal }, "stopping the sandboxes");
      return 0;
    } finally {
      await running.close();
    }
  } finally {
    await store.close();
  }
}
