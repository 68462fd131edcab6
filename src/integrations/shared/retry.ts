/**
 * Retry policy: one row per connector, the decision that reads it, full-jitter
 * backoff, and `Retry-After` parsing.
 *
 * `docs/integrations/tier1-retry-policy.md` is generated from this table by
 * `npm run docs`; a test fails when the two differ.
 */
import type { Tier1ErrorType } from "./contract.js";
import type { IntegrationError } from "./errors.js";

export type RetryPolicy = {
  /** Total attempts, the first included. */
  attempts: number;
  /** Backoff before retry n is drawn from [0, min(capDelayMs, baseDelayMs * 2^(n-1))] (full jitter). */
  baseDelayMs: number;
  capDelayMs: number;
  /** Wall-clock budget for the whole call, waits included; no retry starts that would overrun it. */
  budgetMs: number;
  /** The longest `Retry-After` we will wait for; a longer one surfaces as a rate-limit error at once. */
  maxRetryAfterMs: number;
  /** Why these numbers: the provider's documented limits and SDK defaults. */
  rationale: string;
};

/**
 * The table. Budgets are sized for an interactive API call: a caller waits at
 * most `budgetMs` before it gets an honest error it can act on.
 */
export const RETRY_POLICIES = {
  slack: {
    attempts: 4,
    baseDelayMs: 500,
    capDelayMs: 8_000,
    budgetMs: 30_000,
    maxRetryAfterMs: 20_000,
    rationale:
      "Slack limits per method per workspace per minute and answers 429 with Retry-After in seconds; " +
      "auth.test is a high tier, so short waits usually clear it.",
  },
  hubspot: {
    attempts: 4,
    baseDelayMs: 500,
    capDelayMs: 8_000,
    budgetMs: 30_000,
    maxRetryAfterMs: 12_000,
    rationale:
      "HubSpot throttles per account in a 10 s rolling window (TEN_SECONDLY_ROLLING), which clears within one window, " +
      "so a 429 waits up to 10 s as HubSpot's SDK does; a DAILY 429 is not retried (it resets at the account's midnight) " +
      "and a 477 data-centre migration surfaces at once when its Retry-After is long; 5xx and 423 locks are retried briefly.",
  },
  linear: {
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
  },
  stripe: {
    attempts: 3,
    baseDelayMs: 500,
    capDelayMs: 5_000,
    budgetMs: 20_000,
    maxRetryAfterMs: 10_000,
    rationale:
      "Mirrors stripe-node: 0.5 s doubling to a 5 s cap; Stripe-Should-Retry is obeyed; " +
      "every POST carries an Idempotency-Key so a retry after a lost response cannot act twice.",
  },
  gmail: {
    attempts: 4,
    baseDelayMs: 1_000,
    capDelayMs: 16_000,
    budgetMs: 30_000,
    maxRetryAfterMs: 20_000,
    rationale:
      "Google's handle-errors guide asks for truncated exponential backoff from about 1 s; Gmail throttles per user per minute " +
      "(429, or 403 rateLimitExceeded/userRateLimitExceeded) mostly without Retry-After, so backoff does the waiting; " +
      "a 'Retry after <time>' in the message is honoured and dailyLimitExceeded surfaces at once with the time to Pacific midnight.",
  },
  teams: {
    attempts: 4,
    baseDelayMs: 1_000,
    capDelayMs: 10_000,
    budgetMs: 30_000,
    maxRetryAfterMs: 20_000,
    rationale:
      "Like the Graph SDKs' retry handler (3 retries): Graph answers 429, and sometimes 503, with Retry-After in seconds " +
      "that may be decimal; joinedTeams allows 30 requests per second per app per tenant, so short waits clear it. " +
      "The who-am-I is one JSON batch of reads, safe to repeat; a refresh is too (Microsoft keeps the old refresh token valid).",
  },
  jira: {
    attempts: 4,
    baseDelayMs: 1_000,
    capDelayMs: 10_000,
    budgetMs: 30_000,
    maxRetryAfterMs: 20_000,
    rationale:
      "Jira Cloud answers 429 with Retry-After in seconds (X-RateLimit-Reset, an ISO minute, when it is missing) and some 503s with Retry-After too; " +
      "burst limits (jira-burst-based, per tenant, endpoint and method) clear within seconds, while a quota's long Retry-After surfaces at once. " +
      "Atlassian's guide retries up to 4 times with jittered doubling; a refresh is safe to repeat within the 10-minute reuse leeway of rotating refresh tokens.",
  },
  sentry: {
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
  },
} as const satisfies Record<string, RetryPolicy>;

export type RetryPolicyId = keyof typeof RETRY_POLICIES;

/**
 * The budget bounds the whole call: every attempt's timeout is cut to what is
 * left of it. What may still run past it is this margin: a timer that fires
 * late on a busy event loop, and the work after the last answer (classifying
 * it, storing a refreshed token). A second is ample on a loaded machine and
 * small beside any budget in the table.
 */
