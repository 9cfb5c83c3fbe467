/**
 * What one finished attempt adds to the per-minute figures, and the log-scale histogram buckets
 * they are kept in (so percentiles come from a few hundred counters instead of every attempt).
 * Apart from lib/metrics.ts, which sums the figures up for users: the store and the JSON shapes
 * need only this, and every command pays for what it loads.
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
  "cancelled",
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
