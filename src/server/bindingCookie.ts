/**
 * The cookie that binds an OAuth flow to the browser that began it (RFC 9700
 * §4.5). `POST .../oauth/start` sets it; the bearer-less callback reads it and
 * hands its value to the lifecycle, which compares its hash with the one
 * sealed in the state.
 *
 * One cookie per flow, named after a hash of its state, rather than one
 * browser-wide cookie that every state binds to: concurrent flows in one
 * browser (two tabs, two providers) never overwrite each other, clearing one
 * after its callback leaves the others alone, and the start request does not
 * need to read an existing cookie (it could not: the cookie's path is the
 * callback's). The cost is a few short-lived cookies, sent only to the
 * callback path of their provider and gone after the state's lifetime.
 *
 *   HttpOnly          no script of any page reads it
 *   SameSite=Lax      sent on the top-level redirect back from the provider, never on cross-site subrequests
 *   Path              the redirect URI's path: sent to that provider's callback and nowhere else
 *   Secure, __Secure- when the public URL is https (a plain-http network attacker cannot set or read it)
 *   Max-Age           the state's lifetime
 */
import { createHash } from "node:crypto";

const NAME_PREFIX = "af_oauth_";
/** 128 bits of the state's hash: distinct for every flow, short enough for many cookies in one header. */
const NAME_HASH_CHARS = 22;

type Where = { secure: boolean; path: string };

/** Where the browser returns: the redirect URI registered at the provider. */
function whereOf(redirectUri: string): Where {
  const url = new URL(redirectUri);
  return { secure: url.protocol === "https:", path: url.pathname };
}

/** The cookie name of the flow `state`. */
export function bindingCookieName(redirectUri: string, state: string): string {
  const hash = createHash("sha256").update(state).digest("base64url").slice(0, NAME_HASH_CHARS);
  return `${whereOf(redirectUri).secure ? "__Secure-" : ""}${NAME_PREFIX}${hash}`;
}

function attributes(where: Where, maxAgeSeconds: number): string {
  return [`Max-Age=${maxAgeSeconds}`, `Path=${where.path}`, "HttpOnly", "SameSite=Lax", ...(where.secure ? ["Secure"] : [])].join("; ");
}

/** `Set-Cookie` that hands the browser the binding of the flow `state`. */
export function setBindingCookie(input: { redirectUri: string; state: string; binding: string; maxAgeSeconds: number }): string {
  return `${bindingCookieName(input.redirectUri, input.state)}=${input.binding}; ${attributes(whereOf(input.redirectUri), input.maxAgeSeconds)}`;
}

/** `Set-Cookie` that removes it once the flow is complete. */
export function clearBindingCookie(input: { redirectUri: string; state: string }): string {
  return `${bindingCookieName(input.redirectUri, input.state)}=; ${attributes(whereOf(input.redirectUri), 0)}`;
}

/**
 * The binding this browser holds for the flow `state`, from its `Cookie`
 * header; the first one when the name repeats (RFC 6265 §5.4 sends the
 * cookie of the longest path first, which is ours).
 */
export function bindingFromCookies(cookieHeader: string | undefined, input: { redirectUri: string; state: string }): string | undefined {
  if (!cookieHeader) return undefined;
  const name = bindingCookieName(input.redirectUri, input.state);
  for (const pair of cookieHeader.split(";")) {
    const separator = pair.indexOf("=");
    if (separator < 0 || pair.slice(0, separator).trim() !== name) continue;
    const value = pair.slice(separator + 1).trim();
    return value === "" ? undefined : value;
  }
  return undefined;
}
