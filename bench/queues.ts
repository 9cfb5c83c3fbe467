/**
 * Named queues (issue 11): what a paused queue full of jobs costs the queues beside it.
 *
 * - Claim cost: `jobClaim` + `jobFinish` through the store API in the bench process, with 100 due
 *   jobs of the top priority in a paused queue, against the same with no paused queue (floor), on
 *   the same database shape, same run. A claim that stepped over the paused jobs would pay for
 *   each of them.
 * - Pickup latency: one idle worker; jobs enqueued one at a time into the default queue
 *   (`queuectl enqueue -c true`), while a paused queue holds 1,000 due jobs of the top priority;
 *   the floor is the same measurement without the paused queue, same run.
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  createQueueDb,
  median,
  printFigure,
  quantile,
  queuectl,
  Reader,
  sleep,
  standalone,
  startWorkers,
  stopAll,
  tempDir,
  waitCompleted,
  waitIdle,
} from "./_common.ts";
import type { Background } from "./_common.ts";
import { openSqliteStore } from "../lib/store/sqlite/open.ts";
import type { SqliteStore } from "../lib/store/sqlite/store.ts";
import { systemClock } from "../lib/clock.ts";
import { decide } from "../lib/job/outcome.ts";
import { PLAIN_JOB } from "../tests/helpers/factory.ts";

const SECTION = "Named queues";
/** A paused queue may cost a claim of another queue this much more, at most. */
const CLAIM_RATIO = 1.25;
const PICKUP_RATIO = 1.35;

const JOB = PLAIN_JOB;

function claims(options: BenchOptions): number {
  return options.quick ? 1000 : 4000;
}

async function openStore(path: string): Promise<SqliteStore> {
  const store = await openSqliteStore(path, {
    synchronous: "NORMAL",
    busyTimeoutMs: 100,
    clock: systemClock(),
  });
  await store.workerRegister({
    worker: {
      id: "w-bench",
      pid: Deno.pid,
      host: "bench",
      hostId: "bench",
      pidStart: null,
      supervisorPid: null,
    },
  });
  return store;
}

/** µs per claim + finish of `n` default-queue jobs, with or without 100 paused jobs above them. */
async function claimCost(dir: string, n: number, paused: boolean): Promise<number[]> {
  const path = `${dir}/claim-${paused ? "paused" : "plain"}.db`;
  await createQueueDb(path);
  const store = await openStore(path);
  try {
    await store.jobInsertMany({ jobs: Array(n).fill(JOB), defaultMaxRetries: 0 });
    // The same shape either way: 100 due jobs of priority 10 in queue "held", paused or not
    // claimable for another reason (a worker of the default queue only, for the floor).
    await store.jobInsertMany({
      jobs: Array(100).fill({ ...JOB, priority: 10, queue: "held" }),
      defaultMaxRetries: 0,
    });
    if (paused) await store.queuePause({ names: ["held"] });
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const [job] = await store.jobClaim({
        workerId: "w-bench",
        host: "bench",
        leaseMs: 30_000,
        limit: 1,
        // The floor's worker takes only the default queue: the held jobs are left out by the
        // worker's scope instead of the pause (the same walk, without the pause's read).
        ...(paused ? {} : { queues: ["default"] }),
      });
      if (!job || job.queue !== "default") throw new Error("claimed a held job or nothing");
      const applied = await store.jobFinish({
        jobId: job.id,
        attempt: job.attempts,
        workerId: "w-bench",
        decision: decide(job, { kind: "exited", code: 0 }, { base: 2, maxMs: 3_600_000 }),
      });
      if (!applied) throw new Error(`finish of ${job.id} was not applied`);
      times.push((performance.now() - t0) * 1000);
    }
    return times;
  } finally {
    await store.close();
  }
}

/** µs per claim + finish with no paused queue and no named queue (the store's plain walk). */
async function plainCost(dir: string, n: number, tag: string): Promise<number[]> {
  const path = `${dir}/claim-none-${tag}.db`;
  await createQueueDb(path);
  const store = await openStore(path);
  try {
    await store.jobInsertMany({ jobs: Array(n).fill(JOB), defaultMaxRetries: 0 });
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const [job] = await store.jobClaim({
        workerId: "w-bench",
        host: "bench",
        leaseMs: 30_000,
        limit: 1,
      });
      await store.jobFinish({
        jobId: job!.id,
        attempt: job!.attempts,
        workerId: "w-bench",
        decision: decide(job!, { kind: "exited", code: 0 }, { base: 2, maxMs: 3_600_000 }),
      });
      times.push((performance.now() - t0) * 1000);
    }
    return times;
  } finally {
    await store.close();
  }
}

