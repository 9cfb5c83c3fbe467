/**
 * The job a schedule enqueues at each fire time: stored as canonical JSON of job fields (the
 * fields of `enqueue`, keys sorted, `cwd` made absolute, flags folded in as fields), and turned
 * into a `NewJob` by the same validator `enqueue` uses every time it fires. So a field that job
 * input learns later (a queue, a unique key) flows through schedules without a change here.
 *
 * @module
 */

import type { NewJob } from "../job/job.ts";
import type { JobDefaults, JobOverrides } from "../job/input.ts";
import { JobInputError, validateJob } from "../job/input.ts";

/** Fields a template cannot have: every occurrence gets its own id and is due when it fires. */
export const NOT_IN_TEMPLATE = ["id", "run_at", "delay", "after"] as const;

/** Variables every occurrence's job gets: which schedule, and which fire time (ISO 8601, UTC). */
export const SCHEDULE_ENV = "QUEUECTL_SCHEDULE";
export const SCHEDULE_AT_ENV = "QUEUECTL_SCHEDULED_AT";

/**
 * Validates a job given for a schedule and returns its canonical JSON. Throws `JobInputError`
 * naming the field at fault, as `validateJob` does.
 */
export function templateFrom(
  input: Record<string, unknown>,
  overrides: JobOverrides,
  defaults: JobDefaults,
): string {
  for (const field of NOT_IN_TEMPLATE) {
    if (input[field] !== undefined) {
      throw new JobInputError(
        field,
        field === "id"
          ? "cannot be set for a schedule: each occurrence gets an id of its own"
          : field === "after"
          ? "cannot be set for a schedule: an occurrence cannot wait for other jobs"
          : "cannot be set for a schedule: each occurrence is due when it fires",
      );
    }
  }
  const job = validateJob(input, overrides, defaults);
  const fields: Record<string, unknown> = { ...input, cwd: job.cwd };
  if (overrides.priority !== undefined) fields.priority = overrides.priority;
  if (overrides.queue !== undefined) fields.queue = overrides.queue;
  if (overrides.maxRetries !== undefined) fields.max_retries = overrides.maxRetries;
  if (overrides.timeoutMs !== undefined) fields.timeout = `${overrides.timeoutMs}ms`;
  if (Object.keys(job.env).length > 0) fields.env = job.env;
  else delete fields.env;
  const sorted = Object.fromEntries(
    Object.keys(fields).sort().map((key) => [key, fields[key]]),
  );
  return JSON.stringify(sorted);
}

/**
 * The job of one occurrence: the template validated again (as `enqueue` would), plus the
 * schedule's variables. Throws `JobInputError` when the template no longer validates.
 */
export function occurrenceJob(
  template: string,
  schedule: { name: string; fireAt: number; now: number },
): NewJob {
  const input = JSON.parse(template) as Record<string, unknown>;
  const cwd = typeof input.cwd === "string" ? input.cwd : "/";
  return validateJob(input, {
    env: {
      [SCHEDULE_ENV]: schedule.name,
      [SCHEDULE_AT_ENV]: new Date(schedule.fireAt).toISOString(),
    },
  }, { cwd, now: schedule.now });
}
