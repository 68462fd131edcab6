/**
 * The operator view's route, the page's routes (headers, local sign-in and
 * when it is refused) and the signed-in user's connections with their
 * recorded health. The page itself is driven in a browser by
 * test/browser/connectPage.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceConfig } from "../config.js";
import { PROVIDER_IDS, type ProviderId } from "../integrations/registry.js";
import { testDatabases } from "../testing/databases.js";
import { startHarness, type Harness } from "../testing/harness.js";

/** What the page's own fetch of /ui/local-token carries, served at http://localhost:3000. */
const PAGE_HEADERS = { host: "localhost:3000", origin: "http://localhost:3000", "sec-fetch-site": "same-origin" };
const OPERATOR_TOKEN = "operator-token-for-tests-0123456789abcdef";
type Json = Record<string, unknown>;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config: { operatorToken: OPERATOR_TOKEN } });
});
afterAll(async () => {
  await h?.close();
});

async function connectKey(provider: ProviderId, user: string): Promise<string> {
  const credential = await h.sandbox(provider, "/_sandbox/credentials?form=connect", { body: {} });
  const res = await h.request({ method: "POST", url: `/api/integrations/${provider}/connections`, user, body: credential });
  expect(res.statusCode, res.body).toBe(201);
  return (res.json() as { id: string }).id;
}
/** A connection stored without any probe (as one made before health was recorded): its health is unknown. */
async function storedUnchecked(provider: ProviderId, userId: string): Promise<string> {
  const record = await h.service.store.vault.createConnection({
    userId,
    provider,
    authMethod: "api_key",
    accessToken: `sk_test_${"x".repeat(24)}`,
    tokenMasked: "sk_t****xxxx",
    scopes: [],
    metadata: { accountId: "acct_unchecked", livemode: false },
    tokenRefreshStatus: "not_applicable",
    createdAt: new Date().toISOString(),
  });
  return record.id;
}
const overview = async (query = "") => h.service.app.inject({ method: "GET", url: `/api/operator/overview${query}`, headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });

