/**
 * Claim cost with 1,000 jobs waiting on dependencies beside the due ones, against the floor (no
 * waiting jobs) in the same run: SQLite store, 2,000 claims of one job each, each finished.
 * `deno run -A bench/deps.ts`.
 *
 * @module
 */

import { systemClock } from "../lib/clock.ts";
import type { NewJob } from "../lib/job/job.ts";
import { decide } from "../lib/job/outcome.ts";
import { openSqliteStore } from "../lib/store/sqlite/open.ts";
import { PLAIN_JOB } from "../tests/helpers/factory.ts";

const JOBS = 2000;
const WAITING = 1000;
const BACKOFF = { base: 2, maxMs: 60_000 };

function job(fields: Partial<NewJob> = {}): NewJob {
  return { ...PLAIN_JOB, maxRetries: 0, ...fields };
}

/** Microseconds per claim + finish of one job, with `waiting` jobs waiting for a dependency. */
async function run(waiting: number): Promise<number> {
  const dir = await Deno.makeTempDir();
  const store = await openSqliteStore(`${dir}/q.db`, {
    synchronous: "NORMAL",
    busyTimeoutMs: 5000,
    clock: systemClock(),
  });
  try {
    if (waiting > 0) {
      // The dependency is scheduled for later, so the waiting jobs wait for the whole run.
      await store.jobInsertMany({
        jobs: [job({ id: "gate", delayMs: 3_600_000 })],
        defaultMaxRetries: 0,
      });
      await store.jobInsertMany({
        jobs: Array.from({ length: waiting }, () => job({ after: ["gate"] })),
        defaultMaxRetries: 0,
      });
    }
    await store.jobInsertMany({
      jobs: Array.from({ length: JOBS }, () => job()),
      defaultMaxRetries: 0,
    });
    const started = performance.now();
    for (let i = 0; i < JOBS; i++) {
      const [claimed] = await store.jobClaim({
        workerId: "bench",
        host: "bench",
        leaseMs: 60_000,
        limit: 1,
      });
      if (claimed === undefined) throw new Error(`nothing to claim at ${i}`);
      await store.jobFinish({
        jobId: claimed.id,
        attempt: claimed.attempts,
        workerId: "bench",
        decision: decide(claimed, { kind: "exited", code: 0 }, BACKOFF),
      });
    }
    return (performance.now() - started) * 1000 / JOBS;
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

// Alternating rounds, the median of each: the ratio is what the run's noise leaves of it.
const floor: number[] = [];
const waited: number[] = [];
for (let round = 0; round < 5; round++) {
  floor.push(await run(0));
  waited.push(await run(WAITING));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = median(floor);
const w = median(waited);
// deno-lint-ignore no-console
console.log(
  `claim+finish per job: ${f.toFixed(1)} µs without waiting jobs, ${w.toFixed(1)} µs with ` +
    `${WAITING} waiting on a dependency; ratio ${(w / f).toFixed(3)}`,
);
