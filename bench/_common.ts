// deno-lint-ignore-file no-console -- a benchmark's job is to print
/**
 * What every bench module shares: the figure type, statistics, running queuectl and other
 * processes (always stopped in `finally`), reading a database read-only, and /proc.
 *
 * A figure is never an absolute time alone: each carries a floor measured in the same run, on the
 * same machine, and the ratio the target is stated in.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { openSqliteStore } from "../lib/store/sqlite/open.ts";
import { systemClock } from "../lib/clock.ts";

/** The repository root (where deno.json is): every `deno run` starts here. */
export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const MAIN = `${REPO}/main.ts`;
export const DENO = Deno.execPath();

export interface BenchOptions {
  /** The short version, for CI. */
  quick: boolean;
}

/** One measured figure with its floor. */
export interface Figure {
  section: string;
  name: string;
  value: number;
  unit: string;
  /** The floor it is compared with, in the same unit; null when the target is absolute only. */
  floor: number | null;
  floorName: string;
  /** In the direction the target is stated (see `target`); null when there is no floor. */
  ratio: number | null;
  /** The target as text, e.g. "≤ 1.15×"; "" for figures shown for context. */
  target: string;
  /** null: no target (context only). */
  pass: boolean | null;
}

/** What a bench module exports. */
export interface BenchModule {
  /** Heading in RESULTS.md. */
  title: string;
  /** How it is measured, one paragraph for RESULTS.md. */
  method(options: BenchOptions): string;
  run(options: BenchOptions): Promise<Figure[]>;
}

