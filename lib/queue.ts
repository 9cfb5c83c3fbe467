/**
 * The queue's core API. The CLI and the workers call only this; it holds no SQL (that is the
 * store's) and no presentation (that is the CLI's).
 *
 * @module
 */

import type { Clock } from "./clock.ts";
// config.ts (and the parsers it needs) is imported where used: most commands never touch it, and
// every command pays for what start-up loads.
import type { Config } from "./config.ts";
import { NotFoundError } from "./errors.ts";
import type { Attempt, Job, NewJob } from "./job/job.ts";
import type { JobState } from "./job/state.ts";
import type { StatsSummary } from "./metrics.ts";
import { TERMINAL_STATES } from "./job/state.ts";
import type {
  JobCounts,
  JobInsertResult,
  JobListParams,
  JobListResult,
  OutputCapture,
  ScheduledCount,
  Store,
} from "./store/store.ts";
import type { JudgedWorker, LivenessOptions } from "./worker/liveness.ts";

export interface QueueOptions {
  clock: Clock;
  /** This host's name, against which workers' liveness is judged; defaults to the real one. */
  host?: string;
}

export interface WaitOptions {
  /** Give up after this long; absent waits for ever. */
  timeoutMs?: number;
  pollMs?: number;
  /** Called with the jobs as last read, after every read. */
  onProgress?: (jobs: Job[]) => void;
}

export interface WaitResult {
  jobs: Job[];
  timedOut: boolean;
}

export interface QueueStatus {
  counts: JobCounts;
  /** Pending jobs not due yet (part of `counts.pending`). */
  scheduled: ScheduledCount;
  workers: JudgedWorker[];
}

export class Queue {
  readonly store: Store;
  readonly clock: Clock;
  readonly #host: string | undefined;

  constructor(store: Store, options: QueueOptions) {
    this.store = store;
    this.clock = options.clock;
    this.#host = options.host;
  }

  /** The host workers are judged from (their pids mean something only there). */
  get host(): string {
    return this.#host ?? Deno.hostname();
  }

  /**
   * Stores jobs atomically: every one of them, or none.
   *
   * @example
   * ```ts ignore
   * const { jobs } = await queue.enqueue([job]);
   * console.log(jobs[0].id);
   * ```
   */
  enqueue(
    jobs: readonly NewJob[],
    options: { ifExists?: "fail" | "keep"; now?: number } = {},
  ): Promise<JobInsertResult> {
    return this.store.jobInsertMany({
      jobs,
      now: options.now ?? this.clock.now(),
      ifExists: options.ifExists ?? "fail",
    });
  }

  /** The job with `id`, or `NotFoundError`. */
  async get(id: string): Promise<Job> {
    const job = await this.store.jobGet({ id });
    if (!job) {
      throw new NotFoundError(`Job "${id}" not found`, { hint: "`queuectl list` shows the jobs" });
    }
    return job;
  }

  /** The newest `limit` jobs (before `beforeSeq`, in `states`), oldest first; see `JobListParams`. */
  list(options: JobListParams): Promise<JobListResult> {
    return this.store.jobList(options);
  }

  async status(): Promise<QueueStatus> {
    const [counts, scheduled, workers] = await Promise.all([
      this.store.jobCountByState(),
      this.store.jobCountScheduled({ now: this.clock.now() }),
      this.workers(),
    ]);
    return { counts, scheduled, workers };
  }

  /**
   * Registered workers (including ones that died without deregistering), each judged alive,
   * stale or gone (lib/worker/liveness.ts).
   */
  async workers(): Promise<JudgedWorker[]> {
    const [workers, options, { judgeWorkers }] = await Promise.all([
      this.store.workerList(),
      this.livenessOptions(),
      import("./worker/liveness.ts"),
    ]);
    return judgeWorkers(workers, options);
  }

  /** What judging a worker's liveness takes now: this host, the time, the lease setting. */
  async livenessOptions(): Promise<LivenessOptions> {
    const [settings, { leaseTimeoutMs }] = await Promise.all([
      this.store.configGetAll(),
      import("./worker/liveness.ts"),
    ]);
    return { host: this.host, now: this.clock.now(), leaseMs: leaseTimeoutMs(settings) };
  }

  /** Attempt history, oldest first; `NotFoundError` for an unknown job. */
  async attempts(id: string): Promise<Attempt[]> {
    await this.get(id);
    return this.store.attemptList({ jobId: id });
  }

