/**
 * The GraphQL the Linear sandbox understands: a parser for the whole query
 * language (operations, aliases, arguments, variables, directives, named and
 * inline fragments), validation against a small schema with graphql-js's
 * messages (which Linear, an Apollo server, sends), and execution over plain
 * objects (a field may be a function of its arguments: a resolver; a union's
 * value names its member in `__typename`). What the
 * schema does not model (introspection, most of Linear's types) is refused as
 * Linear refuses a field it does not know, so a client learns at once that the
 * sandbox cannot answer it.
 */

export type Location = { line: number; column: number };
/** One error of a GraphQL answer, before Linear's `extensions` are added. */
export type GraphQLProblem = { message: string; locations?: Location[] };

/** Fields of each object type, as type references (`User!`, `String`). */
export type Schema = Readonly<Record<string, Readonly<Record<string, string>>>>;
/** The arguments a field takes, by `Type.field`, as type references (`String!`: required). */
export type FieldArguments = Readonly<Record<string, Readonly<Record<string, string>>>>;

/**
 * What a resolver throws to fail its field: the field answers null (its
 * parent too, up to the first nullable field, when it is non-null) and the
 * answer carries this error with the field's path.
 */
export class FieldError extends Error {
  constructor(
    message: string,
    readonly extensions: Record<string, unknown>,
  ) {
    super(message);
  }
}
/** A field's error in the answer: graphql-js's shape before Linear's `extensions`. */
export type FieldProblem = GraphQLProblem & { path: (string | number)[]; extensions: Record<string, unknown> };

type Value =
  | { kind: "variable"; name: string; loc: Location }
  | { kind: "int" | "float" | "string" | "enum"; value: string }
  | { kind: "boolean"; value: boolean }
  | { kind: "null" }
  | { kind: "list"; values: Value[] }
  | { kind: "object"; fields: { name: string; value: Value }[] };
type Argument = { name: string; value: Value; loc: Location };
type Directive = { name: string; args: Argument[]; loc: Location };
type Field = { kind: "field"; alias?: string; name: string; args: Argument[]; directives: Directive[]; selections?: Selection[]; loc: Location };
type Spread = { kind: "spread"; name: string; directives: Directive[]; loc: Location };
type Inline = { kind: "inline"; typeCondition?: string; directives: Directive[]; selections: Selection[]; loc: Location };
type Selection = Field | Spread | Inline;
type Operation = {
  kind: "operation";
  operation: "query" | "mutation" | "subscription";
  name?: string;
  variables: { name: string; defaultValue?: Value; loc: Location }[];
  directives: Directive[];
  selections: Selection[];
  loc: Location;
};
type Fragment = { kind: "fragment"; name: string; typeCondition: string; directives: Directive[]; selections: Selection[]; loc: Location };
export type Document = { definitions: (Operation | Fragment)[] };

export class GraphQLSyntaxError extends Error {
  constructor(
    message: string,
    readonly location: Location,
  ) {
    super(`Syntax Error: ${message}`);
  }
}

type Token = { kind: "punct" | "name" | "int" | "float" | "string" | "eof"; value: string; loc: Location };

