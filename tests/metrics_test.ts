/**
 * The arithmetic of metrics (lib/metrics.ts): histogram buckets, percentiles and per-minute rates.
 *
 * @module
 */

import assert from "node:assert/strict";
import { bucketOf, bucketUpper, percentile, ratePerMinute } from "../lib/metrics.ts";
import type { Histogram } from "../lib/metrics.ts";
import { Prng } from "./helpers/prng.ts";

/** The range of values a bucket holds, by its documented definition. */
function bucketRange(bucket: number): [number, number] {
  return bucket === 0 ? [0, 1] : [Math.pow(1.25, bucket - 1), Math.pow(1.25, bucket)];
}

function histogramOf(values: readonly number[]): Histogram {
  const h: Histogram = new Map();
  for (const v of values) h.set(bucketOf(v), (h.get(bucketOf(v)) ?? 0) + 1);
  return h;
}

Deno.test("bucketOf() puts every millisecond count up to 30 days in a bucket whose range holds it", () => {
  const check = (ms: number) => {
    const bucket = bucketOf(ms);
    const [low, high] = bucketRange(bucket);
    assert.ok(low <= ms && ms < high, `${ms} ms is in bucket ${bucket} = [${low}, ${high})`);
    assert.equal(bucketUpper(bucket), high, `bucketUpper(${bucket})`);
  };
  for (let ms = 0; ms <= 200_000; ms++) check(ms);
  const rng = new Prng(20260101);
  for (let i = 0; i < 200_000; i++) check(rng.int(0, 30 * 86_400_000));
  for (let i = 0; i < 10_000; i++) check(rng.next() * 10);
  // The bounds themselves belong to the bucket they start.
  for (let k = 1; k < 120; k++) check(Math.pow(1.25, k));
});

Deno.test("bucketUpper() is never below the value and at most 25% above it (from 1 ms)", () => {
  const rng = new Prng(7);
  for (let i = 0; i < 100_000; i++) {
    const ms = 1 + rng.next() * 1e9;
    const upper = bucketUpper(bucketOf(ms));
    assert.ok(upper > ms && upper <= ms * 1.25, `${ms} ms reported as ${upper}`);
  }
  // Below 1 ms everything is bucket 0, reported as 1 ms.
  assert.equal(bucketOf(0), 0);
  assert.equal(bucketOf(0.999), 0);
  assert.equal(bucketUpper(0), 1);
  assert.equal(bucketOf(1), 1);
  // Nonsense values land in bucket 0 rather than a negative or NaN bucket.
  assert.equal(bucketOf(-5), 0);
  assert.equal(bucketOf(Number.NaN), 0);
});

Deno.test("percentile() is null for an empty histogram", () => {
  assert.equal(percentile(new Map(), 0.5), null);
  assert.equal(percentile(new Map(), 0.5, 10), null);
  assert.equal(percentile(new Map([[3, 0]]), 0.95), null, "buckets of zero count");
});

Deno.test("percentile() of a single value is its bucket's upper bound, capped by the maximum", () => {
  const h = histogramOf([100]);
  assert.equal(percentile(h, 0.5), bucketUpper(bucketOf(100)));
  assert.ok(Math.abs(percentile(h, 0.5)! - 108.42) < 0.01);
  for (const p of [0, 0.01, 0.5, 0.95, 1]) {
    assert.equal(percentile(h, p, 100), 100, `p${p * 100} with max 100`);
  }
  assert.equal(percentile(h, 0.5, null), percentile(h, 0.5), "a null max is no cap");
});

Deno.test("percentile() takes the value of rank ceil(p·n), as its bucket's upper bound", () => {
  // 1..100 ms, one each: p50 is the 50th value, p95 the 95th, p0 the smallest.
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  const h = histogramOf(values);
  assert.equal(percentile(h, 0.5), bucketUpper(bucketOf(50)));
  assert.equal(percentile(h, 0.95), bucketUpper(bucketOf(95)));
  assert.equal(percentile(h, 0.99), bucketUpper(bucketOf(99)));
  assert.equal(percentile(h, 0), bucketUpper(bucketOf(1)));
  assert.equal(percentile(h, 1, 100), 100, "p100 is the maximum");
  // Skewed: 9 fast runs and one slow one. p90 is still fast; p91 is the slow one.
  const skewed = histogramOf([...Array(9).fill(10), 5000]);
  assert.equal(percentile(skewed, 0.9, 5000), bucketUpper(bucketOf(10)));
  assert.equal(percentile(skewed, 0.91, 5000), 5000);
});

