/**
 * What a write looks like at each provider, for the contract suite's proxy
 * tests: the credential to ask the sandbox's desk for (a scope the default
 * lacks), the reads that find the ids the write needs, the write itself, and
 * what its answer must hold. Paths are relative to the connection's API base.
 */
import type { ProviderId } from "../integrations/registry.js";

type Json = Record<string, unknown>;

export type ProxyStep = { method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"; path: string; query?: Record<string, string>; headers?: Record<string, string>; body?: unknown };
export type ProxiedAnswer = { status: number; headers: Record<string, string | string[] | number | undefined>; body: string; json: unknown };
export type Proxy = (step: ProxyStep) => Promise<ProxiedAnswer>;

export type WriteCase = {
  /** The desk request for the connection (`POST /_sandbox/credentials`). */
  desk: Json;
  /** The write, after finding what it needs through the proxy. */
  write(proxy: Proxy): Promise<ProxyStep>;
  status: number;
  /** What the write's answer must hold. */
  check(json: Json): void;
};

const expectOk = (answer: ProxiedAnswer, what: string): Json => {
  if (answer.status < 200 || answer.status >= 300) throw new Error(`${what} answered ${answer.status}: ${answer.body}`);
  return answer.json as Json;
};
const must = (condition: boolean, what: string): void => {
  if (!condition) throw new Error(what);
};
const unique = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

export const WRITE_CASES: Record<ProviderId, WriteCase> = {
  slack: {
    desk: {},
    async write(proxy) {
      const channels = expectOk(await proxy({ method: "GET", path: "/conversations.list", query: { limit: "10" } }), "conversations.list");
      const channel = (channels.channels as Json[])[0] as Json;
      return { method: "POST", path: "/chat.postMessage", body: { channel: channel.id, text: `hello from the proxy ${unique()}` } };
    },
    status: 200,
    check: (json) => must(json.ok === true && typeof json.ts === "string", `chat.postMessage answered ${JSON.stringify(json)}`),
  },
  hubspot: {
    desk: { scopes: ["crm.objects.contacts.read", "crm.objects.contacts.write"] },
    write: async () => ({ method: "POST", path: "/crm/v3/objects/contacts", body: { properties: { email: `proxy-${unique()}@example.com`, firstname: "Proxy" } } }),
    status: 201,
    check: (json) => must(typeof json.id === "string" && (json.properties as Json | undefined)?.firstname === "Proxy", `contact answered ${JSON.stringify(json)}`),
  },
  stripe: {
    desk: {},
    write: async () => ({
      method: "POST",
      path: "/v1/customers",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `email=${encodeURIComponent(`proxy-${unique()}@example.com`)}&name=Proxy&metadata[source]=proxy`,
    }),
    status: 200,
    check: (json) => must(json.object === "customer" && String(json.id).startsWith("cus_") && (json.metadata as Json).source === "proxy", `customer answered ${JSON.stringify(json)}`),
  },
  gmail: {
    desk: { scopes: ["https://www.googleapis.com/auth/gmail.labels", "https://www.googleapis.com/auth/gmail.readonly"] },
    write: async () => ({ method: "POST", path: "/gmail/v1/users/me/labels", body: { name: `Proxy ${unique()}` } }),
    status: 200,
    check: (json) => must(String(json.id).startsWith("Label_") && json.type === "user", `label answered ${JSON.stringify(json)}`),
  },
  linear: {
    desk: {},
    async write(proxy) {
      const teams = expectOk(await proxy({ method: "POST", path: "/graphql", body: { query: "{ teams { nodes { id key name } } }" } }), "teams");
      const team = ((teams.data as Json).teams as { nodes: Json[] }).nodes[0] as Json;
      return {
        method: "POST",
        path: "/graphql",
        body: {
          query: "mutation Create($input: IssueCreateInput!) { issueCreate(input: $input) { success issue { id identifier title url } } }",
          variables: { input: { teamId: team.id, title: `Proxy ${unique()}` } },
        },
      };
    },
    status: 200,
    check: (json) => {
      const created = ((json.data as Json | undefined)?.issueCreate ?? {}) as Json;
      must(created.success === true && typeof (created.issue as Json).identifier === "string", `issueCreate answered ${JSON.stringify(json)}`);
    },
  },
  sentry: {
    desk: { scopes: ["org:read", "project:read", "event:read", "event:write"] },
    async write(proxy) {
      const orgs = expectOk(await proxy({ method: "GET", path: "/api/0/organizations/" }), "organizations") as unknown as Json[];
      const slug = (orgs[0] as Json).slug as string;
      const issues = expectOk(await proxy({ method: "GET", path: `/api/0/organizations/${slug}/issues/` }), "issues") as unknown as Json[];
      const issue = issues[0] as Json;
      return { method: "PUT", path: `/api/0/organizations/${slug}/issues/${String(issue.id)}/`, body: { status: "resolved" } };
    },
    status: 200,
    check: (json) => must(json.status === "resolved", `issue update answered ${JSON.stringify(json)}`),
  },
  teams: {
    desk: { scopes: ["User.Read", "Team.ReadBasic.All", "Channel.ReadBasic.All", "ChannelMessage.Send"] },
    async write(proxy) {
      const joined = expectOk(await proxy({ method: "GET", path: "/me/joinedTeams" }), "joinedTeams");
      const team = (joined.value as Json[])[0] as Json;
      const channels = expectOk(await proxy({ method: "GET", path: `/teams/${String(team.id)}/channels` }), "channels");
      const channel = (channels.value as Json[])[0] as Json;
      return {
        method: "POST",
        path: `/teams/${String(team.id)}/channels/${encodeURIComponent(String(channel.id))}/messages`,
        body: { body: { content: `hello from the proxy ${unique()}` } },
      };
    },
    status: 201,
    check: (json) => must(typeof json.id === "string" && String((json.body as Json).content).startsWith("hello from the proxy"), `message answered ${JSON.stringify(json)}`),
  },
  jira: {
    desk: {},
    write: async () => ({ method: "POST", path: "/rest/api/3/issue", body: { fields: { project: { key: "SBX" }, summary: `Proxy ${unique()}`, issuetype: { name: "Task" } } } }),
    status: 201,
    check: (json) => must(/^SBX-\d+$/.test(String(json.key)) && typeof json.id === "string", `issue create answered ${JSON.stringify(json)}`),
  },
};
