/** The compatibility rule (scripts/surface/rule.ts) and the entries read from package.json (scripts/surface/apiReport.ts). */
import { describe, expect, it } from "vitest";
import { reportEntries, reportFileFor, typesOf } from "../../scripts/surface/apiReport.js";
import { checkVerdict, collapseRemovals, majorOf, majorRaised, removalLines, removedPaths, updateVerdict, type SurfaceComparison } from "../../scripts/surface/rule.js";

const surface = (over: Partial<SurfaceComparison>): SurfaceComparison => ({
  name: "autoflow-integrations",
  file: "api/autoflow-integrations.api.md",
  upToDate: true,
  missing: false,
  removed: [],
  added: [],
  ...over,
});

describe("versions", () => {
  it("reads the major of a semver version", () => {
    expect(majorOf("0.1.0")).toBe(0);
    expect(majorOf("2.0.0-rc.1")).toBe(2);
    expect(majorOf("v10.2.3+build.4")).toBe(10);
    expect(() => majorOf("1.0")).toThrow(/not a semver version/);
  });

  it("a major is raised only by the first number", () => {
    expect(majorRaised("0.1.0", "1.0.0")).toBe(true);
    expect(majorRaised("1.2.3", "1.9.0")).toBe(false);
    expect(majorRaised("1.2.3", "2.0.0-rc.1")).toBe(true);
    expect(majorRaised("2.0.0", "1.9.9")).toBe(false);
  });
});

describe("removedPaths", () => {
  it("is what the accepted surface has and the generated one lacks, sorted", () => {
    expect(removedPaths(["b", "a", "c"], ["c", "d"])).toEqual(["a", "b"]);
  });
});

describe("collapseRemovals", () => {
  it("folds a removed path's removed descendants into it, and nothing else", () => {
    expect(
      collapseRemovals([
        "CONNECTORS.slack.startSandbox",
        "CONNECTORS.slack.startSandbox(#0)",
        "CONNECTORS.slack.startSandbox(#0).port",
        "CONNECTORS.slack.startSandbox()",
        "CONNECTORS.slack.startSandboxes",
        'Health.status: "down"',
        "Level.Low",
        'Level.Low = "low"',
      ]),
    ).toEqual([
      { path: "CONNECTORS.slack.startSandbox", under: 3 },
      { path: "CONNECTORS.slack.startSandboxes", under: 0 },
      { path: 'Health.status: "down"', under: 0 },
      { path: "Level.Low", under: 1 },
    ]);
    const surfaces = [surface({ removed: ["A.b", "A.b.c", "A.d"] })];
    expect(removalLines(surfaces, false)).toEqual(["autoflow-integrations: A.b removed (and 1 path under it)", "autoflow-integrations: A.d removed"]);
    expect(removalLines(surfaces)).toHaveLength(3);
  });
});

describe("checkVerdict", () => {
  const removal = surface({ upToDate: false, removed: ["Tier1ConnectionHealth.checkedAt"], added: ["Tier1ConnectionHealth.checkedOn"] });

  it("passes when the checked-in surface is the generated one", () => {
    expect(checkVerdict([surface({})], "0.1.0", "0.1.0")).toEqual({ ok: true, problems: [] });
  });

  it("fails on a removal without a major bump, naming each removal by path", () => {
    const verdict = checkVerdict([removal], "0.1.0", "0.2.0");
    expect(verdict.ok).toBe(false);
    expect(verdict.problems).toContain("  autoflow-integrations: Tier1ConnectionHealth.checkedAt removed");
  });

  it("with the major raised, a removal still fails while the report is stale, and passes once updated", () => {
    const stale = checkVerdict([removal], "0.1.0", "1.0.0");
    expect(stale.ok).toBe(false);
    expect(stale.problems.join("\n")).not.toMatch(/checkedAt removed/);
    expect(stale.problems.join("\n")).toMatch(/differs from the generated one \(1 path added, 1 removed\): run npm run api:update/);
  });

  it("fails on an additive change until the report is updated", () => {
    const added = checkVerdict([surface({ upToDate: false, added: ["Tier1ConnectionHealth.region"] })], "0.1.0", "0.1.0");
    expect(added.ok).toBe(false);
    expect(added.problems).toEqual([expect.stringMatching(/1 path added, 0 removed/)]);
    expect(checkVerdict([surface({ upToDate: false, missing: true })], "0.1.0", "0.1.0").problems).toEqual([expect.stringMatching(/is not checked in/)]);
  });

  it("fails when package.json's major is below the accepted one", () => {
    expect(checkVerdict([surface({})], "2.0.0", "1.4.0").problems).toEqual([expect.stringMatching(/is below 2\.0\.0/)]);
  });
});

