/** Jira `GET /rest/api/{3|2}/issue/{key}`: one issue's main fields. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { apiVersionOf, DEFAULT_FIELDS, ISSUE_KEY, issueOf, issueSchema, jiraIssue } from "./issue.js";

export const getIssue = defineAction({
  description: "Gets one issue by key (SBX-1) or id: summary, status, type, project, assignee, created and updated.",
  input: z.strictObject({ key: z.string().refine((k) => ISSUE_KEY.test(k) || /^\d{1,18}$/.test(k), "an issue key like SBX-1, or an issue id") }),
  output: jiraIssue,
  async run(ctx, input) {
    const issue = await ctx.read({ method: "GET", path: `/rest/api/${apiVersionOf(ctx)}/issue/${encodeURIComponent(input.key)}`, query: { fields: DEFAULT_FIELDS.join(",") } }, issueSchema);
    return issueOf(issue);
  },
});
