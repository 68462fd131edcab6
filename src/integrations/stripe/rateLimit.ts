/**
 * What a Stripe answer tells about the rate budget: at most a 429's
 * `Retry-After`. Stripe documents no window headers, and whether it sends
 * Retry-After at all is not documented (providers.md §3.5: its SDKs read it
 * if present), so most 429s tell nothing here and the retry rule's backoff
 * paces them. `Stripe-Rate-Limited-Reason` names the limiter, not a time.
 */
import type { RateLimitReader } from "../shared/rateSignal.js";
import { rateSignal, throttleRetryAfterMs } from "../shared/rateHeaders.js";

export const stripeRateLimit: RateLimitReader = (response, nowMs) => rateSignal({ retryAfterMs: throttleRetryAfterMs(response, nowMs) });
