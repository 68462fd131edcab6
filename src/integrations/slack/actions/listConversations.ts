/** Slack `conversations.list`: the workspace's channels, following `response_metadata.next_cursor` up to `limit`. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";

const TYPES = ["public_channel", "private_channel", "mpim", "im"] as const;
/** Slack's page size ceiling for conversations.list (it recommends at most 200). */
const PAGE = 200;

const page = z.looseObject({
  ok: z.literal(true),
  channels: z.array(
    z.looseObject({
      id: z.string(),
      name: z.string().optional(),
      is_private: z.boolean().optional(),
      is_archived: z.boolean().optional(),
      is_member: z.boolean().optional(),
      num_members: z.number().optional(),
    }),
  ),
  response_metadata: z.looseObject({ next_cursor: z.string().optional() }).optional(),
});

export const listConversations = defineAction({
  description: "Lists the workspace's channels (public by default), page after page up to `limit`; `nextCursor` continues.",
  scopes: ["channels:read", "groups:read", "mpim:read", "im:read"],
  input: z.strictObject({
    types: z.array(z.enum(TYPES)).min(1).optional(),
    excludeArchived: z.boolean().default(true),
    limit: z.number().int().min(1).max(1000).default(100),
    cursor: z.string().min(1).optional(),
  }),
  output: z.object({
    channels: z.array(z.object({ id: z.string(), name: z.string().optional(), isPrivate: z.boolean(), isArchived: z.boolean(), isMember: z.boolean(), members: z.number().optional() })),
    nextCursor: z.string().optional(),
  }),
  async run(ctx, input) {
    const channels: z.infer<typeof page>["channels"] = [];
    let cursor = input.cursor;
    do {
      const body = await ctx.read(
        {
          method: "GET",
          path: "/conversations.list",
          query: {
            limit: String(Math.min(PAGE, input.limit - channels.length)),
            exclude_archived: String(input.excludeArchived),
            ...(input.types ? { types: input.types.join(",") } : {}),
            ...(cursor ? { cursor } : {}),
          },
        },
        page,
      );
      channels.push(...body.channels);
      cursor = body.response_metadata?.next_cursor || undefined;
    } while (cursor && channels.length < input.limit);
    return {
      channels: channels.slice(0, input.limit).map((c) => ({
        id: c.id,
        ...(c.name !== undefined ? { name: c.name } : {}),
        isPrivate: c.is_private ?? false,
        isArchived: c.is_archived ?? false,
        isMember: c.is_member ?? false,
        ...(c.num_members !== undefined ? { members: c.num_members } : {}),
      })),
      ...(cursor ? { nextCursor: cursor } : {}),
    };
  },
});
