/**
 * Presentation: colour, aligned tables, and the JSON shapes of jobs, attempts and workers.
 *
 * @module
 */

import type { Attempt, Job } from "../job/job.ts";
import { attemptsLeft } from "../job/job.ts";
import type { JobState } from "../job/state.ts";
import type { JudgedWorker } from "../worker/liveness.ts";
import { formatAgo, formatLocal, iso } from "../time.ts";

export type Paint = (text: string) => string;

export interface Palette {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  cyan: Paint;
  magenta: Paint;
}

const plain: Paint = (text) => text;

/** ANSI colours when `enabled`; identity functions otherwise. */
export function palette(enabled: boolean): Palette {
  const sgr = (code: string): Paint => enabled ? (t) => `\x1b[${code}m${t}\x1b[0m` : plain;
  return {
    bold: sgr("1"),
    dim: sgr("2"),
    red: sgr("31"),
    green: sgr("32"),
    yellow: sgr("33"),
    cyan: sgr("36"),
    magenta: sgr("35"),
  };
}

export function stateColor(p: Palette, state: JobState): Paint {
  switch (state) {
    case "pending":
      return p.yellow;
    case "processing":
      return p.cyan;
    case "completed":
      return p.green;
    case "failed":
      return p.magenta;
    case "dead":
      return p.red;
  }
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Visible width of text that may hold colour codes. */
function width(text: string): number {
  return text.replace(ANSI, "").length;
}

/**
 * Aligns rows into columns separated by two spaces. `header` is printed bold; the last column is
 * not padded.
 */
export function table(p: Palette, header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => width(r[i] ?? ""))));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) =>
      i === cells.length - 1 ? cell : cell + " ".repeat(widths[i]! - width(cell))
    ).join("  ").trimEnd() + "\n";
  return p.bold(line(header).trimEnd()) + "\n" + rows.map(line).join("");
}

/** Shortens text to `max` characters on one line, marking the cut with an ellipsis. */
export function clip(text: string, max: number): string {
  // deno-lint-ignore no-control-regex
  const oneLine = text.replace(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+/g, " ");
  return oneLine.length <= max ? oneLine : oneLine.slice(0, max - 1) + "…";
}

export function localTime(ms: number | null): string {
  return ms === null ? "-" : formatLocal(ms);
}

/** The job object of `list --json`, `show --json` and `enqueue --json`. */
export function jobJson(job: Job): Record<string, unknown> {
  return {
    id: job.id,
    command: job.command,
    state: job.state,
    priority: job.priority,
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
  };
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

/** A heartbeat as people read it: `3s ago`. */
export function heartbeatAgo(judged: JudgedWorker, now: number): string {
  return formatAgo(judged.worker.heartbeatAt, now);
}

/** A worker's state for tables: `gone` and `stale` in red. */
export function workerState(p: Palette, judged: JudgedWorker): string {
  const state = judged.liveness.state;
  return state === "gone" || state === "stale" ? p.red(state) : state;
}

/** The worker object of `status --json`, `worker list --json` and `worker stop --json`. */
export function workerJson({ worker, liveness }: JudgedWorker): Record<string, unknown> {
  return {
    id: worker.id,
    pid: worker.pid,
    host: worker.host,
    state: liveness.state,
    current_job: worker.currentJob,
    started_at: iso(worker.startedAt),
    heartbeat_at: iso(worker.heartbeatAt),
    jobs_done: worker.jobsDone,
    jobs_failed: worker.jobsFailed,
  };
}

/**
 * Makes job output safe to show on a terminal: control characters (except newline and tab),
 * DEL, C1 controls and bidirectional overrides become visible escapes such as `\x1b`, so a job
 * cannot move the cursor, retitle the window or reorder text in the reader's terminal.
 */
export function escapeControls(text: string): string {
  return text.replaceAll("\r\n", "\n").replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      const code = c.charCodeAt(0);
      return code <= 0xff
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : `\\u{${code.toString(16)}}`;
    },
  );
}

/** Bytes as a short size for people: 512 B, 1.2 KiB, 3.4 MiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function json(value: unknown): string {
  return JSON.stringify(value) + "\n";
}
