/** Gmail `users.messages.list`: ids of the messages a search matches, one page, `nextPageToken` continues. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";

const answer = z.looseObject({
  messages: z.array(z.looseObject({ id: z.string(), threadId: z.string() })).optional(),
  nextPageToken: z.string().optional(),
  resultSizeEstimate: z.number().optional(),
});

export const listMessages = defineAction({
  description: "Lists messages matching a Gmail search (`query`, as in the search box) and labels, newest first; `nextPageToken` continues.",
  scopes: ["https://mail.google.com/", "https://www.googleapis.com/auth/gmail.readonly", "https://www.googleapis.com/auth/gmail.modify", "https://www.googleapis.com/auth/gmail.metadata"],
  input: z.strictObject({
    query: z.string().max(2000).optional(),
    labelIds: z.array(z.string().min(1).max(256)).max(20).optional(),
    limit: z.number().int().min(1).max(500).default(100),
    pageToken: z.string().min(1).max(1000).optional(),
    includeSpamTrash: z.boolean().default(false),
  }),
  output: z.object({ messages: z.array(z.object({ id: z.string(), threadId: z.string() })), nextPageToken: z.string().optional(), resultSizeEstimate: z.number() }),
  async run(ctx, input) {
    const body = await ctx.read(
      {
        method: "GET",
        path: "/gmail/v1/users/me/messages",
        query: {
          maxResults: String(input.limit),
          includeSpamTrash: String(input.includeSpamTrash),
          ...(input.query ? { q: input.query } : {}),
          ...(input.labelIds ? { labelIds: input.labelIds } : {}),
          ...(input.pageToken ? { pageToken: input.pageToken } : {}),
        },
      },
      answer,
    );
    const messages = (body.messages ?? []).map((m) => ({ id: m.id, threadId: m.threadId }));
    return { messages, ...(body.nextPageToken ? { nextPageToken: body.nextPageToken } : {}), resultSizeEstimate: body.resultSizeEstimate ?? messages.length };
  },
});
