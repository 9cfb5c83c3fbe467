/**
 * The storage contract. Every SQL statement lives behind this interface, so the queue API, the
 * workers, the CLI and the dashboard stay free of SQL and of any one database's habits. A store
 * is SQLite on one host (lib/store/sqlite/) or, with several hosts, a networked database; the
 * contract suite in tests/store/store_contract.ts holds every implementation to the same promises.
 *
 * ## Concurrency
 * Many processes (CLI calls, workers, a dashboard), on one host or many, use one database at
 * once. Every write method is one short transaction: it applies entirely or not at all, and no
 * other writer sees it half done. Where a method reads and then writes (an id sequence, a claim,
 * a fenced update), its doc says what keeps a concurrent writer from slipping in between; the
 * contract suite races two stores on one database to check it. No method keeps a transaction or a
 * lock open after it returns, so nothing is held while a job runs.
 *
 * ## Time
 * A store owns the clock that leases, due times and every stored timestamp are compared and
 * stamped with, so that one clock decides a lease however many hosts share the queue: the SQLite
 * store uses the `Clock` it was opened with (one host, one clock; tests inject a FakeClock); the
 * PostgreSQL store uses the database's `now()` (tests may still inject one, which its statements
 * then use instead: `coalesce($now, now())`). Methods therefore take durations (`leaseMs`,
 * `delayMs`, `olderThanMs`, `windowMs`), never a `now`; results give times in the store's clock
 * (epoch ms) and ages (`heartbeatAgeMs`, `nextDueInMs`) measured by it.
 * What stays with the caller: absolute times a user typed (`run_at`), durations a process measures
 * on its own monotonic clock, and the arithmetic of retry delays (lib/job/backoff.ts).
 *
 * ## Waiting for changes
 * `changeMark()` and `waitForChange()` let an idle process sleep until another one commits:
 * take a mark, read, and if there is nothing to do, wait for a change since the mark. A wake-up is
 * a hint, never the truth: it may come without a change (and may come for this store's own
 * writes), so callers look again with a query; a change is never missed for longer than the safety
 * poll of the implementation (a second for SQLite; two for PostgreSQL while it listens, one
 * without). A caller may say it cares only for work (`interest`), which a store may use to sleep
 * through other changes.
 *
 * Method names are noun-first (`jobInsertMany`, `jobClaim`, …) so related operations sort
 * together; each takes one params object.
 *
 * @module
 */

import type { Attempt, Job, NewJob } from "../job/job.ts";
import type { JobFilter } from "../job/filter.ts";
import type { JobState } from "../job/state.ts";
import type { Decision } from "../job/outcome.ts";
import type { StatsFigures } from "../metrics.ts";
import type { ScheduleSpec } from "../schedule/spec.ts";

/** What a store can do; callers branch on these, never on a database's name. */
export interface StoreCapabilities {
  /**
   * `waitForChange` is woken by other connections' commits (a file notification, LISTEN/NOTIFY)
   * within milliseconds; without it, it only polls.
   */
  readonly changeNotification: boolean;
  /** Workers on several hosts may share the queue; leases are then judged by database time. */
  readonly multiHost: boolean;
  /**
   * A worker's row says which host (pid namespace) it runs in, so a worker in the same one may
   * judge it dead by its pid and process start time, without waiting for its lease.
   */
  readonly pidRecovery: boolean;
}

/** Counts per state, plus their sum; `scheduled` is the part of `pending` not yet due. */
export type JobCounts = Record<JobState, number> & { total: number };

/** Pending jobs scheduled for later (not due yet). */
export interface ScheduledCount {
  scheduled: number;
  /** When the first of them is due (the store's clock); null when there are none. */
  nextAt: number | null;
}

export interface JobInsertParams {
  /** Inserted in this order; a job without an id gets the next sequence number as its id. */
  jobs: readonly NewJob[];
  /** `max_retries` of the jobs that leave it out (the `max-retries` setting, read by the caller). */
  defaultMaxRetries: number;
  /** When an id exists already: fail the whole batch (default), or keep the existing job. */
  ifExists?: "fail" | "keep";
}

export interface JobInsertResult {
  /** The stored jobs, in input order (existing ones where `ifExists` is "keep"). */
  jobs: Job[];
  /** How many were new. */
  inserted: number;
  /** Positions in `jobs` of existing jobs kept (an id, or a unique key, held already). */
  kept: number[];
}

