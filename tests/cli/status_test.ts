import assert from "node:assert/strict";
import { cliFixture, localStamp } from "../helpers/cli_fixture.ts";
import { makeJob, makeOneOfEach, makeWorker, TEST_WORKER } from "../helpers/factory.ts";
import { poll } from "../helpers/poll.ts";
import { procStat } from "../helpers/proc.ts";

Deno.test("status prints the seed's layout for an empty queue", async () => {
  await using q = await cliFixture();
  const { code, stdout, stderr } = await q.run(["status"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.equal(
    stdout,
    [
      "Job Queue Status",
      "================",
      "Pending        0 jobs",
      "Processing     0 jobs",
      "Completed      0 jobs",
      "Failed         0 jobs",
      "Dead           0 jobs",
      "Total          0 jobs",
      "",
      "Workers: 0 active",
      "",
    ].join("\n"),
  );
});

Deno.test("status aligns counts and says job or jobs", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await makeOneOfEach(store, q.clock);
  for (let i = 0; i < 9; i++) await makeJob(store, q.clock, "pending");
  const { code, stdout } = await q.run(["status"]);
  assert.equal(code, 0);
  assert.equal(
    stdout,
    [
      "Job Queue Status",
      "================",
      "Pending        10 jobs",
      "Processing      1 job",
      "Completed       1 job",
      "Failed          1 job",
      "Dead            1 job",
      "Cancelled       1 job",
      "Total          15 jobs",
      "",
      "Workers: 0 active",
      "",
    ].join("\n"),
  );
});

Deno.test("status lists workers and marks one whose process is gone", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await makeOneOfEach(store, q.clock);
  // The factory's worker holds r1 (makeOneOfEach claims it as TEST_WORKER).
  await makeWorker(store, q.clock, { id: TEST_WORKER, alive: true });
  await makeWorker(store, q.clock, { id: "w-gone", alive: false });
  const { code, stdout } = await q.run(["status"]);
  assert.equal(code, 0);
  const tail = stdout.slice(stdout.indexOf("\nWorkers:") + 1);
  assert.equal(
    tail,
    [
      "Workers: 1 active",
      "ID      PID      STATE  JOB  DONE  FAILED  HEARTBEAT",
      `w-gone  ${String(2 ** 22 + 17).padEnd(7)}  gone   -    0     0       0s ago`,
      `w-test  ${String(Deno.pid).padEnd(7)}  busy   r1   0     0       0s ago`,
      "",
    ].join("\n"),
  );
});

