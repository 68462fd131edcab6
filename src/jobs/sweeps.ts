/**
 * The background work: refresh-ahead for idle connections, and health
 * sweeps that store every active connection's last health run. Both walk
 * the vault in pages and touch at most `concurrency` connections at once.
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
 * Refreshes access tokens that expire within `windowMs` and were obtained
 * more than `idleMs` ago. Connections in use are refreshed on demand; this
 * keeps idle ones alive (refresh tokens that die unused: Slack PKCE apps
 * after 30 days, Google after 6 idle months, Atlassian after 90 days).
 */
export async function refreshAhead(deps: SweepDeps & { windowMs: number; idleMs: number }): Promise<JobReport> {
  const now = (deps.now ?? Date.now)();
  const report = { due: 0, refreshed: 0, skipped: 0, failed: 0 };
  const dueForRefresh = { expiresBefore: new Date(now + deps.windowMs).toISOString(), issuedBefore: new Date(now - deps.idleMs).toISOString() };
  for await (const page of pages(deps.vault, { dueForRefresh })) {
    report.due += page.length;
    await forEachLimited(page, deps.concurrency, async (record) => {
      const connector = deps.connectors[record.provider as ProviderId];
      if (!connector) return;
      try {
        report[(await connector.refreshConnection(record)) === "refreshed" ? "refreshed" : "skipped"]++;
      } catch {
        // The lifecycle stored the outcome (failed: down; transient: degraded).
        report.failed++;
      }
    });
  }
  return report;
}

/** Retries the provider revocations owed since a disconnect could not reach the provider. */
export async function revokePending(deps: SweepDeps): Promise<JobReport> {
  const report = { owed: 0, revoked: 0, alreadyInvalid: 0, notSupported: 0, stillPending: 0 };
  for await (const page of pages(deps.vault, { revocationOwed: true })) {
    report.owed += page.length;
    await forEachLimited(page, deps.concurrency, async (record) => {
      const connector = deps.connectors[record.provider as ProviderId];
      if (!connector) return;
      const outcome = await connector.retryRevocation(record).catch(() => "pending" as const);
      if (outcome === "revoked") report.revoked++;
      else if (outcome === "already_invalid") report.alreadyInvalid++;
      else if (outcome === "not_supported") report.notSupported++;
      else report.stillPending++;
    });
  }
  return report;
}

/** Probes every active connection once and stores the outcome as its last health run. */
export async function healthSweep(deps: SweepDeps): Promise<JobReport> {
  const report = { checked: 0, ok: 0, degraded: 0, down: 0, errors: 0 };
  for await (const page of pages(deps.vault, {})) {
    await forEachLimited(page, deps.concurrency, async (record) => {
      const connector = deps.connectors[record.provider as ProviderId];
      if (!connector) return;
      report.checked++;
      try {
        const health = (await connector.health(record.userId, { connectionId: record.id })) as { status: "ok" | "degraded" | "down" };
        report[health.status]++;
      } catch {
        report.errors++;
      }
    });
  }
  return report;
}
