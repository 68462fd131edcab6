/**
 * The change watch, and the vault's rows kept by it: a kept answer is given
 * again only while nothing could have changed it, whoever wrote (this
 * connection, another on the same file, a write outside the vault), and
 * never inside a transaction.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { CompiledQuery, ParseJSONResultsPlugin, sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { NewConnection } from "../integrations/shared/vault.js";
import { changeWatchOf, watchChanges, WRITES_CARRIED } from "./changeWatch.js";
import { openStore, type OpenedStore } from "./index.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "autoflow-watch-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function fileDatabase(): { path: string; open: () => Database.Database } {
  const path = join(dir, `watched-${++files}.db`);
  const open = () => {
    const db = new Database(path);
    db.pragma("journal_mode = WAL");
    return db;
  };
  const first = open();
  first.exec("create table t (id integer primary key, v text)");
  first.close();
  return { path, open };
}

/** A watch over a file database of its own (table t), with `rows` inserted through it; `open` opens another connection to it. */
function watchedFile(rows: readonly string[] = []) {
  const { open } = fileDatabase();
  const sqlite = open();
  const watch = watchChanges(sqlite);
  if (rows.length > 0) watch.database.prepare(`insert into t (v) values ${rows.map(() => "(?)").join(", ")}`).run(rows);
  return { sqlite, watch, open };
}

describe("watchChanges", () => {
  it("keeps its version while the database is only read, and changes it with each write through it, however the write runs", () => {
    const { sqlite, watch } = watchedFile();
    const before = watch.version();
    watch.database.prepare("select * from t").all([]);
    watch.database.prepare("pragma user_version").all([]);
    expect(watch.version()).toBe(before);
    const seen = [before];
    watch.database.prepare("insert into t (v) values (?)").run(["a"]);
    seen.push(watch.version());
    watch.database.prepare("insert into t (v) values (?) returning id").all(["b"]);
    seen.push(watch.version());
    watch.database.prepare("update t set v = ? where id = ?").run(["c", 1]);
    seen.push(watch.version());
    // A write that changes no row still counts (it might have).
    watch.database.prepare("delete from t where id = ?").run([999]);
    seen.push(watch.version());
    expect(new Set(seen).size).toBe(seen.length);
    sqlite.close();
  });

  it("changes its version when another connection commits, as another process would", () => {
    const { sqlite, watch, open } = watchedFile();
    const other = open();
    const before = watch.version();
    other.prepare("insert into t (v) values ('elsewhere')").run();
    expect(watch.version()).not.toBe(before);
    const after = watch.version();
    expect(watch.version()).toBe(after);
    other.close();
    sqlite.close();
  });

  it("has no version inside a transaction, nor while a statement is being iterated (it holds an older snapshot)", () => {
    const { sqlite, watch, open } = watchedFile();
    const other = open();
    watch.database.prepare("begin").run([]);
    expect(watch.version()).toBeUndefined();
    watch.database.prepare("rollback").run([]);
    expect(watch.version()).toBeDefined();
    watch.database.prepare("insert into t (v) values ('x'), ('y')").run([]);
    // A read left open while another connection commits: the snapshot it holds would hide that commit.
    const before = watch.version();
    const reading = watch.database.prepare("select id from t order by id").iterate([]);
    reading.next();
    other.prepare("delete from t").run();
    expect(watch.version()).toBeUndefined();
    reading.return?.();
    expect(watch.version()).not.toBe(before);
    // A writer iterated: no version while its rows come, a new one once they have.
    other.prepare("insert into t (v) values ('z')").run();
    const settled = watch.version();
    for (const _ of watch.database.prepare("update t set v = v || '!' returning id").iterate([])) expect(watch.version()).toBeUndefined();
    expect(watch.version()).toBeDefined();
    expect(watch.version()).not.toBe(settled);
    other.close();
    sqlite.close();
  });
});

