/**
 * Stopping workers: a graceful signal lets the running job finish and claims nothing new; a
 * second signal, `worker stop --force` or `worker stop --timeout` kills the job's group at once
 * and returns the job to pending without charging the attempt.
 */

import assert from "node:assert/strict";
import type { Run } from "../helpers/ledger.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning, waitForGroup } from "../helpers/proc.ts";
import { type JobJson, Sandbox } from "../helpers/sandbox.ts";

async function runningGroup(
  sb: Sandbox,
  id: string,
): Promise<{ start: Run; members: number[] }> {
  const start = await sb.waitRun(id, 1);
  return { start, members: await waitForGroup(start.pid) };
}

/** A supervised pool of two workers, each running a 30 s ledger job. */
async function busyPool(sb: Sandbox) {
  const ids = await sb.enqueue([
    { command: sb.job("sleep 30") },
    { command: sb.job("sleep 30") },
  ]);
  // One slot each: with the default (the cores) one worker could take both jobs before the other
  // registers, and the pool would not be two busy workers.
  const pool = sb.spawn(["worker", "start", "--count", "2", "--concurrency", "1"]);
  const groups = await Promise.all(ids.map((id) => runningGroup(sb, id)));
  const workerPids = sb.workerRows().map((w) => w.pid);
  return { ids, pool, groups, workerPids };
}

/** The job went back to pending with its attempt refunded, and none of its processes runs. */
async function assertInterrupted(sb: Sandbox, id: string, members: number[]): Promise<void> {
  for (const pid of members) assert.ok(!isRunning(pid), `job ${id} process ${pid} survived`);
  const job = await sb.show(id);
  assert.equal(job.state, "pending");
  assert.equal(job.attempts, 1, "the attempt is recorded");
  assert.equal(job.attempts_left, job.max_retries + 1, "the attempt is not charged");
  assert.equal(job.history[0]!.outcome, "interrupted");
  assert.equal(job.worker_id, null);
  assert.equal(
    (sb.ledger().runs.get(id) ?? []).some((run) => run.endUs !== null),
    false,
    "the job was killed, it did not end",
  );
}

Deno.test("worker run on SIGTERM finishes the running job, claims nothing new, exits 0", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("sleep 2") }]);
  const worker = sb.spawn(["worker", "run"]);
  await sb.waitRun(id!, 1);

  worker.kill("SIGTERM");
  const signalled = performance.now();
  const later = await sb.enqueue(
    Array.from({ length: 3 }, () => ({ command: sb.job("true") })),
  );
  const exit = await worker.wait(PROMPT_MS, "the worker to stop");
  assert.equal(exit.code, 0, exit.stderr);
  assert.match(exit.stderr, /stopping \(graceful\): SIGTERM/);
  assert.ok(performance.now() - signalled < 2000 + 3000, "the worker stopped late");

  const end = await sb.waitRun(id!, 1, 0, { end: true });
  assert.equal(end.status, 0);
  const job = await sb.show(id!);
  assert.equal(job.state, "completed");
  assert.equal(job.attempts, 1);
  for (const other of later) {
    const pending = await sb.show(other);
    assert.equal(pending.state, "pending", `job ${other} was claimed after the signal`);
    assert.equal(pending.attempts, 0);
  }
  assert.deepEqual(sb.ledger().order.filter((run) => later.includes(run.id)), []);
  assert.deepEqual(sb.workerRows(), [], "the worker deregistered");
  await sb.assertNoLeftovers();
});

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  Deno.test(`worker run on a second ${signal} kills the job's group at once and exits ${code}`, async () => {
    await using sb = await Sandbox.create();
    await sb.fastConfig();
    const [id] = await sb.enqueue([{ command: sb.job("sleep 30") }]);
    const worker = sb.spawn(["worker", "run"]);
    const { members } = await runningGroup(sb, id!);

    worker.kill(signal);
    await worker.waitForStderr(/stopping \(graceful\)/, PROMPT_MS, "the graceful stop");
    assert.ok(members.every(isRunning), "a graceful stop must not touch the job");
    worker.kill(signal);
    const escalated = performance.now();
    const exit = await worker.wait(PROMPT_MS, "the worker to stop");
    assert.equal(exit.code, code, exit.stderr);
    assert.ok(performance.now() - escalated < 2000, "the second signal did not act at once");
    assert.match(exit.stderr, /stopping \(force\)/);
    await assertInterrupted(sb, id!, members);
    await sb.assertNoLeftovers();
  });
}

