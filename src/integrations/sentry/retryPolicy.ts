/**
 * Sentry's retry row: how often, how long and how patiently a call is
 * retried. The rule that reads it is shared/retry.ts's `decideRetry`;
 * `npm run docs` writes it into docs/integrations/tier1-retry-policy.md.
 * Budgets are sized for an interactive API call: a caller waits at most
 * `budgetMs` before it gets an honest error it can act on.
 */
import type { RetryPolicy } from "../shared/retry.js";

export const sentryRetryPolicy: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 500,
  capDelayMs: 8_000,
  budgetMs: 30_000,
  maxRetryAfterMs: 20_000,
  rationale:
    "Sentry limits per caller and per endpoint in fixed windows (40 requests a second by default) and answers 429 without " +
    "Retry-After: the wait is read from X-Sentry-Rate-Limit-Reset (epoch seconds, measured against Sentry's Date header), " +
    "so a throttle whose window ends within 20 s is waited out; self-hosted Sentry does not rate-limit. A refresh is retried " +
    "after a 5xx or a lost answer: the refresh token rotates with no grace, but the stored one is the only one held either way.",
};
