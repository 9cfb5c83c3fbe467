/**
 * One worker process: claims due jobs for its free slots, runs each as its own process group,
 * keeps their leases, writes each outcome fenced by its attempt, recovers jobs of dead workers,
 * and stops cleanly when told. Its services each live in their own module:
 *
 * - the loop and its single pass, `runOnce()` (here): outcomes of the attempts that ended and
 *   claims for the slots that are free, in one transaction, then the new attempts started;
 * - the idle wait (here): sleeps until the store reports a change, an attempt ends, the next
 *   scheduled job is due, or a stop;
 * - lease renewal (lease.ts), output and process records (progress.ts), recovery sweeps
 *   (rescuer.ts), housekeeping (housekeeping.ts), and the jobs' environment (job_env.ts).
 *
 * Every time it measures comes from the `Clock` it is given, so tests drive a pass on a fake
 * clock without timers.
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
import type { Decision, RunResult } from "../job/outcome.ts";
import type { JobClaimParams, JobFinishParams, Store } from "../store/store.ts";
import { formatDuration, formatLogTime } from "../time.ts";
import { RunningAttempt } from "./attempt.ts";
import { DatabaseFile } from "./db_file.ts";
import { forgetGoneWorkers, housekeeping, HOUSEKEEPING_MS } from "./housekeeping.ts";
import type { HousekeepingOptions } from "./housekeeping.ts";
import { JobEnvironment } from "./job_env.ts";
import { LeaseKeeper } from "./lease.ts";
import type { WorkerTotals } from "./lease.ts";
import { heartbeatIntervalMs } from "./liveness.ts";
import { parentPid, processStartTime } from "./process.ts";
import { ProgressRecorder } from "./progress.ts";
import { reapOrphans, rescue } from "./rescuer.ts";
import { Scheduler } from "./scheduler.ts";
import type { Spawner } from "./spawn.ts";
import { inheritable } from "./tuning.ts";

export interface WorkerOptions {
  store: Store;
  clock: Clock;
  spawner: Spawner;
  log: (line: string) => void;
  /** This host's name (for people) and pid namespace id (lib/worker/host.ts). */
  host: { name: string; id: string };
  /** How many jobs it runs at once (default 1). */
  concurrency?: number;
  /** Leave when no job is due instead of waiting for more. */
  once?: boolean;
  /** The `worker start` process; when it disappears this worker stops. */
  supervisorPid?: number | null;
  fault?: FaultHook | undefined;
  /** Environment jobs inherit (before their own `env`); defaults to this process's. */
  baseEnv?: Record<string, string>;
  /** How often the worker looks for jobs to recover. */
  sweepMs?: number;
  /** Tests only: housekeeping this often (and first after as long) instead of about once a minute. */
  housekeepingMs?: number;
  /**
   * The database file, when the store is one (SQLite): the worker checks before each claim and on
   * every sweep that the path still leads to the file it opened (see `#checkDatabaseFile`).
   */
  databaseFile?: string;
  /** Enqueue the occurrences of recurring jobs (scheduler.ts); default true. */
  schedules?: boolean;
  /** Claim only jobs of these named queues (`--queue`); absent: of every queue. */
  queues?: readonly string[];
}

export type StopMode = "graceful" | "force";

/** What one pass did. */
export interface PassReport {
  /** Outcomes written (or found stale: lease lost). */
  finished: number;
  /** Attempts started. */
  started: number;
  /** How long until the next scheduled job is due, when nothing was; null when none waits. */
  nextDueInMs: number | null;
}

/**
 * Lock contention shorter than this is ordinary under load and not logged. Below the heartbeat
 * interval of the default lease (5 s), so two heartbeats failing in a row are always logged.
 */
const BUSY_QUIET_MS = 3000;
/** Ticks of the progress recorder (and lease fencing) while attempts run. */
const PROGRESS_TICK_MS = 100;
/**
 * A worker reserves its next job(s) while the attempts it runs are this short: the job then
 * starts the moment a slot frees, its claim already written (the claim of the one after is
 * written while it runs). A reservation waits at most RESERVE_HOLD_MS; then it is handed back,
 * so a worker busy with a long job keeps nothing from others.
 */
