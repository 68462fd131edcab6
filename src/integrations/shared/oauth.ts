/**
 * OAuth client primitives the lifecycle builds on: the sealed state, PKCE
 * (RFC 7636, S256 only), the authorization URL, and the checks on the
 * authorization response (RFC 6749 §4.1.2, RFC 9207 `iss`).
 *
 * Why a sealed state: `beginOAuth` is synchronous while the vault is not, and
 * a flow begun on one instance may complete on another. So everything the
 * callback needs (user, provider, expiry, PKCE verifier) travels inside the
 * state, encrypted and authenticated (AES-256-GCM) with a key every instance
 * shares; nothing has to be written before `beginOAuth` returns. Single use is
 * enforced when the state is completed, by recording its hash in the vault
 * (a primary key, so exactly one completion wins, on any instance).
 *
 * Why a browser binding (RFC 9700 §4.5, code injection): the callback has no
 * bearer token, so a state alone would let anyone holding it (an attacker who
 * began a flow as themselves, or saw a victim's state) send their own code
 * with it. A state may therefore carry the SHA-256 of a random binding that
 * only the browser which began the flow holds (the service keeps it in an
 * HttpOnly cookie); a completion without the user's identity must present it.
 * It is checked from the sealed state and the presented value alone, so any
 * instance can check it.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { AuthorizationResponseError, generateRandomCodeVerifier, skipStateCheck, validateAuthResponse } from "oauth4webapi";
import { ErrorCodes, IntegrationError } from "./errors.js";
import type { Sealer } from "./vault.js";

/** How long a state is good for; the contract's `expiresInSeconds`. */
export const OAUTH_STATE_TTL_SECONDS = 600;

/** RFC 7636 §4.1: 43 to 128 characters of the unreserved set. */
const VERIFIER_PATTERN = /^[A-Za-z0-9\-._~]{43,128}$/;

/**
 * A browser binding: at least 256 bits as base64url (43 characters), so it
 * cannot be guessed, and nothing a cookie value cannot hold.
 */
const BINDING_PATTERN = /^[A-Za-z0-9_-]{43,128}$/;

/** What a state carries. Short keys: it rides in a URL. */
type StatePayload = {
  v: 1;
  /** provider id */
  p: string;
  /** user id */
  u: string;
  /** expiry, epoch seconds */
  e: number;
  /** 128 random bits, base64url: makes every state unique even for the same user and second */
  n: string;
  /** PKCE verifier, for PKCE connectors */
  cv?: string;
  /** Where the browser goes after the callback (checked against the operator's allow-list when begun) */
  r?: string;
  /** SHA-256 (base64url) of the browser binding: only that browser may complete without the user's token */
  b?: string;
};

export type OpenedState = {
  provider: string;
  userId: string;
  expiresAt: Date;
  codeVerifier?: string;
  returnTo?: string;
  /** SHA-256 (base64url) of the binding of the browser that began the flow, when it was bound to one. */
  browserBindingHash?: string;
  /** SHA-256 of the whole state, the key under which its use is recorded. */
  hash: string;
};

const statePurpose = (provider: string): string => `oauth-state:${provider}`;

/** A new PKCE verifier: 32 random bytes, base64url, 43 characters (oauth4webapi). */
export function createCodeVerifier(): string {
  return generateRandomCodeVerifier();
}

/** A new browser binding: 32 random bytes, base64url. The caller keeps it in the browser (a cookie); the state holds its hash. */
export function createBrowserBinding(): string {
  return randomBytes(32).toString("base64url");
}

/** Whether `value` has the shape of a browser binding (it says nothing of whether it matches a state). */
export function isBrowserBinding(value: string): boolean {
  return BINDING_PATTERN.test(value);
}

const bindingHash = (binding: string): string => createHash("sha256").update(binding, "ascii").digest("base64url");

/**
 * S256 code challenge (RFC 7636 §4.2): BASE64URL(SHA256(ASCII(verifier))).
 * Synchronous (node:crypto) because `beginOAuth` is; a test checks it agrees
 * with oauth4webapi's `calculatePKCECodeChallenge`.
 */
