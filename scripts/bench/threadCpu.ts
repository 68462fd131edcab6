/**
 * CPU time a process has spent: on all its threads (`process.cpuUsage()`,
 * which counts V8's GC helpers and libuv's pool too), and on its main thread
 * alone (the JavaScript thread), read from Linux's /proc/self/task/<pid>/stat
 * (utime and stime, in USER_HZ = 100 ticks a second, so to 10 ms). Node 20
 * has no call for the main thread's (process.threadCpuUsage is 23's); where
 * there is no such file it is NaN. The bench reads its own and asks the
 * sandbox host for the host's, the same reading.
 */
import { readFileSync } from "node:fs";

/** Ticks a second in /proc's times: USER_HZ, 100 on every Linux ABI Node runs on. */
const USER_HZ = 100;

/** µs of CPU so far: `all` threads', and the `main` thread's (NaN where it cannot be read). */
export type CpuReading = { all: number; main: number };

export function readCpu(): CpuReading {
  const { user, system } = process.cpuUsage();
  return { all: user + system, main: mainThreadCpuMicros() };
}

function mainThreadCpuMicros(): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
  } catch {
    return Number.NaN;
  }
  // The command name, in parentheses, may hold spaces: fields are counted after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of proc(5), the 12th and 13th after the name.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected /proc/self/task/${process.pid}/stat: ${stat.slice(0, 120)}`);
  return ((utime + stime) * 1_000_000) / USER_HZ;
}
