/**
 * Each scan reads what it needs through an index that holds only that, not
 * the whole table: the refresh-ahead scan (in expiry order), the health
 * sweep's pages of active connections, the owed-revocation scan, and the
 * listing of a user's connections. Checked on SQLite and PostgreSQL as each
 * planner says it runs the statements the vault itself sends (captured from
 * its database handle, with their bound values), and the refresh-ahead scan
 * pages through every due connection once.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CompiledQuery, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectionRecord } from "../integrations/shared/vault.js";
import { freshLocation, testDatabases, watchedDatabase } from "../testing/databases.js";
import { seedConnections } from "../testing/seedConnections.js";
import { openStore, type OpenedStore } from "./index.js";
import type { Database } from "./schema.js";
import { SqlVault } from "./sqlVault.js";

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();

describe.each(testDatabases())("the scans' indexes on %s", (database) => {
  let store: OpenedStore;
  let dispose: () => Promise<void>;
  let dir: string;
  /** A second handle on the same database that records every statement it sends, and a vault over it. */
  let watched: Kysely<Database>;
  let vault: SqlVault;
  let sent: CompiledQuery[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "autoflow-scans-"));
    const fresh = freshLocation(database, join(dir, "autoflow.db"));
    dispose = fresh.dispose;
    store = await openStore({ ...fresh.location, keys: [randomBytes(32)] });
    ({ db: watched, sent } = watchedDatabase(fresh.location));
    vault = new SqlVault(watched, store.keyring);
    // The planners choose by what the table holds: many connections, few of them due, as in production.
    const template = await store.db
      .selectFrom("connections")
      .select(["data_key_wrapped", "access_token_enc", "refresh_token_enc"])
      .where("id", "=", (await connect({ userId: "template", expiresAt: at(600) })).id)
      .executeTakeFirstOrThrow();
    await seedConnections(store.db, store.dialect, {
      count: 20_000,
      prefix: "seed",
      template: { dataKeyWrapped: template.data_key_wrapped as string, accessTokenEnc: template.access_token_enc as string, refreshTokenEnc: template.refresh_token_enc as string },
      now: new Date(at(0)),
    });
  });
  afterAll(async () => {
    await watched?.destroy();
    await store?.close();
    await dispose?.();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The one select `run` sends through the vault. */
  const statementOf = async (run: () => Promise<unknown>): Promise<CompiledQuery> => {
    const from = sent.length;
    await run();
    const selects = sent.slice(from).filter((q) => /^\s*select/i.test(q.sql));
    expect(selects).toHaveLength(1);
    return selects[0] as CompiledQuery;
  };

  /** The planner's account of `query`, bound to the values it was sent with (a bound value plans as it runs). */
  const plan = async (query: CompiledQuery): Promise<string> => {
    const explain = CompiledQuery.raw(`${database === "sqlite" ? "explain query plan" : "explain"} ${query.sql}`, [...query.parameters]);
    return JSON.stringify((await watched.executeQuery(explain)).rows);
  };

  const connect = (input: { userId: string; provider?: string; expiresAt?: string; refresh?: boolean; status?: "healthy" | "failed" }) =>
    store.vault.createConnection({
      userId: input.userId,
      provider: input.provider ?? "slack",
      authMethod: "oauth2",
      accessToken: `xoxe.xoxp-${randomBytes(12).toString("hex")}`,
      ...(input.refresh === false ? {} : { refreshToken: `xoxe-1-${randomBytes(12).toString("hex")}` }),
      tokenMasked: "xoxe****",
      scopes: [],
      metadata: { teamId: "T1" },
      ...(input.expiresAt ? { accessTokenExpiresAt: input.expiresAt, accessTokenIssuedAt: at(-120) } : {}),
      tokenRefreshStatus: input.status ?? "healthy",
      createdAt: at(-120),
    });

  const due = { expiresBefore: at(10), issuedBefore: at(0) };

  it("reads the refresh-ahead scan through connections_refresh_due_healthy, first page and next", async () => {
    const first = await statementOf(() => vault.scanConnections({ limit: 100, dueForRefresh: due }));
    const next = await statementOf(() => vault.scanConnections({ limit: 100, dueForRefresh: due, afterId: "conn_m", afterExpiresAt: at(5) }));
    for (const statement of [first, next]) expect(await plan(statement)).toContain("connections_refresh_due_healthy");
  });

  it("reads the health sweep's pages in id order through an index, first page and next, never the whole table or a sort", async () => {
    const first = await statementOf(() => vault.scanConnections({ limit: 200 }));
    const next = await statementOf(() => vault.scanConnections({ limit: 200, afterId: "conn_m" }));
    for (const statement of [first, next]) {
      const text = await plan(statement);
      // connections_active, or the primary key while few are disconnected (a near tie PostgreSQL settles either way).
      expect(text).toMatch(/connections_active|connections_pkey|sqlite_autoindex_connections_1/);
      expect(text).not.toMatch(/Seq Scan|Sort|TEMP B-TREE|"SCAN connections"/);
    }
  });

  it("reads the owed-revocation scan through connections_revocation_owed", async () => {
    const owed = await statementOf(() => vault.scanConnections({ limit: 200, revocationOwed: true, afterId: "conn_m" }));
    expect(await plan(owed)).toContain("connections_revocation_owed");
  });

  it("reads a user's connections of a provider through connections_user_provider_created, active or all", async () => {
    for (const includeRevoked of [false, true]) {
      const listing = await statementOf(() => vault.listConnections({ userId: "alice", provider: "slack", includeRevoked }));
      expect(await plan(listing)).toContain("connections_user_provider_created");
    }
  });

  it("pages the refresh-ahead scan in expiry order, every due healthy connection once and nothing else", async () => {
    const made: ConnectionRecord[] = [];
    for (let i = 0; i < 7; i++) made.push(await connect({ userId: `u${i}`, expiresAt: at(i % 3) }));
    // Not due: expiring later, refresh failed, no refresh token, disconnected.
    await connect({ userId: "later", expiresAt: at(30) });
    await connect({ userId: "failed", expiresAt: at(1), status: "failed" });
    await connect({ userId: "no-refresh", expiresAt: at(1), refresh: false });
    const gone = await connect({ userId: "gone", expiresAt: at(1) });
    await store.vault.markRevoked({ id: gone.id, userId: "gone", provider: "slack", revokedAt: at(-1), eraseSecrets: true });

    const seen: string[] = [];
    let after: { afterId: string; afterExpiresAt: string } | undefined;
    for (;;) {
      const page = await vault.scanConnections({ limit: 3, dueForRefresh: due, ...after });
      seen.push(...page.map((r) => r.id));
      const last = page.at(-1);
      if (!last || page.length < 3) break;
      after = { afterId: last.id, afterExpiresAt: last.accessTokenExpiresAt as string };
    }
    expect([...seen].sort()).toEqual(made.map((r) => r.id).sort());
    expect(new Set(seen).size).toBe(seen.length);
    await expect(vault.scanConnections({ limit: 3, dueForRefresh: due, afterId: "conn_x" })).rejects.toThrow(/afterExpiresAt/);
  });
});
