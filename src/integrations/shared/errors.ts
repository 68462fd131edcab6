/**
 * The one error class of the SDK. `type` is one of the contract's five;
 * `retryable` is derived from it and never set by hand, so the retry rule of
 * the contract ("only rate-limit, network and upstream") holds by
 * construction.
 */
import type { Tier1ErrorType } from "./contract.js";

/** Error types that the contract allows to be retried automatically. */
const RETRYABLE: ReadonlySet<Tier1ErrorType> = new Set<Tier1ErrorType>(["rate-limit", "network", "upstream"]);

/** True for rate-limit, network and upstream; false for auth and schema. */
export function isRetryableType(type: Tier1ErrorType): boolean {
  return RETRYABLE.has(type);
}

/**
 * Codes the SDK itself raises (provider codes are kept verbatim instead).
 * The HTTP layer maps a few of them to a status of their own.
 */
export const ErrorCodes = {
  /** A request field is missing, of the wrong type, or malformed. */
  INVALID_INPUT: "invalid_input",
  /** The connection id does not exist for this user and provider. */
  CONNECTION_NOT_FOUND: "connection_not_found",
  /** The user has no active connection for this provider. */
  NO_ACTIVE_CONNECTION: "no_active_connection",
  /** The connection was disconnected (here, or while a refresh of it was under way). */
  CONNECTION_REVOKED: "connection_revoked",
  /** The OAuth state cannot be opened: forged, truncated or tampered with. */
  STATE_INVALID: "state_invalid",
  STATE_EXPIRED: "state_expired",
  STATE_REUSED: "state_reused",
  /** The state was issued for another provider (mix-up or swap). */
  STATE_WRONG_PROVIDER: "state_wrong_provider",
  /** The state was issued to another user. */
  STATE_WRONG_USER: "state_wrong_user",
  /**
   * The state is bound to a browser (RFC 9700 §4.5) and the completion came
   * without that browser's binding, or with another's.
   */
  STATE_WRONG_BROWSER: "state_wrong_browser",
  /** The authorization server's `iss` does not match (RFC 9207). */
  ISSUER_MISMATCH: "issuer_mismatch",
  /** The connector does not offer this way in (e.g. an API key where only OAuth exists). */
  UNSUPPORTED_AUTH_METHOD: "unsupported_auth_method",
  /** The provider answered with a body we could not parse. */
  UNPARSABLE_RESPONSE: "unparsable_response",
  /** The request timed out before a response arrived. */
  TIMEOUT: "timeout",
  /** The connection was refused, reset, or the name did not resolve. */
  TRANSPORT: "transport",
  /** The pacer would have had the call wait for the account's rate budget past the call's deadline; nothing was sent. */
  PACING_TIMEOUT: "pacing_timeout",
} as const;

export type IntegrationErrorInit = {
  type: Tier1ErrorType;
  message: string;
  /** Provider id, when the error concerns one. */
  provider?: string;
  /** The provider's HTTP status, when it answered. */
  status?: number;
  /** The provider's own error code (`invalid_auth`, `rate_limit`), or one of {@link ErrorCodes}. */
  code?: string;
  /** Seconds the provider asked us to wait (Retry-After), when it said. */
  retryAfterSeconds?: number;
  /** A provider's explicit retry advice (Stripe-Should-Retry), when it gave one. */
  providerRetryHint?: boolean;
  /** The request field at fault, for schema errors raised on our input. */
  field?: string;
  cause?: unknown;
};

export class IntegrationError extends Error {
  override readonly name = "IntegrationError";
  readonly type: Tier1ErrorType;
  readonly provider: string | undefined;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly providerRetryHint: boolean | undefined;
  readonly field: string | undefined;

  constructor(init: IntegrationErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.type = init.type;
    this.provider = init.provider;
    this.status = init.status;
    this.code = init.code;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.providerRetryHint = init.providerRetryHint;
    this.field = init.field;
  }

  /** Derived from `type`: the contract allows retries for rate-limit, network and upstream only. */
  get retryable(): boolean {
    return isRetryableType(this.type);
  }

  toJSON(): Record<string, unknown> {
    return {
      type: this.type,
      message: this.message,
      retryable: this.retryable,
      provider: this.provider,
      status: this.status,
      code: this.code,
      retryAfterSeconds: this.retryAfterSeconds,
      field: this.field,
    };
  }
}

/** A schema error about one of the caller's fields; the message always names the field. */
export function invalidInput(field: string, message: string, provider?: string): IntegrationError {
  const named = message.startsWith(field) ? message : `${field}: ${message}`;
  return new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field, message: named, provider });
}

/** A call through a connection that was disconnected. */
export function connectionRevoked(provider: string, displayName: string, id: string): IntegrationError {
  return new IntegrationError({ type: "auth", code: ErrorCodes.CONNECTION_REVOKED, provider, message: `${displayName} connection ${id} was disconnected; connect again` });
}

/**
 * An auth error about one resource or scope (HTTP 403, a missing scope or
 * permission), not about the credential: the request needs more than this
 * grant gives, and the connection is otherwise fine.
 */
export function isPermissionRefusal(error: IntegrationError): boolean {
  return error.type === "auth" && (error.status === 403 || /scope|permission|forbidden/i.test(error.code ?? ""));
}

export function isIntegrationError(value: unknown): value is IntegrationError {
  return value instanceof IntegrationError;
}
