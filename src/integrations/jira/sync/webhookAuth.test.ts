import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { hubSignatureOf, verifyDynamicWebhook, verifyHubSignature } from "./webhookAuth.js";

const SECRET = "app-client-secret-0123456789abcdef";
const NOW = Date.parse("2026-12-01T12:00:00Z");
const key = (s: string) => new TextEncoder().encode(s);
const jwt = (claims: Record<string, unknown>, secret = SECRET, alg = "HS256") => new SignJWT(claims).setProtectedHeader({ alg }).sign(key(secret));

describe("Jira webhook senders", () => {
  it("takes a dynamic webhook's JWT signed with the client secret, and its claims", async () => {
    const token = await jwt({ iss: "jira", iat: NOW / 1000, exp: NOW / 1000 + 300 });
    expect(await verifyDynamicWebhook(`Bearer ${token}`, SECRET, NOW)).toMatchObject({ ok: true, via: "jwt", claims: { iss: "jira" } });
    // Issued a minute ago with no end: taken for ten minutes.
    expect((await verifyDynamicWebhook(`bearer ${await jwt({ iat: NOW / 1000 - 60 })}`, SECRET, NOW)).ok).toBe(true);
  });

  it("refuses a missing, malformed, wrongly signed, unsigned, expired or future JWT, saying which", async () => {
    const cases: Array<[string | undefined, string]> = [
      [undefined, "missing"],
      ["Basic dXNlcjpwYXNz", "malformed"],
      ["Bearer not.a.jwt!", "malformed"],
      [`Bearer ${await jwt({ exp: NOW / 1000 + 60 }, "another-secret-entirely-0123456789")}`, "bad_signature"],
      [`Bearer ${new UnsecuredJWT({ exp: NOW / 1000 + 60 }).encode()}x`, "malformed"],
      [`Bearer ${await jwt({ exp: NOW / 1000 - 61 })}`, "expired"],
      [`Bearer ${await jwt({ nbf: NOW / 1000 + 120 })}`, "not_yet_valid"],
      [`Bearer ${await jwt({ iat: NOW / 1000 + 120 })}`, "not_yet_valid"],
      [`Bearer ${await jwt({}, SECRET, "HS512")}`, "malformed"],
      // The body is not signed: a token that never runs out would let anyone post bodies with it.
      [`Bearer ${await jwt({})}`, "untimed"],
      [`Bearer ${await jwt({ iat: NOW / 1000 - 700 })}`, "expired"],
    ];
    for (const [header, reason] of cases) expect(await verifyDynamicWebhook(header, SECRET, NOW), String(header)).toMatchObject({ ok: false, reason });
  });

  it("checks an admin webhook's X-Hub-Signature over the raw body", () => {
    const body = Buffer.from('{"webhookEvent":"jira:issue_updated"}');
    expect(verifyHubSignature(body, hubSignatureOf(body, "s3cret"), "s3cret")).toEqual({ ok: true, via: "hmac" });
    expect(verifyHubSignature(body, hubSignatureOf(body, "s3cret").toUpperCase().replace("SHA256", "sha256"), "s3cret").ok).toBe(true);
    expect(verifyHubSignature(Buffer.from(`${body} `), hubSignatureOf(body, "s3cret"), "s3cret")).toMatchObject({ ok: false, reason: "bad_signature" });
    expect(verifyHubSignature(body, hubSignatureOf(body, "other"), "s3cret")).toMatchObject({ ok: false, reason: "bad_signature" });
    expect(verifyHubSignature(body, undefined, "s3cret")).toMatchObject({ ok: false, reason: "missing" });
    expect(verifyHubSignature(body, "sha1=abcd", "s3cret")).toMatchObject({ ok: false, reason: "malformed" });
  });
});
