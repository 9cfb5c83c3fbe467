/**
 * The PostgreSQL store (issue 12), on a private server the bench starts (initdb/pg_ctl in a temp
 * directory, tests/helpers/pg_server.ts), each figure against a floor measured on that server in
 * the same run:
 *
 * - claim + complete in process (one `jobFinishAndClaim` per job, the next job armed in it; and as
 *   a worker's passes are, an `attemptArm` before each) against the cheapest write per job
 *   postgres.js can make there: one autocommit `UPDATE … RETURNING` of one row by its key;
 * - the end-to-end drain of 1,000 `true` jobs by idle workers of 1, 2 and 4 slots, against the
 *   `Deno.Command` floor of the SQLite drain (bench/drain.ts);
 * - pickup through LISTEN/NOTIFY: one idle worker, one job enqueued at a time; from the job's
 *   `created_at` to its attempt's `started_at`, both by the database's clock, p50 and p95, against
 *   a bare NOTIFY round trip through postgres.js on the same server.
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  jobLines,
  median,
  printFigure,
  quantile,
  queuectl,
  round,
  sleep,
  standalone,
  startWorkers,
  stopAll,
  tempDir,
} from "./_common.ts";
import type { Background } from "./_common.ts";
import { bareLoop } from "./drain.ts";
import { graphileRate, pgBossRate } from "./_pg_peers.ts";
import { pgServer } from "../tests/helpers/pg_server.ts";
import type { PgServer } from "../tests/helpers/pg_server.ts";
import { psql } from "../tests/helpers/pg.ts";
import { openPostgresStore } from "../lib/store/postgres/open.ts";
import type { Store } from "../lib/store/store.ts";
import type { Decision } from "../lib/job/outcome.ts";
// deno-lint-ignore no-import-prefix
import postgres from "npm:postgres@3.4.9";

const DRAIN_JOBS = 1000;
const SLOTS = [1, 2, 4] as const;
/** Drain targets as for SQLite (bench/drain.ts): our rate / the floor's. */
const DRAIN_TARGET: Record<number, number> = { 1: 0.85, 2: 0.75, 4: 0.70 };
const PICKUP_TARGET_P95_MS = 20;

const COMPLETED: Decision = {
  transition: "complete",
  state: "completed",
  runInMs: null,
  terminal: true,
  outcome: "completed",
  exitCode: 0,
  signal: null,
  error: null,
  refund: false,
};

function claimJobs(options: BenchOptions): number {
  return options.quick ? 500 : 3000;
}

function pickups(options: BenchOptions): number {
  return options.quick ? 30 : 100;
}

async function database(server: PgServer, name: string): Promise<string> {
  await psql(server.url(), `CREATE DATABASE ${name}`);
  return server.url({ database: name });
}

function newJob(i: number) {
  return {
    id: undefined,
    command: `true ${i}`,
    priority: 5,
    maxRetries: 3,
    timeoutMs: null,
    cwd: "/tmp",
    env: {},
    runAt: null,
    delayMs: 0,
  };
}

/**
 * Claim + complete rate in process, jobs/s. `asWorker`: each job armed on its own before the
 * outcome of the one before and the claim of the next are written (two statements per job, as a
 * worker's passes are since the arm left the outcomes' commit); otherwise one statement per job,
 * the next job claimed and armed in the outcome's (`armFirst`).
 */
async function claimComplete(url: string, jobs: number, asWorker = false): Promise<number> {
  const store: Store = await openPostgresStore(url, { role: "worker" });
  try {
    for (let i = 0; i < jobs; i += 1000) {
      await store.jobInsertMany({
        jobs: Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => newJob(i + k)),
        defaultMaxRetries: 3,
      });
    }
    // Each job claimed and armed with the outcome of the one before, in one statement, as a
    // 1-slot worker's pass does.
    const claim = {
      workerId: "bench",
      host: "bench",
      leaseMs: 30_000,
      limit: 1,
      armFirst: asWorker ? 0 : 1,
    };
    await store.workerRegister({
      worker: {
        id: "bench",
        pid: Deno.pid,
        host: "bench",
        hostId: "bench",
        pidStart: null,
        supervisorPid: null,
      },
    });
    const t0 = performance.now();
    let [job] = await store.jobClaim(claim);
    let done = 0;
    while (job !== undefined) {
      if (asWorker) {
        await store.attemptArm([{ jobId: job.id, attempt: job.attempts, workerId: "bench" }]);
      }
      const result = await store.jobFinishAndClaim({
        finish: [{
          jobId: job.id,
          attempt: job.attempts,
          workerId: "bench",
          decision: COMPLETED,
        }],
        claim,
      });
      done++;
      job = result.claimed[0];
    }
    if (done !== jobs) throw new Error(`completed ${done} of ${jobs}`);
    return jobs / ((performance.now() - t0) / 1000);
  } finally {
    await store.close();
  }
}

