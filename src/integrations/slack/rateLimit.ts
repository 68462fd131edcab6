/**
 * What a Slack answer tells about the rate budget: only the 429's
 * `Retry-After` in seconds. Slack sends no window headers (providers.md
 * §1.5: limits are per method, workspace and app, and never reported).
 * Slack's other throttle, 200 `{ok:false,error:"ratelimited"}`, is in the
 * body and carries no header, so it is the error classifier's to see.
 */
import type { RateLimitReader } from "../shared/rateSignal.js";
import { rateSignal, throttleRetryAfterMs } from "../shared/rateHeaders.js";

export const slackRateLimit: RateLimitReader = (response, nowMs) => rateSignal({ retryAfterMs: throttleRetryAfterMs(response, nowMs) });
