/**
 * Linear's published GraphQL schema, as @linear/sdk ships it: the SDK's
 * generated TypeScript types (`dist/index-*.d.mts`, one `type` a GraphQL
 * type, `Maybe<>` where the schema allows null, `<Type><Field>Args` for a
 * field's arguments) read back into GraphQL type references. The sandbox's
 * schema is checked against what this reads (the vendored
 * `publishedSchema.json`); `npx tsx src/integrations/linear/testing/publishedSchema.ts`
 * writes that file again from the installed SDK.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A type's fields (GraphQL type references, `String!`) and the arguments of those that take any. */
export type PublishedType = { fields: Record<string, string>; arguments: Record<string, Record<string, string>> };
export type PublishedSchema = {
  source: string;
  sdkVersion: string;
  types: Record<string, PublishedType>;
  unions: Record<string, string[]>;
};

/** `Maybe<Array<Scalars["String"]>>` -> `[String!]`; `Team` -> `Team!`. */
export function graphqlReference(ts: string): string {
  const nullable = /^(?:Input)?Maybe<(.*)>$/.exec(ts);
  const inner = nullable ? (nullable[1] as string) : ts;
  const list = /^Array<(.*)>$/.exec(inner);
  const scalar = /^Scalars\["(\w+)"\]$/.exec(inner);
  const named = list ? `[${graphqlReference(list[1] as string)}]` : scalar ? (scalar[1] as string) : inner;
  if (!/^(\[.*\]|\w+)$/.test(named)) throw new Error(`Not a type reference the SDK's generator writes: ${ts}`);
  return nullable ? named : `${named}!`;
}

/** Every object and input type, and every union, of the SDK's generated types. */
export function readSdkTypes(dts: string): { types: Map<string, Record<string, string>>; unions: Map<string, string[]> } {
  const types = new Map<string, Record<string, string>>();
  const unions = new Map<string, string[]>();
  let current: Record<string, string> | undefined;
  // The schema's types are the region the SDK generated from it (webhook payload types follow).
  const region = dts.slice(dts.indexOf("//#region src/_generated_documents.d.ts"));
  for (const line of region.slice(0, region.indexOf("//#endregion")).split("\n")) {
    if (current) {
      const field = /^ {2}(\w+)\??: (.+);$/.exec(line);
      if (field && field[1] !== "__typename") current[field[1] as string] = graphqlReference(field[2] as string);
      if (line === "};") current = undefined;
      continue;
    }
    const open = /^type (\w+) = (?:\w+ & )*\{$/.exec(line);
    // `Scalars` maps the scalars to TypeScript; it is no GraphQL type.
    if (open && open[1] !== "Scalars") {
      current = {};
      types.set(open[1] as string, current);
      continue;
    }
    const union = /^type (\w+) = (\w+(?: \| \w+)+);$/.exec(line);
    if (union) unions.set(union[1] as string, (union[2] as string).split(" | "));
  }
  return { types, unions };
}

/** The fields and arguments of `names` (of those in `only`: the fields it lists), and the unions they name. */
export function publishedSchema(dts: string, names: string[], only: Record<string, string[]>, sdkVersion: string, source: string): PublishedSchema {
  const { types, unions } = readSdkTypes(dts);
  const out: PublishedSchema = { source, sdkVersion, types: {}, unions: {} };
  for (const name of names) {
    const all = types.get(name);
    if (!all) throw new Error(`@linear/sdk ${sdkVersion} has no type ${name}`);
    const keep = only[name];
    const fields = Object.fromEntries(Object.entries(all).filter(([field]) => !keep || keep.includes(field)));
    const args: Record<string, Record<string, string>> = {};
    for (const field of Object.keys(fields)) {
      const declared = types.get(`${name}${field.charAt(0).toUpperCase()}${field.slice(1)}Args`);
      if (declared) args[field] = declared;
    }
    out.types[name] = { fields, arguments: args };
    for (const ref of Object.values(fields)) {
      const named = ref.replace(/[[\]!]/g, "");
      const members = unions.get(named);
      if (members) out.unions[named] = members;
    }
  }
  return out;
}

/** The installed SDK's generated types and its version. */
export function installedSdk(): { dts: string; version: string; file: string } {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve("@linear/sdk/package.json");
  const dist = join(dirname(packageJson), "dist");
  const file = readdirSync(dist).find((f) => /^index-.*\.d\.mts$/.test(f));
  if (!file) throw new Error(`no generated types in ${dist}`);
  const version = (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version;
  return { dts: readFileSync(join(dist, file), "utf8"), version, file };
}

/** Where the vendored copy lives. */
export const VENDORED = join(dirname(fileURLToPath(import.meta.url)), "publishedSchema.json");

/**
 * The published version of every type the sandbox declares, from the installed SDK: Query and Mutation
 * with the fields the sandbox has, the types it only references with `id` (what it declares of them).
 */
export async function vendor(): Promise<PublishedSchema> {
  const { SCHEMA, INPUTS, UNIONS, REFERENCE_TYPES } = await import("../sandboxSchema.js");
  const { dts, version, file } = installedSdk();
  const names = [...Object.keys(SCHEMA).filter((n) => n !== "Subscription"), ...Object.keys(INPUTS), ...Object.values(UNIONS).flat()];
  const only: Record<string, string[]> = { Query: Object.keys(SCHEMA.Query ?? {}), Mutation: Object.keys(SCHEMA.Mutation ?? {}) };
  for (const name of REFERENCE_TYPES) only[name] = ["id"];
  return publishedSchema(dts, [...new Set(names)], only, version, `@linear/sdk ${version} dist/${file} (the SDK's types generated from Linear's schema.graphql)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const schema = await vendor();
  writeFileSync(VENDORED, `${JSON.stringify(schema, null, 1)}\n`);
  console.log(`wrote ${Object.keys(schema.types).length} types from ${schema.source} to ${VENDORED}`);
}
