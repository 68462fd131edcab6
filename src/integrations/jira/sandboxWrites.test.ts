/**
 * The Jira sandbox's write: creating an issue in the site's project, through
 * the gateway with a 3LO token (`write:jira-work`) and on the site with an
 * API token or a Data Center PAT, read back with GET /issue/{idOrKey};
 * refused as Jira refuses missing fields, an unknown issue and a missing
 * scope; and still there after a restart on the same store.
 */
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import { startJiraSandbox, type JiraSandboxOptions } from "./sandbox.js";
import { JIRA_SANDBOX_REDIRECT as REDIRECT, jiraSandboxClient } from "./testing/sandboxClient.js";

type Json = Record<string, unknown>;
const JIRA_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/;
const ADF = { type: "doc", version: 1, content: [{ type: "paragraph", content: [{ type: "text", text: "Steps to reproduce" }] }] };

const start = closedAfterEach(startJiraSandbox, { redirectUris: [REDIRECT] });

async function jira(options: JiraSandboxOptions = {}) {
  const sandbox = await start(options);
  const { call, consent } = jiraSandboxClient(sandbox);
  /** A 3LO consent and code exchange for `scopes`: the Bearer header and the gateway base of the site. */
  const oauth = async (scopes: string[]) => {
    const { authorization, gateway } = await consent(scopes);
    return { authorization, base: gateway };
  };
  const desk = async (body: Json = {}) => (await call("POST", `${sandbox.url}/_sandbox/credentials`, "", body)).body;
  const apiToken = async () => {
    const credential = await desk();
    return { authorization: `Basic ${Buffer.from(`${credential.email as string}:${credential.apiKey as string}`).toString("base64")}`, base: credential.baseUrl as string };
  };
  const pat = async () => {
    const credential = await desk({ type: "datacenter" });
    return { authorization: `Bearer ${credential.accessToken as string}`, base: credential.baseUrl as string };
  };
  return { sandbox, call, oauth, apiToken, pat };
}

