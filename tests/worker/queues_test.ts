/**
 * Named queues with real worker processes: a pause that running workers obey (at no CPU cost)
 * and a resume that wakes them at once, a queue limit that holds across several multi-slot
 * workers, and workers that claim only their `--queue`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { Sandbox } from "../helpers/sandbox.ts";
import type { Proc } from "../helpers/process.ts";

/** utime + stime of a process, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

async function stopAll(workers: readonly Proc[]): Promise<void> {
  for (const w of workers) w.kill("SIGTERM");
  for (const w of workers) assert.equal((await w.wait(PROMPT_MS)).code, 0);
}

Deno.test("pause holds a queue from running workers at no CPU cost; resume wakes them at once", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig({ "lease-timeout": "60s" });
  const workers = [sb.worker({ args: ["--concurrency", "2"] }), sb.worker()];
  for (const w of workers) await w.waitForStderr(/ started \(pid/, PROMPT_MS, "a worker to start");
  await sb.ok(["pause", "held"]);
  const held = await sb.enqueue(
    Array.from({ length: 20 }, () => ({ command: sb.job("true"), queue: "held", priority: 10 })),
  );
  const free = await sb.enqueue(Array.from({ length: 5 }, () => ({ command: sb.job("true") })));
  // The other queue's jobs run, though the paused ones are due and of a higher priority.
  for (const id of free) await sb.waitForState(id, "completed");
  // A worker whose last job ended stores its totals once (a heartbeat right after the outcome's
  // commit): that write is the drain's, not the wait's.
  await poll(
    () => Number(sb.query("SELECT sum(jobs_done) AS n FROM workers")[0]!.n) === free.length,
    PROMPT_MS,
    "the workers' totals after the drain",
  );
  // With only paused jobs due, the workers wait: no claims (writes), little CPU.
  const watch = new DatabaseSync(sb.db, { readOnly: true });
  try {
    const version = () => Number(watch.prepare("PRAGMA data_version").get()!.data_version);
    const before = workers.map((w) => cpuTicks(w.pid));
    const [v0, t0] = [version(), performance.now()];
    await poll(() => performance.now() - t0 >= 1500, PROMPT_MS, "an idle 1.5 s");
    const used = workers.map((w, i) => cpuTicks(w.pid) - before[i]!);
    assert.ok(used.every((t) => t <= 15), `the waiting workers used ${used} ticks in 1.5 s`);
    assert.equal(version(), v0, "a worker wrote to the database while only paused jobs waited");
  } finally {
    watch.close();
  }
  assert.equal(sb.ledger().starts(held[0]!), 0);
  assert.ok(held.every((id) => sb.state(id) === "pending"));
  // Running jobs of a queue go on when it is paused; the resume starts the rest promptly.
  const t0 = performance.now();
  await sb.ok(["resume", "held"]);
  await sb.waitRun(held[0]!, 1, 1000);
  const pickupMs = performance.now() - t0;
  // Well under the idle workers' safety poll (5 s): the resume's commit woke them.
  assert.ok(pickupMs < 1000, `the first held job started ${pickupMs.toFixed(0)} ms after resume`);
  for (const id of held) await sb.waitForState(id, "completed");
  // The pause outlives the workers: a new worker started after a pause claims nothing of it.
  await sb.ok(["pause", "held"]);
  const [late] = await sb.enqueue([{ command: sb.job("true"), queue: "held" }]);
  await stopAll(workers);
  await sb.workerOnce();
  assert.equal(sb.state(late!), "pending");
  await sb.ok(["resume"]);
  await sb.workerOnce();
  assert.equal(sb.state(late!), "completed");
  await sb.assertNoLeftovers();
});

Deno.test("a queue limit of 1 holds across 4 multi-slot workers: 50 jobs, never two at once", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  await sb.ok(["queue", "set", "one", "--concurrency", "1"]);
  const limited = await sb.enqueue(
    Array.from({ length: 50 }, () => ({ command: sb.job("sleep 0.01"), queue: "one" })),
  );
  // Jobs of an unlimited queue alongside, so the workers are busy and claim in bursts.
  const others = await sb.enqueue(
    Array.from({ length: 30 }, () => ({ command: sb.job("sleep 0.01") })),
  );
  const workers = Array.from({ length: 4 }, () => sb.worker({ args: ["--concurrency", "3"] }));
  await sb.settle(60_000);
  await stopAll(workers);
  const ledger = sb.ledger();
  const runs = limited.flatMap((id) => ledger.runs.get(id) ?? []);
  assert.equal(runs.length, 50, "every limited job ran once");
  runs.sort((a, b) => a.startUs - b.startUs);
  for (let i = 1; i < runs.length; i++) {
    const [prev, next] = [runs[i - 1]!, runs[i]!];
    assert.ok(
      next.startUs >= prev.endUs!,
      `${next.id} started ${prev.endUs! - next.startUs} µs before ${prev.id} ended`,
    );
  }
  // The other queue ran side by side with them (it is not limited).
  const otherRuns = others.flatMap((id) => ledger.runs.get(id) ?? []);
  assert.equal(otherRuns.length, 30);
  assert.ok(limited.every((id) => sb.state(id) === "completed"));
  await sb.assertNoLeftovers();
});

Deno.test("worker run --queue claims only the jobs of its queues; worker start passes it on", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [a, b, d] = await sb.enqueue([
    { command: sb.job("true"), queue: "a" },
    { command: sb.job("true"), queue: "b" },
    { command: sb.job("true") },
  ]);
  const out = await sb.run(["worker", "run", "--once", "--queue", "a,x"]);
  assert.equal(out.code, 0);
  assert.match(out.stderr, /started \(pid \d+, [a-z_]+, queues a, x\)/);
  assert.deepEqual([sb.state(a!), sb.state(b!), sb.state(d!)], ["completed", "pending", "pending"]);
  const start = sb.spawn(["worker", "start", "--queue", "b"]);
  await sb.waitForState(b!, "completed");
  // The supervisor's worker has --queue b: the default queue's job stays.
  await start.waitForStderr(/queues b\)/, PROMPT_MS, "the worker's start line");
  assert.equal(sb.state(d!), "pending");
  start.kill("SIGTERM");
  assert.equal((await start.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});
