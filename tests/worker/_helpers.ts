/**
 * Harness of the worker end-to-end tests: a sandbox per test (temp dir, database, ledger) that
 * runs `deno run -A main.ts --db …` as real processes, polls conditions with bounded timeouts,
 * checks the ledger like Jepsen's queue checker, and leaves no process behind.
 *
 * Self-contained on purpose (only Deno built-ins and node:assert/strict), so it does not clash
 * with the core CLI helpers that live under tests/helpers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { SQLInputValue, SQLOutputValue } from "node:sqlite";
import { allPids, procStat } from "../helpers/proc.ts";
import type { ProcStat } from "../helpers/proc.ts";

/** The repository root (no trailing slash). */
export const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const MAIN = `${REPO}/main.ts`;
/** `QUEUECTL_SKIP_SLOW=1` skips the gigabyte test. */
export const SKIP_SLOW = Deno.env.get("QUEUECTL_SKIP_SLOW") === "1";
/** Bound for things that take milliseconds, generous for a loaded 2-core machine. */
export const PROMPT_MS = 10_000;

const decoder = new TextDecoder();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` until it returns something other than undefined/false, and returns that; fails
 * after `timeoutMs` saying what was awaited (and the last value seen, when `describe` is given).
 */
export async function poll<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
  describe?: () => string,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) {
      assert.fail(
        `Timed out after ${timeoutMs} ms waiting for ${what}${describe ? `: ${describe()}` : ""}`,
      );
    }
    await sleep(20);
  }
}

/** Resolves with the promise's value, or fails after `timeoutMs` saying what was awaited. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new assert.AssertionError({ message: `Timed out after ${timeoutMs} ms: ${what}` })),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// /proc

export { allPids, procStat };
export type { ProcStat };

/** Alive and not a zombie (this host's init does not reap orphans, so zombies linger). */
export function isAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat.state !== "Z" && stat.state !== "X";
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

export function fdCount(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** Resident set size of `pid` in bytes, or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const match = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)\s+kB/m);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function readProc(pid: number, file: string): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/${file}`);
  } catch {
    return "";
  }
}

