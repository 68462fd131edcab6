/**
 * Kept answers: the same JSON text again while the store's change token is
 * the one it was made under; made anew when the token moved, when it moved
 * while the answer was being made, when there is none, and for every key of
 * its own. Then, through the service on SQLite: a commit by another
 * connection on the file (what another process or a CLI command makes)
 * and every write of the service's own show in the next answer; on
 * PostgreSQL nothing is kept.
 */
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { sql, type Kysely } from "kysely";
import { testDatabases } from "../testing/databases.js";
import { startHarness, type Harness } from "../testing/harness.js";
import { keptAnswers, type KeptAnswers } from "./keptAnswers.js";

/** The text `answers` gives for `key`, the body made by `body` when it makes one. */
const text = async (answers: KeptAnswers<undefined>, key: readonly (string | boolean)[], body: () => Promise<unknown>): Promise<string> =>
  (await answers.json(key, async () => ({ body: await body(), extra: undefined }))).text;

describe("keptAnswers", () => {
  it("answers the kept text while the token is the same, and makes it anew once it moved", async () => {
    let token = "1";
    let made = 0;
    const answers = keptAnswers(() => token);
    const make = async () => ({ made: ++made });
    expect(await text(answers, ["a"], make)).toBe('{"made":1}');
    expect(await text(answers, ["a"], make)).toBe('{"made":1}');
    token = "2";
    expect(await text(answers, ["a"], make)).toBe('{"made":2}');
    expect(await text(answers, ["a"], make)).toBe('{"made":2}');
    expect(answers.answered).toEqual({ kept: 2, made: 2 });
  });

  it("keeps each key's answer apart (the parts are not run together)", async () => {
    const answers = keptAnswers(() => "1");
    expect(await text(answers, ["a\u0000b", "c"], async () => 1)).toBe("1");
    expect(await text(answers, ["a", "b\u0000c"], async () => 2)).toBe("2");
    expect(await text(answers, ["a", true], async () => 3)).toBe("3");
    expect(await text(answers, ["a", "true"], async () => 4)).toBe("4");
    expect(await text(answers, ["a\u0000b", "c"], async () => 5)).toBe("1");
  });

  it("keeps nothing made while the token moved, nor while there is none", async () => {
    let token: string | undefined = "1";
    const answers = keptAnswers(() => token);
    // The store changed while the answer was being made: it may hold either state, so it is not kept.
    expect(await text(answers, ["a"], async () => ((token = "2"), "during"))).toBe('"during"');
    expect(await text(answers, ["a"], async () => "after")).toBe('"after"');
    expect(await text(answers, ["a"], async () => "again")).toBe('"after"');
    token = undefined;
    expect(await text(answers, ["a"], async () => "none")).toBe('"none"');
    expect(await text(answers, ["a"], async () => "none again")).toBe('"none again"');
    // What was kept under "2" was dropped when an answer was made without a token: made anew under "2".
    token = "2";
    expect(await text(answers, ["a"], async () => "back")).toBe('"back"');
    expect(await text(answers, ["a"], async () => "back again")).toBe('"back"');
    expect(answers.answered).toEqual({ kept: 2, made: 5 });
  });

  it("without a token source makes every answer", async () => {
    const answers = keptAnswers(undefined);
    let made = 0;
    for (let i = 0; i < 3; i++) await text(answers, ["a"], async () => ++made);
    expect(made).toBe(3);
  });

  it("gives an answer with a window only within it, on the answers' clock, with its extra", async () => {
    let at = 1_000;
    let made = 0;
    const answers = keptAnswers<{ n: number }>(() => "1", { now: () => at });
    const make = async () => ({ body: { made: ++made }, extra: { n: made }, within: { from: 500, until: 2_000 } });
    expect(await answers.json(["a"], make)).toEqual({ text: '{"made":1}', extra: { n: 1 } });
    at = 1_999;
    expect(await answers.json(["a"], make)).toMatchObject({ text: '{"made":1}', extra: { n: 1 } });
    at = 2_000;
    expect(await answers.json(["a"], make)).toMatchObject({ text: '{"made":2}', extra: { n: 2 } });
    // A clock set back to the window's start or before: made anew, as the envelope's own freshness would say.
    at = 500;
    expect(await answers.json(["a"], make)).toMatchObject({ text: '{"made":3}' });
    expect(answers.answered).toEqual({ kept: 1, made: 3 });
  });

  it("gives an answer made to be this request's alone to no other", async () => {
    const answers = keptAnswers<undefined>(() => "1");
    let made = 0;
    const once = async () => ({ body: ++made, extra: undefined, keep: false as const });
    await answers.json(["a"], async () => ({ body: "kept", extra: undefined }));
    // Made when one was kept under the same token: that one is given; with keep false nothing new replaces it.
    expect((await answers.json(["a"], once)).text).toBe('"kept"');
    expect((await answers.json(["b"], once)).text).toBe("1");
    expect((await answers.json(["b"], once)).text).toBe("2");
  });

  it("keeps nothing when making fails, and the failure is the caller's", async () => {
    const answers = keptAnswers(() => "1");
    await expect(text(answers, ["a"], async () => Promise.reject(new Error("read failed")))).rejects.toThrow("read failed");
    expect(await text(answers, ["a"], async () => "read")).toBe('"read"');
    expect(answers.answered).toEqual({ kept: 0, made: 2 });
  });

  it("does not keep an answer longer than the bound, and keeps the total within its size", async () => {
    const answers = keptAnswers(() => "1", { size: 100, maxAnswer: 40 });
    let made = 0;
    const long = async () => ({ n: ++made, pad: "x".repeat(40) });
    await text(answers, ["long"], long);
    await text(answers, ["long"], long);
    expect(made).toBe(2);
    // Three answers of about 30 fit in 100 with their keys; a fourth pushes out the least recently used.
    for (const key of ["a", "b", "c", "d"]) await text(answers, [key], async () => `${key}${"y".repeat(20)}`);
    expect(await text(answers, ["d"], async () => "d anew")).toBe(`"d${"y".repeat(20)}"`);
    expect(await text(answers, ["a"], async () => "a anew")).toBe('"a anew"');
  });
});

