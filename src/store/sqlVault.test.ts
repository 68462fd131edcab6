import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sql, type Kysely } from "kysely";
import { freshLocation, testDatabases, watchedDatabase, type StoreLocation } from "../testing/databases.js";
import { RefreshLockTimeoutError, type NewConnection, type StoredHealth } from "../integrations/shared/vault.js";
import { DecryptionError, Keyring, MissingEncryptionKeysError, openStore, SqlVault } from "./index.js";
import { newConnectionId } from "./sqlVault.js";
import type { OpenedStore } from "./index.js";
import { changeWatchOf } from "./changeWatch.js";
import { migrateToLatest } from "./migrations.js";
import { openSqlite } from "./sqlite.js";

let store: OpenedStore;

let seq = 0;
function newConnection(overrides: Partial<NewConnection> = {}): NewConnection {
  seq += 1;
  return {
    userId: "alice",
    provider: "slack",
    authMethod: "oauth",
    accessToken: `xoxb-access-${seq}-${randomBytes(8).toString("hex")}`,
    refreshToken: `xoxe-refresh-${seq}-${randomBytes(8).toString("hex")}`,
    tokenMasked: "xoxb****abcd",
    scopes: ["chat:write", "channels:read"],
    metadata: { teamId: "T123", teamName: "Acme" },
    tokenRefreshStatus: "healthy",
    createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, seq)).toISOString(),
    ...overrides,
  };
}

const rowOf = (id: string) => store.db.selectFrom("connections").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

describe("newConnectionId", () => {
  it("is conn_, nine base36 characters of milliseconds and thirteen random ones, sorting by the time it was made", () => {
    const times = [0, 1, 35, 36, 1_295, 1_296, Date.parse("2026-12-04T00:00:00Z"), 2 ** 41, 36 ** 9 - 1];
    const ids = times.map((t) => newConnectionId(t));
    for (const id of ids) expect(id).toMatch(/^conn_[0-9a-z]{9}[A-Za-z0-9_-]{13}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[6]?.slice(5, 14)).toBe(Date.parse("2026-12-04T00:00:00Z").toString(36).padStart(9, "0"));
    expect(new Set(Array.from({ length: 1_000 }, () => newConnectionId(1)))).toHaveProperty("size", 1_000);
  });

  it("refuses a time its nine characters cannot hold", () => {
    expect(() => newConnectionId(36 ** 9)).toThrow(/milliseconds from 1970 to 5188, got 101559956668416/);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => newConnectionId(bad)).toThrow(RangeError);
  });
});

