/**
 * The typed client against a test service: every family of routes through
 * it, typed answers, and each failure as the SDK's error class with the
 * HTTP status (the error body read, not guessed).
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { ApiError, AutoFlowClient } from "./index.js";
import { IntegrationError } from "../integrations/shared/errors.js";
import type { SlackHealth, StripeConnectionPublic } from "../integrations/connectorTypes.js";
import { injectFetch } from "../testing/injectFetch.js";
import { startHarness, type Harness } from "../testing/harness.js";

let h: Harness;
let client: AutoFlowClient;
const OPERATOR_TOKEN = "c".repeat(40);
beforeAll(async () => {
  h = await startHarness({ config: { operatorToken: OPERATOR_TOKEN } });
  client = new AutoFlowClient({ baseUrl: "http://127.0.0.1:3000", token: () => h.token("client-user"), fetch: injectFetch(h.service.app) });
});
afterAll(async () => {
  await h?.close();
});

const stripeKey = async () => (await h.sandbox("stripe", "/_sandbox/credentials?form=connect", { body: {} })) as { apiKey: string };

describe("the typed client", () => {
  it("lists the connectors with their action catalogues", async () => {
    const { providers } = await client.listProviders();
    expect(providers.map((p) => p.id).sort()).toEqual(["gmail", "hubspot", "jira", "linear", "sentry", "slack", "stripe", "teams"]);
    expect(providers.find((p) => p.id === "slack")?.actions.map((a) => a.name)).toContain("postMessage");
  });

  it("runs the lifecycle of a key connector: connect, list, test, health, action, proxy, disconnect", async () => {
    const connection = await client.connect("stripe", await stripeKey());
    expectTypeOf(connection).toEqualTypeOf<StripeConnectionPublic>();
    expect(connection).toMatchObject({ authMethod: "api_key", userId: "client-user", accountId: expect.stringMatching(/^acct_/) as unknown });
    expect((await client.listConnections("stripe")).connections.map((c) => c.id)).toContain(connection.id);
    expect(await client.testConnection("stripe", { connectionId: connection.id })).toMatchObject({ connectionId: connection.id });
    const health = await client.health("stripe", { connectionId: connection.id });
    expect(health).toMatchObject({ status: "ok", details: { auth: true, apiReachable: true, rateLimited: false } });
    const created = await client.runAction("stripe", "createCustomer", { email: "ada@example.com", name: "Ada" });
    expect(created).toMatchObject({ email: "ada@example.com" });
    const proxied = await client.proxy("stripe", { method: "GET", path: "/v1/customers", query: { limit: "1" } });
    expect(proxied.status).toBe(200);
    expect(proxied.connectionId).toBe(connection.id);
    expect((JSON.parse(new TextDecoder().decode(proxied.body)) as { object: string }).object).toBe("list");
    const overview = await client.listAllConnections();
    expect(overview.connections.find((c) => c.connection.id === connection.id)?.health?.status).toBe("ok");
    const gone = await client.disconnect("stripe", connection.id);
    expect(gone).toMatchObject({ disconnected: true, connection: { id: connection.id } });
  });

  it("starts an OAuth flow with the seed's four fields", async () => {
    const started = await client.startOAuth("slack");
    expect(Object.keys(started).sort()).toEqual(["authUrl", "codeVerifier", "expiresInSeconds", "state"]);
    const health = await client.health("slack");
    expectTypeOf(health).toEqualTypeOf<SlackHealth>();
    expect(health).toMatchObject({ status: "down", details: { errorType: "auth" } });
  });

  it("turns each error body into the SDK's error class with the HTTP status", async () => {
    const refused = await client.connect("stripe", { apiKey: "not-a-key" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toBeInstanceOf(IntegrationError);
    expect(refused).toMatchObject({ type: "schema", field: "apiKey", httpStatus: 400, retryable: false });
    const missing = await client.disconnect("stripe", "conn_nope").catch((e: unknown) => e);
    expect(missing).toMatchObject({ type: "schema", code: "connection_not_found", httpStatus: 404 });
    const anonymous = new AutoFlowClient({ baseUrl: "http://127.0.0.1:3000", fetch: injectFetch(h.service.app) });
    expect(await anonymous.listProviders().catch((e: unknown) => e)).toMatchObject({ type: "auth", code: "unauthenticated", httpStatus: 401 });
    // The operator view takes its own token, never a user's.
    expect(await client.operatorOverview().catch((e: unknown) => e)).toMatchObject({ type: "auth", httpStatus: 401 });
    const operator = new AutoFlowClient({ baseUrl: "http://127.0.0.1:3000", token: OPERATOR_TOKEN, fetch: injectFetch(h.service.app) });
    expect((await operator.operatorOverview({ limit: 5 })).connectors).toHaveLength(8);
  });

  it("answers a ticket update with what was sent and kept, typed", async () => {
    type Update = Awaited<ReturnType<typeof client.call<"updateTicket">>>;
    expectTypeOf<Update["sent"]>().toEqualTypeOf<string[]>();
    expectTypeOf<Update["kept"]>().toEqualTypeOf<string[]>();
  });

  it("says so when the service cannot be reached, or answers something that is not the error body", async () => {
    const down = new AutoFlowClient({ baseUrl: "http://127.0.0.1:1", token: "x" });
    expect(await down.call("liveness").catch((e: unknown) => e)).toMatchObject({ type: "network", code: "transport" });
    const proxyPage = new AutoFlowClient({ baseUrl: "http://127.0.0.1:3000", token: "x", fetch: (async () => new Response("<html>bad gateway</html>", { status: 502 })) as typeof fetch });
    expect(await proxyPage.call("liveness").catch((e: unknown) => e)).toMatchObject({ type: "upstream", httpStatus: 502, message: expect.stringMatching(/without the error body/) as unknown });
    expect(() => new AutoFlowClient({ baseUrl: "ftp://example" })).toThrow(/http or https/);
    expect(() => new AutoFlowClient({ baseUrl: "http://127.0.0.1:3000/base?x=1" })).toThrow(/no query or fragment/);
    await expect(client.call("disconnect", { params: { provider: "stripe", id: "" } })).rejects.toThrow(/path parameter id/);
    // A dot segment would be resolved away into another route: never sent.
    await expect(client.disconnect("stripe", "..")).rejects.toThrow(/cannot be "\.\."/);
    await expect(client.call("getTicket", { params: { key: "." } })).rejects.toThrow(/cannot be "\."/);
  });
});
