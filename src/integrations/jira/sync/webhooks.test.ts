/**
 * The ticket sync's webhooks against the Jira sandbox, which delivers them
 * for real: the harness does not listen, so a loopback relay is the
 * service's public URL and hands each delivery (headers and raw body) to the
 * service. A change and a delete made in Jira land in the mirror by
 * webhook, once; a repeated delivery changes nothing; unsigned, wrongly
 * signed and unattributable deliveries are refused and change nothing; the
 * registration shows with its expiry, is refreshed well before it lapses,
 * is replaced by a new configuration, and is refused past Jira's per-user
 * cap while polling goes on.
 */
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import { SignJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../../config.js";
import type { Harness } from "../../../testing/harness.js";
import { connectJira as connectAs, startSyncHarness } from "../../../testing/jiraSync.js";
import { adminWebhookKey } from "./webhookAuth.js";
import { expirationMs, webhookFilterProblem } from "./webhooks.js";

type Json = Record<string, unknown>;
const USER = "hook-user";
const API = "/api/integrations/jira";
const HOOKS = `${API}/webhooks`;
const DAY = 86_400_000;
const ADMIN_SECRET = "admin-webhook-secret-0123456789";

type Captured = { url: string; headers: Record<string, string>; body: Buffer };

/** The service's public URL: receives the sandbox's deliveries on 127.0.0.1 and hands each to the service (unless held). */
async function startRelay() {
  const relay = {
    url: "",
    target: undefined as Harness | undefined,
    /** Held deliveries are answered 200 and kept, not handed on. */
    hold: false,
    captured: [] as Captured[],
    answers: [] as Array<{ status: number; body: Json }>,
    server: undefined as Server | undefined,
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string") headers[name] = value;
      const delivery: Captured = { url: req.url ?? "/", headers, body: Buffer.concat(chunks) };
      relay.captured.push(delivery);
      if (relay.hold || !relay.target) {
        res.writeHead(200).end();
        return;
      }
      void deliver(relay.target, delivery).then(
        (answer) => {
          relay.answers.push({ status: answer.statusCode, body: answer.json() as Json });
          res.writeHead(answer.statusCode, { "content-type": "application/json" }).end(answer.body);
        },
        () => res.writeHead(500).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  relay.server = server;
  relay.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return relay;
}

/** One delivery to the service, as it came or with headers changed (undefined removes one). */
function deliver(h: Harness, d: Captured, change: { headers?: Record<string, string | undefined>; url?: string; body?: Buffer } = {}) {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...d.headers, ...change.headers })) {
    if (value !== undefined && !["host", "connection", "content-length", "transfer-encoding"].includes(name)) headers[name] = value;
  }
  return h.service.app.inject({ method: "POST", url: change.url ?? d.url, headers, payload: change.body ?? d.body });
}

/** Connects Jira for this file's user (or another). */
const connectJira = (h: Harness, user = USER): Promise<string> => connectAs(h, user);