describe("the operator view", () => {
  it("answers only the operator token: not a user JWT, not nothing, not a near miss", async () => {
    expect((await h.service.app.inject({ method: "GET", url: "/api/operator/overview" })).statusCode).toBe(401);
    const asUser = await h.request({ method: "GET", url: "/api/operator/overview", user: "alice" });
    expect(asUser.statusCode).toBe(401);
    expect((asUser.json() as { error: Json }).error.message).toMatch(/user tokens are not accepted/);
    const nearMiss = await h.service.app.inject({ method: "GET", url: "/api/operator/overview", headers: { authorization: `Bearer ${OPERATOR_TOKEN.slice(0, -1)}x` } });
    expect(nearMiss.statusCode).toBe(401);
    expect((await overview()).statusCode).toBe(200);
    // The scheme is case-insensitive (RFC 9110 §11.1).
    expect((await h.service.app.inject({ method: "GET", url: "/api/operator/overview", headers: { authorization: `bearer ${OPERATOR_TOKEN}` } })).statusCode).toBe(200);
  });

  it("is off (404 saying how to turn it on) without a configured token", async () => {
    const off = await startHarness();
    try {
      const res = await off.service.app.inject({ method: "GET", url: "/api/operator/overview", headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
      expect(res.statusCode).toBe(404);
      expect((res.json() as { error: Json }).error).toMatchObject({ code: "operator_view_off", message: expect.stringMatching(/AUTOFLOW_OPERATOR_TOKEN/) as unknown });
    } finally {
      await off.close();
    }
  });

  it.each(testDatabases())("counts connections by connector and status and lists the down ones, refresh failures and owed revocations, on %s", async (database) => {
    const outer = h;
    h = await startHarness({ database, config: { operatorToken: OPERATOR_TOKEN } });
    try {
    const healthy = await connectKey("slack", "op-ok");
    expect((await h.request({ method: "POST", url: `/api/integrations/slack/test?connectionId=${healthy}`, user: "op-ok" })).statusCode).toBe(200);
    const broken = await connectKey("linear", "op-down");
    await h.sandbox("linear", "/_sandbox/faults", { body: { fault: "revoke-all" } });
    expect((await h.request({ method: "POST", url: `/api/integrations/linear/test?connectionId=${broken}`, user: "op-down" })).statusCode).toBe(424);
    await h.sandbox("linear", "/_sandbox/faults", { method: "DELETE" });
    const unchecked = await storedUnchecked("stripe", "op-new");
    const owed = await connectKey("slack", "op-owed");
    await h.sandbox("slack", "/_sandbox/faults", { body: { fault: "disconnect" } });
    expect((await h.request({ method: "DELETE", url: `/api/integrations/slack/connections/${owed}`, user: "op-owed" })).json()).toMatchObject({ revocation: "pending" });
    await h.sandbox("slack", "/_sandbox/faults", { method: "DELETE" });
    const failed = await connectKey("gmail", "op-refresh");
    await h.service.store.vault.setTokenRefreshStatus(failed, "failed");

    const res = await overview();
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.json() as {
      connectors: Array<{ provider: string; mode: string; connections: Record<string, number> }>;
      down: Json[];
      refreshFailures: Json[];
      owedRevocations: Json[];
      ticketSyncs: Json[];
    };
    expect(body.connectors.map((c) => c.provider)).toHaveLength(8);
    const of = (p: string) => body.connectors.find((c) => c.provider === p)?.connections;
    expect(of("slack")).toMatchObject({ ok: 1, total: 1 });
    expect(of("linear")).toMatchObject({ down: 1, total: 1 });
    expect(of("stripe")).toMatchObject({ unchecked: 1, total: 1 });
    // The disconnected Slack connection is not counted as active.
    expect(of("hubspot")).toMatchObject({ total: 0 });
    expect(body.connectors.every((c) => c.mode === "sandbox")).toBe(true);
    expect(body.down).toEqual([expect.objectContaining({ id: broken, provider: "linear", userId: "op-down", status: "down", errorType: "auth" })]);
    expect(body.refreshFailures).toEqual([expect.objectContaining({ id: failed, provider: "gmail", tokenRefreshStatus: "failed" })]);
    expect(body.owedRevocations).toEqual([expect.objectContaining({ id: owed, provider: "slack", userId: "op-owed", revocation: "pending" })]);
    expect(body.ticketSyncs).toEqual([]);
    // Nothing secret: no token of any connection appears.
    for (const [provider, user, id] of [["stripe", "op-new", unchecked], ["slack", "op-ok", healthy]] as const) {
      const record = await h.service.store.vault.findConnection({ userId: user, provider, id });
      const { accessToken } = await h.service.store.vault.readSecrets(record!);
      expect(res.body).not.toContain(accessToken);
    }
    // The /metrics gauge reads the same counts.
    const metrics = (await h.service.app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toMatch(/autoflow_connections\{provider="linear",status="down"\} 1/);
    expect(metrics).toMatch(/autoflow_connections\{provider="stripe",status="unchecked"\} 1/);
    // A connector with nothing in a status reads 0, not a missing series.
    expect(metrics).toMatch(/autoflow_connections\{provider="teams",status="down"\} 0/);
    // The lists are bounded by ?limit.
    const second = await connectKey("linear", "op-down-2");
    await h.sandbox("linear", "/_sandbox/faults", { body: { fault: "revoke-all" } });
    expect((await h.request({ method: "POST", url: `/api/integrations/linear/test?connectionId=${second}`, user: "op-down-2" })).statusCode).toBe(424);
    await h.sandbox("linear", "/_sandbox/faults", { method: "DELETE" });
    expect(((await overview()).json() as { down: Json[] }).down).toHaveLength(2);
    expect(((await overview("?limit=1")).json() as { down: Json[] }).down).toHaveLength(1);
    } finally {
      await h.close();
      h = outer;
    }
  });

  it("says what is wrong with a bad limit", async () => {
    const bad = await overview("?limit=0");
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as { error: Json }).error).toMatchObject({ field: "limit", message: expect.stringMatching(/at least 1/) as unknown });
    expect((await overview("?limit=1&other=1")).statusCode).toBe(400);
  });
});

describe("the signed-in user's connections with their recorded health", () => {
  it("lists each connection at every connector with the envelope last recorded (null before the first), reading no provider", async () => {
    const checked = await connectKey("sentry", "dash");
    expect((await h.request({ method: "GET", url: `/api/integrations/sentry/health?connectionId=${checked}`, user: "dash" })).statusCode).toBe(200);
    const fresh = await storedUnchecked("stripe", "dash");
    await h.sandbox("sentry", "/_sandbox/requests", { method: "DELETE" });
    const res = await h.request({ method: "GET", url: "/api/integrations/connections", user: "dash" });
    expect(res.statusCode, res.body).toBe(200);
    const { connections } = res.json() as { connections: Array<{ provider: string; connection: Json; health: Json | null }> };
    expect(connections.map((c) => [c.provider, c.connection.id])).toEqual([
      ["stripe", fresh],
      ["sentry", checked],
    ]);
    expect(connections[0]?.health).toBeNull();
    expect(connections[1]?.health).toMatchObject({ status: "ok", authMethod: "auth_token", details: { auth: true } });
    expect(await h.sandboxRequests("sentry")).toEqual([]);
    // Another user sees none of them.
    expect((await h.request({ method: "GET", url: "/api/integrations/connections", user: "someone-else" })).json()).toEqual({ connections: [] });
  });
});

describe("the page's routes", () => {
  it("serves the page and its files under a strict CSP, nothing inline", async () => {
    for (const url of ["/", "/admin", "/oauth/done", "/ui/app.js", "/ui/admin.js", "/ui/common.js", "/ui/page.css"]) {
      const res = await h.service.app.inject({ method: "GET", url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers["content-security-policy"]).toBe(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      );
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      if (url.endsWith(".html") || !url.startsWith("/ui/")) {
        expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
        expect(res.body).not.toMatch(/\sstyle=|\son\w+=/);
      }
    }
  });

  it("does not offer local sign-in with a configured AUTOFLOW_JWT_SECRET (one other services may share)", async () => {
    expect((await h.service.app.inject({ method: "GET", url: "/ui/config" })).json()).toMatchObject({ localSignIn: null, operatorView: true });
    expect((await h.service.app.inject({ method: "POST", url: "/ui/local-token", headers: PAGE_HEADERS })).statusCode).toBe(403);
  });

  describe("with the service's own secret and every connector a sandbox", () => {
    let own: Harness;
    beforeAll(async () => {
      own = await startHarness({ config: { jwtSecret: undefined } });
    });
    afterAll(async () => {
      await own?.close();
    });
    const mint = (headers: Record<string, string>, remoteAddress?: string) =>
      own.service.app.inject({ method: "POST", url: "/ui/local-token", headers, ...(remoteAddress ? { remoteAddress } : {}) });

    it("mints a token for the local user to the page on this machine, and it works", async () => {
      expect((await own.service.app.inject({ method: "GET", url: "/ui/config" })).json()).toMatchObject({ localSignIn: { userId: "local" }, operatorView: false });
      const res = await mint(PAGE_HEADERS);
      expect(res.statusCode, res.body).toBe(200);
      const minted = res.json() as { token: string; userId: string };
      expect(minted.userId).toBe("local");
      const listed = await own.service.app.inject({ method: "GET", url: "/api/integrations/connections", headers: { authorization: `Bearer ${minted.token}` } });
      expect(listed.statusCode).toBe(200);
    });

    it.each([
      ["another address than loopback", PAGE_HEADERS, "192.0.2.10", /loopback/],
      ["a forwarded request (a proxy on this machine)", { ...PAGE_HEADERS, "x-forwarded-for": "192.0.2.10" }, undefined, /proxy/],
      ["a rebound DNS name as Host", { host: "attacker.example:3000", origin: "http://attacker.example:3000" }, undefined, /host/],
      ["another page's Origin", { ...PAGE_HEADERS, origin: "http://evil.example" }, undefined, /Origin/],
      ["no Origin (not a page's fetch)", { host: "localhost:3000" }, undefined, /Origin/],
      ["a cross-site fetch", { ...PAGE_HEADERS, "sec-fetch-site": "cross-site" }, undefined, /same-origin/],
    ])("refuses %s", async (_what, headers, remoteAddress, reason) => {
      const res = await mint(headers, remoteAddress);
      expect(res.statusCode).toBe(403);
      expect((res.json() as { error: Json }).error).toMatchObject({ code: "local_sign_in_off", message: expect.stringMatching(reason) as unknown });
      expect(res.body).not.toMatch(/"token"/);
    });
  });

  it("offers no local sign-in when a connector is live", async () => {
    const providers = Object.fromEntries(PROVIDER_IDS.map((id) => [id, id === "slack" ? { clientId: "live-client", clientSecret: "live-secret" } : {}]));
    const live = await startHarness({ config: { jwtSecret: undefined, providers: providers as ServiceConfig["providers"] } });
    try {
      expect((await live.service.app.inject({ method: "GET", url: "/ui/config" })).json()).toMatchObject({ localSignIn: null, operatorView: false });
      const res = await live.service.app.inject({ method: "POST", url: "/ui/local-token", headers: PAGE_HEADERS });
      expect(res.statusCode).toBe(403);
      expect(res.body).not.toMatch(/"token"/);
    } finally {
      await live.close();
    }
  });
});
