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
 * Every code the SDK and the service raise themselves: one closed list, the
 * `code` of an error body is one of these or, for an error a provider
 * answered (it names the provider and its `providerStatus`), the provider's
 * own code verbatim (`invalid_auth`, `rate_limit`), or a transport's errno
 * (`ECONNREFUSED`). The HTTP layer maps some of them to a status of their own.
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
  /** The OAuth grant reaches no Jira site (the user picked none, or the app was removed from it). */
  NO_JIRA_SITE: "no_jira_site",
  /** The request body is past the service's bound: 413 (Fastify's code, kept). */
  FST_ERR_CTP_BODY_TOO_LARGE: "FST_ERR_CTP_BODY_TOO_LARGE",
  /** The request's Content-Type is not JSON: 415. */
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "FST_ERR_CTP_INVALID_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_TYPE: "FST_ERR_CTP_INVALID_TYPE",
  /** The Content-Length does not match the body: 400. */
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "FST_ERR_CTP_INVALID_CONTENT_LENGTH",
  /** Content-Type JSON with an empty body: 400. */
  FST_ERR_CTP_EMPTY_JSON_BODY: "FST_ERR_CTP_EMPTY_JSON_BODY",
  /** The body is not valid JSON: 400. */
  FST_ERR_CTP_INVALID_JSON_BODY: "FST_ERR_CTP_INVALID_JSON_BODY",
  /** An empty Content-Type: 400. */
  FST_ERR_CTP_EMPTY_TYPE: "FST_ERR_CTP_EMPTY_TYPE",
  /** The caller's own token (a user JWT, the operator's or the metrics token) is missing or refused: 401. */
  UNAUTHENTICATED: "unauthenticated",
  /** The path names no registered connector: 404. */
  UNKNOWN_PROVIDER: "unknown_provider",
  /** The database cannot be reached right now: 503, retry shortly. */
  DATABASE_UNAVAILABLE: "database_unavailable",
  /** No route has this method and path: 404. */
  ROUTE_NOT_FOUND: "route_not_found",
  /** A ticket the Jira sync's mirror does not hold: 404. */
  TICKET_NOT_FOUND: "ticket_not_found",
  /** A push whose fields changed in Jira too, refused by the conflict policy (409, with both versions). */
  TICKET_CONFLICT: "conflict",
  /** A write under this Idempotency-Key is running, or its outcome is unknown: 409, not written again. */
  IDEMPOTENCY_OUTCOME_UNKNOWN: "idempotency_outcome_unknown",
  /** Signing in as the local user was asked for where it is not offered (a live connector, or not from this machine's page): 403. */
  LOCAL_SIGN_IN_OFF: "local_sign_in_off",
  /** The operator view was asked for with no AUTOFLOW_OPERATOR_TOKEN configured: 404. */
  OPERATOR_VIEW_OFF: "operator_view_off",
  /** The provider refused to refresh the token for good: connect again. */
  REFRESH_FAILED: "token_refresh_failed",
  /** Another instance is refreshing this connection's token and has not finished: 503, retry shortly. */
  REFRESH_LOCK_TIMEOUT: "refresh_lock_timeout",
  /** The connector has no action of this name: 404. */
  UNKNOWN_ACTION: "unknown_action",
  /** The connection's grant lacks a scope the action needs. */
  MISSING_SCOPE: "missing_scope",
  /** The provider's answer passed the bound on its size: 502. */
  RESPONSE_TOO_LARGE: "response_too_large",
  /** A proxied call's body passed the bound: 413. */
  PROXY_BODY_TOO_LARGE: "body_too_large",
  /** Another instance is running this connection's Jira sync: 409. */
  SYNC_RUNNING: "sync_running",
  /** A Jira webhook delivery that does not prove itself (JWT or X-Hub-Signature): 401. */
  WEBHOOK_UNVERIFIED: "webhook_unverified",
  /** A verified Jira webhook delivery that names no connection of ours: 403. */
  WEBHOOK_UNATTRIBUTABLE: "webhook_unattributable",
  /** Something unexpected failed in the service; it has been logged: 500. */
  INTERNAL_ERROR: "internal_error",
  /** The caller passed the service's own per-user request limit: 429. */
  TOO_MANY_REQUESTS: "too_many_requests",
  /** /metrics was asked for without the metrics token: 401. */
  METRICS_TOKEN: "metrics_token",
  /** A base URL (or where a call would go) is refused by the guard: not public https, or not allowed. */
  BASE_URL_REFUSED: "base_url_refused",
  /** A call would send a credential to an origin not among the connector's own. */
  ORIGIN_NOT_ALLOWED: "origin_not_allowed",
  /** The provider answered a call with a redirect, which is never followed with a credential. */
  UNEXPECTED_REDIRECT: "unexpected_redirect",
  /** A stored connection lacks what its calls need (connect again). */
  CONNECTION_INCOMPLETE: "connection_incomplete",
  /** Jira no longer has an issue right after writing it. */
  ISSUE_VANISHED: "issue_vanished",
  /** Gmail's grant does not tell the account's address. */
  EMAIL_ADDRESS_UNAVAILABLE: "email_address_unavailable",
} as const;

/** One of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** {@link ErrorCodes} as a list (the OpenAPI document's enum of our own codes). */
export const ERROR_CODES: readonly ErrorCode[] = Object.values(ErrorCodes);

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