describe.each(testDatabases())("vault on %s", (database) => {
  let location: StoreLocation;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    ({ location, dispose } = freshLocation(database));
    store = await openStore({ ...location, keys: [randomBytes(32)] });
  });

  afterEach(async () => {
    await store.close();
    await dispose();
  });

  /** A second store on the same database as `store` (another instance), or on a fresh one for SQLite files. */
  const sharedLocation = (path: string): StoreLocation => (database === "sqlite" ? { sqlitePath: path } : location);

  describe("SqlVault: create, list, find", () => {
    it("answers a listing again from memory only where it sees every change (SQLite), and reads it every time on PostgreSQL", async () => {
      await store.vault.createConnection(newConnection({ userId: "kept" }));
      const watch = changeWatchOf(store.db);
      expect(watch === undefined).toBe(database === "postgres");
      const before = { ...watch?.answered };
      const first = await store.vault.listConnections({ userId: "kept", provider: "slack" });
      const again = await store.vault.listConnections({ userId: "kept", provider: "slack" });
      expect(again).toEqual(first);
      if (watch) expect({ ...watch.answered }).toEqual({ fromMemory: (before.fromMemory ?? 0) + 1, fromDatabase: (before.fromDatabase ?? 0) + 1 });
      // A vault asked to keep none asks its database's watch to keep nothing: alone on a connection, every read goes to the database.
      if (database === "sqlite") {
        const db = openSqlite(":memory:");
        await migrateToLatest(db as Kysely<unknown>);
        const reads = new SqlVault(db, store.keyring, undefined, { keepRows: false });
        await reads.createConnection(newConnection({ userId: "kept" }));
        await reads.listConnections({ userId: "kept", provider: "slack" });
        await reads.listConnections({ userId: "kept", provider: "slack" });
        expect(changeWatchOf(db)?.answered).toEqual({ fromMemory: 0, fromDatabase: 0 });
        await db.destroy();
      }
    });

    it("creates a record with the public fields and no secrets", async () => {
      const input = newConnection({ accessTokenExpiresAt: "2025-01-01T01:00:00.000Z" });
      const record = await store.vault.createConnection(input);
      expect(record.id).toMatch(/^conn_[0-9a-z]{9}[A-Za-z0-9_-]{13}$/);
      expect(record).toMatchObject({
        userId: "alice",
        provider: "slack",
        authMethod: "oauth",
        tokenMasked: "xoxb****abcd",
        scopes: ["chat:write", "channels:read"],
        metadata: { teamId: "T123", teamName: "Acme" },
        accessTokenExpiresAt: "2025-01-01T01:00:00.000Z",
        hasRefreshToken: true,
        tokenRefreshStatus: "healthy",
        createdAt: input.createdAt,
        updatedAt: input.createdAt,
        version: 1,
      });
      expect(record.revokedAt).toBeUndefined();
      expect(JSON.stringify(record)).not.toContain(input.accessToken);
      expect(JSON.stringify(record)).not.toContain(input.refreshToken as string);
    });

    it("records hasRefreshToken false without a refresh token", async () => {
      const { refreshToken: _drop, ...input } = newConnection();
      const record = await store.vault.createConnection(input);
      expect(record.hasRefreshToken).toBe(false);
      expect(await store.vault.readSecrets(record)).toEqual({ accessToken: input.accessToken });
    });

    it("lists newest first and hides revoked connections unless asked", async () => {
      const a = await store.vault.createConnection(newConnection({ createdAt: "2025-01-01T00:00:01.000Z" }));
      const b = await store.vault.createConnection(newConnection({ createdAt: "2025-01-01T00:00:03.000Z" }));
      const c = await store.vault.createConnection(newConnection({ createdAt: "2025-01-01T00:00:02.000Z" }));
      await store.vault.createConnection(newConnection({ userId: "bob" }));
      await store.vault.createConnection(newConnection({ provider: "stripe" }));

      const listed = await store.vault.listConnections({ userId: "alice", provider: "slack" });
      expect(listed.map((r) => r.id)).toEqual([b.id, c.id, a.id]);

      await store.vault.markRevoked({ userId: "alice", provider: "slack", id: c.id, revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: true });
      expect((await store.vault.listConnections({ userId: "alice", provider: "slack" })).map((r) => r.id)).toEqual([b.id, a.id]);
      const all = await store.vault.listConnections({ userId: "alice", provider: "slack", includeRevoked: true });
      expect(all.map((r) => r.id)).toEqual([b.id, c.id, a.id]);
      expect(all[1]?.revokedAt).toBe("2025-02-01T00:00:00.000Z");
    });

    it("makes ids that sort in the order they were made, so the jobs' id-ordered walk writes to neighbouring rows", async () => {
      const clock = vi.spyOn(Date, "now");
      const made: string[] = [];
      try {
        // A millisecond apart, and decades apart (ids made in the same millisecond sort at random).
        for (const at of [Date.parse("2031-01-01T00:00:00Z"), Date.parse("2031-01-01T00:00:00.035Z"), Date.parse("2031-01-01T00:00:00.036Z"), Date.parse("2059-06-01T00:00:00Z")]) {
          clock.mockReturnValue(at);
          made.push((await store.vault.createConnection(newConnection())).id);
        }
      } finally {
        clock.mockRestore();
      }
      for (const id of made) expect(id).toMatch(/^conn_[0-9a-z]{9}[A-Za-z0-9_-]{13}$/);
      const walked = (await store.vault.scanConnections({ limit: 10 })).map((r) => r.id);
      expect(walked).toEqual(made);
    });

    it("finds a connection only for its own user and provider", async () => {
      const mine = await store.vault.createConnection(newConnection());
      const bobs = await store.vault.createConnection(newConnection({ userId: "bob" }));
      expect((await store.vault.findConnection({ userId: "alice", provider: "slack", id: mine.id }))?.id).toBe(mine.id);
      expect(await store.vault.findConnection({ userId: "alice", provider: "slack", id: bobs.id })).toBeUndefined();
      expect(await store.vault.findConnection({ userId: "bob", provider: "slack", id: mine.id })).toBeUndefined();
      expect(await store.vault.findConnection({ userId: "alice", provider: "stripe", id: mine.id })).toBeUndefined();
      expect(await store.vault.findConnection({ userId: "alice", provider: "slack", id: "conn_nope" })).toBeUndefined();
    });

    it("finds a revoked connection too", async () => {
      const record = await store.vault.createConnection(newConnection());
      await store.vault.markRevoked({ userId: "alice", provider: "slack", id: record.id, revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: true });
      expect((await store.vault.findConnection({ userId: "alice", provider: "slack", id: record.id }))?.revokedAt).toBe("2025-02-01T00:00:00.000Z");
    });

    it("browses every user's connections by id, narrowed by user and provider, revoked ones only when asked", async () => {
      const a = await store.vault.createConnection(newConnection());
      const b = await store.vault.createConnection(newConnection({ userId: "bob" }));
      const c = await store.vault.createConnection(newConnection({ provider: "stripe", authMethod: "apiKey" }));
      const gone = await store.vault.createConnection(newConnection({ userId: "bob" }));
      await store.vault.markRevoked({ userId: "bob", provider: "slack", id: gone.id, revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: true });
      const ids = async (query: Parameters<SqlVault["browseConnections"]>[0]) => (await store.vault.browseConnections(query)).map((r) => r.id);
      const byId = (...records: { id: string }[]) => records.map((r) => r.id).sort();
      expect(await ids({ limit: 10 })).toEqual(byId(a, b, c));
      expect(await ids({ limit: 10, includeRevoked: true })).toEqual(byId(a, b, c, gone));
      expect(await ids({ limit: 10, userId: "bob", includeRevoked: true })).toEqual(byId(b, gone));
      expect(await ids({ limit: 10, provider: "stripe" })).toEqual([c.id]);
      const [first, second] = byId(a, b, c, gone);
      expect(await ids({ limit: 1, includeRevoked: true })).toEqual([first]);
      expect(await ids({ limit: 1, includeRevoked: true, afterId: first as string })).toEqual([second]);
    });
  });

  describe("SqlVault: secrets at rest", () => {
    it("round trips the secrets", async () => {
      const input = newConnection();
      const record = await store.vault.createConnection(input);
      expect(await store.vault.readSecrets(record)).toEqual({ accessToken: input.accessToken, refreshToken: input.refreshToken });
    });

    it("stores ciphertexts, not the plaintext, under the active key", async () => {
      const input = newConnection();
      const record = await store.vault.createConnection(input);
      const row = await rowOf(record.id);
      expect(row.access_token_enc).toBeTruthy();
      expect(row.refresh_token_enc).toBeTruthy();
      const everything = JSON.stringify(row);
      expect(everything).not.toContain(input.accessToken);
      expect(everything).not.toContain(input.refreshToken as string);
      expect(row.access_token_enc).not.toBe(row.refresh_token_enc);
      // Envelope: the tokens are under the row's data key; the data key is wrapped by the active key.
      expect(Keyring.keyIdOf(row.data_key_wrapped as string)).toBe(store.keyring.activeKeyId);
    });

    it("refuses a ciphertext copied from another row", async () => {
      const a = await store.vault.createConnection(newConnection());
      const b = await store.vault.createConnection(newConnection());
      const rowA = await rowOf(a.id);
      await store.db.updateTable("connections").set({ access_token_enc: rowA.access_token_enc }).where("id", "=", b.id).execute();
      await expect(store.vault.readSecrets(b)).rejects.toBeInstanceOf(DecryptionError);
      // The source row still opens.
      await expect(store.vault.readSecrets(a)).resolves.toMatchObject({ accessToken: expect.any(String) });
    });

    it("opens a row's tokens once while its ciphertexts stay; a token replaced, or a ciphertext altered, is opened anew", async () => {
      const input = newConnection();
      const record = await store.vault.createConnection(input);
      const opened = vi.spyOn(Keyring, "openWithDataKey");
      try {
        const first = await store.vault.readSecrets(record);
        first.accessToken = "changed by the caller";
        expect(await store.vault.readSecrets(record)).toEqual({ accessToken: input.accessToken, refreshToken: input.refreshToken });
        expect(opened).toHaveBeenCalledTimes(2); // the access and the refresh token, once
        await store.vault.updateTokens({ id: record.id, expectedVersion: record.version, secrets: { accessToken: "replaced" }, tokenMasked: "r", tokenRefreshStatus: "healthy" });
        expect(await store.vault.readSecrets(record)).toEqual({ accessToken: "replaced", refreshToken: input.refreshToken });
        const row = await rowOf(record.id);
        const altered = Buffer.from(row.access_token_enc as string, "base64url");
        altered[20] = (altered[20] as number) ^ 0x01;
        await store.db.updateTable("connections").set({ access_token_enc: altered.toString("base64url") }).where("id", "=", record.id).execute();
        await expect(store.vault.readSecrets(record)).rejects.toBeInstanceOf(DecryptionError);
      } finally {
        opened.mockRestore();
      }
    });

    it("keeps what a scan opens only where there is room, and a scan's read neither pushes out nor moves up what is kept", async () => {
      const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => store.vault.createConnection(newConnection())));
      const small = new SqlVault(store.db, store.keyring, undefined, { keepRows: false, openedTokensKept: 2 });
      const opened = vi.spyOn(Keyring, "openWithDataKey");
      /** Rows opened (each holds an access and a refresh token) by `read`. */
      const opens = async (read: () => Promise<unknown>): Promise<number> => {
        const before = opened.mock.calls.length;
        await read();
        return (opened.mock.calls.length - before) / 2;
      };
      try {
        expect(await opens(() => small.readSecrets(a as NonNullable<typeof a>))).toBe(1);
        expect(await opens(() => small.readSecrets(b as NonNullable<typeof b>))).toBe(1);
        // Full: a scan's token is opened every time, and pushes neither out.
        expect(await opens(() => small.readSecrets(c as NonNullable<typeof c>, { scan: true }))).toBe(1);
        expect(await opens(() => small.readSecrets(c as NonNullable<typeof c>, { scan: true }))).toBe(1);
        expect(await opens(() => small.readSecrets(a as NonNullable<typeof a>))).toBe(0);
        expect(await opens(() => small.readSecrets(b as NonNullable<typeof b>))).toBe(0);
        // a is now the least recently used; a scan finds it kept without moving it up, so d pushes a out, not b.
        expect(await small.readSecrets(a as NonNullable<typeof a>, { scan: true })).toEqual({ accessToken: expect.stringMatching(/^xoxb-access-/) as unknown, refreshToken: expect.any(String) as unknown });
        expect(await opens(() => small.readSecrets(d as NonNullable<typeof d>))).toBe(1);
        expect(await opens(() => small.readSecrets(b as NonNullable<typeof b>))).toBe(0);
        expect(await opens(() => small.readSecrets(a as NonNullable<typeof a>))).toBe(1);
        // With room, a scan's token is kept.
        const roomy = new SqlVault(store.db, store.keyring, undefined, { keepRows: false, openedTokensKept: 3 });
        expect(await opens(() => roomy.readSecrets(a as NonNullable<typeof a>))).toBe(1);
        expect(await opens(() => roomy.readSecrets(c as NonNullable<typeof c>, { scan: true }))).toBe(1);
        expect(await opens(() => roomy.readSecrets(c as NonNullable<typeof c>))).toBe(0);
      } finally {
        opened.mockRestore();
      }
      expect(() => new SqlVault(store.db, store.keyring, undefined, { openedTokensKept: 0 })).toThrow(/openedTokensKept must be a whole number of at least 1, got 0/);
      await expect(openStore({ ...location, keys: [randomBytes(32)], openedTokensKept: 2.5 })).rejects.toThrow(/openedTokensKept must be a whole number of at least 1, got 2.5/);
    });

    it("sizes the opened tokens kept as openStore is told", async () => {
      const own = freshLocation(database);
      const sized = await openStore({ ...own.location, keys: [randomBytes(32)], openedTokensKept: 1 });
      const opened = vi.spyOn(Keyring, "openWithDataKey");
      try {
        const a = await sized.vault.createConnection(newConnection());
        const b = await sized.vault.createConnection(newConnection());
        for (const record of [a, b, a]) await sized.vault.readSecrets(record);
        // Room for one: b pushed a out, so a was opened twice (an access and a refresh token each time).
        expect(opened).toHaveBeenCalledTimes(6);
      } finally {
        opened.mockRestore();
        await sized.close();
        await own.dispose();
      }
    });

    it("keeps one opened token per connection: a replaced token takes the old one's place and pushes no other out", async () => {
      const [a, b] = await Promise.all([1, 2].map(() => store.vault.createConnection(newConnection())));
      const small = new SqlVault(store.db, store.keyring, undefined, { keepRows: false, openedTokensKept: 2 });
      const opened = vi.spyOn(Keyring, "openWithDataKey");
      try {
        await small.readSecrets(a as NonNullable<typeof a>);
        await small.readSecrets(b as NonNullable<typeof b>);
        // b is now the least recently used: were the replaced token kept beside the old one, it would push b out.
        await small.readSecrets(a as NonNullable<typeof a>);
        await small.updateTokens({ id: (a as NonNullable<typeof a>).id, expectedVersion: (a as NonNullable<typeof a>).version, secrets: { accessToken: "replaced" }, tokenMasked: "r", tokenRefreshStatus: "healthy" });
        expect((await small.readSecrets(a as NonNullable<typeof a>)).accessToken).toBe("replaced");
        const before = opened.mock.calls.length;
        expect((await small.readSecrets(b as NonNullable<typeof b>)).accessToken).toMatch(/^xoxb-access-/);
        expect((await small.readSecrets(a as NonNullable<typeof a>)).accessToken).toBe("replaced");
        expect(opened.mock.calls.length).toBe(before);
      } finally {
        opened.mockRestore();
      }
    });

    it("refuses a ciphertext moved to the other column of the same row", async () => {
      const a = await store.vault.createConnection(newConnection());
      const row = await rowOf(a.id);
      await store.db.updateTable("connections").set({ refresh_token_enc: row.access_token_enc }).where("id", "=", a.id).execute();
      await expect(store.vault.readSecrets(a)).rejects.toBeInstanceOf(DecryptionError);
    });

    it("cannot read a vault written under another key, and refuses to open on one, naming the key ids it lacks", async () => {
      const dir = mkdtempSync(join(tmpdir(), "autoflow-vault-"));
      const path = join(dir, "vault.sqlite");
      const [firstKey, otherKey] = [randomBytes(32), randomBytes(32)];
      try {
        const first = await openStore({ ...sharedLocation(path), keys: [firstKey] });
        const record = await first.vault.createConnection(newConnection());
        const erased = await first.vault.createConnection(newConnection());
        await first.vault.markRevoked({ userId: "alice", provider: "slack", id: erased.id, revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: true });
        // The rows are there, but their data keys do not open under another key.
        const stranger = new SqlVault(first.db, new Keyring([otherKey]));
        expect((await stranger.findConnection({ userId: "alice", provider: "slack", id: record.id }))?.id).toBe(record.id);
        await expect(stranger.readSecrets(record)).rejects.toThrow(/no key with id/);
        await first.close();

        const refused = await openStore({ ...sharedLocation(path), keys: [otherKey] }).then(
          async (s) => (await s.close(), undefined),
          (e: unknown) => e,
        );
        expect(refused).toBeInstanceOf(MissingEncryptionKeysError);
        expect(refused).toMatchObject({ missingKeyIds: [new Keyring([firstKey]).activeKeyId], loadedKeyIds: [new Keyring([otherKey]).activeKeyId] });
        // With the old key in the ring beside the new one, it opens (a rotation in progress).
        const both = await openStore({ ...sharedLocation(path), keys: [otherKey, firstKey] });
        expect((await both.vault.readSecrets(record)).accessToken).toMatch(/^xoxb-access-/);
        await both.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("SqlVault: updateTokens", () => {
    it("replaces tokens at the expected version and bumps the version", async () => {
      const record = await store.vault.createConnection(newConnection());
      const updated = await store.vault.updateTokens({
        id: record.id,
        expectedVersion: record.version,
        secrets: { accessToken: "new-access-token", refreshToken: "new-refresh-token" },
        tokenMasked: "new-****oken",
        accessTokenExpiresAt: "2030-01-01T00:00:00.000Z",
        tokenRefreshStatus: "healthy",
      });
      expect(updated?.version).toBe(record.version + 1);
      expect(updated?.tokenMasked).toBe("new-****oken");
      expect(updated?.accessTokenExpiresAt).toBe("2030-01-01T00:00:00.000Z");
      expect(await store.vault.readSecrets(record)).toEqual({ accessToken: "new-access-token", refreshToken: "new-refresh-token" });
    });

    it("answers the tokens read with a record when asked (asRead), those stored now otherwise", async () => {
      const input = newConnection();
      const record = await store.vault.createConnection(input);
      const [listed] = await store.vault.listConnections({ userId: "alice", provider: "slack" });
      const updated = await store.vault.updateTokens({ id: record.id, expectedVersion: record.version, secrets: { accessToken: "replaced" }, tokenMasked: "r", tokenRefreshStatus: "healthy" });
      const asStoredThen = { accessToken: input.accessToken, refreshToken: input.refreshToken };
      expect(await store.vault.readSecrets(listed as typeof record, { asRead: true })).toEqual(asStoredThen);
      expect(await store.vault.readSecrets(record, { asRead: true })).toEqual(asStoredThen);
      expect(await store.vault.readSecrets(listed as typeof record)).toEqual({ accessToken: "replaced", refreshToken: input.refreshToken });
      expect(await store.vault.readSecrets(updated as typeof record, { asRead: true })).toEqual({ accessToken: "replaced", refreshToken: input.refreshToken });
      // A record this vault did not make (a copy) is read again.
      expect(await store.vault.readSecrets({ ...record }, { asRead: true })).toEqual({ accessToken: "replaced", refreshToken: input.refreshToken });
      // Erased secrets: the record read since holds none, asRead or not.
      const revoked = await store.vault.markRevoked({ id: record.id, userId: "alice", provider: "slack", revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: true });
      await expect(store.vault.readSecrets(revoked as typeof record, { asRead: true })).rejects.toThrow(/holds no token/);
    });

    it("answers undefined and changes nothing at a stale version", async () => {
      const input = newConnection();
      const record = await store.vault.createConnection(input);
      const before = await rowOf(record.id);
      const first = await store.vault.updateTokens({
        id: record.id,
        expectedVersion: record.version,
        secrets: { accessToken: "winner" },
        tokenMasked: "winner",
        tokenRefreshStatus: "healthy",
      });
      expect(first).toBeDefined();
      const afterFirst = await rowOf(record.id);
      const stale = await store.vault.updateTokens({
        id: record.id,
        expectedVersion: record.version,
        secrets: { accessToken: "loser", refreshToken: "loser-refresh" },
        tokenMasked: "loser",
        tokenRefreshStatus: "failed",
      });
      expect(stale).toBeUndefined();
      expect(await rowOf(record.id)).toEqual(afterFirst);
      expect(afterFirst).not.toEqual(before);
      expect(await store.vault.readSecrets(record)).toEqual({ accessToken: "winner", refreshToken: input.refreshToken });
    });

    it("keeps the stored refresh token when none is given", async () => {
      const input = newConnection();
      const record = await store.vault.createConnection(input);
      const refreshCiphertext = (await rowOf(record.id)).refresh_token_enc;
      const updated = await store.vault.updateTokens({
        id: record.id,
        expectedVersion: record.version,
        secrets: { accessToken: "rotated-access" },
        tokenMasked: "rota****cess",
        tokenRefreshStatus: "healthy",
      });
      expect(updated?.hasRefreshToken).toBe(true);
      expect((await rowOf(record.id)).refresh_token_enc).toBe(refreshCiphertext);
      expect(await store.vault.readSecrets(record)).toEqual({ accessToken: "rotated-access", refreshToken: input.refreshToken });
    });

    it("does not update a revoked connection", async () => {
      const record = await store.vault.createConnection(newConnection());
      const revoked = await store.vault.markRevoked({ userId: "alice", provider: "slack", id: record.id, revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: false });
      const updated = await store.vault.updateTokens({
        id: record.id,
        expectedVersion: revoked?.version ?? -1,
        secrets: { accessToken: "after-revoke" },
        tokenMasked: "x",
        tokenRefreshStatus: "healthy",
      });
      expect(updated).toBeUndefined();
    });
  });

  describe("SqlVault: markRevoked", () => {
    it("erases the ciphertexts when asked", async () => {
      const record = await store.vault.createConnection(newConnection());
      const revoked = await store.vault.markRevoked({
        userId: "alice",
        provider: "slack",
        id: record.id,
        revokedAt: "2025-02-01T00:00:00.000Z",
        providerRevokedAt: "2025-02-01T00:00:01.000Z",
        eraseSecrets: true,
      });
      expect(revoked?.revokedAt).toBe("2025-02-01T00:00:00.000Z");
      expect(revoked?.providerRevokedAt).toBe("2025-02-01T00:00:01.000Z");
      expect(revoked?.hasRefreshToken).toBe(false);
      expect(revoked?.version).toBe(record.version + 1);
      const row = await rowOf(record.id);
      expect(row.access_token_enc).toBeNull();
      expect(row.refresh_token_enc).toBeNull();
      await expect(store.vault.readSecrets(record)).rejects.toThrow(/holds no token/);
    });

    it("keeps the ciphertexts when revocation is still owed", async () => {
      const input = newConnection();
      const record = await store.vault.createConnection(input);
      const before = await rowOf(record.id);
      const revoked = await store.vault.markRevoked({ userId: "alice", provider: "slack", id: record.id, revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: false });
      expect(revoked?.revokedAt).toBe("2025-02-01T00:00:00.000Z");
      expect(revoked?.providerRevokedAt).toBeUndefined();
      const row = await rowOf(record.id);
      expect(row.access_token_enc).toBe(before.access_token_enc);
      expect(row.refresh_token_enc).toBe(before.refresh_token_enc);
      expect(await store.vault.readSecrets(record)).toEqual({ accessToken: input.accessToken, refreshToken: input.refreshToken });
    });

    it("keeps the first revokedAt when revoked twice", async () => {
      const record = await store.vault.createConnection(newConnection());
      await store.vault.markRevoked({ userId: "alice", provider: "slack", id: record.id, revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: false });
      const again = await store.vault.markRevoked({ userId: "alice", provider: "slack", id: record.id, revokedAt: "2025-03-01T00:00:00.000Z", eraseSecrets: true });
      expect(again?.revokedAt).toBe("2025-02-01T00:00:00.000Z");
    });

    it("does not revoke another user's connection", async () => {
      const record = await store.vault.createConnection(newConnection());
      const result = await store.vault.markRevoked({ userId: "mallory", provider: "slack", id: record.id, revokedAt: "2025-02-01T00:00:00.000Z", eraseSecrets: true });
      expect(result).toBeUndefined();
      const row = await rowOf(record.id);
      expect(row.revoked_at).toBeNull();
      expect(row.access_token_enc).not.toBeNull();
    });
  });

  describe("SqlVault: consumeOAuthState", () => {
    const state = (hash: string) => ({ stateHash: hash, provider: "slack", expiresAt: "2099-01-01T00:00:00.000Z" });

    it("is true once and false ever after for the same hash", async () => {
      expect(await store.vault.consumeOAuthState(state("h1"))).toBe(true);
      expect(await store.vault.consumeOAuthState(state("h1"))).toBe(false);
      expect(await store.vault.consumeOAuthState(state("h1"))).toBe(false);
      expect(await store.vault.consumeOAuthState(state("h2"))).toBe(true);
    });

    it("lets exactly one of 20 concurrent calls win", async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => store.vault.consumeOAuthState(state("race"))));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it("lets exactly one of two stores on the same file win", async () => {
      const dir = mkdtempSync(join(tmpdir(), "autoflow-vault-"));
      const path = join(dir, "vault.sqlite");
      const keys = [randomBytes(32)];
      const a = await openStore({ ...sharedLocation(path), keys });
      const b = await openStore({ ...sharedLocation(path), keys });
      try {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).vault.consumeOAuthState(state("shared"))),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      } finally {
        await a.close();
        await b.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("SqlVault: the refresh lock", () => {
    /** A task that holds the lock until released. */
    const held = () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      return { release, inside, task: async () => (entered(), await released) };
    };
    const LONG = { leaseMs: 60_000, waitMs: 20_000 };

    it("lets one holder at a time in, across two stores on one database, and the next in once it is released", async () => {
      const dir = mkdtempSync(join(tmpdir(), "autoflow-lock-"));
      const keys = [randomBytes(32)];
      const a = await openStore({ ...sharedLocation(join(dir, "vault.sqlite")), keys });
      const b = await openStore({ ...sharedLocation(join(dir, "vault.sqlite")), keys });
      try {
        const events: string[] = [];
        const first = held();
        const holding = a.vault.withRefreshLock("conn_1", LONG, async () => {
          events.push("a in");
          await first.task();
          events.push("a out");
        });
        await first.inside;
        const waiting = b.vault.withRefreshLock("conn_1", LONG, async () => void events.push("b in"));
        // Another connection's lock is not this one's.
        await b.vault.withRefreshLock("conn_2", LONG, async () => void events.push("b other"));
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(events).toEqual(["a in", "b other"]);
        first.release();
        await Promise.all([holding, waiting]);
        expect(events).toEqual(["a in", "b other", "a out", "b in"]);
      } finally {
        await a.close();
        await b.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("gives up waiting after waitMs with a RefreshLockTimeoutError, and is released after a task that threw", async () => {
      const first = held();
      const holding = store.vault.withRefreshLock("conn_3", LONG, first.task);
      await first.inside;
      const error = await store.vault.withRefreshLock("conn_3", { leaseMs: 60_000, waitMs: 100 }, async () => "never").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RefreshLockTimeoutError);
      expect(error).toMatchObject({ connectionId: "conn_3", waitedMs: 100 });
      first.release();
      await holding;
      await expect(store.vault.withRefreshLock("conn_3", LONG, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
      await expect(store.vault.withRefreshLock("conn_3", { leaseMs: 60_000, waitMs: 0 }, async () => "free")).resolves.toBe("free");
    });

    it("lets a lease that lapsed (its holder died) be taken over, and the late holder's release leaves the new lease alone", async () => {
      const stale = held();
      const dying = store.vault.withRefreshLock("conn_4", { leaseMs: 50, waitMs: 0 }, stale.task);
      await stale.inside;
      const current = held();
      const takingOver = store.vault.withRefreshLock("conn_4", LONG, current.task);
      await current.inside;
      stale.release();
      await dying;
      // The lapsed holder released only its own lease: the new holder still excludes others.
      await expect(store.vault.withRefreshLock("conn_4", { leaseMs: 60_000, waitMs: 100 }, async () => "in")).rejects.toBeInstanceOf(RefreshLockTimeoutError);
      current.release();
      await takingOver;
    });
  });

  describe("SqlVault: health and refresh status", () => {
    const health: StoredHealth = {
      status: "degraded",
      checkedAt: "2025-01-02T00:00:00.000Z",
      auth: true,
      apiReachable: true,
      rateLimited: true,
      errorType: "rate-limit",
      message: "throttled",
    };

    it("records health without bumping the version", async () => {
      const record = await store.vault.createConnection(newConnection());
      await store.vault.recordHealth(record.id, health);
      const found = await store.vault.findConnection({ userId: "alice", provider: "slack", id: record.id });
      expect(found?.lastHealth).toEqual(health);
      expect(found?.version).toBe(record.version);
      // So a refresh that read the record before the probe still wins its compare-and-swap.
      const updated = await store.vault.updateTokens({
        id: record.id,
        expectedVersion: record.version,
        secrets: { accessToken: "after-probe" },
        tokenMasked: "x",
        tokenRefreshStatus: "healthy",
      });
      expect(updated).toBeDefined();
    });

    /**
     * A vault over a handle that records the statements it sends, beside a store on the same
     * database (SQLite: a file of its own, as :memory: has no second handle; PostgreSQL: this one).
     */
    const withWatchedVault = async (run: (vault: SqlVault, own: OpenedStore, sent: readonly { sql: string }[]) => Promise<void>, cleanUp?: (own: OpenedStore) => Promise<unknown>) => {
      const dir = mkdtempSync(join(tmpdir(), "autoflow-health-"));
      const shared = database === "sqlite" ? { sqlitePath: join(dir, "autoflow.db") } : location;
      const own = database === "sqlite" ? await openStore({ ...shared, keys: [randomBytes(32)] }) : store;
      const watched = watchedDatabase(shared);
      try {
        await run(new SqlVault(watched.db, own.keyring), own, watched.sent);
      } finally {
        await cleanUp?.(own).catch(() => undefined);
        await watched.db.destroy();
        if (own !== store) await own.close();
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const verbs = (sent: readonly { sql: string }[]) => sent.map((q) => q.sql.trim().split(/\s+/)[0]?.toLowerCase());

    it("commits the grouped health writes of one turn together, each settled once committed, a connection's in the order asked", async () => {
      await withWatchedVault(async (vault, own, sent) => {
        const records = await Promise.all(Array.from({ length: 30 }, () => own.vault.createConnection(newConnection())));
        const down: StoredHealth = { ...health, status: "down", auth: false, rateLimited: false, errorType: "auth", message: "revoked" };
        const from = sent.length;
        // Two writes to each connection in one turn: the second is what stays.
        await Promise.all(records.flatMap((r) => [vault.recordHealth(r.id, down, { grouped: true }), vault.recordHealth(r.id, health, { grouped: true })]));
        const statements = verbs(sent.slice(from));
        expect(statements.filter((s) => s === "update")).toHaveLength(60);
        // One transaction for all sixty: one commit.
        expect(statements.filter((s) => s === "begin")).toHaveLength(1);
        expect(statements.filter((s) => s === "commit")).toHaveLength(1);
        for (const r of records) expect((await own.vault.findConnection({ userId: "alice", provider: "slack", id: r.id }))?.lastHealth).toEqual(health);
        // A lone write is one statement, no transaction around it, grouped or not; writes not grouped are each their own.
        const alone = sent.length;
        await vault.recordHealth((records[0] as { id: string }).id, down, { grouped: true });
        expect(verbs(sent.slice(alone))).toEqual(["update"]);
        const ungrouped = sent.length;
        await Promise.all(records.slice(0, 3).map((r) => vault.recordHealth(r.id, health)));
        expect(verbs(sent.slice(ungrouped))).toEqual(["update", "update", "update"]);
      });
    });

    it("fails every write of a group whose commit fails, and the next write commits", async () => {
      const dropTrigger = (own: OpenedStore) => sql`drop trigger if exists health_gate_refuse${database === "postgres" ? sql` on connections` : sql``}`.execute(own.db);
      await withWatchedVault(async (vault, own) => {
        const [a, b] = [await own.vault.createConnection(newConnection()), await own.vault.createConnection(newConnection())];
        // A trigger that refuses one row's write: the group it is in fails as one.
        const refuse =
          database === "sqlite"
            ? sql`create trigger health_gate_refuse before update of last_health on connections when new.id = ${sql.lit(b.id)} begin select raise(abort, 'refused'); end`
            : sql`create function health_gate_refuse() returns trigger language plpgsql as $$ begin if new.id = ${sql.lit(b.id)} then raise exception 'refused'; end if; return new; end $$`;
        await refuse.execute(own.db);
        if (database === "postgres") await sql`create trigger health_gate_refuse before update of last_health on connections for each row execute function health_gate_refuse()`.execute(own.db);
        const outcomes = await Promise.allSettled([vault.recordHealth(a.id, health, { grouped: true }), vault.recordHealth(b.id, health, { grouped: true })]);
        expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected"]);
        expect((await own.vault.findConnection({ userId: "alice", provider: "slack", id: a.id }))?.lastHealth).toBeUndefined();
        await vault.recordHealth(a.id, health);
        expect((await own.vault.findConnection({ userId: "alice", provider: "slack", id: a.id }))?.lastHealth).toEqual(health);
      }, dropTrigger);
    });

    it("setTokenRefreshStatus changes the status and bumps the version", async () => {
      const record = await store.vault.createConnection(newConnection());
      await store.vault.setTokenRefreshStatus(record.id, "failed");
      const found = await store.vault.findConnection({ userId: "alice", provider: "slack", id: record.id });
      expect(found?.tokenRefreshStatus).toBe("failed");
      expect(found?.version).toBe(record.version + 1);
    });
  });
});
