/**
 * The sandbox kit: what every sandbox shares. Its state outlives the process
 * through a store; one process serves a sandbox at a time and another on
 * the same store uses it and stands by; a port held by anything else is an
 * error that names it; the request log is bounded; an empty JSON body is no
 * body. Proven with the Slack sandbox, the kit's simplest user.
 */
import { createServer, type Server } from "node:http";
import { Agent, fetch as undiciFetch } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../testing/processes.js";
import { testCertificate } from "../testing/testCertificate.js";
import { startSlackSandbox } from "../integrations/slack/sandbox.js";
import type { SandboxApp, SandboxRegistration, SandboxStateStore, StartedSandbox } from "./kit.js";

/** A store in memory that counts its writes. */
class MemoryStore implements SandboxStateStore {
  readonly rows = new Map<string, SandboxRegistration & { state?: string }>();
  saves = 0;
  async register(provider: string, proposed: SandboxApp, redirectUris: readonly string[]): Promise<SandboxRegistration> {
    const row = this.rows.get(provider) ?? { ...proposed, redirectUris: [] };
    for (const uri of redirectUris) if (!row.redirectUris.includes(uri)) row.redirectUris.push(uri);
    this.rows.set(provider, row);
    return { ...row, redirectUris: [...row.redirectUris] };
  }
  async registration(provider: string) {
    const row = this.rows.get(provider);
    return row ? { ...row, redirectUris: [...row.redirectUris] } : undefined;
  }
  async loadState(provider: string) {
    return this.rows.get(provider)?.state;
  }
  async claim(provider: string, owner: string, url: string) {
    Object.assign(this.rows.get(provider) as object, { owner, url });
  }
  async saveState(provider: string, owner: string, state: string) {
    const row = this.rows.get(provider) as { state?: string; owner?: string };
    if (row.owner !== owner) return false;
    this.saves += 1;
    row.state = state;
    return true;
  }
}

const started: StartedSandbox[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) await s.close();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function slack(options: Parameters<typeof startSlackSandbox>[0]): Promise<StartedSandbox> {
  const sandbox = await startSlackSandbox(options);
  started.push(sandbox);
  return sandbox;
}
const desk = async (sandbox: StartedSandbox): Promise<string> =>
  ((await (await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as { accessToken: string }).accessToken;
/** A Slack Web API call; on a connection of its own, so that a pooled socket to a closed server is never reused. */
const authCall = async (sandbox: StartedSandbox, path: string, token: string): Promise<unknown> => {
  const dispatcher = new Agent();
  try {
    return (await (await undiciFetch(`${sandbox.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}` }, dispatcher })).json()) as unknown;
  } finally {
    await dispatcher.close();
  }
};
const authTest = (sandbox: StartedSandbox, token: string): Promise<unknown> => authCall(sandbox, "/api/auth.test", token);

