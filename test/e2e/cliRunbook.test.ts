/**
 * The runbook commands as an operator runs them beside a running service on
 * the same data folder: `health --all --json` probes a connection of every
 * one of the eight connectors through the sandboxes the service serves and
 * reports each connection's v1 health envelope (one revoked at its sandbox
 * shows down, and the exit code says so); `connections list` reads what the
 * vault holds and filters it; mistakes in the arguments exit 2 naming what
 * is wrong. `sandbox` alone is test/e2e/sandboxCommand.test.ts.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { PROVIDER_IDS, type ProviderId } from "../../src/integrations/registry.js";
import { mintUserToken } from "../../src/server/auth.js";
import { apiOf, connectWithKey, connectWithOAuth, sandboxUrls, type MadeConnection } from "../../src/testing/connectAll.js";
import { freePort, killStartedInstances, ROOT, sqliteServeEnv, startInstance, stopInstance, type Instance } from "../../src/testing/processes.js";

type Ran = { code: number; stdout: string; stderr: string };

/** The CLI with `args`, its exit code whatever it is. */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: ROOT, env }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const ERROR_TYPES = ["auth", "rate-limit", "schema", "network", "upstream"] as const;

/** The frozen v1 health envelope: its fields exactly, and a connector's public metadata beside them. */
const HealthEnvelope = z.looseObject({
  status: z.enum(["ok", "degraded", "down"]),
  checkedAt: z.iso.datetime(),
  authMethod: z.string().optional(),
  tokenRefreshStatus: z.enum(["not_applicable", "healthy", "failed"]).optional(),
  details: z.strictObject({
    auth: z.boolean(),
    apiReachable: z.boolean(),
    rateLimited: z.boolean(),
    errorType: z.enum(ERROR_TYPES).optional(),
    message: z.string().optional(),
  }),
});

const HealthReport = z.strictObject({
  totals: z.strictObject({ connections: z.number(), ok: z.number(), degraded: z.number(), down: z.number(), failed: z.number() }),
  connections: z.array(
    z.strictObject({ provider: z.enum(PROVIDER_IDS as [ProviderId, ...ProviderId[]]), userId: z.string(), connectionId: z.string(), health: HealthEnvelope }),
  ),
});

type Listed = { id: string; provider: string; userId: string; authMethod: string; tokenMasked: string; health: { status: string; checkedAt?: string; errorType?: string }; revokedAt?: string };
const listed = (ran: Ran): Listed[] => (JSON.parse(ran.stdout) as { connections: Listed[] }).connections;

