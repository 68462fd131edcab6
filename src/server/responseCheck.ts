/**
 * Holds every answer to its schema (src/api/schemas.ts): with it on, a JSON
 * answer whose route, status or body the schemas do not describe fails the
 * request with a 500 that says so, and is logged. The test suite runs with
 * it on (AUTOFLOW_CHECK_RESPONSES=1, vitest.config.ts), so every answer any
 * test provokes is checked; a service in production leaves it off.
 */
import type { FastifyInstance } from "fastify";
import type { z } from "zod";
import { API_ROUTES, fastifyPath, type OperationId } from "../api/routes.js";
import { OPERATION_SCHEMAS, type ApiResponse, type OperationSchemas } from "../api/schemas.js";
import { errorBodySchema } from "../api/responses.js";
import { ERROR_CODES, ErrorCodes, IntegrationError } from "../integrations/shared/errors.js";
import { describeIssues } from "../integrations/shared/publicShapes.js";

/** Each served route pattern (Fastify's) and method, with its operation's schemas. */
const BY_ROUTE = new Map<string, OperationSchemas>(
  (Object.keys(API_ROUTES) as OperationId[]).map((id) => [`${API_ROUTES[id].method} ${fastifyPath(API_ROUTES[id].path)}`, OPERATION_SCHEMAS[id]]),
);

/** The problem with an answer, or undefined when its schemas describe it. */
export function checkAnswer(route: string, method: string, status: number, contentType: string, body: string): string | undefined {
  const schemas = BY_ROUTE.get(`${method} ${route}`);
  // Not an API route (the page's assets) or not matched (404s: the one error body).
  if (!schemas) return route === "unmatched" || !contentType.startsWith("application/json") ? undefined : checkJson(errorBodySchema, body, `${method} ${route} ${status}`);
  if (schemas.passthrough && status < 400) return undefined;
  const answer: ApiResponse | undefined = schemas.responses[status];
  if (!answer) {
    // An error the route does not list is still the one error body (a 413 of Fastify's, a 500).
    if (status >= 400 && contentType.startsWith("application/json")) return checkJson(errorBodySchema, body, `${method} ${route} ${status}`);
    if (status >= 400 && !contentType) return undefined;
    return `${method} ${route} answered ${status}, which its schemas do not list`;
  }
  if (!answer.schema) return undefined;
  if (!contentType.startsWith("application/json")) return `${method} ${route} ${status} answered ${contentType || "no content type"}, not JSON`;
  return checkJson(answer.schema, body, `${method} ${route} ${status}`);
}

function checkJson(schema: z.ZodType, body: string, where: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return `${where}: the body is not JSON`;
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return ownCode(value, where);
  return `${where}: ${describeIssues(parsed.error.issues)}`;
}

/** An error body's code is one of ours unless the error is a provider's (then its code is the provider's own). */
function ownCode(value: unknown, where: string): string | undefined {
  const error = (value as { error?: { code?: unknown; provider?: unknown } } | null)?.error;
  if (!error || typeof error.code !== "string" || error.provider !== undefined) return undefined;
  return (ERROR_CODES as readonly string[]).includes(error.code) ? undefined : `${where}: error code ${JSON.stringify(error.code)} is not in ErrorCodes`;
}

export function registerResponseCheck(app: FastifyInstance): void {
  app.addHook("onSend", async (request, reply, payload) => {
    if (typeof payload !== "string") return payload;
    const route = request.routeOptions.url ?? "unmatched";
    const problem = checkAnswer(route, request.method, reply.statusCode, String(reply.getHeader("content-type") ?? ""), payload);
    if (!problem) return payload;
    request.log.error({ problem }, "answer does not match its schema");
    // Answered as a failure of ours that says what is wrong (the check runs in development and tests only).
    throw new IntegrationError({ type: "upstream", code: ErrorCodes.INTERNAL_ERROR, message: `the answer does not match its schema: ${problem}` });
  });
}
