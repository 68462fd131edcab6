/**
 * The owed-revocation scan reads what is owed through an index that holds
 * only that, not the whole table, on SQLite and PostgreSQL, as each planner
 * says it runs it (EXPLAIN). (The refresh-ahead scan pages by id, which
 * SQLite's planner serves from the primary key whatever else is indexed: it
 * needs paging in expiry order first; issue 15.)
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
