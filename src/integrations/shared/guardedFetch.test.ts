/**
 * The connect-time guard's decisions, with a stub resolver: nothing here
 * opens a connection except to loopback, and only through the allow-list.
 */
import type { LookupAddress } from "node:dns";
import { createServer } from "node:http";
import { describe, expect, it } from "vitest";
import { createGuardedDispatcher, createGuardedFetch, guardedLookup } from "./guardedFetch.js";
import { ProviderHttp } from "./http.js";

type Stub = Record<string, LookupAddress[]>;
const stub =
  (table: Stub) =>
  (hostname: string, _options: unknown, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => {
    const found = table[hostname];
    if (!found) callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }), []);
    else callback(null, found);
  };

function decide(lookup: ReturnType<typeof guardedLookup>, hostname: string, all = false): Promise<{ error?: Error & { code?: string }; result?: unknown }> {
  return new Promise((resolve) => {
    lookup(hostname, { all }, (error, address, family) => resolve(error ? { error } : { result: all ? address : { address, family } }));
  });
}

describe("guardedLookup", () => {
  const table: Stub = {
    "public.example": [{ address: "93.184.215.14", family: 4 }],
    "rebinds.example": [
      { address: "93.184.215.14", family: 4 },
      { address: "10.1.2.3", family: 4 },
    ],
    "mapped.example": [{ address: "::ffff:127.0.0.1", family: 6 }],
    "metadata.example": [{ address: "169.254.169.254", family: 4 }],
    "sandbox.test": [{ address: "127.0.0.1", family: 4 }],
  };
  const lookup = guardedLookup(new Set(["sandbox.test"]), stub(table) as never);

  it("answers public addresses, in both lookup shapes", async () => {
    expect(await decide(lookup, "public.example")).toEqual({ result: { address: "93.184.215.14", family: 4 } });
    expect(await decide(lookup, "public.example", true)).toEqual({ result: [{ address: "93.184.215.14", family: 4 }] });
  });

  it.each(["rebinds.example", "mapped.example", "metadata.example"])("refuses %s, which resolves (partly) inward", async (host) => {
    const { error } = await decide(lookup, host);
    expect(error?.code).toBe("EAI_NONPUBLIC");
    expect(error?.message).toMatch(/not public/);
  });

  it("lets an allow-listed host through whatever it resolves to", async () => {
    expect(await decide(lookup, "sandbox.test")).toEqual({ result: { address: "127.0.0.1", family: 4 } });
  });

  it("passes resolution failures on", async () => {
    expect((await decide(lookup, "nowhere.example")).error?.code).toBe("ENOTFOUND");
  });
});

// The guard is the same over either transport: a guarded fetch, or undici requests over the guarded pools.
const transports = {
  "a guarded fetch": (allowlist: string[]) => createGuardedFetch(allowlist),
  "the guarded pools": (allowlist: string[]) => ({ dispatcher: createGuardedDispatcher(allowlist) }),
};

describe.each(Object.keys(transports) as (keyof typeof transports)[])("credentials stay with their origin, over %s", (transport) => {
  it("refuses a request to an origin the client is not bound to, before anything is sent", async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.end("{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const http = new ProviderHttp({
        provider: "test",
        displayName: "Test",
        classify: () => null,
        policy: { attempts: 3, baseDelayMs: 1, capDelayMs: 1, budgetMs: 100, maxRetryAfterMs: 1, rationale: "" },
        timeoutMs: 1000,
      }).boundTo([`http://127.0.0.1:${port}`], transports[transport]([`http://127.0.0.1:${port}`]));
      await expect(http.send({ operation: "GET /x", method: "GET", url: `http://127.0.0.1:${port}/x` })).resolves.toMatchObject({ status: 200 });
      const error = await http.send({ operation: "GET /x", method: "GET", url: `http://localhost:${port}/x` }).catch((e: unknown) => e);
      expect(error).toMatchObject({ type: "schema", code: "origin_not_allowed" });
      expect(hits).toBe(1);
    } finally {
      server.close();
    }
  });

  it("turns a connect-time refusal into a schema error, not a retried network failure", async () => {
    // localhost is loopback and not allow-listed: the guard refuses before connecting.
    const http = new ProviderHttp({
      provider: "test",
      displayName: "Test",
      classify: () => null,
      policy: { attempts: 3, baseDelayMs: 1, capDelayMs: 1, budgetMs: 100, maxRetryAfterMs: 1, rationale: "" },
      timeoutMs: 1000,
    }).boundTo(["http://localhost:8080"], transports[transport]([]));
    const error = await http.send({ operation: "GET /", method: "GET", url: "http://localhost:8080/" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: "schema", code: "base_url_refused" });
  });
});
