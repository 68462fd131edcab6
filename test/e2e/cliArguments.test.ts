/** The CLI answers a mistake in its arguments with the usage and exit code 2, never a stack trace or a silent run. */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT as root } from "../../src/testing/processes.js";

const run = promisify(execFile);

describe("CLI arguments", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-cli-args-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("refuses a flag it does not take with the usage, not a stack trace", async () => {
    const failed = await run(process.execPath, ["--import", "tsx", "src/cli.ts", "rotate-keys", "--batch", "5"], { cwd: root, env: { ...process.env, AUTOFLOW_DATA_DIR: dataDir } }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed).toMatchObject({ code: 2, stderr: expect.stringMatching(/Unknown option '--batch'[\s\S]*usage:/) });
    expect((failed as { stderr: string }).stderr).not.toMatch(/\n\s+at /);
  });

  it.each(["sweep", "migrate", "serve"])("refuses an argument to %s, which takes none", async (command) => {
    const failed = await run(process.execPath, ["--import", "tsx", "src/cli.ts", command, "--bogus"], { cwd: root, env: { ...process.env, AUTOFLOW_DATA_DIR: dataDir } }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed).toMatchObject({ code: 2, stderr: expect.stringMatching(new RegExp(`${command} takes no arguments[\\s\\S]*usage:`)) });
  });
});
