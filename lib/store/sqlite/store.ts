/**
 * The embedded store: one SQLite file in WAL mode through Deno's built-in `node:sqlite`.
 *
 * Every write is one short `BEGIN IMMEDIATE` transaction (a deferred one that later upgrades to a
 * write lock gets SQLITE_BUSY without waiting for the busy timeout). Connections that acknowledge
 * work to a user (enqueue, dlq retry) use `synchronous=FULL`, so an acknowledged job survives power
 * loss; worker connections use NORMAL, whose lost commits only roll a job back to an earlier state
 * that recovery handles.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { SQLInputValue, SQLOutputValue, StatementSync } from "node:sqlite";
import type { Attempt, AttemptOutcome, Job } from "../../job/job.ts";
import { DEFAULT_MAX_RETRIES } from "../../job/job.ts";
import type { JobState } from "../../job/state.ts";
import { JOB_STATES } from "../../job/state.ts";
import {
  ConflictError,
  NotFoundError,
  QueuectlError,
  StorageFullError,
  StoreBusyError,
  StoreUnusableError,
} from "../../errors.ts";
import type {
  AttemptOutputParams,
  AttemptProcessParams,
  AttemptRef,
  JobClaimParams,
  JobCounts,
  JobDlqRetryParams,
  JobFinishParams,
  JobInsertParams,
  JobInsertResult,
  JobListParams,
  JobListResult,
  JobTakeOverParams,
  MaintainParams,
  OutputCapture,
  ProcessingJob,
  ScheduledCount,
  Store,
  WorkerRecord,
  WorkerState,
} from "../store.ts";
import * as q from "./queries.ts";
import { dirname } from "../../path.ts";
import { APPLICATION_ID, SCHEMA_VERSION } from "./version.ts";
import type { StatsSummary } from "../../metrics.ts";
import { bucketOf, METRIC, OUTCOME_CODES } from "../../metrics.ts";

type Row = Record<string, SQLOutputValue>;
type Params = Record<string, SQLInputValue>;

export interface SqliteOpenOptions {
  /** FULL for connections that acknowledge work to users, NORMAL for workers. */
  synchronous: "FULL" | "NORMAL";
  /** How long a statement waits for another process's lock before failing busy. */
  busyTimeoutMs: number;
  /** Test hook: called at named points (see lib/fault.ts). */
  fault?: (point: string) => void;
  /**
   * False for commands that only read: a missing database is then not created (so a mistyped
   * --db leaves nothing behind); they see an empty queue instead.
   */
  create?: boolean;
  /** With `create: false`: a missing directory is an empty queue too (the default location). */
  missingDirIsEmpty?: boolean;
}

/** Whether a node:sqlite error says the file is damaged or no database (SQLITE_CORRUPT, NOTADB). */
function isDamage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const errcode = (error as { errcode?: unknown }).errcode;
  const code = typeof errcode === "number" ? errcode & 0xff : undefined;
  return code === 11 || code === 26 || /malformed|not a database|corrupt/.test(error.message);
}

/** Maps a node:sqlite error to the domain error a user can act on. */
export function mapSqliteError(error: unknown, path: string): unknown {
  if (error instanceof QueuectlError || !(error instanceof Error)) return error;
  const errcode = (error as { errcode?: unknown }).errcode;
  const code = typeof errcode === "number" ? errcode & 0xff : undefined;
  const message = error.message;
  if (code === 5 || code === 6 || /database is locked|database table is locked/.test(message)) {
    return new StoreBusyError(`Database is busy: ${path}: another process held its lock too long`, {
      hint: "try again; a long-running write elsewhere is holding it",
      cause: error,
    });
  }
  if (code === 13 || /database or disk is full/.test(message)) {
    return new StorageFullError(`Storage full: ${path}`, {
      hint: "free disk space, or prune finished jobs",
      cause: error,
    });
  }
  if (code === 8 || /readonly|read-only/.test(message)) {
    return new StoreUnusableError(`Database is read-only: ${path}`, {
      hint: "check the permissions of the file and of its directory (SQLite writes -wal and -shm)",
      cause: error,
    });
  }
  if (isDamage(error)) {
    return new StoreUnusableError(`Database is corrupt or not a queuectl database: ${path}`, {
      hint: 'check it with `sqlite3 FILE "PRAGMA integrity_check"` and restore a backup',
      cause: error,
    });
  }
  if (code === 14 || /unable to open/.test(message)) {
    return new StoreUnusableError(`Cannot open database: ${path}`, {
      hint: "check that the path and its directory exist and are writable",
      cause: error,
    });
  }
  if (code === 10 || /disk I\/O error/.test(message)) {
    return new StoreUnusableError(`Disk I/O error on database: ${path}`, {
      hint: "check the disk and free space",
      cause: error,
    });
  }
  return error;
}

