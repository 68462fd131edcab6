/** Prometheus metrics of provider calls, fed by the provider HTTP client. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { AttemptRecord } from "./integrations/shared/http.js";

export type ProviderMetrics = { registry: Registry; onAttempt(record: AttemptRecord): void };

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
  return {
    registry,
    onAttempt(record) {
      const outcome = record.errorType ?? "ok";
      attempts.inc({ provider: record.provider, operation: record.operation, outcome, retried: record.retryDelayMs === undefined ? "no" : "yes" });
      duration.observe({ provider: record.provider, outcome }, record.durationMs / 1000);
    },
  };
}
