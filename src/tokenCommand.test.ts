/**
 * The token command's rules, run in-process (the spawned CLI, from other
 * folders, is test/e2e/token.test.ts): what it signs with, what it refuses,
 * and that it never writes a secret.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { loadOrCreateJwtSecret } from "./secrets.js";
import { createUserVerifier } from "./server/auth.js";
import { tokenCommand } from "./tokenCommand.js";

const SECRET = "a-service-secret-of-at-least-32-characters";
const USAGE = "usage: (the CLI's)";

const folders: string[] = [];
function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), "autoflow-token-unit-"));
  folders.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await tokenCommand(args, { env, out: (t) => (out += t), err: (t) => (err += t), usage: USAGE });
  return { code, out, err };
}

const lifetime = (token: string): number => {
  const claims = decodeJwt(token.trim());
  return (claims.exp as number) - (claims.iat as number);
};

describe("tokenCommand", () => {
  it("signs with the data folder's secret, for a day by default", async () => {
    const dataDir = folder();
    const { secret } = loadOrCreateJwtSecret(dataDir, true) as { secret: string };
    const result = await run(["--user", "alice"], { AUTOFLOW_DATA_DIR: dataDir });
    expect(result).toMatchObject({ code: 0, err: "" });
    await expect(createUserVerifier({ secret })(`Bearer ${result.out.trim()}`)).resolves.toEqual({ userId: "alice" });
    expect(lifetime(result.out)).toBe(86_400);
  });

  it("prefers AUTOFLOW_JWT_SECRET to the data folder's, as serve does", async () => {
    const dataDir = folder();
    loadOrCreateJwtSecret(dataDir, true);
    const result = await run(["--user", "alice"], { AUTOFLOW_DATA_DIR: dataDir, AUTOFLOW_JWT_SECRET: SECRET });
    await expect(createUserVerifier({ secret: SECRET })(`Bearer ${result.out.trim()}`)).resolves.toEqual({ userId: "alice" });
  });

  it("writes no secret when there is none, and names the folder it looked in", async () => {
    const dataDir = folder();
    const result = await run(["--user", "alice"], { AUTOFLOW_DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.out).toBe("");
    expect(result.err).toContain(`the data folder ${dataDir} has no jwt.secret`);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it("sends the caller to the identity provider when a JWKS is configured and no secret", async () => {
    const dataDir = folder();
    const result = await run(["--user", "alice"], { AUTOFLOW_DATA_DIR: dataDir, AUTOFLOW_JWKS_URL: "https://id.autoflow.test/jwks.json" });
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/get a token from that identity provider/);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it.each<[string, string[], RegExp]>([
    ["an unknown flag", ["--user", "alice", "--nope"], /Unknown option '--nope'/],
    ["a flag without its value", ["--user"], /argument missing/],
    ["no --user", [], /--user is required/],
    ["a stray argument", ["--user", "alice", "bob"], /Unexpected argument 'bob'/],
    ["a control character in --user", ["--user", "alice\u0007"], /--user must be a non-blank user id of at most 255 characters, well-formed Unicode without control characters/],
    ["a line feed in --user", ["--user", "alice\nbob"], /--user must be/],
    ["a blank --user", ["--user", "   "], /--user must be/],
    ["an empty --user", ["--user", ""], /--user must be/],
    ["a --user of 256 characters", ["--user", "a".repeat(256)], /--user must be/],
    ["a lone surrogate in --user", ["--user", "alice\ud800"], /--user must be/],
    ...["0", "-5", "1.5", "abc", "", "2592001", "1e9", "99999999999"].map(
      (value): [string, string[], RegExp] => [
        `--expires-in ${JSON.stringify(value)}`,
        ["--user", "alice", `--expires-in=${value}`],
        /--expires-in must be a whole number of seconds from 1 to 2592000 \(30 days\)/,
      ],
    ),
  ])("refuses %s with the usage and exit code 2", async (_name, args, message) => {
    const result = await run(args, { AUTOFLOW_JWT_SECRET: SECRET });
    expect(result.code).toBe(2);
    expect(result.out).toBe("");
    expect(result.err).toMatch(message);
    expect(result.err).toContain(USAGE);
  });

  it.each([
    ["1", 1],
    ["600", 600],
    ["2592000", 2_592_000],
  ])("mints for --expires-in %s seconds", async (value, seconds) => {
    const result = await run(["--user", "alice", "--expires-in", value], { AUTOFLOW_JWT_SECRET: SECRET });
    expect(result.code).toBe(0);
    expect(lifetime(result.out)).toBe(seconds);
  });
});
