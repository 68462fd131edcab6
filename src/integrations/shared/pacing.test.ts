/** The pacer's budget rules (on the one-process store) and its line per key: order, deadlines, holds, failing open. */
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { ErrorCodes } from "./errors.js";
import type { Clock } from "./http.js";
import {
  MemoryRateWindows,
  Pacer,
  PACER_FAIL_OPEN_MS,
  PACER_POLL_MS,
  PacingTimeoutError,
  RATE_WINDOW_PRUNE_INTERVAL_MS,
  RATE_WINDOW_RETAIN_MS,
  SAME_WINDOW_SLACK_MS,
  type RateWindowStore,
} from "./pacing.js";
import type { RateSignal } from "./rateSignal.js";

const T0 = Date.UTC(2025, 0, 1);

/** `memory` seen as a store over a network: it answers only by promise (no inProcess, takeNow or observeNow). */
const promiseOnly = (memory: MemoryRateWindows): RateWindowStore => ({ take: (key, now) => memory.take(key, now), observe: (key, signal, now) => memory.observe(key, signal, now) });

/** A clock whose sleeps return at once and move its time forward. */
class SkippingClock implements Clock {
  t = T0;
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.t += ms;
  }
}

/** A clock that moves only when told: sleepers wake as `advance` passes their time. */
class ManualClock implements Clock {
  t = T0;
  private sleepers: { until: number; resolve(): void }[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.sleepers.push({ until: this.t + ms, resolve }));
  }
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      await settle();
      const due = this.sleepers.filter((s) => s.until <= target).sort((a, b) => a.until - b.until)[0];
      if (!due) break;
      this.sleepers = this.sleepers.filter((s) => s !== due);
      this.t = Math.max(this.t, due.until);
      due.resolve();
    }
    this.t = target;
    await settle();
  }
}

/** Lets every promise chain that can move, move. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A store that counts the takes it is asked for. */
class CountingStore implements RateWindowStore {
  takes = 0;
  constructor(readonly inner: RateWindowStore) {}
  take(key: string, nowMs: number) {
    this.takes += 1;
    return this.inner.take(key, nowMs);
  }
  observe(key: string, signal: RateSignal, nowMs: number) {
    return this.inner.observe(key, signal, nowMs);
  }
}

async function grants(store: RateWindowStore, key: string, nowMs: number, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await store.take(key, nowMs)).ok) ok += 1;
  return ok;
}