describe("Jira sandbox: create an issue and read it back", () => {
  it("creates through the gateway with write:jira-work, answering 201 {id, key, self}, and reads the issue back", async () => {
    const k = await jira();
    const { authorization, base } = await k.oauth(["read:jira-work", "write:jira-work"]);
    const project = await k.call("GET", `${base}/rest/api/3/project/SBX`, authorization);
    expect(project.status).toBe(200);
    expect(project.body).toMatchObject({ id: "10000", key: "SBX", issueTypes: [{ id: "10001", name: "Task" }, { id: "10002", name: "Bug" }] });

    const created = await k.call("POST", `${base}/rest/api/3/issue`, authorization, { fields: { project: { key: "SBX" }, summary: "Checkout fails on Safari", issuetype: { name: "Bug" }, description: ADF } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: "10000", key: "SBX-1", self: `${base}/rest/api/3/issue/10000` });

    for (const idOrKey of ["10000", "SBX-1"]) {
      const read = await k.call("GET", `${base}/rest/api/3/issue/${idOrKey}`, authorization);
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ id: "10000", key: "SBX-1", self: `${base}/rest/api/3/issue/10000` });
      const fields = read.body.fields as Json;
      expect(fields).toMatchObject({
        summary: "Checkout fails on Safari",
        description: ADF,
        issuetype: { id: "10002", name: "Bug", subtask: false },
        project: { id: "10000", key: "SBX" },
        status: { id: "10000", name: "To Do", statusCategory: { key: "new" } },
        reporter: { accountId: expect.any(String), accountType: "atlassian" },
      });
      expect(fields.created).toMatch(JIRA_TIME);
      expect(fields.updated).toBe(fields.created);
    }
    const picked = await k.call("GET", `${base}/rest/api/3/issue/SBX-1?fields=summary,status`, authorization);
    expect(Object.keys(picked.body.fields as Json).sort()).toEqual(["status", "summary"]);

    const next = await k.call("POST", `${base}/rest/api/3/issue`, authorization, { fields: { project: { id: "10000" }, summary: "Second", issuetype: { id: "10001" } } });
    expect(next.body).toMatchObject({ id: "10001", key: "SBX-2" });
  });

  it("refuses a 3LO token without write:jira-work with the gateway's scope mismatch, and one without read:jira-work on the read", async () => {
    const k = await jira();
    const reader = await k.oauth(["read:jira-work"]);
    const refused = await k.call("POST", `${reader.base}/rest/api/3/issue`, reader.authorization, { fields: { project: { key: "SBX" }, summary: "x", issuetype: { name: "Task" } } });
    expect(refused).toEqual({ status: 401, body: { code: 401, message: "Unauthorized; scope does not match" } });
    const writerOnly = await k.oauth(["write:jira-work"]);
    const read = await k.call("GET", `${writerOnly.base}/rest/api/3/issue/SBX-1`, writerOnly.authorization);
    expect(read).toEqual({ status: 401, body: { code: 401, message: "Unauthorized; scope does not match" } });
  });

  it("answers missing fields, a plain-string description in v3 and an unknown issue with Jira's ErrorCollection", async () => {
    const k = await jira();
    const { authorization, base } = await k.apiToken();
    const noSummary = await k.call("POST", `${base}/rest/api/3/issue`, authorization, { fields: { project: { key: "SBX" }, issuetype: { name: "Task" } } });
    expect(noSummary).toEqual({ status: 400, body: { errorMessages: [], errors: { summary: "You must specify a summary of the issue." } } });
    const plain = await k.call("POST", `${base}/rest/api/3/issue`, authorization, { fields: { project: { key: "SBX" }, issuetype: { name: "Task" }, summary: "x", description: "plain" } });
    expect(plain.body).toEqual({ errorMessages: [], errors: { description: "Operation value must be an Atlassian Document" } });
    const wrong = await k.call("POST", `${base}/rest/api/3/issue`, authorization, { fields: { project: { key: "NOPE" }, summary: "x", issuetype: { name: "Epic" } } });
    expect(wrong.body).toEqual({ errorMessages: [], errors: { project: "Specify a valid project ID or key" } });
    const missing = await k.call("GET", `${base}/rest/api/3/issue/SBX-404`, authorization);
    expect(missing).toEqual({ status: 404, body: { errorMessages: ["Issue does not exist or you do not have permission to see it."], errors: {} } });
  });

  it("creates on the site with an API token (v3) and on Data Center with a PAT (v2, wiki-markup description)", async () => {
    const k = await jira();
    const cloud = await k.apiToken();
    const created = await k.call("POST", `${cloud.base}/rest/api/3/issue`, cloud.authorization, { fields: { project: { key: "SBX" }, summary: "From the site", issuetype: { name: "Task" } } });
    expect(created).toEqual({ status: 201, body: { id: "10000", key: "SBX-1", self: `${cloud.base}/rest/api/3/issue/10000` } });

    const dc = await k.pat();
    const v2 = await k.call("POST", `${dc.base}/rest/api/2/issue`, dc.authorization, { fields: { project: { key: "SBX" }, summary: "From Data Center", issuetype: { name: "Bug" }, description: "line one\nline two" } });
    expect(v2.status).toBe(201);
    const readV2 = await k.call("GET", `${dc.base}/rest/api/2/issue/${v2.body.key as string}`, dc.authorization);
    expect(readV2.body.fields).toMatchObject({ description: "line one\nline two", reporter: { name: "sandbox.user", key: "JIRAUSER10100" } });
    const v3 = await k.call("GET", `${dc.base}/rest/api/3/issue/SBX-1`, dc.authorization);
    expect(v3.status).toBe(404);
    // The same issue in v3 through the API token: the wiki text as ADF paragraphs.
    const readV3 = await k.call("GET", `${cloud.base}/rest/api/3/issue/${v2.body.key as string}`, cloud.authorization);
    expect((readV3.body.fields as Json).description).toEqual({
      type: "doc",
      version: 1,
      content: [
        { type: "paragraph", content: [{ type: "text", text: "line one" }] },
        { type: "paragraph", content: [{ type: "text", text: "line two" }] },
      ],
    });
  });

  it("keeps the issue across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await jira({ persistence: store });
    const { authorization, base } = await first.apiToken();
    const created = await first.call("POST", `${base}/rest/api/3/issue`, authorization, { fields: { project: { key: "SBX" }, summary: "Survives", issuetype: { name: "Task" } } });
    expect(created.status).toBe(201);
    await first.sandbox.close();

    const second = await jira({ persistence: store });
    const secondBase = second.sandbox.url;
    const read = await second.call("GET", `${secondBase}/rest/api/3/issue/SBX-1`, authorization);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: "10000", key: "SBX-1", fields: { summary: "Survives" } });
    const next = await second.call("POST", `${secondBase}/rest/api/3/issue`, authorization, { fields: { project: { key: "SBX" }, summary: "After", issuetype: { name: "Task" } } });
    expect(next.body).toMatchObject({ id: "10001", key: "SBX-2" });
  });
});

