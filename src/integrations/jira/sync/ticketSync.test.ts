/**
 * The Jira ticket sync over HTTP, against the Jira sandbox: configuration
 * refused field by field, a pull into the mirror with its change feed, a
 * second pull that applies nothing twice, a run that fails on its second page
 * and resumes from it, and an auth failure that stops the sync.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Harness } from "../../../testing/harness.js";
import { connectJira, JIRA_API as API, PULL_SCOPES, startSyncHarness, SYNC_USER as USER } from "../../../testing/jiraSync.js";

type Json = Record<string, unknown>;

describe("Jira ticket sync over HTTP", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startSyncHarness();
  });
  afterEach(async () => {
    await h.close();
  });
  const call = (method: "GET" | "POST" | "PUT" | "DELETE", url: string, body?: unknown) => h.request({ method, url, user: USER, ...(body === undefined ? {} : { body }) });
  const put = (body: unknown) => call("PUT", `${API}/sync/config`, body);
  const create = async (summary: string) => {
    const res = await call("POST", `${API}/actions/createIssue`, { projectKey: "SBX", summary, description: `About ${summary}` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Json;
  };

  it("refuses a configuration field by field, and a run before one is stored", async () => {
    await connectJira(h);
    const run = await call("POST", `${API}/sync`);
    expect(run.statusCode).toBe(400);
    expect(run.json()).toMatchObject({ error: { type: "schema", field: "config" } });
    const cases: Array<[unknown, string]> = [
      [{}, "config.projects"],
      [{ projects: ["SBX"], jql: "project = SBX" }, "config.projects"],
      [{ projects: ["sbx"] }, "config.projects.0"],
      [{ jql: "project = SBX ORDER BY created" }, "config.jql"],
      [{ projects: ["SBX"], direction: "sideways" }, "config.direction"],
      [{ projects: ["SBX"], conflicts: { default: "maybe" } }, "config.conflicts.default"],
      [{ projects: ["SBX"], site: "no-such-site" }, "site"],
    ];
    for (const [body, field] of cases) {
      const res = await put(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect((res.json() as { error: Json }).error.field, JSON.stringify(body)).toBe(field);
    }
    const ok = await put({ projects: ["SBX"] });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ config: { projects: ["SBX"], direction: "both", conflicts: { default: "reject" } }, sites: [{ id: expect.any(String) }] });
    // The one site of the grant is chosen and kept by id.
    expect(((await call("GET", `${API}/sync/config`)).json() as { config: Json }).config.site).toBe((ok.json() as { sites: Json[] }).sites[0]?.id);
  });

  it("pulls the project into the mirror and its feed, and a second pull applies nothing twice", async () => {
    await connectJira(h);
    for (const n of [1, 2, 3]) await create(`Issue ${n}`);
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    const first = await call("POST", `${API}/sync`);
    expect(first.statusCode, first.body).toBe(200);
    expect((first.json() as { run: Json }).run).toMatchObject({ trigger: "manual", counts: { pages: 1, created: 3, updated: 0 }, deleteScan: true });

    const listed = (await call("GET", `${API}/tickets?limit=2`)).json() as { tickets: Json[]; nextCursor?: string };
    expect(listed.tickets).toHaveLength(2);
    const rest = (await call("GET", `${API}/tickets?limit=2&cursor=${listed.nextCursor as string}`)).json() as { tickets: Json[] };
    expect([...listed.tickets, ...rest.tickets].map((t) => t.key).sort()).toEqual(["SBX-1", "SBX-2", "SBX-3"]);
    const one = (await call("GET", `${API}/tickets/SBX-2`)).json() as { ticket: Json };
    expect(one.ticket).toMatchObject({ key: "SBX-2", project: "SBX", summary: "Issue 2", descriptionText: "About Issue 2", deletedAt: null });
    expect(one.ticket.descriptionAdf).toMatchObject({ type: "doc", version: 1 });
    expect((await call("GET", `${API}/tickets/SBX-99`)).statusCode).toBe(404);
    expect((await call("GET", `${API}/tickets?cursor=nonsense`)).json()).toMatchObject({ error: { field: "cursor" } });

    const feed = (await call("GET", `${API}/tickets/events?after=0`)).json() as { events: Json[]; next: number };
    expect(feed.events.map((e) => [e.kind, e.key])).toEqual([
      ["created", "SBX-1"],
      ["created", "SBX-2"],
      ["created", "SBX-3"],
    ]);

    // The cursor overlaps the last pull: the same changes come back and none is applied again.
    const second = await call("POST", `${API}/sync`);
    expect((second.json() as { run: Json }).run).toMatchObject({ counts: { created: 0, updated: 0, unchanged: 3 } });
    expect(((await call("GET", `${API}/tickets/events?after=${feed.next}`)).json() as { events: Json[] }).events).toEqual([]);
    // Metrics: the runs by trigger and outcome, the issues by what was done with them, the cursor's lag.
    const metrics = (await h.service.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toMatch(/autoflow_ticket_sync_runs_total\{trigger="manual",outcome="ok"\} 2/);
    expect(metrics).toMatch(/autoflow_ticket_sync_issues_total\{kind="created"\} 3/);
    expect(metrics).toMatch(/autoflow_ticket_sync_lag_seconds \d/);
    // The scheduler's tick: not due again until the interval (300 s by default) has passed since the last run.
    expect(await h.service.ticketSync.runDue()).toEqual([{ connectionId: expect.any(String), outcome: "skipped" }]);
    const status = (await call("GET", `${API}/sync`)).json() as Json;
    expect(status).toMatchObject({ running: false, resumeFrom: null, cursor: { timeZone: expect.any(String), jqlFrom: expect.stringMatching(/^\d{4}\/\d\d\/\d\d \d\d:\d\d$/) }, lastRun: { counts: { unchanged: 3 } } });
  });

  it("keeps no cursor of an old scope: a configuration changed during a run starts the next afresh, and new fields fill in", async () => {
    await connectJira(h);
    for (const n of [1, 2, 3]) await create(`Issue ${n}`);
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    const cloudId = ((await call("GET", `${API}/sync/config`)).json() as { config: Json }).config.site as string;
    await h.sandbox("jira", "/_sandbox/faults", { body: { fault: "delay", delayMs: 800, times: 1, path: `/ex/jira/${cloudId}/rest/api/3/search/jql` } });
    await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
    const running = call("POST", `${API}/sync`);
    // Once the run's search has reached the sandbox (where it is held), the configuration changes under it.
    const searchPath = `/ex/jira/${cloudId}/rest/api/3/search/jql`;
    while (!(await h.sandboxRequests("jira")).some((r) => r.path === searchPath)) await new Promise((resolve) => setImmediate(resolve));
    // Whether this lands before the run's last page or after it, the run's cursor is of the old scope.
    expect((await put({ jql: "project = SBX AND labels = seed", fields: ["reporter"] })).statusCode).toBe(200);
    expect((await running).statusCode).toBe(200);
    expect(((await call("GET", `${API}/sync`)).json() as Json).cursor).toBeNull();
    expect(((await call("GET", `${API}/tickets/SBX-1`)).json() as { ticket: Json }).ticket.fields).not.toHaveProperty("reporter");
    await put({ projects: ["SBX"], fields: ["reporter"] });
    // A pull from no cursor re-reads everything and fills in the field the mirror did not hold, one event each.
    expect(((await call("POST", `${API}/sync`)).json() as { run: Json }).run).toMatchObject({ counts: { created: 0, updated: 3 } });
    expect(((await call("GET", `${API}/tickets/SBX-1`)).json() as { ticket: Json }).ticket.fields).toHaveProperty("reporter");
    expect(((await call("POST", `${API}/sync`)).json() as { run: Json }).run).toMatchObject({ counts: { created: 0, updated: 0 } });
  });

  it("runs a configured sync from the scheduler's tick, through the ticket-sync job", async () => {
    await h.close();
    h = await startSyncHarness({ config: { jobs: true } });
    await connectJira(h);
    await create("Scheduled");
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    expect(await h.service.jobs?.runNow("ticket-sync")).toEqual({ ran: 1, failed: 0, skipped: 0, forgotten: 0 });
    expect(((await call("GET", `${API}/sync`)).json() as Json).lastRun).toMatchObject({ trigger: "schedule", counts: { created: 1 } });
    expect(await h.service.jobs?.runNow("ticket-sync")).toEqual({ ran: 0, failed: 0, skipped: 1, forgotten: 0 });
    // Disconnected: the next due tick removes its mirror and feed, and asks no more.
    const id = ((await call("GET", `${API}/sync`)).json() as Json).connectionId as string;
    expect((await h.request({ method: "DELETE", url: `${API}/connections/${id}`, user: USER })).statusCode).toBe(200);
    // Due again (as after its interval), so the tick tries it.
    await h.service.ticketSync.internals.mirror.saveState(id, { lastRun: null });
    expect(await h.service.jobs?.runNow("ticket-sync")).toEqual({ ran: 0, failed: 0, skipped: 0, forgotten: 1 });
    expect(await h.service.ticketSync.internals.mirror.state(id)).toBeUndefined();
    expect(await h.service.jobs?.runNow("ticket-sync")).toEqual({ ran: 0, failed: 0, skipped: 0, forgotten: 0 });
  });

  it("resumes a run from its last committed page after it failed on the next", async () => {
    const connectionId = await connectJira(h);
    for (let n = 1; n <= 105; n++) await create(`Issue ${n}`);
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    const cloudId = ((await call("GET", `${API}/sync/config`)).json() as { config: Json }).config.site as string;
    const searchPath = `/ex/jira/${cloudId}/rest/api/3/search/jql`;
    // The first page passes; the second fails past the retry budget.
    await h.sandbox("jira", "/_sandbox/faults", { body: { fault: "server-error", path: searchPath, skip: 1, times: 10 } });
    const failed = await call("POST", `${API}/sync?connectionId=${connectionId}`);
    expect(failed.statusCode).toBeGreaterThanOrEqual(500);
    const status = (await call("GET", `${API}/sync`)).json() as Json;
    expect(status).toMatchObject({ resumeFrom: { pagesDone: 1 }, lastRun: { errorType: "upstream", counts: { pages: 1, created: 100 } }, cursor: null });
    expect(((await call("GET", `${API}/tickets?limit=1000`)).json() as { tickets: Json[] }).tickets).toHaveLength(100);

    await h.sandbox("jira", "/_sandbox/faults", { method: "DELETE" });
    await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
    const resumed = await call("POST", `${API}/sync`);
    expect(resumed.statusCode, resumed.body).toBe(200);
    // Counts include the first attempt's committed page; only the second page was read again.
    expect((resumed.json() as { run: Json }).run).toMatchObject({ counts: { pages: 2, created: 105 } });
    const searches = (await h.sandboxRequests("jira")).filter((r) => r.path === searchPath);
    // One search for the second page, then the delete scan's id-only pass.
    expect(searches).toHaveLength(2);
    const feed = (await call("GET", `${API}/tickets/events?after=0&limit=1000`)).json() as { events: Json[] };
    expect(feed.events).toHaveLength(105);
    expect(new Set(feed.events.map((e) => e.key)).size).toBe(105);
  });

  it("asks for the next page while it writes a page, one page ahead at most", async () => {
    await connectJira(h);
    await h.sandbox("jira", "/_sandbox/jira/issues", { body: { count: 250, fields: { summary: "Seeded {n}" } } });
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    const cloudId = ((await call("GET", `${API}/sync/config`)).json() as { config: Json }).config.site as string;
    const searchPath = `/ex/jira/${cloudId}/rest/api/3/search/jql`;
    const searches = async () => (await h.sandboxRequests("jira")).filter((r) => r.path === searchPath).length;
    await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
    const { mirror } = h.service.ticketSync.internals;
    let renewals = 0;
    const takeLease = mirror.takeLease.bind(mirror);
    mirror.takeLease = (...args) => {
      renewals += 1;
      return takeLease(...args);
    };
    // Each page's write is held until Jira has been asked for the page after it (or a while has passed).
    const writes: Array<{ renewals: number; searches: number; more: boolean }> = [];
    const apply = mirror.apply.bind(mirror);
    mirror.apply = async (...args) => {
      const more = writes.length < 2;
      for (let wait = 0; more && wait < 500 && (await searches()) < writes.length + 2; wait++) await new Promise((resolve) => setTimeout(resolve, 10));
      writes.push({ renewals, searches: await searches(), more });
      return apply(...args);
    };
    const run = await call("POST", `${API}/sync`, { deleteScan: false });
    expect(run.statusCode, run.body).toBe(200);
    expect((run.json() as { run: Json }).run).toMatchObject({ counts: { pages: 3, created: 250 } });
    // While page n was written, page n + 1 had been asked for and its lease renewed (the run's own renewal, then
    // one a page), but never page n + 2: the run holds two pages at most.
    expect(writes).toEqual([
      { renewals: 3, searches: 2, more: true },
      { renewals: 4, searches: 3, more: true },
      { renewals: 4, searches: 3, more: false },
    ]);
  });

  it("loses nothing when a page's write fails while the next is read ahead, and resumes from that page", async () => {
    const connectionId = await connectJira(h);
    await h.sandbox("jira", "/_sandbox/jira/issues", { body: { count: 250, fields: { summary: "Seeded {n}" } } });
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    const { mirror } = h.service.ticketSync.internals;
    const apply = mirror.apply.bind(mirror);
    let writes = 0;
    mirror.apply = async (...args) => {
      writes += 1;
      if (writes === 2) throw new Error("the database went away mid-page");
      return apply(...args);
    };
    const failed = await call("POST", `${API}/sync`, { deleteScan: false });
    expect(failed.statusCode).toBeGreaterThanOrEqual(500);
    const status = (await call("GET", `${API}/sync`)).json() as Json;
    // The first page is kept, the second not, and the run's position stays before the second: no cursor yet.
    expect(status).toMatchObject({ resumeFrom: { pagesDone: 1 }, lastRun: { error: "the database went away mid-page", counts: { pages: 1, created: 100 } }, cursor: null, running: false });
    expect(((await call("GET", `${API}/tickets?limit=1000`)).json() as { tickets: Json[] }).tickets).toHaveLength(100);
    // The page read ahead was let finish first: no renewal of the failed run holds the lease after it.
    expect(await mirror.leaseHolder(connectionId)).toBeNull();

    const resumed = await call("POST", `${API}/sync`, { deleteScan: false });
    expect(resumed.statusCode, resumed.body).toBe(200);
    expect((resumed.json() as { run: Json }).run).toMatchObject({ counts: { pages: 3, created: 250 } });
    const feed = (await call("GET", `${API}/tickets/events?after=0&limit=1000`)).json() as { events: Json[] };
    expect(feed.events).toHaveLength(250);
    expect(new Set(feed.events.map((e) => e.key)).size).toBe(250);
  });

  it("starts over from the cursor once when Jira refuses the token of a page read ahead", async () => {
    await connectJira(h);
    await h.sandbox("jira", "/_sandbox/jira/issues", { body: { count: 250, fields: { summary: "Seeded {n}" } } });
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    const cloudId = ((await call("GET", `${API}/sync/config`)).json() as { config: Json }).config.site as string;
    // The second page's search (by the first page's token, asked for while the first is written) is refused.
    await h.sandbox("jira", "/_sandbox/faults", { body: { fault: "bad-request", path: `/ex/jira/${cloudId}/rest/api/3/search/jql`, skip: 1, times: 1 } });
    const run = await call("POST", `${API}/sync`, { deleteScan: false });
    expect(run.statusCode, run.body).toBe(200);
    // The first page, then all three again from the cursor: the first of them applied already.
    expect((run.json() as { run: Json }).run).toMatchObject({ counts: { pages: 4, created: 250, unchanged: 100 } });
    const feed = (await call("GET", `${API}/tickets/events?after=0&limit=1000`)).json() as { events: Json[] };
    expect(new Set(feed.events.map((e) => e.key)).size).toBe(250);
    expect(feed.events).toHaveLength(250);
    expect(((await call("GET", `${API}/sync`)).json() as Json).cursor).not.toBeNull();
  });

  it("refuses a sync the grant's scopes cannot run, naming the scope", async () => {
    await h.close();
    h = await startSyncHarness({}, PULL_SCOPES);
    await connectJira(h);
    const both = await put({ projects: ["SBX"] });
    expect(both.statusCode).toBe(424);
    expect(both.json()).toMatchObject({ error: { type: "auth", code: "missing_scope", message: expect.stringContaining("write:jira-work") } });
    expect((await put({ projects: ["SBX"], direction: "pull" })).statusCode).toBe(200);
  });

  it("pulls through a Cloud API token and a Data Center personal access token too (v3 by token, v2 by offset)", async () => {
    await h.sandbox("jira", "/_sandbox/jira/issues", { body: { count: 130, fields: { summary: "Seeded {n}" } } });
    for (const type of [undefined, "datacenter"]) {
      const credential = (await h.sandbox("jira", "/_sandbox/credentials?form=connect", { body: type ? { type } : {} })) as Json;
      const made = await call("POST", `${API}/connections`, credential);
      expect(made.statusCode, made.body).toBe(201);
      const id = (made.json() as Json).id as string;
      const configured = await call("PUT", `${API}/sync/config?connectionId=${id}`, { projects: ["SBX"] });
      expect(configured.statusCode, configured.body).toBe(200);
      const run = await call("POST", `${API}/sync?connectionId=${id}`);
      expect(run.statusCode, run.body).toBe(200);
      expect((run.json() as { run: Json }).run, String(type)).toMatchObject({ counts: { pages: 2, created: 130 } });
      const again = await call("POST", `${API}/sync?connectionId=${id}`);
      expect((again.json() as { run: Json }).run).toMatchObject({ counts: { created: 0, updated: 0 } });
    }
  });

  it("stops at an auth failure, marks it, and the scheduler leaves it for the user", async () => {
    await connectJira(h);
    await create("Issue 1");
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    await h.sandbox("jira", "/_sandbox/faults", { body: { fault: "revoke-all" } });
    const failed = await call("POST", `${API}/sync`);
    expect(failed.statusCode).toBe(424);
    expect(((await call("GET", `${API}/sync`)).json() as Json).lastRun).toMatchObject({ errorType: "auth" });
    expect(await h.service.ticketSync.runDue()).toEqual([{ connectionId: expect.any(String), outcome: "skipped" }]);
    const health = (await call("GET", `${API}/health`)).json() as Json;
    expect(health).toMatchObject({ status: "down" });
  });
});
