/**
 * Facts about processes on this host, from /proc: whether a pid is still the process we knew
 * (pids are reused, so the start time is compared too).
 *
 * @module
 */

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or null. */
export function processStartTime(pid: number): number | null {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : null;
}

/**
 * Whether `pid` is alive and, when `startTime` is known, is the same process (not a reuse).
 * A zombie counts as dead. Returns true when /proc is unavailable and the pid exists.
 */
export function processAlive(pid: number, startTime: number | null): boolean {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (error) {
    // No /proc entry: gone. Another failure (no /proc at all): assume alive, leases still apply.
    return !(error instanceof Deno.errors.NotFound);
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return false;
  return startTime === null || Number(fields[19]) === startTime;
}
