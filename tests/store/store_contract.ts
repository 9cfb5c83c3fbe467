/**
 * What every `Store` must do, whatever the database: one suite that each backend's test file runs
 * (`sqlite_test.ts`, `postgres_test.ts`). Tests use only the `Store` interface, the factory and
 * the few raw reads each backend provides (`ContractFixture.raw`), so a backend passes by
 * behaving, not by its SQL. Cases a store cannot support are skipped by its declared
 * capabilities, visibly (the reason is in the test's name), never by the backend's name.
 * The figures and retention cases are in store_contract_stats.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { FakeClock } from "../../lib/clock.ts";
import { ConflictError, NotFoundError } from "../../lib/errors.ts";
import type { Job, NewJob } from "../../lib/job/job.ts";
import { decide } from "../../lib/job/outcome.ts";
import { JOB_STATES } from "../../lib/job/state.ts";
import type { JobState } from "../../lib/job/state.ts";
import type {
  AttemptRef,
  DueCursor,
  JobCounts,
  JobSearchParams,
  Store,
  StoreCapabilities,
} from "../../lib/store/store.ts";
import type { JobFilter } from "../../lib/job/filter.ts";
import { jobMatches } from "../../lib/job/filter.ts";
import {
  BACKOFF,
  finishAttempt,
  insertJob,
  makeJob,
  makeOneOfEach,
  makeWorker,
  TEST_HOST_ID,
  TEST_LEASE_MS,
  TEST_WORKER,
} from "../helpers/factory.ts";
import { within } from "../helpers/poll.ts";
import { T0 } from "../helpers/temp.ts";
import { schedulesContract } from "./store_contract_schedules.ts";
import { statsContract } from "./store_contract_stats.ts";
import { jobControlContract } from "./store_contract_jobctl.ts";
import { dependencyContract } from "./store_contract_deps.ts";
import { jobDeleteContract } from "./store_contract_delete.ts";
import { queuesContract } from "./store_contract_queues.ts";

/** Reads that bypass the store, for what no store method shows (RAW SQL in each backend). */
export interface RawReads {
  /** Counts per state taken from the rows themselves, bypassing any maintained counters. */
  rowCounts(): Promise<Record<string, number>>;
  /** Counts per queue and state (`queue:state`), taken from the rows as `rowCounts` is. */
  queueRowCounts(): Promise<Record<string, number>>;
  /** Rows of attempts and outputs, and how many of them belong to no job. */
  tableCounts(): Promise<{ attempts: number; outputs: number; orphans: number }>;
  /** (minute, metric, bucket) of every per-minute figure row stored. */
  statsRowKeys(): Promise<(readonly [number, number, number])[]>;
}

/** Counts per state as `counts` gives them, and 0 for every state it leaves out. */
export function stateCounts(
  counts: Partial<JobCounts>,
): Record<JobState, number> & { total?: number } {
  return {
    pending: 0,
    processing: 0,
    completed: 0,
    failed: 0,
    dead: 0,
    cancelled: 0,
    ...counts,
  };
}

/**
 * The maintained counts per queue (`queueList`) must equal a tally of the rows per queue and
 * state; zero counts are left out on both sides (a queue may keep rows at zero).
 */
export async function assertQueueCounts(f: ContractFixture, message = ""): Promise<void> {
  const listed: Record<string, number> = {};
  for (const q of (await f.store.queueList()).queues) {
    let total = 0;
    for (const state of JOB_STATES) {
      total += q.counts[state];
      if (q.counts[state] !== 0) listed[`${q.name}:${state}`] = q.counts[state];
    }
    assert.equal(q.counts.total, total, `${message} queue ${q.name}: total`);
  }
  assert.deepEqual(listed, await f.raw.queueRowCounts(), `${message} queue counts`.trim());
}

export interface ContractFixture extends AsyncDisposable {
  store: Store;
  clock: FakeClock;
  raw: RawReads;
  /**
   * Another store on the same database and clock, closed with the fixture. `lossy`: it hears no
   * change notifications, as if each one were lost, so its waits rely on its safety poll
   * (which it may run faster than usual, to keep the test short). `slowPoll`: its safety poll
   * runs rarely (a store whose poll may see other databases' activity, as PostgreSQL's does,
   * would otherwise wake its waits spuriously, which the contract allows but a test of a
   * timeout cannot tell from a change).
   */
  openAnother(options?: { lossy?: boolean; slowPoll?: boolean }): Promise<Store>;
}

/** Registers one case of the contract for one backend. */
export type ContractTest = (
  name: string,
  fn: (f: ContractFixture) => Promise<void>,
  options?: { needs?: keyof StoreCapabilities },
) => void;

export interface ContractOptions {
  /** What the backend's stores declare (checked against `store.capabilities`). */
  capabilities: StoreCapabilities;
  ignore?: boolean;
}

function newJob(overrides: Partial<NewJob> = {}): NewJob {
  return {
    id: undefined,
    command: "echo hi",
    priority: 5,
    maxRetries: 3,
    timeoutMs: null,
    cwd: "/tmp",
    env: {},
    runAt: T0,
    delayMs: 0,
    ...overrides,
  };
}

/** Claims the next due job for `workerId`, at `at` if given (moving the clock there). */
async function claimOne(
  store: Store,
  clock: FakeClock,
  workerId = "w",
  options: { at?: number; leaseMs?: number } = {},
): Promise<Job | undefined> {
  if (options.at !== undefined) clock.set(options.at);
  const [job] = await store.jobClaim({
    host: TEST_HOST_ID,
    workerId,
    leaseMs: options.leaseMs ?? 1000,
    limit: 1,
  });
  return job;
}

function ref(job: Job, change: Partial<AttemptRef> = {}): AttemptRef {
  return { jobId: job.id, attempt: job.attempts, workerId: job.workerId!, ...change };
}

const totals = { jobsDone: 0, jobsFailed: 0, busyMs: 0 };

