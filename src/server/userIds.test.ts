/**
 * A user id is a token's `sub`, and the vault keys every connection by it.
 * A `sub` that is not well-formed Unicode, or holds control characters, is
 * refused with 401 on SQLite and PostgreSQL alike: PostgreSQL cannot store
 * NUL (it would be a 500), and it stores both `victim\ud800` and
 * `victim\udfff` as `victim\ufffd` (the same user, reading each other's
 * connections).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabases } from "../testing/databases.js";
import { startHarness, type Harness } from "../testing/harness.js";

type ErrorBody = { error: Record<string, unknown> };

const BAD_SUBS: [string, string][] = [
  ["with NUL", "victim\u0000"],
  ["with a lone high surrogate", "victim\ud800"],
  ["with a lone low surrogate", "victim\udfff"],
  ["with a reversed surrogate pair", "victim\udc00\ud800"],
  ["with a line feed", "victim\n"],
  ["with DEL", "victim\u007f"],
  ["with a C1 control", "victim\u0085"],
];

describe.each(testDatabases())("user ids through the HTTP API on %s", (database) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ database });
    const credential = (await h.sandbox("stripe", "/_sandbox/credentials", { body: { type: "secret" } })) as { apiKey: string };
    const created = await h.request({ method: "POST", url: "/api/integrations/stripe/connections", user: "victim", body: { apiKey: credential.apiKey } });
    expect(created.statusCode).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each(BAD_SUBS)("refuses a sub %s with 401 and the one error body, on every route", async (_name, sub) => {
    const credential = (await h.sandbox("stripe", "/_sandbox/credentials", { body: { type: "secret" } })) as { apiKey: string };
    const answers = [
      await h.request({ method: "POST", url: "/api/integrations/stripe/connections", user: sub, body: { apiKey: credential.apiKey } }),
      await h.request({ method: "GET", url: "/api/integrations/stripe/connections", user: sub }),
      await h.request({ method: "GET", url: "/api/integrations/stripe/health", user: sub }),
      await h.request({ method: "POST", url: "/api/integrations/stripe/oauth/start", user: sub }),
    ];
    for (const answer of answers) {
      expect(answer.statusCode).toBe(401);
      const body = answer.json() as ErrorBody;
      expect(body).toEqual({ error: { type: "auth", code: "unauthenticated", retryable: false, message: expect.stringMatching(/sub/) } });
    }
  });

  it("never lets a look-alike sub read or add to another user's connections", async () => {
    const credential = (await h.sandbox("stripe", "/_sandbox/credentials", { body: { type: "secret" } })) as { apiKey: string };
    await h.request({ method: "POST", url: "/api/integrations/stripe/connections", user: "victim\ud800", body: { apiKey: credential.apiKey } });
    for (const sub of ["victim\udfff", "victim\ud800", "victim\ufffd"]) {
      const listed = await h.request({ method: "GET", url: "/api/integrations/stripe/connections", user: sub });
      expect(listed.statusCode === 401 || (listed.json() as { connections: unknown[] }).connections.length === 0).toBe(true);
    }
    const own = await h.request({ method: "GET", url: "/api/integrations/stripe/connections", user: "victim" });
    expect((own.json() as { connections: { userId: string }[] }).connections.map((c) => c.userId)).toEqual(["victim"]);
  });
});
