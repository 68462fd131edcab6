/**
 * The proxy: one authenticated call, relative to a connection's API base,
 * made for a caller through the session (refresh, authorization, origins,
 * classification, retries, pacing, health). What the caller may name is
 * held to the base: a path (no absolute URL, no `..` or encoded traversal,
 * no host change), a query, headers that neither authorize nor manage the
 * connection, and a bounded body.
 *
 * What comes back: the provider's answer as it gave it (status, body, and
 * headers less hop-by-hop, auth and cookie ones) when the provider answered
 * a success or refused the request itself (a 404, a validation error, a
 * missing permission), with the connector's error type in a header. What is
 * about the connection or the provider's state (a rejected credential, a
 * throttle outlasting the budget, a transport failure, retries used up) is
 * the one error body, so a workflow meets those the same way on every route.
 */
import { z } from "zod";
import { pickConnection } from "./connections.js";
import type { ApiCall } from "./connector.js";
import type { Tier1ErrorType } from "./contract.js";
import { connectionRevoked, ErrorCodes, IntegrationError, isPermissionRefusal } from "./errors.js";
import { answerOf, answeredOperation, type HttpMethod } from "./http.js";
import type { ProxyLimits } from "./proxyLimits.js";
import type { Session } from "./session.js";
import { checkUserId } from "./userId.js";

export { DEFAULT_PROXY_LIMITS, type ProxyLimits } from "./proxyLimits.js";

/** How many times a path may be percent-encoded over itself; one still encoded after that is refused. */
const MAX_DECODING_ROUNDS = 5;
/** A segment of dots (ASCII, full-width, one-dot leader, ideographic): `.` or `..` to some server. */
const DOT_SEGMENT = /^[.\uff0e\u2024\u3002]{1,2}$/;

/** The longest path (query included) a caller may name. */
export const MAX_PROXY_PATH_LENGTH = 4096;
/** How many headers a caller may add. */
export const MAX_PROXY_HEADERS = 50;

export const PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const satisfies readonly HttpMethod[];


/** The header carrying the connector's error type on a provider's refusal passed through. */
export const ERROR_TYPE_HEADER = "x-autoflow-error-type";
/** The header naming the connection a proxied call was made with. */
export const CONNECTION_ID_HEADER = "x-autoflow-connection-id";

/**
 * Headers a caller may not set: how the call is authorized and where it
 * goes are the session's, and hop-by-hop fields are the transport's.
 */
/** Fields of one connection, not of the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

const FORBIDDEN_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "host",
  ...HOP_BY_HOP,
  "content-length",
  "expect",
  "forwarded",
  "via",
  // Some servers take the method or the path from these instead of the request line: a GET that is
  // really a POST would be retried as if it were safe, and a path could leave the API base.
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  "x-original-url",
  "x-rewrite-url",
  "x-override-url",
]);
const FORBIDDEN_REQUEST_PREFIXES = ["x-forwarded-", "proxy-", "sec-", "x-autoflow-"];

/** Headers of a provider's answer that stay behind: hop-by-hop, authentication and cookies (and what the body no longer is). */
const DROPPED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  // What would act on the caller's browser or client as if the service had said it.
  "strict-transport-security",
  "alt-svc",
  "clear-site-data",
  "content-security-policy",
  "content-security-policy-report-only",
  "refresh",
  "set-cookie",
  "set-cookie2",
  "www-authenticate",
  "proxy-authenticate",
  "authentication-info",
  "proxy-authentication-info",
  "authorization",
  // The body is handed on decoded and whole.
  "content-encoding",
  "content-length",
]);

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const FIELD_VALUE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/;
const JSON_TYPE = "application/json; charset=utf-8";

export const proxyInputSchema = z.strictObject({
  method: z.enum(PROXY_METHODS, { error: `method must be one of ${PROXY_METHODS.join(", ")}` }),
  path: z.string({ error: "path must be a string" }),
  query: z.record(z.string(), z.union([z.string(), z.array(z.string())]), { error: "query must be an object of strings (or arrays of strings)" }).optional(),
  headers: z.record(z.string(), z.string(), { error: "headers must be an object of strings" }).optional(),
  /** A JSON value is sent as JSON; a string is sent as given, with the caller's content-type. */
  body: z.unknown().optional(),
  connectionId: z.string().optional(),
});

