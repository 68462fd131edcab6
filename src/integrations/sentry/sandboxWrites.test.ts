/**
 * The Sentry sandbox's write: resolving (and ignoring, reopening) an issue
 * of the organization's seeded project, at the organization's issue path and
 * the older one, found through the issues list and its Link pagination;
 * refused as Sentry refuses a token without event:write and an absent
 * issue; and still resolved after a restart on the same store.
 */
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import { startSentrySandbox, type SentrySandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;
const SENTRY_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

const start = closedAfterEach(startSentrySandbox);

async function sentry(options: SentrySandboxOptions = {}) {
  const sandbox = await start(options);
  const api = sandbox.endpoints.apiUrl;
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${api}${path}`, { method, headers: { authorization: `Bearer ${token}`, connection: "close", ...(body === undefined ? {} : { "content-type": "application/json" }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Json & Json[] };
  };
  const token = async (scopes: string[]): Promise<string> =>
    ((await (await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes }) })).json()) as Json).accessToken as string;
  return { sandbox, call, token };
}

describe("Sentry sandbox: list and update issues", () => {
  it("lists the organization's unresolved issues with a Link header, and resolves one with event:write", async () => {
    const k = await sentry();
    const token = await k.token(["org:read", "event:read", "event:write"]);
    const orgs = await k.call("GET", "/api/0/organizations/", token);
    const slug = (orgs.body[0] as Json).slug as string;
    const list = await k.call("GET", `/api/0/organizations/${slug}/issues/`, token);
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(2);
    const [issue] = list.body as Json[];
    expect(issue).toMatchObject({ id: expect.stringMatching(/^\d+$/), shortId: "SANDBOX-WEB-1", status: "unresolved", substatus: "ongoing", project: { slug: "sandbox-web" }, count: expect.any(String) });
    expect(issue?.firstSeen).toMatch(SENTRY_TIME);
    expect(list.headers.get("link")).toMatch(/rel="previous"; results="false"; cursor="0:0:1", <[^>]+>; rel="next"; results="false"; cursor="0:25:0"$/);

    const paged = await k.call("GET", `/api/0/organizations/${slug}/issues/?limit=1`, token);
    expect(paged.body).toHaveLength(1);
    const next = /<([^>]+)>; rel="next"; results="true"; cursor="0:1:0"/.exec(paged.headers.get("link") ?? "");
    expect(next).not.toBeNull();
    const second = await fetch(next?.[1] as string, { headers: { authorization: `Bearer ${token}`, connection: "close" } });
    expect(((await second.json()) as Json[])[0]?.id).toBe((list.body[1] as Json).id);

    const id = issue?.id as string;
    const resolved = await k.call("PUT", `/api/0/organizations/${slug}/issues/${id}/`, token, { status: "resolved" });
    expect(resolved.status).toBe(200);
    expect(resolved.body).toMatchObject({ id, shortId: "SANDBOX-WEB-1", status: "resolved", substatus: null, statusDetails: {}, title: issue?.title });
    const read = await k.call("GET", `/api/0/organizations/${slug}/issues/${id}/`, token);
    expect(read.body).toMatchObject({ id, status: "resolved" });
    expect((await k.call("GET", `/api/0/organizations/${slug}/issues/`, token)).body).toHaveLength(1);
    expect(((await k.call("GET", `/api/0/organizations/${slug}/issues/?query=is:resolved`, token)).body as Json[]).map((g) => g.id)).toEqual([id]);

    const ignored = await k.call("PUT", `/api/0/issues/${id}/`, token, { status: "ignored" });
    expect(ignored.body).toMatchObject({ status: "ignored", substatus: "archived_forever" });
    const reopened = await k.call("PUT", `/api/0/organizations/${slug}/issues/SANDBOX-WEB-1/`, token, { status: "unresolved", isBookmarked: true });
    expect(reopened.body).toMatchObject({ id, status: "unresolved", substatus: "ongoing", isBookmarked: true });
  });

  it("refuses an update without event:write, an absent issue and a bad status as Sentry does", async () => {
    const k = await sentry();
    const reader = await k.token(["org:read", "event:read"]);
    const list = await k.call("GET", "/api/0/organizations/autoflow-sandbox/issues/", reader);
    const id = (list.body[0] as Json).id as string;
    expect(await k.call("PUT", `/api/0/organizations/autoflow-sandbox/issues/${id}/`, reader, { status: "resolved" })).toMatchObject({
      status: 403,
      body: { detail: "You do not have permission to perform this action." },
    });
    expect((await k.call("GET", "/api/0/organizations/autoflow-sandbox/issues/", await k.token(["org:read"]))).body).toEqual({ detail: "You do not have permission to perform this action." });

    const writer = await k.token(["event:write"]);
    expect(await k.call("PUT", "/api/0/organizations/autoflow-sandbox/issues/1/", writer, { status: "resolved" })).toMatchObject({ status: 404, body: { detail: "The requested resource does not exist" } });
    expect(await k.call("GET", "/api/0/issues/1/", writer)).toMatchObject({ status: 404, body: { detail: "The requested resource does not exist" } });
    // An issue of another organization is absent from this one's path.
    const labs = (await k.call("GET", "/api/0/organizations/autoflow-labs/issues/", writer)).body[0] as Json;
    expect((await k.call("GET", `/api/0/organizations/autoflow-sandbox/issues/${labs.id as string}/`, writer)).status).toBe(404);
    expect(await k.call("PUT", `/api/0/organizations/autoflow-sandbox/issues/${id}/`, writer, { status: "fixed" })).toMatchObject({ status: 400, body: { status: ['"fixed" is not a valid choice.'] } });
    expect(await k.call("GET", "/api/0/organizations/nope/issues/", writer)).toMatchObject({ status: 404, body: { detail: "The requested resource does not exist" } });
    expect(await k.call("GET", "/api/0/organizations/autoflow-sandbox/issues/", "not-a-token")).toMatchObject({ status: 401, body: { detail: "Invalid token" } });
  });

  it("keeps the resolution across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await sentry({ persistence: store });
    const token = await first.token(["event:write"]);
    const id = ((await first.call("GET", "/api/0/organizations/autoflow-sandbox/issues/", token)).body[0] as Json).id as string;
    expect((await first.call("PUT", `/api/0/organizations/autoflow-sandbox/issues/${id}/`, token, { status: "resolved" })).status).toBe(200);
    await first.sandbox.close();

    const second = await sentry({ persistence: store });
    expect((await second.call("GET", `/api/0/organizations/autoflow-sandbox/issues/${id}/`, token)).body).toMatchObject({ id, status: "resolved" });
    expect((await second.call("GET", "/api/0/organizations/autoflow-sandbox/projects/", token)).status).toBe(403);
    const projects = await second.call("GET", "/api/0/organizations/autoflow-sandbox/projects/", await second.token(["org:read"]));
    expect(projects.body).toMatchObject([{ slug: "sandbox-web", platform: "javascript" }]);
  });
});

describe("Sentry sandbox: a project's issues", () => {
  it("answers the project's stream (is:unresolved by default, everything with an empty query), needs event:read, and keeps a resolution across a restart", async () => {
    const store = new MemorySandboxStore();
    const first = await sentry({ persistence: store });
    const token = await first.token(["org:read", "event:read", "event:write"]);
    const slug = ((await first.call("GET", "/api/0/organizations/", token)).body[0] as Json).slug as string;
    const path = `/api/0/projects/${slug}/sandbox-web/issues/`;
    const list = await first.call("GET", path, token);
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(2);
    expect(list.headers.get("link")).toContain('rel="next"; results="false"');
    const id = (list.body[0] as Json).id as string;
    expect((await first.call("PUT", `/api/0/issues/${id}/`, token, { status: "resolved" })).status).toBe(200);
    await first.sandbox.close();

    const second = await sentry({ persistence: store });
    expect((await second.call("GET", path, token)).body.map((g: Json) => g.id)).not.toContain(id);
    const all = await second.call("GET", `${path}?query=&statsPeriod=`, token);
    expect(all.body).toHaveLength(2);
    expect(all.body.find((g: Json) => g.id === id)).toMatchObject({ status: "resolved" });
    expect(all.body[0]).not.toHaveProperty("stats");
    const orgOnly = await second.token(["org:read"]);
    expect(await second.call("GET", path, orgOnly)).toMatchObject({ status: 403, body: { detail: "You do not have permission to perform this action." } });
  });
});
