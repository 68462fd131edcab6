/** Slack `chat.postMessage`: a message (text, or Block Kit blocks with a text fallback) to a channel, optionally in a thread. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";

const answer = z.looseObject({
  ok: z.literal(true),
  channel: z.string(),
  ts: z.string(),
  message: z.looseObject({ text: z.string().optional() }).optional(),
});

export const postMessage = defineAction({
  description: "Posts a message to a channel (id like C0123, or a name the bot may post to), optionally as a thread reply.",
  scopes: ["chat:write"],
  input: z.strictObject({
    channel: z.string().min(1).max(255),
    text: z.string().min(1).max(40_000).optional(),
    /** Block Kit blocks; `text` is then the notification fallback. */
    blocks: z.array(z.record(z.string(), z.unknown())).min(1).max(50).optional(),
    threadTs: z.string().regex(/^\d+\.\d+$/, "must be a message ts like 1700000000.000100").optional(),
    unfurlLinks: z.boolean().optional(),
  }).refine((input) => input.text !== undefined || input.blocks !== undefined, { message: "give text or blocks", path: ["text"] }),
  output: z.object({ channel: z.string(), ts: z.string(), text: z.string().optional() }),
  async run(ctx, input) {
    const body = await ctx.read(
      {
        method: "POST",
        path: "/chat.postMessage",
        json: {
          channel: input.channel,
          ...(input.text !== undefined ? { text: input.text } : {}),
          ...(input.blocks ? { blocks: input.blocks } : {}),
          ...(input.threadTs ? { thread_ts: input.threadTs } : {}),
          ...(input.unfurlLinks !== undefined ? { unfurl_links: input.unfurlLinks } : {}),
        },
      },
      answer,
    );
    return { channel: body.channel, ts: body.ts, ...(body.message?.text !== undefined ? { text: body.message.text } : {}) };
  },
});
