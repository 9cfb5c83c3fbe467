/**
 * The store contract for job control (issue 11): `jobCancel`, `jobCancelRequests`, `jobRetry`,
 * cancel requests returned by `workerHeartbeat`, and how `jobFinish` settles a cancel that races
 * the attempt's end. Run by storeContract on every store.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConflictError, NotFoundError } from "../../lib/errors.ts";
import type { Job } from "../../lib/job/job.ts";
import { decide } from "../../lib/job/outcome.ts";
import type { RunResult } from "../../lib/job/outcome.ts";
import type { Store } from "../../lib/store/store.ts";
import {
  BACKOFF,
  makeJob,
  makeOneOfEach,
  TEST_HOST_ID,
  TEST_LEASE_MS,
  TEST_WORKER,
} from "../helpers/factory.ts";
import type { ContractTest } from "./store_contract.ts";

function finish(store: Store, job: Job, result: RunResult): Promise<boolean> {
  return store.jobFinish({
    jobId: job.id,
    attempt: job.attempts,
    workerId: job.workerId!,
    decision: decide(job, result, BACKOFF),
  });
}

async function lastAttempt(store: Store, id: string) {
  return (await store.attemptList({ jobId: id })).at(-1);
}

export function jobControlContract(test: ContractTest): void {
  test("jobCancel() cancels waiting jobs at once and asks the owner of a running one", async ({ store, clock }) => {
    const jobs = await makeOneOfEach(store, clock);
    const { cancelled, requested } = await store.jobCancel({
      ids: ["p1", "f1", "r1"],
      reason: "not needed",
    });
    assert.deepEqual(cancelled.map((j) => [j.id, j.state, j.cancelReason]), [
      ["p1", "cancelled", "not needed"],
      ["f1", "cancelled", "not needed"],
    ]);
    assert.ok(cancelled.every((j) => j.finishedAt === clock.now()));
    assert.deepEqual(requested.map((j) => [j.id, j.state, j.cancelReason]), [
      ["r1", "processing", "not needed"],
    ]);
    assert.deepEqual(await store.jobCancelRequests({ workerId: TEST_WORKER }), [
      {
        jobId: "r1",
        attempt: jobs.processing.attempts,
        workerId: TEST_WORKER,
        reason: "not needed",
      },
    ]);
    assert.deepEqual(await store.jobCancelRequests({ workerId: "someone else" }), []);
    const counts = await store.jobCountByState();
    assert.equal(counts.cancelled, 3); // x1 from makeOneOfEach, p1, f1
    assert.equal(counts.processing, 1);
    // A renewal tells the owner too.
    const beat = await store.workerHeartbeat({
      id: TEST_WORKER,
      leases: [{ jobId: "r1", attempt: 1, workerId: TEST_WORKER, leaseMs: TEST_LEASE_MS }],
      totals: { jobsDone: 0, jobsFailed: 0, busyMs: 0 },
    });
    assert.deepEqual(beat, {
      lost: [],
      cancel: [{ jobId: "r1", attempt: 1, workerId: TEST_WORKER, reason: "not needed" }],
    });
    // Cancelled jobs are never claimed.
    assert.deepEqual(
      await store.jobClaim({ workerId: "w2", host: TEST_HOST_ID, leaseMs: 1000, limit: 10 }),
      [],
    );
  });

  test("jobCancel() is all or none: an unknown or finished id changes nothing", async ({ store, clock }) => {
    await makeOneOfEach(store, clock);
    for (
      const [id, error, reason] of [
        ["nope", NotFoundError, "job_not_found"],
        ["c1", ConflictError, "finished"],
        ["d1", ConflictError, "finished"],
        ["x1", ConflictError, "finished"],
      ] as const
    ) {
      await assert.rejects(store.jobCancel({ ids: ["p1", id], reason: "r" }), (e: unknown) => {
        assert.ok(e instanceof error, id);
        assert.equal((e as ConflictError).reason, reason);
        assert.equal((e as ConflictError).subject, id);
        return true;
      });
    }
    assert.equal((await store.jobGet({ id: "p1" }))?.state, "pending");
    assert.equal((await store.jobCountByState()).cancelled, 1);
  });

  test("jobCancel() by state takes every job in those states", async ({ store, clock }) => {
    await makeOneOfEach(store, clock);
    await makeJob(store, clock, "pending", { id: "p2" });
    const none = await store.jobCancel({ ids: { states: ["completed"] }, reason: "r" });
    assert.deepEqual(none, { cancelled: [], requested: [], dependents: [] });
    const { cancelled, requested } = await store.jobCancel({
      ids: { states: ["pending", "failed"] },
      reason: "sweep",
    });
    assert.deepEqual(cancelled.map((j) => j.id).sort(), ["f1", "p1", "p2"]);
    assert.deepEqual(requested, []);
  });

  test("jobCancel() of a reserved attempt undoes the claim; the worker's arm then fails", async ({ store, clock }) => {
    const reserved = await makeJob(store, clock, "reserved", { id: "res" });
    const { cancelled, requested } = await store.jobCancel({ ids: ["res"], reason: "r" });
    assert.deepEqual(requested, []);
    assert.deepEqual(cancelled.map((j) => [j.id, j.state, j.attempts, j.workerId]), [
      ["res", "cancelled", 0, null],
    ]);
    assert.deepEqual(await store.attemptList({ jobId: "res" }), []);
    assert.deepEqual(
      await store.attemptArm([{ jobId: "res", attempt: reserved.attempts, workerId: TEST_WORKER }]),
      [false],
    );
  });

  test("jobFinish() after a cancel request: a failure ends cancelled, a completion wins", async ({ store, clock }) => {
    const a = await makeJob(store, clock, "processing", { id: "a", command: "false" });
    const b = await makeJob(store, clock, "processing", { id: "b", command: "true" });
    const c = await makeJob(store, clock, "processing", { id: "c", command: "sleep 9" });
    await store.jobCancel({ ids: ["a", "b", "c"], reason: "stop" });
    // a failed on its own before its worker saw the request: cancelled, not retried.
    assert.ok(await finish(store, a, { kind: "exited", code: 1 }));
    // b exited 0 first: completed, the request dropped.
    assert.ok(await finish(store, b, { kind: "exited", code: 0 }));
    // c was killed for the request.
    assert.ok(
      await finish(store, c, { kind: "cancelled", error: "cancelled: stop", signal: "SIGTERM" }),
    );
    const [ja, jb, jc] = await Promise.all(["a", "b", "c"].map((id) => store.jobGet({ id })));
    assert.deepEqual([ja?.state, ja?.cancelReason, (await lastAttempt(store, "a"))?.outcome], [
      "cancelled",
      "stop",
      "cancelled",
    ]);
    assert.deepEqual([jb?.state, jb?.cancelReason, (await lastAttempt(store, "b"))?.outcome], [
      "completed",
      null,
      "completed",
    ]);
    assert.deepEqual([jc?.state, (await lastAttempt(store, "c"))?.outcome], [
      "cancelled",
      "cancelled",
    ]);
    assert.ok(ja?.finishedAt !== null && jc?.finishedAt !== null);
    // A stale owner's write changes nothing, and a finished job cannot be cancelled.
    assert.equal(await finish(store, c, { kind: "exited", code: 0 }), false);
    await assert.rejects(store.jobCancel({ ids: ["b"], reason: "late" }), ConflictError);
    assert.deepEqual(await store.jobCancelRequests({ workerId: TEST_WORKER }), []);
  });

  test("jobFinish() by recovery (lost) of a job with a cancel request ends it cancelled", async ({ store, clock }) => {
    const job = await makeJob(store, clock, "processing", { id: "l" });
    await store.jobCancel({ ids: ["l"], reason: "gone" });
    clock.advance(TEST_LEASE_MS + 1);
    assert.ok(
      await store.jobFinish({
        jobId: job.id,
        attempt: job.attempts,
        workerId: TEST_WORKER,
        requireLeaseExpired: true,
        decision: decide(job, { kind: "lost", error: "worker died" }, BACKOFF),
      }),
    );
    assert.equal((await store.jobGet({ id: "l" }))?.state, "cancelled");
    assert.equal((await lastAttempt(store, "l"))?.outcome, "cancelled");
  });

  test("jobRetry() brings dead and cancelled jobs back, completed ones only with force", async ({ store, clock }) => {
    await makeOneOfEach(store, clock);
    const back = await store.jobRetry({ ids: ["d1", "x1"] });
    assert.deepEqual(back.map((j) => [j.id, j.state, j.budgetUsed, j.finishedAt, j.cancelReason]), [
      ["d1", "pending", 0, null, null],
      ["x1", "pending", 0, null, null],
    ]);
    await assert.rejects(store.jobRetry({ ids: ["c1"] }), (e: unknown) => {
      assert.ok(e instanceof ConflictError);
      assert.equal(e.reason, "not_retryable");
      assert.match(e.message, /--force/);
      return true;
    });
    for (const id of ["p1", "r1", "f1"]) {
      await assert.rejects(store.jobRetry({ ids: [id], force: true }), ConflictError, id);
    }
    await assert.rejects(store.jobRetry({ ids: ["nope"] }), NotFoundError);
    // All or none: a bad id after a good one leaves the good one as it was.
    await store.jobCancel({ ids: ["p1"], reason: "r" });
    await assert.rejects(store.jobRetry({ ids: ["p1", "f1"] }), ConflictError);
    assert.equal((await store.jobGet({ id: "p1" }))?.state, "cancelled");
    const [rerun] = await store.jobRetry({ ids: ["c1"], force: true });
    assert.deepEqual([rerun?.state, rerun?.attempts], ["pending", 1]);
  });

  test("jobCancel() and jobFinish() racing on two stores end in exactly one outcome", async (f) => {
    const other = await f.openAnother();
    for (let i = 0; i < 20; i++) {
      const job = await makeJob(f.store, f.clock, "processing", { id: `race${i}` });
      const [cancel, done] = await Promise.allSettled([
        other.jobCancel({ ids: [job.id], reason: "race" }),
        finish(f.store, job, { kind: "exited", code: 0 }),
      ]);
      assert.equal(done.status, "fulfilled");
      const after = (await f.store.jobGet({ id: job.id }))!;
      const attempt = (await lastAttempt(f.store, job.id))!;
      // The finish is a completion: it wins whichever commits first, and the request is gone.
      assert.equal(after.state, "completed");
      assert.equal(attempt.outcome, "completed");
      assert.equal(after.cancelReason, null);
      if (cancel.status === "rejected") assert.ok(cancel.reason instanceof ConflictError);
    }
    for (let i = 0; i < 20; i++) {
      const job = await makeJob(f.store, f.clock, "processing", { id: `fail${i}` });
      const [cancel] = await Promise.allSettled([
        other.jobCancel({ ids: [job.id], reason: "race" }),
        finish(f.store, job, { kind: "exited", code: 1 }),
      ]);
      const after = (await f.store.jobGet({ id: job.id }))!;
      const attempt = (await lastAttempt(f.store, job.id))!;
      if (cancel.status === "fulfilled" && cancel.value.requested.length === 1) {
        // Asked while it ran: the failure ends it cancelled.
        assert.deepEqual([after.state, attempt.outcome], ["cancelled", "cancelled"]);
      } else if (cancel.status === "fulfilled") {
        // The failure came first (a retry was scheduled): cancelled while waiting.
        assert.deepEqual([after.state, attempt.outcome], ["cancelled", "failed"]);
      } else {
        assert.fail(`a failed job can always be cancelled: ${cancel.reason}`);
      }
      assert.equal((await f.store.jobCountByState()).processing, 0);
    }
  });
}
