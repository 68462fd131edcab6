/** The benchmark's table, on the terminal and in docs/benchmarks.md. */
import { cpus, totalmem } from "node:os";
import type { Figure } from "./compare.js";

export function machine(): { node: string; cpu: string; cores: number; memoryGiB: number; platform: string } {
  const list = cpus();
  return { node: process.version, cpu: list[0]?.model ?? "unknown", cores: list.length, memoryGiB: Math.round(totalmem() / 2 ** 30), platform: `${process.platform} ${process.arch}` };
}

const cell = (f: Figure): string[] => [
  f.section,
  f.name,
  `${f.value.toLocaleString("en")} ${f.unit}`,
  f.baseline ? `${f.baseline.name}: ${f.baseline.value.toLocaleString("en")} ${f.unit}` : "",
  f.ratio !== undefined ? `${f.ratio.toFixed(2)}x` : "",
  f.target ?? "",
  f.met === undefined ? "" : f.met ? "met" : "not met",
  f.note ?? "",
];

const HEAD = ["section", "what", "this", "baseline (same run)", "ratio", "target", "", "note"];

export function renderTable(figures: readonly Figure[]): string {
  const rows = [HEAD, ...figures.map(cell)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return `${rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd()).join("\n")}\n`;
}

export function renderDoc(results: { date: string; machine: ReturnType<typeof machine>; sections: readonly string[]; figures: readonly Figure[]; values: Record<string, number> }): string {
  const m = results.machine;
  const lines = [
    "# Benchmarks",
    "",
    "<!-- Written by `npm run bench` (scripts/bench.ts); bench/results.json holds the same figures. -->",
    "",
    `Latest run: ${results.date}, sections ${results.sections.join(", ")}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, Node.js ${m.node}.`,
    "",
    "Each figure is read against its baseline measured in the same run: the cases run interleaved, round by round, after a warm-up,",
    "and the median of the rounds is kept. HTTP load comes from a separate process (autocannon), the service at its default log level.",
    "Reproduce with `npm ci && npm run bench` (or `npm run bench -- sdk http` for some sections).",
    "",
    `| ${HEAD.map((h) => h || "met").join(" | ")} |`,
    `| ${HEAD.map(() => "---").join(" | ")} |`,
    ...results.figures.map((f) => `| ${cell(f).map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`),
    "",
  ];
  if (Object.keys(results.values).length > 0) {
    lines.push("Other figures of the run (absolute):", "", "| figure | value |", "| --- | --- |");
    for (const [name, value] of Object.entries(results.values)) lines.push(`| ${name} | ${value.toLocaleString("en")} |`);
    lines.push("");
  }
  return lines.join("\n");
}
