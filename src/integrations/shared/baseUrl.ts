/**
 * The guard in front of every user-supplied base URL (a self-hosted Sentry,
 * a Jira site or Data Center): the service must never be made to send a
 * request, let alone a token, to a private or internal address (SSRF; OWASP
 * SSRF Prevention Cheat Sheet).
 *
 * A URL passes when it is https, carries no credentials, and its host and
 * every address the host resolves to are public unicast addresses. The one
 * way past is the operator's allow-list of origins (which may admit http).
 * The same address check runs again when a connection is opened (see
 * guardedLookup), so a name that resolves differently later (DNS
 * rebinding) is still refused.
 */
import { isIP } from "node:net";
import { ErrorCodes, IntegrationError } from "./errors.js";

/** Resolves a host name to every IPv4 and IPv6 address it has. */
export type Resolver = (hostname: string) => Promise<string[]>;

/** IPv4 ranges that are not public unicast (RFC 6890 and the IANA special-purpose registry). */
const IPV4_BLOCKED: readonly [string, number, string][] = [
  ["0.0.0.0", 8, "this network / unspecified"],
  ["10.0.0.0", 8, "private (RFC 1918)"],
  ["100.64.0.0", 10, "carrier-grade NAT (RFC 6598)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private (RFC 1918)"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "documentation (TEST-NET-1)"],
  ["192.88.99.0", 24, "6to4 relay anycast"],
  ["192.168.0.0", 16, "private (RFC 1918)"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation (TEST-NET-2)"],
  ["203.0.113.0", 24, "documentation (TEST-NET-3)"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

/** IPv6 ranges that are not public unicast, as [first hextets, prefix length, why]. */
const IPV6_BLOCKED: readonly [string, number, string][] = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["100::", 64, "discard-only"],
  ["2001::", 23, "IETF protocol assignments (Teredo, ORCHID, ...)"],
  ["2001:db8::", 32, "documentation"],
  ["fc00::", 7, "unique-local"],
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "site-local (deprecated)"],
  ["ff00::", 8, "multicast"],
];

function ipv4ToInt(address: string): number {
  return address.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** Expands an IPv6 address (no zone) to 8 16-bit groups; an embedded dotted IPv4 tail is converted. */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const v4 = ipv4ToInt(dotted[1]);
    text = `${text.slice(0, -dotted[1].length)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill(0);
  return [...left, ...zeros, ...right];
}

function inIpv6Range(groups: number[], base: string, prefix: number): boolean {
  const b = ipv6Groups(base);
  for (let bit = 0; bit < prefix; bit++) {
    const i = Math.floor(bit / 16);
    const mask = 0x8000 >> (bit % 16);
    if (((groups[i] ?? 0) & mask) !== ((b[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Why `address` is not a public unicast address, or undefined when it is one. */
export function nonPublicReason(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const family = isIP(bare);
  if (family === 4) {
    const value = ipv4ToInt(bare);
    for (const [base, prefix, why] of IPV4_BLOCKED) {
      const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
      if (((value & mask) >>> 0) === ((ipv4ToInt(base) & mask) >>> 0)) return why;
    }
    if (bare === "255.255.255.255") return "broadcast";
    return undefined;
  }
  if (family === 6) {
    const groups = ipv6Groups(bare);
    const embedded = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16).
    if (inIpv6Range(groups, "::ffff:0:0", 96) || (inIpv6Range(groups, "::", 96) && !inIpv6Range(groups, "::", 127))) {
      const v4 = nonPublicReason(embedded(groups[6] ?? 0, groups[7] ?? 0));
      return v4 ? `IPv4-mapped ${v4}` : undefined;
    }
    if (inIpv6Range(groups, "64:ff9b::", 96) || inIpv6Range(groups, "64:ff9b:1::", 48)) {
      const v4 = nonPublicReason(embedded(groups[6] ?? 0, groups[7] ?? 0));
      return v4 ? `NAT64 ${v4}` : undefined;
    }
    if (inIpv6Range(groups, "2002::", 16)) {
      const v4 = nonPublicReason(embedded(groups[1] ?? 0, groups[2] ?? 0));
      return v4 ? `6to4 ${v4}` : undefined;
    }
    for (const [base, prefix, why] of IPV6_BLOCKED) if (inIpv6Range(groups, base, prefix)) return why;
    return undefined;
  }
  return "not an IP address";
}

/** Names that must never be resolved for a user (RFC 6761, RFC 6762, common internal suffixes). */
const INTERNAL_NAME = /(^|\.)(localhost|local|internal|intranet|lan|home\.arpa|localdomain)\.?$/i;

export type BaseUrlPolicy = {
  /** Origins the operator allows whatever they resolve to (may be http). */
  allowlist: readonly string[];
  resolve: Resolver;
};

function refuse(provider: string, field: string, why: string): IntegrationError {
  return new IntegrationError({ type: "schema", code: ErrorCodes.BASE_URL_REFUSED, field, provider, message: `${field} is refused: ${why}` });
}

/**
 * Checks a user-supplied base URL and answers its normalised form (origin
 * plus path, no trailing slash). Throws a schema error that says why.
 */
export async function checkBaseUrl(input: string, policy: BaseUrlPolicy, context: { provider: string; field?: string }): Promise<string> {
  const field = context.field ?? "baseUrl";
  const fail = (why: string) => refuse(context.provider, field, why);
  if (typeof input !== "string" || input.length === 0) throw fail("it must be a non-empty URL");
  if (input.length > 2048) throw fail("it is longer than 2048 characters");
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw fail("it is not a valid absolute URL");
  }
  if (url.username || url.password) throw fail("it must not carry credentials (user:password@)");
  if (url.search || url.hash) throw fail("it must not carry a query or fragment");
  const normalised = `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
  if (policy.allowlist.some((origin) => sameOrigin(origin, url.origin))) return normalised;
  if (url.protocol !== "https:") throw fail(`only https is allowed, not ${url.protocol.replace(":", "")}`);
  const host = url.hostname;
  if (isIP(host.replace(/^\[|\]$/g, ""))) {
    const why = nonPublicReason(host);
    if (why) throw fail(`${host} is not a public address (${why})`);
    return normalised;
  }
  if (!host.includes(".") || INTERNAL_NAME.test(host)) throw fail(`${host} is not a public host name`);
  let addresses: string[];
  try {
    addresses = await policy.resolve(host);
  } catch {
    throw fail(`${host} does not resolve`);
  }
  if (addresses.length === 0) throw fail(`${host} does not resolve`);
  for (const address of addresses) {
    const why = nonPublicReason(address);
    if (why) throw fail(`${host} resolves to ${address}, which is not public (${why})`);
  }
  return normalised;
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** Refuses a connection about to be opened to a non-public address (the connect-time half of the guard). */
export function assertPublicAddress(address: string, provider: string): void {
  const why = nonPublicReason(address);
  if (why) {
    throw new IntegrationError({
      type: "schema",
      code: ErrorCodes.INVALID_INPUT,
      provider,
      message: `refused to connect to ${address}, which is not public (${why})`,
    });
  }
}
