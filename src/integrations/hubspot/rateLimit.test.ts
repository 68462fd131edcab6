/**
 * HubSpot's reader on the answers the sandbox does not enforce: the daily
 * cap of private apps, whose reset the answer does not tell, and 477.
 */
import { describe, expect, it } from "vitest";
import { hubspotRateLimit } from "./rateLimit.js";

const answer = (status: number, headers: Record<string, string>) => ({ status, headers: new Headers(headers) });
const AT = Date.UTC(2026, 11, 2, 10, 45, 0);

describe("hubspotRateLimit", () => {
  it("reads the burst window as a length, never a reset instant", () => {
    const signal = hubspotRateLimit(
      answer(200, { "x-hubspot-ratelimit-max": "100", "x-hubspot-ratelimit-remaining": "97", "x-hubspot-ratelimit-interval-milliseconds": "10000", "x-hubspot-ratelimit-daily": "250000", "x-hubspot-ratelimit-daily-remaining": "1234" }),
      AT,
    );
    expect(signal).toEqual({ limit: 100, remaining: 97, windowMs: 10_000 });
  });

  it("holds a spent daily cap until the next whole UTC hour, when some time zone's midnight may have reset it", () => {
    const capped = answer(429, { "x-hubspot-ratelimit-daily": "250000", "x-hubspot-ratelimit-daily-remaining": "0" });
    expect(hubspotRateLimit(capped, AT)).toEqual({ retryAfterMs: 15 * 60_000 });
    // The last call allowed today says the same, so the next one is not spent on a refusal.
    expect(hubspotRateLimit(answer(200, { "x-hubspot-ratelimit-daily-remaining": "0" }), Date.UTC(2026, 11, 2, 23, 59, 30))).toEqual({ retryAfterMs: 30_000 });
  });

  it("holds a burst 429 for one interval, a Retry-After (477 migrations, or a 429 that has one) as long as it says", () => {
    const burst = { "x-hubspot-ratelimit-max": "100", "x-hubspot-ratelimit-remaining": "0", "x-hubspot-ratelimit-interval-milliseconds": "10000" };
    expect(hubspotRateLimit(answer(429, burst), AT)).toEqual({ limit: 100, remaining: 0, windowMs: 10_000, retryAfterMs: 10_000 });
    expect(hubspotRateLimit(answer(477, { "retry-after": "300" }), AT)).toEqual({ retryAfterMs: 300_000 });
    // The provider's own word is more exact than a whole interval.
    expect(hubspotRateLimit(answer(429, { ...burst, "retry-after": "2" }), AT)?.retryAfterMs).toBe(2_000);
    // A Retry-After on a plain error is not a hold.
    expect(hubspotRateLimit(answer(500, { "retry-after": "2" }), AT)).toBeUndefined();
  });
});
