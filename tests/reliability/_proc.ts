/**
 * What the suite reads from /proc: which processes belong to a scenario, a process's memory, open
 * fds and zombie children, and a sampler that remembers when each attempt's processes were last
 * seen alive (the second half of the overlap check).
 *
 * @module
 */

import { allPids as listPids, procStat as readStat } from "../helpers/proc.ts";

export { listPids, readStat };
export type { ProcStat } from "../helpers/proc.ts";

function readNul(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\0");
  } catch {
    return [];
  }
}

export interface ProcInfo {
  pid: number;
  cmd: string;
  state: string;
}

/** Live (non-zombie) processes other than this one whose command line or environment has `text`. */
export function processesReferencing(text: string): ProcInfo[] {
  const found: ProcInfo[] = [];
  for (const pid of listPids()) {
    if (pid === Deno.pid) continue;
    const stat = readStat(pid);
    if (stat === null || stat.state === "Z" || stat.state === "X") continue;
    const cmdline = readNul(`/proc/${pid}/cmdline`);
    const hit = cmdline.some((a) => a.includes(text)) ||
      readNul(`/proc/${pid}/environ`).some((v) => v.includes(text));
    if (hit) found.push({ pid, cmd: cmdline.join(" ").slice(0, 200), state: stat.state });
  }
  return found;
}

/** The QUEUECTL_* marker of a job process, if it has one. */
export function jobMarker(pid: number): { db: string; id: string; attempt: number } | null {
  let db: string | undefined, id: string | undefined, attempt: string | undefined;
  for (const v of readNul(`/proc/${pid}/environ`)) {
    if (v.startsWith("QUEUECTL_DB=")) db = v.slice(12);
    else if (v.startsWith("QUEUECTL_JOB_ID=")) id = v.slice(16);
    else if (v.startsWith("QUEUECTL_ATTEMPT=")) attempt = v.slice(17);
  }
  if (db === undefined || id === undefined || attempt === undefined) return null;
  return { db, id, attempt: Number(attempt) };
}

/** Live processes of jobs of database `db` (optionally of one job). */
export function jobProcesses(db: string, id?: string): { pid: number; attempt: number }[] {
  const found: { pid: number; attempt: number }[] = [];
  for (const pid of listPids()) {
    const stat = readStat(pid);
    if (stat === null || stat.state === "Z" || stat.state === "X") continue;
    const marker = jobMarker(pid);
    if (marker && marker.db === db && (id === undefined || marker.id === id)) {
      found.push({ pid, attempt: marker.attempt });
    }
  }
  return found;
}

/** Resident memory in KiB. */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) : 0;
}

export function fdCount(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/** Children of `pid` that are zombies (exited, not reaped). */
export function zombieChildren(pid: number): number[] {
  return listPids().filter((child) => {
    const stat = readStat(child);
    return stat !== null && stat.ppid === pid && stat.state === "Z";
  });
}

/**
 * Samples /proc every `intervalMs` and remembers, for each attempt of each job of one database,
 * the last time a process of it was seen alive (taken before the read, so it never overstates).
 */
export class AttemptSampler {
  readonly db: string;
  /** `id\0attempt` → Date.now() of the last sighting. */
  readonly lastSeen = new Map<string, number>();
  samples = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  /** pid:startTime → marker key or "" for processes that are not ours. */
  #known = new Map<string, string>();

  constructor(db: string, readonly intervalMs = 100) {
    this.db = db;
  }

  start(): this {
    const loop = () => {
      if (this.#stopped) return;
      this.sample();
      this.#timer = setTimeout(loop, this.intervalMs);
    };
    loop();
    return this;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  sample(): void {
    this.samples++;
    const seen = new Map<string, string>();
    for (const pid of listPids()) {
      const before = Date.now();
      const stat = readStat(pid);
      if (stat === null || stat.state === "Z" || stat.state === "X") continue;
      const identity = `${pid}:${stat.startTime}`;
      let key = this.#known.get(identity);
      if (key === undefined) {
        const marker = jobMarker(pid);
        key = marker && marker.db === this.db ? `${marker.id}\0${marker.attempt}` : "";
      }
      seen.set(identity, key);
      if (key !== "") this.lastSeen.set(key, before);
    }
    this.#known = seen;
  }
}