/** One end of a dependency: a job, its state now (null: deleted), and whether it was met. */
export interface JobLink {
  id: string;
  state: JobState | null;
  /** The dependency completed (and was counted), so the dependent no longer waits for it. */
  met: boolean;
}

export interface JobDependencies {
  /** What the job waits (or waited) for, in the order of `after`. */
  after: JobLink[];
  /** The jobs that wait (or waited) for it, in enqueue order, at most the limit asked for. */
  dependents: JobLink[];
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

/**
 * How far a job's `created_at` may lie out of enqueue order (a clock stepped back, a long
 * transaction) and still be found by a search's time bounds: a store may locate a time bound by
 * enqueue order, reading this much beyond it.
 */
export const SEARCH_CLOCK_SLACK_MS = 10_000;

/**
 * A search whose cost is bounded however many jobs there are: the store walks back from
 * `beforeSeq` in enqueue order (per state through its state index, when states are given), looks at
 * no more than `scanLimit` jobs, and keeps those that meet every other condition. Time bounds may
 * narrow the walk first (see `SEARCH_CLOCK_SLACK_MS`); the conditions themselves are exact.
 */
export interface JobSearchParams extends Omit<JobFilter, "id"> {
  /** Only jobs enqueued before this sequence number. */
  beforeSeq?: number;
  /** Matches to return at most. */
  limit: number;
  /** Jobs to look at at most (the walk's budget). */
  scanLimit: number;
}

export interface JobSearchResult {
  /** The matches, newest first by enqueue order. */
  jobs: Job[];
  /**
   * Where the next page starts (pass it as `beforeSeq`): after the last match when more matches
   * exist, or where the walk stopped when its budget ran out first; null when no older job
   * can match.
   */
  nextBeforeSeq: number | null;
  /** The budget ran out before the page filled: older jobs were not looked at. */
  truncated: boolean;
}

/** A place in the due order (`runAt`, then `seq`): where a page of `jobSearchScheduled` ends. */
export interface DueCursor {
  runAt: number;
  seq: number;
}

/**
 * The jobs that wait for a time (see `JobFilter.dueAfter`), soonest first: ordered by `runAt`, then
 * enqueue order, after `after` when given (keyset paging, never an offset). The walk reads the
 * ready index one priority at a time from the cursor, merged, looks at no more than `scanLimit`
 * jobs, and keeps those that meet the other conditions (`dueAfter` itself is `now`; `dueBy`
 * matches nothing here).
 */
export interface JobSearchScheduledParams extends Omit<JobFilter, "id" | "dueAfter"> {
  /** The store's clock now: only jobs due after it. */
  now: number;
  /** Only jobs after this place in the due order (a `next`). */
  after?: DueCursor;
  /** Matches to return at most. */
  limit: number;
  /** Jobs to look at at most (the walk's budget). */
  scanLimit: number;
}

export interface JobSearchScheduledResult {
  /** The matches, soonest first. */
  jobs: Job[];
  /**
   * Where the next page starts (pass it as `after`): the last match when more matches exist, or
   * where the walk stopped when its budget ran out first; null when no later job can match.
   */
  next: DueCursor | null;
  /** The budget ran out before the page filled. */
  truncated: boolean;
}

export interface JobSearchCountResult {
  /** Matches among the jobs looked at. */
  count: number;
  /** Every job the search could match was looked at (false: the budget ran out first). */
  complete: boolean;
}

export interface JobDlqRetryParams {
  /** The ids to retry, or every dead job. */
  ids: readonly string[] | "all";
}

export interface JobCancelParams {
  /** The jobs to cancel: these ids, or every job in these states (pending, failed, processing). */
  ids: readonly string[] | { states: readonly JobState[] };
  /** Why, as the user gave it (kept on the job); the store does not make one up. */
  reason: string;
}

export interface JobCancelResult {
  /** Cancelled in this transaction: they were waiting, or reserved by a claim and not started. */
  cancelled: Job[];
  /**
   * Ids of jobs cancelled in the same transaction because they waited (directly or down a
   * chain) for one of these; not repeated from `cancelled`.
   */
  dependents: string[];
  /**
   * Running: the cancel is recorded on the job, and its owner kills it at its next look (see
   * `jobCancelRequests`); it ends `cancelled`, or `completed` if it exited 0 first.
   */
  requested: Job[];
}

export interface JobRetryParams {
  ids: readonly string[];
  /** Also completed jobs (otherwise a conflict). */
  force?: boolean;
}

/** A cancel asked of a running attempt, for its owner. */
export interface CancelRequest extends AttemptRef {
  reason: string;
}

/** What a worker says of itself: running (idle or busy: see `runningJobs`), or stopping. */
export type WorkerState = "running" | "stopping";

/** A worker process as it registers itself. */
export interface NewWorker {
  /** Unique per process start. */
  id: string;
  pid: number;
  /** The host's name, for people. */
  host: string;
  /** The pid namespace the worker runs in (see lib/worker/host.ts): who may judge its pid. */
  hostId: string;
  /** Start time of the process (clock ticks since boot, from /proc), to tell a reused pid apart. */
  pidStart: number | null;
  /** The `worker start` process that runs it, if any. */
  supervisorPid: number | null;
}

/** A worker as registered in the store. */
export interface WorkerRecord extends NewWorker {
  state: WorkerState;
  /** Ids of the jobs it holds in `processing`, oldest claim first. */
  runningJobs: string[];
  startedAt: number;
  heartbeatAt: number;
  /** How long ago its last heartbeat was, by the store's clock. */
  heartbeatAgeMs: number;
  jobsDone: number;
  jobsFailed: number;
  /** Time spent running jobs, ms (summed over its slots). */
  busyMs: number;
}

/** Which attempt a worker believes it owns; every write about a running job is fenced by it. */
export interface AttemptRef {
  jobId: string;
  attempt: number;
  workerId: string;
}

export interface JobClaimParams {
  workerId: string;
  /** Where the attempt runs (recorded with it). */
  host: string;
  leaseMs: number;
  /** Claims up to this many due jobs (the worker's free slots). */
  limit: number;
  /**
   * Arms the first this many of the jobs claimed (best first) in the same transaction, as
   * `attemptArm` would: the caller spawns them as soon as the claim returns, in slots that are
   * free now; the rest stay reserved. Default 0 (all reserved).
   */
  armFirst?: number;
  /** Only jobs of these queues (a worker's `--queue`); absent: of every queue. */
  queues?: readonly string[];
}

/** Which queues a worker takes jobs from (`jobNextDue`); absent: every queue. */
export interface QueueScope {
  queues?: readonly string[];
}

/** A named queue as stored (`queueList`). */
export interface QueueRecord {
  name: string;
  /** Workers claim nothing from it; its running jobs go on. */
  paused: boolean;
  /** At most this many of its jobs in `processing` at once, across every worker; 0: no limit. */
  concurrency: number;
  /** Its jobs per state. */
  counts: JobCounts;
  createdAt: number;
  updatedAt: number;
}

export interface QueueListResult {
  /** Every queue that has had a job or a setting, by name. */
  queues: QueueRecord[];
  /** `queuePause` of every queue is in force: a queue created from now on starts paused. */
  pausedAll: boolean;
}

export interface QueuePauseParams {
  /**
   * These queues (a name without a row gets one: a queue may be paused before its first job), or
   * every queue: those that exist and, until a resume of every queue, those created later.
   */
  names: readonly string[] | "all";
}

export interface JobFinishParams extends AttemptRef {
  decision: Decision;
  /**
   * Only for recovery: the transition applies only if the lease has expired by the store's clock
   * (a lease-based rescue), so a worker that renewed in the meantime keeps its job.
   */
  requireLeaseExpired?: boolean;
  /** Final output of the attempt, saved in the same transaction. */
  output?: { stdout: OutputCapture; stderr: OutputCapture };
}

export interface JobFinishAndClaimParams {
  /** Outcomes to record, each fenced on its own (one that lost its lease changes nothing). */
  finish: readonly JobFinishParams[];
  /**
   * Reserved attempts to arm in the same transaction, as `attemptArm` does: the worker spawns
   * them as soon as it commits (they take the slots of the jobs that ended).
   */
  arm?: readonly AttemptRef[];
  /** Then claims successors in the same transaction; absent claims nothing. */
  claim?: JobClaimParams;
}

export interface JobFinishAndClaimResult {
  /** Per entry of `finish`: whether it applied (false: the attempt was no longer the worker's). */
  applied: boolean[];
  /** Per entry of `arm`: whether it was armed (false: no longer the worker's, or armed before). */
  armed: boolean[];
  claimed: Job[];
}

export interface JobTakeOverParams extends AttemptRef {
  newWorkerId: string;
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
  /** Whether the lease ran out, by the store's clock. */
  leaseExpired: boolean;
  /** How long ago the lease ran out, by the store's clock; null while it has not. */
  leaseOverdueMs: number | null;
  /** Whether its worker started the attempt (false: reserved by a claim, never started). */
  armed: boolean;
  /** The attempt's process group leader, when the worker recorded it. */
  pid: number | null;
  pidStart: number | null;
  /** The host the attempt runs on. */
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

export interface WorkerHeartbeatParams {
  id: string;
  /** Leases to extend by `leaseMs` each (the attempts the worker runs). */
  leases: readonly (AttemptRef & { leaseMs: number })[];
  /** The worker's totals so far, kept by the worker and stored with each heartbeat. */
  totals: { jobsDone: number; jobsFailed: number; busyMs: number };
}

export interface WorkerHeartbeatResult {
  /** Leases that are no longer the worker's (recovered by another worker). */
  lost: AttemptRef[];
  /** Renewed attempts a user asked to cancel: the worker kills them. */
  cancel: CancelRequest[];
}

/** A stop request stored for every worker of the queue, on every host (`worker stop --all-hosts`). */
export type StopRequestMode = "graceful" | "force";

export interface MaintenanceTurnParams {
  /** The upkeep task (`housekeeping`): each name has its own rounds. */
  name: string;
  /** A round may begin this long (the store's clock) after the last one began, not sooner. */
  everyMs: number;
}

export interface StatsParams {
  /** The window ends at the store's now and reaches back this far. */
  windowMs: number;
  /** How many of the commands that failed most to return. */
  topFailing: number;
}

export interface JobPruneParams {
  states: readonly JobState[];
  /** Jobs that finished at least this long ago (by the store's clock). */
  olderThanMs: number;
}

export interface StatsCompactParams {
  /** Per-minute figures older than this are deleted. */
  retainMs: number;
  /**
   * Per-minute figures older than this are folded into one row set per hour, so a 24-hour
   * window reads about 2 hours of minutes and 22 hours of hours.
   */
  minutesKeptMs: number;
}

export interface WaitForChangeParams {
  /** A mark from `changeMark()`, taken before the caller last read. */
  since: number;
  /** Resolve false after this long without a change. */
  timeoutMs: number;
  /** Resolve false at once when aborted. */
  signal?: AbortSignal;
  /**
   * `"work"`: the caller only cares about changes that may make a job due (jobs enqueued, retried
   * from the DLQ, given back by recovery or a shutdown, failed with a retry scheduled) or a
   * schedule fire sooner (added, resumed), as an idle worker and a scheduler do. A store that
   * can tell changes apart may sleep through others; one that cannot (SQLite's `data_version`
   * changes with any commit) wakes for any change, which the hint allows.
   * Absent: any change.
   */
  interest?: "work";
}

/** A recurring job as `schedule add` stores it. */
export interface NewSchedule {
  /** Unique; the rules of job ids. */
  name: string;
  spec: ScheduleSpec;
  /**
   * The job every occurrence enqueues: canonical JSON of job fields (lib/schedule/template.ts),
   * validated again by the job validator when it fires.
   */
  template: string;
  /** Where an interval counts from (the store's clock when it was added). */
  anchor: number;
  /** When it fires first (the store's clock), computed by the caller from `now()`. */
  nextAt: number;
}

/** A recurring job as stored. */
export interface ScheduleRecord extends Omit<NewSchedule, "nextAt"> {
  paused: boolean;
  /** When it fires next; null when it never fires again (a cron date that does not come). */
  nextAt: number | null;
  /** The fire time of the last occurrence enqueued; null before the first. */
  lastAt: number | null;
  /** The job of the last occurrence, and its state now (null when it was pruned). */
  lastJobId: string | null;
  lastJobState: JobState | null;
  /** Occurrences enqueued so far. */
  fires: number;
  createdAt: number;
  updatedAt: number;
}

export interface ScheduleDueResult {
  /** Active schedules whose fire time has come (by the store's clock), soonest first. */
  due: ScheduleRecord[];
  /** How long until the next active schedule not due yet fires; null when none will. */
  nextDueInMs: number | null;
  /** The store's clock when it looked. */
  now: number;
}

export interface ScheduleFireParams {
  name: string;
  /** The fire time being enqueued: the `nextAt` the caller read (the compare-and-swap's value). */
  fireAt: number;
  /** The fire time after it (see lib/schedule/spec.ts `advance`); null: none. */
  nextAt: number | null;
  /** The occurrence's job, built from the template. */
  job: NewJob;
  /** `max_retries` when the template leaves it out (as in `JobInsertParams`). */
  defaultMaxRetries: number;
}

export interface ScheduleRunNowParams {
  name: string;
  /** The occurrence's job, built from the template. */
  job: NewJob;
  /** `max_retries` when the template leaves it out (as in `JobInsertParams`). */
  defaultMaxRetries: number;
}

export interface ScheduleFireResult {
  /** False: another process fired this occurrence first, or the schedule changed meanwhile. */
  fired: boolean;
  job: Job | null;
}

export interface Store {
  /** Where the queue lives, fit for messages (a path, or a URL without its password). */
  readonly location: string;
  readonly capabilities: StoreCapabilities;
  /**
   * The queue's own id, random and made with the database: it marks the processes of its jobs
   * (recovery finds them by it) without naming where the database is.
   */
  readonly queueId: string;