export type ProxyInput = z.infer<typeof proxyInputSchema>;

/** A provider's answer, as handed back. */
export type ProxyAnswer = {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  connectionId: string;
  /** The connector's verdict, when the answer is a refusal. */
  errorType?: Tier1ErrorType;
};

function refuse(field: string, message: string, provider: string): IntegrationError {
  return new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field, provider, message });
}

/**
 * A caller's path, checked: relative to the API base (one leading slash, no
 * scheme, no authority), no fragment, no backslash or control character, and
 * no segment that is `.` or `..` however many times it is percent-encoded.
 */
export function checkProxyPath(path: string, provider: string): string {
  const fail = (why: string) => refuse("path", `path ${why}`, provider);
  if (path.length === 0) throw fail("is empty; give one relative to the connection's API base, e.g. /v1/account");
  if (path.length > MAX_PROXY_PATH_LENGTH) throw fail(`is longer than ${MAX_PROXY_PATH_LENGTH} characters`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(path)) throw fail("is an absolute URL; give a path relative to the connection's API base");
  if (!path.startsWith("/")) throw fail("must start with / (it is relative to the connection's API base)");
  if (path.startsWith("//")) throw fail("must not start with // (that names another host)");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\]/.test(path)) throw fail("holds a space, control character or backslash");
  if (path.includes("#")) throw fail("holds a fragment (#), which is never sent");
  const [pathname] = path.split("?", 1) as [string];
  let decoded = pathname;
  for (let round = 0; ; round++) {
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      throw fail("holds a malformed percent-encoding");
    }
    if (next === decoded) break;
    if (round === MAX_DECODING_ROUNDS) throw fail(`is still percent-encoded after ${MAX_DECODING_ROUNDS} rounds of decoding`);
    decoded = next;
  }
  // A segment's `;parameters` are dropped by some servers (Tomcat, under Jira Data Center) before they
  // resolve `..`, and look-alike dots are folded by others: `..;`, `.;x` and `．．` count as dot segments.
  if (decoded.split(/[/\\]/).some((segment) => DOT_SEGMENT.test(segment.split(";", 1)[0] as string))) {
    throw fail("leaves the connection's API base (a . or .. segment, maybe percent-encoded or with ;parameters)");
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(decoded)) throw fail("holds an encoded control character");
  return path;
}

/** A caller's headers, checked and lower-cased. */
export function checkProxyHeaders(headers: Readonly<Record<string, string>>, provider: string, forbidden: readonly string[] = []): Record<string, string> {
  const entries = Object.entries(headers);
  if (entries.length > MAX_PROXY_HEADERS) throw refuse("headers", `at most ${MAX_PROXY_HEADERS} headers may be given`, provider);
  const out: Record<string, string> = {};
  for (const [rawName, value] of entries) {
    const name = rawName.toLowerCase();
    const field = `headers.${rawName.slice(0, 64)}`;
    if (!HEADER_NAME.test(rawName)) throw refuse(field, "is not a valid header name", provider);
    if (FORBIDDEN_REQUEST_HEADERS.has(name) || FORBIDDEN_REQUEST_PREFIXES.some((p) => name.startsWith(p)) || forbidden.includes(name)) {
      throw refuse(field, `may not be set: how a proxied call is authorized, where it goes and how it travels are the service's`, provider);
    }
    // RFC 9110 §5.5 field-value: visible ASCII, space and tab, and obs-text; a line break, NUL or any other control character, or a character past Latin-1, is refused.
    if (!FIELD_VALUE.test(value)) throw refuse(field, "holds a character a header value may not carry (a control character, a line break, or one past Latin-1)", provider);
    if (value.length > 8192) throw refuse(field, "is longer than 8192 characters", provider);
    if (name in out) throw refuse(field, "is given twice (header names are case-insensitive)", provider);
    out[name] = value;
  }
  return out;
}

