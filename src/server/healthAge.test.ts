/**
 * GET .../health as dashboards poll it: within the service's max age of the
 * last check (a test, a probe, a call, the sweep) the stored envelope is the
 * answer, with no provider call and an Age header; `maxAge=0` asks for a
 * probe now; past the max age the next poll probes and records again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../testing/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config: { healthMaxAgeSeconds: 30 } });
});
afterAll(async () => {
  await h?.close();
});

type Envelope = { status: string; checkedAt: string; details: { auth: boolean; errorType?: string } };

async function connect(user: string): Promise<string> {
  const credential = await h.sandbox("stripe", "/_sandbox/credentials?form=connect", { body: {} });
  const res = await h.request({ method: "POST", url: "/api/integrations/stripe/connections", user, body: credential });
  expect(res.statusCode, res.body).toBe(201);
  return (res.json() as { id: string }).id;
}
const probes = async (): Promise<number> => (await h.sandboxRequests("stripe")).filter((r) => r.path === "/v1/account").length;
const health = (user: string, query = "") => h.request({ method: "GET", url: `/api/integrations/stripe/health${query}`, user });

describe("GET .../health within the max age", () => {
  it("answers the stored envelope without a provider call, then probes once it is older than the max age", async () => {
    await connect("age-poll");
    // The connect's own who-am-I recorded the first envelope.
    const first = await health("age-poll");
    expect(first.statusCode).toBe(200);
    const recorded = first.json() as Envelope;
    expect(recorded.status).toBe("ok");

    const before = await probes();
    await h.sandbox("stripe", "/_sandbox/faults", { body: { fault: "revoke-all" } });
    h.clock.advance(10_000);
    const polled = await health("age-poll");
    expect(polled.json()).toEqual(recorded);
    expect(Number(polled.headers.age)).toBeGreaterThanOrEqual(10);
    expect(await probes()).toBe(before);

    // Past the max age: a probe, which sees the revoked key and records it.
    h.clock.advance(21_000);
    const probed = await health("age-poll");
    expect((probed.json() as Envelope).status).toBe("down");
    expect(probed.headers.age).toBe("0");
    expect(await probes()).toBe(before + 1);
    // ...and that is what the next poll answers, again without a call.
    expect((await health("age-poll")).json()).toEqual(probed.json());
    expect(await probes()).toBe(before + 1);
    await h.sandbox("stripe", "/_sandbox/faults", { method: "DELETE" });
  });

  it("probes now for maxAge=0, and takes a shorter max age from the request", async () => {
    const id = await connect("age-fresh");
    const before = await probes();
    const now = await health("age-fresh", `?maxAge=0&connectionId=${id}`);
    expect(now.statusCode).toBe(200);
    expect(await probes()).toBe(before + 1);
    h.clock.advance(5_000);
    await health("age-fresh", "?maxAge=10");
    expect(await probes()).toBe(before + 1);
    await health("age-fresh", "?maxAge=4");
    expect(await probes()).toBe(before + 2);
  });

  it("refuses a maxAge that is not a whole number of seconds within a day, naming it", async () => {
    await connect("age-bad");
    for (const bad of ["-1", "1.5", "soon", "86401"]) {
      const res = await health("age-bad", `?maxAge=${bad}`);
      expect(res.statusCode, bad).toBe(400);
      expect((res.json() as { error: { code: string; field?: string } }).error).toMatchObject({ code: "invalid_input", field: "maxAge" });
    }
  });

  it("answers a disconnected connection as down without any call, whatever the max age", async () => {
    const id = await connect("age-gone");
    expect((await h.request({ method: "DELETE", url: `/api/integrations/stripe/connections/${id}`, user: "age-gone" })).statusCode).toBe(200);
    const before = await probes();
    const res = await health("age-gone", `?connectionId=${id}&maxAge=600`);
    expect((res.json() as Envelope).status).toBe("down");
    expect(await probes()).toBe(before);
  });
});
