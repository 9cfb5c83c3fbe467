/**
 * Facts about processes on this host, from /proc: whether a pid is still the process we knew
 * (pids are reused, so the start time is compared too), and finding and killing what is left of
 * a job's attempt.
 *
 * @module
 */

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  startTime: number;
}

function readStat(pid: number): ProcStat | null {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    state: fields[0]!,
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    startTime: Number(fields[19]),
  };
}

/** Whether this host has /proc (Linux). */
export function hasProc(): boolean {
  try {
    Deno.statSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or null. */
export function processStartTime(pid: number): number | null {
  return readStat(pid)?.startTime ?? null;
}

/** The parent of this process, from /proc (Deno has no API for it). */
export function parentPid(): number | null {
  return readStat(Deno.pid)?.ppid ?? null;
}

/** The parent of `pid`, from /proc; null when it is gone (or there is no /proc). */
export function parentOf(pid: number): number | null {
  return readStat(pid)?.ppid ?? null;
}

/** What this host says of a process: running (or sleeping), stopped (SIGSTOP, a tracer) or gone. */
export type ProcessStatus = "running" | "stopped" | "gone";

/**
 * The status of `pid`, which must be the process that started at `startTime` when that is known
 * (a reused pid is gone). A zombie is gone. Without /proc, a pid is assumed running: leases
 * still apply.
 */
export function processStatus(pid: number, startTime: number | null): ProcessStatus {
  const stat = readStat(pid);
  if (stat === null) return hasProc() ? "gone" : "running";
  if (stat.state === "Z" || stat.state === "X") return "gone";
  if (startTime !== null && stat.startTime !== startTime) return "gone";
  return stat.state === "T" || stat.state === "t" ? "stopped" : "running";
}

function listPids(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  }
  return pids;
}

/**
 * The environment variables that mark every process of one attempt: the queue's own id (never
 * its location, which may be a URL with a password), the job and the attempt.
 */
export function attemptMarker(queueId: string, jobId: string, attempt: number): string[] {
  return [
    `QUEUECTL_QUEUE_ID=${queueId}`,
    `QUEUECTL_JOB_ID=${jobId}`,
    `QUEUECTL_ATTEMPT=${attempt}`,
  ];
}

function hasMarker(pid: number, marker: readonly string[]): boolean {
  let environ: string;
  try {
    environ = Deno.readTextFileSync(`/proc/${pid}/environ`);
  } catch {
    return false;
  }
  const vars = environ.split("\0");
  return marker.every((m) => vars.includes(m));
}

export interface AttemptProcesses {
  /** Queue id, job id and attempt number: the environment every job process inherits. */
  marker: string[];
  /** The job's process group leader as recorded by its worker, if it was. */
  pid: number | null;
  pidStart: number | null;
}

/**
 * Process groups that still belong to an attempt: the recorded leader's group (if the leader is
 * the same process, or any live member carries the marker), and the group of every process whose
 * environment carries the attempt's marker (which also finds a job spawned just before its worker
 * died, before the worker could record the pid).
 */
export function attemptGroups(target: AttemptProcesses): number[] {
  if (!hasProc()) return [];
  // The recorded group is the attempt's only while its leader is the recorded process or gone:
  // a live process with the leader's pid and another start time is a reuse, and Linux reuses no
  // pid while a group of that id exists, so the attempt's group is gone and this one is not ours.
  const leader = target.pid === null ? null : readStat(target.pid);
  const recorded = target.pid !== null && target.pidStart !== null &&
      (leader === null || leader.startTime === target.pidStart)
    ? { pgid: target.pid, since: target.pidStart }
    : null;
  const groups = new Set<number>();
  for (const pid of listPids()) {
    if (pid === Deno.pid) continue;
    const stat = readStat(pid);
    if (stat === null || stat.state === "Z") continue;
    // A group keeps its id while any member lives, so a process in the recorded leader's group
    // that started after the leader belongs to the attempt even if it reset its environment.
    const inRecordedGroup = recorded !== null && stat.pgrp === recorded.pgid &&
      stat.startTime >= recorded.since;
    if (inRecordedGroup || hasMarker(pid, target.marker)) groups.add(stat.pgrp);
  }
  groups.delete(0);
  const own = readStat(Deno.pid)?.pgrp;
  if (own !== undefined) groups.delete(own);
  return [...groups];
}

/** Sends SIGKILL to every group of the attempt; ignores groups that are already gone. */
export function killGroups(groups: readonly number[]): void {
  for (const pgid of groups) {
    try {
      Deno.kill(-pgid, "SIGKILL");
    } catch { /* gone already */ }
  }
}

/**
 * Kills what is left of an attempt and waits until nothing of it runs. Returns false if processes
 * survived `timeoutMs` (uninterruptible sleep): the caller must not run the job again yet.
 */
export async function killAttempt(target: AttemptProcesses, timeoutMs = 5000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const groups = attemptGroups(target);
    if (groups.length === 0) return true;
    killGroups(groups);
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Processes of one queue's attempts found on this host, by attempt. */
export interface MarkedAttempt {
  jobId: string;
  attempt: number;
  /** The process groups its live processes are in. */
  groups: number[];
}

/**
 * Every attempt of queue `queueId` that has a live process on this host (by the marker in its
 * environment; `attemptMarker`), with the process groups to kill. One pass over /proc.
 */
export function markedAttempts(queueId: string): MarkedAttempt[] {
  if (!hasProc()) return [];
  const queueVar = `QUEUECTL_QUEUE_ID=${queueId}`;
  const own = readStat(Deno.pid)?.pgrp;
  const found = new Map<string, MarkedAttempt>();
  for (const pid of listPids()) {
    if (pid === Deno.pid) continue;
    let environ: string;
    try {
      environ = Deno.readTextFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    if (!environ.includes(queueVar)) continue;
    const vars = environ.split("\0");
    if (!vars.includes(queueVar)) continue;
    const jobId = vars.find((v) => v.startsWith("QUEUECTL_JOB_ID="))?.slice(16);
    const attempt = Number(vars.find((v) => v.startsWith("QUEUECTL_ATTEMPT="))?.slice(17));
    const stat = readStat(pid);
    if (jobId === undefined || !Number.isInteger(attempt) || stat === null) continue;
    if (stat.state === "Z" || stat.pgrp === 0 || stat.pgrp === own) continue;
    const key = `${jobId}\0${attempt}`;
    const entry = found.get(key) ?? { jobId, attempt, groups: [] };
    if (!entry.groups.includes(stat.pgrp)) entry.groups.push(stat.pgrp);
    found.set(key, entry);
  }
  return [...found.values()];
}
