/**
 * Harness of the reliability suite: one sandbox per scenario (a temp directory with the database,
 * the ledger job and the ledger), real queuectl processes started as a user would start them, and
 * a cleanup that kills whatever the scenario left and then proves, from /proc and /proc/mounts,
 * that nothing of it is left.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { SQLInputValue } from "node:sqlite";
import { Ledger, type Run } from "./_ledger.ts";
import { processesReferencing, type ProcInfo } from "./_proc.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${ROOT}/main.ts`;
const encoder = new TextEncoder();

/** The worker's recovery sweep interval (lib/worker/worker.ts, not configurable): SWEEP. */
export const SWEEP_MS = 1000;
/** The CLI's busy timeout (lib/store/open.ts): BUSY. */
export const BUSY_MS = 5000;

/** Prints one line of figures, outside the test runner's own output. */
export function report(line: string): void {
  Deno.stdout.writeSync(encoder.encode(`[reliability] ${line}\n`));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `fn` until it returns something truthy, and returns it; fails after `timeoutMs`. */
export async function waitUntil<T>(
  fn: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  intervalMs = 20,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(intervalMs);
  }
}

/** Shell-quotes one word. */
export function sq(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export interface ProcResult {
  /** Exit code, or 128 + signal number when killed by a signal. */
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface ProcOptions {
  env?: Record<string, string>;
  /** Text for stdin (then closed); "pipe" keeps it open for the caller; default /dev/null. */
  stdin?: string | "pipe";
  cwd?: string;
}

export interface LogLine {
  /** Date.now() when the line arrived. */
  at: number;
  text: string;
}

/** A child process with its output collected while it runs. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  readonly startedAt = performance.now();
  /** stderr, line by line, as it arrives. */
  readonly lines: LogLine[] = [];
  readonly done: Promise<ProcResult>;
  result: ProcResult | null = null;
  #stdout = "";
  #stderr = "";
  #partial = "";
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null = null;

  constructor(command: string, args: string[], options: ProcOptions = {}) {
    this.child = new Deno.Command(command, {
      args,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...options.env },
      cwd: options.cwd ?? ROOT,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.child.pid;
    if (options.stdin !== undefined) {
      this.#stdin = this.child.stdin.getWriter();
      if (options.stdin !== "pipe") {
        const text = options.stdin;
        const writer = this.#stdin;
        this.#stdin = null;
        // A process that exits without reading stdin breaks the pipe: not an error here.
        writer.write(encoder.encode(text)).then(() => writer.close()).catch(() => {});
      }
    }
    const out = pump(this.child.stdout, (text) => this.#stdout += text);
    const err = pump(this.child.stderr, (text) => this.#onStderr(text));
    this.done = Promise.all([this.child.status, out, err]).then(([status]) => {
      if (this.#partial) this.lines.push({ at: Date.now(), text: this.#partial });
      this.#partial = "";
      this.result = {
        code: status.code,
        signal: status.signal,
        stdout: this.#stdout,
        stderr: this.#stderr,
        ms: performance.now() - this.startedAt,
      };
      return this.result;
    });
  }

  #onStderr(text: string): void {
    this.#stderr += text;
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop()!;
    const at = Date.now();
    for (const line of parts) this.lines.push({ at, text: line });
  }

  get running(): boolean {
    return this.result === null;
  }
  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }

  /** Sends a signal unless the process has exited. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.result !== null) return;
    try {
      Deno.kill(this.pid, signal);
    } catch { /* exited meanwhile */ }
  }

  /** Waits for exit; fails if it takes longer than `timeoutMs`. */
  async wait(timeoutMs: number, what = `process ${this.pid}`): Promise<ProcResult> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        this.done,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what} to exit`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes to stdin (spawned with `stdin: "pipe"`). */
  async write(text: string): Promise<void> {
    if (this.#stdin === null) throw new Error("stdin is not a pipe");
    await this.#stdin.write(encoder.encode(text));
  }

  async closeStdin(): Promise<void> {
    const writer = this.#stdin;
    this.#stdin = null;
    await writer?.close().catch(() => {});
  }
}

async function pump(stream: ReadableStream<Uint8Array>, onText: (text: string) => void) {
  const decoder = new TextDecoder();
  for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
}

/** A job to enqueue, as `enqueue -` reads it. */
export interface JobSpec {
  id?: string;
  command: string;
  priority?: number;
  max_retries?: number;
  timeout?: string;
  delay?: string;
  env?: Record<string, string>;
}

export interface JobRow {
  id: string;
  state: string;
  attempts: number;
  budget_used: number;
  last_error: string | null;
  last_exit_code: number | null;
  run_at: number;
  worker_id: string | null;
}

export interface AttemptRow {
  id: string;
  attempt: number;
  outcome: string | null;
  error: string | null;
  exit_code: number | null;
  signal: string | null;
  started_at: number;
  finished_at: number | null;
  worker_id: string;
}

/** Returns the sha-256 of a file, or "absent". */
export async function checksum(path: string): Promise<string> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "absent";
    throw error;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One scenario's world: a temp directory, its database and ledger, and every process started. */
export class Sandbox implements AsyncDisposable {
  readonly name: string;
  readonly dir: string;
  /** The database path (may be changed before first use, e.g. to a mounted file system). */
  db: string;
  readonly ledgerPath: string;
  readonly jobScript: string;
  readonly procs: Proc[] = [];
  readonly #mounts: string[] = [];
  readonly #immutable: string[] = [];
  readonly #cleanups: (() => void | Promise<void>)[] = [];

  private constructor(name: string, dir: string) {
    this.name = name;
    this.dir = dir;
    this.db = `${dir}/q.db`;
    this.ledgerPath = `${dir}/ledger`;
    this.jobScript = `${dir}/qtest-job`;
  }

  static async create(name: string): Promise<Sandbox> {
    const dir = await Deno.makeTempDir({ prefix: `qrel-${name.replace(/\W+/g, "_")}-` });
    const sandbox = new Sandbox(name, dir);
    await Deno.writeTextFile(sandbox.jobScript, ledgerJobScript(sandbox.ledgerPath));
    await Deno.chmod(sandbox.jobScript, 0o755);
    await Deno.writeTextFile(sandbox.ledgerPath, "");
    return sandbox;
  }

  /** Environment every queuectl process of the suite gets: the test hooks are on. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return { QUEUECTL_TEST: "1", ...extra };
  }

  /** Starts `queuectl --db DB ARGS…`. */
  spawn(args: string[], options: ProcOptions = {}): Proc {
    const proc = new Proc(
      Deno.execPath(),
      ["run", "-A", "--quiet", MAIN, "--db", this.db, ...args],
      { ...options, env: this.env(options.env) },
    );
    this.procs.push(proc);
    return proc;
  }

  /** Starts any program (sqlite3, sh…) tracked like queuectl processes. */
  spawnRaw(command: string, args: string[], options: ProcOptions = {}): Proc {
    const proc = new Proc(command, args, options);
    this.procs.push(proc);
    return proc;
  }

  /** Runs `queuectl --db DB ARGS…` to its end. */
  cli(args: string[], options: ProcOptions & { timeoutMs?: number } = {}): Promise<ProcResult> {
    const proc = this.spawn(args, options);
    return proc.wait(options.timeoutMs ?? 60_000, `queuectl ${args.join(" ")}`);
  }

  /** Runs a command that must succeed; returns its stdout. */
  async ok(args: string[], options: ProcOptions = {}): Promise<string> {
    const result = await this.cli(args, options);
    if (result.code !== 0) {
      throw new Error(`queuectl ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
    }
    return result.stdout;
  }

  /** Starts `worker run` (add `--once` through args). */
  worker(options: { env?: Record<string, string>; args?: string[]; stdin?: "pipe" } = {}): Proc {
    return this.spawn(["worker", "run", ...(options.args ?? [])], {
      ...(options.env ? { env: options.env } : {}),
      ...(options.stdin ? { stdin: options.stdin } : {}),
    });
  }

  /** Creates the database (read-only commands such as `status` create none). */
  async init(): Promise<void> {
    await this.ok(["config", "set", "max-retries", "3"]);
  }

  async config(settings: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(settings)) {
      await this.ok(["config", "set", key, value]);
    }
  }

  /**
   * The command that runs the ledger job with `work` (shell text run in a subshell between its
   * start and end lines; the job exits with the work's status).
   */
  job(work?: string): string {
    return `exec ${this.jobScript}${work === undefined ? "" : ` ${sq(work)}`}`;
  }

  /** Enqueues jobs with `enqueue -` in batches; every batch must exit 0. Returns the ids. */
  async enqueue(jobs: readonly JobSpec[], batch = 2000): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < jobs.length; i += batch) {
      const lines = jobs.slice(i, i + batch).map((job) => JSON.stringify(job)).join("\n");
      const out = await this.ok(["enqueue", "-"], { stdin: lines + "\n" });
      ids.push(...out.trim().split("\n"));
    }
    return ids;
  }

  ledger(): Ledger {
    return Ledger.parse(Deno.readTextFileSync(this.ledgerPath));
  }

  /** Waits until attempt `attempt` of job `id` wrote its start line (and `end` too, if asked). */
  waitRun(
    id: string,
    attempt: number,
    timeoutMs: number,
    options: { end?: boolean } = {},
  ): Promise<Run> {
    return waitUntil(
      () => {
        const run = this.ledger().runs.get(id)?.find((r) => r.attempt === attempt);
        return run && (!options.end || run.endUs !== null) ? run : undefined;
      },
      timeoutMs,
      `job ${id} attempt ${attempt} to ${options.end ? "end" : "start"}`,
      10,
    );
  }

  /** Waits until `worker` registered itself; returns its worker id. */
  async workerId(worker: Proc, timeoutMs = 30_000): Promise<string> {
    const row = await waitUntil(
      () =>
        this.query<{ id: string }>("SELECT id FROM workers WHERE pid = :pid", {
          pid: worker.pid,
        })[0],
      timeoutMs,
      `worker ${worker.pid} to register`,
    );
    return row.id;
  }

  /** Runs read-only SQL on its own short-lived connection. */
  query<T>(sql: string, params: Record<string, SQLInputValue> = {}): T[] {
    const db = new DatabaseSync(this.db, { timeout: 10_000 });
    try {
      return db.prepare(sql).all(params) as T[];
    } finally {
      db.close();
    }
  }

  /** Runs SQL that changes the database (to build crashed states directly). */
  exec(sql: string): void {
    const db = new DatabaseSync(this.db, { timeout: 10_000 });
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  }

  jobs(): JobRow[] {
    return this.query<JobRow>(
      `SELECT id, state, attempts, budget_used, last_error, last_exit_code, run_at, worker_id
       FROM jobs ORDER BY seq`,
    );
  }

  job1(id: string): JobRow | undefined {
    return this.query<JobRow>(
      `SELECT id, state, attempts, budget_used, last_error, last_exit_code, run_at, worker_id
       FROM jobs WHERE id = :id`,
      { id },
    )[0];
  }

  attempts(id?: string): AttemptRow[] {
    return this.query<AttemptRow>(
      `SELECT j.id AS id, a.attempt, a.outcome, a.error, a.exit_code, a.signal, a.started_at,
         a.finished_at, a.worker_id
       FROM attempts a JOIN jobs j ON j.seq = a.job_seq
       ${id === undefined ? "" : "WHERE j.id = :id"} ORDER BY a.job_seq, a.attempt`,
      id === undefined ? {} : { id },
    );
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const row of this.query<{ state: string; n: number }>("SELECT state, n FROM job_counts")) {
      out[row.state] = row.n;
    }
    return out;
  }

  integrity(): string {
    return this.query<{ integrity_check: string }>("PRAGMA integrity_check")
      .map((r) => r.integrity_check).join("; ");
  }

  /** Waits until no job is pending, failed (waiting for a retry) or processing. */
  async settle(timeoutMs: number, what = "the queue to drain"): Promise<void> {
    await waitUntil(
      () => {
        const c = this.counts();
        return (c.pending ?? 0) + (c.failed ?? 0) + (c.processing ?? 0) === 0;
      },
      timeoutMs,
      what,
      100,
    );
  }

  /** Waits until job `id` is in `state` and returns its row. */
  waitState(id: string, state: string, timeoutMs: number): Promise<JobRow> {
    return waitUntil(
      () => {
        const row = this.job1(id);
        return row?.state === state ? row : undefined;
      },
      timeoutMs,
      `job ${id} to be ${state}`,
      25,
    );
  }

  /** Mounts a tmpfs of `size` at `path` (created); unmounted at cleanup. */
  async mountTmpfs(path: string, size: string): Promise<void> {
    await Deno.mkdir(path, { recursive: true });
    await run("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", path]);
    this.#mounts.push(path);
  }

  /** Bind-mounts `source` read-only at `target`; unmounted at cleanup. */
  async mountReadOnly(source: string, target: string): Promise<void> {
    await Deno.mkdir(target, { recursive: true });
    await run("mount", ["--bind", source, target]);
    this.#mounts.push(target);
    await run("mount", ["-o", "remount,bind,ro", target]);
  }

  async unmount(path: string): Promise<void> {
    await run("umount", [path]);
    const index = this.#mounts.indexOf(path);
    if (index >= 0) this.#mounts.splice(index, 1);
  }

  /** `chattr +i`: even root cannot write the file; undone at cleanup. */
  async setImmutable(path: string, on: boolean): Promise<void> {
    await run("chattr", [on ? "+i" : "-i", path]);
    if (on) this.#immutable.push(path);
    else this.#immutable.splice(this.#immutable.indexOf(path), 1);
  }

  /** Registers extra cleanup, run first. */
  defer(fn: () => void | Promise<void>): void {
    this.#cleanups.push(fn);
  }

  /** Processes that belong to this sandbox: its path is in their command line or environment. */
  leftovers(): ProcInfo[] {
    return processesReferencing(this.dir);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const problems: string[] = [];
    for (const fn of this.#cleanups.reverse()) {
      try {
        await fn();
      } catch (error) {
        problems.push(`cleanup: ${error}`);
      }
    }
    // Everything still running is killed: workers, jobs (their own sessions), orphans.
    for (const proc of this.procs) {
      proc.kill("SIGCONT");
      proc.kill("SIGKILL");
    }
    const deadline = performance.now() + 15_000;
    for (;;) {
      const left = this.leftovers();
      if (left.length === 0) break;
      if (performance.now() > deadline) {
        problems.push(`processes survive SIGKILL: ${left.map((p) => `${p.pid} ${p.cmd}`)}`);
        break;
      }
      for (const p of left) {
        try {
          Deno.kill(p.pid, "SIGCONT");
          Deno.kill(p.pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await sleep(20);
    }
    await Promise.race([Promise.all(this.procs.map((p) => p.done)), sleep(10_000)]);
    for (const path of this.#immutable.splice(0)) {
      await run("chattr", ["-i", path]).catch((e) => problems.push(String(e)));
    }
    for (const path of this.#mounts.splice(0).reverse()) {
      await waitUntil(
        async () => {
          try {
            await run("umount", [path]);
            return true;
          } catch {
            return false;
          }
        },
        10_000,
        `umount ${path}`,
        100,
      ).catch((e) => problems.push(String(e)));
    }
    // The proof: nothing of this scenario runs, and nothing is mounted under it.
    const left = this.leftovers();
    if (left.length) problems.push(`left running: ${left.map((p) => `${p.pid} ${p.cmd}`)}`);
    const mounts = Deno.readTextFileSync("/proc/mounts").split("\n")
      .filter((line) => line.split(" ")[1]?.startsWith(this.dir));
    if (mounts.length) problems.push(`left mounted: ${mounts.join("; ")}`);
    if (problems.length === 0) await Deno.remove(this.dir, { recursive: true });
    if (problems.length) throw new Error(`Sandbox ${this.name}: ${problems.join("\n")}`);
  }
}

/** Runs a helper program that must succeed. */
export async function run(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, { args, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * The ledger job (RELIABILITY §2.0). bash for $EPOCHREALTIME (no fork per timestamp); every line
 * is one append under 4 KiB. On attempts after the first it also looks for live processes of any
 * other attempt of the same job and the same database, and writes an `overlap` line if it finds
 * one: the check happens at the very moment the new attempt starts.
 */
function ledgerJobScript(ledger: string): string {
  return `#!/bin/bash
L=${sq(ledger)}
read -r _ _ _ _ pgid _ < /proc/$$/stat
t=$EPOCHREALTIME
printf '%s %s start %s%s000 %s %s\\n' "$QUEUECTL_JOB_ID" "$QUEUECTL_ATTEMPT" "\${t%.*}" "\${t#*.}" $$ "$pgid" >> "$L"
if [ "$QUEUECTL_ATTEMPT" -gt 1 ]; then
  others=
  for f in $(grep -lzxF "QUEUECTL_JOB_ID=$QUEUECTL_JOB_ID" /proc/[0-9]*/environ 2>/dev/null); do
    mapfile -d '' -t vars < "$f" 2>/dev/null || continue
    db= attempt=
    for v in "\${vars[@]}"; do
      case $v in QUEUECTL_DB=*) db=\${v#*=} ;; QUEUECTL_ATTEMPT=*) attempt=\${v#*=} ;; esac
    done
    if [ "$db" = "$QUEUECTL_DB" ] && [ -n "$attempt" ] && [ "$attempt" != "$QUEUECTL_ATTEMPT" ]; then
      p=\${f#/proc/}; others="$others \${p%/environ}:$attempt"
    fi
  done
  if [ -n "$others" ]; then
    printf '%s %s overlap %s%s000%s\\n' "$QUEUECTL_JOB_ID" "$QUEUECTL_ATTEMPT" "\${t%.*}" "\${t#*.}" "$others" >> "$L"
  fi
fi
status=0
if [ $# -gt 0 ]; then
  ( eval "$1" )
  status=$?
fi
t=$EPOCHREALTIME
printf '%s %s end %s%s000 %s %s %s\\n' "$QUEUECTL_JOB_ID" "$QUEUECTL_ATTEMPT" "\${t%.*}" "\${t#*.}" $$ "$pgid" $status >> "$L"
exit $status
`;
}
