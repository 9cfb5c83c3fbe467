/**
 * The arithmetic of metrics: log-scale histogram buckets (so percentiles come from a few hundred
 * counters instead of every attempt) and the summary a user reads.
 *
 * @module
 */

import type { AttemptOutcome } from "./job/job.ts";

/** Outcome codes as stored in the per-minute figures. */
export const OUTCOME_CODES: readonly AttemptOutcome[] = [
  "completed",
  "failed",
  "timeout",
  "spawn_failed",
  "lost",
  "interrupted",
];

/** Per-minute figures; retries: bucket 0 counts retry attempts, bucket 1 first retries (jobs retried). */
export const METRIC = { outcome: 0, runTime: 1, queueWait: 2, maxRunTime: 3, retries: 4 } as const;

/** Each bucket is 25% wider than the one before: percentiles are exact to within 25%. */
const GROWTH = 1.25;
const LOG_GROWTH = Math.log(GROWTH);

/** Bucket of a duration in milliseconds: 0 holds [0, 1), bucket b ≥ 1 holds [1.25^(b-1), 1.25^b). */
export function bucketOf(ms: number): number {
  if (!(ms >= 1)) return 0;
  return 1 + Math.floor(Math.log(ms) / LOG_GROWTH + 1e-9);
}

/** The upper bound of a bucket, the value a percentile in it reports. */
export function bucketUpper(bucket: number): number {
  return bucket === 0 ? 1 : Math.pow(GROWTH, bucket);
}

/** A histogram: bucket → count. */
export type Histogram = Map<number, number>;

/**
 * The p-th percentile (0..1) of a histogram, or null when it is empty: the upper bound of the
 * bucket it falls in, but never more than `max` when the largest value is known.
 */
export function percentile(histogram: Histogram, p: number, max?: number | null): number | null {
  let total = 0;
  for (const n of histogram.values()) total += n;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (const bucket of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(bucket)!;
    if (seen >= rank) {
      const upper = bucketUpper(bucket);
      return max === null || max === undefined ? upper : Math.min(upper, max);
    }
  }
  return null;
}

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

/** One change to a per-minute figure: add `n`, or (for a maximum) raise it to `n`. */
export interface StatIncrement {
  metric: number;
  bucket: number;
  n: number;
  /** Keep the larger value instead of adding. */
  max?: true;
}

/** What the store knows about an attempt as it finishes, for the figures it adds to. */
export interface FinishedAttemptFacts {
  outcome: AttemptOutcome;
  /** Earlier attempts of the job that finished and were charged (not interrupted). */
  earlierCharged: number;
  runMs: number;
  /** Attempt start − the time the job became due; null when unknown. */
  waitMs: number | null;
}

/**
 * The per-minute figures one finished attempt adds to: every store records these in the
 * transaction that finishes the attempt, so `metrics` never reads the attempts themselves.
 */
export function statIncrements(facts: FinishedAttemptFacts): StatIncrement[] {
  const out: StatIncrement[] = [
    { metric: METRIC.outcome, bucket: OUTCOME_CODES.indexOf(facts.outcome), n: 1 },
  ];
  if (facts.outcome === "interrupted") return out;
  out.push({ metric: METRIC.runTime, bucket: bucketOf(facts.runMs), n: 1 });
  if (facts.waitMs !== null) {
    out.push({ metric: METRIC.queueWait, bucket: bucketOf(Math.max(0, facts.waitMs)), n: 1 });
  }
  // Bucket 0 counts retry attempts; bucket 1 first retries, i.e. jobs that were retried.
  if (facts.earlierCharged > 0) out.push({ metric: METRIC.retries, bucket: 0, n: 1 });
  if (facts.earlierCharged === 1) out.push({ metric: METRIC.retries, bucket: 1, n: 1 });
  out.push({ metric: METRIC.maxRunTime, bucket: 0, n: facts.runMs, max: true });
  return out;
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
    if (outcome === "interrupted" || outcome === undefined) continue;
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