function str(row: Row, key: string): string {
  return row[key] as string;
}
function num(row: Row, key: string): number {
  return row[key] as number;
}
function numOrNull(row: Row, key: string): number | null {
  const value = row[key];
  return value === null || value === undefined ? null : value as number;
}
function strOrNull(row: Row, key: string): string | null {
  const value = row[key];
  return value === null || value === undefined ? null : value as string;
}

function toJob(row: Row): Job {
  const env = row.env;
  return {
    id: str(row, "id"),
    seq: num(row, "seq"),
    command: str(row, "command"),
    state: str(row, "state") as JobState,
    priority: num(row, "priority"),
    attempts: num(row, "attempts"),
    budgetUsed: num(row, "budget_used"),
    maxRetries: num(row, "max_retries"),
    timeoutMs: numOrNull(row, "timeout_ms"),
    cwd: str(row, "cwd"),
    env: typeof env === "string" ? JSON.parse(env) as Record<string, string> : {},
    runAt: num(row, "run_at"),
    createdAt: num(row, "created_at"),
    updatedAt: num(row, "updated_at"),
    finishedAt: numOrNull(row, "finished_at"),
    workerId: strOrNull(row, "worker_id"),
    leaseExpiresAt: numOrNull(row, "lease_expires_at"),
    lastError: strOrNull(row, "last_error"),
    lastExitCode: numOrNull(row, "last_exit_code"),
  };
}

function toAttempt(row: Row): Attempt {
  return {
    jobId: str(row, "job_id"),
    attempt: num(row, "attempt"),
    workerId: str(row, "worker_id"),
    startedAt: num(row, "started_at"),
    finishedAt: numOrNull(row, "finished_at"),
    outcome: strOrNull(row, "outcome") as AttemptOutcome | null,
    exitCode: numOrNull(row, "exit_code"),
    signal: strOrNull(row, "signal"),
    error: strOrNull(row, "error"),
    pid: numOrNull(row, "pid"),
  };
}

function toWorker(row: Row, prefix = ""): WorkerRecord {
  return {
    id: str(row, `${prefix}id`),
    pid: num(row, `${prefix}pid`),
    host: str(row, `${prefix}host`),
    pidStart: numOrNull(row, `${prefix}pid_start`),
    state: str(row, `${prefix}state`) as WorkerState,
    currentJob: strOrNull(row, `${prefix}current_job`),
    startedAt: num(row, `${prefix}started_at`),
    heartbeatAt: num(row, `${prefix}heartbeat_at`),
    jobsDone: num(row, `${prefix}jobs_done`),
    jobsFailed: num(row, `${prefix}jobs_failed`),
    supervisorPid: numOrNull(row, `${prefix}supervisor_pid`),
    busyMs: numOrNull(row, `${prefix}busy_ms`) ?? 0,
  };
}

const EMPTY = new Uint8Array(0);

function toCapture(row: Row | undefined): OutputCapture {
  if (!row) return { head: EMPTY, tail: EMPTY, total: 0 };
  return {
    head: row.head as Uint8Array,
    tail: row.tail as Uint8Array,
    total: num(row, "total"),
  };
}