/** Registers the contract's tests for one backend. */
export function storeContract(
  backend: string,
  open: () => Promise<ContractFixture>,
  options: ContractOptions,
): void {
  const test: ContractTest = (name, fn, testOptions = {}) => {
    const missing = testOptions.needs !== undefined && !options.capabilities[testOptions.needs];
    Deno.test({
      name: `${name} [${backend}]${
        missing ? ` (skipped: the store has no ${testOptions.needs} capability)` : ""
      }`,
      ignore: (options.ignore ?? false) || missing,
      async fn() {
        await using f = await open();
        await fn(f);
      },
    });
  };

  /** The maintained counts must equal a tally of the rows after every change. */
  async function assertCounts(f: ContractFixture, expected: Partial<Record<JobState, number>>) {
    const counts = await f.store.jobCountByState();
    const want = stateCounts(expected);
    const total = Object.values(want).reduce((a, b) => a + b, 0);
    assert.deepEqual(counts, { ...want, total } satisfies JobCounts);
    const { jobs } = await f.store.jobList({ limit: 1_000_000 });
    const tally = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const job of jobs) tally[job.state]++;
    assert.deepEqual(tally, want, "counts differ from the rows listed");
    const rows = await f.raw.rowCounts();
    for (const state of JOB_STATES) assert.equal(rows[state] ?? 0, want[state], `rows ${state}`);
    await assertQueueCounts(f);
  }

  test("jobInsertMany() stores every field and jobGet() returns it", async ({ store }) => {
    const input = newJob({
      id: "full",
      command: "make test",
      priority: 9,
      maxRetries: 7,
      timeoutMs: 60_000,
      cwd: "/srv/app",
      env: { A: "1", B: "two words", C: "" },
      runAt: T0 + 5000,
    });
    const { jobs, inserted } = await store.jobInsertMany({ jobs: [input], defaultMaxRetries: 3 });
    assert.equal(inserted, 1);
    const expected: Omit<Job, "seq"> = {
      id: "full",
      command: "make test",
      state: "pending",
      priority: 9,
      queue: "default",
      attempts: 0,
      budgetUsed: 0,
      maxRetries: 7,
      timeoutMs: 60_000,
      cwd: "/srv/app",
      env: { A: "1", B: "two words", C: "" },
      runAt: T0 + 5000,
      createdAt: T0,
      updatedAt: T0,
      finishedAt: null,
      workerId: null,
      leaseExpiresAt: null,
      lastError: null,
      lastExitCode: null,
      cancelReason: null,
      after: [],
      waitingOn: 0,
      uniqueKey: null,
    };
    const { seq: _seq, ...returned } = jobs[0]!;
    assert.deepEqual(returned, expected);
    const { seq: _seq2, ...stored } = (await store.jobGet({ id: "full" }))!;
    assert.deepEqual(stored, expected);
    assert.equal(await store.jobGet({ id: "nope" }), undefined);
  });

  test("jobInsertMany() keeps unusual text intact", async ({ store, clock }) => {
    const command = "printf '%s\\n' \"$A\" | tr a-z A-Z; echo ✓ 😀 \t'\"`$(x)`";
    await insertJob(store, clock, { id: "text", command, env: { "X-Y.z": "ü\nnewline" } });
    const job = (await store.jobGet({ id: "text" }))!;
    assert.equal(job.command, command);
    assert.deepEqual(job.env, { "X-Y.z": "ü\nnewline" });
  });

  test("jobInsertMany() generates ids that skip user-chosen numeric ids", async ({ store, clock }) => {
    await insertJob(store, clock, { id: "3" });
    await insertJob(store, clock, { id: "4" });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await insertJob(store, clock)).id);
    assert.equal(new Set([...ids, "3", "4"]).size, 6, `generated a taken id: ${ids}`);
    for (const id of ids) assert.match(id, /^\d+$/);
    assert.deepEqual(ids.map(Number), [...ids.map(Number)].sort((a, b) => a - b), "not increasing");
    // A user id equal to a later sequence number, inside one batch.
    const batch = await store.jobInsertMany({
      jobs: [newJob({ id: String(Number(ids[3]) + 1) }), newJob(), newJob()],
      defaultMaxRetries: 3,
    });
    const batchIds = batch.jobs.map((j) => j.id);
    assert.equal(new Set(batchIds).size, 3, `duplicate ids in ${batchIds}`);
  });

  test("jobInsertMany() stores all of a batch or, on a conflict, none", async (f) => {
    const { store, clock } = f;
    await insertJob(store, clock, { id: "taken" });
    const batch = [newJob({ id: "a" }), newJob(), newJob({ id: "taken" })];
    await assert.rejects(
      store.jobInsertMany({ jobs: batch, defaultMaxRetries: 3 }),
      (error: unknown) => {
        assert.ok(error instanceof ConflictError);
        assert.equal(error.exitCode, 3);
        assert.match(error.message, /^Job "taken" already exists$/);
        return true;
      },
    );
    assert.equal(await store.jobGet({ id: "a" }), undefined);
    await assertCounts(f, { pending: 1 });
    const { jobs } = await store.jobList({ limit: 100 });
    assert.deepEqual(jobs.map((j) => j.id), ["taken"]);
  });

  test("jobInsertMany() refuses an id that exists in any state", async (f) => {
    const { store, clock } = f;
    const jobs = await makeOneOfEach(store, clock);
    for (const job of Object.values(jobs)) {
      await assert.rejects(
        store.jobInsertMany({ jobs: [newJob({ id: job.id })], defaultMaxRetries: 3 }),
        ConflictError,
        `${job.state} ${job.id}`,
      );
      const after = await store.jobGet({ id: job.id });
      assert.equal(after?.state, job.state);
      assert.equal(after?.command, job.command);
    }
    await assertCounts(f, {
      pending: 1,
      processing: 1,
      completed: 1,
      failed: 1,
      dead: 1,
      cancelled: 1,
    });
  });

  test("jobInsertMany() with ifExists keep returns the existing job", async (f) => {
    const { store, clock } = f;
    const old = await makeJob(store, clock, "completed", { id: "k", command: "old" });
    const result = await store.jobInsertMany({
      jobs: [newJob({ id: "k", command: "new" }), newJob({ id: "fresh" })],
      defaultMaxRetries: 3,
      ifExists: "keep",
    });
    assert.equal(result.inserted, 1);
    assert.deepEqual(result.jobs.map((j) => [j.id, j.command, j.state]), [
      ["k", "old", "completed"],
      ["fresh", "echo hi", "pending"],
    ]);
    assert.deepEqual(await store.jobGet({ id: "k" }), old);
    await assertCounts(f, { completed: 1, pending: 1 });
  });

  // Bulk enqueues: more jobs than one multi-row statement holds (a backend may insert in chunks),
  // and a batch size that is no multiple of a chunk.
  const BULK = 237;

  test("jobInsertMany() of a bulk batch stores every job in order, numbered and counted", async (f) => {
    const { store } = f;
    await insertJob(store, f.clock, { id: "before" });
    const batch = Array.from({ length: BULK }, (_, i) =>
      newJob({
        command: `echo ${i}`,
        ...(i % 40 === 7 ? { id: `user-${i}` } : {}),
        ...(i === 99 ? { env: { I: "99" }, timeoutMs: 5000, priority: 2, maxRetries: null } : {}),
        ...(i === 150 ? { runAt: null, delayMs: 1500 } : {}),
      }));
    const { jobs, inserted } = await store.jobInsertMany({ jobs: batch, defaultMaxRetries: 4 });
    assert.equal(inserted, BULK);
    assert.deepEqual(jobs.map((j) => j.command), batch.map((j) => j.command));
    const seqs = jobs.map((j) => j.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "not in enqueue order");
    assert.equal(new Set(jobs.map((j) => j.id)).size, BULK, "an id given twice");
    assert.equal(jobs[7]!.id, "user-7");
    for (const job of [jobs[0]!, jobs[99]!, jobs[150]!, jobs[BULK - 1]!]) {
      assert.deepEqual(await store.jobGet({ id: job.id }), job, `job ${job.command}`);
    }
    assert.deepEqual(
      [jobs[99]!.env, jobs[99]!.timeoutMs, jobs[99]!.priority, jobs[99]!.maxRetries],
      [{ I: "99" }, 5000, 2, 4],
    );
    assert.equal(jobs[150]!.runAt, T0 + 1500);
    await assertCounts(f, { pending: BULK + 1 });
  });

  test("jobInsertMany() of a bulk batch with one id taken deep inside stores none", async (f) => {
    const { store, clock } = f;
    await insertJob(store, clock, { id: "taken" });
    const batch = Array.from({ length: BULK }, (_, i) => newJob(i === 130 ? { id: "taken" } : {}));
    await assert.rejects(
      store.jobInsertMany({ jobs: batch, defaultMaxRetries: 3 }),
      (error: unknown) => {
        assert.ok(error instanceof ConflictError);
        assert.equal(error.subject, "taken");
        return true;
      },
    );
    await assertCounts(f, { pending: 1 });
  });

  test("jobInsertMany() of a bulk batch skips numbers users took as ids", async (f) => {
    const { store, clock } = f;
    const first = await insertJob(store, clock);
    // Numbers the batch's generated ids would take: inside the first chunk and further on.
    const taken = [first.seq + 3, first.seq + 70, first.seq + 200].map(String);
    for (const id of taken) await insertJob(store, clock, { id });
    const { jobs } = await store.jobInsertMany({
      jobs: Array.from({ length: BULK }, () => newJob()),
      defaultMaxRetries: 3,
    });
    const ids = new Set(jobs.map((j) => j.id));
    assert.equal(ids.size, BULK);
    for (const id of [...taken, first.id]) assert.ok(!ids.has(id), `generated a taken id ${id}`);
    await assertCounts(f, { pending: BULK + 4 });
  });

  test("jobInsertMany() of a bulk batch with ifExists keep returns existing jobs in place", async (f) => {
    const { store, clock } = f;
    const old = await makeJob(store, clock, "completed", { id: "k", command: "old" });
    const batch = Array.from(
      { length: BULK },
      (_, i) => newJob(i === 80 ? { id: "k", command: "new" } : { command: `echo ${i}` }),
    );
    const result = await store.jobInsertMany({
      jobs: batch,
      defaultMaxRetries: 3,
      ifExists: "keep",
    });
    assert.equal(result.inserted, BULK - 1);
    assert.equal(result.jobs.length, BULK);
    assert.deepEqual(result.jobs[80], old);
    assert.equal(result.jobs[81]!.command, "echo 81");
    await assertCounts(f, { completed: 1, pending: BULK - 1 });
  });

  test("jobList() gives the newest `limit` jobs, oldest first, with the total", async ({ store, clock }) => {
    const made = [];
    for (const id of ["c", "a", "b", "d"]) {
      made.push(await insertJob(store, clock, { id, priority: 1 }));
    }
    const all = await store.jobList({ limit: 100 });
    assert.deepEqual(all.jobs.map((j) => j.id), ["c", "a", "b", "d"]);
    assert.equal(all.total, 4);
    assert.equal(all.older, false);
    const exact = await store.jobList({ limit: 4 });
    assert.deepEqual([exact.jobs.length, exact.older], [4, false]);
    const cut = await store.jobList({ limit: 2 });
    assert.deepEqual(cut.jobs.map((j) => j.id), ["b", "d"]);
    assert.equal(cut.total, 4);
    assert.equal(cut.older, true);
  });

  test("jobList() pages back by sequence number (beforeSeq)", async ({ store, clock }) => {
    const seqs: Record<string, number> = {};
    for (const id of ["c", "a", "b", "d", "e"]) {
      seqs[id] = (await insertJob(store, clock, { id })).seq;
    }
    const page = await store.jobList({ limit: 2, beforeSeq: seqs.b! });
    assert.deepEqual(page.jobs.map((j) => j.id), ["c", "a"]);
    assert.equal(page.older, false);
    assert.equal(page.total, 5, "the total counts every matching job");
    const middle = await store.jobList({ limit: 2, beforeSeq: seqs.d! });
    assert.deepEqual([middle.jobs.map((j) => j.id), middle.older], [["a", "b"], true]);
    const none = await store.jobList({ limit: 2, beforeSeq: seqs.c! });
    assert.deepEqual([none.jobs, none.older], [[], false]);
    // A sequence number between jobs (a pruned one's) pages from there.
    const after = await store.jobList({ limit: 10, beforeSeq: seqs.e! + 1000 });
    assert.deepEqual(after.jobs.map((j) => j.id), ["c", "a", "b", "d", "e"]);
  });

  test("jobList() filters by one state or several, paging the same way", async ({ store, clock }) => {
    await makeOneOfEach(store, clock); // d1, c1, f1, r1, x1, p1 in that order
    const p2 = await makeJob(store, clock, "pending", { id: "p2" });
    for (const state of JOB_STATES) {
      const { jobs, total } = await store.jobList({ states: [state], limit: 100 });
      assert.ok(jobs.every((j) => j.state === state), state);
      assert.equal(total, state === "pending" ? 2 : 1, state);
    }
    const pending = await store.jobList({ states: ["pending"], limit: 1 });
    assert.deepEqual(pending.jobs.map((j) => j.id), ["p2"]);
    assert.deepEqual([pending.total, pending.older], [2, true]);
    const back = await store.jobList({ states: ["pending"], limit: 1, beforeSeq: p2.seq });
    assert.deepEqual([back.jobs.map((j) => j.id), back.older], [["p1"], false]);

    const two = await store.jobList({ states: ["pending", "dead"], limit: 100 });
    assert.deepEqual(two.jobs.map((j) => j.id), ["d1", "p1", "p2"]);
    assert.deepEqual([two.total, two.older], [3, false]);
    const cut = await store.jobList({ states: ["dead", "pending"], limit: 2 });
    assert.deepEqual([cut.jobs.map((j) => j.id), cut.older], [["p1", "p2"], true]);
    const rest = await store.jobList({
      states: ["dead", "pending"],
      limit: 2,
      beforeSeq: cut.jobs[0]!.seq,
    });
    assert.deepEqual([rest.jobs.map((j) => j.id), rest.older], [["d1"], false]);
    const every = await store.jobList({ states: [...JOB_STATES], limit: 3 });
    assert.deepEqual(every.jobs.map((j) => j.id), ["x1", "p1", "p2"]);
    assert.equal(every.total, 7);
    // An empty list of states matches nothing.
    assert.deepEqual(await store.jobList({ states: [], limit: 5 }), {
      jobs: [],
      total: 0,
      older: false,
    });
  });

  test("jobCountByState() stays right across every transition", async (f) => {
    const { store, clock } = f;
    await assertCounts(f, {});
    const job = await insertJob(store, clock, { id: "j", maxRetries: 1 });
    await insertJob(store, clock, { id: "other", runAt: T0 + 3_600_000 });
    await assertCounts(f, { pending: 2 });
    let held = (await claimOne(store, clock, "w", { leaseMs: 1000 }))!;
    assert.equal(held.id, job.id);
    await assertCounts(f, { pending: 1, processing: 1 });
    let after = await finishAttempt(store, clock, held, { kind: "interrupted", error: "stop" });
    assert.equal(after.state, "pending");
    await assertCounts(f, { pending: 2 });
    held = (await claimOne(store, clock, "w", { leaseMs: 1000 }))!;
    after = await finishAttempt(store, clock, held, { kind: "exited", code: 1 });
    assert.equal(after.state, "failed");
    await assertCounts(f, { pending: 1, failed: 1 });
    clock.set(after.runAt);
    held = (await claimOne(store, clock, "w", { leaseMs: 1000 }))!;
    await assertCounts(f, { pending: 1, processing: 1 });
    after = await finishAttempt(store, clock, held, { kind: "exited", code: 1 });
    assert.equal(after.state, "dead");
    await assertCounts(f, { pending: 1, dead: 1 });
    // The store's own upkeep (whatever it does to the counts) changes none of them.
    await store.maintain();
    await assertCounts(f, { pending: 1, dead: 1 });
    await store.jobDlqRetry({ ids: ["j"] });
    await assertCounts(f, { pending: 2 });
    held = (await claimOne(store, clock, "w", { leaseMs: 1000 }))!;
    after = await finishAttempt(store, clock, held, { kind: "exited", code: 0 });
    assert.equal(after.state, "completed");
    await assertCounts(f, { pending: 1, completed: 1 });
    // Refused writes change no count.
    await assert.rejects(
      store.jobInsertMany({ jobs: [newJob({ id: "j" })], defaultMaxRetries: 3 }),
    );
    await assert.rejects(store.jobDlqRetry({ ids: ["other"] }));
    assert.equal(
      await store.jobFinish({
        ...ref(held),
        decision: decide(held, { kind: "exited", code: 0 }, BACKOFF),
      }),
      false,
    );
    await assertCounts(f, { pending: 1, completed: 1 });
  });

  test("jobClaim() takes priority 10 first, then earlier run_at, then enqueue order", async ({ store, clock }) => {
    // Enqueued in shuffled order; all due.
    const specs: [string, number, number][] = [
      ["p5-late", 5, T0 - 1000],
      ["p1", 1, T0 - 9000],
      ["p10-b", 10, T0 - 5000],
      ["p5-early", 5, T0 - 8000],
      ["p10-a", 10, T0 - 5000],
      ["p7", 7, T0],
      ["p5-same-1", 5, T0 - 1000],
      ["p10-first", 10, T0 - 6000],
    ];
    for (const [id, priority, runAt] of specs) {
      await insertJob(store, clock, { id, priority, runAt });
    }
    const order: string[] = [];
    for (;;) {
      const job = await claimOne(store, clock, "w", { leaseMs: 1000 });
      if (!job) break;
      order.push(job.id);
    }
    assert.deepEqual(order, [
      "p10-first",
      "p10-b",
      "p10-a",
      "p7",
      "p5-early",
      "p5-late",
      "p5-same-1",
      "p1",
    ]);
  });

  test("jobClaim() does not take a job scheduled for later until it is due", async ({ store, clock }) => {
    await insertJob(store, clock, { id: "later", priority: 10, runAt: T0 + 60_000 });
    await insertJob(store, clock, { id: "now", priority: 1 });
    assert.equal((await claimOne(store, clock, "w", { at: T0 }))?.id, "now");
    assert.equal(await claimOne(store, clock, "w", { at: T0 + 59_999 }), undefined);
    assert.deepEqual(await store.jobNextDue(), { dueNow: false, nextDueInMs: 1 });
    clock.set(T0 + 60_000);
    assert.deepEqual(await store.jobNextDue(), { dueNow: true, nextDueInMs: 0 });
    assert.equal((await claimOne(store, clock))?.id, "later");
    assert.deepEqual(await store.jobNextDue(), { dueNow: false, nextDueInMs: null });
  });

  test("jobClaim() takes a failed job again once its retry is due", async ({ store, clock }) => {
    const failed = await makeJob(store, clock, "failed", { id: "f" });
    assert.equal(failed.runAt, clock.now() + 2000); // 2^1 s after attempt 1
    const failedAt = clock.now();
    assert.equal(await claimOne(store, clock, "w2", { at: failedAt + 1999 }), undefined);
    const again = await claimOne(store, clock, "w2", { at: failedAt + 2000 });
    assert.equal(again?.id, "f");
    assert.equal(again?.attempts, 2);
    assert.equal(again?.budgetUsed, 2);
    assert.equal(again?.workerId, "w2");
  });

  test("jobClaim() sets the lease and starts an attempt record", async ({ store, clock }) => {
    await insertJob(store, clock, { id: "c" });
    clock.advance(500);
    const job = (await claimOne(store, clock, "w9", { leaseMs: 30_000 }))!;
    assert.equal(job.state, "processing");
    assert.equal(job.attempts, 1);
    assert.equal(job.budgetUsed, 1);
    assert.equal(job.workerId, "w9");
    assert.equal(job.leaseExpiresAt, T0 + 500 + 30_000);
    assert.equal(job.updatedAt, T0 + 500);
    assert.deepEqual(await store.jobGet({ id: "c" }), job);
    const attempts = await store.attemptList({ jobId: "c" });
    assert.equal(attempts.length, 1);
    assert.deepEqual(
      { ...attempts[0]!, pid: null },
      {
        jobId: "c",
        attempt: 1,
        workerId: "w9",
        startedAt: T0 + 500,
        finishedAt: null,
        outcome: null,
        exitCode: null,
        signal: null,
        error: null,
        pid: null,
      },
    );
    assert.equal(
      await claimOne(store, clock, "w8", { leaseMs: 30_000 }),
      undefined,
    );
  });

  test("jobFinish(), workerHeartbeat() and the attempt records with a wrong worker or attempt change nothing", async ({ store, clock }) => {
    const job = await makeJob(store, clock, "processing", { id: "x" });
    const before = await store.jobGet({ id: "x" });
    const attemptsBefore = await store.attemptList({ jobId: "x" });
    const decision = decide(job, { kind: "exited", code: 0 }, BACKOFF);
    const stale = [
      ref(job, { workerId: "intruder" }),
      ref(job, { attempt: job.attempts + 1 }),
      ref(job, { attempt: job.attempts - 1 }),
      ref(job, { jobId: "other" }),
    ];
    for (const r of stale) {
      assert.equal(
        await store.jobFinish({ ...r, decision }),
        false,
        JSON.stringify(r),
      );
      assert.deepEqual(
        await store.workerHeartbeat({
          id: r.workerId,
          leases: [{ ...r, leaseMs: 99_000 }],
          totals,
        }),
        { lost: [r], cancel: [] },
      );
      assert.deepEqual(await store.attemptSetProcess([{ ...r, pid: 1, pidStart: 1 }]), [false]);
      const empty = { head: new Uint8Array(0), tail: new Uint8Array(0), total: 0 };
      assert.deepEqual(
        await store.attemptSaveOutput([{ ...r, stdout: empty, stderr: empty }]),
        [false],
      );
    }
    assert.deepEqual(await store.jobGet({ id: "x" }), before);
    assert.deepEqual(await store.attemptList({ jobId: "x" }), attemptsBefore);
    assert.equal(await store.attemptOutput({ jobId: "x", attempt: 1 }), undefined);

    // The owner may: renew, then finish once; a second finish is stale.
    clock.advance(10_000);
    const lease = { ...ref(job), leaseMs: TEST_LEASE_MS };
    assert.deepEqual(
      await store.workerHeartbeat({ id: job.workerId!, leases: [lease], totals }),
      { lost: [], cancel: [] },
    );
    assert.equal((await store.jobGet({ id: "x" }))?.leaseExpiresAt, clock.now() + TEST_LEASE_MS);
    assert.equal(await store.jobFinish({ ...ref(job), decision }), true);
    assert.equal(await store.jobFinish({ ...ref(job), decision }), false);
    assert.deepEqual(
      await store.workerHeartbeat({ id: job.workerId!, leases: [lease], totals }),
      { lost: [ref(job)], cancel: [] },
    );
    assert.equal((await store.jobGet({ id: "x" }))?.state, "completed");
  });

  test("jobFinishAndClaim() arms reserved attempts in the transaction that records outcomes", async (f) => {
    const { store, clock } = f;
    for (const id of ["a", "b", "c", "d"]) await insertJob(store, clock, { id });
    const claimed = await store.jobClaim({
      host: TEST_HOST_ID,
      workerId: "w",
      leaseMs: 1000,
      limit: 3,
    });
    assert.deepEqual(claimed.map((j) => j.id), ["a", "b", "c"]);
    const [a, b, c] = claimed as [Job, Job, Job];
    await store.attemptArm([ref(a)]);
    clock.advance(5);
    const result = await store.jobFinishAndClaim({
      finish: [{ ...ref(a), decision: decide(a, { kind: "exited", code: 0 }, BACKOFF) }],
      // b takes a's slot; a stranger's ref to c arms nothing.
      arm: [ref(b), ref(c, { workerId: "other" })],
      claim: { host: TEST_HOST_ID, workerId: "w", leaseMs: 1000, limit: 1 },
    });
    assert.deepEqual(result.applied, [true]);
    assert.deepEqual(result.armed, [true, false]);
    assert.deepEqual(result.claimed.map((j) => j.id), ["d"]);
    const processing = await store.jobListProcessing();
    assert.deepEqual(
      processing.map((p) => [p.job.id, p.armed]).sort(),
      [["b", true], ["c", false], ["d", false]],
    );
    assert.equal((await store.attemptList({ jobId: "b" }))[0]?.startedAt, clock.now());
    // Armed attempts cannot be unclaimed; c, still only reserved, can.
    assert.equal(await store.jobUnclaim(ref(b)), false);
    assert.equal(await store.jobUnclaim(ref(c)), true);
    await assertCounts(f, { completed: 1, processing: 2, pending: 1 });
  });

  test("jobClaim() with armFirst arms the best of what it claims; the rest stay reserved", async (f) => {
    const { store, clock } = f;
    await insertJob(store, clock, { id: "low", priority: 1 });
    await insertJob(store, clock, { id: "high", priority: 9 });
    await insertJob(store, clock, { id: "mid", priority: 5 });
    const claim = { host: TEST_HOST_ID, workerId: "w", leaseMs: 1000, limit: 2, armFirst: 1 };
    const claimed = await store.jobClaim(claim);
    assert.deepEqual(claimed.map((j) => j.id), ["high", "mid"]);
    const processing = await store.jobListProcessing();
    assert.deepEqual(
      processing.map((p) => [p.job.id, p.armed]).sort(),
      [["high", true], ["mid", false]],
    );
    // Armed already: arming again changes nothing, and it is not undone; "mid" is only reserved.
    assert.deepEqual(await store.attemptArm([ref(claimed[0]!)]), [false]);
    assert.equal(await store.jobUnclaim(ref(claimed[0]!)), false);
    assert.equal(await store.jobUnclaim(ref(claimed[1]!)), true);
    // In a worker's step too: the outcome, then a claim that arms its first job.
    const step = await store.jobFinishAndClaim({
      finish: [{
        ...ref(claimed[0]!),
        decision: decide(claimed[0]!, { kind: "exited", code: 0 }, BACKOFF),
      }],
      claim: { ...claim, limit: 1 },
    });
    assert.deepEqual([step.applied, step.claimed.map((j) => j.id)], [[true], ["mid"]]);
    assert.deepEqual(
      await store.attemptArm([ref(step.claimed[0]!)]),
      [false],
      "armed by the claim",
    );
    await assertCounts(f, { completed: 1, processing: 1, pending: 1 });
  });

  test("attemptArm() starts a reserved attempt; jobUnclaim() undoes one never started", async (f) => {
    const { store, clock } = f;
    await insertJob(store, clock, { id: "a" });
    await insertJob(store, clock, { id: "b" });
    const [a, b] = await store.jobClaim({
      host: TEST_HOST_ID,
      workerId: "w",
      leaseMs: 1000,
      limit: 2,
    });
    assert.deepEqual([a?.id, b?.id], ["a", "b"]);
    await assertCounts(f, { processing: 2 });
    let processing = await store.jobListProcessing();
    assert.deepEqual(processing.map((p) => [p.job.id, p.armed]), [["a", false], ["b", false]]);
    clock.advance(5);
    // Arming is fenced: a stranger's ref, or an attempt that is not the job's, changes nothing.
    assert.deepEqual(
      await store.attemptArm([ref(a!), ref(b!, { workerId: "other" }), ref(b!, { attempt: 2 })]),
      [true, false, false],
    );
    assert.deepEqual(await store.attemptArm([ref(a!)]), [false], "armed once");
    processing = await store.jobListProcessing();
    assert.deepEqual(processing.map((p) => [p.job.id, p.armed]), [["a", true], ["b", false]]);
    // The attempt starts when it is armed (queue wait counts up to then).
    assert.equal((await store.attemptList({ jobId: "a" }))[0]?.startedAt, clock.now());
    // An armed attempt is not undone; a reserved one is, and leaves no trace.
    assert.equal(await store.jobUnclaim(ref(a!)), false);
    assert.equal(await store.jobUnclaim(ref(b!, { workerId: "other" })), false);
    assert.equal(await store.jobUnclaim(ref(b!)), true);
    assert.equal(await store.jobUnclaim(ref(b!)), false);
    const undone = (await store.jobGet({ id: "b" }))!;
    assert.deepEqual(
      [undone.state, undone.attempts, undone.budgetUsed, undone.workerId, undone.leaseExpiresAt],
      ["pending", 0, 0, null, null],
    );
    assert.deepEqual(await store.attemptList({ jobId: "b" }), []);
    await assertCounts(f, { processing: 1, pending: 1 });
    // The owner that comes back cannot arm what was undone; the job is claimable again.
    assert.deepEqual(await store.attemptArm([ref(b!)]), [false]);
    assert.equal((await claimOne(store, clock, "w2"))?.id, "b");
  });

  test("jobFinish() with requireLeaseExpired waits for the lease to run out", async ({ store, clock }) => {
    const job = await makeJob(store, clock, "processing", { id: "r" });
    const lost = decide(job, { kind: "lost", error: "worker lost" }, BACKOFF);
    const rescue = (now: number) => {
      clock.set(now);
      return store.jobFinish({ ...ref(job), decision: lost, requireLeaseExpired: true });
    };
    assert.equal(await rescue(job.leaseExpiresAt! - 1), false);
    assert.equal((await store.jobGet({ id: "r" }))?.state, "processing");
    assert.equal(await rescue(job.leaseExpiresAt!), true);
    const after = (await store.jobGet({ id: "r" }))!;
    assert.equal(after.state, "failed");
    assert.equal(after.lastError, "worker lost");
    assert.equal(after.workerId, null);
    assert.equal(after.leaseExpiresAt, null);
  });

  test("jobFinish() records the outcome on the job and its attempt", async ({ store, clock }) => {
    const job = await makeJob(store, clock, "processing", { id: "o", maxRetries: 0 });
    clock.advance(1500);
    const decision = decide(job, { kind: "timeout", afterMs: 1500, signal: "SIGKILL" }, BACKOFF);
    const output = {
      stdout: { head: new TextEncoder().encode("out"), tail: new Uint8Array(0), total: 3 },
      stderr: {
        head: new TextEncoder().encode("err-head"),
        tail: new TextEncoder().encode("tail"),
        total: 5000,
      },
    };
    assert.equal(await store.jobFinish({ ...ref(job), decision, output }), true);
    const after = (await store.jobGet({ id: "o" }))!;
    assert.equal(after.state, "dead");
    assert.equal(after.finishedAt, clock.now());
    assert.equal(after.lastError, "timed out after 1.5s (SIGKILL)");
    assert.equal(after.lastExitCode, null);
    const [attempt] = await store.attemptList({ jobId: "o" });
    assert.equal(attempt?.outcome, "timeout");
    assert.equal(attempt?.signal, "SIGKILL");
    assert.equal(attempt?.finishedAt, clock.now());
    const saved = await store.attemptOutput({ jobId: "o", attempt: 1 });
    assert.deepEqual(saved, output);
  });

  test("jobFinish() of an interrupt gives the attempt back to the budget", async ({ store, clock }) => {
    const job = await makeJob(store, clock, "processing", { id: "i", maxRetries: 0 });
    const after = await finishAttempt(store, clock, job, {
      kind: "interrupted",
      error: "shutdown",
    });
    assert.equal(after.state, "pending");
    assert.equal(after.attempts, 1);
    assert.equal(after.budgetUsed, 0);
    const again = (await claimOne(store, clock, "w", { leaseMs: 1000 }))!;
    assert.equal(again.attempts, 2);
    assert.equal(again.budgetUsed, 1);
    const attempts = await store.attemptList({ jobId: "i" });
    assert.deepEqual(attempts.map((a) => a.outcome), ["interrupted", null]);
  });

  test("jobDlqRetry() gives dead jobs a fresh budget and keeps their history", async (f) => {
    const { store, clock } = f;
    const dead = await makeJob(store, clock, "dead", { id: "d", maxRetries: 2 });
    assert.equal(dead.attempts, 3);
    clock.advance(60_000);
    const [retried] = await store.jobDlqRetry({ ids: ["d"] });
    assert.equal(retried?.state, "pending");
    assert.equal(retried?.attempts, 3);
    assert.equal(retried?.budgetUsed, 0);
    assert.equal(retried?.runAt, clock.now());
    assert.equal(retried?.finishedAt, null);
    assert.equal(retried?.updatedAt, clock.now());
    assert.deepEqual(await store.jobGet({ id: "d" }), retried);
    assert.equal((await store.attemptList({ jobId: "d" })).length, 3);
    const again = (await claimOne(store, clock, "w", { leaseMs: 1000 }))!;
    assert.equal(again.attempts, 4);
    assert.equal(again.budgetUsed, 1);
    // A second retry of the same job (now processing) is a conflict: it re-runs once.
    await assert.rejects(store.jobDlqRetry({ ids: ["d"] }), ConflictError);
  });

  test("jobDlqRetry() refuses unknown and live jobs, changing nothing", async (f) => {
    const { store, clock } = f;
    // Dead jobs first: making one claims it, and claiming takes the next due job.
    const d2 = await makeJob(store, clock, "dead", { id: "d2", maxRetries: 0 });
    const jobs = await makeOneOfEach(store, clock);
    await assert.rejects(
      store.jobDlqRetry({ ids: ["d1", "ghost"] }),
      (error: unknown) => {
        assert.ok(error instanceof NotFoundError);
        assert.equal(error.exitCode, 4);
        assert.match(error.message, /^Job "ghost" not found$/);
        return true;
      },
    );
    for (const state of ["pending", "processing", "completed", "failed"] as const) {
      const id = jobs[state].id;
      await assert.rejects(
        store.jobDlqRetry({ ids: ["d1", id, "d2"] }),
        (error: unknown) => {
          assert.ok(error instanceof ConflictError, state);
          assert.equal(
            error.message,
            `Job "${id}" is not in the dead letter queue: it is ${state}`,
          );
          return true;
        },
      );
    }
    assert.deepEqual(await store.jobGet({ id: "d1" }), jobs.dead);
    assert.deepEqual(await store.jobGet({ id: "d2" }), d2);
    await assertCounts(f, {
      pending: 1,
      processing: 1,
      completed: 1,
      failed: 1,
      dead: 2,
      cancelled: 1,
    });
  });

  test("jobRunNow() makes waiting jobs due now, all or none; it refuses the others", async (f) => {
    const { store, clock } = f;
    const jobs = await makeOneOfEach(store, clock);
    const later = await insertJob(store, clock, { id: "later", runAt: clock.now() + 3_600_000 });
    const early = await insertJob(store, clock, { id: "early", runAt: clock.now() - 5000 });
    for (const state of ["processing", "completed", "dead", "cancelled"] as const) {
      const id = jobs[state].id;
      await assert.rejects(store.jobRunNow({ ids: ["later", id] }), (error: unknown) => {
        assert.ok(error instanceof ConflictError, state);
        assert.equal(error.reason, "not_waiting");
        assert.equal(error.message, `Job "${id}" is not waiting to run: it is ${state}`);
        return true;
      });
    }
    await assert.rejects(store.jobRunNow({ ids: ["later", "ghost"] }), NotFoundError);
    assert.deepEqual(await store.jobGet({ id: "later" }), later, "nothing changed");
    clock.advance(1000);
    const now = clock.now();
    const done = await store.jobRunNow({ ids: ["later", "f1", "early", "later"] });
    assert.deepEqual(done.map((j) => [j.id, j.state, j.runAt]), [
      ["later", "pending", now],
      ["f1", "failed", Math.min(jobs.failed.runAt, now)],
      ["early", "pending", early.runAt],
    ]);
    assert.equal((await store.jobGet({ id: "f1" }))!.attempts, jobs.failed.attempts);
  });

  test("jobDlqRetry() with all retries every dead job, or none when the DLQ is empty", async (f) => {
    const { store, clock } = f;
    assert.deepEqual(await store.jobDlqRetry({ ids: "all" }), []);
    await makeJob(store, clock, "dead", { id: "d2", maxRetries: 0 });
    await makeOneOfEach(store, clock);
    const retried = await store.jobDlqRetry({ ids: "all" });
    assert.deepEqual(retried.map((j) => j.id).sort(), ["d1", "d2"]);
    await assertCounts(f, { pending: 3, processing: 1, completed: 1, failed: 1, cancelled: 1 });
  });

  test("every method reports errors as a rejected promise, never a synchronous throw", async ({ store, clock }) => {
    // Callers such as a worker's heartbeat use .catch(); a synchronous throw would escape it.
    await insertJob(store, clock, { id: "x" });
    const calls: [string, () => Promise<unknown>][] = [
      [
        "jobInsertMany",
        () => store.jobInsertMany({ jobs: [newJob({ id: "x" })], defaultMaxRetries: 3 }),
      ],
      ["jobDlqRetry", () => store.jobDlqRetry({ ids: ["x"] })],
      ["jobDlqRetry unknown", () => store.jobDlqRetry({ ids: ["ghost"] })],
    ];
    for (const [name, call] of calls) {
      let promise: Promise<unknown> | undefined;
      try {
        promise = call();
      } catch (error) {
        assert.fail(`${name}() threw synchronously: ${error}`);
      }
      await assert.rejects(promise, name);
    }
  });

  test("configSet() stores, configGetAll() reads and configUnset() removes settings", async ({ store }) => {
    assert.deepEqual(await store.configGetAll(), {});
    await store.configSet({ key: "max-retries", value: "5" });
    await store.configSet({ key: "max-retries", value: "6" });
    await store.configSet({ key: "backoff-max", value: "60000" });
    assert.deepEqual(await store.configGetAll(), { "max-retries": "6", "backoff-max": "60000" });
    assert.equal(await store.configUnset({ key: "max-retries" }), true);
    assert.equal(await store.configUnset({ key: "max-retries" }), false);
    assert.deepEqual(await store.configGetAll(), { "backoff-max": "60000" });
  });

  test("workerRegister(), workerHeartbeat() and workerSetState() keep the worker list", async ({ store, clock }) => {
    const worker = await makeWorker(store, clock, { id: "w1", alive: true });
    const registered = {
      ...worker,
      state: "running",
      runningJobs: [],
      startedAt: T0,
      heartbeatAt: T0,
      heartbeatAgeMs: 0,
      jobsDone: 0,
      jobsFailed: 0,
      busyMs: 0,
    };
    assert.deepEqual(await store.workerList(), [registered]);
    clock.advance(1000);
    assert.deepEqual((await store.workerList())[0]?.heartbeatAgeMs, 1000);
    const counted = { jobsDone: 3, jobsFailed: 1, busyMs: 420 };
    assert.deepEqual(await store.workerHeartbeat({ id: "w1", leases: [], totals: counted }), {
      lost: [],
      cancel: [],
    });
    clock.advance(1);
    await store.workerSetState({ id: "w1", state: "stopping" });
    const [updated] = await store.workerList();
    assert.deepEqual(updated, {
      ...registered,
      ...counted,
      state: "stopping",
      heartbeatAt: T0 + 1001,
      heartbeatAgeMs: 0,
    });
    await store.workerRemove({ ids: ["w1"] });
    assert.deepEqual(await store.workerList(), []);
  });

  test("workerStopRequest() reaches the workers registered before it, not later ones", async (f) => {
    const { store, clock } = f;
    await makeWorker(store, clock, { id: "early", alive: true });
    assert.equal(await store.workerStopRequested({ id: "early" }), null);
    clock.advance(10);
    assert.equal(await store.workerStopRequest({ mode: "graceful" }), clock.now());
    clock.advance(10);
    await makeWorker(store, clock, { id: "late", alive: true });
    assert.equal(await store.workerStopRequested({ id: "early" }), "graceful");
    assert.equal(await store.workerStopRequested({ id: "late" }), null);
    assert.equal(await store.workerStopRequested({ id: "nobody" }), null);
    // A forced request outranks the graceful one, for the workers it reaches.
    clock.advance(10);
    await store.workerStopRequest({ mode: "force" });
    assert.equal(await store.workerStopRequested({ id: "early" }), "force");
    assert.equal(await store.workerStopRequested({ id: "late" }), "force");
    clock.advance(10);
    await makeWorker(store, clock, { id: "later", alive: true });
    assert.equal(await store.workerStopRequested({ id: "later" }), null);
    // Another connection (another host) sees the request.
    const other = await f.openAnother();
    assert.equal(await other.workerStopRequested({ id: "late" }), "force");
  });

  test("maintenanceTurn() gives each round to exactly one caller, by the store's clock", async (f) => {
    const { store, clock } = f;
    const other = await f.openAnother();
    const turn = (s: Store, name = "housekeeping") => s.maintenanceTurn({ name, everyMs: 60_000 });
    assert.equal(await turn(store), true);
    assert.equal(await turn(store), false);
    assert.equal(await turn(other), false);
    // Names have rounds of their own.
    assert.equal(await turn(other, "other"), true);
    clock.advance(59_999);
    assert.equal(await turn(other), false);
    clock.advance(1);
    // Many callers at once, on two connections: one round, one winner.
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => turn(i % 2 === 0 ? store : other)),
    );
    assert.equal(results.filter(Boolean).length, 1, `winners: ${results}`);
    // A clock stepped back past the last round's start: the round is due rather than stuck.
    clock.set(clock.now() - 3_600_000);
    assert.equal(await turn(store), true);
    assert.equal(await turn(other), false);
  });

  test("workerHeartbeat() renews only a lease the worker holds", async ({ store, clock }) => {
    await makeWorker(store, clock, { id: "w", alive: true });
    await store.jobInsertMany({ jobs: [newJob({ id: "j" })], defaultMaxRetries: 3 });
    const job = (await claimOne(store, clock, "w", { leaseMs: 1000 }))!;
    const lease = { jobId: "j", attempt: job.attempts, workerId: "w", leaseMs: 5000 };
    assert.deepEqual(await store.workerHeartbeat({ id: "w", leases: [lease], totals }), {
      lost: [],
      cancel: [],
    });
    assert.equal((await store.jobGet({ id: "j" }))?.leaseExpiresAt, clock.now() + 5000);
    const wrong = { ...lease, attempt: 2 };
    assert.deepEqual(await store.workerHeartbeat({ id: "w", leases: [wrong], totals }), {
      lost: [{ jobId: "j", attempt: 2, workerId: "w" }],
      cancel: [],
    });
    const other = { ...lease, workerId: "other" };
    assert.deepEqual(await store.workerHeartbeat({ id: "other", leases: [other], totals }), {
      lost: [{ jobId: "j", attempt: job.attempts, workerId: "other" }],
      cancel: [],
    });
    assert.equal((await store.jobGet({ id: "j" }))?.leaseExpiresAt, clock.now() + 5000);
  });

  test("jobListProcessing() lists held jobs with their owner", async ({ store, clock }) => {
    await makeWorker(store, clock, { id: TEST_WORKER, alive: true });
    await makeOneOfEach(store, clock);
    const processing = await store.jobListProcessing();
    assert.equal(processing.length, 1);
    assert.equal(processing[0]?.job.id, "r1");
    assert.equal(processing[0]?.owner?.id, TEST_WORKER);
    assert.deepEqual(processing[0]?.owner?.runningJobs, ["r1"]);
    assert.equal(processing[0]?.leaseExpired, false);
    const job = processing[0]!.job;
    assert.deepEqual(await store.attemptSetProcess([{ ...ref(job), pid: 4242, pidStart: 99 }]), [
      true,
    ]);
    const [withPid] = await store.jobListProcessing();
    assert.equal(withPid?.pid, 4242);
    assert.equal(withPid?.pidStart, 99);
  });

  test("capabilities are what the backend declares", ({ store }) => {
    assert.deepEqual({ ...store.capabilities }, options.capabilities);
    return Promise.resolve();
  });

  test("jobTakeOver() hands an attempt to another worker, fencing the old owner out", async (f) => {
    const { store, clock } = f;
    const job = await makeJob(store, clock, "processing", { id: "t" });
    clock.advance(1000);
    const take = (r: AttemptRef, requireLeaseExpired = false) =>
      store.jobTakeOver({ ...r, newWorkerId: "rescuer", leaseMs: 7000, requireLeaseExpired });
    // Only the attempt's owner can be taken from.
    assert.equal(await take(ref(job, { workerId: "intruder" })), false);
    assert.equal(await take(ref(job, { attempt: job.attempts + 1 })), false);
    assert.equal(await take(ref(job, { jobId: "ghost" })), false);
    assert.equal((await store.jobGet({ id: "t" }))?.workerId, job.workerId);
    assert.equal(await take(ref(job)), true);
    const taken = (await store.jobGet({ id: "t" }))!;
    assert.deepEqual(
      [taken.state, taken.workerId, taken.leaseExpiresAt, taken.attempts],
      ["processing", "rescuer", clock.now() + 7000, job.attempts],
    );
    // The old owner's writes now match nothing; the new owner's do.
    const decision = decide(job, { kind: "exited", code: 0 }, BACKOFF);
    assert.equal(await store.jobFinish({ ...ref(job), decision }), false);
    assert.deepEqual(
      await store.workerHeartbeat({
        id: job.workerId!,
        leases: [{ ...ref(job), leaseMs: 1000 }],
        totals,
      }),
      { lost: [ref(job)], cancel: [] },
    );
    assert.equal(await take(ref(job)), false, "taken once");
    const lost = decide(job, { kind: "lost", error: "worker lost" }, BACKOFF);
    assert.equal(
      await store.jobFinish({ ...ref(job, { workerId: "rescuer" }), decision: lost }),
      true,
    );
    assert.equal((await store.jobGet({ id: "t" }))?.state, "failed");
    await assertCounts(f, { failed: 1 });
  });

  test("jobTakeOver() with requireLeaseExpired waits for the lease to run out", async ({ store, clock }) => {
    const job = await makeJob(store, clock, "processing", { id: "e" });
    const take = () =>
      store.jobTakeOver({
        ...ref(job),
        newWorkerId: "rescuer",
        leaseMs: 5000,
        requireLeaseExpired: true,
      });
    clock.set(job.leaseExpiresAt! - 1);
    assert.equal(await take(), false);
    // A renewal moves the expiry: the attempt stays its owner's past the old one.
    await store.workerHeartbeat({
      id: job.workerId!,
      leases: [{ ...ref(job), leaseMs: 10_000 }],
      totals,
    });
    clock.set(job.leaseExpiresAt!);
    assert.equal(await take(), false);
    assert.equal((await store.jobListProcessing())[0]?.leaseExpired, false);
    assert.equal((await store.jobListProcessing())[0]?.leaseOverdueMs, null);
    clock.set(job.leaseExpiresAt! - 1 + 10_000);
    assert.equal((await store.jobListProcessing())[0]?.leaseExpired, true);
    assert.equal((await store.jobListProcessing())[0]?.leaseOverdueMs, 0);
    clock.advance(250);
    assert.equal((await store.jobListProcessing())[0]?.leaseOverdueMs, 250);
    assert.equal(await take(), true);
    assert.equal((await store.jobGet({ id: "e" }))?.workerId, "rescuer");
  });

  /** Waits until a wait on `store` sees nothing (its start-up and earlier changes are past). */
  async function quiet(store: Store): Promise<void> {
    for (let i = 0; i < 50; i++) {
      if (!await store.waitForChange({ since: store.changeMark(), timeoutMs: 100 })) return;
    }
    assert.fail("the store never stopped reporting changes");
  }

  test("waitForChange() is woken by another store's commit within moments", async (f) => {
    const waiter = await f.openAnother({ slowPoll: true });
    const writer = f.store;
    await quiet(waiter);
    const since = waiter.changeMark();
    const started = performance.now();
    const woken = waiter.waitForChange({ since, timeoutMs: 10_000 });
    await insertJob(writer, f.clock, { id: "new" });
    assert.equal(await woken, true);
    const ms = performance.now() - started;
    // Well under any safety poll (SQLite's 1 s, PostgreSQL's 2 s): the notification woke it.
    assert.ok(ms < 900, `woken after ${Math.round(ms)} ms`);
    // A mark taken after the change is not woken by it for ever: it times out once quiet.
    await quiet(waiter);
  }, { needs: "changeNotification" });

  test("waitForChange() resolves false after its timeout when nothing changes", async (f) => {
    const store = await f.openAnother({ slowPoll: true });
    await quiet(store);
    const started = performance.now();
    assert.equal(
      await store.waitForChange({ since: store.changeMark(), timeoutMs: 250 }),
      false,
    );
    assert.ok(performance.now() - started >= 240, "returned before its timeout");
    // And at once when aborted.
    const abort = new AbortController();
    const aborted = store.waitForChange({
      since: store.changeMark(),
      timeoutMs: 10_000,
      signal: abort.signal,
    });
    abort.abort();
    assert.equal(await within(aborted, 1000, "the aborted wait"), false);
  });

  test("waitForChange() catches a change whose notification was lost, by its safety poll", async (f) => {
    const waiter = await f.openAnother({ lossy: true });
    await quiet(waiter);
    const since = waiter.changeMark();
    const woken = waiter.waitForChange({ since, timeoutMs: 5000 });
    await insertJob(f.store, f.clock, { id: "unheard" });
    assert.equal(await within(woken, 6000, "the lossy wait"), true, "the change was missed");
    // Its own interest in work does not make it miss one either.
    await quiet(waiter);
    const work = waiter.waitForChange({
      since: waiter.changeMark(),
      timeoutMs: 5000,
      interest: "work",
    });
    await insertJob(f.store, f.clock, { id: "unheard-2" });
    assert.equal(await within(work, 6000, "the lossy wait for work"), true);
  });

  test("two stores claiming at once never take the same job", async (f) => {
    const other = await f.openAnother();
    const n = 60;
    await f.store.jobInsertMany({
      jobs: Array.from({ length: n }, (_, i) => newJob({ id: `r${i}` })),
      defaultMaxRetries: 3,
    });
    const claimed: string[] = [];
    const claimer = async (store: Store, workerId: string) => {
      for (;;) {
        const jobs = await store.jobClaim({
          host: TEST_HOST_ID,
          workerId,
          leaseMs: 60_000,
          limit: 3,
        });
        if (jobs.length === 0) return;
        assert.ok(jobs.length <= 3, `claimed ${jobs.length} with a limit of 3`);
        for (const job of jobs) {
          assert.equal(job.workerId, workerId);
          claimed.push(job.id);
        }
      }
    };
    await Promise.all([
      claimer(f.store, "a1"),
      claimer(other, "b1"),
      claimer(f.store, "a2"),
      claimer(other, "b2"),
    ]);
    assert.equal(claimed.length, n, "every job claimed exactly once");
    assert.equal(new Set(claimed).size, n, "a job claimed twice");
    const processing = await f.store.jobListProcessing();
    assert.equal(processing.length, n);
    assert.ok(processing.every((p) => p.job.attempts === 1));
    await assertCounts(f, { processing: n });
  });

  test("jobInsertMany() from two stores at once never hands out one id twice", async (f) => {
    const other = await f.openAnother();
    const batch = (store: Store, tag: string) =>
      store.jobInsertMany({
        jobs: Array.from({ length: 15 }, (_, i) => newJob({ command: `echo ${tag}${i}` })),
        defaultMaxRetries: 3,
      });
    const batches: Promise<{ jobs: Job[] }>[] = [];
    for (let i = 0; i < 8; i++) batches.push(batch(f.store, `a${i}.`), batch(other, `b${i}.`));
    // The same chosen id from both at once: exactly one gets it.
    const contested = [f.store, other].map((store) =>
      store.jobInsertMany({ jobs: [newJob({ id: "contested" })], defaultMaxRetries: 3 })
    );
    const results = await Promise.all(batches);
    const ids = results.flatMap((r) => r.jobs.map((j) => j.id));
    assert.equal(ids.length, 8 * 2 * 15);
    assert.equal(new Set(ids).size, ids.length, "an id handed out twice");
    const seqs = results.flatMap((r) => r.jobs.map((j) => j.seq));
    assert.equal(new Set(seqs).size, seqs.length, "a sequence number handed out twice");
    const settled = await Promise.allSettled(contested);
    assert.deepEqual(settled.map((s) => s.status).sort(), ["fulfilled", "rejected"]);
    const refused = settled.find((s) => s.status === "rejected") as PromiseRejectedResult;
    assert.ok(refused.reason instanceof ConflictError, String(refused.reason));
    await assertCounts(f, { pending: ids.length + 1 });
  });

  test("jobDlqRetry() and jobTakeOver() racing from two stores apply once", async (f) => {
    const other = await f.openAnother();
    await makeJob(f.store, f.clock, "dead", { id: "d", maxRetries: 0 });
    const retries = await Promise.allSettled([
      f.store.jobDlqRetry({ ids: ["d"] }),
      other.jobDlqRetry({ ids: ["d"] }),
    ]);
    assert.deepEqual(retries.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    const job = (await claimOne(f.store, f.clock, "owner"))!;
    await f.store.attemptArm([ref(job)]);
    const takeovers = await Promise.all(
      [f.store, other, f.store, other].map((store, i) =>
        store.jobTakeOver({
          ...ref(job),
          newWorkerId: `rescuer${i}`,
          leaseMs: 5000,
          requireLeaseExpired: false,
        })
      ),
    );
    assert.equal(takeovers.filter(Boolean).length, 1, `takeovers: ${takeovers}`);
    const winner = `rescuer${takeovers.indexOf(true)}`;
    assert.equal((await f.store.jobGet({ id: "d" }))?.workerId, winner);
  });

  statsContract(test);
  jobControlContract(test);
  queuesContract(test);
  dependencyContract(test);
  schedulesContract(test);
  jobDeleteContract(test);
  /**
   * A queue to search: jobs in every state, priorities 1..10, commands with shared parts, one
   * second apart; returns every job, newest first.
   */
  async function searchable(store: Store, clock: FakeClock): Promise<Job[]> {
    await makeJob(store, clock, "dead", {
      id: "d-backup",
      command: "./backup.sh --full",
      maxRetries: 0,
    });
    clock.advance(1000);
    await makeJob(store, clock, "completed", { id: "c-backup", command: "./backup.sh" });
    clock.advance(1000);
    await makeJob(store, clock, "failed", { id: "f-report", command: "make report" });
    clock.advance(1000);
    await makeJob(store, clock, "processing", { id: "r-sleep", command: "sleep 60" });
    for (let i = 0; i < 40; i++) {
      clock.advance(1000);
      await insertJob(store, clock, {
        command: i % 3 === 0 ? `./backup.sh --part ${i}` : `echo job ${i} <>"'`,
        priority: 1 + (i % 10),
        runAt: clock.now() + 3_600_000,
      });
    }
    const { jobs } = await store.jobList({ limit: 1000 });
    return jobs.reverse();
  }

  /** Every match of a search, page by page; also how many calls it took. */
  async function searchAll(
    store: Store,
    params: Omit<JobSearchParams, "limit" | "scanLimit">,
    limit: number,
    scanLimit: number,
  ): Promise<{ jobs: Job[]; calls: number; truncations: number }> {
    const jobs: Job[] = [];
    let beforeSeq: number | undefined;
    let calls = 0;
    let truncations = 0;
    for (;;) {
      calls++;
      const page = await store.jobSearch({
        ...params,
        ...(beforeSeq === undefined ? {} : { beforeSeq }),
        limit,
        scanLimit,
      });
      assert.ok(page.jobs.length <= limit);
      jobs.push(...page.jobs);
      if (page.truncated) truncations++;
      if (page.nextBeforeSeq === null) return { jobs, calls, truncations };
      assert.ok(beforeSeq === undefined || page.nextBeforeSeq < beforeSeq, "the walk moves back");
      beforeSeq = page.nextBeforeSeq;
      if (calls > 1000) throw new Error("the search does not end");
    }
  }

  test("jobSearch() keeps exactly what jobMatches() keeps, newest first, page by page", async ({ store, clock }) => {
    const all = await searchable(store, clock);
    const t = (i: number) => all[all.length - 1 - i]!.createdAt;
    const filters: JobFilter[] = [
      {},
      { states: ["pending"] },
      { states: ["dead", "completed"] },
      { states: [...JOB_STATES] },
      { commandContains: "backup" },
      { commandContains: `<>"'` },
      { commandContains: "BACKUP" },
      { commandContains: "backup", states: ["pending", "dead"] },
      { priorities: [10] },
      { priorities: [1, 2, 3], commandContains: "echo" },
      { createdFrom: t(10) },
      { createdTo: t(10) },
      { createdFrom: t(5), createdTo: t(20), states: ["pending"] },
      { createdFrom: t(5) + 1, createdTo: t(5) + 2 },
      { dueAfter: clock.now() },
      { dueAfter: clock.now() + 3_600_000 - 20_000 },
      { dueAfter: clock.now(), states: ["failed", "dead"] },
      { dueBy: clock.now() },
      { dueBy: clock.now() + 3_600_000 - 20_000, priorities: [2, 3, 4] },
    ];
    for (const filter of filters) {
      const want = all.filter((job) => jobMatches(job, filter)).map((j) => j.id);
      for (const [limit, scanLimit] of [[100, 1000], [3, 1000], [1, 7], [4, 1]]) {
        const { jobs } = await searchAll(store, filter, limit!, scanLimit!);
        assert.deepEqual(
          jobs.map((j) => j.id),
          want,
          `${JSON.stringify(filter)} limit ${limit} scanLimit ${scanLimit}`,
        );
      }
    }
    const [first] = (await store.jobSearch({ limit: 1, scanLimit: 10 })).jobs;
    assert.deepEqual(first, all[0], "every field, as jobGet() gives it");
    // Nothing can match an empty list of states or priorities.
    for (const none of [{ states: [] }, { priorities: [] }]) {
      assert.deepEqual(await store.jobSearch({ ...none, limit: 5, scanLimit: 100 }), {
        jobs: [],
        nextBeforeSeq: null,
        truncated: false,
      });
    }
  });

  test("jobSearchScheduled() keeps what jobMatches() keeps with dueAfter now, soonest first, page by page", async ({ store, clock }) => {
    const all = await searchable(store, clock);
    // Some jobs due at the very same instant, of different priorities: enqueue order decides.
    const same = clock.now() + 600_000;
    for (const priority of [3, 9, 3, 1]) await insertJob(store, clock, { runAt: same, priority });
    all.push(...(await store.jobList({ limit: 4 })).jobs);
    const now = clock.now();
    const filters: JobFilter[] = [
      {},
      { states: ["failed"] },
      { states: ["pending", "dead"] },
      { states: ["dead"] },
      { priorities: [3, 9] },
      { commandContains: "backup", priorities: [1, 4, 7, 10] },
      { createdFrom: all[10]!.createdAt },
      { dueBy: now + 3_600_000 },
    ];
    for (const filter of filters) {
      const want = all.filter((job) => jobMatches(job, { ...filter, dueAfter: now }))
        .sort((a, b) => a.runAt - b.runAt || a.seq - b.seq).map((j) => j.id);
      for (const [limit, scanLimit] of [[100, 1000], [3, 1000], [1, 7], [4, 1]]) {
        const ids: string[] = [];
        let after: DueCursor | undefined;
        for (let calls = 0;; calls++) {
          assert.ok(calls < 500, "the walk ends");
          const page = await store.jobSearchScheduled({
            ...filter,
            now,
            limit: limit!,
            scanLimit: scanLimit!,
            ...(after === undefined ? {} : { after }),
          });
          assert.ok(page.jobs.length <= limit!);
          ids.push(...page.jobs.map((j) => j.id));
          if (page.next === null) break;
          after = page.next;
        }
        assert.deepEqual(ids, want, `${JSON.stringify(filter)} limit ${limit} scan ${scanLimit}`);
      }
    }
    const [first] = (await store.jobSearchScheduled({ now, limit: 1, scanLimit: 10 })).jobs;
    assert.deepEqual(first, await store.jobGet({ id: first!.id }), "every field, as jobGet()");
  });

  test("jobSearch() looks at no more than scanLimit jobs and says where it stopped", async ({ store, clock }) => {
    const all = await searchable(store, clock);
    // Only the two oldest jobs' commands hold "backup.sh --full" or are "./backup.sh".
    const filter = { commandContains: "backup.sh", states: ["dead", "completed"] as JobState[] };
    const near = await store.jobSearch({ commandContains: "job 38", limit: 10, scanLimit: 5 });
    assert.deepEqual(near.jobs.map((j) => j.command), [`echo job 38 <>"'`]);
    const page = await store.jobSearch({ commandContains: "--full", limit: 10, scanLimit: 10 });
    assert.deepEqual(page.jobs, []);
    assert.equal(page.truncated, true);
    assert.equal(page.nextBeforeSeq, all[9]!.seq, "it stopped at the tenth newest job");
    const further = await store.jobSearch({
      commandContains: "--full",
      limit: 10,
      scanLimit: 1000,
      beforeSeq: page.nextBeforeSeq!,
    });
    assert.deepEqual([further.jobs.map((j) => j.id), further.truncated], [["d-backup"], false]);
    assert.equal(further.nextBeforeSeq, null);
    // A budget that ends exactly with the jobs there are is no truncation.
    const exact = await store.jobSearch({ ...filter, limit: 10, scanLimit: 2 });
    assert.deepEqual([exact.jobs.length, exact.truncated, exact.nextBeforeSeq], [2, false, null]);
    // A full page says where the next one starts: after its last job, when more match.
    const full = await store.jobSearch({ states: ["pending"], limit: 3, scanLimit: 3 });
    assert.equal(full.nextBeforeSeq, full.jobs[2]!.seq);
    const { truncations } = await searchAll(store, { commandContains: "--full" }, 10, 10);
    assert.equal(truncations, 4, "44 jobs, 10 at a time");
  });

  test("jobSearch() time bounds find jobs whose clock stepped back a little", async ({ store, clock }) => {
    await insertJob(store, clock, { id: "a" });
    clock.advance(60_000);
    await insertJob(store, clock, { id: "b" });
    const at = clock.now();
    clock.advance(5000);
    await insertJob(store, clock, { id: "c" });
    clock.set(at - 3000); // NTP steps the clock back 8 s: d is enqueued after c but dated earlier
    await insertJob(store, clock, { id: "d" });
    clock.advance(120_000);
    await insertJob(store, clock, { id: "e" });
    const ids = async (filter: JobFilter) =>
      (await store.jobSearch({ ...filter, limit: 10, scanLimit: 100 })).jobs.map((j) => j.id);
    assert.deepEqual(await ids({ createdTo: at }), ["d", "a"]);
    assert.deepEqual(await ids({ createdFrom: at }), ["e", "c", "b"]);
    assert.deepEqual(await ids({ createdFrom: at - 3000, createdTo: at }), ["d"]);
  });

  test("jobSearchCount() counts the matches, within its budget", async ({ store, clock }) => {
    const all = await searchable(store, clock);
    for (
      const filter of [
        {},
        { commandContains: "backup" },
        { states: ["pending"], priorities: [2, 4] },
        { states: ["dead"] },
      ] as JobFilter[]
    ) {
      const want = all.filter((job) => jobMatches(job, filter)).length;
      assert.deepEqual(
        await store.jobSearchCount({ ...filter, scanLimit: 1000 }),
        { count: want, complete: true },
        JSON.stringify(filter),
      );
    }
    assert.deepEqual(await store.jobSearchCount({ commandContains: "backup", scanLimit: 10 }), {
      count: all.slice(0, 10).filter((j) => j.command.includes("backup")).length,
      complete: false,
    });
    assert.deepEqual(await store.jobSearchCount({ scanLimit: all.length }), {
      count: all.length,
      complete: true,
    });
  });
}
