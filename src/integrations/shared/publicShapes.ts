/**
 * The public shapes of the contract as zod schemas: a connector's public
 * connection and its health envelope, built from its declaration (its auth
 * methods and its metadata schema). They are the one source the lifecycle's
 * answers are checked against, the HTTP API's response schemas, the OpenAPI
 * document and the typed client read; the contract suite holds their types
 * to `contract.ts` (and so to the seed) exactly.
 */
import { z } from "zod";
import type { ConnectorDefinition, MetadataSchema } from "./connector.js";
import type { Tier1ConnectionHealth, Tier1ConnectionPublic, Tier1ErrorType } from "./contract.js";

export const errorTypeSchema = z.enum(["auth", "rate-limit", "schema", "network", "upstream"] satisfies Tier1ErrorType[]);
export const healthStatusSchema = z.enum(["ok", "degraded", "down"]);
export const tokenRefreshStatusSchema = z.enum(["not_applicable", "healthy", "failed"]);

type AuthOf<D> = D extends ConnectorDefinition<infer A, MetadataSchema> ? A : never;
type MetadataOf<D> = D extends ConnectorDefinition<string, infer M> ? z.output<M> : never;

/** A connector's public connection, from its definition's type. */
export type ConnectionPublicOf<D> = Tier1ConnectionPublic<AuthOf<D>, MetadataOf<D>>;
/** A connector's health envelope (its metadata, as far as known), from its definition's type. */
export type ConnectionHealthOf<D> = Tier1ConnectionHealth<AuthOf<D>, Partial<MetadataOf<D>>>;

/** A connector's public connection schema, typed from its declaration (the contract suite pins its output type). */
export function buildConnectionSchema<A extends string, S extends z.ZodRawShape>(definition: ConnectorDefinition<A, z.ZodObject<S>>) {
  return z
    .object({
      id: z.string().describe("Our connection id (conn_...)"),
      userId: z.string(),
      authMethod: z.enum(definition.authMethods),
      tokenMasked: z.string().describe("The credential, masked: never the token itself"),
      createdAt: z.string().describe("ISO-8601"),
      revokedAt: z.string().optional().describe("ISO-8601; set once disconnected"),
    })
    .extend(definition.metadataSchema.shape)
    .meta({ id: `${definition.id}Connection`, title: `${definition.displayName} connection` });
}

/** A connector's health envelope schema: the contract's fields, then its metadata as far as known. */
export function buildHealthSchema<A extends string, S extends z.ZodRawShape>(definition: ConnectorDefinition<A, z.ZodObject<S>>) {
  return z
    .object({
      status: healthStatusSchema,
      checkedAt: z.string().describe("ISO-8601"),
      authMethod: z.enum(definition.authMethods).optional(),
      tokenRefreshStatus: tokenRefreshStatusSchema.optional(),
      details: z.object({
        auth: z.boolean(),
        apiReachable: z.boolean(),
        rateLimited: z.boolean(),
        errorType: errorTypeSchema.optional(),
        message: z.string().optional(),
      }),
    })
    .extend(definition.metadataSchema.partial().shape)
    .meta({ id: `${definition.id}Health`, title: `${definition.displayName} health` });
}

const built = new WeakMap<object, { connection: z.ZodType; health: z.ZodType }>();

function shapesOf(definition: ConnectorDefinition): { connection: z.ZodType; health: z.ZodType } {
  let found = built.get(definition);
  if (!found) built.set(definition, (found = { connection: buildConnectionSchema(definition), health: buildHealthSchema(definition) }));
  return found;
}

// TypeScript cannot follow a zod schema's output type through a generic definition; the contract
// suite holds z.output of buildConnectionSchema / buildHealthSchema, per connector, equal to these.

/** Where a schema refuses a value, in a few words: each issue by its path (a union's by its nearest option). */
export function describeIssues(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[] = []): string {
  return issues
    .slice(0, 5)
    .map((issue) => {
      const path = [...prefix, ...issue.path];
      if (issue.code === "invalid_union" && issue.errors.length > 0) {
        const nearest = [...issue.errors].sort((a, b) => a.length - b.length)[0] ?? [];
        return describeIssues(nearest, path);
      }
      return `${path.map(String).join(".") || "value"}: ${issue.message}`;
    })
    .join("; ");
}

/**
 * `value` read through its public schema. What the schema does not describe
 * is dropped; a stored record it refuses (written before a field existed, or
 * edited by hand) is told to `onMismatch` and answered as stored, rather than
 * failing a user's whole list or a disconnect that already happened. New
 * records cannot be so: connect refuses metadata its schema refuses.
 */
export function readPublic<T>(schema: z.ZodType<T>, value: unknown, onMismatch: (problem: string) => void): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  onMismatch(describeIssues(parsed.error.issues));
  return value as T;
}

/** The zod schema of a connector's public connection (built once per definition). */
export function connectionSchemaOf<D extends ConnectorDefinition>(definition: D): z.ZodType<ConnectionPublicOf<D>> {
  return shapesOf(definition).connection as z.ZodType<ConnectionPublicOf<D>>;
}

/** The zod schema of a connector's health envelope (built once per definition). */
export function healthSchemaOf<D extends ConnectorDefinition>(definition: D): z.ZodType<ConnectionHealthOf<D>> {
  return shapesOf(definition).health as z.ZodType<ConnectionHealthOf<D>>;
}
