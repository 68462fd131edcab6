/**
 * jira.js, Atlassian's most used Node client, pointed at the Jira sandbox
 * unchanged: with an API token on the site, and with a 3LO access token
 * through the gateway (`/ex/jira/{cloudId}`). Who-am-I, then every call of
 * the ticket actions: create an issue, find it with the enhanced search
 * (GET and POST, paged by nextPageToken), read it; and Jira's errors as the
 * client surfaces them (an HttpException carrying the ErrorCollection);
 * and what a two-way sync calls: the search paged over the fields it reads,
 * editIssue, doTransition, addComment, deleteIssue, and the dynamic webhooks
 * (register, list, refresh, delete).
 */
import { HttpException, Version3Client } from "jira.js";
import { describe, expect, it } from "vitest";
import { startJiraSandbox } from "../../src/integrations/jira/sandbox.js";
import type { StartedSandbox } from "../../src/sandbox/kit.js";
import { closedAfterEach } from "../../src/testing/closedAfterEach.js";

const REDIRECT = "http://localhost:3000/api/integrations/jira/oauth/callback";
const start = closedAfterEach(startJiraSandbox, { redirectUris: [REDIRECT] });

type Json = Record<string, unknown>;
const post = async (url: string, body: Json): Promise<Json> =>
  (await (await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json()) as Json;

/** A client on the site with an API token from the credentials desk (Basic email:token). */
async function apiTokenClient(sandbox: StartedSandbox): Promise<Version3Client> {
  const credential = await post(`${sandbox.url}/_sandbox/credentials`, {});
  return new Version3Client({ host: credential.baseUrl as string, authentication: { basic: { email: credential.email as string, apiToken: credential.apiKey as string } } });
}

/** A client through the gateway with a 3LO access token: consent, code exchange, accessible-resources for the cloudId. */
async function oauthClient(sandbox: StartedSandbox, scopes: string[]): Promise<Version3Client> {
  const authorize = new URL(sandbox.endpoints.authorizeUrl);
  const params = { audience: "api.atlassian.com", client_id: sandbox.clientId, scope: scopes.join(" "), redirect_uri: REDIRECT, state: "s", response_type: "code", prompt: "consent" };
  for (const [k, v] of Object.entries(params)) authorize.searchParams.set(k, v);
  const location = (await fetch(authorize, { redirect: "manual" })).headers.get("location") as string;
  const code = new URL(location).searchParams.get("code") as string;
  const token = await post(sandbox.endpoints.tokenUrl, { grant_type: "authorization_code", client_id: sandbox.clientId, client_secret: sandbox.clientSecret, code, redirect_uri: REDIRECT });
  const accessToken = token.access_token as string;
  const resources = (await (await fetch(`${sandbox.url}/oauth/token/accessible-resources`, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as Json[];
  const cloudId = (resources[0] as Json).id as string;
  return new Version3Client({ host: `${sandbox.url}/ex/jira/${cloudId}`, authentication: { oauth2: { accessToken } } });
}

/** The ErrorCollection a failed call carried, as jira.js hands it over (the axios answer's data). */
async function failure(call: Promise<unknown>): Promise<{ status: number; data: unknown }> {
  const error: unknown = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HttpException);
  const e = error as HttpException;
  return { status: e.status, data: (e.response as { data?: unknown }).data };
}

/** Every call of the ticket actions, on one client: create three issues, page through a search for them, read one. */
async function ticketActions(client: Version3Client): Promise<void> {
  const created = [];
  for (const summary of ["Checkout fails on Safari", "Checkout slow on Firefox", "Login button misaligned"]) {
    created.push(await client.issues.createIssue({ fields: { project: { key: "SBX" }, issuetype: { name: "Bug" }, summary, description: `Seen in ${summary.split(" ").pop() ?? ""}` } }));
  }
  expect(created.map((c) => c.key)).toEqual(["SBX-1", "SBX-2", "SBX-3"]);
  expect(created[0]).toMatchObject({ id: expect.any(String), self: expect.stringContaining("/rest/api/3/issue/") });

  // Paged by nextPageToken, newest first; the last page has no token and says isLast.
  const keys: string[] = [];
  let nextPageToken: string | undefined;
  let pages = 0;
  do {
    const page = await client.issueSearch.searchForIssuesUsingJqlEnhancedSearch({ jql: "project = SBX ORDER BY created DESC", maxResults: 2, fields: ["summary", "status"], ...(nextPageToken ? { nextPageToken } : {}) });
    pages += 1;
    for (const issue of page.issues ?? []) {
      keys.push(issue.key as string);
      expect(Object.keys(issue.fields).sort()).toEqual(["status", "summary"]);
    }
    nextPageToken = page.nextPageToken;
    expect((page as { isLast?: boolean }).isLast).toBe(nextPageToken === undefined);
  } while (nextPageToken);
  expect(pages).toBe(2);
  expect(keys).toEqual(["SBX-3", "SBX-2", "SBX-1"]);

  // The POST form, a text search and a key; the default fields are the id only.
  const text = await client.issueSearch.searchForIssuesUsingJqlEnhancedSearchPost({ jql: 'project = SBX AND summary ~ "checkout" ORDER BY updated DESC', fields: ["summary"] });
  expect(text.issues?.map((i) => i.fields.summary)).toEqual(["Checkout slow on Firefox", "Checkout fails on Safari"]);
  expect(text).toMatchObject({ isLast: true });
  expect(text.nextPageToken).toBeUndefined();
  const byKey = await client.issueSearch.searchForIssuesUsingJqlEnhancedSearch({ jql: "key = SBX-2" });
  expect(byKey.issues).toEqual([{ id: created[1]?.id }]);

  const issue = await client.issues.getIssue({ issueIdOrKey: "SBX-1" });
  expect(issue).toMatchObject({ key: "SBX-1", fields: { summary: "Checkout fails on Safari", issuetype: { name: "Bug" }, project: { key: "SBX" }, status: { name: "To Do" } } });
  expect(issue.fields.description).toEqual({ type: "doc", version: 1, content: [{ type: "paragraph", content: [{ type: "text", text: "Seen in Safari" }] }] });
}

describe("jira.js against the Jira sandbox", () => {
  it("with an API token on the site: who-am-I, create, search paged by nextPageToken, get", async () => {
    const sandbox = await start();
    const client = await apiTokenClient(sandbox);
    const me = await client.myself.getCurrentUser();
    expect(me).toMatchObject({ accountId: expect.any(String), accountType: "atlassian", emailAddress: expect.any(String), active: true });
    await ticketActions(client);
  });

  it("with a 3LO token through the gateway: the same calls, under /ex/jira/{cloudId}", async () => {
    const sandbox = await start();
    const client = await oauthClient(sandbox, ["read:jira-user", "read:jira-work", "write:jira-work"]);
    expect(await client.myself.getCurrentUser()).toMatchObject({ accountType: "atlassian" });
    await ticketActions(client);
  });

  it("surfaces Jira's errors: a missing issue, a JQL syntax error, an unbounded query, the removed search", async () => {
    const sandbox = await start();
    const client = await apiTokenClient(sandbox);
    expect(await failure(client.issues.getIssue({ issueIdOrKey: "SBX-404" }))).toEqual({ status: 404, data: { errorMessages: ["Issue does not exist or you do not have permission to see it."], errors: {} } });

    const syntax = await failure(client.issueSearch.searchForIssuesUsingJqlEnhancedSearch({ jql: "project = SBX ORDER created" }));
    expect(syntax.status).toBe(400);
    expect(syntax.data).toEqual({ errorMessages: [expect.stringMatching(/^Error in the JQL Query: .*\(line 1, character \d+\)$/)], errors: {} });
    const unknown = await failure(client.issueSearch.searchForIssuesUsingJqlEnhancedSearchPost({ jql: "project = NOPE" }));
    expect(unknown).toEqual({ status: 400, data: { errorMessages: ["The value 'NOPE' does not exist for the field 'project'."], errors: {} } });
    const unbounded = await failure(client.issueSearch.searchForIssuesUsingJqlEnhancedSearch({ jql: "ORDER BY created DESC" }));
    expect(unbounded).toEqual({ status: 400, data: { errorMessages: ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."], errors: {} } });
    const removed = await failure(client.issueSearch.searchForIssuesUsingJql({ jql: "project = SBX" }));
    expect(removed.status).toBe(410);

    // A 3LO token without read:jira-work: the gateway's own shape, not an ErrorCollection.
    const writer = await oauthClient(sandbox, ["write:jira-work"]);
    expect(await failure(writer.issueSearch.searchForIssuesUsingJqlEnhancedSearch({ jql: "project = SBX" }))).toEqual({ status: 401, data: { code: 401, message: "Unauthorized; scope does not match" } });
  });

  it("does what a two-way sync does: a search paged over its fields, edit, transition, comment, delete, dynamic webhooks", async () => {
    const sandbox = await start({ timeZone: "Pacific/Kiritimati" });
    const client = await oauthClient(sandbox, ["read:jira-user", "read:jira-work", "write:jira-work", "manage:jira-webhook"]);
    await post(`${sandbox.url}/_sandbox/jira/issues`, { count: 120, fields: { summary: "Seeded {n}" } });

    const seen: string[] = [];
    let nextPageToken: string | undefined;
    do {
      const page = await client.issueSearch.searchForIssuesUsingJqlEnhancedSearchPost({
        jql: "project = SBX ORDER BY updated ASC, key ASC",
        fields: ["summary", "description", "status", "assignee", "priority", "labels", "updated", "created"],
        expand: "changelog",
        maxResults: 100,
        ...(nextPageToken ? { nextPageToken } : {}),
      });
      for (const issue of page.issues ?? []) {
        seen.push(issue.key as string);
        expect(issue.fields.updated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+1400$/);
        expect(issue.fields.status).toMatchObject({ name: "To Do" });
        expect(issue.changelog).toMatchObject({ histories: [] });
      }
      nextPageToken = page.nextPageToken;
    } while (nextPageToken);
    expect(seen).toHaveLength(120);

    await client.issues.editIssue({ issueIdOrKey: "SBX-1", fields: { summary: "Edited by the sync", labels: ["synced"] } });
    await client.issues.doTransition({ issueIdOrKey: "SBX-1", transition: { id: "21" } });
    const comment = await client.issueComments.addComment({ issueIdOrKey: "SBX-1", comment: "From the sync" });
    expect(comment).toMatchObject({ id: expect.any(String), body: { type: "doc", content: [{ content: [{ text: "From the sync" }] }] } });
    const issue = await client.issues.getIssue({ issueIdOrKey: "SBX-1", fields: ["summary", "labels", "status"] });
    expect(issue.fields).toMatchObject({ summary: "Edited by the sync", labels: ["synced"], status: { name: "In Progress" } });
    const changelog = await client.issues.getChangeLogs({ issueIdOrKey: "SBX-1" });
    expect(changelog.values?.map((entry) => entry.items?.map((item) => item.field))).toEqual([["summary", "labels"], ["status"]]);
    const refused = await failure(client.issues.doTransition({ issueIdOrKey: "SBX-1", transition: { id: "99" } }));
    expect(refused).toEqual({ status: 400, data: { errorMessages: ["Transition id '99' is not valid for this issue."], errors: {} } });
    await client.issues.deleteIssue({ issueIdOrKey: "SBX-1" });
    expect((await failure(client.issues.getIssue({ issueIdOrKey: "SBX-1" }))).status).toBe(404);

    const registered = await client.webhooks.registerDynamicWebhooks({ url: "http://127.0.0.1:9/jira/hook", webhooks: [{ events: ["jira:issue_updated"], jqlFilter: "project = SBX", fieldIdsFilter: ["summary"] }] });
    const id = registered.webhookRegistrationResult?.[0]?.createdWebhookId as number;
    expect(id).toEqual(expect.any(Number));
    const listed = await client.webhooks.getDynamicWebhooksForApp();
    expect(listed).toMatchObject({ total: 1, isLast: true, values: [{ id, jqlFilter: "project = SBX", events: ["jira:issue_updated"] }] });
    const refreshed = await client.webhooks.refreshWebhooks({ webhookIds: [id] });
    expect(refreshed.expirationDate).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    await client.webhooks.deleteWebhookById({ webhookIds: [id] });
    expect((await client.webhooks.getDynamicWebhooksForApp()).total).toBe(0);
  });
});
