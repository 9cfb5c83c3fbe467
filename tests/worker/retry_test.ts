/**
 * Failing jobs: retries with backoff into the dead letter queue, `dlq retry` with a fresh budget,
 * and the exit codes of `wait` and `enqueue --wait` that pipelines rely on.
 */

import assert from "node:assert/strict";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { type JobJson, Sandbox } from "../helpers/sandbox.ts";

Deno.test("worker run retries a failing job with backoff into the DLQ; dlq retry runs it again", async () => {
  await using sb = await Sandbox.create();
  // backoff-base 1: every retry waits 1^n = 1 s.
  await sb.fastConfig({ "backoff-base": "1", "backoff-max": "10s" });
  const [id] = await sb.enqueue([{ command: sb.job("exit 1"), max_retries: 2 }]);
  const worker = sb.spawn(["worker", "run"]);

  /** Checks the attempts `from`..`to` in the ledger: each ran once, failed, waited its backoff. */
  const checkRound = (from: number, to: number) => {
    const runs = sb.ledger().order;
    assert.deepEqual(
      runs.map((run) => run.attempt),
      Array.from({ length: to }, (_, i) => i + 1),
      "attempts in the ledger",
    );
    for (let attempt = from + 1; attempt <= to; attempt++) {
      const end = runs.find((run) => run.attempt === attempt - 1)!;
      const next = runs.find((run) => run.attempt === attempt)!;
      assert.equal(end.status, 1);
      const gap = next.startUs / 1000 - end.endUs! / 1000;
      assert.ok(gap >= 999, `attempt ${attempt} started ${gap} ms after the previous one`);
      assert.ok(gap < 1000 + 2500, `attempt ${attempt} started late: ${gap} ms`);
    }
  };

  await sb.waitForState(id!, "dead", 20_000);
  checkRound(1, 3);
  const dead = await sb.show(id!);
  assert.equal(dead.attempts, 3);
  assert.equal(dead.attempts_left, 0);
  assert.equal(dead.last_error, "exited with code 1");
  assert.equal(dead.last_exit_code, 1);
  assert.deepEqual(dead.history.map((a) => [a.outcome, a.exit_code]), [
    ["failed", 1],
    ["failed", 1],
    ["failed", 1],
  ]);
  const dlq = await sb.json<JobJson[]>(["dlq", "list"]);
  assert.deepEqual(dlq.map((j) => j.id), [id]);

  const waited = await sb.run(["wait", id!]);
  assert.equal(waited.code, 1, "wait exits 1 for a dead job");
  assert.equal(waited.stdout, `${id} dead (exited with code 1)\n`);

  const [retried] = await sb.json<JobJson[]>(["dlq", "retry", id!]);
  assert.equal(retried!.state, "pending");
  assert.equal(retried!.attempts_left, 3, "a fresh budget");
  // Retried at once (not after a backoff), then through its retries again.
  const start4 = await sb.waitRun(id!, 4);
  assert.ok(start4.startUs / 1000 - Date.parse(retried!.updated_at) < 1500);
  await sb.waitForState(id!, "dead", 20_000);
  checkRound(4, 6);
  const again = await sb.show(id!);
  assert.equal(again.attempts, 6);
  assert.equal(again.attempts_left, 0);
  assert.equal(again.history.length, 6);

  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("wait exits 0 when all completed, 1 when any is dead, 124 on timeout", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [ok, bad, later] = await sb.enqueue([
    { command: "true" },
    { command: "exit 3", max_retries: 0 },
    { command: "true", delay: "1h" },
  ]);
  // wait blocks while a worker starts and runs the jobs.
  const waiting = sb.spawn(["wait", ok!]);
  const worker = sb.spawn(["worker", "run"]);
  const done = await waiting.wait(PROMPT_MS, "wait for the completed job");
  assert.equal(done.code, 0, done.stderr);
  assert.equal(done.stdout, `${ok} completed\n`);

  const both = await sb.run(["wait", ok!, bad!]);
  assert.equal(both.code, 1);
  assert.equal(both.stdout, `${ok} completed\n${bad} dead (exited with code 3)\n`);

  const started = performance.now();
  const timedOut = await sb.run(["wait", ok!, later!, "--timeout", "500ms"]);
  assert.equal(timedOut.code, 124);
  assert.ok(performance.now() - started >= 500, "wait gave up before its timeout");
  assert.equal(sb.state(later!), "pending");

  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("enqueue --wait exits with the job's outcome", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const worker = sb.spawn(["worker", "run"]);
  const good = await sb.run(["enqueue", "--wait", "-c", "true"]);
  assert.equal(good.code, 0, good.stderr);
  // The id, then what `wait` prints.
  const id = good.stdout.split("\n")[0]!;
  assert.equal(good.stdout, `${id}\n${id} completed\n`);
  assert.equal(sb.state(id), "completed");

  const bad = await sb.run(["enqueue", "--wait", "-c", "exit 7", "--max-retries", "1"]);
  assert.equal(bad.code, 1, bad.stderr);
  const job = await sb.show(bad.stdout.split("\n")[0]!);
  assert.match(bad.stdout, /^\w+\n\w+ dead \(exited with code 7\)\n$/);
  assert.equal(job.state, "dead");
  assert.equal(job.attempts, 2);
  assert.equal(job.last_exit_code, 7);

  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await poll(() => sb.leftovers().length === 0, PROMPT_MS, "no process left");
  await sb.assertNoLeftovers();
});
