/**
 * The queue's core API. The CLI, the dashboard and the worker command call only this; it holds no
 * SQL (that is the store's, which stays private to the core) and no presentation (the CLI's and
 * the dashboard's; both print the shapes of lib/json.ts).
 *
 * @module
 */

import type { Clock } from "./clock.ts";
// config.ts (and the parsers it needs) is imported where used: most commands never touch it, and
// every command pays for what start-up loads.
import type { Config } from "./config.ts";
import { ConflictError, NotFoundError, UsageError } from "./errors.ts";
import type { FaultHook } from "./fault.ts";
import type { Attempt, Job, NewJob } from "./job/job.ts";
import { DEFAULT_MAX_RETRIES } from "./job/job.ts";
import { queueNameProblem } from "./job/id.ts";
// filter.ts is imported where used: only the dashboard searches.
import type { JobFilter } from "./job/filter.ts";
import type { JobState } from "./job/state.ts";
import { CANCELLABLE_STATES, RETRYABLE_STATES, TERMINAL_STATES } from "./job/state.ts";
import type { Metrics } from "./metrics.ts";
import type { DbLocation } from "./store/location.ts";
import type {
  DueCursor,
  JobCancelResult,
  JobCounts,
  JobDependencies,
  JobInsertResult,
  JobListParams,
  JobListResult,
  JobSearchCountResult,
  JobSearchResult,
  JobSearchScheduledResult,
  OutputCapture,
  QueueListResult,
  QueueRecord,
  ScheduledCount,
  ScheduleRecord,
  Store,
  StoreCapabilities,
} from "./store/store.ts";
import type { JudgedWorker, LivenessOptions } from "./worker/liveness.ts";
import type { Worker, WorkerOptions } from "./worker/worker.ts";
import { lazy } from "./lazy.ts";

export interface OpenQueueOptions {
  /** `cli` acknowledges work to users (durable commits, waits 5 s for locks); `worker` runs jobs. */
  role: "cli" | "worker";
  clock: Clock;
  fault?: FaultHook | undefined;
  /** False: a missing database is not created (commands that only read see an empty queue). */
  create?: boolean;
}

/** Opens the queue at `location`, creating its database on first use unless told not to. */
export async function openQueue(location: DbLocation, options: OpenQueueOptions): Promise<Queue> {
  const { openStore } = await lazy<typeof import("./store/open.ts")>(
    import.meta.url,
    "./store/open.ts",
  );
  const store = await openStore(location, {
    role: options.role,
    clock: options.clock,
    fault: options.fault,
    create: options.create !== false,
  });
  return new Queue(store, { clock: options.clock });
}

export interface QueueOptions {
  clock: Clock;
}

export interface WaitOptions {
  /** Give up after this long; absent waits for ever. */
  timeoutMs?: number;
  /** Called with the jobs as last read, after every read. */
  onProgress?: (jobs: Job[]) => void;
}

export interface WaitResult {
  jobs: Job[];
  timedOut: boolean;
}

/**
 * Jobs a search looks at per page at most: what bounds its cost (about 25 ms on SQLite for jobs
 * spread through a million). A search that finds too few says where it stopped, to go on from.
 */
export const SEARCH_SCAN_LIMIT = 20_000;
/** Jobs a count of matches looks at at most (beyond it, the count is a lower bound). */
export const COUNT_SCAN_LIMIT = 200_000;

/** The highest limit `queueSetConcurrency` takes. */
export const MAX_QUEUE_CONCURRENCY = 100_000;

/** Throws `RangeError` naming the first bad queue name. */
function checkQueueNames(names: readonly string[] | "all"): readonly string[] | "all" {
  if (names === "all") return names;
  for (const name of names) {
    const problem = queueNameProblem(name);
    if (problem) throw new RangeError(`Queue name ${JSON.stringify(name)} ${problem}`);
  }
  return names;
}

export interface SearchPageOptions {
  /** Only jobs enqueued before this sequence number (a `nextBeforeSeq`). */
  beforeSeq?: number;
  limit: number;
  /** Default `SEARCH_SCAN_LIMIT`. */
  scanLimit?: number;
}

