/** Graph `GET /me/joinedTeams`: the teams the signed-in user is a member of. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { graphPages } from "./pages.js";

const team = z.looseObject({ id: z.string(), displayName: z.string().nullable().optional(), description: z.string().nullable().optional() });

export const listJoinedTeams = defineAction({
  description: "Lists the teams the connected user is a member of.",
  input: z.strictObject({ limit: z.number().int().min(1).max(1000).default(100) }),
  output: z.object({ teams: z.array(z.object({ id: z.string(), displayName: z.string().optional(), description: z.string().optional() })) }),
  async run(ctx, input) {
    const teams = await graphPages(ctx, "/me/joinedTeams", team, input.limit);
    return { teams: teams.map((t) => ({ id: t.id, ...(t.displayName ? { displayName: t.displayName } : {}), ...(t.description ? { description: t.description } : {}) })) };
  },
});
