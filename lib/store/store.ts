/**
 * The storage contract. Every SQL statement lives behind this interface, so the CLI, the queue API
 * and workers stay free of SQL and of any one database's habits. Methods are asynchronous so that a
 * networked store (PostgreSQL) can implement them; each write is one short transaction.
 *
 * Method names are noun-first (`jobInsert`, `jobClaim`, …) so related operations sort together.
 * Every time a method stores or compares comes in through its params (`now`), from the caller's
 * `Clock`; no query reads the database's own clock.
 *
 * @module
 */

import type { Attempt, Job, NewJob } from "../job/job.ts";
import type { JobState } from "../job/state.ts";
import type { Decision } from "../job/outcome.ts";
import type { StatsSummary } from "../metrics.ts";

/** Counts per state, plus their sum. */
export type JobCounts = Record<JobState, number> & { total: number };

/** Pending jobs scheduled for later (not due yet). */
export interface ScheduledCount {
  scheduled: number;
  /** When the first of them is due; null when there are none. */
  nextAt: number | null;
}

export interface JobInsertParams {
  /**
   * A job without `maxRetries` gets the `max-retries` setting, read in the same transaction
   * (so a concurrent `config set` applies to the whole batch or to none of it).
   */
  jobs: readonly NewJob[];
  now: number;
  /** When an id exists already: fail the whole batch (default), or keep the existing job. */
  ifExists?: "fail" | "keep";
}

export interface JobInsertResult {
  /** The stored jobs, in input order (existing ones where `ifExists` is "keep"). */
  jobs: Job[];
  /** How many were new. */
  inserted: number;
}

/**
 * A page of jobs, newest first by enqueue order: the `limit` newest that match, before `beforeSeq`
 * when given (keyset paging on the sequence number, never an offset).
 */
export interface JobListParams {
  /** Only jobs in these states; absent: every state. */
  states?: readonly JobState[];
  limit: number;
  /** Only jobs enqueued before this sequence number (`Job.seq`). */
  beforeSeq?: number;
}

export interface JobListResult {
  /** The page, oldest first. */
  jobs: Job[];
  /** Jobs in the states asked for, on every page (the maintained counts). */
  total: number;
  /** More matching jobs lie before this page. */
  older: boolean;
}

export interface JobDlqRetryParams {
  /** The ids to retry, or every dead job. */
  ids: readonly string[] | "all";
  now: number;
}

/** A worker process as registered in the store. */
export interface WorkerRecord {
  id: string;
  pid: number;
  host: string;
  /** Start time of the process (clock ticks since boot, from /proc), to tell a reused pid apart. */
  pidStart: number | null;
  state: WorkerState;
  currentJob: string | null;
  startedAt: number;
  heartbeatAt: number;
  jobsDone: number;
  jobsFailed: number;
  /** The `worker start` process that runs it, if any. */
  supervisorPid: number | null;
  /** Time spent running jobs, ms. */
  busyMs: number;
}

export type WorkerState = "idle" | "busy" | "stopping";

export interface JobClaimParams {
  workerId: string;
  /** Where the attempt runs (recorded with it). */
  host: string;
  now: number;
  leaseMs: number;
}

/** Which attempt a worker believes it owns; every write about a running job is fenced by it. */
export interface AttemptRef {
  jobId: string;
  attempt: number;
  workerId: string;
}

export interface JobFinishParams extends AttemptRef {
  decision: Decision;
  now: number;
  /**
   * Only for recovery: the transition applies only if the lease has expired by `now`
   * (a lease-based rescue), so a worker that renewed in the meantime keeps its job.
   */
  requireLeaseExpired?: boolean;
  /** Final output of the attempt, saved in the same transaction. */
  output?: { stdout: OutputCapture; stderr: OutputCapture };
  /** The owner itself is finishing: mark it idle and count the job in its totals. */
  byOwner?: boolean;
}

export interface JobTakeOverParams extends AttemptRef {
  newWorkerId: string;
  now: number;
  leaseMs: number;
  requireLeaseExpired: boolean;
}

export interface AttemptProcessParams extends AttemptRef {
  pid: number;
  /** Start time of the job's process (clock ticks since boot), or null when unknown. */
  pidStart: number | null;
}

/** A job in `processing` with what recovery needs to judge and clean up after its owner. */
export interface ProcessingJob {
  job: Job;
  owner: WorkerRecord | null;
  /** The attempt's process group leader, when the worker recorded it. */
  pid: number | null;
  pidStart: number | null;
  host: string | null;
}

/** Output captured for one stream of one attempt: the head, and the tail after the cut. */
export interface OutputCapture {
  head: Uint8Array;
  tail: Uint8Array;
  /** Bytes written in all; when larger than head + tail, the middle was cut. */
  total: number;
}

export interface AttemptOutputParams extends AttemptRef {
  stdout: OutputCapture;
  stderr: OutputCapture;
}

export interface MaintainParams {
  /** Per-minute metric figures older than this are deleted. */
  statsBefore: number;
  /**
   * Per-minute figures older than this are folded into one row set per hour, so a 24-hour
   * window reads about 2 hours of minutes and 22 hours of hours.
   */
  compactBefore: number;
}

