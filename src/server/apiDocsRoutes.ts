/**
 * The API's own description: the OpenAPI 3.1 document (built from the route
 * table and schemas of src/api/ when first asked for, not at every start:
 * it takes about 100 ms) and a page that
 * renders it under the page's strict CSP, with nothing from elsewhere.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { buildOpenApiDocument } from "../api/openapi.js";
import { API_ROUTES } from "../api/routes.js";
import { PAGE_HEADERS } from "./pageRoutes.js";

export function registerApiDocsRoutes(app: FastifyInstance): void {
  const folder = fileURLToPath(new URL("./page/", import.meta.url));
  let document: string | undefined;
  const html = readFileSync(folder + "docs.html");
  const script = readFileSync(folder + "docs.js");
  const open = { config: { rateLimit: false } };
  app.get(API_ROUTES.openApi.path, open, async (_request, reply) =>
    reply.header("content-type", "application/json; charset=utf-8").header("cache-control", "no-cache").header("access-control-allow-origin", "*").send((document ??= JSON.stringify(buildOpenApiDocument()))),
  );
  app.get(API_ROUTES.apiDocs.path, open, async (_request, reply) => reply.headers(PAGE_HEADERS).header("content-type", "text/html; charset=utf-8").header("cache-control", "no-cache").send(html));
  app.get("/ui/docs.js", open, async (_request, reply) => reply.headers(PAGE_HEADERS).header("content-type", "text/javascript; charset=utf-8").header("cache-control", "no-cache").send(script));
}