/** A SQLite URI for a path (`%`, `?` and `#` escaped). */
function fileUri(path: string): string {
  return "file:" + path.replace(/[%?#]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
}

/**
 * Opens an existing database file, never creating one (SQLite would create an empty file with
 * default permissions): `undefined` when it cannot be opened, for the caller to find out why.
 */
function openExisting(path: string, busyTimeoutMs: number): DatabaseSync | undefined {
  try {
    return new DatabaseSync(`${fileUri(path)}?mode=rw`, { timeout: busyTimeoutMs });
  } catch {
    return undefined;
  }
}

/**
 * Closes without the checkpoint SQLite runs when the last connection to a file closes. A file
 * that is damaged, or not ours, must not be written: with a -wal of another database beside it,
 * that checkpoint would copy the foreign pages into the file and delete the -wal. A read-only
 * connection holding the file's shared lock makes the close skip it, and a read-only connection
 * never checkpoints when it closes itself.
 */
function closeWithoutCheckpoint(db: DatabaseSync, path: string): void {
  let guard: DatabaseSync | undefined;
  try {
    guard = new DatabaseSync(fileUri(path), { readOnly: true });
    guard.prepare("PRAGMA user_version").get();
  } catch {
    // A damaged file fails the read, but only after the shared lock was taken.
  }
  db.close();
  guard?.close();
}

function statIfExists(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * False only when the permission bits rule out writing the file: owned by us without u+w, or
 * owned by another user without g+w or o+w. Root, and anything unknown, may write.
 */
function mayWrite(info: Deno.FileInfo): boolean {
  let uid: number | null;
  try {
    uid = Deno.uid();
  } catch {
    return true; // no --allow-sys: let SQLite find out
  }
  if (uid === null || uid === 0 || info.mode === null || info.uid === null) return true;
  if (info.uid === uid) return (info.mode & 0o200) !== 0;
  return (info.mode & 0o022) !== 0;
}

/** Checks that `db` is a queuectl database this build can use; returns its schema version. */
function identify(db: DatabaseSync, path: string): number {
  const header = db.prepare("SELECT * FROM pragma_application_id(), pragma_user_version()")
    .get() as Row;
  if (header.application_id !== APPLICATION_ID) {
    throw new StoreUnusableError(`Not a queuectl database: ${path}`, {
      hint: "it is a SQLite file of another program; choose another --db path",
    });
  }
  const version = header.user_version as number;
  if (version > SCHEMA_VERSION) {
    throw new StoreUnusableError(
      `Database schema v${version} is newer than this queuectl (supports up to v${SCHEMA_VERSION}): ${path}`,
      { hint: "upgrade queuectl" },
    );
  }
  return version;
}

/** How many of the window's most recent failures `metrics` groups into top failing commands. */
const TOP_FAILING_SCAN = 1000;

export class SqliteStore implements Store {
  readonly location: string;
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  readonly #fault: (point: string) => void;
  /** `PRAGMA synchronous` to set before the first write (reads do not need it). */
  #synchronous: string | null;
  /** SQLite reported damage: the file must not be checkpointed on close. */
  #damaged = false;

  private constructor(path: string, db: DatabaseSync, options: SqliteOpenOptions) {
    this.location = path;
    this.#db = db;
    this.#fault = options.fault ?? (() => {});
    this.#synchronous = options.synchronous;
  }

  /**
   * Opens (creating on first use) the database at `path`. Refuses, without writing anything, a
   * directory, a missing parent directory, an empty, read-only or foreign file and a newer schema.
   */
  static async open(path: string, options: SqliteOpenOptions, now: number): Promise<SqliteStore> {
    const info = statIfExists(path);
    if (info?.isDirectory) {
      throw new StoreUnusableError(`Database path is a directory: ${path}`, {
        hint: "give a file path, e.g. --db DIR/queuectl.db",
      });
    }
    if (
      info === undefined && options.create === false &&
      (options.missingDirIsEmpty || statIfExists(dirname(path))?.isDirectory)
    ) {
      // An empty queue in memory, with the real schema, stands in for the missing file (a
      // missing directory is still an error below: more likely a mistyped path).
      const { migrate } = await import("./migrations.ts");
      const memory = new DatabaseSync(":memory:");
      migrate(memory, now);
      return new SqliteStore(path, memory, options);
    }
    if (info === undefined) {
      const dir = dirname(path);
      if (!statIfExists(dir)?.isDirectory) {
        throw new StoreUnusableError(`Database directory does not exist: ${dir}`, {
          hint: "create it first, or choose another --db path",
        });
      }
      try {
        const { createDatabase } = await import("./migrations.ts");
        createDatabase(path, now);
      } catch (error) {
        if (error instanceof Deno.errors.PermissionDenied) {
          throw new StoreUnusableError(`Cannot create database: ${path}: permission denied`, {
            hint: "choose a directory you can write to",
          });
        }
        throw mapSqliteError(error, path);
      }
    } else if (info.size === 0) {
      throw new StoreUnusableError(`Database file is empty: ${path}`, {
        hint: "it may be truncated; restore it, or remove the empty file to start a new queue",
      });
    } else if (!mayWrite(info)) {
      // SQLite would open it read-only and leave a -wal and -shm behind: refuse it untouched.
      throw new StoreUnusableError(`Database is read-only: ${path}`, {
        hint:
          "check the permissions of the file and of its directory (SQLite writes -wal and -shm)",
      });
    } else {
      // Identify the file before opening it for writing: closing a read-write connection
      // checkpoints a hot WAL into the database file, which must never happen to a file that is
      // not ours (another program's, or a newer queuectl's). `immutable=1` reads the main file
      // alone, through SQLite's own file handling, with no locks and no -wal or -shm. (A newer
      // schema committed only to a hot WAL is still caught below, after the real open.)
      try {
        const probe = new DatabaseSync(`${fileUri(path)}?immutable=1`, { readOnly: true });
        try {
          identify(probe, path);
        } finally {
          probe.close();
        }
      } catch (error) {
        // Without locks, the probe can read the schema while a checkpoint rewrites it, so a
        // healthy file under load may read as damaged. Only the real open below, under SQLite's
        // locks, decides that (and then closes without a checkpoint).
        if (!isDamage(error)) throw mapSqliteError(error, path);
      }
    }
    const db = openExisting(path, options.busyTimeoutMs);
    if (db === undefined) {
      throw new StoreUnusableError(`Cannot open database: ${path}`, {
        hint: "check the permissions of the file and of its directory",
      });
    }
    try {
      const version = identify(db, path);
      if (version < SCHEMA_VERSION) (await import("./migrations.ts")).migrate(db, now);
    } catch (error) {
      closeWithoutCheckpoint(db, path);
      throw mapSqliteError(error, path);
    }
    return new SqliteStore(path, db, options);
  }

  #stmt(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs synchronous store work as a promise: a throw becomes a rejection, as callers expect. */
  #run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (isDamage(error)) this.#damaged = true;
      throw mapSqliteError(error, this.location);
    }
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction; rolls back if it throws. */
  #write<T>(fn: () => T, faultPrefix?: string): T {
    try {
      if (this.#synchronous !== null) {
        this.#db.exec(`PRAGMA synchronous = ${this.#synchronous}`);
        this.#synchronous = null;
      }
      this.#stmt("BEGIN IMMEDIATE").run();
      try {
        const result = fn();
        if (faultPrefix) this.#fault(`${faultPrefix}:before-commit`);
        this.#stmt("COMMIT").run();
        if (faultPrefix) this.#fault(`${faultPrefix}:after-commit`);
        return result;
      } finally {
        if (this.#db.isTransaction) this.#stmt("ROLLBACK").run();
      }
    } catch (error) {
      if (isDamage(error)) this.#damaged = true;
      throw mapSqliteError(error, this.location);
    }
  }

  jobInsertMany(params: JobInsertParams): Promise<JobInsertResult> {
    return this.#run(() =>
      this.#write(() => {
        const setting = this.#stmt(q.CONFIG_GET).get({ key: "max-retries" }) as Row | undefined;
        const defaultMaxRetries = setting ? Number(setting.value) : DEFAULT_MAX_RETRIES;
        const seqRow = this.#stmt(q.JOB_SEQ_NEXT).get() as Row | undefined;
        let seq = (seqRow ? num(seqRow, "seq") : 0) + 1;
        const insert = this.#stmt(q.JOB_INSERT);
        const jobs: Job[] = [];
        let inserted = 0;
        for (const input of params.jobs) {
          const env = Object.keys(input.env).length ? JSON.stringify(input.env) : null;
          for (;;) {
            const id = input.id ?? String(seq);
            const result = insert.run({
              seq,
              id,
              command: input.command,
              priority: input.priority,
              max_retries: input.maxRetries ?? defaultMaxRetries,
              timeout_ms: input.timeoutMs,
              cwd: input.cwd,
              env,
              run_at: input.runAt,
              now: params.now,
            });
            if (result.changes === 1) {
              jobs.push({
                id,
                seq,
                command: input.command,
                state: "pending",
                priority: input.priority,
                attempts: 0,
                budgetUsed: 0,
                maxRetries: input.maxRetries ?? defaultMaxRetries,
                timeoutMs: input.timeoutMs,
                cwd: input.cwd,
                env: input.env,
                runAt: input.runAt,
                createdAt: params.now,
                updatedAt: params.now,
                finishedAt: null,
                workerId: null,
                leaseExpiresAt: null,
                lastError: null,
                lastExitCode: null,
              });
              inserted++;
              seq++;
              break;
            }
            if (input.id === undefined) {
              // A user chose this number as an id; generated ids skip it (sequence gaps are fine).
              seq++;
              continue;
            }
            if (params.ifExists === "keep") {
              jobs.push(toJob(this.#stmt(q.JOB_GET).get({ id }) as Row));
              break;
            }
            throw new ConflictError(`Job "${id}" already exists`, {
              subject: id,
              hint: "choose another id, or use --if-not-exists to keep the existing job",
            });
          }
        }
        return { jobs, inserted };
      }, "enqueue")
    );
  }

  jobGet(params: { id: string }): Promise<Job | undefined> {
    return this.#run(() =>
      this.#read(() => {
        const row = this.#stmt(q.JOB_GET).get({ id: params.id }) as Row | undefined;
        return row ? toJob(row) : undefined;
      })
    );
  }

  jobList(params: JobListParams): Promise<JobListResult> {
    return this.#run(() =>
      this.#read(() => {
        // One row more than the page says whether older ones exist.
        const page = {
          before: params.beforeSeq ?? Number.MAX_SAFE_INTEGER,
          limit: params.limit + 1,
        };
        const states = params.states === undefined ? undefined : [...new Set(params.states)];
        if (states?.length === 0) return { jobs: [], total: 0, older: false };
        const rows = (states === undefined
          ? this.#stmt(q.JOB_LIST).all(page)
          : this.#stmt(q.JOB_LIST_BY_STATES[states.length - 1]!).all({
            ...page,
            ...Object.fromEntries(states.map((state, i) => [`s${i}`, state])),
          })) as Row[];
        const counts = this.#counts();
        const older = rows.length > params.limit;
        return {
          jobs: rows.slice(0, params.limit).reverse().map(toJob),
          total: states === undefined
            ? counts.total
            : states.reduce((sum, state) => sum + counts[state], 0),
          older,
        };
      })
    );
  }

  #counts(): JobCounts {
    const byState = new Map<string, number>();
    for (const row of this.#stmt(q.JOB_COUNTS).all() as Row[]) {
      byState.set(str(row, "state"), num(row, "n"));
    }
    const counts = {} as JobCounts;
    let total = 0;
    for (const state of JOB_STATES) total += counts[state] = byState.get(state) ?? 0;
    counts.total = total;
    return counts;
  }

  jobCountByState(): Promise<JobCounts> {
    return this.#run(() => this.#read(() => this.#counts()));
  }

  jobCountScheduled(params: { now: number }): Promise<ScheduledCount> {
    return this.#run(() =>
      this.#read(() => {
        const waiting = num(this.#stmt(q.JOB_COUNT_WAITING_LATER).get(params) as Row, "n");
        if (waiting === 0) return { scheduled: 0, nextAt: null };
        const failed = num(this.#stmt(q.JOB_COUNT_FAILED_LATER).get(params) as Row, "n");
        const scheduled = waiting - failed;
        if (scheduled === 0) return { scheduled: 0, nextAt: null };
        const next = this.#stmt(q.JOB_NEXT_SCHEDULED).get(params) as Row;
        return { scheduled, nextAt: numOrNull(next, "next_at") };
      })
    );
  }

  jobDlqRetry(params: JobDlqRetryParams): Promise<Job[]> {
    return this.#run(() =>
      this.#write(() => {
        if (params.ids === "all") {
          return (this.#stmt(q.JOB_DLQ_RETRY_ALL).all({ now: params.now }) as Row[]).map(toJob);
        }
        const jobs: Job[] = [];
        for (const id of params.ids) {
          const row = this.#stmt(q.JOB_DLQ_RETRY).get({ id, now: params.now }) as Row | undefined;
          if (row) {
            jobs.push(toJob(row));
            continue;
          }
          const current = this.#stmt(q.JOB_GET).get({ id }) as Row | undefined;
          if (!current) {
            throw new NotFoundError(`Job "${id}" not found`, {
              hint: "`queuectl dlq list` shows the dead letter queue",
            });
          }
          throw new ConflictError(
            `Job "${id}" is not in the dead letter queue: it is ${str(current, "state")}`,
            { hint: "only dead jobs can be retried" },
          );
        }
        return jobs;
      }, "dlq-retry")
    );
  }

  attemptList(params: { jobId: string }): Promise<Attempt[]> {
    return this.#run(() =>
      this.#read(() =>
        (this.#stmt(q.ATTEMPT_LIST).all({ id: params.jobId }) as Row[]).map(toAttempt)
      )
    );
  }

  jobClaim(params: JobClaimParams): Promise<Job | undefined> {
    return this.#run(() => this.#write(() => this.#claim(params), "claim"));
  }

  #claim(params: JobClaimParams): Job | undefined {
    const row = this.#stmt(q.JOB_CLAIM).get({
      worker_id: params.workerId,
      lease_expires_at: params.now + params.leaseMs,
      now: params.now,
    }) as Row | undefined;
    if (!row) return undefined;
    const job = toJob(row);
    this.#stmt(q.ATTEMPT_INSERT).run({
      job_seq: job.seq,
      attempt: job.attempts,
      worker_id: params.workerId,
      started_at: params.now,
      host: params.host,
      due_at: job.runAt,
    });
    this.#stmt(q.WORKER_BUSY).run({ id: params.workerId, job_id: job.id, now: params.now });
    return job;
  }

  jobNextDue(params: { now: number }): Promise<{ dueNow: boolean; nextAt: number | null }> {
    return this.#run(() =>
      this.#read(() => {
        const row = this.#stmt(q.JOB_NEXT_DUE).get() as Row;
        const nextAt = numOrNull(row, "next_at");
        return { dueNow: nextAt !== null && nextAt <= params.now, nextAt };
      })
    );
  }

  #owned(ref: AttemptRef): Params {
    return { id: ref.jobId, worker_id: ref.workerId, attempt: ref.attempt };
  }

  attemptSetProcess(params: AttemptProcessParams): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        const row = this.#stmt(q.JOB_OWNED_SEQ).get(this.#owned(params)) as Row | undefined;
        if (!row) return false;
        this.#stmt(q.ATTEMPT_SET_PROCESS).run({
          job_seq: num(row, "seq"),
          attempt: params.attempt,
          pid: params.pid,
          pid_start: params.pidStart,
        });
        return true;
      })
    );
  }

  jobRenewLease(params: AttemptRef & { now: number; leaseMs: number }): Promise<boolean> {
    return this.#run(() =>
      this.#write(() =>
        this.#stmt(q.JOB_RENEW_LEASE).run({
          ...this.#owned(params),
          lease_expires_at: params.now + params.leaseMs,
        }).changes === 1
      )
    );
  }

  jobTakeOver(params: JobTakeOverParams): Promise<boolean> {
    return this.#run(() =>
      this.#write(() =>
        this.#stmt(q.JOB_TAKE_OVER).run({
          ...this.#owned(params),
          new_worker_id: params.newWorkerId,
          lease_expires_at: params.now + params.leaseMs,
          now: params.now,
          require_expired: params.requireLeaseExpired ? 1 : 0,
        }).changes === 1
      )
    );
  }

  #saveOutput(jobSeq: number, attempt: number, stream: 1 | 2, capture: OutputCapture): void {
    this.#stmt(q.OUTPUT_UPSERT).run({
      job_seq: jobSeq,
      attempt,
      stream,
      head: capture.head,
      tail: capture.tail,
      total: capture.total,
    });
  }

  attemptSaveOutput(params: AttemptOutputParams): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        const row = this.#stmt(q.JOB_OWNED_SEQ).get(this.#owned(params)) as Row | undefined;
        if (!row) return false;
        this.#saveOutput(num(row, "seq"), params.attempt, 1, params.stdout);
        this.#saveOutput(num(row, "seq"), params.attempt, 2, params.stderr);
        return true;
      })
    );
  }

  jobFinish(params: JobFinishParams): Promise<boolean> {
    return this.#run(() => this.#write(() => this.#finish(params), params.decision.transition));
  }

  #finish(params: JobFinishParams): boolean {
    const d = params.decision;
    const row = this.#stmt(q.JOB_FINISH).get({
      ...this.#owned(params),
      state: d.state,
      refund: d.refund ? 1 : 0,
      run_at: d.runAt,
      finished_at: d.finishedAt,
      error: d.error,
      exit_code: d.exitCode,
      now: params.now,
      require_expired: params.requireLeaseExpired ? 1 : 0,
    }) as Row | undefined;
    if (!row) return false;
    const jobSeq = num(row, "seq");
    const attemptRow = this.#stmt(q.ATTEMPT_FINISH).get({
      job_seq: jobSeq,
      attempt: params.attempt,
      now: params.now,
      outcome: d.outcome,
      exit_code: d.exitCode,
      signal: d.signal,
      error: d.error,
    }) as Row | undefined;
    const runMs = attemptRow ? Math.max(0, params.now - num(attemptRow, "started_at")) : 0;
    if (attemptRow) {
      const dueAt = numOrNull(attemptRow, "due_at");
      // Earlier attempts that count (not interrupted ones), looked up only for later attempts:
      // one means this is the job's first retry, more a further one.
      const earlier = params.attempt > 1 && d.outcome !== "interrupted"
        ? num(
          this.#stmt(q.ATTEMPT_IS_RETRY).get({ job_seq: jobSeq, attempt: params.attempt }) as Row,
          "earlier",
        )
        : 0;
      this.#recordStats(
        params.now,
        d.outcome,
        earlier,
        runMs,
        dueAt === null ? null : Math.max(0, num(attemptRow, "started_at") - dueAt),
      );
    }
    if (params.output) {
      // A stream that stayed empty gets no row (readers treat a missing row as empty): two
      // fewer rows and pages written per quiet job. A row saved while the job ran already
      // holds this same empty capture.
      if (params.output.stdout.total > 0) {
        this.#saveOutput(jobSeq, params.attempt, 1, params.output.stdout);
      }
      if (params.output.stderr.total > 0) {
        this.#saveOutput(jobSeq, params.attempt, 2, params.output.stderr);
      }
    }
    if (params.byOwner) {
      const done = d.outcome === "completed" ? 1 : 0;
      const failed = done === 0 && d.outcome !== "interrupted" ? 1 : 0;
      this.#stmt(q.WORKER_FINISHED).run({
        id: params.workerId,
        job_id: params.jobId,
        now: params.now,
        done,
        failed,
        busy_ms: runMs,
      });
    }
    return true;
  }

  /** Folds one finished attempt into the per-minute figures (same transaction as the finish). */
  #recordStats(
    now: number,
    outcome: AttemptOutcome,
    /** Earlier attempts of the job that count: 0 for a first attempt. */
    earlier: number,
    runMs: number,
    waitMs: number | null,
  ): void {
    const minute = Math.floor(now / 60_000);
    const add = this.#stmt(q.STATS_ADD);
    add.run({ minute, metric: METRIC.outcome, bucket: OUTCOME_CODES.indexOf(outcome), n: 1 });
    if (outcome === "interrupted") return;
    add.run({ minute, metric: METRIC.runTime, bucket: bucketOf(runMs), n: 1 });
    if (waitMs !== null) {
      add.run({ minute, metric: METRIC.queueWait, bucket: bucketOf(waitMs), n: 1 });
    }
    // Bucket 0 counts retry attempts; bucket 1 first retries, i.e. jobs that were retried.
    if (earlier > 0) add.run({ minute, metric: METRIC.retries, bucket: 0, n: 1 });
    if (earlier === 1) add.run({ minute, metric: METRIC.retries, bucket: 1, n: 1 });
    this.#stmt(q.STATS_MAX).run({ minute, metric: METRIC.maxRunTime, bucket: 0, n: runMs });
  }

  statsSummary(
    params: { since: number; now: number; topFailing: number },
  ): Promise<StatsSummary> {
    return this.#run(() =>
      this.#read(() => {
        const outcomes = Object.fromEntries(OUTCOME_CODES.map((o) => [o, 0])) as Record<
          AttemptOutcome,
          number
        >;
        const runTime = new Map<number, number>();
        const queueWait = new Map<number, number>();
        let maxRunMs: number | null = null;
        let retryAttempts = 0;
        let retriedJobs = 0;
        const from = Math.floor(params.since / 60_000);
        for (const row of this.#stmt(q.STATS_WINDOW).all({ from }) as Row[]) {
          const metric = num(row, "metric");
          const bucket = num(row, "bucket");
          const n = num(row, "n");
          if (metric === METRIC.outcome) {
            const outcome = OUTCOME_CODES[bucket];
            if (outcome) outcomes[outcome] += n;
          } else if (metric === METRIC.runTime) runTime.set(bucket, n);
          else if (metric === METRIC.queueWait) queueWait.set(bucket, n);
          else if (metric === METRIC.maxRunTime) maxRunMs = n;
          else if (metric === METRIC.retries && bucket === 0) retryAttempts += n;
          else if (metric === METRIC.retries) retriedJobs += n;
        }
        const nowMinute = Math.floor(params.now / 60_000);
        const perMinute = new Map<number, { finished: number; completed: number }>();
        for (const row of this.#stmt(q.STATS_PER_MINUTE).all({ from: nowMinute - 60 }) as Row[]) {
          const minute = num(row, "minute");
          const outcome = OUTCOME_CODES[num(row, "bucket")];
          if (outcome === "interrupted" || outcome === undefined) continue;
          const n = num(row, "n");
          const entry = perMinute.get(minute) ?? { finished: 0, completed: 0 };
          entry.finished += n;
          if (outcome === "completed") entry.completed += n;
          perMinute.set(minute, entry);
        }
        const topFailing = (this.#stmt(q.TOP_FAILING).all({
          since: params.since,
          scan: TOP_FAILING_SCAN,
          limit: params.topFailing,
        }) as Row[]).map((row) => ({
          command: str(row, "command"),
          failures: num(row, "failures"),
          lastError: strOrNull(row, "last_error"),
          lastExitCode: numOrNull(row, "last_exit_code"),
        }));
        const oldest = this.#stmt(q.JOB_OLDEST_DUE).get({ now: params.now }) as Row | undefined;
        return {
          outcomes,
          runTime,
          queueWait,
          maxRunMs,
          retryAttempts,
          retriedJobs,
          perMinute,
          topFailing,
          oldestDueAt: oldest ? num(oldest, "run_at") : null,
          oldestDueJob: oldest ? str(oldest, "id") : null,
        };
      })
    );
  }

  jobPrune(
    params: { states: readonly JobState[]; finishedBefore: number; limit: number },
  ): Promise<string[]> {
    return this.#run(() =>
      this.#write(() => {
        const ids: string[] = [];
        for (const state of params.states) {
          const rows = this.#stmt(q.JOB_PRUNE_SELECT).all({
            state,
            before: params.finishedBefore,
            limit: params.limit - ids.length,
          }) as Row[];
          for (const row of rows) {
            const seq = num(row, "seq");
            this.#stmt(q.OUTPUT_DELETE).run({ seq });
            this.#stmt(q.ATTEMPT_DELETE).run({ seq });
            this.#stmt(q.JOB_DELETE).run({ seq });
            ids.push(str(row, "id"));
          }
          if (ids.length >= params.limit) break;
        }
        return ids;
      })
    );
  }

  jobPruneCount(
    params: { states: readonly JobState[]; finishedBefore: number },
  ): Promise<number> {
    return this.#run(() =>
      this.#read(() =>
        params.states.reduce(
          (sum, state) =>
            sum +
            num(
              this.#stmt(q.JOB_PRUNE_COUNT).get({ state, before: params.finishedBefore }) as Row,
              "n",
            ),
          0,
        )
      )
    );
  }

  maintain(params: MaintainParams): Promise<void> {
    return this.#run(() => {
      this.#write(() => {
        this.#stmt(q.STATS_PRUNE).run({ before: Math.floor(params.statsBefore / 60_000) });
        // Whole hours only: the first minute of each hour holds the hour's figures.
        const before = Math.floor(params.compactBefore / 3_600_000) * 60;
        this.#stmt(q.STATS_COMPACT).run({ before });
        this.#stmt(q.STATS_COMPACT_DELETE).run({ before });
      });
      // Resets the -wal file when no reader holds it; with readers it does what it can.
      this.#read(() => this.#stmt("PRAGMA wal_checkpoint(TRUNCATE)").get());
    });
  }

  jobListProcessing(): Promise<ProcessingJob[]> {
    return this.#run(() =>
      this.#read(() =>
        (this.#stmt(q.JOB_LIST_PROCESSING).all() as Row[]).map((row) => ({
          job: toJob(row),
          owner: row.w_id === null ? null : toWorker(row, "w_"),
          pid: numOrNull(row, "a_pid"),
          pidStart: numOrNull(row, "a_pid_start"),
          host: strOrNull(row, "a_host"),
        }))
      )
    );
  }

  attemptOutput(
    params: { jobId: string; attempt: number },
  ): Promise<{ stdout: OutputCapture; stderr: OutputCapture } | undefined> {
    return this.#run(() =>
      this.#read(() => {
        const rows = this.#stmt(q.OUTPUT_GET).all({
          id: params.jobId,
          attempt: params.attempt,
        }) as Row[];
        if (rows.length === 0) return undefined;
        return {
          stdout: toCapture(rows.find((r) => r.stream === 1)),
          stderr: toCapture(rows.find((r) => r.stream === 2)),
        };
      })
    );
  }

  workerRegister(params: { worker: WorkerRecord }): Promise<void> {
    const w = params.worker;
    return this.#run(() =>
      this.#write(() => {
        this.#stmt(q.WORKER_INSERT).run({
          id: w.id,
          pid: w.pid,
          host: w.host,
          pid_start: w.pidStart,
          state: w.state,
          current_job: w.currentJob,
          started_at: w.startedAt,
          heartbeat_at: w.heartbeatAt,
          jobs_done: w.jobsDone,
          jobs_failed: w.jobsFailed,
          supervisor_pid: w.supervisorPid,
        });
      })
    );
  }

  workerHeartbeat(
    params: {
      id: string;
      now: number;
      lease?: { jobId: string; attempt: number; leaseMs: number };
    },
  ): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => {
        this.#stmt(q.WORKER_HEARTBEAT).run({ id: params.id, now: params.now });
        if (!params.lease) return true;
        return this.#stmt(q.JOB_RENEW_LEASE).run({
          id: params.lease.jobId,
          worker_id: params.id,
          attempt: params.lease.attempt,
          lease_expires_at: params.now + params.lease.leaseMs,
        }).changes === 1;
      })
    );
  }

  workerSetState(params: { id: string; now: number; state: WorkerState }): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#stmt(q.WORKER_SET_STATE).run({ id: params.id, now: params.now, state: params.state });
      })
    );
  }

  workerRemove(params: { id: string }): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#stmt(q.WORKER_DELETE).run({ id: params.id });
      })
    );
  }

  workerList(): Promise<WorkerRecord[]> {
    return this.#run(() =>
      this.#read(() => (this.#stmt(q.WORKER_LIST).all() as Row[]).map((row) => toWorker(row)))
    );
  }

  configGetAll(): Promise<Record<string, string>> {
    return this.#run(() =>
      this.#read(() => {
        const out: Record<string, string> = {};
        for (const row of this.#stmt(q.CONFIG_ALL).all() as Row[]) {
          out[str(row, "key")] = str(row, "value");
        }
        return out;
      })
    );
  }

  configSet(params: { key: string; value: string }): Promise<void> {
    return this.#run(() =>
      this.#write(() => {
        this.#stmt(q.CONFIG_SET).run({ key: params.key, value: params.value });
      })
    );
  }

  configUnset(params: { key: string }): Promise<boolean> {
    return this.#run(() =>
      this.#write(() => this.#stmt(q.CONFIG_UNSET).run({ key: params.key }).changes === 1)
    );
  }

  changeToken(): Promise<number> {
    return this.#run(() =>
      this.#read(() => (this.#stmt("PRAGMA data_version").get() as Row).data_version as number)
    );
  }

  abandon(): void {
    if (!this.#db.isOpen) return;
    try {
      // Through the connection's own file handles: the old -wal, wherever it is now.
      this.#db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
    } catch { /* best effort: the file may be gone with its directory */ }
    this.#statements.clear();
    this.#db.close();
  }

  close(): void {
    this.#statements.clear();
    if (!this.#db.isOpen) return;
    if (this.#damaged) closeWithoutCheckpoint(this.#db, this.location);
    else this.#db.close();
  }
}
