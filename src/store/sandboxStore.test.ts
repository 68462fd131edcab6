/** The sandboxes' storage on every database of the run: first registration wins, redirect URIs accumulate, state round trips. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshLocation, testDatabases } from "../testing/databases.js";
import { openStore, type OpenedStore } from "./index.js";

describe.each(testDatabases())("sandbox store on %s", (database) => {
  let stores: OpenedStore[];
  let dispose: () => Promise<void>;
  let dir: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "autoflow-sandbox-store-"));
    const fresh = freshLocation(database, join(dir, "autoflow.db"));
    dispose = fresh.dispose;
    // Two instances on one database.
    const key = randomBytes(32);
    stores = [await openStore({ ...fresh.location, keys: [key] }), await openStore({ ...fresh.location, keys: [key] })];
  });
  afterEach(async () => {
    for (const store of stores) await store.close();
    await dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the first app registered and every instance's redirect URI", async () => {
    const [a, b] = stores as [OpenedStore, OpenedStore];
    const first = await a.sandboxes.register("slack", { clientId: "id-a", clientSecret: "secret-a" }, ["http://a/cb"]);
    const second = await b.sandboxes.register("slack", { clientId: "id-b", clientSecret: "secret-b" }, ["http://b/cb", "http://a/cb"]);
    expect(first).toEqual({ clientId: "id-a", clientSecret: "secret-a", redirectUris: ["http://a/cb"] });
    expect(second).toMatchObject({ clientId: "id-a", clientSecret: "secret-a" });
    expect([...second.redirectUris].sort()).toEqual(["http://a/cb", "http://b/cb"]);
  });

  it("round trips the state and where the sandbox listens, per provider", async () => {
    const [a, b] = stores as [OpenedStore, OpenedStore];
    await a.sandboxes.register("slack", { clientId: "i", clientSecret: "s" }, []);
    await a.sandboxes.register("jira", { clientId: "j", clientSecret: "t" }, []);
    expect(await b.sandboxes.loadState("slack")).toBeUndefined();
    await a.sandboxes.claim("slack", "owner-a", "http://127.0.0.1:4100");
    expect(await a.sandboxes.saveState("slack", "owner-a", '[{"tokens":1},["Map"]]')).toBe(true);
    expect(await b.sandboxes.loadState("slack")).toBe('[{"tokens":1},["Map"]]');
    expect(await b.sandboxes.loadState("jira")).toBeUndefined();
    expect((await b.sandboxes.registration("slack"))?.url).toBe("http://127.0.0.1:4100");
  });

  it("takes writes only from the process that claimed the sandbox last", async () => {
    const [a, b] = stores as [OpenedStore, OpenedStore];
    await a.sandboxes.register("slack", { clientId: "i", clientSecret: "s" }, []);
    expect(await a.sandboxes.saveState("slack", "owner-a", "unclaimed")).toBe(false);
    await a.sandboxes.claim("slack", "owner-a", "http://127.0.0.1:4100");
    expect(await a.sandboxes.saveState("slack", "owner-a", "from a")).toBe(true);
    await b.sandboxes.claim("slack", "owner-b", "http://127.0.0.1:4300");
    // A, which lost the claim, cannot write over B's state.
    expect(await a.sandboxes.saveState("slack", "owner-a", "late from a")).toBe(false);
    expect(await b.sandboxes.saveState("slack", "owner-b", "from b")).toBe(true);
    expect(await a.sandboxes.loadState("slack")).toBe("from b");
    expect((await a.sandboxes.registration("slack"))?.url).toBe("http://127.0.0.1:4300");
  });
});
