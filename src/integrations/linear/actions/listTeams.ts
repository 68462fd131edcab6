/** Linear `teams`: the workspace's teams the credential sees, page after page (`pageInfo.endCursor`) up to `limit`. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";

const QUERY = `query AutoFlowTeams($first: Int!, $after: String) {
  teams(first: $first, after: $after) { nodes { id key name description } pageInfo { hasNextPage endCursor } }
}`;
/** Linear's largest page. */
const PAGE = 250;

const answer = z.looseObject({
  data: z.looseObject({
    teams: z.looseObject({
      nodes: z.array(z.looseObject({ id: z.string(), key: z.string(), name: z.string(), description: z.string().nullable().optional() })),
      pageInfo: z.looseObject({ hasNextPage: z.boolean(), endCursor: z.string().nullable().optional() }),
    }),
  }),
});

export const listTeams = defineAction({
  description: "Lists the teams the connection sees (id, key, name), page after page up to `limit`.",
  scopes: ["read", "write", "admin"],
  input: z.strictObject({ limit: z.number().int().min(1).max(1000).default(100) }),
  output: z.object({ teams: z.array(z.object({ id: z.string(), key: z.string(), name: z.string(), description: z.string().optional() })) }),
  async run(ctx, input) {
    const teams: z.infer<typeof answer>["data"]["teams"]["nodes"] = [];
    let after: string | undefined;
    for (;;) {
      const body = await ctx.read(
        // A query, despite the POST.
        { operation: "teams", method: "POST", path: "/graphql", idempotent: true, json: { query: QUERY, operationName: "AutoFlowTeams", variables: { first: Math.min(PAGE, input.limit - teams.length), ...(after ? { after } : {}) } } },
        answer,
      );
      teams.push(...body.data.teams.nodes);
      const { hasNextPage, endCursor } = body.data.teams.pageInfo;
      if (!hasNextPage || !endCursor || teams.length >= input.limit) break;
      after = endCursor;
    }
    return { teams: teams.slice(0, input.limit).map((t) => ({ id: t.id, key: t.key, name: t.name, ...(t.description ? { description: t.description } : {}) })) };
  },
});
