/**
 * User JWTs (RFC 7519, with RFC 8725's advice): HS256 only, signature
 * checked with `jose`, `exp` and `sub` required, 60 s of clock tolerance.
 * An unsigned token (`alg: none`) or any other algorithm is refused before
 * the signature is even considered.
 */
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { IntegrationError } from "../integrations/shared/errors.js";

/** The algorithms a user token may use. */
export const ALLOWED_ALGORITHMS = ["HS256"] as const;
/** How far apart our clock and the issuer's may be (RFC 8725 §3.10 leaves it to us; a minute is usual). */
export const CLOCK_TOLERANCE_SECONDS = 60;

export const UNAUTHENTICATED = "unauthenticated";

export type UserVerifier = (authorization: string | undefined) => Promise<{ userId: string }>;

export function hs256Verifier(secret: string): UserVerifier {
  const key = new TextEncoder().encode(secret);
  return async (authorization) => {
    const token = bearerOf(authorization);
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [...ALLOWED_ALGORITHMS],
        requiredClaims: ["exp", "sub"],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      if (typeof payload.sub !== "string" || payload.sub.trim() === "" || payload.sub.length > 255) {
        throw unauthenticated("the token's sub claim must be a non-empty user id of at most 255 characters");
      }
      return { userId: payload.sub };
    } catch (error) {
      if (error instanceof IntegrationError) throw error;
      throw unauthenticated(reasonOf(error));
    }
  };
}

function bearerOf(authorization: string | undefined): string {
  if (!authorization) throw unauthenticated("missing Authorization header; send Authorization: Bearer <user JWT>");
  const match = /^Bearer[ ]+([A-Za-z0-9\-_.=~+/]+)$/i.exec(authorization.trim());
  if (!match?.[1]) throw unauthenticated("Authorization header must be Bearer <user JWT>");
  return match[1];
}

function reasonOf(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "the token has expired";
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return `the token's algorithm is not allowed; use ${ALLOWED_ALGORITHMS.join(", ")}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "the token's signature is invalid";
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return "the token is not valid yet";
    return `the token's ${error.claim} claim is ${error.reason === "missing" ? "missing" : "invalid"}`;
  }
  if (error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JOSENotSupported) {
    return "the token is malformed or unsigned";
  }
  return "the token could not be verified";
}

export function unauthenticated(message: string): IntegrationError {
  return new IntegrationError({ type: "auth", code: UNAUTHENTICATED, message });
}

/** Mints a user token (for `autoflow-integrations token` and tests). */
export async function mintUserToken(secret: string, userId: string, expiresInSeconds = 3600): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
    .sign(new TextEncoder().encode(secret));
}