// ---------------------------------------------------------------------------------------------
// Statistics

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile (q in 0..1) of unsorted values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  pollMs = 10,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms: ${what}`);
    await sleep(pollMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Temporary directories and databases

/** A temporary directory removed by `dispose()`. */
export async function tempDir(prefix: string): Promise<{ path: string; dispose(): void }> {
  const path = await Deno.makeTempDir({ prefix: `queuectl-bench-${prefix}-` });
  return {
    path,
    dispose() {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch { /* gone */ }
    },
  };
}

/** Creates an empty queuectl database at `path` through the store, as the CLI would. */
export async function createQueueDb(path: string): Promise<void> {
  const store = await openSqliteStore(path, {
    synchronous: "FULL",
    busyTimeoutMs: 5000,
    clock: systemClock(),
  });
  await store.close();
}

type Row = Record<string, unknown>;

/** A read-only connection for watching a database that queuectl processes write. */
export class Reader {
  readonly #db: DatabaseSync;
  constructor(path: string) {
    this.#db = new DatabaseSync(path, { readOnly: true, timeout: 5000 });
  }
  get(sql: string, params: Record<string, number | string> = {}): Row {
    return this.#db.prepare(sql).get(params) as Row;
  }
  all(sql: string, params: Record<string, number | string> = {}): Row[] {
    return this.#db.prepare(sql).all(params) as Row[];
  }
  num(sql: string, params: Record<string, number | string> = {}): number {
    const row = this.get(sql, params);
    return Number(Object.values(row)[0]);
  }
  count(state: string): number {
    return this.num("SELECT coalesce(sum(n), 0) AS n FROM job_counts WHERE state = :state", {
      state,
    });
  }
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface RunResult {
  code: number;
  ms: number;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

/**
 * Runs a program to completion from the repository root and times it from spawn to exit.
 * `stdout: "null"` keeps a large output from being the figure.
 */
export async function runProcess(
  program: string,
  args: readonly string[],
  options: { stdin?: Uint8Array; stdout?: "piped" | "null"; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const t0 = performance.now();
  const child = new Deno.Command(program, {
    args: [...args],
    cwd: REPO,
    stdin: options.stdin ? "piped" : "null",
    stdout: options.stdout ?? "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
  }).spawn();
  if (options.stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin);
    await writer.close();
  }
  const out = await child.output();
  const ms = performance.now() - t0;
  return {
    code: out.code,
    ms,
    stdout: options.stdout === "null" ? "" : decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** `deno run -A main.ts --db DB ARGS…`, which must succeed. */
export async function queuectl(
  db: string,
  args: readonly string[],
  options: { stdin?: Uint8Array; stdout?: "piped" | "null" } = {},
): Promise<RunResult> {
  const result = await runProcess(DENO, ["run", "-A", "main.ts", "--db", db, ...args], options);
  if (result.code !== 0) {
    throw new Error(
      `queuectl ${args.join(" ")} exited ${result.code}: ${result.stderr.slice(0, 2000)}`,
    );
  }
  return result;
}

/** JSON lines of `n` jobs running `command`. */
export function jobLines(n: number, command: (i: number) => string): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ command: command(i) }));
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

/** A long-running child process whose stderr goes to a log file; stopped by `stop()`. */
export class Background {
  readonly child: Deno.ChildProcess;
  readonly logPath: string;
  readonly #logged: Promise<void>;
  #stopped = false;
  #exited: Deno.CommandStatus | null = null;

  constructor(program: string, args: readonly string[], logPath: string) {
    this.logPath = logPath;
    this.child = new Deno.Command(program, {
      args: [...args],
      cwd: REPO,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.child.status.then((status) => this.#exited = status);
    const file = Deno.openSync(logPath, { write: true, create: true, append: true });
    this.#logged = this.child.stderr.pipeTo(file.writable).catch(() => {});
  }

  get pid(): number {
    return this.child.pid;
  }

  get exited(): Deno.CommandStatus | null {
    return this.#exited;
  }

  /** The end of its log, for error messages. */
  logTail(bytes = 2000): string {
    try {
      const text = Deno.readTextFileSync(this.logPath);
      return text.slice(-bytes);
    } catch {
      return "";
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; waits for the exit and the log. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#exited === null) {
      try {
        this.child.kill("SIGTERM");
      } catch { /* exited meanwhile */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          try {
            this.child.kill("SIGKILL");
          } catch { /* exited meanwhile */ }
          resolve();
        }, graceMs);
      });
      await Promise.race([this.child.status, killed]);
      clearTimeout(timer);
    }
    await this.child.status;
    await this.#logged;
  }
}

/**
 * Starts `count` workers the way users do: `queuectl worker start --count N` in the foreground
 * (a supervisor that runs N `worker run` processes). Its log, with the workers', goes to `dir`.
 * Stopping it (SIGTERM) stops the workers gracefully.
 */
export function startWorkers(
  db: string,
  count: number,
  dir: string,
  concurrency?: number,
): Background {
  const slots = concurrency === undefined ? [] : ["--concurrency", String(concurrency)];
  return new Background(
    DENO,
    ["run", "-A", "main.ts", "--db", db, "worker", "start", "--count", String(count), ...slots],
    `${dir}/workers-${count}-${concurrency ?? "d"}-${Date.now()}.log`,
  );
}

export async function stopAll(processes: readonly (Background | undefined)[]): Promise<void> {
  await Promise.all(processes.map((p) => p?.stop()));
}

/** Pids of the registered workers. */
export function workerPids(reader: Reader): number[] {
  return reader.all("SELECT pid FROM workers ORDER BY started_at").map((r) => Number(r.pid));
}

/**
 * Waits until `count` workers are registered and idle, then a little longer so their start-up
 * work (first recovery sweep, config read) is over before anything is measured.
 */
export async function waitIdle(
  reader: Reader,
  supervisor: Background,
  count: number,
  settleMs = 500,
): Promise<void> {
  await waitFor(
    `${count} idle workers`,
    () => {
      if (supervisor.exited) throw new Error(`workers exited: ${supervisor.logTail()}`);
      const idle = reader.num("SELECT count(*) FROM workers WHERE state = 'idle'");
      return idle >= count ? true : undefined;
    },
    30_000,
    20,
  );
  await sleep(settleMs);
}

/** Waits until `n` jobs are completed (watching the maintained counts), failing fast on trouble. */
export async function waitCompleted(
  reader: Reader,
  n: number,
  supervisor: Background,
  timeoutMs: number,
  pollMs = 5,
): Promise<void> {
  await waitFor(
    `${n} completed jobs`,
    () => {
      if (reader.count("completed") >= n) return true;
      const bad = reader.count("failed") + reader.count("dead");
      if (bad > 0) throw new Error(`${bad} jobs failed: ${supervisor.logTail()}`);
      if (supervisor.exited) throw new Error(`workers exited: ${supervisor.logTail()}`);
      return undefined;
    },
    timeoutMs,
    pollMs,
  );
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (key: string) => {
    const match = text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    if (!match) throw new Error(`No ${key} in /proc/${pid}/status`);
    return Number(match[1]) / 1024;
  };
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

// ---------------------------------------------------------------------------------------------
// Output

function formatNumber(value: number, unit: string): string {
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

export function formatValue(f: Figure): string {
  return formatNumber(f.value, f.unit);
}

export function formatFloor(f: Figure): string {
  return f.floor === null ? "—" : `${formatNumber(f.floor, f.unit)} (${f.floorName})`;
}

export function formatRatio(f: Figure): string {
  return f.ratio === null ? "—" : `${f.ratio.toFixed(2)}×`;
}

export function formatResult(f: Figure): string {
  return f.pass === null ? "info" : f.pass ? "pass" : "**FAIL**";
}

/** A figure as one console line. */
export function printFigure(f: Figure): void {
  console.log(
    `  ${f.name.padEnd(44)} ${formatValue(f).padStart(12)}  floor ${formatFloor(f)}  ratio ${
      formatRatio(f)
    }  target ${f.target || "—"}  ${formatResult(f).replaceAll("*", "")}`,
  );
}

/**
 * Runs one module on its own (`deno run -A bench/X.ts [--quick]`); modules print their figures as
 * they go. Exits 1 on a missed target.
 */
export async function standalone(module: BenchModule): Promise<void> {
  const options = { quick: Deno.args.includes("--quick") };
  console.log(`${module.title}: ${module.method(options)}`);
  const figures = await module.run(options);
  Deno.exit(figures.some((f) => f.pass === false) ? 1 : 0);
}
