/**
 * Token refresh policy: when an access token is due, and one refresh at a
 * time per connection in this process (the vault's lock extends that across
 * processes).
 */
import type { ConnectionRecord } from "./vault.js";

/**
 * Refresh this long before expiry at most: a token must not expire between
 * our check and the provider's, nor under a minute of clock skew between us
 * and the provider.
 */
export const REFRESH_MARGIN_MS = 60_000;

/**
 * True when the access token expires within the margin. The margin is at
 * most half the token's lifetime, so a short-lived token (a sandbox's
 * one-second token, say) is not refreshed on every use.
 */
export function refreshDue(record: Pick<ConnectionRecord, "accessTokenExpiresAt" | "accessTokenIssuedAt">, nowMs: number): boolean {
  if (!record.accessTokenExpiresAt) return false;
  const expiresAt = Date.parse(record.accessTokenExpiresAt);
  const issuedAt = record.accessTokenIssuedAt ? Date.parse(record.accessTokenIssuedAt) : expiresAt - 2 * REFRESH_MARGIN_MS;
  const margin = Math.min(REFRESH_MARGIN_MS, Math.max(0, (expiresAt - issuedAt) / 2));
  return nowMs >= expiresAt - margin;
}

/** Concurrent callers for one key share one run (single flight). */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  run(key: string, task: () => Promise<T>): Promise<T> {
    const existing = this.running.get(key);
    if (existing) return existing;
    const promise = task().finally(() => this.running.delete(key));
    this.running.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.running.size;
  }
}
