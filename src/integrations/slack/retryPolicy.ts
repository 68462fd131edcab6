/**
 * Slack's retry row: how often, how long and how patiently a call is
 * retried. The rule that reads it is shared/retry.ts's `decideRetry`;
 * `npm run docs` writes it into docs/integrations/tier1-retry-policy.md.
 * Budgets are sized for an interactive API call: a caller waits at most
 * `budgetMs` before it gets an honest error it can act on.
 */
import type { RetryPolicy } from "../shared/retry.js";

export const slackRetryPolicy: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 500,
  capDelayMs: 8_000,
  budgetMs: 30_000,
  maxRetryAfterMs: 20_000,
  rationale:
    "Slack limits per method per workspace per minute and answers 429 with Retry-After in seconds; " +
    "auth.test is a high tier, so short waits usually clear it.",
};
