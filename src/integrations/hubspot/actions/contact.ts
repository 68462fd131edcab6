/** A HubSpot contact as the CRM answers it, and as the actions hand it on. */
import { z } from "zod";

export const contactSchema = z.looseObject({
  id: z.string(),
  properties: z.record(z.string(), z.string().nullable()),
  createdAt: z.string(),
  updatedAt: z.string(),
  archived: z.boolean().optional(),
});

export const hubspotContact = z.object({
  id: z.string(),
  email: z.string().optional(),
  firstname: z.string().optional(),
  lastname: z.string().optional(),
  properties: z.record(z.string(), z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export function contactOf(contact: z.infer<typeof contactSchema>): z.input<typeof hubspotContact> {
  const properties = Object.fromEntries(Object.entries(contact.properties).filter((entry): entry is [string, string] => entry[1] !== null));
  return {
    id: contact.id,
    ...(properties.email ? { email: properties.email } : {}),
    ...(properties.firstname ? { firstname: properties.firstname } : {}),
    ...(properties.lastname ? { lastname: properties.lastname } : {}),
    properties,
    createdAt: contact.createdAt,
    updatedAt: contact.updatedAt,
  };
}
