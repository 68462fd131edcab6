/**
 * The public TypeScript surface of one package entry, as a set of paths.
 *
 * Input: an API Extractor report (`api/*.api.md`), whose ```ts block holds
 * the entry's declarations (exported ones marked `export`, the types they
 * reach but the entry does not export written without it). The block is
 * parsed with the TypeScript compiler (no type checking) and every
 * declaration flattened into paths:
 *
 *   Tier1ConnectionHealth                      an export
 *   Tier1ConnectionHealth.checkedAt            a field (property, method, accessor)
 *   Tier1ConnectionHealth.status: "down"       a string/number literal of a union
 *   Tier1ConnectionHealth.details.errorType    fields of nested object types
 *   ErrorCodes.AUTH = "auth"                   an enum member and its value
 *   createIntegrations(#0).vault               a parameter (by position) and its fields
 *   createIntegrations().health()              a return value (Promise<T> is read as T)
 *   StartedSandboxes.baseUrlAllowlist[]        array elements; [0] tuple elements
 *   Foo.bar<1>.baz                             a type argument (by position) of a generic reference
 *   Foo[string]                                an index signature
 *
 * Unions and intersections merge their branches' paths at the same place.
 * A reference to an exported type stays a reference (its fields are under
 * its own name); a reference to a type the entry does not export is expanded
 * in place, so that renaming such a type is not an API change but removing
 * one of its fields is. A path of the accepted surface missing from the
 * generated one is a removal (see rule.ts).
 */
import ts from "typescript";

/** The TypeScript code of an API Extractor report: the contents of its ```ts block. */
export function reportCode(markdown: string): string {
  const match = /^```ts\r?\n([\s\S]*?)^```/m.exec(markdown);
  if (!match?.[1]) throw new Error("the API report has no ```ts block");
  return match[1];
}

/** Generic references read through as their first type argument (a Promise<T> answers T). */
const TRANSPARENT = new Set(["Promise", "PromiseLike", "Awaited", "Readonly", "Partial", "Required", "NonNullable"]);
/** Generic references read as collections of their first type argument (path `[]`). */
const COLLECTIONS = new Set(["Array", "ReadonlyArray", "Set", "ReadonlySet", "Iterable", "AsyncIterable", "IterableIterator", "AsyncIterableIterator"]);

type Declaration = ts.Statement;

/** Every path of the surface declared by `code` (TypeScript declarations), sorted. */
export function flattenDeclarations(code: string): string[] {
  const source = ts.createSourceFile("report.d.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  return [...new Flattener(source).run()].sort();
}

/** Every path of the surface in an API Extractor report's markdown. */
export function flattenReport(markdown: string): string[] {
  return flattenDeclarations(reportCode(markdown));
}

const hasModifier = (node: ts.Node, kind: ts.SyntaxKind): boolean =>
  ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === kind);

function declaredNames(statement: ts.Statement): string[] {
  if (ts.isVariableStatement(statement)) {
    return statement.declarationList.declarations.flatMap((d) => (ts.isIdentifier(d.name) ? [d.name.text] : []));
  }
  if (
    (ts.isInterfaceDeclaration(statement) ||
      ts.isTypeAliasDeclaration(statement) ||
      ts.isClassDeclaration(statement) ||
      ts.isFunctionDeclaration(statement) ||
      ts.isEnumDeclaration(statement) ||
      ts.isModuleDeclaration(statement)) &&
    statement.name &&
    ts.isIdentifier(statement.name)
  ) {
    return [statement.name.text];
  }
  return [];
}

/** How a member name reads in a path: `.name`, or `["odd-name"]`, `[0]`, `[Symbol.iterator]`. */
function memberSegment(name: ts.PropertyName | undefined): string | undefined {
  if (!name) return undefined;
  if (ts.isIdentifier(name)) return `.${name.text}`;
  if (ts.isPrivateIdentifier(name)) return undefined;
  if (ts.isStringLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name)) {
    return /^[A-Za-z_$][\w$]*$/.test(name.text) ? `.${name.text}` : `[${JSON.stringify(name.text)}]`;
  }
  if (ts.isNumericLiteral(name)) return `[${name.text}]`;
  if (ts.isComputedPropertyName(name)) return `[${name.expression.getText()}]`;
  return undefined;
}

/** A literal type's value as it reads in a path (`"down"`, `429`, `-1`), or undefined for other types. */
function literalValue(node: ts.LiteralTypeNode): string | undefined {
  const literal = node.literal;
  if (ts.isStringLiteral(literal) || ts.isNoSubstitutionTemplateLiteral(literal)) return JSON.stringify(literal.text);
  if (ts.isNumericLiteral(literal) || ts.isBigIntLiteral(literal)) return literal.text;
  if (ts.isPrefixUnaryExpression(literal) && literal.operator === ts.SyntaxKind.MinusToken && ts.isNumericLiteral(literal.operand)) {
    return `-${literal.operand.text}`;
  }
  return undefined; // true, false, null: not values of a closed set worth naming
}

