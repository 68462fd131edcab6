/**
 * Linear's retry row: how often, how long and how patiently a call is
 * retried. The rule that reads it is shared/retry.ts's `decideRetry`;
 * `npm run docs` writes it into docs/integrations/tier1-retry-policy.md.
 * Budgets are sized for an interactive API call: a caller waits at most
 * `budgetMs` before it gets an honest error it can act on.
 */
import type { RetryPolicy } from "../shared/retry.js";

export const linearRetryPolicy: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 500,
  capDelayMs: 8_000,
  budgetMs: 30_000,
  maxRetryAfterMs: 10_000,
  rationale:
    "Linear throttles with a leaky bucket per user per hour (1,500 requests for API keys, 1,200 for OAuth apps, plus complexity points) " +
    "and answers RATELIMITED in the GraphQL body (HTTP 200 or 400) with X-RateLimit-*-Reset in epoch milliseconds; the bucket " +
    "drips a request back every 2-3 s, so a reset within 10 s is waited for and a later one surfaces at once; " +
    "INTERNAL_SERVER_ERROR and 5xx are retried briefly (the who-am-I is a query, safe to repeat).",
};
