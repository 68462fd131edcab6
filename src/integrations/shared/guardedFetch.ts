/**
 * The connect-time half of the base-URL guard: a fetch whose every new
 * connection re-resolves the host and refuses any non-public address, so a
 * name that passed the check and later resolves inward (DNS rebinding) is
 * still refused. Origins on the operator's allow-list are let through.
 *
 * Node's global fetch cannot take a custom resolver, so this uses the undici
 * package's own fetch and Agent (the same library Node bundles); so do the
 * keep-alive pools of the configured providers' origins.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { Agent, fetch as undiciFetch } from "undici";
import { nonPublicReason } from "./baseUrl.js";

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
type LookupFunction = (hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback) => void;

/**
 * A `lookup` for net/tls that answers only public addresses for `hostname`
 * (unless the host is allow-listed), failing the connection otherwise.
 * `resolve` is injectable so tests check the decision without DNS.
 */
export function guardedLookup(allowedHosts: ReadonlySet<string>, resolve: LookupFunction = dnsLookup as unknown as LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, options.all ? [] : "");
      const list = addresses as LookupAddress[];
      if (!allowedHosts.has(hostname.toLowerCase())) {
        const bad = list.find((a) => nonPublicReason(a.address) !== undefined);
        if (bad || list.length === 0) {
          const refused = Object.assign(
            new Error(`refused to connect to ${hostname}: it resolves to ${bad?.address ?? "nothing"}, which is not public (${bad ? nonPublicReason(bad.address) : "no address"})`),
            { code: "EAI_NONPUBLIC" },
          );
          return callback(refused, options.all ? [] : "");
        }
      }
      if (options.all) return callback(null, list);
      const first = list[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}

/**
 * Keep-alive connection pools for provider calls: one pool per provider
 * origin (undici's Agent keeps a Pool for each), sockets kept open between
 * calls so a call to a provider already called skips the TCP and TLS
 * handshakes, and a bound on sockets per origin.
 */
export const PROVIDER_POOL = {
  /** Sockets per provider origin. */
  connections: 64,
  /** How long an idle socket is kept when the provider says nothing (undici caps at the provider's own keep-alive hint). */
  keepAliveTimeoutMs: 30_000,
  keepAliveMaxTimeoutMs: 300_000,
};

/** The keep-alive pools per origin provider calls are made over (exchange.ts), to close at shutdown. */
export function createProviderPools(): Agent {
  return new Agent({
    connections: PROVIDER_POOL.connections,
    keepAliveTimeout: PROVIDER_POOL.keepAliveTimeoutMs,
    keepAliveMaxTimeout: PROVIDER_POOL.keepAliveMaxTimeoutMs,
  });
}

/**
 * The keep-alive pools for user-supplied base URLs, guarded at connect time:
 * each new connection resolves its host through guardedLookup. Calls made
 * over it with undici's `request` (exchange.ts) cost what calls to the
 * configured providers cost; createGuardedFetch is the same guard for a fetch.
 */
export function createGuardedDispatcher(allowlist: readonly string[]): Agent {
  const allowedHosts = new Set(
    allowlist.flatMap((origin) => {
      try {
        return [new URL(origin).hostname.toLowerCase()];
      } catch {
        return [];
      }
    }),
  );
  return new Agent({
    connections: PROVIDER_POOL.connections,
    keepAliveTimeout: PROVIDER_POOL.keepAliveTimeoutMs,
    keepAliveMaxTimeout: PROVIDER_POOL.keepAliveMaxTimeoutMs,
    connect: { lookup: guardedLookup(allowedHosts) },
  });
}

/** A fetch for user-supplied base URLs: same signature as the global one, guarded at connect time. */
export function createGuardedFetch(allowlist: readonly string[]): typeof fetch {
  const dispatcher = createGuardedDispatcher(allowlist);
  const guarded = (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher });
  return guarded as unknown as typeof fetch;
}