describe("Jira sandbox: the enhanced search", () => {
  it("finds what POST /issue created, through the gateway and on the site, and pages on after a restart with the same token", async () => {
    const store = new MemorySandboxStore();
    const first = await jira({ persistence: store });
    const site = await first.apiToken();
    for (const summary of ["One", "Two", "Three"]) {
      expect((await first.call("POST", `${site.base}/rest/api/3/issue`, site.authorization, { fields: { project: { key: "SBX" }, summary, issuetype: { name: "Task" } } })).status).toBe(201);
    }
    const gateway = await first.oauth(["read:jira-work"]);
    const viaGateway = await first.call("POST", `${gateway.base}/rest/api/3/search/jql`, gateway.authorization, { jql: "project = SBX ORDER BY created ASC", fields: ["summary"], maxResults: 2 });
    expect(viaGateway.status).toBe(200);
    expect((viaGateway.body.issues as Json[]).map((i) => (i.fields as Json).summary)).toEqual(["One", "Two"]);
    expect(viaGateway.body).toMatchObject({ isLast: false, nextPageToken: expect.any(String) });
    expect((viaGateway.body.issues as Json[])[0]).toMatchObject({ key: "SBX-1", self: `${gateway.base}/rest/api/3/issue/10000` });
    await first.sandbox.close();

    const second = await jira({ persistence: store });
    const token = encodeURIComponent(viaGateway.body.nextPageToken as string);
    const rest = await second.call("GET", `${second.sandbox.url}/rest/api/3/search/jql?jql=${encodeURIComponent("project = SBX ORDER BY created ASC")}&fields=summary&maxResults=2&nextPageToken=${token}`, site.authorization);
    expect(rest.body).toEqual({ issues: [expect.objectContaining({ key: "SBX-3" })], isLast: true });
    // A token is good for the query it came from only.
    const other = await second.call("GET", `${second.sandbox.url}/rest/api/3/search/jql?jql=${encodeURIComponent("project = SBX")}&nextPageToken=${token}`, site.authorization);
    expect(other.status).toBe(400);
  });

  it("answers JQL errors, an unbounded query and a Data Center PAT as Jira does", async () => {
    const k = await jira();
    const { authorization, base } = await k.apiToken();
    const search = (jql: string) => k.call("POST", `${base}/rest/api/3/search/jql`, authorization, { jql });
    expect(await search('summary ~ "unterminated')).toEqual({ status: 400, body: { errorMessages: ["Error in the JQL Query: The quoted string 'unterminated' has not been completed. (line 1, character 11)"], errors: {} } });
    expect((await search("project SBX")).body).toEqual({ errorMessages: [expect.stringMatching(/^Error in the JQL Query: Expecting operator but got 'SBX'\./)], errors: {} });
    expect((await search("foo = bar")).body).toEqual({ errorMessages: ["Field 'foo' does not exist or you do not have permission to view it."], errors: {} });
    expect((await search("key = SBX-9")).body).toEqual({ errorMessages: ["An issue with key 'SBX-9' does not exist for field 'key'."], errors: {} });
    expect((await search("")).body).toEqual({ errorMessages: ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."], errors: {} });
    const dc = await k.pat();
    expect((await k.call("GET", `${dc.base}/rest/api/2/search/jql?jql=project+%3D+SBX`, dc.authorization)).status).toBe(404);
  });
});
