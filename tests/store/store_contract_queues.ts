/**
 * The store contract for named queues (issue 11): a job's queue, `queueList`, `queuePause` /
 * `queueResume`, `queueSetConcurrency`, and how claims (`jobClaim`, `jobFinishAndClaim`) and
 * `jobNextDue` honour them. Run by storeContract on every store.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Job } from "../../lib/job/job.ts";
import { JOB_STATES } from "../../lib/job/state.ts";
import { ConflictError } from "../../lib/errors.ts";
import { decide } from "../../lib/job/outcome.ts";
import type { Store } from "../../lib/store/store.ts";
import { BACKOFF, PLAIN_JOB, TEST_HOST_ID } from "../helpers/factory.ts";
import { poll } from "../helpers/poll.ts";
import { assertQueueCounts, type ContractTest } from "./store_contract.ts";

async function enqueue(
  store: Store,
  jobs: { id: string; queue?: string; priority?: number }[],
): Promise<Job[]> {
  return (await store.jobInsertMany({
    jobs: jobs.map((j) => ({
      ...PLAIN_JOB,
      id: j.id,
      priority: j.priority ?? 5,
      ...(j.queue !== undefined ? { queue: j.queue } : {}),
    })),
    defaultMaxRetries: 3,
  })).jobs;
}

function claim(
  store: Store,
  limit: number,
  options: { worker?: string; queues?: string[] } = {},
): Promise<Job[]> {
  return store.jobClaim({
    workerId: options.worker ?? "w",
    host: TEST_HOST_ID,
    leaseMs: 30_000,
    limit,
    ...(options.queues ? { queues: options.queues } : {}),
  });
}

function complete(store: Store, job: Job): Promise<boolean> {
  return store.jobFinish({
    jobId: job.id,
    attempt: job.attempts,
    workerId: job.workerId!,
    decision: decide(job, { kind: "exited", code: 0 }, BACKOFF),
  });
}

function ids(jobs: readonly Job[]): string[] {
  return jobs.map((j) => j.id);
}

async function running(store: Store, queue: string): Promise<number> {
  const { queues } = await store.queueList();
  return queues.find((q) => q.name === queue)?.counts.processing ?? 0;
}

export function queuesContract(test: ContractTest): void {
  test("jobInsertMany() keeps each job's queue (default: default) and queueList() counts them", async ({ store }) => {
    const jobs = await enqueue(store, [
      { id: "a" },
      { id: "b", queue: "mail" },
      { id: "c", queue: "mail" },
    ]);
    assert.deepEqual(jobs.map((j) => j.queue), ["default", "mail", "mail"]);
    assert.equal((await store.jobGet({ id: "b" }))!.queue, "mail");
    await claim(store, 1, { queues: ["mail"] });
    const list = await store.queueList();
    assert.equal(list.pausedAll, false);
    assert.deepEqual(
      list.queues.map((q) => [q.name, q.paused, q.concurrency, q.counts.pending, q.counts.total]),
      [["default", false, 0, 1, 1], ["mail", false, 0, 1, 2]],
    );
    assert.equal(list.queues[1]!.counts.processing, 1);
  });

  test("jobClaim() takes only the queues asked for, best first across them", async ({ store }) => {
    await enqueue(store, [
      { id: "d1", priority: 9 },
      { id: "m1", queue: "mail", priority: 3 },
      { id: "r1", queue: "report", priority: 7 },
      { id: "m2", queue: "mail", priority: 8 },
    ]);
    assert.deepEqual(ids(await claim(store, 10, { queues: ["mail", "report"] })), [
      "m2",
      "r1",
      "m1",
    ]);
    assert.deepEqual(ids(await claim(store, 10, { queues: ["nothing"] })), []);
    assert.deepEqual(ids(await claim(store, 10)), ["d1"]);
  });

  test("queuePause() keeps a queue's jobs from every claim, and queueResume() gives them back", async (f) => {
    const { store } = f;
    await enqueue(store, [
      ...Array.from({ length: 20 }, (_, i) => ({ id: `h${i}`, queue: "held", priority: 10 })),
      { id: "low", priority: 1 },
    ]);
    assert.deepEqual(await store.queuePause({ names: ["held"] }), ["held"]);
    // The paused queue's jobs are due and better, yet the claim takes the other queue's job.
    assert.deepEqual(ids(await claim(store, 5)), ["low"]);
    assert.deepEqual(await store.jobNextDue(), { dueNow: false, nextDueInMs: null });
    // Stored in the database: another store (another process) sees it.
    const other = await f.openAnother();
    assert.deepEqual(ids(await claim(other, 5, { worker: "w2" })), []);
    assert.equal((await store.queueList()).queues.find((q) => q.name === "held")!.paused, true);
    assert.deepEqual(await store.queueResume({ names: ["held"] }), ["held"]);
    assert.equal((await store.jobNextDue()).dueNow, true);
    assert.equal((await claim(other, 5, { worker: "w2" })).length, 5);
  });

  test("queuePause() of a queue with no job yet holds the jobs enqueued into it later", async ({ store }) => {
    assert.deepEqual(await store.queuePause({ names: ["later", "later"] }), ["later"]);
    await enqueue(store, [{ id: "x", queue: "later" }]);
    assert.deepEqual(ids(await claim(store, 1)), []);
  });

  test('queuePause("all") pauses every queue and those created later, until queueResume("all")', async ({ store }) => {
    await enqueue(store, [{ id: "a" }, { id: "b", queue: "mail" }]);
    assert.deepEqual(await store.queuePause({ names: "all" }), ["default", "mail"]);
    await enqueue(store, [{ id: "c", queue: "fresh" }]);
    assert.deepEqual(ids(await claim(store, 10)), []);
    const list = await store.queueList();
    assert.equal(list.pausedAll, true);
    assert.ok(list.queues.every((q) => q.paused));
    // One queue resumed by name runs; the others stay paused.
    await store.queueResume({ names: ["mail"] });
    assert.deepEqual(ids(await claim(store, 10)), ["b"]);
    assert.deepEqual(await store.queueResume({ names: "all" }), ["default", "fresh", "mail"]);
    assert.equal((await store.queueList()).pausedAll, false);
    await enqueue(store, [{ id: "d", queue: "newer" }]);
    assert.deepEqual(ids(await claim(store, 10)).sort(), ["a", "c", "d"]);
  });

  test("queueSetConcurrency() caps a queue's jobs in processing across claims, reserved ones too", async (f) => {
    const { store } = f;
    await enqueue(store, [
      ...Array.from({ length: 5 }, (_, i) => ({ id: `l${i}`, queue: "lim" })),
      { id: "free", priority: 1 },
    ]);
    const record = await store.queueSetConcurrency({ name: "lim", concurrency: 2 });
    assert.equal(record.concurrency, 2);
    assert.equal(record.counts.pending, 5);
    // Claimed (reserved, not started) count against the limit.
    const first = await claim(store, 10);
    assert.deepEqual(ids(first), ["l0", "l1", "free"]);
    assert.deepEqual(ids(await claim(await f.openAnother(), 10, { worker: "w2" })), []);
    assert.equal((await store.jobNextDue()).dueNow, false);
    assert.equal(await running(store, "lim"), 2);
    // One ends: the finish that claims its successor takes one more, no more.
    const result = await store.jobFinishAndClaim({
      finish: [{
        jobId: "l0",
        attempt: 1,
        workerId: "w",
        decision: decide(first[0]!, { kind: "exited", code: 0 }, BACKOFF),
      }],
      claim: { workerId: "w", host: TEST_HOST_ID, leaseMs: 30_000, limit: 5 },
    });
    assert.deepEqual(result.applied, [true]);
    assert.deepEqual(ids(result.claimed), ["l2"]);
    assert.equal(await running(store, "lim"), 2);
    // 0 lifts the limit.
    await store.queueSetConcurrency({ name: "lim", concurrency: 0 });
    assert.deepEqual(ids(await claim(store, 10)), ["l3", "l4"]);
    await assert.rejects(() => store.queueSetConcurrency({ name: "lim", concurrency: -1 }));
  });

  test("concurrent claims from several stores never exceed a queue's limit", async (f) => {
    const { store } = f;
    // Several priorities: each claim has candidates of its own to take, so only the limit's
    // serialisation can keep two claims from taking two jobs each.
    await enqueue(
      store,
      Array.from({ length: 40 }, (_, i) => ({ id: `j${i}`, queue: "two", priority: 1 + i % 5 })),
    );
    await store.queueSetConcurrency({ name: "two", concurrency: 2 });
    const stores = [store, ...await Promise.all([1, 2, 3, 4, 5].map(() => f.openAnother()))];
    let done = 0;
    for (let round = 0; round < 8; round++) {
      const claimed = (await Promise.all(
        stores.map((s, i) => claim(s, 3, { worker: `w${i}` })),
      )).flat();
      assert.ok(claimed.length <= 2, `round ${round}: ${claimed.length} claimed at once`);
      assert.ok(await running(store, "two") <= 2);
      for (const job of claimed) {
        assert.ok(await complete(store, job));
        done++;
      }
    }
    assert.ok(done >= 8, `only ${done} jobs ran in 8 rounds`);
  });

  test("queueList() counts stay exact while several stores enqueue, run, cancel and delete jobs in several queues", async (f) => {
    const queues = ["default", "mail", "report", "video"];
    const stores = [f.store, ...await Promise.all([1, 2, 3].map(() => f.openAnother()))];
    // Every store enqueues batches into every queue at once (maxRetries 0 or 1: failures end
    // failed, with a retry due later, or dead).
    await Promise.all(stores.map((s, i) =>
      s.jobInsertMany({
        jobs: Array.from({ length: 40 }, (_, k) => ({
          ...PLAIN_JOB,
          id: `s${i}-${k}`,
          queue: queues[k % queues.length]!,
          maxRetries: k % 2,
        })),
        defaultMaxRetries: 3,
      })
    ));
    await assertQueueCounts(f, "after the enqueues:");
    // Each store a worker: finish what it holds (every third a failure) and claim more in one
    // step, until nothing is due.
    async function work(s: Store, i: number): Promise<void> {
      const worker = `w${i}`;
      let n = i;
      let held = await claim(s, 3, { worker });
      while (held.length > 0) {
        const finish = held.map((job) => ({
          jobId: job.id,
          attempt: job.attempts,
          workerId: worker,
          decision: decide(job, { kind: "exited", code: n++ % 3 === 0 ? 1 : 0 }, BACKOFF),
        }));
        held = (await s.jobFinishAndClaim({
          finish,
          claim: { workerId: worker, host: TEST_HOST_ID, leaseMs: 30_000, limit: 3 },
        })).claimed;
      }
    }
    // Meanwhile other hands cancel jobs of every queue and delete them. Either may find the job
    // moved on (finished before the cancel, or still running when cancelled: not deletable).
    let deleted = 0;
    async function unlessMoved(fn: () => Promise<unknown>): Promise<void> {
      try {
        await fn();
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    }
    async function meddle(): Promise<void> {
      for (let k = 0; k < 12; k++) {
        for (const id of [`s0-${k * 3}`, `s2-${k * 3}`, `s1-${k * 3}`]) {
          await unlessMoved(() => stores[3]!.jobCancel({ ids: [id], reason: "race" }));
          await unlessMoved(async () => {
            deleted += (await stores[2]!.jobDelete({ ids: [id] })).length;
          });
        }
      }
    }
    await Promise.all([...stores.map(work), meddle()]);
    assert.ok(deleted > 0, "some jobs were deleted");
    await assertQueueCounts(f, "after the race:");
    // Dead jobs back to pending from two stores at once, then the counts folded (PostgreSQL).
    const { jobs: dead } = await f.store.jobList({ states: ["dead"], limit: 1000 });
    assert.ok(dead.length > 0, "some jobs ended dead");
    await Promise.all([
      stores[1]!.jobRetry({ ids: dead.filter((_, k) => k % 2 === 0).map((j) => j.id) }),
      stores[2]!.jobRetry({ ids: dead.filter((_, k) => k % 2 === 1).map((j) => j.id) }),
    ]);
    await assertQueueCounts(f, "after the retries:");
    await Promise.all(stores.map((s) => s.maintain()));
    await assertQueueCounts(f, "after maintain():");
    const rows = await f.raw.rowCounts();
    const counts = await f.store.jobCountByState();
    for (const state of JOB_STATES) assert.equal(counts[state], rows[state] ?? 0, state);
  });

  test("jobNextDue() counts only the queues of the scope that are not paused or full", async ({ store }) => {
    await enqueue(store, [{ id: "a", queue: "mail" }]);
    assert.equal((await store.jobNextDue({ queues: ["other"] })).dueNow, false);
    assert.equal((await store.jobNextDue({ queues: ["mail"] })).dueNow, true);
    await store.jobInsertMany({
      jobs: [{ ...PLAIN_JOB, id: "later", queue: "other", delayMs: 60_000 }],
      defaultMaxRetries: 3,
    });
    assert.deepEqual(await store.jobNextDue({ queues: ["other"] }), {
      dueNow: false,
      nextDueInMs: 60_000,
    });
    await store.queueSetConcurrency({ name: "mail", concurrency: 1 });
    await claim(store, 1);
    assert.equal((await store.jobNextDue({ queues: ["mail"] })).dueNow, false);
  });

  test("jobSearch() keeps the jobs of the queues asked for", async ({ store }) => {
    await enqueue(store, [{ id: "a" }, { id: "b", queue: "mail" }, { id: "c", queue: "x" }]);
    const found = await store.jobSearch({ queues: ["mail", "x"], limit: 10, scanLimit: 100 });
    assert.deepEqual(ids(found.jobs), ["c", "b"]);
    const count = await store.jobSearchCount({ queues: ["default"], scanLimit: 100 });
    assert.equal(count.count, 1);
  });

  test("queueResume() wakes a store waiting for work", async (f) => {
    await enqueue(f.store, [{ id: "a", queue: "held" }]);
    await f.store.queuePause({ names: ["held"] });
    const waiter = await f.openAnother({ slowPoll: true });
    const mark = waiter.changeMark();
    const woke = waiter.waitForChange({ since: mark, timeoutMs: 30_000, interest: "work" });
    const started = performance.now();
    await f.store.queueResume({ names: ["held"] });
    assert.equal(await woke, true);
    assert.ok(performance.now() - started < 3000, "the resume did not wake the waiter");
    await poll(async () => (await waiter.jobNextDue()).dueNow, 5000, "the job due for the waiter");
  }, { needs: "changeNotification" });
}
