/**
 * Where the encryption key comes from: `AUTOFLOW_ENCRYPTION_KEY`, or a key
 * generated once into the data folder (mode 0600) for a local install.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseEncryptionKey } from "./keyring.js";

export const KEY_FILE_NAME = "encryption.key";

export type KeySource = { key: Buffer; origin: "env" | "file" | "generated"; path?: string };

/**
 * Every key the ring holds, the active one first: the active key (env or
 * data folder), the old keys of a rotation in progress
 * (`AUTOFLOW_ENCRYPTION_KEYS_OLD`), and a data-folder key that the env key
 * replaced, so data written before the switch stays readable until rotated.
 */
export function loadKeyring(options: {
  envValue?: string | undefined;
  oldValues?: readonly string[];
  dataDir: string;
  log: (message: string) => void;
}): { keys: Buffer[]; active: KeySource } {
  const active = loadEncryptionKey(options);
  const keys = [active.key];
  const add = (key: Buffer) => {
    if (!keys.some((k) => k.equals(key))) keys.push(key);
  };
  for (const [i, value] of (options.oldValues ?? []).entries()) add(parseEncryptionKey(value, `AUTOFLOW_ENCRYPTION_KEYS_OLD[${i}]`));
  const path = join(options.dataDir, KEY_FILE_NAME);
  if (active.origin === "env" && existsSync(path)) add(parseEncryptionKey(readFileSync(path, "utf8"), path));
  return { keys, active };
}

export function loadEncryptionKey(options: {
  envValue?: string | undefined;
  dataDir: string;
  log: (message: string) => void;
}): KeySource {
  if (options.envValue !== undefined && options.envValue !== "") {
    return { key: parseEncryptionKey(options.envValue), origin: "env" };
  }
  const path = join(options.dataDir, KEY_FILE_NAME);
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) {
      chmodSync(path, 0o600);
      options.log(`tightened ${path} from mode ${mode.toString(8)} to 600`);
    }
    return { key: parseEncryptionKey(readFileSync(path, "utf8"), path), origin: "file", path };
  }
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  // "wx": never overwrite a key another process wrote a moment ago.
  writeFileSync(path, `${key.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  options.log(
    `AUTOFLOW_ENCRYPTION_KEY is not set: generated a new encryption key in ${path} (mode 600). ` +
      "Back it up: without it the stored tokens cannot be decrypted. Set AUTOFLOW_ENCRYPTION_KEY in production.",
  );
  return { key, origin: "generated", path };
}
