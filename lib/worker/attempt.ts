/**
 * One attempt a worker runs: the claimed job, its process (through the executor), its lease as
 * the worker last renewed it, and how it ended. A worker holds one of these per busy slot; each
 * has its own lease, abort signal, output capture, time limit and kill.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { FaultHook } from "../fault.ts";
import type { Job } from "../job/job.ts";
import type { AttemptRef } from "../store/store.ts";
import type { Execution, ExecutionResult } from "./executor.ts";
import { execute } from "./executor.ts";
import type { Spawner } from "./spawn.ts";

export interface AttemptStart {
  job: Job;
  workerId: string;
  leaseMs: number;
  config: Config;
  /** The job's environment: the worker's shared base and what the job adds on top. */
  env: { base: Readonly<Record<string, string>>; env: Record<string, string> };
  spawner: Spawner;
  clock: Clock;
  fault?: FaultHook | undefined;
}

export class RunningAttempt {
  readonly job: Job;
  readonly ref: AttemptRef;
  readonly leaseMs: number;
  readonly config: Config;
  readonly abort = new AbortController();
  /** Aborted when a user cancelled the job (the executor kills it with a grace). */
  readonly cancelled = new AbortController();
  /** When it started, on the worker's monotonic clock. */
  readonly startedMono: number;
  /**
   * When the last renewal that succeeded was sent (monotonic): the lease is good until at least
   * this plus `leaseMs` by the store's clock, so the worker can tell when it may have run out.
   */
  renewSentMono: number;
  /** Why the lease was lost (the job is then killed and its outcome not the worker's to write). */
  leaseLost: string | null = null;
  /** The job's process group leader, once spawned. */
  pid: number | null = null;
  /** Whether the store has the pid (recorded a moment after the spawn, for longer jobs). */
  pidRecorded = false;
  /** When output was last saved while it ran (monotonic). */
  savedMono: number;
  /** How it ended; null while it runs. */
  result: ExecutionResult | null = null;
  readonly done: Promise<void>;
  readonly #execution: Execution;

  /** Starts the attempt (the spawn itself is synchronous). */
  constructor(start: AttemptStart) {
    this.job = start.job;
    this.ref = { jobId: start.job.id, attempt: start.job.attempts, workerId: start.workerId };
    this.leaseMs = start.leaseMs;
    this.config = start.config;
    this.startedMono = start.clock.monotonic();
    // The claim itself granted the lease; it was sent just before this.
    this.renewSentMono = this.startedMono;
    this.savedMono = this.startedMono;
    this.#execution = execute({
      command: start.job.command,
      cwd: start.job.cwd,
      env: start.env.env,
      envBase: start.env.base,
      timeoutMs: start.job.timeoutMs ?? start.config.jobTimeoutMs,
      outputLimit: start.config.outputLimitBytes,
      spawner: start.spawner,
      signal: this.abort.signal,
      cancelSignal: this.cancelled.signal,
      onSpawn: (child) => {
        this.pid = child.pid;
        start.fault?.("run:after-spawn");
      },
    });
    this.done = this.#execution.done.then((result) => {
      this.result = result;
    });
  }

  /** Whether output arrived since it was last saved. */
  get dirty(): boolean {
    return this.#execution.dirty;
  }

  /** The output so far, for saving while it runs. */
  output(): ReturnType<Execution["output"]> {
    return this.#execution.output();
  }

  /** Kills the job: its lease is gone, so another worker may run it. Returns false if it was. */
  loseLease(why: string): boolean {
    if (this.leaseLost !== null) return false;
    this.leaseLost = why;
    this.abort.abort("lease lost");
    return true;
  }

  /**
   * Kills the job because a user cancelled it: SIGTERM to its group, SIGKILL after the grace.
   * Returns false when it was cancelled already or has ended.
   */
  cancel(reason: string): boolean {
    if (this.cancelled.signal.aborted || this.result !== null) return false;
    this.cancelled.abort(reason);
    return true;
  }

  /** Kills the job for a shutdown: it goes back to pending without using an attempt. */
  interrupt(reason: string): void {
    if (!this.abort.signal.aborted) this.abort.abort(reason);
  }
}
