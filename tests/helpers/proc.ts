/**
 * Reading /proc (Linux): a process's stat fields, its group, children, fds and memory, which
 * processes belong to a test (its temp directory is in their command line or environment), the
 * QUEUECTL_* marker of job processes, and a sampler that remembers when each attempt's processes
 * were last seen alive (the second half of the ledger's overlap check).
 *
 * @module
 */

import { poll, PROMPT_MS } from "./poll.ts";

export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Clock ticks after boot: with the pid, names one process even after the pid is reused. */
  startTime: number;
}

/** Parses a /proc/PID/stat line (as the file holds it, or as a job printed it). */
export function parseStat(text: string): ProcStat {
  // comm (field 2) is parenthesised and may hold spaces: split after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return {
    pid: Number(text.slice(0, text.indexOf(" "))),
    state: fields[0]!,
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    session: Number(fields[3]),
    startTime: Number(fields[19]),
  };
}

export function procStat(pid: number | "self"): ProcStat | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  return parseStat(text);
}

export function allPids(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  }
  return pids;
}

/**
 * The process exists and has not exited (a zombie has, whoever is yet to reap it; this host's
 * init does not reap orphans, so zombies linger).
 */
export function isRunning(pid: number): boolean {
  const state = procStat(pid)?.state;
  return state !== undefined && state !== "Z" && state !== "X";
}

/** Live members of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  return allPids().filter((pid) => {
    const stat = procStat(pid);
    return stat !== null && stat.pgrp === pgid && stat.state !== "Z";
  });
}

/** The command name of `pid` (/proc/PID/comm), or null when it is gone. */
export function commOf(pid: number): string | null {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return null;
  }
}

/**
 * Waits until process group `pgid` holds a process named `comm` (the job's `sleep`), and
 * returns the group's live members then.
 */
export function waitForGroup(pgid: number, comm = "sleep"): Promise<number[]> {
  return poll(
    () => {
      const members = groupMembers(pgid);
      return members.some((pid) => commOf(pid) === comm) && members;
    },
    PROMPT_MS,
    `a ${comm} in process group ${pgid}`,
  );
}

/** Children of `pid`, with their state. */
export function childrenOf(pid: number): ProcStat[] {
  const out: ProcStat[] = [];
  for (const p of allPids()) {
    const stat = procStat(p);
    if (stat !== null && stat.ppid === pid) out.push(stat);
  }
  return out;
}

/** Children of `pid` that are zombies (exited, not reaped). */
export function zombieChildren(pid: number): number[] {
  return childrenOf(pid).filter((child) => child.state === "Z").map((child) => child.pid);
}

/** Open fds of `pid` (or of this process). */
export function fdCount(pid: number | "self"): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/** Resident set size of `pid` in bytes, or null when it is gone. */
export function rssBytes(pid: number | "self"): number | null {
  try {
    const match = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)\s+kB/m);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

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
  for (const pid of allPids()) {
    if (pid === Deno.pid) continue;
    const stat = procStat(pid);
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
  for (const pid of allPids()) {
    const stat = procStat(pid);
    if (stat === null || stat.state === "Z" || stat.state === "X") continue;
    const marker = jobMarker(pid);
    if (marker && marker.db === db && (id === undefined || marker.id === id)) {
      found.push({ pid, attempt: marker.attempt });
    }
  }
  return found;
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
    for (const pid of allPids()) {
      const before = Date.now();
      const stat = procStat(pid);
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

/** Reads the pids a job wrote, one per line, once `count` of them are there. */
export function pidsWritten(path: string, count: number): Promise<number[]> {
  return poll(
    () => {
      let text: string;
      try {
        text = Deno.readTextFileSync(path);
      } catch {
        return false;
      }
      const pids = text.split("\n").filter((l) => l !== "").map(Number);
      return pids.length >= count ? pids : false;
    },
    PROMPT_MS,
    `${count} pid(s) in ${path}`,
  );
}
