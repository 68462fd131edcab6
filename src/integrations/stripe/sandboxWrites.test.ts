/**
 * The Stripe sandbox's first write, creating a customer, with the reads that
 * go with it (one customer, the customers as a list), called as stripe-node
 * calls them: form bodies with bracketed metadata, a bearer key, an
 * Idempotency-Key on the POST. Refusals carry Stripe's `{error:{type, code,
 * message, param}}`. The stripe package is not a dev dependency, so the SDK
 * itself is not run here.
 */
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import type { StartedSandbox } from "../../sandbox/kit.js";
import { startStripeSandbox } from "./sandbox.js";

type Json = Record<string, unknown>;
const REDIRECT = "http://localhost:3000/callback";

const stripe = closedAfterEach(startStripeSandbox, { redirectUris: [REDIRECT] });

async function desk(sandbox: StartedSandbox): Promise<string> {
  const response = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  return ((await response.json()) as { apiKey: string }).apiKey;
}

/** A Connect OAuth access token of `scope`, through the consent page and /oauth/token. */
async function connectToken(sandbox: StartedSandbox, scope: "read_write" | "read_only"): Promise<{ token: string; accountId: string }> {
  const authorize = new URL(`${sandbox.url}/oauth/authorize`);
  authorize.search = new URLSearchParams({ response_type: "code", client_id: sandbox.clientId, scope, redirect_uri: REDIRECT }).toString();
  const consent = await fetch(authorize, { redirect: "manual" });
  const code = new URL(consent.headers.get("location") as string).searchParams.get("code") as string;
  const answer = await fetch(`${sandbox.url}/oauth/token`, {
    method: "POST",
    headers: { authorization: `Bearer ${sandbox.clientSecret}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code }).toString(),
  });
  const body = (await answer.json()) as { access_token: string; stripe_user_id: string };
  return { token: body.access_token, accountId: body.stripe_user_id };
}

async function api(
  sandbox: StartedSandbox,
  method: "GET" | "POST",
  path: string,
  key: string | undefined,
  form?: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: {
      connection: "close",
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      ...headers,
    },
    ...(form ? { body: new URLSearchParams(form).toString() } : {}),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Json };
}
const create = (s: StartedSandbox, key: string | undefined, form: Record<string, string>, headers: Record<string, string> = {}) => api(s, "POST", "/v1/customers", key, form, headers);

describe("POST /v1/customers", () => {
  it("creates a customer with bracketed metadata, and GET /v1/customers/{id} finds it", async () => {
    const s = await stripe();
    const key = await desk(s);
    const created = await create(s, key, { email: "jenny@example.com", name: "Jenny Rosen", description: "From the proxy", "metadata[plan]": "pro", "metadata[seats]": "5", "expand[0]": "tax" });
    expect(created.status).toBe(200);
    expect(created.headers.get("request-id")).toMatch(/^req_/);
    expect(created.body).toMatchObject({
      object: "customer",
      email: "jenny@example.com",
      name: "Jenny Rosen",
      description: "From the proxy",
      metadata: { plan: "pro", seats: "5" },
      livemode: false,
      balance: 0,
      delinquent: false,
      phone: null,
      currency: null,
      tax_exempt: "none",
      preferred_locales: [],
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    });
    expect(created.body.id).toMatch(/^cus_[A-Za-z0-9]{14}$/);
    expect(Math.abs((created.body.created as number) - Date.now() / 1000)).toBeLessThan(5);
    expect(created.body.invoice_prefix).toMatch(/^[0-9A-F]{8}$/);

    const read = await api(s, "GET", `/v1/customers/${created.body.id as string}`, key);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);
  });

  it("replays the saved answer for a repeated Idempotency-Key, and refuses the key with other parameters", async () => {
    const s = await stripe();
    const key = await desk(s);
    const first = await create(s, key, { email: "idem@example.com" }, { "idempotency-key": "order-1" });
    expect(first.headers.get("idempotency-key")).toBe("order-1");
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const again = await create(s, key, { email: "idem@example.com" }, { "idempotency-key": "order-1" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    const listed = await api(s, "GET", "/v1/customers", key);
    expect((listed.body.data as Json[]).map((c) => c.id)).toEqual([first.body.id]);

    const other = await create(s, key, { email: "other@example.com" }, { "idempotency-key": "order-1" });
    expect(other.status).toBe(400);
    expect(other.body).toEqual({
      error: {
        message: "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'order-1' if you meant to execute a different request.",
        type: "idempotency_error",
      },
    });
  });

  it("refuses a bad email and an unknown parameter (400 invalid_request_error)", async () => {
    const s = await stripe();
    const key = await desk(s);
    const email = await create(s, key, { email: "not-an-email" });
    expect(email.status).toBe(400);
    expect(email.body).toEqual({ error: { code: "email_invalid", doc_url: "https://stripe.com/docs/error-codes/email-invalid", message: "Invalid email address: not-an-email", param: "email", type: "invalid_request_error" } });
    const unknown = await create(s, key, { email: "a@example.com", colour: "blue" });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual({
      error: { code: "parameter_unknown", doc_url: "https://stripe.com/docs/error-codes/parameter-unknown", message: "Received unknown parameter: colour", param: "colour", type: "invalid_request_error" },
    });
    const longKey = await create(s, key, { [`metadata[${"k".repeat(41)}]`]: "v" });
    expect(longKey.status).toBe(400);
    expect((await api(s, "GET", "/v1/customers", key)).body.data).toEqual([]);
  });

  it("refuses no key, an unknown key and a revoked one (401), and a read_only Connect token (403)", async () => {
    const s = await stripe();
    const none = await create(s, undefined, { email: "a@example.com" });
    expect(none.status).toBe(401);
    expect((none.body.error as Json).message).toMatch(/^You did not provide an API key/);
    const unknown = await create(s, "sk_test_51nope1234", { email: "a@example.com" });
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual({ error: { message: "Invalid API Key provided: sk_test_******1234", type: "invalid_request_error" } });

    const readOnly = await connectToken(s, "read_only");
    const refused = await create(s, readOnly.token, { email: "a@example.com" });
    expect(refused.status).toBe(403);
    expect((refused.body.error as Json).type).toBe("invalid_request_error");
    expect((refused.body.error as Json).message).toContain(`does not have the required permissions for this endpoint on account '${readOnly.accountId}'`);
    // It may still read.
    expect((await api(s, "GET", "/v1/customers", readOnly.token)).status).toBe(200);

    const revoked = await desk(s);
    await fetch(`${s.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "revoke-all" }) });
    const expired = await create(s, revoked, { email: "a@example.com" });
    expect(expired.status).toBe(401);
    expect(expired.body.error).toMatchObject({ code: "api_key_expired", type: "invalid_request_error" });
  });

  it("works for a Connect OAuth token as for a secret key, each on its own account", async () => {
    const s = await stripe();
    const connect = await connectToken(s, "read_write");
    const key = await desk(s);
    const mine = await create(s, connect.token, { email: "connected@example.com" });
    expect(mine.status).toBe(200);
    // Another account's customer is no such customer.
    const elsewhere = await api(s, "GET", `/v1/customers/${mine.body.id as string}`, key);
    expect(elsewhere.status).toBe(404);
    // Once the platform disconnects the account, its token is refused.
    await fetch(`${s.url}/oauth/deauthorize`, {
      method: "POST",
      headers: { authorization: `Bearer ${s.clientSecret}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: s.clientId, stripe_user_id: connect.accountId }).toString(),
    });
    expect((await api(s, "GET", `/v1/customers/${mine.body.id as string}`, connect.token)).status).toBe(401);
  });

  it("keeps the customer across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await stripe({ persistence: store });
    const key = await desk(first);
    const created = await create(first, key, { email: "kept@example.com", "metadata[source]": "test" }, { "idempotency-key": "kept-1" });
    await first.close();

    const second = await stripe({ persistence: store });
    const read = await api(second, "GET", `/v1/customers/${created.body.id as string}`, key);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);
    // The saved answer of the idempotency key is kept too.
    const replay = await create(second, key, { email: "kept@example.com", "metadata[source]": "test" }, { "idempotency-key": "kept-1" });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body.id).toBe(created.body.id);
  });
});

describe("GET /v1/customers/{id} and GET /v1/customers", () => {
  it("answers 404 resource_missing for a customer it does not have", async () => {
    const s = await stripe();
    const key = await desk(s);
    const missing = await api(s, "GET", "/v1/customers/cus_nope", key);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: "resource_missing", doc_url: "https://stripe.com/docs/error-codes/resource-missing", message: "No such customer: 'cus_nope'", param: "id", type: "invalid_request_error" } });
  });

  it("lists newest first, a page at a time with limit and starting_after", async () => {
    const s = await stripe();
    const key = await desk(s);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create(s, key, { email: `c${i}@example.com` })).body.id as string);
    const newestFirst = [...ids].reverse();
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await api(s, "GET", `/v1/customers?limit=2${after ? `&starting_after=${after}` : ""}`, key);
      expect(page.status).toBe(200);
      expect(page.body).toMatchObject({ object: "list", url: "/v1/customers" });
      const data = page.body.data as { id: string }[];
      seen.push(...data.map((c) => c.id));
      if (!page.body.has_more) break;
      after = data.at(-1)?.id;
    }
    expect(seen).toEqual(newestFirst);
    const filtered = await api(s, "GET", "/v1/customers?email=c3%40example.com", key);
    expect((filtered.body.data as { id: string }[]).map((c) => c.id)).toEqual([ids[3]]);
    expect((await api(s, "GET", "/v1/customers?limit=101", key)).body).toEqual({ error: { message: "This value must be less than or equal to 100.", param: "limit", type: "invalid_request_error" } });
    expect((await api(s, "GET", "/v1/customers?starting_after=cus_nope", key)).body.error).toMatchObject({ code: "resource_missing", param: "starting_after" });
  });
});
