/**
 * The table from error to HTTP status: a caller's malformed request to us is
 * 400, a provider refusing a request for good is 422, so a client can tell
 * "fix what you sent" from "the provider will not do this".
 */
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { ErrorCodes, IntegrationError, invalidInput } from "../integrations/shared/errors.js";
import { errorBody, sendError, statusOf } from "./errors.js";

describe("statusOf", () => {
  it.each([
    ["a malformed field of ours", invalidInput("apiKey", "must not be empty", "stripe")],
    ["a state we refuse", new IntegrationError({ type: "schema", code: ErrorCodes.STATE_REUSED, field: "state", provider: "slack", message: "state has already been used" })],
    ["a base URL our policy refuses", new IntegrationError({ type: "schema", code: "base_url_refused", field: "baseUrl", provider: "jira", message: "baseUrl is refused" })],
    ["a destination our origin binding refuses", new IntegrationError({ type: "schema", code: "origin_not_allowed", provider: "sentry", message: "refused to send" })],
  ])("answers %s with 400", (_name, error) => {
    expect(statusOf(error)).toBe(400);
  });

  it.each([400, 402, 404, 409, 410, 422])("answers a provider's permanent refusal (its HTTP %i) with 422, its status in providerStatus", (status) => {
    const error = new IntegrationError({ type: "schema", status, code: "invalid_request_error", provider: "stripe", message: "Stripe refused the request" });
    expect(statusOf(error)).toBe(422);
    expect(errorBody(error).error).toMatchObject({ type: "schema", retryable: false, providerStatus: status });
  });

  it("keeps the other types where they were", () => {
    expect(statusOf(new IntegrationError({ type: "auth", code: ErrorCodes.UNAUTHENTICATED, message: "no token" }))).toBe(401);
    expect(statusOf(new IntegrationError({ type: "auth", status: 401, provider: "slack", message: "invalid_auth" }))).toBe(424);
    expect(statusOf(new IntegrationError({ type: "rate-limit", status: 429, provider: "slack", message: "slow down" }))).toBe(429);
    expect(statusOf(new IntegrationError({ type: "upstream", status: 500, provider: "slack", message: "down" }))).toBe(502);
    expect(statusOf(new IntegrationError({ type: "network", provider: "slack", message: "unreachable" }))).toBe(503);
    expect(statusOf(new IntegrationError({ type: "schema", code: ErrorCodes.CONNECTION_NOT_FOUND, provider: "slack", message: "no such" }))).toBe(404);
  });

  it("answers a refresh lock wait that ran out with 503 and Retry-After: the service is busy, not the provider", async () => {
    const error = new IntegrationError({ type: "upstream", code: ErrorCodes.REFRESH_LOCK_TIMEOUT, retryAfterSeconds: 1, provider: "slack", message: "another instance is refreshing" });
    expect(statusOf(error)).toBe(503);
    const app = Fastify();
    app.get("/", (_request, reply) => sendError(reply, error));
    const response = await app.inject({ method: "GET", url: "/" });
    expect(response.statusCode).toBe(503);
    expect(response.headers["retry-after"]).toBe("1");
    expect(response.json()).toMatchObject({ error: { type: "upstream", code: ErrorCodes.REFRESH_LOCK_TIMEOUT, retryable: true } });
  });
});
