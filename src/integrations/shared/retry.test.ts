import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Tier1ErrorType } from "./contract.js";
import { IntegrationError } from "./errors.js";
import { RETRY_POLICIES } from "../registry.js";
import { decideRetry, fullJitterDelay, MIN_RETRY_ATTEMPT_MS, parseRetryAfter, type RetryPolicy } from "./retry.js";

const policy: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 500,
  capDelayMs: 8_000,
  budgetMs: 30_000,
  maxRetryAfterMs: 20_000,
  rationale: "test",
};

const GET = { idempotent: true, hasIdempotencyKey: false };
const POST = { idempotent: false, hasIdempotencyKey: false };
const POST_WITH_KEY = { idempotent: false, hasIdempotencyKey: true };

function err(type: Tier1ErrorType, extra: { retryAfterSeconds?: number; providerRetryHint?: boolean } = {}): IntegrationError {
  return new IntegrationError({ type, message: `${type} failure`, ...extra });
}

type Row = {
  name: string;
  error: IntegrationError;
  attempt?: number;
  elapsedMs?: number;
  request?: { idempotent: boolean; hasIdempotencyKey: boolean };
  retry: boolean;
  delayMs?: number;
  reason?: RegExp;
};

describe("decideRetry", () => {
  // random() = 0.5 so backoff rows have a known delay: floor(0.5 * min(cap, base * 2^(n-1))).
  const half = () => 0.5;

  const rows: Row[] = [
    { name: "auth is never retried", error: err("auth"), retry: false, reason: /auth errors are not retried/ },
    { name: "schema is never retried", error: err("schema"), retry: false, reason: /schema errors are not retried/ },
    { name: "auth is not retried even with an idempotency key", error: err("auth"), request: POST_WITH_KEY, retry: false },
    { name: "schema with a Retry-After is still not retried", error: err("schema", { retryAfterSeconds: 1 }), retry: false },
    {
      name: "upstream with provider hint false is not retried",
      error: err("upstream", { providerRetryHint: false }),
      retry: false,
      reason: /advised against/,
    },
    {
      name: "rate-limit with provider hint false is not retried",
      error: err("rate-limit", { providerRetryHint: false, retryAfterSeconds: 1 }),
      retry: false,
      reason: /advised against/,
    },
    { name: "upstream with provider hint true is retried", error: err("upstream", { providerRetryHint: true }), retry: true, delayMs: 250 },
    { name: "out of attempts (attempt == attempts)", error: err("upstream"), attempt: 4, retry: false, reason: /gave up after 4 attempts/ },
    { name: "out of attempts (attempt > attempts)", error: err("network"), attempt: 5, retry: false },
    { name: "last permitted retry (attempt == attempts - 1)", error: err("upstream"), attempt: 3, retry: true, delayMs: 1000 },
    { name: "network on GET is retried", error: err("network"), request: GET, retry: true, delayMs: 250 },
    {
      name: "network on non-idempotent without key is not retried",
      error: err("network"),
      request: POST,
      retry: false,
      reason: /not idempotent and no idempotency key/,
    },
    { name: "network on non-idempotent with idempotency key is retried", error: err("network"), request: POST_WITH_KEY, retry: true, delayMs: 250 },
    {
      name: "upstream on non-idempotent without key is not retried",
      error: err("upstream"),
      request: POST,
      retry: false,
      reason: /not idempotent and no idempotency key/,
    },
    { name: "upstream on non-idempotent with idempotency key is retried", error: err("upstream"), request: POST_WITH_KEY, retry: true, delayMs: 250 },
    { name: "rate-limit on non-idempotent without key is retried", error: err("rate-limit"), request: POST, retry: true, delayMs: 250 },
    {
      name: "rate-limit Retry-After is honoured exactly (not jittered)",
      error: err("rate-limit", { retryAfterSeconds: 7 }),
      request: POST,
      retry: true,
      delayMs: 7_000,
    },
    { name: "decimal Retry-After is honoured in ms", error: err("rate-limit", { retryAfterSeconds: 1.5 }), retry: true, delayMs: 1_500 },
    { name: "Retry-After of 0 retries at once", error: err("rate-limit", { retryAfterSeconds: 0 }), retry: true, delayMs: 0 },
    {
      name: "Retry-After equal to maxRetryAfterMs is waited",
      error: err("rate-limit", { retryAfterSeconds: 20 }),
      retry: true,
      delayMs: 20_000,
    },
    {
      name: "Retry-After longer than maxRetryAfterMs is refused",
      error: err("rate-limit", { retryAfterSeconds: 21 }),
      retry: false,
      reason: /Retry-After of 21s exceeds the 20s/,
    },
    {
      name: "Retry-After that would overrun the budget is refused",
      error: err("rate-limit", { retryAfterSeconds: 10 }),
      elapsedMs: 20_001,
      retry: false,
      reason: /budget of 30000ms spent/,
    },
    {
      name: "Retry-After leaving exactly a useful attempt (MIN_RETRY_ATTEMPT_MS) of the budget is allowed",
      error: err("rate-limit", { retryAfterSeconds: 10 }),
      elapsedMs: 30_000 - 10_000 - MIN_RETRY_ATTEMPT_MS,
      retry: true,
      delayMs: 10_000,
    },
    {
      // The retry would start with nothing left: it could only time out past the budget.
      name: "Retry-After landing exactly on the budget is refused",
      error: err("rate-limit", { retryAfterSeconds: 10 }),
      elapsedMs: 20_000,
      retry: false,
      reason: /budget of 30000ms spent/,
    },
    {
      name: "backoff that would overrun the budget is refused",
      error: err("upstream"),
      attempt: 2,
      elapsedMs: 29_600,
      retry: false,
      reason: /budget/,
    },
    { name: "elapsed already past the budget is refused", error: err("network"), elapsedMs: 30_001, retry: false, reason: /budget/ },
  ];

  it.each(rows)("$name", (row) => {
    const decision = decideRetry({
      error: row.error,
      attempt: row.attempt ?? 1,
      elapsedMs: row.elapsedMs ?? 0,
      policy,
      request: row.request ?? GET,
      random: half,
    });
    expect(decision.retry).toBe(row.retry);
    if (decision.retry) {
      expect(decision.delayMs).toBe(row.delayMs);
    } else if (row.reason) {
      expect(decision.reason).toMatch(row.reason);
    }
  });

  it("uses full jitter for backoff (random scales the delay)", () => {
    const at = (r: number) => decideRetry({ error: err("upstream"), attempt: 3, elapsedMs: 0, policy, request: GET, random: () => r });
    expect(at(0)).toEqual({ retry: true, delayMs: 0 });
    expect(at(0.25)).toEqual({ retry: true, delayMs: 500 });
    expect(at(0.75)).toEqual({ retry: true, delayMs: 1_500 });
  });

  it("never retries auth or schema, whatever the other facts", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Tier1ErrorType>("auth", "schema"),
        fc.integer({ min: 1, max: 10 }),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
        (type, attempt, idempotent, hasIdempotencyKey, retryAfterSeconds) => {
          const decision = decideRetry({
            error: err(type, retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
            attempt,
            elapsedMs: 0,
            policy,
            request: { idempotent, hasIdempotencyKey },
          });
          expect(decision.retry).toBe(false);
        },
      ),
    );
  });
});

