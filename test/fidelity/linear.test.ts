/**
 * Fidelity: @linear/sdk, unchanged, pointed at the Linear sandbox. Who am I
 * (`viewer`, `organization`), teams, an issue created, read back and listed
 * page by page (the SDK's `fetchNext()`), and provider errors parsed into the
 * SDK's error classes as Linear's would be. The sandbox's schema is checked
 * against Linear's published schema (vendored from the SDK's generated types:
 * src/integrations/linear/testing/publishedSchema.json), so a field Linear
 * adds, and a newer SDK selects, fails here first.
 */
import { readFileSync } from "node:fs";
import { ForbiddenLinearError, InvalidInputLinearError, AuthenticationLinearError, LinearClient, LinearDocument } from "@linear/sdk";
import { linearAccessToken } from "../../src/integrations/linear/testing/oauth.js";
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../src/testing/closedAfterEach.js";
import { startLinearSandbox } from "../../src/integrations/linear/sandbox.js";
import { REFERENCE_TYPES, ARGUMENTS, INPUTS, SCHEMA, UNIONS } from "../../src/integrations/linear/sandboxSchema.js";
import { installedSdk, VENDORED, type PublishedSchema } from "../../src/integrations/linear/testing/publishedSchema.js";

type Json = Record<string, unknown>;
const REDIRECT_URI = "http://localhost:3000/api/integrations/linear/oauth/callback";
const start = closedAfterEach(startLinearSandbox, { redirectUris: [REDIRECT_URI] });

