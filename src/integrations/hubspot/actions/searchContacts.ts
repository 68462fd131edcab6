/** HubSpot CRM search (`POST /crm/v3/objects/contacts/search`): by text and property filters, one page, `after` continues. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { contactOf, contactSchema, hubspotContact } from "./contact.js";

const OPERATORS = ["EQ", "NEQ", "LT", "LTE", "GT", "GTE", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"] as const;

const answer = z.looseObject({
  total: z.number(),
  results: z.array(contactSchema),
  paging: z.looseObject({ next: z.looseObject({ after: z.string() }).optional() }).optional(),
});

export const searchContacts = defineAction({
  description: "Searches contacts by text (`query`) and property filters (all must hold); at most 200 a page, `nextAfter` continues.",
  scopes: ["crm.objects.contacts.read", "crm.objects.contacts.write"],
  input: z.strictObject({
    query: z.string().min(1).max(3000).optional(),
    filters: z
      .array(z.strictObject({ property: z.string().regex(/^[a-z0-9_]{1,100}$/), operator: z.enum(OPERATORS), value: z.string().max(65_536).optional() }))
      .max(6)
      .optional(),
    properties: z.array(z.string().regex(/^[a-z0-9_]{1,100}$/)).max(100).default(["email", "firstname", "lastname"]),
    limit: z.number().int().min(1).max(200).default(100),
    after: z.string().regex(/^\d+$/, "a cursor a previous search answered as nextAfter").optional(),
  }),
  output: z.object({ total: z.number(), contacts: z.array(hubspotContact), nextAfter: z.string().optional() }),
  async run(ctx, input) {
    const body = await ctx.read(
      {
        method: "POST",
        path: "/crm/v3/objects/contacts/search",
        // A search reads, despite the POST.
        idempotent: true,
        json: {
          ...(input.query ? { query: input.query } : {}),
          ...(input.filters?.length ? { filterGroups: [{ filters: input.filters.map((f) => ({ propertyName: f.property, operator: f.operator, ...(f.value !== undefined ? { value: f.value } : {}) })) }] } : {}),
          properties: input.properties,
          limit: input.limit,
          ...(input.after ? { after: input.after } : {}),
        },
      },
      answer,
    );
    const next = body.paging?.next?.after;
    return { total: body.total, contacts: body.results.map(contactOf), ...(next ? { nextAfter: next } : {}) };
  },
});