  /** The store's clock now (epoch ms): what it stamps and compares times with. */
  now(): Promise<number>;

  /**
   * Inserts jobs atomically: all of them or, on any error, none. Ids are unique under any number
   * of concurrent inserters (a unique index decides; the id sequence is taken inside the write
   * transaction, so two inserters never hand out one number). Throws `ConflictError` (reason
   * `id_exists`, subject the id) for an existing id unless `ifExists` is "keep".
   *
   * A job's `uniqueKey` is held while it is pending, failed or processing: a job whose key a
   * live job holds (in the database, or earlier in the batch) is a `ConflictError` (reason
   * `unique_key_held`, subject the holder), or with `ifExists` "keep" that job stands for it.
   * A partial unique index decides between concurrent inserters.
   *
   * Each id in a job's `after` must name a job in the database or earlier in the batch
   * (`NotFoundError`, reason `dependency_not_found`), not dead or cancelled (`ConflictError`,
   * reason `dependency_failed`); so no cycle can be built. The job is not claimable until each
   * has completed (one completed already counts as met): `Job.waitingOn` counts the rest. The
   * transaction that completes a dependency releases its dependents; the one that makes it dead
   * or cancelled (a worker's outcome, `jobCancel`, recovery) cancels the jobs waiting for it,
   * down the chain, with a reason naming it. A retry does not revive them.
   */
  jobInsertMany(params: JobInsertParams): Promise<JobInsertResult>;
  jobGet(params: { id: string }): Promise<Job | undefined>;
  jobList(params: JobListParams): Promise<JobListResult>;
  /**
   * A page of the jobs that meet a filter, bounded in cost by `scanLimit` (see `JobSearchParams`).
   * Read-only; reads one consistent snapshot.
   */
  jobSearch(params: JobSearchParams): Promise<JobSearchResult>;
  /** How many jobs meet a filter, looking at no more than `scanLimit` jobs. Read-only. */
  jobSearchCount(params: Omit<JobSearchParams, "limit">): Promise<JobSearchCountResult>;
  /**
   * A page of the jobs waiting for a time, soonest first, bounded in cost by `scanLimit` (see
   * `JobSearchScheduledParams`). Read-only; reads one consistent snapshot.
   */
  jobSearchScheduled(params: JobSearchScheduledParams): Promise<JobSearchScheduledResult>;
  /** Maintained counts: constant time however many jobs there are. */
  jobCountByState(): Promise<JobCounts>;
  /**
   * Pending jobs not due yet (by the store's clock), and when the first of them is due. Read from the ready
   * index, so it costs a few milliseconds even with a hundred thousand scheduled jobs.
   */
  jobCountScheduled(): Promise<ScheduledCount>;
  /**
   * Moves dead jobs back to `pending` with a fresh retry budget, atomically. Throws
   * `NotFoundError` or `ConflictError` (reason `not_dead`) for the first id at fault, changing
   * nothing. Concurrent retries of one job: exactly one applies (the update is guarded by state).
   */
  jobDlqRetry(params: JobDlqRetryParams): Promise<Job[]>;
  /**
   * Makes waiting jobs (pending, failed) due now, all or none: `runAt` becomes the store's now
   * (an earlier one stays), nothing else changes (a job waiting for other jobs still waits for
   * them; a retry keeps its attempt count). Throws `NotFoundError` or `ConflictError` (reason
   * `not_waiting`) for the first id at fault, changing nothing. The dashboard's "Run now".
   */
  jobRunNow(params: { ids: readonly string[] }): Promise<Job[]>;
  /**
   * Cancels jobs, all or none, in one transaction: throws `NotFoundError` (reason
   * `job_not_found`) or `ConflictError` (reason `finished`, subject the id) for the first id at
   * fault, changing nothing. A waiting job (pending, failed) ends `cancelled` at once, as does a
   * claimed one whose attempt was only reserved; a running one gets a cancel request its owner
   * sees at its next renewal or look (`jobCancelRequests`). Every update is guarded by the state
   * it found under the transaction's lock, so a concurrent claim or finish makes it take the
   * other branch, never both: the outcome that commits first wins (see `jobFinish`).
   */
  jobCancel(params: JobCancelParams): Promise<JobCancelResult>;
  /** Cancel requests on the running attempts of a worker. Read-only, through a partial index. */
  jobCancelRequests(params: { workerId: string }): Promise<CancelRequest[]>;
  /**
   * Moves dead and cancelled jobs (completed ones too with `force`) back to `pending` with a
   * fresh retry budget, all or none: `NotFoundError`, or `ConflictError` (reason
   * `not_retryable`) for the first id at fault. Guarded by state, as `jobDlqRetry`.
   * A retried job waits again for its dependencies that have not completed; one of them dead,
   * cancelled or deleted (and not retried in the same call) is a `ConflictError`. A unique key
   * another live job holds is a `ConflictError` (reason `unique_key_held`); so in `jobDlqRetry`.
   */
  jobRetry(params: JobRetryParams): Promise<Job[]>;
  /**
   * Deletes finished jobs (completed, dead, cancelled) with their attempts and output, all or
   * none: throws `NotFoundError` (reason `job_not_found`) or `ConflictError` (reason
   * `not_finished`, subject the id) for the first id at fault, changing nothing. Each state is
   * read under the transaction's lock, so a job that a concurrent retry moved back to pending is
   * refused, never deleted. Returns the ids deleted, each once, in the order given.
   */
  jobDelete(params: { ids: readonly string[] }): Promise<string[]>;
  /**
   * What a job waits for and the jobs that wait for it (at most `limit` of those). Read-only;
   * empty lists for an unknown id.
   */
  jobDependencies(params: { id: string; limit: number }): Promise<JobDependencies>;
  /** The attempt history of a job, oldest first. */
  attemptList(params: { jobId: string }): Promise<Attempt[]>;
  /** Output of one attempt, or undefined when none was saved. */
  attemptOutput(params: { jobId: string; attempt: number }): Promise<
    { stdout: OutputCapture; stderr: OutputCapture } | undefined
  >;