/** Pickup latencies (ms) of `n` jobs enqueued one by one, beside `held` due jobs of a paused queue. */
async function pickupLatency(dir: string, n: number, held: number): Promise<number[]> {
  const db = `${dir}/pickup-${held}.db`;
  await createQueueDb(db);
  if (held > 0) {
    const store = await openStore(db);
    try {
      await store.queuePause({ names: ["held"] });
      await store.jobInsertMany({
        jobs: Array(held).fill({ ...JOB, priority: 10, queue: "held" }),
        defaultMaxRetries: 0,
      });
    } finally {
      await store.close();
    }
  }
  const reader = new Reader(db);
  let workers: Background | undefined;
  try {
    workers = startWorkers(db, 1, dir);
    await waitIdle(reader, workers, 1, 1000);
    for (let i = 0; i < n; i++) {
      await sleep(20 + Math.random() * 80);
      await queuectl(db, ["enqueue", "-c", "true"], { stdout: "null" });
    }
    await waitCompleted(reader, n, workers, 30_000);
    const rows = reader.all(
      `SELECT j.created_at AS created, a.started_at AS started
       FROM jobs j JOIN attempts a ON a.job_seq = j.seq AND a.attempt = 1
       WHERE j.queue = 'default'`,
    );
    if (rows.length !== n) throw new Error(`${rows.length} of ${n} jobs ran`);
    if (reader.num("SELECT count(*) FROM jobs WHERE queue = 'held' AND state <> 'pending'") > 0) {
      throw new Error("a job of the paused queue ran");
    }
    return rows.map((r) => Number(r.started) - Number(r.created));
  } finally {
    await stopAll([workers]);
    reader.close();
  }
}

export const queues: BenchModule = {
  title: SECTION,
  method: (options) =>
    `Claim cost: \`jobClaim\` + \`jobFinish\` through \`openSqliteStore\` in the bench process, ` +
    `${claims(options)} jobs of the default queue, with 100 due jobs of priority 10 in a paused ` +
    `queue; floor: the same jobs without the paused queue (the plain walk), measured before and ` +
    `after, after a warm-up (medians). Pickup: one idle worker, jobs enqueued one at a time (\`queuectl enqueue -c true\`, ` +
    `20–100 ms apart) beside a paused queue of 1,000 due priority-10 jobs; floor: the same ` +
    `without them, same run. Ratio = ours / floor.`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("queues");
    const figures: Figure[] = [];
    const add = (figure: Figure) => {
      printFigure(figure);
      figures.push(figure);
    };
    try {
      const n = claims(options);
      // A warm-up first (the JIT), and the floor measured before and after the others.
      await plainCost(dir.path, 500, "warm");
      const plain1 = await plainCost(dir.path, n, "a");
      const ours = median(await claimCost(dir.path, n, true));
      const scoped = median(await claimCost(dir.path, n, false));
      const floor = median([...plain1, ...await plainCost(dir.path, n, "b")]);
      add({
        section: SECTION,
        name: "claim + finish beside 100 paused jobs (µs per job)",
        value: ours,
        unit: "µs",
        floor,
        floorName: "same, no paused queue",
        ratio: ours / floor,
        target: `≤ ${CLAIM_RATIO}×`,
        pass: ours / floor <= CLAIM_RATIO,
      });
      add({
        section: SECTION,
        name: "context: the same, held queue left out by --queue",
        value: scoped,
        unit: "µs",
        floor,
        floorName: "same, no paused queue",
        ratio: scoped / floor,
        target: "",
        pass: null,
      });
      const jobs = options.quick ? 40 : 120;
      const base = await pickupLatency(dir.path, jobs, 0);
      const beside = await pickupLatency(dir.path, jobs, 1000);
      for (const [label, q] of [["p50", 0.5], ["p95", 0.95]] as const) {
        const value = quantile(beside, q);
        const floorValue = quantile(base, q);
        const ratio = value / Math.max(floorValue, 1);
        add({
          section: SECTION,
          name: `pickup ${label} beside a paused queue of 1,000 jobs`,
          value,
          unit: "ms",
          floor: floorValue,
          floorName: "same, no paused queue",
          ratio,
          target: label === "p95" ? `≤ ${PICKUP_RATIO}×` : "",
          pass: label === "p95" ? ratio <= PICKUP_RATIO : null,
        });
      }
      return figures;
    } finally {
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(queues);
