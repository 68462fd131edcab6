/**
 * The background work: refresh-ahead for idle connections, and health
 * sweeps that store every active connection's last health run. Both walk
 * the vault in pages and touch at most `concurrency` connections at once,
 * across page boundaries: the next page is read while the last connections
 * of one are still being worked on, so a slow one never holds the rest back.
 */
import type { ProviderId } from "../integrations/registry.js";
import type { ConnectorLifecycle } from "../integrations/shared/lifecycle.js";
import type { ConnectionRecord, Vault } from "../integrations/shared/vault.js";
import type { JobReport } from "./runner.js";

/** Connections read from the vault per page. */
const PAGE_SIZE = 200;

export type SweepDeps = {
  vault: Vault;
  connectors: Record<ProviderId, ConnectorLifecycle>;
  now?: () => number;
  /** Connections worked on at once (provider rate limits, our own pool). */
  concurrency: number;
};

/** Runs `task` over `items`, at most `limit` at a time. */
export async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  });
  await Promise.all(workers);
}

async function* pages(vault: Vault, query: Omit<Parameters<Vault["scanConnections"]>[0], "afterId" | "afterExpiresAt" | "limit">): AsyncGenerator<ConnectionRecord[]> {
  let after: { afterId: string; afterExpiresAt?: string } | undefined;
  for (;;) {
    const page = await vault.scanConnections({ ...query, limit: PAGE_SIZE, ...after });
    if (page.length === 0) return;
    yield page;
    const last = page[page.length - 1] as ConnectionRecord;
    // A refresh-ahead scan runs in expiry order; the others by id.
    after = query.dueForRefresh ? { afterId: last.id, afterExpiresAt: last.accessTokenExpiresAt as string } : { afterId: last.id };
    if (page.length < PAGE_SIZE) return;
  }
}

/**
 * Runs `task` over every item of `pages`, at most `limit` at a time, keeping
 * `limit` in flight across page boundaries: the next page is read as soon as
 * fewer than `limit` items are left to start (one read at a time, in order),
 * not once the whole page is done. `onPage` sees each page as it is read.
 */
export async function forEachPaged<T>(pages: AsyncIterable<T[]>, limit: number, task: (item: T) => Promise<void>, onPage: (page: readonly T[]) => void = () => undefined): Promise<void> {
  const iterator = pages[Symbol.asyncIterator]();
  const queue: T[] = [];
  let head = 0;
  let exhausted = false;
  let failure: { error: unknown } | undefined;
  let reading: Promise<void> | undefined;
  const read = (): Promise<void> =>
    (reading ??= iterator.next().then(
      (next) => {
        reading = undefined;
        if (next.done) exhausted = true;
        else {
          onPage(next.value);
          // Started items are dropped now and then, so the queue holds at most about two pages.
          if (head > 0) queue.splice(0, head);
          head = 0;
          queue.push(...next.value);
        }
      },
      (error: unknown) => {
        reading = undefined;
        failure ??= { error };
        exhausted = true;
      },
    ));
  const worker = async (): Promise<void> => {
    for (;;) {
      if (failure) throw failure.error;
      const left = queue.length - head;
      if (!exhausted && left < limit) void read();
      if (left === 0) {
        if (exhausted) return;
        await read();
        continue;
      }
      await task(queue[head++] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failure) throw failure.error;
}

/**
 * Refreshes access tokens that expire within `windowMs` and were obtained
 * more than `idleMs` ago. Connections in use are refreshed on demand; this
 * keeps idle ones alive (refresh tokens that die unused: Slack PKCE apps
 * after 30 days, Google after 6 idle months, Atlassian after 90 days).
 */
export async function refreshAhead(deps: SweepDeps & { windowMs: number; idleMs: number }): Promise<JobReport> {
  const now = (deps.now ?? Date.now)();
  const report = { due: 0, refreshed: 0, skipped: 0, failed: 0 };
  const dueForRefresh = { expiresBefore: new Date(now + deps.windowMs).toISOString(), issuedBefore: new Date(now - deps.idleMs).toISOString() };
  await forEachPaged(
    pages(deps.vault, { dueForRefresh }),
    deps.concurrency,
    async (record) => {
      const connector = deps.connectors[record.provider as ProviderId];
      if (!connector) return;
      try {
        report[(await connector.refreshConnection(record)) === "refreshed" ? "refreshed" : "skipped"]++;
      } catch {
        // The lifecycle stored the outcome (failed: down; transient: degraded).
        report.failed++;
      }
    },
    (page) => (report.due += page.length),
  );
  return report;
}

/** Retries the provider revocations owed since a disconnect could not reach the provider. */
export async function revokePending(deps: SweepDeps): Promise<JobReport> {
  const report = { owed: 0, revoked: 0, alreadyInvalid: 0, notSupported: 0, stillPending: 0 };
  await forEachPaged(
    pages(deps.vault, { revocationOwed: true }),
    deps.concurrency,
    async (record) => {
      const connector = deps.connectors[record.provider as ProviderId];
      if (!connector) return;
      const outcome = await connector.retryRevocation(record).catch(() => "pending" as const);
      if (outcome === "revoked") report.revoked++;
      else if (outcome === "already_invalid") report.alreadyInvalid++;
      else if (outcome === "not_supported") report.notSupported++;
      else report.stillPending++;
    },
    (page) => (report.owed += page.length),
  );
  return report;
}

/**
 * Probes every active connection once and stores the outcome as its last
 * health run: each with the record the scan read (`checkHealth`), not read
 * again, and no envelope built that nobody reads.
 */
export async function healthSweep(deps: SweepDeps): Promise<JobReport> {
  const report = { checked: 0, ok: 0, degraded: 0, down: 0, errors: 0 };
  await forEachPaged(pages(deps.vault, {}), deps.concurrency, async (record) => {
    const connector = deps.connectors[record.provider as ProviderId];
    if (!connector) return;
    report.checked++;
    try {
      report[(await connector.checkHealth(record)).status]++;
    } catch {
      report.errors++;
    }
  });
  return report;
}
