/**
 * A database locked by another process (a backup, an `sqlite3` shell) while workers run: workers
 * must wait it out instead of crashing, and a job whose lease could not be renewed must not be
 * left `processing` for ever.
 */

import assert from "node:assert/strict";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning, waitForGroup } from "../helpers/proc.ts";
import { Sandbox } from "../helpers/sandbox.ts";

Deno.test("worker run keeps running its job while another process holds the database lock", async () => {
  await using sb = await Sandbox.create();
  // A long lease, so that a short lock is no reason to give the job up.
  await sb.fastConfig({ "lease-timeout": "20s" });
  // Output all along: the worker saves it every 500 ms, and those writes meet the lock.
  const progress = `${sb.dir}/progress`;
  const [id] = await sb.enqueue([{
    command: sb.job(
      `i=0; while [ $i -lt 40 ]; do echo line $i; echo $i > '${progress}'; i=$((i + 1)); ` +
        `sleep 0.1; done`,
    ),
  }]);
  const worker = sb.spawn(["worker", "run"]);
  await sb.waitRun(id!, 1);
  /** The job's last line number, or -1 before its first (or mid-write). */
  const step = () => {
    try {
      return Number(Deno.readTextFileSync(progress) || -1);
    } catch {
      return -1;
    }
  };
  await poll(() => step() >= 0, PROMPT_MS, "the job's first line");
  {
    using _lock = sb.lock();
    // Held while the job goes on for 1.5 s: several output saves and lease renewals fail.
    const from = step();
    await poll(() => step() >= from + 15 || worker.exited, PROMPT_MS, "the job to go on");
    assert.ok(!worker.exited, `the worker died while the database was locked:\n${worker.stderr}`);
  }
  await sb.waitForState(id!, "completed");
  const job = await sb.show(id!);
  assert.equal(job.attempts, 1);
  assert.equal(job.history[0]!.outcome, "completed");
  worker.kill("SIGTERM");
  const exit = await worker.wait(PROMPT_MS);
  assert.equal(exit.code, 0, exit.stderr);
  assert.doesNotMatch(exit.stderr, /Uncaught|internal error/);
  await sb.assertNoLeftovers();
});

Deno.test("worker run stops gracefully on SIGTERM while the database is locked", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig({ "lease-timeout": "20s" });
  const [id] = await sb.enqueue([{ command: sb.job("sleep 1") }]);
  const worker = sb.spawn(["worker", "run"]);
  await sb.waitRun(id!, 1);
  {
    using _lock = sb.lock();
    worker.kill("SIGTERM");
    await worker.waitForStderr(/stopping \(graceful\)/, PROMPT_MS, "the graceful stop");
    // The job ends while the lock is held: its outcome must wait for the lock.
    await sb.waitRun(id!, 1, PROMPT_MS, { end: true });
    assert.ok(!worker.exited, `the worker died while the database was locked:\n${worker.stderr}`);
  }
  const exit = await worker.wait(PROMPT_MS, "the worker to stop");
  assert.equal(exit.code, 0, exit.stderr);
  assert.equal(sb.state(id!), "completed");
  await sb.assertNoLeftovers();
});

Deno.test("worker run retries a job it killed because it could not renew its lease", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig({ "backoff-max": "0" });
  const [id] = await sb.enqueue([{
    command: sb.job('if [ "$QUEUECTL_ATTEMPT" = 1 ]; then sleep 30; fi'),
  }]);
  const worker = sb.spawn(["worker", "run"]);
  const start1 = await sb.waitRun(id!, 1);
  const members = await waitForGroup(start1.pid);

  // Renewals fail, and the worker stops its job before the lease (2 s) runs out, since it can
  // no longer show that it owns it.
  {
    using _lock = sb.lock();
    await worker.waitForStderr(
      new RegExp(`job ${id} attempt 1: lease lost \\(could not renew`),
      PROMPT_MS,
      "the worker to fence itself",
    );
  }
  const unlocked = Date.now();
  // The kill is sent when the line is logged; dying takes the killed processes a moment on a
  // loaded machine. A second is still well inside the lease the worker fenced itself against.
  await poll(() => members.every((pid) => !isRunning(pid)), 1000, "the job's processes to die");

  // Nobody else took the job, and no other worker runs: it must not stay `processing` for ever.
  // It runs again within R = lease (2 s) + sweep (1 s) + 2 s, the killed attempt recorded.
  const start2 = await sb.waitRun(id!, 2, 5000);
  assert.ok(start2.startUs / 1000 - unlocked < 5000);
  await sb.waitForState(id!, "completed");
  const job = await sb.show(id!);
  assert.equal(job.attempts, 2);
  assert.equal(job.history[0]!.outcome, "lost");
  assert.equal(job.history[1]!.outcome, "completed");
  await poll(() => sb.state(id!) === "completed", PROMPT_MS, "completion");
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});
