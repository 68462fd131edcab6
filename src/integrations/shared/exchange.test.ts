/**
 * The two ways of making an exchange answer alike: undici's `request` over a
 * dispatcher (the default) and a fetch (injected), for repeated headers,
 * bodies within, at and past the bound (declared or streamed), empty bodies,
 * redirects (handed back, never followed), a body cut off by a closed
 * connection, and the timeout, before the headers or in the middle of the body.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dispatcherExchange, fetchExchange, type Exchange } from "./exchange.js";

let server: Server;
let base: string;
const hits: string[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? "");
    if (req.url === "/cookies") {
      res.setHeader("set-cookie", ["a=1", "b=2"]);
      res.setHeader("x-rate", "5");
      return res.end("ok");
    }
    if (req.url === "/declared") return res.writeHead(200, { "content-length": "2000" }).end("x".repeat(2000));
    if (req.url === "/streamed") {
      res.writeHead(200);
      for (let i = 0; i < 20; i++) res.write("y".repeat(100));
      return res.end();
    }
    if (req.url === "/empty") return res.writeHead(204).end();
    // Never answers; or sends its head and part of a body, then nothing more.
    if (req.url === "/silent") return;
    if (req.url === "/stalled") return void res.writeHead(200, { "content-length": "1000" }).write("z".repeat(10));
    // Sends its head and part of the body it declared, then closes the connection.
    if (req.url === "/cut") {
      res.writeHead(200, { "content-length": "1000" }).write("c".repeat(300));
      return void setTimeout(() => res.socket?.destroy(), 20);
    }
    if (req.url === "/moved") return res.writeHead(302, { location: "/elsewhere" }).end();
    if (req.url === "/echo") {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => res.end(JSON.stringify({ method: req.method, body, type: req.headers["content-type"] })));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));
const init = (more: { maxResponseBytes?: number; method?: string; body?: string; headers?: Record<string, string> } = {}) => ({ method: "GET", headers: {}, timeoutMs: 5_000, ...more });

describe.each([
  ["undici request over a dispatcher", dispatcherExchange()],
  ["a fetch", fetchExchange(fetch)],
] as [string, Exchange][])("an exchange through %s", (_name, exchange) => {
  it("reads the status, every header (repeated ones too) and the body", async () => {
    const answer = await exchange(`${base}/cookies`, init());
    expect(answer.status).toBe(200);
    expect(answer.headers.get("x-rate")).toBe("5");
    expect(answer.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
    expect(text(answer.bytes)).toBe("ok");
  });

  it("sends the method, headers and body", async () => {
    const answer = await exchange(`${base}/echo`, init({ method: "POST", body: "a=1", headers: { "content-type": "application/x-www-form-urlencoded" } }));
    expect(JSON.parse(text(answer.bytes) as string)).toEqual({ method: "POST", body: "a=1", type: "application/x-www-form-urlencoded" });
  });

  it("reads a body at the bound, and none past it, declared or streamed", async () => {
    expect(text((await exchange(`${base}/declared`, init({ maxResponseBytes: 2000 }))).bytes)).toHaveLength(2000);
    expect((await exchange(`${base}/declared`, init({ maxResponseBytes: 1999 }))).bytes).toBeUndefined();
    expect((await exchange(`${base}/streamed`, init({ maxResponseBytes: 1000 }))).bytes).toBeUndefined();
    expect(text((await exchange(`${base}/streamed`, init())).bytes)).toHaveLength(2000);
  });

  it("fails once its time is up, whether the head has not come or the body stopped coming, and clears its timer", async () => {
    for (const path of ["/silent", "/stalled"]) {
      const failed = await exchange(`${base}${path}`, { ...init(), timeoutMs: 150 }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(failed?.name, path).toMatch(/^(AbortError|TimeoutError)$/);
    }
    // An exchange that finished leaves no timer behind to keep the process up or fire later.
    const before = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    await exchange(`${base}/cookies`, { ...init(), timeoutMs: 60_000 });
    expect(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length).toBeLessThanOrEqual(before);
  });

  it("fails when the connection closes before the body it declared is whole, rather than answer part of it", async () => {
    const failed = await exchange(`${base}/cut`, init()).then(
      (answer) => ({ answered: text(answer.bytes)?.length }),
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(Error);
  });

  it("answers an empty body as no bytes, and hands a redirect back without following it", async () => {
    expect((await exchange(`${base}/empty`, init())).bytes).toEqual(new Uint8Array(0));
    hits.length = 0;
    const moved = await exchange(`${base}/moved`, init());
    expect([moved.status, moved.headers.get("location")]).toEqual([302, "/elsewhere"]);
    expect(hits).toEqual(["/moved"]);
  });
});
