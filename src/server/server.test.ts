/**
 * The HTTP layer's own duties: user JWTs, input validation, the one error
 * body, status codes, isolation between users. None of it is ever a 500.
 */
import { connect } from "node:net";
import { SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { PROVIDER_IDS } from "../integrations/registry.js";
import { startHarness, TEST_JWT_SECRET, type Harness } from "../testing/harness.js";

type ErrorBody = { error: { type: string; message: string; retryable: boolean; field?: string; code?: string } };

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const sign = (claims: Record<string, unknown>, header: { alg: string } = { alg: "HS256" }) => new SignJWT(claims).setProtectedHeader(header).sign(secret);
const now = () => Math.floor(Date.now() / 1000);

async function call(authorization: string | undefined, url = "/api/integrations") {
  return h.service.app.inject({ method: "GET", url, headers: authorization === undefined ? {} : { authorization } });
}

describe("user JWTs", () => {
  it("accepts an HS256 token with sub and exp", async () => {
    const res = await call(`Bearer ${await sign({ sub: "alice", exp: now() + 60 })}`);
    expect(res.statusCode).toBe(200);
  });

  it.each([
    ["no Authorization header", async () => undefined, /missing Authorization/],
    ["a non-Bearer scheme", async () => `Basic ${Buffer.from("a:b").toString("base64")}`, /Bearer/],
    ["an expired token", async () => `Bearer ${await sign({ sub: "alice", exp: now() - 120 })}`, /expired/],
    ["a token without exp", async () => `Bearer ${await sign({ sub: "alice" })}`, /exp/],
    ["a token without sub", async () => `Bearer ${await sign({ exp: now() + 60 })}`, /sub/],
    ["a token not valid yet", async () => `Bearer ${await sign({ sub: "alice", exp: now() + 600, nbf: now() + 300 })}`, /not valid yet/],
    ["alg: none", async () => `Bearer ${new UnsecuredJWT({ sub: "alice", exp: now() + 60 }).encode()}`, /malformed or unsigned|algorithm/],
    ["HS512 (outside the allow-list)", async () => `Bearer ${await sign({ sub: "alice", exp: now() + 60 }, { alg: "HS512" })}`, /algorithm/],
    [
      "a token signed with another secret",
      async () => `Bearer ${await new SignJWT({ sub: "alice", exp: now() + 60 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("another-secret-another-secret-another"))}`,
      /signature/,
    ],
    ["garbage", async () => "Bearer not.a.jwt", /malformed/],
  ])("refuses %s with 401", async (_name, header, message) => {
    const res = await call(await header());
    expect(res.statusCode).toBe(401);
    expect(res.headers["www-authenticate"]).toMatch(/^Bearer/);
    const body = res.json() as ErrorBody;
    expect(body.error).toMatchObject({ type: "auth", retryable: false });
    expect(body.error.message).toMatch(message);
  });

  it("tolerates a minute of clock skew, not more", async () => {
    expect((await call(`Bearer ${await sign({ sub: "alice", exp: now() - 30 })}`)).statusCode).toBe(200);
    expect((await call(`Bearer ${await sign({ sub: "alice", exp: now() - 90 })}`)).statusCode).toBe(401);
  });
});

describe("bad input", () => {
  const post = (url: string, payload: string | object | undefined, headers: Record<string, string> = {}) =>
    h.request({ method: "POST", url, user: "alice", body: payload, headers });

  it("answers an unknown provider with 404 listing the known ones", async () => {
    const res = await h.request({ method: "GET", url: "/api/integrations/myspace/health", user: "alice" });
    expect(res.statusCode).toBe(404);
    const body = res.json() as ErrorBody;
    expect(body.error.type).toBe("schema");
    for (const id of PROVIDER_IDS) expect(body.error.message).toContain(id);
  });

  it("answers malformed JSON with 400", async () => {
    const res = await post("/api/integrations/slack/connections", '{"accessToken": ', { "content-type": "application/json" });
    expect(res.statusCode).toBe(400);
    expect((res.json() as ErrorBody).error.message).toMatch(/not valid JSON/);
  });

  it.each([
    [{ accessToken: 42 }, "accessToken"],
    [{ apiKey: ["sk_test_x"] }, "apiKey"],
    [{}, "apiKey"],
    [{ accessToken: "xoxb-1", extra: true }, "extra"],
    ["[]", "body"],
  ])("answers wrong types and missing or unknown fields with 400 naming the field (%j)", async (payload, field) => {
    const res = await post("/api/integrations/slack/connections", typeof payload === "string" ? payload : payload, { "content-type": "application/json" });
    expect(res.statusCode).toBe(400);
    const body = res.json() as ErrorBody;
    expect(body.error.type).toBe("schema");
    expect(body.error.message).toContain(field);
  });

  it("lists at most five unknown fields and counts the rest, however many a body holds", async () => {
    const fields = Array.from({ length: 60_000 }, (_, i) => `f${i}`);
    const payload = `{${fields.map((f) => `"${f}":1`).join(",")}}`;
    const res = await post("/api/integrations/slack/oauth/start", payload, { "content-type": "application/json" });
    expect(res.statusCode).toBe(400);
    const body = res.json() as ErrorBody;
    expect(body.error).toMatchObject({ type: "schema", code: "invalid_input", field: "f0" });
    expect(body.error.message).toBe('body has unknown fields "f0", "f1", "f2", "f3", "f4" and 59995 more');
    expect(res.body.length).toBeLessThan(400);
  });

  it("quotes at most 64 characters of an unknown field's name", async () => {
    const res = await post("/api/integrations/slack/oauth/start", { ["x".repeat(500_000)]: 1 });
    expect(res.statusCode).toBe(400);
    const body = res.json() as ErrorBody;
    expect(body.error.field).toBe("x".repeat(64));
    expect(res.body.length).toBeLessThan(400);
  });

  it("names a single unknown field as one", async () => {
    const res = await post("/api/integrations/slack/oauth/start", { returnTo: "https://example.test/", typo: 1 });
    expect(res.statusCode).toBe(400);
    expect((res.json() as ErrorBody).error.message).toBe('body has unknown field "typo"');
  });

  it("names missing fields of oauth/complete", async () => {
    const res = await post("/api/integrations/stripe/oauth/complete", { code: "ac_123" });
    expect(res.statusCode).toBe(400);
    expect((res.json() as ErrorBody).error.message).toContain("state");
  });

  it("answers a body over 1 MiB with 413", async () => {
    const res = await post("/api/integrations/slack/connections", JSON.stringify({ accessToken: "x".repeat(1024 * 1024 + 10) }), { "content-type": "application/json" });
    expect(res.statusCode).toBe(413);
    expect((res.json() as ErrorBody).error.type).toBe("schema");
  });

  it("answers a body that is not JSON with 415", async () => {
    const res = await post("/api/integrations/slack/connections", "accessToken=xoxb-1", { "content-type": "application/x-www-form-urlencoded" });
    expect(res.statusCode).toBe(415);
  });

  it("takes JSON with a charset parameter, and refuses a media type that only begins like JSON", async () => {
    const ok = await post("/api/integrations/slack/oauth/start", "{}", { "content-type": "application/json; charset=utf-8" });
    expect(ok.statusCode, ok.body).toBe(200);
    const problem = await post("/api/integrations/slack/oauth/start", "{}", { "content-type": "application/problem+json;charset=UTF-8" });
    expect(problem.statusCode, problem.body).toBe(200);
    const lookalike = await post("/api/integrations/slack/oauth/start", "{}", { "content-type": "application/jsonx" });
    expect(lookalike.statusCode).toBe(415);
  });

  it("treats an empty JSON body as no body", async () => {
    const res = await post("/api/integrations/slack/oauth/start", "", { "content-type": "application/json" });
    expect(res.statusCode).toBe(200);
  });

  it("answers an unknown route with 404 in the one error body", async () => {
    const res = await h.request({ method: "GET", url: "/api/nothing/here", user: "alice" });
    expect(res.statusCode).toBe(404);
    expect((res.json() as ErrorBody).error.type).toBe("schema");
  });

  it("answers a well-formed connection id that does not exist with 404 naming the id", async () => {
    for (const id of ["conn_nope", "a".repeat(64)]) {
      const res = await h.request({ method: "DELETE", url: `/api/integrations/slack/connections/${id}`, user: "alice" });
      expect(res.statusCode, id).toBe(404);
      expect((res.json() as ErrorBody).error).toMatchObject({ code: "connection_not_found", field: "id" });
    }
  });

  it.each([
    ["empty", ""],
    ["blank", "%20"],
    ["NUL", "%00"],
    ["a path trick", "..%2F..%2Fetc%2Fpasswd"],
    ["punctuation", "bad!id"],
    ["non-ASCII", "%E2%82%AC"],
    ["65 characters", "a".repeat(65)],
    ["200 characters", "a".repeat(200)],
    ["over the router's parameter limit", "a".repeat(300)],
    ["3000 characters", "a".repeat(3000)],
  ])("answers DELETE of a malformed connection id (%s) with 400 naming the field id", async (_name, id) => {
    const res = await h.request({ method: "DELETE", url: `/api/integrations/slack/connections/${id}`, user: "alice" });
    expect(res.statusCode).toBe(400);
    const body = res.json() as ErrorBody;
    expect(body.error).toMatchObject({ type: "schema", code: "invalid_input", field: "id" });
    expect(body.error.message).toBe("id: must be a connection id (1 to 64 letters, digits, _ and -)");
  });

  it("names connectionId for a malformed connection id in the query", async () => {
    const bad = await h.request({ method: "GET", url: "/api/integrations/slack/health?connectionId=../x", user: "alice" });
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as ErrorBody).error).toMatchObject({ field: "connectionId", message: "connectionId: must be a connection id (1 to 64 letters, digits, _ and -)" });
  });
});

