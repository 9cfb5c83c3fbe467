/**
 * One test's world for the worker tests and the reliability suite: a temp directory with the
 * database, the ledger job and the ledger, real `queuectl` processes started as a user would start
 * them (`deno run -A main.ts --db …`), direct reads of the database for fast polling, and a
 * cleanup that kills whatever the test left and then proves, from /proc and /proc/mounts, that
 * nothing of it is left.
 *
 * The database is a SQLite file in the directory, or with `store: "postgres"` a fresh database
 * of its own on the test server (pg.ts), dropped on dispose. The direct reads take the same SQL
 * and return the same shapes on both (SQLite's dialect where the two agree; times are epoch
 * milliseconds in both stores' rows): see `query()`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { SQLInputValue, SQLOutputValue } from "node:sqlite";
import { hookEnv, type TestHooks } from "./hooks.ts";
import { Ledger, ledgerJobScript, type Run } from "./ledger.ts";
import { poll, PROMPT_MS, sleep } from "./poll.ts";
import { pgBinDir, type PgDatabase, pgDatabase } from "./pg.ts";
import { processesReferencing, type ProcInfo } from "./proc.ts";
import { type Finished, MAIN, Proc, type ProcOptions, runProgram, shellQuote } from "./process.ts";

/** The worker's recovery sweep interval (lib/worker/worker.ts, not configurable): SWEEP. */
export const SWEEP_MS = 1000;
/** The CLI's busy timeout (lib/store/open.ts): BUSY. */
export const BUSY_MS = 5000;
/** `QUEUECTL_SKIP_SLOW=1` skips the gigabyte tests. */
export const SKIP_SLOW = Deno.env.get("QUEUECTL_SKIP_SLOW") === "1";

// ---------------------------------------------------------------------------------------------
// What goes in and comes out

/** A job as `enqueue -` reads it (one JSON line each). */
export interface JobSpec {
  command: string;
  id?: string;
  priority?: number;
  max_retries?: number;
  timeout?: string | number;
  delay?: string | number;
  env?: Record<string, string>;
  cwd?: string;
  queue?: string;
}

/** JSON shapes of the CLI (the subset the tests read). */
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
  cancel_reason: string | null;
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

/** A job's row, straight from the database. */
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

/** An attempt's row, straight from the database, with its job's id. */
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

export type Row = Record<string, SQLOutputValue>;
/** Positional parameters, or one object of named ones (`:name`). */
export type SqlParams = SQLInputValue[] | [Record<string, SQLInputValue>];

export interface RunOptions extends ProcOptions {
  /** Test hooks for this process (lib/test_hooks.ts); none unless given. */
  hooks?: TestHooks;
  /** `run()` and `ok()`: the process is killed and the test fails after this; default 60 s. */
  timeoutMs?: number;
  /** Run `deno run -A --quiet <main>` where main is this URL or path instead of main.ts. */
  main?: string;
}

export interface WorkerOptions {
  /** After `worker run` and the sandbox's `workerArgs`, e.g. `["--once"]`. */
  args?: string[];
  env?: Record<string, string>;
  hooks?: TestHooks;
  stdin?: "pipe";
}

export interface SandboxOptions {
  /**
   * Arguments every `worker()` and `workerOnce()` of the sandbox gets after `worker run`: the
   * shape of its workers (for example a number of slots), so that one scenario runs with
   * several shapes: `Sandbox.create("b1", { workerArgs: [...] })`. Commands a scenario spells
   * out itself (`worker start`, the CLI checks of resource_test) do not get them.
   */
  workerArgs?: readonly string[];
  /**
   * Where the queue lives: a SQLite file in the sandbox (the default), or a fresh PostgreSQL
   * database on the test server (`QUEUECTL_TEST_PG_URL`, else 127.0.0.1:5432), dropped on
   * dispose. Every command and worker the sandbox starts gets it as `--db`.
   */
  store?: StoreKind;
}