const PUNCTUATORS = new Set(["!", "$", "&", "(", ")", ":", "=", "@", "[", "]", "{", "|", "}"]);
const NAME_START = /[_A-Za-z]/;
const NAME_CONTINUE = /[_0-9A-Za-z]/;
const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/;
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** Splits `source` into tokens (GraphQL spec §2.1), with line and column of each. */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const loc = (at: number): Location => ({ line, column: at - lineStart + 1 });
  while (i < source.length) {
    const c = source[i] as string;
    if (c === "\n" || (c === "\r" && source[i + 1] !== "\n")) {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "," || c === "\r" || c === "\uFEFF") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < source.length && source[i] !== "\n" && source[i] !== "\r") i++;
      continue;
    }
    if (c === "." && source.startsWith("...", i)) {
      tokens.push({ kind: "punct", value: "...", loc: loc(i) });
      i += 3;
      continue;
    }
    if (PUNCTUATORS.has(c)) {
      tokens.push({ kind: "punct", value: c, loc: loc(i) });
      i++;
      continue;
    }
    if (NAME_START.test(c)) {
      const start = i;
      while (i < source.length && NAME_CONTINUE.test(source[i] as string)) i++;
      tokens.push({ kind: "name", value: source.slice(start, i), loc: loc(start) });
      continue;
    }
    if (c === "-" || (c >= "0" && c <= "9")) {
      const match = NUMBER.exec(source.slice(i));
      if (!match) throw new GraphQLSyntaxError(`Invalid number, expected digit but got: "${source[i + 1] ?? "<EOF>"}".`, loc(i));
      tokens.push({ kind: match[2] || match[3] ? "float" : "int", value: match[0], loc: loc(i) });
      i += match[0].length;
      continue;
    }
    if (c === '"') {
      const start = i;
      if (source.startsWith('"""', i)) {
        const startLoc = loc(i);
        let value = "";
        i += 3;
        for (;;) {
          if (i >= source.length) throw new GraphQLSyntaxError("Unterminated string.", loc(i));
          if (source.startsWith('"""', i)) break;
          if (source.startsWith('\\"""', i)) {
            value += '"""';
            i += 4;
            continue;
          }
          const ch = source[i] as string;
          value += ch;
          i++;
          if (ch === "\n") {
            line++;
            lineStart = i;
          }
        }
        tokens.push({ kind: "string", value, loc: startLoc });
        i += 3;
        continue;
      }
      let value = "";
      i++;
      for (;;) {
        const ch = source[i];
        if (ch === undefined || ch === "\n" || ch === "\r") throw new GraphQLSyntaxError("Unterminated string.", loc(i));
        if (ch === '"') break;
        if (ch === "\\") {
          const next = source[i + 1] ?? "";
          if (next === "u" && /^[0-9A-Fa-f]{4}$/.test(source.slice(i + 2, i + 6))) {
            value += String.fromCharCode(parseInt(source.slice(i + 2, i + 6), 16));
            i += 6;
            continue;
          }
          const escaped = ESCAPES[next];
          if (escaped === undefined) throw new GraphQLSyntaxError(`Invalid character escape sequence: "\\${next}".`, loc(i));
          value += escaped;
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      tokens.push({ kind: "string", value, loc: loc(start) });
      i++;
      continue;
    }
    throw new GraphQLSyntaxError(`Unexpected character: "${c}".`, loc(i));
  }
  tokens.push({ kind: "eof", value: "", loc: loc(i) });
  return tokens;
}

const describe = (t: Token): string => (t.kind === "eof" ? "<EOF>" : t.kind === "punct" ? `"${t.value}"` : t.kind === "name" ? `Name "${t.value}"` : `${t.kind === "string" ? "String" : t.kind === "int" ? "Int" : "Float"} "${t.value}"`);

