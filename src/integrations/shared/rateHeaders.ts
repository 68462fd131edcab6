/**
 * The parsing every connector's rate-limit reader shares: a count, an epoch
 * in seconds or milliseconds, an ISO 8601 instant, `Retry-After`, and the
 * move of a provider's instant onto this machine's clock. Which header means
 * what is each provider's business (`<provider>/rateLimit.ts`); how a value
 * is read is decided once, here. A value that does not parse is treated as
 * absent: a header we do not understand must not make us wait, nor rush.
 */
import type { RateSignal } from "./rateSignal.js";
import { parseRetryAfter } from "./retry.js";

type WithHeaders = { headers: Headers };

/**
 * How far the provider's `Date` may be from our clock before its instants
 * are moved onto ours. `Date` has whole seconds, and the answer spent time
 * in transit, so a gap of a second or two is noise, not skew; correcting it
 * would push a one-second window's reset out of its window. Five seconds is
 * well above that noise and well below the windows a reader cares about.
 */
export const CLOCK_SKEW_TOLERANCE_MS = 5_000;

/**
 * No reset instant in seconds is this small (it is 2001-09-09): a smaller
 * number is a delay someone sent where an epoch was documented, and is
 * refused rather than read as a reset long past.
 */
const EPOCH_SECONDS_FLOOR = 1_000_000_000;

const COUNT = /^\s*(\d+)\s*$/;
const NUMBER = /^\s*(\d+(?:\.\d+)?)\s*$/;
/** ISO 8601 as providers send it: a date, a time to the minute or beyond, and Z or an offset (Jira: `yyyy-MM-ddTHH:mmZ`). */
const ISO_INSTANT = /^\s*(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})\s*$/;

/** A header holding a count (a limit, what remains): a non-negative integer, or undefined. */
export function countHeader(response: WithHeaders, name: string): number | undefined {
  const match = COUNT.exec(response.headers.get(name) ?? "");
  if (match?.[1] === undefined) return undefined;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * A header holding an epoch instant in `unit` (Sentry: seconds; Linear:
 * milliseconds), as epoch milliseconds on our clock (see {@link onOurClock}).
 */
export function epochHeader(response: WithHeaders, name: string, unit: "seconds" | "milliseconds", nowMs: number): number | undefined {
  const match = NUMBER.exec(response.headers.get(name) ?? "");
  if (match?.[1] === undefined) return undefined;
  const value = Number(match[1]);
  const seconds = unit === "seconds" ? value : value / 1000;
  if (!Number.isFinite(seconds) || seconds < EPOCH_SECONDS_FLOOR) return undefined;
  return onOurClock(Math.round(seconds * 1000), response, nowMs);
}

/** A header holding an ISO 8601 instant with Z or an offset, as epoch milliseconds on our clock. */
export function isoInstantHeader(response: WithHeaders, name: string, nowMs: number): number | undefined {
  const match = ISO_INSTANT.exec(response.headers.get(name) ?? "");
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  // Date.parse wants the offset's colon; `+0100` is ISO 8601 too.
  const zone = match[2] === "Z" ? "Z" : `${match[2].slice(0, 3)}:${match[2].slice(-2)}`;
  const ms = Date.parse(`${match[1]}${zone}`);
  return Number.isNaN(ms) ? undefined : onOurClock(ms, response, nowMs);
}

/** `Retry-After` (delay-seconds or an HTTP-date, see {@link parseRetryAfter}) in milliseconds, or undefined. */
export function retryAfterMs(response: WithHeaders, nowMs: number): number | undefined {
  const seconds = parseRetryAfter(response.headers.get("retry-after"), nowMs);
  return seconds === undefined ? undefined : Math.ceil(seconds * 1000);
}

/** `Retry-After` in milliseconds when the answer's status is one the provider throttles with, else undefined. */
export function throttleRetryAfterMs(response: WithHeaders & { status: number }, nowMs: number, statuses: readonly number[] = [429]): number | undefined {
  return statuses.includes(response.status) ? retryAfterMs(response, nowMs) : undefined;
}

/**
 * A provider's instant moved onto our clock: shifted by the gap between the
 * answer's `Date` and `nowMs` when that gap exceeds
 * {@link CLOCK_SKEW_TOLERANCE_MS}, left as it is otherwise (or without `Date`).
 */
export function onOurClock(providerMs: number, response: WithHeaders, nowMs: number): number {
  const date = response.headers.get("date");
  const providerNow = date === null ? Number.NaN : Date.parse(date);
  if (Number.isNaN(providerNow)) return providerMs;
  const skew = nowMs - providerNow;
  return Math.abs(skew) > CLOCK_SKEW_TOLERANCE_MS ? providerMs + skew : providerMs;
}

/** How long from `nowMs` until `atMs`, never negative. */
export function msUntil(atMs: number, nowMs: number): number {
  return Math.max(0, atMs - nowMs);
}

/** The signal without its undefined fields; undefined when nothing is left (the answer told nothing). */
export function rateSignal(parts: RateSignal): RateSignal | undefined {
  const signal: RateSignal = {};
  for (const key of ["limit", "remaining", "resetAtMs", "windowMs", "retryAfterMs"] as const) {
    const value = parts[key];
    if (value !== undefined) signal[key] = value;
  }
  return Object.keys(signal).length === 0 ? undefined : signal;
}
