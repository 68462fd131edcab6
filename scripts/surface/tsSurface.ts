/**
 * The public TypeScript surface of one package entry, as a set of paths.
 *
 * Input: an API Extractor report (`api/*.api.md`), whose ```ts block holds
 * the entry's declarations (exported ones marked `export`, the types they
 * reach but the entry does not export written without it). The block is
 * parsed with the TypeScript compiler as a declaration file beside the
 * package (so `import { z } from 'zod'` resolves), and each export's type,
 * as the type checker resolves it, is flattened into paths:
 *
 *   Tier1ConnectionHealth                      an export
 *   Tier1ConnectionHealth.checkedAt            a property (field, method, accessor)
 *   Tier1ConnectionHealth.status: "down"       a string/number literal of a union
 *   Tier1ConnectionHealth.details.errorType    properties of nested object types
 *   ErrorCodes.AUTH = "auth"                   an enum member and its value
 *   createIntegrations(#0).vault               a parameter (by position) and its properties
 *   createIntegrations().health()              a return value (a Promise<T> answers T)
 *   StartedSandboxes.baseUrlAllowlist[]        array elements; [0] tuple elements
 *   Foo.schema<0>.field                        a type argument (by position) of a library class or interface
 *   Foo[string]                                an index signature
 *   Thing.constructor(#0)                      a class's constructor; `.new` a construct signature
 *
 * Unions and intersections merge their branches' paths at the same place.
 * Paths follow what the types mean, not how they are written: a field is the
 * same path whether it is declared in a literal, inherited, mapped
 * (`Partial<T>`, `Record<K, V>`) or inferred (`z.infer<typeof schema>`).
 * Where an object type is exactly an exported declaration of the entry (one
 * exported on both sides of a comparison), the path stops there: that
 * declaration's paths are under its own name. A type the entry does not
 * export is expanded in place, so renaming such a type is not an API change
 * but removing one of its fields is. Unions are always read through, their
 * literals named at each place. Library classes and
 * interfaces (Promise, Map, Headers, Kysely, ZodObject...) are leaves, read
 * only through their type arguments. A path of the accepted surface missing
 * from the generated one is a removal (rule.ts).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import ts from "typescript";

/** The TypeScript code of an API Extractor report: the contents of its ```ts block. */
export function reportCode(markdown: string): string {
  const match = /^```ts\r?\n([\s\S]*?)^```/m.exec(markdown);
  if (!match?.[1]) throw new Error("the API report has no ```ts block");
  return match[1];
}

export type FlattenOptions = {
  /** The package the declarations belong to: their imports resolve from its node_modules. */
  root?: string;
  /** Compiler options to read them with (the build's, for a report; small defaults for a fixture). */
  compilerOptions?: ts.CompilerOptions;
};

const DEFAULT_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ["lib.es2023.d.ts"],
  types: [],
  strict: true,
};

/** Generic library interfaces read through as their first type argument (a Promise<T> answers T). */
const TRANSPARENT = new Set(["Promise", "PromiseLike"]);
/** Generic library interfaces read as collections of their first type argument (path `[]`). */
const COLLECTIONS = new Set(["ReadonlyArray", "Set", "ReadonlySet", "Iterable", "AsyncIterable", "IterableIterator", "AsyncIterableIterator"]);
/** Deeper than this, a path is not followed further (a guard against types that grow as they are expanded). */
const MAX_DEPTH = 16;
/** More paths than this in one surface means something expands without end. */
const MAX_PATHS = 500_000;

/** Library declaration files, parsed (and bound) once per process and set of options. */
const libraryFiles = new Map<string, Map<string, ts.SourceFile>>();

