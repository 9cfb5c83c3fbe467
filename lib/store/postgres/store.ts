/**
 * The networked store: one PostgreSQL schema through postgres.js, opened by `openPostgresStore`
 * (open.ts), for workers on one host or many.
 *
 * Every write is one short transaction (READ COMMITTED); where it reads and then writes, the
 * statement itself locks what it depends on (queries.ts says how, per statement), so concurrent
 * writers on any number of hosts cannot slip in between. No transaction stays open after a
 * method returns, so none is open while a job runs.
 *
 * Time is the database's (`now()`), so that hosts with skewed clocks agree on every lease and due
 * time; a store opened with a test clock stamps that instead (queries.ts, `{NOW}`).
 *
 * Every call has a client-side deadline on top of the server's `statement_timeout`: a half-open
 * TCP connection (a cable pulled, a stalled proxy) can leave a query pending for ever
 * (porsager/postgres#1089). When a deadline passes, the call fails as unreachable and the pool
 * is replaced, so that no later call queues behind the stuck one.
 *
 * @module
 */

import type { Clock } from "../../clock.ts";
import { ConflictError, NotFoundError } from "../../errors.ts";
import type { Committed, FaultHook } from "../../fault.ts";
import type { Attempt, Job } from "../../job/job.ts";
import { DEFAULT_QUEUE } from "../../job/job.ts";
import { priorityMask } from "../../job/filter.ts";
import {
  CANCELLABLE_STATES,
  JOB_STATES,
  READY_STATES,
  RETRYABLE_STATES,
  TERMINAL_STATES,
} from "../../job/state.ts";
import type { JobState } from "../../job/state.ts";
import {
  cancelConflict,
  deleteConflict,
  dependencyCancelReason,
  dependencyFailed,
  dependencyNotFound,
  dlqRetryConflict,
  jobRefused,
  retryConflict,
  retryDependencyConflict,
  runNowConflict,
  uniqueKeyConflict,
} from "../conflicts.ts";
import type { FinishedAttemptFacts, StatIncrement, StatsFigures } from "../../metrics.ts";
import { statIncrements } from "../../metrics.ts";
import { OUTCOME_CODES } from "../../stats.ts";
import type {
  AttemptOutputParams,
  AttemptProcessParams,
  AttemptRef,
  CancelRequest,
  DueCursor,
  JobCancelParams,
  JobCancelResult,
  JobClaimParams,
  JobCounts,
  JobDependencies,
  JobDlqRetryParams,
  JobFinishAndClaimParams,
  JobFinishAndClaimResult,
  JobFinishParams,
  JobInsertParams,
  JobInsertResult,
  JobLink,
  JobListParams,
  JobListResult,
  JobPruneParams,
  JobRetryParams,
  JobSearchCountResult,
  JobSearchParams,
  JobSearchResult,
  JobSearchScheduledParams,
  JobSearchScheduledResult,
  JobTakeOverParams,
  MaintenanceTurnParams,
  NewSchedule,
  NewWorker,
  OutputCapture,
  ProcessingJob,
  QueueListResult,
  QueuePauseParams,
  QueueRecord,
  QueueScope,
  ScheduledCount,
  ScheduleDueResult,
  ScheduleFireParams,
  ScheduleFireResult,
  ScheduleRecord,
  ScheduleRunNowParams,
  StatsCompactParams,
  StatsParams,
  StopRequestMode,
  Store,
  StoreCapabilities,
  WaitForChangeParams,
  WorkerHeartbeatParams,
  WorkerHeartbeatResult,
  WorkerRecord,
  WorkerState,
} from "../store.ts";
import type { PgPool, PgQueryRunner, PgTarget, SessionLimits } from "./connect.ts";
import { createPool } from "./connect.ts";
import { mapPgError, unreachable } from "./errors.ts";
import type { ChangeKind } from "./listen.ts";
import { ChangeWatcher, channelName, Notifier, withDeadline } from "./listen.ts";
import * as q from "./queries.ts";
import type { Statement } from "./queries.ts";
import type { Row } from "./rows.ts";
import {
  bool,
  captureJson,
  num,
  numOrNull,
  str,
  strOrNull,
  toAttempt,
  toCapture,
  toJob,
  toSchedule,
  toWorker,
} from "./rows.ts";

/** How the opener hands over a ready pool. */
export interface PostgresStoreOptions {
  target: PgTarget;
  limits: SessionLimits;
  pool: PgPool;
  /** application_name of the store's sessions (for pg_stat_activity), also of a new pool. */
  name: string;
  queueId: string;
  /** Tests only: stamp and compare times with this clock instead of the database's. */
  testClock?: Clock | undefined;
  fault?: FaultHook | undefined;
  /** Tests only: safety poll intervals and the listener's health check. */
  safetyPollMs?: { listening: number; polling: number };
  healthCheckMs?: number;
  /** Tests only: notifications are heard but ignored (as if every one were lost). */
  ignoreNotifications?: boolean;
}

/** How many of the window's most recent failures `metrics` groups into top failing commands. */
const TOP_FAILING_SCAN = 1000;
/** Delta rows past which a read of the counts folds them (as `maintain()` does). */
const FOLD_AFTER_DELTAS = 1000;

type Values = Record<string, unknown>;

/** Thrown (not an Error: nothing maps it) to roll back a fire that another one got to first. */
const ALREADY_FIRED = Symbol("already fired");

/** A job that others may wait for, which ended dead or cancelled (or was cancelled for one). */
interface EndedDependency {
  seq: number;
  id: string;
  state: "dead" | "cancelled";
  /** The first reason in the chain (for jobs further down). */
  because: string | null;
}
type Query = (template: string, values?: Values) => Promise<Row[]>;

/** A batch of this many jobs or more may analyze the jobs table (`jobInsertMany`). */
const ANALYZE_BATCH = 500;

export class PostgresStore implements Store {
  readonly location: string;
  readonly capabilities: StoreCapabilities;
  readonly queueId: string;
  readonly #o: PostgresStoreOptions;
  readonly #channel: string;
  readonly #statements = new Map<string, Statement>();
  readonly #fault: FaultHook;
  readonly #watcher: ChangeWatcher;
  readonly #notifier: Notifier;
  #pool: PgPool | null;
  /** Pools replaced after a deadline passed, still closing. */
  #closing = new Set<Promise<void>>();
  #closed = false;

  /** Use `openPostgresStore` (open.ts), which connects, checks and migrates first. */
  constructor(options: PostgresStoreOptions) {
    this.#o = options;
    this.location = options.target.display;
    this.queueId = options.queueId;
    this.#pool = options.pool;
    this.#fault = options.fault ?? (() => {});
    this.#channel = channelName(options.target.schema);
    this.capabilities = {
      changeNotification: options.target.listen,
      multiHost: true,
      pidRecovery: true,
    };
    this.#watcher = new ChangeWatcher({
      target: options.target,
      limits: options.limits,
      channel: this.#channel,
      listen: options.target.listen,
      snapshot: async () => str((await this.#read((run) => run(q.SNAPSHOT)))[0]!, "snapshot"),
      ...(options.safetyPollMs ? { safetyPollMs: options.safetyPollMs } : {}),
      ...(options.healthCheckMs ? { healthCheckMs: options.healthCheckMs } : {}),
      ...(options.ignoreNotifications ? { ignoreNotifications: true } : {}),
    });
    this.#notifier = new Notifier({
      send: (kind) =>
        this.#read((run) => run(q.NOTIFY, { channel: this.#channel, payload: kind }))
          .then(() => {}),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Calls, transactions, deadlines
  // -------------------------------------------------------------------------------------------

  #compiled(template: string): Statement {
    let statement = this.#statements.get(template);
    if (statement === undefined) {
      statement = q.compile(template, this.#o.target.schema);
      this.#statements.set(template, statement);
    }
    return statement;
  }

  #runner(runner: PgQueryRunner, now: number | null): Query {
    return (template, values = {}) => {
      const statement = this.#compiled(template);
      const params = statement.names.map((name) => {
        if (name === "now") return now;
        if (!(name in values)) throw new TypeError(`query parameter :${name} is missing`);
        const value = values[name];
        return value === undefined ? null : value;
      });
      return runner.unsafe(statement.text, params, { prepare: true });
    };
  }

