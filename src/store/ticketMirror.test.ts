/** The ticket mirror on every database of the run: applied once by (id, updated), the feed numbered without gaps, a page and its progress together. */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { textToAdf } from "../integrations/jira/sync/adf.js";
import { jiraTime } from "../integrations/jira/sync/jqlDate.js";
import { ticketOf, type Ticket } from "../integrations/jira/sync/ticket.js";
import { freshLocation, testDatabases } from "../testing/databases.js";
import { openStore, type OpenedStore } from "./index.js";
import { SqlTicketMirror } from "./ticketMirror.js";

const T0 = Date.parse("2026-11-30T10:00:00Z");

function issue(n: number, updatedMs: number, extra: Record<string, unknown> = {}): Ticket {
  return ticketOf({
    id: String(10_000 + n),
    key: `SBX-${n}`,
    fields: {
      summary: `Issue ${n}`,
      status: { name: "To Do" },
      project: { key: "SBX" },
      assignee: n % 2 === 0 ? { accountId: "acc-even", displayName: "Eve" } : null,
      priority: { name: "Medium" },
      labels: n % 3 === 0 ? ["Triage"] : ["triage", "backend"],
      description: textToAdf(`Body of ${n}`),
      created: jiraTime(T0 - 86_400_000),
      updated: jiraTime(updatedMs),
      ...extra,
    },
  });
}

