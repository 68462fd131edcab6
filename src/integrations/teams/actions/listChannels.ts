/** Graph `GET /teams/{id}/channels`: a team's channels the user can see. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { teamId } from "./ids.js";
import { graphPages } from "./pages.js";

const channel = z.looseObject({ id: z.string(), displayName: z.string().nullable().optional(), description: z.string().nullable().optional(), membershipType: z.string().nullable().optional(), webUrl: z.string().nullable().optional() });

export const listChannels = defineAction({
  description: "Lists a team's channels (standard, private and shared the user can see).",
  input: z.strictObject({ teamId, limit: z.number().int().min(1).max(1000).default(100) }),
  output: z.object({ channels: z.array(z.object({ id: z.string(), displayName: z.string().optional(), membershipType: z.string().optional(), webUrl: z.string().optional() })) }),
  async run(ctx, input) {
    const channels = await graphPages(ctx, `/teams/${encodeURIComponent(input.teamId)}/channels`, channel, input.limit);
    return {
      channels: channels.map((c) => ({ id: c.id, ...(c.displayName ? { displayName: c.displayName } : {}), ...(c.membershipType ? { membershipType: c.membershipType } : {}), ...(c.webUrl ? { webUrl: c.webUrl } : {}) })),
    };
  },
});
