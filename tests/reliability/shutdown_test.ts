/**
 * Shutdown (RELIABILITY §2.2 B6, B8): a first SIGTERM lets the running job finish and claims
 * nothing more; a second signal, or SIGQUIT, kills the running jobs' groups at once and gives
 * their jobs back without charging the attempt. Also through `worker start` and `worker stop`.
 */

import assert from "node:assert/strict";
import { report, verify } from "./_checker.ts";
import { poll } from "../helpers/poll.ts";
import { AttemptSampler, jobProcesses } from "../helpers/proc.ts";
import { Sandbox } from "../helpers/sandbox.ts";
import { STORES } from "./_shapes.ts";

const LONG_FIRST = 'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then sleep 60; fi';

for (const shape of STORES) {
  Deno.test(`B6: SIGTERM lets the running job finish, claims nothing new, exits 0${shape.label}`, async () => {
    await using sb = await Sandbox.create("b6", shape.options);
    const ids = await sb.enqueue([{ id: "running", command: sb.job("sleep 3") }]);
    const worker = sb.worker();
    await sb.waitRun("running", 1, 30_000);
    const signalledAt = performance.now();
    worker.kill("SIGTERM");
    const later = await sb.enqueue(
      Array.from({ length: 10 }, (_, i) => ({ id: `later-${i}`, command: sb.job() })),
    );
    const result = await worker.wait(3000 + 2000 + 5000, "the worker to finish and exit");
    const exitMs = performance.now() - signalledAt;
    const rows = sb.jobs();
    const laterRows = later.map((id) => sb.job1(id)!);
    // The ten are run by the next worker, so the checker sees every job through.
    await sb.workerOnce();
    verify(sb, "B6 graceful SIGTERM", { acked: [...ids, ...later], crashes: false }, {
      exit: result.code,
      exit_after_s: (exitMs / 1000).toFixed(2),
      pending_after: rows.filter((r) => r.state === "pending").length,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(exitMs < 3000 + 2000, `exited ${exitMs.toFixed(0)} ms after SIGTERM`);
    assert.equal(rows.find((r) => r.id === "running")?.state, "completed");
    for (const row of laterRows) {
      assert.deepEqual([row.state, row.attempts], ["pending", 0], `${row.id} was not claimed`);
    }
  });
}

for (const shape of STORES) {
  for (
    const [name, signals, code] of [
      ["second SIGTERM", ["SIGTERM", "SIGTERM"], 143],
      ["second SIGINT", ["SIGINT", "SIGINT"], 130],
      ["SIGQUIT", ["SIGQUIT"], 143],
    ] as const
  ) {
    Deno.test(`B8: ${name} kills the job group at once and gives the job back uncharged${shape.label}`, async () => {
      await using sb = await Sandbox.create(`b8-${name}`, shape.options);
      const ids = await sb.enqueue([{ id: "j", command: sb.job(LONG_FIRST), max_retries: 0 }]);
      const sampler = new AttemptSampler(sb.db, 50).start();
      const worker = sb.worker();
      await sb.waitRun("j", 1, 30_000);
      for (const signal of signals) {
        worker.kill(signal);
        // The escalation must not depend on when the second signal comes.
        if (signals.length > 1) {
          await poll(() => worker.lines.some((l) => /stopping/.test(l.text)), 5000, "stop");
        }
      }
      const forcedAt = performance.now();
      await poll(
        () => jobProcesses(sb.db, "j").length === 0,
        5000,
        "the job's processes to die",
      );
      const killMs = performance.now() - forcedAt;
      const result = await worker.wait(10_000, "the worker to exit");
      const row = sb.job1("j")!;
      // Max retries 0: had the interrupted attempt been charged, the next failure would bury it.
      await sb.workerOnce();
      sampler.stop();
      verify(sb, `B8 ${name}`, { acked: ids, crashes: true, sampler }, {
        exit: result.code,
        group_dead_after_ms: killMs.toFixed(0),
        state_after: `${row.state}/budget_used=${row.budget_used}`,
      }, { maxDuplicated: 1 });
      assert.ok(killMs < 1000, `job group killed ${killMs.toFixed(0)} ms after the forcing signal`);
      assert.equal(result.code, code);
      assert.deepEqual([row.state, row.budget_used], ["pending", 0]);
      assert.deepEqual(sb.attempts("j").map((a) => a.outcome), ["interrupted", "completed"]);
    });
  }
}

for (const shape of STORES) {
  Deno.test(`B8: \`worker stop\` waits for jobs; \`worker stop --force\` kills and returns them${shape.label}`, async () => {
    await using sb = await Sandbox.create("b8-stop", shape.options);
    const ids = await sb.enqueue([
      { id: "short-1", command: sb.job("sleep 1") },
      { id: "short-2", command: sb.job("sleep 1") },
    ]);
    const sampler = new AttemptSampler(sb.db, 50).start();
    const supervisor = Number(
      (await sb.ok(["worker", "start", "--count", "2", "--detach"])).trim(),
    );
    await Promise.all([sb.waitRun("short-1", 1, 30_000), sb.waitRun("short-2", 1, 30_000)]);
    const graceful = await sb.run(["worker", "stop"]);
    const afterGraceful = sb.jobs().map((j) => j.state);
    assert.equal(graceful.code, 0, graceful.stderr);
    assert.deepEqual(
      afterGraceful,
      ["completed", "completed"],
      "graceful stop let both jobs finish",
    );
    assert.deepEqual(sb.leftovers(), [], "no supervisor, worker or job is left");

    ids.push(
      ...await sb.enqueue([
        { id: "long-1", command: sb.job(LONG_FIRST), max_retries: 0 },
        { id: "long-2", command: sb.job(LONG_FIRST), max_retries: 0 },
      ]),
    );
    await sb.ok(["worker", "start", "--count", "2", "--detach"]);
    await Promise.all([sb.waitRun("long-1", 1, 30_000), sb.waitRun("long-2", 1, 30_000)]);
    const started = performance.now();
    const forced = await sb.run(["worker", "stop", "--force"]);
    const stopMs = performance.now() - started;
    const longRows = ["long-1", "long-2"].map((id) => sb.job1(id)!);
    const left = sb.leftovers();
    await sb.workerOnce();
    sampler.stop();
    verify(sb, "B8 worker stop / stop --force", { acked: ids, crashes: true, sampler }, {
      supervisor,
      force_stop_s: (stopMs / 1000).toFixed(2),
      after_force: longRows.map((r) => `${r.state}/${r.budget_used}`).join(","),
    }, { maxDuplicated: 2 });
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(left, [], "no supervisor, worker or job is left");
    for (const row of longRows) assert.deepEqual([row.state, row.budget_used], ["pending", 0]);
    report(`B8 stop: graceful exit=${graceful.code} forced exit=${forced.code}`);
  });
}
