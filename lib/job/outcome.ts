/**
 * Turns how an attempt ended into the job's next state. Pure: the worker and the rescuer call it,
 * and the store applies the result as one guarded transition.
 *
 * @module
 */

import type { AttemptOutcome, Job } from "./job.ts";
import { retryDelayMs } from "./backoff.ts";
import type { BackoffOptions } from "./backoff.ts";
import type { JobState, TransitionName } from "./state.ts";
import { TRANSITIONS } from "./state.ts";
import { formatDuration } from "../time.ts";

/** What happened to one attempt. */
export type RunResult =
  | { kind: "exited"; code: number }
  | { kind: "signaled"; signal: string }
  | { kind: "timeout"; afterMs: number; signal: string }
  | { kind: "spawn_failed"; error: string }
  /** The worker died, or its lease expired; found by recovery. */
  | { kind: "lost"; error: string }
  /** The worker was stopped and killed the attempt; the job goes back without using an attempt. */
  | { kind: "interrupted"; error: string }
  /** A user cancelled the job and its owner killed it (SIGTERM, SIGKILL after the grace). */
  | { kind: "cancelled"; error: string; signal: string | null };

/**
 * One transition with every field it sets, ready for the store. Times are relative: the store
 * stamps them with its own clock (see lib/store/store.ts, "Time").
 */
export interface Decision {
  transition: Extract<
    TransitionName,
    "complete" | "retry" | "bury" | "interrupt" | "cancelRunning"
  >;
  state: JobState;
  /** The next run is due this long after the store's now (retry: the backoff; interrupt: 0). */
  runInMs: number | null;
  /** The job ends here (`finished_at` is set). */
  terminal: boolean;
  outcome: AttemptOutcome;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  /** Give the attempt back to the budget (interrupts). */
  refund: boolean;
}

/** Describes a result in a few words, as stored in `last_error`. */
export function describeResult(result: RunResult): string | null {
  switch (result.kind) {
    case "exited":
      return result.code === 0 ? null : `exited with code ${result.code}`;
    case "signaled":
      return `killed by ${result.signal}`;
    case "timeout":
      return `timed out after ${formatDuration(result.afterMs)} (${result.signal})`;
    case "spawn_failed":
    case "lost":
    case "interrupted":
    case "cancelled":
      return result.error;
  }
}

function outcomeOf(result: RunResult): AttemptOutcome {
  switch (result.kind) {
    case "exited":
      return result.code === 0 ? "completed" : "failed";
    case "signaled":
      return "failed";
    default:
      return result.kind;
  }
}

/**
 * Decides the transition after an attempt of `job` (as claimed, so `budgetUsed` counts this
 * attempt). Success completes; an interrupt returns it to `pending` now and refunds the attempt;
 * any other failure schedules a retry per the backoff, or buries the job when the budget is spent.
 */
export function decide(job: Job, result: RunResult, backoff: BackoffOptions): Decision {
  const base = {
    outcome: outcomeOf(result),
    exitCode: result.kind === "exited" ? result.code : null,
    signal: result.kind === "signaled" || result.kind === "timeout" || result.kind === "cancelled"
      ? result.signal
      : null,
    error: describeResult(result),
  };
  if (result.kind === "exited" && result.code === 0) {
    return {
      ...base,
      transition: "complete",
      state: TRANSITIONS.complete.to,
      runInMs: null,
      terminal: true,
      refund: false,
    };
  }
  if (result.kind === "cancelled") {
    return {
      ...base,
      transition: "cancelRunning",
      state: TRANSITIONS.cancelRunning.to,
      runInMs: null,
      terminal: true,
      refund: false,
    };
  }
  if (result.kind === "interrupted") {
    return {
      ...base,
      transition: "interrupt",
      state: TRANSITIONS.interrupt.to,
      runInMs: 0,
      terminal: false,
      refund: true,
    };
  }
  if (job.budgetUsed >= 1 + job.maxRetries) {
    return {
      ...base,
      transition: "bury",
      state: TRANSITIONS.bury.to,
      runInMs: null,
      terminal: true,
      refund: false,
    };
  }
  return {
    ...base,
    transition: "retry",
    state: TRANSITIONS.retry.to,
    runInMs: Math.round(retryDelayMs(job.budgetUsed, backoff)),
    terminal: false,
    refund: false,
  };
}
