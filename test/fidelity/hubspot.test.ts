/**
 * The official HubSpot client, @hubspot/api-client, pointed at the HubSpot
 * sandbox (`basePath`, no retries) and run unchanged: who-am-I (account
 * info, which has no typed API, through `apiRequest`), the create-a-contact
 * and find-contacts actions (basicApi.create, searchApi.doSearch with
 * filters, query, sorts and paging), and HubSpot's 409 and 400 parsed into
 * the client's ApiException.
 */
import { Client } from "@hubspot/api-client";
import { FilterOperatorEnum } from "@hubspot/api-client/lib/codegen/crm/contacts/index.js";
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../src/testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../src/testing/memorySandboxStore.js";
import type { StartedSandbox } from "../../src/sandbox/kit.js";
import { startHubSpotSandbox } from "../../src/integrations/hubspot/sandbox.js";

const hubspot = closedAfterEach(startHubSpotSandbox);

/** A private app token from the sandbox's credentials desk, as a portal's settings page hands one out. */
async function privateAppToken(sandbox: StartedSandbox, scopes: string[]): Promise<{ accessToken: string; hubId: number }> {
  const response = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes }) });
  expect(response.status).toBe(201);
  return (await response.json()) as { accessToken: string; hubId: number };
}

/** The client with api.hubapi.com moved to the sandbox, and no retries (a failure shows at once). */
function client(sandbox: StartedSandbox, accessToken: string): Client {
  return new Client({ accessToken, basePath: sandbox.url, numberOfApiCallRetries: 0 });
}

/** What an ApiException of the generated client carries. */
type ApiException = { code: number; body: { status?: string; message?: string; category?: string; correlationId?: string }; headers: Record<string, string> };

const READ_WRITE = ["crm.objects.contacts.read", "crm.objects.contacts.write"];

