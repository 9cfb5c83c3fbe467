/**
 * The JSON shapes of everything queuectl prints with `--json`, in one place for the CLI and the
 * dashboard. Field names are snake_case, times ISO 8601 in UTC, durations seconds unless the name
 * says otherwise. The README's "JSON output" section documents them.
 *
 * @module
 */

import type { Attempt, Job } from "./job/job.ts";
import { attemptsLeft } from "./job/job.ts";
import type { Metrics } from "./metrics.ts";
import type { JobLink, QueueRecord, ScheduleRecord } from "./store/store.ts";
import { percentile } from "./stats.ts";
import type { JudgedWorker } from "./worker/liveness.ts";
import { iso } from "./time.ts";

/** The job object of `list --json`, `show --json` and `enqueue --json`. */
export function jobJson(job: Job): Record<string, unknown> {
  return {
    id: job.id,
    command: job.command,
    state: job.state,
    priority: job.priority,
    queue: job.queue,
    attempts: job.attempts,
    max_retries: job.maxRetries,
    attempts_left: attemptsLeft(job),
    timeout: job.timeoutMs === null ? null : job.timeoutMs / 1000,
    cwd: job.cwd,
    env: job.env,
    run_at: iso(job.runAt),
    created_at: iso(job.createdAt),
    updated_at: iso(job.updatedAt),
    finished_at: iso(job.finishedAt),
    worker_id: job.workerId,
    lease_expires_at: iso(job.leaseExpiresAt),
    last_error: job.lastError,
    last_exit_code: job.lastExitCode,
    cancel_reason: job.cancelReason,
    after: job.after,
    waiting_on: job.waitingOn,
    unique_key: job.uniqueKey,
  };
}

/** One end of a dependency, as `show --json` lists them (`state` null: the job was deleted). */
export function jobLinkJson(link: JobLink): Record<string, unknown> {
  return { id: link.id, state: link.state, met: link.met };
}

/**
 * A job as lists show it: every field but `env`, which may hold secrets and is shown only where
 * one job is looked at (`show`, the dashboard's job page).
 */
export function jobSummaryJson(job: Job): Record<string, unknown> {
  const { env: _env, ...rest } = jobJson(job);
  return rest;
}

/** A queue of `queue list --json` (and the dashboard): settings and counts per state. */
export function queueJson(queue: QueueRecord): Record<string, unknown> {
  const { total, ...states } = queue.counts;
  return {
    name: queue.name,
    paused: queue.paused,
    concurrency: queue.concurrency,
    counts: states,
    total,
    updated_at: iso(queue.updatedAt),
  };
}

/** A schedule (recurring job): `schedule list --json`, `schedule add --json`. */
export function scheduleJson(s: ScheduleRecord): Record<string, unknown> {
  return {
    name: s.name,
    cron: s.spec.kind === "cron" ? s.spec.cron : null,
    time_zone: s.spec.kind === "cron" ? s.spec.timeZone : null,
    every: s.spec.kind === "every" ? s.spec.everyMs / 1000 : null,
    job: JSON.parse(s.template),
    paused: s.paused,
    next_run_at: s.paused ? null : iso(s.nextAt),
    last_run_at: iso(s.lastAt),
    last_job_id: s.lastJobId,
    last_job_state: s.lastJobState,
    runs: s.fires,
    created_at: iso(s.createdAt),
  };
}

/**
 * A schedule as the dashboard lists it: its job without `env`, which may hold secrets (as
 * `jobSummaryJson`).
 */
export function scheduleSummaryJson(s: ScheduleRecord): Record<string, unknown> {
  const out = scheduleJson(s);
  const { env: _env, ...job } = out.job as Record<string, unknown>;
  return { ...out, job };
}

export function attemptJson(attempt: Attempt): Record<string, unknown> {
  return {
    attempt: attempt.attempt,
    worker_id: attempt.workerId,
    started_at: iso(attempt.startedAt),
    finished_at: iso(attempt.finishedAt),
    duration_ms: attempt.finishedAt === null ? null : attempt.finishedAt - attempt.startedAt,
    outcome: attempt.outcome ?? "running",
    exit_code: attempt.exitCode,
    signal: attempt.signal,
    error: attempt.error,
  };
}

/** A worker as `status`, `worker list` and the dashboard show it, with its judged state. */
export function workerJson({ worker, liveness }: JudgedWorker): Record<string, unknown> {
  return {
    id: worker.id,
    pid: worker.pid,
    host: worker.host,
    state: liveness.state,
    current_job: worker.runningJobs[worker.runningJobs.length - 1] ?? null,
    started_at: iso(worker.startedAt),
    heartbeat_at: iso(worker.heartbeatAt),
    jobs_done: worker.jobsDone,
    jobs_failed: worker.jobsFailed,
  };
}

function round(value: number | null, digits = 2): number | null {
  return value === null ? null : Number(value.toFixed(digits));
}

/** The JSON document: every figure with its unit in the field name or beside it. */
export function metricsJson(m: Metrics, detailed: boolean): Record<string, unknown> {
  const s = m.stats;
  const firstAttempts = m.finished - s.retryAttempts;
  const out: Record<string, unknown> = {
    generated_at: iso(m.generatedAt),
    window: { since: iso(m.since), seconds: Math.round((m.generatedAt - m.since) / 1000) },
    counts: m.counts,
    success_rate: {
      ratio: m.finished ? round(m.succeeded / m.finished, 4) : null,
      succeeded_attempts: m.succeeded,
      finished_attempts: m.finished,
    },
    outcomes: s.outcomes,
    throughput: {
      unit: "completed jobs per minute",
      last_1m: round(m.throughput.m1),
      last_15m: round(m.throughput.m15),
      last_60m: round(m.throughput.m60),
    },
    run_time: {
      unit: "ms",
      p50: round(percentile(s.runTime, 0.5, s.maxRunMs), 1),
      p95: round(percentile(s.runTime, 0.95, s.maxRunMs), 1),
      max: s.maxRunMs,
    },
    queue_wait: {
      unit: "ms",
      p50: round(percentile(s.queueWait, 0.5), 1),
      p95: round(percentile(s.queueWait, 0.95), 1),
    },
    retries: {
      jobs_retried: s.retriedJobs,
      retry_attempts: s.retryAttempts,
      attempts_per_job: firstAttempts > 0 ? round(m.finished / firstAttempts, 3) : null,
    },
    oldest_due: s.oldestDueAt === null ? null : {
      job: s.oldestDueJob,
      waiting_seconds: round((m.generatedAt - s.oldestDueAt) / 1000, 1),
    },
    top_failing: s.topFailing.map((f) => ({
      command: f.command,
      failures: f.failures,
      last_error: f.lastError,
      last_exit_code: f.lastExitCode,
    })),
  };
  if (detailed) {
    out.workers = m.workers.map((w) => {
      const uptime = Math.max(1, m.generatedAt - w.startedAt);
      return {
        id: w.id,
        pid: w.pid,
        state: w.state,
        jobs_done: w.jobsDone,
        jobs_failed: w.jobsFailed,
        busy_share: round(Math.min(1, w.busyMs / uptime), 3),
        uptime_seconds: Math.round(uptime / 1000),
      };
    });
    const nowMinute = Math.floor(m.generatedAt / 60_000);
    out.per_minute = Array.from({ length: 60 }, (_, i) => {
      const minute = nowMinute - 59 + i;
      const entry = s.perMinute.get(minute) ?? { finished: 0, completed: 0 };
      return { minute: iso(minute * 60_000), finished: entry.finished, completed: entry.completed };
    });
  }
  return out;
}