describe.each(testDatabases())("ticket mirror on %s", (database) => {
  let stores: OpenedStore[];
  let mirror: SqlTicketMirror;
  let dispose: () => Promise<void>;
  const connection = "conn-1";

  beforeEach(async () => {
    const fresh = freshLocation(database);
    dispose = fresh.dispose;
    const key = randomBytes(32);
    stores = [await openStore({ ...fresh.location, keys: [key] })];
    if (database === "postgres") stores.push(await openStore({ ...fresh.location, keys: [key] }));
    mirror = new SqlTicketMirror(stores[0]!.db);
  });
  afterEach(async () => {
    for (const store of stores) await store.close();
    await dispose();
  });

  it("applies a change once: created, then the same (id, updated) unchanged, a newer one updated, an older one stale", async () => {
    const first = await mirror.apply(connection, [issue(1, T0), issue(2, T0)], "jira");
    expect(first).toMatchObject({ created: 2, updated: 0, unchanged: 0, stale: 0 });
    expect(first.events.map((e) => [e.seq, e.kind, e.key])).toEqual([
      [1, "created", "SBX-1"],
      [2, "created", "SBX-2"],
    ]);
    expect(first.events[0]!.changedFields).toContain("summary");
    const again = await mirror.apply(connection, [issue(1, T0), issue(2, T0)], "jira");
    expect(again).toMatchObject({ created: 0, updated: 0, unchanged: 2, events: [] });
    const newer = await mirror.apply(connection, [issue(1, T0 + 1, { summary: "Renamed", status: { name: "Done" } }), issue(2, T0 - 1, { summary: "Old" })], "jira");
    expect(newer).toMatchObject({ created: 0, updated: 1, unchanged: 0, stale: 1 });
    expect(newer.events).toEqual([expect.objectContaining({ seq: 3, kind: "updated", key: "SBX-1", changedFields: ["status", "summary"], origin: "jira" })]);
    const stored = await mirror.get(connection, "SBX-1");
    expect(stored).toMatchObject({ id: "10001", summary: "Renamed", status: "Done", descriptionText: "Body of 1", updatedMs: T0 + 1, deletedAt: null });
    expect(stored?.descriptionAdf).toEqual(textToAdf("Body of 1"));
    expect((await mirror.get(connection, "10002"))?.summary).toBe("Issue 2");
  });

  it("keeps the newest answer of an issue a batch holds twice", async () => {
    const outcome = await mirror.apply(connection, [issue(1, T0 + 5, { summary: "newest" }), issue(1, T0, { summary: "older" })], "jira");
    expect(outcome).toMatchObject({ created: 1 });
    expect((await mirror.get(connection, "SBX-1"))?.summary).toBe("newest");
  });

  it("writes batches of one size through one compiled insert, each row with its own values", async () => {
    // The first batch of a size compiles the insert; the later ones reuse its SQL with their own parameters.
    for (const batch of [0, 1, 2]) {
      const tickets = [1, 2, 3].map((n) => issue(batch * 3 + n, T0 + batch, { summary: `Batch ${batch} issue ${n}`, customfield_10020: batch === 1 ? null : { n } }));
      expect(await mirror.apply(connection, tickets, "jira")).toMatchObject({ created: 3 });
    }
    // Another size (and so another statement) between them, then the first size again.
    await mirror.apply(connection, [issue(10, T0 + 3)], "jira");
    await mirror.apply(connection, [11, 12, 13].map((n) => issue(n, T0 + 4)), "jira");
    for (let n = 1; n <= 13; n++) {
      const stored = await mirror.get(connection, `SBX-${n}`);
      const batch = Math.floor((n - 1) / 3);
      expect(stored, `SBX-${n}`).toMatchObject({ id: String(10_000 + n), key: `SBX-${n}`, descriptionText: `Body of ${n}`, deletedAt: null });
      if (n <= 9) {
        expect(stored?.summary).toBe(`Batch ${batch} issue ${((n - 1) % 3) + 1}`);
        expect(stored?.updatedMs).toBe(T0 + batch);
        expect(stored?.fields.customfield_10020).toEqual(batch === 1 ? null : { n: ((n - 1) % 3) + 1 });
      }
    }
    const events = await mirror.events(connection, 0, 100);
    expect(events.map((e) => [e.seq, e.key, e.kind])).toEqual(Array.from({ length: 13 }, (_, i) => [i + 1, `SBX-${i + 1}`, "created"]));
    expect(events[3]?.changedFields).toContain("customfield_10020");
  });

  it("commits a page and the run's progress together, or neither", async () => {
    await mirror.apply(connection, [issue(1, T0)], "jira", { cursorMs: T0, run: { jql: "project = SBX", nextPageToken: "p1" } });
    expect(await mirror.state(connection)).toMatchObject({ cursorMs: T0, run: { jql: "project = SBX", nextPageToken: "p1" } });
    // A value JSON cannot write fails the batch after its first issue: nothing of it lands, the cursor stays.
    const broken = { ...issue(3, T0 + 10), fields: { ...issue(3, T0 + 10).fields, bad: 1n } };
    await expect(mirror.apply(connection, [issue(2, T0 + 10), broken], "jira", { cursorMs: T0 + 10, run: null })).rejects.toThrow();
    expect(await mirror.get(connection, "SBX-2")).toBeUndefined();
    expect(await mirror.state(connection)).toMatchObject({ cursorMs: T0, run: { nextPageToken: "p1" } });
    expect((await mirror.events(connection, 0, 100)).map((e) => e.seq)).toEqual([1]);
  });

  it("marks deletes once, lists live ids, and brings back an issue that returns", async () => {
    await mirror.apply(connection, [issue(1, T0), issue(2, T0), issue(3, T0)], "jira");
    const deleted = await mirror.markDeleted(connection, ["10002", "10003", "99999"], "jira");
    expect(deleted.map((e) => [e.kind, e.key])).toEqual([
      ["deleted", "SBX-2"],
      ["deleted", "SBX-3"],
    ]);
    expect(await mirror.markDeleted(connection, ["10002"], "jira")).toEqual([]);
    expect((await mirror.liveIds(connection)).sort()).toEqual(["10001"]);
    expect((await mirror.get(connection, "SBX-2"))?.deletedAt).not.toBeNull();
    expect((await mirror.list(connection, { limit: 10 })).map((t) => t.key)).toEqual(["SBX-1"]);
    expect(await mirror.list(connection, { limit: 10, includeDeleted: true })).toHaveLength(3);
    // A stale answer of the same version (a lagging search) does not bring it back; a newer one does.
    expect(await mirror.apply(connection, [issue(2, T0)], "jira")).toMatchObject({ unchanged: 1, updated: 0 });
    expect((await mirror.get(connection, "SBX-2"))?.deletedAt).not.toBeNull();
    const back = await mirror.apply(connection, [issue(2, T0 + 1)], "jira");
    expect(back).toMatchObject({ updated: 1 });
    expect((await mirror.get(connection, "SBX-2"))?.deletedAt).toBeNull();
  });

  it("lists by filters, exactly (labels keep their case), paged by (updated, id)", async () => {
    await mirror.apply(connection, Array.from({ length: 12 }, (_, i) => issue(i + 1, T0 + (i % 4))), "jira");
    const pages: string[][] = [];
    let after: { updatedMs: number; id: string } | undefined;
    for (;;) {
      const page = await mirror.list(connection, { limit: 5, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      pages.push(page.map((t) => t.key));
      const last = page[page.length - 1]!;
      after = { updatedMs: last.updatedMs, id: last.id };
    }
    expect(pages.map((p) => p.length)).toEqual([5, 5, 2]);
    expect(new Set(pages.flat()).size).toBe(12);
    expect((await mirror.list(connection, { limit: 50, label: "Triage" })).map((t) => t.key).sort()).toEqual(["SBX-12", "SBX-3", "SBX-6", "SBX-9"]);
    expect(await mirror.list(connection, { limit: 50, label: "triage" })).toHaveLength(8);
    expect(await mirror.list(connection, { limit: 50, label: "tri%" })).toHaveLength(0);
    expect(await mirror.list(connection, { limit: 50, assigneeAccountId: "acc-even" })).toHaveLength(6);
    expect(await mirror.list(connection, { limit: 50, project: "SBX", status: "To Do" })).toHaveLength(12);
    expect(await mirror.list(connection, { limit: 50, status: "Done" })).toHaveLength(0);
    expect(await mirror.list("another", { limit: 50 })).toHaveLength(0);
  });

  it("applies two versions of one issue sent at once by two instances in order: the newer stays, one event each", async () => {
    const [a, b] = [new SqlTicketMirror(stores[0]!.db), new SqlTicketMirror(stores[stores.length - 1]!.db)];
    for (let round = 0; round < 10; round++) {
      const older = issue(100 + round, T0 + 1000, { summary: "older" });
      const newer = issue(100 + round, T0 + 3000, { summary: "newer" });
      await Promise.all([a.apply(connection, [older], "jira"), b.apply(connection, [newer], "webhook")]);
      expect((await mirror.get(connection, older.id))?.summary).toBe("newer");
    }
    const events = await mirror.events(connection, 0, 1000);
    // Each round: a created, and an updated only when the older came first.
    expect(events.filter((e) => e.kind === "created")).toHaveLength(10);
    expect(new Set(events.map((e) => `${e.issueId}|${e.updated}`)).size).toBe(events.length);
  });

  it("numbers the feed without gaps or repeats when instances apply at once", async () => {
    const mirrors = stores.map((s) => new SqlTicketMirror(s.db));
    await Promise.all(
      Array.from({ length: 10 }, (_, batch) => mirrors[batch % mirrors.length]!.apply(connection, Array.from({ length: 5 }, (_, i) => issue(batch * 5 + i, T0)), "jira")),
    );
    const events = await mirror.events(connection, 0, 1000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await mirror.events(connection, 45, 3)).map((e) => e.seq)).toEqual([46, 47, 48]);
  });

  it("lends a run's lease to one instance at a time, until it lapses", async () => {
    const [a, b] = [new SqlTicketMirror(stores[0]!.db), new SqlTicketMirror(stores[stores.length - 1]!.db)];
    expect(await a.takeLease(connection, "instance-a", 1000, 61_000)).toBe(true);
    expect(await b.takeLease(connection, "instance-b", 2000, 62_000)).toBe(false);
    // The holder renews; after the lease lapses another may take it.
    expect(await a.takeLease(connection, "instance-a", 3000, 63_000)).toBe(true);
    expect(await b.takeLease(connection, "instance-b", 63_001, 123_001)).toBe(true);
    await a.releaseLease(connection, "instance-a");
    expect(await a.takeLease(connection, "instance-a", 63_002, 123_002)).toBe(false);
    await b.releaseLease(connection, "instance-b");
    expect(await a.takeLease(connection, "instance-a", 63_003, 123_003)).toBe(true);
  });

  it("names the issues one origin changed lately, newest first", async () => {
    await mirror.apply(connection, [issue(1, T0), issue(2, T0)], "jira");
    await mirror.apply(connection, [issue(3, T0)], "autoflow");
    await mirror.apply(connection, [issue(1, T0 + 1)], "autoflow");
    expect(await mirror.recentlyChanged(connection, "autoflow", "2000-01-01T00:00:00.000Z", 50)).toEqual(["10001", "10003"]);
    expect(await mirror.recentlyChanged(connection, "autoflow", "2999-01-01T00:00:00.000Z", 50)).toEqual([]);
  });

  it("keeps the sync state and forgets a connection whole", async () => {
    await mirror.saveState(connection, { config: { direction: "both" }, timeZone: "Pacific/Kiritimati", lastRun: { counts: { created: 1 } } });
    await mirror.apply(connection, [issue(1, T0)], "jira");
    expect(await mirror.state(connection)).toMatchObject({ config: { direction: "both" }, timeZone: "Pacific/Kiritimati", cursorMs: null, lastRun: { counts: { created: 1 } } });
    await mirror.forget(connection);
    expect(await mirror.state(connection)).toBeUndefined();
    expect(await mirror.get(connection, "SBX-1")).toBeUndefined();
    expect(await mirror.events(connection, 0, 10)).toEqual([]);
  });
});