describe.each(testDatabases())("GET .../connections on %s, kept by the store's change token", (database) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const connect = async (harness: Harness, user: string): Promise<string> => {
    const credential = await harness.sandbox("stripe", "/_sandbox/credentials?form=connect", { body: {} });
    const res = await harness.request({ method: "POST", url: "/api/integrations/stripe/connections", user, body: credential });
    expect(res.statusCode, res.body).toBe(201);
    return (res.json() as { id: string }).id;
  };
  const list = async (harness: Harness, user: string, query = "") => {
    const res = await harness.request({ method: "GET", url: `/api/integrations/stripe/connections${query}`, user });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    return res.json() as { connections: { id: string; accountName?: string }[] };
  };
  /** Renames a connection's account behind the service's back: on SQLite through a connection of its own on the file (as another process or a CLI command writes). */
  const renameElsewhere = async (harness: Harness, id: string, name: string): Promise<void> => {
    const db = harness.service.store.db as Kysely<unknown>;
    if (database === "postgres") {
      await sql`update connections set metadata = jsonb_set(metadata::jsonb, '{accountName}', to_jsonb(${name}::text))::text where id = ${id}`.execute(db);
      return;
    }
    const { rows } = await sql<{ name: string; file: string }>`pragma database_list`.execute(db);
    const file = rows.find((row) => row.name === "main")?.file;
    if (!file) throw new Error("the SQLite store has no file");
    const other = new Database(file);
    try {
      expect(other.prepare("update connections set metadata = json_set(metadata, '$.accountName', ?) where id = ?").run(name, id).changes).toBe(1);
    } finally {
      other.close();
    }
  };

  it(database === "sqlite" ? "answers a poll from memory, and shows the service's own writes and another connection's commits" : "reads on every request (no token: other instances' commits are not seen without a query)", async () => {
    h = await startHarness({ database });
    const kept = database === "sqlite";
    expect(h.service.store.vault.changeToken() !== undefined).toBe(kept);
    const lister = vi.spyOn(h.service.integrations.stripe, "listConnections");
    const first = await connect(h, "kept-a");
    const listed = await list(h, "kept-a");
    expect(listed.connections.map((c) => c.id)).toEqual([first]);
    const reads = lister.mock.calls.length;
    expect(await list(h, "kept-a")).toEqual(listed);
    expect(await list(h, "kept-a")).toEqual(listed);
    expect(lister.mock.calls.length).toBe(kept ? reads : reads + 2);

    // Another user, and the same user with revoked ones, are answers of their own.
    const before = lister.mock.calls.length;
    expect((await list(h, "kept-b")).connections).toEqual([]);
    expect((await list(h, "kept-a", "?includeRevoked=true")).connections.map((c) => c.id)).toEqual([first]);
    expect(lister.mock.calls.length).toBe(before + 2);

    // The service's own write: a second connection shows at once.
    const second = await connect(h, "kept-a");
    expect((await list(h, "kept-a")).connections.map((c) => c.id).sort()).toEqual([first, second].sort());

    // A commit behind the service's back.
    await renameElsewhere(h, first, "Renamed elsewhere");
    expect((await list(h, "kept-a")).connections.find((c) => c.id === first)?.accountName).toBe("Renamed elsewhere");

    // A disconnect: gone from the active list, there with the revoked ones.
    const gone = await h.request({ method: "DELETE", url: `/api/integrations/stripe/connections/${second}`, user: "kept-a" });
    expect(gone.statusCode, gone.body).toBeLessThan(300);
    expect((await list(h, "kept-a")).connections.map((c) => c.id)).toEqual([first]);
    expect((await list(h, "kept-a", "?includeRevoked=true")).connections.map((c) => c.id).sort()).toEqual([first, second].sort());
  });

  it(database === "sqlite" ? "GET .../health within the max age: answered from memory with its Age, anew after a commit or past the max age" : "GET .../health within the max age: made on every request", async () => {
    h = await startHarness({ database, config: { healthMaxAgeSeconds: 30 } });
    const harness = h;
    const kept = database === "sqlite";
    const id = await connect(harness, "kept-h");
    const checker = vi.spyOn(harness.service.integrations.stripe, "health");
    const poll = async () => {
      const res = await harness.request({ method: "GET", url: "/api/integrations/stripe/health", user: "kept-h" });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
      return res;
    };
    const first = await poll();
    expect((first.json() as { status: string }).status).toBe("ok");
    const made = checker.mock.calls.length;
    harness.clock.advance(5_000);
    const second = await poll();
    expect(second.body).toBe(first.body);
    expect(second.headers.age).toBe(String(Number(first.headers.age) + 5));
    expect(checker.mock.calls.length).toBe(kept ? made : made + 1);

    await renameElsewhere(harness, id, "Renamed for health");
    expect((await poll()).json()).toMatchObject({ status: "ok", accountName: "Renamed for health" });

    // Past the max age of the check: a probe now (Age 0), whose recording moves the token; the next poll
    // reads the envelope it recorded, and that answer is the one kept.
    harness.clock.advance(31_000);
    const probed = await poll();
    expect(probed.headers.age).toBe("0");
    expect((await poll()).body).toBe(probed.body);
    const after = checker.mock.calls.length;
    expect((await poll()).body).toBe(probed.body);
    expect(checker.mock.calls.length).toBe(kept ? after : after + 1);
    // maxAge=0 asks for a probe every time.
    await harness.request({ method: "GET", url: "/api/integrations/stripe/health?maxAge=0", user: "kept-h" });
    await harness.request({ method: "GET", url: "/api/integrations/stripe/health?maxAge=0", user: "kept-h" });
    expect(checker.mock.calls.length).toBe(kept ? after + 2 : after + 3);
  });

  it("GET .../health answers checked now (no connection, a disconnected one) are the request's own: Age 0 and checkedAt now on every poll", async () => {
    h = await startHarness({ database, config: { healthMaxAgeSeconds: 30 } });
    const harness = h;
    const poll = async (user: string, query = "") => {
      const res = await harness.request({ method: "GET", url: `/api/integrations/stripe/health${query}`, user });
      expect(res.statusCode, res.body).toBe(200);
      return { age: res.headers.age, envelope: res.json() as { status: string; checkedAt: string } };
    };
    const gone = await connect(harness, "kept-gone");
    const disconnected = await harness.request({ method: "DELETE", url: `/api/integrations/stripe/connections/${gone}`, user: "kept-gone" });
    expect(disconnected.statusCode, disconnected.body).toBeLessThan(300);
    for (const [user, query] of [["kept-nobody", ""], ["kept-gone", `?connectionId=${gone}`]] as const) {
      const first = await poll(user, query);
      expect(first).toMatchObject({ age: "0", envelope: { status: "down" } });
      harness.clock.advance(20_000);
      const second = await poll(user, query);
      expect(second).toMatchObject({ age: "0", envelope: { status: "down" } });
      // Checked at the second poll, not the first's check answered again.
      expect(Date.parse(second.envelope.checkedAt) - Date.parse(first.envelope.checkedAt)).toBeGreaterThanOrEqual(20_000);
    }
  });

  it("GET .../health answers are kept apart by user and by max age", async () => {
    h = await startHarness({ database, config: { healthMaxAgeSeconds: 30 } });
    const harness = h;
    await connect(harness, "kept-u1");
    await connect(harness, "kept-u2");
    harness.clock.advance(1_000);
    const poll = async (user: string, query = "") => (await harness.request({ method: "GET", url: `/api/integrations/stripe/health${query}`, user })).json() as { accountId?: string };
    const one = await poll("kept-u1");
    const two = await poll("kept-u2");
    expect(one.accountId).toBeDefined();
    expect(two.accountId).not.toBe(one.accountId);
    expect(await poll("kept-u1")).toEqual(one);
    expect(await poll("kept-u2")).toEqual(two);
    // Ten seconds on: within the 30 s max age, past a 5 s one, which probes (and records) now.
    harness.clock.advance(10_000);
    const checker = vi.spyOn(harness.service.integrations.stripe, "health");
    const probes = async () => (await harness.sandboxRequests("stripe")).filter((r) => r.path === "/v1/account").length;
    const before = await probes();
    await poll("kept-u1", "?maxAge=5");
    expect(await probes()).toBe(before + 1);
    expect(checker).toHaveBeenCalledWith("kept-u1", expect.objectContaining({ maxAgeMs: 5_000 }));
  });
});
