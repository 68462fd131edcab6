/**
 * What a Gmail answer tells about the rate budget: at most `Retry-After`.
 * Google documents no window headers and no Retry-After (providers.md
 * §4.5); one is read if a throttle carries it: a 429, or a 403 (a
 * Retry-After on a 403 can only be one of the usageLimits refusals, which
 * the error classifier tells apart from a permission 403 by the body).
 */
import type { RateLimitReader } from "../shared/rateSignal.js";
import { rateSignal, throttleRetryAfterMs } from "../shared/rateHeaders.js";

/** The statuses Gmail throttles with: 429, and 403 rateLimitExceeded / userRateLimitExceeded. */
const THROTTLE_STATUSES = [429, 403] as const;

export const gmailRateLimit: RateLimitReader = (response, nowMs) => rateSignal({ retryAfterMs: throttleRetryAfterMs(response, nowMs, THROTTLE_STATUSES) });
