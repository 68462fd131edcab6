/**
 * Stripe's retry row: how often, how long and how patiently a call is
 * retried. The rule that reads it is shared/retry.ts's `decideRetry`;
 * `npm run docs` writes it into docs/integrations/tier1-retry-policy.md.
 * Budgets are sized for an interactive API call: a caller waits at most
 * `budgetMs` before it gets an honest error it can act on.
 */
import type { RetryPolicy } from "../shared/retry.js";

export const stripeRetryPolicy: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 500,
  capDelayMs: 5_000,
  budgetMs: 20_000,
  maxRetryAfterMs: 10_000,
  rationale:
    "Mirrors stripe-node: 0.5 s doubling to a 5 s cap; Stripe-Should-Retry is obeyed; " +
    "every POST carries an Idempotency-Key so a retry after a lost response cannot act twice.",
};