export interface Store {
  /** A path or URL for messages. */
  readonly location: string;

  /** Inserts jobs atomically: all of them or, on any error, none. */
  jobInsertMany(params: JobInsertParams): Promise<JobInsertResult>;
  jobGet(params: { id: string }): Promise<Job | undefined>;
  jobList(params: JobListParams): Promise<JobListResult>;
  /** Maintained counts: constant time however many jobs there are. */
  jobCountByState(): Promise<JobCounts>;
  /**
   * Pending jobs not due yet at `now`, and when the first of them is due. Read from the ready
   * index, so it costs a few milliseconds even with a hundred thousand scheduled jobs.
   */
  jobCountScheduled(params: { now: number }): Promise<ScheduledCount>;
  /**
   * Moves dead jobs back to `pending` with a fresh retry budget, atomically. Throws
   * `NotFoundError` or `ConflictError` (not dead) for the first id at fault, changing nothing.
   */
  jobDlqRetry(params: JobDlqRetryParams): Promise<Job[]>;
  /** The attempt history of a job, oldest first. */
  attemptList(params: { jobId: string }): Promise<Attempt[]>;

  /** Claims the next due job for a worker (priority, then run time, then enqueue order). */
  jobClaim(params: JobClaimParams): Promise<Job | undefined>;
  /** Read-only: whether a job is due now, and when the next scheduled one is due. Takes no write lock. */
  jobNextDue(params: { now: number }): Promise<{ dueNow: boolean; nextAt: number | null }>;
  /** Records the job's process for an attempt (fenced). */
  attemptSetProcess(params: AttemptProcessParams): Promise<boolean>;
  /** Extends the lease of a running attempt; false when the worker no longer owns it. */
  jobRenewLease(params: AttemptRef & { now: number; leaseMs: number }): Promise<boolean>;
  /** Saves captured output of a running or finished attempt (fenced). */
  attemptSaveOutput(params: AttemptOutputParams): Promise<boolean>;
  /** Applies an attempt's outcome, only if `attempt` of `jobId` is still owned by `workerId`. */
  jobFinish(params: JobFinishParams): Promise<boolean>;
  /**
   * Hands a processing attempt to `newWorkerId` with a fresh lease, only if it is still owned by
   * `workerId` (and its lease expired, when required). From then on the old owner's writes about
   * it match nothing: recovery fences the owner out before it kills the attempt's processes.
   */
  jobTakeOver(params: JobTakeOverParams): Promise<boolean>;
  /** Every job in `processing`, with its owner and process, for recovery. */
  jobListProcessing(): Promise<ProcessingJob[]>;
  /** Output of one attempt. */
  attemptOutput(params: { jobId: string; attempt: number }): Promise<
    { stdout: OutputCapture; stderr: OutputCapture } | undefined
  >;

  workerRegister(params: { worker: WorkerRecord }): Promise<void>;
  /**
   * Records that the worker is alive and, in the same transaction, extends the lease of the attempt
   * it runs. Returns false when that lease is no longer the worker's.
   */
  workerHeartbeat(
    params: {
      id: string;
      now: number;
      lease?: { jobId: string; attempt: number; leaseMs: number };
    },
  ): Promise<boolean>;
  workerSetState(params: { id: string; now: number; state: WorkerState }): Promise<void>;
  workerRemove(params: { id: string }): Promise<void>;
  workerList(): Promise<WorkerRecord[]>;

  /**
   * Figures for `metrics`, from counters maintained as attempts finish: never a scan of every
   * attempt. `since` bounds the window; throughput looks at the last hour whatever the window.
   */
  statsSummary(params: { since: number; now: number; topFailing: number }): Promise<StatsSummary>;
  /** Deletes up to `limit` finished jobs (with attempts and output) in one transaction; their ids. */
  jobPrune(
    params: { states: readonly JobState[]; finishedBefore: number; limit: number },
  ): Promise<string[]>;
  /** How many jobs `jobPrune` would delete. */
  jobPruneCount(params: { states: readonly JobState[]; finishedBefore: number }): Promise<number>;
  /** Housekeeping: keeps the write-ahead log small; compacts and drops old per-minute figures. */
  maintain(params: MaintainParams): Promise<void>;

  /** Stored config overrides: key → value in base units, as text. */
  configGetAll(): Promise<Record<string, string>>;
  configSet(params: { key: string; value: string }): Promise<void>;
  /** Returns false when the key had no stored value. */
  configUnset(params: { key: string }): Promise<boolean>;

  /**
   * A value that changes whenever another connection commits; cheap enough to poll every few
   * milliseconds. Idle workers watch it instead of querying for jobs.
   */
  changeToken(): Promise<number>;

  /**
   * For a database whose file was deleted or replaced under this process: empties the write-ahead
   * log (left at the path, it would be read as part of whatever file is there now) and closes,
   * writing nothing else.
   */
  abandon(): void;

  close(): void;
}
