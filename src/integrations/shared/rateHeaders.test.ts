/**
 * The header parsing the rate-limit readers share: what is read, what is
 * refused as not understood, and when a provider's instant is moved onto
 * our clock.
 */
import { describe, expect, it } from "vitest";
import {
  CLOCK_SKEW_TOLERANCE_MS,
  countHeader,
  epochHeader,
  isoInstantHeader,
  msUntil,
  onOurClock,
  rateSignal,
  retryAfterMs,
  throttleRetryAfterMs,
} from "./rateHeaders.js";

const NOW = Date.UTC(2026, 11, 2, 10, 30, 15, 250);
const answer = (headers: Record<string, string>, status = 200) => ({ status, headers: new Headers(headers) });

describe("countHeader", () => {
  it.each([
    ["0", 0],
    ["42", 42],
    [" 7 ", 7],
  ])("reads %j as %d", (value, expected) => {
    expect(countHeader(answer({ "x-count": value }), "x-count")).toBe(expected);
  });
  it.each(["", "-1", "1.5", "12abc", "1e3", "99999999999999999999"])("refuses %j", (value) => {
    expect(countHeader(answer({ "x-count": value }), "x-count")).toBeUndefined();
  });
  it("answers undefined without the header, and reads names case-insensitively", () => {
    expect(countHeader(answer({}), "x-count")).toBeUndefined();
    expect(countHeader(answer({ "X-Count": "3" }), "x-count")).toBe(3);
  });
});

describe("epochHeader", () => {
  it("reads epoch seconds and milliseconds as milliseconds", () => {
    expect(epochHeader(answer({ r: "1796207400" }), "r", "seconds", NOW)).toBe(1_796_207_400_000);
    expect(epochHeader(answer({ r: "1796207400123" }), "r", "milliseconds", NOW)).toBe(1_796_207_400_123);
    expect(epochHeader(answer({ r: "1796207400.5" }), "r", "seconds", NOW)).toBe(1_796_207_400_500);
  });
  it("refuses a delay sent where an epoch was documented, and what does not parse", () => {
    expect(epochHeader(answer({ r: "30" }), "r", "seconds", NOW)).toBeUndefined();
    // Milliseconds read as seconds would be far in the future; seconds read as milliseconds, in 1970.
    expect(epochHeader(answer({ r: "1796207400" }), "r", "milliseconds", NOW)).toBeUndefined();
    expect(epochHeader(answer({ r: "soon" }), "r", "seconds", NOW)).toBeUndefined();
    expect(epochHeader(answer({}), "r", "seconds", NOW)).toBeUndefined();
  });
});

describe("isoInstantHeader", () => {
  it.each([
    // Jira's documented form, to the minute.
    ["2026-12-02T10:31Z", Date.UTC(2026, 11, 2, 10, 31)],
    ["2026-12-02T10:31:05Z", Date.UTC(2026, 11, 2, 10, 31, 5)],
    ["2026-12-02T10:31:05.250Z", Date.UTC(2026, 11, 2, 10, 31, 5, 250)],
    ["2026-12-02T11:31+01:00", Date.UTC(2026, 11, 2, 10, 31)],
    ["2026-12-02T05:01-0530", Date.UTC(2026, 11, 2, 10, 31)],
  ])("reads %s", (value, expected) => {
    expect(isoInstantHeader(answer({ reset: value }), "reset", NOW)).toBe(expected);
  });
  it.each(["2026-12-02", "2026-12-02T10:31", "1796207400", "Wed, 02 Dec 2026 10:31:00 GMT", "2026-13-45T99:99Z"])("refuses %j", (value) => {
    expect(isoInstantHeader(answer({ reset: value }), "reset", NOW)).toBeUndefined();
  });
});

describe("retryAfterMs", () => {
  it("reads delay-seconds (decimal too, as Graph sends) and an HTTP-date, in milliseconds", () => {
    expect(retryAfterMs(answer({ "retry-after": "30" }), NOW)).toBe(30_000);
    expect(retryAfterMs(answer({ "retry-after": "2.128" }), NOW)).toBe(2_128);
    expect(retryAfterMs(answer({ "retry-after": new Date(NOW + 90_000).toUTCString() }), NOW)).toBe(90_000);
    expect(retryAfterMs(answer({ "retry-after": "-1" }), NOW)).toBeUndefined();
    expect(retryAfterMs(answer({}), NOW)).toBeUndefined();
  });
  it("reads it only on the statuses a provider throttles with", () => {
    expect(throttleRetryAfterMs(answer({ "retry-after": "5" }, 429), NOW)).toBe(5_000);
    expect(throttleRetryAfterMs(answer({ "retry-after": "5" }, 503), NOW)).toBeUndefined();
    expect(throttleRetryAfterMs(answer({ "retry-after": "5" }, 503), NOW, [429, 503])).toBe(5_000);
  });
});

describe("onOurClock", () => {
  const at = NOW + 60_000;
  it("leaves an instant alone when the provider's Date agrees with ours within the tolerance, or is missing", () => {
    expect(onOurClock(at, answer({ date: new Date(NOW - 2_000).toUTCString() }), NOW)).toBe(at);
    expect(onOurClock(at, answer({}), NOW)).toBe(at);
    expect(onOurClock(at, answer({ date: "yesterday" }), NOW)).toBe(at);
  });
  it("moves it by the skew when the provider's clock is off by more", () => {
    // The provider's clock runs 30 seconds ahead: its reset is 30 seconds earlier on ours.
    const ahead = Math.floor((NOW + 30_000) / 1000) * 1000;
    expect(onOurClock(at, answer({ date: new Date(ahead).toUTCString() }), NOW)).toBe(at + (NOW - ahead));
    expect(CLOCK_SKEW_TOLERANCE_MS).toBeLessThan(30_000);
  });
  it("applies to the epoch and ISO readers", () => {
    const behind = { date: new Date(NOW - 3_600_000).toUTCString(), reset: String(Math.floor(NOW / 1000) - 3_600 + 60) };
    const read = epochHeader(answer(behind), "reset", "seconds", NOW) as number;
    expect(Math.abs(read - (NOW + 60_000))).toBeLessThan(1_000);
  });
});

describe("rateSignal and msUntil", () => {
  it("drops what is undefined and answers undefined for nothing", () => {
    expect(rateSignal({ limit: 5, remaining: undefined, retryAfterMs: 0 })).toEqual({ limit: 5, retryAfterMs: 0 });
    expect(rateSignal({ limit: undefined })).toBeUndefined();
    expect(rateSignal({})).toBeUndefined();
  });
  it("never answers a negative wait", () => {
    expect(msUntil(NOW + 10, NOW)).toBe(10);
    expect(msUntil(NOW - 10, NOW)).toBe(0);
  });
});