function entityText(name: ts.EntityName | ts.Expression): string {
  if (ts.isIdentifier(name)) return name.text;
  if (ts.isQualifiedName(name)) return `${entityText(name.left)}.${name.right.text}`;
  if (ts.isPropertyAccessExpression(name)) return `${entityText(name.expression)}.${name.name.text}`;
  return name.getText();
}

class Flattener {
  private readonly paths = new Set<string>();
  /** Top-level declarations by local name (interfaces and namespaces merge; functions overload). */
  private readonly declarations = new Map<string, Declaration[]>();
  /** Exported name → local name. */
  private readonly exports = new Map<string, string>();
  /** Local names being expanded, innermost last: a type that reaches itself is not expanded again. */
  private readonly expanding: string[] = [];

  constructor(private readonly source: ts.SourceFile) {}

  run(): Set<string> {
    for (const statement of this.source.statements) {
      for (const name of declaredNames(statement)) {
        this.declarations.set(name, [...(this.declarations.get(name) ?? []), statement]);
        if (hasModifier(statement, ts.SyntaxKind.ExportKeyword)) {
          this.exports.set(hasModifier(statement, ts.SyntaxKind.DefaultKeyword) ? "default" : name, name);
        }
      }
      if (ts.isExportDeclaration(statement) && !statement.moduleSpecifier && statement.exportClause && ts.isNamedExports(statement.exportClause)) {
        for (const element of statement.exportClause.elements) {
          this.exports.set(element.name.text, (element.propertyName ?? element.name).getText());
        }
      }
      if (ts.isExportAssignment(statement) && ts.isIdentifier(statement.expression)) {
        this.exports.set("default", statement.expression.text);
      }
    }
    for (const [exported, local] of this.exports) {
      this.paths.add(exported);
      this.expand(local, exported);
    }
    return this.paths;
  }

  private add(path: string): void {
    this.paths.add(path);
  }

  private isExported(local: string): boolean {
    for (const name of this.exports.values()) if (name === local) return true;
    return false;
  }

  /** Flattens the declarations of `local` at `path` (unless `local` is already being expanded). */
  private expand(local: string, path: string): void {
    const found = this.declarations.get(local);
    if (!found || this.expanding.includes(local)) return;
    this.expanding.push(local);
    try {
      for (const declaration of found) this.declaration(declaration, path);
    } finally {
      this.expanding.pop();
    }
  }

  private declaration(node: ts.Node, path: string): void {
    if (ts.isInterfaceDeclaration(node)) {
      this.heritage(node.heritageClauses, path);
      this.members(node.members, path);
    } else if (ts.isClassDeclaration(node)) {
      this.heritage(node.heritageClauses, path);
      this.members(node.members, path);
    } else if (ts.isTypeAliasDeclaration(node)) {
      this.type(node.type, path);
    } else if (ts.isFunctionDeclaration(node)) {
      this.signature(node, path);
    } else if (ts.isVariableStatement(node)) {
      for (const d of node.declarationList.declarations) if (d.type) this.type(d.type, path);
    } else if (ts.isEnumDeclaration(node)) {
      for (const member of node.members) {
        const segment = memberSegment(member.name);
        if (!segment) continue;
        this.add(`${path}${segment}`);
        const init = member.initializer;
        if (init && ts.isStringLiteral(init)) this.add(`${path}${segment} = ${JSON.stringify(init.text)}`);
        if (init && ts.isNumericLiteral(init)) this.add(`${path}${segment} = ${init.text}`);
        if (init && ts.isPrefixUnaryExpression(init) && ts.isNumericLiteral(init.operand) && init.operator === ts.SyntaxKind.MinusToken) {
          this.add(`${path}${segment} = -${init.operand.text}`);
        }
      }
    } else if (ts.isModuleDeclaration(node)) {
      this.namespace(node, path);
    }
  }

  /** A namespace: its exported declarations, and the names it re-exports (`export { a, b }`, API Extractor's form of `export * as ns`). */
  private namespace(node: ts.ModuleDeclaration, path: string): void {
    const body = node.body;
    if (!body) return;
    if (ts.isModuleDeclaration(body)) {
      this.add(`${path}.${body.name.getText()}`);
      this.namespace(body, `${path}.${body.name.getText()}`);
      return;
    }
    if (!ts.isModuleBlock(body)) return;
    for (const statement of body.statements) {
      if (ts.isExportDeclaration(statement) && statement.exportClause && ts.isNamedExports(statement.exportClause)) {
        for (const element of statement.exportClause.elements) {
          const at = `${path}.${element.name.text}`;
          this.add(at);
          this.reference((element.propertyName ?? element.name).getText(), at);
        }
        continue;
      }
      for (const name of declaredNames(statement)) {
        // Inside an ambient namespace every declaration is visible, `export` or not.
        this.add(`${path}.${name}`);
        this.declaration(statement, `${path}.${name}`);
      }
    }
  }

