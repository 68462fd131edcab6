/**
 * The eight sandboxes in a process of their own, for a bench whose figure
 * must not include the sandboxes' own work: started on free ports, in memory,
 * what `createIntegrations` needs printed as one JSON line; closed when stdin
 * ends (the bench exits or closes it) or on SIGTERM.
 */
import { startSandboxes } from "../../src/sandboxes.js";

const local = await startSandboxes({ publicUrl: "http://localhost:3000" });
process.stdout.write(`${JSON.stringify({ settings: local.settings, baseUrlAllowlist: local.baseUrlAllowlist, urls: Object.fromEntries(Object.entries(local.sandboxes).map(([id, s]) => [id, s.url])) })}\n`);
let closing = false;
const close = async (): Promise<void> => {
  if (closing) return;
  closing = true;
  await local.close();
  process.exit(0);
};
process.stdin.on("end", () => void close());
process.stdin.resume();
process.on("SIGTERM", () => void close());