  output(
    id: string,
    attempt: number,
  ): Promise<{ stdout: OutputCapture; stderr: OutputCapture } | undefined> {
    return this.store.attemptOutput({ jobId: id, attempt });
  }

  /**
   * Waits until every job is completed or dead (a `failed` job still has a retry coming). Watches
   * the store's change token, so it reacts within a few milliseconds without loading the database.
   */
  async waitFor(ids: readonly string[], options: WaitOptions = {}): Promise<WaitResult> {
    const jobs = new Map<string, Job>();
    for (const id of ids) jobs.set(id, await this.get(id));
    const deadline = options.timeoutMs === undefined
      ? Infinity
      : performance.now() + options.timeoutMs;
    const pollMs = options.pollMs ?? 20;
    let lastRead = performance.now();
    let token = await this.store.changeToken();
    for (;;) {
      const open = [...jobs.values()].filter((job) => !TERMINAL_STATES.includes(job.state));
      options.onProgress?.([...jobs.values()]);
      if (open.length === 0) return { jobs: [...jobs.values()], timedOut: false };
      if (performance.now() >= deadline) return { jobs: [...jobs.values()], timedOut: true };
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(1, Math.min(pollMs, deadline - performance.now())))
      );
      const next = await this.store.changeToken();
      // Re-read on a change, and now and then anyway (a change the token cannot see).
      if (next === token && performance.now() - lastRead < 1000) continue;
      token = next;
      lastRead = performance.now();
      for (const job of open) {
        const fresh = await this.store.jobGet({ id: job.id });
        if (fresh) jobs.set(job.id, fresh);
      }
    }
  }

  /** A value that changes whenever the queue changes; cheap to poll (see `Store.changeToken`). */
  changeToken(): Promise<number> {
    return this.store.changeToken();
  }

  /** Figures for the metrics dashboard over the window since `since`. */
  stats(since: number): Promise<StatsSummary> {
    return this.store.statsSummary({ since, now: this.clock.now(), topFailing: 5 });
  }

  /**
   * Deletes jobs in `states` that finished before `finishedBefore`, with their attempts and
   * output, in batches of `batch` (each its own short transaction, so workers keep running).
   * With `dryRun`, only counts them.
   */
  async prune(
    options: {
      states: readonly JobState[];
      finishedBefore: number;
      dryRun?: boolean;
      batch?: number;
    },
  ): Promise<number> {
    const { states, finishedBefore } = options;
    if (options.dryRun) return await this.store.jobPruneCount({ states, finishedBefore });
    let deleted = 0;
    for (;;) {
      const ids = await this.store.jobPrune({
        states,
        finishedBefore,
        limit: options.batch ?? 1000,
      });
      deleted += ids.length;
      if (ids.length < (options.batch ?? 1000)) return deleted;
    }
  }

  /** Moves dead jobs back to pending with a fresh retry budget (all of them, or none). */
  dlqRetry(ids: readonly string[] | "all"): Promise<Job[]> {
    return this.store.jobDlqRetry({ ids, now: this.clock.now() });
  }

  /** The effective settings. */
  async config(): Promise<Config> {
    const { resolveConfig } = await import("./config.ts");
    return resolveConfig(await this.store.configGetAll());
  }

  /** Stored overrides only (key → base-unit value). */
  async configOverrides(): Promise<Record<string, number>> {
    const stored = await this.store.configGetAll();
    const { CONFIG_KEYS, resolveConfig } = await import("./config.ts");
    const config = resolveConfig(stored);
    const out: Record<string, number> = {};
    for (const key of Object.keys(stored)) {
      if (Object.hasOwn(CONFIG_KEYS, key)) out[key] = config[CONFIG_KEYS[key]!.field];
    }
    return out;
  }

  /** Validates and stores a setting; returns the value in base units. */
  async configSet(key: string, text: string): Promise<number> {
    const { parseConfigValue } = await import("./config.ts");
    const value = parseConfigValue(key, text);
    await this.store.configSet({ key, value: String(value) });
    return value;
  }

  /** Returns to the default; false when it was not set. */
  async configUnset(key: string): Promise<boolean> {
    const { configKey } = await import("./config.ts");
    configKey(key);
    return await this.store.configUnset({ key });
  }

  close(): void {
    this.store.close();
  }
}
