/**
 * Key rotation with envelope encryption, on every database of the run: old
 * keys decrypt until the rotation is done; rotation rewraps data keys in
 * resumable batches with compare-and-swap; a concurrent refresh is never
 * overwritten; erased connections are crypto-shredded.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { NewConnection } from "../integrations/shared/vault.js";
import { freshLocation, testDatabases, type StoreLocation } from "../testing/databases.js";
import { Keyring, openStore, SqlVault, type OpenedStore } from "./index.js";

const oldKey = randomBytes(32);
const newKey = randomBytes(32);

function connection(i: number): NewConnection {
  return {
    userId: `user-${i}`,
    provider: "slack",
    authMethod: "oauth2",
    accessToken: `xoxb-access-${i}-${randomBytes(6).toString("hex")}`,
    refreshToken: `xoxe-1-refresh-${i}-${randomBytes(6).toString("hex")}`,
    tokenMasked: "xoxb****0000",
    scopes: ["chat:write"],
    metadata: { teamId: "T1" },
    tokenRefreshStatus: "healthy",
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
  };
}

describe.each(testDatabases())("key rotation on %s", (database) => {
  let location: StoreLocation;
  let dispose: () => Promise<void>;
  const opened: OpenedStore[] = [];
  const open = async (keys: Buffer[]) => {
    const store = await openStore({ ...location, keys });
    opened.push(store);
    return store;
  };

  beforeEach(async () => {
    const dir = `${process.env.TMPDIR ?? "/tmp"}/autoflow-rotation-${randomBytes(4).toString("hex")}.db`;
    ({ location, dispose } = freshLocation(database, dir));
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await dispose();
  });

  it("rewraps every data key in resumable batches; old keys decrypt until it is done, then only the new one is needed", async () => {
    const before = await open([oldKey]);
    const created = [];
    for (let i = 0; i < 7; i++) {
      const input = connection(i);
      created.push({ input, record: await before.vault.createConnection(input) });
    }

    const during = await open([newKey, oldKey]);
    expect(await during.vault.countStaleDataKeys()).toEqual({ total: 7, stale: 7 });
    // Old keys still decrypt, and new rows are written under the new key.
    expect((await during.vault.readSecrets(created[3]!.record)).accessToken).toBe(created[3]!.input.accessToken);
    const fresh = await during.vault.createConnection(connection(99));

    // Rows come in id order (random), so a batch may hold the row already written under the new key.
    const first = await during.vault.rewrapDataKeys({ batchSize: 3 });
    expect(first.scanned).toBe(3);
    expect(first.rewrapped + first.alreadyCurrent).toBe(3);
    expect(first.failed).toEqual([]);
    // Interrupted here: the next run picks up after lastId...
    const second = await during.vault.rewrapDataKeys({ batchSize: 3, afterId: first.lastId as string });
    // ...or starts over, skipping rows already current.
    const rest = await during.vault.rewrapDataKeys({ batchSize: 100 });
    expect(first.rewrapped + second.rewrapped + rest.rewrapped).toBe(7);
    expect(rest.scanned).toBe(8);
    expect(await during.vault.countStaleDataKeys()).toEqual({ total: 8, stale: 0 });

    const after = await open([newKey]);
    for (const { input, record } of created) {
      expect(await after.vault.readSecrets(record)).toEqual({ accessToken: input.accessToken, refreshToken: input.refreshToken });
    }
    expect((await after.vault.readSecrets(fresh)).accessToken).toMatch(/^xoxb-access-99-/);
  });

  it("never overwrites a refresh that lands during the rotation", async () => {
    const before = await open([oldKey]);
    const records = [];
    for (let i = 0; i < 20; i++) records.push(await before.vault.createConnection(connection(i)));
    // During a rotation every instance holds both keys: one rotates, another refreshes.
    const during = await open([newKey, oldKey]);
    const refresher = await open([newKey, oldKey]);
    const refreshed = records.map((r, i) => ({ record: r, accessToken: `xoxe.xoxb-1-rotated-${i}` }));
    await Promise.all([
      during.vault.rewrapDataKeys({ batchSize: 100 }),
      ...refreshed.map(({ record, accessToken }) =>
        refresher.vault.updateTokens({ id: record.id, expectedVersion: record.version, secrets: { accessToken }, tokenMasked: "xoxe****0000", tokenRefreshStatus: "healthy" }),
      ),
    ]);
    await during.vault.rewrapDataKeys({ batchSize: 100 });
    const after = await open([newKey]);
    for (const { record, accessToken } of refreshed) {
      const current = await after.vault.findConnection({ userId: record.userId, provider: "slack", id: record.id });
      expect((await after.vault.readSecrets(current!)).accessToken).toBe(accessToken);
    }
  });

  it("lets two rotations race without double-writing or losing a key", async () => {
    const before = await open([oldKey]);
    const records = [];
    for (let i = 0; i < 15; i++) records.push(await before.vault.createConnection(connection(i)));
    const [a, b] = [await open([newKey, oldKey]), await open([newKey, oldKey])];
    const [ra, rb] = await Promise.all([a.vault.rewrapDataKeys({ batchSize: 100 }), b.vault.rewrapDataKeys({ batchSize: 100 })]);
    expect(ra.rewrapped + rb.rewrapped).toBe(15);
    expect(ra.failed).toEqual([]);
    expect(rb.failed).toEqual([]);
    const after = await open([newKey]);
    for (const record of records) await expect(after.vault.readSecrets(record)).resolves.toBeDefined();
  });

  it("reports rows it cannot unwrap instead of stopping, and names them", async () => {
    const before = await open([oldKey]);
    const record = await before.vault.createConnection(connection(1));
    // (openStore refuses a key set that lacks a stored key outright; a vault over the same rows shows what rewrapping does.)
    const stranger = new SqlVault(before.db, new Keyring([newKey]));
    const report = await stranger.rewrapDataKeys({ batchSize: 10 });
    expect(report.failed).toEqual([{ id: record.id, reason: expect.stringMatching(/no key with id/) }]);
  });

  it("crypto-shreds an erased connection: its data key is gone", async () => {
    const store = await open([newKey]);
    const record = await store.vault.createConnection(connection(5));
    await store.vault.markRevoked({ userId: record.userId, provider: "slack", id: record.id, revokedAt: new Date().toISOString(), eraseSecrets: true });
    const row = await store.db.selectFrom("connections").selectAll().where("id", "=", record.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ data_key_wrapped: null, access_token_enc: null, refresh_token_enc: null });
    expect(Keyring.keyIdOf("")).toBeUndefined();
  });
});