function createProgram(files: Map<string, string>, options: ts.CompilerOptions): ts.Program {
  const cacheKey = JSON.stringify(options);
  let cache = libraryFiles.get(cacheKey);
  if (!cache) libraryFiles.set(cacheKey, (cache = new Map()));
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    const text = files.get(fileName);
    if (text !== undefined) return ts.createSourceFile(fileName, text, languageVersion, true, ts.ScriptKind.TS);
    const format = typeof languageVersion === "object" ? `${languageVersion.languageVersion}/${languageVersion.impliedNodeFormat}` : String(languageVersion);
    const key = `${fileName}\0${format}`;
    const cached = cache.get(key);
    if (cached) return cached;
    const parsed = getSourceFile(fileName, languageVersion, onError, shouldCreate);
    if (parsed) cache.set(key, parsed);
    return parsed;
  };
  host.fileExists = (fileName) => files.has(fileName) || fileExists(fileName);
  host.readFile = (fileName) => files.get(fileName) ?? readFile(fileName);
  return ts.createProgram({ rootNames: [...files.keys()], options: { ...options, noEmit: true, skipLibCheck: true }, host });
}

/**
 * Flattens groups of surfaces meant to be compared with each other (the
 * accepted and the generated report of one entry), each code a module of its
 * own, in one compiler program. Within a group, a path stops only at a type
 * every member of the group exports under the same name: exporting a type
 * that used to be internal then adds its own paths without taking away the
 * ones under the places it is used.
 */
export function flattenDeclarationGroups(groups: readonly (readonly string[])[], options: FlattenOptions = {}): string[][][] {
  const root = options.root ?? process.cwd();
  // The same declarations read the same way give the same paths: check and update on unchanged sources read them once.
  const key = createHash("sha256").update(JSON.stringify([root, options.compilerOptions ?? null, groups])).digest("hex");
  const known = flattened.get(key);
  if (known) return known.map((group) => group.map((paths) => [...paths]));
  const result = flattenUncached(groups, root, options);
  flattened.set(key, result);
  if (flattened.size > 16) flattened.delete(flattened.keys().next().value as string);
  return result.map((group) => group.map((paths) => [...paths]));
}

const flattened = new Map<string, string[][][]>();

function flattenUncached(groups: readonly (readonly string[])[], root: string, options: FlattenOptions): string[][][] {
  const names = groups.map((group, g) => group.map((_, i) => join(root, "api", `.surface-${g}-${i}.d.ts`).replaceAll("\\", "/")));
  // `export {}`: in a declaration file, a module without one exports every top-level declaration, marked or not.
  const files = new Map(groups.flatMap((group, g) => group.map((code, i) => [names[g]?.[i] as string, `${code}\nexport {};\n`] as const)));
  const program = createProgram(files, options.compilerOptions ?? DEFAULT_OPTIONS);
  const checker = program.getTypeChecker();
  const sourceOf = (name: string): ts.SourceFile => {
    const file = program.getSourceFile(name);
    if (!file) throw new Error(`could not read ${name}`);
    return file;
  };
  const reportFiles = new Set([...files.keys()].map(sourceOf));
  return names.map((group) => {
    const sources = group.map(sourceOf);
    const exported = sources.map((file) => new Set(exportsOf(checker, file).map((e) => e.name)));
    const shared = new Set([...(exported[0] ?? [])].filter((name) => exported.every((set) => set.has(name))));
    return sources.map((file) => [...new Flattener(checker, file, reportFiles, shared).run()].sort());
  });
}

/** Every path of the surface declared by each of `codes`, each flattened on its own (a path stops at the code's own exports), sorted. */
export function flattenDeclarationSets(codes: readonly string[], options: FlattenOptions = {}): string[][] {
  return flattenDeclarationGroups(codes.map((code) => [code]), options).map(([paths]) => paths as string[]);
}

/** Every path of the surface declared by `code` (TypeScript declarations), sorted. */
export function flattenDeclarations(code: string, options: FlattenOptions = {}): string[] {
  return flattenDeclarationSets([code], options)[0] as string[];
}

/** Groups of API Extractor reports' markdown, flattened as flattenDeclarationGroups does. */
export function flattenReportGroups(groups: readonly (readonly string[])[], options: FlattenOptions = {}): string[][][] {
  return flattenDeclarationGroups(groups.map((group) => group.map(reportCode)), options);
}

/** Every path of the surface in an API Extractor report's markdown. */
export function flattenReport(markdown: string, options: FlattenOptions = {}): string[] {
  return flattenDeclarations(reportCode(markdown), options);
}

