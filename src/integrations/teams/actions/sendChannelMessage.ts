/** Graph `POST /teams/{id}/channels/{id}/messages`: a message (text or HTML) in a channel. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { channelId, teamId } from "./ids.js";

const message = z.looseObject({ id: z.string(), createdDateTime: z.string(), webUrl: z.string().nullable().optional() });

export const sendChannelMessage = defineAction({
  description: "Posts a message in a team's channel, as the connected user.",
  input: z.strictObject({
    teamId,
    channelId,
    content: z.string().min(1).max(28_000),
    contentType: z.enum(["text", "html"]).default("text"),
    subject: z.string().max(255).optional(),
  }),
  output: z.object({ id: z.string(), createdDateTime: z.string(), webUrl: z.string().optional() }),
  async run(ctx, input) {
    const sent = await ctx.read(
      {
        method: "POST",
        path: `/teams/${encodeURIComponent(input.teamId)}/channels/${encodeURIComponent(input.channelId)}/messages`,
        json: { body: { contentType: input.contentType, content: input.content }, ...(input.subject ? { subject: input.subject } : {}) },
      },
      message,
    );
    return { id: sent.id, createdDateTime: sent.createdDateTime, ...(sent.webUrl ? { webUrl: sent.webUrl } : {}) };
  },
});