async function linear() {
  const sandbox = await start();
  const apiUrl = `${sandbox.endpoints.apiUrl}/graphql`;
  const apiKey = ((await (await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Json).apiKey as string;
  /** An OAuth consent and code exchange for `scope`. */
  const oauth = (scope: string): Promise<string> => linearAccessToken(sandbox, scope, REDIRECT_URI);
  return { sandbox, apiUrl, apiKey, oauth };
}

const published = JSON.parse(readFileSync(VENDORED, "utf8")) as PublishedSchema;
const references = new Set<string>(REFERENCE_TYPES);

describe("Linear sandbox schema against Linear's published schema", () => {
  it("was vendored from the installed @linear/sdk (regenerate with npx tsx src/integrations/linear/testing/publishedSchema.ts)", () => {
    expect(published.sdkVersion).toBe(installedSdk().version);
  });

  it("serves every field of every type it serves, with Linear's type, and every argument of those fields", () => {
    for (const [name, fields] of Object.entries(SCHEMA)) {
      if (name === "Subscription") continue;
      const real = published.types[name];
      expect(real, `${name} is not in the vendored schema: regenerate it`).toBeDefined();
      if (!real) continue;
      if (references.has(name)) {
        // A type the sandbox only points at: what it declares must be Linear's.
        for (const [field, ref] of Object.entries(fields)) expect(`${name}.${field}: ${ref}`).toBe(`${name}.${field}: ${real.fields[field]}`);
        continue;
      }
      expect(Object.keys(fields).sort(), `fields of ${name}`).toEqual(Object.keys(real.fields).sort());
      expect(fields, `types of ${name}'s fields`).toEqual(real.fields);
      for (const field of Object.keys(fields)) expect(ARGUMENTS[`${name}.${field}`] ?? {}, `arguments of ${name}.${field}`).toEqual(real.arguments[field] ?? {});
    }
    for (const [name, fields] of Object.entries(INPUTS)) expect(fields, `input ${name}`).toEqual(published.types[name]?.fields);
    for (const [name, members] of Object.entries(UNIONS)) {
      expect(members, `union ${name}`).toEqual(published.unions[name]);
      for (const member of members) expect(SCHEMA[member], `union member ${member}`).toEqual(published.types[member]?.fields);
    }
  });

  it("answers every field of the served types without an error (a non-null field the sandbox has no value for would fail)", async () => {
    const { apiUrl, apiKey } = await linear();
    /** A selection of every field of `type`, objects by `__typename` (and a union by its members' typename). */
    const everything = (type: string): string =>
      Object.entries(SCHEMA[type] ?? {})
        // A field with a required argument (Team.membership(userId:)) is left out.
        .filter(([field]) => !Object.values(ARGUMENTS[`${type}.${field}`] ?? {}).some((ref) => ref.endsWith("!")))
        .map(([field, ref]) => {
          const named = ref.replace(/[[\]!]/g, "");
          const sub = SCHEMA[named] || UNIONS[named] ? " { __typename }" : "";
          return `${field}${sub}`;
        })
        .join(" ");
    const client = new LinearClient({ apiKey, apiUrl });
    const team = (await client.teams()).nodes[0];
    const created = await (await client.createIssue({ teamId: team?.id as string, title: "Every field" })).issue;
    const query = `query Everything($id: String!) {
      viewer { ${everything("User")} }
      organization { ${everything("Organization")} projectStatuses { ${everything("ProjectStatus")} } }
      teams { nodes { ${everything("Team")} states { nodes { ${everything("WorkflowState")} } } } pageInfo { ${everything("PageInfo")} } edges { cursor } }
      issue(id: $id) { ${everything("Issue")} sharedAccess { ${everything("IssueSharedAccess")} } }
    }`;
    const res = await fetch(apiUrl, { method: "POST", headers: { "content-type": "application/json", authorization: apiKey }, body: JSON.stringify({ query, variables: { id: created?.id } }) });
    const body = (await res.json()) as { data?: Json; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    expect(res.status).toBe(200);
    expect(body.data?.viewer).toMatchObject({ isMe: true, organization: { __typename: "Organization" } });
  });
});

describe("@linear/sdk against the Linear sandbox", () => {
  it("who am I, teams, create an issue, read it, list issues page by page", async () => {
    const { sandbox, apiUrl, apiKey } = await linear();
    const client = new LinearClient({ apiKey, apiUrl });

    const viewer = await client.viewer;
    expect(viewer).toMatchObject({ name: "Sandbox Owner", email: "owner@sandbox.autoflow.invalid", active: true, admin: true, isMe: true, displayName: "owner" });
    expect(viewer.createdAt).toBeInstanceOf(Date);
    const organization = await client.organization;
    expect(organization).toMatchObject({ name: "AutoFlow Sandbox", urlKey: "autoflow-sandbox", userCount: 2 });
    expect(organization.projectStatuses.map((s) => s.type)).toEqual(["backlog", "planned", "started", "completed", "canceled"]);
    expect((await viewer.organization)?.id).toBe(organization.id);

    const teams = await client.teams();
    expect(teams.nodes.map((t) => t.key)).toEqual(["SBX"]);
    expect(teams.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    const team = teams.nodes[0];
    if (!team) throw new Error("no team");
    const states = await team.states();
    expect(states.nodes.map((s) => s.name)).toEqual(["Backlog", "Todo", "In Progress", "Done", "Canceled", "Duplicate"]);

    const payload = await client.createIssue({ teamId: team.id, title: "Checkout fails on Safari", description: "Steps in the ticket." });
    expect(payload.success).toBe(true);
    expect(payload.lastSyncId).toEqual(expect.any(Number));
    const created = await payload.issue;
    expect(created).toMatchObject({ identifier: "SBX-1", title: "Checkout fails on Safari", description: "Steps in the ticket.", priority: 0, priorityLabel: "No priority", number: 1 });

    const read = await client.issue("SBX-1");
    expect(read.id).toBe(created?.id);
    expect(read.url).toBe("https://linear.app/autoflow-sandbox/issue/SBX-1/checkout-fails-on-safari");
    expect((await read.state)?.name).toBe("Backlog");
    expect((await read.team)?.key).toBe("SBX");
    expect((await read.creator)?.id).toBe(viewer.id);

    for (let n = 2; n <= 5; n++) await client.createIssue({ teamId: team.id, title: `Issue ${n}`, priority: n % 5 });
    const first = await client.issues({ first: 2 });
    expect(first.nodes.map((i) => i.identifier)).toEqual(["SBX-1", "SBX-2"]);
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false, endCursor: first.nodes[1]?.id });
    const second = await client.issues({ first: 2, after: first.pageInfo.endCursor });
    expect(second.nodes.map((i) => i.identifier)).toEqual(["SBX-3", "SBX-4"]);
    await first.fetchNext();
    await first.fetchNext();
    expect(first.nodes.map((i) => i.identifier)).toEqual(["SBX-1", "SBX-2", "SBX-3", "SBX-4", "SBX-5"]);
    expect(first.pageInfo.hasNextPage).toBe(false);

    // Kept in the sandbox's state: another client sees them.
    const other = new LinearClient({ apiKey, apiUrl: `${sandbox.endpoints.apiUrl}/graphql` });
    expect((await other.issues()).nodes).toHaveLength(5);
  });

  it("parses the sandbox's errors into the SDK's error classes, as Linear's", async () => {
    const { apiUrl, apiKey, oauth } = await linear();
    const client = new LinearClient({ apiKey, apiUrl });
    const unknownTeam = await client.createIssue({ teamId: "8d5e0a7e-6a53-4d6e-9a0b-2a8f3c1e9b44", title: "x" }).catch((e: unknown) => e);
    expect(unknownTeam).toBeInstanceOf(InvalidInputLinearError);
    expect(unknownTeam).toMatchObject({ type: "InvalidInput", status: 400, errors: [{ type: "InvalidInput", userError: true, message: "Could not find referenced Team.", path: ["issueCreate"] }] });

    const teamId = (await client.teams()).nodes[0]?.id as string;
    const readOnly = new LinearClient({ accessToken: await oauth("read"), apiUrl });
    expect((await readOnly.viewer).isMe).toBe(true);
    const forbidden = await readOnly.createIssue({ teamId, title: "Nope" }).catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(ForbiddenLinearError);
    expect(forbidden).toMatchObject({ type: "Forbidden", errors: [{ type: "Forbidden", message: "Invalid scope: `write` required" }] });

    const writer = new LinearClient({ accessToken: await oauth("read,write"), apiUrl });
    expect((await writer.createIssue({ teamId, title: "With write" })).success).toBe(true);

    const bad = await new LinearClient({ apiKey: "lin_api_notakey", apiUrl }).viewer.catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(AuthenticationLinearError);
    expect(bad).toMatchObject({ type: "AuthenticationError", status: 401, errors: [{ message: "You need to authenticate to access this operation." }] });
  });

  it("validates the SDK's own documents for these calls (a field the sandbox lacks would be refused)", async () => {
    const { apiUrl, apiKey } = await linear();
    for (const document of [LinearDocument.ViewerDocument, LinearDocument.OrganizationDocument, LinearDocument.TeamsDocument, LinearDocument.IssuesDocument]) {
      const res = await fetch(apiUrl, { method: "POST", headers: { "content-type": "application/json", authorization: apiKey }, body: JSON.stringify({ query: document.toString(), variables: {} }) });
      const body = (await res.json()) as { errors?: unknown[] };
      expect(body.errors, document.toString().slice(0, 40)).toBeUndefined();
    }
  });
});