  #currentPool(): PgPool {
    if (this.#closed) {
      throw unreachable(this.location, "the store is closed");
    }
    this.#pool ??= createPool(this.#o.target, { limits: this.#o.limits, name: this.#o.name });
    return this.#pool;
  }

  /**
   * Runs `fn` against the pool under the client-side deadline, mapping errors. A call that
   * passes its deadline replaces the pool: its connections may be half-open.
   */
  #call<T>(fn: (pool: PgPool) => Promise<T>): Promise<T> {
    let pool: PgPool;
    let call: Promise<T>;
    try {
      pool = this.#currentPool();
      call = fn(pool);
    } catch (error) {
      // Never a synchronous throw: callers use .catch() (see the contract).
      return Promise.reject(mapPgError(error, this.location));
    }
    const ms = this.#o.limits.deadlineMs;
    return withDeadline(call, ms, () => {
      this.#replacePool(pool);
      return unreachable(this.location, `no answer within ${ms / 1000} s`);
    }).catch((error: unknown) => {
      throw mapPgError(error, this.location);
    });
  }

  #replacePool(pool: PgPool): void {
    if (this.#pool !== pool) return;
    this.#pool = null;
    const closing = pool.end({ timeout: 0 }).catch(() => {});
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
  }

  #now(): number | null {
    return this.#o.testClock ? this.#o.testClock.now() : null;
  }

  /** A read: statements in autocommit, on the pool. */
  #read<T>(fn: (run: Query) => Promise<T>): Promise<T> {
    const now = this.#now();
    return this.#call((pool) => fn(this.#runner(pool, now)));
  }

  /** A write: `fn` in one transaction; the fault points of `faultPrefix` around its commit. */
  async #write<T>(fn: (run: Query) => Promise<T>, faultPrefix?: Committed): Promise<T> {
    // One reading of a test clock per transaction, as the database's now() is one per transaction.
    const now = this.#now();
    const result = await this.#call((pool) =>
      pool.begin(async (tx) => {
        const value = await fn(this.#runner(tx, now));
        if (faultPrefix) this.#fault(`${faultPrefix}:before-commit`);
        return value;
      })
    );
    if (faultPrefix) this.#fault(`${faultPrefix}:after-commit`);
    return result;
  }

  /**
   * A write that is one statement: in autocommit (two round trips fewer than BEGIN … COMMIT),
   * unless a fault hook wants its points around the commit.
   */
  #writeOne<T>(fn: (run: Query) => Promise<T>, faultPrefix?: Committed): Promise<T> {
    if (this.#o.fault === undefined) return this.#read(fn);
    return this.#write(fn, faultPrefix);
  }

  #notifyInTransaction(run: Query): Promise<Row[]> {
    this.#notifier.sentInTransaction();
    return run(q.NOTIFY, { channel: this.#channel, payload: "work" });
  }

  #announce(kind: ChangeKind): void {
    if (!this.#closed) this.#notifier.changed(kind);
  }

  now(): Promise<number> {
    return this.#read(async (run) => num((await run(q.STORE_NOW))[0]!, "now"));
  }

  // -------------------------------------------------------------------------------------------
  // Jobs
  // -------------------------------------------------------------------------------------------

  async jobInsertMany(params: JobInsertParams): Promise<JobInsertResult> {
    if (params.jobs.length === 0) return { jobs: [], inserted: 0, kept: [] };
    const result = await this.#write(async (run) => {
      const result = await this.#insertJobs(run, params);
      if (result.inserted > 0) await this.#notifyInTransaction(run);
      return result;
    }, "enqueue");
    if (result.inserted >= ANALYZE_BATCH) await this.#analyzeAfter(result.inserted);
    return result;
  }

  /**
   * After a batch of `inserted` jobs: the jobs table is analyzed when the batch is at least as
   * large as the table was at its last ANALYZE (never analyzed: always). Until autovacuum gets to
   * it (a minute or more), the planner would take a table filled by one batch for the near-empty
   * one it last saw, and plan the claim as walks of every due job (bench/RESULTS.md,
   * PostgreSQL); the workers' cached plans are remade once the statistics change. Rare by
   * construction (the table must have doubled), and best effort: the jobs are committed, and a
   * role that does not own the table is skipped by PostgreSQL with a warning.
   */
  async #analyzeAfter(inserted: number): Promise<void> {
    try {
      await this.#read(async (run) => {
        const [row] = await run(q.JOBS_ANALYZED_ROWS, { schema: this.#o.target.schema });
        if (row !== undefined && num(row, "reltuples") <= inserted) await run(q.JOBS_ANALYZE);
      });
    } catch {
      // Best effort (see above): autovacuum analyzes the table in its own time.
    }
  }

  /** Inserts jobs inside the caller's transaction (see `jobInsertMany`); notifies nobody. */
  async #insertJobs(run: Query, params: JobInsertParams): Promise<JobInsertResult> {
    const input = params.jobs.map((job, ord) => ({
      ord,
      id: job.id ?? null,
      command: job.command,
      priority: job.priority,
      max_retries: job.maxRetries,
      timeout_ms: job.timeoutMs,
      cwd: job.cwd,
      env: job.env,
      run_at: job.runAt,
      delay_ms: job.delayMs,
      queue: job.queue ?? DEFAULT_QUEUE,
      after_ids: job.after?.length ? job.after : null,
      unique_key: job.uniqueKey ?? null,
    }));
    const insert = (rows: typeof input) =>
      run(q.JOB_INSERT, { jobs: rows, default_max_retries: params.defaultMaxRetries });
    const jobs: Job[] = new Array(params.jobs.length);
    const kept: number[] = [];
    let inserted = 0;
    for (const row of await insert(input)) {
      const ord = num(row, "input_ord");
      if (row.seq !== null && row.seq !== undefined) {
        jobs[ord] = toJob(row);
        inserted++;
        continue;
      }
      // Not inserted: its unique key is held (by a job committed meanwhile, or one earlier in
      // the batch), or its id is taken. Looked at again until one of those holds or it goes in.
      for (;;) {
        const key = input[ord]!.unique_key;
        const [holder] = key === null ? [] : await run(q.JOB_UNIQUE_HOLDER, { key });
        if (holder) {
          if (params.ifExists !== "keep") {
            throw uniqueKeyConflict(key!, str(holder, "id"), str(holder, "state"));
          }
          jobs[ord] = toJob(holder);
          kept.push(ord);
          break;
        }
        const id = input[ord]!.id;
        if (id !== null) {
          const [existing] = await run(q.JOB_GET, { id });
          if (existing) {
            if (params.ifExists !== "keep") {
              throw new ConflictError(`Job "${id}" already exists`, {
                subject: id,
                reason: "id_exists",
              });
            }
            jobs[ord] = toJob(existing);
            kept.push(ord);
            break;
          }
        }
        // A generated id that a user took as theirs (it skips to a new number), or a key or id
        // freed meanwhile: again.
        const [again] = await insert([input[ord]!]);
        if (again!.seq !== null && again!.seq !== undefined) {
          jobs[ord] = toJob(again!);
          inserted++;
          break;
        }
      }
    }
    if (params.jobs.some((job) => job.after?.length)) await this.#linkDependencies(run, jobs, kept);
    return { jobs, inserted, kept };
  }

  /**
   * The edges of a batch's new jobs that wait for others: each id names a job inserted earlier
   * in the batch, or one in the database (locked, see `JOB_DEPS_LOCK`); one inserted later in
   * the batch is not found (so no cycle can be built), nor is one that does not exist.
   */
  async #linkDependencies(run: Query, jobs: Job[], kept: readonly number[]): Promise<void> {
    const keptSet = new Set(kept);
    const batch = new Map<string, { ord: number; seq: number }>();
    jobs.forEach((job, ord) => {
      if (!keptSet.has(ord)) batch.set(job.id, { ord, seq: job.seq });
    });
    const outside = new Set<string>();
    jobs.forEach((job, ord) => {
      if (keptSet.has(ord)) return;
      for (const id of job.after) {
        const mine = batch.get(id);
        if (mine === undefined) outside.add(id);
        else if (mine.ord >= ord) throw dependencyNotFound(id);
      }
    });
    const found = new Map<string, Row>();
    if (outside.size > 0) {
      for (const row of await run(q.JOB_DEPS_LOCK, { ids: [...outside] })) {
        found.set(str(row, "id"), row);
      }
    }
    const edges: { job_seq: number; dep_seq: number; dep_id: string; met: boolean }[] = [];
    const depended = new Set<number>();
    jobs.forEach((job, ord) => {
      if (keptSet.has(ord)) return;
      for (const id of job.after) {
        const mine = batch.get(id);
        if (mine !== undefined) {
          edges.push({ job_seq: job.seq, dep_seq: mine.seq, dep_id: id, met: false });
          depended.add(mine.seq);
          continue;
        }
        const row = found.get(id);
        if (row === undefined) throw dependencyNotFound(id);
        const state = str(row, "state");
        if (state === "dead" || state === "cancelled") throw dependencyFailed(id, state);
        edges.push({
          job_seq: job.seq,
          dep_seq: num(row, "seq"),
          dep_id: id,
          met: state === "completed",
        });
      }
    });
    if (depended.size > 0) await run(q.JOB_MARK_HAS_DEPENDENTS, { seqs: [...depended] });
    if (edges.length === 0) return;
    const counts = new Map<number, number>();
    for (const row of await run(q.JOB_DEPS_INSERT, { edges })) {
      counts.set(num(row, "seq"), num(row, "deps_left"));
    }
    jobs.forEach((job, ord) => {
      if (!keptSet.has(ord)) jobs[ord] = { ...job, waitingOn: counts.get(job.seq) ?? 0 };
    });
  }

  /**
   * Jobs that ended dead or cancelled: the jobs waiting for them are cancelled, and theirs, down
   * the chain, in the caller's transaction. Returns the ids cancelled.
   */
  async #cancelDependents(run: Query, ended: EndedDependency[]): Promise<string[]> {
    const cancelled: string[] = [];
    for (let i = 0; i < ended.length; i++) {
      const dep = ended[i]!;
      const reason = dependencyCancelReason(dep.id, dep.state, dep.because);
      for (const row of await run(q.DEPENDENTS_CANCEL, { dep_seq: dep.seq, reason })) {
        cancelled.push(str(row, "id"));
        if (bool(row, "has_dependents")) {
          ended.push({
            seq: num(row, "seq"),
            id: str(row, "id"),
            state: "cancelled",
            because: dep.because ?? reason,
          });
        }
      }
    }
    return cancelled;
  }

  /**
   * Retried jobs wait again for what has not completed; one whose dependency is dead, cancelled
   * or deleted is refused (retry them together). Returns the jobs as they are now.
   */
  async #rewait(run: Query, jobs: Job[]): Promise<Job[]> {
    const out: Job[] = [];
    for (const job of jobs) {
      if (job.after.length === 0) {
        out.push(job);
        continue;
      }
      for (const row of await run(q.JOB_DEPS_UNMET, { seq: job.seq })) {
        const state = strOrNull(row, "state");
        if (state === null || state === "dead" || state === "cancelled") {
          throw retryDependencyConflict(job.id, str(row, "dep_id"), state);
        }
      }
      out.push(toJob((await run(q.JOB_SET_DEPS_LEFT, { seq: job.seq }))[0]!));
    }
    return out;
  }

  /**
   * Before a retry of job `id`: a unique key that another live job holds is a conflict (checked
   * first: a failed statement would end the transaction; the unique index still decides a race).
   */
  async #checkRetryKey(run: Query, id: string): Promise<void> {
    const [job] = await run(q.JOB_GET, { id });
    const key = job === undefined ? null : strOrNull(job, "unique_key");
    if (key === null || ["pending", "failed", "processing"].includes(str(job!, "state"))) return;
    const [holder] = await run(q.JOB_UNIQUE_HOLDER, { key });
    if (holder) throw uniqueKeyConflict(key, str(holder, "id"), str(holder, "state"));
  }

  jobDependencies(params: { id: string; limit: number }): Promise<JobDependencies> {
    return this.#read(async (run) => {
      const link = (row: Row): JobLink => ({
        id: str(row, "id"),
        state: strOrNull(row, "state") as JobState | null,
        met: bool(row, "met"),
      });
      const [after, dependents] = await Promise.all([
        run(q.JOB_DEPS_AFTER, { id: params.id }),
        run(q.JOB_DEPS_DEPENDENTS, { id: params.id, limit: params.limit }),
      ]);
      return { after: after.map(link), dependents: dependents.map(link) };
    });
  }

  jobGet(params: { id: string }): Promise<Job | undefined> {
    return this.#read(async (run) => {
      const [row] = await run(q.JOB_GET, { id: params.id });
      return row ? toJob(row) : undefined;
    });
  }

  jobList(params: JobListParams): Promise<JobListResult> {
    const states = params.states === undefined ? undefined : [...new Set(params.states)];
    if (states?.length === 0) return Promise.resolve({ jobs: [], total: 0, older: false });
    return this.#read(async (run) => {
      // One row more than the page says whether older ones exist.
      const page = { before: params.beforeSeq ?? Number.MAX_SAFE_INTEGER, limit: params.limit + 1 };
      const [rows, counts] = await Promise.all([
        states === undefined
          ? run(q.JOB_LIST, page)
          : run(q.JOB_LIST_BY_STATES[states.length - 1]!, {
            ...page,
            ...Object.fromEntries(states.map((state, i) => [`s${i}`, state])),
          }),
        this.#counts(run),
      ]);
      return {
        jobs: rows.slice(0, params.limit).reverse().map(toJob),
        total: states === undefined
          ? counts.total
          : states.reduce((sum, state) => sum + counts[state], 0),
        older: rows.length > params.limit,
      };
    });
  }

  /** The parameters of a search's walk, or null when nothing can match. */
  #searchParams(params: Omit<JobSearchParams, "limit">): { n: number; params: Values } | null {
    const states = params.states === undefined ? [] : [...new Set(params.states)];
    if (params.states !== undefined && states.length === 0) return null;
    const mask = priorityMask(params.priorities);
    if (mask === 0) return null;
    return {
      n: states.length,
      params: {
        ...Object.fromEntries(states.map((state, i) => [`s${i}`, state])),
        before: params.beforeSeq ?? Number.MAX_SAFE_INTEGER,
        scan: params.scanLimit,
        priority_mask: mask,
        command: params.commandContains ?? null,
        created_from: params.createdFrom ?? null,
        created_to: params.createdTo ?? null,
        queues: params.queues === undefined ? null : [...params.queues],
        due_after: params.dueAfter ?? null,
        due_by: params.dueBy ?? null,
      },
    };
  }

  jobSearchScheduled(params: JobSearchScheduledParams): Promise<JobSearchScheduledResult> {
    const empty = Promise.resolve({ jobs: [], next: null, truncated: false });
    const states = params.states === undefined
      ? null
      : READY_STATES.filter((state) => params.states!.includes(state));
    if (states?.length === 0) return empty;
    const mask = priorityMask(params.priorities);
    if (mask === 0) return empty;
    if (params.scanLimit <= 0) return empty;
    // Due after now: the cursor starts past every job due at `now` or before.
    const from: DueCursor = params.after !== undefined && params.after.runAt > params.now
      ? params.after
      : { runAt: params.now, seq: Number.MAX_SAFE_INTEGER };
    const walk: Values = {
      after_run_at: from.runAt,
      after_seq: from.seq,
      scan: params.scanLimit,
      priority_mask: mask,
      command: params.commandContains ?? null,
      created_from: params.createdFrom ?? null,
      created_to: params.createdTo ?? null,
      queues: params.queues === undefined ? null : [...params.queues],
      due_after: null,
      due_by: params.dueBy ?? null,
      states,
    };
    return this.#read(async (run) => {
      // One match more than the page says whether later matches exist.
      const want = params.limit + 1;
      const rows = await run(q.JOB_SEARCH_SCHEDULED, { ...walk, want });
      const jobs = rows.slice(0, params.limit).map(toJob);
      const cursor = (job: Job): DueCursor => ({ runAt: job.runAt, seq: job.seq });
      if (rows.length === want) return { jobs, next: cursor(jobs.at(-1)!), truncated: false };
      // Fewer: the walk ended, or its budget did. Truncated only if later jobs are left.
      const scan = (await run(q.JOB_SEARCH_SCHEDULED_SCAN, walk))[0]!;
      if (num(scan, "scanned") < params.scanLimit) return { jobs, next: null, truncated: false };
      const stop = { runAt: num(scan, "last_run_at"), seq: num(scan, "last_seq") };
      const later = (await run(q.JOB_SEARCH_SCHEDULED_SCAN, {
        ...walk,
        after_run_at: stop.runAt,
        after_seq: stop.seq,
        scan: 1,
      }))[0]!;
      return num(later, "scanned") > 0
        ? { jobs, next: stop, truncated: true }
        : { jobs, next: null, truncated: false };
    });
  }

  jobSearch(params: JobSearchParams): Promise<JobSearchResult> {
    const walk = this.#searchParams(params);
    if (walk === null) return Promise.resolve({ jobs: [], nextBeforeSeq: null, truncated: false });
    return this.#read(async (run) => {
      // One match more than the page says whether older matches exist.
      const want = params.limit + 1;
      const rows = params.scanLimit > 0
        ? await run(q.JOB_SEARCH[walk.n]!, { ...walk.params, want })
        : [];
      const jobs = rows.slice(0, params.limit).map(toJob);
      if (rows.length === want) return { jobs, nextBeforeSeq: jobs.at(-1)!.seq, truncated: false };
      // Fewer: the walk ended, or its budget did. Truncated only if older jobs are left.
      const scan = params.scanLimit > 0
        ? (await run(q.JOB_SEARCH_SCAN[walk.n]!, walk.params))[0]!
        : undefined;
      const scanned = scan === undefined ? 0 : num(scan, "scanned");
      if (scanned < params.scanLimit) return { jobs, nextBeforeSeq: null, truncated: false };
      const stop = scan === undefined ? walk.params.before as number : num(scan, "low");
      const older =
        (await run(q.JOB_SEARCH_SCAN[walk.n]!, { ...walk.params, before: stop, scan: 1 }))[0]!;
      return num(older, "scanned") > 0
        ? { jobs, nextBeforeSeq: stop, truncated: true }
        : { jobs, nextBeforeSeq: null, truncated: false };
    });
  }

  jobSearchCount(params: Omit<JobSearchParams, "limit">): Promise<JobSearchCountResult> {
    const walk = this.#searchParams(params);
    if (walk === null) return Promise.resolve({ count: 0, complete: true });
    return this.#read(async (run) => {
      const scan = params.scanLimit > 0
        ? (await run(q.JOB_SEARCH_SCAN[walk.n]!, walk.params))[0]!
        : undefined;
      const scanned = scan === undefined ? 0 : num(scan, "scanned");
      const count = scan === undefined ? 0 : num(scan, "hits");
      if (scanned < params.scanLimit) return { count, complete: true };
      const stop = scan === undefined ? walk.params.before as number : num(scan, "low");
      const older =
        (await run(q.JOB_SEARCH_SCAN[walk.n]!, { ...walk.params, before: stop, scan: 1 }))[0]!;
      return { count, complete: num(older, "scanned") === 0 };
    });
  }

  async #counts(run: Query): Promise<JobCounts> {
    const byState = new Map<string, number>();
    let deltas = 0;
    for (const row of await run(q.JOB_COUNTS)) {
      byState.set(str(row, "state"), num(row, "n"));
      deltas += num(row, "deltas");
    }
    this.#foldIfPiledUp(deltas);
    const counts = {} as JobCounts;
    let total = 0;
    for (const state of JOB_STATES) total += counts[state] = byState.get(state) ?? 0;
    counts.total = total;
    return counts;
  }

  /** Many deltas (no worker has folded them lately): fold now, in the background, best effort. */
  #foldIfPiledUp(deltas: number): void {
    if (deltas > FOLD_AFTER_DELTAS) void this.#foldCounts().catch(() => {});
  }

  #foldCounts(): Promise<void> {
    return this.#write(async (run) => {
      const [lock] = await run(q.JOB_COUNTS_FOLD_LOCK, { schema: this.#o.target.schema });
      if (bool(lock!, "locked")) await run(q.JOB_COUNTS_FOLD);
    });
  }

  jobCountByState(): Promise<JobCounts> {
    return this.#read((run) => this.#counts(run));
  }

  jobCountScheduled(): Promise<ScheduledCount> {
    return this.#read(async (run) => {
      const [row] = await run(q.JOB_COUNT_SCHEDULED);
      const scheduled = num(row!, "scheduled");
      return { scheduled, nextAt: scheduled === 0 ? null : numOrNull(row!, "next_at") };
    });
  }

  jobRunNow(params: { ids: readonly string[] }): Promise<Job[]> {
    return this.#write(async (run) => {
      const jobs = await eachOrRefused(
        run,
        new Set(params.ids),
        async (id) => (await run(q.JOB_RUN_NOW, { id }))[0],
        runNowConflict,
      );
      if (jobs.length > 0) await this.#notifyInTransaction(run);
      return jobs;
    });
  }

  jobDlqRetry(params: JobDlqRetryParams): Promise<Job[]> {
    return this.#write(async (run) => {
      let jobs: Job[];
      let ids = params.ids;
      // Dead jobs with unique keys go one by one, each key checked (a live job may hold it).
      if (ids === "all" && (await run(q.JOB_DEAD_KEYED, {})).length > 0) {
        ids = (await run(q.JOB_IDS_IN_STATES, { states: ["dead"] })).map((r) => str(r, "id"));
      }
      if (ids === "all") {
        jobs = (await run(q.JOB_DLQ_RETRY_ALL)).map(toJob);
      } else {
        jobs = await eachOrRefused(run, ids, async (id) => {
          await this.#checkRetryKey(run, id);
          return (await run(q.JOB_DLQ_RETRY, { id }))[0];
        }, dlqRetryConflict);
      }
      jobs = await this.#rewait(run, jobs);
      if (jobs.length > 0) await this.#notifyInTransaction(run);
      return jobs;
    }, "dlq-retry");
  }

  async jobCancel(params: JobCancelParams): Promise<JobCancelResult> {
    const result = await this.#write(async (run) => {
      const ids = Array.isArray(params.ids)
        ? [...new Set(params.ids as readonly string[])]
        : (await run(q.JOB_IDS_IN_STATES, {
          states: (params.ids as { states: readonly JobState[] }).states
            .filter((state) => CANCELLABLE_STATES.includes(state)),
        })).map((row) => str(row, "id"));
      if (ids.length === 0) return { cancelled: [], requested: [], dependents: [] };
      const locked = new Map(
        (await run(q.JOB_CANCEL_LOCK, { ids })).map((row) => [str(row, "id"), row]),
      );
      // Every id is looked at before anything changes: all or none.
      for (const id of ids) {
        const row = locked.get(id);
        if (row === undefined) {
          throw new NotFoundError(`Job "${id}" not found`, {
            subject: id,
            reason: "job_not_found",
          });
        }
        const state = str(row, "state") as JobState;
        if (!CANCELLABLE_STATES.includes(state)) throw cancelConflict(id, state);
      }
      const out: JobCancelResult = { cancelled: [], requested: [], dependents: [] };
      for (const id of ids) {
        const row = locked.get(id)!;
        const base = { seq: num(row, "seq"), reason: params.reason };
        let done: Row | undefined;
        if (str(row, "state") !== "processing") {
          // None: cancelled already as a dependent of one before it in this list.
          [done] = await run(q.JOB_CANCEL_WAITING, base);
        } else if (!bool(row, "armed")) {
          [done] = await run(q.JOB_CANCEL_RESERVED, {
            ...base,
            attempt: num(row, "attempts"),
          });
        } else {
          out.requested.push(toJob((await run(q.JOB_CANCEL_REQUEST, base))[0]!));
        }
        if (done === undefined) continue;
        out.cancelled.push(toJob(done));
        if (bool(done, "has_dependents")) {
          out.dependents.push(
            ...await this.#cancelDependents(run, [
              { seq: base.seq, id, state: "cancelled", because: null },
            ]),
          );
        }
      }
      const mine = new Set(out.cancelled.map((job) => job.id));
      out.dependents = out.dependents.filter((id) => !mine.has(id));
      return out;
    }, "cancel");
    // Owners of running jobs look for requests when anything changed.
    if (result.cancelled.length + result.requested.length > 0) this.#announce("change");
    return result;
  }

  jobCancelRequests(params: { workerId: string }): Promise<CancelRequest[]> {
    return this.#read(async (run) =>
      (await run(q.JOB_CANCEL_REQUESTS, { worker_id: params.workerId })).map((r) => ({
        jobId: str(r, "id"),
        attempt: num(r, "attempts"),
        workerId: str(r, "worker_id"),
        reason: str(r, "cancel_reason"),
      }))
    );
  }

  jobRetry(params: JobRetryParams): Promise<Job[]> {
    const states: JobState[] = params.force
      ? [...RETRYABLE_STATES, "completed"]
      : [...RETRYABLE_STATES];
    return this.#write(async (run) => {
      const jobs = await eachOrRefused(
        run,
        new Set(params.ids),
        async (id) => {
          await this.#checkRetryKey(run, id);
          return (await run(q.JOB_RETRY, { id, states }))[0];
        },
        (id, state) => retryConflict(id, state as JobState),
      );
      // After all of them: a job retried together with its dependency waits for it again.
      const rewaited = await this.#rewait(run, jobs);
      if (jobs.length > 0) await this.#notifyInTransaction(run);
      return rewaited;
    }, "dlq-retry");
  }

  jobDelete(params: { ids: readonly string[] }): Promise<string[]> {
    const ids = [...new Set(params.ids)];
    if (ids.length === 0) return Promise.resolve([]);
    return this.#write(async (run) => {
      // Locked first, then judged: all or none, and no retry slips in between.
      const locked = new Map(
        (await run(q.JOB_CANCEL_LOCK, { ids })).map((row) => [str(row, "id"), row]),
      );
      for (const id of ids) {
        const row = locked.get(id);
        if (row === undefined) {
          throw new NotFoundError(`Job "${id}" not found`, {
            subject: id,
            reason: "job_not_found",
          });
        }
        const state = str(row, "state") as JobState;
        if (!TERMINAL_STATES.includes(state)) throw deleteConflict(id, state);
      }
      // Attempts and output go with the job (foreign keys, ON DELETE CASCADE).
      await run(q.JOB_DELETE_SEQS, { seqs: ids.map((id) => num(locked.get(id)!, "seq")) });
      return ids;
    });
  }

  attemptList(params: { jobId: string }): Promise<Attempt[]> {
    return this.#read(async (run) =>
      (await run(q.ATTEMPT_LIST, { id: params.jobId })).map(toAttempt)
    );
  }

  attemptOutput(
    params: { jobId: string; attempt: number },
  ): Promise<{ stdout: OutputCapture; stderr: OutputCapture } | undefined> {
    return this.#read(async (run) => {
      const rows = await run(q.OUTPUT_GET, { id: params.jobId, attempt: params.attempt });
      if (rows.length === 0) return undefined;
      return {
        stdout: toCapture(rows.find((r) => num(r, "stream") === 1)),
        stderr: toCapture(rows.find((r) => num(r, "stream") === 2)),
      };
    });
  }

  async jobClaim(params: JobClaimParams): Promise<Job[]> {
    if (params.limit <= 0) return [];
    // A claim that may take from a limited queue locks its row first: a transaction. Otherwise
    // one statement in autocommit; if it finds a limited queue it left out, it claims again.
    if (this.#limited) return await this.#write((run) => this.#claim(run, params, true), "claim");
    const first = await this.#writeOne((run) => this.#claim(run, params, false), "claim");
    if (!this.#limited || first.length >= params.limit) return first;
    const more = await this.#write(
      (run) => this.#claim(run, { ...params, limit: params.limit - first.length }, true),
      "claim",
    );
    return [...first, ...more];
  }

  /**
   * Whether a limited queue may exist among those claims take from (learnt by the claims, so a
   * store that has none skips the lock statement).
   */
  #limited = true;

  /**
   * Claims inside the caller's statement run; `canLock`: the caller runs a transaction, so the
   * rows of limited queues can be locked for it (queries.ts, QUEUE_LOCK_LIMITED). A claim that
   * cannot lock leaves limited queues out, and when it comes back short, says whether one exists
   * (`#limited`) so that the caller claims again with the lock.
   */
  async #claim(run: Query, params: JobClaimParams, canLock: boolean): Promise<Job[]> {
    if (params.limit <= 0) return [];
    const queues = params.queues === undefined ? null : [...params.queues];
    let locked = false;
    if (this.#limited && canLock) {
      locked = (await run(q.QUEUE_LOCK_LIMITED, { queues })).length > 0;
      if (!locked) this.#limited = false;
    }
    const jobs = (await run(q.JOB_CLAIM, claimValues(params, locked))).map(toJob);
    if (!locked && jobs.length < params.limit) {
      const [row] = await run(q.QUEUE_LIMITED_EXISTS, { queues });
      if (bool(row!, "limited")) {
        this.#limited = true;
        if (canLock) {
          jobs.push(
            ...await this.#claim(run, { ...params, limit: params.limit - jobs.length }, true),
          );
        }
      }
    }
    return jobs;
  }

  attemptArm(params: readonly AttemptRef[]): Promise<boolean[]> {
    if (params.length === 0) return Promise.resolve([]);
    return this.#writeOne((run) => this.#arm(run, params), "arm");
  }

  async #arm(run: Query, refs: readonly AttemptRef[]): Promise<boolean[]> {
    if (refs.length === 0) return [];
    const rows = await run(q.ATTEMPT_ARM, { refs: refsJson(refs) });
    const armed = new Set(rows.map((row) => `${str(row, "job_id")}\0${num(row, "attempt")}`));
    return refs.map((ref) => armed.has(`${ref.jobId}\0${ref.attempt}`));
  }

  async jobUnclaim(params: AttemptRef): Promise<boolean> {
    const undone = await this.#writeOne(async (run) =>
      (await run(q.JOB_UNCLAIM, {
        id: params.jobId,
        worker_id: params.workerId,
        attempt: params.attempt,
      })).length === 1
    );
    if (undone) this.#announce("work");
    return undone;
  }

  jobNextDue(scope?: QueueScope): Promise<{ dueNow: boolean; nextDueInMs: number | null }> {
    return this.#read(async (run) => {
      const queues = scope?.queues === undefined ? null : [...scope.queues];
      const [row] = await run(q.QUEUE_NEXT_DUE, { queues });
      const nextAt = numOrNull(row!, "next_at");
      const now = num(row!, "now");
      return {
        dueNow: nextAt !== null && nextAt <= now,
        nextDueInMs: nextAt === null ? null : Math.max(0, nextAt - now),
      };
    });
  }

  attemptSetProcess(params: readonly AttemptProcessParams[]): Promise<boolean[]> {
    if (params.length === 0) return Promise.resolve([]);
    return this.#writeOne(async (run) => {
      const rows = await run(q.ATTEMPT_SET_PROCESS, {
        refs: params.map((p) => ({
          job_id: p.jobId,
          attempt: p.attempt,
          worker_id: p.workerId,
          pid: p.pid,
          pid_start: p.pidStart,
        })),
      });
      return matchRefs(params, rows);
    });
  }

  jobTakeOver(params: JobTakeOverParams): Promise<boolean> {
    return this.#writeOne(async (run) =>
      (await run(q.JOB_TAKE_OVER, {
        id: params.jobId,
        worker_id: params.workerId,
        attempt: params.attempt,
        new_worker_id: params.newWorkerId,
        lease_ms: params.leaseMs,
        require_expired: params.requireLeaseExpired,
      })).length === 1
    );
  }

  async attemptSaveOutput(params: readonly AttemptOutputParams[]): Promise<boolean[]> {
    if (params.length === 0) return [];
    const applied = await this.#writeOne(async (run) => {
      const rows = await run(q.OUTPUT_SAVE, {
        outputs: params.map((p) => outputJson(p, p.stdout, p.stderr, true)),
      });
      return matchRefs(params, rows);
    });
    if (applied.some(Boolean)) this.#announce("change");
    return applied;
  }

  async jobFinish(params: JobFinishParams): Promise<boolean> {
    const [applied] = (await this.#finishAll([params], undefined, params.decision.transition))
      .applied;
    return applied!;
  }

  jobFinishAndClaim(params: JobFinishAndClaimParams): Promise<JobFinishAndClaimResult> {
    // One fault prefix per transaction: the first outcome's (the suite kills at these points).
    const prefix: Committed | undefined = params.finish[0]?.decision.transition ??
      (params.claim ? "claim" : undefined);
    return this.#finishAll(params.finish, params.claim, prefix, params.arm ?? []);
  }

  /**
   * Outcomes (each fenced), their figures and output, the arms, then the claim: one statement
   * (queries.ts, JOB_FINISH_AND_CLAIM), so one round trip and one commit however many jobs it
   * moves. Waiters hear of it after the commit.
   */
  async #finishAll(
    finish: readonly JobFinishParams[],
    claim: JobClaimParams | undefined,
    prefix: Committed | undefined,
    arm: readonly AttemptRef[] = [],
  ): Promise<JobFinishAndClaimResult> {
    if (claim !== undefined && claim.limit <= 0) claim = undefined;
    if (finish.length === 0 && arm.length === 0) {
      return { applied: [], armed: [], claimed: claim ? await this.jobClaim(claim) : [] };
    }
    const values = {
      finish: finish.map((f, ord) => {
        const d = f.decision;
        const out = f.output ? captureJson(f.output.stdout) : null;
        const err = f.output ? captureJson(f.output.stderr) : null;
        return {
          ord,
          job_id: f.jobId,
          attempt: f.attempt,
          worker_id: f.workerId,
          state: d.state,
          refund: d.refund ? 1 : 0,
          run_in_ms: d.runInMs,
          terminal: d.terminal,
          error: d.error,
          exit_code: d.exitCode,
          outcome: d.outcome,
          outcome_code: OUTCOME_CODES.indexOf(d.outcome),
          signal: d.signal,
          require_expired: f.requireLeaseExpired === true,
          out_head: out?.head ?? null,
          out_tail: out?.tail ?? null,
          out_total: out?.total ?? null,
          err_head: err?.head ?? null,
          err_tail: err?.tail ?? null,
          err_total: err?.total ?? null,
        };
      }),
      arm: refsJson(arm),
      cancelled_code: OUTCOME_CODES.indexOf("cancelled"),
      ...(claim ? claimValues(claim) : NO_CLAIM),
    };
    // A claim that may take from a limited queue locks its row first (see `#claim`), and claims
    // in a statement after the outcomes', which sees the jobs that just ended as ended (the room
    // they leave is the successor's); otherwise the step is one statement, whose claim leaves
    // limited queues out (the jobs it ends are still processing in its snapshot).
    let rows: Row[];
    let claimedRows: Row[] | null = null;
    if (claim !== undefined && this.#limited) {
      const c = claim;
      [rows, claimedRows] = await this.#write(async (run) => {
        const queues = c.queues === undefined ? null : [...c.queues];
        const locked = (await run(q.QUEUE_LOCK_LIMITED, { queues })).length > 0;
        if (!locked) this.#limited = false;
        const step = await run(q.JOB_FINISH_AND_CLAIM, { ...values, ...NO_CLAIM });
        return [step, await run(q.JOB_CLAIM, claimValues(c, locked))] as const;
      }, prefix);
    } else {
      rows = await this.#writeOne((run) => run(q.JOB_FINISH_AND_CLAIM, values), prefix);
    }
    const first = rows[0]!;
    const appliedOrds = new Set(first.finish_applied as number[]);
    const armedRefs = new Set(
      (first.arm_applied as [string, number][]).map(([id, attempt]) => `${id}\0${attempt}`),
    );
    const result: JobFinishAndClaimResult = {
      applied: finish.map((_, ord) => appliedOrds.has(ord)),
      armed: arm.map((ref) => armedRefs.has(`${ref.jobId}\0${ref.attempt}`)),
      claimed: (claimedRows ?? rows).filter((row) => row.seq !== null && row.seq !== undefined)
        .map(toJob),
    };
    // Outcomes of jobs that others wait for release or cancel them in the same transaction: the
    // step left them (fenced, so nothing of theirs changed), and they are applied here.
    const deferred = (first.finish_deferred as number[] | undefined) ?? [];
    let released = false;
    if (deferred.length > 0) {
      const late = await this.#finishWithDependents(deferred.map((ord) => finish[ord]!), prefix);
      deferred.forEach((ord, i) => result.applied[ord] = late.applied[i]!);
      released = late.released;
    }
    const changed = finish.filter((_, i) => result.applied[i]);
    if (changed.length > 0) {
      // A job back in the queue (pending, or failed with its retry scheduled) is work for others.
      const work = released ||
        changed.some((f) => f.decision.state === "pending" || f.decision.state === "failed");
      this.#announce(work ? "work" : "change");
    }
    return result;
  }

  /**
   * Outcomes of jobs that others wait for, one transaction: each applied (fenced, as in the
   * step), then its dependents released (completed) or cancelled, down the chain (dead or
   * cancelled), with the figures and output. `released`: some waiting job became claimable.
   */
  async #finishWithDependents(
    finish: readonly JobFinishParams[],
    prefix: Committed | undefined,
  ): Promise<{ applied: boolean[]; released: boolean }> {
    const order = finish.map((_, i) => i).sort((a, b) =>
      finish[a]!.jobId < finish[b]!.jobId ? -1 : finish[a]!.jobId > finish[b]!.jobId ? 1 : 0
    );
    let released = false;
    const applied = await this.#write(async (run) => {
      released = false;
      const applied: boolean[] = new Array(finish.length).fill(false);
      const facts: FinishedAttemptFacts[] = [];
      const outputs: unknown[] = [];
      for (const i of order) {
        const f = finish[i]!;
        const d = f.decision;
        const [row] = await run(q.JOB_FINISH, {
          id: f.jobId,
          worker_id: f.workerId,
          attempt: f.attempt,
          state: d.state,
          refund: d.refund ? 1 : 0,
          run_in_ms: d.runInMs,
          terminal: d.terminal,
          error: d.error,
          exit_code: d.exitCode,
          outcome: d.outcome,
          signal: d.signal,
          require_expired: f.requireLeaseExpired === true,
        });
        if (!row) continue;
        applied[i] = true;
        if (bool(row, "has_dependents")) {
          const state = str(row, "state");
          const seq = num(row, "seq");
          if (state === "completed") {
            if ((await run(q.DEPS_RELEASE, { seq })).length > 0) released = true;
          } else if (state === "dead" || state === "cancelled") {
            await this.#cancelDependents(run, [{ seq, id: f.jobId, state, because: null }]);
          }
        }
        const startedAt = numOrNull(row, "started_at");
        if (startedAt !== null) {
          const now = num(row, "now");
          const dueAt = numOrNull(row, "due_at");
          facts.push({
            // A cancel requested meanwhile made the job cancelled (queries.ts, CANCEL_WINS_ONE).
            outcome: str(row, "state") === "cancelled" ? "cancelled" : d.outcome,
            earlierCharged: num(row, "earlier_charged"),
            runMs: Math.max(0, now - startedAt),
            waitMs: dueAt === null ? null : startedAt - dueAt,
          });
        }
        if (f.output) outputs.push(outputJson(f, f.output.stdout, f.output.stderr, false));
      }
      const increments = sumIncrements(facts.flatMap(statIncrements));
      if (increments.length > 0) await run(q.STATS_ADD, { increments });
      if (outputs.length > 0) await run(q.OUTPUT_SAVE, { outputs });
      return applied;
    }, prefix);
    return { applied, released };
  }

  jobListProcessing(): Promise<ProcessingJob[]> {
    return this.#read(async (run) => {
      const rows = await run(q.JOB_LIST_PROCESSING);
      return rows.map((row) => {
        const now = num(row, "now");
        const job = toJob(row);
        return {
          job,
          owner: row.w_id === null ? null : toWorker(row, now, "w_"),
          leaseExpired: bool(row, "lease_expired"),
          leaseOverdueMs: job.leaseExpiresAt !== null && job.leaseExpiresAt <= now
            ? now - job.leaseExpiresAt
            : null,
          armed: bool(row, "a_armed"),
          pid: numOrNull(row, "a_pid"),
          pidStart: numOrNull(row, "a_pid_start"),
          host: strOrNull(row, "a_host"),
        };
      });
    });
  }

  async #nowIn(run: Query): Promise<number> {
    return num((await run(q.STORE_NOW))[0]!, "now");
  }

  // -------------------------------------------------------------------------------------------
  // Figures and retention
  // -------------------------------------------------------------------------------------------

  statsFigures(params: StatsParams): Promise<StatsFigures> {
    return this.#read(async (run) => {
      const now = await this.#nowIn(run);
      const since = now - params.windowMs;
      const [window, lastHour, topFailing, oldest] = await Promise.all([
        run(q.STATS_WINDOW, { from: Math.floor(since / 60_000) }),
        run(q.STATS_PER_MINUTE, { from: Math.floor(now / 60_000) - 60 }),
        run(q.TOP_FAILING, { since, scan: TOP_FAILING_SCAN, limit: params.topFailing }),
        run(q.JOB_OLDEST_DUE),
      ]);
      return {
        now,
        since,
        window: window.map((row) => ({
          metric: num(row, "metric"),
          bucket: num(row, "bucket"),
          n: num(row, "n"),
        })),
        lastHour: lastHour.map((row) => ({
          minute: num(row, "minute"),
          bucket: num(row, "bucket"),
          n: num(row, "n"),
        })),
        topFailing: topFailing.map((row) => ({
          command: str(row, "command"),
          failures: num(row, "failures"),
          lastError: strOrNull(row, "last_error"),
          lastExitCode: numOrNull(row, "last_exit_code"),
        })),
        oldestDue: oldest[0]
          ? { job: str(oldest[0], "id"), dueAt: num(oldest[0], "run_at") }
          : null,
      };
    });
  }

  jobPrune(params: JobPruneParams & { limit: number; scanLimit?: number }): Promise<string[]> {
    return this.#write(async (run) => {
      const ids: string[] = [];
      for (const state of params.states) {
        if (ids.length >= params.limit) break;
        const rows = await run(q.JOB_PRUNE, {
          state,
          older_than_ms: params.olderThanMs,
          limit: params.limit - ids.length,
          scan: params.scanLimit ?? 0,
        });
        // RETURNING has no order: the first enqueued first, as they were chosen.
        rows.sort((a, b) => num(a, "seq") - num(b, "seq"));
        for (const row of rows) ids.push(str(row, "id"));
      }
      return ids;
    });
  }

  jobPruneCount(params: JobPruneParams): Promise<number> {
    return this.#read(async (run) => {
      let sum = 0;
      for (const state of params.states) {
        sum += num(
          (await run(q.JOB_PRUNE_COUNT, { state, older_than_ms: params.olderThanMs }))[0]!,
          "n",
        );
      }
      return sum;
    });
  }

  statsCompact(params: StatsCompactParams): Promise<void> {
    return this.#write(async (run) => {
      const now = await this.#nowIn(run);
      await run(q.STATS_PRUNE, { before: Math.floor((now - params.retainMs) / 60_000) });
      // Whole hours only: the first minute of each hour holds the hour's figures.
      await run(q.STATS_COMPACT, {
        before: Math.floor((now - params.minutesKeptMs) / 3_600_000) * 60,
      });
    });
  }

  /** Folds the count deltas into the counts (VACUUM is autovacuum's: see docs/design.md). */
  maintain(): Promise<void> {
    return this.#foldCounts();
  }

  // -------------------------------------------------------------------------------------------
  // Workers
  // -------------------------------------------------------------------------------------------

  workerRegister(params: { worker: NewWorker }): Promise<void> {
    const w = params.worker;
    return this.#writeOne(async (run) => {
      await run(q.WORKER_INSERT, {
        id: w.id,
        pid: w.pid,
        host: w.host,
        host_id: w.hostId,
        pid_start: w.pidStart,
        supervisor_pid: w.supervisorPid,
      });
    });
  }

  workerHeartbeat(params: WorkerHeartbeatParams): Promise<WorkerHeartbeatResult> {
    return this.#writeOne(async (run) => {
      const rows = await run(q.WORKER_HEARTBEAT, {
        id: params.id,
        jobs_done: params.totals.jobsDone,
        jobs_failed: params.totals.jobsFailed,
        busy_ms: params.totals.busyMs,
        leases: params.leases.map((l) => ({
          job_id: l.jobId,
          attempt: l.attempt,
          worker_id: l.workerId,
          lease_ms: l.leaseMs,
        })),
      });
      const renewed = matchRefs(params.leases, rows);
      const reasons = new Map(
        rows.filter((r) => r.cancel_reason !== null && r.cancel_reason !== undefined)
          .map((r) => [`${str(r, "job_id")}\0${num(r, "attempt")}`, str(r, "cancel_reason")]),
      );
      const lost: AttemptRef[] = [];
      const cancel: CancelRequest[] = [];
      params.leases.forEach((lease, i) => {
        const ref = { jobId: lease.jobId, attempt: lease.attempt, workerId: params.id };
        if (!renewed[i]) lost.push(ref);
        const reason = reasons.get(`${lease.jobId}\0${lease.attempt}`);
        if (renewed[i] && reason !== undefined) cancel.push({ ...ref, reason });
      });
      return { lost, cancel };
    });
  }

  workerSetState(params: { id: string; state: WorkerState }): Promise<void> {
    return this.#writeOne(async (run) => {
      await run(q.WORKER_SET_STATE, { id: params.id, state: params.state });
    });
  }

  workerRemove(params: { ids: readonly string[] }): Promise<void> {
    if (params.ids.length === 0) return Promise.resolve();
    return this.#writeOne(async (run) => {
      await run(q.WORKER_DELETE, { ids: [...params.ids] });
    });
  }

  workerList(): Promise<WorkerRecord[]> {
    return this.#read(async (run) => {
      const rows = await run(q.WORKER_LIST);
      if (rows.length === 0) return [];
      const now = num(rows[0]!, "now");
      return rows.map((row) => toWorker(row, now));
    });
  }

  workerStopRequest(params: { mode: StopRequestMode }): Promise<number> {
    return this.#writeOne(async (run) => {
      const [row] = await run(q.STOP_REQUEST, { key: `stop:${params.mode}` });
      // Workers that were idle look at once (they would at their next sweep anyway).
      this.#announce("work");
      return num(row!, "at");
    });
  }

  workerStopRequested(params: { id: string }): Promise<StopRequestMode | null> {
    return this.#read(async (run) => {
      const keys = (await run(q.STOP_REQUESTED, { id: params.id })).map((row) => str(row, "key"));
      return keys.includes("stop:force")
        ? "force"
        : keys.includes("stop:graceful")
        ? "graceful"
        : null;
    });
  }

  maintenanceTurn(params: MaintenanceTurnParams): Promise<boolean> {
    return this.#writeOne(async (run) =>
      (await run(q.MAINTENANCE_TURN, {
        key: `round:${params.name}`,
        every: Math.max(0, Math.round(params.everyMs)),
      })).length === 1
    );
  }

  // -------------------------------------------------------------------------------------------
  // Settings, writability, waiting, closing
  // -------------------------------------------------------------------------------------------

  // -------------------------------------------------------------------------------------------
  // Schedules
  // -------------------------------------------------------------------------------------------

  scheduleAdd(params: { schedule: NewSchedule }): Promise<ScheduleRecord> {
    const { schedule } = params;
    const spec = schedule.spec;
    return this.#write(async (run) => {
      const added = await run(q.SCHEDULE_INSERT, {
        name: schedule.name,
        kind: spec.kind,
        cron: spec.kind === "cron" ? spec.cron : null,
        time_zone: spec.kind === "cron" ? spec.timeZone : null,
        every_ms: spec.kind === "every" ? spec.everyMs : null,
        template: schedule.template,
        anchor: schedule.anchor,
        next_at: schedule.nextAt,
      });
      if (added.length !== 1) {
        throw new ConflictError(`Schedule "${schedule.name}" already exists`, {
          subject: schedule.name,
          reason: "schedule_exists",
        });
      }
      const [row] = await run(q.SCHEDULE_GET, { name: schedule.name });
      // Idle schedulers wait for work: a new schedule may fire before what they wait for.
      await this.#notifyInTransaction(run);
      return toSchedule(row!);
    });
  }

  scheduleGet(params: { name: string }): Promise<ScheduleRecord | undefined> {
    return this.#read(async (run) => {
      const [row] = await run(q.SCHEDULE_GET, { name: params.name });
      return row ? toSchedule(row) : undefined;
    });
  }

  scheduleList(): Promise<ScheduleRecord[]> {
    return this.#read(async (run) => (await run(q.SCHEDULE_LIST)).map(toSchedule));
  }

  async scheduleRemove(params: { name: string }): Promise<boolean> {
    const removed = await this.#writeOne(async (run) =>
      (await run(q.SCHEDULE_DELETE, { name: params.name })).length === 1
    );
    // No worker cares; a dashboard that shows the schedules does.
    if (removed) this.#announce("change");
    return removed;
  }

  async scheduleSetPaused(
    params: { name: string; paused: boolean; nextAt?: number | null },
  ): Promise<ScheduleRecord | undefined> {
    const result = await this.#write(async (run) => {
      const changed = params.paused
        ? await run(q.SCHEDULE_PAUSE, { name: params.name })
        : await run(q.SCHEDULE_RESUME, { name: params.name, next_at: params.nextAt ?? null });
      if (changed.length !== 1) return undefined;
      const [row] = await run(q.SCHEDULE_GET, { name: params.name });
      if (!params.paused) await this.#notifyInTransaction(run);
      return toSchedule(row!);
    });
    // A pause makes nothing due, so it is no "work" for a waiting worker; a dashboard sees it.
    if (result !== undefined && params.paused) this.#announce("change");
    return result;
  }

  scheduleDue(params: { limit: number }): Promise<ScheduleDueResult> {
    return this.#read(async (run) => {
      // Due by the clock reading of the first statement, so that both agree.
      const [row] = await run(q.SCHEDULE_NEXT);
      const now = num(row!, "now");
      const nextAt = numOrNull(row!, "next_at");
      const due = nextAt !== null && nextAt <= now
        ? (await run(q.SCHEDULE_DUE, { limit: params.limit, at: now })).map(toSchedule)
        : [];
      return { due, nextDueInMs: nextAt === null ? null : Math.max(0, nextAt - now), now };
    });
  }

  scheduleFire(params: ScheduleFireParams): Promise<ScheduleFireResult> {
    const key = { name: params.name, fire_at: params.fireAt };
    return this.#write(async (run): Promise<ScheduleFireResult> => {
      // The compare-and-swap: a concurrent fire waits for the row lock, then matches nothing.
      const moved = await run(q.SCHEDULE_ADVANCE, { ...key, next_at: params.nextAt });
      if (moved.length !== 1) return { fired: false, job: null };
      // The second guard: one row per schedule and fire time.
      if ((await run(q.SCHEDULE_RUN_INSERT, { ...key, job_id: "" })).length !== 1) {
        throw ALREADY_FIRED;
      }
      // A unique key a live job holds: that job stands for the occurrence (nothing new).
      const { jobs } = await this.#insertJobs(run, {
        jobs: [params.job],
        defaultMaxRetries: params.defaultMaxRetries,
        ifExists: "keep",
      });
      const job = jobs[0]!;
      await run(q.SCHEDULE_RUN_SET_JOB, { ...key, job_id: job.id });
      await run(q.SCHEDULE_SET_LAST_JOB, { name: params.name, job_id: job.id });
      await run(q.SCHEDULE_RUNS_TRIM, key);
      await this.#notifyInTransaction(run);
      return { fired: true, job };
    }, "schedule").catch((error: unknown) => {
      if (error === ALREADY_FIRED) return { fired: false, job: null };
      throw error;
    });
  }

  queueList(): Promise<QueueListResult> {
    return this.#read(async (run) => {
      const counts = new Map<string, JobCounts>();
      let deltas = 0;
      for (const row of await run(q.QUEUE_COUNTS)) {
        const name = str(row, "queue");
        let c = counts.get(name);
        if (c === undefined) counts.set(name, c = emptyCounts());
        c[str(row, "state") as JobState] = num(row, "n");
        c.total += num(row, "n");
        deltas += num(row, "deltas");
      }
      this.#foldIfPiledUp(deltas);
      const rows = await run(q.QUEUE_LIST);
      const [all] = await run(q.QUEUE_PAUSED_ALL);
      return {
        queues: rows.map((row) => toQueue(row, counts.get(str(row, "name")) ?? emptyCounts())),
        pausedAll: bool(all!, "paused_all"),
      };
    });
  }

  queuePaused(): Promise<{ names: string[]; pausedAll: boolean }> {
    return this.#read(async (run) => {
      const names = (await run(q.QUEUE_PAUSED)).map((r) => str(r, "name"));
      const [all] = await run(q.QUEUE_PAUSED_ALL);
      return { names, pausedAll: bool(all!, "paused_all") };
    });
  }

  queuePause(params: QueuePauseParams): Promise<string[]> {
    return this.#write((run) => this.#setPaused(run, params, true));
  }

  queueResume(params: QueuePauseParams): Promise<string[]> {
    return this.#write(async (run) => {
      const names = await this.#setPaused(run, params, false);
      // Idle workers hear of it as of an enqueue: the resumed queue's jobs are work.
      await this.#notifyInTransaction(run);
      return names;
    });
  }

  async #setPaused(run: Query, params: QueuePauseParams, paused: boolean): Promise<string[]> {
    if (params.names === "all") {
      return (await run(q.QUEUE_SET_PAUSED_ALL, { paused })).map((r) => str(r, "name"));
    }
    const names = [...new Set(params.names)].sort();
    if (names.length > 0) await run(q.QUEUE_SET_PAUSED, { names, paused });
    return names;
  }

  queueSetConcurrency(params: { name: string; concurrency: number }): Promise<QueueRecord> {
    if (!Number.isInteger(params.concurrency) || params.concurrency < 0) {
      return Promise.reject(new RangeError(`Bad concurrency ${params.concurrency}`));
    }
    return this.#write(async (run) => {
      const [row] = await run(q.QUEUE_SET_CONCURRENCY, {
        name: params.name,
        concurrency: params.concurrency,
      });
      const counts = emptyCounts();
      for (const c of await run(q.QUEUE_COUNTS_OF, { name: params.name })) {
        counts[str(c, "state") as JobState] = num(c, "n");
        counts.total += num(c, "n");
      }
      // A higher limit (or none) is work for idle workers.
      await this.#notifyInTransaction(run);
      this.#limited = true;
      return toQueue(row!, counts);
    });
  }

  scheduleRunNow(
    params: ScheduleRunNowParams,
  ): Promise<{ job: Job; schedule: ScheduleRecord } | undefined> {
    return this.#write(async (run) => {
      // The row lock this takes orders a run-now after a concurrent remove (then: undefined).
      if ((await run(q.SCHEDULE_RUN_NOW, { name: params.name })).length !== 1) return undefined;
      const { jobs } = await this.#insertJobs(run, {
        jobs: [params.job],
        defaultMaxRetries: params.defaultMaxRetries,
      });
      const job = jobs[0]!;
      await run(q.SCHEDULE_SET_LAST_JOB, { name: params.name, job_id: job.id });
      const [row] = await run(q.SCHEDULE_GET, { name: params.name });
      await this.#notifyInTransaction(run);
      return { job, schedule: toSchedule(row!) };
    }, "enqueue");
  }

  configGetAll(): Promise<Record<string, string>> {
    return this.#read(async (run) => {
      const out: Record<string, string> = {};
      for (const row of await run(q.CONFIG_ALL)) out[str(row, "key")] = str(row, "value");
      return out;
    });
  }

  configSet(params: { key: string; value: string }): Promise<void> {
    return this.#writeOne(async (run) => {
      await run(q.CONFIG_SET, { key: params.key, value: params.value });
    });
  }

  configUnset(params: { key: string }): Promise<boolean> {
    return this.#writeOne(async (run) =>
      (await run(q.CONFIG_UNSET, { key: params.key })).length === 1
    );
  }

  checkWritable(): Promise<void> {
    return this.#writeOne(async (run) => {
      await run(q.WRITE_PROBE);
    });
  }

  changeMark(): number {
    return this.#watcher.mark();
  }

  waitForChange(params: WaitForChangeParams): Promise<boolean> {
    return this.#watcher.wait(params.since, params.timeoutMs, {
      signal: params.signal,
      interest: params.interest,
    });
  }

  /** There is no file to lose: abandoning is closing. */
  abandon(): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#notifier.flush();
    this.#closed = true;
    await this.#watcher.close();
    const pool = this.#pool;
    this.#pool = null;
    // Up to a few seconds for queries in flight to finish, then the sockets are cut.
    await Promise.all([pool?.end({ timeout: 5 }).catch(() => {}), ...this.#closing]);
  }
}

