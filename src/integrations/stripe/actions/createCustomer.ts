/** Stripe `POST /v1/customers`, under an idempotency key (the caller's, or one made for this call) so a retry never makes two. */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { STRIPE_API_VERSION } from "../connector.js";
import { customerOf, customerSchema, stripeCustomer } from "./customer.js";

export const createCustomer = defineAction({
  description: "Creates a customer. With the same idempotencyKey (and the same fields) a repeat answers the first customer, never a second.",
  input: z.strictObject({
    email: z.email().optional(),
    name: z.string().min(1).max(256).optional(),
    description: z.string().min(1).max(350).optional(),
    /** Stripe's limits: 50 keys of at most 40 characters, values of at most 500. */
    metadata: z.record(z.string().min(1).max(40).regex(/^[^[\]]+$/, "no [ or ] (they nest form parameters)"), z.string().max(500)).refine((m) => Object.keys(m).length <= 50, "at most 50 keys").optional(),
    idempotencyKey: z.string().regex(/^[\x21-\x7e]{1,255}$/, "1 to 255 printable ASCII characters, no spaces").optional(),
  }),
  output: stripeCustomer,
  async run(ctx, input) {
    const form: Record<string, string | undefined> = { email: input.email, name: input.name, description: input.description };
    for (const [key, value] of Object.entries(input.metadata ?? {})) form[`metadata[${key}]`] = value;
    const customer = await ctx.read(
      { method: "POST", path: "/v1/customers", form, headers: { "idempotency-key": input.idempotencyKey ?? randomUUID(), "stripe-version": STRIPE_API_VERSION } },
      customerSchema,
    );
    return customerOf(customer);
  },
});
