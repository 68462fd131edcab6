/**
 * What a HubSpot answer tells about the rate budget (providers.md §2.5):
 *
 *   X-HubSpot-RateLimit-Max                      calls allowed in the burst window
 *   X-HubSpot-RateLimit-Remaining                left in it
 *   X-HubSpot-RateLimit-Interval-Milliseconds    the window's length (10000), not its end: it rolls
 *   X-HubSpot-RateLimit-Daily-Remaining          left today (private apps only; OAuth apps have no daily limit)
 *   Retry-After                                  seconds, documented on 477 Migration in Progress
 *
 * The signal has the window's length, never a reset instant. A 429 of the
 * burst limit (Remaining 0) without a Retry-After is held for one interval:
 * a rolling window has room again at the latest one interval after it
 * filled, which is also how long HubSpot's SDK waits for
 * TEN_SECONDLY_ROLLING. A Retry-After, where HubSpot sends one, says it
 * more exactly and stands instead.
 *
 * The daily limit resets at midnight in the account's time zone, which the
 * answer does not tell. A Daily-Remaining of 0 is held until the next whole
 * hour of UTC: nearly every time zone's midnight is a whole UTC hour (the
 * few half- and quarter-hour zones are caught within the hour after), so
 * calls resume at most an hour after the reset, and an account still capped
 * costs one refused call an hour. Holding a flat day would lose up to a day
 * of calls; trying sooner would spend refused calls for nothing.
 */
import type { RateLimitReader } from "../shared/rateSignal.js";
import { countHeader, rateSignal, throttleRetryAfterMs } from "../shared/rateHeaders.js";

/** 429 is the throttle; 477 is the account moving between data centres, when no call succeeds either. */
const THROTTLE_STATUSES = [429, 477] as const;
const HOUR_MS = 3_600_000;

export const hubspotRateLimit: RateLimitReader = (response, nowMs) => {
  const interval = countHeader(response, "x-hubspot-ratelimit-interval-milliseconds");
  const windowMs = interval !== undefined && interval > 0 ? interval : undefined;
  const remaining = countHeader(response, "x-hubspot-ratelimit-remaining");
  const told = throttleRetryAfterMs(response, nowMs, THROTTLE_STATUSES);
  const holds = [
    told ?? (response.status === 429 && remaining === 0 ? windowMs : undefined),
    countHeader(response, "x-hubspot-ratelimit-daily-remaining") === 0 ? HOUR_MS - (nowMs % HOUR_MS) : undefined,
  ].filter((ms): ms is number => ms !== undefined);
  return rateSignal({
    limit: countHeader(response, "x-hubspot-ratelimit-max"),
    remaining,
    windowMs,
    retryAfterMs: holds.length > 0 ? Math.max(...holds) : undefined,
  });
};
