/**
 * Background jobs: the sweeps' work (on SQLite and PostgreSQL), the bound on
 * concurrency, and the runners' promise that a job runs once.
 */
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import type { ProviderId } from "../integrations/registry.js";
import type { ConnectorLifecycle } from "../integrations/shared/lifecycle.js";
import type { ConnectionRecord, StoredHealth, Vault } from "../integrations/shared/vault.js";
import { connectorsById } from "../sdk.js";
import { dropSchema, newSchemaName, testDatabases } from "../testing/databases.js";
import { cookieHeader, startHarness, type Harness } from "../testing/harness.js";
import { PgBossRunner } from "./pgBossRunner.js";
import { everyMinutesCron } from "./runner.js";
import { forEachLimited, forEachPaged, healthSweep, refreshAhead, revokePending } from "./sweeps.js";
import { TimerRunner } from "./timerRunner.js";

describe("forEachLimited", () => {
  it("never has more than the limit in flight, and does every item", async () => {
    let inFlight = 0;
    let peak = 0;
    const done: number[] = [];
    await forEachLimited(
      Array.from({ length: 25 }, (_, i) => i),
      4,
      async (i) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        done.push(i);
        inFlight--;
      },
    );
    expect(peak).toBe(4);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });
});

describe("forEachPaged", () => {
  async function* pagesOf<T>(pages: T[][], read: T[][] = []): AsyncGenerator<T[]> {
    for (const page of pages) {
      read.push(page);
      yield page;
    }
  }
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it("keeps the limit in flight across page boundaries: a slow item does not hold back the next page", async () => {
    const pages = [Array.from({ length: 10 }, (_, i) => i), Array.from({ length: 10 }, (_, i) => 10 + i), [20, 21, 22, 23, 24]];
    let inFlight = 0;
    let peak = 0;
    const done: number[] = [];
    const seen: number[][] = [];
    let stalled = false;
    let release: () => void = () => undefined;
    const othersDone = new Promise<void>((resolve) => (release = resolve));
    // The first item waits for every other one: per page, the next page would wait for it (a stall, noticed below).
    const check = (): void => {
      if (done.length === 24) release();
      else if (inFlight === 1)
        void tick().then(() => {
          if (inFlight === 1 && done.length < 24) {
            stalled = true;
            release();
          }
        });
    };
    await forEachPaged(pagesOf(pages, seen), 4, async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      if (i === 0) await othersDone;
      else await tick();
      inFlight--;
      done.push(i);
      check();
    });
    expect(stalled).toBe(false);
    expect(peak).toBe(4);
    expect([...done].sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(done.at(-1)).toBe(0);
    expect(seen).toEqual(pages);
  });

  it("reads pages one at a time and in order, tells each as it is read, and throws what a page read threw", async () => {
    const told: number[] = [];
    await forEachPaged(pagesOf([[1, 2], [3], [4, 5, 6]]), 2, async () => undefined, (page) => told.push(page.length));
    expect(told).toEqual([2, 1, 3]);
    async function* failing(): AsyncGenerator<number[]> {
      yield [1, 2, 3];
      throw new Error("the scan failed");
    }
    const started: number[] = [];
    await expect(forEachPaged(failing(), 2, async (i) => void started.push(i))).rejects.toThrow("the scan failed");
  });
});

