/** The README's SDK example is a real file: it runs against the built package, offline, and does what it says. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../src/testing/processes.js";

const run = promisify(execFile);

describe("examples/sdk.ts", () => {
  it("connects Slack by OAuth and Stripe by key, tests, reads health and disconnects", async () => {
    // It imports the package by name, which is dist/: build it if the sources changed.
    await run(process.execPath, ["scripts/build.mjs", "--if-stale"], { cwd: ROOT });
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/sdk.ts"], { cwd: ROOT });
    expect(stdout).toMatch(/^slack connected: conn_\S+ team T\w+, token \S*\*{4}\S*$/m);
    expect(stdout).toMatch(/^stripe connected: conn_\S+ account acct_\w+$/m);
    expect(stdout).toMatch(/^slack test: \{.*"teamId":"T\w+".*\}$/m);
    expect(stdout).toMatch(/^stripe health: ok$/m);
    expect(stdout).toMatch(/^stripe request: 200 customer cus_\w+$/m);
    expect(stdout).toMatch(/^slack postMessage: C\w+ \d+\.\d+$/m);
    expect(stdout).toMatch(/^connections: 2$/m);
    expect(stdout).toMatch(/^disconnected: true$/m);
  }, 120_000);
});