describe("fullJitterDelay", () => {
  const policyArb = fc.record({ baseDelayMs: fc.integer({ min: 1, max: 10_000 }), capDelayMs: fc.integer({ min: 1, max: 120_000 }) });

  it("stays within [0, min(cap, base * 2^(n-1))]", () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (p, n, r) => {
        const d = fullJitterDelay(n, p, () => r);
        const ceiling = Math.min(p.capDelayMs, p.baseDelayMs * 2 ** (n - 1));
        expect(Number.isInteger(d)).toBe(true);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(ceiling);
      }),
    );
  });

  it("comes right up to the ceiling when random() is just below 1", () => {
    const nearOne = () => 0.9999999999;
    // ceiling 500 * 2^0 = 500
    expect(fullJitterDelay(1, { baseDelayMs: 500, capDelayMs: 8_000 }, nearOne)).toBe(499);
    // ceiling 500 * 2^3 = 4000
    expect(fullJitterDelay(4, { baseDelayMs: 500, capDelayMs: 8_000 }, nearOne)).toBe(3_999);
    // capped: 500 * 2^9 > 8000
    expect(fullJitterDelay(10, { baseDelayMs: 500, capDelayMs: 8_000 }, nearOne)).toBe(7_999);
  });

  it("is 0 when random() is 0", () => {
    expect(fullJitterDelay(5, { baseDelayMs: 500, capDelayMs: 8_000 }, () => 0)).toBe(0);
  });

  it("stays within bounds for every shipped policy with the real Math.random", () => {
    for (const p of Object.values(RETRY_POLICIES)) {
      for (let n = 1; n <= p.attempts; n++) {
        for (let i = 0; i < 200; i++) {
          const d = fullJitterDelay(n, p);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(Math.min(p.capDelayMs, p.baseDelayMs * 2 ** (n - 1)));
        }
      }
    }
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(2025, 0, 15, 12, 0, 0);

  it.each([
    ["0", 0],
    ["2", 2],
    ["120", 120],
    [" 3 ", 3],
    ["1.5", 1.5],
    ["0.25", 0.25],
  ])("parses delay-seconds %j as %d", (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it("parses an HTTP-date in the future as the seconds until it", () => {
    const future = new Date(now + 90_000).toUTCString();
    expect(parseRetryAfter(future, now)).toBe(90);
    expect(parseRetryAfter("Wed, 15 Jan 2025 12:02:00 GMT", now)).toBe(120);
  });

  it("rounds a future HTTP-date up to whole seconds", () => {
    // The date has second precision; now is 250ms past the second.
    expect(parseRetryAfter("Wed, 15 Jan 2025 12:00:10 GMT", now + 250)).toBe(10);
  });

  it("parses an HTTP-date in the past as 0", () => {
    expect(parseRetryAfter(new Date(now - 60_000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now)).toBe(0);
  });

  it.each(["soon", "abc", "3s", "1e3", "0x10", "NaN"])("returns undefined for garbage %j", (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });

  // BUG (src/integrations/shared/retry.ts:124): values that are neither delay-seconds nor an
  // HTTP-date fall through to V8's lenient Date.parse, which reads "-1" as 2001-01-01 and
  // "1,5" as 2001-01-05, so they come back as 0 (retry at once) instead of undefined.
  it("returns undefined for values that are neither delay-seconds nor an HTTP-date", () => {
    const values = ["-1", "-5", "+5", "1,5", "1.5.3", "in 5", "10-20"];
    expect(values.map((value) => [value, parseRetryAfter(value, now)])).toEqual(values.map((value) => [value, undefined]));
  });

  it.each(["", "   ", null, undefined])("returns undefined for empty/absent %j", (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});
