import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { ErrorCodes, IntegrationError } from "./errors.js";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { answerOf, ProviderHttp, scrub, type AttemptRecord, type Clock, type ProviderPacer, type ProviderRequest, type ResponseClassifier } from "./http.js";
import { maskSecret } from "./mask.js";
import type { RetryPolicy } from "./retry.js";

/** A clock whose sleeps return at once, are recorded, and move its time forward. */
class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  private t = Date.UTC(2025, 0, 1);
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }
}

type Recorded = { method: string; url: string; headers: IncomingMessage["headers"]; body: string };
type TestServer = { url: string; requests: Recorded[]; close(): Promise<void> };

const servers: TestServer[] = [];

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** A loopback server; the handler sees each request after its body has been read. */
async function startServer(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<TestServer> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res, body);
    });
  });
  const port = await listen(server);
  const handle: TestServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

/** A port on 127.0.0.1 that nothing listens on (bound, noted, closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const policy: RetryPolicy = { attempts: 3, baseDelayMs: 100, capDelayMs: 1_000, budgetMs: 60_000, maxRetryAfterMs: 10_000, rationale: "test" };

/** 2xx: success; 429: rate-limit; 401: auth echoing the request's Authorization; 5xx: upstream. */
const classify: ResponseClassifier = (response, request) => {
  if (response.status === 429) return { type: "rate-limit", code: "ratelimited", message: "Test API rate limited" };
  if (response.status === 401) {
    return { type: "auth", code: "invalid_auth", message: `token ${request.headers?.authorization ?? ""} was refused: ${response.text}` };
  }
  if (response.status >= 500) return { type: "upstream", message: `Test API failed with ${response.status}` };
  if (response.status >= 400) return { type: "schema", message: `Test API refused the request (${response.status})` };
  return null;
};

function client(options: { clock?: FakeClock; timeoutMs?: number; policy?: RetryPolicy; onAttempt?: (r: AttemptRecord) => void; idempotencyKeyHeader?: string } = {}) {
  return new ProviderHttp({
    ...(options.idempotencyKeyHeader ? { idempotencyKeyHeader: options.idempotencyKeyHeader } : {}),
    provider: "test",
    displayName: "Test",
    classify,
    policy: options.policy ?? policy,
    timeoutMs: options.timeoutMs ?? 5_000,
    clock: options.clock ?? new FakeClock(),
    random: () => 0.5,
    ...(options.onAttempt ? { onAttempt: options.onAttempt } : {}),
  });
}

async function failure(promise: Promise<unknown>): Promise<IntegrationError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(IntegrationError);
    return error as IntegrationError;
  }
  throw new Error("expected the request to fail");
}

const get = (url: string, extra: Partial<ProviderRequest> = {}): ProviderRequest => ({ operation: "GET /thing", method: "GET", url, ...extra });

describe("ProviderHttp: transport failures", () => {
  it("reports a refused connection as a retryable network error with code ECONNREFUSED", async () => {
    const port = await closedPort();
    const clock = new FakeClock();
    const error = await failure(client({ clock }).withoutRetries().send(get(`http://127.0.0.1:${port}/x`)));
    expect(error.type).toBe("network");
    expect(error.code).toBe("ECONNREFUSED");
    expect(error.retryable).toBe(true);
    expect(error.provider).toBe("test");
    expect(error.status).toBeUndefined();
    expect(error.message).toMatch(/connection refused/);
  });

  it("reports a server that never answers as a network timeout", async () => {
    const server = await startServer(() => {
      /* never answers */
    });
    const error = await failure(client({ timeoutMs: 200 }).withoutRetries().send(get(`${server.url}/slow`)));
    expect(error.type).toBe("network");
    expect(error.code).toBe("timeout");
    expect(error.message).toMatch(/no response within 200ms/);
    expect(server.requests).toHaveLength(1);
  });

  it("reports a socket destroyed before the response as a network error", async () => {
    const server = await startServer((req) => req.socket.destroy());
    const error = await failure(client().withoutRetries().send(get(`${server.url}/drop`)));
    expect(error.type).toBe("network");
    expect(error.code).not.toBe("timeout");
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/failed before a response/);
  });

  it("reports a socket destroyed in the middle of the body as a network error", async () => {
    const server = await startServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      res.write('{"partial":');
      setImmediate(() => req.socket.destroy());
    });
    const error = await failure(client().withoutRetries().send(get(`${server.url}/half`)));
    expect(error.type).toBe("network");
    expect(error.status).toBeUndefined();
  });
});