/** The call a checked input becomes. */
export function toProxyCall(input: ProxyInput, session: Session, limits: ProxyLimits): ApiCall & { maxResponseBytes: number } {
  const { provider, definition } = session;
  const path = checkProxyPath(input.path, provider);
  const headers = checkProxyHeaders(input.headers ?? {}, provider, definition.proxyForbiddenHeaders ?? []);
  let body: string | undefined;
  if (input.body !== undefined) {
    if (input.method === "GET") throw refuse("body", "a GET carries no body; put parameters in query", provider);
    if (typeof input.body === "string") {
      body = input.body;
    } else {
      body = JSON.stringify(input.body);
      headers["content-type"] ??= JSON_TYPE;
    }
    const size = Buffer.byteLength(body);
    if (size > limits.maxRequestBytes) {
      throw new IntegrationError({
        type: "schema",
        code: ErrorCodes.PROXY_BODY_TOO_LARGE,
        field: "body",
        provider,
        status: 413,
        message: `body is ${size} bytes; a proxied call carries at most ${limits.maxRequestBytes} (AUTOFLOW_PROXY_MAX_REQUEST_BYTES)`,
      });
    }
  }
  return {
    operation: `proxy ${input.method} ${path.split("?", 1)[0] as string}`,
    method: input.method,
    path,
    ...(input.query ? { query: input.query } : {}),
    headers,
    ...(body !== undefined ? { body } : {}),
    // Whether it may be repeated is the method's, or the caller's key where the provider honours one (passed through).
    expectJson: false,
    passRedirects: true,
    maxResponseBytes: limits.maxResponseBytes,
  };
}

/** `request`: one proxied call with the newest active connection, or the one named. */
export async function proxyRequest(session: Session, userId: string, given: ProxyInput, limits: ProxyLimits): Promise<ProxyAnswer> {
  checkUserId(userId, session.provider);
  const input = checkedInput(given, session.provider);
  const call = toProxyCall(input, session, limits);
  const record = await pickConnection(session, userId, input.connectionId);
  if (record.revokedAt) throw connectionRevoked(session.provider, session.name, record.id);
  try {
    const response = await session.call(record, call);
    return { status: response.status, headers: passedHeaders(response.headers), body: response.bytes ?? Buffer.from(response.text), connectionId: record.id };
  } catch (error) {
    // Only the answer to this call itself: a refresh the call needed first may have failed with the token endpoint's.
    const own = error instanceof IntegrationError && passesThrough(error) && answeredOperation(error) === call.operation;
    const answer = own ? answerOf(error as IntegrationError) : undefined;
    if (!answer || !(error instanceof IntegrationError)) throw error;
    return {
      status: answer.status,
      headers: passedHeaders(answer.headers),
      body: answer.bytes ?? Buffer.from(answer.text),
      connectionId: record.id,
      errorType: error.type,
    };
  }
}

/** The input of an SDK caller (the HTTP route parses its body with the same schema first). */
function checkedInput(given: unknown, provider: string): ProxyInput {
  const parsed = proxyInputSchema.safeParse(given);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0] as z.core.$ZodIssue;
  const field = issue.code === "unrecognized_keys" ? (issue.keys[0] ?? "input").slice(0, 64) : issue.path.map(String).join(".") || "input";
  throw refuse(field, issue.code === "unrecognized_keys" ? `unknown field ${JSON.stringify(field)}` : `${field}: ${issue.message}`, provider);
}

/** A refusal of the request itself, which the caller reads as the provider gave it. */
function passesThrough(error: IntegrationError): boolean {
  if (error.type === "schema") return error.code !== "origin_not_allowed" && error.code !== "response_too_large";
  // A missing permission for one resource or scope is about the request; a rejected credential is not.
  return isPermissionRefusal(error);
}

/** A provider's headers less those that stay behind, and less any the answer's own `Connection` names (hop-by-hop by its say). */
function passedHeaders(headers: Headers): Record<string, string> {
  const named = new Set((headers.get("connection") ?? "").split(",").map((n) => n.trim().toLowerCase()));
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (!DROPPED_RESPONSE_HEADERS.has(name) && !named.has(name) && !name.startsWith("access-control-") && !name.startsWith("x-autoflow-")) out[name] = value;
  });
  // The body is the provider's: no client should guess it is something else.
  out["x-content-type-options"] = "nosniff";
  return out;
}
