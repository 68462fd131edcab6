/**
 * `health`: probes connections at their providers now, the way
 * `GET /api/integrations/:provider/health?connectionId=` does (one attempt,
 * recorded as the connection's last health), for every active connection
 * of every user (`--all`, narrowed by `--provider` and `--user`) or for one
 * user's connections at one provider (`--user` and `--provider`).
 *
 * It opens the service as `sweep` does: with the sandboxes another `serve`
 * on the same data folder or database serves, or its own. A probe that
 * throws instead of answering an envelope is reported for its connection;
 * it never stops the run.
 *
 * Exit codes: 0 every connection ok (or none), 3 some degraded and none
 * down, 1 some down or a probe that failed, 2 a mistake in the arguments.
 */
import { SingleBar } from "cli-progress";
import { loadConfig } from "../config.js";
import { PROVIDER_IDS, type ProviderId } from "../integrations/registry.js";
import { IntegrationError } from "../integrations/shared/errors.js";
import type { HealthEnvelope } from "../integrations/shared/healthEnvelope.js";
import type { ConnectorLifecycle } from "../integrations/shared/lifecycle.js";
import type { ConnectionRecord } from "../integrations/shared/vault.js";
import { forEachLimited } from "../jobs/sweeps.js";
import { connectorsById } from "../sdk.js";
import { startService } from "../service.js";
import type { SqlVault } from "../store/index.js";
import { browseAll } from "./connections.js";
import { UsageError, type CommandIo } from "./command.js";
import { paintStatus, renderTable, stderrLogger } from "./output.js";

/** At most this many probes at once: beyond it a run only queues at the providers' rate limits. */
export const MAX_CONCURRENCY = 64;

export type HealthOptions = { all?: boolean; json?: boolean; provider?: ProviderId; user?: string; concurrency?: number };

/** One connection's outcome: the envelope `health()` answered, or why there is none. */
export type HealthEntry = {
  provider: string;
  userId: string;
  connectionId: string;
  health?: HealthEnvelope;
  /** The probe threw instead of answering (our own state, a bug): `type` when it was an IntegrationError. */
  error?: { type?: string; message: string };
};

export type HealthTotals = { connections: number; ok: number; degraded: number; down: number; failed: number };

/** `colour`: stdout is a terminal (and NO_COLOR unset); `progress`: stderr is a terminal, where the progress bar goes. */
export type HealthTerminal = { colour: boolean; progress: boolean; progressStream?: NodeJS.WritableStream };

export async function health(options: HealthOptions, io: CommandIo, terminal: HealthTerminal): Promise<number> {
  if (!options.all && (options.user === undefined || options.provider === undefined)) {
    throw new UsageError(
      "health needs --all (every active connection, narrowed by --provider <id> and --user <id>), or both --user <id> and --provider <id> (one user's connections at one provider)",
    );
  }
  const config = { ...loadConfig(io.env), jobs: false };
  const service = await startService(config, { logger: stderrLogger(config.logLevel), sandboxStandby: false });
  try {
    const records = await activeConnections(service.store.vault, options);
    const bar = !options.json && terminal.progress && records.length > 0 ? new SingleBar({ stream: terminal.progressStream ?? process.stderr, format: "probing {bar} {value}/{total} connections", hideCursor: true }) : undefined;
    bar?.start(records.length, 0);
    const entries = await probeAll(records, connectorsById(service.integrations), options.concurrency ?? config.jobSettings.concurrency, () => bar?.increment());
    bar?.stop();
    entries.sort(byProviderUserConnection);
    const totals = totalsOf(entries);
    if (options.json) io.out(`${JSON.stringify({ totals, connections: entries }, null, 2)}\n`);
    else io.out(`${healthReport(entries, terminal.colour)}\n`);
    return exitCodeOf(totals);
  } finally {
    await service.close();
  }
}

/**
 * Probes each connection with its connector's `health` hook, at most
 * `concurrency` at once, in any order; one entry per record whatever
 * happens: the envelope, or the error a probe threw instead.
 */
export async function probeAll(
  records: readonly ConnectionRecord[],
  connectors: Partial<Record<string, Pick<ConnectorLifecycle, "health">>>,
  concurrency: number,
  onProbed: () => void = () => undefined,
): Promise<HealthEntry[]> {
  const entries: HealthEntry[] = [];
  await forEachLimited(records, concurrency, async (record) => {
    const entry: HealthEntry = { provider: record.provider, userId: record.userId, connectionId: record.id };
    try {
      const connector = connectors[record.provider];
      if (!connector) throw new Error(`no connector for provider ${JSON.stringify(record.provider)}`);
      entry.health = (await connector.health(record.userId, { connectionId: record.id })) as HealthEnvelope;
    } catch (error) {
      entry.error = error instanceof IntegrationError ? { type: error.type, message: error.message } : { message: error instanceof Error ? error.message : String(error) };
    }
    entries.push(entry);
    onProbed();
  });
  return entries;
}

/** Every active connection the options name (the user and provider filtered by the database). */
async function activeConnections(vault: Pick<SqlVault, "browseConnections">, options: HealthOptions): Promise<ConnectionRecord[]> {
  const records: ConnectionRecord[] = [];
  for await (const record of browseAll(vault, { ...(options.user === undefined ? {} : { userId: options.user }), ...(options.provider ? { provider: options.provider } : {}) })) records.push(record);
  return records;
}

const providerIndex = (provider: string): number => {
  const index = PROVIDER_IDS.indexOf(provider as ProviderId);
  return index < 0 ? PROVIDER_IDS.length : index;
};

function byProviderUserConnection(a: HealthEntry, b: HealthEntry): number {
  return providerIndex(a.provider) - providerIndex(b.provider) || a.userId.localeCompare(b.userId) || a.connectionId.localeCompare(b.connectionId);
}

/** 1 when a connection is down or its probe failed, 3 when some are degraded and none worse, 0 when all are ok. */
export function exitCodeOf(totals: HealthTotals): number {
  return totals.down > 0 || totals.failed > 0 ? 1 : totals.degraded > 0 ? 3 : 0;
}

export function totalsOf(entries: readonly HealthEntry[]): HealthTotals {
  const totals: HealthTotals = { connections: entries.length, ok: 0, degraded: 0, down: 0, failed: 0 };
  for (const entry of entries) totals[entry.health?.status ?? "failed"]++;
  return totals;
}

/** The table and the summary line; colour only when `tty`. */
export function healthReport(entries: readonly HealthEntry[], tty: boolean): string {
  if (entries.length === 0) return "no active connections";
  const totals = totalsOf(entries);
  const head = ["provider", "user", "connection", "status", "checked at", "auth method", "token refresh", "error type", "message"];
  const rows = entries.map((e) =>
    e.health
      ? [
          e.provider,
          e.userId,
          e.connectionId,
          paintStatus(e.health.status, tty),
          e.health.checkedAt,
          e.health.authMethod,
          e.health.tokenRefreshStatus,
          e.health.details.errorType,
          e.health.details.message,
        ]
      : [e.provider, e.userId, e.connectionId, paintStatus("failed", tty), "", "", "", e.error?.type, `the probe failed: ${e.error?.message ?? ""}`],
  );
  const failed = totals.failed > 0 ? `, ${totals.failed} probe${totals.failed === 1 ? "" : "s"} failed` : "";
  return `${renderTable(head, rows, tty)}\n${totals.connections} connection${totals.connections === 1 ? "" : "s"}: ${totals.ok} ok / ${totals.degraded} degraded / ${totals.down} down${failed}`;
}
