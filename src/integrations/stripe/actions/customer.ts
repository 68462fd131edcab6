/** A Stripe Customer as the API answers it, and as the actions hand it on. */
import { z } from "zod";

export const customerSchema = z.looseObject({
  id: z.string().regex(/^cus_/),
  object: z.literal("customer"),
  created: z.number(),
  email: z.string().nullable().optional(),
  name: z.string().nullable().optional(),
  description: z.string().nullable().optional(),
  livemode: z.boolean(),
  metadata: z.record(z.string(), z.string()).optional(),
});

export const stripeCustomer = z.object({
  id: z.string(),
  email: z.string().optional(),
  name: z.string().optional(),
  description: z.string().optional(),
  /** ISO 8601, from Stripe's Unix seconds. */
  created: z.string(),
  livemode: z.boolean(),
  metadata: z.record(z.string(), z.string()),
});

export function customerOf(c: z.infer<typeof customerSchema>): z.input<typeof stripeCustomer> {
  return {
    id: c.id,
    ...(c.email ? { email: c.email } : {}),
    ...(c.name ? { name: c.name } : {}),
    ...(c.description ? { description: c.description } : {}),
    created: new Date(c.created * 1000).toISOString(),
    livemode: c.livemode,
    metadata: c.metadata ?? {},
  };
}
