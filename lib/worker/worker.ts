/**
 * One worker process: claims due jobs one at a time, runs each as its own process group, renews
 * the job's lease while it runs, writes the outcome fenced by attempt, recovers jobs of dead
 * workers, and stops cleanly when told.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import { resolveConfig } from "../config.ts";
import { isTransient, QueuectlError, StoreBusyError } from "../errors.ts";
import type { FaultHook } from "../fault.ts";
import type { Job } from "../job/job.ts";
import { decide, describeResult } from "../job/outcome.ts";
import type { JobFinishParams, Store } from "../store/store.ts";
import { formatDuration, formatLogTime } from "../time.ts";
import { DatabaseFile } from "./db_file.ts";
import type { Execution } from "./executor.ts";
import { execute } from "./executor.ts";
import { heartbeatIntervalMs, workerGone } from "./liveness.ts";
import { parentPid, processStartTime } from "./process.ts";
import { rescue } from "./rescuer.ts";
import { savedName, TUNED, WORKER_ENV_NAMES } from "./supervisor.ts";
import type { Spawner } from "./spawn.ts";

export interface WorkerOptions {
  store: Store;
  clock: Clock;
  /** Absolute database path: given to jobs as QUEUECTL_DB and part of their process marker. */
  dbPath: string;
  spawner: Spawner;
  log: (line: string) => void;
  host: string;
  /** Leave when no job is due instead of waiting for more. */
  once?: boolean;
  /** The `worker start` process; when it disappears this worker stops. */
  supervisorPid?: number | null;
  fault?: FaultHook | undefined;
  /** Environment jobs inherit (before their own `env`); defaults to this process's. */
  baseEnv?: Record<string, string>;
  /** How often an idle worker looks for a change in the database. */
  pollMs?: number;
  /** How often the worker looks for jobs to recover. */
  sweepMs?: number;
  /** Tests only: housekeeping this often (and first after as long) instead of about once a minute. */
  housekeepingMs?: number;
}

export type StopMode = "graceful" | "force";

interface Running {
  job: Job;
  attempt: number;
  leaseMs: number;
  leaseExpiresAt: number;
  abort: AbortController;
  execution: Execution | null;
  leaseLost: string | null;
  pid: number | null;
}

/** An attempt under way. */
interface Started {
  running: Running;
  execution: Execution;
  config: Config;
  startedAt: number;
  timers: {
    pid: ReturnType<typeof setTimeout> | undefined;
    saver: ReturnType<typeof setInterval> | undefined;
  };
}

/** An attempt that ended, with the outcome to write. */
interface Finished {
  running: Running;
  startedAt: number;
  what: string;
  params: JobFinishParams;
}

const OUTPUT_SAVE_MS = 500;
/** Retention and WAL upkeep run about this often per worker. */
const HOUSEKEEPING_MS = 60_000;
/** Jobs deleted per transaction by retention, and transactions per round. */
const PRUNE_BATCH = 500;
const PRUNE_BATCHES = 20;
/** Per-minute metric figures are kept this long. */
export const STATS_RETENTION_MS = 30 * 86_400_000;
/** Per-minute metric figures older than this are kept per hour (the chart shows the last hour). */
export const STATS_MINUTES_KEPT_MS = 2 * 3_600_000;
const PID_RECORD_DELAY_MS = 100;
/**
 * Lock contention shorter than this is ordinary under load and not logged. Below the heartbeat
 * interval of the default lease (5 s), so two heartbeats failing in a row are always logged.
 */
const BUSY_QUIET_MS = 3000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The worker's environment as jobs inherit it: without the worker's own variables (test hooks,
 * supervision), and with what was set to tune the worker (DENO_V8_FLAGS, MALLOC_ARENA_MAX) as the
 * user had it.
 */
export function inheritable(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith("QUEUECTL_")) out[key] = value;
  }
  if (env[TUNED] !== undefined) {
    for (const name of WORKER_ENV_NAMES) {
      const user = env[savedName(name)];
      if (user === undefined) delete out[name];
      else out[name] = user;
    }
  }
  return out;
}

