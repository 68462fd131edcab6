/** Request bodies are small JSON objects; 1 MiB is generous and bounds memory per request. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Limits on what callers may send and how often; every one is configuration. */
export type ServerLimits = {
  /** Largest request body, in bytes. */
  bodyLimit: number;
  /** Largest request head (request line and headers), in bytes. */
  maxHeaderBytes: number;
  /** Requests per user (or, before sign-in, per address) per minute. */
  requestsPerMinute: number;
};

/** Dashboards poll health: within this many seconds of the last check, the stored envelope is the answer. */
export const DEFAULT_HEALTH_MAX_AGE_SECONDS = 30;

export const DEFAULT_LIMITS: ServerLimits = {
  bodyLimit: DEFAULT_BODY_LIMIT,
  // Node's own default: generous for a bearer token and ordinary headers.
  maxHeaderBytes: 16 * 1024,
  requestsPerMinute: 600,
};
