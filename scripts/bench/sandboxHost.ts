/**
 * The eight sandboxes in a process of their own, for a bench whose figure
 * must not include the sandboxes' own work: started on free ports, in memory,
 * what `createIntegrations` needs printed as one JSON line; closed when stdin
 * ends (the bench exits or closes it) or on SIGTERM. Each line `cpu` on stdin
 * is answered on stdout with a JSON line `{"all": n, "main": m}`, this
 * process's CPU reading (threadCpu.ts; m is null where it cannot be read), so
 * the bench can tell what the sandboxes' answers cost beside what its own
 * client spent.
 */
import { createInterface } from "node:readline";
import { startSandboxes } from "../../src/sandboxes.js";
import { readCpu } from "./threadCpu.js";

const local = await startSandboxes({ publicUrl: "http://localhost:3000" });
process.stdout.write(`${JSON.stringify({ settings: local.settings, baseUrlAllowlist: local.baseUrlAllowlist, urls: Object.fromEntries(Object.entries(local.sandboxes).map(([id, s]) => [id, s.url])) })}\n`);
let closing = false;
const close = async (): Promise<void> => {
  if (closing) return;
  closing = true;
  await local.close();
  process.exit(0);
};
const asked = createInterface({ input: process.stdin });
asked.on("line", (line) => {
  if (line.trim() !== "cpu") return void process.stderr.write(`sandbox host: unknown question ${JSON.stringify(line)} (it answers "cpu")\n`);
  // JSON writes a NaN as null.
  process.stdout.write(`${JSON.stringify(readCpu())}\n`);
});
asked.on("close", () => void close());
process.on("SIGTERM", () => void close());
