/**
 * Prometheus metrics: provider calls (fed by the provider HTTP client), their
 * retries and their waits for the account's rate budget, token refreshes,
 * connections by health status, the HTTP API's requests by route and status,
 * and the Jira ticket sync's runs, issues and lag.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { AttemptRecord } from "./integrations/shared/http.js";
import type { RunRecord } from "./integrations/jira/sync/ticketSync.js";
import type { RefreshRecord } from "./integrations/shared/tokens.js";
import { HEALTH_STATUS_LABELS, type HealthCount } from "./store/operations.js";

export type ProviderMetrics = {
  registry: Registry;
  onAttempt(record: AttemptRecord): void;
  /** One wait for an account's rate budget: granted after `waitedMs`, or rejected (the call was not sent). */
  onPacing(provider: string, outcome: "granted" | "rejected", waitedMs: number): void;
  /** One token refresh that reached the provider. */
  onRefresh(record: RefreshRecord): void;
  /** The connections by health status, read at each scrape. */
  connectionHealth(read: () => Promise<HealthCount[]>): void;
  /** One answered API request: the route's pattern (never the raw URL, which names ids), method, status, duration. */
  onRequest(route: string, method: string, status: number, durationMs: number): void;
  /** One finished ticket-sync run. */
  onSyncRun(record: RunRecord): void;
  /** How far behind each configured sync's cursor is, read at each scrape. */
  syncLag(read: () => Promise<Array<{ lagSeconds: number }>>): void;
};

/**
 * An operation as a label: a named one as it is (`auth.test`, `createIssue: issues.create`); one named by its
 * method and path (a proxied call, an unnamed action call) by its method only, since the path is the caller's
 * and would make a series per id; never longer than 80 characters.
 */
export function operationLabel(operation: string): string {
  const unnamed = /^((?:proxy |[^:/]{1,60}: )?)(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \//.exec(operation);
  if (unnamed) return `${unnamed[1]}${unnamed[2]}`;
  return operation.slice(0, 80);
}


export function createMetrics(providers: readonly string[] = []): ProviderMetrics {
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
  const retries = new Counter({
    name: "autoflow_provider_retries_total",
    help: "Provider attempts that were retried, by provider, operation and the error type that caused the retry",
    labelNames: ["provider", "operation", "error_type"] as const,
    registers: [registry],
  });
  const retryWait = new Counter({
    name: "autoflow_provider_retry_wait_seconds_total",
    help: "Time spent sleeping before retries (backoff or the provider's Retry-After), by provider",
    labelNames: ["provider"] as const,
    registers: [registry],
  });
  const pacingWait = new Histogram({
    name: "autoflow_provider_pacing_wait_seconds",
    help: "How long a call waited for its account's rate budget, by provider and outcome (granted, or rejected past its deadline and not sent)",
    labelNames: ["provider", "outcome"] as const,
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const refreshes = new Counter({
    name: "autoflow_token_refreshes_total",
    help: "Token refreshes that reached the provider, by provider and outcome (refreshed; rejected: the user must reconnect; failed: transient) and error type",
    labelNames: ["provider", "outcome", "error_type"] as const,
    registers: [registry],
  });
  const collectErrors = new Counter({
    name: "autoflow_metrics_collect_errors_total",
    help: "Reads behind a gauge that failed at a scrape (the gauge then shows no series rather than stale ones), by gauge",
    labelNames: ["gauge"] as const,
    registers: [registry],
  });
  let healthReader: (() => Promise<HealthCount[]>) | undefined;
  new Gauge({
    name: "autoflow_connections",
    help: "Active connections by provider and last recorded health status (unchecked: never probed)",
    labelNames: ["provider", "status"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      if (!healthReader) return;
      const counts = await healthReader().catch(() => undefined);
      // A failed read shows no series (and counts the failure): stale numbers would hide an outage.
      if (counts === undefined) {
        collectErrors.inc({ gauge: "autoflow_connections" });
        return;
      }
      // Every connector and status has a series, zero when none is there, so a count falling to 0 reads as 0.
      for (const provider of providers) for (const status of HEALTH_STATUS_LABELS) this.set({ provider, status }, 0);
      for (const c of counts) this.set({ provider: c.provider, status: c.status }, c.count);
    },
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
  const requestSeries = new Map<string, { count: { inc(): void }; duration: { observe(seconds: number): void } }>();
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
      const lags = lagReader
        ? await lagReader().catch(() => {
            collectErrors.inc({ gauge: "autoflow_ticket_sync_lag_seconds" });
            return [];
          })
        : [];
      this.set(lags.length === 0 ? 0 : Math.max(...lags.map((l) => l.lagSeconds)));
    },
  });
  return {
    registry,
    onAttempt(record) {
      const outcome = record.errorType ?? "ok";
      const operation = operationLabel(record.operation);
      attempts.inc({ provider: record.provider, operation, outcome, retried: record.retryDelayMs === undefined ? "no" : "yes" });
      duration.observe({ provider: record.provider, outcome }, record.durationMs / 1000);
      if (record.retryDelayMs !== undefined) {
        retries.inc({ provider: record.provider, operation, error_type: record.errorType ?? "unknown" });
        retryWait.inc({ provider: record.provider }, record.retryDelayMs / 1000);
      }
    },
    onPacing(provider, outcome, waitedMs) {
      pacingWait.observe({ provider, outcome }, waitedMs / 1000);
    },
    onRefresh(record) {
      refreshes.inc({ provider: record.provider, outcome: record.outcome, error_type: record.errorType ?? "none" });
    },
    connectionHealth(read) {
      healthReader = read;
    },
    onRequest(route, method, status, durationMs) {
      // Each series' child kept, so an answer costs no label lookup (routes, methods and statuses are few).
      const key = `${method} ${status} ${route}`;
      let series = requestSeries.get(key);
      if (!series) requestSeries.set(key, (series = { count: requests.labels({ route, method, status: String(status) }), duration: requestDuration.labels({ route }) }));
      series.count.inc();
      series.duration.observe(durationMs / 1000);
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
