/**
 * The Jira sandbox as a two-way ticket sync meets it, over HTTP: timestamps in
 * the account's time zone, the enhanced search's pages, fields, ORDER BY and
 * changelog, edits, transitions, comments and deletes through the API, changes
 * made "in Jira" by other people through the control plane, the search's lag
 * and reconcileIssues, several sites, and dynamic webhooks delivered signed
 * to a local server.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import { startJiraSandbox, type JiraSandboxOptions } from "./sandbox.js";
import { JIRA_SANDBOX_REDIRECT as REDIRECT, jiraSandboxClient } from "./testing/sandboxClient.js";

type Json = Record<string, unknown>;
const ADF = (text: string) => ({ type: "doc", version: 1, content: [{ type: "paragraph", content: [{ type: "text", text }] }] });
const ALL_SCOPES = ["read:jira-user", "read:jira-work", "write:jira-work", "manage:jira-webhook"];

const start = closedAfterEach(startJiraSandbox, { redirectUris: [REDIRECT] });

async function jira(options: JiraSandboxOptions = {}) {
  const sandbox = await start(options);
  const { call, consent } = jiraSandboxClient(sandbox);
  const oauth = async (scopes: string[] = ALL_SCOPES, siteIndex = 0) => {
    const { authorization, cloudId, resources, gateway } = await consent(scopes, siteIndex);
    return { authorization, cloudId, resources, base: `${gateway}/rest/api/3` };
  };
  const control = (method: string, path: string, body?: unknown) => call(method, `${sandbox.url}/_sandbox/jira${path}`, "", body);
  const search = (api: { authorization: string; base: string }, body: Json) => call("POST", `${api.base}/search/jql`, api.authorization, body);
  return { sandbox, call, oauth, control, search };
}

/** A local receiver of webhook deliveries on 127.0.0.1 that answers with `statuses` in turn (then 200). */
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});
async function receiver(statuses: number[] = []) {
  const received: { headers: IncomingMessage["headers"]; body: Json }[] = [];
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    req.on("end", () => {
      received.push({ headers: req.headers, body: JSON.parse(text) as Json });
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}/jira/hook`, received };
}

describe("Jira sandbox sync: the account's time zone", () => {
  it("writes timestamps at +1400 for Pacific/Kiritimati, reports the zone in /myself and reads JQL dates in it", async () => {
    const clock = { ms: Date.parse("2026-12-01T09:30:00.000Z") };
    const k = await jira({ timeZone: "Pacific/Kiritimati", now: () => clock.ms });
    const api = await k.oauth();
    const me = await k.call("GET", `${api.base}/myself`, api.authorization);
    expect(me.body.timeZone).toBe("Pacific/Kiritimati");
    const created = await k.call("POST", `${api.base}/issue`, api.authorization, { fields: { project: { key: "SBX" }, summary: "Late", issuetype: { name: "Task" } } });
    const issue = await k.call("GET", `${api.base}/issue/${created.body.key as string}`, api.authorization);
    expect((issue.body.fields as Json).created).toBe("2026-12-01T23:30:00.000+1400");
    clock.ms += 60_000;
    await k.call("PUT", `${api.base}/issue/SBX-1`, api.authorization, { fields: { summary: "Later" } });
    const changelog = await k.call("GET", `${api.base}/issue/SBX-1/changelog`, api.authorization);
    expect(((changelog.body as Json).values as Json[])[0]).toMatchObject({ created: "2026-12-01T23:31:00.000+1400" });
    // 23:30 local is 09:30 UTC: the literal is read in the account's zone.
    const found = await k.search(api, { jql: 'project = SBX AND created >= "2026-12-01 23:30"' });
    expect(found.body.issues).toHaveLength(1);
    const none = await k.search(api, { jql: 'project = SBX AND created >= "2026-12-01 23:31"' });
    expect(none.body.issues).toHaveLength(0);
  });

  it("keeps +0000 and Etc/UTC when no zone is given", async () => {
    const k = await jira({ now: () => Date.parse("2026-01-02T03:04:05.678Z") });
    const api = await k.oauth();
    expect((await k.call("GET", `${api.base}/myself`, api.authorization)).body.timeZone).toBe("Etc/UTC");
    await k.call("POST", `${api.base}/issue`, api.authorization, { fields: { project: { key: "SBX" }, summary: "x", issuetype: { name: "Task" } } });
    expect(((await k.call("GET", `${api.base}/issue/SBX-1`, api.authorization)).body.fields as Json).updated).toBe("2026-01-02T03:04:05.678+0000");
  });
});

describe("Jira sandbox sync: the enhanced search", () => {
  it("pages 5,000 seeded issues by nextPageToken: 50 by default, 100 at most with fields, 5,000 with only ids, ORDER BY updated ASC, key ASC", async () => {
    const k = await jira();
    const seeded = await k.control("POST", "/issues", { count: 5000, fields: { summary: "Seed {n}" } });
    expect(seeded.status).toBe(201);
    expect((seeded.body.issues as Json[])[0]).toEqual({ id: "10000", key: "SBX-1" });
    const api = await k.oauth();
    const jql = "project = SBX ORDER BY updated ASC, key ASC";
    const first = await k.search(api, { jql });
    expect(first.body.issues).toHaveLength(50);
    expect((first.body.issues as Json[])[0]).toEqual({ id: "10000" });
    const wide = await k.search(api, { jql, maxResults: 500, fields: ["summary", "updated", "status"] });
    expect(wide.body.issues).toHaveLength(100);
    expect(Object.keys((wide.body.issues as Json[])[0]?.fields as Json).sort()).toEqual(["status", "summary", "updated"]);
    const ids = await k.search(api, { jql, maxResults: 6000, fields: "id,key" });
    expect(ids.body.issues).toHaveLength(5000);
    expect(ids.body).toMatchObject({ isLast: true });
    expect(ids.body.nextPageToken).toBeUndefined();

    const keys: string[] = [];
    let nextPageToken: string | undefined;
    let pages = 0;
    do {
      const page = await k.search(api, { jql, maxResults: 100, fields: "summary", ...(nextPageToken ? { nextPageToken } : {}) });
      pages += 1;
      for (const issue of page.body.issues as Json[]) keys.push(issue.key as string);
      nextPageToken = page.body.nextPageToken as string | undefined;
      expect(page.body.isLast).toBe(nextPageToken === undefined);
    } while (nextPageToken);
    expect(pages).toBe(50);
    expect(new Set(keys).size).toBe(5000);
    expect(keys.slice(0, 3)).toEqual(["SBX-1", "SBX-2", "SBX-3"]);

    // An edit moves the issue to the end of `updated ASC`.
    await k.control("PATCH", "/issues/SBX-2", { fields: { summary: "Edited" } });
    const all = await k.search(api, { jql, maxResults: 5000, fields: "key" });
    expect((all.body.issues as Json[]).at(-1)).toMatchObject({ key: "SBX-2" });
    const desc = await k.search(api, { jql: "project = SBX ORDER BY key DESC", maxResults: 1, fields: ["key"] });
    expect((desc.body.issues as Json[])[0]).toMatchObject({ key: "SBX-5000" });
  });

  it("takes fields as a comma string on GET, *all, expand=changelog, and status/assignee in JQL", async () => {
    const k = await jira();
    const users = (await k.control("GET", "/users")).body.users as Json[];
    const avery = users[1]?.accountId as string;
    await k.control("POST", "/issues", { count: 3 });
    await k.control("PATCH", "/issues/SBX-2", { fields: { status: "In Progress", assignee: avery, priority: "High", labels: ["sync"] } });
    const api = await k.oauth();
    const get = await k.call("GET", `${api.base}/search/jql?jql=${encodeURIComponent(`assignee = "${avery}"`)}&fields=summary,assignee&expand=changelog`, api.authorization);
    const hit = (get.body.issues as Json[])[0] as Json;
    expect(hit).toMatchObject({ key: "SBX-2", fields: { assignee: { accountId: avery, displayName: "Avery Colleague" } } });
    const histories = (hit.changelog as Json).histories as Json[];
    expect(histories).toHaveLength(1);
    expect(histories[0]?.items).toEqual(
      expect.arrayContaining([
        { field: "status", fieldtype: "jira", fieldId: "status", from: "10000", fromString: "To Do", to: "3", toString: "In Progress" },
        { field: "assignee", fieldtype: "jira", fieldId: "assignee", from: null, fromString: null, to: avery, toString: "Avery Colleague" },
        { field: "priority", fieldtype: "jira", fieldId: "priority", from: "3", fromString: "Medium", to: "2", toString: "High" },
        { field: "labels", fieldtype: "jira", fieldId: "labels", from: null, fromString: "", to: null, toString: "sync" },
      ]),
    );
    const everything = await k.search(api, { jql: 'status = "In Progress"', fields: ["*all"] });
    expect(((everything.body.issues as Json[])[0]?.fields as Json).status).toMatchObject({ id: "3", name: "In Progress", statusCategory: { key: "indeterminate" } });
    expect(((everything.body.issues as Json[])[0]?.fields as Json).priority).toMatchObject({ id: "2", name: "High" });
    const tooMany = await k.search(api, { jql: "project = SBX", reconcileIssues: Array.from({ length: 51 }, (_, i) => 10000 + i) });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body).toMatchObject({ errorMessages: [expect.any(String)], errors: {} });
  });

  it("misses a change for searchLagMs unless reconcileIssues names it; GET issue is always current", async () => {
    const clock = { ms: Date.parse("2026-03-01T12:00:00Z") };
    const k = await jira({ now: () => clock.ms, searchLagMs: 2000 });
    const api = await k.oauth();
    const created = await k.call("POST", `${api.base}/issue`, api.authorization, { fields: { project: { key: "SBX" }, summary: "Fresh", issuetype: { name: "Task" } } });
    const id = created.body.id as string;
    expect((await k.search(api, { jql: "project = SBX" })).body.issues).toEqual([]);
    expect((await k.search(api, { jql: "project = SBX", reconcileIssues: [Number(id)] })).body.issues).toEqual([{ id }]);
    expect((await k.call("GET", `${api.base}/issue/${id}`, api.authorization)).status).toBe(200);
    clock.ms += 2000;
    expect((await k.search(api, { jql: "project = SBX" })).body.issues).toEqual([{ id }]);
    expect((await k.control("PUT", "/search-lag", { ms: 0 })).body).toEqual({ searchLagMs: 0 });
    await k.control("PATCH", "/issues/SBX-1", { fields: { summary: "Changed" } });
    expect((await k.search(api, { jql: "project = SBX" })).body.issues).toEqual([{ id }]);
    expect((await k.control("PUT", "/search-lag", { ms: -1 })).body).toEqual({ error: expect.stringMatching(/^ms: /) });
  });
});

describe("Jira sandbox sync: writes through the API", () => {
  it("edits (fields and update.labels), refuses status and unknown fields, returns the issue when asked", async () => {
    const k = await jira();
    const api = await k.oauth();
    await k.call("POST", `${api.base}/issue`, api.authorization, { fields: { project: { key: "SBX" }, summary: "Edit me", issuetype: { name: "Task" }, labels: ["a"] } });
    const edited = await k.call("PUT", `${api.base}/issue/SBX-1`, api.authorization, { fields: { summary: "Edited", description: ADF("New text"), priority: { name: "Low" } }, update: { labels: [{ add: "b" }, { remove: "a" }] } });
    expect(edited).toEqual({ status: 204, body: undefined });
    const read = await k.call("GET", `${api.base}/issue/SBX-1?fields=summary,description,labels,priority`, api.authorization);
    expect(read.body.fields).toMatchObject({ summary: "Edited", description: ADF("New text"), labels: ["b"], priority: { name: "Low" } });
    const status = await k.call("PUT", `${api.base}/issue/SBX-1`, api.authorization, { fields: { status: { name: "Done" }, foo: 1 } });
    expect(status).toEqual({ status: 400, body: { errorMessages: [], errors: { status: "Field 'status' cannot be set. It is not on the appropriate screen, or unknown.", foo: "Field 'foo' cannot be set. It is not on the appropriate screen, or unknown." } } });
    const returned = await k.call("PUT", `${api.base}/issue/SBX-1?returnIssue=true`, api.authorization, { fields: { assignee: null } });
    expect(returned.status).toBe(200);
    expect(returned.body).toMatchObject({ key: "SBX-1", fields: { summary: "Edited" } });
    const changelog = await k.call("GET", `${api.base}/issue/SBX-1/changelog?maxResults=1`, api.authorization);
    expect(changelog.body).toMatchObject({ startAt: 0, maxResults: 1, total: 1, isLast: true });
  });

  it("transitions, comments and deletes; a write without write:jira-work is the gateway's scope mismatch", async () => {
    const k = await jira();
    const api = await k.oauth();
    await k.call("POST", `${api.base}/issue`, api.authorization, { fields: { project: { key: "SBX" }, summary: "Flow", issuetype: { name: "Bug" } } });
    const transitions = await k.call("GET", `${api.base}/issue/SBX-1/transitions`, api.authorization);
    expect((transitions.body.transitions as Json[]).map((t) => [t.id, t.name])).toEqual([
      ["21", "In Progress"],
      ["31", "Done"],
    ]);
    expect((await k.call("POST", `${api.base}/issue/SBX-1/transitions`, api.authorization, { transition: { id: "31" } })).status).toBe(204);
    expect(((await k.call("GET", `${api.base}/issue/SBX-1?fields=status`, api.authorization)).body.fields as Json).status).toMatchObject({ name: "Done", statusCategory: { key: "done" } });
    expect(await k.call("POST", `${api.base}/issue/SBX-1/transitions`, api.authorization, { transition: { id: "99" } })).toEqual({ status: 400, body: { errorMessages: ["Transition id '99' is not valid for this issue."], errors: {} } });

    const comment = await k.call("POST", `${api.base}/issue/SBX-1/comment`, api.authorization, { body: ADF("Looks done") });
    expect(comment.status).toBe(201);
    expect(comment.body).toMatchObject({ id: "10000", body: ADF("Looks done"), author: { displayName: "Sandbox User" }, created: expect.stringMatching(/\+0000$/) });
    expect((await k.call("POST", `${api.base}/issue/SBX-1/comment`, api.authorization, { body: "plain" })).status).toBe(400);
    const comments = await k.call("GET", `${api.base}/issue/SBX-1/comment`, api.authorization);
    expect(comments.body).toMatchObject({ startAt: 0, total: 1, comments: [{ id: "10000" }] });

    const reader = await k.oauth(["read:jira-work"]);
    expect(await k.call("DELETE", `${reader.base}/issue/SBX-1`, reader.authorization)).toEqual({ status: 401, body: { code: 401, message: "Unauthorized; scope does not match" } });
    expect((await k.call("DELETE", `${api.base}/issue/SBX-1`, api.authorization)).status).toBe(204);
    expect(await k.call("GET", `${api.base}/issue/SBX-1`, api.authorization)).toEqual({ status: 404, body: { errorMessages: ["Issue does not exist or you do not have permission to see it."], errors: {} } });
  });
});

describe("Jira sandbox sync: the control plane and several sites", () => {
  it("changes and deletes as another user, refusing bad input with a 400 naming the field", async () => {
    const k = await jira();
    await k.control("POST", "/issues", { count: 2, fields: { summary: "Ticket {n}", description: "Text", labels: ["x"] } });
    const api = await k.oauth();
    const patched = await k.control("PATCH", "/issues/SBX-1", { fields: { summary: "Renamed", status: "Done" } });
    expect(patched.body).toMatchObject({ id: "10000", key: "SBX-1", changelogId: "10000" });
    const changelog = await k.call("GET", `${api.base}/issue/SBX-1/changelog`, api.authorization);
    expect(((changelog.body as Json).values as Json[])[0]).toMatchObject({ author: { displayName: "Avery Colleague" } });
    expect((await k.control("DELETE", "/issues/SBX-2", {})).body).toEqual({ id: "10001", key: "SBX-2", deleted: true });
    expect((await k.call("GET", `${api.base}/issue/SBX-2`, api.authorization)).status).toBe(404);
    expect((await k.control("POST", "/issues", { count: 0 })).body).toEqual({ error: expect.stringMatching(/^count: /) });
    expect((await k.control("POST", "/issues", { count: 1, fields: { status: "Nope" } })).body).toEqual({ error: expect.stringMatching(/^fields\.status: /) });
    expect((await k.control("PATCH", "/issues/SBX-1", { fields: { assignee: "nobody" } })).body).toEqual({ error: expect.stringMatching(/^fields\.assignee: /) });
    expect((await k.control("POST", "/issues", { count: 1, site: "nope" })).status).toBe(400);
  });

  it("lists each site in accessible-resources, each with its own issues under /ex/jira/{cloudId}", async () => {
    const k = await jira({ sites: 2 });
    const first = await k.oauth(ALL_SCOPES, 0);
    const second = await k.oauth(ALL_SCOPES, 1);
    expect(first.resources).toHaveLength(2);
    expect(first.resources[0]).toMatchObject({ url: k.sandbox.url, name: "autoflow-sandbox" });
    expect(first.resources[1]).toMatchObject({ id: second.cloudId, name: "autoflow-sandbox-2", url: "https://autoflow-sandbox-2.atlassian.invalid" });
    await k.control("POST", "/issues", { site: second.cloudId, count: 3 });
    await k.control("POST", "/issues", { count: 1 });
    expect((await k.search(second, { jql: "project = SBX" })).body.issues).toHaveLength(3);
    expect((await k.search(first, { jql: "project = SBX" })).body.issues).toHaveLength(1);
    expect((await k.call("GET", `${second.base}/issue/SBX-3`, second.authorization)).status).toBe(200);
    expect((await k.call("GET", `${first.base}/issue/SBX-3`, first.authorization)).status).toBe(404);
  });
});

describe("Jira sandbox sync: dynamic webhooks", () => {
  it("registers, lists, refreshes, expires and deletes, refusing what Jira refuses", async () => {
    const clock = { ms: Date.parse("2026-05-01T00:00:00Z") };
    const k = await jira({ now: () => clock.ms });
    const api = await k.oauth();
    const hook = await receiver();
    const registered = await k.call("POST", `${api.base}/webhook`, api.authorization, {
      url: hook.url,
      webhooks: [
        { events: ["jira:issue_created", "jira:issue_updated"], jqlFilter: "project = SBX", fieldIdsFilter: ["summary"] },
        { events: ["jira:issue_deleted"], jqlFilter: "summary ~ x" },
        { events: ["jira:issue_deleted"] },
      ],
    });
    expect(registered.status).toBe(200);
    const results = registered.body.webhookRegistrationResult as Json[];
    expect(results[0]).toEqual({ createdWebhookId: 1000 });
    expect(results[1]).toEqual({ errors: [expect.any(String)] });
    expect(results[2]).toEqual({ errors: [expect.any(String)] });
    const listed = await k.call("GET", `${api.base}/webhook`, api.authorization);
    expect(listed.body).toEqual({ maxResults: 100, startAt: 0, total: 1, isLast: true, values: [{ id: 1000, jqlFilter: "project = SBX", fieldIdsFilter: ["summary"], events: ["jira:issue_created", "jira:issue_updated"], expirationDate: clock.ms + 30 * 86_400_000 }] });

    const elsewhere = await k.call("POST", `${api.base}/webhook`, api.authorization, { url: "https://example.com/hook", webhooks: [{ events: ["jira:issue_created"], jqlFilter: "project = SBX" }] });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body).toMatchObject({ errorMessages: [expect.stringContaining("loopback")], errors: {} });
    const noManage = await k.oauth(["read:jira-work", "write:jira-work"]);
    expect((await k.call("GET", `${noManage.base}/webhook`, noManage.authorization)).body).toEqual({ code: 401, message: "Unauthorized; scope does not match" });

    // Access tokens last an hour: a fresh consent after each move of the clock.
    clock.ms += 20 * 86_400_000;
    let now = await k.oauth();
    const refreshed = await k.call("PUT", `${now.base}/webhook/refresh`, now.authorization, { webhookIds: [1000] });
    expect(refreshed.body).toEqual({ expirationDate: clock.ms + 30 * 86_400_000 });
    clock.ms += 29 * 86_400_000;
    now = await k.oauth();
    expect((await k.call("GET", `${now.base}/webhook`, now.authorization)).body.total).toBe(1);
    clock.ms += 2 * 86_400_000;
    now = await k.oauth();
    expect((await k.call("GET", `${now.base}/webhook`, now.authorization)).body.total).toBe(0);

    const again = await k.call("POST", `${now.base}/webhook`, now.authorization, { url: hook.url, webhooks: [{ events: ["jira:issue_created"], jqlFilter: "project = SBX" }] });
    const id = (again.body.webhookRegistrationResult as Json[])[0]?.createdWebhookId as number;
    expect((await k.call("DELETE", `${now.base}/webhook`, now.authorization, { webhookIds: [id] })).status).toBe(202);
    expect((await k.call("GET", `${now.base}/webhook`, now.authorization)).body.total).toBe(0);
    expect((await k.call("DELETE", `${now.base}/webhook`, now.authorization, {})).status).toBe(400);
  });

  it("delivers signed deliveries for create, update and delete after the answer, retrying a 5xx with the same identifier", async () => {
    const k = await jira({ webhookRetryDelaysMs: [10, 10, 10] });
    const api = await k.oauth();
    const hook = await receiver([503]);
    const registered = await k.call("POST", `${api.base}/webhook`, api.authorization, { url: hook.url, webhooks: [{ events: ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"], jqlFilter: "project = SBX AND status != Done" }] });
    expect(registered.body.webhookRegistrationResult).toEqual([{ createdWebhookId: 1000 }]);

    await k.call("POST", `${api.base}/issue`, api.authorization, { fields: { project: { key: "SBX" }, summary: "Hooked", issuetype: { name: "Task" } } });
    let log = await k.control("GET", "/deliveries?waitMs=5000");
    expect(log.body.pending).toBe(0);
    expect(hook.received).toHaveLength(2);
    const [firstTry, retry] = hook.received as [(typeof hook.received)[0], (typeof hook.received)[0]];
    expect(retry.headers["x-atlassian-webhook-identifier"]).toBe(firstTry.headers["x-atlassian-webhook-identifier"]);
    expect(firstTry.headers["x-atlassian-webhook-retry"]).toBeUndefined();
    expect(retry.headers["x-atlassian-webhook-retry"]).toBe("1");
    const jwt = (retry.headers.authorization ?? "").replace(/^Bearer /, "");
    const verified = await jwtVerify(jwt, new TextEncoder().encode(k.sandbox.clientSecret), { issuer: k.sandbox.clientId, algorithms: ["HS256"] });
    expect((verified.payload.exp as number) - (verified.payload.iat as number)).toBe(300);
    expect(retry.body).toMatchObject({ webhookEvent: "jira:issue_created", issue_event_type_name: "issue_created", issue: { id: "10000", key: "SBX-1", fields: { summary: "Hooked" } }, matchedWebhookIds: [1000], user: { displayName: "Sandbox User" } });
    expect((log.body.deliveries as Json[])[0]).toMatchObject({ status: "delivered", attempts: [{ status: 503 }, { status: 200 }] });

    await k.control("PATCH", "/issues/SBX-1", { fields: { summary: "Renamed" } });
    await k.control("GET", "/deliveries?waitMs=5000");
    expect(hook.received[2]?.body).toMatchObject({ webhookEvent: "jira:issue_updated", changelog: { items: [{ field: "summary", fromString: "Hooked", toString: "Renamed" }] }, user: { displayName: "Avery Colleague" } });
    expect(hook.received[2]?.headers["x-atlassian-webhook-identifier"]).not.toBe(firstTry.headers["x-atlassian-webhook-identifier"]);
    // Done no longer matches the filter: no delivery for the transition, nor for the delete of a Done issue.
    await k.call("POST", `${api.base}/issue/SBX-1/transitions`, api.authorization, { transition: { id: "31" } });
    await k.control("DELETE", "/issues/SBX-1", {});
    await k.call("POST", `${api.base}/issue`, api.authorization, { fields: { project: { key: "SBX" }, summary: "Second", issuetype: { name: "Task" } } });
    await k.call("DELETE", `${api.base}/issue/SBX-2`, api.authorization);
    log = await k.control("GET", "/deliveries?waitMs=5000");
    expect(log.body.pending).toBe(0);
    expect(hook.received.slice(3).map((r) => [r.body.webhookEvent, (r.body.issue as Json).key])).toEqual([
      ["jira:issue_created", "SBX-2"],
      ["jira:issue_deleted", "SBX-2"],
    ]);
  });

  it("gives up on a dead receiver after the retries, and records it as failed", async () => {
    const k = await jira({ webhookRetryDelaysMs: [5, 5] });
    const api = await k.oauth();
    const hook = await receiver([500, 500, 500]);
    await k.call("POST", `${api.base}/webhook`, api.authorization, { url: hook.url, webhooks: [{ events: ["jira:issue_created"], jqlFilter: "project = SBX" }] });
    await k.control("POST", "/issues", { count: 1 });
    const log = await k.control("GET", "/deliveries?waitMs=5000");
    expect((log.body.deliveries as Json[])[0]).toMatchObject({ status: "failed", attempts: [{ status: 500 }, { status: 500 }, { status: 500 }] });
    expect(new Set(hook.received.map((r) => r.headers["x-atlassian-webhook-identifier"])).size).toBe(1);
  });

  it("caps a user's webhooks at 5 per app and site ([UNCERTAIN] figure), refusing the sixth in its own result", async () => {
    const k = await jira();
    const api = await k.oauth();
    const webhooks = Array.from({ length: 6 }, (_, i) => ({ events: ["jira:issue_created"], jqlFilter: `issueKey = SBX-${i + 1}` }));
    const registered = await k.call("POST", `${api.base}/webhook`, api.authorization, { url: "http://127.0.0.1:9/hook", webhooks });
    const results = registered.body.webhookRegistrationResult as Json[];
    expect(results.slice(0, 5)).toEqual([1000, 1001, 1002, 1003, 1004].map((createdWebhookId) => ({ createdWebhookId })));
    expect(results[5]).toEqual({ errors: [expect.stringContaining("5")] });
  });
});

describe("Jira sandbox sync: what is stored", () => {
  it("keeps statuses, changelogs, comments, the other sites and webhooks across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await jira({ persistence: store, sites: 2 });
    const api = await first.oauth(ALL_SCOPES, 1);
    await first.control("POST", "/issues", { site: api.cloudId, count: 2 });
    await first.control("PATCH", "/issues/SBX-1", { site: api.cloudId, fields: { status: "Done", labels: ["kept"] } });
    await first.call("POST", `${api.base}/issue/SBX-1/comment`, api.authorization, { body: ADF("Kept") });
    await first.call("POST", `${api.base}/webhook`, api.authorization, { url: "http://127.0.0.1:9/hook", webhooks: [{ events: ["jira:issue_created"], jqlFilter: "project = SBX" }] });
    await first.sandbox.close();

    const second = await jira({ persistence: store, sites: 2 });
    const again = await second.oauth(ALL_SCOPES, 1);
    expect(again.cloudId).toBe(api.cloudId);
    const issue = await second.call("GET", `${again.base}/issue/SBX-1?expand=changelog&fields=status,labels,comment`, again.authorization);
    expect(issue.body).toMatchObject({ fields: { status: { name: "Done" }, labels: ["kept"], comment: { total: 1 } }, changelog: { total: 1 } });
    expect((await second.call("GET", `${again.base}/webhook`, again.authorization)).body.total).toBe(1);
  });
});
