/**
 * Gmail's retry row: how often, how long and how patiently a call is
 * retried. The rule that reads it is shared/retry.ts's `decideRetry`;
 * `npm run docs` writes it into docs/integrations/tier1-retry-policy.md.
 * Budgets are sized for an interactive API call: a caller waits at most
 * `budgetMs` before it gets an honest error it can act on.
 */
import type { RetryPolicy } from "../shared/retry.js";

export const gmailRetryPolicy: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 1_000,
  capDelayMs: 16_000,
  budgetMs: 30_000,
  maxRetryAfterMs: 20_000,
  rationale:
    "Google's handle-errors guide asks for truncated exponential backoff from about 1 s; Gmail throttles per user per minute " +
    "(429, or 403 rateLimitExceeded/userRateLimitExceeded) mostly without Retry-After, so backoff does the waiting; " +
    "a 'Retry after <time>' in the message is honoured and dailyLimitExceeded surfaces at once with the time to Pacific midnight.",
};
