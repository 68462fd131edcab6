/**
 * The pacer: a limiter per provider account, fed by the rate-limit headers of
 * every answer ({@link RateSignal}), so calls slow down before the provider
 * says 429, wait in line for the window to reset, and fail with a rate-limit
 * error carrying Retry-After when the wait would pass the caller's deadline.
 *
 * Two halves. A {@link RateWindowStore} keeps one budget per key (one
 * provider account), shared by every instance that uses the same store:
 * {@link MemoryRateWindows} for one process, `PgRateWindows` in `store/` for
 * instances on one PostgreSQL. The {@link Pacer} queues this process's
 * callers per key and lets only the head of each line ask the store.
 *
 * The rules of a budget (both stores implement exactly these; a test drives
 * both with the same steps and compares):
 * - A hold (`retryAfterMs`, a 429's Retry-After) blocks every take until it
 *   passes; holds only ever lengthen.
 * - A known window (remaining and an end) is a counter: a take consumes one;
 *   a take with none left waits for the window's end.
 * - Observations merge conservatively. Within the open window the lower
 *   remaining is kept (takes granted here that the provider has not counted
 *   yet are in flight) and the end the provider told last (it stands over a
 *   provisional one guessed here); a 429's empty count gives way to its
 *   Retry-After, which says when to call again; a signal of a later window
 *   starts that window from the signal. A signal whose window already ended
 *   tells nothing about the current one and is not counted.
 * - A window whose end has passed, with its limit and length known, opens a
 *   provisional window here (remaining = limit, ending one length after the
 *   first take past the old end) until a signal says more; without them the
 *   window is forgotten.
 * - A provider that tells only an interval (HubSpot) gets a window ending
 *   that long after the observation. A provider that tells only the end gets
 *   its length estimated as the longest span seen from an answer to its
 *   window's end (never longer than the real window, so a guess).
 * - Nothing known, or an unknown key: the take is granted.
 * - An entry whose hold and window ended {@link RATE_WINDOW_RETAIN_MS} ago
 *   and that nothing touched since may be forgotten, so memory and the table
 *   do not grow without bound.
 *
 * Times are epoch milliseconds of the caller's clock, as the signals are;
 * instances sharing a store are assumed to keep their clocks in step (NTP).
 */
import { ErrorCodes, IntegrationError } from "./errors.js";
import { systemClock, type Clock } from "./http.js";
import type { RateSignal } from "./rateSignal.js";

/**
 * The shared budget per key: see the rules at the top of this file. A key
 * names one provider account (the provider and its account id, e.g. a Slack
 * team); it is stored in clear, so it never holds a token.
 */
export interface RateWindowStore {
  /** Asks for one call now: granted, or told when to ask again. */
  take(key: string, nowMs: number): Promise<{ ok: true } | { ok: false; waitUntilMs: number }>;
  /** Merges what one answer told about the key's budget. */
  observe(key: string, signal: RateSignal, nowMs: number): Promise<void>;
  /** Forgets every budget and hold (an operator's reset; tests after an injected throttle). */
  clear?(): Promise<void>;
  /**
   * The store answers from this process's memory, at once: the pacer asks it without setting a
   * timer against a slow answer (one a call, some microseconds). Unset for a store over a network.
   */
  readonly inProcess?: boolean;
  /**
   * `take`, answered synchronously: a store in this process's memory offers it, and the pacer then grants a
   * call whose line is empty without a promise or a turn of the event loop. It must do exactly what `take`
   * does (a store that changes `take` changes or drops it too: MemoryRateWindows drops it).
   */
  takeNow?(key: string, nowMs: number): TakeVerdict;
  /** `observe`, done synchronously, exactly as `observe` does it (see `takeNow`). */
  observeNow?(key: string, signal: RateSignal, nowMs: number): void;
}

/**
 * How long an entry outlives its window and its hold when nothing touches
 * it: long beside the windows providers tell (HubSpot's 10 s, Sentry's and
 * Linear's resets), so an account called now and then keeps what was learnt
 * of its limit, and short enough that accounts no longer called leave memory
 * and the table within minutes. A longer window is kept by its end, from
 * which this counts.
 */
export const RATE_WINDOW_RETAIN_MS = 10 * 60_000;

/** How often a store sweeps expired entries (on an observation, so an idle store does no work). */
export const RATE_WINDOW_PRUNE_INTERVAL_MS = 60_000;