describe("isolation", () => {
  it("never shows, tests or disconnects another user's connection (404, nothing changes)", async () => {
    const credential = (await h.sandbox("stripe", "/_sandbox/credentials", { body: {} })) as { apiKey: string };
    const created = await h.request({ method: "POST", url: "/api/integrations/stripe/connections", user: "alice", body: { apiKey: credential.apiKey } });
    expect(created.statusCode).toBe(201);
    const id = (created.json() as { id: string }).id;

    const list = await h.request({ method: "GET", url: "/api/integrations/stripe/connections", user: "mallory" });
    expect((list.json() as { connections: unknown[] }).connections).toEqual([]);
    for (const [method, url] of [
      ["DELETE", `/api/integrations/stripe/connections/${id}`],
      ["POST", `/api/integrations/stripe/test?connectionId=${id}`],
      ["GET", `/api/integrations/stripe/health?connectionId=${id}`],
    ] as const) {
      const res = await h.request({ method, url, user: "mallory" });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect((res.json() as ErrorBody).error.message).not.toContain("alice");
    }
    const mine = await h.request({ method: "GET", url: "/api/integrations/stripe/connections", user: "alice" });
    const connection = (mine.json() as { connections: { id: string; revokedAt?: string }[] }).connections.find((c) => c.id === id);
    expect(connection).toBeDefined();
    expect(connection?.revokedAt).toBeUndefined();
  });
});

