/**
 * Logging through pino with redaction: no token, code, state or secret ever
 * reaches a log line, whatever a caller or provider sends.
 */
import pino, { type Logger, type LoggerOptions } from "pino";

/** Query parameters whose values are secrets or single-use grants. */
const SECRET_QUERY_KEYS = new Set(["code", "state", "token", "access_token", "refresh_token", "client_secret", "code_verifier", "id_token", "password"]);

/** Paths pino censors wherever a log object carries them. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  "res.headers['set-cookie']",
  "accessToken",
  "refreshToken",
  "apiKey",
  "clientSecret",
  "codeVerifier",
  "code",
  "state",
  "*.accessToken",
  "*.refreshToken",
  "*.apiKey",
  "*.clientSecret",
  "*.codeVerifier",
  "*.code",
  "*.state",
];

export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const key of [...params.keys()]) if (SECRET_QUERY_KEYS.has(key.toLowerCase())) params.set(key, "[redacted]");
  return `${url.slice(0, q)}?${params.toString()}`;
}

const serializers = {
  req: (req: { method?: string; url?: string; id?: string; ip?: string }) => ({
    id: req.id,
    method: req.method,
    url: redactUrl(req.url ?? ""),
    remoteAddress: req.ip,
  }),
};

export function loggerOptions(level: LoggerOptions["level"]): LoggerOptions {
  return { level: level ?? "info", redact: { paths: REDACT_PATHS, censor: "[redacted]" }, serializers };
}

const ACCESS_LOGGER = Symbol("autoflow.accessLogger");

/**
 * The logger of the access log's line, beside `logger` (createLogger makes
 * it): the same destination and level, without the redaction paths. That
 * line holds only what the serializers below make of a request (its URL's
 * secrets already redacted, no header) and of a reply (the status), which no
 * path can match; passing it through them anyway took about a sixth of the
 * time of a request the service answers from its database. Undefined for a
 * logger made elsewhere: the line is then written through the request's own.
 */
export function accessLoggerOf(logger: unknown): Logger | undefined {
  return (logger as { [ACCESS_LOGGER]?: Logger } | undefined)?.[ACCESS_LOGGER];
}

export function createLogger(level: LoggerOptions["level"], destination?: pino.DestinationStream): Logger {
  // One destination for both loggers, so their lines never interleave mid-line.
  const stream = destination ?? pino.destination({ fd: process.stdout.fd || 1 });
  const logger = pino(loggerOptions(level), stream);
  const access = pino({ level: level ?? "info", serializers: { ...serializers, res: (reply: { statusCode: number }) => ({ statusCode: reply.statusCode }) } }, stream);
  return Object.assign(logger, { [ACCESS_LOGGER]: access });
}