export type StoreKind = "sqlite" | "postgres";

export interface DatabaseLock extends Disposable {
  release(): void;
}

const JOB_COLUMNS =
  "id, state, attempts, budget_used, last_error, last_exit_code, run_at, worker_id";

// ---------------------------------------------------------------------------------------------

/**
 * One test's world. Every process it starts, and every process that mentions its directory
 * (workers, detached supervisors, job processes: their environment carries QUEUECTL_DB), is
 * killed on dispose; dispose then fails if any survives or anything stays mounted under it.
 * `assertNoLeftovers()` fails a test that leaves any such process behind by itself.
 */
export class Sandbox implements AsyncDisposable {
  readonly name: string;
  readonly dir: string;
  /** The database path (may be changed before first use, e.g. to a mounted file system). */
  db: string;
  readonly ledgerPath: string;
  readonly jobScript: string;
  readonly workerArgs: readonly string[];
  readonly store: StoreKind;
  readonly procs: Proc[] = [];
  /** The PostgreSQL database of a `store: "postgres"` sandbox. */
  #pg: PgDatabase | undefined;
  readonly #mounts: string[] = [];
  readonly #immutable: string[] = [];
  readonly #cleanups: (() => void | Promise<void>)[] = [];

  private constructor(name: string, dir: string, options: SandboxOptions) {
    this.name = name;
    this.dir = dir;
    this.db = `${dir}/q.db`;
    this.ledgerPath = `${dir}/ledger`;
    this.jobScript = `${dir}/qtest-job`;
    this.workerArgs = options.workerArgs ?? [];
    this.store = options.store ?? "sqlite";
  }

