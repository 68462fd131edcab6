/**
 * The push side of the ticket sync over HTTP, against the Jira sandbox:
 * idempotent creates, updates of the fields named and nothing else, conflicts
 * resolved per field by the policy (a 409 with both versions by default), a
 * description sent back untouched, transitions by status name, comments, and
 * no echo of the sync's own writes in the next pull.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Harness } from "../../../testing/harness.js";
import { connectJira, JIRA_API as API, startSyncHarness, SYNC_USER as USER } from "../../../testing/jiraSync.js";

type Json = Record<string, unknown>;
const RICH = {
  type: "doc",
  version: 1,
  content: [{ type: "paragraph", content: [{ type: "text", text: "Keep " }, { type: "text", text: "this", marks: [{ type: "strong" }] }, { type: "text", text: " bold" }] }],
};

describe("Jira ticket sync: pushes", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startSyncHarness();
    await connectJira(h);
  });
  afterEach(async () => {
    await h.close();
  });
  const call = (method: "GET" | "POST" | "PUT" | "PATCH", url: string, body?: unknown, headers?: Record<string, string>) =>
    h.request({ method, url, user: USER, ...(body === undefined ? {} : { body }), ...(headers ? { headers } : {}) });
  const configure = async (extra: Json = {}) => expect((await call("PUT", `${API}/sync/config`, { projects: ["SBX"], ...extra })).statusCode).toBe(200);
  const seed = async (count: number, fields: Json = {}) => h.sandbox("jira", "/_sandbox/jira/issues", { body: { count, fields } });
  const inJira = async (key: string, fields: Json) => h.sandbox("jira", `/_sandbox/jira/issues/${key}`, { method: "PATCH", body: { fields } });
  const pull = async () => ((await call("POST", `${API}/sync`)).json() as { run: Json }).run;
  const events = async () => ((await call("GET", `${API}/tickets/events?after=0&limit=1000`)).json() as { events: Json[] }).events;
  /** The issue as Jira holds it, read through the proxy. */
  const jiraIssue = async (key: string) => {
    const res = await call("POST", `${API}/proxy`, { method: "GET", path: `/rest/api/3/issue/${key}` });
    expect(res.statusCode, res.body).toBe(200);
    return (JSON.parse(res.body) as { fields: Json }).fields;
  };

  it("creates once per Idempotency-Key, replaying the first answer, and refuses the key with another request", async () => {
    await configure();
    const body = { summary: "From AutoFlow", description: "Made by a workflow", labels: ["autoflow"] };
    const first = await call("POST", `${API}/tickets`, body, { "idempotency-key": "create-1" });
    expect(first.statusCode, first.body).toBe(201);
    const ticket = (first.json() as { ticket: Json }).ticket;
    expect(ticket).toMatchObject({ key: "SBX-1", summary: "From AutoFlow", descriptionText: "Made by a workflow", labels: ["autoflow"] });
    const again = await call("POST", `${API}/tickets`, body, { "idempotency-key": "create-1" });
    expect(again.statusCode).toBe(201);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.json()).toEqual(first.json());
    // At once, and together: still one issue per key.
    const together = await Promise.all([1, 2, 3].map(() => call("POST", `${API}/tickets`, { summary: "Twice?" }, { "idempotency-key": "create-2" })));
    expect(new Set(together.map((r) => (r.json() as { ticket: Json }).ticket.key))).toEqual(new Set(["SBX-2"]));
    const other = await call("POST", `${API}/tickets`, { summary: "Something else" }, { "idempotency-key": "create-1" });
    expect(other.statusCode).toBe(400);
    expect(other.json()).toMatchObject({ error: { field: "Idempotency-Key" } });
    const creates = (await h.sandboxRequests("jira")).filter((r) => r.method === "POST" && r.path.endsWith("/rest/api/3/issue"));
    expect(creates).toHaveLength(2);
    // The created issue is readable at once from the mirror, and the next pull brings no echo of it.
    expect((await call("GET", `${API}/tickets/SBX-1`)).statusCode).toBe(200);
    const before = (await events()).length;
    expect(await pull()).toMatchObject({ counts: { created: 0, updated: 0 } });
    expect((await events()).length).toBe(before);
  });

  it("answers a retry after a failed read-back from the issue already written, never writing it twice", async () => {
    await configure();
    const cloudId = ((await call("GET", `${API}/sync/config`)).json() as { config: Json }).config.site as string;
    // Jira takes the create; the read-back of the new issue (id 10000) is refused once.
    await h.sandbox("jira", "/_sandbox/faults", { body: { fault: "bad-request", path: `/ex/jira/${cloudId}/rest/api/3/issue/10000`, times: 1 } });
    const first = await call("POST", `${API}/tickets`, { summary: "Once" }, { "idempotency-key": "k1" });
    expect(first.statusCode).toBeGreaterThanOrEqual(400);
    const retry = await call("POST", `${API}/tickets`, { summary: "Once" }, { "idempotency-key": "k1" });
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.json()).toMatchObject({ ticket: { key: "SBX-1", summary: "Once" } });
    const creates = (await h.sandboxRequests("jira")).filter((r) => r.method === "POST" && r.path.endsWith("/rest/api/3/issue"));
    expect(creates).toHaveLength(1);
    // A 5xx to the create itself may have acted: the key is held, and a retry is told so rather than writing again.
    await h.sandbox("jira", "/_sandbox/faults", { body: { fault: "server-error", path: `/ex/jira/${cloudId}/rest/api/3/issue`, times: 5 } });
    expect((await call("POST", `${API}/tickets`, { summary: "Maybe" }, { "idempotency-key": "k2" })).statusCode).toBeGreaterThanOrEqual(500);
    await h.sandbox("jira", "/_sandbox/faults", { method: "DELETE" });
    const told = await call("POST", `${API}/tickets`, { summary: "Maybe" }, { "idempotency-key": "k2" });
    expect(told.statusCode).toBe(409);
    expect(told.json()).toMatchObject({ error: { code: "idempotency_outcome_unknown" } });
  });

  it("names its own writes to a lagging search, so a pull reads them as written", async () => {
    await configure();
    await h.sandbox("jira", "/_sandbox/jira/search-lag", { method: "PUT", body: { ms: 600_000 } });
    expect((await call("POST", `${API}/tickets`, { summary: "Just written" })).statusCode).toBe(201);
    // The search lags ten minutes; the pull names SBX-1 (reconcileIssues), meets it, and applies nothing.
    expect(await pull()).toMatchObject({ counts: { created: 0, updated: 0, unchanged: 1 } });
  });

  it("refuses bad input field by field, and a sync that only pulls", async () => {
    await configure();
    const cases: Array<[string, unknown, string]> = [
      [`${API}/tickets`, {}, "summary"],
      [`${API}/tickets`, { summary: "two\nlines" }, "summary"],
      [`${API}/tickets`, { summary: "x", labels: ["has space"] }, "labels.0"],
      [`${API}/tickets`, { summary: "x", project: "OTHER" }, "project"],
      [`${API}/tickets`, { summary: "x", colour: "red" }, "colour"],
    ];
    for (const [url, body, field] of cases) {
      const res = await call("POST", url, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect((res.json() as { error: Json }).error.field, JSON.stringify(body)).toBe(field);
    }
    expect((await call("PATCH", `${API}/tickets/SBX-1`, { fields: {} })).statusCode).toBe(400);
    expect((await call("POST", `${API}/tickets`, { summary: "x" }, { "idempotency-key": "has space" })).json()).toMatchObject({ error: { field: "Idempotency-Key" } });
    await configure({ direction: "pull" });
    expect((await call("POST", `${API}/tickets`, { summary: "x" })).json()).toMatchObject({ error: { field: "config.direction" } });
  });

  it("updates only the fields named, and a field changed in Jira meanwhile is a 409 with both versions", async () => {
    await configure();
    await seed(2, { summary: "Seeded {n}" });
    await pull();
    const base = ((await call("GET", `${API}/tickets/SBX-1`)).json() as { ticket: Json }).ticket.updated as string;
    const changed = await call("PATCH", `${API}/tickets/SBX-1`, { fields: { summary: "Renamed in AutoFlow", labels: ["b", "a"] } });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({ sent: ["labels", "summary"], kept: [], ticket: { summary: "Renamed in AutoFlow", labels: ["b", "a"] } });
    expect(await jiraIssue("SBX-1")).toMatchObject({ summary: "Renamed in AutoFlow" });

    // Jira changes the summary; AutoFlow, from the old base, changes it too and the priority.
    await inJira("SBX-1", { summary: "Renamed in Jira" });
    const conflict = await call("PATCH", `${API}/tickets/SBX-1`, { fields: { summary: "Mine", priority: "High" }, baseUpdated: base });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ error: { type: "schema", code: "conflict", field: "fields.summary" }, conflicts: [{ field: "summary", jira: "Renamed in Jira", autoflow: "Mine" }] });
    // Nothing was sent; the mirror now holds Jira's version to merge from.
    expect(await jiraIssue("SBX-1")).toMatchObject({ summary: "Renamed in Jira", priority: { name: "Medium" } });
    expect(((await call("GET", `${API}/tickets/SBX-1`)).json() as { ticket: Json }).ticket.summary).toBe("Renamed in Jira");

    // A field changed on one side only takes that side: Jira's summary stays, AutoFlow's priority goes.
    const oneSide = await call("PATCH", `${API}/tickets/SBX-1`, { fields: { priority: "High" }, baseUpdated: base });
    expect(oneSide.json()).toMatchObject({ sent: ["priority"], ticket: { summary: "Renamed in Jira", priority: "High" } });
  });

  it("resolves a field changed on both sides by the policy: Jira's kept, or AutoFlow's sent", async () => {
    await configure({ conflicts: { default: "jira", fields: { labels: "autoflow" } } });
    await seed(1, { summary: "Seeded" });
    await pull();
    const base = ((await call("GET", `${API}/tickets/SBX-1`)).json() as { ticket: Json }).ticket.updated as string;
    await inJira("SBX-1", { summary: "Jira's", labels: ["jira"] });
    const res = await call("PATCH", `${API}/tickets/SBX-1`, { fields: { summary: "AutoFlow's", labels: ["autoflow"] }, baseUpdated: base });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ sent: ["labels"], kept: ["summary"], ticket: { summary: "Jira's", labels: ["autoflow"] } });
  });

  it("sends back a description whose text did not change untouched, and rewrites one that did", async () => {
    await configure();
    await seed(1, { summary: "Rich", description: RICH });
    await pull();
    const untouched = await call("PATCH", `${API}/tickets/SBX-1`, { fields: { description: "Keep this bold", summary: "Rich, renamed" } });
    expect(untouched.json()).toMatchObject({ sent: ["summary"] });
    expect((await jiraIssue("SBX-1")).description).toEqual(RICH);
    const rewritten = await call("PATCH", `${API}/tickets/SBX-1`, { fields: { description: "New text" } });
    expect(rewritten.json()).toMatchObject({ sent: ["description"], ticket: { descriptionText: "New text" } });
  });

  it("moves a ticket by status name, comments on it, and the next pull applies none of it again", async () => {
    await configure();
    await seed(1, { summary: "Flow" });
    await pull();
    const moved = await call("POST", `${API}/tickets/SBX-1/transitions`, { status: "done" });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json()).toMatchObject({ ticket: { status: "Done" } });
    const nowhere = await call("POST", `${API}/tickets/SBX-1/transitions`, { status: "Shipped" });
    expect(nowhere.statusCode).toBe(400);
    expect(nowhere.json()).toMatchObject({ error: { field: "status", message: expect.stringContaining("To Do") } });
    const commented = await call("POST", `${API}/tickets/SBX-1/comments`, { body: "Looks good" });
    expect(commented.statusCode, commented.body).toBe(201);
    expect(commented.json()).toMatchObject({ comment: { id: expect.any(String) } });
    const feed = await events();
    expect(feed.filter((e) => e.origin === "autoflow").map((e) => e.kind)).toEqual(["updated", "updated"]);
    expect(await pull()).toMatchObject({ counts: { updated: 0, created: 0 } });
    expect((await events()).length).toBe(feed.length);
  });
});