function exportsOf(checker: ts.TypeChecker, file: ts.SourceFile): { name: string; symbol: ts.Symbol }[] {
  const moduleSymbol = checker.getSymbolAtLocation(file);
  if (!moduleSymbol) return []; // no import or export: nothing is exported
  return checker.getExportsOfModule(moduleSymbol).map((symbol) => ({
    name: symbol.name,
    symbol: symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol,
  }));
}

/** How a property name reads in a path: `.name`, or `["odd-name"]`, `[0]`, `[Symbol.iterator]`; undefined for a private name. */
function memberSegment(symbol: ts.Symbol): string | undefined {
  const name = symbol.name;
  if (name.startsWith("__#")) return undefined; // #private
  if (name.startsWith("__@")) return `[Symbol.${name.slice(3).replace(/@\d+$/, "")}]`;
  if (/^[A-Za-z_$][\w$]*$/.test(name)) return `.${name}`;
  if (/^\d+$/.test(name)) return `[${name}]`;
  return `[${JSON.stringify(name)}]`;
}

const isPrivate = (symbol: ts.Symbol): boolean =>
  (symbol.declarations ?? []).some((d) => (ts.getCombinedModifierFlags(d) & ts.ModifierFlags.Private) !== 0);

const LEAF_FLAGS =
  ts.TypeFlags.Any |
  ts.TypeFlags.Unknown |
  ts.TypeFlags.String |
  ts.TypeFlags.Number |
  ts.TypeFlags.Boolean |
  ts.TypeFlags.BooleanLiteral |
  ts.TypeFlags.BigInt |
  ts.TypeFlags.ESSymbol |
  ts.TypeFlags.UniqueESSymbol |
  ts.TypeFlags.Void |
  ts.TypeFlags.Undefined |
  ts.TypeFlags.Null |
  ts.TypeFlags.Never |
  ts.TypeFlags.NonPrimitive |
  ts.TypeFlags.TypeParameter |
  ts.TypeFlags.TemplateLiteral |
  ts.TypeFlags.StringMapping |
  ts.TypeFlags.Index |
  ts.TypeFlags.IndexedAccess |
  ts.TypeFlags.Conditional |
  ts.TypeFlags.Substitution;

/** A library symbol of these kinds is a leaf even where its type is anonymous (a class's static side, a function, a namespace). */
const LIBRARY_VALUE_FLAGS =
  ts.SymbolFlags.Class | ts.SymbolFlags.Interface | ts.SymbolFlags.Function | ts.SymbolFlags.Method | ts.SymbolFlags.ValueModule | ts.SymbolFlags.NamespaceModule | ts.SymbolFlags.Enum;

class Flattener {
  private readonly paths = new Set<string>();
  /** The object types of the entry's exported declarations (those in stopAt): a path that reaches one stops there. */
  private readonly exportedTypes = new Set<ts.Type>();
  /** Types being expanded, innermost last: a type that reaches itself is not expanded again inside itself. */
  private readonly expanding: ts.Type[] = [];

  constructor(
    private readonly checker: ts.TypeChecker,
    private readonly file: ts.SourceFile,
    private readonly reportFiles: ReadonlySet<ts.SourceFile>,
    /** The exports a path may stop at (see flattenDeclarationGroups). */
    private readonly stopAt: ReadonlySet<string>,
  ) {}

  run(): Set<string> {
    const exports = exportsOf(this.checker, this.file);
    for (const { name, symbol } of exports) {
      if (this.stopAt.has(name)) for (const type of this.typesOf(symbol)) if (type.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) this.exportedTypes.add(type);
    }
    for (const { name, symbol } of exports) {
      this.add(name);
      this.symbol(symbol, name);
    }
    return this.paths;
  }

  private resolve(symbol: ts.Symbol): ts.Symbol {
    return symbol.flags & ts.SymbolFlags.Alias ? this.checker.getAliasedSymbol(symbol) : symbol;
  }

  /** The types a declaration stands for: its declared type (a type, interface, class instance, enum) and its value's type. */
  private typesOf(symbol: ts.Symbol): ts.Type[] {
    const types: ts.Type[] = [];
    if (symbol.flags & (ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Interface | ts.SymbolFlags.Class | ts.SymbolFlags.Enum)) {
      types.push(this.checker.getDeclaredTypeOfSymbol(symbol));
    }
    if (symbol.flags & (ts.SymbolFlags.Variable | ts.SymbolFlags.Function | ts.SymbolFlags.Class | ts.SymbolFlags.Enum)) {
      types.push(this.checker.getTypeOfSymbol(symbol));
    }
    return types;
  }

