/**
 * The Jira sandbox's sites, projects and issues as the REST API v3 (and v2)
 * shows them, and the control plane's changes "made in Jira by other people".
 * sandbox.ts says who may call (gateway, site, Data Center) and routes here.
 *
 *   POST   .../issue                          create: 201 {id, key, self}
 *   GET    .../issue/{idOrKey}                `fields=`, `expand=changelog`
 *   PUT    .../issue/{idOrKey}                {fields?, update?}: 204, or 200 with the issue for `returnIssue=true`;
 *                                             status is not settable here (a transition is)
 *   DELETE .../issue/{idOrKey}                204; then 404 as for an issue never made
 *   GET    .../issue/{idOrKey}/changelog      paged: {self, startAt, maxResults, total, isLast, values}
 *   GET    .../issue/{idOrKey}/transitions    the workflow's global transitions out of the current status
 *   POST   .../issue/{idOrKey}/transitions    {transition: {id}}: 204
 *   GET    .../issue/{idOrKey}/comment        paged: {startAt, maxResults, total, comments}, `orderBy=created|-created`
 *   POST   .../issue/{idOrKey}/comment        {body: ADF} (v3) or a string (v2): 201 Comment
 *   GET|POST .../search/jql                   the enhanced search (see searchJql)
 *
 * Control plane (JSON; the kit keeps it out of rate limits and faults and refuses cross-origin calls):
 *   POST   /_sandbox/jira/issues              {site?: cloudId, project?: "SBX", count: 1..20000, fields?: {summary?
 *                                             ("{n}" is the issue's number in the batch), description? (ADF or text),
 *                                             status? (name), assignee? (accountId|null), priority? (name), labels?,
 *                                             issuetype? (name)}} → 201 {issues: [{id, key}]}, created by another user
 *   PATCH  /_sandbox/jira/issues/{key}        {site?, fields: {summary?, description?, status?, assignee?, priority?,
 *                                             labels?}} → 200 {id, key, updated, changelogId}: an edit by another user
 *                                             (a changelog entry, `updated` moves, webhooks fire)
 *   DELETE /_sandbox/jira/issues/{key}        {site?} → 200 {id, key, deleted: true}: deleted in Jira
 *   PUT    /_sandbox/jira/search-lag          {ms: 0..3600000} → {searchLagMs}: how long the search misses a change
 *   GET    /_sandbox/jira/users               {users: [{accountId, displayName, emailAddress}]}: who can be assignee
 *   A body the control plane cannot take gets 400 {error: "<field>: <why>"}.
 *
 * Timestamps are written as Jira writes them, in the account's time zone:
 * `2024-01-01T10:00:00.000+1400` (milliseconds, the offset without a colon).
 */
import { createHash, randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { randomChars, queryParams } from "../../sandbox/kit.js";
import { JqlError, parseJql, type JqlIssue } from "./sandboxJql.js";

const JSON_TYPE = "application/json;charset=UTF-8";
/** Jira limits a summary to 255 characters. */
const SUMMARY_MAX = 255;
export const ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it.";
/** The enhanced search's page: 50 issues unless maxResults asks otherwise (REST v3 reference, "Search for issues using JQL enhanced search"). */
const SEARCH_PAGE = 50;
/** At most 5,000 issues a page when only id or key is asked for; fewer with more fields ([UNCERTAIN] the figure: 100, as the old search's cap). */
const SEARCH_PAGE_MAX_IDS = 5000;
const SEARCH_PAGE_MAX = 100;
/** reconcileIssues takes up to 50 issue ids (jira.js searchForIssuesUsingJqlEnhancedSearch.ts). */
const RECONCILE_MAX = 50;
/** A nextPageToken expires after 7 days (jira.js searchAndReconcileResults.ts). */
const PAGE_TOKEN_TTL_MS = 7 * 86_400_000;
/** The changelog's page: 100 entries by default and at most (REST v3 reference, "Get changelogs"). */
const CHANGELOG_PAGE = 100;
/** [UNCERTAIN] the comment list's default page, 5000 in the reference's parameter table. */
const COMMENT_PAGE = 5000;
/** How many issues one control-plane call may seed. */
export const SEED_MAX = 20_000;
const UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.";
/** What the old search answers since its shutdown (providers.md part 2 §4.4). */
const SEARCH_REMOVED = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046";
const NOT_SETTABLE = (name: string): string => `Field '${name}' cannot be set. It is not on the appropriate screen, or unknown.`;

// ---- what is stored (devalue-friendly: Maps, arrays, plain records) ----------

export type IssueType = { id: string; name: string; description: string; avatarId: number };
export type Project = { id: string; key: string; name: string; issueTypes: IssueType[]; issueCount: number };
export type JiraUser = { accountId: string; displayName: string; email: string; key?: string; name?: string };
export type ChangeItem = { field: string; fieldtype: string; fieldId: string; from: string | null; fromString: string | null; to: string | null; toString: string | null };
export type ChangeEntry = { id: string; authorId: string; created: number; items: ChangeItem[] };
export type CommentRecord = { id: string; authorId: string; body: unknown; created: number; updated: number };
/** A Jira issue as stored: the description as ADF (what v3 speaks), times in epoch milliseconds. */
export type IssueRecord = {
  id: string;
  key: string;
  projectId: string;
  issueTypeId: string;
  summary: string;
  description: unknown;
  labels: string[];
  created: number;
  updated: number;
  statusId?: string;
  assigneeId?: string | null;
  reporterId?: string;
  priorityId?: string;
  changelog?: ChangeEntry[];
  comments?: CommentRecord[];
  /** When the search index last saw a change of it missing (the sandbox clock at its last write). */
  changedAt?: number;
};
/** One Jira site: its cloudId, projects, issues and dynamic webhooks. `url` is left out for the sandbox's own origin. */
export type JiraSite = {
  cloudId: string;
  name: string;
  url?: string;
  projects: Project[];
  issues: Map<string, IssueRecord>;
  nextIssueId: number;
  nextChangeId: number;
  nextCommentId: number;
  webhooks: Map<number, WebhookRecord>;
};
export type WebhookRecord = { id: number; url: string; events: string[]; jqlFilter: string; fieldIdsFilter?: string[]; issuePropertyKeysFilter?: string[]; expiresAt: number; ownerId: string };

/** Who is calling the REST API, and so how its answers look: Cloud (through the gateway or the site) or Data Center. */
export type RestCaller = { deployment: "cloud" | "datacenter"; base: string; site: JiraSite };

export const freshProjects = (): Project[] => [
  {
    id: "10000",
    key: "SBX",
    name: "Sandbox",
    issueTypes: [
      { id: "10001", name: "Task", description: "A small, distinct piece of work.", avatarId: 10318 },
      { id: "10002", name: "Bug", description: "A problem or error.", avatarId: 10303 },
    ],
    issueCount: 0,
  },
];
export const freshSite = (name: string, url?: string): JiraSite => ({
  cloudId: randomUUID(),
  name,
  ...(url === undefined ? {} : { url }),
  projects: freshProjects(),
  issues: new Map(),
  nextIssueId: 10000,
  nextChangeId: 10000,
  nextCommentId: 10000,
  webhooks: new Map(),
});

/** The workflow every issue follows (a new site's default): To Do → In Progress → Done, each reachable from any other. */
const STATUSES = [
  { id: "10000", name: "To Do", transitionId: "11", category: { id: 2, key: "new", colorName: "blue-gray", name: "To Do" } },
  { id: "3", name: "In Progress", transitionId: "21", category: { id: 4, key: "indeterminate", colorName: "yellow", name: "In Progress" } },
  { id: "10001", name: "Done", transitionId: "31", category: { id: 3, key: "done", colorName: "green", name: "Done" } },
] as const;
type Status = (typeof STATUSES)[number];
const PRIORITIES = [
  { id: "1", name: "Highest", icon: "highest" },
  { id: "2", name: "High", icon: "high" },
  { id: "3", name: "Medium", icon: "medium" },
  { id: "4", name: "Low", icon: "low" },
  { id: "5", name: "Lowest", icon: "lowest" },
] as const;
type Priority = (typeof PRIORITIES)[number];
const statusOf = (issue: IssueRecord): Status => STATUSES.find((s) => s.id === (issue.statusId ?? "10000")) ?? STATUSES[0];
const priorityOf = (issue: IssueRecord): Priority => PRIORITIES.find((p) => p.id === (issue.priorityId ?? "3")) ?? PRIORITIES[2];

// ---- answers -----------------------------------------------------------------

/** Jira's REST answers carry a request id (x-arequestid) and a trace id. */
export const jiraSend = (res: FastifyReply, status: number, body: unknown, headers: Record<string, string> = {}): FastifyReply => {
  res.code(status).header("x-arequestid", randomUUID()).header("atl-traceid", randomChars(32, "0123456789abcdef")).header("cache-control", "no-cache, no-store, no-transform");
  for (const [name, value] of Object.entries(headers)) res.header(name, value);
  if (status === 204) return res.send();
  return res.header("content-type", JSON_TYPE).send(JSON.stringify(body));
};
export const errorCollection = (messages: string[], errors: Record<string, string> = {}) => ({ errorMessages: messages, errors });

// ---- time ----------------------------------------------------------------------

const offsetFormats = new Map<string, Intl.DateTimeFormat>();
/** The zone's offset from UTC at an instant, in minutes. */
function offsetMinutes(ms: number, zone: string): number {
  let format = offsetFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" });
    offsetFormats.set(zone, format);
  }
  const name = format.formatToParts(new Date(ms)).find((p) => p.type === "timeZoneName")?.value ?? "GMT";
  const m = /^GMT([+-])(\d{1,2})(?::(\d{2}))?$/.exec(name);
  if (!m) return 0;
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? "0"));
}
/** Jira's timestamps: milliseconds and the account's offset without a colon (`2026-12-01T10:00:00.000+1400`). */
export function jiraTime(ms: number, zone: string): string {
  const offset = offsetMinutes(ms, zone);
  const local = new Date(ms + offset * 60_000).toISOString().slice(0, 23);
  const abs = Math.abs(offset);
  return `${local}${offset < 0 ? "-" : "+"}${String(Math.floor(abs / 60)).padStart(2, "0")}${String(abs % 60).padStart(2, "0")}`;
}
/** Throws when `zone` is not an IANA zone this runtime knows. */
export function checkTimeZone(zone: string): void {
  new Intl.DateTimeFormat("en-US", { timeZone: zone });
}

