import { describe, expect, it } from "vitest";
import type { ConnectorContext } from "./connector.js";
import { IntegrationError } from "./errors.js";
import { ProviderHttp, type ProviderResponse } from "./http.js";
import { classifyOAuthError, processStandardTokenResponse } from "./standardOAuth.js";

const ctx: ConnectorContext = {
  settings: {
    mode: "live",
    options: {},
    clientId: "client",
    clientSecret: "secret",
    endpoints: { authorizeUrl: "https://as.example/authorize", tokenUrl: "https://as.example/token", apiUrl: "https://api.example" },
    redirectUri: "http://localhost:3000/cb",
    scopes: ["a", "b"],
  },
  http: new ProviderHttp({
    provider: "test",
    displayName: "Test",
    classify: () => null,
    policy: { attempts: 1, baseDelayMs: 1, capDelayMs: 1, budgetMs: 1, maxRetryAfterMs: 1, rationale: "" },
    timeoutMs: 1000,
  }),
};

const response = (status: number, json: unknown): ProviderResponse => ({ status, headers: new Headers(), text: JSON.stringify(json), json });

describe("classifyOAuthError", () => {
  it.each([
    [400, "invalid_grant", "auth"],
    [401, "invalid_client", "auth"],
    [400, "unauthorized_client", "auth"],
    [400, "invalid_request", "schema"],
    [400, "invalid_scope", "schema"],
    [400, "unsupported_grant_type", "schema"],
    [503, "temporarily_unavailable", "upstream"],
    [500, "invalid_grant", "upstream"],
    [429, "invalid_request", "rate-limit"],
    [400, "slow_down", "rate-limit"],
    [401, "something_new", "auth"],
    [400, "something_new", "schema"],
  ])("HTTP %i %s is %s", (status, code, type) => {
    expect(classifyOAuthError(response(status, { error: code, error_description: "x" }), "token", "Test")).toMatchObject({ type, code });
  });

  it("leaves bodies that are not RFC 6749 errors to the connector", () => {
    expect(classifyOAuthError(response(400, { message: "nope" }), "token", "Test")).toBeUndefined();
    expect(classifyOAuthError(response(400, { error: { code: 400 } }), "token", "Test")).toBeUndefined();
  });
});

describe("processStandardTokenResponse", () => {
  it("reduces a standard answer to a grant", async () => {
    const grant = await processStandardTokenResponse(
      ctx,
      response(200, { access_token: "at", token_type: "Bearer", expires_in: 3599, refresh_token: "rt", scope: "x y", id_token: "not.a.jwt" }),
      "authorization_code",
    );
    expect(grant).toMatchObject({ accessToken: "at", refreshToken: "rt", expiresInSeconds: 3599, scopes: ["x", "y"] });
  });

  it("falls back to the requested scopes when the answer leaves scope out (RFC 6749 §5.1)", async () => {
    const grant = await processStandardTokenResponse(ctx, response(200, { access_token: "at", token_type: "bearer" }), "refresh_token");
    expect(grant.scopes).toEqual(["a", "b"]);
    expect(grant.refreshToken).toBeUndefined();
    expect(grant.expiresInSeconds).toBeUndefined();
  });

  it.each([
    [{ token_type: "bearer" }],
    [{ access_token: 42, token_type: "bearer" }],
    [{ access_token: "at" }],
    [{ access_token: "at", token_type: "mac" }],
    [{ access_token: "at", token_type: "bearer", expires_in: "soon" }],
  ])("refuses a malformed answer as upstream: %j", async (body) => {
    const error = await processStandardTokenResponse(ctx, response(200, body), "authorization_code").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrationError);
    expect(error).toMatchObject({ type: "upstream", code: "unparsable_response", provider: "test" });
  });
});