/**
 * Two window ends less than this apart are one window: a reader that turns a
 * coarse or relative reset (epoch seconds, a minute, seconds from now) into
 * an end may land one window's end on different milliseconds from answer to
 * answer. A provider with one-second windows is then only treated a little
 * more cautiously (the lower count wins).
 */
export const SAME_WINDOW_SLACK_MS = 1_000;

/** The largest count kept (a PostgreSQL integer); a provider's limit is far below. */
const MAX_COUNT = 2_147_483_647;

/** One key's budget. All times are epoch milliseconds. */
export type RateWindow = {
  limit?: number;
  /** Calls left in the window ending at `resetAtMs`; set together with it. */
  remaining?: number;
  resetAtMs?: number;
  /** The window's length: told by the provider, or estimated (see the rules). */
  windowMs?: number;
  holdUntilMs?: number;
  /** When the entry may be forgotten. */
  expiresAtMs: number;
};

/** What a signal says, in whole numbers, with what cannot be used left out. */
export type Observation = {
  limit?: number;
  /** Set only together with `endMs` or `windowMs` (a window needs an end). */
  remaining?: number;
  /** The end the provider told, in the future. */
  endMs?: number;
  /** The length the provider told. */
  windowMs?: number;
  /** The length suggested by the told end (`endMs - now`). */
  spanMs?: number;
  holdUntilMs?: number;
};

const count = (n: number | undefined): number | undefined =>
  n !== undefined && Number.isFinite(n) && n >= 0 ? Math.min(MAX_COUNT, Math.floor(n)) : undefined;
const positiveMs = (n: number | undefined): number | undefined => (n !== undefined && Number.isFinite(n) && n > 0 ? Math.ceil(n) : undefined);

/**
 * The longest a hold, a window or its end is taken to last: a day covers
 * every provider's daily cap, and a nonsensical Retry-After (a year, from a
 * bug or a proxy in between) does not stop an account for good.
 */
export const MAX_HOLD_MS = 24 * 60 * 60 * 1000;
const capped = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.min(ms, MAX_HOLD_MS));

/** Reads a signal into an {@link Observation}: negative, non-finite and stale values are dropped. */
export function readSignal(signal: RateSignal, nowMs: number): Observation {
  const now = Math.floor(nowMs);
  const end = signal.resetAtMs !== undefined && Number.isFinite(signal.resetAtMs) ? Math.ceil(signal.resetAtMs) : undefined;
  const windowMs = capped(positiveMs(signal.windowMs));
  const retryAfterMs = capped(positiveMs(signal.retryAfterMs));
  const limit = count(signal.limit);
  // A remaining whose window already ended (a slow answer, a skewed clock) says nothing about the current window.
  const endMs = end !== undefined && end > now ? Math.min(end, now + MAX_HOLD_MS) : undefined;
  const told = end !== undefined && endMs === undefined ? undefined : count(signal.remaining);
  // A throttled answer's Retry-After says when to call again, more exactly than a window that reads empty
  // (a rolling window frees up before its whole length has passed): the hold stands for it.
  const remaining = told === 0 && retryAfterMs !== undefined ? undefined : told;
  return {
    ...(limit !== undefined ? { limit } : {}),
    ...(remaining !== undefined && (endMs !== undefined || windowMs !== undefined) ? { remaining } : {}),
    ...(endMs !== undefined ? { endMs, spanMs: endMs - now } : {}),
    ...(windowMs !== undefined ? { windowMs } : {}),
    ...(retryAfterMs !== undefined ? { holdUntilMs: now + retryAfterMs } : {}),
  };
}

const maxDefined = (...values: (number | undefined)[]): number | undefined => {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length > 0 ? Math.max(...defined) : undefined;
};

function expiry(window: Omit<RateWindow, "expiresAtMs">, nowMs: number): number {
  return Math.max(nowMs, window.resetAtMs ?? 0, window.holdUntilMs ?? 0) + RATE_WINDOW_RETAIN_MS;
}