  /**
   * Claims up to `limit` due jobs for a worker (priority, then due time, then enqueue order),
   * reserving an attempt of each under a fresh lease. Two workers claiming at once never get the
   * same job: the selection and the update are one write transaction (or, where rows are locked,
   * skip each other's locked rows). A reserved attempt counts once the worker arms it.
   * Only jobs of `queues` (all when absent), never of a paused queue, and never so many of a
   * limited queue that more than its `concurrency` would be in `processing` (reserved ones count):
   * claims of a limited queue are serialised, so a burst of them cannot exceed it.
   */
  jobClaim(params: JobClaimParams): Promise<Job[]>;
  /**
   * Marks reserved attempts started, just before the worker spawns them (each fenced); per entry,
   * whether it applied. Until then a claim that its worker did not live to start is undone by
   * recovery, not charged (`jobUnclaim`).
   */
  attemptArm(params: readonly AttemptRef[]): Promise<boolean[]>;
  /**
   * Undoes the claim of an attempt that was reserved and never armed: the job is due again as
   * it was, and the attempt is not counted. Fenced by the ref and by the attempt being unarmed,
   * so an owner that arms it meanwhile keeps it.
   */
  jobUnclaim(params: AttemptRef): Promise<boolean>;
  /**
   * Read-only and without a write lock: whether a job is due that a claim of `scope` could take,
   * and how long until the next scheduled one is (null when none waits). Jobs of paused queues
   * and of queues at their limit do not count, so a worker with nothing but those to take waits
   * for a change instead of claiming in a loop.
   */
  jobNextDue(scope?: QueueScope): Promise<{ dueNow: boolean; nextDueInMs: number | null }>;
  /**
   * Records outcomes, then claims successors, in one transaction: the worker's step from the jobs
   * that ended to the ones it starts next. Each outcome is fenced by its attempt ref.
   */
  jobFinishAndClaim(params: JobFinishAndClaimParams): Promise<JobFinishAndClaimResult>;
  /**
   * Applies one attempt's outcome, only if `attempt` of `jobId` is still owned by `workerId` (and
   * its lease expired, when required): a fenced compare-and-set, so a stale owner changes nothing.
   * When a cancel was requested (`jobCancel`) and the outcome is not a completion, the job ends
   * `cancelled` instead, its attempt recorded with outcome `cancelled`; a completion clears the
   * request. So a cancel that races the job's end yields exactly one of the two.
   */
  jobFinish(params: JobFinishParams): Promise<boolean>;
  /**
   * Hands a processing attempt to `newWorkerId` with a fresh lease, only if it is still owned by
   * `workerId` (and its lease expired, when required). From then on the old owner's writes about
   * it match nothing: recovery fences the owner out before it kills the attempt's processes.
   */
  jobTakeOver(params: JobTakeOverParams): Promise<boolean>;
  /** Every job in `processing`, with its owner and process, for recovery. */
  jobListProcessing(): Promise<ProcessingJob[]>;
  /** Records the job's process for attempts (each fenced); per entry, whether it applied. */
  attemptSetProcess(params: readonly AttemptProcessParams[]): Promise<boolean[]>;
  /** Saves captured output of running attempts (each fenced); per entry, whether it applied. */
  attemptSaveOutput(params: readonly AttemptOutputParams[]): Promise<boolean[]>;

