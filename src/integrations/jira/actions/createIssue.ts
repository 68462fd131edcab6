/** Jira `POST /rest/api/{3|2}/issue`: an issue in a project; a plain-text description becomes ADF (v3) or stays text (v2). */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { textToAdf } from "../sync/adf.js";
import { apiVersionOf } from "./issue.js";

const created = z.looseObject({ id: z.string(), key: z.string(), self: z.string() });

export const createIssue = defineAction({
  description: "Creates an issue in a project (by key), of an issue type (by name, Task by default), with a plain-text description.",
  input: z.strictObject({
    projectKey: z.string().regex(/^[A-Z][A-Z0-9_]{0,9}$/, "a project key like SBX"),
    summary: z.string().min(1).max(255).regex(/^[^\r\n]*$/, "one line"),
    issueType: z.string().min(1).max(60).default("Task"),
    description: z.string().max(32_000).optional(),
    labels: z.array(z.string().regex(/^\S{1,255}$/, "a label has no spaces")).max(20).optional(),
  }),
  output: z.object({ id: z.string(), key: z.string(), self: z.string() }),
  async run(ctx, input) {
    const v = apiVersionOf(ctx);
    const fields = {
      project: { key: input.projectKey },
      summary: input.summary,
      issuetype: { name: input.issueType },
      ...(input.description !== undefined ? { description: v === "3" ? textToAdf(input.description) : input.description } : {}),
      ...(input.labels ? { labels: input.labels } : {}),
    };
    const issue = await ctx.read({ method: "POST", path: `/rest/api/${v}/issue`, json: { fields } }, created);
    return { id: issue.id, key: issue.key, self: issue.self };
  },
});