describe("operations", () => {
  it("answers /healthz and /readyz without a token", async () => {
    expect((await h.service.app.inject({ method: "GET", url: "/healthz" })).json()).toEqual({ status: "ok" });
    const ready = await h.service.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
  });

  it("exports provider call metrics, and the API's requests by route pattern (never the raw URL) and status", async () => {
    await h.request({ method: "GET", url: "/api/integrations", user: "alice" });
    await h.request({ method: "GET", url: "/api/integrations/slack/health?connectionId=conn_nope", user: "alice" });
    await h.request({ method: "GET", url: "/api/nothing/here", user: "alice" });
    const res = await h.service.app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("autoflow_provider_attempts_total");
    expect(res.body).toMatch(/autoflow_http_requests_total\{route="\/api\/integrations",method="GET",status="200"\} [1-9]/);
    expect(res.body).toMatch(/autoflow_http_requests_total\{route="\/api\/integrations\/:provider\/health",method="GET",status="404"\} [1-9]/);
    expect(res.body).toMatch(/autoflow_http_requests_total\{route="unmatched",method="GET",status="404"\} [1-9]/);
    expect(res.body).not.toContain("conn_nope");
    expect(res.body).toContain("autoflow_http_request_duration_seconds_bucket");
  });

  it("keeps /metrics behind AUTOFLOW_METRICS_TOKEN when one is set", async () => {
    const guarded = await startHarness({ config: { metricsToken: "scraper-token-0123456789" } });
    try {
      const without = await guarded.service.app.inject({ method: "GET", url: "/metrics" });
      expect(without.statusCode).toBe(401);
      expect(without.body).not.toContain("autoflow_");
      expect((await guarded.service.app.inject({ method: "GET", url: "/metrics", headers: { authorization: "Bearer wrong-token-0123456789" } })).statusCode).toBe(401);
      const right = await guarded.service.app.inject({ method: "GET", url: "/metrics", headers: { authorization: "Bearer scraper-token-0123456789" } });
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain("autoflow_provider_attempts_total");
    } finally {
      await guarded.close();
    }
    expect(() => loadConfig({ AUTOFLOW_METRICS_TOKEN: "short" })).toThrow(/AUTOFLOW_METRICS_TOKEN.*16 characters/);
  });
});

