/**
 * `worker stop --all-hosts`: a stop request stored in the database, which reaches every worker
 * registered before it (signals do not cross machines). Here on one host, through SQLite; the
 * multi-host run is in tests/reliability/hosts_test.ts.
 */

import assert from "node:assert/strict";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning } from "../helpers/proc.ts";
import { Sandbox } from "../helpers/sandbox.ts";

Deno.test("worker stop --all-hosts lets running jobs finish, reaches supervised workers, spares later ones", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [slow] = await sb.enqueue([{ id: "slow", command: sb.job("sleep 1") }]);
  const pool = sb.spawn(["worker", "start", "--count", "2", "--concurrency", "1"]);
  await sb.waitRun(slow!, 1);
  const stop = sb.spawn(["worker", "stop", "--all-hosts", "--json"]);
  const exit = await stop.wait(30_000, "worker stop --all-hosts");
  assert.equal(exit.code, 0, exit.stderr);
  const report = JSON.parse(exit.stdout);
  assert.equal(report.stopped.length, 2);
  assert.equal(report.forced, false);
  assert.deepEqual(report.unreachable, []);
  // Graceful: the running job finished before its worker left; the supervisor restarted nothing.
  assert.equal(sb.job1("slow")?.state, "completed");
  const done = await pool.wait(PROMPT_MS, "the supervisor to exit");
  assert.equal(done.code, 0, done.stderr);
  assert.doesNotMatch(done.stderr, /restarting worker/);
  assert.match(done.stderr, /stopping \(graceful\): stop requested for every host/);
  assert.deepEqual(sb.workerRows(), []);

  // A worker started after the request does not see it.
  const later = sb.worker();
  await poll(() => sb.workerRows().length === 1, PROMPT_MS, "the later worker to register");
  const [next] = await sb.enqueue([{ command: sb.job() }]);
  await sb.waitForState(next!, "completed");
  assert.ok(isRunning(later.pid), "the later worker stopped");

  // --force kills the running job, which goes back to pending.
  const [long] = await sb.enqueue([{ id: "long", command: sb.job("sleep 60"), max_retries: 2 }]);
  await sb.waitRun(long!, 1);
  const forced = await sb.ok(["worker", "stop", "--all-hosts", "--force"], { timeoutMs: 30_000 });
  assert.match(forced, /^Stopped 1 worker on 1 host \(.+\), killing running jobs\n$/);
  const gone = await later.wait(PROMPT_MS, "the forced worker to exit");
  assert.equal(gone.code, 0, gone.stderr);
  const job = sb.job1("long")!;
  assert.equal(job.state, "pending");
  assert.equal(job.attempts, 1);
  assert.equal((await sb.ok(["worker", "stop", "--all-hosts"])).trim(), "No workers are running.");
  await sb.assertNoLeftovers();
});
