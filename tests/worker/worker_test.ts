/**
 * The worker's services in process, on a fake clock, against rows made by the test factory: one
 * pass of the loop (`runOnce`), one recovery sweep, one heartbeat. Jobs are real `sh` processes
 * (they cost milliseconds); time is the test's, so nothing here waits for a lease or a sweep.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { FakeClock } from "../../lib/clock.ts";
import type { SqliteStore } from "../../lib/store/sqlite/store.ts";
import { thisHost } from "../../lib/worker/host.ts";
import { createSpawner } from "../../lib/worker/spawn.ts";
import { Worker } from "../../lib/worker/worker.ts";
import type { WorkerOptions } from "../../lib/worker/worker.ts";
import { insertJob, makeJob, makeWorker, TEST_LEASE_MS, TEST_WORKER } from "../helpers/factory.ts";
import { storeFixture } from "../helpers/temp.ts";
import { poll } from "../helpers/poll.ts";

interface Fixture extends AsyncDisposable {
  store: SqliteStore;
  clock: FakeClock;
  worker: Worker;
  lines: string[];
}

async function workerFixture(options: Partial<WorkerOptions> = {}): Promise<Fixture> {
  const f = await storeFixture();
  const lines: string[] = [];
  const worker = new Worker({
    store: f.store,
    clock: f.clock,
    spawner: createSpawner(),
    log: (line) => lines.push(line),
    host: thisHost(),
    baseEnv: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    ...options,
  });
  return {
    store: f.store,
    clock: f.clock,
    worker,
    lines,
    [Symbol.asyncDispose]: () => f[Symbol.asyncDispose](),
  };
}

/** Passes until the worker has written an outcome for every attempt it started. */
async function drain(w: Worker, passes = 100): Promise<void> {
  for (let i = 0; i < passes; i++) {
    const pass = await w.runOnce();
    if (pass.finished === 0 && pass.started === 0 && pass.nextDueInMs === null) {
      // Nothing ended yet: wait for the running attempt's process, not for time.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (pass.finished === 0 && pass.started === 0 && pass.nextDueInMs !== null) return;
  }
}

Deno.test("runOnce() claims a due job, starts it, and writes its outcome in a later pass", async () => {
  await using f = await workerFixture();
  await insertJob(f.store, f.clock, { id: "a", command: "printf hello" });
  const first = await f.worker.runOnce();
  assert.deepEqual(first, { finished: 0, started: 1, nextDueInMs: null });
  assert.equal((await f.store.jobGet({ id: "a" }))?.state, "processing");
  await poll(async () => (await f.worker.runOnce()).finished === 1, 10_000, "the outcome");
  const job = (await f.store.jobGet({ id: "a" }))!;
  assert.equal(job.state, "completed");
  const output = await f.store.attemptOutput({ jobId: "a", attempt: 1 });
  assert.equal(new TextDecoder().decode(output?.stdout.head), "hello");
  assert.ok(
    f.lines.some((l) => /job a attempt 1: completed \(exit 0\)/.test(l)),
    f.lines.join("\n"),
  );
});

Deno.test("runOnce() on a queue with nothing due says when the next job is due", async () => {
  await using f = await workerFixture();
  assert.deepEqual(await f.worker.runOnce(), { finished: 0, started: 0, nextDueInMs: null });
  await insertJob(f.store, f.clock, { id: "later", runAt: f.clock.now() + 90_000 });
  assert.deepEqual(await f.worker.runOnce(), { finished: 0, started: 0, nextDueInMs: 90_000 });
  f.clock.advance(90_000);
  assert.equal((await f.worker.runOnce()).started, 1);
  await drain(f.worker);
  assert.equal((await f.store.jobGet({ id: "later" }))?.state, "completed");
});

Deno.test("runOnce() runs up to its concurrency at once and claims them in one pass", async () => {
  await using f = await workerFixture({ concurrency: 3 });
  for (const id of ["a", "b", "c", "d"]) await insertJob(f.store, f.clock, { id, command: "true" });
  const first = await f.worker.runOnce();
  assert.equal(first.started, 3);
  const processing = (await f.store.jobListProcessing()).map((p) => p.job.id).sort();
  assert.deepEqual(processing, ["a", "b", "c"]);
  await drain(f.worker);
  const { jobs } = await f.store.jobList({ states: ["completed"], limit: 10 });
  assert.deepEqual(jobs.map((j) => j.id), ["a", "b", "c", "d"]);
});

Deno.test("runOnce() records a failure and schedules its retry by the store's clock", async () => {
  await using f = await workerFixture();
  await insertJob(f.store, f.clock, { id: "f", command: "exit 3", maxRetries: 1 });
  await f.worker.runOnce();
  await poll(async () => (await f.worker.runOnce()).finished === 1, 10_000, "the outcome");
  const job = (await f.store.jobGet({ id: "f" }))!;
  assert.equal(job.state, "failed");
  assert.equal(job.lastExitCode, 3);
  // Retry 1 waits backoff-base^1 = 2 s, from the store's now.
  assert.equal(job.runAt, f.clock.now() + 2000);
});

Deno.test("sweep() recovers at once the job of a worker whose process is gone", async () => {
  await using f = await workerFixture();
  await makeWorker(f.store, f.clock, { id: TEST_WORKER, alive: false });
  await makeJob(f.store, f.clock, "processing", { id: "orphan", maxRetries: 2 });
  await f.worker.sweep();
  const job = (await f.store.jobGet({ id: "orphan" }))!;
  assert.equal(job.state, "failed");
  assert.match(job.lastError ?? "", /^worker lost \(pid \d+ exited\)$/);
  assert.ok(f.lines.some((l) => /job orphan attempt 1: recovered/.test(l)), f.lines.join("\n"));
});

Deno.test("sweep() undoes the claim of a dead worker's job that it never started", async () => {
  await using f = await workerFixture();
  await makeWorker(f.store, f.clock, { id: TEST_WORKER, alive: false });
  const failedOnce = await makeJob(f.store, f.clock, "failed", { id: "again", maxRetries: 2 });
  const reserved = await makeJob(f.store, f.clock, "reserved", { id: "fresh" });
  assert.equal(reserved.attempts, 1);
  f.clock.set(failedOnce.runAt);
  // Take "again" too (attempt 2, reserved) by the same dead worker.
  const [again] = await f.store.jobClaim({
    workerId: TEST_WORKER,
    host: "test-host",
    leaseMs: TEST_LEASE_MS,
    limit: 1,
  });
  assert.equal(again?.id, "again");
  await f.worker.sweep();
  // Nothing ran: each is as it was before the claim, no attempt charged or recorded.
  const fresh = (await f.store.jobGet({ id: "fresh" }))!;
  assert.deepEqual([fresh.state, fresh.attempts, fresh.budgetUsed], ["pending", 0, 0]);
  assert.deepEqual(await f.store.attemptList({ jobId: "fresh" }), []);
  const back = (await f.store.jobGet({ id: "again" }))!;
  assert.deepEqual([back.state, back.attempts, back.budgetUsed], ["failed", 1, 1]);
  assert.deepEqual((await f.store.attemptList({ jobId: "again" })).map((a) => a.outcome), [
    "failed",
  ]);
  assert.ok(f.lines.some((l) => /job fresh attempt 1: claim undone/.test(l)), f.lines.join("\n"));
  // And they run again at once.
  assert.equal((await f.worker.runOnce()).started, 1);
});

Deno.test("sweep() leaves a live worker's job alone until its lease expires", async () => {
  await using f = await workerFixture();
  await makeWorker(f.store, f.clock, { id: TEST_WORKER, alive: true });
  await makeJob(f.store, f.clock, "processing", { id: "held" });
  await f.worker.sweep();
  assert.equal((await f.store.jobGet({ id: "held" }))?.state, "processing");
  f.clock.advance(TEST_LEASE_MS - 1);
  await f.worker.sweep();
  assert.equal((await f.store.jobGet({ id: "held" }))?.state, "processing");
  f.clock.advance(1);
  await f.worker.sweep();
  const job = (await f.store.jobGet({ id: "held" }))!;
  assert.equal(job.state, "failed");
  assert.equal(job.lastError, "lease expired");
});

Deno.test("heartbeat() renews the leases of running attempts and stores the totals", async () => {
  await using f = await workerFixture();
  await f.store.configSet({ key: "lease-timeout", value: "10000" });
  await f.worker.register();
  await f.worker.sweep(); // reads the config
  await insertJob(f.store, f.clock, { id: "done", command: "true" });
  await f.worker.runOnce();
  await poll(async () => (await f.worker.runOnce()).finished === 1, 10_000, "the outcome");
  await insertJob(f.store, f.clock, { id: "long", command: "sleep 30" });
  await f.worker.runOnce();
  const claimed = (await f.store.jobGet({ id: "long" }))!;
  f.clock.advance(4000);
  await f.worker.heartbeat();
  const renewed = (await f.store.jobGet({ id: "long" }))!;
  assert.equal(renewed.leaseExpiresAt, claimed.leaseExpiresAt! + 4000);
  const me = (await f.store.workerList()).find((w) => w.id === f.worker.id)!;
  assert.deepEqual([me.jobsDone, me.jobsFailed, me.heartbeatAgeMs], [1, 0, 0]);
  assert.deepEqual(me.runningJobs, ["long"]);
  f.worker.stop("force", "test over");
  await poll(async () => (await f.worker.runOnce()).finished === 1, 10_000, "the interrupt");
  assert.equal((await f.store.jobGet({ id: "long" }))?.state, "pending");
});

Deno.test("a running attempt is killed once its lease may have run out without a renewal", async () => {
  await using f = await workerFixture();
  await f.store.configSet({ key: "lease-timeout", value: "10000" });
  await f.worker.sweep();
  await insertJob(f.store, f.clock, { id: "stuck", command: "sleep 30" });
  await f.worker.runOnce();
  // No heartbeat got through for 9 s of the 10 s lease: the worker must not keep the job.
  f.clock.advance(9000);
  f.worker.fence();
  await poll(async () => (await f.worker.runOnce()).finished === 1, 10_000, "the kill");
  const job = (await f.store.jobGet({ id: "stuck" }))!;
  assert.equal(job.state, "failed");
  assert.match(job.lastError ?? "", /^lease lost: could not renew it in time$/);
  assert.ok(f.lines.some((l) => /job stuck attempt 1: lease lost/.test(l)), f.lines.join("\n"));
});
