/** Sentry `GET /api/0/projects/{org}/{project}/issues/`: a project's issues matching a search, page after page up to `limit`. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { organizationInput, requireOrganization } from "./organization.js";
import { pages } from "./pages.js";

const issue = z.looseObject({
  id: z.string(),
  shortId: z.string(),
  title: z.string(),
  status: z.string(),
  level: z.string().optional(),
  count: z.union([z.string(), z.number()]).optional(),
  firstSeen: z.string().optional(),
  lastSeen: z.string().optional(),
  permalink: z.string().optional(),
});

export const listIssues = defineAction({
  description: "Lists a project's issues matching a Sentry search (`query`, default is:unresolved), last seen first; `cursor` continues.",
  input: z.strictObject({
    project: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, "a project slug"),
    organization: organizationInput.optional(),
    query: z.string().max(2000).default("is:unresolved"),
    limit: z.number().int().min(1).max(1000).default(100),
    cursor: z.string().min(1).max(200).optional(),
  }),
  output: z.object({
    issues: z.array(z.object({ id: z.string(), shortId: z.string(), title: z.string(), status: z.string(), level: z.string().optional(), count: z.number().optional(), lastSeen: z.string().optional(), permalink: z.string().optional() })),
    cursor: z.string().optional(),
  }),
  async run(ctx, input) {
    const org = requireOrganization(ctx, input.organization);
    const path = `/api/0/projects/${encodeURIComponent(org)}/${encodeURIComponent(input.project)}/issues/`;
    const { items, cursor } = await pages(ctx, "listIssues", { path, query: { query: input.query }, pageSize: "limit" }, z.array(issue), input.limit, input.cursor);
    return {
      issues: items.map((i) => ({
        id: i.id,
        shortId: i.shortId,
        title: i.title,
        status: i.status,
        ...(i.level ? { level: i.level } : {}),
        ...(i.count !== undefined ? { count: Number(i.count) } : {}),
        ...(i.lastSeen ? { lastSeen: i.lastSeen } : {}),
        ...(i.permalink ? { permalink: i.permalink } : {}),
      })),
      ...(cursor ? { cursor } : {}),
    };
  },
});
