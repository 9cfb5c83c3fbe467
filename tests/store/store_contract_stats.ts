/**
 * The store contract, part two: the per-minute metric figures (what each finished attempt adds,
 * what `statsFigures` reads back over a window, that `statsCompact` folds old minutes into hours
 * without changing a figure) and retention (`jobPrune` removes finished jobs with everything they
 * own and keeps the maintained counts right). Registered by `storeContract` (store_contract.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { FakeClock } from "../../lib/clock.ts";
import type { Job } from "../../lib/job/job.ts";
import { decide } from "../../lib/job/outcome.ts";
import type { RunResult } from "../../lib/job/outcome.ts";
import { bucketOf, summarizeStats } from "../../lib/metrics.ts";
import type { StatsSummary } from "../../lib/metrics.ts";
import type { OutputCapture, Store } from "../../lib/store/store.ts";
import {
  BACKOFF,
  finishAttempt,
  insertJob,
  makeJob,
  TEST_LEASE_MS,
  TEST_WORKER,
} from "../helpers/factory.ts";
import type { JobOptions } from "../helpers/factory.ts";
import { Prng } from "../helpers/prng.ts";
import { T0 } from "../helpers/temp.ts";
import type { ContractTest } from "./store_contract.ts";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const OK: RunResult = { kind: "exited", code: 0 };

/** A summary as plain data (maps as sorted entries), for deepEqual. */
function plain(summary: StatsSummary) {
  const sorted = <V>(m: Map<number, V>) => [...m].sort(([a], [b]) => a - b);
  const { now: _now, since: _since, ...s } = summary;
  return {
    ...s,
    runTime: sorted(s.runTime),
    queueWait: sorted(s.queueWait),
    perMinute: sorted(s.perMinute),
  };
}

/** The summary of the window from `since` (a time) to now. */
async function summaryFrom(
  store: Store,
  clock: FakeClock,
  since: number,
  topFailing = 5,
): Promise<StatsSummary> {
  return summarizeStats(await store.statsFigures({ windowMs: clock.now() - since, topFailing }));
}

function summary(store: Store, clock: FakeClock, since = T0 - 1): Promise<StatsSummary> {
  return summaryFrom(store, clock, since);
}

/** Compacts as of now with absolute cut-offs (the store takes ages). */
function compact(
  store: Store,
  clock: FakeClock,
  cuts: { statsBefore: number; compactBefore: number },
): Promise<void> {
  return store.statsCompact({
    retainMs: clock.now() - cuts.statsBefore,
    minutesKeptMs: clock.now() - cuts.compactBefore,
  });
}

function histogramTotal(h: Map<number, number>): number {
  return [...h.values()].reduce((a, b) => a + b, 0);
}

const NO_OUTCOMES = {
  completed: 0,
  failed: 0,
  timeout: 0,
  spawn_failed: 0,
  lost: 0,
  interrupted: 0,
  cancelled: 0,
};

/**
 * Runs one attempt of a due (pending or failed) `job`: claims it `waitMs` after it became due,
 * lets it run `runMs`, and finishes it with `result`. Returns the job as stored after.
 */
async function runAttempt(
  store: Store,
  clock: FakeClock,
  job: Job,
  timing: { waitMs: number; runMs: number },
  result: RunResult,
): Promise<Job> {
  const startAt = job.runAt + timing.waitMs;
  assert.ok(startAt >= clock.now(), "runAttempt() moves the clock forward only");
  clock.set(startAt);
  const claimed = await store.jobClaim({
    workerId: TEST_WORKER,
    host: "test-host",
    leaseMs: TEST_LEASE_MS,
    limit: 1,
  }).then(([j]) => j);
  assert.equal(claimed?.id, job.id, "the job to run is the one claimed");
  clock.advance(timing.runMs);
  return await finishAttempt(store, clock, claimed!, result);
}

/** Enqueues a job due now and runs its first attempt. */
async function oneAttempt(
  store: Store,
  clock: FakeClock,
  timing: { waitMs: number; runMs: number },
  result: RunResult = OK,
  options: JobOptions = {},
): Promise<Job> {
  const job = await insertJob(store, clock, options);
  return await runAttempt(store, clock, job, timing, result);
}