describe("ProviderHttp: responses", () => {
  it("refuses to follow a redirect and never requests its Location", async () => {
    const target = await startServer((_req, res) => res.end("{}"));
    const server = await startServer((_req, res) => {
      res.writeHead(302, { location: `${target.url}/steal` });
      res.end();
    });
    const error = await failure(client().withoutRetries().send(get(`${server.url}/r`, { headers: { authorization: "Bearer secret-token" } })));
    expect(error.type).toBe("upstream");
    expect(error.code).toBe("unexpected_redirect");
    expect(error.status).toBe(302);
    expect(server.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });

  it("answers the body as bytes, text and JSON, each an own property a copy keeps and a caller may replace", async () => {
    const server = await startServer((_req, res) => res.end('{"name":"Zoë"}'));
    const response = await client().withoutRetries().send(get(server.url));
    expect(new TextDecoder().decode(response.bytes)).toBe('{"name":"Zoë"}');
    expect({ ...response }).toMatchObject({ status: 200, text: '{"name":"Zoë"}', json: { name: "Zoë" } });
    expect(JSON.parse(JSON.stringify({ text: response.text, json: response.json }))).toEqual({ text: '{"name":"Zoë"}', json: { name: "Zoë" } });
    response.json = { replaced: true };
    response.text = "replaced";
    expect([response.json, response.text]).toEqual([{ replaced: true }, "replaced"]);
    const notJson = await client().withoutRetries().send(get((await startServer((_req, res) => res.end("plain words"))).url, { expectJson: false }));
    expect([notJson.text, notJson.json]).toEqual(["plain words", undefined]);
  });

  it("calls a 200 with a non-JSON body an upstream unparsable_response", async () => {
    const server = await startServer((_req, res) => res.end("<html>oops</html>"));
    const error = await failure(client().withoutRetries().send(get(server.url)));
    expect(error.type).toBe("upstream");
    expect(error.code).toBe("unparsable_response");
    expect(error.status).toBe(200);
  });

  it("accepts a non-JSON body when expectJson is false", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    const response = await client().send(get(server.url, { expectJson: false }));
    expect(response.status).toBe(200);
    expect(response.text).toBe("ok");
    expect(response.json).toBeUndefined();
  });

  it("answers a JSON success with its parsed body", async () => {
    const server = await startServer((_req, res) => res.end('{"ok":true,"n":3}'));
    const response = await client().send(get(server.url));
    expect(response.json).toEqual({ ok: true, n: 3 });
  });

  it("takes retryAfterSeconds from the Retry-After header of a rate-limit verdict", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(429, { "retry-after": "2", "content-type": "application/json" });
      res.end('{"ok":false}');
    });
    const error = await failure(client().withoutRetries().send(get(server.url)));
    expect(error.type).toBe("rate-limit");
    expect(error.code).toBe("ratelimited");
    expect(error.status).toBe(429);
    expect(error.retryAfterSeconds).toBe(2);
  });

  it("waits exactly the Retry-After before retrying a throttled call", async () => {
    let calls = 0;
    const server = await startServer((_req, res) => {
      if (++calls === 1) {
        res.writeHead(429, { "retry-after": "2" });
        res.end("{}");
      } else res.end('{"ok":true}');
    });
    const clock = new FakeClock();
    const response = await client({ clock }).send(get(server.url));
    expect(response.json).toEqual({ ok: true });
    expect(clock.sleeps).toEqual([2_000]);
    expect(server.requests).toHaveLength(2);
  });

  it("scrubs the request's secrets from a classifier message", async () => {
    const token = "xoxb-1234567890-SECRETSECRET";
    const server = await startServer((_req, res) => {
      res.writeHead(401);
      res.end(`{"error":"invalid_auth","echo":"${token}"}`);
    });
    const error = await failure(
      client().send(get(server.url, { headers: { authorization: `Bearer ${token}` }, secrets: [token, undefined] })),
    );
    expect(error.type).toBe("auth");
    expect(error.message).not.toContain(token);
    expect(error.message).toContain(maskSecret(token));
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.headers.authorization).toBe(`Bearer ${token}`);
  });
});

