/** The TypeScript surface flattener (scripts/surface/tsSurface.ts) on small declaration fixtures. */
import { describe, expect, it } from "vitest";
import { removedPaths } from "../../scripts/surface/rule.js";
import { flattenDeclarationGroups, flattenDeclarations, flattenReport, reportCode } from "../../scripts/surface/tsSurface.js";

const HEALTH = `
export type Tier1ConnectionHealth<TAuthMethod extends string, TMetadata> = {
    status: "ok" | "degraded" | "down";
    checkedAt: string;
    authMethod?: TAuthMethod;
    details: {
        auth: boolean;
        errorType?: "auth" | "rate-limit";
        message?: string;
    };
} & TMetadata;
`;

describe("flattenDeclarations", () => {
  it("names exports, fields, nested fields and the literals of unions", () => {
    expect(flattenDeclarations(HEALTH)).toEqual([
      "Tier1ConnectionHealth",
      "Tier1ConnectionHealth.authMethod",
      "Tier1ConnectionHealth.checkedAt",
      "Tier1ConnectionHealth.details",
      "Tier1ConnectionHealth.details.auth",
      "Tier1ConnectionHealth.details.errorType",
      'Tier1ConnectionHealth.details.errorType: "auth"',
      'Tier1ConnectionHealth.details.errorType: "rate-limit"',
      "Tier1ConnectionHealth.details.message",
      "Tier1ConnectionHealth.status",
      'Tier1ConnectionHealth.status: "degraded"',
      'Tier1ConnectionHealth.status: "down"',
      'Tier1ConnectionHealth.status: "ok"',
    ]);
  });

  it("a rename is a removal; an added field or union member is not", () => {
    const before = flattenDeclarations(HEALTH);
    expect(removedPaths(before, flattenDeclarations(HEALTH.replace("checkedAt", "checkedOn")))).toEqual(["Tier1ConnectionHealth.checkedAt"]);
    expect(removedPaths(before, flattenDeclarations(HEALTH.replace(' | "down"', "")))).toEqual(['Tier1ConnectionHealth.status: "down"']);
    expect(removedPaths(before, flattenDeclarations(HEALTH.replace("message?: string;", "message?: string; region?: string;")))).toEqual([]);
    // Adding a union member rewrites the line, and still removes nothing.
    expect(removedPaths(before, flattenDeclarations(HEALTH.replace('"down";', '"down" | "paused";')))).toEqual([]);
  });

  it("reads functions by parameter position and return value, through Promise, arrays, tuples and type arguments", () => {
    const paths = flattenDeclarations(`
      type Options = { publicUrl: string; ports?: readonly number[] };
      type Started = { close(): Promise<void>; urls: Array<{ url: string }>; pair: [first: { a: 1 }, second?: { b: -2 }]; byId: Map<"x" | "y", { ok: boolean }> };
      export function start(options: Options, ...rest: { tag: string }[]): Promise<Started>;
    `);
    expect(paths).toEqual([
      "start",
      "start(#0)",
      "start(#0).ports",
      "start(#0).publicUrl",
      "start(#1...)",
      "start(#1...)[].tag",
      "start()",
      "start().byId",
      'start().byId<0>: "x"',
      'start().byId<0>: "y"',
      "start().byId<1>.ok",
      "start().close",
      "start().close()",
      "start().pair",
      "start().pair[0]",
      "start().pair[0].a",
      "start().pair[0].a: 1",
      "start().pair[1]",
      "start().pair[1].b",
      "start().pair[1].b: -2",
      "start().urls",
      "start().urls[].url",
    ]);
  });

  it("keeps a reference to an exported type a reference, and expands one the entry does not export", () => {
    const paths = flattenDeclarations(`
      export type Public = { id: string };
      type Internal = { secretField: string; next?: Internal };
      export type Holder = { pub: Public; internal: Internal };
    `);
    expect(paths).toContain("Public.id");
    expect(paths).not.toContain("Holder.pub.id");
    expect(paths).toContain("Holder.internal.secretField");
    // A type that reaches itself is expanded once.
    expect(paths).toContain("Holder.internal.next");
    expect(paths).not.toContain("Holder.internal.next.secretField");
    expect(paths.some((p) => p.startsWith("Internal"))).toBe(false);
    // So renaming the internal type changes nothing, and removing its field is a removal.
    const renamed = flattenDeclarations(`
      export type Public = { id: string };
      type Renamed = { secretField: string; next?: Renamed };
      export type Holder = { pub: Public; internal: Renamed };
    `);
    expect(renamed).toEqual(paths);
  });

  it("reads enums, classes (no private members), interfaces with bases, index signatures and callable types", () => {
    const paths = flattenDeclarations(`
      export enum Level { Low = "low", High = 2 }
      interface Base { baseField: string }
      export interface Shape extends Base { (x: number): string; new (): Shape; [key: string]: unknown; method?(a: { z: 1 }): void }
      export class Thing {
        private hidden;
        protected guarded: string;
        static make(): Thing;
        constructor(options: { size: number });
        get size(): number;
      }
    `);
    expect(paths).toEqual(
      expect.arrayContaining([
        "Level",
        "Level.Low",
        'Level.Low = "low"',
        "Level.High = 2",
        "Shape.baseField",
        "Shape(#0)",
        "Shape()",
        "Shape.new",
        "Shape[string]",
        "Shape.method(#0).z: 1",
        "Thing.guarded",
        "Thing.make()",
        "Thing.constructor(#0).size",
        "Thing.size",
      ]),
    );
    expect(paths).not.toContain("Thing.hidden");
  });

  it("reads keyof typeof as the member names, indexed access into an internal type, namespaces and re-exports", () => {
    const paths = flattenDeclarations(`
      const REGISTRY: { readonly slack: { a: 1 }; readonly "hub-spot": { b: 2 } };
      export type ProviderId = keyof typeof REGISTRY;
      type Inner = { kind: "x" | "y" };
      export type Kind = Inner["kind"];
      declare namespace tools { export { helper } }
      function helper(input: { flag: boolean }): void;
      type Local = { field: "v" };
      export { tools, Local as PublicLocal };
    `);
    expect(paths).toEqual(
      expect.arrayContaining([
        'ProviderId: "slack"',
        'ProviderId: "hub-spot"',
        'Kind: "x"',
        'Kind: "y"',
        "tools",
        "tools.helper",
        "tools.helper(#0).flag",
        "PublicLocal",
        'PublicLocal.field: "v"',
      ]),
    );
    expect(paths).not.toContain("REGISTRY");
  });
});

