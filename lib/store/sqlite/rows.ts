/**
 * Rows of the SQLite store as the records every layer shares: the only place that turns
 * snake_case columns into camelCase fields.
 *
 * @module
 */

import type { SQLInputValue, SQLOutputValue } from "node:sqlite";
import type { Attempt, AttemptOutcome, Job } from "../../job/job.ts";
import type { JobState } from "../../job/state.ts";
import type { OutputCapture, ScheduleRecord, WorkerRecord } from "../store.ts";

export type Row = Record<string, SQLOutputValue>;
export type Params = Record<string, SQLInputValue>;

export function str(row: Row, key: string): string {
  return row[key] as string;
}
export function num(row: Row, key: string): number {
  return row[key] as number;
}
export function numOrNull(row: Row, key: string): number | null {
  const value = row[key];
  return value === null || value === undefined ? null : value as number;
}
export function strOrNull(row: Row, key: string): string | null {
  const value = row[key];
  return value === null || value === undefined ? null : value as string;
}

export function toJob(row: Row): Job {
  const env = row.env;
  return {
    id: str(row, "id"),
    seq: num(row, "seq"),
    command: str(row, "command"),
    state: str(row, "state") as JobState,
    priority: num(row, "priority"),
    queue: str(row, "queue"),
    attempts: num(row, "attempts"),
    budgetUsed: num(row, "budget_used"),
    maxRetries: num(row, "max_retries"),
    timeoutMs: numOrNull(row, "timeout_ms"),
    cwd: str(row, "cwd"),
    env: typeof env === "string" ? JSON.parse(env) as Record<string, string> : {},
    runAt: num(row, "run_at"),
    createdAt: num(row, "created_at"),
    updatedAt: num(row, "updated_at"),
    finishedAt: numOrNull(row, "finished_at"),
    workerId: strOrNull(row, "worker_id"),
    leaseExpiresAt: numOrNull(row, "lease_expires_at"),
    lastError: strOrNull(row, "last_error"),
    lastExitCode: numOrNull(row, "last_exit_code"),
    cancelReason: strOrNull(row, "cancel_reason"),
    after: typeof row.after_ids === "string" ? JSON.parse(row.after_ids) as string[] : [],
    waitingOn: typeof row.deps_left === "number" ? row.deps_left : 0,
    uniqueKey: strOrNull(row, "unique_key"),
  };
}

export function toAttempt(row: Row): Attempt {
  return {
    jobId: str(row, "job_id"),
    attempt: num(row, "attempt"),
    workerId: str(row, "worker_id"),
    startedAt: num(row, "started_at"),
    finishedAt: numOrNull(row, "finished_at"),
    outcome: strOrNull(row, "outcome") as AttemptOutcome | null,
    exitCode: numOrNull(row, "exit_code"),
    signal: strOrNull(row, "signal"),
    error: strOrNull(row, "error"),
    pid: numOrNull(row, "pid"),
  };
}

/**
 * A worker row (columns under `prefix`). `now` is the store's clock, for the heartbeat's age;
 * `running` the ids of the jobs it holds, comma-separated (ids hold no commas).
 */
export function toWorker(row: Row, now: number, prefix = ""): WorkerRecord {
  const running = strOrNull(row, `${prefix}running`);
  const heartbeatAt = num(row, `${prefix}heartbeat_at`);
  return {
    id: str(row, `${prefix}id`),
    pid: num(row, `${prefix}pid`),
    host: str(row, `${prefix}host`),
    hostId: strOrNull(row, `${prefix}host_id`) ?? str(row, `${prefix}host`),
    pidStart: numOrNull(row, `${prefix}pid_start`),
    // v1's CHECK allows idle, busy and stopping: 'idle' stands for running (busy is derived from
    // the jobs a worker holds, not written with every claim).
    state: str(row, `${prefix}state`) === "stopping" ? "stopping" : "running",
    runningJobs: running ? running.split(",") : [],
    startedAt: num(row, `${prefix}started_at`),
    heartbeatAt,
    heartbeatAgeMs: Math.max(0, now - heartbeatAt),
    jobsDone: num(row, `${prefix}jobs_done`),
    jobsFailed: num(row, `${prefix}jobs_failed`),
    supervisorPid: numOrNull(row, `${prefix}supervisor_pid`),
    busyMs: numOrNull(row, `${prefix}busy_ms`) ?? 0,
  };
}

const EMPTY = new Uint8Array(0);

export function toCapture(row: Row | undefined): OutputCapture {
  if (!row) return { head: EMPTY, tail: EMPTY, total: 0 };
  return {
    head: row.head as Uint8Array,
    tail: row.tail as Uint8Array,
    total: num(row, "total"),
  };
}

export function toSchedule(row: Row): ScheduleRecord {
  const kind = str(row, "kind");
  return {
    name: str(row, "name"),
    spec: kind === "cron"
      ? { kind: "cron", cron: str(row, "cron"), timeZone: str(row, "time_zone") }
      : { kind: "every", everyMs: num(row, "every_ms") },
    template: str(row, "template"),
    anchor: num(row, "anchor"),
    paused: num(row, "paused") === 1,
    nextAt: numOrNull(row, "next_at"),
    lastAt: numOrNull(row, "last_at"),
    lastJobId: strOrNull(row, "last_job_id"),
    lastJobState: strOrNull(row, "last_job_state") as JobState | null,
    fires: num(row, "fires"),
    createdAt: num(row, "created_at"),
    updatedAt: num(row, "updated_at"),
  };
}
