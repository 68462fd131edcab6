/**
 * The official Stripe client, stripe-node, pointed at the Stripe sandbox
 * (`host`, `port`, `protocol: "http"`, no network retries) and run
 * unchanged: who-am-I, the create-a-customer action with an idempotency key
 * and its replay, auto-pagination over several pages, and a 404 parsed into
 * the client's own error class.
 */
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../src/testing/closedAfterEach.js";
import type { StartedSandbox } from "../../src/sandbox/kit.js";
import { startStripeSandbox } from "../../src/integrations/stripe/sandbox.js";

const stripe = closedAfterEach(startStripeSandbox);

/** A test-mode secret key of a fresh account from the sandbox's credentials desk, as the dashboard hands one out. */
async function secretKey(sandbox: StartedSandbox): Promise<{ apiKey: string; accountId: string }> {
  const response = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "secret" }) });
  expect(response.status).toBe(201);
  return (await response.json()) as { apiKey: string; accountId: string };
}

/** stripe-node with api.stripe.com moved to the sandbox, and no retries (a failure shows at once). */
function client(sandbox: StartedSandbox, apiKey: string): Stripe {
  const url = new URL(sandbox.url);
  return new Stripe(apiKey, { host: url.hostname, port: Number(url.port), protocol: "http", maxNetworkRetries: 0, telemetry: false });
}

describe("stripe-node against the Stripe sandbox", () => {
  it("accounts.retrieveCurrent() and accounts.retrieve(null) answer the key's own account (GET /v1/account)", async () => {
    const s = await stripe();
    const { apiKey, accountId } = await secretKey(s);
    const sdk = client(s, apiKey);
    expect((await sdk.accounts.retrieve(null)).id).toBe(accountId);
    const account = await sdk.accounts.retrieveCurrent();
    expect(account).toMatchObject({ id: accountId, object: "account", charges_enabled: true, country: "US" });
    expect(account.lastResponse.statusCode).toBe(200);
    expect(account.lastResponse.requestId).toMatch(/^req_/);
  });

  it("customers.create with an idempotency key: the replay answers the same customer, marked replayed, and creates none", async () => {
    const s = await stripe();
    const sdk = client(s, (await secretKey(s)).apiKey);
    const params = { email: "ada@example.com", name: "Ada Lovelace", metadata: { plan: "pro" } };
    const first = await sdk.customers.create(params, { idempotencyKey: "create-ada-1" });
    expect(first).toMatchObject({ id: expect.stringMatching(/^cus_/), object: "customer", email: "ada@example.com", name: "Ada Lovelace", metadata: { plan: "pro" }, livemode: false });
    expect(first.lastResponse.idempotencyKey).toBe("create-ada-1");
    expect(first.lastResponse.headers["idempotent-replayed"]).toBeUndefined();

    const replay = await sdk.customers.create(params, { idempotencyKey: "create-ada-1" });
    expect(replay.id).toBe(first.id);
    expect(replay.lastResponse.headers["idempotent-replayed"]).toBe("true");
    const listed = await sdk.customers.list({ email: "ada@example.com" });
    expect(listed.data.map((c) => c.id)).toEqual([first.id]);

    // The same key with other parameters is refused, as the client's idempotency error.
    const reused = await sdk.customers.create({ email: "grace@example.com" }, { idempotencyKey: "create-ada-1" }).catch((error: unknown) => error);
    expect(reused).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(reused).toMatchObject({ type: "StripeIdempotencyError", statusCode: 400 });

    // Without a key of its own, stripe-node sends one anyway (stripe-node-retry-<uuid>): two calls, two customers.
    const a = await sdk.customers.create({ email: "twin@example.com" });
    const b = await sdk.customers.create({ email: "twin@example.com" });
    expect(a.id).not.toBe(b.id);
    expect(a.lastResponse.idempotencyKey).toMatch(/^stripe-node-retry-/);
  });

  it("customers.list auto-pages over several pages, newest first, with for await and autoPagingToArray", async () => {
    const s = await stripe();
    const sdk = client(s, (await secretKey(s)).apiKey);
    const created: string[] = [];
    for (let i = 0; i < 7; i++) created.push((await sdk.customers.create({ email: `c${i}@example.com` })).id);
    const newestFirst = [...created].reverse();

    const firstPage = await sdk.customers.list({ limit: 3 });
    expect(firstPage).toMatchObject({ object: "list", has_more: true, url: "/v1/customers" });
    expect(firstPage.data.map((c) => c.id)).toEqual(newestFirst.slice(0, 3));

    const seen: string[] = [];
    for await (const customer of sdk.customers.list({ limit: 3 })) seen.push(customer.id);
    expect(seen).toEqual(newestFirst);

    expect((await sdk.customers.list({ limit: 2 }).autoPagingToArray({ limit: 100 })).map((c) => c.id)).toEqual(newestFirst);
    // Backwards from the oldest with ending_before: the iterator walks towards the newest.
    const backwards: string[] = [];
    for await (const customer of sdk.customers.list({ limit: 2, ending_before: created[0] as string })) backwards.push(customer.id);
    expect(backwards).toEqual(created.slice(1));
  });

  it("a missing customer raises StripeInvalidRequestError with code resource_missing, as Stripe's 404 does", async () => {
    const s = await stripe();
    const sdk = client(s, (await secretKey(s)).apiKey);
    const error = await sdk.customers.retrieve("cus_doesnotexist").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({
      type: "StripeInvalidRequestError",
      rawType: "invalid_request_error",
      statusCode: 404,
      code: "resource_missing",
      param: "id",
      message: "No such customer: 'cus_doesnotexist'",
      doc_url: "https://stripe.com/docs/error-codes/resource-missing",
    });
    expect((error as Stripe.errors.StripeInvalidRequestError).requestId).toMatch(/^req_/);
  });

  it("an unknown key raises StripeAuthenticationError", async () => {
    const s = await stripe();
    const error = await client(s, "sk_test_51unknown").accounts.retrieveCurrent().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(error).toMatchObject({ statusCode: 401, message: expect.stringMatching(/^Invalid API Key provided: sk_test_/) });
  });
});