/** Parses a GraphQL document (spec §2); throws {@link GraphQLSyntaxError} with graphql-js's wording. */
export function parse(source: string): Document {
  const tokens = tokenize(source);
  let at = 0;
  const peek = (): Token => tokens[at] as Token;
  const next = (): Token => tokens[at++] as Token;
  const isPunct = (value: string): boolean => peek().kind === "punct" && peek().value === value;
  const expectPunct = (value: string): Token => {
    const t = peek();
    if (t.kind !== "punct" || t.value !== value) throw new GraphQLSyntaxError(`Expected "${value}", found ${describe(t)}.`, t.loc);
    return next();
  };
  const expectName = (): Token => {
    const t = peek();
    if (t.kind !== "name") throw new GraphQLSyntaxError(`Expected Name, found ${describe(t)}.`, t.loc);
    return next();
  };

  const value = (constant: boolean): Value => {
    const t = peek();
    if (t.kind === "punct" && t.value === "$" && !constant) {
      next();
      return { kind: "variable", name: expectName().value, loc: t.loc };
    }
    if (t.kind === "punct" && t.value === "[") {
      next();
      const values: Value[] = [];
      while (!isPunct("]")) values.push(value(constant));
      next();
      return { kind: "list", values };
    }
    if (t.kind === "punct" && t.value === "{") {
      next();
      const fields: { name: string; value: Value }[] = [];
      while (!isPunct("}")) {
        const name = expectName().value;
        expectPunct(":");
        fields.push({ name, value: value(constant) });
      }
      next();
      return { kind: "object", fields };
    }
    if (t.kind === "int" || t.kind === "float" || t.kind === "string") {
      next();
      return { kind: t.kind, value: t.value };
    }
    if (t.kind === "name") {
      next();
      if (t.value === "true" || t.value === "false") return { kind: "boolean", value: t.value === "true" };
      if (t.value === "null") return { kind: "null" };
      return { kind: "enum", value: t.value };
    }
    throw new GraphQLSyntaxError(`Unexpected ${describe(t)}.`, t.loc);
  };
  const args = (constant: boolean): Argument[] => {
    if (!isPunct("(")) return [];
    next();
    const out: Argument[] = [];
    do {
      const name = expectName();
      expectPunct(":");
      out.push({ name: name.value, value: value(constant), loc: name.loc });
    } while (!isPunct(")"));
    next();
    return out;
  };
  const directives = (constant: boolean): Directive[] => {
    const out: Directive[] = [];
    while (isPunct("@")) {
      const loc = next().loc;
      out.push({ name: expectName().value, args: args(constant), loc });
    }
    return out;
  };
  const typeReference = (): void => {
    if (isPunct("[")) {
      next();
      typeReference();
      expectPunct("]");
    } else {
      expectName();
    }
    if (isPunct("!")) next();
  };
  const selectionSet = (): Selection[] => {
    expectPunct("{");
    const out: Selection[] = [];
    do out.push(selection());
    while (!isPunct("}"));
    next();
    return out;
  };
  const selection = (): Selection => {
    const t = peek();
    if (t.kind === "punct" && t.value === "...") {
      next();
      if (peek().kind === "name" && peek().value !== "on") return { kind: "spread", name: next().value, directives: directives(false), loc: t.loc };
      let typeCondition: string | undefined;
      if (peek().kind === "name" && peek().value === "on") {
        next();
        typeCondition = expectName().value;
      }
      return { kind: "inline", ...(typeCondition ? { typeCondition } : {}), directives: directives(false), selections: selectionSet(), loc: t.loc };
    }
    const first = expectName();
    let alias: string | undefined;
    let name = first.value;
    if (isPunct(":")) {
      next();
      alias = first.value;
      name = expectName().value;
    }
    const fieldArgs = args(false);
    const fieldDirectives = directives(false);
    return { kind: "field", ...(alias ? { alias } : {}), name, args: fieldArgs, directives: fieldDirectives, ...(isPunct("{") ? { selections: selectionSet() } : {}), loc: first.loc };
  };
  const definition = (): Operation | Fragment => {
    const t = peek();
    if (t.kind === "punct" && t.value === "{") {
      return { kind: "operation", operation: "query", variables: [], directives: [], selections: selectionSet(), loc: t.loc };
    }
    if (t.kind === "name" && (t.value === "query" || t.value === "mutation" || t.value === "subscription")) {
      next();
      const name = peek().kind === "name" ? next().value : undefined;
      const variables: Operation["variables"] = [];
      if (isPunct("(")) {
        next();
        do {
          const dollar = expectPunct("$");
          const variable = expectName().value;
          expectPunct(":");
          typeReference();
          let defaultValue: Value | undefined;
          if (isPunct("=")) {
            next();
            defaultValue = value(true);
          }
          directives(true);
          variables.push({ name: variable, ...(defaultValue ? { defaultValue } : {}), loc: dollar.loc });
        } while (!isPunct(")"));
        next();
      }
      return { kind: "operation", operation: t.value, ...(name ? { name } : {}), variables, directives: directives(false), selections: selectionSet(), loc: t.loc };
    }
    if (t.kind === "name" && t.value === "fragment") {
      next();
      const name = expectName();
      if (name.value === "on") throw new GraphQLSyntaxError(`Unexpected Name "on".`, name.loc);
      const on = peek();
      if (on.kind !== "name" || on.value !== "on") throw new GraphQLSyntaxError(`Expected "on", found ${describe(on)}.`, on.loc);
      next();
      const typeCondition = expectName().value;
      return { kind: "fragment", name: name.value, typeCondition, directives: directives(false), selections: selectionSet(), loc: t.loc };
    }
    throw new GraphQLSyntaxError(`Unexpected ${describe(t)}.`, t.loc);
  };

  const definitions: (Operation | Fragment)[] = [];
  do definitions.push(definition());
  while (peek().kind !== "eof");
  return { definitions };
}

