/**
 * Rows of the PostgreSQL store as the records every layer shares: the only place that turns
 * snake_case columns into camelCase fields, and postgres.js's values into ours.
 *
 * Every time is stored as `bigint` epoch milliseconds (see migrations.ts for why), which
 * postgres.js returns as a string (a bigint may exceed 2^53); so do `count()` and `sum()`. Those
 * are turned into numbers here, checked to be exact. `bytea` comes back as a Node `Buffer`, and is
 * copied into a plain `Uint8Array`; `jsonb` comes back parsed; `boolean` as a boolean.
 *
 * @module
 */

import type { Attempt, AttemptOutcome, Job } from "../../job/job.ts";
import type { JobState } from "../../job/state.ts";
import type { OutputCapture, ScheduleRecord, WorkerRecord } from "../store.ts";

export type Row = Record<string, unknown>;

/** A number column: int2/int4 arrive as numbers, int8 and aggregates as strings. */
export function num(row: Row, key: string): number {
  const value = row[key];
  if (typeof value === "number") return value;
  if (typeof value === "string") {
    const n = Number(value);
    if (Number.isSafeInteger(n)) return n;
  }
  if (typeof value === "bigint" && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value);
  throw new TypeError(`column ${key}: expected an integer, got ${typeof value} ${String(value)}`);
}

export function numOrNull(row: Row, key: string): number | null {
  const value = row[key];
  return value === null || value === undefined ? null : num(row, key);
}

export function str(row: Row, key: string): string {
  const value = row[key];
  if (typeof value !== "string") {
    throw new TypeError(`column ${key}: expected text, got ${typeof value}`);
  }
  return value;
}

export function strOrNull(row: Row, key: string): string | null {
  const value = row[key];
  return value === null || value === undefined ? null : str(row, key);
}

export function bool(row: Row, key: string): boolean {
  return row[key] === true;
}

/** A `bytea` as a plain Uint8Array (a copy: a Buffer may share a pooled ArrayBuffer). */
export function bytes(row: Row, key: string): Uint8Array {
  const value = row[key];
  if (!(value instanceof Uint8Array)) throw new TypeError(`column ${key}: expected bytea`);
  return new Uint8Array(value);
}

function env(row: Row): Record<string, string> {
  const value = row.env;
  if (value === null || value === undefined) return {};
  // jsonb is parsed by the driver; a string would be JSON stored as text.
  const parsed = typeof value === "string" ? JSON.parse(value) : value;
  return parsed as Record<string, string>;
}

export function toJob(row: Row): Job {
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
    env: env(row),
    runAt: num(row, "run_at"),
    createdAt: num(row, "created_at"),
    updatedAt: num(row, "updated_at"),
    finishedAt: numOrNull(row, "finished_at"),
    workerId: strOrNull(row, "worker_id"),
    leaseExpiresAt: numOrNull(row, "lease_expires_at"),
    lastError: strOrNull(row, "last_error"),
    lastExitCode: numOrNull(row, "last_exit_code"),
    cancelReason: strOrNull(row, "cancel_reason"),
    after: after(row),
    waitingOn: row.deps_left === null || row.deps_left === undefined ? 0 : num(row, "deps_left"),
    uniqueKey: strOrNull(row, "unique_key"),
  };
}

function after(row: Row): string[] {
  const value = row.after_ids;
  if (value === null || value === undefined) return [];
  return (typeof value === "string" ? JSON.parse(value) : value) as string[];
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
    hostId: str(row, `${prefix}host_id`),
    pidStart: numOrNull(row, `${prefix}pid_start`),
    state: str(row, `${prefix}state`) === "stopping" ? "stopping" : "running",
    runningJobs: running ? running.split(",") : [],
    startedAt: num(row, `${prefix}started_at`),
    heartbeatAt,
    heartbeatAgeMs: Math.max(0, now - heartbeatAt),
    jobsDone: num(row, `${prefix}jobs_done`),
    jobsFailed: num(row, `${prefix}jobs_failed`),
    supervisorPid: numOrNull(row, `${prefix}supervisor_pid`),
    busyMs: num(row, `${prefix}busy_ms`),
  };
}

const EMPTY = new Uint8Array(0);

export function toCapture(row: Row | undefined): OutputCapture {
  if (!row) return { head: EMPTY, tail: EMPTY, total: 0 };
  return { head: bytes(row, "head"), tail: bytes(row, "tail"), total: num(row, "total") };
}

/** A capture as it travels inside a JSON parameter: bytes as base64 (`decode(…, 'base64')`). */
export function captureJson(capture: OutputCapture): { head: string; tail: string; total: number } {
  return { head: base64(capture.head), tail: base64(capture.tail), total: capture.total };
}

function base64(data: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
  }
  return btoa(binary);
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
    paused: bool(row, "paused"),
    nextAt: numOrNull(row, "next_at"),
    lastAt: numOrNull(row, "last_at"),
    lastJobId: strOrNull(row, "last_job_id"),
    lastJobState: strOrNull(row, "last_job_state") as JobState | null,
    fires: num(row, "fires"),
    createdAt: num(row, "created_at"),
    updatedAt: num(row, "updated_at"),
  };
}
