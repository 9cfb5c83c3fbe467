/**
 * Workers that die or stall mid-job: SIGKILL (the job's shell survives as an orphan) and SIGSTOP
 * past the lease (fencing). The job must run again, never while its old attempt still runs, and
 * the stalled worker must not write the outcome of an attempt it no longer owns.
 */

import assert from "node:assert/strict";
import { checkLedger, type Run } from "../helpers/ledger.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning, procStat, waitForGroup } from "../helpers/proc.ts";
import { Sandbox } from "../helpers/sandbox.ts";

/** Attempt 1 sleeps (to be killed mid-job); later attempts finish at once. */
const SLEEP_ON_FIRST = 'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then sleep 30; fi';
/**
 * A retry is due at once (backoff-max 0), so nothing but the kill-before-requeue order keeps
 * attempt 2 from starting while attempt 1 still runs.
 */
const NO_BACKOFF = { "backoff-max": "0" };

/** Waits until the attempt's group holds its `sleep`; returns the members. */
function runningGroup(start: Run): Promise<number[]> {
  assert.equal(procStat(start.pid)?.pgrp, start.pid, "the job leads its own process group");
  return waitForGroup(start.pid);
}

/** The common end of both SIGKILL cases: attempt 2 ran after attempt 1's group died. */
async function assertRecoveredAfterKill(
  sb: Sandbox,
  id: string,
  members: number[],
  killedAt: number,
): Promise<void> {
  const start2 = await sb.waitRun(id, 2, 15_000, { scanned: true });
  assert.deepEqual(
    start2.overlapWith,
    [],
    "attempt 1's processes were alive when attempt 2 started",
  );
  for (const pid of members) assert.ok(!isRunning(pid), `attempt 1 process ${pid} survived`);
  // Fast path: the owner's pid is gone, so recovery does not wait for the lease (2 s) but
  // happens within R_fast = sweep (1 s) + 2 s, worker start-up included.
  const delay = start2.startUs / 1000 - killedAt;
  assert.ok(delay < 3000, `attempt 2 started ${delay} ms after the kill`);

  await sb.waitForState(id, "completed");
  const job = await sb.show(id);
  assert.equal(job.attempts, 2);
  assert.equal(job.history.length, 2);
  assert.equal(job.history[0]!.outcome, "lost");
  assert.match(job.history[0]!.error ?? "", /worker lost \(pid \d+ exited\)/);
  assert.equal(job.history[1]!.outcome, "completed");
  assert.notEqual(job.history[0]!.worker_id, job.history[1]!.worker_id);
  const report = checkLedger(sb.ledger(), [id], 2);
  assert.deepEqual(report.overlap, [], "overlap");
  assert.deepEqual(report.unexpected, [], "unexpected");
}

Deno.test("worker run recovers the job of a SIGKILLed worker after killing its orphaned group", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig(NO_BACKOFF);
  const [id] = await sb.enqueue([{ command: sb.job(SLEEP_ON_FIRST) }]);
  const first = sb.spawn(["worker", "run"]);
  const start1 = await sb.waitRun(id!, 1);
  const members = await runningGroup(start1);

  first.kill("SIGKILL");
  const killedAt = Date.now();
  assert.equal((await first.wait(PROMPT_MS)).signal, "SIGKILL");
  // The hazard under test: killing the worker leaves its job running (denoland/deno#8772).
  assert.ok(isRunning(start1.pid), "the job's shell should outlive its worker");

  // Two new workers: whichever recovers the job, the other sees the change at once and would
  // claim the job at once, so a kill that came after the requeue would show as an overlap.
  const others = [sb.spawn(["worker", "run"]), sb.spawn(["worker", "run"])];
  await assertRecoveredAfterKill(sb, id!, members, killedAt);
  // On a loaded machine the idle one may still be starting: a SIGTERM before it has registered
  // (and so before it listens for signals) would kill it outright.
  await poll(
    () => others.every((w) => sb.workerRows().some((row) => row.pid === w.pid)),
    PROMPT_MS,
    "both workers to register",
  );
  for (const worker of others) {
    worker.kill("SIGTERM");
    assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  }
  await sb.assertNoLeftovers();
});

