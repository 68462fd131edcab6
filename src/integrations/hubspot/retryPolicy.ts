/**
 * HubSpot's retry row: how often, how long and how patiently a call is
 * retried. The rule that reads it is shared/retry.ts's `decideRetry`;
 * `npm run docs` writes it into docs/integrations/tier1-retry-policy.md.
 * Budgets are sized for an interactive API call: a caller waits at most
 * `budgetMs` before it gets an honest error it can act on.
 */
import type { RetryPolicy } from "../shared/retry.js";

export const hubspotRetryPolicy: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 500,
  capDelayMs: 8_000,
  budgetMs: 30_000,
  maxRetryAfterMs: 12_000,
  rationale:
    "HubSpot throttles per account in a 10 s rolling window (TEN_SECONDLY_ROLLING), which clears within one window, " +
    "so a 429 waits up to 10 s as HubSpot's SDK does; a DAILY 429 is not retried (it resets at the account's midnight) " +
    "and a 477 data-centre migration surfaces at once when its Retry-After is long; 5xx and 423 locks are retried briefly.",
};