describe("limits", () => {
  it("answers a user over the per-minute limit with 429 and Retry-After, leaving other users alone", async () => {
    const limited = await startHarness({ config: { limits: { bodyLimit: 1024 * 1024, maxHeaderBytes: 16 * 1024, requestsPerMinute: 5 } } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await limited.request({ method: "GET", url: "/api/integrations", user: "busy" })).statusCode);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      const over = await limited.request({ method: "GET", url: "/api/integrations", user: "busy" });
      expect(Number(over.headers["retry-after"])).toBeGreaterThan(0);
      expect((over.json() as ErrorBody).error).toMatchObject({ type: "rate-limit", retryable: true });
      expect((await limited.request({ method: "GET", url: "/api/integrations", user: "calm" })).statusCode).toBe(200);
      // Liveness is never limited.
      expect((await limited.service.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it("refuses a body over the configured limit with 413", async () => {
    const small = await startHarness({ config: { limits: { bodyLimit: 2048, maxHeaderBytes: 16 * 1024, requestsPerMinute: 600 } } });
    try {
      const res = await small.request({ method: "POST", url: "/api/integrations/slack/connections", user: "u", body: { accessToken: `xoxb-${"1".repeat(3000)}` } });
      expect(res.statusCode).toBe(413);
    } finally {
      await small.close();
    }
  });

  it("refuses request heads over the configured size before any handler runs (431)", async () => {
    const small = await startHarness({ config: { limits: { bodyLimit: 1024 * 1024, maxHeaderBytes: 2048, requestsPerMinute: 600 } } });
    try {
      const url = await small.service.app.listen({ port: 0, host: "127.0.0.1" });
      const res = await fetch(`${url}/healthz`, { headers: { "x-padding": "p".repeat(4096) } });
      expect(res.status).toBe(431);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe("a request without Host, over a real socket", () => {
  /** Writes `head` on a fresh loopback connection and reads the whole answer. */
  async function raw(base: string, head: string): Promise<{ status: number; headers: string; body: string }> {
    const { port } = new URL(base);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1");
      let data = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => (data += chunk));
      socket.on("end", () => resolve(data));
      socket.on("error", reject);
      socket.write(head);
    });
    const [headers = "", body = ""] = answer.split("\r\n\r\n");
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]), headers, body };
  }

  let base: string;
  beforeAll(async () => {
    base = await h.service.app.listen({ port: 0, host: "127.0.0.1" });
  });

  it.each(["/healthz", "/api/integrations", "/api/integrations/slack/health"])("answers HTTP/1.1 without Host with 400 in the one error body (%s)", async (path) => {
    const res = await raw(base, `GET ${path} HTTP/1.1\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(400);
    expect(res.headers).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(res.body)).toEqual({
      error: { type: "schema", code: "invalid_input", field: "host", retryable: false, message: expect.stringMatching(/Host header/) },
    });
  });

  it("answers HTTP/1.0 without Host as usual: it needs none", async () => {
    const res = await raw(base, "GET /healthz HTTP/1.0\r\n\r\n");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: "ok" });
    const unauthenticated = await raw(base, "GET /api/integrations HTTP/1.0\r\n\r\n");
    expect(unauthenticated.status).toBe(401);
    expect((JSON.parse(unauthenticated.body) as ErrorBody).error.type).toBe("auth");
  });
});

describe("graceful shutdown", () => {
  it("finishes requests in flight when the service closes, and refuses new ones", async () => {
    const closing = await startHarness({ providerTimeoutMs: 5_000 });
    const base = await closing.service.app.listen({ port: 0, host: "127.0.0.1" });
    const desk = (await closing.sandbox("stripe", "/_sandbox/credentials", { body: {} })) as { apiKey: string };
    const token = await closing.token("slow");
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    expect((await fetch(`${base}/api/integrations/stripe/connections`, { method: "POST", headers, body: JSON.stringify({ apiKey: desk.apiKey }) })).status).toBe(201);
    // The provider takes a while: the request is in flight when the service is told to stop.
    await closing.sandbox("stripe", "/_sandbox/faults", { body: { fault: "delay", delayMs: 700, times: 1 } });
    const inFlight = fetch(`${base}/api/integrations/stripe/test`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const closed = closing.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    await closed;
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
