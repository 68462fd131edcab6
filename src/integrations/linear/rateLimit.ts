/**
 * What a Linear answer tells about the rate budget (rate-limiting docs,
 * providers.md §1.5), sent on every answer:
 *
 *   X-RateLimit-Requests-Limit       requests allowed per hour
 *   X-RateLimit-Requests-Remaining   left in the window
 *   X-RateLimit-Requests-Reset       when it resets, UTC epoch milliseconds
 *
 * The complexity headers are another budget, counted in points, not calls,
 * and are not read: the pacer paces calls. A throttled answer is a GraphQL
 * `RATELIMITED` error under HTTP 200 (the docs), 400 (observed) or 429 (the
 * SDK), with no documented Retry-After; one is read if present. Otherwise a
 * non-2xx answer with nothing remaining is taken as the throttle and held
 * until the reset; a 200 with nothing remaining cannot be told from the last
 * call allowed, and the remaining count says to wait for the reset anyway.
 */
import type { RateLimitReader } from "../shared/rateSignal.js";
import { countHeader, epochHeader, msUntil, rateSignal, retryAfterMs } from "../shared/rateHeaders.js";

export const linearRateLimit: RateLimitReader = (response, nowMs) => {
  const remaining = countHeader(response, "x-ratelimit-requests-remaining");
  const resetAtMs = epochHeader(response, "x-ratelimit-requests-reset", "milliseconds", nowMs);
  const throttled = response.status >= 300 && remaining === 0 && resetAtMs !== undefined ? msUntil(resetAtMs, nowMs) : undefined;
  return rateSignal({
    limit: countHeader(response, "x-ratelimit-requests-limit"),
    remaining,
    resetAtMs,
    retryAfterMs: retryAfterMs(response, nowMs) ?? throttled,
  });
};
