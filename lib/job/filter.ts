/**
 * What a job search keeps: the conditions of the dashboard's search box, as data. Every condition
 * given must hold. `jobMatches` is the meaning; stores implement the same conditions in their own
 * query language and the contract suite checks them against this function.
 *
 * @module
 */

import type { Job } from "./job.ts";
import type { JobState } from "./state.ts";

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
  return true;
}

/** True when the filter needs more than the state (which maintained counts can answer). */
export function filtersBeyondState(filter: JobFilter): boolean {
  return filter.priorities !== undefined || filter.commandContains !== undefined ||
    filter.id !== undefined || filter.createdFrom !== undefined || filter.createdTo !== undefined ||
    filter.queues !== undefined;
}
