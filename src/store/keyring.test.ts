import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DecryptionError, Keyring, parseEncryptionKey } from "./keyring.js";

const PURPOSE = "vault";
const AD = "connection:conn_1:access_token";

function flipByte(encoded: string, index: number): string {
  const blob = Buffer.from(encoded, "base64url");
  blob[index] = (blob[index] as number) ^ 0x80;
  return blob.toString("base64url");
}

describe("Keyring", () => {
  it("round trips plaintext, including empty and non-ASCII", () => {
    const ring = new Keyring([randomBytes(32)]);
    for (const plaintext of ["xoxb-123-abc", "", "ünïcødé ✓ 🔑", "x".repeat(10_000)]) {
      const sealed = ring.encrypt(plaintext, PURPOSE, AD);
      if (plaintext.length >= 8) expect(sealed).not.toContain(plaintext);
      expect(ring.decrypt(sealed, PURPOSE, AD)).toBe(plaintext);
    }
  });

  it("uses a fresh IV each time: the same plaintext encrypts differently", () => {
    const ring = new Keyring([randomBytes(32)]);
    expect(ring.encrypt("same", PURPOSE, AD)).not.toBe(ring.encrypt("same", PURPOSE, AD));
  });

  it("refuses a ciphertext opened with other associated data (another row)", () => {
    const ring = new Keyring([randomBytes(32)]);
    const sealed = ring.encrypt("token", PURPOSE, "connection:conn_1:access_token");
    expect(() => ring.decrypt(sealed, PURPOSE, "connection:conn_2:access_token")).toThrow(DecryptionError);
    expect(() => ring.decrypt(sealed, PURPOSE, "connection:conn_1:refresh_token")).toThrow(DecryptionError);
  });

  it("refuses a ciphertext opened for another purpose", () => {
    const ring = new Keyring([randomBytes(32)]);
    const sealed = ring.encrypt("token", "vault", AD);
    expect(() => ring.decrypt(sealed, "oauth-state:slack", AD)).toThrow(DecryptionError);
    const state = ring.seal("payload", "oauth-state:slack");
    expect(ring.open(state, "oauth-state:slack")).toBe("payload");
    expect(() => ring.open(state, "oauth-state:stripe")).toThrow(DecryptionError);
  });

  it("refuses a ciphertext with any single byte altered", () => {
    const ring = new Keyring([randomBytes(32)]);
    const sealed = ring.encrypt("a secret token", PURPOSE, AD);
    const length = Buffer.from(sealed, "base64url").length;
    for (let i = 0; i < length; i++) {
      expect(() => ring.decrypt(flipByte(sealed, i), PURPOSE, AD), `byte ${i}`).toThrow(DecryptionError);
    }
  });

  it("refuses truncated and foreign input", () => {
    const ring = new Keyring([randomBytes(32)]);
    const sealed = ring.encrypt("a secret token", PURPOSE, AD);
    expect(() => ring.decrypt(sealed.slice(0, 20), PURPOSE, AD)).toThrow(DecryptionError);
    expect(() => ring.decrypt(sealed.slice(0, -4), PURPOSE, AD)).toThrow(DecryptionError);
    expect(() => ring.decrypt("", PURPOSE, AD)).toThrow(DecryptionError);
    expect(() => ring.decrypt("not a ciphertext at all, really not", PURPOSE, AD)).toThrow(DecryptionError);
  });

  it("records the active key id in every ciphertext", () => {
    const ring = new Keyring([randomBytes(32)]);
    expect(ring.activeKeyId).toMatch(/^[0-9a-f]{16}$/);
    expect(Keyring.keyIdOf(ring.encrypt("t", PURPOSE, AD))).toBe(ring.activeKeyId);
    expect(Keyring.keyIdOf("")).toBeUndefined();
  });

  it("derives the key id from the key", () => {
    const key = randomBytes(32);
    expect(new Keyring([key]).activeKeyId).toBe(new Keyring([Buffer.from(key)]).activeKeyId);
    expect(new Keyring([randomBytes(32)]).activeKeyId).not.toBe(new Keyring([key]).activeKeyId);
  });

  it("rotates: [new, old] opens old ciphertexts and writes with the new key", () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const oldRing = new Keyring([oldKey]);
    const oldCiphertext = oldRing.encrypt("old token", PURPOSE, AD);

    const ring = new Keyring([newKey, oldKey]);
    expect(ring.activeKeyId).toBe(new Keyring([newKey]).activeKeyId);
    expect(ring.activeKeyId).not.toBe(oldRing.activeKeyId);
    expect(ring.decrypt(oldCiphertext, PURPOSE, AD)).toBe("old token");

    const fresh = ring.encrypt("new token", PURPOSE, AD);
    expect(Keyring.keyIdOf(fresh)).toBe(ring.activeKeyId);
    // Only the new key opens it.
    expect(new Keyring([newKey]).decrypt(fresh, PURPOSE, AD)).toBe("new token");
    expect(() => oldRing.decrypt(fresh, PURPOSE, AD)).toThrow(DecryptionError);
  });

  it("fails naming the key id when the ring lacks the key", () => {
    const writer = new Keyring([randomBytes(32)]);
    const sealed = writer.encrypt("t", PURPOSE, AD);
    const reader = new Keyring([randomBytes(32)]);
    expect(() => reader.decrypt(sealed, PURPOSE, AD)).toThrow(DecryptionError);
    expect(() => reader.decrypt(sealed, PURPOSE, AD)).toThrow(writer.activeKeyId);
  });

  it("refuses an empty ring and keys that are not 32 bytes", () => {
    expect(() => new Keyring([])).toThrow(/at least one key/);
    expect(() => new Keyring([randomBytes(31)])).toThrow(/32 bytes, got 31/);
    expect(() => new Keyring([randomBytes(32), randomBytes(33)])).toThrow(/32 bytes, got 33/);
  });

  it("is not affected by later changes to the key buffer passed in", () => {
    const key = randomBytes(32);
    const ring = new Keyring([key]);
    const sealed = ring.encrypt("t", PURPOSE, AD);
    key.fill(0);
    expect(ring.decrypt(sealed, PURPOSE, AD)).toBe("t");
  });
});

