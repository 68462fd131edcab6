/**
 * The compatibility rule of the v1 freeze (docs/integrations/MIGRATIONS.md):
 * a path of the accepted surface that the generated surface lacks (a removed
 * or renamed export, field or enum value) is allowed only when package.json's
 * major version is above the version the accepted surface was accepted at;
 * anything added is allowed once the checked-in surface is updated.
 */

/** A checked-in surface compared with the one generated from the sources. */
export type SurfaceComparison = {
  /** What the surface is: a package entry's specifier (`autoflow-integrations/sandboxes`) or `OpenAPI`. */
  name: string;
  /** The checked-in file, relative to the repository. */
  file: string;
  /** The checked-in file's contents equal the generated ones. */
  upToDate: boolean;
  /** The file is not checked in yet (a new entry): nothing of it was accepted. */
  missing: boolean;
  /** Accepted paths the generated surface lacks, sorted. */
  removed: string[];
  /** Generated paths the accepted surface lacks, sorted. */
  added: string[];
};

/** Paths of `accepted` missing from `generated`, sorted. */
export function removedPaths(accepted: Iterable<string>, generated: Iterable<string>): string[] {
  const now = new Set(generated);
  return [...new Set(accepted)].filter((path) => !now.has(path)).sort();
}

/** The first number of a semver version (`2.0.0-rc.1` → 2); throws on anything else. */
export function majorOf(version: string): number {
  const match = /^v?(\d+)\.\d+\.\d+(?:[-+].*)?$/.exec(version.trim());
  if (!match?.[1]) throw new Error(`not a semver version: ${JSON.stringify(version)}`);
  return Number(match[1]);
}

/** package.json's major version is above the accepted one's. */
export function majorRaised(acceptedVersion: string, currentVersion: string): boolean {
  return majorOf(currentVersion) > majorOf(acceptedVersion);
}

export type Verdict = { ok: boolean; problems: string[] };

/** Where a path continues into a deeper one: `.field`, `(#0)`, `()`, `[]`, `<0>`, `: "value"`, ` = "value"`. */
const CHILD_START = /^(?:[.([<:]| =)/;

/** Removed paths with the ones under another removed path folded into it: `CONNECTORS.slack.startSandbox` stands for its parameters. */
export function collapseRemovals(paths: readonly string[]): { path: string; under: number }[] {
  const sorted = [...new Set(paths)].sort();
  const removed = new Set(sorted);
  const top: { path: string; under: number }[] = [];
  const index = new Map<string, { path: string; under: number }>();
  for (const path of sorted) {
    let parent: string | undefined;
    for (let i = 1; i < path.length && parent === undefined; i += 1) {
      if (CHILD_START.test(path.slice(i)) && removed.has(path.slice(0, i)) && index.has(path.slice(0, i))) parent = path.slice(0, i);
    }
    const entry = parent === undefined ? undefined : index.get(parent);
    if (entry) {
      entry.under += 1;
      index.set(path, entry);
    } else {
      const own = { path, under: 0 };
      top.push(own);
      index.set(path, own);
    }
  }
  return top;
}

/**
 * One line per removal: `autoflow-integrations: Tier1ConnectionHealth.checkedAt removed`; with `all` false, a
 * removal under another removed path is counted on that one's line instead.
 */
export function removalLines(surfaces: readonly SurfaceComparison[], all = true): string[] {
  return surfaces.flatMap((s) =>
    all
      ? s.removed.map((path) => `${s.name}: ${path} removed`)
      : collapseRemovals(s.removed).map(({ path, under }) => `${s.name}: ${path} removed${under > 0 ? ` (and ${under} path${under === 1 ? "" : "s"} under it)` : ""}`),
  );
}

function versionProblems(acceptedVersion: string, currentVersion: string): string[] {
  if (majorOf(currentVersion) < majorOf(acceptedVersion)) {
    return [`package.json's version ${currentVersion} is below ${acceptedVersion}, the version the checked-in surface was accepted at`];
  }
  return [];
}

function removalProblem(surfaces: readonly SurfaceComparison[], acceptedVersion: string, currentVersion: string, all: boolean): string[] {
  const count = surfaces.reduce((n, s) => n + s.removed.length, 0);
  if (count === 0 || majorRaised(acceptedVersion, currentVersion)) return [];
  return [
    `${count} path${count === 1 ? "" : "s"} removed from the surface accepted at ${acceptedVersion}, and package.json's major version (${currentVersion}) was not raised:`,
    ...removalLines(surfaces, all).map((line) => `  ${line}`),
    `A removal or rename breaks v1: keep the old name beside the new one, or raise the major version and write the migration notes (docs/integrations/MIGRATIONS.md).`,
  ];
}

/**
 * `api:check`: the checked-in surfaces equal the generated ones, and nothing was removed unless the major version was
 * raised. `all`: list every removed path, not only the topmost of each removed subtree.
 */
export function checkVerdict(surfaces: readonly SurfaceComparison[], acceptedVersion: string, currentVersion: string, all = false): Verdict {
  const problems = [...versionProblems(acceptedVersion, currentVersion), ...removalProblem(surfaces, acceptedVersion, currentVersion, all)];
  for (const s of surfaces) {
    if (s.upToDate) continue;
    const counts = `${s.added.length} path${s.added.length === 1 ? "" : "s"} added, ${s.removed.length} removed`;
    problems.push(
      s.missing
        ? `${s.name}: ${s.file} is not checked in: run npm run api:update and commit it`
        : `${s.name}: ${s.file} differs from the generated one (${counts}): run npm run api:update and commit it`,
    );
  }
  return { ok: problems.length === 0, problems };
}

/** `api:update`: refuses removals without a major version bump (and a version below the accepted one). */
export function updateVerdict(surfaces: readonly SurfaceComparison[], acceptedVersion: string, currentVersion: string, all = false): Verdict {
  const problems = [...versionProblems(acceptedVersion, currentVersion), ...removalProblem(surfaces, acceptedVersion, currentVersion, all)];
  return { ok: problems.length === 0, problems };
}
