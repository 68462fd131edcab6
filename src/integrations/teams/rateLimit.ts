/**
 * What a Microsoft Graph answer tells about the rate budget: `Retry-After`
 * in seconds, possibly decimal (`2.128`), on a 429 and on some 503s
 * (providers.md §3.5, Graph's throttling guide). Graph sends no window
 * headers on its successes. A throttled request inside a `$batch` has its
 * own `retry-after` in the sub-response, which the batch's reader of the
 * body sees; this reads the HTTP answer only.
 */
import type { RateLimitReader } from "../shared/rateSignal.js";
import { rateSignal, throttleRetryAfterMs } from "../shared/rateHeaders.js";

const THROTTLE_STATUSES = [429, 503] as const;

export const teamsRateLimit: RateLimitReader = (response, nowMs) => rateSignal({ retryAfterMs: throttleRetryAfterMs(response, nowMs, THROTTLE_STATUSES) });