/** The floor: `jobs` autocommit single-row UPDATE … RETURNING statements, per s. */
async function updateFloor(url: string, jobs: number): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`CREATE TABLE IF NOT EXISTS floor_rows (id int PRIMARY KEY, n int NOT NULL)`;
    await sql`INSERT INTO floor_rows SELECT g, 0 FROM generate_series(1, ${jobs}) g ON CONFLICT DO NOTHING`;
    const t0 = performance.now();
    for (let i = 1; i <= jobs; i++) {
      await sql`UPDATE floor_rows SET n = n + 1 WHERE id = ${i} RETURNING n`;
    }
    return jobs / ((performance.now() - t0) / 1000);
  } finally {
    await sql.end();
  }
}

async function counted(url: string, sql: string): Promise<number> {
  return Number(await psql(url, sql));
}

async function waitWorkersIdle(url: string, n: number, workers: Background): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (await counted(url, "SELECT count(*) FROM queuectl.workers") < n) {
    if (workers.exited || performance.now() > deadline) {
      throw new Error(`workers did not start: ${workers.logTail()}`);
    }
    await sleep(100);
  }
  await sleep(500);
}

/** One drain of DRAIN_JOBS `true` jobs by a worker of `slots` slots; jobs/s by the db's clock. */
async function drainOnce(server: PgServer, dir: string, slots: number, n: number): Promise<number> {
  const url = await database(server, `drain_${slots}_${n}`);
  await queuectl(url, ["config", "set", "max-retries", "3"]);
  const workers = startWorkers(url, 1, dir, slots);
  try {
    await waitWorkersIdle(url, 1, workers);
    await queuectl(url, ["enqueue", "-"], {
      stdin: jobLines(DRAIN_JOBS, () => "true"),
      stdout: "null",
    });
    const deadline = performance.now() + 180_000;
    while (
      await counted(url, "SELECT count(*) FROM queuectl.jobs WHERE state = 'completed'") <
        DRAIN_JOBS
    ) {
      if (workers.exited || performance.now() > deadline) {
        throw new Error(`drain did not finish: ${workers.logTail()}`);
      }
      await sleep(100);
    }
    const [t0, t1] = (await psql(
      url,
      "SELECT min(created_at), max(finished_at) FROM queuectl.jobs",
    )).split("|").map(Number);
    return DRAIN_JOBS / ((t1! - t0!) / 1000);
  } finally {
    await stopAll([workers]);
  }
}

/** Pickup latencies (ms, database clock) of jobs enqueued one at a time to an idle worker. */
async function pickup(server: PgServer, dir: string, n: number): Promise<number[]> {
  const url = await database(server, "pickup");
  await queuectl(url, ["config", "set", "max-retries", "3"]);
  const workers = startWorkers(url, 1, dir, 1);
  const store = await openPostgresStore(url, { role: "cli" });
  try {
    await waitWorkersIdle(url, 1, workers);
    for (let i = 0; i < n; i++) {
      const { jobs: [job] } = await store.jobInsertMany({
        jobs: [newJob(i)],
        defaultMaxRetries: 3,
      });
      const deadline = performance.now() + 10_000;
      while ((await store.jobGet({ id: job!.id }))?.state !== "completed") {
        if (performance.now() > deadline) throw new Error(`job ${job!.id} not picked up`);
        await sleep(5);
      }
      // Idle again before the next one: its wait is the one measured.
      await sleep(100 + Math.random() * 100);
    }
    const rows = await psql(
      url,
      "SELECT a.started_at - j.created_at FROM queuectl.attempts a JOIN queuectl.jobs j ON j.seq = a.job_seq",
    );
    return rows.split("\n").map(Number);
  } finally {
    await store.close();
    await stopAll([workers]);
  }
}

/** The floor of pickup: NOTIFY sent on one connection, heard by a LISTEN on another; ms each. */
async function notifyFloor(url: string, n: number): Promise<number[]> {
  const listener = postgres(url, { max: 1, onnotice: () => {} });
  const sender = postgres(url, { max: 1, onnotice: () => {} });
  try {
    let heard: (() => void) | null = null;
    await listener.listen("bench_floor", () => heard?.());
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const got = new Promise<void>((resolve) => heard = resolve);
      const t0 = performance.now();
      await sender`SELECT pg_notify('bench_floor', 'x')`;
      await got;
      times.push(performance.now() - t0);
      await sleep(20);
    }
    return times;
  } finally {
    await listener.end();
    await sender.end();
  }
}