Deno.test("worker stop --force kills the jobs of a supervised pool and returns them to pending", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const { ids, pool, groups, workerPids } = await busyPool(sb);
  assert.equal(workerPids.length, 2);

  const started = performance.now();
  const out = await sb.ok(["worker", "stop", "--force"], { timeoutMs: 15_000 });
  assert.ok(performance.now() - started < 5000, "stop --force waited for the jobs");
  assert.match(out, /^Stopped 2 workers \(pid \d+, \d+\), killing running jobs$/m);
  for (const pid of workerPids) assert.ok(!isRunning(pid), `worker ${pid} still runs`);
  const exit = await pool.wait(PROMPT_MS, "the supervisor to exit");
  assert.equal(exit.code, 143, exit.stderr);
  for (const [i, id] of ids.entries()) await assertInterrupted(sb, id, groups[i]!.members);
  await sb.assertNoLeftovers();
});

Deno.test("worker stop --timeout 1s waits 1 s for the running job, then kills it", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("sleep 30") }]);
  const worker = sb.spawn(["worker", "run"]);
  const { members } = await runningGroup(sb, id!);

  const started = performance.now();
  const out = await sb.ok(["worker", "stop", "--timeout", "1s"], { timeoutMs: 15_000 });
  const took = performance.now() - started;
  assert.ok(took >= 1000, `stop escalated after ${took} ms, before its timeout`);
  assert.ok(took < 5000, `stop took ${took} ms`);
  assert.match(out, /^Stopped 1 worker \(pid \d+\), killing running jobs$/m);
  const exit = await worker.wait(PROMPT_MS);
  assert.equal(exit.code, 143, exit.stderr);
  await assertInterrupted(sb, id!, members);
  await sb.assertNoLeftovers();
});

Deno.test("worker stop --timeout lets a job that ends in time finish", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("sleep 1") }]);
  const worker = sb.spawn(["worker", "run"]);
  await sb.waitRun(id!, 1);
  const out = await sb.ok(["worker", "stop", "--timeout", "20s"], { timeoutMs: 30_000 });
  assert.match(out, /^Stopped 1 worker \(pid \d+\)$/m);
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  const jobs = await sb.json<JobJson[]>(["list"]);
  assert.deepEqual(jobs.map((j) => [j.state, j.attempts]), [["completed", 1]]);
  await sb.assertNoLeftovers();
});

Deno.test("worker run on SIGQUIT kills the job's group at once, without a graceful phase", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("sleep 30") }]);
  const worker = sb.spawn(["worker", "run"]);
  const { members } = await runningGroup(sb, id!);
  worker.kill("SIGQUIT");
  const exit = await worker.wait(PROMPT_MS, "the worker to stop");
  assert.equal(exit.code, 143, exit.stderr);
  assert.match(exit.stderr, /stopping \(force\): SIGQUIT/);
  await assertInterrupted(sb, id!, members);
  await sb.assertNoLeftovers();
});

for (
  const [signal, code, again] of [["SIGTERM", 143, "SIGTERM"], ["SIGINT", 130, "Ctrl-C"]] as const
) {
  Deno.test(`worker start on a second ${signal} makes its workers kill their jobs, exits ${code}`, async () => {
    await using sb = await Sandbox.create();
    await sb.fastConfig();
    const { ids, pool, groups, workerPids } = await busyPool(sb);

    pool.kill(signal);
    // The first signal says what a second one would do.
    await pool.waitForStderr(
      new RegExp(`${signal}: stopping workers .*${again} again kills the running jobs`),
      PROMPT_MS,
      "the graceful stop",
    );
    // Both workers heard it (they mark themselves stopping) and let their jobs run.
    await poll(
      () => sb.query("SELECT state FROM workers").every((w) => w.state === "stopping"),
      PROMPT_MS,
      "both workers to be stopping",
    );
    assert.ok(groups.every((g) => g.members.every(isRunning)), "a graceful stop killed a job");
    pool.kill(signal);
    const exit = await pool.wait(PROMPT_MS, "the supervisor to exit");
    // As `worker run` after the same two signals (the README's exit codes).
    assert.equal(exit.code, code, exit.stderr);
    assert.match(exit.stderr, new RegExp(`${signal}: stopping workers now`));
    for (const pid of workerPids) assert.ok(!isRunning(pid), `worker ${pid} still runs`);
    for (const [i, id] of ids.entries()) await assertInterrupted(sb, id, groups[i]!.members);
    await sb.assertNoLeftovers();
  });
}

Deno.test("worker start on SIGQUIT kills the jobs at once and exits 143", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const { ids, pool, groups } = await busyPool(sb);
  pool.kill("SIGQUIT");
  const exit = await pool.wait(PROMPT_MS, "the supervisor to exit");
  assert.equal(exit.code, 143, exit.stderr);
  for (const [i, id] of ids.entries()) await assertInterrupted(sb, id, groups[i]!.members);
  await sb.assertNoLeftovers();
});
