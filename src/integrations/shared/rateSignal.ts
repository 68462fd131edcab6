/**
 * What one provider answer tells about the caller's rate budget, read by a
 * connector from its provider's headers (Slack and Graph `Retry-After`,
 * HubSpot `X-HubSpot-RateLimit-*`, Linear `X-RateLimit-Requests-*`, Sentry
 * `X-Sentry-Rate-Limit-*`, Jira `X-RateLimit-*`), and fed to the pacer so
 * calls slow down before the provider says 429.
 */

export type RateSignal = {
  /** Requests allowed in the current window. */
  limit?: number;
  /** Requests left in the current window, as the provider counted when it answered. */
  remaining?: number;
  /** When the current window ends (epoch milliseconds, this machine's clock). */
  resetAtMs?: number;
  /** The window's length, when the provider tells it (HubSpot's interval) and not its end. */
  windowMs?: number;
  /** Hold every call until this long from now (a 429's Retry-After, a daily cap). */
  retryAfterMs?: number;
};

/** A connector's reader of its provider's rate-limit headers; undefined when the answer tells nothing. */
export type RateLimitReader = (response: { status: number; headers: Headers }, nowMs: number) => RateSignal | undefined;
