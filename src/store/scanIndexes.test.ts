/**
 * The jobs' scans read what is due through an index that holds only that,
 * not the whole table: the refresh-ahead scan (in expiry order) and the
 * owed-revocation scan, on SQLite and PostgreSQL, as each planner says it
 * runs them (EXPLAIN), and the refresh-ahead scan pages through every due
 * connection once.
 */
import { randomBytes } from "node:crypto";
import { sql, type Compilable } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshLocation, testDatabases } from "../testing/databases.js";
import { openStore, type OpenedStore } from "./index.js";

/** The query with its parameters written in (EXPLAIN takes no bound parameters on either dialect here). */
function inline(query: { sql: string; parameters: readonly unknown[] }): string {
  let next = 0;
  return query.sql.replace(/\$(\d+)|\?/g, (_match, n: string | undefined) => {
    const value = query.parameters[n ? Number(n) - 1 : next++];
    return typeof value === "number" ? String(value) : `'${String(value).replaceAll("'", "''")}'`;
  });
}

describe.each(testDatabases())("the scans' indexes on %s", (database) => {
  let store: OpenedStore;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    const fresh = freshLocation(database);
    dispose = fresh.dispose;
    store = await openStore({ ...fresh.location, keys: [randomBytes(32)] });
    // The planner chooses by what the table holds: many connections, few due, as in production.
    if (database === "postgres") await sql`set enable_seqscan = off`.execute(store.db);
  });
  afterAll(async () => {
    await store?.close();
    await dispose?.();
  });

  const plan = async (query: Compilable): Promise<string> => {
    const text = inline(query.compile());
    const rows = await sql.raw(`${database === "sqlite" ? "explain query plan" : "explain"} ${text}`).execute(store.db);
    return JSON.stringify(rows.rows);
  };
  const db = () => store.db;

  it("reads the refresh-ahead scan through connections_refresh_due, first page and next", async () => {
    const dueForRefresh = { expiresBefore: "2026-01-01T00:10:00.000Z", issuedBefore: "2026-01-01T00:00:00.000Z" };
    const scan = (after?: { expiresAt: string; id: string }) => {
      let q = db()
        .selectFrom("connections")
        .selectAll()
        .where("revoked_at", "is", null)
        .where("refresh_token_enc", "is not", null)
        .where("token_refresh_status", "=", "healthy")
        .where("access_token_expires_at", "<", dueForRefresh.expiresBefore)
        .where("access_token_issued_at", "<", dueForRefresh.issuedBefore);
      if (after) q = q.where((eb) => eb(eb.refTuple("access_token_expires_at", "id"), ">", eb.tuple(after.expiresAt, after.id)));
      return q.orderBy("access_token_expires_at").orderBy("id").limit(100);
    };
    expect(await plan(scan())).toContain("connections_refresh_due");
    expect(await plan(scan({ expiresAt: "2026-01-01T00:05:00.000Z", id: "conn_m" }))).toContain("connections_refresh_due");
  });

  it("pages the refresh-ahead scan in expiry order, every due connection once", async () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
    const made: string[] = [];
    for (let i = 0; i < 7; i++) {
      const record = await store.vault.createConnection({
        userId: `u${i}`,
        provider: "slack",
        authMethod: "oauth2",
        accessToken: `xoxe.xoxp-${"a".repeat(20)}${i}`,
        refreshToken: `xoxe-1-${"r".repeat(20)}${i}`,
        tokenMasked: "xoxe****",
        scopes: [],
        metadata: { teamId: "T1" },
        accessTokenExpiresAt: at(i % 3),
        accessTokenIssuedAt: at(-120),
        tokenRefreshStatus: "healthy",
        createdAt: at(-120),
      });
      made.push(record.id);
    }
    const seen: string[] = [];
    let after: { afterId: string; afterExpiresAt: string } | undefined;
    for (;;) {
      const page = await store.vault.scanConnections({ limit: 3, dueForRefresh: { expiresBefore: at(10), issuedBefore: at(0) }, ...after });
      seen.push(...page.map((r) => r.id));
      const last = page.at(-1);
      if (!last || page.length < 3) break;
      after = { afterId: last.id, afterExpiresAt: last.accessTokenExpiresAt as string };
    }
    expect([...seen].sort()).toEqual([...made].sort());
    expect(new Set(seen).size).toBe(seen.length);
    await expect(store.vault.scanConnections({ limit: 3, dueForRefresh: { expiresBefore: at(10), issuedBefore: at(0) }, afterId: "conn_x" })).rejects.toThrow(/afterExpiresAt/);
  });

  it("reads the owed-revocation scan through connections_revocation_owed", async () => {
    const owed = db()
      .selectFrom("connections")
      .selectAll()
      .where("revoked_at", "is not", null)
      .where("provider_revoked_at", "is", null)
      .where("access_token_enc", "is not", null)
      .orderBy("id")
      .limit(100);
    expect(await plan(owed)).toContain("connections_revocation_owed");
  });
});
