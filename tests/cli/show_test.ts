import assert from "node:assert/strict";
import { cliFixture, localStamp } from "../helpers/cli_fixture.ts";
import { finishAttempt, insertJob, makeJob } from "../helpers/factory.ts";
import { T0 } from "../helpers/temp.ts";

Deno.test("show prints every field of a pending job", async () => {
  await using q = await cliFixture();
  await insertJob(await q.store(), q.clock, {
    id: "build",
    command: "make test",
    priority: 9,
    maxRetries: 2,
    timeoutMs: 600_000,
    cwd: "/srv/app",
    env: { CI: "1" },
    runAt: T0 + 90_000,
  });
  const { code, stdout, stderr } = await q.run(["show", "build"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.equal(
    stdout,
    [
      "id          build",
      "command     make test",
      "state       pending",
      "priority    9",
      "queue       default",
      "attempts    0 (3 left of 1 + 2 retries)",
      "timeout     10m",
      "cwd         /srv/app",
      'env         {"CI":"1"}',
      `run at      ${localStamp(T0 + 90_000)}`,
      `created     ${localStamp(T0)}`,
      `updated     ${localStamp(T0)}`,
      "finished    -",
      "",
    ].join("\n"),
  );
});

Deno.test("show prints a dead job's attempt history", async () => {
  await using q = await cliFixture();
  const job = await makeJob(await q.store(), q.clock, "dead", {
    id: "doomed",
    command: "exit 3",
    maxRetries: 1,
    failure: { kind: "exited", code: 3 },
    timeoutMs: 0,
  });
  const { code, stdout } = await q.run(["show", "doomed"]);
  assert.equal(code, 0);
  const t1 = localStamp(T0);
  const t2 = localStamp(T0 + 2000);
  assert.equal(
    stdout,
    [
      "id          doomed",
      "command     exit 3",
      "state       dead",
      "priority    5",
      "queue       default",
      "attempts    2 (1 + 1 retries, all failed)",
      "timeout     none",
      "cwd         /tmp",
      "env         -",
      `run at      ${t2}`,
      `created     ${t1}`,
      `updated     ${t2}`,
      `finished    ${localStamp(job.finishedAt!)}`,
      "last error  exited with code 3",
      "",
      "Attempts",
      "#  STARTED              DURATION  OUTCOME  EXIT  WORKER  ERROR",
      `1  ${t1}  0ms       failed   3     w-test  exited with code 3`,
      `2  ${t2}  0ms       failed   3     w-test  exited with code 3`,
      "",
    ].join("\n"),
  );
});

Deno.test("show of a processing job names its worker and lease", async () => {
  await using q = await cliFixture();
  const job = await makeJob(await q.store(), q.clock, "processing", { id: "busy" });
  const { stdout } = await q.run(["show", "busy"]);
  assert.ok(stdout.includes("\nworker      w-test\n"), stdout);
  assert.match(stdout, new RegExp(`^lease until ${localStamp(job.leaseExpiresAt!)}$`, "m"));
  assert.ok(
    stdout.endsWith(`\n1  ${localStamp(job.updatedAt)}  -         running  -     w-test\n`),
    stdout,
  );
});

Deno.test("show --json prints the job object and its history", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await makeJob(store, q.clock, "failed", {
    id: "f",
    failure: { kind: "timeout", afterMs: 1500, signal: "SIGKILL" },
  });
  const { code, stdout } = await q.run(["show", "f", "--json"]);
  assert.equal(code, 0);
  const shown = JSON.parse(stdout);
  const listed = JSON.parse((await q.run(["list", "--json"])).stdout)[0];
  const { history, output, waits_for, dependents, ...job } = shown;
  assert.deepEqual([waits_for, dependents], [[], []]);
  assert.deepEqual(job, listed, "show and list use the same job object");
  // The latest attempt's output (the factory's attempt saved none).
  assert.deepEqual(output, {
    attempt: 1,
    stdout_bytes: 0,
    stderr_bytes: 0,
    stdout_tail: "",
    stderr_tail: "",
  });
  assert.deepEqual(history, [{
    attempt: 1,
    worker_id: "w-test",
    started_at: "2026-01-01T00:00:00.000Z",
    finished_at: "2026-01-01T00:00:00.000Z",
    duration_ms: 0,
    outcome: "timeout",
    exit_code: null,
    signal: "SIGKILL",
    error: "timed out after 1.5s (SIGKILL)",
  }]);
  assert.equal(job.state, "failed");
  assert.equal(job.run_at, "2026-01-01T00:00:02.000Z");
});

Deno.test("show exits 4 for an unknown job and 2 for an invalid id", async () => {
  await using q = await cliFixture();
  await insertJob(await q.store(), q.clock, { id: "real" });
  assert.deepEqual(await q.run(["show", "ghost"]), {
    code: 4,
    stdout: "",
    stderr: 'queuectl: Job "ghost" not found (`queuectl list` shows the jobs)\n',
  });
  const bad = await q.run(["show", "a b"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^queuectl: Invalid job id "a b": may hold only/);
});

Deno.test("show states a finished job's attempts without what is left", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  // Completed on its second attempt, with two more allowed: nothing is "left" of a finished job.
  let job = await insertJob(store, q.clock, { id: "second-time", maxRetries: 3 });
  const claim = async () =>
    (await store.jobClaim({ workerId: "w-test", host: "h", leaseMs: 30_000, limit: 1 }))[0];
  job = (await claim())!;
  job = await finishAttempt(store, q.clock, job, { kind: "exited", code: 1 });
  q.clock.set(job.runAt);
  job = (await claim())!;
  await finishAttempt(store, q.clock, job, { kind: "exited", code: 0 });
  const attemptsLine = async (id: string) =>
    (await q.run(["show", id])).stdout.split("\n").find((l) => l.startsWith("attempts"));
  assert.equal(await attemptsLine("second-time"), "attempts    2 (completed on attempt 2)");
  // While a job can still run, what is left is worth knowing.
  await makeJob(store, q.clock, "failed", { id: "again", maxRetries: 3 });
  assert.equal(await attemptsLine("again"), "attempts    1 (3 left of 1 + 3 retries)");
  await insertJob(store, q.clock, { id: "fresh", maxRetries: 0 });
  assert.equal(await attemptsLine("fresh"), "attempts    0 (1 left of 1 + 0 retries)");
});