describe("runbook commands beside a running service (SQLite)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-runbook-"));
  const jwtSecret = randomBytes(32).toString("base64url");
  let env: NodeJS.ProcessEnv;
  let service: Instance | undefined;
  let alice: string;
  const made: MadeConnection[] = [];
  let revokedId = "";

  beforeAll(async () => {
    const port = await freePort();
    env = await sqliteServeEnv(dataDir, port, jwtSecret);
    service = await startInstance(env, port);
    alice = await mintUserToken(jwtSecret, "alice");
    for (const provider of PROVIDER_IDS) made.push(await connectWithOAuth(provider, alice, service.base));
    // Bob's one connection, disconnected: listed only with --include-revoked, never probed.
    const bob = await mintUserToken(jwtSecret, "bob");
    const urls = await sandboxUrls(service.base, bob);
    const bobs = await connectWithKey("stripe", bob, service.base, urls.stripe);
    expect((await apiOf(service.base, bob)("DELETE", `/api/integrations/stripe/connections/${bobs.id}`)).status).toBe(200);
    revokedId = bobs.id;
    // Alice's Slack token revoked at the sandbox: the provider no longer takes it.
    const fault = await fetch(`${urls.slack}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "revoke-all" }) });
    expect(fault.status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await stopInstance(service);
    killStartedInstances();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("connections list reads the vault: every user, narrowed by user, provider and revocation", async () => {
    const all = await cli(["connections", "list", "--json"], env);
    expect(all.code, all.stderr).toBe(0);
    expect(listed(all).map((c) => c.id).sort()).toEqual(made.map((c) => c.id).sort());
    expect(listed(all).every((c) => c.userId === "alice" && c.revokedAt === undefined)).toBe(true);

    const withRevoked = listed(await cli(["connections", "list", "--json", "--include-revoked"], env));
    expect(withRevoked).toHaveLength(9);
    const bobs = listed(await cli(["connections", "list", "--json", "--include-revoked", "--user", "bob"], env));
    expect(bobs).toEqual([expect.objectContaining({ id: revokedId, provider: "stripe", userId: "bob", revokedAt: expect.any(String) })]);
    const stripe = listed(await cli(["connections", "list", "--json", "--provider", "stripe"], env));
    expect(stripe.map((c) => c.id)).toEqual([made.find((c) => c.provider === "stripe")?.id]);
    // Masked as everywhere: at most the first and last four characters of a token.
    for (const c of withRevoked) expect(c.tokenMasked).toMatch(/^.{0,4}\*+.{0,4}$|^\*+$/);

    const table = await cli(["connections", "list", "--provider", "jira"], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/jira .*alice/);
    expect(table.stdout.trim().split("\n").at(-1)).toBe("1 connection");
  }, 60_000);

  it("health --all --json reports the envelope of each of the eight, the revoked one down, and exits 1", async () => {
    const ran = await cli(["health", "--all", "--json"], env);
    expect(ran.code, ran.stderr).toBe(1);
    const report = HealthReport.parse(JSON.parse(ran.stdout));
    expect(report.connections).toHaveLength(8);
    expect(report.connections.map((c) => c.provider).sort()).toEqual([...PROVIDER_IDS].sort());
    expect(report.connections.map((c) => c.connectionId).sort()).toEqual(made.map((c) => c.id).sort());
    expect(report.totals).toEqual({ connections: 8, ok: 7, degraded: 0, down: 1, failed: 0 });
    for (const entry of report.connections) {
      expect(entry.userId).toBe("alice");
      if (entry.provider === "slack") expect(entry.health).toMatchObject({ status: "down", details: { auth: false, errorType: "auth" } });
      else expect(entry.health, entry.provider).toMatchObject({ status: "ok", details: { auth: true, apiReachable: true, rateLimited: false } });
    }
    // The envelope exactly as the API's health answers it for the same connection (but for when it was checked).
    const api = apiOf(service?.base as string, alice);
    for (const entry of report.connections) {
      const answered = await api("GET", `/api/integrations/${entry.provider}/health?connectionId=${entry.connectionId}`);
      expect({ ...entry.health, checkedAt: "" }, entry.provider).toEqual({ ...answered.json, checkedAt: "" });
    }
  }, 90_000);

  it("records what it saw: connections list --status down names the revoked one", async () => {
    const down = listed(await cli(["connections", "list", "--json", "--status", "down"], env));
    expect(down).toEqual([expect.objectContaining({ provider: "slack", health: expect.objectContaining({ status: "down", errorType: "auth", checkedAt: expect.any(String) }) })]);
    expect(listed(await cli(["connections", "list", "--json", "--status", "ok"], env))).toHaveLength(7);
    // Every active connection has been probed by now.
    expect(listed(await cli(["connections", "list", "--json", "--status", "unchecked"], env))).toEqual([]);
  }, 60_000);

  it("health narrowed to healthy connections prints a plain table and exits 0; one user at one provider needs no --all", async () => {
    const stripe = await cli(["health", "--all", "--provider", "stripe"], env);
    expect(stripe.code, stripe.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex
    expect(stripe.stdout).not.toMatch(/\u001b\[/);
    expect(stripe.stdout).toMatch(/stripe .*alice .*conn_\S+ .*ok/);
    expect(stripe.stdout.trim().split("\n").at(-1)).toBe("1 connection: 1 ok / 0 degraded / 0 down");

    const slack = await cli(["health", "--user", "alice", "--provider", "slack", "--json"], env);
    expect(slack.code).toBe(1);
    expect(HealthReport.parse(JSON.parse(slack.stdout)).connections).toEqual([expect.objectContaining({ provider: "slack", health: expect.objectContaining({ status: "down" }) })]);
  }, 60_000);
});

describe("runbook commands refuse mistakes with exit code 2, naming what is wrong", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-runbook-usage-"));
  const env = { ...process.env, AUTOFLOW_DATA_DIR: dataDir };
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it.each<[string, string[], RegExp]>([
    ["health without --all", ["health"], /health needs --all .*or both --user <id> and --provider <id>/],
    ["health with --user alone", ["health", "--user", "alice"], /health needs --all/],
    ["an unknown provider", ["health", "--all", "--provider", "myspace"], /'--provider <id>' argument 'myspace' is invalid\. Allowed choices are slack, hubspot, stripe, gmail, linear, teams, jira, sentry/],
    ["a concurrency of 0", ["health", "--all", "--concurrency", "0"], /'--concurrency <n>' argument '0' is invalid\. It must be a whole number from 1 to 64/],
    ["an unknown status", ["connections", "list", "--status", "sick"], /'--status <status>' argument 'sick' is invalid\. Allowed choices are ok, degraded, down, unchecked/],
    ["an unknown provider to list", ["connections", "list", "--provider", "x"], /Allowed choices are slack, hubspot/],
    ["an unknown flag", ["connections", "list", "--revoked"], /Unknown option '--revoked'/],
    ["connections alone", ["connections"], /connections needs a subcommand: list/],
    ["an unknown subcommand", ["connections", "show"], /Unknown connections subcommand 'show'/],
    ["an argument to sandbox", ["sandbox", "--port", "1"], /sandbox takes no arguments/],
  ])("%s", async (_name, args, message) => {
    const ran = await cli(args, env);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(message);
    expect(ran.stderr).toMatch(/usage:\n/);
    expect(ran.stderr).not.toMatch(/\n\s+at /);
    expect(ran.stdout).toBe("");
  });
});