describe("scrub", () => {
  it("replaces every occurrence of every secret with its mask", () => {
    const a = "sk_test_abcdefghijklmnop";
    const b = "refresh-0123456789";
    const out = scrub(`a=${a} b=${b} again ${a}`, [a, undefined, b]);
    expect(out).toBe(`a=${maskSecret(a)} b=${maskSecret(b)} again ${maskSecret(a)}`);
  });

  it("leaves the message alone without secrets", () => {
    expect(scrub("nothing here", undefined)).toBe("nothing here");
    expect(scrub("nothing here", [])).toBe("nothing here");
  });
});

describe("ProviderHttp: retries", () => {
  it("retries upstream failures with jittered backoff and stops at policy.attempts", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(503);
      res.end("{}");
    });
    const clock = new FakeClock();
    const records: AttemptRecord[] = [];
    const error = await failure(client({ clock, onAttempt: (r) => records.push(r) }).send(get(server.url)));
    expect(error.type).toBe("upstream");
    expect(error.status).toBe(503);
    expect(server.requests).toHaveLength(policy.attempts);
    expect(clock.sleeps).toHaveLength(policy.attempts - 1);
    // random() = 0.5: half of min(cap, base * 2^(n-1)).
    expect(clock.sleeps).toEqual([50, 100]);
    expect(records.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(records.map((r) => r.retryDelayMs)).toEqual([50, 100, undefined]);
    expect(records.every((r) => r.errorType === "upstream" && r.status === 503)).toBe(true);
  });

  it("succeeds when a retry does", async () => {
    let calls = 0;
    const server = await startServer((_req, res) => {
      if (++calls < 3) {
        res.writeHead(500);
        res.end("{}");
      } else res.end('{"ok":true}');
    });
    const clock = new FakeClock();
    const response = await client({ clock }).send(get(server.url));
    expect(response.json).toEqual({ ok: true });
    expect(server.requests).toHaveLength(3);
    expect(clock.sleeps).toHaveLength(2);
  });

  it("retries a refused connection on GET until the attempts run out", async () => {
    const port = await closedPort();
    const clock = new FakeClock();
    const error = await failure(client({ clock }).send(get(`http://127.0.0.1:${port}/`)));
    expect(error.code).toBe("ECONNREFUSED");
    expect(clock.sleeps).toHaveLength(policy.attempts - 1);
  });

  it("does not retry auth errors", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(401);
      res.end("{}");
    });
    const clock = new FakeClock();
    await failure(client({ clock }).send(get(server.url)));
    expect(server.requests).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("does not retry a POST without an idempotency key after a network error", async () => {
    const server = await startServer((req) => req.socket.destroy());
    const clock = new FakeClock();
    const error = await failure(client({ clock }).send({ operation: "POST /charge", method: "POST", url: server.url, json: { amount: 1 } }));
    expect(error.type).toBe("network");
    expect(server.requests).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("retries a POST carrying an Idempotency-Key header after a network error, at a provider that honours the key", async () => {
    const server = await startServer((req) => req.socket.destroy());
    const clock = new FakeClock();
    const error = await failure(
      client({ clock, idempotencyKeyHeader: "idempotency-key" }).send({
        operation: "POST /charge",
        method: "POST",
        url: server.url,
        json: { amount: 1 },
        headers: { "Idempotency-Key": "key-123" },
      }),
    );
    expect(error.type).toBe("network");
    expect(server.requests).toHaveLength(policy.attempts);
    expect(server.requests.every((r) => r.headers["idempotency-key"] === "key-123")).toBe(true);
    expect(clock.sleeps).toHaveLength(policy.attempts - 1);
  });

  it("sends an Idempotency-Key once at a provider that ignores it: a repeat there would write twice", async () => {
    const server = await startServer((req) => req.socket.destroy());
    const clock = new FakeClock();
    const error = await failure(client({ clock }).send({ operation: "POST /message", method: "POST", url: server.url, json: { text: "hi" }, headers: { "Idempotency-Key": "key-123" } }));
    expect(error.type).toBe("network");
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.headers["idempotency-key"]).toBe("key-123");
    expect(clock.sleeps).toEqual([]);
  });

  it("retries a POST declared idempotent after a network error", async () => {
    const server = await startServer((req) => req.socket.destroy());
    await failure(client().send({ operation: "auth.test", method: "POST", url: server.url, idempotent: true }));
    expect(server.requests).toHaveLength(policy.attempts);
  });

  it("does not retry a POST without an idempotency key after a 5xx", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(502);
      res.end("{}");
    });
    await failure(client().send({ operation: "POST /charge", method: "POST", url: server.url }));
    expect(server.requests).toHaveLength(1);
  });

  it("retries a rate-limited POST without an idempotency key", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(429, { "retry-after": "1" });
      res.end("{}");
    });
    const clock = new FakeClock();
    const error = await failure(client({ clock }).send({ operation: "POST /x", method: "POST", url: server.url }));
    expect(error.type).toBe("rate-limit");
    expect(server.requests).toHaveLength(policy.attempts);
    expect(clock.sleeps).toEqual([1_000, 1_000]);
  });

  it("surfaces a Retry-After longer than the policy allows at once", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(429, { "retry-after": "3600" });
      res.end("{}");
    });
    const clock = new FakeClock();
    const error = await failure(client({ clock }).send(get(server.url)));
    expect(error.retryAfterSeconds).toBe(3_600);
    expect(server.requests).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("withoutRetries() makes exactly one attempt", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(500);
      res.end("{}");
    });
    const clock = new FakeClock();
    const http = client({ clock });
    await failure(http.withoutRetries().send(get(server.url)));
    expect(server.requests).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
    // The original client keeps its policy.
    await failure(http.send(get(server.url)));
    expect(server.requests).toHaveLength(1 + policy.attempts);
  });
});

