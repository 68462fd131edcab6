/**
 * The OpenAPI 3.1 document of the HTTP API, built from the route table
 * (./routes.ts) and each operation's zod schemas (./schemas.ts) by zod's own
 * JSON Schema output (draft 2020-12, which is OpenAPI 3.1's dialect). Each
 * connector's actions get a path of their own, with their input and output.
 * Served at /api/openapi.json and checked in at docs/integrations/openapi.json
 * (`npm run api:update` writes it; `npm run api:check` fails on drift).
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { CONNECTORS, PROVIDER_IDS } from "../integrations/registry.js";
import { API_ROUTES, type ApiRoute, type OperationId, type RouteAuth } from "./routes.js";
import { OPERATION_SCHEMAS, type ApiResponse, type OperationSchemas } from "./schemas.js";
import { errorBodySchema } from "./responses.js";

export { OPENAPI_PATH } from "./routes.js";

type Json = Record<string, unknown>;

const SECURITY: Record<RouteAuth, Json[] | undefined> = {
  user: [{ userJwt: [] }],
  operator: [{ operatorToken: [] }],
  metrics: [{}, { metricsToken: [] }],
  none: undefined,
};

/** Turns a schema into JSON Schema, its named parts ($defs) moved into the document's components. */
class SchemaWriter {
  readonly components: Record<string, Json> = {};

  write(schema: z.ZodType, io: "input" | "output"): Json {
    const { $schema: _dialect, $defs, ...rest } = z.toJSONSchema(schema, { io, target: "draft-2020-12", unrepresentable: "any" }) as Json & { $defs?: Record<string, Json> };
    for (const [name, def] of Object.entries($defs ?? {})) this.components[name] = this.finish(def, io);
    return this.finish(rest, io);
  }

  /** References point into components; answers stay open to additive fields. */
  private finish(node: Json, io: "input" | "output"): Json {
    const visit = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(visit);
      if (!value || typeof value !== "object") return value;
      const out: Json = {};
      for (const [key, inner] of Object.entries(value as Json)) {
        if (key === "$ref" && typeof inner === "string") out[key] = inner.replace("#/$defs/", "#/components/schemas/");
        else if (key === "additionalProperties" && inner === false && io === "output") continue;
        else out[key] = visit(inner);
      }
      return out;
    };
    return visit(node) as Json;
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function parameters(writer: SchemaWriter, where: "path" | "query", schema: z.ZodType | undefined): Json[] {
  if (!schema) return [];
  const json = writer.write(schema, "input") as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === "path" || (json.required ?? []).includes(name),
      ...(typeof description === "string" ? { description } : {}),
      schema: rest,
    };
  });
}

function responsesOf(writer: SchemaWriter, responses: Readonly<Record<number, ApiResponse>>): Json {
  const out: Json = {};
  for (const [status, answer] of Object.entries(responses)) {
    const headers = answer.headers ? Object.fromEntries(Object.entries(answer.headers).map(([name, description]) => [name, { description, schema: { type: "string" } }])) : undefined;
    const content = answer.schema
      ? { "application/json": { schema: writer.write(answer.schema, "output") } }
      : answer.contentType
        ? { [answer.contentType]: { schema: answer.contentType === "application/json" ? { type: "object" } : { type: "string" } } }
        : undefined;
    out[status] = { description: answer.description, ...(headers ? { headers } : {}), ...(content ? { content } : {}) };
  }
  return out;
}

function operation(writer: SchemaWriter, id: string, route: ApiRoute, schemas: OperationSchemas): Json {
  const headerParams = Object.entries(schemas.headers ?? {}).map(([name, description]) => ({ name, in: "header", required: false, description, schema: { type: "string" } }));
  return {
    operationId: id,
    summary: route.summary,
    tags: [route.tag],
    ...(SECURITY[route.auth] ? { security: SECURITY[route.auth] } : { security: [] }),
    parameters: [...parameters(writer, "path", schemas.params), ...parameters(writer, "query", schemas.query), ...headerParams],
    ...(schemas.body ? { requestBody: { required: schemas.bodyRequired ?? false, content: { "application/json": { schema: writer.write(schemas.body, "input") } } } } : {}),
    responses: responsesOf(writer, schemas.responses),
  };
}

/** The whole document; the same on every call (it depends on the code and package.json only). */
export function buildOpenApiDocument(): Json {
  const writer = new SchemaWriter();
  const paths: Record<string, Record<string, Json>> = {};
  for (const [id, route] of Object.entries(API_ROUTES) as Array<[OperationId, ApiRoute]>) {
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(writer, id, route, OPERATION_SCHEMAS[id]);
  }
  // Each action, with the input and output of its own schemas (the generic route above takes any).
  const generic = OPERATION_SCHEMAS.runAction;
  for (const provider of PROVIDER_IDS) {
    for (const [name, action] of Object.entries(CONNECTORS[provider].actions)) {
      const path = `/api/integrations/${provider}/actions/${name}`;
      paths[path] = {
        post: operation(writer, `${provider}.${name}`, { ...API_ROUTES.runAction, summary: action.description }, {
          query: generic.query,
          body: action.input,
          bodyRequired: false,
          responses: { ...generic.responses, 200: { description: "The action's output", schema: action.output } },
        }),
      };
    }
  }
  writer.write(errorBodySchema, "output");
  return {
    openapi: "3.1.0",
    info: {
      title: "AutoFlow Integrations",
      version: packageVersion(),
      description:
        "The connector layer's HTTP API: the Integration SDK v1 contract (frozen; additive changes in minor releases) over eight providers. " +
        "Every error is one body, {error: {type, message, retryable, ...}}, typed by the contract's five error types.",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    tags: [
      { name: "integrations", description: "The v1 lifecycle of each connector, its actions and the proxy" },
      { name: "jira-sync", description: "The Jira ticket sync: configuration, runs, the mirror, pushes, webhooks" },
      { name: "operator", description: "The operator view (AUTOFLOW_OPERATOR_TOKEN)" },
      { name: "service", description: "Liveness, readiness, metrics and this document" },
      { name: "page", description: "What the connect page calls besides the API" },
    ],
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(writer.components).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      securitySchemes: {
        userJwt: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "A user JWT (HS256 secret, or a JWKS), whose sub is the user" },
        operatorToken: { type: "http", scheme: "bearer", description: "AUTOFLOW_OPERATOR_TOKEN" },
        metricsToken: { type: "http", scheme: "bearer", description: "AUTOFLOW_METRICS_TOKEN, when set" },
      },
    },
  };
}