// ---- ADF -------------------------------------------------------------------------

export const isAdfDoc = (value: unknown): boolean => {
  const doc = value as { type?: unknown; version?: unknown; content?: unknown } | null;
  return typeof doc === "object" && doc !== null && doc.type === "doc" && doc.version === 1 && Array.isArray(doc.content);
};
/** A wiki-markup string as ADF: a paragraph a line (what Jira shows v3 callers of an issue written through v2). */
export const textToAdf = (text: string) => ({ type: "doc", version: 1, content: text.split("\n").map((line) => ({ type: "paragraph", content: line === "" ? [] : [{ type: "text", text: line }] })) });
/** ADF as the plain text v2 callers get (marks and non-text nodes dropped). */
export const adfToText = (node: unknown): string => {
  const n = node as { type?: string; text?: string; content?: unknown[] };
  if (n.type === "text") return n.text ?? "";
  const inner = (n.content ?? []).map(adfToText);
  return n.type === "doc" ? inner.join("\n") : inner.join("");
};

type PageToken = { o: number; q: string; t: number };
/** An opaque nextPageToken: the offset, the query's fingerprint and when it was made. */
const pageToken = (token: PageToken): string => Buffer.from(JSON.stringify(token)).toString("base64url");
const readPageToken = (text: string): PageToken | undefined => {
  try {
    const t = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as Partial<PageToken>;
    return Number.isInteger(t.o) && typeof t.q === "string" && typeof t.t === "number" ? (t as PageToken) : undefined;
  } catch {
    return undefined;
  }
};

/** What happened to an issue, for the webhooks: after the change (before it, for a deletion). */
export type IssueEvent = { site: JiraSite; kind: "created" | "updated" | "deleted"; typeName: string; issue: IssueRecord; actor: JiraUser; changelog?: ChangeEntry };

export type IssuesContext = {
  now: () => number;
  /** The account's IANA time zone: JQL dates are read in it, timestamps written in it. */
  timeZone: string;
  /** The sandbox's own origin (the first site's URL). */
  origin: () => string;
  /** The calling user (API writes), and everybody the sandbox knows (the first one is the calling user). */
  people: JiraUser[];
  /** How long a change stays out of the search. */
  searchLag: { ms: number };
  /** Told of every change, after it is made. */
  onEvent: (event: IssueEvent) => void;
};

