/**
 * Sandbox mode a person can live in: connect every provider (OAuth and a
 * key), run `sweep` beside the running service, crash the service
 * (SIGKILL), start it again: every connection still answers, because the
 * sandboxes keep what they issued in the data folder and listen on stable
 * ports, and a CLI command uses the sandboxes the service serves.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintUserToken } from "../../src/server/auth.js";
import { allOk, apiOf, checkAll, connectAll, sandboxUrls, type MadeConnection } from "../../src/testing/connectAll.js";
import { freePort, freePortBlock, killStartedInstances, ROOT, sqliteServeEnv, startInstance, stopInstance, type Instance } from "../../src/testing/processes.js";

const run = promisify(execFile);

describe("sandbox mode across a restart and beside a CLI command (SQLite)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-restart-"));
  const jwtSecret = randomBytes(32).toString("base64url");
  let env: NodeJS.ProcessEnv;
  let port: number;
  let service: Instance | undefined;
  let token: string;
  let connections: MadeConnection[];
  let urlsBefore: Record<string, string>;
  let revokedToken = "";
  const slackAuthTest = async (url: string, bearer: string): Promise<unknown> =>
    (await (await fetch(`${url}/api/auth.test`, { method: "POST", headers: { authorization: `Bearer ${bearer}`, connection: "close" } })).json()) as unknown;

  beforeAll(async () => {
    port = await freePort();
    env = await sqliteServeEnv(dataDir, port, jwtSecret);
    service = await startInstance(env, port);
    token = await mintUserToken(jwtSecret, "alice");
    connections = await connectAll(service.base, token);
    urlsBefore = await sandboxUrls(service.base, token);
  }, 90_000);

  afterAll(async () => {
    await stopInstance(service);
    killStartedInstances();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("connects all eight, by OAuth and by key, and every connection answers", async () => {
    expect(connections).toHaveLength(16);
    expect(await checkAll(service?.base as string, token, connections)).toEqual(allOk(connections));
  }, 60_000);

  it("runs sweep beside the service, even with other sandbox ports, without harming a connection, and settles an owed revocation", async () => {
    const api = apiOf(service?.base as string, token);
    // A Slack token whose disconnect could not reach the sandbox: the revocation is owed.
    const slackUrl = urlsBefore.slack as string;
    const { accessToken: owedToken } = (await (await fetch(`${slackUrl}/_sandbox/credentials?form=connect`, { method: "POST" })).json()) as { accessToken: string };
    const owed = await api("POST", "/api/integrations/slack/connections", { accessToken: owedToken });
    expect(owed.status).toBe(201);
    await fetch(`${slackUrl}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "disconnect", path: "/api/auth.revoke" }) });
    expect((await api("DELETE", `/api/integrations/slack/connections/${String(owed.json.id)}`)).json).toMatchObject({ revocation: "pending" });
    await fetch(`${slackUrl}/_sandbox/faults`, { method: "DELETE" });

    // Other ports than the service's: the command still uses the sandboxes the service serves.
    const swept = await run(process.execPath, ["--import", "tsx", "src/cli.ts", "sweep"], { cwd: ROOT, env: { ...env, AUTOFLOW_SANDBOX_BASE_PORT: String(await freePortBlock(8)) } });
    const report = JSON.parse(swept.stdout) as { healthSweep: Record<string, unknown>; revokePending: Record<string, unknown> };
    expect(JSON.stringify(report.healthSweep)).not.toMatch(/"(down|failed|degraded|errors)":[1-9]/);
    expect(report.revokePending).toMatchObject({ revoked: 1 });
    expect(await slackAuthTest(slackUrl, owedToken)).toMatchObject({ ok: false, error: "token_revoked" });
    expect(await checkAll(service?.base as string, token, connections)).toEqual(allOk(connections));
    revokedToken = owedToken;
  }, 60_000);

  it("keeps every connection working after the service is killed and started again", async () => {
    await stopInstance(service, "SIGKILL");
    service = await startInstance(env, port);
    // Stable ports: a base URL a connection was pinned to (Jira, Sentry) still names its sandbox.
    expect(await sandboxUrls(service.base, token)).toEqual(urlsBefore);
    expect(await checkAll(service.base, token, connections)).toEqual(allOk(connections));
    // What the sweep revoked stays revoked.
    expect(await slackAuthTest(urlsBefore.slack as string, revokedToken)).toMatchObject({ ok: false, error: "token_revoked" });
  }, 90_000);
});