describe("paths follow what types mean", () => {
  it("a field is the same path whether declared in a literal or inferred through a mapped type (as z.infer does)", () => {
    const literal = `export type Meta = { teamId: string; region?: "eu" | "us" };`;
    const inferred = `
      declare const schema: { teamId: () => string; region: () => "eu" | "us" };
      type Infer<T> = { [K in keyof T]: T[K] extends () => infer R ? R : never };
      export type Meta = Partial<Pick<Infer<typeof schema>, "region">> & Omit<Infer<typeof schema>, "region">;
    `;
    expect(flattenDeclarations(inferred)).toEqual(flattenDeclarations(literal));
    expect(flattenDeclarations(literal)).toEqual(["Meta", "Meta.region", 'Meta.region: "eu"', 'Meta.region: "us"', "Meta.teamId"]);
  });

  it("exporting a type that was internal adds its paths and takes none away from where it is used", () => {
    const before = `type Sandbox = { url: string }; export type Started = { sandbox: Sandbox };`;
    const after = `export type Sandbox = { url: string }; export type Started = { sandbox: Sandbox };`;
    // On its own, a surface stops at its own exports...
    expect(flattenDeclarations(after)).not.toContain("Started.sandbox.url");
    // ...compared with one that did not export it, it does not.
    const [[accepted, generated] = []] = flattenDeclarationGroups([[before, after]]);
    expect(removedPaths(accepted ?? [], generated ?? [])).toEqual([]);
    expect(removedPaths(generated ?? [], accepted ?? [])).toEqual(["Sandbox", "Sandbox.url"]);
  });

  it("a type parameter with a default is read as its default, as a generic written without arguments means it", () => {
    const plain = flattenDeclarations(`type Conn = { id: string }; export type Report = { connection: Conn; note?: string };`);
    const generic = flattenDeclarations(`type Conn = { id: string }; export type Report<T = Conn> = { connection: T; note?: string };`);
    expect(generic).toEqual(plain);
    expect(flattenDeclarations(`export type Box<T> = { value: T };`)).toEqual(["Box", "Box.value"]);
  });

  it("a union is read through even when an exported alias equals it", () => {
    const paths = flattenDeclarations(`export type Status = "ok" | "down"; export type Health = { status: "ok" | "down"; level?: Status };`);
    expect(paths).toEqual(expect.arrayContaining(['Health.status: "down"', 'Health.level: "ok"', 'Status: "down"']));
  });
});

describe("reportCode", () => {
  it("takes the ts block of an API Extractor report", () => {
    const markdown = "## API Report File\n\n> Do not edit.\n\n```ts\n\nexport type A = { a: 1 };\n\n```\n";
    expect(reportCode(markdown).trim()).toBe("export type A = { a: 1 };");
    expect(flattenReport(markdown)).toEqual(["A", "A.a", "A.a: 1"]);
    expect(() => reportCode("no code here")).toThrow(/no ```ts block/);
  });
});