const PREFETCH_BELOW_MS = 100;
const RESERVE_HOLD_MS = 250;
/** How often a worker looks for rows of workers that are gone for good. */
const FORGET_EVERY_MS = 10_000;
/**
 * While jobs run, the worker looks for cancel requests on them when the store reports a change,
 * and at least this often (a store that does not wake it for others' commits).
 */
const CANCEL_LOOK_MS = 500;

/** How often a worker of a store shared by several hosts looks for its host's orphans. */
const REAP_EVERY_MS = 2000;
/** An idle worker looks for due jobs at least this often (clock steps, missed changes). */
const IDLE_WAKE_MS = 5000;

export class Worker {
  readonly id: string;
  readonly #o: WorkerOptions;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #env: JobEnvironment;
  readonly #lease: LeaseKeeper;
  readonly #progress: ProgressRecorder;
  #config: Config = resolveConfig({});
  #stop: StopMode | null = null;
  /** Why the worker stops, in short, for its last line. */
  #stopCause = "";
  /** The database file as opened, when there is one. */
  #dbFile: DatabaseFile | null = null;
  /** Set when the database file was deleted or replaced under this worker. */
  #databaseLost = false;
  /** Attempts that hold a slot: running, or ended with an outcome not written yet. */
  readonly #slots = new Map<string, RunningAttempt>();
  #totals: WorkerTotals = { jobsDone: 0, jobsFailed: 0, busyMs: 0 };
  #wakeIdle: (() => void) | null = null;
  /** Taken before the pass's read: a change after it wakes the idle wait. */
  #mark = 0;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #lastLog = new Map<string, number>();
  /** Since when each kind of store call has been failing busy (monotonic). */
  #busySince = new Map<string, number>();
  /** A heartbeat that failed is being tried again (the timer's beats wait for it). */
  #heartbeatRetrying = false;
  #finished = false;
  /** Set when this worker itself made a job due (recovery): the idle wait ends early. */
  #lookAgain = false;
  /** When housekeeping is next due (monotonic); staggered so workers do not all do it at once. */
  #housekeepingAt: number;
  #sweeping = false;
  #forgetAt = 0;
  #reapAt = 0;
  /** The progress tick runs (while attempts hold slots). */
  #progressing = false;
  /** Jobs claimed ahead (reserved, not armed), started the moment a slot frees. */
  #reserved: { job: Job; at: number }[] = [];
  /** Whether to reserve ahead: the attempts that ended last were short. */
  #prefetch = false;
  /** The change mark and time (monotonic) of the last look for cancel requests. */
  #cancelMark = -1;
  #cancelLookAt = -Infinity;
  #cancelLooking = false;
  /** Enqueues recurring jobs' occurrences while the worker runs (null: not asked to). */
  readonly #scheduler: Scheduler | null;

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#store = options.store;
    this.#clock = options.clock;
    this.id = `w${Deno.pid}-${Math.random().toString(36).slice(2, 6)}`;
    this.#env = new JobEnvironment(inheritable(options.baseEnv ?? Deno.env.toObject()), {
      location: options.store.location,
      queueId: options.store.queueId,
    });
    const trouble = this.#trouble.bind(this);
    this.#lease = new LeaseKeeper({
      store: this.#store,
      workerId: this.id,
      clock: this.#clock,
      trouble,
      onLost: (a) =>
        this.#log(
          `job ${a.job.id} attempt ${a.ref.attempt}: lease lost (${a.leaseLost}); job killed`,
        ),
      onCancel: (attempt, reason) => this.#cancel(attempt, reason),
    });
    this.#progress = new ProgressRecorder({ store: this.#store, clock: this.#clock, trouble });
    this.#housekeepingAt = this.#clock.monotonic() +
      (options.housekeepingMs ?? 5000 + Math.random() * 10_000);
    this.#scheduler = options.schedules === false ? null : new Scheduler({
      store: this.#store,
      log: (line) => this.#log(line),
      defaultMaxRetries: () => this.#config.maxRetries,
      monotonic: () => this.#clock.monotonic(),
      onEnqueued: () => {
        this.#lookAgain = true;
        this.#wakeIdle?.();
      },
    });
  }

  get #concurrency(): number {
    return Math.max(1, this.#o.concurrency ?? 1);
  }

  /** Jobs reserved ahead while draining short jobs: half the slots, at least one. */
  get #reserve(): number {
    return Math.ceil(this.#concurrency / 2);
  }

  /**
   * Asks the worker to stop: graceful lets running jobs finish; force kills them. `cause` is the
   * reason in short, for the last line the worker logs.
   */
  stop(mode: StopMode, reason: string, cause = reason): void {
    if (this.#stop === "force") return;
    if (this.#stop === null || mode === "force") {
      this.#stop = mode;
      this.#stopCause = cause;
      this.#log(`stopping (${mode}): ${reason}`);
    }
    if (mode === "force") {
      for (const attempt of this.#slots.values()) {
        attempt.interrupt("interrupted by worker shutdown");
      }
    }
    this.#wakeIdle?.();
    // A stopping worker enqueues nothing more; the other workers fire what comes next.
    this.#scheduler?.stop();
    if (this.#databaseLost) return;
    this.#store.workerSetState({ id: this.id, state: "stopping" }).catch(() => {});
  }

  get stopMode(): StopMode | null {
    return this.#stop;
  }

  /** Whether the worker stopped because its database file was deleted or replaced. */
  get databaseLost(): boolean {
    return this.#databaseLost;
  }

  /** Registers the worker in the store (what `run` does first). */
  async register(): Promise<void> {
    // An unusable database (read-only, corrupt, not ours) is refused at once, exit 6; only what
    // passes by itself (busy, full) is waited out.
    await this.#retry("register", isTransient, () =>
      this.#store.workerRegister({
        worker: {
          id: this.id,
          pid: Deno.pid,
          host: this.#o.host.name,
          hostId: this.#o.host.id,
          pidStart: processStartTime(Deno.pid),
          supervisorPid: this.#o.supervisorPid ?? null,
        },
      }));
  }

  /** Runs until stopped (or, with `once`, until no job is due). */
  async run(): Promise<void> {
    if (this.#o.databaseFile !== undefined) this.#dbFile = new DatabaseFile(this.#o.databaseFile);
    await this.register();
    let scheduling: Promise<void> | null = null;
    try {
      await this.#refreshConfig();
      const queues = this.#o.queues ? `, queues ${this.#o.queues.join(", ")}` : "";
      this.#log(`started (pid ${Deno.pid}, ${this.#o.spawner.method}${queues})`);
      // Recovery first: jobs of workers that died are due again before this worker looks for
      // work (which is what lets `--once`, run from cron, recover and run them).
      await this.sweep();
      this.#every(() => heartbeatIntervalMs(this.#config.leaseTimeoutMs), () => this.heartbeat());
      this.#every(() => this.#o.sweepMs ?? 1000, () => this.sweep());
      // With --once, what is due now fires once before the queue is drained; otherwise the
      // scheduler runs beside the loop until the worker stops.
      if (this.#o.once) {
        await this.#scheduler?.pass().catch((error) => this.#schedulerFailed(error));
      }
      scheduling = this.#o.once ? null : this.#scheduler?.run() ?? null;
      await this.#loop();
    } finally {
      this.#scheduler?.stop();
      await scheduling;
      this.#finished = true;
      for (const timer of this.#timers) clearTimeout(timer);
      this.#timers.clear();
      if (this.#databaseLost) await this.#store.abandon();
      else await this.#store.workerRemove({ ids: [this.id] }).catch(() => {});
      this.#log(`stopped${this.#stopCause ? ` (${this.#stopCause})` : ""}`);
    }
  }

  async #loop(): Promise<void> {
    try {
      for (;;) {
        if (this.#stop !== null && this.#slots.size === 0) {
          await this.#release(true);
          return;
        }
        const pass = await this.runOnce();
        if (pass.finished > 0 || pass.started > 0) continue;
        if (this.#o.once && this.#slots.size === 0 && !this.#lookAgain) {
          await this.#release(true);
          return;
        }
        await this.#idle(pass.nextDueInMs);
      }
    } catch (error) {
      // The store refused for good (read-only, damaged): stop the jobs still running here, and
      // hand them back if the store still takes it.
      await this.#release(true).catch(() => {});
      for (const attempt of this.#slots.values()) attempt.interrupt("interrupted: worker failed");
      await Promise.all([...this.#slots.values()].map((a) => a.done));
      if (!this.#databaseLost) {
        await this.#store.jobFinishAndClaim({ finish: this.#outcomes([...this.#slots.values()]) })
          .catch(() => {});
      }
      throw error;
    }
  }

  /**
   * One pass. Attempts that ended free their slots, and jobs reserved ahead go into them at once
   * (armed and spawned before anything else is written); then one transaction writes the outcomes
   * and claims jobs for the slots still free, plus a reservation while the worker drains short
   * jobs; what it claimed for free slots starts, the rest is held. With nothing to write, it first
   * reads whether anything is due, so an idle pass never takes the write lock.
   */
  async runOnce(): Promise<PassReport> {
    const ended = [...this.#slots.values()].filter((a) => a.result !== null);
    if (this.#checkDatabaseFile()) {
      // Nothing is written to a file nobody reads any more: the running jobs were killed.
      for (const attempt of ended) {
        this.#slots.delete(attempt.job.id);
        this.#log(
          `job ${attempt.job.id} attempt ${attempt.ref.attempt}: not recorded (the database ` +
            `file is gone)`,
        );
      }
      this.#reserved.length = 0;
      return { finished: ended.length, started: 0, nextDueInMs: null };
    }
    this.#mark = this.#store.changeMark();
    this.#lookAgain = false;
    if (ended.length > 0) {
      // Reserve ahead only while jobs are short: a reservation waits for a slot to free.
      this.#prefetch = ended.every((a) => (a.result?.durationMs ?? Infinity) < PREFETCH_BELOW_MS);
    }
    // Slots the ended attempts leave, and the ones that were free already.
    const free = () =>
      this.#stop === null ? this.#concurrency - (this.#slots.size - ended.length) : 0;
    let started = 0;
    // Reserved jobs take the free slots first: armed (one autocommit statement) and spawned
    // before the outcomes are written, so that the step's statement runs while they do instead
    // of before them. Never armed in the outcomes' commit: a worker killed right after it would
    // leave them armed and never spawned, charged as lost attempts (B4 retry:after-commit).
    const take = free() > 0 ? this.#reserved.slice(0, free()).map((r) => r.job) : [];
    if (take.length > 0) {
      this.#reserved.splice(0, take.length);
      for (const job of await this.#arm(take)) {
        this.#start(job);
        started++;
      }
    }
    const want = () =>
      this.#stop === null
        ? Math.max(0, free() + (this.#prefetch ? this.#reserve : 0) - this.#reserved.length)
        : 0;
    // `armFirst` (arming in the claim's own commit) is not used by the worker: see the finish
    // below and the idle claim; both arm on their own, right before the spawn.
    let armFirst = 0;
    const claim = (armable: number): JobClaimParams | undefined => {
      const limit = want();
      armFirst = limit > 0 ? Math.min(limit, Math.max(0, armable)) : 0;
      return limit > 0
        ? {
          workerId: this.id,
          host: this.#o.host.id,
          leaseMs: this.#config.leaseTimeoutMs,
          limit,
          ...(this.#o.queues ? { queues: this.#o.queues } : {}),
          ...(armFirst > 0 ? { armFirst } : {}),
        }
        : undefined;
    };
    let claimed: Job[] = [];
    if (ended.length > 0) {
      const finish = this.#outcomes(ended);
      let result;
      try {
        result = await this.#retry("finish", isTransient, () => {
          // The claim only reserves: a job armed in the outcomes' commit would be charged as a
          // lost attempt, never run, if the worker died before spawning it (B4
          // retry:after-commit); reservations are armed on their own just before the spawn, and
          // undone uncharged by recovery when the worker dies first.
          const c = claim(0);
          return this.#store.jobFinishAndClaim({
            finish,
            ...(c ? { claim: c } : {}),
          });
        });
      } catch (error) {
        if (!(error instanceof QueuectlError)) throw error;
        // The store refuses the claim for good; an outcome is never given up: write it alone.
        await this.#retry("finish", () => true, () => this.#store.jobFinishAndClaim({ finish }));
        throw error;
      }
      this.#busySince.delete("claim");
      ended.forEach((attempt, i) => this.#record(attempt, finish[i]!, result.applied[i]!));
      claimed = result.claimed;
    } else {
      // Claimed, then armed on its own: a worker killed between the two leaves a reservation
      // that recovery undoes uncharged (the `claim:after-commit` fault point).
      const c = claim(0);
      if (c === undefined || (free() === 0 && !this.#prefetch)) {
        this.#busySince.delete("claim");
        await this.#releaseIfStopping();
        return { finished: 0, started, nextDueInMs: null };
      }
      try {
        // Jobs of paused queues, queues at their limit and other workers' queues do not count:
        // with only those waiting, the worker waits for a change instead of claiming in a loop.
        const due = await this.#store.jobNextDue(this.#o.queues ? { queues: this.#o.queues } : {});
        // A pass that needs no claim, or whose claim goes through, ends a spell of contention:
        // the quiet window counts failures in a row, not since the first one ever.
        if (!due.dueNow) {
          this.#busySince.delete("claim");
          return { finished: 0, started, nextDueInMs: due.nextDueInMs };
        }
        claimed = await this.#store.jobClaim(c);
        this.#busySince.delete("claim");
      } catch (error) {
        // Busy or full passes; a read-only, corrupt or foreign database stops the worker (exit 6).
        if (!(error instanceof QueuectlError) || !isTransient(error)) throw error;
        this.#trouble("claim", error, `claim: ${error.message}; backing off`);
        await this.#sleep(200 + Math.random() * 300);
        return { finished: 0, started, nextDueInMs: 0 };
      }
    }
    // The claim armed the best ones for the free slots: they start now. If slots are still free
    // (a reserved job that could not be armed), the next best are armed for them; the rest wait
    // as reservations.
    const armed = claimed.slice(0, Math.min(armFirst, claimed.length));
    for (const job of armed) {
      this.#start(job);
      started++;
    }
    const rest = claimed.slice(armed.length);
    const slotsFree = this.#stop === null ? Math.max(0, this.#concurrency - this.#slots.size) : 0;
    const now = this.#clock.monotonic();
    for (const job of rest.slice(slotsFree)) this.#reserved.push({ job, at: now });
    for (const job of await this.#arm(rest.slice(0, slotsFree))) {
      this.#start(job);
      started++;
    }
    // Going idle: the totals are stored now, not at the next beat (status shows them).
    if (ended.length > 0 && this.#slots.size === 0) void this.heartbeat();
    await this.#releaseIfStopping();
    return { finished: ended.length, started, nextDueInMs: null };
  }

  /** Hands back (undoes the claims of) reservations that waited too long, or all of them. */
  async #release(all: boolean): Promise<void> {
    const now = this.#clock.monotonic();
    const gone = this.#reserved.filter((r) => all || now - r.at >= RESERVE_HOLD_MS);
    if (gone.length === 0) return;
    this.#reserved = this.#reserved.filter((r) => !gone.includes(r));
    for (const { job } of gone) {
      await this.#store.jobUnclaim({ jobId: job.id, attempt: job.attempts, workerId: this.id })
        .catch(() => {/* recovery undoes it when this worker is gone */});
    }
  }

  async #releaseIfStopping(): Promise<void> {
    if (this.#stop !== null && this.#reserved.length > 0) await this.#release(true);
  }

  /**
   * Arms claimed attempts just before they are spawned: until then, a claim whose worker dies is
   * undone by recovery rather than charged. Returns the jobs that are still this worker's.
   */
  async #arm(claimed: readonly Job[]): Promise<Job[]> {
    if (claimed.length === 0) return [];
    const refs = claimed.map((job) => ({
      jobId: job.id,
      attempt: job.attempts,
      workerId: this.id,
    }));
    const armed = await this.#retry("claim", isTransient, () => this.#store.attemptArm(refs));
    return claimed.filter((_, i) => armed[i]);
  }

  /** The outcome to write for each ended attempt. */
  #outcomes(ended: readonly RunningAttempt[]): JobFinishParams[] {
    const backoff = { base: this.#config.backoffBase, maxMs: this.#config.backoffMaxMs };
    return ended.map((attempt) => {
      const { job } = attempt;
      const result: RunResult = attempt.leaseLost !== null
        ? { kind: "lost", error: `lease lost: ${attempt.leaseLost}` }
        : attempt.result?.result ?? { kind: "interrupted", error: "interrupted" };
      const decision = decide(job, result, backoff);
      return {
        ...attempt.ref,
        decision,
        ...(attempt.leaseLost === null && attempt.result
          ? { output: { stdout: attempt.result.stdout, stderr: attempt.result.stderr } }
          : {}),
      };
    });
  }

  /** Frees the attempt's slot, counts it and logs what became of it. */
  #record(attempt: RunningAttempt, params: JobFinishParams, applied: boolean): void {
    this.#slots.delete(attempt.job.id);
    const { jobId, attempt: n } = params;
    const ranMs = attempt.result?.durationMs ?? 0;
    // When renewals failed, nobody may have taken the job over, and this worker's sweep skips
    // its own jobs: it was recorded as lost here (a no-op when another worker recovered it). The
    // kill was logged when it happened.
    if (attempt.leaseLost !== null) return;
    const what = attempt.result ? describeResult(attempt.result.result) ?? "exit 0" : "?";
    if (!applied) {
      this.#log(`job ${jobId} attempt ${n}: lease lost; its outcome (${what}) was dropped`);
      return;
    }
    this.#count(params.decision, ranMs);
    const retry = params.decision.state === "failed"
      ? `; retry in ${formatDuration(params.decision.runInMs ?? 0)}`
      : "";
    this.#log(
      `job ${jobId} attempt ${n}: ${params.decision.outcome} (${what}) in ` +
        `${formatDuration(ranMs)} -> ${params.decision.state}${retry}`,
    );
  }

  #count(decision: Decision, ranMs: number): void {
    if (decision.outcome === "completed") this.#totals.jobsDone++;
    else if (decision.outcome !== "interrupted" && decision.outcome !== "cancelled") {
      this.#totals.jobsFailed++;
    }
    this.#totals.busyMs += Math.round(ranMs);
  }

  /** Starts an attempt of a claimed job in a slot. */
  #start(job: Job): void {
    const attempt = new RunningAttempt({
      job,
      workerId: this.id,
      leaseMs: this.#config.leaseTimeoutMs,
      config: this.#config,
      env: this.#env.forAttempt(job, job.attempts),
      spawner: this.#o.spawner,
      clock: this.#clock,
      fault: this.#o.fault,
    });
    this.#slots.set(job.id, attempt);
    if (this.#stop === "force") attempt.interrupt("interrupted by worker shutdown");
    attempt.done.then(() => this.#wakeIdle?.());
    if (!this.#progressing) this.#progressLoop();
  }

  /**
   * Records progress and fences leases while attempts run. The fence runs every tick whatever the
   * store does: a call to a database that stopped answering (a cut link) may hang until its
   * deadline, and a job whose lease may run out meanwhile must be killed on time, so the store's
   * part of a tick is never waited for by the next one (it is skipped while one is in flight).
   */
  #progressLoop(): void {
    this.#progressing = true;
    let inFlight = false;
    const tick = () => {
      if (this.#finished || this.#slots.size === 0) {
        this.#progressing = false;
        return;
      }
      this.fence();
      if (!this.#databaseLost && !inFlight) {
        inFlight = true;
        (async () => {
          try {
            await this.#lookForCancels();
            await this.#release(false);
            await this.#progress.tick(this.#slots.values());
          } finally {
            inFlight = false;
          }
        })();
      }
      this.#after(PROGRESS_TICK_MS, tick);
    };
    this.#after(PROGRESS_TICK_MS, tick);
  }

  /**
   * Looks for cancel requests on the running attempts: when the store reports a change since the
   * last look, or `CANCEL_LOOK_MS` after it (one indexed read of a few rows).
   */
  async #lookForCancels(): Promise<void> {
    if (this.#cancelLooking) return;
    if (![...this.#slots.values()].some((a) => a.result === null && a.leaseLost === null)) return;
    this.#cancelLooking = true;
    try {
      const mark = this.#store.changeMark();
      const now = this.#clock.monotonic();
      if (mark === this.#cancelMark && now - this.#cancelLookAt < CANCEL_LOOK_MS) return;
      this.#cancelMark = mark;
      this.#cancelLookAt = now;
      for (const request of await this.#store.jobCancelRequests({ workerId: this.id })) {
        const attempt = this.#slots.get(request.jobId);
        if (attempt && attempt.ref.attempt === request.attempt) {
          this.#cancel(attempt, request.reason);
        }
      }
      this.#busySince.delete("cancel");
    } catch (error) {
      // Best effort: every lease renewal carries the requests too. (A closed store, as when a
      // test ends a worker's store under it, is not worth more than that either.)
      if (error instanceof QueuectlError) {
        this.#trouble("cancel", error, `looking for cancel requests: ${error.message}`);
      }
    } finally {
      this.#cancelLooking = false;
    }
  }

  /** Kills a running attempt a user cancelled (SIGTERM, SIGKILL after the grace). */
  #cancel(attempt: RunningAttempt, reason: string): void {
    if (attempt.result !== null || attempt.leaseLost !== null || attempt.cancelled.signal.aborted) {
      return;
    }
    this.#o.fault?.("cancel:seen");
    if (attempt.cancel(reason)) {
      this.#log(
        `job ${attempt.job.id} attempt ${attempt.ref.attempt}: cancelled (${reason}); killing it`,
      );
    }
  }

  /** Waits for a change in the database, an attempt's end, the next scheduled job, or a stop. */
  async #idle(nextDueInMs: number | null): Promise<void> {
    if (this.#lookAgain || this.#stop !== null && this.#slots.size === 0) return;
    const controller = new AbortController();
    this.#wakeIdle = () => controller.abort();
    try {
      // An attempt that ended meanwhile is written at once.
      if ([...this.#slots.values()].some((a) => a.result !== null)) return;
      const wait = Math.min(nextDueInMs ?? Infinity, IDLE_WAKE_MS);
      if (this.#stop === null && this.#slots.size < this.#concurrency) {
        // Only a change that may make a job due matters here (not others' outcomes or output).
        await this.#store.waitForChange({
          since: this.#mark,
          timeoutMs: wait,
          signal: controller.signal,
          interest: "work",
        });
      } else {
        // No slot is free: other processes' commits do not matter until an attempt ends.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          controller.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
    } finally {
      this.#wakeIdle = null;
    }
  }

  /** Kills the attempts whose lease may have run out (no renewal got through in time). */
  fence(): void {
    this.#lease.fence(this.#slots.values());
  }

  /** One heartbeat: renews the leases of running attempts and stores the totals. */
  async heartbeat(): Promise<void> {
    if (this.#databaseLost || this.#heartbeatRetrying) return;
    let ok = await this.#lease.beat([...this.#slots.values()], this.#totals);
    // A beat that did not get through (the lock busy past the worker's short wait, a connection
    // being re-made) is tried again soon rather than at the next beat, a sixth of a lease away:
    // brief contention then costs a renewal a few hundred milliseconds, and only contention that
    // outlasts the tries is reported (BUSY_QUIET_MS).
    const until = this.#clock.monotonic() + heartbeatIntervalMs(this.#config.leaseTimeoutMs) / 2;
    this.#heartbeatRetrying = true;
    try {
      while (!ok && !this.#finished && !this.#databaseLost && this.#clock.monotonic() < until) {
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 150));
        ok = await this.#lease.beat([...this.#slots.values()], this.#totals);
      }
    } finally {
      this.#heartbeatRetrying = false;
    }
    if (ok) this.#busySince.delete("heartbeat");
  }

  /** One recovery sweep, plus housekeeping when it is due and the supervisor check. */
  async sweep(): Promise<void> {
    if (this.#sweeping || this.#databaseLost) return;
    this.#sweeping = true;
    try {
      if (this.#checkDatabaseFile()) return;
      await this.#refreshConfig();
      await this.#checkStopRequest();
      const rescued = await rescue({
        store: this.#store,
        workerId: this.id,
        running: new Set([...this.#slots.keys(), ...this.#reserved.map((r) => r.job.id)]),
        leaseMs: this.#config.leaseTimeoutMs,
        hostId: this.#o.host.id,
        backoff: { base: this.#config.backoffBase, maxMs: this.#config.backoffMaxMs },
        log: (line) => this.#log(line),
      });
      // This worker's own writes may not wake its wait: look again at once.
      if (rescued.recovered.length > 0) {
        this.#lookAgain = true;
        this.#wakeIdle?.();
      }
      const keeping: HousekeepingOptions = {
        store: this.#store,
        workerId: this.id,
        hostId: this.#o.host.id,
        log: (line) => this.#log(line),
        goOn: () => this.#stop === null,
      };
      // Gone workers' rows are looked for now and then, and after a recovery (a worker died):
      // judging every worker costs /proc reads, which an idle sweep each second should not pay.
      if (rescued.recovered.length > 0 || this.#clock.monotonic() >= this.#forgetAt) {
        this.#forgetAt = this.#clock.monotonic() + FORGET_EVERY_MS;
        await forgetGoneWorkers(keeping, this.#config);
      }
      if (this.#store.capabilities.multiHost && this.#clock.monotonic() >= this.#reapAt) {
        this.#reapAt = this.#clock.monotonic() + REAP_EVERY_MS;
        await reapOrphans({
          store: this.#store,
          hostId: this.#o.host.id,
          log: (line) => this.#log(line),
        });
      }
      if (this.#clock.monotonic() >= this.#housekeepingAt) {
        const everyMs = this.#o.housekeepingMs ?? HOUSEKEEPING_MS;
        this.#housekeepingAt = this.#clock.monotonic() + everyMs * (0.75 + Math.random() / 2);
        // Leaderless: of all the workers on all the hosts, one does each round (a compare-and-set
        // on the round's start time, in the store's clock); the others skip it.
        if (await this.#store.maintenanceTurn({ name: "housekeeping", everyMs: everyMs * 0.9 })) {
          await housekeeping(keeping, this.#config);
        }
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
   * the running jobs are killed unrecorded (the queue now at the path decides what runs), and the
   * write-ahead log is emptied before the connection closes (`Store.abandon`).
   */
  #checkDatabaseFile(): boolean {
    if (this.#databaseLost) return true;
    const change = this.#dbFile?.change() ?? null;
    if (change === null) return false;
    this.#databaseLost = true;
    const running = [...this.#slots.keys()];
    const jobs = running.length
      ? `; its running job${running.length === 1 ? "" : "s"} ${running.join(", ")} killed`
      : "";
    this.stop(
      "force",
      `database ${this.#o.databaseFile} was ${change}${jobs}; exiting (start workers again to ` +
        `use the queue now at that path)`,
      `database ${change}`,
    );
    return true;
  }

  /** A scheduler pass of `--once` failed: logged; the jobs due are still run. */
  #schedulerFailed(error: unknown): void {
    if (!(error instanceof QueuectlError)) throw error;
    this.#log(`scheduler: ${error.message}`);
  }

  /**
   * Stops the worker when a stop request for every host (`worker stop --all-hosts`) was stored
   * after it registered: signals do not cross machines, so the request is in the database.
   */
  async #checkStopRequest(): Promise<void> {
    if (this.#stop === "force") return;
    const mode = await this.#store.workerStopRequested({ id: this.id });
    if (mode === null || (mode === "graceful" && this.#stop !== null)) return;
    this.stop(mode, "stop requested for every host (`worker stop --all-hosts`)", "stop request");
  }

  async #refreshConfig(): Promise<void> {
    this.#config = resolveConfig(await this.#store.configGetAll());
  }

  /** Runs `fn` every `period()` ms (first after `first`, default one period) until the end. */
  #every(period: () => number, fn: () => Promise<void>, first?: number): void {
    const run = async () => {
      if (this.#finished) return;
      await fn();
      this.#after(period(), run);
    };
    this.#after(first ?? period(), run);
  }

  #after(ms: number, fn: () => void | Promise<void>): void {
    if (this.#finished) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void fn();
    }, ms);
    this.#timers.add(timer);
  }

  #log(message: string): void {
    this.#o.log(`${formatLogTime(this.#clock.now())} ${this.id} ${message}`);
  }

  /** Logs a recurring problem at most once every 10 s. */
  #logThrottled(key: string, message: string): void {
    const now = this.#clock.monotonic();
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
      const now = this.#clock.monotonic();
      const since = this.#busySince.get(key) ?? now;
      this.#busySince.set(key, since);
      if (now - since < BUSY_QUIET_MS) return;
    }
    // Throttled by kind of trouble, not by operation: a full disk fails claims and outcome writes
    // alike, and one line says so.
    this.#logThrottled(error.name, message);
  }

  /**
   * Retries a store call that failed for a reason that may pass (busy, full), backing off up to
   * 1 s, so the worker waits out trouble instead of crash-looping.
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
        await this.#sleep(delay * (0.5 + Math.random()));
        delay = Math.min(delay * 2, 1000);
      }
    }
  }

  /** Sleeps, but wakes at once when asked to stop. */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      this.#wakeIdle = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    }).then(() => {
      this.#wakeIdle = null;
    });
  }
}
