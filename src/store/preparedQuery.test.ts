import { randomBytes } from "node:crypto";
import { sql, type Kysely, type KyselyPlugin } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshLocation, testDatabases } from "../testing/databases.js";
import { openStore, type OpenedStore } from "./index.js";
import { preparedQuery } from "./preparedQuery.js";

describe.each(testDatabases())("a prepared query on %s", (database) => {
  let store: OpenedStore;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    const fresh = freshLocation(database);
    dispose = fresh.dispose;
    store = await openStore({ ...fresh.location, keys: [randomBytes(32)] });
    await sql`create table prepared_probe (id integer primary key, owner text not null, kind text not null, note text)`.execute(store.db);
    for (let i = 1; i <= 6; i++) await sql`insert into prepared_probe (id, owner, kind, note) values (${i}, ${i % 2 ? "ann" : "bob"}, ${i % 3 ? "a" : "b"}, ${null})`.execute(store.db);
  });
  afterAll(async () => {
    await store?.close();
    await dispose?.();
  });
  // The probe table is not in the store's schema type: built through an untyped view of the same database.
  const db = () => store.db as unknown as Kysely<{ prepared_probe: { id: number; owner: string; kind: string; note: string | null } }>;

  it("compiles once and answers each call with its own values, constants kept where they were built", async () => {
    let built = 0;
    const byOwner = preparedQuery(db(), ["owner"], (p) => {
      built++;
      return db().selectFrom("prepared_probe").select("id").where("owner", "=", p("owner")).where("kind", "=", "a").orderBy("id");
    });
    expect((await byOwner({ owner: "ann" })).map((r) => r.id)).toEqual([1, 5]);
    expect((await byOwner({ owner: "bob" })).map((r) => r.id)).toEqual([2, 4]);
    expect(await byOwner({ owner: "nobody" })).toEqual([]);
    expect(built).toBe(1);
  });

  it("goes through the database's plugins: each transforms the query once, as it is compiled, and every result", async () => {
    const seen = { queries: 0, results: 0 };
    const counting: KyselyPlugin = {
      transformQuery: ({ node }) => (seen.queries++, node),
      transformResult: async ({ result }) => (seen.results++, { ...result, rows: result.rows.map((row) => ({ ...row, seenByPlugin: true })) }),
    };
    const withPlugin = db().withPlugin(counting);
    const byOwner = preparedQuery(withPlugin, ["owner"], (p) => withPlugin.selectFrom("prepared_probe").select("id").where("owner", "=", p("owner")).orderBy("id"));
    expect(await byOwner({ owner: "ann" })).toEqual([1, 3, 5].map((id) => ({ id, seenByPlugin: true })));
    await byOwner({ owner: "bob" });
    expect(seen).toEqual({ queries: 1, results: 2 });
  });

  it("puts each named value in every place it is used, in any order, and writes with them", async () => {
    const note = preparedQuery(db(), ["note", "owner", "id"], (p) =>
      db().updateTable("prepared_probe").set({ note: p("note") }).where("id", "=", p("id") as unknown as number).where("owner", "=", p("owner")),
    );
    await note({ id: 2, owner: "bob", note: "second" });
    await note({ id: 3, owner: "bob", note: "not bob's" });
    const rows = await db().selectFrom("prepared_probe").select(["id", "note"]).where("note", "is not", null).execute();
    expect(rows).toEqual([{ id: 2, note: "second" }]);
    const either = preparedQuery(db(), ["who"], (p) => db().selectFrom("prepared_probe").select("id").where((eb) => eb.or([eb("owner", "=", p("who")), eb("note", "=", p("who"))])).orderBy("id"));
    expect((await either({ who: "second" })).map((r) => r.id)).toEqual([2]);
  });

  it("names the values in a run's parameters (valuesOf), constants left out, and refuses parameters of another shape", () => {
    const note = preparedQuery(db(), ["note", "id"], (p) => db().updateTable("prepared_probe").set({ note: p("note"), kind: "c" }).where("id", "=", p("id") as unknown as number));
    const sqlText = note.sql();
    // The places follow the SQL, whatever order the names were given in.
    const places = ["note", "kind", "id"].sort((x, y) => sqlText.indexOf(`"${x}"`) - sqlText.indexOf(`"${y}"`));
    const parameters = places.map((place) => ({ note: "hello", kind: "c", id: 7 })[place as "note" | "kind" | "id"]);
    expect(note.valuesOf(parameters)).toEqual({ note: "hello", id: 7 });
    expect(() => note.valuesOf(["hello"])).toThrow(/1 parameters, not 3/);
  });

  it("refuses a named value the query never uses, saying which", async () => {
    const unused = preparedQuery(db(), ["owner", "kind"], (p) => db().selectFrom("prepared_probe").select("id").where("owner", "=", p("owner")));
    await expect(unused({ owner: "ann", kind: "a" })).rejects.toThrow(/kind not used/);
  });
});
