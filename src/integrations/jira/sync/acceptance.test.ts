/**
 * Issue 12's acceptance scenario, over HTTP against the Jira sandbox: 5,000
 * issues synced; 500 changed in Jira and 500 pushed from AutoFlow (100 of
 * them the same field on both sides); 50 deleted in Jira; synced again. The
 * mirror then equals Jira field by field, the deletes are marked, the
 * conflicts are exactly the 100, and no change produced two events.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Harness } from "../../../testing/harness.js";
import { connectJira, JIRA_API as API, startSyncHarness, SYNC_USER as USER } from "../../../testing/jiraSync.js";

type Json = Record<string, unknown>;
type Ticket = { id: string; key: string; summary: string; status: string; priority: string; labels: string[]; descriptionText: string | null; updated: string; deletedAt: string | null };

const TOTAL = 5000;
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("Jira ticket sync: 5,000 issues, changes on both sides, deletes", () => {
  let h: Harness;
  const call = (method: "GET" | "POST" | "PUT" | "PATCH", url: string, body?: unknown) => h.request({ method, url, user: USER, ...(body === undefined ? {} : { body }) });
  const mirror = async (): Promise<Ticket[]> => {
    const all: Ticket[] = [];
    let cursor: string | undefined;
    do {
      const page = (await call("GET", `${API}/tickets?limit=1000&includeDeleted=true${cursor ? `&cursor=${cursor}` : ""}`)).json() as { tickets: Ticket[]; nextCursor?: string };
      all.push(...page.tickets);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  };
  /** Every issue Jira holds, read page by page through the proxy's enhanced search. */
  const jira = async (): Promise<Map<string, Json>> => {
    const out = new Map<string, Json>();
    let next: string | undefined;
    do {
      const res = await call("POST", `${API}/proxy`, {
        method: "POST",
        path: "/rest/api/3/search/jql",
        body: { jql: "project = SBX ORDER BY key ASC", fields: ["summary", "status", "priority", "labels", "description", "updated"], maxResults: 100, ...(next ? { nextPageToken: next } : {}) },
      });
      expect(res.statusCode, res.body).toBe(200);
      const page = JSON.parse(res.body) as { issues: Array<{ key: string; fields: Json }>; nextPageToken?: string };
      for (const issue of page.issues) out.set(issue.key, issue.fields);
      next = page.nextPageToken;
    } while (next);
    return out;
  };

  beforeAll(async () => {
    // Sandboxes in memory: thousands of writes to the sandbox, and no restart to survive.
    h = await startSyncHarness({ sandboxPersistence: false });
    await connectJira(h);
  });
  afterAll(async () => {
    await h.close();
  });

  it("converges: the mirror equals Jira, deletes marked, exactly the 100 conflicts, no event twice", async () => {
    await h.sandbox("jira", "/_sandbox/jira/issues", { body: { count: TOTAL, fields: { summary: "Issue {n}", labels: ["seed"] } } });
    expect((await call("PUT", `${API}/sync/config`, { projects: ["SBX"] })).statusCode).toBe(200);
    const first = (await call("POST", `${API}/sync`)).json() as { run: Json };
    expect(first.run).toMatchObject({ counts: { created: TOTAL, pages: TOTAL / 100 } });
    const before = new Map((await mirror()).map((t) => [t.key, t]));
    expect(before.size).toBe(TOTAL);

    // Jira: 500 summaries change (SBX-1..500); 50 issues are deleted (SBX-4951..5000).
    for (const n of range(1, 500)) await h.sandbox("jira", `/_sandbox/jira/issues/SBX-${n}`, { method: "PATCH", body: { fields: { summary: `Jira ${n}` } } });
    for (const n of range(TOTAL - 49, TOTAL)) await h.sandbox("jira", `/_sandbox/jira/issues/SBX-${n}`, { method: "DELETE", body: {} });

    // AutoFlow, from the copies it had: 100 summaries Jira also changed (conflicts), 100 labels of issues whose
    // summary Jira changed (merged), 300 priorities of issues Jira left alone.
    const outcomes = new Map<number, number>();
    const push = async (n: number, fields: Json) => {
      const res = await call("PATCH", `${API}/tickets/SBX-${n}`, { fields, baseUpdated: before.get(`SBX-${n}`)?.updated });
      outcomes.set(res.statusCode, (outcomes.get(res.statusCode) ?? 0) + 1);
      return res;
    };
    for (const n of range(1, 100)) expect((await push(n, { summary: `AutoFlow ${n}` })).statusCode).toBe(409);
    for (const n of range(101, 200)) await push(n, { labels: ["seed", "autoflow"] });
    for (const n of range(501, 800)) await push(n, { priority: "High" });
    expect(Object.fromEntries(outcomes)).toEqual({ 200: 400, 409: 100 });

    const second = (await call("POST", `${API}/sync`, { deleteScan: true })).json() as { run: Json };
    expect(second.run).toMatchObject({ deleteScan: true, counts: { deleted: 50 } });

    // Field by field: every live ticket is what Jira holds; the 50 are marked deleted.
    const truth = await jira();
    expect(truth.size).toBe(TOTAL - 50);
    const after = await mirror();
    expect(after).toHaveLength(TOTAL);
    const mismatches: string[] = [];
    for (const t of after) {
      const fields = truth.get(t.key);
      if (!fields) {
        if (t.deletedAt === null) mismatches.push(`${t.key} is gone from Jira but live in the mirror`);
        continue;
      }
      const expected = {
        summary: fields.summary,
        status: (fields.status as Json).name,
        priority: (fields.priority as Json).name,
        labels: fields.labels,
        updated: fields.updated,
      };
      const actual = { summary: t.summary, status: t.status, priority: t.priority, labels: t.labels, updated: t.updated };
      if (JSON.stringify(expected) !== JSON.stringify(actual) || t.deletedAt !== null) mismatches.push(`${t.key}: mirror ${JSON.stringify(actual)} vs Jira ${JSON.stringify(expected)}`);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(after.filter((t) => t.deletedAt !== null).map((t) => t.key).sort()).toEqual(range(TOTAL - 49, TOTAL).map((n) => `SBX-${n}`).sort());
    // The merged ones carry both sides; the conflicting ones Jira's.
    expect(after.find((t) => t.key === "SBX-150")).toMatchObject({ summary: "Jira 150", labels: ["seed", "autoflow"] });
    expect(after.find((t) => t.key === "SBX-50")).toMatchObject({ summary: "Jira 50" });

    // The feed: 5,000 created; one update for each changed issue (Jira's 500, AutoFlow's 300 more); 50 deletes.
    const feed: Json[] = [];
    let afterSeq = 0;
    for (;;) {
      const page = (await call("GET", `${API}/tickets/events?after=${afterSeq}&limit=1000`)).json() as { events: Json[]; next: number };
      if (page.events.length === 0) break;
      feed.push(...page.events);
      afterSeq = page.next;
    }
    const byKind = (kind: string) => feed.filter((e) => e.kind === kind).length;
    expect({ created: byKind("created"), updated: byKind("updated"), deleted: byKind("deleted") }).toEqual({ created: TOTAL, updated: 800, deleted: 50 });
    const changes = feed.map((e) => `${e.issueId as string}|${e.kind as string}|${e.updated as string}`);
    expect(new Set(changes).size).toBe(changes.length);
  }, 240_000);
});