describe("healthSweep", () => {
  /** A vault of `count` active connections, scanned by id as the SQL vault does. */
  const vaultOf = (count: number): { vault: Vault; scans: number } => {
    const records = Array.from({ length: count }, (_, i) => ({ id: `conn_${String(i).padStart(5, "0")}`, userId: `u${i % 7}`, provider: "slack" }) as ConnectionRecord);
    const state = { scans: 0, vault: undefined as unknown as Vault };
    state.vault = {
      scanConnections: async ({ afterId, limit }: { afterId?: string; limit: number }) => {
        state.scans++;
        return records.filter((r) => afterId === undefined || r.id > afterId).slice(0, limit);
      },
    } as unknown as Vault;
    return state;
  };

  it("checks each scanned connection once with the record it read, keeping `concurrency` in flight across pages", async () => {
    const store = vaultOf(450);
    let inFlight = 0;
    let peak = 0;
    const pagesInFlight = new Map<number, number>();
    let pagesAtOnce = 0;
    const checked: string[] = [];
    const checkHealth = async (record: ConnectionRecord): Promise<StoredHealth> => {
      const page = Math.floor(Number(record.id.slice(5)) / 200);
      inFlight++;
      peak = Math.max(peak, inFlight);
      pagesInFlight.set(page, (pagesInFlight.get(page) ?? 0) + 1);
      pagesAtOnce = Math.max(pagesAtOnce, [...pagesInFlight.values()].filter((n) => n > 0).length);
      await new Promise((resolve) => setImmediate(resolve));
      pagesInFlight.set(page, (pagesInFlight.get(page) ?? 0) - 1);
      inFlight--;
      checked.push(record.id);
      return { status: record.id.endsWith("7") ? "degraded" : "ok", checkedAt: "", auth: true, apiReachable: true, rateLimited: false };
    };
    const health = () => Promise.reject(new Error("the sweep checks the record it scanned; it does not look the connection up again"));
    const connectors = { slack: { checkHealth, health } } as unknown as Record<ProviderId, ConnectorLifecycle>;
    const report = await healthSweep({ vault: store.vault, connectors, concurrency: 50 });
    expect(report).toEqual({ checked: 450, ok: 405, degraded: 45, down: 0, errors: 0 });
    expect(new Set(checked).size).toBe(450);
    expect(store.scans).toBe(3);
    expect(peak).toBe(50);
    // Connections of two pages were being checked at once: the next page did not wait for the last of one.
    expect(pagesAtOnce).toBe(2);
  });
});

describe("everyMinutesCron", () => {
  it("turns a period into cron and refuses what cron cannot say", () => {
    expect(everyMinutesCron(1)).toBe("* * * * *");
    expect(everyMinutesCron(15)).toBe("*/15 * * * *");
    expect(() => everyMinutesCron(0)).toThrow(/1 to 59/);
    expect(() => everyMinutesCron(90)).toThrow(/1 to 59/);
  });
});

describe("TimerRunner", () => {
  it("shares a run in flight instead of overlapping it", async () => {
    const runner = new TimerRunner();
    let runs = 0;
    let release: () => void = () => undefined;
    await runner.schedule("job", 60, async () => {
      runs++;
      await new Promise<void>((resolve) => (release = resolve));
      return { runs };
    });
    const first = runner.runNow("job");
    const second = runner.runNow("job");
    release();
    expect(await first).toEqual({ runs: 1 });
    expect(await second).toEqual({ runs: 1 });
    expect(runs).toBe(1);
    await runner.stop();
    await expect(runner.runNow("job")).rejects.toThrow(/no job/);
  });
});

describe.runIf(inject("postgresUrl"))("PgBossRunner", () => {
  it("runs a job once across two instances", async () => {
    const schema = `${newSchemaName()}_jobs`;
    const [a, b] = await Promise.all([
      PgBossRunner.start({ connectionString: inject("postgresUrl"), schema }),
      PgBossRunner.start({ connectionString: inject("postgresUrl"), schema }),
    ]);
    try {
      let runs = 0;
      const handler = async () => ({ runs: ++runs });
      await a.schedule("sweep", 30, handler);
      await b.schedule("sweep", 30, handler);
      expect(await a.runNow("sweep")).toEqual({ runs: 1 });
      // Give the other instance's worker time to (wrongly) pick it up too.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(runs).toBe(1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await dropSchema(schema);
    }
  }, 30_000);
});

