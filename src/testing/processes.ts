import { randomBytes } from "node:crypto";
/**
 * Service processes for end-to-end tests: free ports, starting
 * `src/cli.ts serve` (or any command) in a process group of its own, and
 * stopping it, so that no process outlives the test file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** A port free on loopback just now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive ports free on loopback (the sandboxes'
 * AUTOFLOW_SANDBOX_BASE_PORT), below Linux's ephemeral range so that other
 * test files' free ports do not land in it.
 */
export async function freePortBlock(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    let free = true;
    for (let port = base; port < base + count && free; port++) free = await isFree(port);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

export type Instance = { child: ChildProcess; base: string; output: () => string };

/**
 * The environment of a `serve` process on SQLite in `dataDir`, sandbox mode, listening on `port`: its own
 * secrets, a free block of sandbox ports, jobs off, quiet logs. A process started again with the same
 * environment meets the same data and the same sandbox ports.
 */
export async function sqliteServeEnv(dataDir: string, port: number, jwtSecret: string): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AUTOFLOW_DATA_DIR: dataDir,
    AUTOFLOW_JWT_SECRET: jwtSecret,
    AUTOFLOW_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    AUTOFLOW_PUBLIC_URL: `http://localhost:${port}`,
    AUTOFLOW_SANDBOX_BASE_PORT: String(await freePortBlock(8)),
    AUTOFLOW_LOG_LEVEL: "warn",
    AUTOFLOW_JOBS: "off",
  };
  delete env.DATABASE_URL;
  return env;
}

/** Every process started, so that none outlives the file even if its start-up failed halfway. */
const children: ChildProcess[] = [];

/** Starts `serve` (or `args`) on `port` and waits until /readyz answers. */
export async function startInstance(env: NodeJS.ProcessEnv, port: number, args: string[] = ["--import", "tsx", "src/cli.ts", "serve"]): Promise<Instance> {
  let output = "";
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  children.push(child);
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`instance exited ${child.exitCode}:\n${output}`);
    if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error(`instance did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, base, output: () => output };
}

/** Stops an instance with `signal` (SIGTERM: a graceful stop; SIGKILL: a crash) and waits for it to exit. */
export async function stopInstance(instance: Instance | undefined, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (!instance || instance.child.exitCode !== null || instance.child.signalCode !== null) return;
  const exited = new Promise((resolve) => instance.child.once("exit", resolve));
  process.kill(-(instance.child.pid as number), signal);
  await exited;
}

/** Kills whatever `startInstance` started that is still running. */
export function killStartedInstances(): void {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) continue;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}
