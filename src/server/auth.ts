/**
 * User JWTs (RFC 7519, verified as RFC 8725 advises) with `jose`:
 *
 * - HS256 with a shared secret (`AUTOFLOW_JWT_SECRET`), and/or
 * - RS256 / ES256 / EdDSA against a JWKS URL (`AUTOFLOW_JWKS_URL`),
 *
 * with issuer and audience checked when configured, `exp` and `sub`
 * required, and at most 60 s of clock skew. The algorithm in the header only
 * chooses among the allowed paths; a symmetric token is only ever checked
 * with the shared secret and an asymmetric one only with the JWKS, so an
 * HS256 token "signed" with a JWKS public key (algorithm confusion) fails,
 * and `alg: none` or anything else is refused before any key is touched.
 */
import { createHash, hash, timingSafeEqual } from "node:crypto";
import { ErrorCodes, IntegrationError } from "../integrations/shared/errors.js";
import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type JWTVerifyOptions } from "jose";
import { isValidUserId, USER_ID_RULE } from "../integrations/shared/userId.js";

export { isValidUserId, MAX_USER_ID_LENGTH, USER_ID_RULE } from "../integrations/shared/userId.js";

/** Algorithms verified with the shared secret. */
export const SYMMETRIC_ALGORITHMS = ["HS256"] as const;
/** Algorithms verified against the JWKS. */
export const ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;
/** Every algorithm a user token may use. */
export const ALLOWED_ALGORITHMS = [...SYMMETRIC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS] as const;
/** How far apart our clock and the issuer's may be (RFC 8725 §3.10 leaves it to us; a minute is usual). */
export const CLOCK_TOLERANCE_SECONDS = 60;
/** How long a JWKS fetch may take, and how long keys are cached before a refetch. */
const JWKS_TIMEOUT_MS = 5_000;
const JWKS_CACHE_MS = 10 * 60_000;



export type UserVerifier = (authorization: string | undefined) => Promise<{ userId: string }>;

/**
 * How long a verified token is taken as verified without checking it again: never past its `exp`,
 * and never longer than this, so a key removed from the JWKS stops its tokens within a minute.
 */
export const VERIFIED_TOKEN_TTL_MS = 60_000;
/** How many verified tokens are kept (the least recently verified dropped first). */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

export type UserAuthConfig = {
  /** HS256 shared secret; HS256 tokens are refused without one. */
  secret?: string;
  /** JWKS URL for RS256 / ES256 / EdDSA; such tokens are refused without one. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** The clock (tests); the system's by default. */
  now?: () => number;
  /** Told each time a token's signature is checked, rather than a kept answer used (tests, metrics). */
  onSignatureCheck?: () => void;
};

export function createUserVerifier(config: UserAuthConfig): UserVerifier {
  const now = config.now ?? Date.now;
  // A dashboard sends the same token with every request: its signature is checked once, then the
  // answer is kept, by the token's SHA-256 (not the token), until it expires or a minute passes.
  const verified = new Map<string, { userId: string; until: number }>();
  const verify = uncachedVerifier(config, now);
  return async (authorization) => {
    const token = bearerOf(authorization);
    // One call (crypto.hash), not a Hash object's three: this runs on every request.
    const key = hash("sha256", token, "base64url");
    const kept = verified.get(key);
    if (kept && kept.until > now()) return { userId: kept.userId };
    if (kept) verified.delete(key);
    config.onSignatureCheck?.();
    const { userId, expiresAtMs } = await verify(token);
    verified.set(key, { userId, until: Math.min(expiresAtMs, now() + VERIFIED_TOKEN_TTL_MS) });
    if (verified.size > VERIFIED_TOKEN_CACHE_SIZE) verified.delete(verified.keys().next().value as string);
    return { userId };
  };
}

