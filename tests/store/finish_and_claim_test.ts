/**
 * `jobFinishAndClaim`: a busy worker's finish of one job and claim of the next, in one
 * transaction, must leave the database exactly as `jobFinish` followed by `jobClaim` would.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "../../lib/store/sqlite/store.ts";
import { decide } from "../../lib/job/outcome.ts";
import type { Job } from "../../lib/job/job.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const T0 = Date.UTC(2026, 0, 1);
const BACKOFF = { base: 2, maxMs: 60_000 };

async function withStore(fn: (store: SqliteStore, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-finish-claim-" });
  const path = `${dir}/q.db`;
  const store = await SqliteStore.open(path, { synchronous: "NORMAL", busyTimeoutMs: 1000 }, T0);
  try {
    await store.workerRegister({
      worker: {
        id: "w",
        pid: Deno.pid,
        host: "h",
        pidStart: null,
        state: "idle",
        currentJob: null,
        startedAt: T0,
        heartbeatAt: T0,
        jobsDone: 0,
        jobsFailed: 0,
        supervisorPid: null,
        busyMs: 0,
      },
    });
    const job = (id: string, priority: number) => ({
      id,
      command: "true",
      priority,
      maxRetries: 0,
      timeoutMs: null,
      cwd: "/",
      env: {},
      runAt: T0,
    });
    await store.jobInsertMany({ jobs: [job("a", 9), job("b", 5), job("c", 1)], now: T0 });
    await fn(store, path);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function finishOf(job: Job, now: number, code = 0) {
  return {
    jobId: job.id,
    attempt: job.attempts,
    workerId: "w",
    decision: decide(job, { kind: "exited", code }, now, BACKOFF),
    now,
    byOwner: true,
  };
}

const claimOf = (now: number) => ({ workerId: "w", host: "h", now, leaseMs: 30_000 });

function rows(path: string, sql: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

Deno.test("jobFinishAndClaim() finishes one job and claims the next in priority order", async () => {
  await withStore(async (store, path) => {
    const a = (await store.jobClaim(claimOf(T0 + 1)))!;
    assertEquals(a.id, "a");
    const first = await store.jobFinishAndClaim(finishOf(a, T0 + 2), claimOf(T0 + 2));
    assert(first.applied, "the finish of a was not applied");
    assertEquals(first.next?.id, "b");
    assertEquals(first.next?.state, "processing");
    const second = await store.jobFinishAndClaim(finishOf(first.next!, T0 + 3, 1), claimOf(T0 + 3));
    assertEquals(second.next?.id, "c");
    const last = await store.jobFinishAndClaim(finishOf(second.next!, T0 + 4), claimOf(T0 + 4));
    assertEquals(last, { applied: true, next: undefined });

    assertEquals(
      rows(path, "SELECT id, state, attempts FROM jobs ORDER BY seq"),
      [
        { id: "a", state: "completed", attempts: 1 },
        { id: "b", state: "dead", attempts: 1 },
        { id: "c", state: "completed", attempts: 1 },
      ],
    );
    assertEquals(
      rows(path, "SELECT job_seq, attempt, started_at, outcome FROM attempts ORDER BY job_seq"),
      [
        { job_seq: 1, attempt: 1, started_at: T0 + 1, outcome: "completed" },
        { job_seq: 2, attempt: 1, started_at: T0 + 2, outcome: "failed" },
        { job_seq: 3, attempt: 1, started_at: T0 + 3, outcome: "completed" },
      ],
    );
    assertEquals(
      rows(path, "SELECT state, n FROM job_counts WHERE n > 0 ORDER BY state"),
      [{ state: "completed", n: 2 }, { state: "dead", n: 1 }],
    );
    assertEquals(
      rows(path, "SELECT state, current_job, jobs_done, jobs_failed FROM workers"),
      [{ state: "idle", current_job: null, jobs_done: 2, jobs_failed: 1 }],
    );
  });
});

Deno.test("jobFinishAndClaim() marks the worker busy with the job it claimed", async () => {
  await withStore(async (store, path) => {
    const a = (await store.jobClaim(claimOf(T0 + 1)))!;
    const { next } = await store.jobFinishAndClaim(finishOf(a, T0 + 2), claimOf(T0 + 2));
    assertEquals(
      rows(path, "SELECT state, current_job, jobs_done FROM workers"),
      [{ state: "busy", current_job: next!.id, jobs_done: 1 }],
    );
  });
});

Deno.test("jobFinishAndClaim() with a stale attempt changes nothing of it, and still claims", async () => {
  await withStore(async (store, path) => {
    const a = (await store.jobClaim(claimOf(T0 + 1)))!;
    const stale = { ...finishOf(a, T0 + 2), attempt: a.attempts + 1 };
    const result = await store.jobFinishAndClaim(stale, claimOf(T0 + 2));
    assertEquals(result.applied, false);
    assertEquals(result.next?.id, "b");
    assertEquals(rows(path, "SELECT state FROM jobs WHERE id = 'a'"), [{ state: "processing" }]);
    assertEquals(
      rows(path, "SELECT finished_at FROM attempts WHERE job_seq = 1"),
      [{ finished_at: null }],
    );
  });
});