describe.each(testDatabases())("sweeps on %s", (database) => {
  let h: Harness;
  const TTL = 3600;
  beforeAll(async () => {
    h = await startHarness({ database, sandboxOptions: { slack: { tokenRotation: true, accessTokenTtlSeconds: TTL, refreshTokenGraceSeconds: 0 } } });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function connectSlack(user: string): Promise<void> {
    const started = await h.request({ method: "POST", url: "/api/integrations/slack/oauth/start", user });
    const start = started.json() as { authUrl: string };
    const consent = await fetch(start.authUrl, { redirect: "manual" });
    const callback = new URL(consent.headers.get("location") as string);
    const cookie = cookieHeader(started.headers["set-cookie"]);
    expect((await h.request({ method: "GET", url: callback.pathname + callback.search, headers: { cookie } })).statusCode).toBe(200);
  }
  const deps = () => ({ vault: h.service.store.vault, connectors: connectorsById(h.service.integrations), concurrency: 2, now: () => h.clock.now() });
  const refreshes = async () => (await h.sandboxRequests("slack")).filter((r) => r.path === "/api/oauth.v2.access").length;

  it("refreshes an idle connection ahead of expiry, once, and leaves fresh ones alone", async () => {
    await connectSlack("idle");
    const credential = (await h.sandbox("stripe", "/_sandbox/credentials", { body: {} })) as { apiKey: string };
    await h.request({ method: "POST", url: "/api/integrations/stripe/connections", user: "idle", body: { apiKey: credential.apiKey } });
    // Just connected: not idle, not expiring.
    expect(await refreshAhead({ ...deps(), windowMs: 600_000, idleMs: 3_600_000 })).toMatchObject({ due: 0 });
    await h.sandbox("slack", "/_sandbox/requests", { method: "DELETE" });
    h.clock.advance((TTL - 300) * 1000); // five minutes before expiry, and an hour idle
    const reads = vi.spyOn(h.service.store.vault, "readSecrets");
    try {
      expect(await refreshAhead({ ...deps(), windowMs: 600_000, idleMs: 3_000_000 })).toEqual({ due: 1, refreshed: 1, skipped: 0, failed: 0 });
      expect(await refreshes()).toBe(1);
      // The tokens a refresh replaces are read as a scan's: no opened token in use is pushed out for them.
      expect(reads.mock.calls.map(([, options]) => options)).toEqual([{ scan: true }]);
      reads.mockRestore();
      // The new token is neither expiring nor idle.
      expect(await refreshAhead({ ...deps(), windowMs: 600_000, idleMs: 3_000_000 })).toMatchObject({ due: 0 });
      expect(await refreshes()).toBe(1);
    } finally {
      reads.mockRestore();
      h.clock.advance(-(TTL - 300) * 1000);
    }
  });

  it("stores every active connection's last health run", async () => {
    await connectSlack("swept");
    await h.sandbox("slack", "/_sandbox/faults", { body: { fault: "rate-limit" } });
    try {
      const report = await healthSweep(deps());
      expect(report.checked).toBeGreaterThanOrEqual(3);
      expect(report.errors).toBe(0);
      expect(report.degraded).toBeGreaterThanOrEqual(2);
      const records = await h.service.store.vault.scanConnections({ limit: 100 });
      for (const record of records) {
        expect(record.lastHealth?.checkedAt, record.id).toBeDefined();
        if (record.provider === "slack") expect(record.lastHealth, JSON.stringify(record.lastHealth)).toMatchObject({ status: "degraded", rateLimited: true });
      }
    } finally {
      await h.sandbox("slack", "/_sandbox/faults", { method: "DELETE" });
    }
  });

  it("settles a revocation owed since the provider could not be reached at disconnect", async () => {
    await connectSlack("owed");
    const [connection] = (await h.request({ method: "GET", url: "/api/integrations/slack/connections", user: "owed" })).json().connections as { id: string }[];
    // The provider is unreachable when the user disconnects: disconnected here, revocation owed, tokens kept.
    await h.sandbox("slack", "/_sandbox/faults", { body: { fault: "disconnect" } });
    const disconnected = (await h.request({ method: "DELETE", url: `/api/integrations/slack/connections/${connection!.id}`, user: "owed" })).json() as {
      revocation: string;
      note: string;
    };
    expect(disconnected.revocation).toBe("pending");
    expect(disconnected.note).toMatch(/owed/);
    expect(await revokePending(deps())).toMatchObject({ owed: 1, stillPending: 1 });
    // The provider is back: the next run revokes it there and erases the tokens here.
    await h.sandbox("slack", "/_sandbox/faults", { method: "DELETE" });
    await h.sandbox("slack", "/_sandbox/requests", { method: "DELETE" });
    expect(await revokePending(deps())).toMatchObject({ owed: 1, revoked: 1, stillPending: 0 });
    expect((await h.sandboxRequests("slack")).some((r) => r.path === "/api/auth.revoke")).toBe(true);
    const row = await h.service.store.db.selectFrom("connections").selectAll().where("id", "=", connection!.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ access_token_enc: null, data_key_wrapped: null });
    expect(row.provider_revoked_at).not.toBeNull();
    expect(await revokePending(deps())).toMatchObject({ owed: 0 });
  });
});