export function codeChallengeS256(verifier: string): string {
  if (!VERIFIER_PATTERN.test(verifier)) throw new Error("a PKCE verifier must be 43 to 128 unreserved characters");
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

/** Seals a new state: `<provider>_<sealed payload>`. */
export function sealState(
  sealer: Sealer,
  input: { provider: string; userId: string; nowMs: number; ttlSeconds?: number; codeVerifier?: string; returnTo?: string; browserBinding?: string },
): { state: string; expiresAt: Date } {
  if (input.browserBinding !== undefined && !isBrowserBinding(input.browserBinding)) throw new Error("a browser binding must be 43 to 128 base64url characters");
  const expiresAtSeconds = Math.floor(input.nowMs / 1000) + (input.ttlSeconds ?? OAUTH_STATE_TTL_SECONDS);
  const payload: StatePayload = {
    v: 1,
    p: input.provider,
    u: input.userId,
    e: expiresAtSeconds,
    n: randomBytes(16).toString("base64url"),
    ...(input.codeVerifier ? { cv: input.codeVerifier } : {}),
    ...(input.returnTo ? { r: input.returnTo } : {}),
    ...(input.browserBinding ? { b: bindingHash(input.browserBinding) } : {}),
  };
  const sealed = sealer.seal(JSON.stringify(payload), statePurpose(input.provider));
  return { state: `${input.provider}_${sealed}`, expiresAt: new Date(expiresAtSeconds * 1000) };
}

/**
 * Opens a state presented at `provider`'s callback and checks everything but
 * single use (which needs the vault): format, provider, authenticity, expiry
 * and, when the caller is known, the user.
 */
export function openState(
  sealer: Sealer,
  input: { provider: string; state: string; nowMs: number; userId?: string; knownProviders?: readonly string[] },
): OpenedState {
  const fail = (code: string, message: string): IntegrationError =>
    new IntegrationError({ type: "schema", code, field: "state", message, provider: input.provider });
  const separator = input.state.indexOf("_");
  const prefix = separator > 0 ? input.state.slice(0, separator) : "";
  if (prefix !== input.provider) {
    if (input.knownProviders?.includes(prefix)) {
      throw fail(ErrorCodes.STATE_WRONG_PROVIDER, `state was issued for ${prefix}, not ${input.provider}`);
    }
    throw fail(ErrorCodes.STATE_INVALID, `state is not a ${input.provider} OAuth state`);
  }
  let payload: StatePayload;
  try {
    payload = JSON.parse(sealer.open(input.state.slice(separator + 1), statePurpose(input.provider))) as StatePayload;
  } catch {
    throw fail(ErrorCodes.STATE_INVALID, "state is invalid: it was not issued by this service or has been altered");
  }
  if (payload.v !== 1 || payload.p !== input.provider || typeof payload.u !== "string" || typeof payload.e !== "number") {
    throw fail(ErrorCodes.STATE_INVALID, "state is invalid: unknown format");
  }
  if (input.nowMs >= payload.e * 1000) {
    throw fail(ErrorCodes.STATE_EXPIRED, "state has expired; start the connection again");
  }
  if (input.userId !== undefined && input.userId !== payload.u) {
    throw fail(ErrorCodes.STATE_WRONG_USER, "state was issued to another user");
  }
  return {
    provider: payload.p,
    userId: payload.u,
    expiresAt: new Date(payload.e * 1000),
    ...(payload.cv ? { codeVerifier: payload.cv } : {}),
    ...(payload.r ? { returnTo: payload.r } : {}),
    ...(typeof payload.b === "string" ? { browserBindingHash: payload.b } : {}),
    hash: createHash("sha256").update(input.state).digest("hex"),
  };
}

/**
 * Who may complete an opened state (RFC 9700 §4.5), given what the caller
 * proved. Checked before the state is used up and before the code is
 * exchanged, so a refused completion neither burns the user's flow nor
 * redeems the presented code:
 *   - a binding is presented: it must be the one whose hash the state holds;
 *   - the bearer-less callback (`viaCallback`) must present one: a state names
 *     its user but not who is sending it;
 *   - the caller names the user (they authenticated them; {@link openState}
 *     checked it is the state's): enough without a binding;
 *   - neither (the SDK's server-side `completeOAuth({code, state})`): only for
 *     a state begun without a binding, since one begun with a binding was meant
 *     to be finished by that browser.
 */
export function checkCompletion(
  opened: OpenedState,
  input: { provider: string; userId?: string; browserBinding?: string; viaCallback: boolean },
): void {
  const expected = opened.browserBindingHash;
  const presented = input.browserBinding;
  const matches = expected !== undefined && presented !== undefined && isBrowserBinding(presented) && sameText(bindingHash(presented), expected);
  const allowed = presented !== undefined ? matches : !input.viaCallback && (input.userId !== undefined || expected === undefined);
  if (allowed) return;
  throw new IntegrationError({
    type: "schema",
    code: ErrorCodes.STATE_WRONG_BROWSER,
    field: "state",
    provider: input.provider,
    message:
      "this sign-in must be finished in the browser that began it (the flow's cookie is missing or belongs to another flow), " +
      "or completed with the user's own token (POST .../oauth/complete); nothing was connected",
  });
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * The return address sealed in a state we issued for `provider`, whatever
 * else is wrong with it (expired, used): where to send the browser with the
 * outcome. Undefined for a state we did not issue, so a forged state can
 * never choose a destination.
 */
export function returnToOf(sealer: Sealer, input: { provider: string; state: string | null }): string | undefined {
  if (!input.state?.startsWith(`${input.provider}_`)) return undefined;
  try {
    const payload = JSON.parse(sealer.open(input.state.slice(input.provider.length + 1), statePurpose(input.provider))) as StatePayload;
    return payload.p === input.provider && typeof payload.r === "string" ? payload.r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks a return address against the operator's allow-list of URL prefixes
 * (`AUTOFLOW_OAUTH_RETURN_URLS`): same origin, and a path under the
 * prefix's. No credentials, no fragment. Answers the normalised URL.
 */
export function checkReturnTo(value: string, allowlist: readonly string[], provider: string): string {
  const refuse = (why: string) => new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: "returnTo", provider, message: `returnTo ${why}` });
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse("must be an absolute URL");
  }
  if (url.username || url.password || url.hash) throw refuse("must not carry credentials or a fragment");
  const allowed = allowlist.some((prefix) => {
    const base = new URL(prefix);
    const path = base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`;
    return url.origin === base.origin && (url.pathname === base.pathname || url.pathname.startsWith(path));
  });
  if (!allowed) throw refuse("is not on the operator's allow-list of return addresses (AUTOFLOW_OAUTH_RETURN_URLS)");
  return url.toString();
}

/** Builds `base?params`, keeping any query the configured base URL already has. */
export function buildUrl(base: string, params: Record<string, string | undefined>): string {
  const url = new URL(base);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(key, value);
  return url.toString();
}

/**
 * Reads the authorization response at the callback (RFC 6749 §4.1.2) with
 * oauth4webapi's `validateAuthResponse`: a repeated parameter, an `error`
 * answer (the user declined: `access_denied`) and an `iss` that is not the
 * authorization server we sent the user to (RFC 9207, mix-up defence) are
 * all refused. A provider that never sends `iss` passes. The state is
 * checked afterwards, by {@link openState}.
 */
export function readAuthorizationResponse(
  params: URLSearchParams,
  input: { provider: string; displayName: string; issuer: string },
): { code: string; state: string } {
  // RFC 6749 §3.1: a parameter must not be repeated (oauth4webapi checks some of them; we check all).
  for (const key of new Set(params.keys())) {
    if (params.getAll(key).length > 1) {
      throw new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: key, provider: input.provider, message: `the authorization response repeats the ${JSON.stringify(key.slice(0, 40))} parameter` });
    }
  }
  let validated: URLSearchParams;
  try {
    validated = validateAuthResponse({ issuer: input.issuer }, { client_id: input.provider }, params, skipStateCheck);
  } catch (error) {
    if (error instanceof AuthorizationResponseError) {
      const declined = error.error === "access_denied";
      return throwing(
        new IntegrationError({
          type: "auth",
          code: error.error,
          provider: input.provider,
          message: declined
            ? `the connection to ${input.displayName} was declined at ${input.displayName}'s consent screen`
            : `${input.displayName} answered the authorization with an error: ${error.error.slice(0, 100)}`,
        }),
      );
    }
    const iss = params.get("iss");
    if (iss !== null && iss !== input.issuer) {
      return throwing(
        new IntegrationError({
          type: "auth",
          code: ErrorCodes.ISSUER_MISMATCH,
          field: "iss",
          provider: input.provider,
          message: `the authorization response names issuer ${JSON.stringify(iss.slice(0, 200))}, not ${input.displayName} (${input.issuer}); refused as a possible mix-up attack`,
        }),
      );
    }
    return throwing(
      new IntegrationError({
        type: "schema",
        code: ErrorCodes.INVALID_INPUT,
        provider: input.provider,
        message: `the authorization response is malformed: ${error instanceof Error ? error.message : String(error)}`,
      }),
    );
  }
  const code = validated.get("code");
  const state = validated.get("state");
  if (!code) throw new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: "code", provider: input.provider, message: "the authorization response has no code" });
  if (!state) throw new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: "state", provider: input.provider, message: "the authorization response has no state" });
  return { code, state };
}

function throwing(error: IntegrationError): never {
  throw error;
}
