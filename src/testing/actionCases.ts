/**
 * Each action's case for the contract suite: the credential to ask the
 * sandbox's desk for, an input that works on a fresh connection (found
 * through other actions where it needs ids), what the output must hold,
 * and an input the action refuses, with the field it names.
 */
import type { ProviderId } from "../integrations/registry.js";

type Json = Record<string, unknown>;
export type RunAction = (action: string, input: unknown) => Promise<Json>;

export type ActionCase = {
  desk?: Json;
  input(run: RunAction): Promise<Json>;
  check(output: Json): void;
  refused: { input: Json; field: string };
};

const must = (condition: boolean, what: string): void => {
  if (!condition) throw new Error(what);
};
const unique = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
const list = (output: Json, key: string): Json[] => output[key] as Json[];

export const ACTION_CASES: Record<ProviderId, Record<string, ActionCase>> = {
  slack: {
    postMessage: {
      input: async (run) => ({ channel: (list(await run("listConversations", {}), "channels").find((c) => c.isMember) as Json).id, text: `hello ${unique()}` }),
      check: (o) => must(typeof o.ts === "string" && String(o.channel).startsWith("C"), JSON.stringify(o)),
      refused: { input: { channel: "C1", threadTs: "yesterday", text: "x" }, field: "input.threadTs" },
    },
    listConversations: {
      input: async () => ({ limit: 1 }),
      check: (o) => must(list(o, "channels").length === 1 && typeof o.nextCursor === "string", JSON.stringify(o)),
      refused: { input: { types: ["public_channel", "dm"] }, field: "input.types.1" },
    },
  },
  hubspot: {
    createContact: {
      desk: { scopes: ["crm.objects.contacts.read", "crm.objects.contacts.write"] },
      input: async () => ({ email: `action-${unique()}@example.com`, firstname: "Ada" }),
      check: (o) => must(typeof o.id === "string" && o.firstname === "Ada", JSON.stringify(o)),
      refused: { input: { email: "not an address" }, field: "input.email" },
    },
    searchContacts: {
      desk: { scopes: ["crm.objects.contacts.read", "crm.objects.contacts.write"] },
      input: async (run) => {
        const email = `search-${unique()}@example.com`;
        await run("createContact", { email, firstname: "Grace" });
        return { filters: [{ property: "email", operator: "EQ", value: email }] };
      },
      check: (o) => must(o.total === 1 && (list(o, "contacts")[0] as Json).firstname === "Grace", JSON.stringify(o)),
      refused: { input: { filters: [{ property: "email", operator: "LIKE", value: "x" }] }, field: "input.filters.0.operator" },
    },
  },
  stripe: {
    createCustomer: {
      input: async () => ({ email: `action-${unique()}@example.com`, name: "Ada", metadata: { source: "action" }, idempotencyKey: `key-${unique()}` }),
      check: (o) => must(String(o.id).startsWith("cus_") && (o.metadata as Json).source === "action", JSON.stringify(o)),
      refused: { input: { metadata: { ["k".repeat(41)]: "v" } }, field: `input.metadata.${"k".repeat(41)}` },
    },
    listCustomers: {
      input: async (run) => {
        for (let i = 0; i < 3; i++) await run("createCustomer", { email: `list-${i}-${unique()}@example.com` });
        return { limit: 3 };
      },
      check: (o) => must(list(o, "customers").length === 3 && list(o, "customers").every((c) => String(c.id).startsWith("cus_")), JSON.stringify(o)),
      refused: { input: { startingAfter: "acct_1" }, field: "input.startingAfter" },
    },
  },
  gmail: {
    sendMessage: {
      desk: { scopes: ["https://www.googleapis.com/auth/gmail.send", "https://www.googleapis.com/auth/gmail.readonly"] },
      input: async () => ({ to: ["someone@example.com"], subject: `Grüße ${unique()}`, text: "Hello from an action" }),
      check: (o) => must(typeof o.id === "string" && (o.labelIds as string[]).includes("SENT"), JSON.stringify(o)),
      refused: { input: { to: ["someone@example.com"], subject: "two\r\nBcc: evil@example.com", text: "x" }, field: "input.subject" },
    },
    listMessages: {
      desk: { scopes: ["https://www.googleapis.com/auth/gmail.readonly"] },
      input: async () => ({ limit: 2 }),
      check: (o) => must(list(o, "messages").length > 0 && list(o, "messages").length <= 2, JSON.stringify(o)),
      refused: { input: { limit: 501 }, field: "input.limit" },
    },
  },
  linear: {
    createIssue: {
      input: async (run) => ({ teamId: (list(await run("listTeams", {}), "teams")[0] as Json).id, title: `Action ${unique()}` }),
      check: (o) => must(/^[A-Z]+-\d+$/.test(String(o.identifier)), JSON.stringify(o)),
      refused: { input: { teamId: "SBX", title: "x" }, field: "input.teamId" },
    },
    listTeams: {
      input: async () => ({}),
      check: (o) => must(list(o, "teams").length > 0 && typeof (list(o, "teams")[0] as Json).key === "string", JSON.stringify(o)),
      refused: { input: { limit: 0 }, field: "input.limit" },
    },
  },
  sentry: {
    listProjects: {
      // The sandbox desk's token reaches the seeded organizations: name one.
      input: async () => ({ organization: "autoflow-sandbox" }),
      check: (o) => must(list(o, "projects").length > 0, JSON.stringify(o)),
      refused: { input: { organization: "Not A Slug" }, field: "input.organization" },
    },
    listIssues: {
      input: async (run) => ({ organization: "autoflow-sandbox", project: (list(await run("listProjects", { organization: "autoflow-sandbox" }), "projects")[0] as Json).slug }),
      check: (o) => must(list(o, "issues").length > 0 && typeof (list(o, "issues")[0] as Json).shortId === "string", JSON.stringify(o)),
      refused: { input: { project: "../etc" }, field: "input.project" },
    },
  },
  teams: {
    listJoinedTeams: {
      input: async () => ({}),
      check: (o) => must(list(o, "teams").length > 0, JSON.stringify(o)),
      refused: { input: { limit: "all" }, field: "input.limit" },
    },
    listChannels: {
      desk: { scopes: ["User.Read", "Team.ReadBasic.All", "Channel.ReadBasic.All"] },
      input: async (run) => ({ teamId: (list(await run("listJoinedTeams", {}), "teams")[0] as Json).id }),
      check: (o) => must(list(o, "channels").some((c) => c.displayName === "General"), JSON.stringify(o)),
      refused: { input: { teamId: "general" }, field: "input.teamId" },
    },
    sendChannelMessage: {
      desk: { scopes: ["User.Read", "Team.ReadBasic.All", "Channel.ReadBasic.All", "ChannelMessage.Send"] },
      input: async (run) => {
        const teamId = (list(await run("listJoinedTeams", {}), "teams")[0] as Json).id;
        const channelId = (list(await run("listChannels", { teamId }), "channels")[0] as Json).id;
        return { teamId, channelId, content: `hello ${unique()}` };
      },
      check: (o) => must(typeof o.id === "string" && typeof o.createdDateTime === "string", JSON.stringify(o)),
      refused: { input: { teamId: "00000000-0000-0000-0000-000000000000", channelId: "General", content: "x" }, field: "input.channelId" },
    },
  },
  jira: {
    createIssue: {
      input: async () => ({ projectKey: "SBX", summary: `Action ${unique()}`, description: "First line\nsecond\n\nNext paragraph" }),
      check: (o) => must(/^SBX-\d+$/.test(String(o.key)), JSON.stringify(o)),
      refused: { input: { projectKey: "sbx", summary: "x" }, field: "input.projectKey" },
    },
    searchIssues: {
      input: async (run) => {
        const summary = `Searched ${unique()}`;
        await run("createIssue", { projectKey: "SBX", summary });
        return { jql: `project = SBX AND summary ~ "${summary}" ORDER BY created DESC` };
      },
      check: (o) => must(list(o, "issues").length === 1 && String((list(o, "issues")[0] as Json).summary).startsWith("Searched "), JSON.stringify(o)),
      refused: { input: { jql: "" }, field: "input.jql" },
    },
    getIssue: {
      input: async (run) => ({ key: (await run("createIssue", { projectKey: "SBX", summary: "Got" })).key }),
      check: (o) => must(o.summary === "Got" && typeof o.status === "string", JSON.stringify(o)),
      refused: { input: { key: "sbx one" }, field: "input.key" },
    },
  },
};
