/**
 * User JWTs against a JWKS (RS256, ES256, EdDSA) served on loopback, with
 * issuer and audience checks, and the attacks RFC 8725 names: alg none,
 * algorithm confusion, wrong issuer or audience, expired, not yet valid.
 */
import { createServer, type Server } from "node:http";
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IntegrationError } from "../integrations/shared/errors.js";
import { createUserVerifier, isValidUserId, type UserVerifier } from "./auth.js";

const ISSUER = "https://id.autoflow.test/";
const AUDIENCE = "autoflow-integrations";
const SECRET = "a-shared-secret-of-at-least-32-characters";
const now = () => Math.floor(Date.now() / 1000);

type Signer = { alg: string; kid: string; privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"]; publicJwk: JWK };

let server: Server;
let jwksUrl: string;
const signers: Signer[] = [];
let rsaPublicJwk: JWK;

beforeAll(async () => {
  for (const [alg, kid] of [
    ["RS256", "rsa-1"],
    ["ES256", "ec-1"],
    ["EdDSA", "ed-1"],
  ] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}) });
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    signers.push({ alg, kid, privateKey, publicJwk });
    if (alg === "RS256") rsaPublicJwk = publicJwk;
  }
  server = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: signers.map((s) => s.publicJwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/jwks.json`;
});
afterAll(() => {
  server?.close();
});

const claims = (overrides: Record<string, unknown> = {}) => ({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now() + 300, iat: now(), ...overrides });

async function sign(signer: Signer, overrides: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims(overrides)).setProtectedHeader({ alg: signer.alg, kid: signer.kid }).sign(signer.privateKey);
}

async function reason(verify: UserVerifier, token: string): Promise<string> {
  const error = await verify(`Bearer ${token}`).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IntegrationError);
  expect(error).toMatchObject({ type: "auth", code: "unauthenticated" });
  return (error as Error).message;
}

describe("JWKS user tokens", () => {
  const verifier = () => createUserVerifier({ jwksUrl, issuer: ISSUER, audience: AUDIENCE });

  it.each(["RS256", "ES256", "EdDSA"])("accepts %s with the right issuer and audience", async (alg) => {
    const signer = signers.find((s) => s.alg === alg) as Signer;
    await expect(verifier()(`Bearer ${await sign(signer)}`)).resolves.toEqual({ userId: "alice" });
  });

  it("refuses a wrong issuer and a wrong audience", async () => {
    const rsa = signers[0] as Signer;
    expect(await reason(verifier(), await sign(rsa, { iss: "https://evil.test/" }))).toMatch(/issuer/);
    expect(await reason(verifier(), await sign(rsa, { aud: "someone-else" }))).toMatch(/audience/);
  });

  it("refuses expired, not-yet-valid and exp-less tokens, with a minute of skew at most", async () => {
    const ec = signers[1] as Signer;
    expect(await reason(verifier(), await sign(ec, { exp: now() - 120 }))).toMatch(/expired/);
    await expect(verifier()(`Bearer ${await sign(ec, { exp: now() - 30 })}`)).resolves.toEqual({ userId: "alice" });
    expect(await reason(verifier(), await sign(ec, { nbf: now() + 300 }))).toMatch(/not valid yet/);
    expect(await reason(verifier(), await sign(ec, { exp: undefined }))).toMatch(/exp/);
  });

  it("refuses alg none, an algorithm outside the allow-list, and an unknown key id", async () => {
    const unsigned = new UnsecuredJWT(claims()).encode();
    expect(await reason(verifier(), unsigned)).toMatch(/algorithm/);
    const pss = await generateKeyPair("PS256");
    const ps256 = await new SignJWT(claims()).setProtectedHeader({ alg: "PS256", kid: "rsa-1" }).sign(pss.privateKey);
    expect(await reason(verifier(), ps256)).toMatch(/algorithm/);
    const otherKey = await generateKeyPair("ES256");
    const stranger = await new SignJWT(claims()).setProtectedHeader({ alg: "ES256", kid: "not-in-jwks" }).sign(otherKey.privateKey);
    expect(await reason(verifier(), stranger)).toMatch(/no key|could not be verified/);
  });

  it("refuses an HS256 token signed with the JWKS public key (algorithm confusion)", async () => {
    const asSecret = new TextEncoder().encode(JSON.stringify(rsaPublicJwk));
    const nAsSecret = new TextEncoder().encode(rsaPublicJwk.n as string);
    for (const key of [asSecret, nAsSecret]) {
      const forged = await new SignJWT(claims()).setProtectedHeader({ alg: "HS256", kid: "rsa-1" }).sign(key);
      // JWKS only: HS256 is not allowed at all.
      expect(await reason(verifier(), forged)).toMatch(/algorithm/);
      // JWKS and a shared secret: HS256 is checked with the secret only, so the forgery fails.
      expect(await reason(createUserVerifier({ jwksUrl, secret: SECRET, issuer: ISSUER, audience: AUDIENCE }), forged)).toMatch(/signature/);
    }
  });

  it("accepts HS256 and JWKS tokens side by side when both are configured", async () => {
    const both = createUserVerifier({ jwksUrl, secret: SECRET, issuer: ISSUER, audience: AUDIENCE });
    const hs = await new SignJWT(claims()).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
    await expect(both(`Bearer ${hs}`)).resolves.toEqual({ userId: "alice" });
    await expect(both(`Bearer ${await sign(signers[2] as Signer)}`)).resolves.toEqual({ userId: "alice" });
  });

  it("refuses asymmetric tokens when only a shared secret is configured", async () => {
    expect(await reason(createUserVerifier({ secret: SECRET }), await sign(signers[0] as Signer))).toMatch(/algorithm/);
  });
});

describe("the sub claim", () => {
  const hs256 = createUserVerifier({ secret: SECRET });
  const signed = (sub: unknown) => new SignJWT({ sub, exp: now() + 300 } as Record<string, unknown>).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));

  it.each([
    ["NUL", "victim\u0000"],
    ["a lone high surrogate", "victim\ud800"],
    ["a lone low surrogate", "victim\udfff"],
    ["a line feed", "alice\nbob"],
    ["a tab", "alice\t"],
    ["DEL", "alice\u007f"],
    ["a C1 control", "alice\u009b"],
    ["only blanks", "   "],
    ["256 characters", "a".repeat(256)],
    ["a number", 42],
  ])("refuses a sub with %s, with one message for all", async (_name, sub) => {
    expect(isValidUserId(sub)).toBe(false);
    expect(await reason(hs256, await signed(sub))).toBe(
      "the token's sub claim must be a non-blank user id of at most 255 characters, well-formed Unicode without control characters",
    );
  });

  it.each(["alice", "auth0|5f7c8ec7c33c6c004bbafe82", "zoë", "用户", "victim\ufffd", "🙂 smile", "a".repeat(255)])("accepts %j", async (sub) => {
    expect(isValidUserId(sub)).toBe(true);
    await expect(hs256(`Bearer ${await signed(sub)}`)).resolves.toEqual({ userId: sub });
  });
});

describe("verified tokens are kept", () => {
  const SECRET = "s".repeat(48);
  const T0 = Date.parse("2026-06-01T12:00:00Z");
  const hs = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));

  it("checks a token's signature once, then answers from the kept result until a minute has passed", async () => {
    let clock = T0;
    let checks = 0;
    const verify = createUserVerifier({ secret: SECRET, now: () => clock, onSignatureCheck: () => void checks++ });
    const token = await hs({ sub: "ada", exp: Math.floor(T0 / 1000) + 3600 });
    for (let i = 0; i < 20; i++) expect(await verify(`Bearer ${token}`)).toEqual({ userId: "ada" });
    expect(checks).toBe(1);
    clock = T0 + 61_000;
    expect(await verify(`Bearer ${token}`)).toEqual({ userId: "ada" });
    expect(checks).toBe(2);
    // Another token is its own entry; a tampered one is never taken for the kept one.
    const other = await hs({ sub: "bob", exp: Math.floor(T0 / 1000) + 3600 });
    expect(await verify(`Bearer ${other}`)).toEqual({ userId: "bob" });
    await expect(verify(`Bearer ${token.slice(0, -2)}xx`)).rejects.toThrow(IntegrationError);
    expect(checks).toBe(4);
  });

  it("never keeps an answer past the token's exp: it is checked again, and refused once expired beyond the skew", async () => {
    let clock = T0;
    let checks = 0;
    const verify = createUserVerifier({ secret: SECRET, now: () => clock, onSignatureCheck: () => void checks++ });
    const token = await hs({ sub: "ada", exp: Math.floor(T0 / 1000) + 10 });
    expect(await verify(`Bearer ${token}`)).toEqual({ userId: "ada" });
    clock = T0 + 11_000;
    expect(await verify(`Bearer ${token}`)).toEqual({ userId: "ada" }); // within the minute of skew, checked again
    expect(checks).toBe(2);
    clock = T0 + 75_000;
    await expect(verify(`Bearer ${token}`)).rejects.toThrow(/expired/);
    // A refusal is never kept: the next try is checked again (and refused again).
    await expect(verify(`Bearer ${token}`)).rejects.toThrow(/expired/);
    expect(checks).toBe(4);
  });
});
