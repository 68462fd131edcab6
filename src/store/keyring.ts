/**
 * AES-256-GCM with a key id on every ciphertext and associated data that
 * binds it to where it lives (NIST SP 800-38D; OWASP Cryptographic Storage).
 *
 * Wire format, base64url of:
 *   version (1 byte = 1) | key id (8 bytes) | IV (12 bytes) | ciphertext | tag (16 bytes)
 *
 * The key id is the first 8 bytes of SHA-256 of the master key, so a
 * ciphertext names the key that opens it and old keys can stay in the ring
 * while data moves to a new one. Each purpose ("vault", "oauth-state") uses
 * its own subkey derived with HKDF, so a value sealed for one purpose can
 * never be opened as another.
 *
 * Envelope encryption (NIST SP 800-57 key hierarchy): a connection's tokens
 * are sealed with a data key of its own (format 2: no key id, the row names
 * its key), and the data key is wrapped by a key-encryption key of this ring
 * (format 1, with the key id). Rotating the key-encryption key rewraps data
 * keys only; tokens are never decrypted or rewritten for it.
 *
 *   format 2, base64url of: version (1 byte = 2) | IV (12 bytes) | ciphertext | tag (16 bytes)
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import type { Sealer } from "../integrations/shared/vault.js";

const FORMAT_VERSION = 1;
const DATA_KEY_FORMAT_VERSION = 2;
/** Purpose of wrapped data keys: its own subkey of every key-encryption key. */
const DATA_KEY_PURPOSE = "data-key";
const KEY_ID_BYTES = 8;
const IV_BYTES = 12; // the GCM nonce size NIST recommends
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + IV_BYTES;

export class DecryptionError extends Error {
  override readonly name = "DecryptionError";
}

type MasterKey = { id: string; key: Buffer; subkeys: Map<string, Buffer> };

export class Keyring implements Sealer {
  private readonly keys = new Map<string, MasterKey>();
  private readonly active: MasterKey;