  workerRegister(params: { worker: NewWorker }): Promise<void>;
  /**
   * Records that the worker is alive, with its totals, and extends the leases of the attempts it
   * runs, in one transaction. Each lease renewal is fenced; the ones that no longer match are
   * returned as lost.
   */
  workerHeartbeat(params: WorkerHeartbeatParams): Promise<WorkerHeartbeatResult>;
  workerSetState(params: { id: string; state: WorkerState }): Promise<void>;
  workerRemove(params: { ids: readonly string[] }): Promise<void>;
  workerList(): Promise<WorkerRecord[]>;
  /**
   * Stores a stop request that every worker registered until now sees (`workerStopRequested`),
   * wherever it runs: signals do not cross machines. A worker that registers later is not
   * affected. Returns the request's time (the store's clock).
   */
  workerStopRequest(params: { mode: StopRequestMode }): Promise<number>;
  /**
   * The stop request that applies to worker `id` (stored at or after it registered): "force" if
   * a forced one does, else "graceful" if a graceful one does, else null (also for an unknown id).
   * Read-only.
   */
  workerStopRequested(params: { id: string }): Promise<StopRequestMode | null>;
  /**
   * Leaderless upkeep: whether the caller does this round of task `name`. A compare-and-set on
   * the time the last round began (the store's clock, kept in the database): of any number of
   * callers on any number of hosts, exactly one gets true per `everyMs`, the others false until
   * the next round is due. A time in the future (a clock stepped back) counts as due.
   */
  maintenanceTurn(params: MaintenanceTurnParams): Promise<boolean>;