Deno.test("percentile() agrees with sorting the values, within a bucket, for random data", () => {
  const seed = 424242;
  const rng = new Prng(seed);
  for (let round = 0; round < 500; round++) {
    const n = rng.int(1, 200);
    const values = Array.from({ length: n }, () => rng.int(0, 120_000));
    const sorted = [...values].sort((a, b) => a - b);
    const max = sorted[n - 1]!;
    const h = histogramOf(values);
    for (const p of [0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1]) {
      const exact = sorted[Math.max(1, Math.ceil(p * n)) - 1]!;
      const want = Math.min(bucketUpper(bucketOf(exact)), max);
      const got = percentile(h, p, max);
      assert.equal(got, want, `seed ${seed} round ${round} p${p}: values ${sorted.join(",")}`);
      assert.ok(got! >= exact && got! <= Math.max(1, exact * 1.25), `within 25% of ${exact}`);
    }
  }
});

const MINUTE = 60_000;
const M0 = Date.UTC(2026, 0, 1) / MINUTE; // an epoch minute number

/** Equal to within floating-point noise. */
function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual}, expected ${expected}`);
}

Deno.test("ratePerMinute() counts the current minute and weights the oldest by its part in the window", () => {
  // 60 attempts in minute M0-1, 30 so far in M0.
  const counts = new Map([[M0 - 1, 60], [M0, 30]]);
  // 15 s into M0, the last minute is all of M0 so far and the last 45 s of M0-1 (¾ of 60).
  near(ratePerMinute(counts, M0 * MINUTE + 15_000, 1), 30 + 45, "1m, 15 s in");
  near(ratePerMinute(counts, M0 * MINUTE + 30_000, 1), 30 + 30, "1m, 30 s in");
  near(ratePerMinute(counts, M0 * MINUTE + 59_999, 1), 30 + 60 / 60_000, "1m, 1 ms before M0+1");
  near(ratePerMinute(counts, (M0 + 1) * MINUTE, 1), 30, "1m, at the start of M0+1");
  near(ratePerMinute(counts, (M0 + 2) * MINUTE, 1), 0, "1m, at the start of M0+2");
  // 15 minutes: everything is inside while M0-1 is not the oldest minute.
  near(ratePerMinute(counts, M0 * MINUTE + 15_000, 15), (30 + 60) / 15, "15m, 15 s in");
  // 14 minutes later M0-1 is the oldest minute, ¾ of it inside.
  near(ratePerMinute(counts, (M0 + 14) * MINUTE + 15_000, 15), (30 + 45) / 15, "15m, M0-1 oldest");
  near(ratePerMinute(counts, (M0 + 15) * MINUTE + 15_000, 15), (30 * 0.75) / 15, "15m, M0 oldest");
  near(ratePerMinute(counts, (M0 + 16) * MINUTE, 15), 0, "15m, all out");
  near(ratePerMinute(new Map(), M0 * MINUTE + 1, 60), 0, "no attempts");
});

Deno.test("ratePerMinute() ignores minutes outside the window", () => {
  const counts = new Map([[M0 - 61, 1000], [M0 - 60, 60], [M0, 6]]);
  // 60-minute window at 20 s into M0: M0-59..M0 in full, 40 s of M0-60; M0-61 is out.
  near(ratePerMinute(counts, M0 * MINUTE + 20_000, 60), (6 + 60 * 40 / 60) / 60, "60m");
});

Deno.test("ratePerMinute() does not jump when a minute starts", () => {
  const rng = new Prng(99);
  for (let round = 0; round < 50; round++) {
    // Attempts at random times (never exactly on a minute boundary) over the last 70 minutes.
    const times = Array.from(
      { length: rng.int(0, 3000) },
      () => rng.int(M0 - 70, M0 + 3) * MINUTE + rng.int(1, MINUTE - 1),
    );
    /** Per-minute counts as the store holds them at `now`: only what finished by then. */
    const countsAt = (now: number) => {
      const counts = new Map<number, number>();
      for (const t of times) {
        if (t <= now) {
          counts.set(Math.floor(t / MINUTE), (counts.get(Math.floor(t / MINUTE)) ?? 0) + 1);
        }
      }
      return counts;
    };
    for (const minutes of [1, 15, 60]) {
      for (let boundary = M0 - 2; boundary <= M0 + 3; boundary++) {
        const t = boundary * MINUTE;
        const before = ratePerMinute(countsAt(t - 1), t - 1, minutes);
        const at = ratePerMinute(countsAt(t), t, minutes);
        // A millisecond moves at most 1/60000 of the oldest minute's count out of the window.
        assert.ok(
          Math.abs(at - before) < 0.01,
          `round ${round}, ${minutes} min, minute ${boundary}: ${before} -> ${at}`,
        );
      }
    }
  }
});
