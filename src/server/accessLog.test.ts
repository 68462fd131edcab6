/**
 * The access log: one line a request as it is answered, naming the request
 * (its URL's secrets redacted), its status and its time; nothing as it arrives.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../testing/harness.js";

let h: Harness;
const lines: string[] = [];
beforeAll(async () => {
  h = await startHarness({ logLines: lines });
});
afterAll(async () => {
  await h?.close();
});

type Line = { msg: string; req?: { id: string; method: string; url: string }; res?: { statusCode: number }; responseTime?: number };
const parsed = (): Line[] => lines.map((line) => JSON.parse(line) as Line);

describe("the access log", () => {
  it("writes one line a request, once answered, with its method, redacted URL, status and time", async () => {
    lines.length = 0;
    await h.request({ method: "GET", url: "/healthz?code=the-code&state=the-state&page=2" });
    await h.request({ method: "GET", url: "/api/integrations/nope/connections", user: "log-user" });
    const access = parsed().filter((l) => l.req !== undefined);
    expect(parsed().some((l) => l.msg === "incoming request")).toBe(false);
    expect(access.map((l) => [l.msg, l.req?.method, l.req?.url, l.res?.statusCode])).toEqual([
      ["request completed", "GET", "/healthz?code=%5Bredacted%5D&state=%5Bredacted%5D&page=2", 200],
      ["request completed", "GET", "/api/integrations/nope/connections", 404],
    ]);
    for (const line of access) expect(line.responseTime).toEqual(expect.any(Number));
    expect(lines.join("\n")).not.toMatch(/the-code|the-state/);
  });
});