  /** `keys[0]` encrypts; every key decrypts what it encrypted. */
  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error("a keyring needs at least one key");
    for (const key of keys) {
      if (key.length !== 32) throw new Error(`an encryption key must be 32 bytes, got ${key.length}`);
      const id = keyIdOf(key);
      this.keys.set(id, { id, key: Buffer.from(key), subkeys: new Map() });
    }
    this.active = this.keys.get(keyIdOf(keys[0] as Buffer)) as MasterKey;
  }

  /** Whether the ring holds the key with this hex id. */
  hasKey(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  /** Hex ids of every key in the ring, the active one first. */
  get keyIds(): string[] {
    return [this.active.id, ...[...this.keys.keys()].filter((id) => id !== this.active.id)];
  }

  /** Hex id of the key new ciphertexts are written with. */
  get activeKeyId(): string {
    return this.active.id;
  }

  encrypt(plaintext: string, purpose: string, associatedData: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", subkey(this.active, purpose), iv);
    cipher.setAAD(Buffer.from(associatedData, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const header = Buffer.concat([Buffer.from([FORMAT_VERSION]), Buffer.from(this.active.id, "hex"), iv]);
    return Buffer.concat([header, body, cipher.getAuthTag()]).toString("base64url");
  }

  decrypt(encoded: string, purpose: string, associatedData: string): string {
    const blob = Buffer.from(encoded, "base64url");
    if (blob.length < HEADER_BYTES + TAG_BYTES || blob[0] !== FORMAT_VERSION) {
      throw new DecryptionError("not a ciphertext of this format");
    }
    const keyId = blob.subarray(1, 1 + KEY_ID_BYTES).toString("hex");
    const master = this.keys.get(keyId);
    if (!master) throw new DecryptionError(`no key with id ${keyId} in the keyring`);
    const decipher = createDecipheriv("aes-256-gcm", subkey(master, purpose), blob.subarray(1 + KEY_ID_BYTES, HEADER_BYTES));
    decipher.setAAD(Buffer.from(associatedData, "utf8"));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES, blob.length - TAG_BYTES)), decipher.final()]).toString("utf8");
    } catch {
      throw new DecryptionError("ciphertext failed to authenticate (wrong key, wrong row, or tampered)");
    }
  }

  /** A new data key (32 random bytes) for one connection. */
  static newDataKey(): Buffer {
    return randomBytes(32);
  }

  /** Wraps a data key with the active key-encryption key, bound to `associatedData` (its row). */
  wrapDataKey(dataKey: Buffer, associatedData: string): string {
    return this.encrypt(dataKey.toString("base64url"), DATA_KEY_PURPOSE, associatedData);
  }

  unwrapDataKey(wrapped: string, associatedData: string): Buffer {
    const key = Buffer.from(this.decrypt(wrapped, DATA_KEY_PURPOSE, associatedData), "base64url");
    if (key.length !== 32) throw new DecryptionError("a wrapped data key must be 32 bytes");
    return key;
  }

  /** Whether `wrapped` is already under the active key-encryption key. */
  isCurrent(wrapped: string): boolean {
    return Keyring.keyIdOf(wrapped) === this.active.id;
  }

  /** Seals a value with a data key (format 2). */
  static sealWithDataKey(dataKey: Buffer, plaintext: string, associatedData: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", dataKey, iv);
    cipher.setAAD(Buffer.from(associatedData, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return Buffer.concat([Buffer.from([DATA_KEY_FORMAT_VERSION]), iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  static openWithDataKey(dataKey: Buffer, encoded: string, associatedData: string): string {
    const blob = Buffer.from(encoded, "base64url");
    if (blob.length < 1 + IV_BYTES + TAG_BYTES || blob[0] !== DATA_KEY_FORMAT_VERSION) throw new DecryptionError("not a data-key ciphertext");
    const decipher = createDecipheriv("aes-256-gcm", dataKey, blob.subarray(1, 1 + IV_BYTES));
    decipher.setAAD(Buffer.from(associatedData, "utf8"));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(blob.subarray(1 + IV_BYTES, blob.length - TAG_BYTES)), decipher.final()]).toString("utf8");
    } catch {
      throw new DecryptionError("ciphertext failed to authenticate (wrong data key, wrong row, or tampered)");
    }
  }

  /** {@link Sealer}: the associated data is the purpose itself. */
  seal(plaintext: string, purpose: string): string {
    return this.encrypt(plaintext, purpose, purpose);
  }

  open(sealed: string, purpose: string): string {
    return this.decrypt(sealed, purpose, purpose);
  }

  /** The key id a ciphertext was written with, without decrypting it. */
  static keyIdOf(encoded: string): string | undefined {
    const blob = Buffer.from(encoded, "base64url");
    return blob.length > 1 + KEY_ID_BYTES ? blob.subarray(1, 1 + KEY_ID_BYTES).toString("hex") : undefined;
  }
}

function keyIdOf(key: Buffer): string {
  return createHash("sha256").update(key).digest().subarray(0, KEY_ID_BYTES).toString("hex");
}

function subkey(master: MasterKey, purpose: string): Buffer {
  let derived = master.subkeys.get(purpose);
  if (!derived) {
    derived = Buffer.from(hkdfSync("sha256", master.key, Buffer.alloc(0), `autoflow-integrations:${purpose}`, 32));
    master.subkeys.set(purpose, derived);
  }
  return derived;
}

/** Parses `AUTOFLOW_ENCRYPTION_KEY`: base64 (or base64url) of exactly 32 bytes. */
export function parseEncryptionKey(value: string, name = "AUTOFLOW_ENCRYPTION_KEY"): Buffer {
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) throw new Error(`${name} must be base64 of 32 random bytes`);
  const key = Buffer.from(trimmed, trimmed.includes("-") || trimmed.includes("_") ? "base64url" : "base64");
  if (key.length !== 32) throw new Error(`${name} must decode to 32 bytes, got ${key.length}; make one with: openssl rand -base64 32`);
  return key;
}