describe("Jira ticket sync webhooks", () => {
  let h: Harness;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  /** The sandbox's clock runs this far ahead of real time (the service's moves with it through h.clock). */
  let shiftMs = 0;
  beforeEach(async () => {
    shiftMs = 0;
    relay = await startRelay();
    h = await startSyncHarness({
      config: { publicUrl: relay.url, jiraWebhookSecret: ADMIN_SECRET },
      sandboxOptions: { jira: { now: () => Date.now() + shiftMs, webhookRetryDelaysMs: [] } },
    });
    relay.target = h;
  });
  afterEach(async () => {
    await h.close();
    await new Promise((resolve) => relay.server?.close(resolve));
  });
  const call = (method: "GET" | "POST" | "PUT", url: string, body?: unknown, user = USER) => h.request({ method, url, user, ...(body === undefined ? {} : { body }) });
  const put = (body: unknown, user = USER) => call("PUT", `${API}/sync/config`, body, user);
  const status = async (user = USER) => (await call("GET", `${API}/sync`, undefined, user)).json() as { webhooks: Json | null };
  const create = async (summary: string) => {
    const res = await call("POST", `${API}/actions/createIssue`, { projectKey: "SBX", summary });
    expect(res.statusCode, res.body).toBe(200);
  };
  const patch = (key: string, fields: Json) => h.sandbox("jira", `/_sandbox/jira/issues/${key}`, { method: "PATCH", body: { fields } });
  /** The sandbox's delivery log once nothing is pending. */
  const deliveries = async () => {
    const log = (await h.sandbox("jira", "/_sandbox/jira/deliveries?waitMs=10000", { method: "GET" })) as { pending: number; deliveries: Json[] };
    expect(log.pending).toBe(0);
    return log.deliveries;
  };
  const forgetDeliveries = () => h.sandbox("jira", "/_sandbox/jira/deliveries", { method: "DELETE" });
  const ticket = async (key: string) => ((await call("GET", `${API}/tickets/${key}`)).json() as { ticket: Json }).ticket;
  const feed = async (after: number) => ((await call("GET", `${API}/tickets/events?after=${after}&limit=1000`)).json() as { events: Json[]; next: number });
  const issueGets = async () => (await h.sandboxRequests("jira")).filter((r) => r.method === "GET" && /\/rest\/api\/3\/issue\/[^/]+$/.test(r.path.split("?")[0] ?? ""));
  const clearRequests = () => h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
  /** Moves the sandbox's clock and the service's together. */
  const advance = (ms: number) => {
    shiftMs += ms;
    h.clock.advance(ms);
  };

  it("registers a webhook, applies a change and a delete made in Jira once each, and drops a repeated delivery", async () => {
    await connectJira(h);
    await create("Issue 1");
    const configured = await put({ projects: ["SBX"] });
    expect(configured.statusCode, configured.body).toBe(200);
    const hooks = (await status()).webhooks as Json;
    expect(hooks).toMatchObject({ kind: "dynamic", status: "registered", ids: [expect.any(Number)], jqlFilter: 'project in ("SBX")', url: `${relay.url}${HOOKS}`, events: ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"] });
    expect(Date.parse(hooks.expirationDate as string)).toBe(hooks.expiresAtMs);
    expect(Math.abs((hooks.expiresAtMs as number) - (Date.now() + 30 * DAY))).toBeLessThan(60_000);
    expect((await call("POST", `${API}/sync`)).statusCode).toBe(200);
    const start = (await feed(0)).next;

    // A create in Jira: a new ticket, by webhook.
    await create("Issue 2");
    expect((await deliveries()).map((d) => d.webhookEvent)).toEqual(["jira:issue_created"]);
    expect(relay.answers.at(-1)).toEqual({ status: 200, body: { received: true, duplicate: false, via: "jwt", outcomes: ["created"] } });
    expect(await ticket("SBX-2")).toMatchObject({ summary: "Issue 2", deletedAt: null });

    // A change made in Jira by someone else: fetched again and applied, one event.
    await forgetDeliveries();
    await patch("SBX-1", { summary: "Changed in Jira" });
    expect((await deliveries()).map((d) => [d.webhookEvent, d.status])).toEqual([["jira:issue_updated", "delivered"]]);
    expect(relay.answers.at(-1)?.body).toMatchObject({ duplicate: false, outcomes: ["updated"] });
    expect(await ticket("SBX-1")).toMatchObject({ summary: "Changed in Jira" });
    const changed = await feed(start);
    expect(changed.events.map((e) => [e.kind, e.key, e.origin])).toEqual([
      ["created", "SBX-2", "webhook"],
      ["updated", "SBX-1", "webhook"],
    ]);
    expect(changed.events[1]?.changedFields).toContain("summary");

    // The same delivery again (Jira's retry of one it thinks was lost): taken for a duplicate, not even fetched.
    await clearRequests();
    const again = await deliver(h, relay.captured.at(-1) as Captured);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ received: true, duplicate: true, via: "jwt", outcomes: [] });
    expect(await issueGets()).toEqual([]);
    expect((await feed(changed.next)).events).toEqual([]);

    // A pull afterwards finds nothing new: the webhook's change is not applied twice.
    const pulled = (await call("POST", `${API}/sync`)).json() as { run: { counts: Json } };
    expect(pulled.run.counts).toMatchObject({ created: 0, updated: 0 });

    // A delete in Jira.
    await forgetDeliveries();
    await h.sandbox("jira", "/_sandbox/jira/issues/SBX-2", { method: "DELETE" });
    expect((await deliveries()).map((d) => d.webhookEvent)).toEqual(["jira:issue_deleted"]);
    expect(relay.answers.at(-1)?.body).toMatchObject({ outcomes: ["deleted"] });
    expect((await ticket("SBX-2")).deletedAt).toEqual(expect.any(String));
    expect((await feed(changed.next)).events.map((e) => [e.kind, e.key, e.origin])).toEqual([["deleted", "SBX-2", "webhook"]]);
  });

  it("refuses an unsigned, wrongly signed, wrongly HMAC'd or unattributable delivery, changing nothing", async () => {
    const connectionId = await connectJira(h);
    await create("Issue 1");
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    expect((await call("POST", `${API}/sync`)).statusCode).toBe(200);
    const hooks = (await status()).webhooks as { ids: number[]; site: { id: string } };
    const before = (await feed(0)).next;

    // The sandbox sends a real change; the relay keeps it back.
    relay.hold = true;
    await patch("SBX-1", { summary: "Changed in Jira" });
    await deliveries();
    const genuine = relay.captured.at(-1) as Captured;
    expect(JSON.parse(genuine.body.toString("utf8"))).toMatchObject({ webhookEvent: "jira:issue_updated", issue: { key: "SBX-1" } });
    await clearRequests();

    const seconds = Math.floor(Date.now() / 1000);
    const jwt = (secret: string, claims: Json = { context: { cloudId: hooks.site.id } }) =>
      new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt(seconds).setExpirationTime(seconds + 300).sign(new TextEncoder().encode(secret));
    /** An admin webhook's signature: under `secret` itself, or under a connection's key derived from it. */
    const hmac = (secret: string, body: Buffer = genuine.body, forConnection: string | null = connectionId) =>
      `sha256=${createHmac("sha256", forConnection === null ? secret : adminWebhookKey(secret, forConnection)).update(body).digest("hex")}`;
    const appSecret = h.service.integrations.jira.settings.clientSecret;
    const withIds = (ids: number[]) => Buffer.from(JSON.stringify({ ...(JSON.parse(genuine.body.toString("utf8")) as Json), matchedWebhookIds: ids }));
    const refusals: Array<[string, Parameters<typeof deliver>[2], number, string]> = [
      ["unsigned", { headers: { authorization: undefined } }, 401, "webhook_unverified"],
      ["not a JWT", { headers: { authorization: "Bearer not-a-jwt" } }, 401, "webhook_unverified"],
      ["a JWT under another secret", { headers: { authorization: `Bearer ${await jwt("another-apps-client-secret-0123456789")}` } }, 401, "webhook_unverified"],
      ["an expired JWT", { headers: { authorization: `Bearer ${await new SignJWT({ context: { cloudId: hooks.site.id } }).setProtectedHeader({ alg: "HS256" }).setIssuedAt(seconds - 3600).setExpirationTime(seconds - 1800).sign(new TextEncoder().encode(appSecret))}` } }, 401, "webhook_unverified"],
      ["an HMAC under another secret", { url: `${HOOKS}?connectionId=${connectionId}`, headers: { authorization: undefined, "x-hub-signature": hmac("another-secret-0123456789") } }, 401, "webhook_unverified"],
      ["an HMAC of another body", { url: `${HOOKS}?connectionId=${connectionId}`, headers: { authorization: undefined, "x-hub-signature": hmac(ADMIN_SECRET, Buffer.from("{}")) } }, 401, "webhook_unverified"],
      ["a malformed HMAC", { url: `${HOOKS}?connectionId=${connectionId}`, headers: { authorization: undefined, "x-hub-signature": "sha256=abc" } }, 401, "webhook_unverified"],
      ["an HMAC without its connection", { headers: { authorization: undefined, "x-hub-signature": hmac(ADMIN_SECRET) } }, 403, "webhook_unattributable"],
      ["an HMAC for an unknown connection", { url: `${HOOKS}?connectionId=00000000-0000-4000-8000-000000000000`, headers: { authorization: undefined, "x-hub-signature": hmac(ADMIN_SECRET, genuine.body, "00000000-0000-4000-8000-000000000000") } }, 404, "connection_not_found"],
      // One connection's key does not sign for another (a tenant's Jira admin cannot reach another's sync).
      ["an HMAC under another connection's key", { url: `${HOOKS}?connectionId=${connectionId}`, headers: { authorization: undefined, "x-hub-signature": hmac(ADMIN_SECRET, genuine.body, "conn_someone-else") } }, 401, "webhook_unverified"],
      ["an HMAC under the operator's secret itself", { url: `${HOOKS}?connectionId=${connectionId}`, headers: { authorization: undefined, "x-hub-signature": hmac(ADMIN_SECRET, genuine.body, null) } }, 401, "webhook_unverified"],
      ["a webhook id no connection registered", { body: withIds([424242]), headers: { authorization: `Bearer ${await jwt(appSecret)}` } }, 403, "webhook_unattributable"],
      ["another site's cloud id", { headers: { authorization: `Bearer ${await jwt(appSecret, { context: { cloudId: "00000000-0000-4000-8000-000000000000" } })}` } }, 403, "webhook_unattributable"],
    ];
    for (const [what, change, code, errorCode] of refusals) {
      const res = await deliver(h, genuine, change);
      expect(res.statusCode, `${what}: ${res.body}`).toBe(code);
      expect((res.json() as { error: Json }).error, what).toMatchObject({ code: errorCode, provider: "jira" });
    }
    // A body that is not a delivery, under a good signature: refused naming what is wrong.
    const adminUrl = `${HOOKS}?connectionId=${connectionId}`;
    const junk = Buffer.from("not json");
    const notJson = await deliver(h, genuine, { url: adminUrl, body: junk, headers: { authorization: undefined, "x-hub-signature": hmac(ADMIN_SECRET, junk) } });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({ error: { type: "schema", field: "body" } });
    const wrongShape = Buffer.from(JSON.stringify({ webhookEvent: 5 }));
    const shaped = await deliver(h, genuine, { url: adminUrl, body: wrongShape, headers: { authorization: undefined, "x-hub-signature": hmac(ADMIN_SECRET, wrongShape) } });
    expect(shaped.json()).toMatchObject({ error: { type: "schema", field: "body.webhookEvent" } });
    const textual = await deliver(h, genuine, { headers: { "content-type": "text/plain" } });
    expect(textual.statusCode).toBe(415);
    expect((await deliver(h, genuine, { url: `${HOOKS}?connectionId=%00` })).json()).toMatchObject({ error: { type: "schema", field: "connectionId" } });

    // Nothing changed, nothing was even fetched.
    expect(await ticket("SBX-1")).toMatchObject({ summary: "Issue 1" });
    expect((await feed(before)).events).toEqual([]);
    expect(await issueGets()).toEqual([]);

    // The genuine delivery carries a change: refused ones would have made it.
    const accepted = await deliver(h, genuine);
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(await ticket("SBX-1")).toMatchObject({ summary: "Changed in Jira" });
    expect((await feed(before)).events).toHaveLength(1);

    // An admin webhook's delivery under the operator's secret, attributed by ?connectionId.
    await patch("SBX-1", { summary: "Changed by an admin webhook" });
    await deliveries();
    const admin = relay.captured.at(-1) as Captured;
    const res = await deliver(h, admin, { url: `${HOOKS}?connectionId=${connectionId}`, headers: { authorization: undefined, "x-hub-signature": hmac(ADMIN_SECRET, admin.body) } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ via: "hmac", outcomes: ["updated"] });
    expect(await ticket("SBX-1")).toMatchObject({ summary: "Changed by an admin webhook" });
  });

  it("refreshes the registration well before it lapses, and a new configuration replaces it", async () => {
    await connectJira(h);
    await create("Issue 1");
    expect((await put({ projects: ["SBX"] })).statusCode).toBe(200);
    const first = (await status()).webhooks as { ids: number[]; expiresAtMs: number; refreshedAt: string | null };
    // Thirty days left: the tick leaves it.
    await h.service.ticketSync.runDue();
    expect((await status()).webhooks).toMatchObject({ expiresAtMs: first.expiresAtMs, refreshedAt: null });

    // Nineteen days left: refreshed to thirty from now.
    advance(11 * DAY);
    await h.service.ticketSync.runDue();
    const refreshed = (await status()).webhooks as { ids: number[]; expiresAtMs: number; refreshedAt: string; error: string | null };
    expect(refreshed).toMatchObject({ ids: first.ids, refreshedAt: expect.any(String), error: null });
    expect(refreshed.expiresAtMs - first.expiresAtMs).toBeGreaterThanOrEqual(11 * DAY - 60_000);

    // Past the first thirty days the webhook still delivers, because it was refreshed.
    advance(25 * DAY);
    await forgetDeliveries();
    await patch("SBX-1", { summary: "After 36 days" });
    expect((await deliveries()).map((d) => [d.webhookIds, d.status])).toEqual([[first.ids, "delivered"]]);
    expect(await ticket("SBX-1")).toMatchObject({ summary: "After 36 days" });

    // A new configuration: the old webhook is deleted, a new one carries the new filter.
    await clearRequests();
    const jql = "project = SBX AND status != Done";
    expect((await put({ jql })).statusCode).toBe(200);
    const second = (await status()).webhooks as { ids: number[]; jqlFilter: string; expiresAtMs: number };
    expect(second).toMatchObject({ status: "registered", ids: [expect.any(Number)], jqlFilter: jql, refreshedAt: null });
    expect((await h.sandboxRequests("jira")).filter((r) => r.path.endsWith("/rest/api/3/webhook")).map((r) => r.method)).toEqual(["DELETE", "POST", "GET"]);
    await forgetDeliveries();
    await patch("SBX-1", { summary: "Under the new filter" });
    expect((await deliveries()).map((d) => d.webhookIds)).toEqual([second.ids]);
    // An issue the new filter leaves out (Done) is delivered by no webhook: the old one, which took it, is gone.
    await forgetDeliveries();
    await patch("SBX-1", { status: "Done" });
    expect(await deliveries()).toEqual([]);

    // A filter beyond Jira's webhook subset: none registered (the old one deleted), polling still runs.
    expect((await put({ jql: 'project = SBX AND summary ~ "deploy"' })).statusCode).toBe(200);
    expect((await status()).webhooks).toMatchObject({ status: "unsupported", ids: [], note: expect.stringContaining("summary") });
    await forgetDeliveries();
    await patch("SBX-1", { summary: "No webhook now" });
    expect(await deliveries()).toEqual([]);
    expect((await call("POST", `${API}/sync`)).statusCode).toBe(200);
  });

  it("takes an API-token connection's admin webhook under its own key (derived from the operator's secret), by its connectionId", async () => {
    const desk = (await h.sandbox("jira", "/_sandbox/credentials?form=connect", { body: {} })) as Json;
    const connected = await h.request({ method: "POST", url: `${API}/connections`, user: USER, body: desk });
    expect(connected.statusCode, connected.body).toBe(201);
    const connectionId = (connected.json() as Json).id as string;
    await create("Issue 1");
    const configured = await put({ projects: ["SBX"] });
    expect(configured.json()).toMatchObject({ webhooks: { kind: "admin", url: `${relay.url}${HOOKS}?connectionId=${connectionId}`, secretConfigured: true } });
    expect((await status()).webhooks).toMatchObject({ kind: "admin" });
    expect((await call("POST", `${API}/sync`)).statusCode).toBe(200);
    const issueId = (await ticket("SBX-1")).id as string;

    // A change in Jira: no dynamic webhook here, so the admin webhook (sent by hand, as Jira would) brings it.
    await patch("SBX-1", { summary: "Changed in Jira" });
    expect(await deliveries()).toEqual([]);
    const body = Buffer.from(JSON.stringify({ timestamp: Date.now(), webhookEvent: "jira:issue_updated", issue: { id: issueId, key: "SBX-1" } }));
    const admin: Captured = { url: `${HOOKS}?connectionId=${connectionId}`, headers: { "content-type": "application/json", "x-atlassian-webhook-identifier": "admin-1" }, body };
    const refused = await deliver(h, admin, { headers: { "x-hub-signature": `sha256=${createHmac("sha256", adminWebhookKey("not-the-operators-secret", connectionId)).update(body).digest("hex")}` } });
    expect(refused.statusCode).toBe(401);
    expect(await ticket("SBX-1")).toMatchObject({ summary: "Issue 1" });
    // The connection's own key, as GET .../sync shows it to its owner.
    const key = ((await status()).webhooks as Json).secret as string;
    expect(key).toBe(adminWebhookKey(ADMIN_SECRET, connectionId));
    const res = await deliver(h, admin, { headers: { "x-hub-signature": `sha256=${createHmac("sha256", key).update(body).digest("hex")}` } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ received: true, duplicate: false, via: "hmac", outcomes: ["updated"] });
    expect(await ticket("SBX-1")).toMatchObject({ summary: "Changed in Jira" });

    // A delete event is checked against Jira: the issue is still there, so nothing is deleted.
    const claimed = Buffer.from(JSON.stringify({ webhookEvent: "jira:issue_deleted", issue: { id: issueId } }));
    const gone = await deliver(h, { ...admin, body: claimed }, { headers: { "x-atlassian-webhook-identifier": "admin-2", "x-hub-signature": `sha256=${createHmac("sha256", key).update(claimed).digest("hex")}` } });
    expect(gone.json()).toMatchObject({ outcomes: ["unchanged"] });
    expect((await ticket("SBX-1")).deletedAt).toBeNull();
  });

  it("says so when Jira's per-user cap refuses a registration, and polling still runs; one delivery serves every connection it names", async () => {
    const users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    for (const user of users) {
      await connectJira(h, user);
      expect((await put({ projects: ["SBX"] }, user)).statusCode).toBe(200);
    }
    for (const user of users.slice(0, 5)) expect((await status(user)).webhooks).toMatchObject({ status: "registered" });
    expect((await status("u6")).webhooks).toMatchObject({ status: "failed", ids: [], error: expect.stringContaining("maximum number of webhooks") });
    await create("Issue 1").catch(() => undefined);
    const res = await call("POST", `${API}/sync`, undefined, "u6");
    expect(res.statusCode, res.body).toBe(200);

    // The sandbox's one delivery for the change names the five webhooks: each connection applies it.
    await forgetDeliveries();
    await h.sandbox("jira", "/_sandbox/jira/issues", { body: { count: 1, fields: { summary: "Seeded" } } });
    const [delivery] = await deliveries();
    expect((delivery?.webhookIds as number[]).length).toBe(5);
    expect(relay.answers.at(-1)?.body).toMatchObject({ outcomes: ["created", "created", "created", "created", "created"] });
  });
});

