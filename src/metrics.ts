/**
 * Prometheus metrics: provider calls (fed by the provider HTTP client), the
 * HTTP API's requests by route and status, and the Jira ticket sync's runs,
 * issues and lag.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { AttemptRecord } from "./integrations/shared/http.js";
import type { RunRecord } from "./integrations/jira/sync/ticketSync.js";

export type ProviderMetrics = {
  registry: Registry;
  onAttempt(record: AttemptRecord): void;
  /** One answered API request: the route's pattern (never the raw URL, which names ids), method, status, duration. */
  onRequest(route: string, method: string, status: number, durationMs: number): void;
  /** One finished ticket-sync run. */
  onSyncRun(record: RunRecord): void;
  /** How far behind each configured sync's cursor is, read at each scrape. */
  syncLag(read: () => Promise<Array<{ lagSeconds: number }>>): void;
};

export function createMetrics(): ProviderMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const attempts = new Counter({
    name: "autoflow_provider_attempts_total",
    help: "Provider HTTP attempts by provider, operation and outcome (ok or one of the five error types)",
    labelNames: ["provider", "operation", "outcome", "retried"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "autoflow_provider_attempt_duration_seconds",
    help: "Duration of one provider HTTP attempt",
    labelNames: ["provider", "outcome"] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const requests = new Counter({
    name: "autoflow_http_requests_total",
    help: "HTTP API requests by route pattern, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: "autoflow_http_request_duration_seconds",
    help: "Duration of one HTTP API request, by route pattern",
    labelNames: ["route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  const syncRuns = new Counter({
    name: "autoflow_ticket_sync_runs_total",
    help: "Jira ticket-sync runs by trigger and outcome (ok, or the error type that stopped them)",
    labelNames: ["trigger", "outcome"] as const,
    registers: [registry],
  });
  const syncIssues = new Counter({
    name: "autoflow_ticket_sync_issues_total",
    help: "Issues a ticket-sync run met, by what it did with them (created, updated, unchanged, stale, deleted, unreadable)",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  let lagReader: (() => Promise<Array<{ lagSeconds: number }>>) | undefined;
  new Gauge({
    name: "autoflow_ticket_sync_lag_seconds",
    help: "How far behind now the furthest-behind configured ticket sync's cursor is",
    registers: [registry],
    async collect() {
      const lags = lagReader ? await lagReader().catch(() => []) : [];
      this.set(lags.length === 0 ? 0 : Math.max(...lags.map((l) => l.lagSeconds)));
    },
  });
  return {
    registry,
    onAttempt(record) {
      const outcome = record.errorType ?? "ok";
      attempts.inc({ provider: record.provider, operation: record.operation, outcome, retried: record.retryDelayMs === undefined ? "no" : "yes" });
      duration.observe({ provider: record.provider, outcome }, record.durationMs / 1000);
    },
    onRequest(route, method, status, durationMs) {
      requests.inc({ route, method, status: String(status) });
      requestDuration.observe({ route }, durationMs / 1000);
    },
    onSyncRun(record) {
      syncRuns.inc({ trigger: record.trigger, outcome: record.errorType ?? "ok" });
      for (const [kind, count] of Object.entries(record.counts)) if (kind !== "pages" && count > 0) syncIssues.inc({ kind }, count);
    },
    syncLag(read) {
      lagReader = read;
    },
  };
}
