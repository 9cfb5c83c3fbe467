/**
 * Cancel under faults (issue 11): a worker SIGKILLed between seeing a cancel request and killing
 * the job. The job's processes outlive their worker; recovery by another worker kills them and
 * records the job `cancelled` (its attempt `cancelled`), never a retry: nothing acknowledged is
 * lost, nothing runs twice, no attempt overlaps another. And cancels at random moments of a
 * drain with several multi-slot workers keep the same invariants.
 *
 * @module
 */

import assert from "node:assert/strict";
import { verify } from "./_checker.ts";
import { poll } from "../helpers/poll.ts";
import { AttemptSampler, isRunning } from "../helpers/proc.ts";
import type { Proc } from "../helpers/process.ts";
import { Sandbox } from "../helpers/sandbox.ts";
import { FOUR_SLOTS, PG_FOUR_SLOTS, SHAPES_BOTH_STORES } from "./_shapes.ts";

async function stop(workers: Proc[]): Promise<void> {
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.wait(30_000, "worker to stop")));
}

for (const shape of SHAPES_BOTH_STORES) {
  Deno.test(`B4 cancel:seen: the worker dies before the kill; recovery kills and cancels${shape.label}`, async () => {
    await using sb = await Sandbox.create(`cancel-seen-${shape.slots}`, shape.options);
    await sb.config({ "lease-timeout": "6s", "backoff-base": "1", "backoff-max": "0" });
    const pids = `${sb.dir}/job.pid`;
    const ids = await sb.enqueue([{
      id: "c",
      command: sb.job(`echo $$ > '${pids}'; sleep 60`),
      max_retries: 3,
    }, { id: "other", command: sb.job("true") }]);
    const sampler = new AttemptSampler(sb.db, 50).start();
    const faulty = sb.worker({ hooks: { fault: "cancel:seen" } });
    await sb.waitRun("c", 1, 30_000);
    const jobPid = await poll(
      () => {
        try {
          return Number(Deno.readTextFileSync(pids).trim()) || false;
        } catch {
          return false;
        }
      },
      30_000,
      "the job's pid",
    );
    const cancel = await sb.run(["cancel", "c", "--reason", "fault test"]);
    assert.equal(cancel.code, 0, cancel.stderr);
    const died = await faulty.wait(30_000, "the worker to reach the fault");
    assert.equal(died.signal, "SIGKILL", `the fault fired: ${died.stderr.slice(-300)}`);
    // The job outlived its worker; it is still processing, with the request on it.
    assert.ok(isRunning(jobPid), "the job's process died with its worker");
    assert.equal(sb.job1("c")?.state, "processing");
    const rescuer = sb.worker();
    await sb.settle(30_000);
    sampler.stop();
    await stop([rescuer]);
    assert.ok(!isRunning(jobPid), "recovery left the cancelled job's process running");
    const attempts = sb.attempts("c");
    verify(sb, "B4 cancel:seen", { acked: ids, crashes: true, sampler, cancelled: ["c"] }, {
      worker: died.signal ?? String(died.code),
      attempts: attempts.map((a) => a.outcome).join(","),
      runs: sb.ledger().starts("c"),
    });
    assert.equal(sb.job1("c")?.state, "cancelled");
    assert.deepEqual(attempts.map((a) => a.outcome), ["cancelled"]);
    assert.equal(sb.ledger().starts("c"), 1, "a cancelled job is not run again");
    assert.equal(sb.job1("other")?.state, "completed");
    await sb.assertNoLeftovers();
  });
}

for (const shape of [FOUR_SLOTS, PG_FOUR_SLOTS]) {
  Deno.test(
    `cancels at random moments of a drain by 3 workers of 4 slots: lost=0, overlaps=0${
      shape.store === "postgres" ? " [postgres]" : ""
    }`,
    async () => {
      await using sb = await Sandbox.create("cancel-drain", shape.options);
      await sb.config({ "lease-timeout": "6s", "backoff-base": "1", "backoff-max": "0" });
      const N = 120;
      const ids = await sb.enqueue(
        Array.from({ length: N }, (_, i) => ({
          id: `d${i}`,
          command: sb.job(i % 3 === 0 ? "sleep 0.3" : i % 3 === 1 ? "true" : "exit 1"),
          max_retries: 1,
        })),
      );
      const sampler = new AttemptSampler(sb.db, 50).start();
      const workers = [sb.worker(), sb.worker(), sb.worker()];
      const cancelled: string[] = [];
      // From the end of the queue back: pending, reserved, running and finished ones in turn.
      for (let i = N - 4; i >= 0; i -= 4) {
        const batch = [`d${i}`, `d${i + 2}`];
        const r = await sb.run(["cancel", ...batch, "--reason", "random"]);
        // Exit 3: one of them had finished already, and (all or none) neither was cancelled.
        assert.ok(r.code === 0 || r.code === 3, r.stderr);
        if (r.code === 0) cancelled.push(...batch);
      }
      await sb.settle(60_000);
      sampler.stop();
      await stop(workers);
      const f = verify(sb, "cancel drain", { acked: ids, crashes: false, sampler, cancelled }, {
        cancelled: sb.counts().cancelled ?? 0,
      });
      assert.equal(f.lost, 0);
      for (const id of ids) {
        const state = sb.job1(id)?.state;
        if (state === "cancelled") assert.ok(cancelled.includes(id), `${id} cancelled unasked`);
      }
      await sb.assertNoLeftovers();
    },
  );
}
