/**
 * The embedded store: one SQLite file in WAL mode through Deno's built-in `node:sqlite`, opened
 * by `openSqliteStore` (open.ts).
 *
 * Every write is one short `BEGIN IMMEDIATE` transaction, which takes the database's single write
 * lock before it reads anything: a read-then-write (the id sequence, a claim's selection, a fenced
 * check) therefore sees exactly what it updates, with no other writer in between, on however many
 * connections. (A deferred transaction that later upgrades to a write lock gets SQLITE_BUSY
 * without waiting for the busy timeout.) Connections that acknowledge work to a user (enqueue, dlq
 * retry) use `synchronous=FULL`, so an acknowledged job survives power loss; worker connections
 * use NORMAL, whose lost commits only roll a job back to an earlier state that recovery handles.
 *
 * All workers of a SQLite queue run on one host (WAL needs it), and its clock is the store's.
 *
 * @module
 */

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { Clock } from "../../clock.ts";
import { ConflictError, NotFoundError } from "../../errors.ts";
import type { Committed, FaultHook } from "../../fault.ts";
import type { Attempt, Job, NewJob } from "../../job/job.ts";
import { generatedId } from "../../job/id.ts";
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
import type { StatsFigures } from "../../metrics.ts";
import type { StatIncrement } from "../../stats.ts";
import { statIncrements } from "../../stats.ts";
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
import { SEARCH_CLOCK_SLACK_MS } from "../store.ts";
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
import { isDamage, mapSqliteError } from "./errors.ts";
import { closeWithoutCheckpoint } from "./file.ts";
import * as q from "./queries.ts";
import type { Params, Row } from "./rows.ts";
import {
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
import { ChangeWatcher } from "./watch.ts";

/** How the opener hands over a ready connection. */
export interface SqliteStoreOptions {
  synchronous: "FULL" | "NORMAL";
  clock: Clock;
  fault?: FaultHook | undefined;
  /** The connection is an in-memory stand-in for a missing file (nothing waits on it). */
  memory: boolean;
  ignoreNotifications?: boolean;
}

/** The per-minute increments of one transaction, merged per figure (maxima kept as maxima). */
class StatsBatch {
  readonly minute: number;
  readonly #figures = new Map<number, StatIncrement>();

  constructor(minute: number) {
    this.minute = minute;
  }

  add(increments: readonly StatIncrement[]): void {
    for (const inc of increments) {
      const key = inc.metric * 1_000_000 + inc.bucket;
      const had = this.#figures.get(key);
      if (had === undefined) this.#figures.set(key, { ...inc });
      else had.n = inc.max ? Math.max(had.n, inc.n) : had.n + inc.n;
    }
  }

  rows(): StatIncrement[] {
    return [...this.#figures.values()];
  }
}

/** How many of the window's most recent failures `metrics` groups into top failing commands. */
const TOP_FAILING_SCAN = 1000;

const CAPABILITIES: StoreCapabilities = {
  changeNotification: true,
  multiHost: false,
  pidRecovery: true,
};

/** Enqueues at least this many jobs with a bigger page cache (`BULK_CACHE_SIZE`). */
const BULK_ROWS = 1000;
/** 64 MiB, as `PRAGMA cache_size` takes it. */
const BULK_CACHE_SIZE = -65536;

/** Thrown (not an Error: nothing maps it) to roll back a fire that another one got to first. */
const ALREADY_FIRED = Symbol("already fired");

/** SQLite's extended result codes for a UNIQUE or PRIMARY KEY constraint that failed. */
const UNIQUE_VIOLATION = new Set([1555, 2067]);

/** Inserts one enqueue's jobs, numbering them and keeping what `jobInsertMany` returns. */
class JobInserter {
  readonly jobs: Job[] = [];
  /** Positions in `jobs` of existing jobs kept (`ifExists` keep). */
  readonly kept: number[] = [];
  inserted = 0;
  /** Jobs inserted per queue, for the counts (JOB_COUNT_ADD). */
  readonly insertedByQueue = new Map<string, number>();
  readonly #now: number;
  readonly #params: JobInsertParams;
  #seq: number;

  constructor(now: number, seq: number, params: JobInsertParams) {
    this.#now = now;
    this.#seq = seq;
    this.#params = params;
  }

  /** The parameters of JOB_INSERT_ROWS after ?1 (JOB_INSERT's first nine), for `input` numbered `seq`. */
  #values(out: SQLInputValue[], input: NewJob, seq: number): void {
    out.push(
      seq,
      input.id ?? generatedId(seq),
      input.command,
      input.priority,
      input.maxRetries ?? this.#params.defaultMaxRetries,
      input.timeoutMs,
      input.cwd,
      Object.keys(input.env).length ? JSON.stringify(input.env) : null,
      input.runAt ?? this.#now + input.delayMs,
      input.queue ?? DEFAULT_QUEUE,
    );
  }

  #stored(input: NewJob, seq: number, waitingOn = 0): void {
    const now = this.#now;
    this.jobs.push({
      id: input.id ?? generatedId(seq),
      seq,
      command: input.command,
      state: "pending",
      priority: input.priority,
      queue: input.queue ?? DEFAULT_QUEUE,
      attempts: 0,
      budgetUsed: 0,
      maxRetries: input.maxRetries ?? this.#params.defaultMaxRetries,
      timeoutMs: input.timeoutMs,
      cwd: input.cwd,
      env: input.env,
      runAt: input.runAt ?? now + input.delayMs,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
      workerId: null,
      leaseExpiresAt: null,
      lastError: null,
      lastExitCode: null,
      cancelReason: null,
      after: input.after === undefined ? [] : [...input.after],
      waitingOn,
      uniqueKey: input.uniqueKey ?? null,
    });
    this.inserted++;
    const queue = input.queue ?? DEFAULT_QUEUE;
    this.insertedByQueue.set(queue, (this.insertedByQueue.get(queue) ?? 0) + 1);
  }

  /** An existing job stands for an input one (an id or unique key held, with `ifExists` keep). */
  keep(job: Job): void {
    this.jobs.push(job);
    this.kept.push(this.jobs.length - 1);
  }

  /** Inserts `chunk` in one statement; false (and nothing inserted) when an id is taken. */
  tryRows(statement: StatementSync, chunk: readonly NewJob[]): boolean {
    const values: SQLInputValue[] = [this.#now];
    for (let j = 0; j < chunk.length; j++) this.#values(values, chunk[j]!, this.#seq + j);
    try {
      statement.run(...values);
    } catch (error) {
      const code = (error as { errcode?: unknown }).errcode;
      if (typeof code === "number" && UNIQUE_VIOLATION.has(code)) return false;
      throw error;
    }
    for (let j = 0; j < chunk.length; j++) this.#stored(chunk[j]!, this.#seq + j);
    this.#seq += chunk.length;
    return true;
  }

  /**
   * Inserts one job (JOB_INSERT), skipping numbers users took as ids; an id taken is kept or
   * refused. Returns the new job's number, or null when an existing job was kept.
   */
  row(
    statement: StatementSync,
    input: NewJob,
    get: (id: string) => Job,
    waitingOn = 0,
  ): number | null {
    for (;;) {
      const values: SQLInputValue[] = [this.#now];
      this.#values(values, input, this.#seq);
      values.push(
        input.after?.length ? JSON.stringify(input.after) : null,
        waitingOn,
        input.uniqueKey ?? null,
      );
      if (statement.run(...values).changes === 1) {
        this.#stored(input, this.#seq, waitingOn);
        return this.#seq++;
      }
      if (input.id === undefined) {
        // A user chose this number as an id; generated ids skip it (sequence gaps are fine).
        this.#seq++;
        continue;
      }
      if (this.#params.ifExists === "keep") {
        this.keep(get(input.id));
        return null;
      }
      throw new ConflictError(`Job "${input.id}" already exists`, {
        subject: input.id,
        reason: "id_exists",
      });
    }
  }
}

/** A job that must wait for `id` (dead or cancelled, or cancelled by this one's end). */
interface EndedDependency {
  seq: number;
  id: string;
  state: "dead" | "cancelled";
  /** The first reason in the chain (for jobs further down). */
  because: string | null;
}

export class SqliteStore implements Store {
  readonly location: string;
  readonly capabilities: StoreCapabilities = CAPABILITIES;
  #queueId: string | undefined;
  readonly #db: DatabaseSync;
  readonly #clock: Clock;
  readonly #statements = new Map<string, StatementSync>();
  readonly #fault: FaultHook;
  readonly #watcher: ChangeWatcher | null;
  /** `PRAGMA synchronous` to set before the first write (reads do not need it). */
  #synchronous: "FULL" | "NORMAL" | null;
  /** SQLite reported damage: the file must not be checkpointed on close. */
  #damaged = false;

  /** Use `openSqliteStore` (open.ts), which decides whether to create, migrate or open. */
  constructor(path: string, db: DatabaseSync, options: SqliteStoreOptions) {
    this.location = path;
    this.#db = db;
    this.#clock = options.clock;
    this.#fault = options.fault ?? (() => {});
    this.#synchronous = options.synchronous;
    this.#watcher = options.memory ? null : new ChangeWatcher({
      files: [`${path}-wal`],
      readVersion: () => this.#version(),
      ...(options.ignoreNotifications ? { ignoreNotifications: true } : {}),
    });
  }

  /** Read on first use: only workers need it, and every command pays for what it reads. */
  get queueId(): string {
    this.#queueId ??= str(this.#stmt(q.QUEUE_ID).get() as Row, "value");
    return this.#queueId;
  }

  #stmt(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #version(): number {
    return (this.#stmt(q.DATA_VERSION).get() as Row).data_version as number;
  }

  /** Runs synchronous store work as a promise: a throw becomes a rejection, as callers expect. */
  #run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #read<T>(fn: () => T): Promise<T> {
    return this.#run(() => {
      try {
        return fn();
      } catch (error) {
        if (isDamage(error)) this.#damaged = true;
        throw mapSqliteError(error, this.location);
      }
    });
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction; rolls back if it throws. */
  #write<T>(fn: (now: number) => T, faultPrefix?: Committed): Promise<T> {
    return this.#run(() => {
      try {
        if (this.#synchronous !== null) {
          this.#db.exec(q.setSynchronous(this.#synchronous));
          this.#synchronous = null;
        }
        this.#stmt(q.TX_BEGIN).run();
        try {
          // Read after the lock is held, so that times only go forward in commit order.
          const result = fn(this.#clock.now());
          if (faultPrefix) this.#fault(`${faultPrefix}:before-commit`);
          this.#stmt(q.TX_COMMIT).run();
          if (faultPrefix) this.#fault(`${faultPrefix}:after-commit`);
          return result;
        } finally {
          if (this.#db.isTransaction) this.#stmt(q.TX_ROLLBACK).run();
        }
      } catch (error) {
        if (isDamage(error)) this.#damaged = true;
        throw mapSqliteError(error, this.location);
      }
    });
  }

  now(): Promise<number> {
    return Promise.resolve(this.#clock.now());
  }

  jobInsertMany(params: JobInsertParams): Promise<JobInsertResult> {
    return this.#write((now) => this.#insertJobs(now, params), "enqueue");
  }

  /** Inserts jobs inside the caller's write transaction (see `jobInsertMany`). */
  #insertJobs(now: number, params: JobInsertParams): JobInsertResult {
    // Inside the write lock: no other inserter can take these numbers meanwhile.
    const seqRow = this.#stmt(q.JOB_SEQ_NEXT).get() as Row | undefined;
    const inserter = new JobInserter(now, (seqRow ? num(seqRow, "seq") : 0) + 1, params);
    const all = params.jobs;
    // A bulk enqueue touches more index pages than the default cache holds.
    const bulk = all.length >= BULK_ROWS;
    const cacheSize = bulk ? num(this.#stmt(q.CACHE_SIZE_GET).get() as Row, "cache_size") : 0;
    if (bulk) this.#db.exec(q.setCacheSize(BULK_CACHE_SIZE));
    try {
      let i = 0;
      // Jobs with dependencies or unique keys go one by one, in order (a job may wait for one
      // just inserted before it); a batch with none takes the bulk path.
      const plain = !all.some((job) => job.after !== undefined || job.uniqueKey !== undefined);
      if (!plain) {
        for (; i < all.length; i++) this.#insertLinked(inserter, all[i]!, params);
      }
      // Whole chunks in one statement each; one whose id is taken, and the rest, row by row.
      for (; i + q.JOB_INSERT_ROWS_MAX <= all.length; i += q.JOB_INSERT_ROWS_MAX) {
        const chunk = all.slice(i, i + q.JOB_INSERT_ROWS_MAX);
        if (!inserter.tryRows(this.#stmt(q.JOB_INSERT_ROWS), chunk)) {
          for (const input of chunk) inserter.row(this.#stmt(q.JOB_INSERT), input, this.#getJob);
        }
      }
      for (; i < all.length; i++) {
        inserter.row(this.#stmt(q.JOB_INSERT), all[i]!, this.#getJob);
      }
    } finally {
      if (bulk) this.#db.exec(q.setCacheSize(cacheSize));
    }
    // Every queue that holds a job has a row (claims read the settings from it), and with it its
    // rows of counts, which the jobs just inserted are then added to.
    const queues = new Set(all.map((job) => job.queue ?? DEFAULT_QUEUE));
    for (const name of queues) {
      if (this.#stmt(q.QUEUE_ENSURE).run({ name, now }).changes > 0) this.#queuesCache = null;
    }
    for (const [queue, n] of inserter.insertedByQueue) this.#stmt(q.JOB_COUNT_ADD).run(queue, n);
    return { jobs: inserter.jobs, inserted: inserter.inserted, kept: inserter.kept };
  }

  /**
   * One job with a unique key or dependencies: the key checked (under the write lock, so no
   * other inserter can take it meanwhile), each dependency looked up (in the database, which
   * holds the jobs inserted before it in this batch, so a job can wait only for earlier ones and
   * no cycle can be built), then the row and its edges.
   */
  #insertLinked(inserter: JobInserter, input: NewJob, params: JobInsertParams): void {
    if (input.uniqueKey !== undefined) {
      const holder = this.#stmt(q.JOB_UNIQUE_HOLDER).get({ key: input.uniqueKey }) as
        | Row
        | undefined;
      if (holder !== undefined) {
        if (params.ifExists === "keep") return inserter.keep(toJob(holder));
        throw uniqueKeyConflict(input.uniqueKey, str(holder, "id"), str(holder, "state"));
      }
    }
    const deps: { seq: number; id: string; met: boolean }[] = [];
    for (const id of input.after ?? []) {
      const dep = this.#stmt(q.JOB_DEP_LOOK).get({ id }) as Row | undefined;
      if (dep === undefined) throw dependencyNotFound(id);
      const state = str(dep, "state");
      if (state === "dead" || state === "cancelled") throw dependencyFailed(id, state);
      deps.push({ seq: num(dep, "seq"), id, met: state === "completed" });
    }
    const waitingOn = deps.filter((d) => !d.met).length;
    const seq = inserter.row(this.#stmt(q.JOB_INSERT), input, this.#getJob, waitingOn);
    if (seq === null) return;
    for (const dep of deps) {
      this.#stmt(q.JOB_DEP_INSERT).run({
        dep_seq: dep.seq,
        job_seq: seq,
        dep_id: dep.id,
        met: dep.met ? 1 : 0,
      });
      this.#stmt(q.JOB_MARK_HAS_DEPENDENTS).run({ seq: dep.seq });
    }
  }

  /**
   * Jobs that ended dead or cancelled: the jobs waiting for them are cancelled, and theirs, down
   * the chain, in the caller's transaction. Returns the ids cancelled.
   */
  #cancelDependents(now: number, ended: EndedDependency[]): string[] {
    const cancelled: string[] = [];
    const statement = this.#stmt(q.DEPENDENTS_CANCEL);
    for (let i = 0; i < ended.length; i++) {
      const dep = ended[i]!;
      const reason = dependencyCancelReason(dep.id, dep.state, dep.because);
      for (const row of statement.all({ dep_seq: dep.seq, now, reason }) as Row[]) {
        cancelled.push(str(row, "id"));
        if (num(row, "has_dependents") === 1) {
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

  /** Job `seq` completed: the jobs waiting for it have one dependency fewer. */
  #releaseDependents(seq: number): void {
    this.#stmt(q.DEPS_RELEASE_COUNT).run(seq);
    this.#stmt(q.DEPS_RELEASE_MET).run(seq);
  }

  /**
   * Retried jobs wait again for what has not completed; one whose dependency is dead, cancelled
   * or deleted is refused (retry them together). Returns the jobs as they are now.
   */
  #rewait(jobs: Job[]): Job[] {
    return jobs.map((job) => {
      if (job.after.length === 0) return job;
      for (const row of this.#stmt(q.JOB_DEPS_UNMET).all({ seq: job.seq }) as Row[]) {
        const state = strOrNull(row, "state");
        if (state === null || state === "dead" || state === "cancelled") {
          throw retryDependencyConflict(job.id, str(row, "dep_id"), state);
        }
      }
      return toJob(this.#stmt(q.JOB_SET_DEPS_LEFT).get({ seq: job.seq }) as Row);
    });
  }

  /** Runs a retry's update; a unique key that another live job holds is a conflict. */
  #retryRow(sql: string, params: Params): Row | undefined {
    try {
      return this.#stmt(sql).get(params) as Row | undefined;
    } catch (error) {
      const code = (error as { errcode?: unknown }).errcode;
      if (code !== 2067 || typeof params.id !== "string") throw error;
      const job = this.#stmt(q.JOB_GET).get({ id: params.id }) as Row;
      const key = str(job, "unique_key");
      const holder = this.#stmt(q.JOB_UNIQUE_HOLDER).get({ key }) as Row;
      throw uniqueKeyConflict(key, str(holder, "id"), str(holder, "state"));
    }
  }

  /**
   * Applies `apply` to each id in turn and returns the jobs it changed. The first id it changes
   * nothing for refuses the whole call (the write's transaction rolls back what came before): not
   * found, else `conflict` for the state the job is in.
   */
  #eachOrRefused(
    ids: Iterable<string>,
    apply: (id: string) => Row | undefined,
    conflict: (id: string, state: string) => ConflictError,
  ): Job[] {
    const jobs: Job[] = [];
    for (const id of ids) {
      const row = apply(id);
      if (!row) {
        const current = this.#stmt(q.JOB_GET).get({ id }) as Row | undefined;
        throw jobRefused(id, current && str(current, "state"), conflict);
      }
      jobs.push(toJob(row));
    }
    return jobs;
  }

  readonly #getJob = (id: string): Job => toJob(this.#stmt(q.JOB_GET).get({ id }) as Row);

  jobGet(params: { id: string }): Promise<Job | undefined> {
    return this.#read(() => {
      const row = this.#stmt(q.JOB_GET).get({ id: params.id }) as Row | undefined;
      return row ? toJob(row) : undefined;
    });
  }

  jobList(params: JobListParams): Promise<JobListResult> {
    return this.#read(() => {
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
          : states.reduce((sum, state) =>
            sum + counts[state], 0),
        older,
      };
    });
  }

  /** Runs reads in one read transaction, so that they see one snapshot. */
  #snapshot<T>(fn: () => T): Promise<T> {
    return this.#read(() => {
      this.#stmt(q.TX_BEGIN_READ).run();
      try {
        return fn();
      } finally {
        if (this.#db.isTransaction) this.#stmt(q.TX_COMMIT).run();
      }
    });
  }

  /**
   * The smallest position whose first job (at or after it) was enqueued at or after `at`, by a
   * binary search over enqueue order (about 20 primary-key probes for a million jobs). Exact when
   * created_at grows with seq; callers read `SEARCH_CLOCK_SLACK_MS` beyond it for jobs that do not.
   */
  #seqCreatedFrom(at: number): number {
    const first = numOrNull(this.#stmt(q.JOB_SEQ_MIN).get() as Row, "seq");
    if (first === null) return 1;
    let lo = first;
    let hi = num(this.#stmt(q.JOB_SEQ_MAX).get() as Row, "seq") + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const row = this.#stmt(q.JOB_FIRST_FROM_SEQ).get({ seq: mid }) as Row | undefined;
      if (row === undefined || num(row, "created_at") >= at) hi = mid;
      else lo = num(row, "seq") + 1;
    }
    return lo;
  }

  /** The walk a search takes: statement, parameters and start, or null when nothing can match. */
  #searchWalk(params: Omit<JobSearchParams, "limit">): {
    chunk: number;
    params: Params;
    before: number;
  } | null {
    const states = params.states === undefined ? [] : [...new Set(params.states)];
    if (params.states !== undefined && states.length === 0) return null;
    const mask = priorityMask(params.priorities);
    if (mask === 0) return null;
    const fromSeq = params.createdFrom === undefined
      ? 0
      : this.#seqCreatedFrom(params.createdFrom - SEARCH_CLOCK_SLACK_MS);
    let before = params.beforeSeq ?? Number.MAX_SAFE_INTEGER;
    if (params.createdTo !== undefined) {
      before = Math.min(before, this.#seqCreatedFrom(params.createdTo + SEARCH_CLOCK_SLACK_MS));
    }
    if (fromSeq >= before) return null;
    return {
      chunk: states.length,
      before,
      params: {
        ...Object.fromEntries(states.map((state, i) => [`s${i}`, state])),
        from_seq: fromSeq,
        priority_mask: mask,
        command: params.commandContains ?? null,
        created_from: params.createdFrom ?? null,
        created_to: params.createdTo ?? null,
        queues: params.queues === undefined ? null : JSON.stringify(params.queues),
        due_after: params.dueAfter ?? null,
        due_by: params.dueBy ?? null,
      },
    };
  }

  jobSearch(params: JobSearchParams): Promise<JobSearchResult> {
    return this.#snapshot(() => {
      const walk = this.#searchWalk(params);
      if (walk === null) return { jobs: [], nextBeforeSeq: null, truncated: false };
      const statement = this.#stmt(q.JOB_SEARCH_CHUNK[walk.chunk]!);
      // One match more than the page says whether older matches exist.
      const want = params.limit + 1;
      const hits: number[] = [];
      let budget = params.scanLimit;
      // Chunks grow from the page's size, so a page that fills at once reads little more.
      let size = want;
      let before = walk.before;
      let next: number | null = null;
      let truncated = false;
      for (;;) {
        if (budget <= 0) {
          // The budget ran out exactly: only truncated if anything older is left to look at.
          const probe = statement.all({ ...walk.params, before, chunk: 1 }) as Row[];
          if (probe.length > 0) {
            next = before;
            truncated = true;
          }
          break;
        }
        const chunk = Math.min(size, budget);
        const rows = (statement.all({ ...walk.params, before, chunk }) as Row[])
          .map((row) => ({ seq: num(row, "seq"), hit: num(row, "hit") === 1 }))
          .sort((a, b) => b.seq - a.seq);
        for (const row of rows) if (row.hit && hits.length < want) hits.push(row.seq);
        if (hits.length === want) {
          next = hits[params.limit - 1] ?? null;
          break;
        }
        if (rows.length < chunk) break;
        budget -= rows.length;
        before = rows[rows.length - 1]!.seq;
        size = Math.min(size * 4, 4096);
      }
      const jobs = hits.slice(0, params.limit).map((seq) =>
        toJob(this.#stmt(q.JOB_GET_BY_SEQ).get({ seq }) as Row)
      );
      return { jobs, nextBeforeSeq: next, truncated };
    });
  }

  jobSearchScheduled(params: JobSearchScheduledParams): Promise<JobSearchScheduledResult> {
    return this.#snapshot(() => {
      const states = params.states === undefined
        ? null
        : READY_STATES.filter((state) => params.states!.includes(state));
      if (states?.length === 0) return { jobs: [], next: null, truncated: false };
      const mask = priorityMask(params.priorities);
      if (mask === 0) return { jobs: [], next: null, truncated: false };
      const statement = this.#stmt(q.JOB_SEARCH_SCHEDULED_CHUNK);
      const conditions = {
        priority_mask: mask,
        command: params.commandContains ?? null,
        created_from: params.createdFrom ?? null,
        created_to: params.createdTo ?? null,
        queues: params.queues === undefined ? null : JSON.stringify(params.queues),
        due_after: null,
        due_by: params.dueBy ?? null,
        states: states === null ? null : JSON.stringify(states),
      };
      // Due after now: the cursor starts past every job due at `now` or before.
      let from: DueCursor = params.after !== undefined && params.after.runAt > params.now
        ? params.after
        : { runAt: params.now, seq: Number.MAX_SAFE_INTEGER };
      const at = (c: DueCursor) => ({ after_run_at: c.runAt, after_seq: c.seq });
      // One match more than the page says whether later matches exist.
      const want = params.limit + 1;
      const hits: DueCursor[] = [];
      let budget = params.scanLimit;
      let size = want;
      let next: DueCursor | null = null;
      let truncated = false;
      for (;;) {
        if (budget <= 0) {
          const probe = statement.all({ ...conditions, ...at(from), chunk: 1 }) as Row[];
          if (probe.length > 0) {
            next = from;
            truncated = true;
          }
          break;
        }
        const chunk = Math.min(size, budget);
        const rows = (statement.all({ ...conditions, ...at(from), chunk }) as Row[]).map((row) => ({
          runAt: num(row, "run_at"),
          seq: num(row, "seq"),
          hit: num(row, "hit") === 1,
        })).sort((a, b) => a.runAt - b.runAt || a.seq - b.seq);
        for (const row of rows) {
          if (row.hit && hits.length < want) hits.push({ runAt: row.runAt, seq: row.seq });
        }
        if (hits.length === want) {
          next = hits[params.limit - 1] ?? null;
          break;
        }
        if (rows.length < chunk) break;
        budget -= rows.length;
        const last = rows[rows.length - 1]!;
        from = { runAt: last.runAt, seq: last.seq };
        size = Math.min(size * 4, 4096);
      }
      const jobs = hits.slice(0, params.limit).map((hit) =>
        toJob(this.#stmt(q.JOB_GET_BY_SEQ).get({ seq: hit.seq }) as Row)
      );
      return { jobs, next, truncated };
    });
  }

  jobSearchCount(params: Omit<JobSearchParams, "limit">): Promise<JobSearchCountResult> {
    return this.#snapshot(() => {
      const walk = this.#searchWalk(params);
      if (walk === null) return { count: 0, complete: true };
      const statement = this.#stmt(q.JOB_SEARCH_COUNT_CHUNK[walk.chunk]!);
      let count = 0;
      let budget = params.scanLimit;
      let before = walk.before;
      for (;;) {
        const chunk = Math.max(1, Math.min(4096, budget));
        const row = statement.get({ ...walk.params, before, chunk }) as Row;
        const scanned = num(row, "scanned");
        if (budget <= 0) return { count, complete: scanned === 0 };
        count += num(row, "hits");
        if (scanned < chunk) return { count, complete: true };
        budget -= scanned;
        before = num(row, "low");
      }
    });
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
    return this.#read(() => this.#counts());
  }

  jobCountScheduled(): Promise<ScheduledCount> {
    return this.#read(() => {
      const at = { now: this.#clock.now() };
      const waiting = num(this.#stmt(q.JOB_COUNT_WAITING_LATER).get(at) as Row, "n");
      if (waiting === 0) return { scheduled: 0, nextAt: null };
      const failed = num(this.#stmt(q.JOB_COUNT_FAILED_LATER).get(at) as Row, "n");
      const scheduled = waiting - failed;
      if (scheduled === 0) return { scheduled: 0, nextAt: null };
      const next = this.#stmt(q.JOB_NEXT_SCHEDULED).get(at) as Row;
      return { scheduled, nextAt: numOrNull(next, "next_at") };
    });
  }

  jobRunNow(params: { ids: readonly string[] }): Promise<Job[]> {
    return this.#write((now) => {
      return this.#eachOrRefused(
        new Set(params.ids),
        (id) => this.#stmt(q.JOB_RUN_NOW).get({ id, now }) as Row | undefined,
        runNowConflict,
      );
    });
  }

  jobDlqRetry(params: JobDlqRetryParams): Promise<Job[]> {
    return this.#write((now) => {
      let ids = params.ids;
      if (ids === "all") {
        try {
          return this.#rewait((this.#stmt(q.JOB_DLQ_RETRY_ALL).all({ now }) as Row[]).map(toJob));
        } catch (error) {
          // A unique key two dead jobs share (or a live one holds): one by one, to name it.
          if ((error as { errcode?: unknown }).errcode !== 2067) throw error;
          ids = (this.#stmt(q.JOB_IDS_IN_STATE).all({ state: "dead" }) as Row[]).map((r) =>
            str(r, "id")
          );
        }
      }
      const jobs = this.#eachOrRefused(
        ids,
        (id) => this.#retryRow(q.JOB_DLQ_RETRY, { id, now }),
        dlqRetryConflict,
      );
      return this.#rewait(jobs);
    }, "dlq-retry");
  }

  jobCancel(params: JobCancelParams): Promise<JobCancelResult> {
    return this.#write((now) => {
      const ids = Array.isArray(params.ids)
        ? params.ids as readonly string[]
        : (params.ids as { states: readonly JobState[] }).states
          .filter((state) => CANCELLABLE_STATES.includes(state))
          .flatMap((state) =>
            (this.#stmt(q.JOB_IDS_IN_STATE).all({ state }) as Row[]).map((r) => str(r, "id"))
          );
      // Every id is looked at before anything changes: all or none.
      const looks: Row[] = [];
      for (const id of new Set(ids)) {
        const row = this.#stmt(q.JOB_CANCEL_LOOK).get({ id }) as Row | undefined;
        if (row === undefined) {
          throw new NotFoundError(`Job "${id}" not found`, {
            subject: id,
            reason: "job_not_found",
          });
        }
        const state = str(row, "state") as JobState;
        if (!CANCELLABLE_STATES.includes(state)) {
          throw cancelConflict(id, state);
        }
        looks.push(row);
      }
      const result: JobCancelResult = { cancelled: [], requested: [], dependents: [] };
      const ended: EndedDependency[] = [];
      for (const row of looks) {
        const seq = num(row, "seq");
        const state = str(row, "state");
        const base = { seq, now, reason: params.reason };
        let done: Row | undefined;
        if (state !== "processing") {
          // Already cancelled as a dependent of one cancelled before it in this list: no row.
          done = this.#stmt(q.JOB_CANCEL_WAITING).get(base) as Row | undefined;
        } else if (num(row, "armed") === 0) {
          const attempt = num(row, "attempts");
          done = this.#stmt(q.JOB_CANCEL_RESERVED).get({ ...base, attempt }) as Row;
          this.#stmt(q.ATTEMPT_DELETE_ONE).run({ job_seq: seq, attempt });
        } else {
          result.requested.push(toJob(this.#stmt(q.JOB_CANCEL_REQUEST).get(base) as Row));
        }
        if (done === undefined) continue;
        result.cancelled.push(toJob(done));
        if (num(done, "has_dependents") === 1) {
          ended.push({ seq, id: str(done, "id"), state: "cancelled", because: null });
        }
        // Its dependents at once, so that one of them later in the list is not cancelled twice.
        result.dependents.push(...this.#cancelDependents(now, ended.splice(0)));
      }
      const mine = new Set(result.cancelled.map((job) => job.id));
      result.dependents = result.dependents.filter((id) => !mine.has(id));
      return result;
    }, "cancel");
  }

  jobCancelRequests(params: { workerId: string }): Promise<CancelRequest[]> {
    return this.#read(() =>
      (this.#stmt(q.JOB_CANCEL_REQUESTS).all({ worker_id: params.workerId }) as Row[]).map((r) => ({
        jobId: str(r, "id"),
        attempt: num(r, "attempts"),
        workerId: str(r, "worker_id"),
        reason: str(r, "cancel_reason"),
      }))
    );
  }

  jobRetry(params: JobRetryParams): Promise<Job[]> {
    const allowed: JobState[] = params.force
      ? [...RETRYABLE_STATES, "completed"]
      : [...RETRYABLE_STATES];
    const states = {
      s0: allowed[0]!,
      s1: allowed[1] ?? allowed[0]!,
      s2: allowed[2] ?? allowed[0]!,
    };
    return this.#write((now) => {
      const jobs = this.#eachOrRefused(
        new Set(params.ids),
        (id) => this.#retryRow(q.JOB_RETRY, { id, now, ...states }),
        (id, state) => retryConflict(id, state as JobState),
      );
      // After all of them: a job retried together with its dependency waits for it again.
      return this.#rewait(jobs);
    }, "dlq-retry");
  }

  jobDelete(params: { ids: readonly string[] }): Promise<string[]> {
    return this.#write(() => {
      // Every id is looked at before anything changes: all or none.
      const seqs: [string, number][] = [];
      for (const id of new Set(params.ids)) {
        const row = this.#stmt(q.JOB_GET).get({ id }) as Row | undefined;
        if (row === undefined) {
          throw new NotFoundError(`Job "${id}" not found`, {
            subject: id,
            reason: "job_not_found",
          });
        }
        const state = str(row, "state") as JobState;
        if (!TERMINAL_STATES.includes(state)) throw deleteConflict(id, state);
        seqs.push([id, num(row, "seq")]);
      }
      for (const [, seq] of seqs) {
        this.#stmt(q.JOB_DEPS_DELETE).run({ seq });
        this.#stmt(q.OUTPUT_DELETE).run({ seq });
        this.#stmt(q.ATTEMPT_DELETE).run({ seq });
        this.#stmt(q.JOB_DELETE).run({ seq });
      }
      return seqs.map(([id]) => id);
    });
  }

  jobDependencies(params: { id: string; limit: number }): Promise<JobDependencies> {
    return this.#snapshot(() => {
      const link = (row: Row): JobLink => ({
        id: str(row, "id"),
        state: strOrNull(row, "state") as JobState | null,
        met: num(row, "met") === 1,
      });
      return {
        after: (this.#stmt(q.JOB_DEPS_AFTER).all({ id: params.id }) as Row[]).map(link),
        dependents: (this.#stmt(q.JOB_DEPS_DEPENDENTS).all({
          id: params.id,
          limit: params.limit,
        }) as Row[]).map(link),
      };
    });
  }

  attemptList(params: { jobId: string }): Promise<Attempt[]> {
    return this.#read(() =>
      (this.#stmt(q.ATTEMPT_LIST).all({ id: params.jobId }) as Row[]).map(toAttempt)
    );
  }

  attemptOutput(
    params: { jobId: string; attempt: number },
  ): Promise<{ stdout: OutputCapture; stderr: OutputCapture } | undefined> {
    return this.#read(() => {
      const rows = this.#stmt(q.OUTPUT_GET).all({
        id: params.jobId,
        attempt: params.attempt,
      }) as Row[];
      if (rows.length === 0) return undefined;
      return {
        stdout: toCapture(rows.find((r) => r.stream === 1)),
        stderr: toCapture(rows.find((r) => r.stream === 2)),
      };
    });
  }

  jobClaim(params: JobClaimParams): Promise<Job[]> {
    return this.#write((now) => this.#claim(params, now), "claim");
  }

  #claim(params: JobClaimParams, now: number): Job[] {
    if (params.limit <= 0) return [];
    const gate = this.#queueGate(params.queues);
    if (gate !== null) return this.#claimQueues(params, gate, now);
    // Best first: priority by priority from the top (queries.ts, READY_PRIORITY_BELOW).
    const below = this.#stmt(q.READY_PRIORITY_BELOW);
    const due = this.#stmt(q.DUE_OF_PRIORITY);
    const claim = this.#stmt(q.JOB_CLAIM);
    const jobs: Job[] = [];
    // The schema holds priorities 1..10: the walk starts below 11.
    for (let priority = 11; jobs.length < params.limit;) {
      const next = below.get(priority) as Row | undefined;
      if (next === undefined) break;
      priority = num(next, "priority");
      for (const row of due.all(priority, now, params.limit - jobs.length) as Row[]) {
        const claimed = claim.get(params.workerId, now + params.leaseMs, now, num(row, "seq"));
        if (claimed !== undefined) jobs.push(toJob(claimed as Row));
      }
    }
    const insert = this.#stmt(q.ATTEMPT_INSERT);
    for (const job of jobs) {
      insert.run(job.seq, job.attempts, params.workerId, now, params.host, job.runAt);
    }
    // The best ones go straight into free slots: armed in this transaction.
    this.#arm(
      jobs.slice(0, Math.max(0, params.armFirst ?? 0)).map((job) => ({
        jobId: job.id,
        attempt: job.attempts,
        workerId: params.workerId,
      })),
      now,
    );
    return jobs;
  }

  /**
   * The queues a claim of `scope` may take from, with the room each has (Infinity: no limit), or
   * null when it may take from every queue without a limit (the plain walk). Read inside the
   * claim's write transaction: no other claim can change a count meanwhile.
   */
  #queueGate(scope: readonly string[] | undefined): Map<string, number> | null {
    const settings = this.#queueSettings();
    if (!settings.restricted && scope === undefined) return null;
    const wanted = scope === undefined ? null : new Set(scope);
    const gate = new Map<string, number>();
    const running = this.#stmt(q.QUEUE_RUNNING);
    for (const { name, paused, concurrency } of settings.rows) {
      if (paused || (wanted !== null && !wanted.has(name))) continue;
      // Counted fresh every time: this connection's own claims move it too.
      const room = concurrency === 0 ? Infinity : concurrency - num(running.get(name) as Row, "n");
      if (room > 0) gate.set(name, room);
    }
    return gate;
  }

  /**
   * The queues' settings, read again only when the database changed since (another connection
   * committed: `data_version`; this one wrote a queue row: `#queuesCache` cleared). A claim then
   * costs one pragma, not a table read, when nothing about queues changed.
   */
  #queueSettings(): QueueSettings {
    const version = this.#version();
    if (this.#queuesCache?.version === version) return this.#queuesCache.settings;
    const rows = (this.#stmt(q.QUEUE_SETTINGS).all() as Row[]).map((r) => ({
      name: str(r, "name"),
      paused: num(r, "paused") === 1,
      concurrency: num(r, "concurrency"),
    }));
    const settings = { rows, restricted: rows.some((r) => r.paused || r.concurrency > 0) };
    this.#queuesCache = { version, settings };
    return settings;
  }

  #queuesCache: { version: number; settings: QueueSettings } | null = null;

  /**
   * A claim that leaves queues out: each queue it may take from is walked on its own (as the
   * plain walk does, on jobs_ready_queue) for as many candidates as it may give, and the best of
   * them all are claimed. Jobs of paused queues are never read.
   */
  #claimQueues(params: JobClaimParams, gate: Map<string, number>, now: number): Job[] {
    const below = this.#stmt(q.QUEUE_READY_PRIORITY_BELOW);
    const due = this.#stmt(q.QUEUE_DUE_OF_PRIORITY);
    const candidates: { seq: number; priority: number; runAt: number }[] = [];
    for (const [name, room] of gate) {
      const want = Math.min(room, params.limit);
      let found = 0;
      for (let priority = 11; found < want;) {
        const next = below.get(priority, name) as Row | undefined;
        if (next === undefined) break;
        priority = num(next, "priority");
        for (const row of due.all(priority, now, want - found, name) as Row[]) {
          candidates.push({ seq: num(row, "seq"), priority, runAt: num(row, "run_at") });
          found++;
        }
      }
    }
    candidates.sort((a, b) => b.priority - a.priority || a.runAt - b.runAt || a.seq - b.seq);
    const claim = this.#stmt(q.JOB_CLAIM);
    const jobs: Job[] = [];
    for (const c of candidates.slice(0, params.limit)) {
      const claimed = claim.get(params.workerId, now + params.leaseMs, now, c.seq);
      if (claimed !== undefined) jobs.push(toJob(claimed as Row));
    }
    const insert = this.#stmt(q.ATTEMPT_INSERT);
    for (const job of jobs) {
      insert.run(job.seq, job.attempts, params.workerId, now, params.host, job.runAt);
    }
    return jobs;
  }

  attemptArm(params: readonly AttemptRef[]): Promise<boolean[]> {
    return this.#write((now) => this.#arm(params, now), "arm");
  }

  #arm(refs: readonly AttemptRef[], now: number): boolean[] {
    if (refs.length === 0) return [];
    const arm = this.#stmt(q.ATTEMPT_ARM);
    return refs.map((ref) => arm.run(ref.jobId, ref.workerId, ref.attempt, now).changes === 1);
  }

  jobUnclaim(params: AttemptRef): Promise<boolean> {
    return this.#write((now) => {
      const row = this.#stmt(q.JOB_UNCLAIM).get({ ...this.#owned(params), now }) as
        | Row
        | undefined;
      if (!row) return false;
      this.#stmt(q.ATTEMPT_DELETE_ONE).run({ job_seq: num(row, "seq"), attempt: params.attempt });
      return true;
    });
  }

  jobNextDue(scope?: QueueScope): Promise<{ dueNow: boolean; nextDueInMs: number | null }> {
    return this.#read(() => {
      const gate = this.#queueGate(scope?.queues);
      let nextAt: number | null = null;
      if (gate === null) nextAt = numOrNull(this.#stmt(q.JOB_NEXT_DUE).get() as Row, "next_at");
      else {
        // Only the queues a claim could take from: paused and full ones wait for a change.
        const next = this.#stmt(q.QUEUE_NEXT_DUE);
        for (const name of gate.keys()) {
          const at = numOrNull(next.get({ queue: name }) as Row, "next_at");
          if (at !== null && (nextAt === null || at < nextAt)) nextAt = at;
        }
      }
      const now = this.#clock.now();
      return {
        dueNow: nextAt !== null && nextAt <= now,
        nextDueInMs: nextAt === null ? null : Math.max(0, nextAt - now),
      };
    });
  }

  #owned(ref: AttemptRef): Params {
    return { id: ref.jobId, worker_id: ref.workerId, attempt: ref.attempt };
  }

  attemptSetProcess(params: readonly AttemptProcessParams[]): Promise<boolean[]> {
    return this.#write(() =>
      params.map((p) => {
        const row = this.#stmt(q.JOB_OWNED_SEQ).get(this.#owned(p)) as Row | undefined;
        if (!row) return false;
        this.#stmt(q.ATTEMPT_SET_PROCESS).run({
          job_seq: num(row, "seq"),
          attempt: p.attempt,
          pid: p.pid,
          pid_start: p.pidStart,
        });
        return true;
      })
    );
  }

  jobTakeOver(params: JobTakeOverParams): Promise<boolean> {
    return this.#write((now) =>
      this.#stmt(q.JOB_TAKE_OVER).run({
        ...this.#owned(params),
        new_worker_id: params.newWorkerId,
        lease_expires_at: now + params.leaseMs,
        now,
        require_expired: params.requireLeaseExpired ? 1 : 0,
      }).changes === 1
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

  attemptSaveOutput(params: readonly AttemptOutputParams[]): Promise<boolean[]> {
    return this.#write(() =>
      params.map((p) => {
        const row = this.#stmt(q.JOB_OWNED_SEQ).get(this.#owned(p)) as Row | undefined;
        if (!row) return false;
        this.#saveOutput(num(row, "seq"), p.attempt, 1, p.stdout);
        this.#saveOutput(num(row, "seq"), p.attempt, 2, p.stderr);
        return true;
      })
    );
  }

  jobFinish(params: JobFinishParams): Promise<boolean> {
    return this.#write((now) => {
      const stats = new StatsBatch(Math.floor(now / 60_000));
      const applied = this.#finish(params, now, stats);
      this.#addStats(stats);
      return applied;
    }, params.decision.transition);
  }

  jobFinishAndClaim(params: JobFinishAndClaimParams): Promise<JobFinishAndClaimResult> {
    // One fault prefix per transaction: the first outcome's (the suite kills at these points).
    const prefix: Committed | undefined = params.finish[0]?.decision.transition ??
      (params.claim ? "claim" : undefined);
    return this.#write((now) => {
      const stats = new StatsBatch(Math.floor(now / 60_000));
      const applied = params.finish.map((f) => this.#finish(f, now, stats));
      this.#addStats(stats);
      const armed = this.#arm(params.arm ?? [], now);
      const claimed = params.claim ? this.#claim(params.claim, now) : [];
      return { applied, armed, claimed };
    }, prefix);
  }

  #finish(params: JobFinishParams, now: number, stats: StatsBatch): boolean {
    const d = params.decision;
    const row = this.#stmt(q.JOB_FINISH).get(
      params.jobId,
      params.workerId,
      params.attempt,
      now,
      d.state,
      d.refund ? 1 : 0,
      d.runInMs,
      d.terminal ? 1 : 0,
      d.error,
      d.exitCode,
      params.requireLeaseExpired ? 1 : 0,
    ) as Row | undefined;
    if (!row) return false;
    const jobSeq = num(row, "seq");
    const state = str(row, "state");
    // Jobs wait for this one: its end releases them, or cancels them (and theirs).
    if (num(row, "has_dependents") === 1) {
      if (state === "completed") this.#releaseDependents(jobSeq);
      else if (state === "dead" || state === "cancelled") {
        this.#cancelDependents(now, [{ seq: jobSeq, id: params.jobId, state, because: null }]);
      }
    }
    // A cancel requested meanwhile made the job cancelled (queries.ts, CANCEL_WINS).
    const outcome = state === "cancelled" ? "cancelled" : d.outcome;
    const attemptRow = this.#stmt(q.ATTEMPT_FINISH).get(
      jobSeq,
      params.attempt,
      now,
      outcome,
      d.exitCode,
      d.signal,
      d.error,
    ) as Row | undefined;
    if (attemptRow) {
      const startedAt = num(attemptRow, "started_at");
      const dueAt = numOrNull(attemptRow, "due_at");
      // Earlier attempts that count (not interrupted ones), looked up only for later attempts:
      // one means this is the job's first retry, more a further one.
      const earlierCharged = params.attempt > 1 && outcome !== "interrupted"
        ? num(
          this.#stmt(q.ATTEMPT_IS_RETRY).get({ job_seq: jobSeq, attempt: params.attempt }) as Row,
          "earlier",
        )
        : 0;
      stats.add(statIncrements({
        outcome,
        earlierCharged,
        runMs: Math.max(0, now - startedAt),
        waitMs: dueAt === null ? null : startedAt - dueAt,
      }));
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
    return true;
  }

  /** Folds finished attempts into the per-minute figures (the transaction that finishes them). */
  #addStats(stats: StatsBatch): void {
    const rows = stats.rows();
    for (let i = 0; i < rows.length; i += q.STATS_ADD.length) {
      const chunk = rows.slice(i, i + q.STATS_ADD.length);
      this.#stmt(q.STATS_ADD[chunk.length - 1]!).run(
        ...chunk.flatMap((r) => [stats.minute, r.metric, r.bucket, r.n]),
      );
    }
  }

  statsFigures(params: StatsParams): Promise<StatsFigures> {
    return this.#read(() => {
      const now = this.#clock.now();
      const since = now - params.windowMs;
      const window = (this.#stmt(q.STATS_WINDOW).all({ from: Math.floor(since / 60_000) }) as Row[])
        .map((row) => ({
          metric: num(row, "metric"),
          bucket: num(row, "bucket"),
          n: num(row, "n"),
        }));
      const lastHour = (this.#stmt(q.STATS_PER_MINUTE).all({
        from: Math.floor(now / 60_000) - 60,
      }) as Row[]).map((row) => ({
        minute: num(row, "minute"),
        bucket: num(row, "bucket"),
        n: num(row, "n"),
      }));
      const topFailing = (this.#stmt(q.TOP_FAILING).all({
        since,
        scan: TOP_FAILING_SCAN,
        limit: params.topFailing,
      }) as Row[]).map((row) => ({
        command: str(row, "command"),
        failures: num(row, "failures"),
        lastError: strOrNull(row, "last_error"),
        lastExitCode: numOrNull(row, "last_exit_code"),
      }));
      const oldest = this.#stmt(q.JOB_OLDEST_DUE).get({ now }) as Row | undefined;
      return {
        now,
        since,
        window,
        lastHour,
        topFailing,
        oldestDue: oldest ? { job: str(oldest, "id"), dueAt: num(oldest, "run_at") } : null,
      };
    });
  }

  jobPrune(params: JobPruneParams & { limit: number; scanLimit?: number }): Promise<string[]> {
    return this.#write((now) => {
      const ids: string[] = [];
      for (const state of params.states) {
        const rows = this.#stmt(q.JOB_PRUNE_SELECT).all({
          state,
          before: now - params.olderThanMs,
          limit: params.limit - ids.length,
          window: params.scanLimit ?? 0,
        }) as Row[];
        for (const row of rows) {
          const seq = num(row, "seq");
          this.#stmt(q.JOB_DEPS_DELETE).run({ seq });
          this.#stmt(q.OUTPUT_DELETE).run({ seq });
          this.#stmt(q.ATTEMPT_DELETE).run({ seq });
          this.#stmt(q.JOB_DELETE).run({ seq });
          ids.push(str(row, "id"));
        }
        if (ids.length >= params.limit) break;
      }
      return ids;
    });
  }

  jobPruneCount(params: JobPruneParams): Promise<number> {
    return this.#read(() => {
      const before = this.#clock.now() - params.olderThanMs;
      return params.states.reduce(
        (sum, state) => sum + num(this.#stmt(q.JOB_PRUNE_COUNT).get({ state, before }) as Row, "n"),
        0,
      );
    });
  }

  statsCompact(params: StatsCompactParams): Promise<void> {
    return this.#write((now) => {
      this.#stmt(q.STATS_PRUNE).run({ before: Math.floor((now - params.retainMs) / 60_000) });
      // Whole hours only: the first minute of each hour holds the hour's figures.
      const before = Math.floor((now - params.minutesKeptMs) / 3_600_000) * 60;
      this.#stmt(q.STATS_COMPACT).run({ before });
      this.#stmt(q.STATS_COMPACT_DELETE).run({ before });
    });
  }

  maintain(): Promise<void> {
    return this.#read(() => {
      this.#stmt(q.WAL_TRUNCATE).get();
    });
  }

  jobListProcessing(): Promise<ProcessingJob[]> {
    return this.#read(() => {
      const now = this.#clock.now();
      return (this.#stmt(q.JOB_LIST_PROCESSING).all() as Row[]).map((row) => {
        const job = toJob(row);
        return {
          job,
          owner: row.w_id === null ? null : toWorker(row, now, "w_"),
          leaseExpired: job.leaseExpiresAt !== null && job.leaseExpiresAt <= now,
          leaseOverdueMs: job.leaseExpiresAt !== null && job.leaseExpiresAt <= now
            ? now - job.leaseExpiresAt
            : null,
          armed: row.a_armed !== 0,
          pid: numOrNull(row, "a_pid"),
          pidStart: numOrNull(row, "a_pid_start"),
          host: strOrNull(row, "a_host"),
        };
      });
    });
  }

  workerRegister(params: { worker: NewWorker }): Promise<void> {
    const w = params.worker;
    return this.#write((now) => {
      this.#stmt(q.WORKER_INSERT).run({
        id: w.id,
        pid: w.pid,
        host: w.host,
        host_id: w.hostId,
        pid_start: w.pidStart,
        now,
        supervisor_pid: w.supervisorPid,
      });
    });
  }

  workerHeartbeat(params: WorkerHeartbeatParams): Promise<WorkerHeartbeatResult> {
    return this.#write((now) => {
      this.#stmt(q.WORKER_HEARTBEAT).run({
        id: params.id,
        now,
        jobs_done: params.totals.jobsDone,
        jobs_failed: params.totals.jobsFailed,
        busy_ms: params.totals.busyMs,
      });
      const lost: AttemptRef[] = [];
      const cancel: CancelRequest[] = [];
      for (const lease of params.leases) {
        const renewed = this.#stmt(q.JOB_RENEW_LEASE).get({
          ...this.#owned(lease),
          lease_expires_at: now + lease.leaseMs,
        }) as Row | undefined;
        const ref = { jobId: lease.jobId, attempt: lease.attempt, workerId: params.id };
        if (!renewed) lost.push(ref);
        else if (renewed.cancel_reason !== null) {
          cancel.push({ ...ref, reason: str(renewed, "cancel_reason") });
        }
      }
      return { lost, cancel };
    });
  }

  workerSetState(params: { id: string; state: WorkerState }): Promise<void> {
    return this.#write((now) => {
      this.#stmt(q.WORKER_SET_STATE).run({ id: params.id, now, state: params.state });
    });
  }

  workerRemove(params: { ids: readonly string[] }): Promise<void> {
    return this.#write(() => {
      for (const id of params.ids) this.#stmt(q.WORKER_DELETE).run({ id });
    });
  }

  workerList(): Promise<WorkerRecord[]> {
    return this.#read(() => {
      const now = this.#clock.now();
      return (this.#stmt(q.WORKER_LIST).all() as Row[]).map((row) => toWorker(row, now));
    });
  }

  // -------------------------------------------------------------------------------------------
  // Schedules
  // -------------------------------------------------------------------------------------------

  scheduleAdd(params: { schedule: NewSchedule }): Promise<ScheduleRecord> {
    const { schedule } = params;
    return this.#write((now) => {
      const spec = schedule.spec;
      const added = this.#stmt(q.SCHEDULE_INSERT).run({
        name: schedule.name,
        kind: spec.kind,
        cron: spec.kind === "cron" ? spec.cron : null,
        time_zone: spec.kind === "cron" ? spec.timeZone : null,
        every_ms: spec.kind === "every" ? spec.everyMs : null,
        template: schedule.template,
        anchor: schedule.anchor,
        next_at: schedule.nextAt,
        now,
      }).changes === 1;
      if (!added) {
        throw new ConflictError(`Schedule "${schedule.name}" already exists`, {
          subject: schedule.name,
          reason: "schedule_exists",
        });
      }
      return toSchedule(this.#stmt(q.SCHEDULE_GET).get({ name: schedule.name }) as Row);
    });
  }

  scheduleGet(params: { name: string }): Promise<ScheduleRecord | undefined> {
    return this.#read(() => {
      const row = this.#stmt(q.SCHEDULE_GET).get({ name: params.name }) as Row | undefined;
      return row ? toSchedule(row) : undefined;
    });
  }

  scheduleList(): Promise<ScheduleRecord[]> {
    return this.#read(() => (this.#stmt(q.SCHEDULE_LIST).all() as Row[]).map(toSchedule));
  }

  scheduleRemove(params: { name: string }): Promise<boolean> {
    return this.#write(() => {
      this.#stmt(q.SCHEDULE_RUNS_DELETE).run({ name: params.name });
      return this.#stmt(q.SCHEDULE_DELETE).run({ name: params.name }).changes === 1;
    });
  }

  scheduleSetPaused(
    params: { name: string; paused: boolean; nextAt?: number | null },
  ): Promise<ScheduleRecord | undefined> {
    return this.#write((now) => {
      const changed = params.paused
        ? this.#stmt(q.SCHEDULE_PAUSE).run({ name: params.name, now })
        : this.#stmt(q.SCHEDULE_RESUME).run({
          name: params.name,
          next_at: params.nextAt ?? null,
          now,
        });
      if (changed.changes !== 1) return undefined;
      return toSchedule(this.#stmt(q.SCHEDULE_GET).get({ name: params.name }) as Row);
    });
  }

  scheduleDue(params: { limit: number }): Promise<ScheduleDueResult> {
    return this.#snapshot(() => {
      const now = this.#clock.now();
      const due = (this.#stmt(q.SCHEDULE_DUE).all({ now, limit: params.limit }) as Row[])
        .map(toSchedule);
      const nextAt = numOrNull(this.#stmt(q.SCHEDULE_NEXT).get() as Row, "next_at");
      return { due, nextDueInMs: nextAt === null ? null : Math.max(0, nextAt - now), now };
    });
  }

  scheduleFire(params: ScheduleFireParams): Promise<ScheduleFireResult> {
    const key = { name: params.name, fire_at: params.fireAt };
    return this.#write((now): ScheduleFireResult => {
      // The compare-and-swap, under the write lock: only one writer moves next_at from fireAt.
      const moved = this.#stmt(q.SCHEDULE_ADVANCE).run({
        ...key,
        next_at: params.nextAt,
        now,
      }).changes === 1;
      if (!moved) return { fired: false, job: null };
      // The second guard: one row per schedule and fire time.
      if (this.#stmt(q.SCHEDULE_RUN_INSERT).run({ ...key, job_id: "", now }).changes !== 1) {
        throw ALREADY_FIRED;
      }
      // A unique key a live job holds: that job stands for the occurrence (nothing new).
      const { jobs } = this.#insertJobs(now, {
        jobs: [params.job],
        defaultMaxRetries: params.defaultMaxRetries,
        ifExists: "keep",
      });
      const job = jobs[0]!;
      this.#stmt(q.SCHEDULE_RUN_SET_JOB).run({ ...key, job_id: job.id });
      this.#stmt(q.SCHEDULE_SET_LAST_JOB).run({ name: params.name, job_id: job.id });
      this.#stmt(q.SCHEDULE_RUNS_TRIM).run(key);
      return { fired: true, job };
    }, "schedule").catch((error: unknown) => {
      if (error === ALREADY_FIRED) return { fired: false, job: null };
      throw error;
    });
  }

  scheduleRunNow(
    params: ScheduleRunNowParams,
  ): Promise<{ job: Job; schedule: ScheduleRecord } | undefined> {
    return this.#write((now) => {
      if (this.#stmt(q.SCHEDULE_RUN_NOW).run({ name: params.name, now }).changes !== 1) {
        return undefined;
      }
      const { jobs } = this.#insertJobs(now, {
        jobs: [params.job],
        defaultMaxRetries: params.defaultMaxRetries,
      });
      const job = jobs[0]!;
      this.#stmt(q.SCHEDULE_SET_LAST_JOB).run({ name: params.name, job_id: job.id });
      const schedule = toSchedule(this.#stmt(q.SCHEDULE_GET).get({ name: params.name }) as Row);
      return { job, schedule };
    }, "enqueue");
  }

  workerStopRequest(params: { mode: StopRequestMode }): Promise<number> {
    return this.#write((now) => {
      this.#stmt(q.STOP_REQUEST).run({ key: `stop:${params.mode}`, now });
      return now;
    });
  }

  workerStopRequested(params: { id: string }): Promise<StopRequestMode | null> {
    return this.#read(() => {
      const keys = (this.#stmt(q.STOP_REQUESTED).all({ id: params.id }) as Row[]).map((row) =>
        str(row, "key")
      );
      return keys.includes("stop:force")
        ? "force"
        : keys.includes("stop:graceful")
        ? "graceful"
        : null;
    });
  }

  maintenanceTurn(params: MaintenanceTurnParams): Promise<boolean> {
    return this.#write((now) =>
      this.#stmt(q.MAINTENANCE_TURN).all({
        key: `round:${params.name}`,
        now,
        every: Math.max(0, Math.round(params.everyMs)),
      }).length === 1
    );
  }

  queueList(): Promise<QueueListResult> {
    return this.#snapshot(() => {
      const counts = new Map<string, JobCounts>();
      for (const row of this.#stmt(q.QUEUE_COUNTS).all() as Row[]) {
        const name = str(row, "queue");
        let c = counts.get(name);
        if (c === undefined) counts.set(name, c = emptyCounts());
        c[str(row, "state") as JobState] = num(row, "n");
        c.total += num(row, "n");
      }
      const queues = (this.#stmt(q.QUEUE_LIST).all() as Row[]).map((row) =>
        toQueue(row, counts.get(str(row, "name")) ?? emptyCounts())
      );
      const pausedAll = this.#stmt(q.QUEUE_PAUSED_ALL).get() !== undefined;
      return { queues, pausedAll };
    });
  }

  queuePaused(): Promise<{ names: string[]; pausedAll: boolean }> {
    return this.#snapshot(() => ({
      names: (this.#stmt(q.QUEUE_PAUSED).all() as Row[]).map((r) => str(r, "name")),
      pausedAll: this.#stmt(q.QUEUE_PAUSED_ALL).get() !== undefined,
    }));
  }

  queuePause(params: QueuePauseParams): Promise<string[]> {
    return this.#write((now) => this.#setPaused(params, true, now));
  }

  queueResume(params: QueuePauseParams): Promise<string[]> {
    // The write itself wakes every idle worker (data_version changes for each of them).
    return this.#write((now) => this.#setPaused(params, false, now));
  }

  #setPaused(params: QueuePauseParams, paused: boolean, now: number): string[] {
    this.#queuesCache = null;
    if (params.names === "all") {
      this.#stmt(q.QUEUE_SET_PAUSED_ALL).run({ paused: paused ? 1 : 0, now });
      this.#stmt(paused ? q.QUEUE_PAUSE_ALL_MARK : q.QUEUE_PAUSE_ALL_UNMARK).run(
        paused ? { now } : {},
      );
      return (this.#stmt(q.QUEUE_NAMES).all() as Row[]).map((r) => str(r, "name"));
    }
    const names = [...new Set(params.names)].sort();
    for (const name of names) {
      this.#stmt(q.QUEUE_SET_PAUSED).run({ name, paused: paused ? 1 : 0, now });
    }
    return names;
  }

  queueSetConcurrency(params: { name: string; concurrency: number }): Promise<QueueRecord> {
    if (!Number.isInteger(params.concurrency) || params.concurrency < 0) {
      return Promise.reject(new RangeError(`Bad concurrency ${params.concurrency}`));
    }
    return this.#write((now) => {
      this.#queuesCache = null;
      this.#stmt(q.QUEUE_SET_CONCURRENCY).run({
        name: params.name,
        concurrency: params.concurrency,
        now,
      });
      const row = (this.#stmt(q.QUEUE_LIST).all() as Row[]).find((r) =>
        str(r, "name") === params.name
      )!;
      const counts = emptyCounts();
      for (const c of this.#stmt(q.QUEUE_COUNTS_OF).all({ name: params.name }) as Row[]) {
        counts[str(c, "state") as JobState] = num(c, "n");
        counts.total += num(c, "n");
      }
      return toQueue(row, counts);
    });
  }

  configGetAll(): Promise<Record<string, string>> {
    return this.#read(() => {
      const out: Record<string, string> = {};
      for (const row of this.#stmt(q.CONFIG_ALL).all() as Row[]) {
        out[str(row, "key")] = str(row, "value");
      }
      return out;
    });
  }

  configSet(params: { key: string; value: string }): Promise<void> {
    return this.#write(() => {
      this.#stmt(q.CONFIG_SET).run({ key: params.key, value: params.value });
    });
  }

  configUnset(params: { key: string }): Promise<boolean> {
    return this.#write(() => this.#stmt(q.CONFIG_UNSET).run({ key: params.key }).changes === 1);
  }

  checkWritable(): Promise<void> {
    // SQLite opens a file it may only read read-only: a write that changes nothing finds out.
    return this.#write(() => {
      this.#stmt(q.WRITE_PROBE).run();
    });
  }

  changeMark(): number {
    return this.#watcher === null ? 0 : this.#version();
  }

  waitForChange(params: WaitForChangeParams): Promise<boolean> {
    if (this.#watcher === null) {
      // An in-memory stand-in for a missing file: nothing else can change it.
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), params.timeoutMs);
        params.signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve(false);
        }, { once: true });
      });
    }
    return this.#watcher.wait(params.since, params.timeoutMs, params.signal);
  }

  abandon(): Promise<void> {
    this.#watcher?.close();
    if (!this.#db.isOpen) return Promise.resolve();
    try {
      // Through the connection's own file handles: the old -wal, wherever it is now.
      this.#stmt(q.WAL_TRUNCATE).get();
    } catch { /* best effort: the file may be gone with its directory */ }
    this.#statements.clear();
    this.#db.close();
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#watcher?.close();
    this.#statements.clear();
    if (this.#db.isOpen) {
      if (this.#damaged) closeWithoutCheckpoint(this.#db, this.location);
      else this.#db.close();
    }
    return Promise.resolve();
  }
}

/** What claims read of the `queues` table. */
interface QueueSettings {
  rows: { name: string; paused: boolean; concurrency: number }[];
  /** Some queue is paused or limited: claims cannot take the plain walk. */
  restricted: boolean;
}

function emptyCounts(): JobCounts {
  const counts = { total: 0 } as JobCounts;
  for (const state of JOB_STATES) counts[state] = 0;
  return counts;
}

function toQueue(row: Row, counts: JobCounts): QueueRecord {
  return {
    name: str(row, "name"),
    paused: num(row, "paused") === 1,
    concurrency: num(row, "concurrency"),
    counts,
    createdAt: num(row, "created_at"),
    updatedAt: num(row, "updated_at"),
  };
}