Deno.test("worker start restarts a SIGKILLed worker, which recovers its job after killing the orphan", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig(NO_BACKOFF);
  const [id] = await sb.enqueue([{ command: sb.job(SLEEP_ON_FIRST) }]);
  const pool = sb.spawn(["worker", "start", "--count", "1"]);
  const start1 = await sb.waitRun(id!, 1);
  const members = await runningGroup(start1);
  const [worker] = sb.workerRows();
  assert.equal(worker?.supervisor_pid, pool.pid);
  assert.equal(procStat(start1.pid)?.ppid, worker.pid, "the job is the worker's child");

  Deno.kill(worker.pid, "SIGKILL");
  const killedAt = Date.now();
  assert.ok(isRunning(start1.pid), "the job's shell should outlive its worker");
  await assertRecoveredAfterKill(sb, id!, members, killedAt);
  await pool.waitForStderr(/worker 1 \(pid \d+\) was killed by SIGKILL/, PROMPT_MS, "the log");
  const restarted = sb.workerRows().filter((w) => w.pid !== worker.pid);
  assert.equal(restarted.length, 1, "one restarted worker");

  pool.kill("SIGTERM");
  assert.equal((await pool.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run fences a worker stopped past its lease: it logs lease lost and writes nothing", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig(NO_BACKOFF);
  const go = `${sb.dir}/go`;
  // Attempt 2 waits for the test, so the stalled worker wakes while attempt 2 runs.
  const [id] = await sb.enqueue([{
    command: sb.job(
      `if [ "$QUEUECTL_ATTEMPT" = 1 ]; then sleep 30; ` +
        `else while [ ! -e '${go}' ]; do sleep 0.02; done; echo second; fi`,
    ),
  }]);
  const stalled = sb.spawn(["worker", "run"]);
  const start1 = await sb.waitRun(id!, 1);
  const members = await runningGroup(start1);
  const stalledId = String(sb.query("SELECT worker_id FROM jobs WHERE id = ?", id!)[0]!.worker_id);

  stalled.kill("SIGSTOP");
  const stoppedAt = Date.now();
  // Two more workers, so that one claims the recovered job the moment it is requeued.
  const others = [sb.spawn(["worker", "run"]), sb.spawn(["worker", "run"])];
  const start2 = await sb.waitRun(id!, 2, 15_000, { scanned: true });
  assert.deepEqual(
    start2.overlapWith,
    [],
    "attempt 1's processes were alive when attempt 2 started",
  );
  for (const pid of members) assert.ok(!isRunning(pid), `attempt 1 process ${pid} survived`);
  // The stalled worker's pid is alive, so only the lease (2 s) lets the job go.
  const waited = start2.startUs / 1000 - stoppedAt;
  assert.ok(waited >= 1500, `attempt 2 started ${waited} ms after SIGSTOP, before the lease`);

  stalled.kill("SIGCONT");
  await stalled.waitForStderr(
    new RegExp(`job ${id} attempt 1: lease lost`),
    PROMPT_MS,
    "the stalled worker to notice",
  );
  // Attempt 2 still runs, untouched; attempt 1 stays as recovery recorded it.
  const row = sb.query("SELECT state, attempts, worker_id FROM jobs WHERE id = ?", id!)[0]!;
  assert.equal(row.state, "processing");
  assert.equal(row.attempts, 2);
  assert.notEqual(row.worker_id, stalledId);

  await Deno.writeTextFile(go, "");
  await sb.waitForState(id!, "completed");
  const job = await sb.show(id!);
  assert.equal(job.attempts, 2);
  assert.equal(job.last_error, null);
  assert.equal(job.last_exit_code, 0);
  assert.equal(job.history[0]!.outcome, "lost");
  assert.equal(job.history[0]!.error, "lease expired");
  assert.equal(job.history[0]!.worker_id, stalledId);
  assert.equal(job.history[1]!.outcome, "completed");
  assert.notEqual(job.history[1]!.worker_id, stalledId);
  const output = sb.query(
    "SELECT o.attempt, o.stream, o.head FROM outputs o JOIN jobs j ON j.seq = o.job_seq " +
      "WHERE j.id = ? AND o.stream = 1",
    id!,
  );
  assert.deepEqual(output.map((o) => o.attempt), [2], "only attempt 2 stored output");
  assert.equal(new TextDecoder().decode(output[0]!.head as Uint8Array), "second\n");
  const counted = sb.query("SELECT jobs_done, jobs_failed FROM workers WHERE id = ?", stalledId);
  assert.deepEqual(counted.map((w) => [w.jobs_done, w.jobs_failed]), [[0, 0]]);

  for (const worker of [stalled, ...others]) {
    worker.kill("SIGTERM");
    const exit = await worker.wait(PROMPT_MS);
    assert.equal(exit.code, 0, exit.stderr);
  }
  assert.doesNotMatch(stalled.stderr, new RegExp(`job ${id} attempt 1: (completed|failed)`));
  const report = checkLedger(sb.ledger(), [id!], 2);
  assert.deepEqual(report.overlap, [], "overlap");
  await sb.assertNoLeftovers();
});

Deno.test("worker run renews the lease of a job that outlives it: no second worker takes it", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("sleep 4") }]);
  const workers = [sb.spawn(["worker", "run"]), sb.spawn(["worker", "run"])];
  await sb.waitRun(id!, 1);
  const leases = new Set<number>();
  await poll(
    () => {
      const [row] = sb.query("SELECT state, lease_expires_at FROM jobs WHERE id = ?", id!);
      if (row?.lease_expires_at !== null && row?.lease_expires_at !== undefined) {
        leases.add(Number(row.lease_expires_at));
      }
      return row?.state === "completed";
    },
    15_000,
    "the job to complete",
  );
  // The lease (2 s) was renewed several times while the job ran twice as long.
  assert.ok(leases.size >= 3, `lease renewed ${leases.size - 1} times`);
  const job = await sb.show(id!);
  assert.equal(job.attempts, 1);
  assert.equal(job.history[0]!.outcome, "completed");
  const report = checkLedger(sb.ledger(), [id!]);
  assert.deepEqual([report.duplicated, report.lost], [[], []]);
  for (const worker of workers) {
    worker.kill("SIGTERM");
    assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  }
  await sb.assertNoLeftovers();
});

