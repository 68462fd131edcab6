/**
 * The Linear sandbox's write: `issueCreate` on the workspace's team, read
 * back with `issue(id:)`, refused as Linear refuses a read-only OAuth token
 * and an unknown team, and still there after a restart on the same store.
 */
import { linearAccessToken } from "./testing/oauth.js";
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import { startLinearSandbox, type LinearSandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;
const REDIRECT_URI = "http://localhost:3000/api/integrations/linear/oauth/callback";
const TEAMS = "query Teams { teams(first: 10) { nodes { id key name } pageInfo { hasNextPage endCursor } } }";
const CREATE = `mutation Create($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier title url createdAt team { id } } }
}`;
const READ = "query Read($id: String!) { issue(id: $id) { id identifier title description team { key } } }";

const start = closedAfterEach(startLinearSandbox, { redirectUris: [REDIRECT_URI] });

async function linear(options: LinearSandboxOptions = {}) {
  const sandbox = await start(options);
  const graphql = async (authorization: string, query: string, variables: Json = {}) => {
    const res = await fetch(`${sandbox.endpoints.apiUrl}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization, connection: "close" }, body: JSON.stringify({ query, variables }) });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const apiKey = async (): Promise<string> =>
    ((await (await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Json).apiKey as string;
  /** An OAuth consent and code exchange for `scope`. */
  const oauth = async (scope: string): Promise<string> => `Bearer ${await linearAccessToken(sandbox, scope, REDIRECT_URI)}`;
  return { sandbox, graphql, apiKey, oauth };
}

const teamIdOf = async (k: Awaited<ReturnType<typeof linear>>, authorization: string): Promise<string> => {
  const res = await k.graphql(authorization, TEAMS);
  expect(res.status).toBe(200);
  const teams = res.body.data as { teams: { nodes: { id: string; key: string; name: string }[]; pageInfo: Json } };
  expect(teams.teams.nodes).toEqual([{ id: expect.stringMatching(/^[0-9a-f-]{36}$/), key: "SBX", name: "Sandbox" }]);
  expect(teams.teams.pageInfo).toEqual({ hasNextPage: false, endCursor: teams.teams.nodes[0]?.id });
  return teams.teams.nodes[0]?.id as string;
};

describe("Linear sandbox: issueCreate and issue(id:)", () => {
  it("creates an issue with a personal API key and reads it back by id and by identifier", async () => {
    const k = await linear();
    const key = await k.apiKey();
    const teamId = await teamIdOf(k, key);
    const created = await k.graphql(key, CREATE, { input: { teamId, title: "Checkout fails on Safari", description: "Steps in the ticket." } });
    expect(created.status).toBe(200);
    const payload = (created.body.data as { issueCreate: { success: boolean; issue: Json } }).issueCreate;
    expect(payload.success).toBe(true);
    expect(payload.issue).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      identifier: "SBX-1",
      title: "Checkout fails on Safari",
      url: "https://linear.app/autoflow-sandbox/issue/SBX-1/checkout-fails-on-safari",
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      team: { id: teamId },
    });
    for (const id of [payload.issue.id, "SBX-1"]) {
      const read = await k.graphql(key, READ, { id });
      expect(read.body).toEqual({ data: { issue: { id: payload.issue.id, identifier: "SBX-1", title: "Checkout fails on Safari", description: "Steps in the ticket.", team: { key: "SBX" } } } });
    }
    const second = await k.graphql(key, CREATE, { input: { teamId, title: "Second" } });
    expect((second.body.data as { issueCreate: { issue: Json } }).issueCreate.issue.identifier).toBe("SBX-2");
  });

  it("lets an OAuth token with write or issues:create create, and refuses a read-only one with FORBIDDEN", async () => {
    const k = await linear();
    const readOnly = await k.oauth("read");
    const teamId = await teamIdOf(k, readOnly);
    const refused = await k.graphql(readOnly, CREATE, { input: { teamId, title: "Nope" } });
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      errors: [{ message: "Invalid scope: `write` required", locations: [{ line: 2, column: 3 }], path: ["issueCreate"], extensions: { type: "forbidden", code: "FORBIDDEN", statusCode: 403, userError: true } }],
      data: null,
    });
    for (const scope of ["read,write", "read,issues:create"]) {
      const res = await k.graphql(await k.oauth(scope), CREATE, { input: { teamId, title: `With ${scope}` } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect((res.body.data as { issueCreate: { success: boolean } }).issueCreate.success).toBe(true);
    }
  });

  it("answers an unknown team, a malformed teamId and an unknown issue with Linear's invalid input errors", async () => {
    const k = await linear();
    const key = await k.apiKey();
    const unknown = await k.graphql(key, CREATE, { input: { teamId: "8d5e0a7e-6a53-4d6e-9a0b-2a8f3c1e9b44", title: "x" } });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual({
      errors: [
        {
          message: "Entity not found: Team",
          locations: [{ line: 2, column: 3 }],
          path: ["issueCreate"],
          extensions: { type: "invalid input", code: "INVALID_INPUT", statusCode: 400, userError: true, userPresentableMessage: "Could not find referenced Team." },
        },
      ],
      data: null,
    });
    const malformed = await k.graphql(key, CREATE, { input: { teamId: "SBX", title: "x" } });
    expect((malformed.body.errors as Json[])[0]).toMatchObject({ message: "Argument Validation Error", extensions: { userPresentableMessage: "teamId must be a UUID." } });
    const missing = await k.graphql(key, READ, { id: "SBX-999" });
    expect(missing.status).toBe(400);
    expect((missing.body.errors as Json[])[0]).toMatchObject({ message: "Entity not found: Issue", path: ["issue"], extensions: { type: "invalid input", userPresentableMessage: "Could not find referenced Issue." } });
    const noArgument = await k.graphql(key, "{ issue { id } }");
    expect((noArgument.body.errors as Json[])[0]).toMatchObject({ message: 'Field "issue" argument "id" of type "String!" is required, but it was not provided.', extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
  });

  it("keeps the issue across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await linear({ persistence: store });
    const key = await first.apiKey();
    const teamId = await teamIdOf(first, key);
    const created = await first.graphql(key, CREATE, { input: { teamId, title: "Survives" } });
    const issueId = (created.body.data as { issueCreate: { issue: { id: string } } }).issueCreate.issue.id;
    await first.sandbox.close();

    const second = await linear({ persistence: store });
    expect(await teamIdOf(second, key)).toBe(teamId);
    const read = await second.graphql(key, READ, { id: issueId });
    expect((read.body.data as { issue: Json }).issue).toMatchObject({ id: issueId, identifier: "SBX-1", title: "Survives" });
    const next = await second.graphql(key, CREATE, { input: { teamId, title: "After" } });
    expect((next.body.data as { issueCreate: { issue: Json } }).issueCreate.issue.identifier).toBe("SBX-2");
  });
});