describe("kept results", () => {
  it("answers copies of a kept query's rows again, by its parameters, until a change or forget()", () => {
    const { sqlite, watch } = watchedFile(["a", "a", "b"]);
    const select = "select id, v from t where v = ? order by id";
    const run = (v: string) => watch.database.prepare(select).all([v]) as { id: number; v: string }[];
    // Not asked to keep it: every run reads the database.
    run("a");
    run("a");
    expect(watch.answered).toEqual({ fromMemory: 0, fromDatabase: 0 });
    watch.keep(select);
    const first = run("a");
    const again = run("a");
    expect(again).toEqual(first);
    // Copies each way: what one caller does to its rows, no other sees.
    (again[0] as { v: string }).v = "changed by a caller";
    again.push({ id: -1, v: "pushed" });
    expect(run("a")).toEqual(first);
    expect(run("b").map((row) => row.v)).toEqual(["b"]);
    expect(watch.answered).toEqual({ fromMemory: 2, fromDatabase: 2 });
    watch.database.prepare("insert into t (v) values ('a')").run([]);
    expect(run("a")).toHaveLength(3);
    run("a");
    expect(watch.answered).toEqual({ fromMemory: 3, fromDatabase: 3 });
    watch.forget();
    run("a");
    expect(watch.answered).toEqual({ fromMemory: 3, fromDatabase: 4 });
    sqlite.close();
  });
});

