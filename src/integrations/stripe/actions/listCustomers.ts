/** Stripe `GET /v1/customers`, paged with `starting_after` until `limit` customers or the end. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { STRIPE_API_VERSION } from "../connector.js";
import { customerOf, customerSchema, stripeCustomer } from "./customer.js";

/** Stripe's largest page. */
const PAGE = 100;

const list = z.looseObject({ object: z.literal("list"), data: z.array(customerSchema), has_more: z.boolean() });

export const listCustomers = defineAction({
  description: "Lists customers, newest first (optionally those with one email), page after page up to `limit`; `nextStartingAfter` continues.",
  input: z.strictObject({
    email: z.string().min(1).max(512).optional(),
    limit: z.number().int().min(1).max(10_000).default(100),
    startingAfter: z.string().regex(/^cus_\w+$/, "a customer id (cus_...)").optional(),
  }),
  output: z.object({ customers: z.array(stripeCustomer), nextStartingAfter: z.string().optional() }),
  async run(ctx, input) {
    const customers: z.infer<typeof customerSchema>[] = [];
    let after = input.startingAfter;
    let more = true;
    while (more && customers.length < input.limit) {
      const page = await ctx.read(
        {
          method: "GET",
          path: "/v1/customers",
          headers: { "stripe-version": STRIPE_API_VERSION },
          query: { limit: String(Math.min(PAGE, input.limit - customers.length)), ...(input.email ? { email: input.email } : {}), ...(after ? { starting_after: after } : {}) },
        },
        list,
      );
      customers.push(...page.data);
      more = page.has_more && page.data.length > 0;
      after = page.data.at(-1)?.id ?? after;
    }
    return { customers: customers.map(customerOf), ...(more && after ? { nextStartingAfter: after } : {}) };
  },
});