function capture(text: string): OutputCapture {
  const bytes = new TextEncoder().encode(text);
  return { head: bytes, tail: new Uint8Array(), total: bytes.length };
}

/** Completes a processing job with some output, as a worker does. */
async function completeWithOutput(
  store: Store,
  clock: FakeClock,
  id: string,
  claimed?: Job,
): Promise<Job> {
  const job = claimed ?? await makeJob(store, clock, "processing", { id });
  await store.jobFinish({
    jobId: id,
    attempt: 1,
    workerId: TEST_WORKER,
    decision: decide(job, OK, BACKOFF),
    output: { stdout: capture(`out of ${id}\n`), stderr: capture(`err of ${id}\n`) },
  });
  return (await store.jobGet({ id }))!;
}

/** Registers the figures and retention cases through `test` (one backend's). */
export function statsContract(test: ContractTest): void {
  test("jobFinish() counts a job retried twice as one job retried and two retry attempts", async (f) => {
    const { store, clock } = f;
    const failed: RunResult = { kind: "exited", code: 1 };
    let job = await oneAttempt(store, clock, { waitMs: 0, runMs: 10 }, failed, { maxRetries: 3 });
    job = await runAttempt(store, clock, job, { waitMs: 0, runMs: 10 }, failed);
    job = await runAttempt(store, clock, job, { waitMs: 0, runMs: 10 }, OK);
    assert.equal(job.state, "completed");
    const s = await summary(store, clock);
    assert.equal(s.retryAttempts, 2);
    assert.equal(s.retriedJobs, 1);
  });

  test("jobFinish() folds one finished attempt into the figures of its minute", async (f) => {
    const { store, clock } = f;
    assert.deepEqual(plain(await summary(store, clock)), {
      outcomes: NO_OUTCOMES,
      runTime: [],
      queueWait: [],
      maxRunMs: null,
      retryAttempts: 0,
      retriedJobs: 0,
      perMinute: [],
      topFailing: [],
      oldestDueAt: null,
      oldestDueJob: null,
    });

    // Due at T0, started 3 s later, ran 1.5 s, exited 0.
    await oneAttempt(store, clock, { waitMs: 3000, runMs: 1500 }, OK, { id: "a" });
    const minute = Math.floor(clock.now() / MINUTE);
    assert.deepEqual(plain(await summary(store, clock)), {
      outcomes: { ...NO_OUTCOMES, completed: 1 },
      runTime: [[bucketOf(1500), 1]],
      queueWait: [[bucketOf(3000), 1]],
      maxRunMs: 1500,
      retryAttempts: 0,
      retriedJobs: 0,
      perMinute: [[minute, { finished: 1, completed: 1 }]],
      topFailing: [],
      oldestDueAt: null,
      oldestDueJob: null,
    });

    // A failure that will be retried, then its retry timing out: one attempt each.
    let b = await oneAttempt(store, clock, { waitMs: 0, runMs: 200 }, { kind: "exited", code: 2 }, {
      id: "b",
      command: "flaky",
      maxRetries: 1,
    });
    assert.equal(b.state, "failed");
    let s = await summary(store, clock);
    assert.deepEqual(s.outcomes, { ...NO_OUTCOMES, completed: 1, failed: 1 });
    assert.equal(histogramTotal(s.runTime), 2);
    assert.equal(histogramTotal(s.queueWait), 2);
    assert.equal(s.retryAttempts, 0);

    b = await runAttempt(store, clock, b, { waitMs: 700, runMs: 9000 }, {
      kind: "timeout",
      afterMs: 9000,
      signal: "SIGTERM",
    });
    assert.equal(b.state, "dead");
    s = await summary(store, clock);
    assert.deepEqual(s.outcomes, { ...NO_OUTCOMES, completed: 1, failed: 1, timeout: 1 });
    assert.deepEqual(plain(s).runTime, [[bucketOf(200), 1], [bucketOf(1500), 1], [
      bucketOf(9000),
      1,
    ]]);
    // The retry waited 700 ms from its scheduled run time.
    assert.deepEqual(plain(s).queueWait, [[bucketOf(0), 1], [bucketOf(700), 1], [
      bucketOf(3000),
      1,
    ]]);
    assert.equal(s.maxRunMs, 9000);
    assert.equal(s.retryAttempts, 1, "attempt 2 was a retry");
    assert.equal(s.retriedJobs, 1, "attempt 2 was the job's first retry");
    assert.deepEqual(s.topFailing, [{
      command: "flaky",
      failures: 2,
      lastError: "timed out after 9s (SIGTERM)",
      lastExitCode: null,
    }]);

    // Spawn failures and lost attempts have their own outcome.
    await oneAttempt(store, clock, { waitMs: 0, runMs: 0 }, {
      kind: "spawn_failed",
      error: "cwd missing",
    }, { maxRetries: 0 });
    const lost = await insertJob(store, clock, { maxRetries: 0 });
    const [claimed] = await store.jobClaim({
      workerId: TEST_WORKER,
      host: "h",
      leaseMs: TEST_LEASE_MS,
      limit: 1,
    });
    assert.equal(claimed?.id, lost.id);
    clock.advance(TEST_LEASE_MS + 1);
    const rescued = await store.jobFinish({
      jobId: lost.id,
      attempt: 1,
      workerId: TEST_WORKER,
      decision: decide(claimed!, { kind: "lost", error: "worker died" }, BACKOFF),
      requireLeaseExpired: true,
    });
    assert.equal(rescued, true);
    s = await summary(store, clock);
    assert.deepEqual(s.outcomes, {
      ...NO_OUTCOMES,
      completed: 1,
      failed: 1,
      timeout: 1,
      spawn_failed: 1,
      lost: 1,
    });
    assert.equal(histogramTotal(s.runTime), 5);
    assert.equal(s.maxRunMs, TEST_LEASE_MS + 1, "the lost attempt ran until it was rescued");
  });

  test("jobFinish() counts an interrupted attempt as interrupted only", async (f) => {
    const { store, clock } = f;
    const job = await oneAttempt(store, clock, { waitMs: 100, runMs: 5000 }, {
      kind: "interrupted",
      error: "interrupted by worker shutdown",
    });
    assert.equal(job.state, "pending");
    assert.deepEqual(plain(await summary(store, clock)), {
      outcomes: { ...NO_OUTCOMES, interrupted: 1 },
      runTime: [],
      queueWait: [],
      maxRunMs: null,
      retryAttempts: 0,
      retriedJobs: 0,
      // The chart counts finished attempts, which interrupted ones are not.
      perMinute: [],
      topFailing: [],
      // Back to pending, due at once.
      oldestDueAt: clock.now(),
      oldestDueJob: job.id,
    });
  });

  test("jobFinish() does not count the run after an interrupted attempt as a retry", async (f) => {
    const { store, clock } = f;
    let job = await oneAttempt(store, clock, { waitMs: 0, runMs: 5000 }, {
      kind: "interrupted",
      error: "interrupted by worker shutdown",
    });
    // Attempt 2 is the job's first attempt that counts: the interrupted one gave its attempt back.
    job = await runAttempt(store, clock, job, { waitMs: 250, runMs: 1000 }, OK);
    assert.equal(job.attempts, 2);
    let s = await summary(store, clock);
    assert.deepEqual(s.outcomes, { ...NO_OUTCOMES, completed: 1, interrupted: 1 });
    assert.equal(s.retryAttempts, 0, "no retry: nothing had failed");
    assert.deepEqual(plain(s).queueWait, [[bucketOf(250), 1]]);

    // A real retry after an interruption still counts: interrupted, failed, then retried.
    let other = await oneAttempt(store, clock, { waitMs: 0, runMs: 10 }, {
      kind: "interrupted",
      error: "interrupted by worker shutdown",
    }, { maxRetries: 1 });
    other = await runAttempt(store, clock, other, { waitMs: 0, runMs: 10 }, {
      kind: "exited",
      code: 1,
    });
    other = await runAttempt(store, clock, other, { waitMs: 0, runMs: 10 }, OK);
    assert.equal(other.attempts, 3);
    s = await summary(store, clock);
    assert.equal(s.retryAttempts, 1, "only attempt 3 was a retry");
  });

  test("jobFinish() refused for a lost lease records no figures", async (f) => {
    const { store, clock } = f;
    const job = await makeJob(store, clock, "processing", { id: "held" });
    clock.advance(1000);
    const before = plain(await summary(store, clock));
    const decision = decide(job, OK, BACKOFF);
    // Another worker's finish, a stale attempt number, a rescue before the lease expired.
    assert.equal(
      await store.jobFinish({
        jobId: "held",
        attempt: 1,
        workerId: "w-other",
        decision,
      }),
      false,
    );
    assert.equal(
      await store.jobFinish({
        jobId: "held",
        attempt: 2,
        workerId: TEST_WORKER,
        decision,
      }),
      false,
    );
    assert.equal(
      await store.jobFinish({
        jobId: "held",
        attempt: 1,
        workerId: TEST_WORKER,
        decision,
        requireLeaseExpired: true,
      }),
      false,
    );
    assert.deepEqual(plain(await summary(store, clock)), before);
    // The owner's finish counts once, and a repeat of it nothing.
    const finish = { jobId: "held", attempt: 1, workerId: TEST_WORKER, decision, now: clock.now() };
    assert.equal(await store.jobFinish(finish), true);
    assert.equal(await store.jobFinish(finish), false);
    assert.deepEqual((await summary(store, clock)).outcomes, { ...NO_OUTCOMES, completed: 1 });
  });

  test("statsFigures() counts the attempts that finished in the minutes of its window", async (f) => {
    const { store, clock } = f;
    // Attempts finishing at 0:00:30, 0:10:30 and 1:10:30; now is 1:10:30.
    for (const at of [30_000, 10 * MINUTE + 30_000, 70 * MINUTE + 30_000]) {
      clock.set(T0 + at - 1000);
      await oneAttempt(store, clock, { waitMs: 0, runMs: 1000 }, OK);
    }
    const completedSince = async (since: number) =>
      (await summaryFrom(store, clock, since, 5)).outcomes.completed;
    assert.equal(await completedSince(T0), 3);
    assert.equal(await completedSince(T0 + 10 * MINUTE), 2);
    // The window starts at the minute `since` falls in: whole minutes only.
    assert.equal(await completedSince(T0 + 10 * MINUTE + 59_999), 2);
    assert.equal(await completedSince(T0 + 11 * MINUTE), 1);
    assert.equal(await completedSince(T0 + 71 * MINUTE), 0);
    // The per-minute chart covers the last hour whatever the window.
    const s = await summaryFrom(store, clock, T0 + 71 * MINUTE, 5);
    const m0 = T0 / MINUTE;
    assert.deepEqual(plain(s).perMinute, [
      [m0 + 10, { finished: 1, completed: 1 }],
      [m0 + 70, { finished: 1, completed: 1 }],
    ]);
  });

  test("statsFigures() lists top failing commands in the window with their latest error", async (f) => {
    const { store, clock } = f;
    const fail = (code: number): RunResult => ({ kind: "exited", code });
    // Long ago, outside the window: many failures of "old".
    for (let i = 0; i < 4; i++) {
      await oneAttempt(store, clock, { waitMs: 0, runMs: 1 }, fail(9), {
        command: "old",
        maxRetries: 0,
      });
    }
    clock.advance(2 * HOUR);
    const since = clock.now();
    // "deploy" fails 3 times in two jobs, last with exit 5; "lint" once; "ok" never; an interrupt
    // and a completion are not failures.
    await oneAttempt(store, clock, { waitMs: 0, runMs: 1 }, fail(2), {
      command: "deploy",
      maxRetries: 0,
    });
    await oneAttempt(store, clock, { waitMs: 0, runMs: 1 }, fail(7), {
      command: "lint",
      maxRetries: 0,
    });
    let deploy = await oneAttempt(store, clock, { waitMs: 0, runMs: 1 }, fail(3), {
      command: "deploy",
      maxRetries: 1,
    });
    deploy = await runAttempt(store, clock, deploy, { waitMs: 0, runMs: 1 }, fail(5));
    await oneAttempt(store, clock, { waitMs: 0, runMs: 1 }, OK, { command: "ok" });
    await oneAttempt(store, clock, { waitMs: 0, runMs: 1 }, {
      kind: "interrupted",
      error: "stop",
    }, { command: "ok" });
    const s = await summaryFrom(store, clock, since, 5);
    assert.deepEqual(s.topFailing, [
      { command: "deploy", failures: 3, lastError: "exited with code 5", lastExitCode: 5 },
      { command: "lint", failures: 1, lastError: "exited with code 7", lastExitCode: 7 },
    ]);
    const top1 = await summaryFrom(store, clock, since, 1);
    assert.deepEqual(top1.topFailing.map((t) => t.command), ["deploy"]);
    const all = await summaryFrom(store, clock, T0, 5);
    assert.deepEqual(all.topFailing.map((t) => [t.command, t.failures]), [
      ["old", 4],
      ["deploy", 3],
      ["lint", 1],
    ]);
  });

  test("statsFigures() names the due job that has waited longest", async (f) => {
    const { store, clock } = f;
    // A job scheduled for later and a running one are not waiting; a failed job due for its
    // retry is; the oldest due time wins whatever the priority.
    await makeJob(store, clock, "processing", { id: "running", runAt: T0 - HOUR });
    const failed = await oneAttempt(store, clock, { waitMs: 0, runMs: 10 }, {
      kind: "exited",
      code: 1,
    }, { id: "retrying", maxRetries: 3 });
    await insertJob(store, clock, { id: "later", runAt: clock.now() + HOUR });
    await insertJob(store, clock, { id: "urgent", priority: 10, runAt: failed.runAt + 500 });
    clock.set(failed.runAt - 1);
    let s = await summary(store, clock);
    assert.equal(s.oldestDueJob, null, "the retry is not due yet");
    clock.set(failed.runAt + 1000);
    s = await summary(store, clock);
    assert.equal(s.oldestDueJob, "retrying");
    assert.equal(s.oldestDueAt, failed.runAt);
  });

  test("statsCompact() folds minutes older than two hours into hours, keeping every count and maximum", async (f) => {
    const { store, clock } = f;
    const rng = new Prng(1234);
    const results: RunResult[] = [OK, OK, OK, { kind: "exited", code: 1 }, {
      kind: "timeout",
      afterMs: 1,
      signal: "SIGTERM",
    }, { kind: "interrupted", error: "stop" }];
    // Six hours and 40 minutes of attempts, several per minute in places. The first minute of
    // every hour has one (compaction folds the hour into that minute's rows), hour 1 holds the
    // record run time after its first minute, and the cut for compaction falls mid-hour.
    for (let minute = 0; minute < 400; minute++) {
      const attempts = minute % 60 === 0 ? 1 : rng.pick([0, 0, 0, 1, 1, 2]);
      for (let i = 0; i < attempts; i++) {
        const record = minute === 90 && i === 0;
        const runMs = record ? 500_000 : rng.int(0, 20_000);
        const finishAt = Math.max(clock.now(), T0 + minute * MINUTE + rng.int(0, 59_000));
        const waitMs = rng.int(0, 5000);
        clock.set(finishAt - runMs - waitMs);
        let job = await oneAttempt(
          store,
          clock,
          { waitMs, runMs },
          record ? OK : rng.pick(results),
          {
            maxRetries: 1,
          },
        );
        if (job.state === "failed" || job.state === "pending") {
          clock.set(Math.max(clock.now(), job.runAt));
          job = await runAttempt(store, clock, job, { waitMs: rng.int(0, 2000), runMs: 10 }, OK);
        }
      }
    }
    clock.set(T0 + 400 * MINUTE);
    const now = clock.now();
    const rows = async () => {
      const keys = await f.raw.statsRowKeys();
      return { count: keys.length, minutes: keys.map(([minute]) => minute), keys };
    };
    const whole = async (since: number) => plain(await summaryFrom(store, clock, since, 5));
    // Windows that cover it all, start on a whole hour, or start after the compaction cut.
    const compactBefore = now - 2 * HOUR;
    const firstKeptMinute = Math.floor(compactBefore / HOUR) * 60;
    const windows = [T0 - HOUR, ...Array.from({ length: 7 }, (_, k) => T0 + k * HOUR)];
    for (let m = firstKeptMinute; m <= now / MINUTE; m += 7) windows.push(m * MINUTE + 30_000);
    const figures = async () => await Promise.all(windows.map(whole));
    const before = await figures();
    assert.equal(before[0]!.maxRunMs, 500_000);
    assert.ok(before[0]!.outcomes.completed > 150, `${before[0]!.outcomes.completed} completed`);
    const rowsBefore = await rows();

    await compact(store, clock, { statsBefore: T0 - HOUR, compactBefore });
    const rowsAfter = await rows();
    // One row per hour, metric and bucket before the cut; the minutes after it as they were.
    const expectedRows = new Set(
      rowsBefore.keys.map(([minute, metric, bucket]) =>
        `${minute < firstKeptMinute ? Math.floor(minute / 60) * 60 : minute}/${metric}/${bucket}`
      ),
    ).size;
    assert.ok(
      expectedRows < rowsBefore.count * 0.75,
      `${rowsBefore.count} rows, ${expectedRows} expected`,
    );
    assert.equal(rowsAfter.count, expectedRows);
    for (const minute of rowsAfter.minutes) {
      assert.ok(
        minute >= firstKeptMinute || minute % 60 === 0,
        `minute ${minute} left uncompacted`,
      );
    }
    assert.ok(
      rowsAfter.minutes.some((m) => m >= firstKeptMinute && m % 60 !== 0),
      "recent minutes kept",
    );
    // Every figure of every such window is what it was.
    assert.deepEqual(await figures(), before);
    // Compacting again changes nothing.
    await compact(store, clock, { statsBefore: T0 - HOUR, compactBefore });
    assert.equal((await rows()).count, rowsAfter.count);
    assert.deepEqual(await figures(), before);
  });

  test("statsCompact() deletes figures older than the retention and keeps the rest", async (f) => {
    const { store, clock } = f;
    for (let i = 0; i < 5; i++) {
      await oneAttempt(store, clock, { waitMs: 0, runMs: 1000 }, OK);
      clock.advance(HOUR);
    }
    // Attempts finished at 0:00:01, 1:00:01, …, 4:00:01. Keep from 2:00 on.
    await compact(store, clock, { statsBefore: T0 + 2 * HOUR, compactBefore: T0 });
    const s = await summary(store, clock);
    assert.equal(s.outcomes.completed, 3);
    assert.equal(histogramTotal(s.runTime), 3);
  });

  test("jobPrune() deletes finished jobs with their attempts and output and keeps counts right", async (f) => {
    const { store, clock } = f;
    // Old: two completed (with output; the one enqueued first finished last), one dead. Then
    // unfinished ones, and recent finished ones.
    const slow = await makeJob(store, clock, "processing", { id: "c-old-2" });
    await completeWithOutput(store, clock, "c-old-1");
    clock.advance(1000);
    await completeWithOutput(store, clock, "c-old-2", slow);
    await makeJob(store, clock, "dead", { id: "d-old", maxRetries: 1 });
    clock.advance(HOUR);
    const cutoff = clock.now();
    await makeJob(store, clock, "failed", { id: "f" });
    await makeJob(store, clock, "processing", { id: "r" });
    await insertJob(store, clock, { id: "p", runAt: clock.now() + HOUR });
    await completeWithOutput(store, clock, "c-new");
    await makeJob(store, clock, "dead", { id: "d-new", maxRetries: 0 });
    const statsBefore = plain(await summary(store, clock));
    assert.deepEqual(await f.raw.tableCounts(), { attempts: 8, outputs: 6, orphans: 0 });

    const count = (states: ("completed" | "dead")[], before = cutoff) =>
      store.jobPruneCount({ states, olderThanMs: clock.now() - before });
    assert.equal(await count(["completed"]), 2);
    assert.equal(await count(["dead"]), 1);
    assert.equal(await count(["completed", "dead"]), 3);
    assert.equal(await count(["completed", "dead"], clock.now() + 1), 5);
    // Strictly before: a job finished exactly at the cutoff stays.
    const cNew = (await store.jobGet({ id: "c-new" }))!;
    assert.equal(await count(["completed"], cNew.finishedAt!), 2);

    // A batch of one takes the one enqueued first (finish order does not matter among the old).
    assert.deepEqual(
      await store.jobPrune({ states: ["completed"], olderThanMs: clock.now() - cutoff, limit: 1 }),
      ["c-old-2"],
    );
    assert.equal(await store.jobGet({ id: "c-old-2" }), undefined);
    assert.deepEqual(await f.raw.tableCounts(), { attempts: 7, outputs: 4, orphans: 0 });
    // A batch across states stops at its limit.
    const pruned = await store.jobPrune({
      states: ["completed", "dead"],
      olderThanMs: clock.now() - cutoff,
      limit: 10,
    });
    assert.deepEqual(pruned, ["c-old-1", "d-old"]);
    assert.deepEqual(await f.raw.tableCounts(), { attempts: 4, outputs: 2, orphans: 0 });
    assert.equal(await count(["completed", "dead"]), 0);
    assert.deepEqual(
      await store.jobPrune({ states: ["completed"], olderThanMs: clock.now() - cutoff, limit: 10 }),
      [],
    );

    // Maintained counts agree with the rows; unfinished and recent jobs are untouched.
    const counts = await store.jobCountByState();
    const rows = await f.raw.rowCounts();
    assert.deepEqual(counts, {
      pending: rows.pending ?? 0,
      processing: rows.processing ?? 0,
      completed: rows.completed ?? 0,
      failed: rows.failed ?? 0,
      dead: rows.dead ?? 0,
      cancelled: rows.cancelled ?? 0,
      total: Object.values(rows).reduce((a, b) => a + b, 0),
    });
    assert.deepEqual(counts, {
      pending: 1,
      processing: 1,
      completed: 1,
      failed: 1,
      dead: 1,
      cancelled: 0,
      total: 5,
    });
    assert.deepEqual(
      (await store.attemptOutput({ jobId: "c-new", attempt: 1 }))?.stdout.head,
      new TextEncoder().encode("out of c-new\n"),
    );
    // History already counted in the metrics stays counted. (Top failing commands are read from
    // the attempts that remain: d-old's two failures left with it.)
    const statsAfter = plain(await summary(store, clock));
    assert.deepEqual({ ...statsAfter, topFailing: [] }, { ...statsBefore, topFailing: [] });
    assert.deepEqual(statsBefore.topFailing.map((t) => t.failures), [4]);
    assert.deepEqual(statsAfter.topFailing.map((t) => t.failures), [2]);

    // A limit of several batches' worth, as retention runs it.
    await store.jobPrune({
      states: ["completed", "dead"],
      olderThanMs: clock.now() - (clock.now() + 1),
      limit: 500,
    });
    assert.deepEqual(await store.jobCountByState(), {
      pending: 1,
      processing: 1,
      completed: 0,
      failed: 1,
      dead: 0,
      cancelled: 0,
      total: 3,
    });
    assert.deepEqual(await f.raw.tableCounts(), { attempts: 2, outputs: 0, orphans: 0 });
  });

  test("jobPrune() with scanLimit looks only at the oldest enqueued jobs of a state", async (f) => {
    const { store, clock } = f;
    // Enqueued first, finished last (an hour later): it keeps the old one behind it for a bounded
    // scan of one, not for a scan of two or an unbounded one.
    const slow = await makeJob(store, clock, "processing", { id: "slow" });
    await completeWithOutput(store, clock, "quick");
    clock.advance(HOUR);
    await completeWithOutput(store, clock, "slow", slow);
    const older = { states: ["completed"] as const, olderThanMs: HOUR / 2, limit: 10 };
    assert.deepEqual(await store.jobPrune({ ...older, scanLimit: 1 }), []);
    assert.deepEqual(await store.jobPrune({ ...older, scanLimit: 2 }), ["quick"]);
    assert.deepEqual(await store.jobPrune(older), []);
    assert.equal((await store.jobGet({ id: "slow" }))?.state, "completed");
  });
}
