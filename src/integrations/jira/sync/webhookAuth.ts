/**
 * Who sent a Jira webhook delivery. Dynamic webhooks (registered by an
 * OAuth 2.0 app) carry `Authorization: Bearer <JWT>` signed HS256 with the
 * app's client secret; admin webhooks with a secret carry
 * `X-Hub-Signature: sha256=<hex HMAC of the raw body>`. Either is checked
 * before a byte of the body is trusted; a delivery that proves neither is
 * refused, whatever it says.
 *
 * Atlassian does not document the JWT's claims (providers.md §4.7): the
 * signature is what proves the sender. The JWT does not sign the body, so a
 * token must also be short-lived: one with neither `exp` nor `iat` is
 * refused, one with `iat` only counts for ten minutes, and `exp`, `nbf` and
 * an `iat` not in the future are enforced, with a minute of leeway for the
 * clocks.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { errors as joseErrors, jwtVerify, type JWTPayload } from "jose";

const CLOCK_TOLERANCE_SECONDS = 60;
/** How long a token that says when it was issued but not when it ends is taken. */
const MAX_AGE_SECONDS = 600;

export type WebhookRefusal = "missing" | "malformed" | "bad_signature" | "expired" | "not_yet_valid" | "untimed";
export type WebhookProof = { ok: true; via: "jwt"; claims: JWTPayload } | { ok: true; via: "hmac" } | { ok: false; reason: WebhookRefusal; detail: string };

/** Checks a dynamic webhook's bearer JWT against the app's client secret. */
export async function verifyDynamicWebhook(authorization: string | undefined, clientSecret: string, nowMs: number = Date.now()): Promise<WebhookProof> {
  if (!authorization) return { ok: false, reason: "missing", detail: "no Authorization header (a dynamic webhook sends a bearer JWT)" };
  const match = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i.exec(authorization.trim());
  if (!match) return { ok: false, reason: "malformed", detail: "the Authorization header is not a bearer JWT" };
  try {
    const { payload } = await jwtVerify(match[1]!, new TextEncoder().encode(clientSecret), {
      algorithms: ["HS256"],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(nowMs),
    });
    if (payload.iat !== undefined && payload.iat * 1000 > nowMs + CLOCK_TOLERANCE_SECONDS * 1000) {
      return { ok: false, reason: "not_yet_valid", detail: "the JWT was issued in the future (iat)" };
    }
    if (payload.exp === undefined && payload.iat === undefined) return { ok: false, reason: "untimed", detail: "the JWT says neither when it was issued (iat) nor when it ends (exp)" };
    if (payload.exp === undefined && payload.iat !== undefined && nowMs > (payload.iat + MAX_AGE_SECONDS + CLOCK_TOLERANCE_SECONDS) * 1000) {
      return { ok: false, reason: "expired", detail: `the JWT was issued more than ${MAX_AGE_SECONDS / 60} minutes ago (iat) and says no end (exp)` };
    }
    return { ok: true, via: "jwt", claims: payload };
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) return { ok: false, reason: "expired", detail: "the JWT has expired (exp)" };
    if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === "nbf") return { ok: false, reason: "not_yet_valid", detail: "the JWT is not valid yet (nbf)" };
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) return { ok: false, reason: "bad_signature", detail: "the JWT is not signed with this app's client secret" };
    return { ok: false, reason: "malformed", detail: `the JWT cannot be read (${error instanceof Error ? error.message : String(error)})` };
  }
}

/** Checks an admin webhook's `X-Hub-Signature` (`sha256=<hex>`) over the raw body, in constant time. */
export function verifyHubSignature(rawBody: Buffer, header: string | undefined, secret: string): WebhookProof {
  if (!header) return { ok: false, reason: "missing", detail: "no X-Hub-Signature header" };
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!match) return { ok: false, reason: "malformed", detail: "X-Hub-Signature is not sha256=<64 hex digits>" };
  const expected = createHmac("sha256", secret).update(rawBody).digest();
  const given = Buffer.from(match[1]!, "hex");
  return timingSafeEqual(expected, given) ? { ok: true, via: "hmac" } : { ok: false, reason: "bad_signature", detail: "X-Hub-Signature does not match the body under the webhook's secret" };
}

/**
 * The key one connection's admin webhook is signed with: derived from the operator's secret and the
 * connection, so that a Jira admin given one connection's key cannot sign deliveries for another.
 */
export function adminWebhookKey(operatorSecret: string, connectionId: string): string {
  return createHmac("sha256", operatorSecret).update(`autoflow-jira-admin-webhook:${connectionId}`).digest("base64url");
}

/** The X-Hub-Signature value for a body (what a sender, the sandbox's, writes). */
export function hubSignatureOf(rawBody: Buffer | string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(rawBody).digest("hex")}`;
}