export const RETRY_BUDGET_MARGIN_MS = 1_000;

/**
 * The least time worth giving a retry (or the attempt's whole timeout, when
 * that is shorter): a retry that would have less of the budget left after
 * its wait is not started, since it could only time out.
 */
export const MIN_RETRY_ATTEMPT_MS = 1_000;

/** What the caller should do after each error type, for the generated doc and the health message. */
export const RECOVERY: Readonly<Record<Tier1ErrorType, string>> = {
  auth: "Not retried. The connection's health goes down; the user reconnects (or grants the missing scope).",
  "rate-limit": "Retried after Retry-After (or backoff) within budget; then surfaced as 429 with Retry-After.",
  schema: "Not retried. The request is wrong or refused for good; fix the input.",
  network: "Retried with backoff within budget (non-idempotent requests only with an idempotency key); then 503.",
  upstream: "Retried with backoff within budget unless the provider says not to; then 502.",
};

export type RetryRequestFacts = {
  /** Safe to repeat: GET, or a read-only POST such as Slack's auth.test. */
  idempotent: boolean;
  /** The request carries a provider idempotency key (Stripe's Idempotency-Key). */
  hasIdempotencyKey: boolean;
};

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: string };

/**
 * Whether to try again after `error`, and after how long. One rule a line,
 * in the order they are checked.
 */
export function decideRetry(input: {
  error: IntegrationError;
  attempt: number; // the attempt that just failed, from 1
  elapsedMs: number;
  policy: RetryPolicy;
  request: RetryRequestFacts;
  /** The least time a retry needs to be worth starting; {@link MIN_RETRY_ATTEMPT_MS} unless the timeout is shorter. */
  minAttemptMs?: number;
  random?: () => number;
}): RetryDecision {
  const { error, attempt, elapsedMs, policy, request } = input;
  const repeatable = request.idempotent || request.hasIdempotencyKey;
  // Auth and schema fail fast: repeating cannot change the answer.
  if (!error.retryable) return { retry: false, reason: `${error.type} errors are not retried` };
  // The provider said a retry would have no effect (Stripe-Should-Retry: false).
  if (error.providerRetryHint === false) return { retry: false, reason: "the provider advised against retrying" };
  // Out of attempts.
  if (attempt >= policy.attempts) return { retry: false, reason: `gave up after ${attempt} attempts` };
  // A lost response to a non-idempotent request may have acted: repeat only under an idempotency key.
  if (error.type === "network" && !repeatable) return { retry: false, reason: "not idempotent and no idempotency key" };
  // A 5xx to a non-idempotent request is indeterminate for the same reason.
  if (error.type === "upstream" && !repeatable) return { retry: false, reason: "not idempotent and no idempotency key" };
  // Throttled: wait as long as the provider asked, if that is within what we are willing to wait.
  const retryAfterMs = error.retryAfterSeconds === undefined ? undefined : error.retryAfterSeconds * 1000;
  if (retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs) {
    return { retry: false, reason: `Retry-After of ${error.retryAfterSeconds}s exceeds the ${policy.maxRetryAfterMs / 1000}s we wait` };
  }
  const delayMs = retryAfterMs ?? fullJitterDelay(attempt, policy, input.random);
  // Never start a retry that could not finish within the budget: its wait and a useful attempt must fit.
  if (elapsedMs + delayMs + (input.minAttemptMs ?? MIN_RETRY_ATTEMPT_MS) > policy.budgetMs) {
    return { retry: false, reason: `retry budget of ${policy.budgetMs}ms spent` };
  }
  return { retry: true, delayMs };
}

/** Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): uniform in [0, min(cap, base * 2^(n-1))]. */
export function fullJitterDelay(attempt: number, policy: Pick<RetryPolicy, "baseDelayMs" | "capDelayMs">, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

const DELTA_SECONDS = /^\s*(\d+(?:\.\d+)?)\s*$/;
/** RFC 9110 §5.6.7 HTTP-date: IMF-fixdate, and the obsolete RFC 850 and asctime forms. */
const HTTP_DATE = [
  /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  /^[A-Z][a-z]{5,8}, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/,
  /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
];

/**
 * Parses `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
 * Decimal seconds are accepted too (Microsoft Graph sends them). Returns
 * seconds to wait, never negative, or undefined when absent or unparsable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const seconds = DELTA_SECONDS.exec(value);
  if (seconds?.[1] !== undefined) return Number(seconds[1]);
  const trimmed = value.trim();
  // Only a real HTTP-date: Date.parse would read "-1" or "1,5" as dates in 2001 and mean "retry now".
  if (!HTTP_DATE.some((format) => format.test(trimmed))) return undefined;
  const date = Date.parse(/GMT$/.test(trimmed) ? trimmed : `${trimmed} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}