/** The named type of a type reference: `[User!]!` -> `User`. */
const namedType = (ref: string): string => ref.replace(/[[\]!]/g, "");

/** A request the schema cannot take, before execution (HTTP 400 at Linear, like validation). */
export class OperationError extends Error {}

export type ExecutionInput = {
  schema: Schema;
  document: Document;
  operationName?: string;
  variables: Record<string, unknown>;
  /** Root objects by operation type (`Query`): plain objects whose keys are field names, values or resolvers. */
  roots: Readonly<Record<string, Record<string, unknown>>>;
  /** The arguments of the fields that take any; every other field takes none. */
  arguments?: FieldArguments;
  /** Input object types by name: their fields as type references (a literal argument is checked against them). */
  inputs?: Schema;
  /** Union types by name: their member object types. */
  unions?: Unions;
};
export type Unions = Readonly<Record<string, readonly string[]>>;

/** Whether a fragment on `condition` applies to objects of `type` (either may be a union of the other). */
const overlaps = (unions: Unions, type: string, condition: string): boolean =>
  condition === type || (unions[condition]?.includes(type) ?? false) || (unions[type]?.includes(condition) ?? false);

/** Validation errors; or the data (null when a non-null root field failed) with the errors of failed fields. */
export type ExecutionResult = { errors: GraphQLProblem[] } | { data: Record<string, unknown> | null; complexity: number; fieldErrors: FieldProblem[] };

/** Raised through non-null fields until a nullable one (or the root) takes the null. */
class NullBubble extends Error {}

/** The operation to run (graphql-js `getOperationAST` rules); throws {@link OperationError}. */
function pickOperation(document: Document, operationName: string | undefined): Operation {
  const operations = document.definitions.filter((d): d is Operation => d.kind === "operation");
  if (operationName !== undefined) {
    const found = operations.find((o) => o.name === operationName);
    if (!found) throw new OperationError(`Unknown operation named "${operationName}".`);
    return found;
  }
  if (operations.length !== 1) throw new OperationError("Must provide operation name if query contains multiple operations.");
  return operations[0] as Operation;
}

/**
 * Validates the whole document against the schema (the graphql-js rules a
 * client is likely to trip over), then runs one operation. Validation errors
 * come back as `errors`; request errors (unknown operation name) throw.
 */
