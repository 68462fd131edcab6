/**
 * `autoflow-integrations token` as a person runs it, from a folder of their
 * own: it finds the secret `serve` generated in the same data folder (found
 * the same way: AUTOFLOW_DATA_DIR, default ./data under the current folder),
 * never makes one of its own, says where it looked when there is none, and
 * answers a mistake with a message and an exit code, never a stack trace.
 * The rules in full are src/tokenCommand.test.ts.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { decodeJwt } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { loadOrCreateJwtSecret } from "../../src/secrets.js";
import { createUserVerifier } from "../../src/server/auth.js";

const execFileAsync = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
const cli = join(root, "src", "cli.ts");
// By absolute address: the CLI runs in folders without node_modules.
const tsx = pathToFileURL(join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;

const folders: string[] = [];
function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), "autoflow-token-"));
  folders.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** This process's environment without AutoFlow's variables, plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("AUTOFLOW_") && key !== "DATABASE_URL") env[key] = value;
  return { ...env, ...extra };
}

type Run = { code: number; stdout: string; stderr: string };

async function token(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ["--import", tsx, cli, "token", ...args], { cwd, env: cleanEnv(env) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw error;
    return { code: failed.code, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/** A message for a person: no stack frame, no source file. */
function expectNoStack(run: Run): void {
  expect(run.stderr).not.toMatch(/\n\s+at |\.ts:\d+|TypeError/);
}

describe("autoflow-integrations token", () => {
  it("signs with the secret serve generated in ./data of the folder it runs in, for a day", async () => {
    const cwd = folder();
    const { secret } = loadOrCreateJwtSecret(join(cwd, "data"), true) as { secret: string };
    const run = await token(["--user", "alice"], cwd);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    await expect(createUserVerifier({ secret })(`Bearer ${run.stdout.trim()}`)).resolves.toEqual({ userId: "alice" });
    const claims = decodeJwt(run.stdout.trim());
    expect((claims.exp as number) - (claims.iat as number)).toBe(86_400);
  }, 30_000);

  it("resolves a relative AUTOFLOW_DATA_DIR from the folder it runs in", async () => {
    const cwd = folder();
    const { secret } = loadOrCreateJwtSecret(join(cwd, "state", "autoflow"), true) as { secret: string };
    const run = await token(["--user", "bob"], cwd, { AUTOFLOW_DATA_DIR: "state/autoflow" });
    expect(run.code).toBe(0);
    await expect(createUserVerifier({ secret })(`Bearer ${run.stdout.trim()}`)).resolves.toEqual({ userId: "bob" });
  }, 30_000);

  it("run where there is no secret, makes none and names the folder it looked in", async () => {
    const cwd = folder();
    const run = await token(["--user", "alice"], cwd);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(join(cwd, "data"));
    expect(run.stderr).toMatch(/AUTOFLOW_DATA_DIR/);
    expect(run.stderr).toMatch(/AUTOFLOW_JWT_SECRET/);
    expectNoStack(run);
    expect(readdirSync(cwd)).toEqual([]);
  }, 30_000);

  it("refuses an unknown flag with the usage and exit code 2", async () => {
    const cwd = folder();
    const run = await token(["--user", "alice", "--nope"], cwd);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/--nope/);
    expect(run.stderr).toMatch(/usage:\n[\s\S]*token --user <id>/);
    expectNoStack(run);
    expect(readdirSync(cwd)).toEqual([]);
  }, 30_000);

  it("refuses a --user the service would refuse, and an --expires-in over 30 days", async () => {
    const cwd = folder();
    loadOrCreateJwtSecret(join(cwd, "data"), true);
    const user = await token(["--user", "alice\u0007"], cwd);
    expect(user.code).toBe(2);
    expect(user.stderr).toMatch(/--user must be a non-blank user id/);
    expectNoStack(user);
    const long = await token(["--user", "alice", "--expires-in", "2592001"], cwd);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/--expires-in must be a whole number of seconds from 1 to 2592000/);
    expectNoStack(long);
  }, 30_000);
});
