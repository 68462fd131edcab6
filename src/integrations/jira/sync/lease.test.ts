/**
 * The run lease after a crash: a lease whose holder was a process of this
 * machine that is gone (killed with SIGKILL mid-run) is taken over at once,
 * not waited out; one whose holder still runs, or runs on another machine,
 * keeps the sync to one run (409 sync_running) until it lapses.
 */
import { spawn } from "node:child_process";
import { readlinkSync } from "node:fs";
import { hostname } from "node:os";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Harness } from "../../../testing/harness.js";
import { connectJira, PULL_SCOPES, startSyncHarness } from "../../../testing/jiraSync.js";

type Json = Record<string, unknown>;
const USER = "lease-user";
const API = "/api/integrations/jira";

/** A node process that sleeps until killed, and its pid. */
function sleeper() {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return { pid: child.pid as number, kill: async () => (child.kill("SIGKILL"), await exited) };
}

describe("the ticket sync's run lease after a crash", () => {
  let h: Harness;
  let connectionId: string;
  beforeEach(async () => {
    h = await startSyncHarness({}, PULL_SCOPES);
    await connectJira(h, USER);
    const configured = await h.request({ method: "PUT", url: `${API}/sync/config`, user: USER, body: { projects: ["SBX"], direction: "pull" } });
    expect(configured.statusCode, configured.body).toBe(200);
    connectionId = (configured.json() as { connectionId: string }).connectionId;
    await h.sandbox("jira", "/_sandbox/jira/issues", { body: { count: 3 } });
  });
  afterEach(async () => {
    await h.close();
  });

  const run = () => h.request({ method: "POST", url: `${API}/sync`, user: USER });
  /** A lease held for the next two minutes by `holder`, as a run in progress holds it. */
  const held = (holder: string) => h.service.ticketSync.internals.mirror.takeLease(connectionId, holder, Date.now(), Date.now() + 120_000);
  const here = `${hostname()}/${process.platform === "linux" ? readlinkSync("/proc/self/ns/pid") : "-"}`;

  it("takes over at once the lease of a process of this machine that is gone", async () => {
    const gone = sleeper();
    await gone.kill();
    expect(await held(`${here}/${gone.pid}/abc`)).toBe(true);
    const res = await run();
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json() as { run: { counts: Json } }).run.counts).toMatchObject({ created: 3 });
    // Released at the end of the run.
    expect(await h.service.ticketSync.internals.mirror.leaseHolder(connectionId)).toBeNull();
  });

  it("leaves the lease of a process that still runs, or of another machine, until it lapses", async () => {
    const alive = sleeper();
    try {
      expect(await held(`${here}/${alive.pid}/abc`)).toBe(true);
      expect(await run()).toMatchObject({ statusCode: 409 });
      expect((await run()).json()).toMatchObject({ error: { code: "sync_running" } });
    } finally {
      await alive.kill();
    }
    await h.service.ticketSync.internals.mirror.releaseLease(connectionId, `${here}/${alive.pid}/abc`);
    // A holder on another host, whatever its pid: this machine cannot tell whether it runs.
    expect(await held(`elsewhere.invalid/${here.split("/")[1]}/999999/abc`)).toBe(true);
    expect((await run()).statusCode).toBe(409);
    // A holder without the host and pid (an instance of before): only its lapse frees it.
    await h.service.ticketSync.internals.mirror.releaseLease(connectionId, `elsewhere.invalid/${here.split("/")[1]}/999999/abc`);
    expect(await held("Zm9vYmFyYmF6")).toBe(true);
    expect((await run()).statusCode).toBe(409);
  });
});
