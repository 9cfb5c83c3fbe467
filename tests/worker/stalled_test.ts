/**
 * Workers that do not answer: a worker stopped with SIGSTOP (Ctrl-Z, a debugger, a frozen
 * container) is shown as stale, `worker stop --timeout`/`--force` are bounded whatever it does and
 * name it, and a job that finished while its worker was stopped keeps its outcome.
 */

import assert from "node:assert/strict";
import type { Run } from "../helpers/ledger.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning, procStat, waitForGroup } from "../helpers/proc.ts";
import { Sandbox, type WorkerJson } from "../helpers/sandbox.ts";

/** The default lease: nothing here may be rescued because a lease ran out. */
const LONG_LEASE = { "lease-timeout": "60s", "backoff-base": "1", "backoff-max": "1s" };

async function running(
  sb: Sandbox,
  id: string,
): Promise<{ start: Run; members: number[] }> {
  const start = await sb.waitRun(id, 1);
  return { start, members: await waitForGroup(start.pid) };
}

function stopped(pid: number): boolean {
  const state = procStat(pid)?.state;
  return state === "T" || state === "t";
}

/** SIGSTOPs `pid` and waits until the kernel says it is stopped. */
async function freeze(pid: number): Promise<void> {
  Deno.kill(pid, "SIGSTOP");
  await poll(() => stopped(pid), PROMPT_MS, `process ${pid} to be stopped`);
}

/** The job's attempt 1 was recovered as after a crash: not processing, recorded lost. */
async function assertRecovered(sb: Sandbox, id: string, members: number[]): Promise<void> {
  for (const pid of members) assert.ok(!isRunning(pid), `job ${id} process ${pid} survived`);
  const job = await sb.show(id);
  assert.notEqual(job.state, "processing", `job ${id} was left processing`);
  assert.equal(job.worker_id, null);
  assert.equal(job.history[0]!.outcome, "lost");
  assert.match(job.history[0]!.error ?? "", /worker lost/);
}

Deno.test("worker list and status show a SIGSTOPped worker as stale, in text and JSON", async () => {
  await using sb = await Sandbox.create();
  await sb.config(LONG_LEASE);
  const [id] = await sb.enqueue([{ command: sb.job("sleep 30") }]);
  const worker = sb.spawn(["worker", "run"]);
  await running(sb, id!);
  const [row] = sb.workerRows();
  assert.ok(row);
  await freeze(worker.pid);

  const listed = await sb.json<WorkerJson[]>(["worker", "list"]);
  assert.deepEqual(listed.map((w) => [w.id, w.state]), [[row.id, "stale"]]);
  const status = await sb.json<{ workers: WorkerJson[] }>(["status"]);
  assert.deepEqual(status.workers.map((w) => w.state), ["stale"]);
  const text = await sb.ok(["worker", "list"]);
  assert.match(text, new RegExp(`^${row.id} +${worker.pid} +\\S+ +stale `, "m"));
  assert.match(
    text,
    new RegExp(`worker ${row.id} \\(pid ${worker.pid}\\) is stopped \\(SIGSTOP\\)`),
  );
  const human = await sb.ok(["status"]);
  assert.match(human, /^Workers: 0 active, 1 stale$/m);

  worker.kill("SIGCONT");
  await poll(
    async () => (await sb.json<WorkerJson[]>(["worker", "list"]))[0]?.state === "busy",
    PROMPT_MS,
    "the resumed worker to be busy again",
  );
  worker.kill("SIGQUIT");
  assert.equal((await worker.wait(PROMPT_MS)).code, 143);
  await sb.assertNoLeftovers();
});

Deno.test("worker stop --timeout is bounded by a SIGSTOPped worker: names it, kills it, recovers its job", async () => {
  await using sb = await Sandbox.create();
  await sb.config(LONG_LEASE);
  const [id] = await sb.enqueue([{ command: sb.job("sleep 30") }]);
  const worker = sb.spawn(["worker", "run"]);
  const { members } = await running(sb, id!);
  const [row] = sb.workerRows();
  await freeze(worker.pid);

  const started = performance.now();
  const stop = await sb.run(["worker", "stop", "--timeout", "1s"], { timeoutMs: 30_000 });
  const took = performance.now() - started;
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(took >= 1000, `stop gave up after ${took} ms, before its timeout`);
  assert.ok(took < 8000, `stop took ${took} ms`);
  assert.match(
    stop.stderr,
    new RegExp(`worker ${row!.id} \\(pid ${worker.pid}\\) is stopped \\(SIGSTOP\\)`),
  );
  assert.match(stop.stdout, new RegExp(`^Stopped 1 worker \\(pid ${worker.pid}\\)`, "m"));
  const exit = await worker.wait(PROMPT_MS, "the stopped worker to be killed");
  assert.equal(exit.signal, "SIGKILL");
  await assertRecovered(sb, id!, members);
  assert.equal((await sb.ok(["worker", "list"])).trim(), "No workers are running.");
  await sb.assertNoLeftovers();
});

