/**
 * CPU time of this process's main thread alone (the JavaScript thread),
 * where `process.cpuUsage()` counts every thread (V8's GC helpers, libuv's
 * pool). Read from Linux's /proc/self/task/<pid>/stat (utime and stime, in
 * USER_HZ = 100 ticks a second, so to 10 ms); undefined where there is no
 * such file. Node 20 has no call for it (process.threadCpuUsage is 23's).
 */
import { readFileSync } from "node:fs";

/** Ticks a second in /proc's times: USER_HZ, 100 on every Linux ABI Node runs on. */
const USER_HZ = 100;

export function mainThreadCpuMicros(): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name, in parentheses, may hold spaces: fields are counted after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of proc(5), the 12th and 13th after the name.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected /proc/self/task/${process.pid}/stat: ${stat.slice(0, 120)}`);
  return ((utime + stime) * 1_000_000) / USER_HZ;
}
