/**
 * What a Jira Cloud answer tells about the rate budget (developer.atlassian.com
 * rate-limiting; providers.md §4.5):
 *
 *   X-RateLimit-Limit / -Remaining   the budget and what is left of it
 *   X-RateLimit-Reset                when it resets, ISO 8601 (`yyyy-MM-ddTHH:mmZ`, to the minute)
 *   X-RateLimit-NearLimit: true      less than a fifth of a budget left (a boolean only)
 *   Retry-After                      seconds, on a 429 (and on a 503 when a resource limit was reached)
 *   RateLimit-Reason                 which limiter answered (burst, per issue, quota)
 *
 * NearLimit and RateLimit-Reason carry no number, so they have no place in
 * the signal: the remaining count and Retry-After say what they imply.
 * Data Center's admin-configured limiter uses other headers and is not read.
 */
import type { RateLimitReader } from "../shared/rateSignal.js";
import { countHeader, isoInstantHeader, rateSignal, throttleRetryAfterMs } from "../shared/rateHeaders.js";

const THROTTLE_STATUSES = [429, 503] as const;

export const jiraRateLimit: RateLimitReader = (response, nowMs) =>
  rateSignal({
    limit: countHeader(response, "x-ratelimit-limit"),
    remaining: countHeader(response, "x-ratelimit-remaining"),
    resetAtMs: isoInstantHeader(response, "x-ratelimit-reset", nowMs),
    retryAfterMs: throttleRetryAfterMs(response, nowMs, THROTTLE_STATUSES),
  });
