import Database from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import { describe, expect, it } from "vitest";
import { withStatementCache } from "./statementCache.js";

/** A real database whose prepares are counted. */
function counted() {
  const db = new Database(":memory:");
  const prepared: string[] = [];
  const prepare = db.prepare.bind(db);
  return { prepared, database: { prepare: (text: string) => (prepared.push(text), prepare(text)), close: () => db.close() } };
}

describe("the statement cache", () => {
  it("compiles each SQL text once however often Kysely runs it, with each run's own parameters", async () => {
    const { prepared, database } = counted();
    const kysely = new Kysely<{ t: { id: number; v: string } }>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
    await sql`create table t (id integer primary key, v text)`.execute(kysely);
    for (let i = 0; i < 50; i++) await kysely.insertInto("t").values({ id: i, v: `v${i}` }).execute();
    const rows = [];
    for (let i = 0; i < 50; i++) rows.push(await kysely.selectFrom("t").selectAll().where("id", "=", i).executeTakeFirst());
    expect(rows.map((r) => r?.v)).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
    expect(prepared.filter((s) => s.startsWith("insert"))).toHaveLength(1);
    expect(prepared.filter((s) => s.startsWith("select"))).toHaveLength(1);
    await kysely.destroy();
  });

  it("never shares a statement still being iterated, and keeps at most its bound, least recently used out first", async () => {
    const { prepared, database } = counted();
    const cache = withStatementCache(database, 2);
    cache.prepare("create table t (id integer primary key)").run([]);
    cache.prepare("insert into t values (1), (2), (3)").run([]);
    const select = "select id from t order by id";
    const first = cache.prepare(select);
    const iterator = first.iterate([]);
    iterator.next();
    const second = cache.prepare(select);
    expect(second).not.toBe(first);
    expect(second.all([])).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    iterator.return?.();
    expect(cache.prepare(select)).toBe(first);
    // Bound 2: the create went out when the select came in; the insert is still kept.
    const before = prepared.length;
    cache.prepare("insert into t values (1), (2), (3)");
    expect(prepared.length).toBe(before);
    const small = withStatementCache(database, 2);
    for (const text of ["select 1", "select 2", "select 3"]) small.prepare(text);
    const compiled = prepared.length;
    small.prepare("select 3");
    expect(prepared.length).toBe(compiled);
    small.prepare("select 1");
    expect(prepared.length).toBe(compiled + 1);
    expect(() => withStatementCache(database, 0)).toThrow(/at least 1/);
    cache.close();
  });
});
