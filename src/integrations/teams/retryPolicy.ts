/**
 * Microsoft Teams's retry row: how often, how long and how patiently a call is
 * retried. The rule that reads it is shared/retry.ts's `decideRetry`;
 * `npm run docs` writes it into docs/integrations/tier1-retry-policy.md.
 * Budgets are sized for an interactive API call: a caller waits at most
 * `budgetMs` before it gets an honest error it can act on.
 */
import type { RetryPolicy } from "../shared/retry.js";

export const teamsRetryPolicy: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 1_000,
  capDelayMs: 10_000,
  budgetMs: 30_000,
  maxRetryAfterMs: 20_000,
  rationale:
    "Like the Graph SDKs' retry handler (3 retries): Graph answers 429, and sometimes 503, with Retry-After in seconds " +
    "that may be decimal; joinedTeams allows 30 requests per second per app per tenant, so short waits clear it. " +
    "The who-am-I is one JSON batch of reads, safe to repeat; a refresh is too (Microsoft keeps the old refresh token valid).",
};