describe("ProviderHttp: request building", () => {
  it("sends a form body url-encoded, leaving out undefined values", async () => {
    const server = await startServer((_req, res) => res.end("{}"));
    await client().send({ operation: "token", method: "POST", url: server.url, form: { grant_type: "authorization_code", code: "a b&c", skip: undefined } });
    const request = server.requests[0];
    expect(request?.method).toBe("POST");
    expect(request?.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(new URLSearchParams(request?.body)).toEqual(new URLSearchParams({ grant_type: "authorization_code", code: "a b&c" }));
    expect(request?.headers.accept).toBe("application/json");
  });

  it("sends a JSON body as application/json", async () => {
    const server = await startServer((_req, res) => res.end("{}"));
    await client().send({ operation: "json", method: "PUT", url: server.url, json: { a: [1, 2] } });
    expect(server.requests[0]?.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(server.requests[0]?.body ?? "")).toEqual({ a: [1, 2] });
  });
});

describe("ProviderHttp: the retry budget bounds the whole call", () => {
  it("cuts the last attempt's timeout to what is left of the budget, so what the attempts are given stays within it", async () => {
    // A provider slower than every timeout (as under the sandboxes' delay fault): each attempt times out.
    const server = await startServer(() => undefined);
    const short: RetryPolicy = { attempts: 4, baseDelayMs: 100, capDelayMs: 100, budgetMs: 5_000, maxRetryAfterMs: 1_000, rationale: "test" };
    const timeoutMs = 3_000;
    const records: AttemptRecord[] = [];
    // The real clock: the timeouts are real. What is checked is what the client gave each attempt, never wall time.
    const http = new ProviderHttp({ provider: "test", displayName: "Test", classify, policy: short, timeoutMs, random: () => 0.5, onAttempt: (r) => records.push(r) });
    const error = await failure(http.send(get(server.url)));
    expect(error).toMatchObject({ type: "network", code: "timeout" });
    // What the attempts were given and waited, by the client's own account: within the budget (give or take the
    // rounding below), where the full timeout for each would have been 3 s + 50 ms + 3 s. No wall time is asserted.
    const given = records.reduce((sum, r) => sum + r.timeoutMs + (r.retryDelayMs ?? 0), 0);
    expect(given).toBeLessThanOrEqual(short.budgetMs + 5);
    expect(records.map((r) => r.attempt)).toEqual([1, 2]);
    expect(records[0]?.timeoutMs).toBe(timeoutMs);
    // The retry got at most what was left after the first attempt's full timeout and its wait, not the full
    // timeout (give or take the rounding to whole milliseconds).
    const first = records[0] as AttemptRecord;
    const roundingMs = 5;
    expect(records[1]?.timeoutMs).toBeLessThanOrEqual(short.budgetMs - first.timeoutMs - (first.retryDelayMs ?? 0) + roundingMs);
    expect(records[1]?.timeoutMs).toBeLessThan(timeoutMs);
  });

  it("starts no retry that could not finish within the budget", async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(503);
      res.end("{}");
    });
    const clock = new FakeClock();
    const http = client({ clock, policy: { ...policy, budgetMs: 1_000 } });
    await failure(http.send(get(server.url)));
    // 50 ms of backoff fits in the 1 s budget, but the attempt after it would have 950 ms, short of the 1 s it needs.
    expect(server.requests).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });
});