export function jiraIssues(ctx: IssuesContext) {
  const { now, timeZone, people } = ctx;
  const user = people[0] as JiraUser;
  const other = (people[1] ?? user) as JiraUser;
  const time = (ms: number): string => jiraTime(ms, timeZone);
  const person = (accountId: string | null | undefined): JiraUser | undefined => (accountId ? people.find((p) => p.accountId === accountId) : undefined);

  const avatarUrls = (base: string) => Object.fromEntries(["48x48", "24x24", "16x16", "32x32"].map((size) => [size, `${base}/secure/useravatar?size=${size}&avatarId=10122`]));
  const avatarSet = (base: string, kind: string, id: number) => Object.fromEntries(["48x48", "24x24", "16x16", "32x32"].map((size) => [size, `${base}/rest/api/2/universal_avatar/view/type/${kind}/avatar/${id}?size=${size.split("x")[0]}`]));
  const issueTypeView = (type: IssueType, caller: RestCaller, version: string) => ({
    self: `${caller.base}/rest/api/${version}/issuetype/${type.id}`,
    id: type.id,
    description: type.description,
    iconUrl: `${caller.base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/${type.avatarId}?size=medium`,
    name: type.name,
    subtask: false,
    avatarId: type.avatarId,
    hierarchyLevel: 0,
  });
  const projectRef = (project: Project, caller: RestCaller, version: string) => ({
    self: `${caller.base}/rest/api/${version}/project/${project.id}`,
    id: project.id,
    key: project.key,
    name: project.name,
    projectTypeKey: "software",
    simplified: false,
    avatarUrls: avatarSet(caller.base, "project", 10424),
  });
  const projectView = (project: Project, caller: RestCaller, version: string, withIssueTypes: boolean) => ({
    expand: "description,lead,issueTypes,url,projectKeys,permissions,insight",
    ...projectRef(project, caller, version),
    ...(withIssueTypes ? { issueTypes: project.issueTypes.map((t) => issueTypeView(t, caller, version)) } : {}),
    style: "classic",
    isPrivate: false,
    properties: {},
  });
  /** A user as issues show them: Cloud by accountId, Data Center by name and key. */
  const userView = (who: JiraUser, caller: RestCaller, version: string) =>
    caller.deployment === "cloud"
      ? { self: `${caller.base}/rest/api/${version}/user?accountId=${encodeURIComponent(who.accountId)}`, accountId: who.accountId, emailAddress: who.email, avatarUrls: avatarUrls(caller.base), displayName: who.displayName, active: true, timeZone, accountType: "atlassian" }
      : { self: `${caller.base}/rest/api/2/user?username=${who.name ?? who.accountId}`, name: who.name ?? who.accountId, key: who.key ?? who.accountId, emailAddress: who.email, avatarUrls: avatarUrls(caller.base), displayName: who.displayName, active: true, timeZone };
  const statusView = (status: Status, caller: RestCaller, version: string) => ({
    self: `${caller.base}/rest/api/${version}/status/${status.id}`,
    description: "",
    iconUrl: `${caller.base}/`,
    name: status.name,
    id: status.id,
    statusCategory: { self: `${caller.base}/rest/api/${version}/statuscategory/${status.category.id}`, ...status.category },
  });
  const priorityView = (priority: Priority, caller: RestCaller, version: string) => ({ self: `${caller.base}/rest/api/${version}/priority/${priority.id}`, iconUrl: `${caller.base}/images/icons/priorities/${priority.icon}.svg`, name: priority.name, id: priority.id });
  const changeView = (entry: ChangeEntry, caller: RestCaller, version: string) => ({ id: entry.id, author: userView(person(entry.authorId) ?? user, caller, version), created: time(entry.created), items: entry.items.map((i) => ({ ...i })) });
  const commentView = (issue: IssueRecord, comment: CommentRecord, caller: RestCaller, version: string) => {
    const author = userView(person(comment.authorId) ?? user, caller, version);
    return {
      self: `${caller.base}/rest/api/${version}/issue/${issue.id}/comment/${comment.id}`,
      id: comment.id,
      author,
      body: version === "3" ? comment.body : adfToText(comment.body),
      updateAuthor: author,
      created: time(comment.created),
      updated: time(comment.updated),
      jsdPublic: true,
    };
  };

  const issueView = (issue: IssueRecord, caller: RestCaller, version: string, fieldsParam: string | undefined, expand: string[] = []) => {
    const { site } = caller;
    const project = site.projects.find((p) => p.id === issue.projectId) as Project;
    const issueType = project.issueTypes.find((t) => t.id === issue.issueTypeId) as IssueType;
    const description = issue.description === null ? null : version === "3" ? issue.description : adfToText(issue.description);
    const assignee = person(issue.assigneeId);
    const reporter = person(issue.reporterId) ?? user;
    const comments = issue.comments ?? [];
    const status = statusOf(issue);
    const all: Record<string, unknown> = {
      statuscategorychangedate: time(statusChangedAt(issue)),
      issuetype: issueTypeView(issueType, caller, version),
      project: projectRef(project, caller, version),
      fixVersions: [],
      resolution: status.category.key === "done" ? { self: `${caller.base}/rest/api/${version}/resolution/10000`, id: "10000", description: "Work has been completed on this issue.", name: "Done" } : null,
      resolutiondate: null,
      workratio: -1,
      lastViewed: null,
      watches: { self: `${caller.base}/rest/api/${version}/issue/${issue.key}/watchers`, watchCount: 1, isWatching: true },
      created: time(issue.created),
      priority: priorityView(priorityOf(issue), caller, version),
      labels: issue.labels,
      assignee: assignee ? userView(assignee, caller, version) : null,
      updated: time(issue.updated),
      status: statusView(status, caller, version),
      components: [],
      description,
      summary: issue.summary,
      creator: userView(reporter, caller, version),
      subtasks: [],
      reporter: userView(reporter, caller, version),
      duedate: null,
      votes: { self: `${caller.base}/rest/api/${version}/issue/${issue.key}/votes`, votes: 0, hasVoted: false },
      comment: { comments: comments.map((c) => commentView(issue, c, caller, version)), self: `${caller.base}/rest/api/${version}/issue/${issue.id}/comment`, maxResults: comments.length, total: comments.length, startAt: 0 },
    };
    // `fields`: a comma list, `*all` / `*navigable` for every field, `-name` to leave one out.
    const asked = (fieldsParam ?? "*all").split(",").map((f) => f.trim()).filter(Boolean);
    const everything = asked.some((f) => f === "*all" || f === "*navigable");
    const fields = Object.fromEntries(Object.entries(all).filter(([name]) => (everything || asked.includes(name)) && !asked.includes(`-${name}`)));
    const histories = issue.changelog ?? [];
    return {
      expand: "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
      id: issue.id,
      self: `${caller.base}/rest/api/${version}/issue/${issue.id}`,
      key: issue.key,
      ...(expand.includes("changelog") ? { changelog: { startAt: 0, maxResults: histories.length, total: histories.length, histories: histories.map((e) => changeView(e, caller, version)) } } : {}),
      fields,
    };
  };
  const statusChangedAt = (issue: IssueRecord): number => {
    const entries = issue.changelog ?? [];
    for (let i = entries.length - 1; i >= 0; i--) if ((entries[i] as ChangeEntry).items.some((item) => item.fieldId === "status")) return (entries[i] as ChangeEntry).created;
    return issue.created;
  };

  const findIssue = (site: JiraSite, idOrKey: string): IssueRecord | undefined => site.issues.get(idOrKey) ?? [...site.issues.values()].find((i) => i.key.toLowerCase() === idOrKey.toLowerCase());
  const findProject = (site: JiraSite, ref: unknown): Project | undefined => {
    const r = ref as { id?: unknown; key?: unknown } | null;
    if (typeof r !== "object" || r === null) return undefined;
    if (r.id !== undefined) return site.projects.find((p) => p.id === String(r.id));
    return typeof r.key === "string" ? site.projects.find((p) => p.key.toLowerCase() === (r.key as string).toLowerCase()) : undefined;
  };
  const expandOf = (value: unknown): string[] => (typeof value === "string" ? value : Array.isArray(value) ? value.join(",") : "").split(",").map((e) => e.trim()).filter(Boolean);

  // ---- changes ---------------------------------------------------------------------

  /** A new issue in `project`, as `actor` made it. */
  const addIssue = (site: JiraSite, project: Project, issueType: IssueType, fields: { summary: string; description: unknown; labels: string[]; statusId?: string; assigneeId?: string | null; priorityId?: string }, actor: JiraUser, notify = true): IssueRecord => {
    project.issueCount += 1;
    const at = now();
    const issue: IssueRecord = {
      id: String(site.nextIssueId++),
      key: `${project.key}-${project.issueCount}`,
      projectId: project.id,
      issueTypeId: issueType.id,
      summary: fields.summary,
      description: fields.description,
      labels: fields.labels,
      created: at,
      updated: at,
      statusId: fields.statusId ?? "10000",
      assigneeId: fields.assigneeId ?? null,
      reporterId: actor.accountId,
      priorityId: fields.priorityId ?? "3",
      changelog: [],
      comments: [],
      changedAt: at,
    };
    site.issues.set(issue.id, issue);
    if (notify) ctx.onEvent({ site, kind: "created", typeName: "issue_created", issue, actor });
    return issue;
  };

  /** The changes of an edit, checked: what to set, or the ErrorCollection's errors. */
  type Edit = { summary?: string; description?: unknown; statusId?: string; assigneeId?: string | null; priorityId?: string; labels?: string[] };
  /** Applies an edit as `actor`: one changelog entry for what changed, `updated` moved; nothing when nothing changed. */
  const applyEdit = (site: JiraSite, issue: IssueRecord, edit: Edit, actor: JiraUser, typeName = "issue_generic"): ChangeEntry | undefined => {
    const items: ChangeItem[] = [];
    const item = (field: string, from: string | null, fromString: string | null, to: string | null, toString: string | null): void => {
      items.push({ field, fieldtype: "jira", fieldId: field, from, fromString, to, toString });
    };
    if (edit.summary !== undefined && edit.summary !== issue.summary) {
      item("summary", null, issue.summary, null, edit.summary);
      issue.summary = edit.summary;
    }
    if (edit.description !== undefined && JSON.stringify(edit.description) !== JSON.stringify(issue.description)) {
      item("description", null, issue.description === null ? null : adfToText(issue.description), null, edit.description === null ? null : adfToText(edit.description));
      issue.description = edit.description;
    }
    if (edit.priorityId !== undefined && edit.priorityId !== priorityOf(issue).id) {
      const [from, to] = [priorityOf(issue), PRIORITIES.find((p) => p.id === edit.priorityId) as Priority];
      item("priority", from.id, from.name, to.id, to.name);
      issue.priorityId = to.id;
    }
    if (edit.assigneeId !== undefined && (edit.assigneeId ?? null) !== (issue.assigneeId ?? null)) {
      const [from, to] = [person(issue.assigneeId), person(edit.assigneeId)];
      item("assignee", from?.accountId ?? null, from?.displayName ?? null, to?.accountId ?? null, to?.displayName ?? null);
      issue.assigneeId = to?.accountId ?? null;
    }
    if (edit.labels !== undefined) {
      const labels = [...new Set(edit.labels)];
      if (labels.join(" ") !== issue.labels.join(" ")) {
        item("labels", null, issue.labels.join(" "), null, labels.join(" "));
        issue.labels = labels;
      }
    }
    if (edit.statusId !== undefined && edit.statusId !== statusOf(issue).id) {
      const [from, to] = [statusOf(issue), STATUSES.find((s) => s.id === edit.statusId) as Status];
      item("status", from.id, from.name, to.id, to.name);
      issue.statusId = to.id;
    }
    if (items.length === 0) return undefined;
    const at = Math.max(now(), issue.updated);
    const entry: ChangeEntry = { id: String(site.nextChangeId++), authorId: actor.accountId, created: at, items };
    (issue.changelog ??= []).push(entry);
    issue.updated = at;
    issue.changedAt = now();
    ctx.onEvent({ site, kind: "updated", typeName, issue, actor, changelog: entry });
    return entry;
  };
  const removeIssue = (site: JiraSite, issue: IssueRecord, actor: JiraUser): void => {
    site.issues.delete(issue.id);
    ctx.onEvent({ site, kind: "deleted", typeName: "issue_deleted", issue, actor });
  };

  /** A user reference of an edit (`{accountId}` or null), or why it is refused. */
  const assigneeOf = (value: unknown): { id: string | null } | { error: string } => {
    if (value === null) return { id: null };
    const ref = value as { accountId?: unknown; id?: unknown } | undefined;
    const accountId = typeof ref === "object" && ref !== null ? (ref.accountId ?? ref.id) : undefined;
    if (accountId === null || accountId === "-1") return { id: null };
    // [UNCERTAIN] Jira's sentence for an unknown account.
    if (typeof accountId !== "string" || !person(accountId)) return { error: `Specified user does not exist or you do not have required permissions` };
    return { id: accountId };
  };
  const priorityRef = (value: unknown): Priority | undefined => {
    const ref = value as { id?: unknown; name?: unknown } | null;
    if (typeof ref !== "object" || ref === null) return undefined;
    return PRIORITIES.find((p) => (ref.id !== undefined ? p.id === String(ref.id) : typeof ref.name === "string" && p.name.toLowerCase() === ref.name.toLowerCase()));
  };

  // ---- REST handlers -----------------------------------------------------------------

  const CREATABLE = new Set(["project", "issuetype", "summary", "description", "labels", "priority", "assignee"]);
  /** POST .../issue: the issue's fields checked as Jira checks them, every problem in one ErrorCollection. */
  const createIssue = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const body = request.body as { fields?: unknown } | undefined;
    const given = body?.fields;
    if (typeof given !== "object" || given === null || Array.isArray(given)) {
      return jiraSend(res, 400, errorCollection([], { project: "Specify a valid project ID or key", summary: "You must specify a summary of the issue.", issuetype: "Specify an issue type" }));
    }
    const f = given as Record<string, unknown>;
    const errors: Record<string, string> = {};
    const project = findProject(caller.site, f.project);
    if (!project) errors.project = "Specify a valid project ID or key";
    const typeRef = f.issuetype as { id?: unknown; name?: unknown } | undefined;
    let issueType: IssueType | undefined;
    if (typeof typeRef !== "object" || typeRef === null || (typeRef.id === undefined && typeRef.name === undefined)) errors.issuetype = "Specify an issue type";
    else if (project) {
      issueType = project.issueTypes.find((t) => (typeRef.id !== undefined ? t.id === String(typeRef.id) : typeof typeRef.name === "string" && t.name.toLowerCase() === typeRef.name.toLowerCase()));
      if (!issueType) errors.issuetype = "The issue type selected is invalid.";
    }
    if (typeof f.summary !== "string" || f.summary.trim() === "") errors.summary = "You must specify a summary of the issue.";
    else if (f.summary.length > SUMMARY_MAX) errors.summary = `Summary must be less than ${SUMMARY_MAX} characters.`;
    const description = descriptionOf(f.description, version, errors);
    const labels = f.labels ?? [];
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string" || /\s/.test(l))) errors.labels = "The label can't contain spaces.";
    let priorityId: string | undefined;
    if (f.priority !== undefined) {
      const p = priorityRef(f.priority);
      if (p) priorityId = p.id;
      else errors.priority = "Specify the Priority (id or name) in the same format as the priority field.";
    }
    let assigneeId: string | null | undefined;
    if (f.assignee !== undefined) {
      const a = assigneeOf(f.assignee);
      if ("error" in a) errors.assignee = a.error;
      else assigneeId = a.id;
    }
    for (const name of Object.keys(f)) if (!CREATABLE.has(name)) errors[name] = NOT_SETTABLE(name);
    if (Object.keys(errors).length > 0 || !project || !issueType) return jiraSend(res, 400, errorCollection([], errors));
    const issue = addIssue(caller.site, project, issueType, { summary: f.summary as string, description: description ?? null, labels: labels as string[], ...(priorityId ? { priorityId } : {}), ...(assigneeId !== undefined ? { assigneeId } : {}) }, user);
    return jiraSend(res, 201, { id: issue.id, key: issue.key, self: `${caller.base}/rest/api/${version}/issue/${issue.id}` });
  };
  /** A description as given: ADF on v3, wiki text on v2; undefined when left out (errors noted). */
  const descriptionOf = (value: unknown, version: string, errors: Record<string, string>): unknown => {
    if (value === undefined) return undefined;
    if (value === null) return null;
    // v3 speaks ADF only (a plain string is refused); v2 takes wiki markup.
    if (version === "3") {
      if (isAdfDoc(value)) return value;
      errors.description = "Operation value must be an Atlassian Document";
    } else if (typeof value === "string") return textToAdf(value);
    else errors.description = "Operation value must be a string";
    return undefined;
  };
  const issueOr404 = (request: FastifyRequest, res: FastifyReply, caller: RestCaller): IssueRecord | undefined => {
    const { idOrKey } = request.params as { idOrKey: string };
    const issue = findIssue(caller.site, idOrKey);
    if (!issue) jiraSend(res, 404, errorCollection([ISSUE_NOT_FOUND]));
    return issue;
  };
  const getIssue = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const issue = issueOr404(request, res, caller);
    if (!issue) return res;
    const q = queryParams(request);
    return jiraSend(res, 200, issueView(issue, caller, version, q.fields, expandOf(q.expand)));
  };

  const EDITABLE = new Set(["summary", "description", "priority", "assignee", "labels"]);
  /** PUT .../issue/{idOrKey}: `fields` sets, `update` runs operations (labels add/remove/set; set for the others). */
  const editIssue = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const issue = issueOr404(request, res, caller);
    if (!issue) return res;
    const body = (request.body ?? {}) as { fields?: unknown; update?: unknown };
    if (typeof body !== "object" || Array.isArray(body)) return jiraSend(res, 400, errorCollection(["Invalid request payload. Refer to the REST API documentation and try again."]));
    const fields = (body.fields ?? {}) as Record<string, unknown>;
    const update = (body.update ?? {}) as Record<string, unknown>;
    if (typeof fields !== "object" || Array.isArray(fields) || typeof update !== "object" || Array.isArray(update)) return jiraSend(res, 400, errorCollection(["Invalid request payload. Refer to the REST API documentation and try again."]));
    const errors: Record<string, string> = {};
    const edit: Edit = {};
    const setField = (name: string, value: unknown): void => {
      switch (name) {
        case "summary":
          if (typeof value !== "string" || value.trim() === "") errors.summary = "You must specify a summary of the issue.";
          else if (value.length > SUMMARY_MAX) errors.summary = `Summary must be less than ${SUMMARY_MAX} characters.`;
          else edit.summary = value;
          return;
        case "description": {
          const d = descriptionOf(value, version, errors);
          if (d !== undefined) edit.description = d;
          return;
        }
        case "priority": {
          const p = priorityRef(value);
          if (p) edit.priorityId = p.id;
          else errors.priority = "Specify the Priority (id or name) in the same format as the priority field.";
          return;
        }
        case "assignee": {
          const a = assigneeOf(value);
          if ("error" in a) errors.assignee = a.error;
          else edit.assigneeId = a.id;
          return;
        }
        case "labels":
          if (!Array.isArray(value) || value.some((l) => typeof l !== "string" || /\s/.test(l))) errors.labels = "The label can't contain spaces.";
          else edit.labels = value as string[];
          return;
      }
    };
    for (const [name, value] of Object.entries(fields)) {
      if (!EDITABLE.has(name)) errors[name] = NOT_SETTABLE(name);
      else setField(name, value);
    }
    for (const [name, ops] of Object.entries(update)) {
      if (!EDITABLE.has(name)) {
        errors[name] = NOT_SETTABLE(name);
        continue;
      }
      if (name in fields) {
        errors[name] = `Field '${name}' cannot be set in both fields and update.`;
        continue;
      }
      if (!Array.isArray(ops)) {
        errors[name] = `Operation value must be an array of operations.`;
        continue;
      }
      if (name === "labels") {
        let labels = [...issue.labels];
        for (const op of ops as Record<string, unknown>[]) {
          const [verb, value] = Object.entries(op ?? {})[0] ?? [];
          if (verb === "set" && Array.isArray(value) && value.every((l) => typeof l === "string" && !/\s/.test(l))) labels = [...(value as string[])];
          else if ((verb === "add" || verb === "remove") && typeof value === "string" && !/\s/.test(value)) labels = verb === "add" ? [...labels, value] : labels.filter((l) => l !== value);
          else errors.labels = verb === "add" || verb === "remove" || verb === "set" ? "The label can't contain spaces." : `Field 'labels' does not support the operation '${String(verb)}'.`;
        }
        edit.labels = labels;
        continue;
      }
      for (const op of ops as Record<string, unknown>[]) {
        const [verb, value] = Object.entries(op ?? {})[0] ?? [];
        if (verb === "set") setField(name, value);
        else errors[name] = `Field '${name}' does not support the operation '${String(verb)}'.`;
      }
    }
    if (Object.keys(errors).length > 0) return jiraSend(res, 400, errorCollection([], errors));
    applyEdit(caller.site, issue, edit, user);
    const q = queryParams(request);
    if (q.returnIssue === "true") return jiraSend(res, 200, issueView(issue, caller, version, undefined, expandOf(q.expand)));
    return jiraSend(res, 204, undefined);
  };
  const deleteIssue = (request: FastifyRequest, res: FastifyReply, caller: RestCaller): FastifyReply => {
    const issue = issueOr404(request, res, caller);
    if (!issue) return res;
    removeIssue(caller.site, issue, user);
    return jiraSend(res, 204, undefined);
  };

  /** startAt and maxResults as Jira reads them, or its 400 (sent). */
  const paging = (res: FastifyReply, q: Record<string, string>, fallback: number, cap: number): { startAt: number; maxResults: number } | undefined => {
    const startAt = q.startAt === undefined || q.startAt === "" ? 0 : Number(q.startAt);
    const asked = q.maxResults === undefined || q.maxResults === "" ? fallback : Number(q.maxResults);
    if (!Number.isInteger(startAt) || startAt < 0) {
      jiraSend(res, 400, errorCollection([`The value '${q.startAt}' is invalid for the parameter startAt.`]));
      return undefined;
    }
    if (!Number.isInteger(asked) || asked < 0) {
      jiraSend(res, 400, errorCollection([`The value '${q.maxResults}' is invalid for the parameter maxResults.`]));
      return undefined;
    }
    return { startAt, maxResults: Math.min(asked, cap) };
  };
  /** GET .../issue/{idOrKey}/changelog: oldest first, paged. */
  const getChangelog = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const issue = issueOr404(request, res, caller);
    if (!issue) return res;
    const q = queryParams(request);
    const page = paging(res, q, CHANGELOG_PAGE, CHANGELOG_PAGE);
    if (!page) return res;
    const entries = issue.changelog ?? [];
    const values = entries.slice(page.startAt, page.startAt + page.maxResults);
    const self = `${caller.base}/rest/api/${version}/issue/${issue.key}/changelog?maxResults=${page.maxResults}&startAt=${page.startAt}`;
    return jiraSend(res, 200, { self, maxResults: page.maxResults, startAt: page.startAt, total: entries.length, isLast: page.startAt + values.length >= entries.length, values: values.map((e) => changeView(e, caller, version)) });
  };

  const transitionView = (status: Status, caller: RestCaller, version: string) => ({ id: status.transitionId, name: status.name, to: statusView(status, caller, version), hasScreen: false, isGlobal: true, isInitial: false, isAvailable: true, isConditional: false, isLooped: false });
  /** GET .../transitions: every status but the current one, each by its global transition. */
  const listTransitions = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const issue = issueOr404(request, res, caller);
    if (!issue) return res;
    const current = statusOf(issue);
    return jiraSend(res, 200, { expand: "transitions", transitions: STATUSES.filter((s) => s.id !== current.id).map((s) => transitionView(s, caller, version)) });
  };
  const doTransition = (request: FastifyRequest, res: FastifyReply, caller: RestCaller): FastifyReply => {
    const issue = issueOr404(request, res, caller);
    if (!issue) return res;
    const body = (request.body ?? {}) as { transition?: { id?: unknown }; fields?: unknown; update?: unknown };
    const id = body.transition?.id;
    // [UNCERTAIN] Jira's sentence for a body without a transition.
    if (id === undefined || id === null || id === "") return jiraSend(res, 400, errorCollection(["Missing 'transition' identifier"]));
    const to = STATUSES.find((s) => s.transitionId === String(id));
    if (!to || to.id === statusOf(issue).id) return jiraSend(res, 400, errorCollection([`Transition id '${String(id)}' is not valid for this issue.`]));
    // The workflow's transitions have no screen: a field sent along cannot be set.
    const errors: Record<string, string> = {};
    for (const name of [...Object.keys((body.fields ?? {}) as object), ...Object.keys((body.update ?? {}) as object)]) errors[name] = NOT_SETTABLE(name);
    if (Object.keys(errors).length > 0) return jiraSend(res, 400, errorCollection([], errors));
    applyEdit(caller.site, issue, { statusId: to.id }, user);
    return jiraSend(res, 204, undefined);
  };

  const listComments = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const issue = issueOr404(request, res, caller);
    if (!issue) return res;
    const q = queryParams(request);
    const page = paging(res, q, COMMENT_PAGE, COMMENT_PAGE);
    if (!page) return res;
    const all = [...(issue.comments ?? [])];
    if (q.orderBy === "-created") all.reverse();
    return jiraSend(res, 200, { startAt: page.startAt, maxResults: page.maxResults, total: all.length, comments: all.slice(page.startAt, page.startAt + page.maxResults).map((c) => commentView(issue, c, caller, version)) });
  };
  const addComment = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const issue = issueOr404(request, res, caller);
    if (!issue) return res;
    const body = (request.body ?? {}) as { body?: unknown };
    let adf: unknown;
    if (version === "3" && isAdfDoc(body.body)) adf = body.body;
    else if (version !== "3" && typeof body.body === "string" && body.body.trim() !== "") adf = textToAdf(body.body);
    else return jiraSend(res, 400, errorCollection([], { comment: "Comment body is not valid!" }));
    const at = now();
    const comment: CommentRecord = { id: String(caller.site.nextCommentId++), authorId: user.accountId, body: adf, created: at, updated: at };
    (issue.comments ??= []).push(comment);
    // A comment moves the issue's `updated`, and Jira tells webhooks of it as an update (issue_commented).
    issue.updated = Math.max(at, issue.updated);
    issue.changedAt = at;
    ctx.onEvent({ site: caller.site, kind: "updated", typeName: "issue_commented", issue, actor: user });
    return jiraSend(res, 201, commentView(issue, comment, caller, version));
  };

  /** A search's JQL parsed against the site's projects and issues, or the messages of Jira's 400. */
  const queryOf = (site: JiraSite, jql: string): ReturnType<typeof parseJql> | { messages: string[] } => {
    try {
      return parseJql(jql, { projectKeys: site.projects.map((p) => p.key), issueKeys: [...site.issues.values()].map((i) => i.key), timeZone, nowMs: now() });
    } catch (error) {
      if (error instanceof JqlError) return { messages: error.messages };
      throw error;
    }
  };
  /** What the JQL sees of a stored issue. */
  const jqlIssue = (site: JiraSite, issue: IssueRecord): JqlIssue => {
    const project = site.projects.find((p) => p.id === issue.projectId) as Project;
    const issueType = project.issueTypes.find((t) => t.id === issue.issueTypeId) as IssueType;
    return {
      id: issue.id,
      key: issue.key,
      projectKey: project.key,
      issueType: issueType.name,
      summary: issue.summary,
      descriptionText: issue.description === null ? "" : adfToText(issue.description),
      labels: issue.labels,
      created: issue.created,
      updated: issue.updated,
      status: statusOf(issue).name,
      ...(issue.assigneeId ? { assigneeAccountId: issue.assigneeId } : {}),
      reporterAccountId: issue.reporterId ?? user.accountId,
    };
  };
  /** Whether a dynamic webhook's jqlFilter (already checked) takes this issue. */
  const matchesFilter = (site: JiraSite, issue: IssueRecord, jqlFilter: string): boolean => {
    try {
      const q = parseJql(jqlFilter, { projectKeys: site.projects.map((p) => p.key), issueKeys: [], timeZone, nowMs: now(), webhookFilter: true });
      return q.where ? q.where(jqlIssue(site, issue)) : true;
    } catch {
      return false;
    }
  };
  /** Jira's complaints about a webhook's jqlFilter, none when it takes it. */
  const filterProblems = (site: JiraSite, jqlFilter: string): string[] => {
    try {
      const q = parseJql(jqlFilter, { projectKeys: site.projects.map((p) => p.key), issueKeys: [], timeZone, nowMs: now(), webhookFilter: true });
      return q.where ? [] : ["The JQL filter must not be empty."];
    } catch (error) {
      if (error instanceof JqlError) return error.messages;
      throw error;
    }
  };
  const fieldList = (value: unknown): string[] | undefined => {
    if (value === undefined) return undefined;
    const items = Array.isArray(value) ? value : [value];
    return items.flatMap((v) => String(v).split(",")).map((f) => f.trim()).filter(Boolean);
  };
  /**
   * GET/POST .../search/jql, the enhanced search: `jql`, `nextPageToken`, `maxResults`, `fields` (only `id` when
   * left out), `expand`, `reconcileIssues`, answering `{issues, nextPageToken?, isLast}` with no total; on the last
   * page nextPageToken is absent, not null (JRACLOUD-92184). The token is opaque: it names the query it pages and
   * when it was made, so it survives a restart and is refused for another query or after 7 days. The search is
   * eventually consistent: an issue changed within the search lag is missing unless reconcileIssues names it.
   */
  const searchJql = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    // Data Center has no enhanced search: its REST layer answers the unknown resource.
    if (caller.deployment === "datacenter") return jiraSend(res, 404, { message: `null for uri: ${caller.base}/rest/api/${version}/search/jql`, "status-code": 404 });
    const post = request.method === "POST";
    const input = (post ? (request.body ?? {}) : request.query) as Record<string, unknown>;
    if (post && (typeof input !== "object" || Array.isArray(input))) return jiraSend(res, 400, errorCollection(["Invalid request payload. Refer to the REST API documentation and try again."]));
    const jql = typeof input.jql === "string" ? input.jql : "";
    const fields = fieldList(input.fields);
    const expand = expandOf(input.expand);
    const rawMax = input.maxResults;
    const maxResults = rawMax === undefined || rawMax === "" ? SEARCH_PAGE : Number(rawMax);
    if (!Number.isInteger(maxResults) || maxResults < 0) return jiraSend(res, 400, errorCollection([`The value '${String(rawMax)}' is invalid for the parameter maxResults.`]));
    const reconcile = fieldList(input.reconcileIssues) ?? [];
    // [UNCERTAIN] Jira's wording for these two refusals; the status and shape are its ErrorCollection's.
    if (reconcile.length > RECONCILE_MAX) return jiraSend(res, 400, errorCollection([`The number of issues to reconcile cannot exceed ${RECONCILE_MAX}.`]));
    if (reconcile.some((id) => !/^\d+$/.test(id))) return jiraSend(res, 400, errorCollection([`The value '${reconcile.find((id) => !/^\d+$/.test(id)) ?? ""}' is invalid for the parameter reconcileIssues.`]));
    const idsOnly = fields === undefined || fields.every((f) => f === "id" || f === "key");
    const limit = Math.min(maxResults, idsOnly ? SEARCH_PAGE_MAX_IDS : SEARCH_PAGE_MAX);
    const { site } = caller;
    const query = queryOf(site, jql);
    if (!("sort" in query)) return jiraSend(res, 400, errorCollection(query.messages));
    if (!query.where) return jiraSend(res, 400, errorCollection([UNBOUNDED]));
    const fingerprint = createHash("sha256").update(jql.trim()).digest("base64url").slice(0, 16);
    let offset = 0;
    if (input.nextPageToken !== undefined && input.nextPageToken !== "") {
      const decoded = readPageToken(String(input.nextPageToken));
      // [UNCERTAIN] Jira's wording for a token it will not take; the status and shape are its ErrorCollection's.
      if (!decoded || decoded.q !== fingerprint || now() - decoded.t > PAGE_TOKEN_TTL_MS) return jiraSend(res, 400, errorCollection(["The provided next page token is invalid or expired."]));
      offset = decoded.o;
    }
    const lagMs = ctx.searchLag.ms;
    const at = now();
    const indexed = (issue: IssueRecord): boolean => lagMs <= 0 || at - (issue.changedAt ?? issue.updated) >= lagMs || reconcile.includes(issue.id);
    const where = query.where;
    const matched = query.sort([...site.issues.values()].filter(indexed).map((i) => jqlIssue(site, i)).filter(where));
    const page = matched.slice(offset, offset + limit);
    const isLast = offset + page.length >= matched.length;
    const fieldsParam = fields?.filter((f) => f !== "id" && f !== "key").join(",");
    const body: Record<string, unknown> = {
      issues: page.map((i) => {
        const issue = site.issues.get(i.id) as IssueRecord;
        if (fields === undefined || (fields.length === 1 && fields[0] === "id")) {
          if (!expand.includes("changelog")) return { id: issue.id };
          const { changelog } = issueView(issue, caller, version, "-all", expand);
          return { id: issue.id, changelog };
        }
        // Only key asked for besides id: the issue with no fields ("-all" leaves out a field no issue has, so every one).
        return issueView(issue, caller, version, fieldsParam === "" ? "-all" : fieldsParam, expand);
      }),
      ...(isLast ? {} : { nextPageToken: pageToken({ o: offset + page.length, q: fingerprint, t: now() }) }),
      isLast,
    };
    return jiraSend(res, 200, body);
  };
  /**
   * GET/POST .../search: removed from Jira Cloud (410, CHANGE-2046); Data Center still serves it, paged by
   * `startAt` with a `total`, every navigable field when `fields` is left out.
   */
  const removedSearch = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    if (caller.deployment !== "datacenter") return jiraSend(res, 410, errorCollection([SEARCH_REMOVED]));
    const input = (request.method === "POST" ? (request.body ?? {}) : request.query) as Record<string, unknown>;
    const jql = typeof input.jql === "string" ? input.jql : "";
    const startAt = input.startAt === undefined ? 0 : Number(input.startAt);
    const maxResults = input.maxResults === undefined ? SEARCH_PAGE : Number(input.maxResults);
    if (!Number.isInteger(startAt) || startAt < 0) return jiraSend(res, 400, errorCollection([`The value '${String(input.startAt)}' is invalid for the parameter startAt.`]));
    if (!Number.isInteger(maxResults) || maxResults < 0) return jiraSend(res, 400, errorCollection([`The value '${String(input.maxResults)}' is invalid for the parameter maxResults.`]));
    const { site } = caller;
    const query = queryOf(site, jql);
    if (!("sort" in query)) return jiraSend(res, 400, errorCollection(query.messages));
    const matched = query.sort([...site.issues.values()].map((i) => jqlIssue(site, i)).filter(query.where ?? (() => true)));
    const fields = Array.isArray(input.fields) ? input.fields.map(String).join(",") : typeof input.fields === "string" ? input.fields : undefined;
    const page = matched.slice(startAt, startAt + Math.min(maxResults, SEARCH_PAGE_MAX));
    return jiraSend(res, 200, {
      startAt,
      maxResults: Math.min(maxResults, SEARCH_PAGE_MAX),
      total: matched.length,
      issues: page.map((i) => issueView(site.issues.get(i.id) as IssueRecord, caller, version, fields)),
    });
  };

  const listProjects = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const expand = (queryParams(request).expand ?? "").split(",");
    return jiraSend(res, 200, caller.site.projects.map((p) => projectView(p, caller, version, expand.includes("issueTypes"))));
  };
  const getProject = (request: FastifyRequest, res: FastifyReply, caller: RestCaller, version: string): FastifyReply => {
    const { idOrKey } = request.params as { idOrKey: string };
    const project = caller.site.projects.find((p) => p.id === idOrKey || p.key.toLowerCase() === idOrKey.toLowerCase());
    if (!project) return jiraSend(res, 404, errorCollection([`No project could be found with key '${idOrKey}'.`]));
    // A single project carries its issue types without being asked.
    return jiraSend(res, 200, projectView(project, caller, version, true));
  };

  // ---- the control plane: changes made in Jira by other people ----------------------

  /** What the control plane refuses: 400 {error} naming the field. */
  class ControlError extends Error {}
  const fail = (message: string): never => {
    throw new ControlError(message);
  };
  const controlFields = (value: unknown, forCreate: boolean): { edit: Edit; issueTypeName?: string } => {
    if (value === undefined) return { edit: {} };
    if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("fields: must be an object");
    const f = value as Record<string, unknown>;
    const edit: Edit = {};
    let issueTypeName: string | undefined;
    for (const [name, v] of Object.entries(f)) {
      switch (name) {
        case "summary":
          if (typeof v !== "string" || v.trim() === "" || v.length > SUMMARY_MAX) fail(`fields.summary: a non-empty string of at most ${SUMMARY_MAX} characters`);
          edit.summary = v as string;
          break;
        case "description":
          if (v === null) edit.description = null;
          else if (typeof v === "string") edit.description = textToAdf(v);
          else if (isAdfDoc(v)) edit.description = v;
          else fail("fields.description: an ADF document, a string or null");
          break;
        case "status": {
          const s = typeof v === "string" ? STATUSES.find((x) => x.name.toLowerCase() === v.toLowerCase()) : undefined;
          if (!s) fail(`fields.status: one of ${STATUSES.map((x) => x.name).join(", ")}`);
          edit.statusId = (s as Status).id;
          break;
        }
        case "assignee":
          if (v !== null && (typeof v !== "string" || !person(v))) fail(`fields.assignee: null or the accountId of one of GET /_sandbox/jira/users`);
          edit.assigneeId = v as string | null;
          break;
        case "priority": {
          const p = typeof v === "string" ? PRIORITIES.find((x) => x.name.toLowerCase() === v.toLowerCase()) : undefined;
          if (!p) fail(`fields.priority: one of ${PRIORITIES.map((x) => x.name).join(", ")}`);
          edit.priorityId = (p as Priority).id;
          break;
        }
        case "labels":
          if (!Array.isArray(v) || v.some((l) => typeof l !== "string" || l === "" || /\s/.test(l))) fail("fields.labels: an array of labels without spaces");
          edit.labels = v as string[];
          break;
        case "issuetype":
          if (!forCreate || typeof v !== "string") fail(forCreate ? "fields.issuetype: an issue type's name" : "fields.issuetype: not editable here");
          issueTypeName = v as string;
          break;
        default:
          fail(`fields.${name}: not a field the sandbox keeps (summary, description, status, assignee, priority, labels${forCreate ? ", issuetype" : ""})`);
      }
    }
    return { edit, ...(issueTypeName === undefined ? {} : { issueTypeName }) };
  };
  const controlSite = (sites: JiraSite[], value: unknown): JiraSite => {
    if (value === undefined) return sites[0] as JiraSite;
    const site = typeof value === "string" ? sites.find((s) => s.cloudId === value) : undefined;
    return site ?? fail("site: the cloudId of one of the sandbox's sites (accessible-resources)");
  };
  const controlBody = (body: unknown, allowed: string[]): Record<string, unknown> => {
    const b = body ?? {};
    if (typeof b !== "object" || Array.isArray(b)) return fail("body: must be a JSON object");
    for (const name of Object.keys(b)) if (!allowed.includes(name)) fail(`${name}: unknown (expected ${allowed.join(", ")})`);
    return b as Record<string, unknown>;
  };
  const control = (res: FastifyReply, run: () => { status: number; body: unknown }): FastifyReply => {
    try {
      const { status, body } = run();
      return res.code(status).send(body);
    } catch (error) {
      if (error instanceof ControlError) return res.code(400).send({ error: error.message });
      throw error;
    }
  };
  const seedIssues = (sites: JiraSite[], request: FastifyRequest, res: FastifyReply): FastifyReply =>
    control(res, () => {
      const b = controlBody(request.body, ["site", "project", "count", "fields"]);
      const site = controlSite(sites, b.site);
      const project = b.project === undefined ? site.projects[0] : typeof b.project === "string" ? site.projects.find((p) => p.key.toLowerCase() === (b.project as string).toLowerCase()) : undefined;
      if (!project) return fail(`project: the key of one of the site's projects (${site.projects.map((p) => p.key).join(", ")})`);
      const count = b.count;
      if (typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > SEED_MAX) return fail(`count: an integer from 1 to ${SEED_MAX}`);
      const { edit, issueTypeName } = controlFields(b.fields, true);
      const issueType = issueTypeName === undefined ? project.issueTypes[0] : project.issueTypes.find((t) => t.name.toLowerCase() === issueTypeName.toLowerCase());
      if (!issueType) return fail(`fields.issuetype: one of ${project.issueTypes.map((t) => t.name).join(", ")}`);
      const created: { id: string; key: string }[] = [];
      for (let n = 1; n <= count; n++) {
        const summary = (edit.summary ?? "Seeded issue {n}").replaceAll("{n}", String(n));
        const issue = addIssue(
          site,
          project,
          issueType,
          {
            summary,
            description: edit.description ?? null,
            labels: [...new Set(edit.labels ?? [])],
            ...(edit.statusId ? { statusId: edit.statusId } : {}),
            ...(edit.assigneeId !== undefined ? { assigneeId: edit.assigneeId } : {}),
            ...(edit.priorityId ? { priorityId: edit.priorityId } : {}),
          },
          other,
        );
        created.push({ id: issue.id, key: issue.key });
      }
      return { status: 201, body: { issues: created } };
    });
  const patchIssue = (sites: JiraSite[], request: FastifyRequest, res: FastifyReply): FastifyReply =>
    control(res, () => {
      const b = controlBody(request.body, ["site", "fields"]);
      const site = controlSite(sites, b.site);
      if (b.fields === undefined) return fail("fields: required");
      const { edit } = controlFields(b.fields, false);
      const { key } = request.params as { key: string };
      const issue = findIssue(site, key);
      if (!issue) return fail(`key: no issue ${key} on site ${site.cloudId}`);
      const entry = applyEdit(site, issue, edit, other);
      return { status: 200, body: { id: issue.id, key: issue.key, updated: time(issue.updated), changelogId: entry?.id ?? null } };
    });
  const deleteByOther = (sites: JiraSite[], request: FastifyRequest, res: FastifyReply): FastifyReply =>
    control(res, () => {
      const b = controlBody(request.body, ["site"]);
      const site = controlSite(sites, b.site);
      const { key } = request.params as { key: string };
      const issue = findIssue(site, key);
      if (!issue) return fail(`key: no issue ${key} on site ${site.cloudId}`);
      removeIssue(site, issue, other);
      return { status: 200, body: { id: issue.id, key: issue.key, deleted: true } };
    });
  const setSearchLag = (request: FastifyRequest, res: FastifyReply): FastifyReply =>
    control(res, () => {
      const b = controlBody(request.body, ["ms"]);
      const ms = b.ms;
      if (typeof ms !== "number" || !Number.isInteger(ms) || ms < 0 || ms > 3_600_000) return fail("ms: an integer from 0 to 3600000");
      ctx.searchLag.ms = ms;
      return { status: 200, body: { searchLagMs: ms } };
    });

  return {
    issueView,
    userView,
    time,
    matchesFilter,
    filterProblems,
    rest: { createIssue, getIssue, editIssue, deleteIssue, getChangelog, listTransitions, doTransition, listComments, addComment, searchJql, removedSearch, listProjects, getProject },
    control: { seedIssues, patchIssue, deleteByOther, setSearchLag },
  };
}
