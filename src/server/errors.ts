/**
 * One error body everywhere:
 *   {"error":{"type","message","retryable","provider", ...additive fields}}
 * and one table from error to HTTP status.
 */
import type { FastifyReply } from "fastify";
import { ErrorCodes, IntegrationError } from "../integrations/shared/errors.js";
import { isDatabaseUnavailable } from "../store/errors.js";
import type { ErrorBody } from "../api/responses.js";

const NOT_FOUND_CODES = new Set<string>([
  ErrorCodes.CONNECTION_NOT_FOUND,
  ErrorCodes.NO_ACTIVE_CONNECTION,
  ErrorCodes.UNKNOWN_PROVIDER,
  ErrorCodes.ROUTE_NOT_FOUND,
  ErrorCodes.UNKNOWN_ACTION,
  ErrorCodes.TICKET_NOT_FOUND,
  ErrorCodes.OPERATOR_VIEW_OFF,
]);

/** Fastify's own codes for what the caller sent wrong, and the status each deserves. */
const FASTIFY_STATUSES: Readonly<Record<string, number>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 413,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 400,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_JSON_BODY: 400,
  FST_ERR_CTP_EMPTY_TYPE: 400,
  FST_ERR_CTP_INVALID_TYPE: 415,
};

/**
 * A provider's permanent refusal (a `schema` error it answered with): 422
 * Unprocessable Content (RFC 9110 §15.5.21), the request was well-formed but
 * cannot be carried out, so it is not mistaken for the 400 of a malformed
 * request to us.
 */
export const PROVIDER_REFUSED_STATUS = 422;

export function statusOf(error: IntegrationError): number {
  if (error.code && NOT_FOUND_CODES.has(error.code)) return 404;
  // The caller's body past the bound is 413 Content Too Large; the provider's answer past it, a bad gateway answer.
  if (error.code === ErrorCodes.PROXY_BODY_TOO_LARGE) return 413;
  if (error.code === ErrorCodes.LOCAL_SIGN_IN_OFF) return 403;
  if (error.code === ErrorCodes.INTERNAL_ERROR) return 500;
  if (error.code === ErrorCodes.RESPONSE_TOO_LARGE) return 502;
  // Another instance is refreshing this connection's token and has not finished: we are busy, the provider is not at fault.
  if (error.code === ErrorCodes.REFRESH_LOCK_TIMEOUT) return 503;
  // A write whose Idempotency-Key is held by a first attempt still running, or whose outcome is unknown: not again.
  if (error.code === ErrorCodes.IDEMPOTENCY_OUTCOME_UNKNOWN || error.code === ErrorCodes.SYNC_RUNNING) return 409;
  switch (error.type) {
    case "schema":
      // Our own validation refused what the caller sent (400, naming the field); or the provider
      // answered and refused the request for good (422, with its status): the request to us was fine.
      return error.status === undefined ? 400 : PROVIDER_REFUSED_STATUS;
    case "auth":
      // Our own check of the caller's token is 401; a provider refusing the stored credential is 424.
      return error.code === ErrorCodes.UNAUTHENTICATED ? 401 : 424;
    case "rate-limit":
      return 429;
    case "network":
      return 503;
    case "upstream":
      return 502;
  }
}

/** The body, typed by its schema (src/api/responses.ts), which the OpenAPI document and the client read. */
export function errorBody(error: IntegrationError): ErrorBody {
  return {
    error: {
      type: error.type,
      message: error.message,
      retryable: error.retryable,
      ...(error.provider !== undefined ? { provider: error.provider } : {}),
      ...(error.code !== undefined ? { code: error.code } : {}),
      ...(error.field !== undefined ? { field: error.field } : {}),
      ...(error.status !== undefined ? { providerStatus: error.status } : {}),
      ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    },
  };
}

export function sendError(reply: FastifyReply, error: IntegrationError, status = statusOf(error)): FastifyReply {
  if (status === 401) reply.header("www-authenticate", `Bearer error="invalid_token"`);
  if ((status === 429 || status === 503) && error.retryAfterSeconds !== undefined) reply.header("retry-after", String(Math.ceil(error.retryAfterSeconds)));
  if (status === 429 && error.retryAfterSeconds === undefined) reply.header("retry-after", "1");
  return reply.code(status).header("cache-control", "no-store").send(errorBody(error));
}

/**
 * Turns whatever a handler threw into the one body. Fastify's own errors
 * about the request (too large, bad JSON, wrong content type) keep their
 * status; anything unexpected is a 500 whose message says nothing internal.
 */
export function toIntegrationError(error: unknown): { error: IntegrationError; status: number; unexpected: boolean } {
  if (error instanceof IntegrationError) return { error, status: statusOf(error), unexpected: false };
  const fastify = error as { code?: string; statusCode?: number; message?: string };
  const known = fastify.code ? FASTIFY_STATUSES[fastify.code] : undefined;
  const status = known ?? (typeof fastify.statusCode === "number" && fastify.statusCode >= 400 && fastify.statusCode < 500 ? fastify.statusCode : undefined);
  if (status !== undefined) {
    return {
      // Fastify's codes we know are in ErrorCodes; any other of its refusals is an invalid input.
      error: new IntegrationError({ type: "schema", code: known !== undefined && fastify.code ? fastify.code : ErrorCodes.INVALID_INPUT, field: "body", message: describeFastifyError(fastify.code, fastify.message) }),
      status,
      unexpected: false,
    };
  }
  if (isDatabaseUnavailable(error)) {
    return {
      error: new IntegrationError({ type: "upstream", code: ErrorCodes.DATABASE_UNAVAILABLE, retryAfterSeconds: 1, message: "the database is unavailable right now; retry shortly" }),
      status: 503,
      unexpected: false,
    };
  }
  return { error: new IntegrationError({ type: "upstream", code: ErrorCodes.INTERNAL_ERROR, message: "internal error; it has been logged" }), status: 500, unexpected: true };
}

function describeFastifyError(code: string | undefined, message: string | undefined): string {
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "request body is too large";
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_INVALID_TYPE":
      return "unsupported Content-Type; send application/json";
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return "body is empty but Content-Type is application/json; send a JSON object or no Content-Type";
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return `request body is not valid JSON: ${(message ?? "").slice(0, 200)}`;
    default:
      return (message ?? "bad request").slice(0, 300);
  }
}