  /** A name used at `path`: an exported declaration stays a reference; one the entry does not export is expanded here. */
  private reference(local: string, path: string): void {
    if (this.declarations.has(local) && !this.isExported(local)) this.expand(local, path);
  }

  private heritage(clauses: ts.NodeArray<ts.HeritageClause> | undefined, path: string): void {
    for (const clause of clauses ?? []) {
      for (const base of clause.types) {
        // Inherited members are the type's own: expand a base declared in the report, exported or not.
        const name = entityText(base.expression);
        if (this.declarations.has(name)) this.expand(name, path);
        base.typeArguments?.forEach((arg, i) => this.type(arg, `${path}<${i}>`));
      }
    }
  }

  private members(members: ts.NodeArray<ts.TypeElement | ts.ClassElement>, path: string): void {
    for (const member of members) {
      if (hasModifier(member, ts.SyntaxKind.PrivateKeyword)) continue;
      if (ts.isConstructorDeclaration(member)) {
        this.add(`${path}.constructor`);
        this.signature(member, `${path}.constructor`);
        continue;
      }
      if (ts.isCallSignatureDeclaration(member)) {
        this.signature(member, path);
        continue;
      }
      if (ts.isConstructSignatureDeclaration(member)) {
        this.add(`${path}.new`);
        this.signature(member, `${path}.new`);
        continue;
      }
      if (ts.isIndexSignatureDeclaration(member)) {
        const key = member.parameters[0]?.type?.getText() ?? "key";
        this.add(`${path}[${key}]`);
        this.type(member.type, `${path}[${key}]`);
        continue;
      }
      if (ts.isClassStaticBlockDeclaration(member) || ts.isSemicolonClassElement(member)) continue;
      const segment = memberSegment(member.name);
      if (!segment) continue;
      const at = `${path}${segment}`;
      this.add(at);
      if (ts.isPropertySignature(member) || ts.isPropertyDeclaration(member)) {
        if (member.type) this.type(member.type, at);
      } else if (ts.isMethodSignature(member) || ts.isMethodDeclaration(member)) {
        this.signature(member, at);
      } else if (ts.isGetAccessorDeclaration(member)) {
        if (member.type) this.type(member.type, at);
      } else if (ts.isSetAccessorDeclaration(member)) {
        const type = member.parameters[0]?.type;
        if (type) this.type(type, at);
      }
    }
  }

  /** Parameters by position (`(#0)`, `(#1...)` for a rest parameter) and the return value (`()`). */
  private signature(node: ts.SignatureDeclarationBase, path: string): void {
    let index = 0;
    for (const parameter of node.parameters) {
      if (ts.isIdentifier(parameter.name) && parameter.name.text === "this") continue;
      const at = `${path}(#${index}${parameter.dotDotDotToken ? "..." : ""})`;
      index += 1;
      this.add(at);
      if (parameter.type) this.type(parameter.type, at);
    }
    this.add(`${path}()`);
    if (node.type) this.type(node.type, `${path}()`);
  }

  private type(node: ts.TypeNode, path: string): void {
    if (ts.isTypeLiteralNode(node)) {
      this.members(node.members, path);
    } else if (ts.isUnionTypeNode(node) || ts.isIntersectionTypeNode(node)) {
      for (const branch of node.types) this.type(branch, path);
    } else if (ts.isParenthesizedTypeNode(node)) {
      this.type(node.type, path);
    } else if (ts.isLiteralTypeNode(node)) {
      const value = literalValue(node);
      if (value !== undefined) this.add(`${path}: ${value}`);
    } else if (ts.isArrayTypeNode(node)) {
      this.type(node.elementType, `${path}[]`);
    } else if (ts.isTupleTypeNode(node)) {
      node.elements.forEach((element, i) => {
        const inner = ts.isNamedTupleMember(element) ? element.type : element;
        const unwrapped = ts.isOptionalTypeNode(inner) || ts.isRestTypeNode(inner) ? inner.type : inner;
        this.add(`${path}[${i}]`);
        this.type(unwrapped, `${path}[${i}]`);
      });
    } else if (ts.isTypeOperatorNode(node)) {
      if (node.operator === ts.SyntaxKind.KeyOfKeyword) this.keyOf(node.type, path);
      else this.type(node.type, path); // readonly T[], unique symbol
    } else if (ts.isTypeReferenceNode(node)) {
      this.typeReference(entityText(node.typeName), node.typeArguments, path);
    } else if (ts.isExpressionWithTypeArguments(node)) {
      this.typeReference(entityText(node.expression), node.typeArguments, path);
    } else if (ts.isTypeQueryNode(node)) {
      this.reference(entityText(node.exprName), path);
    } else if (ts.isFunctionTypeNode(node)) {
      this.signature(node, path);
    } else if (ts.isConstructorTypeNode(node)) {
      this.add(`${path}.new`);
      this.signature(node, `${path}.new`);
    } else if (ts.isConditionalTypeNode(node)) {
      this.type(node.trueType, path);
      this.type(node.falseType, path);
    } else if (ts.isMappedTypeNode(node)) {
      if (node.typeParameter.constraint) this.type(node.typeParameter.constraint, `${path}[in]`);
      if (node.type) this.type(node.type, `${path}[*]`);
    } else if (ts.isIndexedAccessTypeNode(node)) {
      this.indexedAccess(node, path);
    } else if (ts.isTypePredicateNode(node)) {
      if (node.type) this.type(node.type, path);
    }
    // Keywords (string, number, boolean, unknown...), template literals, `this`, infer, import("x"): leaves.
  }

