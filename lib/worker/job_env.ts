/**
 * The environment of a job's process: the worker's (as the user set it, see tuning.ts), then
 * the job's own `env`, then queuectl's variables, which a job can rely on:
 *
 * - `QUEUECTL_DB`: where the queue is (a path, or a URL without its password), so a job can
 *   enqueue follow-ups;
 * - `QUEUECTL_JOB_ID`, `QUEUECTL_ATTEMPT`, `QUEUECTL_MAX_ATTEMPTS`, `QUEUECTL_QUEUE` (the job's
 *   named queue);
 * - `QUEUECTL_QUEUE_ID`: the queue's own id, which with the job id and attempt marks every
 *   process of the attempt, so recovery finds them (lib/worker/process.ts).
 *
 * @module
 */

import type { Job } from "../job/job.ts";

export class JobEnvironment {
  readonly #base: Record<string, string>;
  readonly #location: string;
  readonly #queueId: string;

  /** `base` is the inherited environment (tuning.ts `inheritable`). */
  constructor(base: Record<string, string>, queue: { location: string; queueId: string }) {
    this.#base = base;
    this.#location = queue.location;
    this.#queueId = queue.queueId;
  }

  /**
   * The environment of `attempt` of `job`: the shared base (one object, so a spawner can encode
   * it once) and what the job adds on top.
   */
  forAttempt(
    job: Job,
    attempt: number,
  ): { base: Readonly<Record<string, string>>; env: Record<string, string> } {
    return { base: this.#base, env: this.#own(job, attempt) };
  }

  #own(job: Job, attempt: number): Record<string, string> {
    return {
      ...job.env,
      QUEUECTL_DB: this.#location,
      QUEUECTL_QUEUE_ID: this.#queueId,
      QUEUECTL_JOB_ID: job.id,
      QUEUECTL_ATTEMPT: String(attempt),
      QUEUECTL_MAX_ATTEMPTS: String(job.attempts - job.budgetUsed + 1 + job.maxRetries),
      QUEUECTL_QUEUE: job.queue,
    };
  }
}
