/**
 * The pacer's budgets in PostgreSQL, so that every instance on one database
 * shares one budget per provider account: what one learns (a window nearly
 * used up, a 429's Retry-After) holds the others back.
 *
 * Why PostgreSQL and not Redis: the multi-instance deployment already
 * requires PostgreSQL, and one atomic row update per provider call is cheap
 * at provider rates (tens of calls a second per account, a pool already
 * open), so there is no second moving part to run, secure and watch.
 *
 * The rules are those of `integrations/shared/pacing.ts`, written here in
 * SQL so that a take and an observation are one statement each; a test
 * drives this store and `MemoryRateWindows` with the same steps and
 * compares every answer.
 */
import { sql, type Kysely } from "kysely";
import {
  mergeObservation,
  RATE_WINDOW_PRUNE_INTERVAL_MS,
  RATE_WINDOW_RETAIN_MS,
  readSignal,
  SAME_WINDOW_SLACK_MS,
  type RateWindowStore,
  type TakeVerdict,
} from "../integrations/shared/pacing.js";
import type { RateSignal } from "../integrations/shared/rateSignal.js";
import type { Database } from "./schema.js";

export class PgRateWindows implements RateWindowStore {
  private lastPruneMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly db: Kysely<Database>) {}

  /**
   * One statement: the row is locked (`for update`, so concurrent takes on
   * other connections queue behind it and each sees the one before), rolled
   * to a provisional window when its end passed, decided, and written back.
   * No row: nothing known, granted.
   */
  async take(key: string, nowMs: number): Promise<TakeVerdict> {
    const now = Math.floor(nowMs);
    const result = await sql<{ wait_until: string | number | null }>`
      update rate_windows as t set
        remaining = case when d.wait_until is null and d.remaining is not null then d.remaining - 1 else d.remaining end,
        reset_at = d.reset_at,
        updated_at = ${now}::bigint
      from (
        select r.key, r.remaining, r.reset_at,
          case when r.hold_until > ${now}::bigint then r.hold_until when r.remaining <= 0 then r.reset_at end as wait_until
        from (
          select key, hold_until,
            case
              when hold_until > ${now}::bigint then remaining
              when reset_at <= ${now}::bigint then case when limit_count is not null and window_ms is not null then limit_count end
              else remaining
            end as remaining,
            case
              when hold_until > ${now}::bigint then reset_at
              when reset_at <= ${now}::bigint then case when limit_count is not null and window_ms is not null then ${now}::bigint + window_ms end
              else reset_at
            end as reset_at
          from rate_windows where key = ${key} for update
        ) as r
      ) as d
      where t.key = d.key
      returning d.wait_until`.execute(this.db);
    const waitUntil = result.rows[0]?.wait_until;
    return waitUntil === undefined || waitUntil === null ? { ok: true } : { ok: false, waitUntilMs: Number(waitUntil) };
  }

  /** One statement: insert what the signal says, or merge it into the row under its lock (`on conflict do update`). */
  async observe(key: string, signal: RateSignal, nowMs: number): Promise<void> {
    const now = Math.floor(nowMs);
    if (now - this.lastPruneMs >= RATE_WINDOW_PRUNE_INTERVAL_MS) await this.prune(now);
    const o = readSignal(signal, now);
    const fresh = mergeObservation(undefined, o, now);
    const signalEnd = o.endMs ?? (o.windowMs !== undefined ? now + o.windowMs : null);
    const remaining = o.remaining ?? null;
    const end = o.endMs ?? null;
    // Within the open window (an interval-only signal always is; a told end when it is not later than the open one's).
    const sameWindow = sql`t.reset_at > ${now}::bigint and (${end}::bigint is null or ${end}::bigint < t.reset_at + ${SAME_WINDOW_SLACK_MS}::bigint)`;
    await sql`
      insert into rate_windows as t (key, limit_count, remaining, reset_at, window_ms, hold_until, updated_at)
      values (${key}, ${fresh.limit ?? null}::integer, ${fresh.remaining ?? null}::integer, ${fresh.resetAtMs ?? null}::bigint,
        ${fresh.windowMs ?? null}::bigint, ${fresh.holdUntilMs ?? null}::bigint, ${now}::bigint)
      on conflict (key) do update set
        limit_count = coalesce(${o.limit ?? null}::integer, t.limit_count),
        window_ms = coalesce(${o.windowMs ?? null}::bigint, greatest(t.window_ms, ${o.spanMs ?? null}::bigint)),
        hold_until = greatest(t.hold_until, ${o.holdUntilMs ?? null}::bigint),
        remaining = case
          when ${remaining}::integer is null then t.remaining
          when ${sameWindow} then least(t.remaining, ${remaining}::integer)
          else ${remaining}::integer
        end,
        reset_at = case
          when ${remaining}::integer is null then t.reset_at
          when ${sameWindow} then coalesce(${end}::bigint, t.reset_at)
          else ${signalEnd}::bigint
        end,
        updated_at = ${now}::bigint`.execute(this.db);
  }

  async clear(): Promise<void> {
    await sql`delete from rate_windows`.execute(this.db);
  }

  /**
   * Deletes the rows whose window and hold ended, and that nothing touched,
   * {@link RATE_WINDOW_RETAIN_MS} ago; returns how many. Observations call it
   * at most once a {@link RATE_WINDOW_PRUNE_INTERVAL_MS} per instance.
   */
  async prune(nowMs: number): Promise<number> {
    this.lastPruneMs = nowMs;
    const result = await sql`
      delete from rate_windows
      where greatest(updated_at, reset_at, hold_until) + ${RATE_WINDOW_RETAIN_MS}::bigint <= ${Math.floor(nowMs)}::bigint`.execute(this.db);
    return Number(result.numAffectedRows ?? 0);
  }
}