/**
 * Applies `apply` to each id in turn and returns the jobs it changed. The first id it changes
 * nothing for refuses the whole call (the write's transaction rolls back what came before): not
 * found, else `conflict` for the state the job is in.
 */
async function eachOrRefused(
  run: Query,
  ids: Iterable<string>,
  apply: (id: string) => Promise<Row | undefined>,
  conflict: (id: string, state: string) => ConflictError,
): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const id of ids) {
    const row = await apply(id);
    if (!row) {
      const [current] = await run(q.JOB_GET, { id });
      throw jobRefused(id, current && str(current, "state"), conflict);
    }
    jobs.push(toJob(row));
  }
  return jobs;
}

/** The claim's parameters (queries.ts, CLAIM_CTES). */
function claimValues(claim: JobClaimParams, limited = false): Values {
  return {
    worker_id: claim.workerId,
    host: claim.host,
    lease_ms: claim.leaseMs,
    limit: claim.limit,
    arm_first: Math.max(0, claim.armFirst ?? 0),
    queues: claim.queues === undefined ? null : [...claim.queues],
    // Limited queues are claimed from only under their row locks (QUEUE_LOCK_LIMITED).
    limited,
  };
}

/** A statement with a claim part that claims nothing. */
const NO_CLAIM: Values = {
  worker_id: "",
  host: "",
  lease_ms: 0,
  limit: 0,
  arm_first: 0,
  queues: null,
  limited: false,
};