  /**
   * Figures for `metrics`, from counters maintained as attempts finish: never a scan of every
   * attempt. Throughput looks at the last hour whatever the window.
   */
  statsFigures(params: StatsParams): Promise<StatsFigures>;
  /**
   * Deletes up to `limit` finished jobs (with attempts and output) in one transaction; their ids.
   * With `scanLimit`, looks only at that many of the oldest jobs of each state (by enqueue order),
   * for housekeeping that must stay cheap when nothing is old enough; without, at all of them.
   */
  jobPrune(params: JobPruneParams & { limit: number; scanLimit?: number }): Promise<string[]>;
  /** How many jobs `jobPrune` would delete. */
  jobPruneCount(params: JobPruneParams): Promise<number>;
  /** Compacts old per-minute figures into hours and drops the oldest; every store needs it. */
  statsCompact(params: StatsCompactParams): Promise<void>;
  /**
   * Upkeep that one database needs on top (SQLite: truncating the write-ahead log; PostgreSQL:
   * folding the count deltas). Changes no figure a method returns.
   */
  maintain(): Promise<void>;

  /**
   * Stores a new schedule. Throws `ConflictError` (reason `schedule_exists`, subject the name)
   * when the name is taken; a unique index decides between concurrent adds.
   */
  scheduleAdd(params: { schedule: NewSchedule }): Promise<ScheduleRecord>;
  scheduleGet(params: { name: string }): Promise<ScheduleRecord | undefined>;
  /** Every schedule, by name. */
  scheduleList(): Promise<ScheduleRecord[]>;
  /** Deletes a schedule (its jobs stay); false when there was none. */
  scheduleRemove(params: { name: string }): Promise<boolean>;
  /**
   * Pauses or resumes a schedule; a resume sets its next fire time (`nextAt`, computed by the
   * caller from `now()`: what it missed while paused does not fire). Undefined when there is
   * no such schedule.
   */
  scheduleSetPaused(
    params: { name: string; paused: boolean; nextAt?: number | null },
  ): Promise<ScheduleRecord | undefined>;
  /** Read-only: the active schedules due now, and how long until the next one is. */
  scheduleDue(params: { limit: number }): Promise<ScheduleDueResult>;
  /**
   * Enqueues one occurrence of a schedule, exactly once however many processes on however many
   * hosts try: in one transaction, a compare-and-swap moves the schedule's next fire time from
   * `fireAt` to `nextAt` (only while it is active and still at `fireAt`), a row keyed by
   * schedule and fire time is added (a unique index: the second guard), and the job is
   * inserted. The loser of a race, or a caller whose view is stale, changes nothing and gets
   * `fired: false`. Notifies waiters as an enqueue does.
   */
  scheduleFire(params: ScheduleFireParams): Promise<ScheduleFireResult>;
  /**
   * Enqueues one extra occurrence of a schedule now ("run now"), paused or not: in one
   * transaction the job is inserted and becomes the schedule's last job (`lastAt` the store's
   * clock, `fires` + 1); its next fire time does not move. Undefined, with nothing inserted, when
   * there is no such schedule. Notifies waiters as an enqueue does.
   */
  scheduleRunNow(
    params: ScheduleRunNowParams,
  ): Promise<{ job: Job; schedule: ScheduleRecord } | undefined>;