  static async create(name = "test", options: SandboxOptions = {}): Promise<Sandbox> {
    const dir = await Deno.makeTempDir({ prefix: `queuectl-${name.replace(/\W+/g, "_")}-` });
    const sandbox = new Sandbox(name, dir, options);
    if (sandbox.store === "postgres") {
      try {
        sandbox.#pg = await pgDatabase();
      } catch (error) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        throw error;
      }
      sandbox.db = sandbox.#pg.url;
    }
    await Deno.writeTextFile(sandbox.jobScript, ledgerJobScript(sandbox.ledgerPath));
    await Deno.chmod(sandbox.jobScript, 0o755);
    await Deno.writeTextFile(sandbox.ledgerPath, "");
    return sandbox;
  }

  // -------------------------------------------------------------------------------------------
  // Processes

  /**
   * The environment of a process the sandbox starts: no colour, and the hooks asked for. On
   * PostgreSQL also XDG_DATA_HOME = the sandbox's directory, so that what a queue keeps beside
   * its database file on SQLite (the detached workers' log, the dashboard's token) stays in the
   * sandbox, and every process started names the directory (which `leftovers()` looks for).
   */
  env(options: { env?: Record<string, string>; hooks?: TestHooks } = {}): Record<string, string> {
    return {
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      ...(this.store === "postgres" ? { XDG_DATA_HOME: this.dir } : {}),
      ...(options.hooks ? hookEnv(options.hooks) : {}),
      ...options.env,
    };
  }

  /** Starts `queuectl --db DB args…` and returns at once. */
  spawn(args: readonly string[], options: RunOptions = {}): Proc {
    return this.spawnRaw(
      Deno.execPath(),
      ["run", "-A", "--quiet", options.main ?? MAIN, "--db", this.db, ...args],
      options,
    );
  }

  /** Starts any program (sqlite3, sh…) in the sandbox, tracked like queuectl processes. */
  spawnRaw(command: string, args: readonly string[], options: RunOptions = {}): Proc {
    const proc = new Proc(command, args, {
      env: this.env(options),
      cwd: options.cwd ?? this.dir,
      ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
    });
    this.procs.push(proc);
    return proc;
  }

  /** Starts `worker run`, with the sandbox's worker arguments and then `options.args`. */
  worker(options: WorkerOptions = {}): Proc {
    return this.spawn(["worker", "run", ...this.workerArgs, ...(options.args ?? [])], {
      ...(options.env ? { env: options.env } : {}),
      ...(options.hooks ? { hooks: options.hooks } : {}),
      ...(options.stdin ? { stdin: options.stdin } : {}),
    });
  }

  /**
   * Runs `worker run --once` with the sandbox's worker arguments to its end (drains what is due
   * and exits); it must exit 0. Returns its stdout.
   */
  workerOnce(options: RunOptions = {}): Promise<string> {
    return this.ok(["worker", "run", ...this.workerArgs, "--once"], options);
  }

  /** Runs `queuectl --db DB args…` to its end (killed if it outlives `timeoutMs`). */
  async run(args: readonly string[], options: RunOptions = {}): Promise<Finished> {
    const proc = this.spawn(args, options);
    try {
      return await proc.wait(options.timeoutMs ?? 60_000, `queuectl ${args.join(" ")} to exit`);
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

  /** Runs a command with `--json` that must exit 0; returns what it printed, parsed. */
  async json<T>(args: readonly string[], options: RunOptions = {}): Promise<T> {
    return JSON.parse(await this.ok([...args, "--json"], options)) as T;
  }

  async show(id: string): Promise<ShowJson> {
    return await this.json<ShowJson>(["show", id]);
  }

  // -------------------------------------------------------------------------------------------
  // The queue

  /** Creates the database (read-only commands such as `status` create none). */
  async init(): Promise<void> {
    await this.ok(["config", "set", "max-retries", "3"]);
  }

  /** Sets queue settings, e.g. `{ "lease-timeout": "2s" }`. */
  async config(settings: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(settings)) {
      await this.ok(["config", "set", key, value]);
    }
  }

  /** Short lease and fast backoff, as the worker tests need. */
  fastConfig(extra: Record<string, string> = {}): Promise<void> {
    return this.config({
      "lease-timeout": "2s",
      "backoff-base": "1",
      "backoff-max": "2s",
      ...extra,
    });
  }

  /**
   * Enqueues jobs with `enqueue -`, in one transaction per batch (in order); every batch must
   * exit 0 and print one id per job. Returns the ids.
   */
  async enqueue(jobs: readonly JobSpec[], options: { batch?: number } = {}): Promise<string[]> {
    const batch = options.batch ?? 2000;
    const ids: string[] = [];
    for (let i = 0; i < jobs.length; i += batch) {
      const part = jobs.slice(i, i + batch);
      const stdin = part.map((job) => JSON.stringify(job)).join("\n") + "\n";
      const out = await this.ok(["enqueue", "-"], { stdin });
      const printed = out.trim().split("\n");
      assert.equal(printed.length, part.length, `enqueue printed ${out}`);
      ids.push(...printed);
    }
    return ids;
  }

  // -------------------------------------------------------------------------------------------
  // The ledger

  /**
   * The command of a ledger job doing `work` (shell text run in a subshell between its start
   * and end lines; the job exits with the work's status).
   */
  job(work?: string): string {
    return `exec ${this.jobScript}${work === undefined ? "" : ` ${shellQuote(work)}`}`;
  }

  ledger(): Ledger {
    return Ledger.parse(Deno.readTextFileSync(this.ledgerPath));
  }

  /**
   * Waits until attempt `attempt` of job `id` wrote its start line; with `end`, its end line
   * too; with `scanned`, its scan for other attempts' processes (so `overlapWith` is final).
   */
  waitRun(
    id: string,
    attempt: number,
    timeoutMs = PROMPT_MS,
    options: { end?: boolean; scanned?: boolean } = {},
  ): Promise<Run> {
    const what = options.end ? "end" : options.scanned ? "scan" : "start";
    return poll(
      () => {
        const run = this.ledger().run(id, attempt);
        if (run === undefined) return undefined;
        if (options.end && run.endUs === null) return undefined;
        if (options.scanned && !run.scanned) return undefined;
        return run;
      },
      timeoutMs,
      `job ${id} attempt ${attempt} to ${what}`,
      { intervalMs: 10, describe: () => `ledger:\n${Deno.readTextFileSync(this.ledgerPath)}` },
    );
  }

  // -------------------------------------------------------------------------------------------
  // The database, directly

  /**
   * Runs `sql` on a short-lived read-only connection (it never changes the database, nor
   * creates a missing one), for fast polling and raw checks. Parameters are `?` (positional) or
   * `:name` (one object).
   *
   * On PostgreSQL the same SQL runs through `psql` (synchronously, about 10 ms a call), in the
   * queue's schema, in a read-only transaction; each row comes back as JSON, so numbers are
   * numbers (a bigint time is epoch milliseconds, as in SQLite), text is text, a boolean is a
   * boolean (SQLite says 0 or 1) and a jsonb column is already parsed.
   */
  query<T = Row>(sql: string, ...params: SqlParams): T[] {
    if (this.store === "postgres") {
      const out = this.#psql(
        `SELECT row_to_json(q)::text FROM (${bindLiterals(sql, params)}) q`,
        { readOnly: true },
      );
      return out.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as T);
    }
    const db = new DatabaseSync(this.db, { readOnly: true, timeout: 10_000 });
    try {
      const statement = db.prepare(sql);
      const [first, ...rest] = params;
      const rows = first !== null && typeof first === "object" && !ArrayBuffer.isView(first)
        ? statement.all(first as Record<string, SQLInputValue>, ...(rest as SQLInputValue[]))
        : statement.all(...(params as SQLInputValue[]));
      return rows as T[];
    } finally {
      db.close();
    }
  }

  /**
   * Writes to the database behind queuectl's back: fault injection (a job taken over by another
   * worker, say). Returns the number of rows changed.
   */
  write(sql: string, ...params: SQLInputValue[]): number {
    if (this.store === "postgres") {
      const out = this.#psql(bindLiterals(sql, params), { quiet: false });
      const tag = /^(?:UPDATE|DELETE|INSERT \d+) (\d+)$/m.exec(out);
      assert.ok(tag, `no row count from psql for ${sql}: ${out}`);
      return Number(tag[1]);
    }
    const db = new DatabaseSync(this.db, { timeout: 10_000 });
    try {
      return Number(db.prepare(sql).run(...params).changes);
    } finally {
      db.close();
    }
  }

  /** Runs SQL statements that change the database (to build crashed states directly). */
  exec(sql: string): void {
    if (this.store === "postgres") {
      this.#psql(sql);
      return;
    }
    const db = new DatabaseSync(this.db, { timeout: 10_000 });
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  }

  /**
   * Takes the database's write lock, as a backup or an `sqlite3` shell would, until the returned
   * lock is released (or disposed). Readers go on; every writer gets SQLITE_BUSY. SQLite only:
   * PostgreSQL has no database-wide write lock (see `sqlShell()` for a session that holds locks).
   */
  lock(): DatabaseLock {
    assert.equal(this.store, "sqlite", "lock() is SQLite's write lock");
    const db = new DatabaseSync(this.db, { timeout: 5000 });
    db.exec("BEGIN EXCLUSIVE");
    const release = () => {
      if (!db.isOpen) return;
      if (db.isTransaction) db.exec("COMMIT");
      db.close();
    };
    return { release, [Symbol.dispose]: release };
  }

  /**
   * Starts the store's own SQL shell on the database with stdin held open (`sqlite3 DB`, or
   * `psql` in the queue's schema): a session of its own, to hold a lock while others wait.
   */
  sqlShell(): Proc {
    if (this.store === "sqlite") return this.spawnRaw("sqlite3", [this.db], { stdin: "pipe" });
    return this.spawnRaw(psqlProgram(), ["-X", "-w", "-q", "-A", "-t", "-d", this.db], {
      stdin: "pipe",
      env: { PGOPTIONS: `-c search_path=${PG_SCHEMA}` },
    });
  }

  /** psql with the SQL on stdin, to its end; stdout without the final newline. */
  #psql(sql: string, options: { readOnly?: boolean; quiet?: boolean } = {}): string {
    const settings = [`-c search_path=${PG_SCHEMA}`, "-c statement_timeout=20000"];
    if (options.readOnly) settings.push("-c default_transaction_read_only=on");
    const args = ["-X", "-w", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", this.db, "-f", "-"];
    if (options.quiet !== false) args.unshift("-q");
    // outputSync() takes no stdin: the script goes in through a here-file of the sandbox.
    const script = `${this.dir}/.psql-${Deno.pid}-${++psqlCalls}.sql`;
    Deno.writeTextFileSync(script, sql);
    try {
      const { code, stdout, stderr } = new Deno.Command(psqlProgram(), {
        args: args.map((a) => a === "-" ? script : a),
        env: { PGOPTIONS: settings.join(" "), PGCONNECT_TIMEOUT: "5" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
      const err = new TextDecoder().decode(stderr).trim();
      if (code !== 0) throw new Error(`psql on ${this.db} failed (exit ${code}): ${err}\n${sql}`);
      return new TextDecoder().decode(stdout).replace(/\n$/, "");
    } finally {
      Deno.removeSync(script);
    }
  }

  jobs(): JobRow[] {
    return this.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs ORDER BY seq`);
  }

  job1(id: string): JobRow | undefined {
    return this.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`, id)[0];
  }

  /** The job's state, or undefined when there is no such job. */
  state(id: string): string | undefined {
    return this.job1(id)?.state;
  }

  attempts(id?: string): AttemptRow[] {
    return this.query<AttemptRow>(
      `SELECT j.id AS id, a.attempt, a.outcome, a.error, a.exit_code, a.signal, a.started_at,
         a.finished_at, a.worker_id
       FROM attempts a JOIN jobs j ON j.seq = a.job_seq
       ${id === undefined ? "" : "WHERE j.id = ?"} ORDER BY a.job_seq, a.attempt`,
      ...(id === undefined ? [] : [id]),
    );
  }

  /**
   * Jobs per state, from the store's counters (job_counts per queue, kept by triggers in the same
   * transaction as the rows; cheap to poll however many jobs there are; on PostgreSQL with the
   * deltas its statement triggers append and workers fold in). States with no job are absent.
   */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    const sql = this.store === "postgres"
      ? `SELECT state, sum(n) AS n FROM (SELECT state, n FROM job_counts
           UNION ALL SELECT state, n FROM job_count_deltas) c GROUP BY state`
      : "SELECT state, sum(n) AS n FROM job_counts GROUP BY state";
    for (const row of this.query<{ state: string; n: number }>(sql)) {
      if (row.n > 0) out[row.state] = Number(row.n);
    }
    return out;
  }

  /**
   * "ok", or what is wrong. SQLite: `PRAGMA integrity_check`. PostgreSQL needs no check of its
   * files after a client's crash (a killed client cannot tear a page; amcheck is an extension the
   * server may lack), and its constraints hold by themselves; what a crash mid-transaction could
   * leave inconsistent, if the store split a transition, is the counters against the rows
   * (job_counts plus the deltas, always in the same transaction as the rows): that is checked.
   */
  integrity(): string {
    if (this.store === "postgres") {
      return this.query<{ problem: string }>(PG_INTEGRITY).map((r) => r.problem).join("; ") ||
        "ok";
    }
    return this.query<{ integrity_check: string }>("PRAGMA integrity_check")
      .map((r) => r.integrity_check).join("; ");
  }

  /** Registered workers. */
  workerRows(): { id: string; pid: number; supervisor_pid: number | null }[] {
    return this.query("SELECT id, pid, supervisor_pid FROM workers ORDER BY started_at").map((
      r,
    ) => ({
      id: r.id as string,
      pid: Number(r.pid),
      supervisor_pid: r.supervisor_pid === null ? null : Number(r.supervisor_pid),
    }));
  }

  /** Waits until `worker` registered itself; returns its worker id. */
  async workerId(worker: Proc, timeoutMs = 30_000): Promise<string> {
    const row = await poll(
      () => this.query<{ id: string }>("SELECT id FROM workers WHERE pid = ?", worker.pid)[0],
      timeoutMs,
      `worker ${worker.pid} to register`,
    );
    return row.id;
  }

  /** Waits until job `id` is in `state` and returns its row. */
  waitForState(id: string, state: string, timeoutMs = PROMPT_MS): Promise<JobRow> {
    return poll(
      () => {
        const row = this.job1(id);
        return row?.state === state ? row : undefined;
      },
      timeoutMs,
      `job ${id} to be ${state}`,
      { describe: () => `it is ${this.state(id)}` },
    );
  }

  /** Waits until no job is pending, failed (waiting for a retry) or processing. */
  async settle(timeoutMs: number, what = "the queue to drain"): Promise<void> {
    await poll(
      () => {
        const c = this.counts();
        return (c.pending ?? 0) + (c.failed ?? 0) + (c.processing ?? 0) === 0;
      },
      timeoutMs,
      what,
      { intervalMs: 100, describe: () => JSON.stringify(this.counts()) },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Faults of the file system

  /** Mounts a tmpfs of `size` at `path` (created); unmounted at cleanup. */
  async mountTmpfs(path: string, size: string): Promise<void> {
    await Deno.mkdir(path, { recursive: true });
    await runProgram("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", path]);
    this.#mounts.push(path);
  }

  /** Bind-mounts `source` read-only at `target`; unmounted at cleanup. */
  async mountReadOnly(source: string, target: string): Promise<void> {
    await Deno.mkdir(target, { recursive: true });
    await runProgram("mount", ["--bind", source, target]);
    this.#mounts.push(target);
    await runProgram("mount", ["-o", "remount,bind,ro", target]);
  }

  async unmount(path: string): Promise<void> {
    await runProgram("umount", [path]);
    const index = this.#mounts.indexOf(path);
    if (index >= 0) this.#mounts.splice(index, 1);
  }

  /** `chattr +i`: even root cannot write the file; undone at cleanup. */
  async setImmutable(path: string, on: boolean): Promise<void> {
    await runProgram("chattr", [on ? "+i" : "-i", path]);
    if (on) this.#immutable.push(path);
    else this.#immutable.splice(this.#immutable.indexOf(path), 1);
  }

  // -------------------------------------------------------------------------------------------
  // Cleanup

  /** Registers extra cleanup, run first. */
  defer(fn: () => void | Promise<void>): void {
    this.#cleanups.push(fn);
  }

  /**
   * Live processes that belong to this sandbox: its path (or on PostgreSQL its database's name)
   * is in their command line or environment.
   */
  leftovers(): ProcInfo[] {
    const found = processesReferencing(this.dir);
    if (this.#pg) {
      const pids = new Set(found.map((p) => p.pid));
      // Not the server's backends serving it: their titles name the database too.
      found.push(
        ...processesReferencing(this.#pg.name).filter((p) =>
          !pids.has(p.pid) && !p.cmd.startsWith("postgres: ")
        ),
      );
    }
    return found;
  }

  /**
   * Fails if any process of the sandbox is still alive after a short grace period (for
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
    assert.fail(`processes left behind:\n${left.map((p) => `${p.pid} ${p.cmd}`).join("\n")}`);
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
    // Everything still running is killed: workers, jobs (their own sessions), orphans, stopped
    // ones. Job processes, workers and detached supervisors are not our children: they are
    // found through /proc, before waiting for our children's output to end, since a worker that
    // outlives its supervisor holds the supervisor's stderr open.
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
        killQuietly(p.pid, "SIGCONT");
        killQuietly(p.pid, "SIGKILL");
      }
      await sleep(20);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled(this.procs.map((p) => p.done)),
      new Promise((resolve) => timer = setTimeout(resolve, 10_000)),
    ]);
    clearTimeout(timer);
    for (const path of this.#immutable.splice(0)) {
      await runProgram("chattr", ["-i", path]).catch((e) => problems.push(String(e)));
    }
    for (const path of this.#mounts.splice(0).reverse()) {
      await poll(
        () => runProgram("umount", [path]).then(() => true, () => false),
        10_000,
        `umount ${path}`,
        { intervalMs: 100 },
      ).catch((e) => problems.push(String(e)));
    }
    // The proof: nothing of this test runs, and nothing is mounted under it.
    const left = this.leftovers();
    if (left.length) problems.push(`left running: ${left.map((p) => `${p.pid} ${p.cmd}`)}`);
    const mounts = Deno.readTextFileSync("/proc/mounts").split("\n")
      .filter((line) => line.split(" ")[1]?.startsWith(this.dir));
    if (mounts.length) problems.push(`left mounted: ${mounts.join("; ")}`);
    if (this.#pg) {
      // WITH (FORCE): sessions still open (a killed worker's, seen late by the server) go too.
      try {
        await this.#pg[Symbol.asyncDispose]();
      } catch (error) {
        problems.push(`drop database: ${error}`);
      }
    }
    if (problems.length === 0) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    if (problems.length) {
      throw new Error(`Sandbox ${this.name} (${this.dir}): ${problems.join("\n")}`);
    }
  }
}

/** The schema the PostgreSQL store puts a queue in by default (the sandbox uses no other). */
const PG_SCHEMA = "queuectl";
let psqlCalls = 0;

function psqlProgram(): string {
  const dir = pgBinDir();
  assert.ok(dir, "psql not found: apt-get install postgresql-client, or run .ci/run");
  return `${dir}/psql`;
}

/** One value as an SQL literal (PostgreSQL: standard strings, bytea in hex). */
function literal(value: SQLInputValue): string {
  if (value === null) return "NULL";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "string") return `'${value.replaceAll("'", "''")}'`;
  const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return `'\\x${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}'::bytea`;
}

/**
 * `sql` with its parameters written in as literals (psql takes no bound parameters): `?` in
 * order, or `:name` from one object (a `::type` cast is left alone). Test SQL only: a `?` or
 * `:word` inside a string literal would be replaced too.
 */
function bindLiterals(sql: string, params: SqlParams | SQLInputValue[]): string {
  const [first] = params;
  if (first !== null && typeof first === "object" && !ArrayBuffer.isView(first)) {
    const named = first as Record<string, SQLInputValue>;
    return sql.replace(/(?<![:\w]):([A-Za-z_]\w*)/g, (_, name: string) => {
      assert.ok(name in named, `no value for :${name}`);
      return literal(named[name]!);
    });
  }
  let i = 0;
  const positional = params as SQLInputValue[];
  const bound = sql.replace(/\?/g, () => {
    assert.ok(i < positional.length, `too few parameters for ${sql}`);
    return literal(positional[i++]!);
  });
  assert.equal(i, positional.length, `too many parameters for ${sql}`);
  return bound;
}

/** The PostgreSQL `integrity()` check: one row per problem found. */
const PG_INTEGRITY = `
  SELECT format('job_counts says %s %s, the rows say %s', s.state, s.counted, s.actual) AS problem
  FROM (
    SELECT coalesce(c.state, r.state) AS state, coalesce(c.n, 0) AS counted,
      coalesce(r.n, 0) AS actual
    FROM (SELECT state, sum(n) AS n FROM (SELECT state, n FROM job_counts
            UNION ALL SELECT state, n FROM job_count_deltas) d GROUP BY state) c
    FULL JOIN (SELECT state, count(*) AS n FROM jobs GROUP BY state) r ON r.state = c.state
  ) s WHERE s.counted <> s.actual`;

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