describe("pacing, bodies and answers", () => {
  const pacedClient = (pacer: ProviderPacer, clock = new FakeClock()) =>
    new ProviderHttp({
      provider: "test",
      displayName: "Test",
      classify,
      policy,
      timeoutMs: 5_000,
      clock,
      random: () => 0.5,
      pacer,
      rateLimit: (response) => (response.headers.get("x-left") === null ? undefined : { remaining: Number(response.headers.get("x-left")), resetAtMs: clock.now() + 1_000 }),
    });

  it("waits its turn before every attempt, leaving the attempt time within the budget, and tells the pacer every answer", async () => {
    let n = 0;
    const server = await startServer((_req, res) => {
      n += 1;
      res.writeHead(n === 1 ? 503 : 200, { "content-type": "application/json", "x-left": String(10 - n) }).end("{}");
    });
    const clock = new FakeClock();
    const acquired: [string, number][] = [];
    const observed: [string, unknown][] = [];
    const http = pacedClient({ acquire: async (key, deadline) => void acquired.push([key, deadline]), observe: (key, signal) => void observed.push([key, signal]) }, clock);
    const started = clock.now();
    await http.send(get(`${server.url}/thing`, { paceKey: "test:acct" }));
    expect(acquired.map(([key]) => key)).toEqual(["test:acct", "test:acct"]);
    expect(acquired[0]?.[1]).toBe(started + policy.budgetMs - 1_000);
    expect(observed).toEqual([
      ["test:acct", { remaining: 9, resetAtMs: expect.any(Number) }],
      ["test:acct", { remaining: 8, resetAtMs: expect.any(Number) }],
    ]);
    // Without a key (a token exchange, a call before the connection is stored) nothing is paced.
    await http.send(get(`${server.url}/thing`));
    expect(acquired).toHaveLength(2);
  });

  it("asks a pacer that can grant at once (tryAcquire) first, and waits through acquire only when it cannot", async () => {
    const server = await startServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
    const asked: string[] = [];
    let grantNow = true;
    const http = pacedClient({
      tryAcquire: (key) => (asked.push(`try ${key}`), grantNow),
      acquire: async (key) => void asked.push(`acquire ${key}`),
      observe: () => undefined,
    });
    await http.send(get(`${server.url}/thing`, { paceKey: "test:acct" }));
    expect(asked).toEqual(["try test:acct"]);
    grantNow = false;
    await http.send(get(`${server.url}/thing`, { paceKey: "test:acct" }));
    expect(asked).toEqual(["try test:acct", "try test:acct", "acquire test:acct"]);
    expect(server.requests).toHaveLength(2);
  });

  it("answers a wait past the budget as a rate-limit error with Retry-After, sends nothing and does not retry", async () => {
    const server = await startServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
    const http = pacedClient({
      acquire: async () => {
        throw new IntegrationError({ type: "rate-limit", code: "pacing_timeout", retryAfterSeconds: 42, message: "budget frees up later" });
      },
      observe: () => undefined,
    });
    const error = await failure(http.send(get(`${server.url}/thing`, { paceKey: "test:acct" })));
    expect(error).toMatchObject({ type: "rate-limit", code: "pacing_timeout", provider: "test", retryAfterSeconds: 42 });
    expect(error.message).toMatch(/GET \/thing was not sent/);
    expect(server.requests).toHaveLength(0);
  });

  it("sends a raw body as given, and refuses an answer past maxResponseBytes without reading it all", async () => {
    const server = await startServer((req, res, body) => res.writeHead(200, { "content-type": "text/plain" }).end(req.url === "/big" ? "x".repeat(10_000) : body));
    const http = client();
    const echoed = await http.send({ operation: "POST /echo", method: "POST", url: `${server.url}/echo`, headers: { "content-type": "text/csv" }, body: "a,b\n1,2", expectJson: false });
    expect(echoed.text).toBe("a,b\n1,2");
    expect(Buffer.from(echoed.bytes as Uint8Array).toString("utf8")).toBe("a,b\n1,2");
    expect(server.requests[0]?.headers["content-type"]).toBe("text/csv");
    const error = await failure(http.send({ ...get(`${server.url}/big`), expectJson: false, maxResponseBytes: 1_000 }));
    expect(error).toMatchObject({ type: "schema", code: ErrorCodes.RESPONSE_TOO_LARGE });
  });

  it("hands a redirect or a 304 back as an answer when asked (never followed), and fails it otherwise", async () => {
    const server = await startServer((req, res) => {
      if (req.url === "/moved") res.writeHead(303, { location: "https://elsewhere.example/file" }).end();
      else res.writeHead(304, { etag: '"v1"' }).end();
    });
    const http = client();
    const moved = await http.send({ ...get(`${server.url}/moved`), expectJson: false, passRedirects: true });
    expect(moved.status).toBe(303);
    expect(moved.headers.get("location")).toBe("https://elsewhere.example/file");
    expect((await http.send({ ...get(`${server.url}/same`), expectJson: false, passRedirects: true })).status).toBe(304);
    expect(server.requests.map((r) => r.url)).toEqual(["/moved", "/same"]);
    expect(await failure(http.send(get(`${server.url}/moved`)))).toMatchObject({ type: "upstream", code: "unexpected_redirect" });
  });

  it("keeps the provider's answer with the error it was classified as", async () => {
    const server = await startServer((_req, res) => res.writeHead(404, { "content-type": "application/json", "x-request-id": "r1" }).end('{"message":"no such thing"}'));
    const error = await failure(client().send(get(`${server.url}/thing`)));
    const answer = answerOf(error);
    expect(answer).toMatchObject({ status: 404, json: { message: "no such thing" } });
    expect(answer?.headers.get("x-request-id")).toBe("r1");
  });
});