Deno.test("worker stop --force kills a SIGSTOPped worker of a pool at once; the pool exits 143", async () => {
  await using sb = await Sandbox.create();
  await sb.config(LONG_LEASE);
  const ids = await sb.enqueue([
    { command: sb.job("sleep 30") },
    { command: sb.job("sleep 30") },
  ]);
  // One job per worker, so that each worker holds one of the two.
  const pool = sb.spawn(["worker", "start", "--count", "2", "--concurrency", "1"]);
  const groups = await Promise.all(ids.map((id) => running(sb, id)));
  const rows = sb.workerRows();
  assert.equal(rows.length, 2);
  // The worker running the first job is stopped; the other answers.
  const owner = String(sb.query("SELECT worker_id FROM jobs WHERE id = ?", ids[0]!)[0]!.worker_id);
  const frozen = rows.find((w) => w.id === owner)!;
  await freeze(frozen.pid);

  const started = performance.now();
  const stop = await sb.run(["worker", "stop", "--force", "--json"], { timeoutMs: 30_000 });
  const took = performance.now() - started;
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(took < 6000, `stop --force took ${took} ms`);
  assert.match(
    stop.stderr,
    new RegExp(`worker ${frozen.id} \\(pid ${frozen.pid}\\) is stopped \\(SIGSTOP\\)`),
  );
  const out = JSON.parse(stop.stdout) as {
    stopped: WorkerJson[];
    forced: boolean;
    killed: string[];
  };
  assert.equal(out.forced, true);
  assert.deepEqual(out.stopped.map((w) => w.id).sort(), rows.map((w) => w.id).sort());
  assert.deepEqual(out.killed, [frozen.id]);
  const exit = await pool.wait(PROMPT_MS, "the supervisor to exit");
  assert.equal(exit.code, 143, exit.stderr);
  for (const w of rows) assert.ok(!isRunning(w.pid), `worker ${w.pid} still runs`);
  await assertRecovered(sb, ids[0]!, groups[0]!.members);
  // The worker that answered interrupted its job the usual way: back to pending, not charged.
  const other = await sb.show(ids[1]!);
  assert.equal(other.state, "pending");
  assert.equal(other.history[0]!.outcome, "interrupted");
  for (const pid of groups[1]!.members) assert.ok(!isRunning(pid));
  await sb.assertNoLeftovers();
});

Deno.test("worker stop without --timeout says after a few seconds which worker it waits for", async () => {
  await using sb = await Sandbox.create();
  await sb.config(LONG_LEASE);
  const [id] = await sb.enqueue([{ command: sb.job("sleep 1") }]);
  const worker = sb.spawn(["worker", "run"]);
  const { start } = await running(sb, id!);
  const [row] = sb.workerRows();
  await freeze(worker.pid);

  const stop = sb.spawn(["worker", "stop"]);
  await stop.waitForStderr(
    new RegExp(`worker ${row!.id} \\(pid ${worker.pid}\\) is stopped \\(SIGSTOP\\)`),
    PROMPT_MS,
    "the progress note",
  );
  assert.ok(!stop.exited, "a graceful stop must wait for the worker");
  // The job ended while its worker was stopped; once resumed, the worker records that and stops.
  await poll(() => procStat(start.pid)?.state === "Z", PROMPT_MS, "the job's shell to exit");
  worker.kill("SIGCONT");
  const done = await stop.wait(PROMPT_MS, "the stop to end");
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, new RegExp(`^Stopped 1 worker \\(pid ${worker.pid}\\)$`, "m"));
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  const job = await sb.show(id!);
  assert.equal(job.state, "completed");
  await sb.assertNoLeftovers();
});

Deno.test("a job that exited while its worker was stopped keeps its exit status through a forced stop", async () => {
  await using sb = await Sandbox.create();
  await sb.config(LONG_LEASE);
  const [id] = await sb.enqueue([{ command: sb.job("sleep 0.5; echo finished") }]);
  const worker = sb.spawn(["worker", "run"]);
  const { start } = await running(sb, id!);
  await freeze(worker.pid);
  // The shell exits while its worker cannot collect it: a zombie holding exit status 0.
  await sb.waitRun(id!, 1, PROMPT_MS, { end: true });
  await poll(() => procStat(start.pid)?.state === "Z", PROMPT_MS, "the job's shell to exit");
  // The forced stop is already pending when the worker resumes: it must not win over the status.
  worker.kill("SIGQUIT");
  worker.kill("SIGCONT");
  const exit = await worker.wait(PROMPT_MS, "the worker to stop");
  assert.equal(exit.code, 143, exit.stderr);
  const job = await sb.show(id!);
  assert.equal(job.state, "completed", exit.stderr);
  assert.equal(job.attempts, 1);
  assert.deepEqual(
    job.history.map((a) => [a.outcome, a.exit_code]),
    [["completed", 0]],
  );
  assert.equal((await sb.ok(["logs", id!, "--stdout"])).trim(), "finished");
  await sb.assertNoLeftovers();
});
