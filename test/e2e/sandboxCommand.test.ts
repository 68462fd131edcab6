/**
 * `autoflow-integrations sandbox` as QA runs it: every connector's sandbox
 * alone, on loopback, on the stable ports (AUTOFLOW_SANDBOX_BASE_PORT plus
 * the connector's index in registry order), answering as this data folder's
 * sandbox, gone with exit code 0 after SIGTERM, and what it issued kept in
 * the data folder for the next run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROVIDER_IDS } from "../../src/integrations/registry.js";
import { freePort, ROOT, sqliteServeEnv } from "../../src/testing/processes.js";

type Running = { child: ChildProcess; urls: Record<string, string>; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> };

const children: ChildProcess[] = [];

/** Starts `sandbox` and waits for its line per provider: `<provider>  <url>`. */
async function startSandbox(env: NodeJS.ProcessEnv): Promise<Running> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "sandbox"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.split("\n").filter((l) => l.trim()).length >= PROVIDER_IDS.length) resolve();
    });
    void exited.then(({ code }) => reject(new Error(`sandbox exited ${code}:\n${stdout}\n${stderr}`)));
  });
  const urls = Object.fromEntries(stdout.trim().split("\n").map((line) => line.trim().split(/\s+/) as [string, string]));
  return { child, urls, exited };
}

async function stop(running: Running): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  process.kill(-(running.child.pid as number), "SIGTERM");
  return running.exited;
}

const info = (url: string) => fetch(new URL("/_sandbox/info", url), { headers: { connection: "close" } });
const slackAuthTest = async (url: string, token: string) =>
  (await (await fetch(new URL("/api/auth.test", url), { method: "POST", headers: { authorization: `Bearer ${token}`, connection: "close" } })).json()) as unknown;

describe("sandbox command", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-sandbox-cmd-"));

  afterAll(() => {
    for (const child of children) if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("serves every sandbox on its stable loopback port until SIGTERM, and keeps what it issued for the next run", async () => {
    const env = await sqliteServeEnv(dataDir, await freePort(), "a-jwt-secret-of-at-least-32-characters-long");
    const basePort = Number(env.AUTOFLOW_SANDBOX_BASE_PORT);
    const first = await startSandbox(env);
    expect(Object.keys(first.urls)).toEqual(PROVIDER_IDS);
    for (const [index, id] of PROVIDER_IDS.entries()) {
      const url = new URL(first.urls[id] as string);
      expect(["127.0.0.1", "localhost", "[::1]"]).toContain(url.hostname);
      expect(Number(url.port), id).toBe(basePort + index);
      const answer = await info(url.href);
      expect(answer.status, id).toBe(200);
      expect(await answer.json()).toMatchObject({ provider: id });
    }
    const slack = first.urls.slack as string;
    const desk = await fetch(new URL("/_sandbox/credentials?form=connect", slack), { method: "POST", headers: { "content-type": "application/json", connection: "close" }, body: "{}" });
    const { accessToken } = (await desk.json()) as { accessToken: string };
    expect(await slackAuthTest(slack, accessToken)).toMatchObject({ ok: true });

    expect(await stop(first)).toEqual({ code: 0, signal: null });
    for (const id of PROVIDER_IDS) await expect(info(first.urls[id] as string)).rejects.toThrow();

    // Started again: the same ports, and the token issued before still works.
    const second = await startSandbox(env);
    expect(second.urls).toEqual(first.urls);
    expect(await slackAuthTest(slack, accessToken)).toMatchObject({ ok: true });
    expect(await stop(second)).toEqual({ code: 0, signal: null });
  }, 60_000);
});