Deno.test("worker start buries a job that kills its own worker after its retries, not in a loop", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  // $PPID of the job's shell is its worker.
  const [id] = await sb.enqueue([{ command: "kill -9 $PPID; sleep 30", max_retries: 1 }]);
  const pool = sb.spawn(["worker", "start", "--count", "1"]);
  await sb.waitForState(id!, "dead", 20_000);
  const job = await sb.show(id!);
  assert.equal(job.attempts, 2);
  assert.deepEqual(job.history.map((a) => a.outcome), ["lost", "lost"]);
  assert.match(job.last_error ?? "", /worker lost/);
  // Each attempt killed one worker; the third worker, which recovered the job, lives on.
  const [alive] = await poll(
    () => {
      const rows = sb.workerRows().filter((w) => isRunning(w.pid));
      return rows.length === 1 && rows;
    },
    PROMPT_MS,
    "one live worker",
  );
  assert.equal(pool.stderr.match(/was killed by SIGKILL/g)?.length, 2, pool.stderr);
  // Quick deaths in a row: each restart waits longer.
  const delays = [...pool.stderr.matchAll(/restarting worker 1 in (\d+) ms/g)].map((m) =>
    Number(m[1])
  );
  assert.equal(delays.length, 2);
  assert.ok(delays[1]! > delays[0]!, `restart delays ${delays}`);
  const [next] = await sb.enqueue([{ command: "true" }]);
  await sb.waitForState(next!, "completed");
  assert.ok(isRunning(alive!.pid));
  pool.kill("SIGTERM");
  assert.equal((await pool.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run kills its job when its lease is taken over, and writes nothing", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("sleep 30") }]);
  const worker = sb.spawn(["worker", "run"]);
  const start = await sb.waitRun(id!, 1);
  const members = await runningGroup(start);
  // Another owner takes the attempt over (as recovery on another host would): the running
  // worker learns it at its next renewal and must stop its job itself.
  const changed = sb.write(
    "UPDATE jobs SET worker_id = 'w-other', lease_expires_at = ? WHERE id = ?",
    Date.now() + 600_000,
    id!,
  );
  assert.equal(changed, 1);
  await worker.waitForStderr(
    new RegExp(`job ${id} attempt 1: lease lost \\(another worker recovered it\\); job killed`),
    PROMPT_MS,
    "the worker to notice",
  );
  // The line is logged as the kill is sent: the processes are gone a moment later.
  await poll(
    () => members.every((pid) => !isRunning(pid)),
    PROMPT_MS,
    "the job's processes to die",
  );
  const [row] = sb.query("SELECT state, worker_id, attempts FROM jobs WHERE id = ?", id!);
  assert.deepEqual({ ...row }, { state: "processing", worker_id: "w-other", attempts: 1 });
  const [attempt] = sb.query("SELECT outcome, finished_at FROM attempts");
  assert.deepEqual({ ...attempt }, { outcome: null, finished_at: null }, "the worker wrote");
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run --once recovers the job of a SIGKILLed worker before it decides nothing is due", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig({ "lease-timeout": "60s", ...NO_BACKOFF });
  const [id] = await sb.enqueue([{ command: sb.job(SLEEP_ON_FIRST) }]);
  const first = sb.spawn(["worker", "run"]);
  const start1 = await sb.waitRun(id!, 1);
  const members = await runningGroup(start1);
  first.kill("SIGKILL");
  assert.equal((await first.wait(PROMPT_MS)).signal, "SIGKILL");
  assert.ok(isRunning(start1.pid), "the job's shell should outlive its worker");

  // As from cron: one pass. The lease (60 s) is far off; the dead owner is what counts.
  const once = await sb.run(["worker", "run", "--once"], { timeoutMs: 30_000 });
  assert.equal(once.code, 0, once.stderr);
  assert.match(once.stderr, new RegExp(`job ${id} attempt 1: recovered \\(worker lost`));
  for (const pid of members) assert.ok(!isRunning(pid), `orphaned job process ${pid} survived`);
  // Recovered with no backoff, the job was due again, and the same pass ran it.
  const job = await sb.show(id!);
  assert.equal(job.state, "completed", once.stderr);
  assert.deepEqual(job.history.map((a) => a.outcome), ["lost", "completed"]);
  const report = checkLedger(sb.ledger(), [id!], 2);
  assert.deepEqual(report.overlap, [], "overlap");
  await sb.assertNoLeftovers();
});
