/**
 * A self-signed certificate for 127.0.0.1 and localhost, made at run time by
 * Debian's `openssl` in a temporary folder (no package, no network), for a
 * sandbox that must listen over https: Microsoft Graph's client sends its
 * token over https only. The test that talks to the sandbox trusts `cert`
 * and nothing else (an undici Agent whose `connect.ca` is it); the process's
 * trust store is untouched.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A day is more than any test run; a shorter life keeps a leaked key worthless. */
const VALIDITY_DAYS = 1;

let made: { key: string; cert: string } | undefined;

/** The key and certificate (PEM), made once a process. */
export function testCertificate(): { key: string; cert: string } {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), "autoflow-test-cert-"));
  try {
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    // P-256: fast to make; SANs for both names the sandboxes listen on (clients check the SAN, not the CN).
    execFileSync(
      "openssl",
      [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-days", String(VALIDITY_DAYS), "-keyout", key, "-out", cert,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    made = { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
    return made;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
