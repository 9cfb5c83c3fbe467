/**
 * `cancel` and `retry` against real workers, real job processes and real signals: a pending job
 * never runs, a retrying one runs no more, a running one is killed with its whole process tree
 * within a second (a child that ignores SIGTERM within a second after the grace), and a cancel
 * racing the job's own end settles on exactly one outcome.
 *
 * @module
 */

import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { ConflictError } from "../../lib/errors.ts";
import { openSqliteStore } from "../../lib/store/sqlite/open.ts";
import { KILL_GRACE_MS } from "../../lib/worker/executor.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { commOf, groupMembers, isRunning, pidsWritten } from "../helpers/proc.ts";
import { Sandbox } from "../helpers/sandbox.ts";

/** Waits until none of `pids` runs; returns how long that took from `since` (performance.now). */
async function goneAfter(
  pids: readonly number[],
  since: number,
  timeoutMs: number,
): Promise<number> {
  await poll(() => pids.every((pid) => !isRunning(pid)), timeoutMs, `processes ${pids} to end`, {
    intervalMs: 10,
    describe: () => `running: ${pids.filter(isRunning)}`,
  });
  return performance.now() - since;
}

Deno.test("cancel: a pending job never runs; a job waiting for its retry runs no more", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig({ "backoff-base": "30" });
  const marker = `${sb.dir}/ran`;
  const [pending, retrying] = await sb.enqueue([
    { command: `touch '${marker}'`, delay: "2s" },
    { command: "exit 1", max_retries: 5 },
  ]);
  const worker = sb.spawn(["worker", "run"]);
  await sb.waitForState(retrying!, "failed");
  assert.equal(
    await sb.ok(["cancel", pending!, retrying!, "--reason", "enqueued by mistake"]),
    `${pending}\n${retrying}\n`,
  );
  const shown = await sb.show(retrying!);
  assert.equal(shown.state, "cancelled");
  assert.equal(shown.cancel_reason, "enqueued by mistake");
  assert.deepEqual(shown.history.map((a) => a.outcome), ["failed"]);
  // Past the pending job's due time: the worker, awake, claims nothing.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.equal(sb.state(pending!), "cancelled");
  assert.equal(sb.state(retrying!), "cancelled");
  assert.ok(!(await Deno.stat(marker).then(() => true, () => false)), "the cancelled job ran");
  // Cancelling again, or a finished job, is a conflict that changes nothing (exit 3).
  const again = await sb.run(["cancel", pending!]);
  assert.equal(again.code, 3, again.stderr);
  assert.match(again.stderr, /is cancelled/);
  // retry brings one back with a fresh budget, and it runs.
  const [done] = await sb.enqueue([{ command: "true" }]);
  await sb.waitForState(done!, "completed");
  assert.equal((await sb.run(["retry", done!])).code, 3);
  assert.equal(await sb.ok(["retry", pending!]), `${pending}\n`);
  await poll(() => Deno.stat(marker).then(() => true, () => false), PROMPT_MS, "the retried job");
  await sb.waitForState(pending!, "completed");
  assert.equal(await sb.ok(["retry", "--force", done!]), `${done}\n`);
  await sb.waitForState(done!, "completed");
  assert.equal((await sb.show(done!)).history.length, 2);
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("cancel: a running job's process tree is gone within a second", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const pids = `${sb.dir}/pids`;
  const [id] = await sb.enqueue([{
    command: `echo $$ > '${pids}'; sleep 300 & echo $! >> '${pids}'; sleep 300`,
    max_retries: 3,
  }]);
  const worker = sb.spawn(["worker", "run"]);
  const [shell] = await pidsWritten(pids, 2);
  const members = await poll(
    () => {
      const m = groupMembers(shell!);
      return m.filter((pid) => commOf(pid) === "sleep").length === 2 && m;
    },
    PROMPT_MS,
    "both sleeps in the job's group",
  );
  const cancel = await sb.run(["cancel", id!, "--reason", "hangs"]);
  const asked = performance.now();
  assert.equal(cancel.code, 0, cancel.stderr);
  assert.equal(cancel.stdout, `${id}\n`);
  assert.match(cancel.stderr, /is running on .*: its worker kills it within a second/);
  const took = await goneAfter(members, asked, PROMPT_MS);
  assert.ok(took < 1000, `the job's processes outlived the cancel by ${Math.round(took)} ms`);
  const job = await sb.waitForState(id!, "cancelled");
  assert.equal(job.attempts, 1, "a cancelled job is not retried");
  const shown = await sb.show(id!);
  assert.deepEqual(shown.history.map((a) => [a.outcome, a.signal]), [["cancelled", "SIGTERM"]]);
  assert.match(shown.last_error ?? "", /cancelled: hangs/);
  assert.match(await sb.ok(["list"]), /cancelled/);
  assert.match(worker.stderr, new RegExp(`job ${id} attempt 1: cancelled \\(hangs\\); killing it`));
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("cancel: a child that ignores SIGTERM is killed within a second after the grace", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const pids = `${sb.dir}/pids`;
  // The shell passes its ignored TERM on to the sleep it starts (ignored signals are inherited).
  const [id] = await sb.enqueue([{
    command: `trap '' TERM; echo $$ > '${pids}'; sleep 600 & echo $! >> '${pids}'; wait`,
  }]);
  const worker = sb.spawn(["worker", "run", "--concurrency", "2"]);
  const [shell, child] = await pidsWritten(pids, 2);
  await poll(() => groupMembers(shell!).length >= 2, PROMPT_MS, "the shell and its sleep");
  const cancel = await sb.run(["cancel", id!]);
  const asked = performance.now();
  assert.equal(cancel.code, 0, cancel.stderr);
  // SIGTERM is ignored: both still run a moment later, well within the grace.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.ok(isRunning(child!), "the child ignoring SIGTERM was killed before the grace ended");
  const took = await goneAfter([shell!, child!], asked, KILL_GRACE_MS + PROMPT_MS);
  assert.ok(
    took >= KILL_GRACE_MS - 100 && took < KILL_GRACE_MS + 1000,
    `gone ${Math.round(took)} ms after the cancel (grace ${KILL_GRACE_MS} ms)`,
  );
  await sb.waitForState(id!, "cancelled");
  const [attempt] = (await sb.show(id!)).history;
  assert.deepEqual([attempt?.outcome, attempt?.signal], ["cancelled", "SIGKILL"]);
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("cancel racing completion, 100 times: each job ends in one outcome, recorded consistently", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const N = 100;
  // Short jobs of different lengths, so that cancels land before, during and after each run.
  const ids = await sb.enqueue(
    Array.from({ length: N }, (_, i) => ({
      command: `sleep 0.0${i % 10}`,
      id: `race-${i}`,
      max_retries: 2,
    })),
  );
  const store = await openSqliteStore(sb.db, {
    synchronous: "FULL",
    busyTimeoutMs: 5000,
    clock: systemClock(),
  });
  const worker = sb.spawn(["worker", "run", "--concurrency", "4"]);
  const answers = new Map<string, "cancelled" | "requested" | "finished">();
  try {
    for (let i = 0; i < N; i++) {
      const id = ids[i]!;
      // Wait a little, differently each time: pending, reserved, running or done by now.
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 23));
      try {
        const { cancelled, requested } = await store.jobCancel({ ids: [id], reason: "race" });
        answers.set(
          id,
          cancelled.length ? "cancelled" : requested.length ? "requested" : "finished",
        );
      } catch (error) {
        assert.ok(error instanceof ConflictError, String(error));
        answers.set(id, "finished");
      }
    }
    await sb.settle(PROMPT_MS * 2);
  } finally {
    await store.close();
  }
  const tally = { completed: 0, cancelled: 0 };
  for (const id of ids) {
    const job = await sb.show(id);
    const outcomes = job.history.map((a) => a.outcome);
    const answer = answers.get(id);
    assert.ok(job.state === "completed" || job.state === "cancelled", `${id}: ${job.state}`);
    tally[job.state as "completed" | "cancelled"]++;
    // Never retried: one attempt at most, whatever happened.
    assert.ok(outcomes.length <= 1, `${id}: ${outcomes}`);
    if (job.state === "completed") {
      assert.deepEqual(outcomes, ["completed"], id);
      assert.notEqual(answer, "cancelled", `${id}: cancelled, then completed`);
      assert.equal(job.cancel_reason, null, id);
    } else {
      assert.notEqual(answer, "finished", `${id}: refused as finished, yet cancelled`);
      // Cancelled before it started (no attempt), or killed: the attempt says cancelled.
      assert.ok(outcomes.length === 0 || outcomes[0] === "cancelled", `${id}: ${outcomes}`);
      if (answer === "requested") assert.equal(outcomes.length, 1, id);
    }
  }
  assert.equal(tally.completed + tally.cancelled, N);
  const counts = sb.counts();
  assert.equal((counts.completed ?? 0) + (counts.cancelled ?? 0), N, JSON.stringify(counts));
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});
