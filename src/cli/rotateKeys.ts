/**
 * `rotate-keys`: rewraps every connection's data key under the active
 * key-encryption key, batch by batch, while the service runs (instances must
 * hold the old key in AUTOFLOW_ENCRYPTION_KEYS_OLD meanwhile). Safe to
 * interrupt and run again.
 */
import { loadConfig } from "../config.js";
import { storeLocation } from "../service.js";
import { loadKeyring, openStore } from "../store/index.js";
import { UsageError, type CommandIo } from "./command.js";

export async function rotateKeys(options: { batchSize?: string }, io: CommandIo): Promise<number> {
  const batchSize = options.batchSize === undefined ? 500 : Number(options.batchSize);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new UsageError("--batch-size must be a whole number from 1 to 10000");
  const config = loadConfig(io.env);
  const { keys, active } = loadKeyring({ envValue: config.encryptionKey, oldValues: config.encryptionKeysOld, dataDir: config.dataDir, log: (m) => io.err(`${m}\n`) });
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
      io.err(`rows done: ${totals.scanned} (rewrapped ${totals.rewrapped}, already current ${totals.alreadyCurrent}, failed ${totals.failed})\n`);
    } while (afterId);
    const remaining = await store.vault.countStaleDataKeys();
    io.out(`${JSON.stringify({ activeKeyId: store.keyring.activeKeyId, keySource: active.origin, ...totals, stillStale: remaining.stale, failures })}\n`);
    if (remaining.stale === 0 && failures.length === 0) {
      io.err(
        "rotation complete: every data key is under the active key; the old keys (AUTOFLOW_ENCRYPTION_KEYS_OLD, or the data folder's encryption.key that AUTOFLOW_ENCRYPTION_KEY replaced) can be removed\n",
      );
      return 0;
    }
    io.err(`rotation incomplete: ${remaining.stale} data keys are still under an old key; run rotate-keys again\n`);
    return 1;
  } finally {
    await store.close();
  }
}