export class Worker {
  readonly id: string;
  readonly #o: WorkerOptions;
  readonly #store: Store;
  readonly #baseEnv: Record<string, string>;
  #config: Config = resolveConfig({});
  #stop: StopMode | null = null;
  /** Why the worker stops, in short, for its last line. */
  #stopCause = "";
  /** The database file as opened; set when `run` starts. */
  #dbFile: DatabaseFile | null = null;
  /** Set when the database file was deleted or replaced under this worker. */
  #databaseLost = false;
  #current: Running | null = null;
  #wake: (() => void) | null = null;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  #lastLog = new Map<string, number>();
  /** Since when each kind of store call has been failing busy. */
  #busySince = new Map<string, number>();
  #heartbeating = false;
  #finished = false;
  /** Set when this worker itself made a job due (recovery): the idle wait ends early. */
  #lookAgain = false;
  /** When housekeeping is next due (performance.now); staggered so workers do not all do it. */
  #housekeepingAt = performance.now() + 5000 + Math.random() * 10_000;
  #sweeping = false;

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#store = options.store;
    this.id = `w${Deno.pid}-${Math.random().toString(36).slice(2, 6)}`;
    this.#baseEnv = inheritable(options.baseEnv ?? Deno.env.toObject());
    if (options.housekeepingMs !== undefined) {
      this.#housekeepingAt = performance.now() + options.housekeepingMs;
    }
  }

  /**
   * Asks the worker to stop: graceful lets the running job finish; force kills it. `cause` is the
   * reason in short, for the last line the worker logs.
   */
  stop(mode: StopMode, reason: string, cause = reason): void {
    if (this.#stop === "force") return;
    if (this.#stop === null || mode === "force") {
      this.#stop = mode;
      this.#stopCause = cause;
      this.#log(`stopping (${mode}): ${reason}`);
    }
    if (mode === "force") this.#current?.abort.abort("interrupted by worker shutdown");
    this.#wake?.();
    if (this.#databaseLost) return;
    this.#store.workerSetState({ id: this.id, now: this.#o.clock.now(), state: "stopping" })
      .catch(() => {});
  }

  get stopMode(): StopMode | null {
    return this.#stop;
  }

  /** Whether the worker stopped because its database file was deleted or replaced. */
  get databaseLost(): boolean {
    return this.#databaseLost;
  }

  /** Runs until stopped (or, with `once`, until no job is due). */
  async run(): Promise<void> {
    this.#dbFile = new DatabaseFile(this.#o.dbPath);
    const now = this.#o.clock.now();
    // An unusable database (read-only, corrupt, not ours) is refused at once, exit 6; only what
    // passes by itself (busy, full) is waited out.
    await this.#retry("register", isTransient, () =>
      this.#store.workerRegister({
        worker: {
          id: this.id,
          pid: Deno.pid,
          host: this.#o.host,
          pidStart: processStartTime(Deno.pid),
          state: "idle",
          currentJob: null,
          startedAt: now,
          heartbeatAt: now,
          jobsDone: 0,
          jobsFailed: 0,
          supervisorPid: this.#o.supervisorPid ?? null,
          busyMs: 0,
        },
      }));
    await this.#refreshConfig();
    this.#log(`started (pid ${Deno.pid}, ${this.#o.spawner.method})`);
    this.#scheduleHeartbeat();
    // Recovery first: jobs of workers that died are due again before this worker looks for work
    // (which is what lets `--once`, run from cron, recover and run them).
    await this.#sweep();
    this.#scheduleSweep();
    // A finished job whose outcome is not written yet: a busy worker claims and starts its next
    // job first and writes this outcome while that job runs, so the write is off the path from
    // one job to the next.
    let pending: Finished | null = null;
    try {
      for (;;) {
        if (this.#stop !== null && pending === null) break;
        let job: Job | undefined;
        let leaseMs = this.#config.leaseTimeoutMs;
        if (this.#stop === null && pending !== null) {
          job = await this.#claimNext(leaseMs);
        } else if (this.#stop === null) {
          const claimed = await this.#claim();
          if (!claimed.job) {
            // A claim that failed says nothing about whether jobs are due: --once must not leave.
            if (claimed.failed) continue;
            if (this.#o.once) break;
            await this.#idle(claimed.nextAt);
            continue;
          }
          job = claimed.job;
          leaseMs = claimed.leaseMs;
        }
        const started = job ? this.#start(job, leaseMs) : null;
        if (pending !== null) {
          const done = pending;
          pending = null;
          await this.#finish(done);
        }
        if (started) pending = await this.#complete(started);
      }
    } finally {
      this.#finished = true;
      clearTimeout(this.#heartbeatTimer);
      clearTimeout(this.#sweepTimer);
      if (this.#databaseLost) this.#store.abandon();
      else await this.#store.workerRemove({ id: this.id }).catch(() => {});
      this.#log(`stopped${this.#stopCause ? ` (${this.#stopCause})` : ""}`);
    }
  }

  #log(message: string): void {
    this.#o.log(`${formatLogTime(this.#o.clock.now())} ${this.id} ${message}`);
  }

  /** Logs a recurring problem at most once every 10 s. */
  #logThrottled(key: string, message: string): void {
    const now = performance.now();
    if ((this.#lastLog.get(key) ?? -Infinity) + 10_000 > now) return;
    this.#lastLog.set(key, now);
    this.#log(message);
  }

  /**
   * Logs a store call that failed (throttled), except brief lock contention: with several
   * workers on few cores, a lock holder descheduled past the 100 ms busy timeout is ordinary, and
   * the call is simply tried again. Contention that lasts is logged.
   */
  #trouble(key: string, error: QueuectlError, message: string): void {
    if (error instanceof StoreBusyError) {
      const now = performance.now();
      const since = this.#busySince.get(key) ?? now;
      this.#busySince.set(key, since);
      if (now - since < BUSY_QUIET_MS) return;
    }
    // Throttled by kind of trouble, not by operation: a full disk fails claims and outcome writes
    // alike, and one line says so.
    this.#logThrottled(error.name, message);
  }

  /**
   * Retries a store call that failed for a reason that may pass (busy, full, read-only for a
   * while), backing off up to 1 s, so the worker waits out trouble instead of crash-looping.
   */
  async #retry<T>(
    what: string,
    retryable: (error: QueuectlError) => boolean,
    fn: () => Promise<T>,
  ): Promise<T> {
    let delay = 10;
    for (;;) {
      try {
        const result = await fn();
        this.#busySince.delete(what);
        return result;
      } catch (error) {
        if (!(error instanceof QueuectlError) || !retryable(error)) throw error;
        this.#trouble(what, error, `${what}: ${error.message}; retrying`);
        await sleep(delay * (0.5 + Math.random()));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }

  async #refreshConfig(): Promise<void> {
    this.#config = resolveConfig(await this.#store.configGetAll());
  }

  async #claim(): Promise<{ job?: Job; leaseMs: number; nextAt: number | null; failed?: true }> {
    const leaseMs = this.#config.leaseTimeoutMs;
    if (this.#checkDatabaseFile()) return { leaseMs, nextAt: null };
    try {
      // A read first: an idle poll must not take the write lock.
      const due = await this.#store.jobNextDue({ now: this.#o.clock.now() });
      if (!due.dueNow) return { leaseMs, nextAt: due.nextAt };
      const job = await this.#store.jobClaim({
        workerId: this.id,
        host: this.#o.host,
        now: this.#o.clock.now(),
        leaseMs,
      });
      this.#busySince.delete("claim");
      return job ? { job, leaseMs, nextAt: null } : { leaseMs, nextAt: null };
    } catch (error) {
      // Busy or full passes; a read-only, corrupt or foreign database stops the worker (exit 6).
      if (!(error instanceof QueuectlError) || !isTransient(error)) throw error;
      this.#trouble("claim", error, `claim: ${error.message}; backing off`);
      await this.#sleep(200 + Math.random() * 300);
      return { leaseMs, nextAt: null, failed: true };
    }
  }

  /**
   * The next job straight after one ended: a claim without a read first (a busy worker's next
   * claim usually finds a job). Undefined when none is due or the claim failed.
   */
  async #claimNext(leaseMs: number): Promise<Job | undefined> {
    if (this.#checkDatabaseFile()) return undefined;
    try {
      return await this.#store.jobClaim({
        workerId: this.id,
        host: this.#o.host,
        now: this.#o.clock.now(),
        leaseMs,
      });
    } catch (error) {
      if (!(error instanceof QueuectlError)) throw error;
      this.#trouble("claim", error, `claim: ${error.message}; backing off`);
      return undefined;
    }
  }

  /** Sleeps, but wakes at once when asked to stop. */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const wake = () => done();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = wake;
    }).then(() => {
      this.#wake = null;
    });
  }

  /** Waits for a change in the database, the next scheduled job, or a stop. */
  async #idle(nextAt: number | null): Promise<void> {
    const pollMs = this.#o.pollMs ?? 10;
    let token: number;
    try {
      token = await this.#store.changeToken();
    } catch {
      await this.#sleep(200);
      return;
    }
    // Wake at least once a second anyway: a changed clock, or a change this token misses.
    const wakeAt = Math.min(nextAt ?? Infinity, this.#o.clock.now() + 1000);
    while (this.#stop === null && this.#o.clock.now() < wakeAt) {
      await this.#sleep(Math.min(pollMs, Math.max(1, wakeAt - this.#o.clock.now())));
      if (this.#lookAgain) {
        this.#lookAgain = false;
        return;
      }
      try {
        if (await this.#store.changeToken() !== token) return;
      } catch {
        return;
      }
    }
  }

  #jobEnv(job: Job, attempt: number): Record<string, string> {
    return {
      ...this.#baseEnv,
      ...job.env,
      QUEUECTL_DB: this.#o.dbPath,
      QUEUECTL_JOB_ID: job.id,
      QUEUECTL_ATTEMPT: String(attempt),
      QUEUECTL_MAX_ATTEMPTS: String(job.attempts - job.budgetUsed + 1 + job.maxRetries),
    };
  }

  /** Runs one claimed job and records its outcome; returns the next job, if it claimed one. */
  /** Starts an attempt of a claimed job (the spawn itself is synchronous). */
  #start(job: Job, leaseMs: number): Started {
    const attempt = job.attempts;
    const running: Running = {
      job,
      attempt,
      leaseMs,
      leaseExpiresAt: job.leaseExpiresAt ?? this.#o.clock.now() + leaseMs,
      abort: new AbortController(),
      execution: null,
      leaseLost: null,
      pid: null,
    };
    this.#current = running;
    if (this.#stop === "force") running.abort.abort("interrupted by worker shutdown");
    const config = this.#config;
    const started = this.#o.clock.now();
    const timers: Started["timers"] = { pid: undefined, saver: undefined };
    const execution = execute({
      command: job.command,
      cwd: job.cwd,
      env: this.#jobEnv(job, attempt),
      timeoutMs: job.timeoutMs ?? config.jobTimeoutMs,
      outputLimit: config.outputLimitBytes,
      spawner: this.#o.spawner,
      signal: running.abort.signal,
      onSpawn: (child) => {
        running.pid = child.pid;
        this.#o.fault?.("run:after-spawn");
        // Recorded only for jobs that run a while: a quick job finishes before this matters, and
        // until then recovery finds the job's processes by their environment marker.
        timers.pid = setTimeout(() => {
          if (this.#databaseLost) return;
          this.#store.attemptSetProcess({
            jobId: job.id,
            attempt,
            workerId: this.id,
            pid: child.pid,
            pidStart: processStartTime(child.pid),
          }).catch(() => {});
        }, PID_RECORD_DELAY_MS);
      },
    });
    running.execution = execution;
    timers.saver = setInterval(() => {
      if (!execution.dirty || running.leaseLost || this.#databaseLost) return;
      const output = execution.output();
      if (!output) return;
      this.#store.attemptSaveOutput({ jobId: job.id, attempt, workerId: this.id, ...output })
        .catch(() => {});
    }, OUTPUT_SAVE_MS);
    return { running, execution, config, startedAt: started, timers };
  }

  /**
   * Waits for a started attempt to end and decides its outcome, to be written by `#finish`. An
   * attempt whose lease was lost is written here (as lost) and yields nothing.
   */
  async #complete(started: Started): Promise<Finished | null> {
    const { running, config } = started;
    const { job, attempt } = running;
    const result = await started.execution.done;
    clearInterval(started.timers.saver);
    clearTimeout(started.timers.pid);
    const now = this.#o.clock.now();
    const backoff = { base: config.backoffBase, maxMs: config.backoffMaxMs };
    if (this.#databaseLost) {
      // Nothing is written to a file nobody reads any more (see #checkDatabaseFile).
      this.#log(`job ${job.id} attempt ${attempt}: not recorded (the database file is gone)`);
      if (this.#current === running) this.#current = null;
      return null;
    }
    if (running.leaseLost) {
      this.#log(`job ${job.id} attempt ${attempt}: lease lost (${running.leaseLost}); job killed`);
      // When renewals failed, nobody may have taken the job over, and this worker's sweep skips
      // its own jobs: record the attempt as lost, or it stays processing for ever. Fenced, so a
      // no-op when another worker did recover it.
      const lost = decide(
        job,
        { kind: "lost", error: `lease lost: ${running.leaseLost}` },
        now,
        backoff,
      );
      await this.#retry(
        "finish",
        () => true,
        () =>
          this.#store.jobFinish({ jobId: job.id, attempt, workerId: this.id, decision: lost, now }),
      );
      if (this.#current === running) this.#current = null;
      return null;
    }
    return {
      running,
      startedAt: started.startedAt,
      what: describeResult(result.result) ?? "exit 0",
      params: {
        jobId: job.id,
        attempt,
        workerId: this.id,
        decision: decide(job, result.result, now, backoff),
        now,
        output: { stdout: result.stdout, stderr: result.stderr },
        byOwner: true,
      },
    };
  }

  /** Writes a finished attempt's outcome; never gives up on it, whatever the store says. */
  async #finish(finished: Finished): Promise<void> {
    const { params } = finished;
    if (this.#databaseLost) {
      if (this.#current === finished.running) this.#current = null;
      this.#log(
        `job ${params.jobId} attempt ${params.attempt}: ${finished.what}, not recorded ` +
          `(the database file is gone)`,
      );
      return;
    }
    const applied = await this.#retry("finish", () => true, () => this.#store.jobFinish(params));
    if (this.#current === finished.running) this.#current = null;
    const { jobId, attempt, decision, now } = params;
    if (!applied) {
      this.#log(
        `job ${jobId} attempt ${attempt}: lease lost; its outcome (${finished.what}) was dropped`,
      );
      return;
    }
    const retry = decision.state === "failed"
      ? `; retry in ${formatDuration((decision.runAt ?? now) - now)}`
      : "";
    this.#log(
      `job ${jobId} attempt ${attempt}: ${decision.outcome} (${finished.what}) in ` +
        `${formatDuration(now - finished.startedAt)} -> ${decision.state}${retry}`,
    );
  }

  #scheduleHeartbeat(): void {
    if (this.#finished) return;
    const every = heartbeatIntervalMs(this.#config.leaseTimeoutMs);
    this.#heartbeatTimer = setTimeout(async () => {
      await this.#heartbeat();
      this.#scheduleHeartbeat();
    }, every);
  }

  /** Renews the running job's lease (and the worker's liveness); fences itself if it cannot. */
  async #heartbeat(): Promise<void> {
    if (this.#heartbeating || this.#databaseLost) return;
    this.#heartbeating = true;
    const running = this.#current;
    const now = this.#o.clock.now();
    try {
      const held = await this.#store.workerHeartbeat({
        id: this.id,
        now,
        ...(running && !running.leaseLost
          ? { lease: { jobId: running.job.id, attempt: running.attempt, leaseMs: running.leaseMs } }
          : {}),
      });
      this.#busySince.delete("heartbeat");
      if (running && !running.leaseLost) {
        if (held) running.leaseExpiresAt = now + running.leaseMs;
        else this.#loseLease(running, "another worker recovered it");
      }
    } catch (error) {
      if (!(error instanceof QueuectlError)) throw error;
      this.#trouble("heartbeat", error, `heartbeat: ${error.message}`);
      // Past the lease, another worker may already run this job: stop ours first.
      if (running && !running.leaseLost && this.#o.clock.now() >= running.leaseExpiresAt - 1000) {
        this.#loseLease(running, `could not renew: ${error.message}`);
      }
    } finally {
      this.#heartbeating = false;
    }
  }

  #loseLease(running: Running, why: string): void {
    running.leaseLost = why;
    running.abort.abort("lease lost");
  }

  #scheduleSweep(delay = this.#o.sweepMs ?? 1000): void {
    if (this.#finished) return;
    this.#sweepTimer = setTimeout(async () => {
      await this.#sweep();
      this.#scheduleSweep();
    }, delay);
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping || this.#databaseLost) return;
    this.#sweeping = true;
    try {
      if (this.#checkDatabaseFile()) return;
      await this.#refreshConfig();
      const rescued = await rescue({
        store: this.#store,
        workerId: this.id,
        running: this.#current?.job.id ?? null,
        leaseMs: this.#config.leaseTimeoutMs,
        host: this.#o.host,
        dbPath: this.#o.dbPath,
        now: () => this.#o.clock.now(),
        backoff: { base: this.#config.backoffBase, maxMs: this.#config.backoffMaxMs },
        log: (line) => this.#log(line),
      });
      // Our own writes do not change the token an idle worker watches: look again at once.
      if (rescued.recovered.length > 0) this.#lookAgain = true;
      await this.#forgetDeadWorkers();
      if (performance.now() >= this.#housekeepingAt) {
        this.#housekeepingAt = performance.now() +
          (this.#o.housekeepingMs ?? HOUSEKEEPING_MS * (0.75 + Math.random() / 2));
        await this.#housekeeping();
      }
      this.#busySince.delete("sweep");
      const supervisor = this.#o.supervisorPid;
      if (supervisor && this.#stop === null && parentPid() !== supervisor) {
        this.stop("graceful", `supervisor ${supervisor} is gone`);
      }
    } catch (error) {
      if (!(error instanceof QueuectlError)) throw error;
      this.#trouble("sweep", error, `recovery: ${error.message}`);
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * Stops the worker if its database file was deleted or replaced (checked before each claim and
   * on every sweep). Its connection would go on working, on a file nobody else sees any more, so
   * it would never get another job; and whatever it writes goes to the `-wal` at the path, which
   * SQLite would read as part of the file that is there now. So from then on it writes nothing:
   * the running job is killed unrecorded (the queue now at the path decides what runs), and the
   * write-ahead log is emptied before the connection closes (`Store.abandon`).
   */
  #checkDatabaseFile(): boolean {
    if (this.#databaseLost) return true;
    const change = this.#dbFile?.change() ?? null;
    if (change === null) return false;
    this.#databaseLost = true;
    const job = this.#current ? `; its running job ${this.#current.job.id} is killed` : "";
    this.stop(
      "force",
      `database ${this.#o.dbPath} was ${change}${job}; exiting (start workers again to use ` +
        `the queue now at that path)`,
      `database ${change}`,
    );
    return true;
  }

  /**
   * Deletes completed jobs past `retain-completed` in small batches (each a short transaction, so
   * claims interleave) and keeps the write-ahead log and the metric figures bounded.
   */
  async #housekeeping(): Promise<void> {
    const retain = this.#config.retainCompletedMs;
    const now = this.#o.clock.now();
    if (retain > 0) {
      let deleted = 0;
      for (let i = 0; i < PRUNE_BATCHES && this.#stop === null; i++) {
        const ids = await this.#store.jobPrune({
          states: ["completed"],
          finishedBefore: now - retain,
          limit: PRUNE_BATCH,
        });
        deleted += ids.length;
        if (ids.length < PRUNE_BATCH) break;
      }
      if (deleted > 0) this.#log(`retention: deleted ${deleted} completed jobs`);
    }
    await this.#store.maintain({
      statsBefore: now - STATS_RETENTION_MS,
      compactBefore: now - STATS_MINUTES_KEPT_MS,
    });
  }

  /** Removes rows of workers on this host that died and own no job any more. */
  async #forgetDeadWorkers(): Promise<void> {
    const processing = await this.#store.jobListProcessing();
    const owners = new Set(processing.map((p) => p.job.workerId));
    for (const worker of await this.#store.workerList()) {
      if (worker.id === this.id || owners.has(worker.id)) continue;
      if (workerGone(worker, this.#o.host)) {
        await this.#store.workerRemove({ id: worker.id });
      }
    }
  }
}
