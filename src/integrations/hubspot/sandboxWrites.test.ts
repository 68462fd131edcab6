/**
 * The HubSpot sandbox's first write, creating a contact, with the reads
 * that go with it (one contact by id, the contacts a page at a time), as
 * HubSpot answers them: 201 with the system properties, 409 CONFLICT for a
 * known email, 400 VALIDATION_ERROR, 403 MISSING_SCOPES, 404
 * OBJECT_NOT_FOUND, 401 INVALID_AUTHENTICATION / EXPIRED_AUTHENTICATION.
 * @hubspot/api-client is not a dev dependency, so the SDK itself is not run
 * here; the calls are the ones its basicApi makes (JSON bodies, bearer).
 */
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import type { StartedSandbox } from "../../sandbox/kit.js";
import { startHubSpotSandbox } from "./sandbox.js";

type Json = Record<string, unknown>;
const REDIRECT = "http://localhost:3000/callback";

const hubspot = closedAfterEach(startHubSpotSandbox, { redirectUris: [REDIRECT] });

async function desk(sandbox: StartedSandbox, scopes?: string[]): Promise<string> {
  const response = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(scopes ? { scopes } : {}) });
  return ((await response.json()) as { accessToken: string }).accessToken;
}

/** An OAuth access token through the consent page and the token endpoint. */
async function oauthToken(sandbox: StartedSandbox, scopes: string[]): Promise<string> {
  const authorize = new URL(`${sandbox.url}/oauth/authorize`);
  authorize.search = new URLSearchParams({ client_id: sandbox.clientId, redirect_uri: REDIRECT, scope: scopes.join(" ") }).toString();
  const consent = await fetch(authorize, { redirect: "manual" });
  const code = new URL(consent.headers.get("location") as string).searchParams.get("code") as string;
  const token = await fetch(`${sandbox.url}/oauth/2026-03/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, client_id: sandbox.clientId, client_secret: sandbox.clientSecret }).toString(),
  });
  return ((await token.json()) as { access_token: string }).access_token;
}

async function api(sandbox: StartedSandbox, method: string, path: string, token: string | undefined, body?: unknown): Promise<{ status: number; headers: Headers; body: Json }> {
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: { connection: "close", ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Json) : {} };
}
const create = (s: StartedSandbox, token: string | undefined, properties: unknown) => api(s, "POST", "/crm/v3/objects/contacts", token, { properties });

describe("POST /crm/v3/objects/contacts", () => {
  it("creates a contact (201, system properties set) that GET by id then finds", async () => {
    const s = await hubspot();
    const token = await desk(s);
    const created = await create(s, token, { email: "Jane.Doe@Example.com", firstname: "Jane", lastname: "Doe", phone: 5550100 });
    expect(created.status).toBe(201);
    expect(created.headers.get("x-hubspot-correlation-id")).toMatch(/^[0-9a-f-]{36}$/);
    const id = created.body.id as string;
    expect(id).toMatch(/^\d+$/);
    expect(created.body).toMatchObject({
      properties: { email: "jane.doe@example.com", firstname: "Jane", lastname: "Doe", phone: "5550100", hs_object_id: id },
      archived: false,
    });
    const properties = created.body.properties as Json;
    expect(properties.createdate).toBe(created.body.createdAt);
    expect(properties.lastmodifieddate).toBe(created.body.updatedAt);
    expect(new Date(created.body.createdAt as string).toISOString()).toBe(created.body.createdAt);

    const read = await api(s, "GET", `/crm/v3/objects/contacts/${id}`, token);
    expect(read.status).toBe(200);
    // Without `properties`, the default six, an unset one as null.
    expect(read.body).toEqual({
      id,
      properties: { createdate: created.body.createdAt, email: "jane.doe@example.com", firstname: "Jane", hs_object_id: id, lastmodifieddate: created.body.updatedAt, lastname: "Doe" },
      createdAt: created.body.createdAt,
      updatedAt: created.body.updatedAt,
      archived: false,
    });
    const chosen = await api(s, "GET", `/crm/v3/objects/contacts/${id}?properties=phone,company`, token);
    expect(chosen.body.properties).toEqual({ company: null, createdate: created.body.createdAt, hs_object_id: id, lastmodifieddate: created.body.updatedAt, phone: "5550100" });
    const byEmail = await api(s, "GET", `/crm/v3/objects/contacts/jane.doe@example.com?idProperty=email`, token);
    expect(byEmail.body.id).toBe(id);
  });

  it("answers 409 CONFLICT for an email it already has, whatever its case", async () => {
    const s = await hubspot();
    const token = await desk(s);
    const first = await create(s, token, { email: "dup@example.com" });
    const again = await create(s, token, { email: "DUP@example.com", firstname: "Other" });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ status: "error", message: `Contact already exists. Existing ID: ${first.body.id as string}`, correlationId: expect.any(String), category: "CONFLICT" });
    expect(again.headers.get("x-hubspot-correlation-id")).toBe(again.body.correlationId);
  });

  it("answers 400 VALIDATION_ERROR for a bad email, an unknown property or no properties", async () => {
    const s = await hubspot();
    const token = await desk(s);
    const badEmail = await create(s, token, { email: "not-an-email" });
    expect(badEmail.status).toBe(400);
    expect(badEmail.body).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
    const listed = JSON.parse((badEmail.body.message as string).replace(/^Property values were not valid: /, "")) as Json[];
    expect(listed).toEqual([{ isValid: false, message: "Email address not-an-email is invalid", error: "INVALID_EMAIL", name: "email" }]);

    const unknown = await create(s, token, { email: "ok@example.com", favourite_colour: "blue" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toContain('"error":"PROPERTY_DOESNT_EXIST"');
    expect(unknown.body.message).toContain('Property \\"favourite_colour\\" does not exist');

    const none = await api(s, "POST", "/crm/v3/objects/contacts", token, { email: "flat@example.com" });
    expect(none.status).toBe(400);
    expect(none.body).toMatchObject({ category: "VALIDATION_ERROR", message: expect.stringContaining("some of required attributes are not set [properties]") });
    // Nothing was made by the refusals.
    expect(((await api(s, "GET", "/crm/v3/objects/contacts", token)).body.results as unknown[]).length).toBe(0);
  });

  it("needs crm.objects.contacts.write to create and crm.objects.contacts.read to read (403 MISSING_SCOPES)", async () => {
    const s = await hubspot();
    const reader = await desk(s, ["crm.objects.contacts.read"]);
    const refused = await create(s, reader, { email: "a@example.com" });
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      status: "error",
      message: "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
      correlationId: expect.any(String),
      errors: [{ message: "One or more of the following scopes are required.", context: { requiredScopes: ["crm.objects.contacts.write"] } }],
      links: { scopes: "https://developers.hubspot.com/scopes" },
      category: "MISSING_SCOPES",
    });
    const writer = await desk(s, ["crm.objects.contacts.write"]);
    const made = await create(s, writer, { email: "a@example.com" });
    expect(made.status).toBe(201);
    const unread = await api(s, "GET", `/crm/v3/objects/contacts/${made.body.id as string}`, writer);
    expect(unread.status).toBe(403);
    expect(unread.body.errors).toEqual([{ message: "One or more of the following scopes are required.", context: { requiredScopes: ["crm.objects.contacts.read"] } }]);
  });

  it("answers 401 for no token, an unknown or revoked one, and an expired OAuth token", async () => {
    const s = await hubspot({ accessTokenTtlSeconds: 1 });
    for (const token of [undefined, "pat-na1-00000000-0000-0000-0000-000000000000"]) {
      const answer = await create(s, token, { email: "x@example.com" });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ status: "error", category: "INVALID_AUTHENTICATION", message: expect.stringContaining("Authentication credentials not found") });
    }
    const oauth = await oauthToken(s, ["oauth", "crm.objects.contacts.write"]);
    expect((await create(s, oauth, { email: "oauth@example.com" })).status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const expired = await create(s, oauth, { email: "late@example.com" });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ category: "EXPIRED_AUTHENTICATION", message: expect.stringMatching(/^The OAuth token used to make this call expired \d+ second\(s\) ago\.$/) });

    const revoked = await desk(s);
    await fetch(`${s.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "revoke-all" }) });
    expect((await create(s, revoked, { email: "gone@example.com" })).status).toBe(401);
  });

  it("answers 404 OBJECT_NOT_FOUND for an id it does not have", async () => {
    const s = await hubspot();
    const token = await desk(s);
    const missing = await api(s, "GET", "/crm/v3/objects/contacts/999999999", token);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ status: "error", message: "Object not found.  objectId are usually numeric.", correlationId: expect.any(String), context: { id: ["999999999"] }, category: "OBJECT_NOT_FOUND" });
  });

  it("keeps the contact across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await hubspot({ persistence: store });
    const token = await desk(first);
    const created = await create(first, token, { email: "kept@example.com", firstname: "Kept" });
    await first.close();

    const second = await hubspot({ persistence: store });
    const read = await api(second, "GET", `/crm/v3/objects/contacts/${created.body.id as string}`, token);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: created.body.id, properties: { email: "kept@example.com", firstname: "Kept" } });
    // The id sequence carries on, and the address is still taken.
    const next = await create(second, token, { email: "next@example.com" });
    expect(Number(next.body.id)).toBeGreaterThan(Number(created.body.id));
    expect((await create(second, token, { email: "kept@example.com" })).status).toBe(409);
  });
});

describe("GET /crm/v3/objects/contacts", () => {
  it("pages with limit and paging.next.after, and the last page has no paging", async () => {
    const s = await hubspot();
    const token = await desk(s);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create(s, token, { email: `p${i}@example.com` })).body.id as string);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await api(s, "GET", `/crm/v3/objects/contacts?limit=2${after ? `&after=${encodeURIComponent(after)}` : ""}`, token);
      expect(page.status).toBe(200);
      pages += 1;
      const results = page.body.results as { id: string; properties: Json }[];
      expect(results.length).toBeLessThanOrEqual(2);
      expect(Object.keys(results[0]?.properties ?? {})).toEqual(["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"]);
      seen.push(...results.map((r) => r.id));
      const next = (page.body.paging as { next?: { after: string; link: string } } | undefined)?.next;
      if (next) expect(next.link).toContain(`after=${encodeURIComponent(next.after)}`);
      after = next?.after;
    } while (after);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);
    expect((await api(s, "GET", "/crm/v3/objects/contacts?limit=abc", token)).body).toMatchObject({ category: "VALIDATION_ERROR" });
  });
});
