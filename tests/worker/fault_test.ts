/**
 * A worker SIGKILLed at the exact points where a crash is most awkward (QUEUECTL_FAULT, compiled
 * in with QUEUECTL_TEST=1): right after claiming, right after spawning (before the job's pid is
 * recorded), and just before or after committing the outcome. Another worker must recover the
 * job, run it again only when the outcome was not stored, and never overlap two attempts.
 */

import assert from "node:assert/strict";
import type { FaultPoint } from "../helpers/hooks.ts";
import { checkLedger } from "../helpers/ledger.ts";
import { PROMPT_MS } from "../helpers/poll.ts";
import { Sandbox, type ShowJson } from "../helpers/sandbox.ts";

/** Attempt 1 sleeps (when it gets to run), so a crash right after spawning leaves an orphan. */
const SLEEP_ON_FIRST = 'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then sleep 30; fi';

/**
 * Runs one job on a worker that kills itself at `point`, then recovers with two healthy workers
 * (one recovers, the other claims at once). Returns the job as finally stored.
 */
async function crashAt(sb: Sandbox, point: FaultPoint, work: string): Promise<ShowJson> {
  await sb.fastConfig({ "backoff-max": "0" });
  const [id] = await sb.enqueue([{ command: sb.job(work) }]);
  const faulty = await sb.run(["worker", "run"], {
    hooks: { fault: point },
    timeoutMs: PROMPT_MS,
  });
  assert.equal(faulty.signal, "SIGKILL", `the worker did not reach ${point}: ${faulty.stderr}`);
  const healthy = [sb.spawn(["worker", "run"]), sb.spawn(["worker", "run"])];
  await sb.waitForState(id!, "completed", 15_000);
  for (const worker of healthy) {
    // A signal before the worker's handlers exist would just kill it (the job may have been
    // done before these workers came up).
    await worker.waitForStderr(/ started \(pid/, PROMPT_MS, "the worker to start");
    worker.kill("SIGTERM");
    assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  }
  const report = checkLedger(sb.ledger(), [id!], 2);
  assert.deepEqual(report.overlap, [], "overlap");
  assert.deepEqual(report.lost, [], "lost");
  return await sb.show(id!);
}

function ledgerAttempts(sb: Sandbox): number[] {
  return sb.ledger().order.map((run) => run.attempt);
}

Deno.test("worker run killed right after its claim commits: the claim is undone, not charged", async () => {
  await using sb = await Sandbox.create();
  const job = await crashAt(sb, "claim:after-commit", "true");
  // The dead worker reserved the attempt but never armed it: nothing ran, nothing is counted.
  assert.equal(job.attempts, 1);
  assert.deepEqual(job.history.map((a) => a.outcome), ["completed"]);
  assert.deepEqual(ledgerAttempts(sb), [1]);
  await sb.assertNoLeftovers();
});

Deno.test("worker run killed after arming, before the spawn: the attempt counts as lost", async () => {
  await using sb = await Sandbox.create();
  const job = await crashAt(sb, "arm:after-commit", "true");
  assert.equal(job.attempts, 2);
  assert.deepEqual(job.history.map((a) => a.outcome), ["lost", "completed"]);
  assert.deepEqual(ledgerAttempts(sb), [2], "attempt 1 never started");
  await sb.assertNoLeftovers();
});

Deno.test("worker run killed right after spawning: the unrecorded orphan dies before attempt 2", async () => {
  await using sb = await Sandbox.create();
  const job = await crashAt(sb, "run:after-spawn", SLEEP_ON_FIRST);
  assert.equal(job.attempts, 2);
  assert.deepEqual(job.history.map((a) => a.outcome), ["lost", "completed"]);
  // The worker died before it could record the job's pid: recovery had to find the orphan by
  // its environment, and checkLedger (in crashAt) saw it dead when attempt 2 started.
  const [first] = sb.query("SELECT pid FROM attempts WHERE attempt = 1");
  assert.equal(first?.pid, null);
  assert.deepEqual(ledgerAttempts(sb), [1, 2]);
  await sb.assertNoLeftovers();
});

Deno.test("worker run killed before its completion commits: the job runs again (at least once)", async () => {
  await using sb = await Sandbox.create();
  const job = await crashAt(sb, "complete:before-commit", "true");
  assert.equal(job.attempts, 2);
  assert.deepEqual(job.history.map((a) => a.outcome), ["lost", "completed"]);
  assert.deepEqual(ledgerAttempts(sb), [1, 2]);
  await sb.assertNoLeftovers();
});

Deno.test("worker run killed after its completion commits: the job does not run again", async () => {
  await using sb = await Sandbox.create();
  const job = await crashAt(sb, "complete:after-commit", "true");
  assert.equal(job.attempts, 1);
  assert.deepEqual(job.history.map((a) => a.outcome), ["completed"]);
  assert.deepEqual(ledgerAttempts(sb), [1]);
  await sb.assertNoLeftovers();
});
