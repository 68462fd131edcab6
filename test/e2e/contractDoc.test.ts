/**
 * docs/integrations/contract-v1.md is a capture: the seed's examples and the
 * rest, as the service and its sandboxes answer them now (everything on
 * 127.0.0.1, no network). It must be what a fresh capture writes, and what
 * the capture saw must still mean what the document says.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { RETRY_POLICIES } from "../../src/integrations/registry.js";
import { captureContract, CONTRACT_V1_DOC_PATH, PLACEHOLDER_INSTANT, type ContractCapture, type Exchange } from "../../src/testing/contractCapture.js";
import { ROOT } from "../../src/testing/processes.js";

type Json = Record<string, unknown>;
const body = (exchange: Exchange): Json => exchange.response.body as Json;
const errorOf = (exchange: Exchange): Json => body(exchange).error as Json;

describe("docs/integrations/contract-v1.md", () => {
  let capture: ContractCapture;
  beforeAll(async () => {
    capture = await captureContract();
  }, 60_000);

  it("is what a capture writes now (run `npm run docs:contract` if this fails)", () => {
    const committed = readFileSync(`${ROOT}${CONTRACT_V1_DOC_PATH}`, "utf8");
    expect(capture.markdown, `${CONTRACT_V1_DOC_PATH} differs from a fresh capture: run \`npm run docs:contract\` and commit the result`).toBe(committed);
  });

  it("answers the Slack start with exactly the seed's four fields", () => {
    const start = capture.exchanges.slackStart;
    expect(start.request).toMatchObject({ method: "POST", path: "/api/integrations/slack/oauth/start" });
    expect(start.response.status).toBe(200);
    expect(Object.keys(body(start)).sort()).toEqual(["authUrl", "codeVerifier", "expiresInSeconds", "state"]);
    expect(body(start)).toMatchObject({ expiresInSeconds: 600, state: expect.stringMatching(/^slack_/) as unknown });
    expect(new URL(body(start).authUrl as string).pathname).toBe("/oauth/v2/authorize");
  });

  it("shows the throttled Stripe health as the seed's degraded envelope", () => {
    const health = capture.exchanges.stripeThrottledHealth;
    expect(health.request).toMatchObject({ method: "GET", path: "/api/integrations/stripe/health?maxAge=0" });
    expect(health.response.status).toBe(200);
    expect(body(health)).toMatchObject({
      status: "degraded",
      authMethod: "oauth2",
      accountId: expect.stringMatching(/^acct_/) as unknown,
      details: { auth: true, apiReachable: true, rateLimited: true, errorType: "rate-limit", message: "Stripe API rate limit exceeded" },
    });
  });

  it("walks the OAuth lifecycle to a revoked connection and the API-key one to health ok", () => {
    const { slackComplete, slackList, slackTest, slackHealth, slackDisconnect, slackHealthAfter, stripeConnect, stripeHealth } = capture.exchanges;
    const id = body(slackComplete).id;
    expect(body(slackComplete)).toMatchObject({ userId: "alice", authMethod: "oauth2", tokenMasked: expect.stringMatching(/^[^*]{0,4}\*{4}[^*]{0,4}$/) as unknown });
    expect((body(slackList).connections as Json[]).map((c) => c.id)).toEqual([id]);
    expect(body(slackTest).connectionId).toBe(id);
    expect(body(slackHealth)).toMatchObject({ status: "ok", details: { auth: true, apiReachable: true, rateLimited: false } });
    expect(body(slackDisconnect)).toMatchObject({ disconnected: true, revocation: "revoked", connection: { id, revokedAt: expect.any(String) as unknown } });
    expect(body(slackHealthAfter)).toMatchObject({ status: "down", details: { auth: false, errorType: "auth" } });
    expect(body(stripeConnect)).toMatchObject({ userId: "bob", authMethod: "api_key" });
    expect(body(stripeHealth)).toMatchObject({ status: "ok", authMethod: "api_key", accountId: body(stripeConnect).accountId });
  });

  it("shows each error type with its status, retryable flag and the provider calls the document describes", () => {
    const { errorAuthKey, errorAuthToken, errorSchemaField, errorSchemaProvider, errorUpstream, errorNetwork, errorRateLimit } = capture.exchanges;
    const cases: [Exchange, number, string, boolean, number][] = [
      [errorAuthKey, 424, "auth", false, 1],
      [errorAuthToken, 401, "auth", false, 0],
      [errorSchemaField, 400, "schema", false, 0],
      [errorSchemaProvider, 422, "schema", false, 1],
      [errorUpstream, 502, "upstream", true, RETRY_POLICIES.stripe.attempts],
      [errorNetwork, 503, "network", true, RETRY_POLICIES.stripe.attempts],
      [errorRateLimit, 429, "rate-limit", true, 1],
    ];
    for (const [exchange, status, type, retryable, calls] of cases) {
      expect(exchange.response.status, type).toBe(status);
      expect(errorOf(exchange), type).toMatchObject({ type, retryable });
      expect(exchange.providerCalls, `${type} (${status}): provider calls`).toBe(calls);
    }
    expect(errorSchemaField.response.body).toMatchObject({ error: { field: "apiKey" } });
    expect(errorRateLimit.response.headers).toContainEqual(["Retry-After", "3600"]);
  });

  it("shows no bearer token, no issued secret and no real timestamp", () => {
    expect(capture.markdown).not.toMatch(/Bearer eyJ/);
    expect(capture.markdown).toContain("Authorization: Bearer <user JWT>");
    const stamps = capture.markdown.match(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g) ?? [];
    expect(stamps.length).toBeGreaterThan(0);
    expect(new Set(stamps)).toEqual(new Set([PLACEHOLDER_INSTANT]));
    const key = (body(capture.exchanges.stripeDesk).apiKey as string) ?? "";
    expect(key).toMatch(/^sk_test_/);
    expect(capture.markdown).not.toContain(key);
  });
});
