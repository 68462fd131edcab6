/**
 * Jira's retry row: how often, how long and how patiently a call is
 * retried. The rule that reads it is shared/retry.ts's `decideRetry`;
 * `npm run docs` writes it into docs/integrations/tier1-retry-policy.md.
 * Budgets are sized for an interactive API call: a caller waits at most
 * `budgetMs` before it gets an honest error it can act on.
 */
import type { RetryPolicy } from "../shared/retry.js";

export const jiraRetryPolicy: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 1_000,
  capDelayMs: 10_000,
  budgetMs: 30_000,
  maxRetryAfterMs: 20_000,
  rationale:
    "Jira Cloud answers 429 with Retry-After in seconds (X-RateLimit-Reset, an ISO minute, when it is missing) and some 503s with Retry-After too; " +
    "burst limits (jira-burst-based, per tenant, endpoint and method) clear within seconds, while a quota's long Retry-After surfaces at once. " +
    "Atlassian's guide retries up to 4 times with jittered doubling; a refresh is safe to repeat within the 10-minute reuse leeway of rotating refresh tokens.",
};
