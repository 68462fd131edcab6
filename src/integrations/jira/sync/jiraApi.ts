/**
 * The Jira REST calls the ticket sync makes, through a connection's context
 * (so each is refreshed, authorized, paced, classified and retried as any
 * call is): who the account is (its time zone), the grant's sites, a page of
 * the enhanced search, one issue, and its changelog. Cloud speaks v3 at the
 * chosen site's gateway base; Data Center v2 at its own base, paged by offset.
 */
import { z } from "zod";
import type { ActionContext } from "../../shared/action.js";
import type { ApiCall } from "../../shared/connector.js";
import { IntegrationError } from "../../shared/errors.js";

/**
 * Where a sync's calls go: an OAuth grant's chosen site through its gateway base (absolute), or the
 * connection's own API base (a Cloud API token's site: v3; a Data Center instance: v2).
 */
export type JiraTarget = { version: "2" | "3"; base?: string };

export const siteSchema = z.looseObject({ id: z.string(), url: z.string(), name: z.string().optional(), scopes: z.array(z.string()).optional() });
export type JiraSite = z.infer<typeof siteSchema>;

const myselfSchema = z.looseObject({ accountId: z.string().optional(), key: z.string().optional(), timeZone: z.string().optional() });
/** An issue of a search or GET; an id-only search may answer without the key. */
const issueShape = z.looseObject({ id: z.string(), key: z.string().optional(), fields: z.record(z.string(), z.unknown()).optional() });
const cloudPage = z.looseObject({ issues: z.array(issueShape), nextPageToken: z.string().nullable().optional(), isLast: z.boolean().optional() });
const offsetPage = z.looseObject({ issues: z.array(issueShape), startAt: z.number(), maxResults: z.number(), total: z.number() });
const changelogPage = z.looseObject({
  startAt: z.number(),
  maxResults: z.number(),
  total: z.number().optional(),
  isLast: z.boolean().optional(),
  values: z.array(z.looseObject({ created: z.string(), items: z.array(z.looseObject({ field: z.string(), fieldId: z.string().optional() })) })),
});

export type JiraIssueJson = z.infer<typeof issueShape>;
export type SearchPage = { issues: JiraIssueJson[]; next?: string };

/** Where a REST path of the target goes: an absolute gateway URL, or a path on the connection's own base. */
export const path = (target: JiraTarget, rest: string): Pick<ApiCall, "path" | "url"> =>
  target.base !== undefined ? { url: `${target.base}/rest/api/${target.version}${rest}` } : { path: `/rest/api/${target.version}${rest}` };

/** The Jira sites an OAuth grant reaches (accessible-resources), those with Jira scopes. */
export async function accessibleSites(ctx: ActionContext, apiUrl: string): Promise<JiraSite[]> {
  const sites = await ctx.read({ operation: "GET /oauth/token/accessible-resources", method: "GET", url: `${apiUrl}/oauth/token/accessible-resources` }, z.array(siteSchema));
  return sites.filter((s) => (s.scopes ?? []).some((scope) => scope.includes("jira")));
}

/** The account's time zone, as `/myself` tells it (JQL dates are read in it); UTC when it tells none. */
export async function accountTimeZone(ctx: ActionContext, target: JiraTarget): Promise<string> {
  const me = await ctx.read({ method: "GET", ...path(target, "/myself") }, myselfSchema);
  return me.timeZone && me.timeZone.length > 0 ? me.timeZone : "UTC";
}

/** One page of a search: Cloud's enhanced search by `nextPageToken`, Data Center's by `startAt` (its token is the next offset). */
export async function searchPage(
  ctx: ActionContext,
  target: JiraTarget,
  query: { jql: string; fields: readonly string[]; maxResults: number; next?: string; reconcileIssues?: readonly string[] },
): Promise<SearchPage> {
  if (target.version === "3") {
    const page = await ctx.read(
      {
        operation: "POST /rest/api/3/search/jql",
        method: "POST",
        ...path(target, "/search/jql"),
        idempotent: true,
        json: {
          jql: query.jql,
          fields: query.fields,
          maxResults: query.maxResults,
          ...(query.next ? { nextPageToken: query.next } : {}),
          // Read-after-write: issues named here are answered as written even while the search lags (at most 50).
          ...(query.reconcileIssues && query.reconcileIssues.length > 0 ? { reconcileIssues: query.reconcileIssues.slice(0, 50).map(Number) } : {}),
        },
      },
      cloudPage,
    );
    const more = page.isLast === false || (page.isLast === undefined && typeof page.nextPageToken === "string");
    return { issues: page.issues, ...(more && page.nextPageToken ? { next: page.nextPageToken } : {}) };
  }
  const startAt = query.next ? Number(query.next) : 0;
  const page = await ctx.read(
    { operation: "POST /rest/api/2/search", method: "POST", ...path(target, "/search"), idempotent: true, json: { jql: query.jql, fields: query.fields, maxResults: query.maxResults, startAt } },
    offsetPage,
  );
  const after = page.startAt + page.issues.length;
  return { issues: page.issues, ...(page.issues.length > 0 && after < page.total ? { next: String(after) } : {}) };
}

/** One issue as Jira holds it now (GET is consistent where search lags); undefined when Jira says it does not exist. */
export async function getIssue(ctx: ActionContext, target: JiraTarget, idOrKey: string, fields: readonly string[]): Promise<JiraIssueJson | undefined> {
  try {
    return await ctx.read({ method: "GET", ...path(target, `/issue/${encodeURIComponent(idOrKey)}`), query: { fields: fields.join(",") } }, issueShape);
  } catch (error) {
    if (error instanceof IntegrationError && error.status === 404) return undefined;
    throw error;
  }
}

/** The fields changed in Jira after `sinceMs` (its changelog), for the conflict check of a push. */
export async function fieldsChangedSince(ctx: ActionContext, target: JiraTarget, idOrKey: string, sinceMs: number, parse: (time: string) => number | undefined): Promise<Set<string>> {
  const changed = new Set<string>();
  let startAt = 0;
  for (let page = 0; page < 100; page++) {
    const answer = await ctx.read({ method: "GET", ...path(target, `/issue/${encodeURIComponent(idOrKey)}/changelog`), query: { startAt: String(startAt), maxResults: "100" } }, changelogPage);
    for (const entry of answer.values) {
      const at = parse(entry.created);
      if (at !== undefined && at > sinceMs) for (const item of entry.items) changed.add(item.fieldId ?? item.field);
    }
    startAt = answer.startAt + answer.values.length;
    if (answer.isLast === true || answer.values.length === 0 || (answer.total !== undefined && startAt >= answer.total)) break;
  }
  return changed;
}
