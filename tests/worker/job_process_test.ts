/**
 * Hazards of job processes, through a real worker: time limits that must reach the whole process
 * tree, jobs that ignore SIGTERM or leave daemons behind, a gigabyte of output, stdin, and the
 * worker's own fds and zombies over many jobs.
 */

import assert from "node:assert/strict";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import {
  childrenOf,
  commOf,
  fdCount,
  groupMembers,
  isRunning,
  pidsWritten,
  rssBytes,
} from "../helpers/proc.ts";
import { Sandbox, SKIP_SLOW } from "../helpers/sandbox.ts";

const decoder = new TextDecoder();

/** The stdout stored for attempt 1 of `id`: head, tail and total, from the database. */
function storedStdout(
  sb: Sandbox,
  id: string,
): { head: Uint8Array; tail: Uint8Array; total: number } {
  const [row] = sb.query(
    "SELECT o.head, o.tail, o.total FROM outputs o JOIN jobs j ON j.seq = o.job_seq " +
      "WHERE j.id = ? AND o.attempt = 1 AND o.stream = 1",
    id,
  );
  assert.ok(row, `no stdout stored for job ${id}`);
  return { head: row.head as Uint8Array, tail: row.tail as Uint8Array, total: Number(row.total) };
}

Deno.test("worker run times out a job by killing its whole process tree", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const pids = `${sb.dir}/pids`;
  const [id] = await sb.enqueue([{
    command: `echo $$ > '${pids}'; sleep 300 & echo $! >> '${pids}'; sleep 300; `,
    timeout: "1s",
    max_retries: 0,
  }]);
  const worker = sb.spawn(["worker", "run"]);
  const [shell, background] = await pidsWritten(pids, 2);
  // The shell and both sleeps, all in the job's group.
  const members = await poll(
    () => {
      const members = groupMembers(shell!);
      return members.filter((pid) => commOf(pid) === "sleep").length === 2 && members;
    },
    PROMPT_MS,
    "both sleeps in the job's group",
  );
  assert.ok(members.includes(background!));

  await sb.waitForState(id!, "dead");
  for (const pid of members) assert.ok(!isRunning(pid), `process ${pid} outlived the timeout`);
  const job = await sb.show(id!);
  const attempt = job.history[0]!;
  assert.equal(attempt.outcome, "timeout");
  assert.equal(attempt.signal, "SIGTERM");
  assert.match(job.last_error ?? "", /timed out after 1s/);
  assert.ok(attempt.duration_ms! >= 1000 && attempt.duration_ms! < 3000, `${attempt.duration_ms}`);
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run sends a job's time-limit SIGTERM to every process of its group", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const termed = `${sb.dir}/termed`;
  // A background subshell notes the SIGTERM it gets, and the shell waits for it before exiting
  // (once the shell exits, the rest of the group is SIGKILLed). Were only the shell signalled,
  // the watcher would die by that SIGKILL without a note.
  const [id] = await sb.enqueue([{
    command: `(trap 'echo TERM > ${termed}; exit 0' TERM; while :; do sleep 0.05; done) & ` +
      `w=$!; trap 'wait $w; exit 143' TERM; sleep 300`,
    timeout: "1s",
    max_retries: 0,
  }]);
  const worker = sb.spawn(["worker", "run"]);
  await sb.waitForState(id!, "dead");
  assert.equal(await Deno.readTextFile(termed), "TERM\n", "SIGTERM did not reach the group");
  const attempt = (await sb.show(id!)).history[0]!;
  assert.equal(attempt.outcome, "timeout");
  assert.equal(attempt.signal, "SIGTERM");
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run kills a job that ignores SIGTERM with SIGKILL after the grace period", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const pids = `${sb.dir}/pids`;
  const [id] = await sb.enqueue([{
    command: `trap '' TERM; echo $$ > '${pids}'; sleep 600`,
    timeout: "1s",
    max_retries: 0,
  }]);
  const worker = sb.spawn(["worker", "run"]);
  const [shell] = await pidsWritten(pids, 1);
  const members = await poll(
    () => groupMembers(shell!).length === 2 && groupMembers(shell!),
    PROMPT_MS,
    "the shell and its sleep",
  );
  // Timeout 1 s, then KILL_GRACE_MS (5 s) of SIGTERM being ignored.
  await sb.waitForState(id!, "dead", 10_000);
  for (const pid of members) assert.ok(!isRunning(pid), `process ${pid} survived SIGKILL`);
  const attempt = (await sb.show(id!)).history[0]!;
  assert.equal(attempt.outcome, "timeout");
  assert.equal(attempt.signal, "SIGKILL");
  assert.ok(
    attempt.duration_ms! >= 5500 && attempt.duration_ms! < 9000,
    `killed after ${attempt.duration_ms} ms`,
  );
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run completes a job that leaves a daemon at once, and kills the daemon", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const pidFile = `${sb.dir}/daemon.pid`;
  const [id] = await sb.enqueue([{ command: `sleep 300 & echo $! > '${pidFile}'; echo started` }]);
  const worker = sb.spawn(["worker", "run"]);
  await sb.waitForState(id!, "completed");
  const [daemon] = await pidsWritten(pidFile, 1);
  await poll(() => !isRunning(daemon!), 2000, `the daemon ${daemon} to be killed`);
  const attempt = (await sb.show(id!)).history[0]!;
  assert.equal(attempt.outcome, "completed");
  // The daemon holds the output pipe open: the worker must not wait for its EOF.
  assert.ok(attempt.duration_ms! < 2000, `completed after ${attempt.duration_ms} ms`);
  assert.equal(decoder.decode(storedStdout(sb, id!).head), "started\n");
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run gives jobs a closed stdin", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: 'cat; read x; echo "got:$x"', timeout: "30s" }]);
  // The worker's own stdin is a pipe that stays open: a job that read it would hang.
  const worker = sb.spawn(["worker", "run"], { stdin: "pipe" });
  await sb.waitForState(id!, "completed");
  const attempt = (await sb.show(id!)).history[0]!;
  assert.ok(attempt.duration_ms! < 2000, `took ${attempt.duration_ms} ms`);
  assert.equal(decoder.decode(storedStdout(sb, id!).head), "got:\n");
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test({
  name: "worker run keeps its memory flat and the stored output capped for 1 GiB of stdout",
  ignore: SKIP_SLOW,
  async fn() {
    await using sb = await Sandbox.create();
    await sb.fastConfig();
    const [id] = await sb.enqueue([{ command: "head -c 1G /dev/zero", timeout: "5m" }]);
    const worker = sb.spawn(["worker", "run"]);
    await worker.waitForStderr(/started \(pid/, PROMPT_MS, "the worker to start");
    let peak = 0;
    let samples = 0;
    const limit = 200 * 1024 * 1024;
    await poll(
      () => {
        const rss = rssBytes(worker.pid);
        if (rss !== null) peak = Math.max(peak, rss);
        samples++;
        if (peak >= limit) assert.fail(`worker RSS reached ${(peak / 2 ** 20).toFixed(1)} MiB`);
        return sb.state(id!) === "completed";
      },
      180_000,
      "the 1 GiB job to complete",
      { describe: () => `peak RSS ${peak}` },
    );
    assert.ok(samples >= 10, `only ${samples} RSS samples`);
    assert.ok(peak < limit, `worker RSS peaked at ${(peak / 2 ** 20).toFixed(1)} MiB`);

    const stdout = storedStdout(sb, id!);
    assert.equal(stdout.total, 2 ** 30);
    assert.ok(stdout.head.length + stdout.tail.length <= 2 ** 20, "stored output is not capped");
    assert.ok(stdout.head.length > 0 && stdout.tail.length > 0);
    // The WAL takes the output saved while the job ran, and is reused, not grown.
    const wal = (await Deno.stat(`${sb.db}-wal`).catch(() => ({ size: 0 }))).size;
    assert.ok(wal < 16 * 2 ** 20, `the WAL grew to ${wal} bytes`);
    worker.kill("SIGTERM");
    assert.equal((await worker.wait(PROMPT_MS)).code, 0);
    // Checkpointed on close: the output cap (1 MiB per stream) plus 1 MiB at most.
    const db = (await Deno.stat(sb.db)).size;
    assert.ok(db < 2 * 2 ** 20, `the database grew to ${db} bytes`);
    await sb.assertNoLeftovers();
  },
});

Deno.test("worker run leaks no fd and leaves no zombie over 500 jobs", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  await sb.enqueue(Array.from({ length: 20 }, () => ({ command: "true" })));
  const worker = sb.spawn(["worker", "run"]);
  await poll(() => sb.counts().completed === 20, 30_000, "20 completed jobs");
  await poll(() => sb.counts().processing === undefined, PROMPT_MS, "the worker to be idle");
  const before = fdCount(worker.pid);

  await sb.enqueue(Array.from({ length: 480 }, () => ({ command: "true" })));
  await poll(
    () => sb.counts().completed === 500,
    120_000,
    "500 completed jobs",
    { describe: () => JSON.stringify(sb.counts()) },
  );
  await poll(() => sb.counts().processing === undefined, PROMPT_MS, "the worker to be idle");
  const after = fdCount(worker.pid);
  assert.ok(Math.abs(after - before) <= 5, `fds went from ${before} to ${after}`);
  const zombies = childrenOf(worker.pid).filter((c) => c.state === "Z");
  assert.deepEqual(zombies, [], "zombie children of the worker");

  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run gives jobs QUEUECTL_JOB_ID, QUEUECTL_ATTEMPT, QUEUECTL_DB and QUEUECTL_QUEUE_ID, not its own QUEUECTL_*", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: "env", env: { JOB_VAR: "from-job" } }]);
  const worker = sb.spawn(["worker", "run"], {
    // The hooks' QUEUECTL_TEST=1 is one more of the worker's own variables.
    hooks: {},
    env: { QUEUECTL_SECRET_TOKEN: "hunter2", WORKER_VAR: "from-worker" },
  });
  await sb.waitForState(id!, "completed");
  const vars = new Set(decoder.decode(storedStdout(sb, id!).head).split("\n"));
  for (const wanted of [`QUEUECTL_JOB_ID=${id}`, "QUEUECTL_ATTEMPT=1", `QUEUECTL_DB=${sb.db}`]) {
    assert.ok(vars.has(wanted), `${wanted} missing`);
  }
  // The queue's own id marks the job's processes; it is the database's, not made up per job.
  const queueId = sb.query("SELECT value FROM queuectl_meta WHERE key = 'queue_id'")[0]?.value;
  assert.match(String(queueId), /^[0-9a-f]{32}$/);
  assert.ok(vars.has(`QUEUECTL_QUEUE_ID=${queueId}`), "QUEUECTL_QUEUE_ID missing");
  assert.ok(vars.has("JOB_VAR=from-job") && vars.has("WORKER_VAR=from-worker"));
  const leaked = [...vars].filter((v) =>
    v.startsWith("QUEUECTL_") &&
    !/^QUEUECTL_(JOB_ID|ATTEMPT|DB|MAX_ATTEMPTS|QUEUE|QUEUE_ID)=/.test(v)
  );
  assert.deepEqual(leaked, [], "the worker's own QUEUECTL_* variables reached the job");
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run records a job whose cwd is gone as spawn_failed and buries it", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const gone = `${sb.dir}/gone`;
  await Deno.mkdir(gone);
  const [id] = await sb.enqueue([{ command: "true", cwd: gone, max_retries: 0 }]);
  await Deno.remove(gone);
  const worker = await sb.run(["worker", "run", "--once"]);
  assert.equal(worker.code, 0, worker.stderr);
  const job = await sb.show(id!);
  assert.equal(job.state, "dead");
  assert.equal(job.history[0]!.outcome, "spawn_failed");
  assert.match(job.last_error ?? "", new RegExp(`${gone}.*ENOENT`));
  await sb.assertNoLeftovers();
});

Deno.test("worker run saves a running job's output while it runs", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: "echo early; echo oops >&2; sleep 30" }]);
  const worker = sb.spawn(["worker", "run"]);
  await poll(
    () => {
      const rows = sb.query(
        "SELECT o.stream, o.head FROM outputs o JOIN jobs j ON j.seq = o.job_seq " +
          "WHERE j.id = ? AND j.state = 'processing' ORDER BY o.stream",
        id!,
      );
      const text = rows.map((r) => decoder.decode(r.head as Uint8Array));
      return text.join("") === "early\noops\n";
    },
    5000,
    "the output of the running job in the database",
  );
  worker.kill("SIGQUIT");
  assert.notEqual((await worker.wait(PROMPT_MS)).code, 0);
  assert.equal(sb.state(id!), "pending");
  await sb.assertNoLeftovers();
});