  private add(path: string): void {
    this.paths.add(path);
    if (this.paths.size > MAX_PATHS) throw new Error(`the surface has more than ${MAX_PATHS} paths (last: ${path}): a type expands without end`);
  }

  private isExternal(symbol: ts.Symbol | undefined): boolean {
    const declarations = symbol?.declarations ?? [];
    return declarations.length > 0 && declarations.every((d) => !this.reportFiles.has(d.getSourceFile()));
  }

  private symbol(symbol: ts.Symbol, path: string): void {
    const { flags } = symbol;
    if (flags & ts.SymbolFlags.Enum) {
      for (const member of this.checker.getExportsOfModule(symbol)) {
        const segment = memberSegment(member);
        if (!segment) continue;
        this.add(`${path}${segment}`);
        const declaration = member.valueDeclaration;
        const value = declaration && ts.isEnumMember(declaration) ? this.checker.getConstantValue(declaration) : undefined;
        if (value !== undefined) this.add(`${path}${segment} = ${JSON.stringify(value)}`);
      }
      return;
    }
    if (flags & ts.SymbolFlags.Class) {
      this.expand(this.checker.getDeclaredTypeOfSymbol(symbol), path, 0);
      const constructorType = this.checker.getTypeOfSymbol(symbol);
      this.properties(constructorType, path, 0, (p) => p.name !== "prototype");
      for (const signature of constructorType.getConstructSignatures()) {
        this.add(`${path}.constructor`);
        this.signature(signature, `${path}.constructor`, 0);
      }
      return;
    }
    if (flags & (ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Interface)) this.expand(this.checker.getDeclaredTypeOfSymbol(symbol), path, 0);
    if (flags & (ts.SymbolFlags.Variable | ts.SymbolFlags.Function)) this.expand(this.checker.getTypeOfSymbol(symbol), path, 0);
    if (flags & (ts.SymbolFlags.ValueModule | ts.SymbolFlags.NamespaceModule)) {
      for (const member of this.checker.getExportsOfModule(symbol)) {
        const at = `${path}.${member.name}`;
        this.add(at);
        this.symbol(this.resolve(member), at);
      }
    }
  }

  /** A type at `path`: literals are named, an exported declaration's object type stops the path, anything else is expanded. */
  private type(type: ts.Type, path: string, depth: number): void {
    if (type.flags & ts.TypeFlags.Boolean) return;
    // Unions are always read through (their literals named here), even an exported one: unions are interned, so one that
    // happens to equal an exported alias is not a use of it.
    if (type.isUnion()) {
      for (const member of type.types) this.type(member, path, depth);
      return;
    }
    if (type.isStringLiteral()) return void this.add(`${path}: ${JSON.stringify(type.value)}`);
    if (type.isNumberLiteral()) return void this.add(`${path}: ${type.value}`);
    if (type.flags & ts.TypeFlags.BigIntLiteral) {
      const { negative, base10Value } = (type as ts.BigIntLiteralType).value;
      return void this.add(`${path}: ${negative ? "-" : ""}${base10Value}n`);
    }
    if (type.flags & ts.TypeFlags.TypeParameter) {
      // Written without type arguments, a generic means its defaults: `DisconnectReport<T = ConnectionPublic>` has the fields of ConnectionPublic.
      const fallback = this.checker.getDefaultFromTypeParameter(type);
      if (fallback && !this.expanding.includes(type)) {
        this.expanding.push(type);
        try {
          this.type(fallback, path, depth);
        } finally {
          this.expanding.pop();
        }
      }
      return;
    }
    if (type.flags & LEAF_FLAGS) return;
    if (this.exportedTypes.has(type)) return;
    this.expand(type, path, depth);
  }