describe("@hubspot/api-client against the HubSpot sandbox", () => {
  it("account info through apiRequest names the portal the token belongs to", async () => {
    const s = await hubspot();
    const { accessToken, hubId } = await privateAppToken(s, READ_WRITE);
    const response = await client(s, accessToken).apiRequest({ method: "GET", path: "/account-info/v3/details" });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ portalId: hubId, accountType: "STANDARD", timeZone: expect.any(String), companyCurrency: "USD", dataHostingLocation: "na1" });
  });

  it("basicApi.create makes a contact that searchApi.doSearch finds by email (EQ) and by token", async () => {
    const s = await hubspot();
    const sdk = client(s, (await privateAppToken(s, READ_WRITE)).accessToken);
    const created = await sdk.crm.contacts.basicApi.create({ properties: { email: "Ada@Example.com", firstname: "Ada", lastname: "Lovelace", company: "Analytical Engines" }, associations: [] });
    expect(created.id).toMatch(/^\d+$/);
    expect(created.properties).toMatchObject({ email: "ada@example.com", firstname: "Ada", hs_object_id: created.id });
    // The generated client turns the ISO strings into Dates.
    expect(created.createdAt).toBeInstanceOf(Date);
    await sdk.crm.contacts.basicApi.create({ properties: { email: "grace@navy.example", firstname: "Grace", lastname: "Hopper" }, associations: [] });

    const byEmail = await sdk.crm.contacts.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: "email", operator: FilterOperatorEnum.Eq, value: "ada@example.com" }] }],
      properties: ["email", "firstname", "company"],
      limit: 10,
    });
    expect(byEmail.total).toBe(1);
    expect(byEmail.paging).toBeUndefined();
    expect(byEmail.results[0]?.id).toBe(created.id);
    expect(byEmail.results[0]?.properties).toMatchObject({ email: "ada@example.com", firstname: "Ada", company: "Analytical Engines", hs_object_id: created.id });
    expect(byEmail.results[0]?.archived).toBe(false);

    const byDomain = await sdk.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: "email", operator: FilterOperatorEnum.ContainsToken, value: "*@navy.example" }] }] });
    expect(byDomain.results.map((r) => r.properties.firstname)).toEqual(["Grace"]);

    // Groups are ORed; `query` looks through names, addresses and companies.
    const either = await sdk.crm.contacts.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: "firstname", operator: FilterOperatorEnum.Eq, value: "ada" }] }, { filters: [{ propertyName: "lastname", operator: FilterOperatorEnum.Eq, value: "Hopper" }] }],
    });
    expect(either.total).toBe(2);
    expect((await sdk.crm.contacts.searchApi.doSearch({ query: "analyt" })).results.map((r) => r.id)).toEqual([created.id]);
  });

  it("doSearch pages with paging.next.after and sorts by a property", async () => {
    const s = await hubspot();
    const sdk = client(s, (await privateAppToken(s, READ_WRITE)).accessToken);
    for (const name of ["Carol", "Alice", "Eve", "Bob", "Dave"]) {
      await sdk.crm.contacts.basicApi.create({ properties: { email: `${name.toLowerCase()}@example.com`, firstname: name, lifecyclestage: "lead" }, associations: [] });
    }
    const names: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await sdk.crm.contacts.searchApi.doSearch({
        filterGroups: [{ filters: [{ propertyName: "lifecyclestage", operator: FilterOperatorEnum.Eq, value: "lead" }] }],
        sorts: [JSON.stringify({ propertyName: "firstname", direction: "ASCENDING" })],
        properties: ["firstname"],
        limit: 2,
        ...(after ? { after } : {}),
      });
      expect(page.total).toBe(5);
      names.push(...page.results.map((r) => r.properties.firstname as string));
      after = page.paging?.next?.after;
      pages += 1;
    } while (after);
    expect(pages).toBe(3);
    expect(names).toEqual(["Alice", "Bob", "Carol", "Dave", "Eve"]);
  });

  it("a contact made before a restart on the same store is found by a search after it", async () => {
    const store = new MemorySandboxStore();
    const first = await hubspot({ persistence: store });
    const { accessToken } = await privateAppToken(first, READ_WRITE);
    const created = await client(first, accessToken).crm.contacts.basicApi.create({ properties: { email: "kept@example.com" }, associations: [] });
    await first.close();

    const second = await hubspot({ persistence: store });
    const found = await client(second, accessToken).crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: "email", operator: FilterOperatorEnum.Eq, value: "kept@example.com" }] }] });
    expect(found.results.map((r) => r.id)).toEqual([created.id]);
  });

  it("a second contact with the same email raises ApiException 409 with HubSpot's CONFLICT body", async () => {
    const s = await hubspot();
    const sdk = client(s, (await privateAppToken(s, READ_WRITE)).accessToken);
    const first = await sdk.crm.contacts.basicApi.create({ properties: { email: "dup@example.com" }, associations: [] });
    const error = (await sdk.crm.contacts.basicApi.create({ properties: { email: "dup@example.com" }, associations: [] }).catch((e: unknown) => e)) as ApiException;
    expect(error.code).toBe(409);
    expect(error.body).toMatchObject({ status: "error", category: "CONFLICT", message: `Contact already exists. Existing ID: ${first.id}`, correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(error.headers["x-hubspot-correlation-id"]).toBe(error.body.correlationId);
  });

  it("a bad filter raises ApiException 400 VALIDATION_ERROR; a token without the read scope 403 MISSING_SCOPES", async () => {
    const s = await hubspot();
    const sdk = client(s, (await privateAppToken(s, READ_WRITE)).accessToken);
    const between = (await sdk.crm.contacts.searchApi
      .doSearch({ filterGroups: [{ filters: [{ propertyName: "createdate", operator: FilterOperatorEnum.Between, value: "0" }] }] })
      .catch((e: unknown) => e)) as ApiException;
    expect(between.code).toBe(400);
    expect(between.body).toMatchObject({ status: "error", category: "VALIDATION_ERROR", message: expect.stringMatching(/^Invalid input JSON on line 1, column \d+: .*operator BETWEEN requires a highValue$/) });

    const writeOnly = client(s, (await privateAppToken(s, ["crm.objects.contacts.write"])).accessToken);
    const forbidden = (await writeOnly.crm.contacts.searchApi.doSearch({}).catch((e: unknown) => e)) as ApiException;
    expect(forbidden.code).toBe(403);
    expect(forbidden.body).toMatchObject({ category: "MISSING_SCOPES" });
  });
});
