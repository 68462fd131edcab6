/** Bounds on what a proxied call carries (proxy.ts); both are configuration. */
export type ProxyLimits = {
  /** Largest body sent to the provider, in bytes. */
  maxRequestBytes: number;
  /** Largest answer read from the provider, in bytes. */
  maxResponseBytes: number;
};

export const DEFAULT_PROXY_LIMITS: ProxyLimits = { maxRequestBytes: 1024 * 1024, maxResponseBytes: 10 * 1024 * 1024 };