/** The entry after an observation (`window` undefined: nothing known yet). */
export function mergeObservation(window: RateWindow | undefined, o: Observation, nowMs: number): RateWindow {
  const now = Math.floor(nowMs);
  const limit = o.limit ?? window?.limit;
  const windowMs = o.windowMs ?? maxDefined(window?.windowMs, o.spanMs);
  const holdUntilMs = maxDefined(window?.holdUntilMs, o.holdUntilMs);
  let remaining = window?.remaining;
  let resetAtMs = window?.resetAtMs;
  // The signal's window ends when the provider said, or one told length after this answer.
  const signalEnd = o.endMs ?? (o.windowMs !== undefined ? now + o.windowMs : undefined);
  if (o.remaining !== undefined && signalEnd !== undefined) {
    const open = resetAtMs !== undefined && resetAtMs > now;
    const sameWindow = open && (o.endMs === undefined || o.endMs < (resetAtMs as number) + SAME_WINDOW_SLACK_MS);
    if (sameWindow) {
      // Calls taken and not yet counted by the provider are in flight: the lower count stands. The end the
      // provider told stands over one guessed here (a provisional window opened when the last one ended).
      remaining = Math.min(remaining ?? o.remaining, o.remaining);
      resetAtMs = o.endMs ?? (resetAtMs as number);
    } else {
      remaining = o.remaining;
      resetAtMs = signalEnd;
    }
  }
  const next = {
    ...(limit !== undefined ? { limit } : {}),
    ...(remaining !== undefined ? { remaining } : {}),
    ...(resetAtMs !== undefined ? { resetAtMs } : {}),
    ...(windowMs !== undefined ? { windowMs } : {}),
    ...(holdUntilMs !== undefined ? { holdUntilMs } : {}),
  };
  return { ...next, expiresAtMs: expiry(next, now) };
}

export type TakeVerdict = { ok: true } | { ok: false; waitUntilMs: number };

/** One take against an entry: the verdict and the entry after it. */
export function takeFromWindow(window: RateWindow, nowMs: number): { verdict: TakeVerdict; window: RateWindow } {
  const now = Math.floor(nowMs);
  if (window.holdUntilMs !== undefined && window.holdUntilMs > now) {
    return { verdict: { ok: false, waitUntilMs: window.holdUntilMs }, window: { ...window, expiresAtMs: expiry(window, now) } };
  }
  const { remaining: _remaining, resetAtMs: _resetAtMs, expiresAtMs: _expiresAtMs, ...rest } = window;
  let remaining = window.remaining;
  let resetAtMs = window.resetAtMs;
  if (resetAtMs !== undefined && resetAtMs <= now) {
    // The window ended: open a provisional one when we know how many calls a window allows and how long it lasts.
    const known = window.limit !== undefined && window.windowMs !== undefined;
    remaining = known ? window.limit : undefined;
    resetAtMs = known ? now + (window.windowMs as number) : undefined;
  }
  let verdict: TakeVerdict = { ok: true };
  if (remaining !== undefined && resetAtMs !== undefined) {
    if (remaining <= 0) verdict = { ok: false, waitUntilMs: resetAtMs };
    else remaining -= 1;
  }
  const next = { ...rest, ...(remaining !== undefined ? { remaining } : {}), ...(resetAtMs !== undefined ? { resetAtMs } : {}) };
  return { verdict, window: { ...next, expiresAtMs: expiry(next, now) } };
}

/** The budgets of one process: what a single instance (SQLite deployments) uses. */
export class MemoryRateWindows implements RateWindowStore {
  readonly inProcess = true;
  /** `take`, answered synchronously (see RateWindowStore); unset on a subclass that overrides `take`, so that nothing goes around the override. */
  readonly takeNow?: (key: string, nowMs: number) => TakeVerdict;
  /** `observe`, done synchronously; unset on a subclass that overrides `observe` or `prune`. */
  readonly observeNow?: (key: string, signal: RateSignal, nowMs: number) => void;
  private readonly windows = new Map<string, RateWindow>();
  private lastPruneMs = Number.NEGATIVE_INFINITY;

  constructor() {
    const own = MemoryRateWindows.prototype;
    if (this.take === own.take) this.takeNow = (key, nowMs) => this.takeWindow(key, nowMs);
    if (this.observe === own.observe && this.prune === own.prune) this.observeNow = (key, signal, nowMs) => this.observeWindow(key, signal, nowMs);
  }

  async take(key: string, nowMs: number): Promise<TakeVerdict> {
    return this.takeWindow(key, nowMs);
  }

  async observe(key: string, signal: RateSignal, nowMs: number): Promise<void> {
    if (this.pruneDue(nowMs)) await this.prune(nowMs);
    this.merge(key, signal, nowMs);
  }

  async clear(): Promise<void> {
    this.windows.clear();
  }

  /** Forgets expired entries; returns how many. */
  async prune(nowMs: number): Promise<number> {
    return this.pruneWindows(nowMs);
  }

