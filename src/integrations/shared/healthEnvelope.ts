/**
 * The health envelope: what a probe's outcome means for a connection.
 *
 *   ok        the provider accepted the credential just now
 *   degraded  the credential is presumably good but the provider throttles,
 *             fails, or cannot be reached; it should recover by itself
 *   down      the credential does not work (revoked, expired, refresh failed)
 *             or there is none; it recovers only when the user reconnects
 */
import type { Tier1ConnectionHealth } from "./contract.js";
import type { IntegrationError } from "./errors.js";
import type { StoredHealth, TokenRefreshStatus } from "./vault.js";

export type HealthEnvelope = Tier1ConnectionHealth<string, Record<string, unknown>>;

/** The stored part of a health outcome (no metadata). */
export function healthFromOutcome(input: {
  checkedAt: string;
  error?: IntegrationError;
  /** What we last knew about the credential, for probes that could not tell. */
  lastKnownAuth: boolean;
  displayName: string;
}): StoredHealth {
  const { error, checkedAt } = input;
  if (!error) return { status: "ok", checkedAt, auth: true, apiReachable: true, rateLimited: false };
  const base = { checkedAt, errorType: error.type, message: error.message };
  switch (error.type) {
    case "auth":
      return { ...base, status: "down", auth: false, apiReachable: true, rateLimited: false };
    case "rate-limit":
      return {
        ...base,
        status: "degraded",
        auth: true,
        apiReachable: true,
        rateLimited: true,
        message: `${input.displayName} API rate limit exceeded${error.retryAfterSeconds === undefined ? "" : `; retry after ${error.retryAfterSeconds}s`}`,
      };
    case "network":
      return { ...base, status: "degraded", auth: input.lastKnownAuth, apiReachable: false, rateLimited: false };
    case "upstream":
    case "schema":
      return { ...base, status: "degraded", auth: input.lastKnownAuth, apiReachable: true, rateLimited: false };
  }
}

/** The envelope a route returns: stored outcome + the connection's public fields. */
export function toEnvelope(input: {
  health: StoredHealth;
  authMethod?: string;
  tokenRefreshStatus?: TokenRefreshStatus;
  metadata: Record<string, unknown>;
}): HealthEnvelope {
  const { health } = input;
  const details: HealthEnvelope["details"] = {
    auth: health.auth,
    apiReachable: health.apiReachable,
    rateLimited: health.rateLimited,
  };
  if (health.errorType !== undefined) details.errorType = health.errorType;
  if (health.message !== undefined) details.message = health.message;
  return {
    status: health.status,
    checkedAt: health.checkedAt,
    ...(input.authMethod === undefined ? {} : { authMethod: input.authMethod }),
    ...(input.tokenRefreshStatus === undefined ? {} : { tokenRefreshStatus: input.tokenRefreshStatus }),
    ...input.metadata,
    details,
  };
}

export type ConnectionHealth = HealthEnvelope;