  private typeReference(name: string, args: ts.NodeArray<ts.TypeNode> | undefined, path: string): void {
    if (!this.declarations.has(name) && TRANSPARENT.has(name)) {
      for (const arg of args ?? []) this.type(arg, path);
      return;
    }
    if (!this.declarations.has(name) && COLLECTIONS.has(name)) {
      for (const arg of args ?? []) this.type(arg, `${path}[]`);
      return;
    }
    this.reference(name, path);
    args?.forEach((arg, i) => this.type(arg, `${path}<${i}>`));
  }

  /** `keyof T`: the names of T's members, as the literal values they are. */
  private keyOf(node: ts.TypeNode, path: string): void {
    const inner = new Flattener(this.source);
    for (const [name, list] of this.declarations) inner.declarations.set(name, list);
    for (const [exported, local] of this.exports) inner.exports.set(exported, local);
    // Expand even an exported T here: its member names are the values of this type.
    const target = ts.isTypeQueryNode(node) ? entityText(node.exprName) : ts.isTypeReferenceNode(node) ? entityText(node.typeName) : undefined;
    if (target !== undefined && this.declarations.has(target)) inner.expand(target, "");
    else inner.type(node, "");
    for (const member of inner.paths) {
      const match = /^\.([A-Za-z_$][\w$]*)$/.exec(member) ?? /^\[("(?:[^"\\]|\\.)*"|\d+)\]$/.exec(member);
      if (match?.[1]) this.add(`${path}: ${match[1].startsWith('"') || /^\d/.test(match[1]) ? match[1] : JSON.stringify(match[1])}`);
    }
  }

  /** `T["k"]` with T declared in the report and not exported: the type of its member k, read here. */
  private indexedAccess(node: ts.IndexedAccessTypeNode, path: string): void {
    const object = node.objectType;
    const index = node.indexType;
    if (!ts.isTypeReferenceNode(object) || !ts.isLiteralTypeNode(index) || !ts.isStringLiteral(index.literal)) return;
    const name = entityText(object.typeName);
    if (!this.declarations.has(name) || this.isExported(name) || this.expanding.includes(name)) return;
    const key = index.literal.text;
    this.expanding.push(name);
    try {
      for (const declaration of this.declarations.get(name) ?? []) {
        for (const type of memberTypes(declaration, key)) this.type(type, path);
      }
    } finally {
      this.expanding.pop();
    }
  }
}

/** The declared types of member `key` of a declaration (an interface, class, or a type alias of object literals). */
function memberTypes(declaration: ts.Node, key: string): ts.TypeNode[] {
  const fromMembers = (members: ts.NodeArray<ts.TypeElement | ts.ClassElement>): ts.TypeNode[] =>
    members.flatMap((m) =>
      (ts.isPropertySignature(m) || ts.isPropertyDeclaration(m)) && m.type && memberSegment(m.name) === `.${key}` ? [m.type] : [],
    );
  const fromType = (type: ts.TypeNode): ts.TypeNode[] => {
    if (ts.isTypeLiteralNode(type)) return fromMembers(type.members);
    if (ts.isIntersectionTypeNode(type) || ts.isUnionTypeNode(type)) return type.types.flatMap(fromType);
    if (ts.isParenthesizedTypeNode(type)) return fromType(type.type);
    return [];
  };
  if (ts.isInterfaceDeclaration(declaration) || ts.isClassDeclaration(declaration)) return fromMembers(declaration.members);
  if (ts.isTypeAliasDeclaration(declaration)) return fromType(declaration.type);
  return [];
}
