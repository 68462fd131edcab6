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

export function loggerOptions(level: LoggerOptions["level"]): LoggerOptions {
  return {
    level: level ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    serializers: {
      req: (req: { method?: string; url?: string; id?: string; ip?: string }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url ?? ""),
        remoteAddress: req.ip,
      }),
    },
  };
}

export function createLogger(level: LoggerOptions["level"], destination?: pino.DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}