  /** Every queue with its settings and counts per state (counted by one scan of the jobs). */
  queueList(): Promise<QueueListResult>;
  /** The paused queues, by name, and whether every queue is (`pausedAll`); a read of a few rows. */
  queuePaused(): Promise<{ names: string[]; pausedAll: boolean }>;
  /**
   * Pauses queues in one transaction: workers claim nothing more from them (running jobs go on)
   * until `queueResume`. Kept in the database, so it outlives every worker. Returns the names
   * paused (for "all", every queue's), sorted.
   */
  queuePause(params: QueuePauseParams): Promise<string[]>;
  /**
   * Resumes queues (for "all", every queue, and queues created later start active again) and
   * wakes idle workers as an enqueue does. Returns the names resumed, sorted.
   */
  queueResume(params: QueuePauseParams): Promise<string[]>;
  /** Sets a queue's limit (0: none), creating its row; wakes idle workers (a limit may rise). */
  queueSetConcurrency(params: { name: string; concurrency: number }): Promise<QueueRecord>;

  /** Stored config overrides: key → value in base units, as text. */
  configGetAll(): Promise<Record<string, string>>;
  configSet(params: { key: string; value: string }): Promise<void>;
  /** Returns false when the key had no stored value. */
  configUnset(params: { key: string }): Promise<boolean>;

  /**
   * Throws `StoreUnusableError` (exit 6) when this store cannot write (a read-only file or
   * database), changing nothing either way.
   */
  checkWritable(): Promise<void>;

  /** A mark of what this store has seen so far, for `waitForChange`; no I/O. */
  changeMark(): number;
  /**
   * Resolves true when another connection may have committed since `since` was taken (at once
   * when it already has), false after `timeoutMs` or when `signal` aborts. A hint: see the module
   * doc.
   */
  waitForChange(params: WaitForChangeParams): Promise<boolean>;

  /**
   * For a database whose file was deleted or replaced under this process: empties the write-ahead
   * log (left at the path, it would be read as part of whatever file is there now) and closes,
   * writing nothing else. A store without such a file just closes.
   */
  abandon(): Promise<void>;

  close(): Promise<void>;
}