describe("parseEncryptionKey", () => {
  /** 32 bytes whose base64 has both `+` and `/`, so base64 and base64url differ. */
  function keyWithSpecials(): Buffer {
    for (;;) {
      const key = randomBytes(32);
      const b64 = key.toString("base64");
      if (b64.includes("+") && b64.includes("/")) return key;
    }
  }

  it("accepts base64 of 32 bytes (with padding and surrounding whitespace)", () => {
    const key = keyWithSpecials();
    expect(parseEncryptionKey(key.toString("base64")).equals(key)).toBe(true);
    expect(parseEncryptionKey(`  ${key.toString("base64")}\n`).equals(key)).toBe(true);
  });

  it("accepts base64url of 32 bytes", () => {
    const key = keyWithSpecials();
    const url = key.toString("base64url");
    expect(url).toMatch(/[-_]/);
    expect(parseEncryptionKey(url).equals(key)).toBe(true);
  });

  it.each([31, 33, 16, 64])("refuses %d bytes, naming the variable and the length", (n) => {
    const value = randomBytes(n).toString("base64");
    expect(() => parseEncryptionKey(value)).toThrow(/AUTOFLOW_ENCRYPTION_KEY/);
    expect(() => parseEncryptionKey(value)).toThrow(new RegExp(`got ${n}\\b`));
  });

  it.each(["", "   ", "not a key!", "****", "abc$def", `${"A".repeat(43)}===`, "AAAA=AAAA"])("refuses junk %j naming the variable", (value) => {
    expect(() => parseEncryptionKey(value)).toThrow(/AUTOFLOW_ENCRYPTION_KEY/);
  });

  it("names the variable it was given", () => {
    expect(() => parseEncryptionKey("junk!", "/data/encryption.key")).toThrow(/\/data\/encryption\.key/);
    expect(() => parseEncryptionKey(randomBytes(31).toString("base64"), "MY_KEY")).toThrow(/^MY_KEY/);
  });
});
