/**
 * The route table of src/api/ is the API: every route the service serves is
 * listed with its schemas, every listed one is served, the OpenAPI document
 * built from them is what /api/openapi.json answers and what is checked in,
 * and the docs page renders it under the page's CSP.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildOpenApiDocument, OPENAPI_PATH } from "../api/openapi.js";
import { API_ROUTES, fastifyPath } from "../api/routes.js";
import { OPERATION_SCHEMAS } from "../api/schemas.js";
import { checkAnswer } from "./responseCheck.js";
import { servedRoutes } from "./app.js";
import { PAGE_CSP } from "./pageRoutes.js";
import { startHarness, type Harness } from "../testing/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config: { operatorToken: "o".repeat(40) } });
});
afterAll(async () => {
  await h?.close();
});

/** The page's static files: served, and not API operations. */
const PAGE_ASSETS = ["GET /", "GET /oauth/done", "GET /admin", "GET /ui/page.css", "GET /ui/app.js", "GET /ui/admin.js", "GET /ui/common.js", "GET /ui/docs.js"];

describe("the route table", () => {
  it("lists every route the service serves, and the service serves every route it lists", () => {
    const served = [...servedRoutes(h.service.app)].filter((r) => !PAGE_ASSETS.includes(r)).sort();
    const listed = Object.values(API_ROUTES)
      .map((r) => `${r.method} ${fastifyPath(r.path)}`)
      .sort();
    expect(served).toEqual(listed);
    expect(PAGE_ASSETS.every((asset) => servedRoutes(h.service.app).has(asset))).toBe(true);
  });

  it("gives every operation schemas and at least one answer", () => {
    expect(Object.keys(OPERATION_SCHEMAS).sort()).toEqual(Object.keys(API_ROUTES).sort());
    for (const schemas of Object.values(OPERATION_SCHEMAS)) expect(Object.keys(schemas.responses).length).toBeGreaterThan(0);
  });

  it("refuses an answer its schemas do not describe (what the suite-wide check holds every answer to)", () => {
    const health = "/api/integrations/:provider/health";
    const ok = JSON.stringify({ status: "ok", checkedAt: "2026-01-01T00:00:00.000Z", details: { auth: true, apiReachable: true, rateLimited: false } });
    expect(checkAnswer(health, "GET", 200, "application/json", ok)).toBeUndefined();
    expect(checkAnswer(health, "GET", 200, "application/json", ok.replace('"ok"', '"fine"'))).toMatch(/status/);
    expect(checkAnswer(health, "GET", 200, "application/json", JSON.stringify({ status: "ok" }))).toMatch(/checkedAt/);
    expect(checkAnswer(health, "GET", 418, "application/json", "{}")).toMatch(/error/);
    expect(checkAnswer(health, "GET", 201, "application/json", ok)).toMatch(/do not list/);
    expect(checkAnswer("/api/integrations/:provider/proxy", "POST", 200, "text/plain", "anything")).toBeUndefined();
    // An error of ours carries a code of the one list; a provider's carries the provider's own.
    const error = (fields: Record<string, unknown>) => JSON.stringify({ error: { type: "schema", message: "x", retryable: false, ...fields } });
    expect(checkAnswer(health, "GET", 400, "application/json", error({ code: "invalid_input" }))).toBeUndefined();
    expect(checkAnswer(health, "GET", 400, "application/json", error({ code: "made_up" }))).toMatch(/not in ErrorCodes/);
    expect(checkAnswer(health, "GET", 422, "application/json", error({ code: "channel_not_found", provider: "slack", providerStatus: 200 }))).toBeUndefined();
  });
});

describe("the OpenAPI document", () => {
  it("is served at /api/openapi.json, OpenAPI 3.1, with every operation and each action's own path", async () => {
    const res = await h.request({ method: "GET", url: "/api/openapi.json" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const doc = res.json() as { openapi: string; paths: Record<string, Record<string, { operationId: string }>> };
    expect(doc.openapi).toBe("3.1.0");
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    for (const id of Object.keys(API_ROUTES)) expect(ids).toContain(id);
    expect(doc.paths["/api/integrations/slack/actions/postMessage"]?.post?.operationId).toBe("slack.postMessage");
    expect(doc).toEqual(buildOpenApiDocument());
  });

  it("describes the contract's shapes: the health envelope's status values, the seed's OAuth start fields, the error body", () => {
    const doc = buildOpenApiDocument() as { components: { schemas: Record<string, { properties: Record<string, { enum?: string[]; properties?: Record<string, unknown> }>; required?: string[] }> } };
    const health = doc.components.schemas.slackHealth;
    expect(health?.properties.status?.enum).toEqual(["ok", "degraded", "down"]);
    expect(Object.keys(health?.properties.details?.properties ?? {})).toEqual(["auth", "apiReachable", "rateLimited", "errorType", "message"]);
    expect(doc.components.schemas.OAuthStartResult?.required).toEqual(["authUrl", "state", "expiresInSeconds"]);
    expect(Object.keys(doc.components.schemas.ErrorBody?.properties.error?.properties ?? {})).toEqual(expect.arrayContaining(["type", "message", "retryable", "code"]));
  });

  it("is checked in as built (npm run api:update writes it)", () => {
    const checkedIn = JSON.parse(readFileSync(OPENAPI_PATH, "utf8")) as unknown;
    expect(checkedIn, `${OPENAPI_PATH} is stale: run npm run api:update`).toEqual(buildOpenApiDocument());
  });
});

describe("the API reference page", () => {
  it("is served at /api/docs under the page's CSP, its script from this origin only", async () => {
    const page = await h.request({ method: "GET", url: "/api/docs" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-security-policy"]).toBe(PAGE_CSP);
    expect(page.body).toContain('<script type="module" src="/ui/docs.js"></script>');
    expect(page.body).not.toMatch(/https?:\/\//);
    const script = await h.request({ method: "GET", url: "/ui/docs.js" });
    expect(script.statusCode).toBe(200);
    expect(script.headers["content-type"]).toMatch(/^text\/javascript/);
    expect(script.body).toContain('fetch("/api/openapi.json")');
    expect(script.body).not.toMatch(/https?:\/\//);
  });
});