describe("kept results: carried writes", () => {
  const select = "select id, v from t where id <= ? order by id";
  const update = "update t set v = ? where id = ?";
  /** A watch keeping `select` and carrying `update`, over rows a, b, c; `read` runs the select, `direct` reads the file unwatched. */
  function carrying() {
    const file = watchedFile(["a", "b", "c"]);
    const { watch } = file;
    watch.keep(select);
    watch.carry(update, { into: [select], change: (parameters) => ({ id: parameters[1], set: { v: parameters[0] } }) });
    const read = (upTo = 3) => watch.database.prepare(select).all([upTo]);
    const write = (v: string, id: number) => watch.database.prepare(update).run([v, id]);
    const direct = (upTo = 3) => file.sqlite.prepare(select).all(upTo);
    return { ...file, read, write, direct };
  }

  it("brings a kept result up to date with its own carried write, answering from memory what the database holds", () => {
    const { sqlite, watch, read, write, direct } = carrying();
    read();
    read(1);
    write("B", 2);
    expect(read()).toEqual(direct());
    expect(read()).toEqual([{ id: 1, v: "a" }, { id: 2, v: "B" }, { id: 3, v: "c" }]);
    // A result without the row written is still current.
    expect(read(1)).toEqual([{ id: 1, v: "a" }]);
    // A write that changes no row leaves what is kept as it is.
    write("none", 99);
    expect(read()).toEqual(direct());
    expect(watch.answered).toEqual({ fromMemory: 4, fromDatabase: 2 });
    sqlite.close();
  });

  it("reads again after a write it does not carry, another connection's commit, a write in a transaction, or a carrier that throws", () => {
    const { sqlite, watch, open, read, write, direct } = carrying();
    const fromDatabase = () => watch.answered.fromDatabase;
    read();
    write("x", 1);
    watch.database.prepare("update t set v = 'other' where id = ?").run([3]);
    let before = fromDatabase();
    expect(read()).toEqual(direct());
    expect(fromDatabase()).toBe(before + 1);
    // Another connection commits before a carried write: what is kept is from before that commit, and no carried step leads from it to now.
    const other = open();
    other.prepare("update t set v = 'elsewhere' where id = 1").run();
    write("y", 2);
    before = fromDatabase();
    expect(read()).toEqual(direct());
    expect(read()).toEqual([{ id: 1, v: "elsewhere" }, { id: 2, v: "y" }, { id: 3, v: "other" }]);
    expect(fromDatabase()).toBe(before + 1);
    // Inside a transaction nothing is carried (it may yet roll back).
    sqlite.transaction(() => write("in tx", 3))();
    before = fromDatabase();
    expect(read()).toEqual(direct());
    expect(fromDatabase()).toBe(before + 1);
    // A carrier that cannot say what it changed: the write stands, and the next read goes to the database.
    watch.carry("update t set v = ? where id = ? and 1", {
      into: [select],
      change: () => {
        throw new Error("unknown");
      },
    });
    watch.database.prepare("update t set v = ? where id = ? and 1").run(["z", 1]);
    before = fromDatabase();
    expect(read()).toEqual(direct());
    expect(fromDatabase()).toBe(before + 1);
    other.close();
    sqlite.close();
  });

  it("does not carry what it cannot patch as SQLite stored it: a value not a string or null, an id of another type than the rows'", () => {
    const { sqlite, watch, read, write, direct } = carrying();
    watch.carry("update t set v = ? where id = ? and 2", { into: [select], change: (parameters) => ({ id: parameters[1], set: { v: parameters[0] } }) });
    const fromDatabase = () => watch.answered.fromDatabase;
    read();
    // A number into a TEXT column is stored as text: the kept row would hold the number.
    watch.database.prepare("update t set v = ? where id = ? and 2").run([5, 1]);
    let before = fromDatabase();
    expect(read()).toEqual(direct());
    expect(typeof (read()[0] as { v: unknown }).v).toBe("string");
    expect(fromDatabase()).toBe(before + 1);
    // The id bound as a string matches the integer id in SQLite, but not by ===.
    write("by string id", "2" as unknown as number);
    before = fromDatabase();
    expect(read()).toEqual(direct());
    expect(read()[1]).toEqual({ id: 2, v: "by string id" });
    expect(fromDatabase()).toBe(before + 1);
    sqlite.close();
  });

  it("carries a write only into the queries it names: another kept query's results are read again", () => {
    const { sqlite, watch, read, write, direct } = carrying();
    // Rows with the same ids, but the column under another name: patched by the write, they would be wrong.
    const shown = "select id, upper(v) as shown from t where id <= ? order by id";
    watch.keep(shown);
    const counted = () => watch.database.prepare(shown).all([3]);
    counted();
    read();
    write("zz", 1);
    const before = watch.answered.fromDatabase;
    expect(counted()).toEqual(sqlite.prepare(shown).all(3));
    expect(counted()[0]).toEqual({ id: 1, shown: "ZZ" });
    expect(read()).toEqual(direct());
    expect(watch.answered.fromDatabase).toBe(before + 1);
    sqlite.close();
  });

  it("carries at most WRITES_CARRIED writes into a result kept from before them; an older one is read again", () => {
    const { sqlite, watch, read, write, direct } = carrying();
    read(1);
    read(2);
    for (let i = 0; i < WRITES_CARRIED; i++) write(`w${i}`, 3);
    let before = watch.answered.fromDatabase;
    expect(read(1)).toEqual(direct(1));
    expect(watch.answered.fromDatabase).toBe(before);
    write("one more", 3);
    // read(1) was brought up to date just now; read(2) is from before the oldest carried write remembered.
    expect(read(1)).toEqual(direct(1));
    before = watch.answered.fromDatabase;
    expect(read(2)).toEqual(direct(2));
    expect(watch.answered.fromDatabase).toBe(before + 1);
    sqlite.close();
  });

  it("answers every read as the database does, through any mix of carried writes, other writes, other connections' commits and reads", () => {
    type Step = { kind: "read"; upTo: number } | { kind: "carried" | "plain" | "elsewhere"; id: number; v: string } | { kind: "forget" };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant("read" as const), upTo: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constantFrom("carried" as const, "plain" as const, "elsewhere" as const), id: fc.integer({ min: 1, max: 4 }), v: fc.string({ maxLength: 3 }) }),
      fc.record({ kind: fc.constant("forget" as const) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const { sqlite, watch, open, read, write, direct } = carrying();
        const other = open();
        try {
          for (const s of steps) {
            if (s.kind === "read") expect(read(s.upTo)).toEqual(direct(s.upTo));
            else if (s.kind === "carried") write(s.v, s.id);
            else if (s.kind === "plain") watch.database.prepare("update t set v = ? where id = ? and 1").run([s.v, s.id]);
            else if (s.kind === "elsewhere") other.prepare(update).run(s.v, s.id);
            else watch.forget();
          }
        } finally {
          other.close();
          sqlite.close();
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe("kept results: parameters and callers", () => {
  it("keeps only parameters JSON names as SQLite binds them: Infinity is not null, a Date fails as it would, a bigint runs", () => {
    const { sqlite, watch } = watchedFile(["Inf", "1"]);
    const select = "select id from t where v = ?";
    watch.keep(select);
    const run = (value: unknown) => watch.database.prepare(select).all([value]);
    expect(run(null)).toEqual([]);
    expect(run(Number.POSITIVE_INFINITY)).toEqual([{ id: 1 }]);
    expect(run(Number.NaN)).toEqual([]);
    expect(run("1")).toEqual([{ id: 2 }]);
    expect(() => run(new Date(0))).toThrow(/bind/);
    expect(run(1n)).toEqual([{ id: 2 }]);
    expect(watch.answered).toEqual({ fromMemory: 0, fromDatabase: 2 });
    sqlite.close();
  });

  it("hands a result plugin that rewrites rows in place rows it may rewrite, through a Kysely sharing the driver", async () => {
    const store = await openStore({ sqlitePath: join(dir, "plugin.db"), keys: [randomBytes(32)] });
    try {
      const made = await store.vault.createConnection({
        userId: "hana",
        provider: "slack",
        authMethod: "oauth",
        accessToken: "xoxb-plugin",
        tokenMasked: "xoxb****plug",
        scopes: ["chat:write"],
        metadata: { teamId: "T1" },
        tokenRefreshStatus: "healthy",
        createdAt: new Date().toISOString(),
      });
      await store.vault.listConnections({ userId: "hana", provider: "slack" });
      const [kept] = await store.vault.listConnections({ userId: "hana", provider: "slack" });
      const parsing = store.db.withPlugin(new ParseJSONResultsPlugin());
      const sqlText = (store.vault as unknown as { hot: { listActive: { sql(): string } } }).hot.listActive.sql();
      for (let i = 0; i < 2; i++) {
        const { rows } = await parsing.executeQuery<{ id: string; metadata: unknown }>(CompiledQuery.raw(sqlText, ["hana", "slack"]));
        expect(rows.map((row) => [row.id, row.metadata])).toEqual([[made.id, { teamId: "T1" }]]);
      }
      expect((await store.vault.listConnections({ userId: "hana", provider: "slack" }))[0]).toEqual(kept);
    } finally {
      await store.close();
    }
  });
});

describe("the vault's kept rows (SQLite)", () => {
  let a: OpenedStore;
  let b: OpenedStore;
  const keys = [randomBytes(32)];
  const connection = (userId: string): NewConnection => ({
    userId,
    provider: "slack",
    authMethod: "oauth",
    accessToken: `xoxb-${randomBytes(8).toString("hex")}`,
    tokenMasked: "xoxb****abcd",
    scopes: ["chat:write"],
    metadata: { teamId: "T1" },
    tokenRefreshStatus: "healthy",
    createdAt: new Date().toISOString(),
  });

  beforeEach(async () => {
    // Two instances on one file: what another process (or a CLI command) on the same database is.
    a = await openStore({ sqlitePath: join(dir, "shared.db"), keys });
    b = await openStore({ sqlitePath: join(dir, "shared.db"), keys });
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  it("answers a listing again without reading the database while nothing changed", async () => {
    const made = await a.vault.createConnection(connection("alice"));
    const answered = () => ({ ...changeWatchOf(a.db)?.answered });
    const before = answered();
    const first = await a.vault.listConnections({ userId: "alice", provider: "slack" });
    const again = await a.vault.listConnections({ userId: "alice", provider: "slack" });
    const found = await a.vault.findConnection({ userId: "alice", provider: "slack", id: made.id });
    const foundAgain = await a.vault.findConnection({ userId: "alice", provider: "slack", id: made.id });
    expect(answered()).toEqual({ fromMemory: (before.fromMemory ?? 0) + 2, fromDatabase: (before.fromDatabase ?? 0) + 2 });
    expect(again).toEqual(first);
    expect(foundAgain).toEqual(found);
    // Each answer is a record of its own: changing one changes no other.
    expect(again[0]).not.toBe(first[0]);
    (again[0] as { metadata: Record<string, unknown> }).metadata.teamId = "changed";
    expect((await a.vault.listConnections({ userId: "alice", provider: "slack" }))[0]?.metadata).toEqual({ teamId: "T1" });
  });

  it("reads again after another instance revokes the connection, refreshes its token or records its health", async () => {
    const made = await a.vault.createConnection(connection("bob"));
    expect(await a.vault.listConnections({ userId: "bob", provider: "slack" })).toHaveLength(1);
    await b.vault.recordHealth(made.id, { status: "down", checkedAt: new Date().toISOString(), auth: false, apiReachable: true, rateLimited: false, errorType: "auth", message: "revoked at Slack" });
    expect((await a.vault.findConnection({ userId: "bob", provider: "slack", id: made.id }))?.lastHealth?.status).toBe("down");
    expect((await a.vault.listConnections({ userId: "bob", provider: "slack" }))[0]?.lastHealth?.status).toBe("down");
    const updated = await b.vault.updateTokens({ id: made.id, expectedVersion: made.version, secrets: { accessToken: "xoxb-new" }, tokenMasked: "xoxb****new1", tokenRefreshStatus: "healthy" });
    expect(updated).toBeDefined();
    const [current] = await a.vault.listConnections({ userId: "bob", provider: "slack" });
    expect(current?.tokenMasked).toBe("xoxb****new1");
    expect((await a.vault.readSecrets(current as NonNullable<typeof current>, { asRead: true })).accessToken).toBe("xoxb-new");
    await b.vault.markRevoked({ userId: "bob", provider: "slack", id: made.id, revokedAt: new Date().toISOString(), eraseSecrets: true });
    expect(await a.vault.listConnections({ userId: "bob", provider: "slack" })).toEqual([]);
    expect((await a.vault.findConnection({ userId: "bob", provider: "slack", id: made.id }))?.revokedAt).toBeDefined();
  });

  it("reads again after its own writes, through the vault or beside it", async () => {
    const made = await a.vault.createConnection(connection("carol"));
    await a.vault.listConnections({ userId: "carol", provider: "slack" });
    await a.vault.setTokenRefreshStatus(made.id, "failed");
    expect((await a.vault.listConnections({ userId: "carol", provider: "slack" }))[0]?.tokenRefreshStatus).toBe("failed");
    await sql`update connections set token_masked = ${"xoxb****side"} where id = ${made.id}`.execute(a.db);
    expect((await a.vault.listConnections({ userId: "carol", provider: "slack" }))[0]?.tokenMasked).toBe("xoxb****side");
    await a.vault.createConnection(connection("carol"));
    expect(await a.vault.listConnections({ userId: "carol", provider: "slack" })).toHaveLength(2);
  });

  it("carries the health write into a table with no trigger (a trigger's changes would not be carried)", async () => {
    const triggers = await sql<{ name: string }>`select name from sqlite_master where type = 'trigger' and tbl_name = 'connections'`.execute(a.db);
    expect(triggers.rows).toEqual([]);
  });

  it("answers from memory after its own health write, with that health, and reads again after grouped ones", async () => {
    const made = await a.vault.createConnection(connection("hana"));
    const other = await a.vault.createConnection(connection("hana"));
    const answered = () => ({ ...changeWatchOf(a.db)?.answered });
    await a.vault.listConnections({ userId: "hana", provider: "slack" });
    await a.vault.findConnection({ userId: "hana", provider: "slack", id: made.id });
    const health = (status: "ok" | "down") => ({ status, checkedAt: new Date().toISOString(), auth: status === "ok", apiReachable: true, rateLimited: false });
    await a.vault.recordHealth(made.id, health("down"));
    const before = answered();
    const listed = await a.vault.listConnections({ userId: "hana", provider: "slack" });
    const found = await a.vault.findConnection({ userId: "hana", provider: "slack", id: made.id });
    expect(answered()).toEqual({ fromMemory: (before.fromMemory ?? 0) + 2, fromDatabase: before.fromDatabase });
    // What another instance reads from the database is what this one answered from memory.
    expect(listed).toEqual(await b.vault.listConnections({ userId: "hana", provider: "slack" }));
    expect(found).toEqual(await b.vault.findConnection({ userId: "hana", provider: "slack", id: made.id }));
    expect(listed.find((r) => r.id === made.id)?.lastHealth?.status).toBe("down");
    expect(listed.find((r) => r.id === other.id)?.lastHealth).toBeUndefined();
    // Writes grouped into one transaction (a sweep's, two or more at once) are not carried: read again, and what they wrote is seen.
    await Promise.all([a.vault.recordHealth(made.id, health("ok"), { grouped: true }), a.vault.recordHealth(other.id, health("ok"), { grouped: true })]);
    const after = await a.vault.listConnections({ userId: "hana", provider: "slack" });
    expect(after.map((r) => r.lastHealth?.status)).toEqual(["ok", "ok"]);
    expect(after).toEqual(await b.vault.listConnections({ userId: "hana", provider: "slack" }));
  });

  it("keeps nothing of a connection it crypto-shreds: no opened token, no kept row with its ciphertexts", async () => {
    const made = await a.vault.createConnection(connection("gina"));
    const [listed] = await a.vault.listConnections({ userId: "gina", provider: "slack" });
    await a.vault.readSecrets(listed as NonNullable<typeof listed>, { asRead: true });
    const opened = () => [...(a.vault as unknown as { opened: { keys(): Iterable<string> } }).opened.keys()].filter((slot) => slot.startsWith(made.id)).length;
    const answered = () => ({ ...changeWatchOf(a.db)?.answered });
    await a.vault.listConnections({ userId: "gina", provider: "slack", includeRevoked: true });
    expect(opened()).toBe(1);
    const forget = vi.spyOn(changeWatchOf(a.db) as NonNullable<ReturnType<typeof changeWatchOf>>, "forget");
    await a.vault.markRevoked({ userId: "gina", provider: "slack", id: made.id, revokedAt: new Date().toISOString(), eraseSecrets: true });
    expect(opened()).toBe(0);
    expect(forget).toHaveBeenCalledOnce();
    forget.mockRestore();
    // Nothing kept from before: the listing after reads the database, and answers from memory only after that.
    const before = answered();
    await a.vault.listConnections({ userId: "gina", provider: "slack", includeRevoked: true });
    await a.vault.listConnections({ userId: "gina", provider: "slack", includeRevoked: true });
    expect(answered()).toEqual({ fromMemory: (before.fromMemory ?? 0) + 1, fromDatabase: (before.fromDatabase ?? 0) + 1 });
  });

  it("answers after a stream left open on the connection, not from the snapshot the stream holds", async () => {
    const made = await a.vault.createConnection(connection("erin"));
    expect(await a.vault.listConnections({ userId: "erin", provider: "slack" })).toHaveLength(1);
    const stream = a.db.selectFrom("connections").select("id").stream()[Symbol.asyncIterator]();
    await stream.next();
    await b.vault.markRevoked({ userId: "erin", provider: "slack", id: made.id, revokedAt: new Date().toISOString(), eraseSecrets: true });
    const listed = a.vault.listConnections({ userId: "erin", provider: "slack" });
    const found = a.vault.findConnection({ userId: "erin", provider: "slack", id: made.id });
    await stream.return?.();
    expect(await listed).toEqual([]);
    expect((await found)?.revokedAt).toBeDefined();
  });

  it("answers after a write sent before it, awaited or not, as the query would", async () => {
    const made = await a.vault.createConnection(connection("frank"));
    expect(await a.vault.listConnections({ userId: "frank", provider: "slack" })).toHaveLength(1);
    const revoking = a.vault.markRevoked({ userId: "frank", provider: "slack", id: made.id, revokedAt: new Date().toISOString(), eraseSecrets: true });
    const listed = a.vault.listConnections({ userId: "frank", provider: "slack" });
    await revoking;
    expect(await listed).toEqual([]);
  });

  it("has no version inside a transaction, and reads again after one rolled back", async () => {
    const made = await a.vault.createConnection(connection("dave"));
    expect((await a.vault.listConnections({ userId: "dave", provider: "slack" }))[0]?.tokenMasked).toBe("xoxb****abcd");
    const rolledBack = a.db.transaction().execute(async (tx) => {
      await tx.updateTable("connections").set({ token_masked: "xoxb****roll" }).where("id", "=", made.id).execute();
      expect(changeWatchOf(a.db)?.version()).toBeUndefined();
      throw new Error("roll back");
    });
    await expect(rolledBack).rejects.toThrow("roll back");
    expect((await a.vault.listConnections({ userId: "dave", provider: "slack" }))[0]?.tokenMasked).toBe("xoxb****abcd");
    await a.db.transaction().execute((tx) => tx.updateTable("connections").set({ token_masked: "xoxb****kept" }).where("id", "=", made.id).execute());
    expect((await a.vault.listConnections({ userId: "dave", provider: "slack" }))[0]?.tokenMasked).toBe("xoxb****kept");
  });

});