/** Live processes (other than this one) whose command line or environment mentions `needle`. */
export function processesMentioning(needle: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const pid of allPids()) {
    if (pid === Deno.pid || !isAlive(pid)) continue;
    const cmdline = readProc(pid, "cmdline");
    if (cmdline.includes(needle) || readProc(pid, "environ").includes(needle)) {
      found.push({ pid, cmdline: cmdline.replaceAll("\0", " ").trim() });
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface Finished {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** A child process whose stdout and stderr are collected as they come. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  readonly args: readonly string[];
  /** Resolves once the process exited and both streams are read to the end. */
  readonly done: Promise<Finished>;
  #stdout = "";
  #stderr = "";
  #exited = false;

  constructor(child: Deno.ChildProcess, args: readonly string[]) {
    this.child = child;
    this.pid = child.pid;
    this.args = args;
    const collect = async (stream: ReadableStream<Uint8Array>, into: "out" | "err") => {
      for await (const chunk of stream) {
        const text = decoder.decode(chunk, { stream: true });
        if (into === "out") this.#stdout += text;
        else this.#stderr += text;
      }
    };
    this.done = Promise.all([
      child.status,
      collect(child.stdout, "out"),
      collect(child.stderr, "err"),
    ]).then(([status]) => {
      this.#exited = true;
      return {
        code: status.code,
        signal: status.signal,
        stdout: this.#stdout,
        stderr: this.#stderr,
      };
    });
  }

  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }
  get exited(): boolean {
    return this.#exited;
  }

  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch { /* exited already */ }
  }

  /** Waits for a line on stderr matching `pattern`. */
  waitForStderr(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
    return poll(
      () => this.#stderr.match(pattern) ?? (this.#exited ? assert.fail(this.#why(what)) : false),
      timeoutMs,
      what,
      () => `stderr so far:\n${this.#stderr}`,
    );
  }

  #why(what: string): string {
    return `Process ${this.pid} (${this.args.join(" ")}) exited before ${what}; stderr:\n` +
      this.#stderr;
  }

  /** Waits for the process to exit. */
  finish(timeoutMs: number, what = "process to exit"): Promise<Finished> {
    return within(this.done, timeoutMs, `${what}; stderr so far:\n${this.#stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON shapes of the CLI (the subset the tests read)

export interface AttemptJson {
  attempt: number;
  worker_id: string;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  outcome: string;
  exit_code: number | null;
  signal: string | null;
  error: string | null;
}

export interface JobJson {
  id: string;
  command: string;
  state: string;
  priority: number;
  attempts: number;
  max_retries: number;
  attempts_left: number;
  run_at: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  worker_id: string | null;
  last_error: string | null;
  last_exit_code: number | null;
}

export interface ShowJson extends JobJson {
  history: AttemptJson[];
}

export interface WorkerJson {
  id: string;
  pid: number;
  host: string;
  state: string;
  current_job: string | null;
  jobs_done: number;
  jobs_failed: number;
}

/** A job as given to `enqueue -` (one JSON line each). */
export interface JobSpec {
  command: string;
  id?: string;
  priority?: number;
  max_retries?: number;
  timeout?: string | number;
  delay?: string | number;
  env?: Record<string, string>;
  cwd?: string;
}

// ---------------------------------------------------------------------------------------------
// Ledger

export interface LedgerEntry {
  id: string;
  attempt: number;
  event: "start" | "end";
  ns: bigint;
  /** The job's shell: the leader of the attempt's process group. */
  pid: number;
  /**
   * On a start line of attempt > 1: live processes ("pid/pgid") of the job's earlier attempts'
   * groups at that moment, scanned by the job itself from /proc; empty when none.
   */
  alive: string[];
  /** Exit status of the work, on end lines. */
  rc: number | null;
}

/**
 * Sourced by every ledger job. `ledger start|end` appends one line with a single `printf >>`
 * (O_APPEND, far below 4 KiB, so lines never interleave):
 * `<id> <attempt> <event> <epoch_ns> <pid> <alive|rc>`.
 */
function ledgerScript(ledger: string): string {
  return `# Sourced by the ledger jobs of tests/worker (see _helpers.ts).
LEDGER=${shellQuote(ledger)}
ledger() {
  extra=-
  if [ "$1" = start ] && [ "$QUEUECTL_ATTEMPT" -gt 1 ]; then extra=$(ledger_alive); fi
  if [ "$1" = end ]; then extra=$2; fi
  printf '%s %s %s %s %s %s\\n' "$QUEUECTL_JOB_ID" "$QUEUECTL_ATTEMPT" "$1" "$(date +%s%N)" "$$" "$extra" >>"$LEDGER"
}
# Live (non-zombie) processes in the groups of this job's earlier attempts: pid/pgid,... or -.
ledger_alive() {
  groups=
  while read -r lid latt lev lns lpid lrest; do
    if [ "$lid" = "$QUEUECTL_JOB_ID" ] && [ "$lev" = start ] && [ "$latt" != "$QUEUECTL_ATTEMPT" ]; then
      groups="$groups $lpid"
    fi
  done <"$LEDGER"
  found=
  for stat in /proc/[0-9]*/stat; do
    read -r spid scomm sstate sppid spgrp srest 2>/dev/null <"$stat" || continue
    [ "$sstate" = Z ] && continue
    for g in $groups; do
      if [ "$spgrp" = "$g" ]; then found="$found\${found:+,}$spid/$g"; fi
    done
  done
  echo "\${found:--}"
}
`;
}

export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

export function parseLedger(text: string): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [id, attempt, event, ns, pid, extra] = line.split(" ");
    assert.ok(
      (event === "start" || event === "end") && extra !== undefined,
      `bad ledger line: ${JSON.stringify(line)}`,
    );
    entries.push({
      id: id!,
      attempt: Number(attempt),
      event,
      ns: BigInt(ns!),
      pid: Number(pid),
      alive: event === "start" && extra !== "-" ? extra.split(",") : [],
      rc: event === "end" ? Number(extra) : null,
    });
  }
  return entries;
}

export interface LedgerReport {
  /** Expected ids with no end line. */
  lost: string[];
  /** Ids with more than one start line for the same attempt, or more starts than allowed. */
  duplicated: string[];
  /** Ledger ids that were never enqueued. */
  unexpected: string[];
  /** Ids whose attempt k+1 started before attempt k ended, or while attempt k's group lived. */
  overlap: string[];
  /** Start lines per id. */
  starts: Map<string, LedgerEntry[]>;
}

/**
 * Jepsen-style check of the ledger against the ids that were enqueued. `maxStarts` is how many
 * starts an id may have (1 for exactly-once).
 */
export function checkLedger(
  entries: readonly LedgerEntry[],
  expected: readonly string[],
  maxStarts = 1,
): LedgerReport {
  const starts = new Map<string, LedgerEntry[]>();
  const ends = new Map<string, LedgerEntry[]>();
  for (const e of entries) {
    const map = e.event === "start" ? starts : ends;
    map.set(e.id, [...(map.get(e.id) ?? []), e]);
  }
  const wanted = new Set(expected);
  const report: LedgerReport = { lost: [], duplicated: [], unexpected: [], overlap: [], starts };
  for (const id of new Set(entries.map((e) => e.id))) {
    if (!wanted.has(id)) report.unexpected.push(id);
  }
  for (const id of expected) {
    const s = starts.get(id) ?? [];
    const attempts = s.map((e) => e.attempt);
    if (s.length > maxStarts || new Set(attempts).size !== attempts.length) {
      report.duplicated.push(id);
    }
    if ((ends.get(id) ?? []).length === 0) report.lost.push(id);
    const sorted = [...s].sort((a, b) => a.attempt - b.attempt);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const next = sorted[i]!;
      const prevEnd = (ends.get(id) ?? []).find((e) => e.attempt === prev.attempt);
      if (next.alive.length > 0 || (prevEnd !== undefined && prevEnd.ns > next.ns)) {
        report.overlap.push(id);
      }
    }
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Sandbox

export interface RunOptions {
  /** Written to stdin, which is then closed; "hold" keeps an empty stdin pipe open until exit. */
  stdin?: string | { hold: true };
  env?: Record<string, string>;
  /** Default: the sandbox directory (jobs inherit it as their cwd). */
  cwd?: string;
  /** Default 60 s: the process is killed after it. */
  timeoutMs?: number;
  /** Run `deno run -A --quiet <main>` where main is this URL or path instead of main.ts. */
  main?: string;
}

/**
 * One test's world: a temp dir holding the database, the ledger and whatever jobs write. Every
 * process it starts is killed on dispose, and `assertNoLeftovers()` fails a test that leaves
 * any process mentioning the temp dir (workers, supervisors, job processes: their environment
 * carries QUEUECTL_DB).
 */
export class Sandbox implements AsyncDisposable {
  readonly dir: string;
  readonly db: string;
  readonly ledger: string;
  readonly ledgerScript: string;
  readonly #procs: Proc[] = [];

  private constructor(dir: string) {
    this.dir = dir;
    this.db = `${dir}/q.db`;
    this.ledger = `${dir}/ledger`;
    this.ledgerScript = `${dir}/ledger.sh`;
  }

  static async create(): Promise<Sandbox> {
    const dir = await Deno.makeTempDir({ prefix: "queuectl-worker-test-" });
    const sandbox = new Sandbox(dir);
    await Deno.writeTextFile(sandbox.ledgerScript, ledgerScript(sandbox.ledger));
    await Deno.writeTextFile(sandbox.ledger, "");
    return sandbox;
  }

  /** Starts `queuectl --db DB args…` and returns at once. */
  spawn(args: readonly string[], options: RunOptions = {}): Proc {
    const full = ["run", "-A", "--quiet", options.main ?? MAIN, "--db", this.db, ...args];
    const child = new Deno.Command(Deno.execPath(), {
      args: full,
      cwd: options.cwd ?? this.dir,
      env: { NO_COLOR: "1", ...options.env },
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const proc = new Proc(child, args);
    this.#procs.push(proc);
    if (typeof options.stdin === "string") {
      const writer = child.stdin.getWriter();
      writer.write(new TextEncoder().encode(options.stdin))
        .then(() => writer.close())
        .catch(() => {});
    } else if (options.stdin !== undefined) {
      // Nothing is written and nothing closes it while the process runs: a reader would block.
      proc.done.finally(() => child.stdin.close().catch(() => {}));
    }
    return proc;
  }

  /** Runs `queuectl --db DB args…` to the end. */
  async run(args: readonly string[], options: RunOptions = {}): Promise<Finished> {
    const proc = this.spawn(args, options);
    try {
      return await proc.finish(options.timeoutMs ?? 60_000, `queuectl ${args.join(" ")}`);
    } finally {
      proc.kill("SIGKILL");
    }
  }

  /** Runs a command that must exit 0; returns its stdout. */
  async ok(args: readonly string[], options: RunOptions = {}): Promise<string> {
    const result = await this.run(args, options);
    assert.equal(
      result.code,
      0,
      `queuectl ${args.join(" ")} exited ${result.code}; stderr:\n${result.stderr}`,
    );
    return result.stdout;
  }

  async json<T>(args: readonly string[], options: RunOptions = {}): Promise<T> {
    return JSON.parse(await this.ok([...args, "--json"], options)) as T;
  }

  /** Sets queue settings, e.g. `{ "lease-timeout": "2s" }`. */
  async config(settings: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(settings)) {
      await this.ok(["config", "set", key, value]);
    }
  }

  /** Short lease and fast backoff, as the tests need. */
  fastConfig(extra: Record<string, string> = {}): Promise<void> {
    return this.config({
      "lease-timeout": "2s",
      "backoff-base": "1",
      "backoff-max": "2s",
      ...extra,
    });
  }

  /** Enqueues jobs in one transaction (in order); returns their ids. */
  async enqueue(jobs: readonly JobSpec[], options: RunOptions = {}): Promise<string[]> {
    const stdin = jobs.map((job) => JSON.stringify(job)).join("\n") + "\n";
    const out = await this.ok(["enqueue", "-"], { ...options, stdin });
    const ids = out.trim().split("\n");
    assert.equal(ids.length, jobs.length, `enqueue printed ${out}`);
    return ids;
  }

  /** The command of a ledger job doing `work` (in a subshell, so `exit` ends just the work). */
  ledgerJob(work = "true"): string {
    return `. ${
      shellQuote(this.ledgerScript)
    }; ledger start; (${work}\n); rc=$?; ledger end $rc; exit $rc`;
  }

  readLedger(): LedgerEntry[] {
    return parseLedger(Deno.readTextFileSync(this.ledger));
  }

  /** Waits for the ledger line of `event` of `attempt` of job `id`. */
  waitForLedger(
    id: string,
    attempt: number,
    event: "start" | "end",
    timeoutMs = PROMPT_MS,
  ): Promise<LedgerEntry> {
    return poll(
      () =>
        this.readLedger().find((e) => e.id === id && e.attempt === attempt && e.event === event),
      timeoutMs,
      `ledger line "${id} ${attempt} ${event}"`,
      () => `ledger:\n${Deno.readTextFileSync(this.ledger)}`,
    );
  }

  async show(id: string): Promise<ShowJson> {
    return await this.json<ShowJson>(["show", id]);
  }

  /** Runs `query` on the database directly (read-only), for fast polling and raw checks. */
  query(sql: string, ...params: SQLInputValue[]): Record<string, SQLOutputValue>[] {
    const db = new DatabaseSync(this.db, { readOnly: true, timeout: 5000 });
    try {
      return db.prepare(sql).all(...params) as Record<string, SQLOutputValue>[];
    } finally {
      db.close();
    }
  }

  /**
   * Writes to the database behind queuectl's back: fault injection (a job taken over by another
   * worker, say). Returns the number of rows changed.
   */
  write(sql: string, ...params: SQLInputValue[]): number {
    const db = new DatabaseSync(this.db, { timeout: 5000 });
    try {
      return Number(db.prepare(sql).run(...params).changes);
    } finally {
      db.close();
    }
  }

  /**
   * Takes the database's write lock, as a backup or an `sqlite3` shell would, until the returned
   * lock is released (or disposed). Readers go on; every writer gets SQLITE_BUSY.
   */
  lock(): DatabaseLock {
    const db = new DatabaseSync(this.db, { timeout: 5000 });
    db.exec("BEGIN EXCLUSIVE");
    const release = () => {
      if (!db.isOpen) return;
      if (db.isTransaction) db.exec("COMMIT");
      db.close();
    };
    return { release, [Symbol.dispose]: release };
  }

  /** The job's state straight from the database. */
  state(id: string): string | undefined {
    return this.query("SELECT state FROM jobs WHERE id = ?", id)[0]?.state as string | undefined;
  }

  /** Waits until the job is in `state`. */
  async waitForState(id: string, state: string, timeoutMs = PROMPT_MS): Promise<void> {
    await poll(
      () => this.state(id) === state,
      timeoutMs,
      `job ${id} to be ${state}`,
      () => `it is ${this.state(id)}`,
    );
  }

  /** Counts per state straight from the database. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const row of this.query("SELECT state, count(*) AS n FROM jobs GROUP BY state")) {
      out[row.state as string] = Number(row.n);
    }
    return out;
  }

  /** Registered workers, straight from the database. */
  workerRows(): { id: string; pid: number; supervisor_pid: number | null }[] {
    return this.query("SELECT id, pid, supervisor_pid FROM workers ORDER BY started_at").map((
      r,
    ) => ({
      id: r.id as string,
      pid: Number(r.pid),
      supervisor_pid: r.supervisor_pid === null ? null : Number(r.supervisor_pid),
    }));
  }

  /** Live processes that belong to this sandbox. */
  leftovers(): { pid: number; cmdline: string }[] {
    return processesMentioning(`${this.dir}/`);
  }

  /**
   * Fails if any process mentioning the sandbox is still alive after a short grace period (for
   * processes that are exiting), killing them so the next test starts clean.
   */
  async assertNoLeftovers(graceMs = 3000): Promise<void> {
    const deadline = performance.now() + graceMs;
    let left = this.leftovers();
    while (left.length > 0 && performance.now() < deadline) {
      await sleep(50);
      left = this.leftovers();
    }
    if (left.length === 0) return;
    for (const { pid } of left) killQuietly(pid, "SIGKILL");
    assert.fail(`processes left behind:\n${left.map((p) => `${p.pid} ${p.cmdline}`).join("\n")}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const proc of this.#procs) proc.kill("SIGKILL");
    // Job processes, workers and detached supervisors are not our children: find them through
    // /proc. Before waiting for our children's output to end, since a worker that outlives its
    // supervisor (a stopped one, say) holds the supervisor's stderr open.
    for (let i = 0; i < 100; i++) {
      const left = this.leftovers();
      if (left.length === 0) break;
      for (const { pid } of left) killQuietly(pid, "SIGKILL");
      await sleep(20);
    }
    await Promise.allSettled(this.#procs.map((p) => p.done));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

export interface DatabaseLock extends Disposable {
  release(): void;
}

export function killQuietly(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch { /* gone */ }
}

/** Milliseconds since the epoch of an ISO time printed by the CLI. */
export function ms(iso: string | null): number {
  assert.ok(iso !== null, "expected a time, got null");
  return Date.parse(iso);
}

/** Nanoseconds (as in the ledger) to milliseconds. */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6;
}
