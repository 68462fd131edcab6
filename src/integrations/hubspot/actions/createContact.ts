/** HubSpot CRM: create a contact (`POST /crm/v3/objects/contacts`). */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { contactOf, contactSchema, hubspotContact } from "./contact.js";

export const createContact = defineAction({
  description: "Creates a contact from an email and optional names and further properties (internal property names).",
  scopes: ["crm.objects.contacts.write"],
  input: z.strictObject({
    email: z.email(),
    firstname: z.string().max(255).optional(),
    lastname: z.string().max(255).optional(),
    /** Further properties by internal name (`phone`, `company`, `lifecyclestage`...). */
    properties: z.record(z.string().regex(/^[a-z0-9_]{1,100}$/, "an internal property name (lower case, digits, _)"), z.string().max(65_536)).optional(),
  }),
  output: hubspotContact,
  async run(ctx, input) {
    const properties = { ...input.properties, email: input.email, ...(input.firstname ? { firstname: input.firstname } : {}), ...(input.lastname ? { lastname: input.lastname } : {}) };
    return contactOf(await ctx.read({ method: "POST", path: "/crm/v3/objects/contacts", json: { properties } }, contactSchema));
  },
});