  private takeWindow(key: string, nowMs: number): TakeVerdict {
    const window = this.windows.get(key);
    if (!window) return { ok: true };
    const taken = takeFromWindow(window, nowMs);
    this.windows.set(key, taken.window);
    return taken.verdict;
  }

  private observeWindow(key: string, signal: RateSignal, nowMs: number): void {
    if (this.pruneDue(nowMs)) this.pruneWindows(nowMs);
    this.merge(key, signal, nowMs);
  }

  private merge(key: string, signal: RateSignal, nowMs: number): void {
    this.windows.set(key, mergeObservation(this.windows.get(key), readSignal(signal, nowMs), nowMs));
  }

  private pruneDue(nowMs: number): boolean {
    return nowMs - this.lastPruneMs >= RATE_WINDOW_PRUNE_INTERVAL_MS;
  }

  private pruneWindows(nowMs: number): number {
    this.lastPruneMs = nowMs;
    let removed = 0;
    for (const [key, window] of this.windows) {
      if (window.expiresAtMs <= nowMs) {
        this.windows.delete(key);
        removed += 1;
      }
    }
    return removed;
  }

  /** The entry of a key, as it stands (for tests and diagnostics). */
  entry(key: string): Readonly<RateWindow> | undefined {
    return this.windows.get(key);
  }

  /** How many keys are held (for tests and metrics). */
  get size(): number {
    return this.windows.size;
  }
}

/**
 * A call could not be paced within its deadline: the account's budget frees
 * up only after it. A rate-limit error, so the HTTP layer answers 429 with
 * Retry-After; no request was sent.
 */
export class PacingTimeoutError extends IntegrationError {
  readonly key: string;
  /** How long from the rejection until the budget frees up, as far as is known. */
  readonly retryAfterMs: number;

  constructor(key: string, retryAfterMs: number) {
    const ms = Math.max(0, Math.ceil(retryAfterMs));
    super({
      type: "rate-limit",
      code: ErrorCodes.PACING_TIMEOUT,
      message: `the account's rate budget frees up in ${Math.ceil(ms / 1000)} s, after the call's deadline`,
      retryAfterSeconds: Math.ceil(ms / 1000),
    });
    this.key = key;
    this.retryAfterMs = ms;
  }
}

/**
 * The longest the head of a line sleeps before asking the store again, even
 * when the store named a later time: another instance may meanwhile have set
 * a hold that passes queued deadlines (rejected then, not at the old time) or
 * seen a new window open early.
 */
export const PACER_POLL_MS = 250;

/**
 * How long the pacer waits for the store before letting a call through: a
 * slow database must not hold calls back longer than the limiter saves.
 */
export const PACER_STORE_TIMEOUT_MS = 1_000;

/**
 * After the store failed, calls go through without asking it for this long,
 * so a database that is down costs one timeout, not one a call.
 */
export const PACER_FAIL_OPEN_MS = 5_000;

export type PacerOptions = {
  store: RateWindowStore;
  clock?: Clock;
  /** Store failures (the pacer failed open, or an observation was lost); never thrown into a call. */
  onError?: (error: unknown, key: string) => void;
  /** See {@link PACER_STORE_TIMEOUT_MS}; real milliseconds, not the clock's. */
  storeTimeoutMs?: number;
};

type Waiter = { deadlineMs: number; resolve(): void; reject(error: unknown): void };

type Line = {
  waiters: Waiter[];
  /** The latest time the store named to wait until: later arrivals whose deadline falls before it are rejected at once. */
  waitUntilMs?: number;
  /** Cuts the head's sleep short (an observation changed the budget). */
  wake?: () => void;
};

class StoreTimeoutError extends Error {
  override readonly name = "StoreTimeoutError";
}

/** Queues this process's calls per key, in order, and asks the store for each, only from the head of the line. */
export class Pacer {
  private readonly store: RateWindowStore;
  private readonly clock: Clock;
  private readonly onError: (error: unknown, key: string) => void;
  private readonly storeTimeoutMs: number;
  private readonly lines = new Map<string, Line>();
  private readonly pending = new Set<Promise<void>>();
  private failOpenUntilMs = Number.NEGATIVE_INFINITY;

  constructor(options: PacerOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    const onError = options.onError ?? (() => undefined);
    // A reporter that throws must not stop a line (its callers would never be answered).
    this.onError = (error, key) => {
      try {
        onError(error, key);
      } catch {
        // Nothing else to tell.
      }
    };
    this.storeTimeoutMs = options.storeTimeoutMs ?? PACER_STORE_TIMEOUT_MS;
  }