/** Refs as one jsonb parameter. */
function refsJson(refs: readonly AttemptRef[]): unknown[] {
  return refs.map((r) => ({ job_id: r.jobId, attempt: r.attempt, worker_id: r.workerId }));
}

/** Per ref, whether a row (job_id, attempt, worker_id) came back for it. */
function matchRefs(refs: readonly AttemptRef[], rows: readonly Row[]): boolean[] {
  const key = (jobId: string, attempt: number, workerId: string) =>
    `${jobId}\0${attempt}\0${workerId}`;
  const got = new Set(
    rows.map((row) => key(str(row, "job_id"), num(row, "attempt"), str(row, "worker_id"))),
  );
  return refs.map((r) => got.has(key(r.jobId, r.attempt, r.workerId)));
}

function outputJson(
  ref: AttemptRef,
  stdout: OutputCapture,
  stderr: OutputCapture,
  fenced: boolean,
): unknown {
  const out = captureJson(stdout);
  const err = captureJson(stderr);
  return {
    job_id: ref.jobId,
    attempt: ref.attempt,
    worker_id: ref.workerId,
    fenced,
    out_head: out.head,
    out_tail: out.tail,
    out_total: out.total,
    err_head: err.head,
    err_tail: err.tail,
    err_total: err.total,
  };
}

function emptyCounts(): JobCounts {
  const counts = { total: 0 } as JobCounts;
  for (const state of JOB_STATES) counts[state] = 0;
  return counts;
}

function toQueue(row: Row, counts: JobCounts): QueueRecord {
  return {
    name: str(row, "name"),
    paused: bool(row, "paused"),
    concurrency: num(row, "concurrency"),
    counts,
    createdAt: num(row, "created_at"),
    updatedAt: num(row, "updated_at"),
  };
}

/**
 * Increments summed per (metric, bucket), in that order: one upsert may change a row only once,
 * and concurrent upserts then lock their rows in the same order. A maximum keeps the largest.
 */
function sumIncrements(increments: readonly StatIncrement[]): StatIncrement[] {
  const byKey = new Map<string, StatIncrement>();
  for (const inc of increments) {
    const key = `${inc.metric}/${inc.bucket}`;
    const seen = byKey.get(key);
    if (seen === undefined) byKey.set(key, { ...inc });
    else seen.n = inc.max ? Math.max(seen.n, inc.n) : seen.n + inc.n;
  }
  return [...byKey.values()].sort((a, b) => a.metric - b.metric || a.bucket - b.bucket);
}
