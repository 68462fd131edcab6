/**
 * OAuth client checks beyond the contract suite (RFC 9700): no open redirect
 * after the callback, no code or token in any URL the service builds for the
 * browser; and isolation: user B can do nothing to user A's connections or
 * OAuth states.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROVIDER_IDS } from "../integrations/registry.js";
import { cookieHeader, startHarness, type Harness } from "../testing/harness.js";

type Json = Record<string, unknown>;
const RETURN_BASE = "https://app.autoflow.test/settings/integrations";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config: { oauthReturnUrls: [RETURN_BASE] } });
});
afterAll(async () => {
  await h?.close();
});

async function start(provider: string, user: string, body?: Json) {
  return h.request({ method: "POST", url: `/api/integrations/${provider}/oauth/start`, user, ...(body ? { body } : {}) });
}
/** The flow's binding cookie, as the browser that began it holds it. */
function cookieOf(res: { headers: Record<string, string | string[] | number | undefined> }): { cookie: string } {
  return { cookie: cookieHeader(res.headers["set-cookie"]) };
}
async function consent(authUrl: string): Promise<URL> {
  const res = await fetch(authUrl, { redirect: "manual" });
  return new URL(res.headers.get("location") as string);
}

describe("return address after the callback", () => {
  it.each([
    ["https://evil.test/settings/integrations", "another origin"],
    ["https://app.autoflow.test/settings/integrationsX", "a sibling path"],
    ["https://app.autoflow.test/admin", "another path"],
    ["http://app.autoflow.test/settings/integrations", "another scheme"],
    ["https://user:pw@app.autoflow.test/settings/integrations", "credentials"],
    ["javascript:alert(1)", "a script URL"],
    ["//evil.test", "a relative URL"],
  ])("refuses %s (%s) when the flow begins", async (returnTo) => {
    const res = await start("slack", "alice", { returnTo });
    expect(res.statusCode).toBe(400);
    expect((res.json() as { error: Json }).error).toMatchObject({ type: "schema", field: "returnTo" });
  });

  it("sends the browser to an allow-listed address with the outcome only, never a code or token", async () => {
    const started = await start("slack", "alice", { returnTo: `${RETURN_BASE}/slack?tab=2` });
    const begun = started.json() as Json;
    const callback = await consent(begun.authUrl as string);
    const res = await h.request({ method: "GET", url: callback.pathname + callback.search, headers: cookieOf(started) });
    expect(res.statusCode).toBe(303);
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
    const location = new URL(res.headers.location as string);
    expect(`${location.origin}${location.pathname}`).toBe(`${RETURN_BASE}/slack`);
    expect(location.searchParams.get("tab")).toBe("2");
    expect(location.searchParams.get("status")).toBe("connected");
    expect(location.searchParams.get("connectionId")).toMatch(/^conn_/);
    const code = callback.searchParams.get("code") as string;
    const record = await h.service.store.vault.findConnection({ userId: "alice", provider: "slack", id: location.searchParams.get("connectionId") as string });
    const { accessToken } = await h.service.store.vault.readSecrets(record!);
    for (const secret of [code, begun.state as string, begun.codeVerifier as string, accessToken]) expect(location.toString()).not.toContain(secret);
  });

  it("reports a failed flow to the return address, and never lets the callback request choose it", async () => {
    const started = await start("stripe", "alice", { returnTo: RETURN_BASE });
    const begun = started.json() as Json;
    const callback = await consent(begun.authUrl as string);
    expect((await h.request({ method: "GET", url: callback.pathname + callback.search, headers: cookieOf(started) })).statusCode).toBe(303);
    // Replayed: an error, still to the sealed address.
    const replay = await h.request({
      method: "GET",
      url: `${callback.pathname}${callback.search}&returnTo=https://evil.test&redirect_uri=https://evil.test`,
      headers: cookieOf(started),
    });
    expect(replay.statusCode).toBe(303);
    const location = new URL(replay.headers.location as string);
    expect(location.origin).toBe("https://app.autoflow.test");
    expect(location.searchParams.get("status")).toBe("error");
    expect(location.searchParams.get("error")).toBe("state_reused");
  });

  it("reports a callback from a browser without the flow's cookie to the return address, and exchanges nothing", async () => {
    // Stripe has no PKCE: before the binding, an attacker's own code with this state connected the attacker's account.
    const begun = (await start("stripe", "alice", { returnTo: RETURN_BASE })).json() as Json;
    const attackerCode = (await consent(((await start("stripe", "mallory")).json() as Json).authUrl as string)).searchParams.get("code") as string;
    await h.sandbox("stripe", "/_sandbox/requests", { method: "DELETE" });
    const res = await h.request({ method: "GET", url: `/api/integrations/stripe/oauth/callback?code=${attackerCode}&state=${String(begun.state)}` });
    expect(res.statusCode).toBe(303);
    const location = new URL(res.headers.location as string);
    expect(`${location.origin}${location.pathname}`).toBe(RETURN_BASE);
    expect(location.searchParams.get("status")).toBe("error");
    expect(location.searchParams.get("error")).toBe("state_wrong_browser");
    expect(res.headers["set-cookie"]).toBeUndefined();
    expect((await h.sandboxRequests("stripe")).filter((r) => r.path === "/oauth/token")).toEqual([]);
  });

  it("shows a clear page for a provider's error answer, and no redirect", async () => {
    const begun = (await start("hubspot", "alice")).json() as Json;
    const res = await h.request({ method: "GET", url: `/api/integrations/hubspot/oauth/callback?error=invalid_scope&error_description=x&state=${String(begun.state)}` });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(String(res.headers["content-type"])).toMatch(/text\/html/);
    expect(res.body).toMatch(/invalid_scope/);
    expect(res.headers.location).toBeUndefined();
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
  });

  it("shows a page, not a redirect, for a state it did not issue", async () => {
    const res = await h.request({ method: "GET", url: "/api/integrations/slack/oauth/callback?code=x&state=slack_forged" });
    expect(res.statusCode).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
  });
});