export interface ScheduledPageOptions {
  /** Only jobs after this place in the due order (a `next`). */
  after?: DueCursor;
  limit: number;
  /** Default `SEARCH_SCAN_LIMIT`. */
  scanLimit?: number;
}

/** `filter` with a due condition's states (pending, failed), so the walk is of those only. */
async function withDueStates(filter: JobFilter): Promise<JobFilter> {
  if (filter.dueAfter === undefined && filter.dueBy === undefined) return filter;
  const { narrowForDue } = await lazy<typeof import("./job/filter.ts")>(
    import.meta.url,
    "./job/filter.ts",
  );
  return narrowForDue(filter);
}

/** The states each job action applies to: cancel waiting and running jobs, retry and delete. */
export const ACTION_STATES: Readonly<Record<JobAction, readonly JobState[]>> = {
  cancel: CANCELLABLE_STATES,
  retry: RETRYABLE_STATES,
  delete: TERMINAL_STATES,
};

export type JobAction = "cancel" | "retry" | "delete";

/** `filter` narrowed to the states `action` applies to (`states` may end up empty). */
export function narrowForAction(filter: JobFilter, action: JobAction): JobFilter {
  const states = ACTION_STATES[action].filter((s) =>
    filter.states === undefined || filter.states.includes(s)
  );
  return { ...filter, states };
}

export interface QueueStatus {
  counts: JobCounts;
  /** Pending jobs not due yet (part of `counts.pending`). */
  scheduled: ScheduledCount;
  workers: JudgedWorker[];
  /** Paused queues by name, and whether every queue is paused (new ones too). */
  paused: { names: string[]; pausedAll: boolean };
}

/** `NotFoundError` for a schedule name, as `queuectl schedule` and the dashboard report it. */
function throwScheduleNotFound(name: string): never {
  throw new NotFoundError(`Schedule "${name}" not found`, {
    subject: name,
    reason: "schedule_not_found",
    hint: "`queuectl schedule list` shows the schedules",
  });
}

export class Queue {
  readonly #store: Store;
  readonly clock: Clock;

  constructor(store: Store, options: QueueOptions) {
    this.#store = store;
    this.clock = options.clock;
  }

  /** Where the queue lives, fit for messages. */
  get location(): string {
    return this.#store.location;
  }

  get capabilities(): StoreCapabilities {
    return this.#store.capabilities;
  }

