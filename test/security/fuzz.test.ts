/**
 * Bad input, generated: thousands of requests to every route with wrong
 * types, missing and extra fields, huge strings, deep JSON, invalid UTF-8,
 * wrong content types, path traversal in ids, unknown providers and broken
 * tokens. Zero 5xx, zero crashes, and every 4xx body is the one error body
 * with a message that names what is wrong.
 */
import { Agent, request as httpRequest } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROVIDER_IDS } from "../../src/integrations/registry.js";
import { TIER1_ERROR_TYPES } from "../../src/integrations/shared/contract.js";
import { startHarness, type Harness } from "../../src/testing/harness.js";

/** Requests generated in all; printed by the run. */
const RUNS = 3000;

let h: Harness;
let validToken: string;
let port: number;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
beforeAll(async () => {
  h = await startHarness({ config: { limits: { bodyLimit: 256 * 1024, maxHeaderBytes: 16 * 1024, requestsPerMinute: 1_000_000 } } });
  validToken = await h.token("fuzzer");
  // Something to find: a real connection of the fuzzing user.
  const desk = (await h.sandbox("stripe", "/_sandbox/credentials", { body: {} })) as { apiKey: string };
  await h.request({ method: "POST", url: "/api/integrations/stripe/connections", user: "fuzzer", body: { apiKey: desk.apiKey } });
  // Over a real socket, so odd paths and bytes reach the server as a client would send them.
  port = new URL(await h.service.app.listen({ port: 0, host: "127.0.0.1" })).port as unknown as number;
});
afterAll(async () => {
  agent.destroy();
  await h?.close();
});

function send(method: string, path: string, headers: Record<string, string>, payload?: string | Buffer): Promise<{ statusCode: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(payload);
  });
}

const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("..", "../..", "%2e%2e%2f", "..%2F..%2Fetc%2Fpasswd", "%00", "conn_%00", "a".repeat(300), "🙂", "<script>", "' or 1=1 --", "${jndi:x}", "%", "%zz"),
);
const provider = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PROVIDER_IDS) }, { weight: 1, arbitrary: nasty });
/** A path segment as a careless client sends it: printable ASCII as is (backslashes included), the rest encoded. */
const segment = (value: string) => (/^[\x21-\x7e]*$/.test(value) && !/[?#]/.test(value) ? value : encodeURIComponent(value));

const path = fc.oneof(
  fc.constant("/api/integrations"),
  fc.tuple(provider, fc.constantFrom("oauth/start", "oauth/complete", "oauth/callback", "connections", "test", "health")).map(([p, r]) => `/api/integrations/${segment(p)}/${r}`),
  fc.tuple(provider, nasty).map(([p, id]) => `/api/integrations/${segment(p)}/connections/${segment(id)}`),
  fc.array(nasty, { maxLength: 4 }).map((parts) => `/${parts.map(segment).join("/")}`),
);
const query = fc.oneof(
  fc.constant(""),
  fc.dictionary(fc.constantFrom("connectionId", "includeRevoked", "code", "state", "iss", "error", "x"), fc.oneof(nasty, fc.array(nasty, { maxLength: 3 })), { maxKeys: 4 }).map((q) => {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(q)) for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
    return params.toString() ? `?${params.toString()}` : "";
  }),
);
const deepJson = fc.letrec((tie) => ({ node: fc.oneof({ depthSize: "small" }, fc.jsonValue(), fc.array(tie("node"), { maxLength: 3 }), fc.dictionary(fc.string(), tie("node"), { maxKeys: 3 })) })).node;
const fieldValue = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.object(), fc.string({ minLength: 5_000, maxLength: 20_000 }));
const fields = fc.dictionary(fc.constantFrom("apiKey", "accessToken", "baseUrl", "email", "code", "state", "iss", "returnTo", "extra", "__proto__", "constructor"), fieldValue, { maxKeys: 5 });
const body = fc.oneof(
  fc.constant(undefined),
  fields.map((v) => ({ type: "application/json", payload: JSON.stringify(v) })),
  deepJson.map((v) => ({ type: "application/json", payload: JSON.stringify(v) })),
  fc.string({ maxLength: 200 }).map((s) => ({ type: "application/json", payload: s })),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ type: "application/json", payload: Buffer.concat([Buffer.from('{"apiKey":"'), Buffer.from(bytes), Buffer.from('"}')]) })),
  fc.tuple(fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "garbage", ""), fc.string({ maxLength: 200 })).map(([type, payload]) => ({ type, payload })),
  fc.constant({ type: "application/json", payload: `${"[".repeat(5000)}${"]".repeat(5000)}` }),
  fc.constant({ type: "application/json", payload: JSON.stringify({ apiKey: "k".repeat(300_000) }) }),
);
const auth = fc.oneof(
  { weight: 5, arbitrary: fc.constant("valid") },
  { weight: 1, arbitrary: fc.constantFrom(undefined, "Bearer", "Bearer x.y.z", "Basic Zm9vOmJhcg==", `Bearer ${"A".repeat(3000)}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((s) => `Bearer ${s.replace(/[\r\n]/g, "")}`) },
);
const method = fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH") as fc.Arbitrary<"GET" | "POST" | "DELETE" | "PUT" | "PATCH">;

describe("fuzzing every route", () => {
  it(`answers ${RUNS} generated requests without a 5xx, and every 4xx names what is wrong`, async () => {
    const statuses = new Map<number, number>();
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(method, path, query, body, auth, async (m, p, q, b, a) => {
        const headers: Record<string, string> = {};
        if (a === "valid") headers.authorization = `Bearer ${validToken}`;
        else if (a !== undefined) headers.authorization = a;
        if (b?.type) headers["content-type"] = b.type;
        const res = await send(m, `${p}${q}`, headers, b?.payload);
        sent++;
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        const where = `${m} ${p.slice(0, 120)}${q.slice(0, 120)}`;
        if (res.statusCode >= 500) throw new Error(`${where} answered ${res.statusCode}: ${res.body.slice(0, 300)}`);
        if (res.statusCode >= 400 && !String(res.headers["content-type"] ?? "").includes("text/html")) {
          const error = (JSON.parse(res.body) as { error?: { type?: string; message?: string; retryable?: unknown } }).error;
          if (!error || !TIER1_ERROR_TYPES.includes(error.type as never) || typeof error.retryable !== "boolean") {
            throw new Error(`${where} answered ${res.statusCode} without the error body: ${res.body.slice(0, 300)}`);
          }
          if (typeof error.message !== "string" || error.message.length < 8) throw new Error(`${where}: an error message that names nothing: ${res.body.slice(0, 300)}`);
        }
      }),
      // Counterexamples can hold 300 kB bodies: report the failure, not the whole value.
      { numRuns: RUNS, seed: Number(process.env.AUTOFLOW_FUZZ_SEED ?? 20261128), endOnFailure: true, includeErrorInReport: true, reporter: (details) => {
        if (details.failed) throw new Error(`fuzz failed after ${details.numRuns} requests (seed ${details.seed}): ${String(details.errorInstance).slice(0, 600)}`);
      } },
    );
    const summary = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(" ");
    process.stdout.write(`[autoflow] fuzz: ${sent} requests, statuses ${summary}\n`);
    expect(sent).toBeGreaterThanOrEqual(RUNS);
    // The service is still whole afterwards.
    expect((await h.request({ method: "GET", url: "/api/integrations/stripe/connections", user: "fuzzer" })).statusCode).toBe(200);
  }, 300_000);
});
