import assert from "node:assert/strict";
import { cliFixture, localStamp } from "../helpers/cli_fixture.ts";
import { makeJob, makeOneOfEach, makeWorker, TEST_WORKER } from "../helpers/factory.ts";

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
      "Total          14 jobs",
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
  const at = localStamp(q.clock.now());
  const tail = stdout.slice(stdout.indexOf("\nWorkers:") + 1);
  assert.equal(
    tail,
    [
      "Workers: 1 active",
      "ID      PID      STATE  JOB  DONE  FAILED  HEARTBEAT",
      `w-gone  ${String(2 ** 22 + 17).padEnd(7)}  gone   -    0     0       ${at}`,
      `w-test  ${String(Deno.pid).padEnd(7)}  busy   r1   0     0       ${at}`,
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
    counts: { pending: 2, processing: 1, completed: 1, failed: 1, dead: 1, total: 6 },
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
  });
  // Key order is part of the documented shape.
  assert.ok(
    stdout.startsWith(
      '{"counts":{"pending":2,"processing":1,"completed":1,"failed":1,"dead":1,"total":6},"workers":[',
    ),
  );
});

Deno.test("status on a missing database shows an empty queue and creates nothing", async () => {
  await using q = await cliFixture();
  const { code, stdout } = await q.run(["status", "--json"]);
  assert.equal(code, 0);
  assert.equal(
    stdout,
    '{"counts":{"pending":0,"processing":0,"completed":0,"failed":0,"dead":0,"total":0},"workers":[]}\n',
  );
  await assert.rejects(Deno.stat(q.db), Deno.errors.NotFound);
  // The first command that writes creates it.
  assert.equal((await q.run(["enqueue", "-c", "true"])).code, 0);
  assert.ok((await Deno.stat(q.db)).isFile);
});
