/**
 * The surface of an OpenAPI 3.x document, as a set of paths:
 *
 *   GET /api/integrations/{provider}/health                                   an operation
 *   GET /api/integrations/{provider}/health parameter path provider           a parameter (where, name)
 *   POST /api/x requestBody application/json                                  a request body's content type
 *   POST /api/x requestBody application/json $.userId                         a property of its schema
 *   GET /api/x response 200                                                   a response status
 *   GET /api/x response 200 application/json $.status: "down"                 an enum or const value
 *   GET /api/x response 200 header Retry-After                                a response header
 *   ... $.items[] / $[0] / $[string]                                          array items, tuple items, additionalProperties
 *   WEBHOOK name POST ...                                                     the same under `webhooks`
 *
 * Schemas are read through `$ref` (to components, `$defs` or anywhere in the
 * document), `allOf` / `anyOf` / `oneOf` (merged at the same place), `items`,
 * `prefixItems`, `additionalProperties` and `patternProperties`. A path of the
 * accepted document missing from the generated one is a removal (rule.ts).
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

function pointer(root: Json, ref: string): Json | undefined {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return undefined;
  let at: Json | undefined = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(at)) at = at[Number(key)];
    else if (isObject(at)) at = Object.hasOwn(at, key) ? at[key] : undefined;
    else return undefined;
    if (at === undefined) return undefined;
  }
  return at;
}

/** Every path of the surface of an OpenAPI document, sorted. */
export function flattenOpenApi(document: unknown): string[] {
  if (!isObject(document)) throw new Error("an OpenAPI document is a JSON object");
  return [...new OpenApiFlattener(document).run()].sort();
}

class OpenApiFlattener {
  private readonly paths = new Set<string>();
  /** Objects being read through a $ref, so that a schema that contains itself is read once per path. */
  private readonly following = new Set<JsonObject>();
  /** Schemas a `#/...` $ref may be relative to when the document root has no such pointer (a schema's own `$defs`), innermost last. */
  private readonly resources: JsonObject[] = [];

  constructor(private readonly document: JsonObject) {}

  run(): Set<string> {
    this.section(this.document.paths, (name, method) => `${method.toUpperCase()} ${name}`);
    this.section(this.document.webhooks, (name, method) => `WEBHOOK ${name} ${method.toUpperCase()}`);
    return this.paths;
  }

  /** `$ref` read through (a Reference Object or a Schema's); throws on a reference the document cannot resolve. */
  private resolve(ref: string): JsonObject {
    let target = pointer(this.document, ref);
    for (let i = this.resources.length - 1; target === undefined && i >= 0; i -= 1) {
      const resource = this.resources[i];
      if (resource) target = pointer(resource, ref);
    }
    if (!isObject(target)) throw new Error(`unresolvable $ref ${JSON.stringify(ref)} (only local references, "#/...", are read)`);
    return target;
  }

  /** A Reference Object or the object itself. */
  private deref(value: Json | undefined): JsonObject | undefined {
    let at = value;
    const seen = new Set<string>();
    while (isObject(at) && typeof at.$ref === "string") {
      if (seen.has(at.$ref)) throw new Error(`circular $ref ${JSON.stringify(at.$ref)}`);
      seen.add(at.$ref);
      at = this.resolve(at.$ref);
    }
    return isObject(at) ? at : undefined;
  }

  private section(section: Json | undefined, operationPath: (name: string, method: string) => string): void {
    if (!isObject(section)) return;
    for (const [name, rawItem] of Object.entries(section)) {
      const item = this.deref(rawItem);
      if (!item) continue;
      const shared = Array.isArray(item.parameters) ? item.parameters : [];
      for (const method of METHODS) {
        const operation = this.deref(item[method]);
        if (!operation) continue;
        const path = operationPath(name, method);
        this.paths.add(path);
        this.operation(operation, shared, path);
      }
    }
  }

