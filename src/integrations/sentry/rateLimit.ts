/**
 * What a Sentry answer tells about the rate budget (`middleware/ratelimit.py`,
 * api/ratelimits docs; providers.md §2.6), on every answer of a rate-limited
 * endpoint:
 *
 *   X-Sentry-Rate-Limit-Limit       requests allowed in the fixed window
 *   X-Sentry-Rate-Limit-Remaining   left in it
 *   X-Sentry-Rate-Limit-Reset       when it ends, UTC epoch seconds
 *
 * The concurrency pair (`-ConcurrentLimit`, `-ConcurrentRemaining`) counts
 * requests in flight, not a window, and is not read. Sentry's 429 has no
 * Retry-After: it is held until the reset (a Retry-After is read first, in
 * case a proxy in front adds one). Self-hosted Sentry sends none of these.
 */
import type { RateLimitReader } from "../shared/rateSignal.js";
import { countHeader, epochHeader, msUntil, rateSignal, retryAfterMs } from "../shared/rateHeaders.js";

export const sentryRateLimit: RateLimitReader = (response, nowMs) => {
  const resetAtMs = epochHeader(response, "x-sentry-rate-limit-reset", "seconds", nowMs);
  const throttled = response.status === 429 ? (retryAfterMs(response, nowMs) ?? (resetAtMs === undefined ? undefined : msUntil(resetAtMs, nowMs))) : undefined;
  return rateSignal({
    limit: countHeader(response, "x-sentry-rate-limit-limit"),
    remaining: countHeader(response, "x-sentry-rate-limit-remaining"),
    resetAtMs,
    retryAfterMs: throttled,
  });
};
