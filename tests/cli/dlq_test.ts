import assert from "node:assert/strict";
import { runProcess } from "../helpers/cli.ts";
import { cliFixture, localStamp } from "../helpers/cli_fixture.ts";
import { finishAttempt, makeJob, makeOneOfEach } from "../helpers/factory.ts";

Deno.test("dlq list says when the dead letter queue is empty", async () => {
  await using q = await cliFixture();
  assert.deepEqual(await q.run(["dlq", "list"]), {
    code: 0,
    stdout: "The dead letter queue is empty.\n",
    stderr: "",
  });
  assert.equal((await q.run(["dlq", "list", "--json"])).stdout, "[]\n");
});

Deno.test("dlq list shows dead jobs with their last error", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  const a = await makeJob(store, q.clock, "dead", {
    id: "a",
    command: "exit 2",
    maxRetries: 0,
    failure: { kind: "exited", code: 2 },
  });
  const b = await makeJob(store, q.clock, "dead", {
    id: "b",
    command: "sleep 999",
    maxRetries: 0,
    failure: { kind: "timeout", afterMs: 300_000, signal: "SIGTERM" },
  });
  await makeOneOfEach(store, q.clock);
  const { code, stdout } = await q.run(["dlq", "list"]);
  assert.equal(code, 0);
  assert.equal(
    stdout,
    [
      "ID  ATTEMPTS  DIED                 LAST ERROR                    COMMAND",
      `a   1         ${localStamp(a.finishedAt!)}  exited with code 2            exit 2`,
      `b   1         ${localStamp(b.finishedAt!)}  timed out after 5m (SIGTERM)  sleep 999`,
      "d1  2         " + localStamp((await store.jobGet({ id: "d1" }))!.finishedAt!) +
      "  exited with code 1            exit 1",
      "",
    ].join("\n"),
  );
  const cut = await q.run(["dlq", "list", "--limit", "1"]);
  assert.match(cut.stdout, /^d1 /m, "the newest");
  assert.match(cut.stdout, /showing the newest 1 of 3 dead jobs \(use --limit N for more\)\n$/);
  const json = JSON.parse((await q.run(["dlq", "list", "--json"])).stdout);
  assert.deepEqual(json.map((j: { id: string; state: string }) => [j.id, j.state]), [
    ["a", "dead"],
    ["b", "dead"],
    ["d1", "dead"],
  ]);
});

Deno.test("dlq retry puts a dead job back with a fresh budget", async () => {
  await using q = await cliFixture();
  await makeJob(await q.store(), q.clock, "dead", { id: "d", maxRetries: 2 });
  q.clock.advance(3_600_000);
  assert.deepEqual(await q.run(["dlq", "retry", "d"]), { code: 0, stdout: "d\n", stderr: "" });
  const [job] = JSON.parse((await q.run(["list", "--json"])).stdout);
  assert.equal(job.state, "pending");
  assert.equal(job.attempts, 3);
  assert.equal(job.attempts_left, 3);
  assert.equal(job.finished_at, null);
  assert.equal(job.run_at, new Date(q.clock.now()).toISOString());
  assert.equal(job.last_error, "exited with code 1");
  // It is no longer dead: a second retry is a conflict, so it re-runs once.
  const again = await q.run(["dlq", "retry", "d"]);
  assert.equal(again.code, 3);
  assert.match(again.stderr, /Job "d" is not in the dead letter queue: it is pending/);
});

Deno.test("dlq retry of several ids, repeated ids once, --json", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  for (const id of ["x", "y", "z"]) await makeJob(store, q.clock, "dead", { id, maxRetries: 0 });
  const { code, stdout } = await q.run(["dlq", "retry", "x", "z", "x", "--json"]);
  assert.equal(code, 0);
  const jobs = JSON.parse(stdout);
  assert.deepEqual(jobs.map((j: { id: string; state: string }) => [j.id, j.state]), [[
    "x",
    "pending",
  ], ["z", "pending"]]);
  assert.equal((await store.jobGet({ id: "y" }))?.state, "dead");
});

Deno.test("dlq retry --all retries every dead job; on an empty DLQ it says so", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  for (const id of ["x", "y"]) await makeJob(store, q.clock, "dead", { id, maxRetries: 0 });
  await makeOneOfEach(store, q.clock);
  const { code, stdout } = await q.run(["dlq", "retry", "--all"]);
  assert.equal(code, 0);
  assert.deepEqual(stdout.trimEnd().split("\n").sort(), ["d1", "x", "y"]);
  assert.equal((await store.jobCountByState()).dead, 0);
  assert.deepEqual(await q.run(["dlq", "retry", "--all"]), {
    code: 0,
    stdout: "",
    // Not an error: no "queuectl:" prefix.
    stderr: "The dead letter queue is empty; nothing to retry.\n",
  });
});

Deno.test("dlq retry of one job by two processes at once re-runs it once", async () => {
  await using q = await cliFixture();
  await makeJob(await q.store(), q.clock, "dead", { id: "race", maxRetries: 0 });
  q.closeStore();
  for (let round = 0; round < 3; round++) {
    const results = await Promise.all(
      [0, 1, 2].map(() => runProcess(["--db", q.db, "dlq", "retry", "race"])),
    );
    const codes = results.map((r) => r.code).sort();
    assert.deepEqual(codes, [0, 3, 3], JSON.stringify(results));
    assert.equal(results.find((r) => r.code === 0)?.stdout, "race\n");
    for (const r of results.filter((r) => r.code === 3)) {
      assert.match(
        r.stderr,
        /^queuectl: Job "race" is not in the dead letter queue: it is pending/,
      );
    }
    // Put it back in the DLQ for the next round. The processes used the real clock.
    q.clock.set(Date.now() + 1000);
    const store = await q.store();
    const job =
      (await store.jobClaim({ host: "test-host", workerId: "w", leaseMs: 1000, limit: 1 }))[0]!;
    await finishAttempt(store, q.clock, job, { kind: "exited", code: 1 });
    q.closeStore();
  }
});