  private operation(operation: JsonObject, shared: Json[], path: string): void {
    const own = Array.isArray(operation.parameters) ? operation.parameters : [];
    for (const raw of [...shared, ...own]) {
      const parameter = this.deref(raw);
      if (!parameter || typeof parameter.name !== "string" || typeof parameter.in !== "string") continue;
      const at = `${path} parameter ${parameter.in} ${parameter.name}`;
      this.paths.add(at);
      if (parameter.schema !== undefined) this.topSchema(parameter.schema, at);
      this.content(parameter.content, at);
    }
    const body = this.deref(operation.requestBody);
    if (body) {
      this.paths.add(`${path} requestBody`);
      this.content(body.content, `${path} requestBody`);
    }
    if (isObject(operation.responses)) {
      for (const [status, raw] of Object.entries(operation.responses)) {
        const response = this.deref(raw);
        if (!response) continue;
        const at = `${path} response ${status}`;
        this.paths.add(at);
        this.content(response.content, at);
        if (isObject(response.headers)) {
          for (const [header, rawHeader] of Object.entries(response.headers)) {
            this.paths.add(`${at} header ${header}`);
            const definition = this.deref(rawHeader);
            if (definition?.schema !== undefined) this.topSchema(definition.schema, `${at} header ${header}`);
          }
        }
      }
    }
  }

  private content(content: Json | undefined, path: string): void {
    if (!isObject(content)) return;
    for (const [type, media] of Object.entries(content)) {
      this.paths.add(`${path} ${type}`);
      if (isObject(media) && media.schema !== undefined) this.topSchema(media.schema, `${path} ${type}`);
    }
  }

  /** The schema of a body, response, parameter or header: its paths begin with `$`. */
  private topSchema(schema: Json, path: string): void {
    if (!isObject(schema)) return;
    this.resources.push(schema);
    try {
      this.schema(schema, `${path} $`);
    } finally {
      this.resources.pop();
    }
  }

  private schema(value: Json | undefined, path: string): void {
    if (!isObject(value)) return; // true / false schemas
    const pushed = typeof value.$id === "string" || isObject(value.$defs) || isObject(value.definitions);
    if (pushed) this.resources.push(value);
    try {
      if (typeof value.$ref === "string") {
        const target = this.resolve(value.$ref);
        if (!this.following.has(target)) {
          this.following.add(target);
          this.resources.push(target);
          try {
            this.schema(target, path);
          } finally {
            this.resources.pop();
            this.following.delete(target);
          }
        }
      }
      if (Array.isArray(value.enum)) for (const v of value.enum) this.paths.add(`${path}: ${JSON.stringify(v)}`);
      if (Object.hasOwn(value, "const")) this.paths.add(`${path}: ${JSON.stringify(value.const)}`);
      if (isObject(value.properties)) {
        for (const [name, property] of Object.entries(value.properties)) {
          this.paths.add(`${path}.${name}`);
          this.schema(property, `${path}.${name}`);
        }
      }
      if (Array.isArray(value.items)) {
        value.items.forEach((item, i) => {
          this.paths.add(`${path}[${i}]`);
          this.schema(item, `${path}[${i}]`);
        });
      } else if (value.items !== undefined) {
        this.schema(value.items, `${path}[]`);
      }
      if (Array.isArray(value.prefixItems)) {
        value.prefixItems.forEach((item, i) => {
          this.paths.add(`${path}[${i}]`);
          this.schema(item, `${path}[${i}]`);
        });
      }
      if (isObject(value.additionalProperties)) {
        this.paths.add(`${path}[string]`);
        this.schema(value.additionalProperties, `${path}[string]`);
      }
      if (isObject(value.patternProperties)) {
        for (const [pattern, property] of Object.entries(value.patternProperties)) {
          this.paths.add(`${path}[/${pattern}/]`);
          this.schema(property, `${path}[/${pattern}/]`);
        }
      }
      for (const keyword of ["allOf", "anyOf", "oneOf"] as const) {
        const branches = value[keyword];
        if (Array.isArray(branches)) for (const branch of branches) this.schema(branch, path);
      }
    } finally {
      if (pushed) this.resources.pop();
    }
  }
}
