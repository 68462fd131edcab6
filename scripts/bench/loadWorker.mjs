// Load from a process of its own (so the service's process does only the serving): one autocannon
// run described by argv[2] as JSON, its figures printed as one JSON line.
import process from "node:process";
import autocannon from "autocannon";

const { url, method = "GET", headers = {}, body, connections = 10, duration = 3 } = JSON.parse(process.argv[2] ?? "{}");
const run = await autocannon({ url, method, headers, ...(body === undefined ? {} : { body }), connections, duration });
process.stdout.write(`${JSON.stringify({ rps: run.requests.average, p99: run.latency.p99, non2xx: run.non2xx, errors: run.errors, timeouts: run.timeouts })}\n`);
