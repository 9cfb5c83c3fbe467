/**
 * What a job search keeps: the conditions of the dashboard's search box, as data. Every condition
 * given must hold. `jobMatches` is the meaning; stores implement the same conditions in their own
 * query language and the contract suite checks them against this function.
 *
 * @module
 */

import type { Job } from "./job.ts";
import type { JobState } from "./state.ts";
import { READY_STATES } from "./state.ts";

export interface JobFilter {
  /** Only jobs in these states. */
  states?: readonly JobState[];
  /** Only jobs of these priorities (1..10). */
  priorities?: readonly number[];
  /** The command contains this text (case-sensitive, as commands are). */
  commandContains?: string;
  /** Exactly this id. */
  id?: string;
  /** Enqueued at or after this time (epoch ms, the store's clock). */
  createdFrom?: number;
  /** Enqueued before this time (epoch ms, the store's clock). */
  createdTo?: number;
  /** Only jobs of these queues. */
  queues?: readonly string[];
  /**
   * Only jobs that wait for a time after this instant (epoch ms, the store's clock): pending or
   * failed, waiting for no other job, `runAt` later than it. The dashboard's `due:later` (its
   * Scheduled page): delayed jobs and retries in their backoff.
   */
  dueAfter?: number;
  /**
   * Only jobs whose time has come by this instant: pending or failed, waiting for no other job,
   * `runAt` at or before it (`due:now`: what a worker may claim, unless its queue is paused).
   */
  dueBy?: number;
}

/** Waiting for nothing but its time (the jobs `dueAfter` and `dueBy` look at). */
function waitsOnlyForTime(job: Job): boolean {
  return READY_STATES.includes(job.state) && job.waitingOn === 0;
}

/** Whether `job` meets every condition of `filter`. */
export function jobMatches(job: Job, filter: JobFilter): boolean {
  if (filter.states !== undefined && !filter.states.includes(job.state)) return false;
  if (filter.priorities !== undefined && !filter.priorities.includes(job.priority)) return false;
  if (filter.commandContains !== undefined && !job.command.includes(filter.commandContains)) {
    return false;
  }
  if (filter.id !== undefined && job.id !== filter.id) return false;
  if (filter.createdFrom !== undefined && job.createdAt < filter.createdFrom) return false;
  if (filter.createdTo !== undefined && job.createdAt >= filter.createdTo) return false;
  if (filter.queues !== undefined && !filter.queues.includes(job.queue)) return false;
  if (filter.dueAfter !== undefined && !(waitsOnlyForTime(job) && job.runAt > filter.dueAfter)) {
    return false;
  }
  if (filter.dueBy !== undefined && !(waitsOnlyForTime(job) && job.runAt <= filter.dueBy)) {
    return false;
  }
  return true;
}

/** True when the filter needs more than the state (which maintained counts can answer). */
export function filtersBeyondState(filter: JobFilter): boolean {
  return filter.priorities !== undefined || filter.commandContains !== undefined ||
    filter.id !== undefined || filter.createdFrom !== undefined || filter.createdTo !== undefined ||
    filter.queues !== undefined || filter.dueAfter !== undefined || filter.dueBy !== undefined;
}

/**
 * A due condition only holds for waiting jobs: the states narrowed to pending and failed, so that
 * a store walks those states' index instead of every job.
 */
export function narrowForDue(filter: JobFilter): JobFilter {
  if (filter.dueAfter === undefined && filter.dueBy === undefined) return filter;
  const states = READY_STATES.filter((s) =>
    filter.states === undefined || filter.states.includes(s)
  );
  return { ...filter, states };
}

/**
 * The priorities a search keeps as a bit mask (bit p for priority p, 1..10) for the stores' SQL:
 * null when every priority is kept, 0 when none can match.
 */
export function priorityMask(priorities: readonly number[] | undefined): number | null {
  if (priorities === undefined) return null;
  let mask = 0;
  for (const p of priorities) {
    if (Number.isInteger(p) && p >= 1 && p <= 10) mask |= 1 << p;
  }
  return mask;
}
