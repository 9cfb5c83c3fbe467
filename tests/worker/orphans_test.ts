/**
 * Per-host recovery with several hosts: a lease that expired on another host's attempt waits a
 * grace for that host's own workers (who can kill its processes), and each host reaps its
 * orphans, processes of attempts that no worker of this host runs any more.
 */

import assert from "node:assert/strict";
import type { ProcessingJob } from "../../lib/store/store.ts";
import { CROSS_HOST_GRACE_MS, reapOrphans, rescueReason } from "../../lib/worker/rescuer.ts";
import { makeJob, makeWorker, TEST_HOST_ID } from "../helpers/factory.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning } from "../helpers/proc.ts";
import { storeFixture } from "../helpers/temp.ts";

function processing(overrides: Partial<ProcessingJob>): ProcessingJob {
  return {
    job: { id: "j", attempts: 1 } as ProcessingJob["job"],
    owner: null,
    leaseExpired: true,
    leaseOverdueMs: 0,
    armed: true,
    pid: null,
    pidStart: null,
    host: "other-host",
    ...overrides,
  };
}

Deno.test("rescueReason() leaves another host's expired lease to that host for a grace, then takes it", () => {
  const here = "this-host";
  assert.equal(rescueReason(processing({ leaseOverdueMs: 0 }), here, true, true), null);
  assert.equal(
    rescueReason(processing({ leaseOverdueMs: CROSS_HOST_GRACE_MS - 1 }), here, true, true),
    null,
  );
  assert.equal(
    rescueReason(processing({ leaseOverdueMs: CROSS_HOST_GRACE_MS }), here, true, true),
    "lease expired",
  );
  // This host's attempts, and any attempt of a single-host store, at once.
  assert.equal(
    rescueReason(processing({ host: here, leaseOverdueMs: 0 }), here, true, true),
    "lease expired",
  );
  assert.equal(rescueReason(processing({ leaseOverdueMs: 0 }), here, true, false), "lease expired");
  assert.equal(
    rescueReason(processing({ leaseExpired: false, leaseOverdueMs: null }), here, true, true),
    null,
  );
});

Deno.test("reapOrphans() kills this host's processes of attempts no worker here runs, and only those", async () => {
  await using f = await storeFixture();
  const { store, clock } = f;
  // Job "mine" runs attempt 1 here (its owner unknown to the store: recovery judges that);
  // job "taken" was taken over by a worker on another host.
  await makeJob(store, clock, "processing", { id: "mine" });
  await makeWorker(store, clock, { id: "remote", alive: true, hostId: "elsewhere" });
  await makeJob(store, clock, "processing", { id: "taken", workerId: "remote" });
  const spawn = (jobId: string, attempt: number, queueId = store.queueId) =>
    new Deno.Command("sleep", {
      args: ["30"],
      env: {
        QUEUECTL_QUEUE_ID: queueId,
        QUEUECTL_JOB_ID: jobId,
        QUEUECTL_ATTEMPT: String(attempt),
      },
      detached: true,
      stdout: "null",
      stderr: "null",
    }).spawn();
  const kept = [spawn("mine", 1), spawn("gone", 1, "another-queue")];
  const reaped = [spawn("mine", 2), spawn("gone", 1), spawn("taken", 1)];
  const lines: string[] = [];
  try {
    await poll(
      () => [...kept, ...reaped].every((c) => isRunning(c.pid)),
      PROMPT_MS,
      "the processes to start",
    );
    const result = await reapOrphans({ store, hostId: TEST_HOST_ID, log: (l) => lines.push(l) });
    assert.deepEqual(result.sort(), ["gone/1", "mine/2", "taken/1"]);
    for (const c of reaped) assert.equal((await c.status).signal, "SIGKILL");
    for (const c of kept) assert.ok(isRunning(c.pid), `process ${c.pid} was killed`);
    assert.ok(
      lines.some((l) => /job taken attempt 1: orphaned processes killed \(taken over/.test(l)),
    );
    assert.ok(lines.some((l) => /job gone attempt 1: .*\(the attempt is over\)/.test(l)));
  } finally {
    for (const c of [...kept, ...reaped]) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status;
    }
  }
});
