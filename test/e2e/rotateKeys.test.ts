/**
 * `autoflow-integrations rotate-keys` as an operator runs it: data written
 * under the generated key, the service switched to a new key (the old one
 * still decrypting), the rotation run, and the old key no longer needed.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { loadKeyring, openStore } from "../../src/store/index.js";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

describe("rotate-keys", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-rotate-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("rewraps every data key under the new key, reports the rows done, and is idempotent", async () => {
    const db = join(dataDir, "autoflow.db");
    const generated = loadKeyring({ dataDir, log: () => undefined });
    const before = await openStore({ sqlitePath: db, keys: generated.keys });
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const record = await before.vault.createConnection({
        userId: `u${i}`,
        provider: "stripe",
        authMethod: "api_key",
        accessToken: `sk_test_${i}_${randomBytes(8).toString("hex")}`,
        tokenMasked: "sk_t****0000",
        scopes: ["read_write"],
        metadata: { accountId: `acct_${i}`, livemode: false },
        tokenRefreshStatus: "not_applicable",
        createdAt: new Date().toISOString(),
      });
      ids.push(record.id);
    }
    await before.close();

    const newKey = randomBytes(32).toString("base64");
    const env = { ...process.env, AUTOFLOW_DATA_DIR: dataDir, AUTOFLOW_ENCRYPTION_KEY: newKey };
    const first = await run(process.execPath, ["--import", "tsx", "src/cli.ts", "rotate-keys", "--batch-size", "10"], { cwd: root, env });
    const report = JSON.parse(first.stdout) as Record<string, number>;
    expect(report).toMatchObject({ scanned: 25, rewrapped: 25, alreadyCurrent: 0, failed: 0, stillStale: 0 });
    expect(first.stderr).toMatch(/rows done: 10 .*\n.*rows done: 20 .*\n.*rows done: 25/);
    expect(first.stderr).toMatch(/rotation complete/);

    const again = JSON.parse((await run(process.execPath, ["--import", "tsx", "src/cli.ts", "rotate-keys"], { cwd: root, env })).stdout) as Record<string, number>;
    expect(again).toMatchObject({ scanned: 25, rewrapped: 0, alreadyCurrent: 25 });

    // Only the new key now: everything still opens.
    const after = await openStore({ sqlitePath: db, keys: [Buffer.from(newKey, "base64")] });
    try {
      for (const [i, id] of ids.entries()) {
        const record = await after.vault.findConnection({ userId: `u${i}`, provider: "stripe", id });
        expect((await after.vault.readSecrets(record!)).accessToken).toMatch(new RegExp(`^sk_test_${i}_`));
      }
    } finally {
      await after.close();
    }
  }, 60_000);

  it("refuses a bad batch size", async () => {
    const failed = await run(process.execPath, ["--import", "tsx", "src/cli.ts", "rotate-keys", "--batch-size", "0"], { cwd: root, env: { ...process.env, AUTOFLOW_DATA_DIR: dataDir } }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed).toMatchObject({ code: 2, stderr: expect.stringMatching(/--batch-size/) });
  });
});
