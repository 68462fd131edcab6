/**
 * Whether an error means "the database cannot be reached right now" (server
 * down or restarting, connection killed, pool timeout), as opposed to a bug or
 * a constraint: the HTTP layer answers those with a clear 503, and the next
 * request gets a fresh connection.
 */

/** SQLSTATE classes and codes of a database that went away (PostgreSQL appendix A). */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300"]);
const UNAVAILABLE_NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "SQLITE_BUSY"]);
const UNAVAILABLE_MESSAGES = [/Connection terminated/i, /timeout exceeded when trying to connect/i, /Client has encountered a connection error/i, /database is locked/i];

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === "string" && (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_NODE_CODES.has(code))) return true;
    if (typeof message === "string" && UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
