/** Stripe's typed actions. */
import { createCustomer } from "./createCustomer.js";
import { listCustomers } from "./listCustomers.js";

export const stripeActions = { createCustomer, listCustomers } as const;
