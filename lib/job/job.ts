/**
 * The job and attempt records every layer shares. Times are epoch milliseconds.
 *
 * @module
 */

import type { JobState } from "./state.ts";

/** A job as stored. */
export interface Job {
  id: string;
  /** Enqueue order; breaks ties in the ready order and never repeats. */
  seq: number;
  command: string;
  state: JobState;
  /** 1..10, higher runs first. */
  priority: number;
  /** The named queue it belongs to (`default` unless enqueued with one). */
  queue: string;
  /** Attempts started, ever (the attempt history has this many rows). */
  attempts: number;
  /** Attempts charged against the current retry budget (reset by `dlq retry`). */
  budgetUsed: number;
  maxRetries: number;
  /** Per-job time limit; `null` means the `job-timeout` setting, 0 means none. */
  timeoutMs: number | null;
  cwd: string;
  env: Record<string, string>;
  /** When the job is due (first run, or the scheduled retry). */
  runAt: number;
  createdAt: number;
  updatedAt: number;
  /** Set when the job reached `completed`, `dead` or `cancelled`. */
  finishedAt: number | null;
  /** The worker holding it while `processing`. */
  workerId: string | null;
  leaseExpiresAt: number | null;
  lastError: string | null;
  lastExitCode: number | null;
  /**
   * Why a user cancelled it: set on a `processing` job when the cancel was asked for (its owner
   * kills it at its next look), and kept on the `cancelled` job. Null otherwise.
   */
  cancelReason: string | null;
  /** Ids of the jobs it waits for (`enqueue --after`), as given; empty: none. */
  after: string[];
  /** How many of them have not completed yet: while above 0, it is pending but not claimable. */
  waitingOn: number;
  /** While it is pending, failed or processing, no other job with this key can be enqueued. */
  uniqueKey: string | null;
}

/** Runs left in the current budget: 1 + max_retries minus what was charged. */
export function attemptsLeft(job: Pick<Job, "maxRetries" | "budgetUsed">): number {
  return Math.max(0, 1 + job.maxRetries - job.budgetUsed);
}

/** How an attempt ended. */
export type AttemptOutcome =
  /** Exited 0. */
  | "completed"
  /** Exited non-zero or was killed by a signal. */
  | "failed"
  /** Ran past its time limit and was killed. */
  | "timeout"
  /** Could not be started (missing cwd, no shell). */
  | "spawn_failed"
  /** Its worker died or lost the lease; recovered by another worker. */
  | "lost"
  /** Stopped by a worker shutdown; not charged against the retry budget. */
  | "interrupted"
  /** Killed by its owner because a user cancelled the job; not retried. */
  | "cancelled";

/** One run of a job. */
export interface Attempt {
  jobId: string;
  attempt: number;
  workerId: string;
  startedAt: number;
  /** `null` while it runs. */
  finishedAt: number | null;
  outcome: AttemptOutcome | null;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  /** The job's process (group leader) while it runs; used to kill leftovers on recovery. */
  pid: number | null;
}

/** What enqueue stores: a validated job without its bookkeeping. */
export interface NewJob {
  /** `undefined`: the store assigns the next sequence number as the id. */
  id: string | undefined;
  command: string;
  priority: number;
  /** The named queue; absent: `default` (`DEFAULT_QUEUE`). */
  queue?: string;
  /** `null`: the `max-retries` setting at enqueue time. */
  maxRetries: number | null;
  timeoutMs: number | null;
  cwd: string;
  env: Record<string, string>;
  /** When it is due, as the user gave it (epoch ms); null: `delayMs` after the store's now. */
  runAt: number | null;
  /** With `runAt` null: due this long after it is stored (0: at once). */
  delayMs: number;
  /**
   * Ids of jobs that must complete first: each exists already, or comes earlier in the same
   * insert. Absent or empty: none.
   */
  after?: readonly string[];
  /** A key no other live (pending, failed, processing) job may hold at the same time. */
  uniqueKey?: string;
}

/** The queue of a job enqueued without one. */
export const DEFAULT_QUEUE = "default";

/** Retries after the first attempt when neither the job nor the `max-retries` setting says. */
export const DEFAULT_MAX_RETRIES = 3;

/** How long a claimed job is held without a renewal, unless the `lease-timeout` setting says. */
export const DEFAULT_LEASE_TIMEOUT_MS = 30_000;