describe("a sandbox with a store", () => {
  it("has written what it issued before the answer leaves, and a new process honours it", async () => {
    const store = new MemoryStore();
    const port = await freePort();
    const first = await slack({ port, persistence: store });
    const token = await desk(first);
    // No close yet: a crash now loses nothing the caller was told.
    expect(store.rows.get("slack")?.state).toContain(token);
    const teamBefore = ((await authTest(first, token)) as { team_id: string }).team_id;
    await first.close();
    started.length = 0;

    const second = await slack({ port, persistence: store });
    expect(second.url).toBe(first.url);
    expect({ clientId: second.clientId, clientSecret: second.clientSecret }).toEqual({ clientId: first.clientId, clientSecret: first.clientSecret });
    expect(await authTest(second, token)).toMatchObject({ ok: true, team_id: teamBefore });
  });

  it("does not write again a state no request changed", async () => {
    const store = new MemoryStore();
    const sandbox = await slack({ port: 0, persistence: store });
    const token = await desk(sandbox);
    const saves = store.saves;
    for (let i = 0; i < 5; i++) await authTest(sandbox, token);
    expect(store.saves).toBe(saves);
  });

  it("is used, not started again, by a second process on the same store, which takes it over when the first goes", async () => {
    const store = new MemoryStore();
    const port = await freePort();
    const first = await slack({ port, persistence: store, redirectUris: ["http://localhost:3000/cb"] });
    const second = await slack({ port, persistence: store, redirectUris: ["http://localhost:3001/cb"] });
    expect(first.role()).toBe("serving");
    expect(second.role()).toBe("remote");
    expect(second.url).toBe(first.url);
    expect(second.clientId).toBe(first.clientId);
    // Both instances' redirect URIs are registered with the one app.
    expect(store.rows.get("slack")?.redirectUris).toEqual(["http://localhost:3000/cb", "http://localhost:3001/cb"]);
    const token = await desk(first);

    await first.close();
    for (let i = 0; i < 50 && second.role() !== "serving"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(second.role()).toBe("serving");
    expect(await authTest(second, token)).toMatchObject({ ok: true });
  });

  it("uses the server the store names even when this process was given other ports (a CLI command beside the service)", async () => {
    const store = new MemoryStore();
    const first = await slack({ port: await freePort(), persistence: store });
    const otherPort = await freePort();
    const second = await slack({ port: otherPort, persistence: store, standby: false });
    expect(second.role()).toBe("remote");
    expect(second.url).toBe(first.url);
    // Nothing was started on the other port: there is one copy of the state, not two.
    const probe = createServer();
    servers.push(probe);
    await new Promise<void>((resolve, reject) => probe.once("error", reject).listen(otherPort, "127.0.0.1", resolve));
  });

  it("keeps, through a takeover, what a request in flight at the old server did", async () => {
    const store = new MemoryStore();
    const port = await freePort();
    const first = await slack({ port, persistence: store });
    const second = await slack({ port, persistence: store });
    const token = await desk(first);
    await fetch(`${first.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "delay", delayMs: 2_500, path: "/api/auth.revoke" }) });
    const revoking = authCall(first, "/api/auth.revoke", token);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The old server goes while the revocation is in flight: it finishes it and writes it before its port goes.
    await first.close();
    expect(await revoking).toMatchObject({ ok: true, revoked: true });
    for (let i = 0; i < 50 && second.role() !== "serving"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(second.role()).toBe("serving");
    expect(await authTest(second, token)).toMatchObject({ ok: false, error: "token_revoked" });
  });

  it("takes a replayed answer of /_sandbox/info for no proof: a stranger on the port is refused, and a standby says so", async () => {
    const store = new MemoryStore();
    const port = await freePort();
    const real = await slack({ port, persistence: store });
    const recorded = await (await fetch(`${real.url}/_sandbox/info?challenge=${"c".repeat(22)}`)).text();
    const logged: string[] = [];
    const standing = await slack({ port, persistence: store, log: (_level, message) => logged.push(message) });
    await real.close();
    // A stranger takes the port at once and replays what the real sandbox said.
    const stranger = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(recorded));
    servers.push(stranger);
    await new Promise<void>((resolve) => stranger.listen(port, "127.0.0.1", resolve));
    for (let i = 0; i < 30 && logged.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(logged.join("\n")).toMatch(new RegExp(`port ${port} .*not this database's slack sandbox`));
    expect(standing.role()).toBe("remote");
    await expect(slack({ port, persistence: store })).rejects.toThrow(/not this database's slack sandbox/);
  });

  it("finds, on free ports, the server the store names", async () => {
    const store = new MemoryStore();
    const first = await slack({ port: 0, persistence: store });
    const second = await slack({ port: 0, persistence: store, standby: false });
    expect(second.role()).toBe("remote");
    expect(second.url).toBe(first.url);
  });

  it("refuses a port held by something that is not this store's sandbox, naming the port and the setting", async () => {
    const port = await freePort();
    const foreign = createServer((_req, res) => res.end("not a sandbox"));
    servers.push(foreign);
    await new Promise<void>((resolve) => foreign.listen(port, "127.0.0.1", resolve));
    await expect(slack({ port, persistence: new MemoryStore() })).rejects.toThrow(new RegExp(`port ${port} .*AUTOFLOW_SANDBOX_BASE_PORT`));

    // Another database's Slack sandbox is not this one's either.
    const otherPort = await freePort();
    await slack({ port: otherPort, persistence: new MemoryStore() });
    await expect(slack({ port: otherPort, persistence: new MemoryStore() })).rejects.toThrow(/not this database's slack sandbox/);
  });
});

describe("the sandbox control plane", () => {
  it("refuses what a web page could send (CSRF): form bodies and other origins; the page's own origin is fine", async () => {
    const sandbox = await slack({});
    const faults = `${sandbox.url}/_sandbox/faults`;
    const form = await fetch(faults, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "fault=server-error" });
    expect(form.status).toBe(415);
    const crossOrigin = await fetch(faults, { method: "POST", headers: { "content-type": "application/json", origin: "https://evil.example" }, body: JSON.stringify({ fault: "server-error" }) });
    expect(crossOrigin.status).toBe(403);
    expect((await fetch(`${sandbox.url}/api/auth.test`, { method: "POST" })).status).toBe(200);
    const sameOrigin = await fetch(faults, { method: "POST", headers: { "content-type": "application/json", origin: sandbox.url }, body: JSON.stringify({ fault: "server-error", times: 1 }) });
    expect(sameOrigin.status).toBe(201);
  });

  it("keeps the newest requests only, and says how many it let go", async () => {
    const sandbox = await slack({ requestLogLimit: 3 });
    for (let i = 0; i < 5; i++) await fetch(`${sandbox.url}/api/method.${i}`, { method: "POST" });
    const log = (await (await fetch(`${sandbox.url}/_sandbox/requests`)).json()) as { requests: { path: string }[]; dropped: number; limit: number };
    expect(log.requests.map((r) => r.path)).toEqual(["/api/method.2", "/api/method.3", "/api/method.4"]);
    expect(log).toMatchObject({ dropped: 2, limit: 3 });
  });

  it("clears faults on a DELETE sent as JSON with no body", async () => {
    const sandbox = await slack({});
    await fetch(`${sandbox.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "server-error" }) });
    expect((await fetch(`${sandbox.url}/api/auth.test`, { method: "POST" })).status).toBe(500);
    const cleared = await fetch(`${sandbox.url}/_sandbox/faults`, { method: "DELETE", headers: { "content-type": "application/json" } });
    expect(cleared.status).toBe(200);
    expect((await fetch(`${sandbox.url}/api/auth.test`, { method: "POST" })).status).toBe(200);
  });

  it("holds every answer for the latency set, not just the next few, while the control plane answers at once; closing lets them go", async () => {
    const sandbox = await slack({});
    const token = await desk(sandbox);
    const control = (method: string, path: string, body?: unknown) =>
      fetch(`${sandbox.url}/_sandbox/${path}`, { method, ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }) }).then((r) => r.json());
    expect(await control("PUT", "latency", { latencyMs: 600_000 })).toEqual({ latencyMs: 600_000 });
    let settled = 0;
    const calls = Array.from({ length: 3 }, () => authTest(sandbox, token).finally(() => settled++));
    type Log = { requests: { path: string; status?: number }[] };
    let log: Log = { requests: [] };
    while (log.requests.length < 3) log = (await control("GET", "requests")) as Log;
    // All three arrived and none was answered; the control plane's own answers did not wait.
    expect(log.requests.map((r) => [r.path, r.status])).toEqual(Array.from({ length: 3 }, () => ["/api/auth.test", undefined]));
    expect(await control("GET", "latency")).toEqual({ latencyMs: 600_000 });
    expect(settled).toBe(0);
    started.splice(started.indexOf(sandbox), 1);
    await sandbox.close();
    for (const answer of await Promise.all(calls)) expect(answer).toMatchObject({ ok: true });
  });

  it("keeps the latency beside faults, not in their queue, and refuses what is not a latency", async () => {
    const sandbox = await slack({});
    const put = (body: unknown) => fetch(`${sandbox.url}/_sandbox/latency`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await put({ latencyMs: 1 })).status).toBe(200);
    const fault = (await (await fetch(`${sandbox.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "server-error", times: 1 }) })).json()) as { pending: unknown[] };
    expect(fault.pending).toEqual([{ fault: "server-error", times: 1 }]);
    expect((await fetch(`${sandbox.url}/api/auth.test`, { method: "POST" })).status).toBe(500);
    expect((await fetch(`${sandbox.url}/api/auth.test`, { method: "POST" })).status).toBe(200);
    for (const bad of [{ latencyMs: -1 }, { latencyMs: 1.5 }, { latencyMs: 600_001 }, { delayMs: 20 }]) expect((await put(bad)).status, JSON.stringify(bad)).toBe(400);
    expect(await (await fetch(`${sandbox.url}/_sandbox/latency`)).json()).toEqual({ latencyMs: 1 });
    expect(await (await fetch(`${sandbox.url}/_sandbox/latency`, { method: "DELETE" })).json()).toEqual({ latencyMs: 0 });
  });

  it("answers the desk with only what POST .../connections takes when asked for that form", async () => {
    const sandbox = await slack({});
    const answer = (await (await fetch(`${sandbox.url}/_sandbox/credentials?form=connect`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Record<string, unknown>;
    expect(Object.keys(answer)).toEqual(["accessToken"]);
  });
});

describe("a sandbox over https", () => {
  it("listens over https with the given key and certificate, reports an https URL, and another process on the same store finds it there", async () => {
    const tls = testCertificate();
    const store = new MemoryStore();
    const sandbox = await slack({ tls, persistence: store });
    expect(sandbox.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const token = await (async () => {
      const dispatcher = new Agent({ connect: { ca: tls.cert } });
      try {
        const res = await undiciFetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}", dispatcher });
        return ((await res.json()) as { accessToken: string }).accessToken;
      } finally {
        await dispatcher.close();
      }
    })();
    const trusted = new Agent({ connect: { ca: tls.cert } });
    try {
      const res = await undiciFetch(`${sandbox.url}/api/auth.test`, { method: "POST", headers: { authorization: `Bearer ${token}` }, dispatcher: trusted });
      expect(await res.json()).toMatchObject({ ok: true });
    } finally {
      await trusted.close();
    }
    // A client that does not trust the certificate cannot talk to it; plain http is not served on the port.
    await expect(fetch(`${sandbox.url}/_sandbox/info`)).rejects.toThrow();
    // The https probe proves the sandbox on the store is this one: the second process uses it and stands by.
    const second = await slack({ tls, persistence: store, standby: false });
    expect(second.role()).toBe("remote");
    expect(second.url).toBe(sandbox.url);
  });
});
