/**
 * The pacer's budgets in PostgreSQL, shared by instances on separate pools:
 * concurrent takes never grant more than a window holds, a hold or a new
 * window learnt by one is seen by the other, old rows go, and every answer
 * is the one the in-memory store gives for the same steps.
 */
import fc from "fast-check";
import type { Kysely } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  MemoryRateWindows,
  RATE_WINDOW_PRUNE_INTERVAL_MS,
  RATE_WINDOW_RETAIN_MS,
  SAME_WINDOW_SLACK_MS,
  type RateWindow,
} from "../integrations/shared/pacing.js";
import type { RateSignal } from "../integrations/shared/rateSignal.js";
import { dropSchema, newSchemaName, postgresUrl, testDatabases } from "../testing/databases.js";
import { rateWindowsFor } from "./index.js";
import { migrateToLatest } from "./migrations.js";
import { PgRateWindows } from "./pgRateWindows.js";
import { openPostgres } from "./postgres.js";
import type { Database } from "./schema.js";

const T0 = Date.UTC(2025, 0, 1);

it("gives SQLite, one process, budgets in memory", () => {
  expect(rateWindowsFor({ dialect: "sqlite", db: undefined as unknown as Kysely<Database> })).toBeInstanceOf(MemoryRateWindows);
});

describe.skipIf(!testDatabases().includes("postgres"))("PgRateWindows", () => {
  let schema: string;
  let dbs: Kysely<Database>[];
  let a: PgRateWindows;
  let b: PgRateWindows;

  beforeEach(async () => {
    schema = newSchemaName();
    // Two instances: a pool each, on one schema.
    dbs = [await openPostgres({ url: postgresUrl(), schema, maxConnections: 8 }), await openPostgres({ url: postgresUrl(), schema, maxConnections: 8 })];
    await migrateToLatest(dbs[0] as Kysely<unknown>, schema);
    a = new PgRateWindows(dbs[0] as Kysely<Database>);
    b = new PgRateWindows(dbs[1] as Kysely<Database>);
  });
  afterEach(async () => {
    for (const db of dbs) await db.destroy();
    await dropSchema(schema);
  });

  const takeMany = async (stores: PgRateWindows[], key: string, nowMs: number, each: number) => {
    const answers = await Promise.all(stores.flatMap((store) => Array.from({ length: each }, () => store.take(key, nowMs))));
    return answers.filter((answer) => answer.ok).length;
  };

  it("grants an unknown key", async () => {
    expect(await a.take("nobody", T0)).toEqual({ ok: true });
  });

  it("never grants more than the window's remaining to concurrent takes from two instances", async () => {
    await a.observe("acct", { limit: 500, remaining: 150, resetAtMs: T0 + 60_000 }, T0);
    expect(await takeMany([a, b], "acct", T0 + 1, 200)).toBe(150);
    expect(await b.take("acct", T0 + 2)).toEqual({ ok: false, waitUntilMs: T0 + 60_000 });
  });

  it("opens one provisional window for both when the old one ends, and grants its limit once", async () => {
    await a.observe("acct", { limit: 120, remaining: 0, resetAtMs: T0 + 10_000 }, T0);
    expect(await takeMany([a, b], "acct", T0 + 10_000, 150)).toBe(120);
    expect(await a.take("acct", T0 + 10_001)).toEqual({ ok: false, waitUntilMs: T0 + 20_000 });
  });

  it("holds the other instance back when one learns of a Retry-After", async () => {
    await a.observe("acct", { retryAfterMs: 30_000 }, T0);
    expect(await b.take("acct", T0 + 1)).toEqual({ ok: false, waitUntilMs: T0 + 30_000 });
    // A shorter one later does not shorten it.
    await b.observe("acct", { retryAfterMs: 1_000 }, T0 + 2);
    expect(await a.take("acct", T0 + 29_999)).toEqual({ ok: false, waitUntilMs: T0 + 30_000 });
    expect(await a.take("acct", T0 + 30_000)).toEqual({ ok: true });
  });

  it("keeps the lower remaining within a window, and starts a later window from its signal", async () => {
    await a.observe("acct", { remaining: 3, resetAtMs: T0 + 5_000 }, T0);
    await b.observe("acct", { remaining: 9, resetAtMs: T0 + 5_000 }, T0 + 1);
    expect(await takeMany([b], "acct", T0 + 2, 5)).toBe(3);
    expect(await a.take("acct", T0 + 3)).toEqual({ ok: false, waitUntilMs: T0 + 5_000 });
    await b.observe("acct", { remaining: 4, resetAtMs: T0 + 65_000 }, T0 + 4);
    expect(await takeMany([a], "acct", T0 + 5, 6)).toBe(4);
  });

  it("deletes rows whose window and hold ended long ago, and keeps the others", async () => {
    await a.observe("old", { remaining: 1, resetAtMs: T0 + 1_000, retryAfterMs: 2_000 }, T0);
    await a.observe("live", { remaining: 1, resetAtMs: T0 + 3 * RATE_WINDOW_RETAIN_MS }, T0);
    const db = dbs[0] as Kysely<Database>;
    const keys = async () => (await db.selectFrom("rate_windows").select("key").orderBy("key").execute()).map((row) => row.key);
    expect(await keys()).toEqual(["live", "old"]);
    expect(await b.prune(T0 + 2_000 + RATE_WINDOW_RETAIN_MS - 1)).toBe(0);
    // An observation past the prune interval sweeps too.
    await b.observe("new", {}, T0 + 2_000 + RATE_WINDOW_RETAIN_MS + RATE_WINDOW_PRUNE_INTERVAL_MS);
    expect(await keys()).toEqual(["live", "new"]);
  });

  it("answers every step as the in-memory store does, and holds the same entry", async () => {
    const db = dbs[0] as Kysely<Database>;
    const num = (v: string | number | null) => (v === null ? undefined : Number(v));
    const rowOf = async (key: string): Promise<RateWindow | undefined> => {
      const row = await db.selectFrom("rate_windows").selectAll().where("key", "=", key).executeTakeFirst();
      if (!row) return undefined;
      const entry = {
        limit: num(row.limit_count),
        remaining: num(row.remaining),
        resetAtMs: num(row.reset_at),
        windowMs: num(row.window_ms),
        holdUntilMs: num(row.hold_until),
        expiresAtMs: Math.max(Number(row.updated_at), num(row.reset_at) ?? 0, num(row.hold_until) ?? 0) + RATE_WINDOW_RETAIN_MS,
      };
      return Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined)) as RateWindow;
    };
    const signal: fc.Arbitrary<RateSignal> = fc.record(
      {
        limit: fc.integer({ min: 0, max: 5 }),
        remaining: fc.integer({ min: 0, max: 5 }),
        resetAtMs: fc.integer({ min: -2_000, max: 6_000 }),
        windowMs: fc.integer({ min: 1, max: 4_000 }),
        retryAfterMs: fc.integer({ min: 1, max: 3_000 }),
      },
      { requiredKeys: [] },
    );
    const step = fc.record({
      key: fc.constantFrom("x", "y"),
      dt: fc.constantFrom(0, 1, 10, SAME_WINDOW_SLACK_MS, 700, 2_500),
      on: fc.constantFrom("a", "b"),
      // Half takes, half observations.
      observe: fc.option(signal, { nil: undefined, freq: 2 }),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        run += 1;
        const memory = new MemoryRateWindows();
        const stores = { a, b };
        let now = T0 + run * 10 * RATE_WINDOW_RETAIN_MS;
        for (const s of steps) {
          now += s.dt;
          const key = `${run}:${s.key}`;
          if (s.observe) {
            // Ends relative to now, so windows open, end and roll within a run.
            const sig = { ...s.observe, ...(s.observe.resetAtMs !== undefined ? { resetAtMs: now + s.observe.resetAtMs } : {}) };
            await stores[s.on].observe(key, sig, now);
            await memory.observe(key, sig, now);
          } else {
            expect(await stores[s.on].take(key, now)).toEqual(await memory.take(key, now));
          }
          // The whole entry, not only the answers: a difference that no take of this run would show still fails.
          expect(await rowOf(key)).toEqual(memory.entry(key));
        }
      }),
      { numRuns: 60 },
    );
  });
});