describe("the budget of a key (MemoryRateWindows)", () => {
  it("grants every take for a key it knows nothing about", async () => {
    const store = new MemoryRateWindows();
    expect(await grants(store, "a", T0, 50)).toBe(50);
    await store.observe("a", {}, T0);
    await store.observe("b", { limit: 10 }, T0);
    expect(await grants(store, "a", T0, 50)).toBe(50);
    expect(await grants(store, "b", T0, 50)).toBe(50);
  });

  it("counts a known window down and then waits for its end", async () => {
    const store = new MemoryRateWindows();
    await store.observe("a", { limit: 10, remaining: 2, resetAtMs: T0 + 1_000 }, T0);
    expect(await store.take("a", T0)).toEqual({ ok: true });
    expect(await store.take("a", T0 + 10)).toEqual({ ok: true });
    expect(await store.take("a", T0 + 20)).toEqual({ ok: false, waitUntilMs: T0 + 1_000 });
    expect(await store.take("b", T0 + 20)).toEqual({ ok: true });
  });

  it("holds every take until a Retry-After passes, and never shortens a hold", async () => {
    const store = new MemoryRateWindows();
    await store.observe("a", { retryAfterMs: 30_000 }, T0);
    await store.observe("a", { retryAfterMs: 1_000 }, T0 + 100);
    expect(await store.take("a", T0 + 29_999)).toEqual({ ok: false, waitUntilMs: T0 + 30_000 });
    expect(await store.take("a", T0 + 30_000)).toEqual({ ok: true });
  });

  it("keeps the lower remaining and the earlier end within one window", async () => {
    const store = new MemoryRateWindows();
    const end = T0 + 60_000;
    await store.observe("a", { remaining: 5, resetAtMs: end }, T0);
    // A slower answer counted before some of our takes: it is higher, and ignored.
    await store.observe("a", { remaining: 8, resetAtMs: end + SAME_WINDOW_SLACK_MS - 1 }, T0 + 1);
    expect(await grants(store, "a", T0 + 2, 10)).toBe(5);
    await store.observe("a", { remaining: 3, resetAtMs: end - 10_000 }, T0 + 3);
    // Lower than our count: the provider saw calls we did not (another store, another client); its earlier end is taken too.
    expect(await grants(store, "a", T0 + 4, 10)).toBe(0);
    expect(await store.take("a", T0 + 5)).toEqual({ ok: false, waitUntilMs: end - 10_000 });
  });

  it("starts a later window from its signal", async () => {
    const store = new MemoryRateWindows();
    await store.observe("a", { remaining: 0, resetAtMs: T0 + 5_000 }, T0);
    expect((await store.take("a", T0 + 1)).ok).toBe(false);
    await store.observe("a", { remaining: 4, resetAtMs: T0 + 65_000 }, T0 + 2);
    expect(await grants(store, "a", T0 + 3, 10)).toBe(4);
  });

  it("does not count a signal whose window already ended", async () => {
    const store = new MemoryRateWindows();
    await store.observe("a", { remaining: 0, resetAtMs: T0 - 1 }, T0);
    expect(await grants(store, "a", T0, 5)).toBe(5);
  });

  it("opens a provisional window of `limit` calls when a window with a known limit ends", async () => {
    const store = new MemoryRateWindows();
    // Observed 10 s before its end: the window is estimated to last (at least) 10 s.
    await store.observe("a", { limit: 3, remaining: 0, resetAtMs: T0 + 10_000 }, T0);
    expect(await store.take("a", T0 + 9_999)).toEqual({ ok: false, waitUntilMs: T0 + 10_000 });
    const later = T0 + 15_000;
    expect(await grants(store, "a", later, 5)).toBe(3);
    expect(await store.take("a", later)).toEqual({ ok: false, waitUntilMs: later + 10_000 });
    // A signal from the provider's new window says more (within it, the lower count still wins).
    await store.observe("a", { limit: 3, remaining: 1, resetAtMs: T0 + 20_000 }, later + 1);
    expect(await store.take("a", later + 2)).toEqual({ ok: false, waitUntilMs: T0 + 20_000 });
  });

  it("forgets an ended window whose limit it never learnt", async () => {
    const store = new MemoryRateWindows();
    await store.observe("a", { remaining: 0, resetAtMs: T0 + 1_000 }, T0);
    expect((await store.take("a", T0)).ok).toBe(false);
    expect(await grants(store, "a", T0 + 1_000, 20)).toBe(20);
  });

  it("gives an interval-only provider a window ending one interval after the observation", async () => {
    const store = new MemoryRateWindows();
    await store.observe("a", { limit: 100, remaining: 2, windowMs: 10_000 }, T0);
    await store.observe("a", { limit: 100, remaining: 9, windowMs: 10_000 }, T0 + 4_000);
    expect(await grants(store, "a", T0 + 4_001, 5)).toBe(2);
    expect(await store.take("a", T0 + 4_002)).toEqual({ ok: false, waitUntilMs: T0 + 10_000 });
    expect(await grants(store, "a", T0 + 10_000, 150)).toBe(100);
  });

  it("forgets entries whose window and hold ended long ago, on a later observation", async () => {
    const store = new MemoryRateWindows();
    await store.observe("a", { remaining: 1, resetAtMs: T0 + 1_000, retryAfterMs: 2_000 }, T0);
    await store.observe("b", { remaining: 1, resetAtMs: T0 + 1_000 }, T0);
    expect(store.size).toBe(2);
    await store.observe("c", { remaining: 1, resetAtMs: T0 + RATE_WINDOW_RETAIN_MS * 3 }, T0 + RATE_WINDOW_PRUNE_INTERVAL_MS);
    expect(store.size).toBe(3);
    await store.observe("d", {}, T0 + 2_000 + RATE_WINDOW_RETAIN_MS);
    // a's hold ended at +2 s, b's window at +1 s; c's window is still open.
    expect(store.size).toBe(2);
    expect(await store.take("c", T0 + 2_000 + RATE_WINDOW_RETAIN_MS)).toEqual({ ok: true });
  });

  it("never grants more in one window than the remaining its first signal told, whatever the interleaving", async () => {
    const end = T0 + 60_000;
    const step = fc.oneof(
      fc.record({ kind: fc.constant("take" as const), dt: fc.integer({ min: 0, max: 500 }) }),
      fc.record({
        kind: fc.constant("observe" as const),
        dt: fc.integer({ min: 0, max: 500 }),
        remaining: fc.integer({ min: 0, max: 40 }),
        jitter: fc.integer({ min: 0, max: SAME_WINDOW_SLACK_MS - 1 }),
        limit: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
        retryAfterMs: fc.option(fc.integer({ min: 1, max: 2_000 }), { nil: undefined }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 30 }), fc.array(step, { maxLength: 80 }), async (first, steps) => {
        const store = new MemoryRateWindows();
        let now = T0;
        await store.observe("k", { remaining: first, resetAtMs: end }, now);
        let granted = 0;
        for (const s of steps) {
          now += s.dt;
          if (now >= end) break;
          if (s.kind === "take") {
            if ((await store.take("k", now)).ok) granted += 1;
          } else {
            await store.observe("k", { remaining: s.remaining, resetAtMs: end + s.jitter, limit: s.limit, retryAfterMs: s.retryAfterMs }, now);
          }
        }
        expect(granted).toBeLessThanOrEqual(first);
      }),
      { numRuns: 200 },
    );
  });
});

