/** Linear `issueCreate`: an issue in a team (title, optional description in Markdown, priority, assignee). */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";

const MUTATION = `mutation AutoFlowIssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier title url priority createdAt team { id key } } }
}`;

const answer = z.looseObject({
  data: z.looseObject({
    issueCreate: z.looseObject({
      success: z.boolean(),
      issue: z.looseObject({ id: z.string(), identifier: z.string(), title: z.string(), url: z.string(), priority: z.number().optional(), createdAt: z.string(), team: z.looseObject({ id: z.string(), key: z.string() }) }),
    }),
  }),
});

export const createIssue = defineAction({
  description: "Creates an issue in a team (its id from listTeams); priority 0 none, 1 urgent ... 4 low.",
  scopes: ["write", "issues:create", "admin"],
  input: z.strictObject({
    teamId: z.uuid({ error: "must be a team id (a UUID, from listTeams)" }),
    title: z.string().min(1).max(1000),
    description: z.string().max(100_000).optional(),
    priority: z.number().int().min(0).max(4).optional(),
    assigneeId: z.uuid().optional(),
  }),
  output: z.object({ id: z.string(), identifier: z.string(), title: z.string(), url: z.string(), teamId: z.string(), createdAt: z.string() }),
  async run(ctx, input) {
    const body = await ctx.read(
      { operation: "issueCreate", method: "POST", path: "/graphql", json: { query: MUTATION, operationName: "AutoFlowIssueCreate", variables: { input } } },
      answer,
    );
    const { issue } = body.data.issueCreate;
    return { id: issue.id, identifier: issue.identifier, title: issue.title, url: issue.url, teamId: issue.team.id, createdAt: issue.createdAt };
  },
});
