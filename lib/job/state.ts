/**
 * The job state machine: the states, who moves a job between them, and the table of allowed
 * transitions. The store applies each transition as one guarded update that checks the state the
 * job leaves, so a stale writer changes nothing.
 *
 * @module
 */

/** Every state, in the order people read them (status, metrics). */
export const JOB_STATES = [
  "pending",
  "processing",
  "completed",
  "failed",
  "dead",
  "cancelled",
] as const;

/**
 * - `pending`: waiting to run, maybe scheduled for later (`run_at`). Enters by enqueue, `dlq retry`,
 *   or an interrupted attempt (worker shutdown); leaves when a worker claims it.
 * - `processing`: a worker holds it under a lease. Leaves by the worker's outcome, by an interrupt,
 *   or by recovery when its worker is gone or its lease expired.
 * - `completed`: the last attempt exited 0. Terminal.
 * - `failed`: the last attempt failed and a retry is scheduled at `run_at`; claimed again when due.
 * - `dead`: retries are used up; the job sits in the dead letter queue until `dlq retry` (or
 *   `retry`).
 * - `cancelled`: a user cancelled it (`cancel`): before it ran, or while it ran (its owner killed
 *   it and recorded the attempt as `cancelled`). Terminal, never retried by itself; `retry` puts
 *   it back.
 */
export type JobState = typeof JOB_STATES[number];

/** The states a job stays in for good (until pruned or retried from the DLQ). */
export const TERMINAL_STATES: readonly JobState[] = ["completed", "dead", "cancelled"];

/** States a user may cancel a job in (`processing`: its owner kills it at its next look). */
export const CANCELLABLE_STATES: readonly JobState[] = ["pending", "failed", "processing"];

/** States a worker may claim from (when `run_at` is due). */
export const READY_STATES: readonly JobState[] = ["pending", "failed"];

/** States `retry` takes a job from (`completed` only with `--force`). */
export const RETRYABLE_STATES: readonly JobState[] = ["dead", "cancelled"];

/** Names of transitions, each with the states it may leave and the state it enters. */
export const TRANSITIONS = {
  /** A worker takes a due job and starts an attempt. */
  claim: { from: READY_STATES, to: "processing" },
  /** The attempt exited 0. */
  complete: { from: ["processing"], to: "completed" },
  /** The attempt failed (or its worker was lost) and the budget allows another: schedule it. */
  retry: { from: ["processing"], to: "failed" },
  /** The attempt failed and it was the last one the budget allowed. */
  bury: { from: ["processing"], to: "dead" },
  /** The worker was told to stop and killed the attempt: run it again, without charging it. */
  interrupt: { from: ["processing"], to: "pending" },
  /** A user put a dead job back with a fresh retry budget (`dlq retry`, `retry`). */
  dlqRetry: { from: ["dead"], to: "pending" },
  /** `retry`: a cancelled job back with a fresh retry budget (a dead one goes by `dlqRetry`). */
  requeue: { from: ["cancelled"], to: "pending" },
  /** `retry --force`: a completed job runs again, with a fresh retry budget. */
  rerun: { from: ["completed"], to: "pending" },
  /** A user cancelled a job that was waiting. */
  cancel: { from: ["pending", "failed"], to: "cancelled" },
  /**
   * A processing job ends cancelled: its owner saw the cancel request and killed it, or the
   * attempt ended otherwise (not exit 0) while a cancel was requested (recorded fenced by the
   * owner or by recovery); or a user cancelled it while its attempt was only reserved by a claim.
   */
  cancelRunning: { from: ["processing"], to: "cancelled" },
} as const satisfies Record<string, { from: readonly JobState[]; to: JobState }>;

export type TransitionName = keyof typeof TRANSITIONS;

/** Whether any transition leads from `from` to `to`. */
export function canTransition(from: JobState, to: JobState): boolean {
  return Object.values(TRANSITIONS).some((t) =>
    t.to === to && (t.from as readonly JobState[]).includes(from)
  );
}

/** True when `value` names a state. */
export function isJobState(value: string): value is JobState {
  return (JOB_STATES as readonly string[]).includes(value);
}
