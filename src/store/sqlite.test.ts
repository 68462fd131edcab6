/**
 * The SQLite file holds the encrypted tokens and everything about whose
 * accounts they are: it and its WAL and shared-memory files are the owner's
 * alone (0600), whatever the umask and however the data folder came to be.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { openSqlite } from "./sqlite.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A data folder that already exists and is open to everyone for reading (0755), as `mkdir data` leaves it. */
function existingFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), "autoflow-sqlite-"));
  dirs.push(dir);
  chmodSync(dir, 0o755);
  return dir;
}

const modeOf = (path: string): number => statSync(path).mode & 0o777;
const FILES = ["autoflow.db", "autoflow.db-wal", "autoflow.db-shm"];

async function write(path: string): Promise<void> {
  const db = openSqlite(path);
  try {
    await sql`create table if not exists t (x text)`.execute(db);
    await sql`insert into t values ('secret')`.execute(db);
    for (const name of FILES) expect(existsSync(join(path, "..", name)), name).toBe(true);
    for (const name of FILES) expect(modeOf(join(path, "..", name)), name).toBe(0o600);
  } finally {
    await db.destroy();
  }
}

describe("openSqlite", () => {
  it("creates the database, its WAL and its shared memory 0600 in an existing 0755 folder, under a permissive umask", async () => {
    const dir = existingFolder();
    const previous = process.umask(0o002);
    try {
      await write(join(dir, "autoflow.db"));
    } finally {
      process.umask(previous);
    }
    expect(modeOf(dir)).toBe(0o755);
  });

  it("tightens a database and WAL files another tool left 0644", async () => {
    const dir = existingFolder();
    const path = join(dir, "autoflow.db");
    await write(path);
    // As a crash leaves them: WAL files beside the database, everything 0644.
    for (const name of FILES) {
      if (!existsSync(join(dir, name))) writeFileSync(join(dir, name), "");
      chmodSync(join(dir, name), 0o644);
    }
    await write(path);
  });
});
