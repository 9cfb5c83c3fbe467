/**
 * The summary of the per-minute figures a user reads (`metrics`, the dashboard). The figures'
 * arithmetic (buckets, percentiles, what an attempt adds) is in lib/stats.ts.
 *
 * @module
 */

import type { AttemptOutcome } from "./job/job.ts";
import type { Histogram } from "./stats.ts";
import { METRIC, OUTCOME_CODES } from "./stats.ts";

export type { FinishedAttemptFacts, Histogram, StatIncrement } from "./stats.ts";
export {
  bucketOf,
  bucketUpper,
  METRIC,
  OUTCOME_CODES,
  percentile,
  statIncrements,
} from "./stats.ts";

/**
 * Attempts per minute over the last `minutes` minutes, from per-minute counts: the oldest minute
 * is weighted by how much of it lies inside the window, so the rate does not jump when a new
 * minute starts.
 */
export function ratePerMinute(
  perMinute: ReadonlyMap<number, number>,
  now: number,
  minutes: number,
): number {
  const nowMinute = Math.floor(now / 60_000);
  const intoMinute = (now % 60_000) / 60_000;
  let sum = 0;
  for (let m = nowMinute - minutes + 1; m <= nowMinute; m++) sum += perMinute.get(m) ?? 0;
  sum += (perMinute.get(nowMinute - minutes) ?? 0) * (1 - intoMinute);
  return sum / minutes;
}

/** A command that failed often in the window. */
export interface FailingCommand {
  command: string;
  failures: number;
  lastError: string | null;
  lastExitCode: number | null;
}

/** What a store reads back for `metrics`: its stored figures as they are, summed by nobody. */
export interface StatsFigures {
  /** The store's clock when it read them. */
  now: number;
  /** Start of the window (the store's clock). */
  since: number;
  /** Per-minute figures in the window, summed per metric and bucket (maxima: the largest). */
  window: { metric: number; bucket: number; n: number }[];
  /** Outcome counts (metric 0) per minute over the last hour. */
  lastHour: { minute: number; bucket: number; n: number }[];
  topFailing: FailingCommand[];
  /** The due job that has waited longest: its id and when it became due. */
  oldestDue: { job: string; dueAt: number } | null;
}

/** The window's figures, in the form people read them. */
export interface StatsSummary {
  now: number;
  since: number;
  /** Finished attempts in the window, by outcome. */
  outcomes: Record<AttemptOutcome, number>;
  runTime: Histogram;
  queueWait: Histogram;
  /** Longest run in the window, ms. */
  maxRunMs: number | null;
  /** Attempts in the window that were retries (after an earlier attempt that was not interrupted). */
  retryAttempts: number;
  /** Jobs whose first retry finished in the window. */
  retriedJobs: number;
  /** Finished attempts per minute (epoch minute → count), for the last hour. */
  perMinute: Map<number, { finished: number; completed: number }>;
  /** Commands that failed most often in the window (among its most recent failures). */
  topFailing: FailingCommand[];
  /** When the longest-waiting due job became due, or null when none is waiting. */
  oldestDueAt: number | null;
  oldestDueJob: string | null;
}

/** Folds a store's figures into the summary (pure). */
export function summarizeStats(figures: StatsFigures): StatsSummary {
  const outcomes = Object.fromEntries(OUTCOME_CODES.map((o) => [o, 0])) as Record<
    AttemptOutcome,
    number
  >;
  const runTime: Histogram = new Map();
  const queueWait: Histogram = new Map();
  let maxRunMs: number | null = null;
  let retryAttempts = 0;
  let retriedJobs = 0;
  for (const { metric, bucket, n } of figures.window) {
    if (metric === METRIC.outcome) {
      const outcome = OUTCOME_CODES[bucket];
      if (outcome) outcomes[outcome] += n;
    } else if (metric === METRIC.runTime) runTime.set(bucket, (runTime.get(bucket) ?? 0) + n);
    else if (metric === METRIC.queueWait) {
      queueWait.set(bucket, (queueWait.get(bucket) ?? 0) + n);
    } else if (metric === METRIC.maxRunTime) maxRunMs = Math.max(maxRunMs ?? 0, n);
    else if (metric === METRIC.retries && bucket === 0) retryAttempts += n;
    else if (metric === METRIC.retries) retriedJobs += n;
  }
  const perMinute = new Map<number, { finished: number; completed: number }>();
  for (const { minute, bucket, n } of figures.lastHour) {
    const outcome = OUTCOME_CODES[bucket];
    if (outcome === "interrupted" || outcome === "cancelled" || outcome === undefined) continue;
    const entry = perMinute.get(minute) ?? { finished: 0, completed: 0 };
    entry.finished += n;
    if (outcome === "completed") entry.completed += n;
    perMinute.set(minute, entry);
  }
  return {
    now: figures.now,
    since: figures.since,
    outcomes,
    runTime,
    queueWait,
    maxRunMs,
    retryAttempts,
    retriedJobs,
    perMinute,
    topFailing: figures.topFailing,
    oldestDueAt: figures.oldestDue?.dueAt ?? null,
    oldestDueJob: figures.oldestDue?.job ?? null,
  };
}

/** A worker as the figures see it: its record, and its state as people read it. */
export interface MetricsWorker {
  id: string;
  pid: number;
  host: string;
  state: string;
  jobsDone: number;
  jobsFailed: number;
  busyMs: number;
  startedAt: number;
}

/** Every figure of the metrics dashboard, in base units (what `--json` prints). */
export interface Metrics {
  /** The store's clock when they were read. */
  generatedAt: number;
  since: number;
  counts: Record<string, number>;
  stats: StatsSummary;
  /** Completed attempts in the window. */
  succeeded: number;
  /** Finished attempts in the window (interrupted ones left out). */
  finished: number;
  /** Completed jobs per minute over the last 1, 15 and 60 minutes. */
  throughput: { m1: number; m15: number; m60: number };
  workers: MetricsWorker[];
}

/** The dashboard's figures from the counts, the stored figures and the workers (pure). */
export function computeMetrics(
  counts: Record<string, number>,
  figures: StatsFigures,
  workers: MetricsWorker[],
): Metrics {
  const stats = summarizeStats(figures);
  const o = stats.outcomes;
  const finished = o.completed + o.failed + o.timeout + o.spawn_failed + o.lost;
  const completedPerMinute = new Map([...stats.perMinute].map(([m, v]) => [m, v.completed]));
  const now = figures.now;
  return {
    generatedAt: now,
    since: figures.since,
    counts,
    stats,
    succeeded: o.completed,
    finished,
    throughput: {
      m1: ratePerMinute(completedPerMinute, now, 1),
      m15: ratePerMinute(completedPerMinute, now, 15),
      m60: ratePerMinute(completedPerMinute, now, 60),
    },
    workers,
  };
}