Deno.test("worker run records exit codes and signals exactly", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const ids = await sb.enqueue([
    { command: "exit 3", max_retries: 0 },
    { command: "no-such-command-queuectl", max_retries: 0 },
    { command: "kill -SEGV $$", max_retries: 0 },
  ]);
  const worker = await sb.run(["worker", "run", "--once"]);
  assert.equal(worker.code, 0, worker.stderr);
  const attempts = [];
  for (const id of ids) {
    const job = await sb.show(id);
    assert.equal(job.state, "dead");
    const a = job.history[0]!;
    attempts.push([a.outcome, a.exit_code, a.signal, job.last_error]);
  }
  assert.deepEqual(attempts, [
    ["failed", 3, null, "exited with code 3"],
    ["failed", 127, null, "exited with code 127"],
    ["failed", null, "SIGSEGV", "killed by SIGSEGV"],
  ]);
  await sb.assertNoLeftovers();
});

Deno.test("worker run applies job-timeout to jobs without their own timeout, and none for 0", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig({ "job-timeout": "1s" });
  const [limited, unlimited] = await sb.enqueue([
    { command: "sleep 30", max_retries: 0 },
    { command: "sleep 1.5", max_retries: 0, timeout: 0 },
  ]);
  const worker = sb.spawn(["worker", "start", "--count", "2"]);
  await sb.waitForState(limited!, "dead");
  const timedOut = (await sb.show(limited!)).history[0]!;
  assert.equal(timedOut.outcome, "timeout");
  assert.ok(timedOut.duration_ms! < 3000, `${timedOut.duration_ms}`);
  await sb.waitForState(unlimited!, "completed");
  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});
