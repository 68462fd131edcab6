/**
 * Who holds a lease, as the store records it: this process as `host/pid namespace/pid/`, so that a lease
 * left by a process of this machine that is gone (killed mid-run) can be taken over at once instead of
 * waiting for it to lapse. A holder on another host, or one still running, is waited for.
 */
import { readlinkSync } from "node:fs";
import { hostname } from "node:os";

/**
 * This process as a lease holder's prefix: `host/pid namespace/pid/` (a pid names a process only within its
 * namespace: containers on one host share its name), `-` for the namespace where there are none (macOS,
 * Windows); no prefix on a Linux whose namespace cannot be read.
 */
export const processTag = ((): string => {
  try {
    return `${hostname()}/${process.platform === "linux" ? readlinkSync("/proc/self/ns/pid") : "-"}/${process.pid}/`;
  } catch {
    return "";
  }
})();

/** Whether a lease holder is a process of this host and pid namespace that no longer runs (never this one). */
export function isGoneProcess(holder: string): boolean {
  const [host, namespace, pid] = holder.split("/");
  const [ownHost, ownNamespace] = processTag.split("/");
  if (processTag === "" || host !== ownHost || namespace !== ownNamespace || !pid || !/^\d+$/.test(pid) || Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}