  /** A type's own paths: array elements, library types' arguments, properties, signatures and index signatures. */
  private expand(type: ts.Type, path: string, depth: number): void {
    if (depth > MAX_DEPTH || this.expanding.includes(type)) return;
    if (type.isUnion() || type.isLiteral() || type.flags & (ts.TypeFlags.Boolean | LEAF_FLAGS)) {
      if (type.isUnion()) for (const member of type.types) this.type(member, path, depth);
      else this.type(type, path, depth);
      return;
    }
    this.expanding.push(type);
    try {
      if (this.checker.isArrayType(type)) {
        const [element] = this.checker.getTypeArguments(type as ts.TypeReference);
        if (element) this.type(element, `${path}[]`, depth + 1);
        return;
      }
      if (this.checker.isTupleType(type)) {
        const reference = type as ts.TypeReference;
        const count = (reference.target as ts.TupleType).elementFlags.length;
        this.checker.getTypeArguments(reference).slice(0, count).forEach((element, i) => {
          this.add(`${path}[${i}]`);
          this.type(element, `${path}[${i}]`, depth + 1);
        });
        return;
      }
      const objectFlags = type.flags & ts.TypeFlags.Object ? (type as ts.ObjectType).objectFlags : 0;
      const target = objectFlags & ts.ObjectFlags.Reference ? (type as ts.TypeReference).target : type;
      const targetFlags = target.flags & ts.TypeFlags.Object ? (target as ts.ObjectType).objectFlags : 0;
      const symbol = target.getSymbol();
      // A library's class, interface, function, namespace or class constructor (typeof Readable): a leaf. A library's type
      // literal or mapped type (Partial<T>, z.infer<S>) is data, and expanded.
      const library = this.isExternal(symbol) && ((targetFlags & (ts.ObjectFlags.Class | ts.ObjectFlags.Interface)) !== 0 || ((symbol?.flags ?? 0) & LIBRARY_VALUE_FLAGS) !== 0);
      if (library) {
        const count = (target as ts.InterfaceType).typeParameters?.length ?? 0;
        const args = objectFlags & ts.ObjectFlags.Reference ? this.checker.getTypeArguments(type as ts.TypeReference).slice(0, count) : [];
        const name = symbol?.name ?? "";
        if (TRANSPARENT.has(name)) args.slice(0, 1).forEach((arg) => this.type(arg, path, depth + 1));
        else if (COLLECTIONS.has(name)) args.slice(0, 1).forEach((arg) => this.type(arg, `${path}[]`, depth + 1));
        else args.forEach((arg, i) => this.type(arg, `${path}<${i}>`, depth + 1));
        return;
      }
      this.properties(type, path, depth);
      for (const signature of type.getCallSignatures()) this.signature(signature, path, depth);
      for (const signature of type.getConstructSignatures()) {
        this.add(`${path}.new`);
        this.signature(signature, `${path}.new`, depth);
      }
      for (const info of this.checker.getIndexInfosOfType(type)) {
        const at = `${path}[${this.checker.typeToString(info.keyType)}]`;
        this.add(at);
        this.type(info.type, at, depth + 1);
      }
    } finally {
      this.expanding.pop();
    }
  }

  private properties(type: ts.Type, path: string, depth: number, keep: (p: ts.Symbol) => boolean = () => true): void {
    for (const property of this.checker.getPropertiesOfType(type)) {
      if (isPrivate(property) || !keep(property)) continue;
      const segment = memberSegment(property);
      if (!segment) continue;
      const at = `${path}${segment}`;
      this.add(at);
      this.type(this.checker.getTypeOfSymbol(property), at, depth + 1);
    }
  }

  /** Parameters by position (`(#0)`, `(#1...)` for a rest parameter) and the return value (`()`). */
  private signature(signature: ts.Signature, path: string, depth: number): void {
    signature.getParameters().forEach((parameter, i) => {
      const declaration = parameter.valueDeclaration;
      const rest = declaration !== undefined && ts.isParameter(declaration) && declaration.dotDotDotToken !== undefined;
      const at = `${path}(#${i}${rest ? "..." : ""})`;
      this.add(at);
      this.type(this.checker.getTypeOfSymbol(parameter), at, depth + 1);
    });
    this.add(`${path}()`);
    this.type(signature.getReturnType(), `${path}()`, depth + 1);
  }
}
