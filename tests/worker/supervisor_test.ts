/**
 * `worker start` as a supervisor: restarts a worker that dies, forwards SIGTERM, and in the
 * background (`--detach`) is found and stopped by `worker stop`.
 */

import assert from "node:assert/strict";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning } from "../helpers/proc.ts";
import { Sandbox, type WorkerJson } from "../helpers/sandbox.ts";

Deno.test("worker start restarts a killed worker and stops all workers on SIGTERM", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const pool = sb.spawn(["worker", "start", "--count", "2"]);
  const first = await poll(
    () => {
      const rows = sb.workerRows();
      return rows.length === 2 && rows;
    },
    PROMPT_MS,
    "two workers",
  );
  for (const row of first) {
    assert.equal(row.supervisor_pid, pool.pid);
    assert.ok(isRunning(row.pid));
  }

  const victim = first[0]!;
  Deno.kill(victim.pid, "SIGKILL");
  const replacement = await poll(
    () => sb.workerRows().find((w) => !first.some((f) => f.id === w.id)),
    PROMPT_MS,
    "a restarted worker",
    { describe: () => JSON.stringify(sb.workerRows()) },
  );
  assert.equal(replacement.supervisor_pid, pool.pid);
  assert.match(pool.stderr, new RegExp(`worker \\d \\(pid ${victim.pid}\\) was killed by SIGKILL`));
  assert.match(pool.stderr, /restarting worker \d in \d+ ms/);
  // The dead worker's row is forgotten by a live worker's sweep.
  await poll(
    () => !sb.workerRows().some((w) => w.id === victim.id),
    PROMPT_MS,
    "the dead worker's row to go",
  );
  const listed = await sb.json<WorkerJson[]>(["worker", "list"]);
  assert.equal(listed.length, 2);
  assert.ok(listed.every((w) => w.state === "idle"), JSON.stringify(listed));

  // The restarted pool still works.
  const [id] = await sb.enqueue([{ command: "true" }]);
  await sb.waitForState(id!, "completed");

  pool.kill("SIGTERM");
  const exit = await pool.wait(PROMPT_MS, "the supervisor to stop");
  assert.equal(exit.code, 0, exit.stderr);
  for (const w of listed) assert.ok(!isRunning(w.pid), `worker ${w.pid} still runs`);
  assert.deepEqual(sb.workerRows(), [], "workers deregistered");
  assert.doesNotMatch(exit.stderr, /exited with [1-9]/, "a worker failed to stop cleanly");
  await sb.assertNoLeftovers();
});

Deno.test("worker start --detach returns a pid; worker list shows its workers; worker stop stops them", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  // A zone with a half-hour offset, so that a UTC time cannot pass for a local one.
  const env = { TZ: "Asia/Kolkata" };
  const started = performance.now();
  const out = await sb.ok(["worker", "start", "--count", "2", "--detach"], {
    timeoutMs: 30_000,
    env,
  });
  assert.ok(performance.now() - started < 15_000);
  assert.match(out, /^\d+\n$/);
  const supervisor = Number(out);
  assert.ok(isRunning(supervisor), "the supervisor runs in the background");

  const workers = await sb.json<WorkerJson[]>(["worker", "list"]);
  assert.equal(workers.length, 2);
  for (const w of workers) {
    assert.ok(isRunning(w.pid));
    assert.equal(w.state, "idle");
  }
  const rows = sb.workerRows();
  assert.ok(rows.every((r) => r.supervisor_pid === supervisor));

  const [id] = await sb.enqueue([{ command: "echo detached" }]);
  await sb.waitForState(id!, "completed");

  // A second start says what already runs before it starts more.
  const second = await sb.run(["worker", "start", "--detach"], { timeoutMs: 30_000, env });
  assert.equal(second.code, 0, second.stderr);
  const pids = workers.map((w) => w.pid);
  assert.match(
    second.stderr,
    new RegExp(
      `^queuectl: 2 workers already run on this database on this host ` +
        `\\(pid (${pids.join(", ")}|${pids.toReversed().join(", ")})\\); starting 1 more`,
      "m",
    ),
  );
  const all = await sb.json<WorkerJson[]>(["worker", "list"]);
  assert.equal(all.length, 3);

  const stopped = await sb.ok(["worker", "stop"], { timeoutMs: 30_000 });
  assert.match(stopped, /^Stopped 3 workers \(pid \d+, \d+, \d+\)\n$/);
  for (const w of all) assert.ok(stopped.includes(String(w.pid)));
  for (const w of all) assert.ok(!isRunning(w.pid), `worker ${w.pid} still runs`);
  await poll(() => !isRunning(supervisor), PROMPT_MS, "the supervisor to exit");
  const log = await Deno.readTextFile(`${sb.db}.log`);
  assert.match(log, /supervisor \d+ starting 2 workers/);
  // Supervisor and worker lines alike: local time with its offset, never UTC's "Z".
  const lines = log.trim().split("\n").filter((line) => /^\d{4}-/.test(line));
  assert.ok(lines.some((line) => / supervisor \d+ /.test(line)), log);
  assert.ok(lines.some((line) => / w\d+-\w+ started /.test(line)), log);
  for (const line of lines) {
    assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30 /, line);
  }
  assert.equal((await sb.ok(["worker", "stop"])).trim(), "No workers are running.");
  assert.deepEqual(await sb.json(["worker", "stop"]), { stopped: [], forced: false, killed: [] });
  await sb.assertNoLeftovers();
});

Deno.test("worker start's workers finish their job and stop when the supervisor is SIGKILLed", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("sleep 1") }]);
  const pool = sb.spawn(["worker", "start", "--count", "1"]);
  await sb.waitRun(id!, 1);
  const [worker] = sb.workerRows();
  assert.ok(worker);

  pool.kill("SIGKILL");
  // The worker shares the supervisor's stderr: it is read to the end once the worker is gone.
  const exit = await pool.wait(PROMPT_MS, "the orphaned worker to stop");
  assert.equal(exit.signal, "SIGKILL");
  assert.match(exit.stderr, new RegExp(`stopping \\(graceful\\): supervisor ${pool.pid} is gone`));
  assert.ok(!isRunning(worker.pid), "the orphaned worker still runs");
  const job = await sb.show(id!);
  assert.equal(job.state, "completed", "the running job was not let finish");
  assert.equal(job.attempts, 1);
  assert.deepEqual(sb.workerRows(), []);
  await sb.assertNoLeftovers();
});
