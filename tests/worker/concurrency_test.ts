/**
 * Many workers, many jobs, and the order one worker takes them in: real processes on a real
 * SQLite file, checked with the ledger.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { checkLedger } from "../helpers/ledger.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { type JobJson, ms, Sandbox } from "../helpers/sandbox.ts";

Deno.test("worker start --count 4 runs each of 300 jobs exactly once, never two at once", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const ids = await sb.enqueue(
    Array.from({ length: 300 }, () => ({ command: sb.job("true") })),
  );
  const pool = sb.spawn(["worker", "start", "--count", "4"]);
  await poll(
    () => (sb.counts().completed ?? 0) === 300,
    120_000,
    "300 completed jobs",
    { describe: () => JSON.stringify(sb.counts()) },
  );
  // Every worker took part: the pool is really concurrent.
  const workers = sb.query("SELECT count(DISTINCT worker_id) AS n FROM attempts")[0]!;
  assert.ok(Number(workers.n) >= 2, `only ${workers.n} worker(s) ran jobs`);
  pool.kill("SIGTERM");
  const exit = await pool.wait(PROMPT_MS, "the pool to stop");
  assert.equal(exit.code, 0, exit.stderr);
  assert.doesNotMatch(exit.stderr, /database is locked|busy/i);

  const ledger = sb.ledger();
  const report = checkLedger(ledger, ids);
  assert.deepEqual(report.lost, [], "lost");
  assert.deepEqual(report.duplicated, [], "duplicated");
  assert.deepEqual(report.unexpected, [], "unexpected");
  assert.deepEqual(report.overlap, [], "overlap");
  for (const id of ids) assert.equal(ledger.starts(id), 1, `starts of ${id}`);

  const jobs = await sb.json<JobJson[]>(["list", "--limit", "1000"]);
  assert.equal(jobs.length, 300);
  for (const job of jobs) {
    assert.equal(job.state, "completed", `job ${job.id}`);
    assert.equal(job.attempts, 1, `attempts of job ${job.id}`);
  }
  const attempts = sb.query("SELECT count(*) AS n FROM attempts WHERE outcome = 'completed'")[0]!;
  assert.equal(Number(attempts.n), 300);
  await sb.assertNoLeftovers();
});

/** Deterministic shuffle (mulberry32), so a failure can be replayed from its seed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

Deno.test("worker run --once takes jobs by priority (highest first), then enqueue order", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const seed = Math.floor(Math.random() * 2 ** 31);
  const priorities = shuffled(
    Array.from({ length: 30 }, (_, i) => (i % 10) + 1),
    seed,
  );
  const ids = await sb.enqueue(
    priorities.map((priority) => ({ command: sb.job("true"), priority })),
  );
  // One slot: the order of starts is the order of claims.
  const worker = await sb.run(["worker", "run", "--once", "--concurrency", "1"]);
  assert.equal(worker.code, 0, worker.stderr);

  const order = sb.ledger().order.map((run) => run.id);
  // Enqueue order is the order of `ids`; a stable sort by priority gives the expected run order.
  const expected = ids
    .map((id, index) => ({ id, index, priority: priorities[index]! }))
    .sort((a, b) => b.priority - a.priority || a.index - b.index)
    .map((j) => j.id);
  assert.deepEqual(order, expected, `run order (seed ${seed})`);
  await sb.assertNoLeftovers();
});

Deno.test("worker run does not start a --delay job before its run_at, and starts it promptly", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const worker = sb.spawn(["worker", "run"]);
  await worker.waitForStderr(/started \(pid/, PROMPT_MS, "the worker to start");
  const [id] = await sb.enqueue([{ command: sb.job("true"), delay: "2s" }]);
  const start = await sb.waitRun(id!, 1, 10_000);
  const runAt = ms((await sb.show(id!)).run_at);
  const startedMs = start.startUs / 1000;
  assert.ok(startedMs >= runAt, `started ${runAt - startedMs} ms before run_at`);
  assert.ok(startedMs - runAt <= 1500, `started ${startedMs - runAt} ms after run_at`);
  await sb.waitForState(id!, "completed");
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run --once takes jobs of equal priority by run time before enqueue order", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  // Enqueued first but due later, then due at once, then a higher priority due last.
  const [later, now, urgent] = await sb.enqueue([
    { command: sb.job("true"), delay: "0.4s" },
    { command: sb.job("true") },
    { command: sb.job("true"), delay: "0.6s", priority: 9 },
  ]);
  const due = ms((await sb.show(urgent!)).run_at);
  await poll(() => Date.now() > due, PROMPT_MS, "every job to be due");
  const worker = await sb.run(["worker", "run", "--once", "--concurrency", "1"]);
  assert.equal(worker.code, 0, worker.stderr);
  const order = sb.ledger().order.map((run) => run.id);
  assert.deepEqual(order, [urgent, now, later]);
  await sb.assertNoLeftovers();
});

Deno.test("worker run picks up a new job promptly when idle, and does not write while idle", async () => {
  await using sb = await Sandbox.create();
  // A long lease: heartbeats (lease / 6) fall outside the idle window below.
  await sb.fastConfig({ "lease-timeout": "60s" });
  const worker = sb.spawn(["worker", "run"]);
  await worker.waitForStderr(/ started \(pid/, PROMPT_MS, "the worker to start");

  // Idle cost: over an idle second, no write transaction (data_version counts other
  // connections' commits) and little CPU.
  const watch = new DatabaseSync(sb.db, { readOnly: true });
  try {
    const version = () => Number(watch.prepare("PRAGMA data_version").get()!.data_version);
    const cpu = () => {
      const fields = Deno.readTextFileSync(`/proc/${worker.pid}/stat`).split(") ")[1]!.split(" ");
      return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (1/100 s)
    };
    const [v0, c0, t0] = [version(), cpu(), performance.now()];
    await poll(() => performance.now() - t0 >= 1000, PROMPT_MS, "an idle second");
    assert.equal(version(), v0, "the idle worker wrote to the database");
    assert.ok(cpu() - c0 <= 10, `the idle worker used ${(cpu() - c0) * 10} ms of CPU in 1 s`);
  } finally {
    watch.close();
  }

  // Pickup latency: enqueue (committed at created_at) to the job's first line.
  const latencies: number[] = [];
  for (let i = 0; i < 15; i++) {
    const [id] = await sb.enqueue([{ command: sb.job("true") }]);
    const start = await sb.waitRun(id!, 1);
    const created = ms((await sb.json<JobJson>(["show", id!])).created_at);
    latencies.push(start.startUs / 1000 - created);
  }
  latencies.sort((a, b) => a - b);
  const p95 = latencies[Math.ceil(latencies.length * 0.95) - 1]!;
  // The target is 50 ms; the bound leaves room for a loaded 2-core machine running tests in
  // parallel, and still fails a worker that only looks once a second.
  assert.ok(p95 < 250, `pickup p95 ${p95.toFixed(1)} ms: ${latencies.map((l) => l.toFixed(0))}`);
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});