describe("URLs the service builds for the browser", () => {
  it.each(PROVIDER_IDS)("%s: the authorization URL carries no secret, verifier or token", async (provider) => {
    const begun = (await start(provider, "alice")).json() as Json;
    const url = new URL(begun.authUrl as string);
    const settings = h.service.integrations[provider].settings;
    const text = url.toString();
    expect(text).not.toContain(settings.clientSecret);
    if (begun.codeVerifier) expect(text).not.toContain(begun.codeVerifier as string);
    expect([...url.searchParams.keys()].filter((k) => /secret|token|verifier|password/i.test(k))).toEqual([]);
  });

  it("the callback page never shows the code", async () => {
    const started = await start("gmail", "alice");
    const begun = started.json() as Json;
    const callback = await consent(begun.authUrl as string);
    const page = await h.request({ method: "GET", url: callback.pathname + callback.search, headers: cookieOf(started) });
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain(callback.searchParams.get("code") as string);
    expect(page.body).not.toContain(callback.searchParams.get("state") as string);
  });
});

describe("isolation: user B against user A", () => {
  it("fails every attempt on A's connections and states, and nothing of A changes", async () => {
    // A holds an OAuth connection, a key connection, and an OAuth flow in progress.
    const startedA = await start("slack", "user-a");
    const begunA = startedA.json() as Json;
    const callbackA = await consent(begunA.authUrl as string);
    expect((await h.request({ method: "GET", url: callbackA.pathname + callbackA.search, headers: cookieOf(startedA) })).statusCode).toBe(200);
    const desk = (await h.sandbox("stripe", "/_sandbox/credentials", { body: {} })) as Json;
    const keyConn = (await h.request({ method: "POST", url: "/api/integrations/stripe/connections", user: "user-a", body: { apiKey: desk.apiKey } })).json() as Json;
    const pendingA = (await start("slack", "user-a")).json() as Json;
    const pendingCallback = await consent(pendingA.authUrl as string);
    const listA = async (provider: string) =>
      ((await h.request({ method: "GET", url: `/api/integrations/${provider}/connections?includeRevoked=true`, user: "user-a" })).json() as { connections: Json[] }).connections;
    const snapshot = async () => {
      const rows = await h.service.store.db.selectFrom("connections").selectAll().where("user_id", "=", "user-a").orderBy("id").execute();
      return rows.map((r) => ({ ...r, last_health: null }));
    };
    const before = await snapshot();
    const slackConn = (await listA("slack"))[0] as Json;

    for (const [provider, id] of [
      ["slack", slackConn.id],
      ["stripe", keyConn.id],
    ] as const) {
      const list = (await h.request({ method: "GET", url: `/api/integrations/${provider}/connections?includeRevoked=true`, user: "user-b" })).json() as { connections: Json[] };
      expect(list.connections).toEqual([]);
      for (const [method, url] of [
        ["POST", `/api/integrations/${provider}/test?connectionId=${String(id)}`],
        ["GET", `/api/integrations/${provider}/health?connectionId=${String(id)}`],
        ["DELETE", `/api/integrations/${provider}/connections/${String(id)}`],
      ] as const) {
        const res = await h.request({ method, url, user: "user-b" });
        expect(res.statusCode, `${method} ${url}`).toBe(404);
      }
    }
    // B completing A's pending flow: refused, and A can still complete it.
    const stolen = await h.request({
      method: "POST",
      url: "/api/integrations/slack/oauth/complete",
      user: "user-b",
      body: { code: pendingCallback.searchParams.get("code"), state: pendingCallback.searchParams.get("state") },
    });
    expect(stolen.statusCode).toBe(400);
    expect((stolen.json() as { error: Json }).error.code).toBe("state_wrong_user");

    expect(await snapshot()).toEqual(before);
    const finished = await h.request({
      method: "POST",
      url: "/api/integrations/slack/oauth/complete",
      user: "user-a",
      body: { code: pendingCallback.searchParams.get("code"), state: pendingCallback.searchParams.get("state") },
    });
    expect(finished.statusCode).toBe(201);
  });
});