export const postgresBench: BenchModule = {
  title: "PostgreSQL store",
  method: (options) =>
    `A private PostgreSQL server started by the bench (initdb in a temp directory; fsync off, ` +
    `as for the tests), one database per measurement. Claim + complete: ${claimJobs(options)} ` +
    `jobs claimed, armed and completed one at a time in process (one \`jobFinishAndClaim\` per ` +
    `job: the outcome and the next job's claim, armed in the same statement; and as a 1-slot ` +
    `worker's passes are, an \`attemptArm\` of each job before that statement, which then only ` +
    `reserves), against ` +
    `the same number of autocommit single-row \`UPDATE … RETURNING\` statements through ` +
    `postgres.js (the cheapest write per job), and against pg-boss and graphile-worker from npm ` +
    `on the same server, the same number of no-op jobs, each through its own insert and fetch ` +
    `API in one process with its documented settings (bench/_pg_peers.ts). Drain: ${DRAIN_JOBS} \`true\` jobs by one idle ` +
    `worker of 1, 2 and 4 slots, time from the first created_at to the last finished_at (the ` +
    `database's clock), against the \`Deno.Command\` floor of the SQLite drain at the same ` +
    `concurrency (measured right before and after). Pickup: ${
      pickups(options)
    } jobs enqueued one ` +
    `at a time to an idle worker (LISTEN/NOTIFY); attempt started_at − job created_at, against ` +
    `a bare NOTIFY → LISTEN round trip between two postgres.js connections.`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("pg");
    await using server = await pgServer({});
    const figures: Figure[] = [];
    const add = (f: Figure) => {
      printFigure(f);
      figures.push(f);
    };
    try {
      const jobs = claimJobs(options);
      const floor = await updateFloor(await database(server, "floor"), jobs);
      const ours = await claimComplete(await database(server, "claim"), jobs);
      add({
        section: "PostgreSQL",
        name: "claim + complete, in process, 1 job per pass",
        value: round(ours),
        unit: "jobs/s",
        floor: round(floor),
        floorName: "autocommit 1-row UPDATE … RETURNING",
        ratio: round(ours / floor, 2),
        target: "",
        pass: null,
      });
      const asWorker = await claimComplete(await database(server, "claim_worker"), jobs, true);
      add({
        section: "PostgreSQL",
        name: "claim + complete, in process, as a 1-slot worker (arm, then outcome + claim)",
        value: round(asWorker),
        unit: "jobs/s",
        floor: round(floor),
        floorName: "autocommit 1-row UPDATE … RETURNING",
        ratio: round(asWorker / floor, 2),
        target: "",
        pass: null,
      });
      for (
        const [peer, rate] of [
          ["pg-boss 12.38 (fetch + complete)", pgBossRate],
          ["graphile-worker 0.18 (runOnce, concurrency 1)", graphileRate],
        ] as const
      ) {
        const theirs = await rate(
          await database(server, peer.split(" ")[0]!.replace("-", "_")),
          jobs,
        );
        add({
          section: "PostgreSQL",
          name: `claim + complete against ${peer.split(" ")[0]}`,
          value: round(ours),
          unit: "jobs/s",
          floor: round(theirs),
          floorName: peer,
          ratio: round(ours / theirs, 2),
          target: "≥ 1×",
          pass: ours >= theirs,
        });
      }
      await bareLoop(50, 1);
      for (const slots of SLOTS) {
        const before = (DRAIN_JOBS / 2) / (await bareLoop(DRAIN_JOBS / 2, slots) / 1000);
        const rate = await drainOnce(server, dir.path, slots, 0);
        const after = (DRAIN_JOBS / 2) / (await bareLoop(DRAIN_JOBS / 2, slots) / 1000);
        const ratio = rate / ((before + after) / 2);
        add({
          section: "PostgreSQL",
          name: `${DRAIN_JOBS} true jobs, 1 process × ${slots} slot${slots === 1 ? "" : "s"}`,
          value: round(rate),
          unit: "jobs/s",
          floor: round(median([before, after])),
          floorName: `Deno.Command loop ×${slots}`,
          ratio: round(ratio, 2),
          target: `≥ ${DRAIN_TARGET[slots]}×`,
          pass: ratio >= DRAIN_TARGET[slots]!,
        });
      }
      const picked = await pickup(server, dir.path, pickups(options));
      const bare = await notifyFloor(await database(server, "notify"), pickups(options));
      const p95 = quantile(picked, 0.95);
      add({
        section: "PostgreSQL",
        name: "pickup through NOTIFY, p50",
        value: round(quantile(picked, 0.5), 1),
        unit: "ms",
        floor: round(quantile(bare, 0.5), 2),
        floorName: "bare NOTIFY → LISTEN, p50",
        ratio: null,
        target: "",
        pass: null,
      });
      add({
        section: "PostgreSQL",
        name: "pickup through NOTIFY, p95",
        value: round(p95, 1),
        unit: "ms",
        floor: round(quantile(bare, 0.95), 2),
        floorName: "bare NOTIFY → LISTEN, p95",
        ratio: null,
        target: `≤ ${PICKUP_TARGET_P95_MS} ms`,
        pass: p95 <= PICKUP_TARGET_P95_MS,
      });
      return figures;
    } finally {
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(postgresBench);
