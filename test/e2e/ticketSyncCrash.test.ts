/**
 * The ticket sync killed in the middle of a page, for real: a `serve`
 * process on SQLite pulls 3,000 seeded issues from its in-process Jira
 * sandbox with every search answer slowed, and gets SIGKILL while it waits
 * for a page, pages already committed before it. Started again on the same
 * data folder (the sandbox's issues and grants are in its store, its port the
 * same), the sync resumes and runs to the end: the mirror holds every issue
 * of the sandbox, and the change feed has exactly one `created` for each,
 * nothing lost, nothing applied twice.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mintUserToken } from "../../src/server/auth.js";
import { apiOf, connectWithOAuth, sandboxUrls } from "../../src/testing/connectAll.js";
import { freePort, killStartedInstances, sqliteServeEnv, startInstance, stopInstance, type Instance } from "../../src/testing/processes.js";

type Json = Record<string, unknown>;
const ISSUES = 3_000;
const API = "/api/integrations/jira";

describe("the ticket sync killed with SIGKILL in the middle of a page (SQLite)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-sync-crash-"));
  let service: Instance | undefined;

  afterAll(async () => {
    await stopInstance(service);
    killStartedInstances();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("resumes after the crash from its last committed page: every issue mirrored, each one `created` event", async () => {
    const port = await freePort();
    const jwtSecret = randomBytes(32).toString("base64url");
    const env = await sqliteServeEnv(dataDir, port, jwtSecret);
    service = await startInstance(env, port);
    const token = await mintUserToken(jwtSecret, "alice");
    let api = apiOf(service.base, token);
    const jira = (await sandboxUrls(service.base, token)).jira;
    const control = async (method: string, path: string, body?: unknown): Promise<Json> => {
      const res = await fetch(`${jira}${path}`, { method, headers: { "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      expect(res.status, path).toBeLessThan(300);
      return (await res.json()) as Json;
    };

    await connectWithOAuth("jira", token, service.base);
    const seeded = (await control("POST", "/_sandbox/jira/issues", { count: ISSUES, fields: { summary: "Crash test {n}" } })).issues as { id: string; key: string }[];
    expect(seeded).toHaveLength(ISSUES);
    const configured = await api("PUT", `${API}/sync/config`, { projects: ["SBX"], direction: "pull" });
    expect(configured.status, configured.text).toBe(200);
    const searchPath = `/ex/jira/${(configured.json.config as { site: string }).site}/rest/api/3/search/jql`;

    // Every search answer waits 400 ms in the sandbox: the sync spends most of its time inside a page.
    await control("DELETE", "/_sandbox/requests");
    await control("POST", "/_sandbox/faults", { fault: "delay", delayMs: 400, path: searchPath, times: 1000 });
    const crashed = api("POST", `${API}/sync`).then(
      () => "answered",
      () => "connection lost",
    );
    // Killed once three pages are committed and the next one's search is under way (asked, not answered).
    let pagesDone: number;
    for (let i = 0; ; i++) {
      const status = (await api("GET", `${API}/sync`)).json as { resumeFrom: { pagesDone: number } | null };
      const searches = ((await control("GET", "/_sandbox/requests")).requests as { path: string; status?: number }[]).filter((r) => r.path === searchPath);
      pagesDone = status.resumeFrom?.pagesDone ?? 0;
      if (pagesDone >= 3 && searches.length === pagesDone + 1 && searches[pagesDone]?.status === undefined) break;
      if (i > 600) throw new Error(`the sync never got to its fourth page: ${JSON.stringify(status)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await stopInstance(service, "SIGKILL");
    expect(await crashed).toBe("connection lost");

    service = await startInstance(env, port);
    api = apiOf(service.base, token);
    expect((await sandboxUrls(service.base, token)).jira).toBe(jira);
    // What the killed process committed is where the run goes on.
    const before = (await api("GET", `${API}/sync`)).json as { running: boolean; resumeFrom: { pagesDone: number } | null; cursor: unknown };
    expect(before).toMatchObject({ running: false, cursor: null });
    expect(before.resumeFrom?.pagesDone).toBeGreaterThanOrEqual(pagesDone);
    // The page the process died in left nothing: what is mirrored is what the committed pages' events say.
    const mirroredBefore = await allTickets();
    expect(mirroredBefore.length).toBeGreaterThanOrEqual(300);
    expect(mirroredBefore.length).toBeLessThan(ISSUES);
    expect(await allEvents()).toHaveLength(mirroredBefore.length);

    const resumed = await api("POST", `${API}/sync`);
    expect(resumed.status, resumed.text).toBe(200);
    expect((resumed.json.run as Json).counts).toMatchObject({ created: ISSUES, updated: 0, stale: 0 });
    expect(((await api("GET", `${API}/sync`)).json as Json).resumeFrom).toBeNull();
    // Resumed, not started over: the new process searched only for the pages left (and once for the delete scan).
    const searchesAfter = ((await control("GET", "/_sandbox/requests")).requests as { path: string }[]).filter((r) => r.path === searchPath);
    expect(searchesAfter).toHaveLength(((resumed.json.run as { counts: { pages: number } }).counts.pages - (before.resumeFrom?.pagesDone ?? 0)) + 1);

    // The mirror is the sandbox's issues, each once.
    const mirrored = await allTickets();
    expect(mirrored.map((t) => t.key).sort()).toEqual(seeded.map((i) => i.key).sort());
    // The change feed: one `created` per issue, nothing else.
    const events = await allEvents();
    expect(events.filter((e) => e.kind !== "created")).toEqual([]);
    expect(events).toHaveLength(ISSUES);
    expect(new Set(events.map((e) => e.key)).size).toBe(ISSUES);

    async function allEvents(): Promise<{ kind: string; key: string }[]> {
      const out: { kind: string; key: string }[] = [];
      for (let after = 0; ; ) {
        const page = (await api("GET", `${API}/tickets/events?after=${after}&limit=1000`)).json as { events: { kind: string; key: string }[]; next: number };
        if (page.events.length === 0) return out;
        out.push(...page.events);
        after = page.next;
      }
    }
    async function allTickets(): Promise<{ key: string }[]> {
      const out: { key: string }[] = [];
      for (let cursor: string | undefined; ; ) {
        const page = (await api("GET", `${API}/tickets?limit=1000${cursor ? `&cursor=${cursor}` : ""}`)).json as { tickets: { key: string }[]; nextCursor?: string };
        out.push(...page.tickets);
        if (!page.nextCursor) return out;
        cursor = page.nextCursor;
      }
    }
  }, 90_000);
});
