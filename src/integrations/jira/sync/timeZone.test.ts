/**
 * The pull with the account 14 hours ahead of UTC (Pacific/Kiritimati) and
 * 12 hours behind (Etc/GMT+12), where a cursor written in UTC, or read
 * carelessly, misses a day's changes or re-reads them: issues changed at the
 * cursor's very millisecond, later in its minute, at the next minute's first
 * millisecond, and while a pull is between two pages. After every pull the
 * mirror holds exactly the sandbox's issues, and every version pulled is one
 * event, none missing, none twice.
 *
 * The sandbox runs on a clock the test moves (the minutes the cases need),
 * near real time so that the grant's tokens stay good.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Harness } from "../../../testing/harness.js";
import { connectJira, PULL_SCOPES, startSyncHarness } from "../../../testing/jiraSync.js";
import { parseJiraTime } from "./jqlDate.js";

type Json = Record<string, unknown>;
type Event = { seq: number; kind: string; key: string; updated: string | null };
const USER = "tz-user";
const API = "/api/integrations/jira";
const MINUTE = 60_000;

const ZONES = [
  { timeZone: "Pacific/Kiritimati", offsetMs: 14 * 60 * MINUTE, suffix: "+1400" },
  { timeZone: "Etc/GMT+12", offsetMs: -12 * 60 * MINUTE, suffix: "-1200" },
];

/** The local minute of `ms` as JQL writes it, worked out from the zone's fixed offset (not by the code under test). */
const localMinute = (ms: number, offsetMs: number): string => {
  const iso = new Date(Math.floor(ms / MINUTE) * MINUTE + offsetMs).toISOString();
  return `${iso.slice(0, 10).replaceAll("-", "/")} ${iso.slice(11, 16)}`;
};

