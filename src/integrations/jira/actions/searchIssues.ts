/**
 * Jira issue search by JQL: Cloud's `POST /rest/api/3/search/jql` (paged by
 * `nextPageToken`), Data Center's `POST /rest/api/2/search` (by `startAt`),
 * page after page up to `limit`; `nextPageToken` continues either.
 */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { invalidInput } from "../../shared/errors.js";
import { apiVersionOf, DEFAULT_FIELDS, issueOf, issueSchema, jiraIssue } from "./issue.js";

/** The page size Jira allows for these fields. */
const PAGE = 100;

const cloudPage = z.looseObject({ issues: z.array(issueSchema), nextPageToken: z.string().nullable().optional(), isLast: z.boolean().optional() });
const dataCenterPage = z.looseObject({ issues: z.array(issueSchema), startAt: z.number(), maxResults: z.number(), total: z.number() });

export const searchIssues = defineAction({
  description: "Searches issues with JQL (a bounded query, e.g. project = SBX ORDER BY created DESC), page after page up to `limit`.",
  input: z.strictObject({
    jql: z.string().min(1).max(10_000),
    limit: z.number().int().min(1).max(5000).default(100),
    nextPageToken: z.string().min(1).max(2000).optional(),
  }),
  output: z.object({ issues: z.array(jiraIssue), nextPageToken: z.string().optional() }),
  async run(ctx, input) {
    const issues: z.infer<typeof issueSchema>[] = [];
    if (apiVersionOf(ctx) === "3") {
      let token = input.nextPageToken;
      do {
        const page = await ctx.read(
          // A search reads, despite the POST.
          { method: "POST", path: "/rest/api/3/search/jql", idempotent: true, json: { jql: input.jql, maxResults: Math.min(PAGE, input.limit - issues.length), fields: DEFAULT_FIELDS, ...(token ? { nextPageToken: token } : {}) } },
          cloudPage,
        );
        issues.push(...page.issues);
        token = page.isLast === false || (page.isLast === undefined && page.nextPageToken) ? (page.nextPageToken ?? undefined) : undefined;
      } while (token && issues.length < input.limit);
      return { issues: issues.slice(0, input.limit).map(issueOf), ...(token ? { nextPageToken: token } : {}) };
    }
    // Data Center pages by offset: its token is the next startAt this action answered.
    if (input.nextPageToken !== undefined && !/^\d{1,9}$/.test(input.nextPageToken)) {
      throw invalidInput("input.nextPageToken", "a Data Center search continues from the nextPageToken it answered (a number); this one is not", ctx.provider);
    }
    let startAt = input.nextPageToken ? Number(input.nextPageToken) : 0;
    let total = Number.POSITIVE_INFINITY;
    while (startAt < total && issues.length < input.limit) {
      const page = await ctx.read({ method: "POST", path: "/rest/api/2/search", idempotent: true, json: { jql: input.jql, startAt, maxResults: Math.min(PAGE, input.limit - issues.length), fields: DEFAULT_FIELDS } }, dataCenterPage);
      issues.push(...page.issues);
      total = page.total;
      startAt = page.startAt + page.issues.length;
      if (page.issues.length === 0) break;
    }
    return { issues: issues.slice(0, input.limit).map(issueOf), ...(startAt < total ? { nextPageToken: String(startAt) } : {}) };
  },
});