export function execute(input: ExecutionInput): ExecutionResult {
  const { schema, document } = input;
  const fieldArguments = input.arguments ?? {};
  const unions = input.unions ?? {};
  const problems = validate(schema, document, fieldArguments, input.inputs ?? {}, unions);
  if (problems.length > 0) return { errors: problems };
  const operation = pickOperation(document, input.operationName);
  const fragments = new Map(document.definitions.filter((d): d is Fragment => d.kind === "fragment").map((f) => [f.name, f]));
  const variables = { ...Object.fromEntries(operation.variables.filter((v) => v.defaultValue).map((v) => [v.name, literal(v.defaultValue as Value, {})])), ...input.variables };
  const rootType = ROOT_TYPES[operation.operation];
  let complexity = 0;

  const included = (directives: Directive[]): boolean => {
    for (const d of directives) {
      const condition = d.args.find((a) => a.name === "if");
      const value = condition ? literal(condition.value, variables) === true : false;
      if (d.name === "include" && !value) return false;
      if (d.name === "skip" && value) return false;
    }
    return true;
  };
  /** Fields by response key, merged across fragments (graphql-js CollectFields). */
  const collect = (type: string, selections: Selection[], into: Map<string, Field[]>, seen: Set<string>): Map<string, Field[]> => {
    for (const s of selections) {
      if (!included(s.directives)) continue;
      if (s.kind === "field") {
        const key = s.alias ?? s.name;
        into.set(key, [...(into.get(key) ?? []), s]);
      } else if (s.kind === "inline") {
        if (!s.typeCondition || overlaps(unions, type, s.typeCondition)) collect(type, s.selections, into, seen);
      } else if (!seen.has(s.name)) {
        seen.add(s.name);
        const fragment = fragments.get(s.name) as Fragment;
        if (overlaps(unions, type, fragment.typeCondition)) collect(type, fragment.selections, into, seen);
      }
    }
    return into;
  };
  const fieldErrors: FieldProblem[] = [];
  const argumentsOf = (field: Field): Record<string, unknown> => Object.fromEntries(field.args.map((a) => [a.name, literal(a.value, variables)]));
  /** One value of a field's type: an object resolved further, a list item by item, or a scalar as it is. */
  const complete = (ref: string, raw: unknown, fields: Field[], path: (string | number)[]): unknown => {
    const nonNull = ref.endsWith("!");
    const inner = nonNull ? ref.slice(0, -1) : ref;
    if (raw === null || raw === undefined) {
      if (nonNull) throw new NullBubble();
      return null;
    }
    try {
      if (inner.startsWith("[") && Array.isArray(raw)) return raw.map((item, i) => complete(inner.slice(1, -1), item, fields, [...path, i]));
      const fieldType = namedType(inner);
      if (unions[fieldType]) {
        // A union's value says which member it is (graphql-js resolveType).
        const member = (raw as { __typename?: unknown }).__typename;
        if (typeof member !== "string" || !unions[fieldType].includes(member)) throw new Error(`a ${fieldType} value must name its member type in __typename`);
        complexity += 1;
        return resolve(member, raw as Record<string, unknown>, fields.flatMap((f) => f.selections ?? []), path);
      }
      if (schema[fieldType]) {
        // An object: 1 point (rate-limiting.md "Understanding query complexity").
        complexity += 1;
        return resolve(fieldType, raw as Record<string, unknown>, fields.flatMap((f) => f.selections ?? []), path);
      }
      complexity += 0.1;
      return raw;
    } catch (error) {
      if (error instanceof NullBubble && !nonNull) return null;
      throw error;
    }
  };
  const resolve = (type: string, source: Record<string, unknown>, selections: Selection[], path: (string | number)[]): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, fields] of collect(type, selections, new Map(), new Set())) {
      const field = fields[0] as Field;
      if (field.name === "__typename") {
        out[key] = type;
        complexity += 0.1;
        continue;
      }
      const ref = (schema[type] as Record<string, string>)[field.name] as string;
      let raw = source[field.name];
      if (typeof raw === "function") {
        try {
          raw = (raw as (args: Record<string, unknown>) => unknown)(argumentsOf(field));
        } catch (error) {
          if (!(error instanceof FieldError)) throw error;
          fieldErrors.push({ message: error.message, locations: [field.loc], path: [...path, key], extensions: error.extensions });
          if (ref.endsWith("!")) throw new NullBubble();
          out[key] = null;
          continue;
        }
      }
      if ((raw === null || raw === undefined) && ref.endsWith("!")) {
        // graphql-js's answer when a resolver breaks the schema: the sandbox's bug, told as a server error.
        fieldErrors.push({
          message: `Cannot return null for non-nullable field ${type}.${field.name}.`,
          locations: [field.loc],
          path: [...path, key],
          extensions: { type: "internal error", code: "INTERNAL_SERVER_ERROR", userError: false },
        });
        throw new NullBubble();
      }
      out[key] = complete(ref, raw, fields, [...path, key]);
    }
    return out;
  };
  let data: Record<string, unknown> | null;
  try {
    data = resolve(rootType, input.roots[rootType] ?? {}, operation.selections, []);
  } catch (error) {
    if (!(error instanceof NullBubble)) throw error;
    data = null;
  }
  return { data, complexity: Math.ceil(Number(complexity.toFixed(1))), fieldErrors };
}