describe("updateVerdict", () => {
  it("refuses a removal without a major bump and accepts an addition or a removal with one", () => {
    const removal = surface({ upToDate: false, removed: ['Tier1ConnectionHealth.status: "down"'] });
    const refused = updateVerdict([removal], "1.0.0", "1.3.0");
    expect(refused.ok).toBe(false);
    expect(refused.problems).toContain('  autoflow-integrations: Tier1ConnectionHealth.status: "down" removed');
    expect(updateVerdict([removal], "1.0.0", "2.0.0").ok).toBe(true);
    expect(updateVerdict([surface({ upToDate: false, added: ["X"] })], "1.0.0", "1.0.0").ok).toBe(true);
  });
});

describe("report entries", () => {
  it("reads every entry of package.json exports that has declarations, in order", () => {
    const entries = reportEntries({
      name: "autoflow-integrations",
      version: "0.1.0",
      exports: {
        "./sandboxes": { types: "./dist/sandboxes.d.ts", default: "./dist/sandboxes.js" },
        ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
        "./client": { import: { types: "./dist/client.d.mts", default: "./dist/client.mjs" } },
        "./server": "./dist/server/index.js",
        "./package.json": "./package.json",
      },
    });
    expect(entries).toEqual([
      { entry: ".", specifier: "autoflow-integrations", types: "./dist/index.d.ts", reportFile: "autoflow-integrations.api.md" },
      { entry: "./client", specifier: "autoflow-integrations/client", types: "./dist/client.d.mts", reportFile: "autoflow-integrations-client.api.md" },
      { entry: "./sandboxes", specifier: "autoflow-integrations/sandboxes", types: "./dist/sandboxes.d.ts", reportFile: "autoflow-integrations-sandboxes.api.md" },
      { entry: "./server", specifier: "autoflow-integrations/server", types: "./dist/server/index.d.ts", reportFile: "autoflow-integrations-server.api.md" },
    ]);
  });

  it("reads a package without exports by its types field, and refuses subpath patterns", () => {
    expect(reportEntries({ name: "@scope/pkg", version: "1.0.0", types: "./dist/index.d.ts" })).toEqual([
      { entry: ".", specifier: "@scope/pkg", types: "./dist/index.d.ts", reportFile: "pkg.api.md" },
    ]);
    expect(reportEntries({ name: "p", version: "1.0.0", exports: { types: "./a.d.ts", default: "./a.js" } })[0]?.entry).toBe(".");
    expect(() => reportEntries({ name: "p", version: "1.0.0", exports: { "./*": "./dist/*.js" } })).toThrow(/subpath patterns/);
  });

  it("names reports and finds declaration files", () => {
    expect(reportFileFor("autoflow-integrations", "./a/b")).toBe("autoflow-integrations-a-b.api.md");
    expect(typesOf(["./x.cjs"])).toBe("./x.d.cts");
    expect(typesOf({ require: "./x.js", import: { types: "./x.d.mts" } })).toBe("./x.d.mts");
    expect(typesOf(null)).toBeUndefined();
  });
});
