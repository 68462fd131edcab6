/** Sentry `GET /api/0/organizations/{org}/projects/`: the organization's projects, page after page up to `limit`. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { organizationInput, requireOrganization } from "./organization.js";
import { pages } from "./pages.js";

const project = z.looseObject({ id: z.string(), slug: z.string(), name: z.string(), platform: z.string().nullable().optional(), dateCreated: z.string().optional() });

export const listProjects = defineAction({
  description: "Lists an organization's projects (the connection's organization when none is named); `cursor` continues.",
  input: z.strictObject({ organization: organizationInput.optional(), limit: z.number().int().min(1).max(1000).default(100), cursor: z.string().min(1).max(200).optional() }),
  output: z.object({ projects: z.array(z.object({ id: z.string(), slug: z.string(), name: z.string(), platform: z.string().optional() })), cursor: z.string().optional() }),
  async run(ctx, input) {
    const org = requireOrganization(ctx, input.organization);
    const { items, cursor } = await pages(ctx, "listProjects", { path: `/api/0/organizations/${encodeURIComponent(org)}/projects/`, query: {}, pageSize: "per_page" }, z.array(project), input.limit, input.cursor);
    return { projects: items.map((p) => ({ id: p.id, slug: p.slug, name: p.name, ...(p.platform ? { platform: p.platform } : {}) })), ...(cursor ? { cursor } : {}) };
  },
});
