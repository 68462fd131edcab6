/**
 * The local JWT secret: when `AUTOFLOW_JWT_SECRET` is unset, a random one is
 * generated once into the data folder (mode 0600), so `npm start` works out
 * of the box and `autoflow-integrations token` can mint tokens it accepts.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const JWT_SECRET_FILE = "jwt.secret";

export function loadOrCreateJwtSecret(dataDir: string, create: boolean): { secret: string; generated: boolean; path: string } | undefined {
  const path = join(dataDir, JWT_SECRET_FILE);
  if (existsSync(path)) return { secret: readFileSync(path, "utf8").trim(), generated: false, path };
  if (!create) return undefined;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString("base64url");
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
  return { secret, generated: true, path };
}
