/**
 * Errors both stores raise alike, so that a message reads the same on either.
 *
 * @module
 */

import { ConflictError, NotFoundError } from "../errors.ts";
import type { JobState } from "../job/state.ts";

/**
 * Why a job-by-id action found nothing to do: the job does not exist (`state` undefined), else
 * the action's own conflict for the state it is in.
 */
export function jobRefused(
  id: string,
  state: string | undefined,
  conflict: (id: string, state: string) => ConflictError,
): NotFoundError | ConflictError {
  if (state === undefined) {
    return new NotFoundError(`Job "${id}" not found`, { subject: id, reason: "job_not_found" });
  }
  return conflict(id, state);
}

/** Why `dlq retry` refuses a job in `state`. */
export function dlqRetryConflict(id: string, state: string): ConflictError {
  return new ConflictError(
    `Job "${id}" is not in the dead letter queue: it is ${state}`,
    { subject: id, reason: "not_dead" },
  );
}

/** Why "run now" refuses a job in `state` (one not waiting for a time). */
export function runNowConflict(id: string, state: string): ConflictError {
  return new ConflictError(
    `Job "${id}" is not waiting to run: it is ${state}`,
    { subject: id, reason: "not_waiting" },
  );
}

/** Why `retry` refuses a job in `state`. */
export function retryConflict(id: string, state: JobState): ConflictError {
  const why = state === "completed"
    ? "it completed (retry --force runs it again)"
    : `it is ${state} (only dead, cancelled and, with --force, completed jobs are retried)`;
  return new ConflictError(`Job "${id}" cannot be retried: ${why}`, {
    subject: id,
    reason: "not_retryable",
  });
}

/** Why `cancel` refuses a job in `state` (a finished one). */
export function cancelConflict(id: string, state: JobState): ConflictError {
  return new ConflictError(
    `Job "${id}" is ${state}: only a waiting or running job can be cancelled`,
    { subject: id, reason: "finished" },
  );
}

/** Why `delete` refuses a job in `state` (one that has not finished). */
export function deleteConflict(id: string, state: JobState): ConflictError {
  return new ConflictError(
    `Job "${id}" is ${state}: only a finished job (completed, dead, cancelled) can be deleted; cancel it first`,
    { subject: id, reason: "not_finished" },
  );
}

/** A live job (pending, failed, processing) holds the unique key of a job being enqueued or retried. */
export function uniqueKeyConflict(key: string, holder: string, state: string): ConflictError {
  return new ConflictError(
    `Unique key ${JSON.stringify(key)} is held by job "${holder}" (${state})`,
    {
      subject: holder,
      reason: "unique_key_held",
      hint: "--if-not-exists prints that job's id instead",
    },
  );
}

/** A job named in `after` does not exist (it must exist, or come earlier in the same enqueue). */
export function dependencyNotFound(id: string): NotFoundError {
  return new NotFoundError(`Job "${id}" named in "after" not found`, {
    subject: id,
    reason: "dependency_not_found",
    hint: "a job can only wait for jobs that exist or come earlier in the same enqueue",
  });
}

/** A job named in `after` ended dead or cancelled: a job waiting for it would never run. */
export function dependencyFailed(id: string, state: string): ConflictError {
  return new ConflictError(`Cannot wait for job "${id}": it is ${state}`, {
    subject: id,
    reason: "dependency_failed",
    hint: `retry it first: queuectl retry ${id}`,
  });
}

/** `retry` of a job that waits for one that is dead, cancelled or deleted. */
export function retryDependencyConflict(
  id: string,
  dep: string,
  depState: string | null,
): ConflictError {
  const what = depState === null ? "which was deleted" : `which is ${depState}`;
  return new ConflictError(`Job "${id}" cannot be retried: it waits for job "${dep}", ${what}`, {
    subject: id,
    reason: "not_retryable",
    ...(depState === null ? {} : { hint: `retry them together: queuectl retry ${dep} ${id}` }),
  });
}

/** Why a dependent was cancelled: its dependency `id` ended `state` (dead or cancelled). */
export function dependencyCancelReason(id: string, state: string, because: string | null): string {
  const ended = state === "dead" ? "is dead" : "was cancelled";
  return `dependency "${id}" ${ended}` + (because === null ? "" : ` (${because})`);
}