const ROOT_TYPES: Readonly<Record<Operation["operation"], string>> = { query: "Query", mutation: "Mutation", subscription: "Subscription" };

/** The JSON value of a literal, variables substituted. */
function literal(value: Value, variables: Record<string, unknown>): unknown {
  switch (value.kind) {
    case "variable":
      return variables[value.name];
    case "int":
    case "float":
      return Number(value.value);
    case "string":
    case "enum":
      return value.value;
    case "boolean":
      return value.value;
    case "null":
      return null;
    case "list":
      return value.values.map((v) => literal(v, variables));
    case "object":
      return Object.fromEntries(value.fields.map((f) => [f.name, literal(f.value, variables)]));
  }
}

/** The graphql-js validation rules a hand-written query is likely to break, with graphql-js's messages. */
function validate(schema: Schema, document: Document, fieldArguments: FieldArguments, inputs: Schema, unions: Unions): GraphQLProblem[] {
  const composite = (name: string): boolean => schema[name] !== undefined || unions[name] !== undefined;
  const problems: GraphQLProblem[] = [];
  const report = (message: string, ...locations: Location[]): void => {
    problems.push({ message, locations });
  };
  const operations = document.definitions.filter((d): d is Operation => d.kind === "operation");
  const fragments = new Map<string, Fragment>();
  for (const d of document.definitions) {
    if (d.kind !== "fragment") continue;
    if (fragments.has(d.name)) report(`There can be only one fragment named "${d.name}".`, d.loc);
    fragments.set(d.name, d);
  }
  const names = new Set<string>();
  for (const o of operations) {
    if (!o.name && operations.length > 1) report("This anonymous operation must be the only defined operation.", o.loc);
    if (o.name && names.has(o.name)) report(`There can be only one operation named "${o.name}".`, o.loc);
    if (o.name) names.add(o.name);
  }
  const usedFragments = new Set<string>();
  /** An object literal against its input type (graphql-js ValuesOfCorrectType, for the fields); variables are the resolver's to check. */
  const checkInput = (ref: string, value: Value, loc: Location): void => {
    const inputType = namedType(ref);
    const fields = inputs[inputType];
    if (!fields || value.kind !== "object") return;
    for (const f of value.fields) if (fields[f.name] === undefined) report(`Field "${f.name}" is not defined by type "${inputType}".`, loc);
    for (const [name, fieldRef] of Object.entries(fields)) {
      if (fieldRef.endsWith("!") && !value.fields.some((f) => f.name === name)) report(`Field "${inputType}.${name}" of required type "${fieldRef}" was not provided.`, loc);
    }
  };

  const checkDirectives = (directives: Directive[], used: Set<string>): void => {
    for (const d of directives) {
      if (d.name !== "include" && d.name !== "skip") {
        report(`Unknown directive "@${d.name}".`, d.loc);
        continue;
      }
      const condition = d.args.find((a) => a.name === "if");
      if (!condition) report(`Directive "@${d.name}" argument "if" of type "Boolean!" is required, but it was not provided.`, d.loc);
      else if (condition.value.kind === "variable") used.add(condition.value.name);
      else if (condition.value.kind !== "boolean") report(`Boolean cannot represent a non boolean value.`, condition.loc);
      for (const a of d.args) if (a.name !== "if") report(`Unknown argument "${a.name}" on directive "@${d.name}".`, a.loc);
    }
  };
  const walk = (type: string, selections: Selection[], used: Set<string>, path: Set<string>): void => {
    const seenKeys = new Map<string, Field>();
    for (const s of selections) {
      checkDirectives(s.directives, used);
      if (s.kind === "inline") {
        if (s.typeCondition && !composite(s.typeCondition)) report(`Unknown type "${s.typeCondition}".`, s.loc);
        else if (s.typeCondition && !overlaps(unions, type, s.typeCondition)) report(`Fragment cannot be spread here as objects of type "${type}" can never be of type "${s.typeCondition}".`, s.loc);
        else walk(s.typeCondition ?? type, s.selections, used, path);
        continue;
      }
      if (s.kind === "spread") {
        const fragment = fragments.get(s.name);
        usedFragments.add(s.name);
        if (!fragment) report(`Unknown fragment "${s.name}".`, s.loc);
        else if (!composite(fragment.typeCondition)) report(`Unknown type "${fragment.typeCondition}".`, fragment.loc);
        else if (!overlaps(unions, type, fragment.typeCondition)) report(`Fragment "${s.name}" cannot be spread here as objects of type "${type}" can never be of type "${fragment.typeCondition}".`, s.loc);
        else if (path.has(s.name)) report(`Cannot spread fragment "${s.name}" within itself.`, s.loc);
        else walk(fragment.typeCondition, fragment.selections, used, new Set([...path, s.name]));
        continue;
      }
      const key = s.alias ?? s.name;
      const earlier = seenKeys.get(key);
      if (earlier && earlier.name !== s.name) {
        report(`Fields "${key}" conflict because "${earlier.name}" and "${s.name}" are different fields. Use different aliases on the fields to fetch both if this was intentional.`, earlier.loc, s.loc);
      }
      seenKeys.set(key, s);
      for (const a of s.args) collectVariables(a.value, used);
      if (s.name === "__typename") {
        if (s.selections) report(`Field "__typename" must not have a selection since type "String!" has no subfields.`, s.loc);
        continue;
      }
      const ref = schema[type]?.[s.name];
      if (ref === undefined) {
        // graphql-js checks arguments only of fields it knows.
        report(`Cannot query field "${s.name}" on type "${type}".`, s.loc);
        continue;
      }
      const declared = fieldArguments[`${type}.${s.name}`] ?? {};
      for (const a of s.args) {
        const argRef = declared[a.name];
        if (argRef === undefined) report(`Unknown argument "${a.name}" on field "${type}.${s.name}".`, a.loc);
        else checkInput(argRef, a.value, a.loc);
      }
      for (const [name, argRef] of Object.entries(declared)) {
        if (argRef.endsWith("!") && !s.args.some((a) => a.name === name)) report(`Field "${s.name}" argument "${name}" of type "${argRef}" is required, but it was not provided.`, s.loc);
      }
      const fieldType = namedType(ref);
      if (composite(fieldType) && !s.selections) report(`Field "${s.name}" of type "${ref}" must have a selection of subfields. Did you mean "${s.name} { ... }"?`, s.loc);
      else if (!composite(fieldType) && s.selections) report(`Field "${s.name}" must not have a selection since type "${ref}" has no subfields.`, s.loc);
      else if (s.selections) walk(fieldType, s.selections, used, path);
    }
  };
  for (const o of operations) {
    const used = new Set<string>();
    checkDirectives(o.directives, used);
    walk(ROOT_TYPES[o.operation], o.selections, used, new Set());
    const defined = new Set(o.variables.map((v) => v.name));
    for (const name of used) {
      if (!defined.has(name)) report(o.name ? `Variable "$${name}" is not defined by operation "${o.name}".` : `Variable "$${name}" is not defined.`, o.loc);
    }
    for (const v of o.variables) {
      if (!used.has(v.name)) report(o.name ? `Variable "$${v.name}" is never used in operation "${o.name}".` : `Variable "$${v.name}" is never used.`, v.loc);
    }
  }
  for (const name of fragments.keys()) if (!usedFragments.has(name)) report(`Fragment "${name}" is never used.`, (fragments.get(name) as Fragment).loc);
  return problems;
}

function collectVariables(value: Value, into: Set<string>): void {
  if (value.kind === "variable") into.add(value.name);
  else if (value.kind === "list") for (const v of value.values) collectVariables(v, into);
  else if (value.kind === "object") for (const f of value.fields) collectVariables(f.value, into);
}
