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

/** Raw figures the store keeps; see `Store.statsSummary`. */
export interface StatsSummary {
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
  topFailing: {
    command: string;
    failures: number;
    lastError: string | null;
    lastExitCode: number | null;
  }[];
  /** When the longest-waiting due job became due, or null when none is waiting. */
  oldestDueAt: number | null;
  oldestDueJob: string | null;
}
