/**
 * What makes two figures comparable: measured in the same run, interleaved
 * (round by round, so a busy moment of the machine hits each alike), after a
 * warm-up, the median of the rounds kept; load from a separate process.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
/** A full collection now (memory figures are read after one, so they hold what is kept, not garbage). */
export const collectGarbage = runInNewContext("gc") as () => void;

export const ROUNDS = 3;

export const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

/** Runs each case once per round, in the same order every round, after one warm-up pass; the medians by case, and every round's result (`results`, the warm-up left out). */
export async function interleaved<K extends string, R>(
  cases: Record<K, () => Promise<R>>,
  pick: (r: R) => number,
  options: { rounds?: number; warmUp?: boolean; /** After the warm-up (round 0) and each round. */ afterRound?: (round: number) => void } = {},
): Promise<Record<K, { median: number; runs: number[]; last: R; results: R[] }>> {
  const names = Object.keys(cases) as K[];
  if (options.warmUp ?? true) for (const name of names) await cases[name]();
  options.afterRound?.(0);
  const runs = Object.fromEntries(names.map((n) => [n, [] as R[]])) as unknown as Record<K, R[]>;
  for (let round = 0; round < (options.rounds ?? ROUNDS); round++) {
    for (const name of names) runs[name].push(await cases[name]());
    options.afterRound?.(round + 1);
  }
  return Object.fromEntries(names.map((n) => [n, { median: median(runs[n].map(pick)), runs: runs[n].map(pick), last: runs[n][runs[n].length - 1] as R, results: runs[n] }])) as Record<
    K,
    { median: number; runs: number[]; last: R; results: R[] }
  >;
}

export type Load = { rps: number; p99: number; non2xx: number; errors: number; timeouts: number };

const WORKER = fileURLToPath(new URL("./loadWorker.mjs", import.meta.url));

/** One autocannon run from a child process. */
export function load(spec: { url: string; method?: string; headers?: Record<string, string>; body?: string; connections?: number; duration?: number }): Promise<Load> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [WORKER, JSON.stringify(spec)], { maxBuffer: 1024 * 1024 }, (error, stdout) => {
      if (error) return reject(error);
      resolve(JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Load);
    });
  });
}

/** A figure of the table: the value, the baseline it is read against, and the target on the ratio. */
export type Figure = { section: string; name: string; value: number; unit: string; baseline?: { name: string; value: number }; ratio?: number; target?: string; met?: boolean; note?: string };

export function figure(f: Omit<Figure, "ratio" | "met"> & { better?: "lower" | "higher"; limit?: number }): Figure {
  const { better, limit, ...rest } = f;
  const ratio = f.baseline ? Number((f.value / f.baseline.value).toFixed(3)) : undefined;
  const met = ratio === undefined || limit === undefined ? undefined : better === "higher" ? ratio >= limit : ratio <= limit;
  return { ...rest, ...(ratio === undefined ? {} : { ratio }), ...(met === undefined ? {} : { met }) };
}