describe("Pacer", () => {
  it("lets calls through at once while nothing is known", async () => {
    const pacer = new Pacer({ store: new MemoryRateWindows(), clock: new SkippingClock() });
    await Promise.all(Array.from({ length: 20 }, () => pacer.acquire("a", T0)));
  });

  it("serves one key's callers in the order they came, through window resets", async () => {
    const clock = new SkippingClock();
    const store = new MemoryRateWindows();
    await store.observe("a", { limit: 3, remaining: 1, resetAtMs: T0 + 1_000 }, T0);
    const pacer = new Pacer({ store, clock });
    const order: number[] = [];
    const times: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        pacer.acquire("a", T0 + 60_000).then(() => {
          order.push(i);
          times.push(clock.now());
        }),
      ),
    );
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // One in the first window, then three a window: never more than the budget in any window.
    expect(times[0]).toBe(T0);
    expect(times.filter((t) => t < T0 + 1_000)).toHaveLength(1);
    expect(times.filter((t) => t >= T0 + 1_000 && t < T0 + 2_000)).toHaveLength(3);
  });

  it("keeps each key's line apart", async () => {
    const clock = new ManualClock();
    const store = new MemoryRateWindows();
    await store.observe("slow", { retryAfterMs: 60_000 }, T0);
    const pacer = new Pacer({ store, clock });
    let slowDone = false;
    const slow = pacer.acquire("slow", T0 + 120_000).then(() => (slowDone = true));
    await pacer.acquire("fast", T0 + 1);
    expect(slowDone).toBe(false);
    await clock.advance(60_000);
    await slow;
  });

  it("holds calls while a Retry-After it was told lasts", async () => {
    const clock = new SkippingClock();
    const pacer = new Pacer({ store: new MemoryRateWindows(), clock });
    pacer.observe("a", { retryAfterMs: 7_000 });
    await settle();
    await pacer.acquire("a", T0 + 60_000);
    expect(clock.now()).toBeGreaterThanOrEqual(T0 + 7_000);
  });

  it("rejects a call whose deadline falls before the wait ends, with the Retry-After", async () => {
    const store = new MemoryRateWindows();
    await store.observe("a", { remaining: 0, resetAtMs: T0 + 5_000 }, T0);
    const pacer = new Pacer({ store, clock: new ManualClock() });
    const error = await pacer.acquire("a", T0 + 1_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PacingTimeoutError);
    expect(error).toMatchObject({ key: "a", retryAfterMs: 5_000, type: "rate-limit", retryable: true, code: ErrorCodes.PACING_TIMEOUT, retryAfterSeconds: 5 });
  });

  it("rejects waiting callers as soon as their deadline is known to pass, not when they reach the head", async () => {
    const clock = new ManualClock();
    const store = new MemoryRateWindows();
    await store.observe("a", { remaining: 0, resetAtMs: T0 + 2_000 }, T0);
    const pacer = new Pacer({ store, clock });
    const settled: string[] = [];
    const track = (name: string, p: Promise<void>) =>
      p.then(
        () => settled.push(`${name} ok`),
        (e: PacingTimeoutError) => settled.push(`${name} rejected ${e.retryAfterMs}`),
      );
    const head = track("head", pacer.acquire("a", T0 + 60_000));
    const short = track("short", pacer.acquire("a", T0 + 1_000));
    const long = track("long", pacer.acquire("a", T0 + 60_000));
    await settle();
    expect(settled).toEqual(["short rejected 2000"]);
    // A newcomer whose deadline is before the known wait is told at once.
    await track("late", pacer.acquire("a", T0 + 1_500));
    expect(settled).toEqual(["short rejected 2000", "late rejected 2000"]);
    // Another instance learns of a long hold: within a poll, the callers it strands are told.
    await store.observe("a", { retryAfterMs: 120_000 }, T0 + 100);
    await clock.advance(PACER_POLL_MS);
    expect(settled).toEqual(["short rejected 2000", "late rejected 2000", `head rejected ${120_100 - PACER_POLL_MS}`, `long rejected ${120_100 - PACER_POLL_MS}`]);
    expect(clock.now()).toBeLessThan(T0 + 2_000);
    await Promise.all([head, short, long]);
  });

  it("asks the store from the head of the line only", async () => {
    const clock = new SkippingClock();
    const store = new CountingStore(new MemoryRateWindows());
    await store.observe("a", { limit: 1_000, remaining: 0, resetAtMs: T0 + 1_000 }, T0);
    const pacer = new Pacer({ store, clock });
    await Promise.all(Array.from({ length: 1_000 }, () => pacer.acquire("a", T0 + 60_000)));
    // One take a grant, and the polls of one head through one second.
    expect(store.takes).toBeLessThanOrEqual(1_000 + Math.ceil(1_000 / PACER_POLL_MS) + 1);
  });

  it("lets calls through when the store fails, and says so once", async () => {
    const clock = new SkippingClock();
    const errors: unknown[] = [];
    let takes = 0;
    const broken: RateWindowStore = {
      take: async () => {
        takes += 1;
        throw new Error("connection refused");
      },
      observe: async () => {
        throw new Error("connection refused");
      },
    };
    const pacer = new Pacer({ store: broken, clock, onError: (e) => errors.push(e) });
    await Promise.all(Array.from({ length: 5 }, () => pacer.acquire("a", T0 + 1)));
    expect(takes).toBe(1);
    expect(errors).toHaveLength(1);
    pacer.observe("a", { remaining: 0, resetAtMs: T0 + 1_000 });
    await settle();
    expect(errors).toHaveLength(2);
    // After the fail-open spell, the store is asked again.
    clock.t += PACER_FAIL_OPEN_MS;
    await pacer.acquire("a", clock.t + 1);
    expect(takes).toBe(2);
  });

  it("keeps serving when the error reporter itself throws", async () => {
    const broken: RateWindowStore = {
      take: async () => {
        throw new Error("connection refused");
      },
      observe: async () => undefined,
    };
    const pacer = new Pacer({
      store: broken,
      clock: new SkippingClock(),
      onError: () => {
        throw new Error("reporter down");
      },
    });
    await Promise.all([pacer.acquire("a", T0 + 1), pacer.acquire("a", T0 + 1)]);
  });

  it("lets a call through when the store does not answer in time", async () => {
    const errors: unknown[] = [];
    const hung: RateWindowStore = { take: () => new Promise(() => undefined), observe: async () => undefined };
    const pacer = new Pacer({ store: hung, clock: new SkippingClock(), storeTimeoutMs: 20, onError: (e) => errors.push(e) });
    await pacer.acquire("a", T0 + 1);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/did not answer/);
  });

  it("asks a store in this process's memory without a timer against a slow answer; one over a network with one", async () => {
    const memory = new MemoryRateWindows();
    const remote = promiseOnly(memory);
    const timers = vi.spyOn(globalThis, "setTimeout");
    try {
      await new Pacer({ store: memory, clock: new SkippingClock() }).acquire("a", T0 + 1);
      expect(timers).toHaveBeenCalledTimes(0);
      await new Pacer({ store: remote, clock: new SkippingClock() }).acquire("a", T0 + 1);
      expect(timers).toHaveBeenCalledTimes(1);
    } finally {
      timers.mockRestore();
    }
  });

  it("wakes a waiting line when an observation opens a new window", async () => {
    const clock = new ManualClock();
    const store = new MemoryRateWindows();
    await store.observe("a", { remaining: 0, resetAtMs: T0 + 60_000 }, T0);
    const pacer = new Pacer({ store, clock });
    let done = false;
    const waiting = pacer.acquire("a", T0 + 120_000).then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    pacer.observe("a", { remaining: 10, resetAtMs: T0 + 120_000 });
    await settle();
    expect(done).toBe(true);
    expect(clock.now()).toBe(T0);
    await waiting;
  });

  describe("tryAcquire: a turn granted at once", () => {
    it("takes the turn from a store that answers synchronously, and spends the window as acquire does", async () => {
      const store = new MemoryRateWindows();
      await store.observe("a", { limit: 2, remaining: 2, resetAtMs: T0 + 1_000 }, T0);
      const pacer = new Pacer({ store, clock: new SkippingClock() });
      expect(pacer.tryAcquire("a")).toBe(true);
      expect(store.entry("a")?.remaining).toBe(1);
      expect(pacer.tryAcquire("a")).toBe(true);
      // None left in the window: not granted now, and nothing spent by asking.
      expect(pacer.tryAcquire("a")).toBe(false);
      expect(store.entry("a")?.remaining).toBe(0);
      await pacer.acquire("a", T0 + 60_000);
    });

    it("refuses while anyone is in the key's line, so nobody jumps ahead of a waiting caller", async () => {
      const clock = new ManualClock();
      const store = new MemoryRateWindows();
      await store.observe("a", { remaining: 0, resetAtMs: T0 + 1_000 }, T0);
      const pacer = new Pacer({ store, clock });
      const waiting = pacer.acquire("a", T0 + 60_000);
      await settle();
      // The window that opens later has room, yet the caller in line is served first.
      await store.observe("a", { remaining: 5, resetAtMs: T0 + 1_000 + SAME_WINDOW_SLACK_MS * 2 }, T0);
      expect(pacer.tryAcquire("a")).toBe(false);
      expect(pacer.tryAcquire("b")).toBe(true);
      await clock.advance(1_000);
      await waiting;
    });

    it("is false with a store that answers only by promise (one over a network): the call goes through acquire", () => {
      const memory = new MemoryRateWindows();
      const remote = promiseOnly(memory);
      expect(new Pacer({ store: remote, clock: new SkippingClock() }).tryAcquire("a")).toBe(false);
    });

    it("lets the call through when takeNow throws, reports it once, and fails open as acquire does", () => {
      const errors: unknown[] = [];
      let asked = 0;
      const broken: RateWindowStore = {
        take: async () => ({ ok: true }),
        observe: async () => undefined,
        takeNow: () => {
          asked += 1;
          throw new Error("store down");
        },
      };
      const pacer = new Pacer({ store: broken, clock: new SkippingClock(), onError: (e) => errors.push(e) });
      expect(pacer.tryAcquire("a")).toBe(true);
      expect(pacer.tryAcquire("a")).toBe(true);
      expect(asked).toBe(1);
      expect(errors.map(String)).toEqual(["Error: store down"]);
    });
  });

  describe("overrides are never gone around", () => {
    it("a MemoryRateWindows subclass that overrides take or observe offers no synchronous take or observe, and the pacer calls the overrides", async () => {
      const seen: string[] = [];
      class Refusing extends MemoryRateWindows {
        override async take(key: string, nowMs: number) {
          seen.push(`take ${key}`);
          return key === "blocked" ? { ok: false as const, waitUntilMs: nowMs + 10 } : super.take(key, nowMs);
        }
        override async observe(key: string, signal: RateSignal, nowMs: number) {
          seen.push(`observe ${key}`);
          return super.observe(key, signal, nowMs);
        }
      }
      const store = new Refusing();
      expect(store.takeNow).toBeUndefined();
      expect(store.observeNow).toBeUndefined();
      const pacer = new Pacer({ store, clock: new SkippingClock() });
      expect(pacer.tryAcquire("blocked")).toBe(false);
      await expect(pacer.acquire("blocked", T0 + 1)).rejects.toBeInstanceOf(PacingTimeoutError);
      pacer.observe("a", { remaining: 1, resetAtMs: T0 + 1_000 });
      await pacer.settled();
      expect(seen).toEqual(["take blocked", "observe a"]);
      class Pruning extends MemoryRateWindows {
        override async prune(nowMs: number) {
          return super.prune(nowMs);
        }
      }
      expect(new Pruning().observeNow).toBeUndefined();
      expect(new Pruning().takeNow).toBeDefined();
      expect(new MemoryRateWindows().takeNow).toBeDefined();
    });

    it("a Pacer subclass that overrides acquire grants nothing through tryAcquire", () => {
      class Timed extends Pacer {
        override acquire(key: string, deadlineMs: number) {
          return super.acquire(key, deadlineMs);
        }
      }
      expect(new Timed({ store: new MemoryRateWindows(), clock: new SkippingClock() }).tryAcquire("a")).toBe(false);
      expect(new Pacer({ store: new MemoryRateWindows(), clock: new SkippingClock() }).tryAcquire("a")).toBe(true);
    });
  });

  describe("observe with a store that observes synchronously", () => {
    it("merges the signal before it returns, with nothing left for settled() to wait on", async () => {
      const store = new MemoryRateWindows();
      const pacer = new Pacer({ store, clock: new SkippingClock() });
      pacer.observe("a", { remaining: 0, resetAtMs: T0 + 5_000 });
      expect(store.entry("a")?.remaining).toBe(0);
      expect(pacer.tryAcquire("a")).toBe(false);
      await pacer.settled();
    });

    it("reports a failing observeNow to onError and never throws into the call", () => {
      const errors: unknown[] = [];
      const broken: RateWindowStore = {
        take: async () => ({ ok: true }),
        observe: async () => undefined,
        observeNow: () => {
          throw new Error("lost");
        },
      };
      const pacer = new Pacer({ store: broken, clock: new SkippingClock(), onError: (e, key) => errors.push([String(e), key]) });
      expect(() => pacer.observe("a", { remaining: 1, resetAtMs: T0 + 1_000 })).not.toThrow();
      expect(errors).toEqual([["Error: lost", "a"]]);
    });
  });
});