Deno.test("status --json prints the documented shape and nothing else", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await makeOneOfEach(store, q.clock);
  await makeJob(store, q.clock, "pending");
  await makeWorker(store, q.clock, { id: TEST_WORKER, alive: true });
  await makeWorker(store, q.clock, { id: "w2", alive: false });
  const { code, stdout, stderr } = await q.run(["status", "--json"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.ok(stdout.endsWith("}\n") && stdout.indexOf("\n") === stdout.length - 1, "one line");
  const iso = new Date(q.clock.now()).toISOString();
  assert.deepEqual(JSON.parse(stdout), {
    counts: {
      pending: 2,
      processing: 1,
      completed: 1,
      failed: 1,
      dead: 1,
      cancelled: 1,
      total: 7,
      scheduled: 0,
    },
    workers: [
      {
        id: TEST_WORKER,
        pid: Deno.pid,
        host: Deno.hostname(),
        state: "busy",
        current_job: "r1",
        started_at: iso,
        heartbeat_at: iso,
        jobs_done: 0,
        jobs_failed: 0,
      },
      {
        id: "w2",
        pid: 2 ** 22 + 17,
        host: Deno.hostname(),
        state: "gone",
        current_job: null,
        started_at: iso,
        heartbeat_at: iso,
        jobs_done: 0,
        jobs_failed: 0,
      },
    ],
    next_scheduled_at: null,
    paused_queues: [],
    paused_all: false,
  });
  // Key order is part of the documented shape: new keys come after the old ones.
  assert.ok(
    stdout.startsWith(
      '{"counts":{"pending":2,"processing":1,"completed":1,"failed":1,"dead":1,"cancelled":1,"total":7,' +
        '"scheduled":0},"workers":[',
    ),
  );
});

Deno.test("status on a missing database shows an empty queue and creates nothing", async () => {
  await using q = await cliFixture();
  const { code, stdout } = await q.run(["status", "--json"]);
  assert.equal(code, 0);
  assert.equal(
    stdout,
    '{"counts":{"pending":0,"processing":0,"completed":0,"failed":0,"dead":0,"cancelled":0,"total":0,' +
      '"scheduled":0},"workers":[],"next_scheduled_at":null,"paused_queues":[],"paused_all":false}\n',
  );
  await assert.rejects(Deno.stat(q.db), Deno.errors.NotFound);
  // The first command that writes creates it.
  assert.equal((await q.run(["enqueue", "-c", "true"])).code, 0);
  assert.ok((await Deno.stat(q.db)).isFile);
});

Deno.test("status tells scheduled pending jobs from due ones, in text and JSON", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  const now = q.clock.now();
  // A failed job waits for its retry too, but it is counted as failed, not as scheduled.
  await makeJob(store, q.clock, "failed", { id: "f1" });
  await makeJob(store, q.clock, "pending");
  await makeJob(store, q.clock, "pending", { id: "later", runAt: now + 7_200_000, priority: 9 });
  await makeJob(store, q.clock, "pending", { id: "soon", runAt: now + 3_600_000 });
  const { stdout } = await q.run(["status"]);
  const next = localStamp(now + 3_600_000);
  assert.match(
    stdout,
    new RegExp(`^Pending +3 jobs \\(1 due, 2 scheduled; next at ${next}\\)$`, "m"),
  );
  const json = JSON.parse((await q.run(["status", "--json"])).stdout);
  assert.equal(json.counts.pending, 3);
  assert.equal(json.counts.failed, 1);
  assert.equal(json.counts.scheduled, 2);
  assert.equal(json.next_scheduled_at, new Date(now + 3_600_000).toISOString());
  // Once they are due, they are due.
  q.clock.advance(7_200_000);
  const later = await q.run(["status", "--json"]);
  assert.equal(JSON.parse(later.stdout).counts.scheduled, 0);
  assert.match((await q.run(["status"])).stdout, /^Pending +3 jobs$/m);
});

Deno.test("status shows heartbeats as an age and a silent or stopped worker as stale", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await makeWorker(store, q.clock, { id: "w-old", alive: true });
  q.clock.advance(3000);
  // A live process that is stopped, registered as a worker: it cannot answer.
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    Deno.kill(sleeper.pid, "SIGSTOP");
    await poll(() => procStat(sleeper.pid)?.state === "T", 5000, "the sleep to stop");
    await makeWorker(store, q.clock, { id: "w-stopped", alive: true, pid: sleeper.pid });
    const { stdout } = await q.run(["status"]);
    assert.match(stdout, /^Workers: 1 active, 1 stale$/m);
    assert.match(stdout, /^w-old +\d+ +idle +- +0 +0 +3s ago$/m);
    assert.match(stdout, /^w-stopped +\d+ +stale +- +0 +0 +0s ago$/m);
    assert.match(
      stdout,
      new RegExp(
        `^worker w-stopped \\(pid ${sleeper.pid}\\) is stopped \\(SIGSTOP\\): resume`,
        "m",
      ),
    );
    // Past three heartbeats (and 5 s), a worker that does not beat is stale wherever it runs.
    q.clock.advance(20_000);
    const json = JSON.parse((await q.run(["status", "--json"])).stdout);
    assert.deepEqual(
      json.workers.map((w: { id: string; state: string }) => [w.id, w.state]),
      [["w-old", "stale"], ["w-stopped", "stale"]],
    );
    const text = (await q.run(["worker", "list"])).stdout;
    assert.match(text, /^worker w-old \(pid \d+\) is not responding \(last heartbeat 23s ago\)/m);
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
  }
});