describe("webhook filter subset, expiry dates and the admin secret", () => {
  it("reads AUTOFLOW_JIRA_WEBHOOK_SECRET, refusing a short one by name", () => {
    expect(loadConfig({ AUTOFLOW_JIRA_WEBHOOK_SECRET: ADMIN_SECRET }).jiraWebhookSecret).toBe(ADMIN_SECRET);
    expect(loadConfig({}).jiraWebhookSecret).toBeUndefined();
    expect(() => loadConfig({ AUTOFLOW_JIRA_WEBHOOK_SECRET: "short" })).toThrow(/AUTOFLOW_JIRA_WEBHOOK_SECRET: must be at least 16 characters/);
  });

  it("tells a JQL filter Jira takes for a webhook from one it does not", () => {
    for (const jql of ["project = SBX", 'project in ("SBX", OPS) AND status != Done', "(issuetype = Bug OR issuetype = Task) AND assignee = 5b10ac8d82e05b22cc7d4ef5", "issueKey NOT IN (SBX-1, SBX-2)"]) {
      expect(webhookFilterProblem(jql), jql).toBeUndefined();
    }
    for (const jql of ['summary ~ "x"', "project = SBX AND updated > -1d", "assignee = currentUser()", "NOT project = SBX", "assignee IS EMPTY", "project = SBX ORDER BY key", "labels = x", "project = (SBX"]) {
      expect(webhookFilterProblem(jql), jql).toEqual(expect.any(String));
    }
  });

  it("reads expirationDate as epoch ms or as Jira's ISO string", () => {
    expect(expirationMs(1_700_000_000_000)).toBe(1_700_000_000_000);
    expect(expirationMs("1700000000000")).toBe(1_700_000_000_000);
    expect(expirationMs("2019-06-01T12:42:30.000+0000")).toBe(Date.parse("2019-06-01T12:42:30.000Z"));
    expect(expirationMs("2019-06-01T14:42:30.000+0200")).toBe(Date.parse("2019-06-01T12:42:30.000Z"));
    expect(expirationMs("soon")).toBeUndefined();
    expect(expirationMs(null)).toBeUndefined();
  });
});