  /**
   * Stores jobs atomically: every one of them, or none. A job without `max_retries` gets the
   * `max-retries` setting.
   *
   * @example
   * ```ts ignore
   * const { jobs } = await queue.enqueue([job]);
   * console.log(jobs[0].id);
   * ```
   */
  async enqueue(
    jobs: readonly NewJob[],
    options: { ifExists?: "fail" | "keep" } = {},
  ): Promise<JobInsertResult> {
    const needsDefault = jobs.some((job) => job.maxRetries === null);
    return await this.#store.jobInsertMany({
      jobs,
      defaultMaxRetries: needsDefault ? await this.#defaultMaxRetries() : DEFAULT_MAX_RETRIES,
      ifExists: options.ifExists ?? "fail",
    });
  }

  /** The `max-retries` setting: what a job that does not say gets. */
  async #defaultMaxRetries(): Promise<number> {
    const setting = (await this.#store.configGetAll())["max-retries"];
    // A stored value was validated by `config set`; anything else falls back to the default.
    const stored = setting === undefined ? NaN : Number(setting);
    return Number.isInteger(stored) && stored >= 0 ? stored : DEFAULT_MAX_RETRIES;
  }

  /** The job with `id`, or `NotFoundError`. */
  async get(id: string): Promise<Job> {
    const job = await this.#store.jobGet({ id });
    if (!job) {
      throw new NotFoundError(`Job "${id}" not found`, { subject: id, reason: "job_not_found" });
    }
    return job;
  }

  /**
   * What job `id` waits for, and the jobs that wait for it (at most `limit`, default 100).
   *
   * @example
   * ```ts ignore
   * const { after, dependents } = await queue.dependencies("deploy");
   * ```
   */
  dependencies(id: string, limit = 100): Promise<JobDependencies> {
    return this.#store.jobDependencies({ id, limit });
  }

  /** The newest `limit` jobs (before `beforeSeq`, in `states`), oldest first; see `JobListParams`. */
  list(options: JobListParams): Promise<JobListResult> {
    return this.#store.jobList(options);
  }

  /**
   * The jobs that meet `filter`, newest first, a page at a time, bounded in cost: see
   * `Store.jobSearch`. An `id` condition is one lookup.
   *
   * @example
   * ```ts ignore
   * const page = await queue.search({ states: ["dead"], commandContains: "backup" }, { limit: 50 });
   * if (page.nextBeforeSeq !== null) await queue.search(filter, { beforeSeq: page.nextBeforeSeq, limit: 50 });
   * ```
   */
  async search(filter: JobFilter, page: SearchPageOptions): Promise<JobSearchResult> {
    if (filter.id !== undefined) {
      const { jobMatches } = await lazy<typeof import("./job/filter.ts")>(
        import.meta.url,
        "./job/filter.ts",
      );
      const job = await this.#store.jobGet({ id: filter.id });
      const hit = job !== undefined && jobMatches(job, filter) &&
        (page.beforeSeq === undefined || job.seq < page.beforeSeq);
      return { jobs: hit ? [job] : [], nextBeforeSeq: null, truncated: false };
    }
    const { id: _id, ...conditions } = await withDueStates(filter);
    return await this.#store.jobSearch({
      ...conditions,
      ...(page.beforeSeq === undefined ? {} : { beforeSeq: page.beforeSeq }),
      limit: page.limit,
      scanLimit: page.scanLimit ?? SEARCH_SCAN_LIMIT,
    });
  }

  /**
   * How many jobs meet `filter`: from the maintained counts when it asks only for states (exact,
   * constant time), else by a count that looks at no more than `scanLimit` jobs.
   */
  async countMatching(
    filter: JobFilter,
    scanLimit = COUNT_SCAN_LIMIT,
  ): Promise<JobSearchCountResult> {
    const { filtersBeyondState, jobMatches } = await lazy<typeof import("./job/filter.ts")>(
      import.meta.url,
      "./job/filter.ts",
    );
    if (filter.id !== undefined) {
      const job = await this.#store.jobGet({ id: filter.id });
      return { count: job !== undefined && jobMatches(job, filter) ? 1 : 0, complete: true };
    }
    if (!filtersBeyondState(filter)) {
      const counts = await this.#store.jobCountByState();
      const states = filter.states === undefined ? undefined : [...new Set(filter.states)];
      const count = states === undefined
        ? counts.total
        : states.reduce((sum, state) => sum + counts[state], 0);
      return { count, complete: true };
    }
    const { id: _id, ...conditions } = await withDueStates(filter);
    return await this.#store.jobSearchCount({ ...conditions, scanLimit });
  }

  /**
   * The jobs that wait for a time (delayed ones and retries in their backoff; see
   * `JobFilter.dueAfter`) and meet `filter`, soonest first, a page at a time from `after`, bounded
   * in cost: see `Store.jobSearchScheduled`. The dashboard's Scheduled page.
   *
   * @example
   * ```ts ignore
   * const page = await queue.scheduled({ queues: ["mail"] }, { limit: 50 });
   * if (page.next !== null) await queue.scheduled({ queues: ["mail"] }, { after: page.next, limit: 50 });
   * ```
   */
  async scheduled(
    filter: JobFilter,
    page: ScheduledPageOptions,
  ): Promise<JobSearchScheduledResult> {
    const now = await this.#store.now();
    const { id, dueAfter, ...conditions } = filter;
    const since = Math.max(now, dueAfter ?? now);
    if (id !== undefined) {
      const { jobMatches } = await lazy<typeof import("./job/filter.ts")>(
        import.meta.url,
        "./job/filter.ts",
      );
      const job = await this.#store.jobGet({ id });
      const hit = job !== undefined && jobMatches(job, { ...filter, dueAfter: since }) &&
        (page.after === undefined || job.runAt > page.after.runAt ||
          (job.runAt === page.after.runAt && job.seq > page.after.seq));
      return { jobs: hit ? [job] : [], next: null, truncated: false };
    }
    return await this.#store.jobSearchScheduled({
      ...conditions,
      now: since,
      ...(page.after === undefined ? {} : { after: page.after }),
      limit: page.limit,
      scanLimit: page.scanLimit ?? SEARCH_SCAN_LIMIT,
    });
  }

  /**
   * Retries up to `limit` dead jobs that meet `filter`, newest first, from `beforeSeq` back: one
   * step of "retry all matching", which a caller repeats from `nextBeforeSeq` until it is null.
   * Each step retries all of the jobs it found or none; a job retried by someone else meanwhile
   * is searched for again (a few times) instead of failing the step.
   */
  async dlqRetryMatching(
    filter: JobFilter,
    page: SearchPageOptions,
  ): Promise<{ jobs: Job[]; nextBeforeSeq: number | null }> {
    if (filter.states !== undefined && !filter.states.includes("dead")) {
      return { jobs: [], nextBeforeSeq: null };
    }
    const dead: JobFilter = { ...filter, states: ["dead"] };
    for (let attempt = 1;; attempt++) {
      const found = await this.search(dead, page);
      if (found.jobs.length === 0) return { jobs: [], nextBeforeSeq: found.nextBeforeSeq };
      try {
        const jobs = await this.dlqRetry(found.jobs.map((job) => job.id));
        return { jobs, nextBeforeSeq: found.nextBeforeSeq };
      } catch (error) {
        const raced = (error instanceof ConflictError && error.reason === "not_dead") ||
          error instanceof NotFoundError;
        if (!raced || attempt >= 3) throw error;
      }
    }
  }

  /**
   * One step of an action on "all matching" (the dashboard's cancel, retry and delete): up to
   * `limit` jobs that meet `filter` and are in a state the action applies to, newest first from
   * `beforeSeq` back, acted on all or none; repeat from `nextBeforeSeq` until it is null. A job
   * that someone else changed between the search and the action is searched for again (a few
   * times) instead of failing the step.
   */
  async actOnMatching(
    action: JobAction,
    filter: JobFilter,
    page: SearchPageOptions,
    options: { reason?: string } = {},
  ): Promise<{ ids: string[]; requested: string[]; nextBeforeSeq: number | null }> {
    const narrowed = narrowForAction(filter, action);
    if (narrowed.states!.length === 0) return { ids: [], requested: [], nextBeforeSeq: null };
    for (let attempt = 1;; attempt++) {
      const found = await this.search(narrowed, page);
      const ids = found.jobs.map((job) => job.id);
      if (ids.length === 0) return { ids: [], requested: [], nextBeforeSeq: found.nextBeforeSeq };
      try {
        if (action === "cancel") {
          const { cancelled, requested } = await this.cancel(ids, options.reason ?? "cancelled");
          return {
            ids: cancelled.map((j) => j.id),
            requested: requested.map((j) => j.id),
            nextBeforeSeq: found.nextBeforeSeq,
          };
        }
        const done = action === "retry"
          ? (await this.retry(ids)).map((j) => j.id)
          : await this.delete(ids);
        return { ids: done, requested: [], nextBeforeSeq: found.nextBeforeSeq };
      } catch (error) {
        const raced = error instanceof NotFoundError ||
          (error instanceof ConflictError &&
            ["finished", "not_retryable", "not_finished"].includes(error.reason ?? ""));
        if (!raced || attempt >= 3) throw error;
      }
    }
  }

  /** Pending jobs not due yet and when the first is due (from the ready index). */
  countScheduled(): Promise<ScheduledCount> {
    return this.#store.jobCountScheduled();
  }

  /** Counts per state, from the maintained counters (one small read). */
  counts(): Promise<JobCounts> {
    return this.#store.jobCountByState();
  }

  /** Counts per state and the workers with their liveness. */
  async status(): Promise<QueueStatus> {
    const [counts, scheduled, workers, paused] = await Promise.all([
      this.#store.jobCountByState(),
      this.#store.jobCountScheduled(),
      this.workers(),
      this.#store.queuePaused(),
    ]);
    return { counts, scheduled, workers, paused };
  }

  // Named queues. Every job belongs to one (`default` unless enqueued with `queue`); a queue
  // exists once it has had a job or a setting. A pause and a limit are stored in the database,
  // so they hold for every worker on every host and outlive restarts.

  /**
   * Every queue with its counts per state, whether it is paused and its limit.
   *
   * @example
   * ```ts ignore
   * const { queues } = await queue.queueList();
   * for (const q of queues) console.log(q.name, q.paused, q.concurrency, q.counts.pending);
   * ```
   */
  queueList(): Promise<QueueListResult> {
    return this.#store.queueList();
  }

  /**
   * Pauses queues: workers claim none of their jobs until a resume; running jobs go on. No
   * names (or "all"): every queue, and queues created later too, until `queueResume("all")`.
   * Names are checked like job ids (`RangeError` otherwise); a name without a queue yet is
   * paused before its first job. Returns the names paused.
   *
   * @example
   * ```ts ignore
   * await queue.queuePause(["mail"]);
   * ```
   */
  queuePause(names: readonly string[] | "all"): Promise<string[]> {
    return this.#store.queuePause({ names: checkQueueNames(names) });
  }

  /**
   * Resumes queues ("all": every queue, and new queues start active again); idle workers wake
   * at once. Returns the names resumed.
   *
   * @example
   * ```ts ignore
   * await queue.queueResume(["mail"]);
   * ```
   */
  queueResume(names: readonly string[] | "all"): Promise<string[]> {
    return this.#store.queueResume({ names: checkQueueNames(names) });
  }

  /**
   * Caps how many jobs of queue `name` run at once across every worker of the database (0: no
   * limit). Enforced in the claim transaction, counting jobs claimed but not started yet.
   * `RangeError` for a bad name or a concurrency that is not a whole number from 0.
   *
   * @example
   * ```ts ignore
   * await queue.queueSetConcurrency("deploy", 1);
   * ```
   */
  queueSetConcurrency(name: string, concurrency: number): Promise<QueueRecord> {
    checkQueueNames([name]);
    if (!Number.isInteger(concurrency) || concurrency < 0 || concurrency > MAX_QUEUE_CONCURRENCY) {
      throw new RangeError(
        `Concurrency must be a whole number from 0 to ${MAX_QUEUE_CONCURRENCY}, not ${concurrency}`,
      );
    }
    return this.#store.queueSetConcurrency({ name, concurrency });
  }

  /**
   * Registered workers (including ones that died without deregistering), each judged alive,
   * stale or gone (lib/worker/liveness.ts).
   */
  async workers(): Promise<JudgedWorker[]> {
    const [workers, options, { judgeWorkers }] = await Promise.all([
      this.#store.workerList(),
      this.livenessOptions(),
      lazy<typeof import("./worker/liveness.ts")>(import.meta.url, "./worker/liveness.ts"),
    ]);
    return judgeWorkers(workers, options);
  }

  /** What judging a worker's liveness takes: this host's pid namespace, the lease setting. */
  async livenessOptions(): Promise<LivenessOptions> {
    const [settings, { leaseTimeoutMs }, { thisHost }] = await Promise.all([
      this.#store.configGetAll(),
      lazy<typeof import("./worker/liveness.ts")>(import.meta.url, "./worker/liveness.ts"),
      lazy<typeof import("./worker/host.ts")>(import.meta.url, "./worker/host.ts"),
    ]);
    return {
      hostId: thisHost().id,
      pidRecovery: this.#store.capabilities.pidRecovery,
      leaseMs: leaseTimeoutMs(settings),
    };
  }

  /** Attempt history, oldest first; `NotFoundError` for an unknown job. */
  async attempts(id: string): Promise<Attempt[]> {
    await this.get(id);
    return this.#store.attemptList({ jobId: id });
  }

  output(
    id: string,
    attempt: number,
  ): Promise<{ stdout: OutputCapture; stderr: OutputCapture } | undefined> {
    return this.#store.attemptOutput({ jobId: id, attempt });
  }

  /**
   * Waits until every job is completed or dead (a `failed` job still has a retry coming). Sleeps
   * until the store reports a change (see `Store.waitForChange`), so waiting costs nothing.
   */
  async waitFor(ids: readonly string[], options: WaitOptions = {}): Promise<WaitResult> {
    // Each mark is taken before the reads it covers: a commit after it wakes the next wait.
    let mark = this.#store.changeMark();
    const jobs = new Map<string, Job>();
    for (const id of ids) jobs.set(id, await this.get(id));
    const deadline = options.timeoutMs === undefined
      ? Infinity
      : performance.now() + options.timeoutMs;
    for (;;) {
      const open = [...jobs.values()].filter((job) => !TERMINAL_STATES.includes(job.state));
      options.onProgress?.([...jobs.values()]);
      if (open.length === 0) return { jobs: [...jobs.values()], timedOut: false };
      const left = deadline - performance.now();
      if (left <= 0) return { jobs: [...jobs.values()], timedOut: true };
      // Progress is reported every second; the jobs are read again only after a change.
      const changed = await this.#store.waitForChange({
        since: mark,
        timeoutMs: Math.min(left, 1000),
      });
      if (!changed) continue;
      mark = this.#store.changeMark();
      for (const job of open) {
        const fresh = await this.#store.jobGet({ id: job.id });
        if (fresh) jobs.set(job.id, fresh);
      }
    }
  }

  /** A mark for `waitForChange`, taken before reading what the caller watches. */
  changeMark(): number {
    return this.#store.changeMark();
  }

  /** Sleeps until the queue may have changed since `since` (true), or `timeoutMs` (false). */
  waitForChange(since: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.#store.waitForChange({
      since,
      timeoutMs,
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /** The figures of the metrics dashboard over the window that ends now. */
  async metrics(windowMs: number): Promise<Metrics> {
    const [{ computeMetrics }, { counts, workers }, figures] = await Promise.all([
      lazy<typeof import("./metrics.ts")>(import.meta.url, "./metrics.ts"),
      this.status(),
      this.#store.statsFigures({ windowMs, topFailing: 5 }),
    ]);
    return computeMetrics(
      counts,
      figures,
      workers.map(({ worker: w, liveness }) => ({
        id: w.id,
        pid: w.pid,
        host: w.host,
        state: liveness.state,
        jobsDone: w.jobsDone,
        jobsFailed: w.jobsFailed,
        busyMs: w.busyMs,
        startedAt: w.startedAt,
      })),
    );
  }

  /**
   * Deletes jobs in `states` that finished at least `olderThanMs` ago, with their attempts and
   * output, in batches of `batch` (each its own short transaction, so workers keep running).
   * With `dryRun`, only counts them.
   */
  async prune(
    options: {
      states: readonly JobState[];
      olderThanMs: number;
      dryRun?: boolean;
      batch?: number;
    },
  ): Promise<number> {
    const { states, olderThanMs } = options;
    if (options.dryRun) return await this.#store.jobPruneCount({ states, olderThanMs });
    const limit = options.batch ?? 1000;
    let deleted = 0;
    for (;;) {
      const ids = await this.#store.jobPrune({ states, olderThanMs, limit });
      deleted += ids.length;
      if (ids.length < limit) return deleted;
    }
  }

  /**
   * Makes waiting jobs (delayed ones, retries in their backoff) due now, all or none (see
   * `Store.jobRunNow`): the next free worker takes them. The dashboard's "Run now".
   */
  runNow(ids: readonly string[]): Promise<Job[]> {
    return this.#store.jobRunNow({ ids });
  }

  /** Moves dead jobs back to pending with a fresh retry budget (all of them, or none). */
  dlqRetry(ids: readonly string[] | "all"): Promise<Job[]> {
    return this.#store.jobDlqRetry({ ids });
  }

  /**
   * Cancels jobs, all or none (see `Store.jobCancel`): waiting ones at once, running ones by a
   * request their worker acts on.
   */
  cancel(
    ids: readonly string[] | { states: readonly JobState[] },
    reason: string,
  ): Promise<JobCancelResult> {
    return this.#store.jobCancel({ ids, reason });
  }

  /** Dead and cancelled jobs (completed ones with `force`) back to pending, all or none. */
  retry(ids: readonly string[], options: { force?: boolean } = {}): Promise<Job[]> {
    return this.#store.jobRetry({ ids, force: options.force === true });
  }

  /**
   * Deletes finished jobs (completed, dead, cancelled) with their attempts and output, all or
   * none (see `Store.jobDelete`); the ids deleted.
   */
  delete(ids: readonly string[]): Promise<string[]> {
    return this.#store.jobDelete({ ids });
  }

  /** The store's clock now. */
  now(): Promise<number> {
    return this.#store.now();
  }

  /** Throws `StoreUnusableError` (exit 6) if the queue cannot be written; changes nothing. */
  checkWritable(): Promise<void> {
    return this.#store.checkWritable();
  }

  /** The effective settings. */
  async config(): Promise<Config> {
    const { resolveConfig } = await lazy<typeof import("./config.ts")>(
      import.meta.url,
      "./config.ts",
    );
    return resolveConfig(await this.#store.configGetAll());
  }

  /** Stored overrides only (key → base-unit value). */
  async configOverrides(): Promise<Record<string, number>> {
    const stored = await this.#store.configGetAll();
    const { CONFIG_KEYS, resolveConfig } = await lazy<typeof import("./config.ts")>(
      import.meta.url,
      "./config.ts",
    );
    const config = resolveConfig(stored);
    const out: Record<string, number> = {};
    for (const key of Object.keys(stored)) {
      if (Object.hasOwn(CONFIG_KEYS, key)) out[key] = config[CONFIG_KEYS[key]!.field];
    }
    return out;
  }

  /** Validates and stores a setting; returns the value in base units. */
  async configSet(key: string, text: string): Promise<number> {
    const { parseConfigValue } = await lazy<typeof import("./config.ts")>(
      import.meta.url,
      "./config.ts",
    );
    const value = parseConfigValue(key, text);
    await this.#store.configSet({ key, value: String(value) });
    return value;
  }

  /** Returns to the default; false when it was not set. */
  async configUnset(key: string): Promise<boolean> {
    const { configKey } = await lazy<typeof import("./config.ts")>(import.meta.url, "./config.ts");
    configKey(key);
    return await this.#store.configUnset({ key });
  }

  /**
   * One recovery pass now, as a worker's sweep would run it (for `worker stop`, after it killed
   * workers that did not answer), then forgets the workers in `forget`.
   */
  async recoverNow(
    options: { workerId: string; forget: readonly string[]; log: (line: string) => void },
  ): Promise<void> {
    const [config, { rescue }, { thisHost }] = await Promise.all([
      this.config(),
      lazy<typeof import("./worker/rescuer.ts")>(import.meta.url, "./worker/rescuer.ts"),
      lazy<typeof import("./worker/host.ts")>(import.meta.url, "./worker/host.ts"),
    ]);
    await rescue({
      store: this.#store,
      workerId: options.workerId,
      running: new Set(),
      leaseMs: config.leaseTimeoutMs,
      hostId: thisHost().id,
      backoff: { base: config.backoffBase, maxMs: config.backoffMaxMs },
      log: options.log,
    });
    if (options.forget.length) await this.#store.workerRemove({ ids: options.forget });
  }

  /**
   * Asks every worker of the queue that runs now, on any host, to stop (`worker stop
   * --all-hosts`): a request stored in the database, which each worker reads at its next sweep.
   */
  requestStop(mode: "graceful" | "force"): Promise<number> {
    return this.#store.workerStopRequest({ mode });
  }

  /** A worker that runs this queue's jobs in this process (lib/worker/worker.ts). */
  async createWorker(options: Omit<WorkerOptions, "store" | "clock">): Promise<Worker> {
    const { Worker } = await lazy<typeof import("./worker/worker.ts")>(
      import.meta.url,
      "./worker/worker.ts",
    );
    return new Worker({ ...options, store: this.#store, clock: this.clock });
  }

  /** Every schedule (recurring job), by name, each with its last job's state. */
  scheduleList(): Promise<ScheduleRecord[]> {
    return this.#store.scheduleList();
  }

  /** The schedule called `name`, or `NotFoundError`. */
  async scheduleGet(name: string): Promise<ScheduleRecord> {
    return (await this.#store.scheduleGet({ name })) ?? throwScheduleNotFound(name);
  }

  /**
   * Pauses (`paused` true) or resumes a schedule; `NotFoundError` when there is none. A resume
   * goes on from now: the occurrences it missed while paused do not fire. Either is a no-op when
   * the schedule is in that state already.
   *
   * @example
   * ```ts ignore
   * const nightly = await queue.scheduleSetPaused("nightly", true);
   * console.log(nightly.paused); // true
   * ```
   */
  async scheduleSetPaused(name: string, paused: boolean): Promise<ScheduleRecord> {
    const current = await this.scheduleGet(name);
    if (current.paused === paused) return current;
    let result: ScheduleRecord | undefined;
    if (paused) result = await this.#store.scheduleSetPaused({ name, paused: true });
    else {
      const { nextFireAfter } = await lazy<typeof import("./schedule/spec.ts")>(
        import.meta.url,
        "./schedule/spec.ts",
      );
      const now = await this.#store.now();
      const nextAt = await nextFireAfter(current.spec, current.anchor, now);
      result = await this.#store.scheduleSetPaused({ name, paused: false, nextAt });
    }
    return result ?? throwScheduleNotFound(name);
  }

  /**
   * "Run now": enqueues one occurrence of a schedule at once, paused or not, built from its job
   * template as a fire builds it (`QUEUECTL_SCHEDULED_AT` is now). It becomes the schedule's last
   * job; the next fire time does not move. `NotFoundError` when there is no such schedule, and
   * `UsageError` when its template no longer makes a valid job.
   *
   * @example
   * ```ts ignore
   * const { job } = await queue.scheduleRunNow("nightly");
   * console.log(job.id, job.state); // 43 pending
   * ```
   */
  async scheduleRunNow(name: string): Promise<{ job: Job; schedule: ScheduleRecord }> {
    const current = await this.scheduleGet(name);
    const { occurrenceJob } = await lazy<typeof import("./schedule/template.ts")>(
      import.meta.url,
      "./schedule/template.ts",
    );
    const { JobInputError } = await lazy<typeof import("./job/input.ts")>(
      import.meta.url,
      "./job/input.ts",
    );
    const now = await this.#store.now();
    let job: NewJob;
    try {
      job = occurrenceJob(current.template, { name, fireAt: now, now });
    } catch (error) {
      if (!(error instanceof JobInputError)) throw error;
      throw new UsageError(`Cannot run schedule "${name}": its job is invalid: ${error.message}`, {
        hint: "replace it: `queuectl schedule remove` and `schedule add`",
      });
    }
    const result = await this.#store.scheduleRunNow({
      name,
      job,
      defaultMaxRetries: await this.#defaultMaxRetries(),
    });
    return result ?? throwScheduleNotFound(name);
  }

  /** The store's schedule methods, for `queuectl schedule` (lib/cli/commands/schedule.ts). */
  get schedules(): Pick<
    Store,
    "now" | "scheduleAdd" | "scheduleGet" | "scheduleList" | "scheduleRemove" | "scheduleSetPaused"
  > {
    return this.#store;
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}
