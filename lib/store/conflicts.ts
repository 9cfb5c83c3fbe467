/**
 * Errors both stores raise alike, so that a message reads the same on either.
 *
 * @module
 */

import { ConflictError } from "../errors.ts";
import type { JobState } from "../job/state.ts";

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
