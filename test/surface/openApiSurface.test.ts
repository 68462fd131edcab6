/** The OpenAPI surface flattener (scripts/surface/openApiSurface.ts) on small fixture documents. */
import { describe, expect, it } from "vitest";
import { flattenOpenApi } from "../../scripts/surface/openApiSurface.js";
import { removedPaths } from "../../scripts/surface/rule.js";

/** A small OpenAPI 3.1 document: one path with a shared parameter, two operations, components and a schema's own $defs. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- fixtures edited in place by each test
function fixture(): Record<string, any> {
  return {
    openapi: "3.1.0",
    info: { title: "fixture", version: "1.0.0" },
    paths: {
      "/api/integrations/{provider}/health": {
        parameters: [{ $ref: "#/components/parameters/Provider" }],
        get: {
          parameters: [{ name: "fresh", in: "query", schema: { type: "string", enum: ["true", "false"] } }],
          responses: {
            "200": {
              description: "health",
              headers: { "Retry-After": { schema: { type: "integer" } } },
              content: { "application/json": { schema: { $ref: "#/components/schemas/Health" } } },
            },
            default: { $ref: "#/components/responses/Error" },
          },
        },
        post: {
          requestBody: {
            content: {
              "application/json": {
                schema: {
                  $defs: { Mode: { type: "string", const: "probe" } },
                  type: "object",
                  properties: { mode: { $ref: "#/$defs/Mode" }, tags: { type: "array", items: { type: "string", enum: ["a", "b"] } } },
                  additionalProperties: { type: "object", properties: { note: { type: "string" } } },
                },
              },
            },
          },
          responses: { "204": { description: "probed" } },
        },
      },
    },
    webhooks: { connected: { post: { responses: { "200": { description: "ok" } } } } },
    components: {
      parameters: { Provider: { name: "provider", in: "path", required: true, schema: { type: "string", enum: ["slack", "stripe"] } } },
      responses: { Error: { description: "error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } } },
      schemas: {
        Health: {
          allOf: [
            {
              type: "object",
              properties: {
                status: { type: "string", enum: ["ok", "degraded", "down"] },
                checkedAt: { type: "string" },
                details: { $ref: "#/components/schemas/Details" },
              },
            },
            { oneOf: [{ type: "object", properties: { authMethod: { type: "string" } } }, { anyOf: [{ properties: { region: { type: "string" } } }] }] },
          ],
        },
        Details: {
          type: "object",
          properties: { errorType: { type: ["string", "null"], enum: ["auth", "network", null] }, history: { type: "array", items: { $ref: "#/components/schemas/Details" } } },
        },
        Error: { type: "object", properties: { error: { type: "object", properties: { type: { const: "auth" }, retryable: { type: "boolean" } } } } },
      },
    },
  };
}

const H = "GET /api/integrations/{provider}/health";
const P = "POST /api/integrations/{provider}/health";

describe("flattenOpenApi", () => {
  it("reads operations, parameters, bodies, responses, headers and schema properties through $ref, allOf/anyOf/oneOf, items and additionalProperties", () => {
    const paths = flattenOpenApi(fixture());
    expect(paths).toEqual(
      expect.arrayContaining([
        H,
        `${H} parameter path provider`,
        `${H} parameter path provider $: "slack"`,
        `${H} parameter query fresh $: "false"`,
        `${H} response 200`,
        `${H} response 200 header Retry-After`,
        `${H} response 200 application/json`,
        `${H} response 200 application/json $.status`,
        `${H} response 200 application/json $.status: "down"`,
        `${H} response 200 application/json $.checkedAt`,
        `${H} response 200 application/json $.authMethod`,
        `${H} response 200 application/json $.region`,
        `${H} response 200 application/json $.details.errorType: "auth"`,
        `${H} response 200 application/json $.details.errorType: null`,
        `${H} response 200 application/json $.details.history`,
        `${H} response default application/json $.error.type: "auth"`,
        `${H} response default application/json $.error.retryable`,
        P,
        `${P} parameter path provider`,
        `${P} requestBody`,
        `${P} requestBody application/json $.mode: "probe"`,
        `${P} requestBody application/json $.tags[]: "b"`,
        `${P} requestBody application/json $[string].note`,
        `${P} response 204`,
        "WEBHOOK connected POST response 200",
      ]),
    );
    // A schema that contains itself is read once on each path, not again inside itself.
    expect(paths).not.toContain(`${H} response 200 application/json $.details.history[].errorType`);
  });

  it("removing an enum value, a property, a status or a content type is a removal", () => {
    const before = flattenOpenApi(fixture());
    const withoutDown = fixture();
    withoutDown.components.schemas.Health.allOf[0].properties.status.enum = ["ok", "degraded"];
    expect(removedPaths(before, flattenOpenApi(withoutDown))).toEqual([`${H} response 200 application/json $.status: "down"`]);

    const renamed = fixture();
    const props = renamed.components.schemas.Health.allOf[0].properties;
    props.checkedOn = props.checkedAt;
    delete props.checkedAt;
    expect(removedPaths(before, flattenOpenApi(renamed))).toEqual([`${H} response 200 application/json $.checkedAt`]);

    const noJson = fixture();
    noJson.paths["/api/integrations/{provider}/health"].get.responses["200"].content = { "text/plain": { schema: { type: "string" } } };
    expect(removedPaths(before, flattenOpenApi(noJson))).toContain(`${H} response 200 application/json`);

    const noPost = fixture();
    delete noPost.paths["/api/integrations/{provider}/health"].post;
    expect(removedPaths(before, flattenOpenApi(noPost))).toContain(P);
  });

  it("an added enum value, optional property, response or operation removes nothing", () => {
    const before = flattenOpenApi(fixture());
    const more = fixture();
    more.components.schemas.Health.allOf[0].properties.status.enum.push("paused");
    more.components.schemas.Details.properties.hint = { type: "string" };
    more.paths["/api/integrations/{provider}/health"].get.responses["429"] = { description: "throttled" };
    more.paths["/api/other"] = { get: { responses: { "200": { description: "ok" } } } };
    const after = flattenOpenApi(more);
    expect(removedPaths(before, after)).toEqual([]);
    expect(removedPaths(after, before)).toEqual(
      expect.arrayContaining([`${H} response 200 application/json $.status: "paused"`, `${H} response 429`, "GET /api/other"]),
    );
  });

  it("refuses a reference it cannot resolve", () => {
    const broken = fixture();
    broken.components.schemas.Health = { $ref: "#/components/schemas/Missing" };
    expect(() => flattenOpenApi(broken)).toThrow(/unresolvable \$ref "#\/components\/schemas\/Missing"/);
    expect(() => flattenOpenApi([])).toThrow(/JSON object/);
  });
});