  /**
   * Resolves when a call for `key` may be sent; rejects with
   * {@link PacingTimeoutError} as soon as the wait is known to end after
   * `deadlineMs` (epoch milliseconds of the clock).
   */
  acquire(key: string, deadlineMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const now = this.clock.now();
      let line = this.lines.get(key);
      if (line?.waitUntilMs !== undefined && deadlineMs < line.waitUntilMs) {
        reject(new PacingTimeoutError(key, line.waitUntilMs - now));
        return;
      }
      if (!line) {
        line = { waiters: [] };
        this.lines.set(key, line);
      }
      line.waiters.push({ deadlineMs, resolve, reject });
      if (line.waiters.length === 1) void this.serve(key, line);
    });
  }

  /**
   * Grants a call for `key` at once when that needs no wait and no promise: nobody is in line for the key
   * and the store answers synchronously (`takeNow`) with a grant, or the pacer is failing open. False when
   * the call must go through {@link acquire}, which asks the store again (a refused take spends nothing; it
   * leaves the budget as `take` leaves it when it refuses). Always false on a subclass that overrides
   * `acquire`, so that no call goes around the override.
   */
  tryAcquire(key: string): boolean {
    if (this.lines.has(key) || this.acquire !== Pacer.prototype.acquire) return false;
    const now = this.clock.now();
    if (now < this.failOpenUntilMs) return true;
    if (!this.store.takeNow) return false;
    try {
      return this.store.takeNow(key, now).ok;
    } catch (error) {
      return this.failOpen(error, key).ok;
    }
  }

  /** Passes what an answer told to the store, in the background (at once, for a store that observes synchronously); failures go to `onError`. */
  observe(key: string, signal: RateSignal): void {
    if (this.store.observeNow) {
      try {
        this.store.observeNow(key, signal, this.clock.now());
      } catch (error) {
        this.onError(error, key);
        return;
      }
      this.lines.get(key)?.wake?.();
      return;
    }
    const done = this.store.observe(key, signal, this.clock.now()).then(
      () => this.lines.get(key)?.wake?.(),
      (error: unknown) => this.onError(error, key),
    );
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  /** Resolves once every observation passed so far has reached the store (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Serves a line from its head until it is empty; one runs per non-empty line. */
  private async serve(key: string, line: Line): Promise<void> {
    while (line.waiters.length > 0) {
      const head = line.waiters[0] as Waiter;
      const verdict = await this.take(key);
      const now = this.clock.now();
      if (verdict.ok) {
        line.waiters.shift();
        line.waitUntilMs = undefined;
        head.resolve();
        continue;
      }
      line.waitUntilMs = verdict.waitUntilMs;
      // Everyone in line waits at least that long: those whose deadline falls before it are told now.
      const kept = line.waiters.filter((w) => w.deadlineMs >= verdict.waitUntilMs);
      for (const w of line.waiters) if (w.deadlineMs < verdict.waitUntilMs) w.reject(new PacingTimeoutError(key, verdict.waitUntilMs - now));
      line.waiters = kept;
      if (kept.length === 0) break;
      await this.sleep(line, Math.max(1, Math.min(verdict.waitUntilMs - now, PACER_POLL_MS)));
    }
    line.waitUntilMs = undefined;
    if (this.lines.get(key) === line && line.waiters.length === 0) this.lines.delete(key);
  }

  private async sleep(line: Line, ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      line.wake = resolve;
      this.clock.sleep(ms).then(resolve, resolve);
    });
    line.wake = undefined;
  }

  /** The store's verdict; a store that fails or is slow lets the call through (fail open), reported once. */
  private async take(key: string): Promise<TakeVerdict> {
    const now = this.clock.now();
    if (now < this.failOpenUntilMs) return { ok: true };
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.store.inProcess) return await this.store.take(key, now);
      return await Promise.race([
        this.store.take(key, now),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StoreTimeoutError(`the rate window store did not answer within ${this.storeTimeoutMs} ms`)), this.storeTimeoutMs);
          timer.unref();
        }),
      ]);
    } catch (error) {
      return this.failOpen(error, key);
    } finally {
      clearTimeout(timer);
    }
  }

  /** After the store failed: calls go through unasked for PACER_FAIL_OPEN_MS, the failure reported; this one is let through. */
  private failOpen(error: unknown, key: string): TakeVerdict {
    this.failOpenUntilMs = this.clock.now() + PACER_FAIL_OPEN_MS;
    this.onError(error, key);
    return { ok: true };
  }
}