function uncachedVerifier(config: UserAuthConfig, now: () => number): (token: string) => Promise<{ userId: string; expiresAtMs: number }> {
  if (!config.secret && !config.jwksUrl) throw new Error("user tokens need AUTOFLOW_JWT_SECRET or AUTOFLOW_JWKS_URL");
  const secret = config.secret ? new TextEncoder().encode(config.secret) : undefined;
  const jwks = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: JWKS_TIMEOUT_MS, cacheMaxAge: JWKS_CACHE_MS })
    : undefined;
  const common: JWTVerifyOptions = {
    requiredClaims: ["exp", "sub"],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    ...(config.issuer ? { issuer: config.issuer } : {}),
    ...(config.audience ? { audience: config.audience } : {}),
  };
  return async (token) => {
    const currentDate = new Date(now());
    try {
      let alg: unknown;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        throw unauthenticated("the token is malformed");
      }
      let payload;
      if ((SYMMETRIC_ALGORITHMS as readonly unknown[]).includes(alg)) {
        if (!secret) throw unauthenticated(`the token's algorithm is not allowed here; use ${ASYMMETRIC_ALGORITHMS.join(", ")}`);
        ({ payload } = await jwtVerify(token, secret, { ...common, currentDate, algorithms: [...SYMMETRIC_ALGORITHMS] }));
      } else if ((ASYMMETRIC_ALGORITHMS as readonly unknown[]).includes(alg)) {
        if (!jwks) throw unauthenticated(`the token's algorithm is not allowed here; use ${SYMMETRIC_ALGORITHMS.join(", ")}`);
        ({ payload } = await jwtVerify(token, jwks, { ...common, currentDate, algorithms: [...ASYMMETRIC_ALGORITHMS] }));
      } else {
        throw unauthenticated(`the token's algorithm ${JSON.stringify(String(alg).slice(0, 20))} is not allowed; use one of ${ALLOWED_ALGORITHMS.join(", ")}`);
      }
      if (!isValidUserId(payload.sub)) throw unauthenticated(`the token's sub claim must be ${USER_ID_RULE}`);
      // exp is required (requiredClaims); the clock tolerance is not extended to the kept answer.
      return { userId: payload.sub, expiresAtMs: (payload.exp as number) * 1000 };
    } catch (error) {
      if (error instanceof IntegrationError) throw error;
      throw unauthenticated(reasonOf(error));
    }
  };
}

/** HS256 only (the local default). */
export function hs256Verifier(secret: string): UserVerifier {
  return createUserVerifier({ secret });
}

function bearerOf(authorization: string | undefined): string {
  if (!authorization) throw unauthenticated("missing Authorization header; send Authorization: Bearer <user JWT>");
  const match = /^Bearer[ ]+([A-Za-z0-9\-_.=~+/]+)$/i.exec(authorization.trim());
  if (!match?.[1]) throw unauthenticated("Authorization header must be Bearer <user JWT>");
  return match[1];
}

function reasonOf(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "the token has expired";
  if (error instanceof joseErrors.JWKSNoMatchingKey) return "no key of the JWKS matches the token's kid";
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) {
    return "the JWKS could not be fetched to verify the token";
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return `the token's algorithm is not allowed; use ${ALLOWED_ALGORITHMS.join(", ")}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "the token's signature is invalid";
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return "the token is not valid yet";
    if (error.claim === "iss") return "the token's issuer is not the one expected";
    if (error.claim === "aud") return "the token's audience is not this service";
    return `the token's ${error.claim} claim is ${error.reason === "missing" ? "missing" : "invalid"}`;
  }
  if (error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JOSENotSupported) {
    return "the token is malformed or unsigned";
  }
  return "the token could not be verified";
}

export function unauthenticated(message: string): IntegrationError {
  return new IntegrationError({ type: "auth", code: ErrorCodes.UNAUTHENTICATED, message });
}

/**
 * A check of `Authorization: Bearer <token>` against one configured token (the metrics scraper's, the
 * operator's), in constant time. Never a user JWT: those are verified by {@link createUserVerifier}.
 */
export function staticBearer(token: string): (authorization: string | undefined) => boolean {
  // Digests compared, so neither the token's length nor its bytes show in the time taken.
  const expected = createHash("sha256").update(token).digest();
  return (authorization) => {
    const match = /^Bearer[ ]+(\S+)$/i.exec((authorization ?? "").trim());
    const given = createHash("sha256").update(match?.[1] ?? "").digest();
    return timingSafeEqual(given, expected) && match !== null;
  };
}

/** Mints a user token (for `autoflow-integrations token` and tests). */
export async function mintUserToken(secret: string, userId: string, expiresInSeconds = 3600): Promise<string> {
  const issuedAt = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(userId)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + expiresInSeconds)
    .sign(new TextEncoder().encode(secret));
}
