import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KEY_FILE_NAME, loadEncryptionKey } from "./keyFile.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "autoflow-keyfile-"));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const modeOf = (path: string): number => statSync(path).mode & 0o777;

describe("loadEncryptionKey", () => {
  it("generates <dataDir>/encryption.key with mode 0600 and says so once", () => {
    const dataDir = join(tempDir(), "nested", "data");
    const log = vi.fn<(message: string) => void>();
    const source = loadEncryptionKey({ dataDir, log });
    const path = join(dataDir, KEY_FILE_NAME);
    expect(KEY_FILE_NAME).toBe("encryption.key");
    expect(source.origin).toBe("generated");
    expect(source.path).toBe(path);
    expect(source.key).toHaveLength(32);
    expect(modeOf(path)).toBe(0o600);
    expect(Buffer.from(readFileSync(path, "utf8").trim(), "base64").equals(source.key)).toBe(true);
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0]?.[0]).toContain(path);
    expect(log.mock.calls[0]?.[0]).toMatch(/generated/);
  });

  it("treats an empty env value as unset", () => {
    const dataDir = tempDir();
    const source = loadEncryptionKey({ envValue: "", dataDir, log: () => {} });
    expect(source.origin).toBe("generated");
  });

  it("reads the same key on the next call without logging that it generated one", () => {
    const dataDir = tempDir();
    const first = loadEncryptionKey({ dataDir, log: () => {} });
    const log = vi.fn<(message: string) => void>();
    const second = loadEncryptionKey({ dataDir, log });
    expect(second.origin).toBe("file");
    expect(second.path).toBe(join(dataDir, KEY_FILE_NAME));
    expect(second.key.equals(first.key)).toBe(true);
    expect(log.mock.calls.some(([message]) => /generated/.test(message))).toBe(false);
    expect(log).not.toHaveBeenCalled();
  });

  it("prefers the env value and does not touch the data folder", () => {
    const dataDir = tempDir();
    const existing = loadEncryptionKey({ dataDir, log: () => {} });
    const envKey = randomBytes(32);
    const log = vi.fn<(message: string) => void>();
    const source = loadEncryptionKey({ envValue: envKey.toString("base64"), dataDir, log });
    expect(source.origin).toBe("env");
    expect(source.key.equals(envKey)).toBe(true);
    expect(source.key.equals(existing.key)).toBe(false);
    expect(source.path).toBeUndefined();
    expect(log).not.toHaveBeenCalled();
  });

  it("does not generate a file when the env value is set", () => {
    const dataDir = join(tempDir(), "never-created");
    loadEncryptionKey({ envValue: randomBytes(32).toString("base64"), dataDir, log: () => {} });
    expect(() => statSync(join(dataDir, KEY_FILE_NAME))).toThrow();
  });

  it("refuses a malformed env value", () => {
    expect(() => loadEncryptionKey({ envValue: "short", dataDir: tempDir(), log: () => {} })).toThrow(/AUTOFLOW_ENCRYPTION_KEY/);
  });

  it("tightens a key file with mode 0644 to 0600 and says so", () => {
    const dataDir = tempDir();
    const path = join(dataDir, KEY_FILE_NAME);
    const key = randomBytes(32);
    writeFileSync(path, `${key.toString("base64")}\n`);
    chmodSync(path, 0o644);
    const log = vi.fn<(message: string) => void>();
    const source = loadEncryptionKey({ dataDir, log });
    expect(modeOf(path)).toBe(0o600);
    expect(source.origin).toBe("file");
    expect(source.key.equals(key)).toBe(true);
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0]?.[0]).toMatch(/tightened/);
    expect(log.mock.calls[0]?.[0]).toContain(path);
  });

  it("names the file when its content is not a key", () => {
    const dataDir = tempDir();
    const path = join(dataDir, KEY_FILE_NAME);
    writeFileSync(path, "garbage!\n", { mode: 0o600 });
    expect(() => loadEncryptionKey({ dataDir, log: () => {} })).toThrow(path);
  });
});
