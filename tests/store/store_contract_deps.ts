/**
 * The store contract for dependencies (`NewJob.after`) and unique keys (`NewJob.uniqueKey`):
 * waiting jobs stay out of claims until their dependencies complete, a dead or cancelled
 * dependency cancels its dependents down the chain in the same transaction, and a live job's
 * unique key refuses a second one, also between two stores. Run by storeContract on every store.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { FakeClock } from "../../lib/clock.ts";
import { ConflictError, NotFoundError } from "../../lib/errors.ts";
import type { Job, NewJob } from "../../lib/job/job.ts";
import { decide } from "../../lib/job/outcome.ts";
import type { RunResult } from "../../lib/job/outcome.ts";
import type { Store } from "../../lib/store/store.ts";
import { BACKOFF, makeJob, TEST_HOST_ID, TEST_LEASE_MS, TEST_WORKER } from "../helpers/factory.ts";
import type { ContractTest } from "./store_contract.ts";

function newJob(clock: FakeClock, fields: Partial<NewJob> & { id?: string }): NewJob {
  return {
    id: fields.id,
    command: fields.command ?? "true",
    priority: 5,
    maxRetries: fields.maxRetries ?? 0,
    timeoutMs: null,
    cwd: "/tmp",
    env: {},
    runAt: clock.now(),
    delayMs: 0,
    ...(fields.after ? { after: fields.after } : {}),
    ...(fields.uniqueKey ? { uniqueKey: fields.uniqueKey } : {}),
  };
}

async function insert(
  store: Store,
  clock: FakeClock,
  ...jobs: (Partial<NewJob> & { id?: string })[]
): Promise<Job[]> {
  return (await store.jobInsertMany({
    jobs: jobs.map((j) => newJob(clock, j)),
    defaultMaxRetries: 0,
  })).jobs;
}

async function claim(store: Store, limit = 10): Promise<Job[]> {
  return await store.jobClaim({
    workerId: TEST_WORKER,
    host: TEST_HOST_ID,
    leaseMs: TEST_LEASE_MS,
    limit,
  });
}

async function finish(store: Store, job: Job, result: RunResult): Promise<void> {
  await store.attemptArm([{ jobId: job.id, attempt: job.attempts, workerId: job.workerId! }]);
  const ok = await store.jobFinish({
    jobId: job.id,
    attempt: job.attempts,
    workerId: job.workerId!,
    decision: decide(job, result, BACKOFF),
  });
  assert.ok(ok, `finish ${job.id}`);
}

const OK: RunResult = { kind: "exited", code: 0 };
const FAIL: RunResult = { kind: "exited", code: 1 };

async function states(store: Store, ...ids: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const id of ids) out[id] = (await store.jobGet({ id }))?.state ?? "missing";
  return out;
}

export function dependencyContract(test: ContractTest): void {
  test("jobInsertMany() with after: the job waits, unclaimable, until its dependency completes", async ({ store, clock }) => {
    const [a, b] = await insert(store, clock, { id: "a" }, { id: "b", after: ["a"] });
    assert.deepEqual([a!.waitingOn, b!.waitingOn, b!.after, b!.state], [0, 1, ["a"], "pending"]);
    assert.deepEqual((await store.jobGet({ id: "b" }))?.waitingOn, 1);
    const first = await claim(store);
    assert.deepEqual(first.map((j) => j.id), ["a"]);
    // Nothing else is due: a waiting job is neither due nor scheduled.
    assert.deepEqual(await store.jobNextDue(), { dueNow: false, nextDueInMs: null });
    assert.deepEqual((await store.jobCountScheduled()).scheduled, 0);
    assert.deepEqual(await claim(store), []);
    await finish(store, first[0]!, OK);
    assert.equal((await store.jobGet({ id: "b" }))?.waitingOn, 0);
    assert.equal((await store.jobNextDue()).dueNow, true);
    assert.deepEqual((await claim(store)).map((j) => j.id), ["b"]);
  });

  test("jobInsertMany() with after: a diamond runs in order, each join waiting for both", async ({ store, clock }) => {
    await insert(
      store,
      clock,
      { id: "top" },
      { id: "left", after: ["top"] },
      { id: "right", after: ["top"] },
      { id: "join", after: ["left", "right"] },
    );
    assert.equal((await store.jobGet({ id: "join" }))?.waitingOn, 2);
    const order: string[][] = [];
    for (;;) {
      const jobs = await claim(store);
      if (jobs.length === 0) break;
      order.push(jobs.map((j) => j.id).sort());
      for (const job of jobs) await finish(store, job, OK);
    }
    assert.deepEqual(order, [["top"], ["left", "right"], ["join"]]);
    const links = await store.jobDependencies({ id: "top", limit: 10 });
    assert.deepEqual(links.dependents, [
      { id: "left", state: "completed", met: true },
      { id: "right", state: "completed", met: true },
    ]);
    assert.deepEqual((await store.jobDependencies({ id: "join", limit: 10 })).after, [
      { id: "left", state: "completed", met: true },
      { id: "right", state: "completed", met: true },
    ]);
  });

  test("jobInsertMany() with after: a completed dependency counts as met; dead or cancelled ones are refused", async ({ store, clock }) => {
    await makeJob(store, clock, "completed", { id: "done" });
    await makeJob(store, clock, "dead", { id: "gone", maxRetries: 0 });
    await makeJob(store, clock, "cancelled", { id: "off" });
    const [ok] = await insert(store, clock, { id: "ok", after: ["done"] });
    assert.equal(ok!.waitingOn, 0);
    for (const dep of ["gone", "off"]) {
      await assert.rejects(
        insert(store, clock, { id: "x" }, { id: "y", after: [dep] }),
        (e: unknown) =>
          e instanceof ConflictError && e.reason === "dependency_failed" && e.subject === dep,
      );
    }
    assert.equal(await store.jobGet({ id: "x" }), undefined, "nothing of the batch stored");
  });

  test("jobInsertMany() with after: an unknown id, or one later in the batch, is not found and stores nothing", async ({ store, clock }) => {
    const before = await store.jobCountByState();
    await assert.rejects(
      insert(store, clock, { id: "p" }, { id: "q", after: ["nope"] }),
      (e: unknown) =>
        e instanceof NotFoundError && e.reason === "dependency_not_found" && e.subject === "nope",
    );
    // A job can wait only for one before it: so no cycle can be built.
    await assert.rejects(
      insert(store, clock, { id: "q", after: ["r"] }, { id: "r", after: ["q"] }),
      (e: unknown) => e instanceof NotFoundError && e.subject === "r",
    );
    assert.deepEqual(await store.jobCountByState(), before);
    assert.equal(await store.jobGet({ id: "p" }), undefined);
  });

  test("jobFinish() dead: its dependents are cancelled down the chain, naming it", async ({ store, clock }) => {
    await insert(
      store,
      clock,
      { id: "a", command: "false" },
      { id: "b", after: ["a"] },
      { id: "c", after: ["b"] },
      { id: "side" },
    );
    const [a] = await claim(store, 1);
    assert.equal(a!.id, "a");
    await finish(store, a!, FAIL);
    assert.deepEqual(await states(store, "a", "b", "c", "side"), {
      a: "dead",
      b: "cancelled",
      c: "cancelled",
      side: "pending",
    });
    assert.equal((await store.jobGet({ id: "b" }))?.cancelReason, 'dependency "a" is dead');
    assert.equal(
      (await store.jobGet({ id: "c" }))?.cancelReason,
      'dependency "b" was cancelled (dependency "a" is dead)',
    );
    const counts = await store.jobCountByState();
    assert.deepEqual([counts.dead, counts.cancelled, counts.pending], [1, 2, 1]);
    // A retry of the dependency does not revive them.
    await store.jobDlqRetry({ ids: ["a"] });
    assert.deepEqual(await states(store, "b", "c"), { b: "cancelled", c: "cancelled" });
    // Alone, a dependent cannot be retried while what it waits for is not live; with it, it can.
    await store.jobCancel({ ids: ["a"], reason: "again" });
    await assert.rejects(
      store.jobRetry({ ids: ["b"] }),
      (e: unknown) => e instanceof ConflictError && e.reason === "not_retryable",
    );
    assert.equal((await store.jobGet({ id: "b" }))?.state, "cancelled", "refused: nothing changed");
    const back = await store.jobRetry({ ids: ["c", "b", "a"] });
    assert.deepEqual(back.map((j) => [j.id, j.state, j.waitingOn]), [
      ["c", "pending", 1],
      ["b", "pending", 1],
      ["a", "pending", 0],
    ]);
    assert.deepEqual((await claim(store)).map((j) => j.id).sort(), ["a", "side"]);
  });

  test("jobCancel() of a dependency cancels its dependents in the same transaction", async ({ store, clock }) => {
    await insert(store, clock, { id: "a" }, { id: "b", after: ["a"] }, { id: "c", after: ["b"] });
    const result = await store.jobCancel({ ids: ["a"], reason: "not needed" });
    assert.deepEqual(result.cancelled.map((j) => j.id), ["a"]);
    assert.deepEqual(result.dependents, ["b", "c"]);
    assert.equal((await store.jobGet({ id: "b" }))?.cancelReason, 'dependency "a" was cancelled');
    // Asking for a dependent too: it is cancelled once, reported once.
    await insert(store, clock, { id: "d" }, { id: "e", after: ["d"] });
    const both = await store.jobCancel({ ids: ["d", "e"], reason: "r" });
    assert.deepEqual([both.cancelled.map((j) => j.id), both.dependents], [["d"], ["e"]]);
    assert.equal((await store.jobCountByState()).cancelled, 5);
  });

  test("jobCancel() of a running dependency: its end as cancelled cancels the dependents", async ({ store, clock }) => {
    await insert(store, clock, { id: "a", command: "sleep 60" }, { id: "b", after: ["a"] });
    const [a] = await claim(store, 1);
    await store.attemptArm([{ jobId: "a", attempt: a!.attempts, workerId: TEST_WORKER }]);
    const result = await store.jobCancel({ ids: ["a"], reason: "stop" });
    assert.deepEqual([result.requested.map((j) => j.id), result.dependents], [["a"], []]);
    assert.equal((await store.jobGet({ id: "b" }))?.state, "pending");
    await store.jobFinish({
      jobId: "a",
      attempt: a!.attempts,
      workerId: TEST_WORKER,
      decision: decide(a!, { kind: "signaled", signal: "SIGTERM" }, BACKOFF),
    });
    assert.deepEqual(await states(store, "a", "b"), { a: "cancelled", b: "cancelled" });
  });

  test("jobDelete() of a completed dependency: the dependent still names it, as deleted", async ({ store, clock }) => {
    await insert(store, clock, { id: "a" }, { id: "b", after: ["a"] });
    const [a] = await claim(store, 1);
    await finish(store, a!, OK);
    assert.deepEqual(await store.jobDelete({ ids: ["a"] }), ["a"]);
    assert.deepEqual((await store.jobDependencies({ id: "b", limit: 10 })).after, [
      { id: "a", state: null, met: true },
    ]);
    assert.deepEqual((await claim(store)).map((j) => j.id), ["b"]);
  });

  test("jobInsertMany() with a unique key: a live holder refuses another, or stands for it with keep", async ({ store, clock }) => {
    const [first] = await insert(store, clock, { id: "k1", uniqueKey: "sync" });
    assert.equal(first!.uniqueKey, "sync");
    await assert.rejects(
      insert(store, clock, { id: "other" }, { uniqueKey: "sync" }),
      (e: unknown) =>
        e instanceof ConflictError && e.reason === "unique_key_held" && e.subject === "k1" &&
        e.message.includes('"k1"'),
    );
    assert.equal(await store.jobGet({ id: "other" }), undefined, "all or none");
    const kept = await store.jobInsertMany({
      jobs: [newJob(clock, { id: "new" }), newJob(clock, { uniqueKey: "sync" })],
      defaultMaxRetries: 0,
      ifExists: "keep",
    });
    assert.deepEqual([kept.jobs.map((j) => j.id), kept.inserted, kept.kept], [["new", "k1"], 1, [
      1,
    ]]);
    // Two of one key in a batch: the second is the first's.
    await assert.rejects(
      insert(store, clock, { uniqueKey: "twin" }, { uniqueKey: "twin" }),
      (e: unknown) => e instanceof ConflictError && e.reason === "unique_key_held",
    );
    // Processing and failed hold it; a finished job frees it.
    const [k1] = await claim(store, 1);
    assert.equal(k1!.id, "k1");
    await assert.rejects(insert(store, clock, { uniqueKey: "sync" }), ConflictError);
    await finish(store, k1!, OK);
    const [again] = await insert(store, clock, { id: "k2", uniqueKey: "sync" });
    assert.equal(again!.id, "k2");
    // A retry of the finished holder while another holds the key is a conflict.
    await assert.rejects(
      store.jobRetry({ ids: ["k1"], force: true }),
      (e: unknown) =>
        e instanceof ConflictError && e.reason === "unique_key_held" && e.subject === "k2",
    );
    assert.equal((await store.jobGet({ id: "k1" }))?.state, "completed");
  });

  test("jobInsertMany() with a unique key: of two stores inserting it at once, one wins", async ({ store, clock, openAnother }) => {
    const other = await openAnother();
    for (let round = 0; round < 5; round++) {
      const key = `race-${round}`;
      const results = await Promise.allSettled([
        insert(store, clock, { uniqueKey: key }),
        insert(other, clock, { uniqueKey: key }),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r) => r.status === "rejected");
      assert.equal(won.length, 1, `round ${round}`);
      assert.ok(
        lost.every((r) =>
          r.status === "rejected" && r.reason instanceof ConflictError &&
          r.reason.reason === "unique_key_held"
        ),
      );
    }
    assert.equal((await store.jobCountByState()).pending, 5);
  });
}