describe.each(ZONES)("the pull with the account in $timeZone", ({ timeZone, offsetMs, suffix }) => {
  let h: Harness;
  const clock = { ms: 0 };
  /** What the sandbox holds: summary and `updated` of every issue by key. */
  const jira = new Map<string, { summary: string; updatedMs: number }>();
  /** Every event seen so far. */
  const feed: Event[] = [];

  afterEach(async () => {
    await h?.close();
    jira.clear();
    feed.length = 0;
  });

  const call = (method: "GET" | "POST" | "PUT", url: string, body?: unknown) => h.request({ method, url, user: USER, ...(body === undefined ? {} : { body }) });
  const start = async (): Promise<void> => {
    // Ten minutes in the past, on a minute boundary: the cases below move the clock within the next ten.
    clock.ms = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
    const minuteStart = clock.ms;
    h = await startSyncHarness({ sandboxOptions: { jira: { timeZone, now: () => clock.ms } } }, PULL_SCOPES);
    await connectJira(h, USER);
    // The tightest overlap there is: a minute.
    const configured = await call("PUT", `${API}/sync/config`, { projects: ["SBX"], direction: "pull", overlapSeconds: 60 });
    expect(configured.statusCode, configured.body).toBe(200);
    clock.ms = minuteStart;
  };
  const seed = async (count: number, summary: string): Promise<string[]> => {
    const made = (await h.sandbox("jira", "/_sandbox/jira/issues", { body: { count, fields: { summary } } })) as { issues: { key: string }[] };
    made.issues.forEach((issue, i) => jira.set(issue.key, { summary: summary.replaceAll("{n}", String(i + 1)), updatedMs: clock.ms }));
    return made.issues.map((i) => i.key);
  };
  const edit = async (key: string, summary: string): Promise<void> => {
    const answer = (await h.sandbox("jira", `/_sandbox/jira/issues/${key}`, { method: "PATCH", body: { fields: { summary } } })) as { updated: string };
    // Written in the account's zone, at the clock's millisecond.
    expect(answer.updated.endsWith(suffix), answer.updated).toBe(true);
    expect(parseJiraTime(answer.updated)).toBe(clock.ms);
    jira.set(key, { summary, updatedMs: clock.ms });
  };
  const pull = async (): Promise<Json> => {
    const res = await call("POST", `${API}/sync`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { run: Json }).run;
  };
  /** The events since the last look, as `kind key updatedMs`, sorted. */
  const newEvents = async (): Promise<string[]> => {
    const after = feed.length === 0 ? 0 : (feed[feed.length - 1] as Event).seq;
    const { events } = (await call("GET", `${API}/tickets/events?after=${after}&limit=1000`)).json() as { events: Event[] };
    feed.push(...events);
    return events.map((e) => `${e.kind} ${e.key} ${parseJiraTime(e.updated)}`).sort();
  };
  const expected = (kind: string, keys: string[]): string[] => keys.map((key) => `${kind} ${key} ${jira.get(key)?.updatedMs}`);
  /** The mirror equals the sandbox: the same keys, each with its summary and `updated` (in the account's zone). */
  const expectMirrorIsJira = async (): Promise<void> => {
    const { tickets } = (await call("GET", `${API}/tickets?limit=1000`)).json() as { tickets: { key: string; summary: string; updated: string }[] };
    for (const t of tickets) expect(t.updated.endsWith(suffix), t.updated).toBe(true);
    const mirrored = tickets.map((t) => `${t.key} ${t.summary} ${parseJiraTime(t.updated)}`).sort();
    expect(mirrored).toEqual([...jira].map(([key, v]) => `${key} ${v.summary} ${v.updatedMs}`).sort());
  };
  /** Every version of every issue the pulls brought is exactly one event: one `created` per issue, then its updates. */
  const expectOneEventPerVersion = (): void => {
    const versions = feed.map((e) => `${e.key} ${e.updated}`);
    expect(new Set(versions).size).toBe(versions.length);
    for (const key of jira.keys()) expect(feed.filter((e) => e.key === key && e.kind === "created"), key).toHaveLength(1);
  };
  const cursor = async (): Promise<{ updatedMs: number; jqlFrom: string; timeZone: string }> => ((await call("GET", `${API}/sync`)).json() as { cursor: { updatedMs: number; jqlFrom: string; timeZone: string } }).cursor;

  it("misses nothing and doubles nothing changed at, within and just after the cursor's minute", async () => {
    await start();
    const m = clock.ms;
    clock.ms = m - 3 * MINUTE + 7_000;
    const before = await seed(20, "Before {n}");
    clock.ms = m + 10_000;
    const batch = await seed(150, "Batch {n}");

    expect(await pull()).toMatchObject({ counts: { created: 170, updated: 0 } });
    expect(await newEvents()).toEqual(expected("created", [...before, ...batch]).sort());
    await expectMirrorIsJira();
    // The cursor is the newest `updated` seen, written less the overlap as the minute in the account's zone.
    expect(await cursor()).toMatchObject({ updatedMs: m + 10_000, timeZone, jqlFrom: localMinute(m + 10_000 - MINUTE, offsetMs) });

    // At the cursor's very millisecond (a new issue), a millisecond after it, and at the minute's end.
    const [same] = await seed(1, "Same instant");
    clock.ms = m + 10_001;
    await edit(batch[0] as string, "Batch 1, edited");
    clock.ms = m + 30_000;
    await edit(before[4] as string, "Before 5, edited");
    clock.ms = m + MINUTE - 1;
    await edit(batch[149] as string, "Batch 150, edited");
    expect(await pull()).toMatchObject({ counts: { created: 1, updated: 3, stale: 0 } });
    expect(await newEvents()).toEqual([...expected("created", [same as string]), ...expected("updated", [batch[0] as string, before[4] as string, batch[149] as string])].sort());
    await expectMirrorIsJira();
    expect(await cursor()).toMatchObject({ updatedMs: m + MINUTE - 1, jqlFrom: localMinute(m - 1, offsetMs) });

    // The next minute's first millisecond, and an issue changed a second time.
    clock.ms = m + MINUTE;
    await edit(batch[1] as string, "Batch 2, edited");
    const next = await seed(2, "Next minute {n}");
    clock.ms = m + MINUTE + 1;
    await edit(batch[0] as string, "Batch 1, edited twice");
    expect(await pull()).toMatchObject({ counts: { created: 2, updated: 2, stale: 0 } });
    expect(await newEvents()).toEqual([...expected("created", next), ...expected("updated", [batch[1] as string, batch[0] as string])].sort());
    await expectMirrorIsJira();

    // Nothing changed: the overlap reads the cursor's minute again, and nothing is applied twice.
    const again = await pull();
    expect(again).toMatchObject({ counts: { created: 0, updated: 0, stale: 0 } });
    expect((again.counts as Json).unchanged).toBeGreaterThan(0);
    expect(await newEvents()).toEqual([]);
    await expectMirrorIsJira();
    expectOneEventPerVersion();
  });

  it("misses nothing changed while a pull is between two pages, minutes after the issues it has not read yet", async () => {
    await start();
    const m = clock.ms;
    // 150 issues over the 15 minutes before the first pull, ten a minute: its first page is the oldest 100.
    const keys: string[] = [];
    for (let i = 0; i < 15; i++) {
      clock.ms = m - 15 * MINUTE + i * MINUTE + 5_000;
      keys.push(...(await seed(10, `Minute ${i} issue {n}`)));
    }
    const created = expected("created", keys);
    const cloudId = ((await call("GET", `${API}/sync/config`)).json() as { config: Json }).config.site as string;
    const searchPath = `/ex/jira/${cloudId}/rest/api/3/search/jql`;
    await h.sandbox("jira", "/_sandbox/requests", { method: "DELETE" });
    await h.sandbox("jira", "/_sandbox/faults", { body: { fault: "delay", delayMs: 3_000, path: searchPath, skip: 1, times: 1 } });
    const running = pull();
    // The second page's request has arrived and waits (logged, not answered yet).
    for (;;) {
      const searches = (await h.sandboxRequests("jira")).filter((r) => r.path === searchPath);
      if (searches.length >= 2 && searches[1]?.status === undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Five minutes after the newest issue, twenty of the first page's issues change: they move behind the rest.
    clock.ms = m + 5 * MINUTE;
    const during = keys.slice(0, 20);
    for (const key of during) await edit(key, `${key}, edited during the pull`);
    await running;
    // Whatever the first pull did not see, the next one brings; then nothing is left.
    await pull();
    expect(await newEvents()).toEqual([...created, ...expected("updated", during)].sort());
    await expectMirrorIsJira();
    await pull();
    expect(await newEvents()).toEqual([]);
    expectOneEventPerVersion();
  });
});
