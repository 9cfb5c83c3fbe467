/**
 * `metrics` on a history built with the store on a fake clock, so that every figure is known in
 * advance: counts, success rate, throughput, run time and queue wait percentiles, retries, the
 * oldest due job, top failing commands, `--since`, `--detailed`, and `--watch` as a process.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Job } from "../../lib/job/job.ts";
import { decide } from "../../lib/job/outcome.ts";
import type { RunResult } from "../../lib/job/outcome.ts";
import { MAIN } from "../helpers/cli.ts";
import { cliFixture } from "../helpers/cli_fixture.ts";
import type { CliFixture } from "../helpers/cli_fixture.ts";
import { BACKOFF, insertJob, makeWorker, TEST_LEASE_MS } from "../helpers/factory.ts";
import { T0 } from "../helpers/temp.ts";

const SECOND = 1000;
const MINUTE = 60_000;
/** "Now" of every test here: 2 h and 30 s after T0, half way through minute 120. */
const NOW = T0 + 120 * MINUTE + 30 * SECOND;
const WORKER = "w-a";
const OK: RunResult = { kind: "exited", code: 0 };

interface Step {
  waitMs?: number;
  runMs: number;
  result?: RunResult;
}

/**
 * Runs one attempt on worker w-a: of a new job due at `dueAt` (with `options`), or of `job`
 * when its retry is due. Returns the job as stored after.
 */
async function attempt(
  q: CliFixture,
  from: { dueAt: number; command?: string; maxRetries?: number } | Job,
  step: Step,
): Promise<Job> {
  const store = await q.store();
  let job: Job;
  if ("id" in from) {
    job = from;
  } else {
    q.clock.set(from.dueAt);
    job = await insertJob(store, q.clock, {
      command: from.command ?? "echo ok",
      maxRetries: from.maxRetries ?? 0,
      runAt: from.dueAt,
    });
  }
  q.clock.set(job.runAt + (step.waitMs ?? 0));
  const [claimed] = await store.jobClaim({
    workerId: WORKER,
    host: "test-host",
    leaseMs: TEST_LEASE_MS,
    limit: 1,
  });
  assert.equal(claimed?.id, job.id, "the job to run is the one claimed");
  q.clock.advance(step.runMs);
  assert.ok(
    await store.jobFinish({
      jobId: job.id,
      attempt: claimed!.attempts,
      workerId: WORKER,
      decision: decide(claimed!, step.result ?? OK, BACKOFF),
    }),
  );
  return (await store.jobGet({ id: job.id }))!;
}

/** `count` jobs that complete in minute `minute` (5 s apart from second `from`). */
async function completions(
  q: CliFixture,
  minute: number,
  count: number,
  step: Step,
  from = 5,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const finishAt = T0 + minute * MINUTE + (from + 5 * i) * SECOND;
    await attempt(q, { dueAt: finishAt - step.runMs - (step.waitMs ?? 0) }, step);
  }
}

/**
 * The known history (minutes after T0):
 *
 * - completed jobs ("echo ok"): 1 in minute 30 (100 ms), 2 in minute 60 (100 ms), 5 in 90
 *   (200 ms), 2 in 105 (200 ms), 4 in 110 (400 ms, waited 1 s), 2 in 119 (10 s, waited 3 s),
 *   3 in 120 (100 ms); and in minute 50 a job interrupted after 1 s, then run again (100 ms);
 * - "./flaky.sh" failed in minute 40 with exit 2 (50 ms), was retried 2 s later after waiting
 *   500 ms and died with exit 5 (50 ms); another "./flaky.sh" died in minute 100 with exit 4;
 * - "sleep 60" timed out in minute 45 after 30 s and died;
 * - pending: "waiting", due 5 min before now, and "future", due in an hour.
 *
 * Attempts: 20 completed, 3 failed, 1 timeout, 1 interrupted; 1 retry.
 */
async function knownHistory(q: CliFixture): Promise<void> {
  const store = await q.store();
  await makeWorker(store, q.clock, { id: WORKER, alive: true });
  await makeWorker(store, q.clock, { id: "w-gone", alive: false });
  await completions(q, 30, 1, { runMs: 100 });
  let flaky = await attempt(q, {
    dueAt: T0 + 40 * MINUTE,
    command: "./flaky.sh",
    maxRetries: 1,
  }, { runMs: 50, result: { kind: "exited", code: 2 } });
  assert.equal(flaky.state, "failed");
  flaky = await attempt(q, flaky, { waitMs: 500, runMs: 50, result: { kind: "exited", code: 5 } });
  assert.equal(flaky.state, "dead");
  await attempt(q, { dueAt: T0 + 45 * MINUTE, command: "sleep 60" }, {
    runMs: 30 * SECOND,
    result: { kind: "timeout", afterMs: 30 * SECOND, signal: "SIGTERM" },
  });
  let interrupted = await attempt(q, { dueAt: T0 + 50 * MINUTE }, {
    runMs: 1000,
    result: { kind: "interrupted", error: "interrupted by worker shutdown" },
  });
  assert.equal(interrupted.state, "pending");
  interrupted = await attempt(q, interrupted, { runMs: 100 });
  assert.equal(interrupted.state, "completed");
  await completions(q, 60, 2, { runMs: 100 });
  await completions(q, 90, 5, { runMs: 200 });
  await attempt(q, { dueAt: T0 + 100 * MINUTE, command: "./flaky.sh" }, {
    runMs: 50,
    result: { kind: "exited", code: 4 },
  });
  await completions(q, 105, 2, { runMs: 200 });
  await completions(q, 110, 4, { runMs: 400, waitMs: 1000 });
  await completions(q, 119, 2, { runMs: 10_000, waitMs: 3000 }, 20);
  await completions(q, 120, 3, { runMs: 100 });
  assert.ok(q.clock.now() < NOW);
  q.clock.set(NOW);
  // The worker that ran them reports its totals with its heartbeat.
  await store.workerHeartbeat({
    id: WORKER,
    leases: [],
    totals: { jobsDone: 20, jobsFailed: 4, busyMs: 54_850 },
  });
  await insertJob(store, q.clock, { id: "waiting", runAt: NOW - 5 * MINUTE });
  await insertJob(store, q.clock, { id: "future", runAt: NOW + 60 * MINUTE });
  q.closeStore();
}

const COUNTS = {
  pending: 2,
  processing: 0,
  completed: 20,
  failed: 0,
  dead: 3,
  cancelled: 0,
  total: 25,
};
const TOP_FAILING = [
  { command: "./flaky.sh", failures: 3, last_error: "exited with code 4", last_exit_code: 4 },
  {
    command: "sleep 60",
    failures: 1,
    last_error: "timed out after 30s (SIGTERM)",
    last_exit_code: null,
  },
];

Deno.test("metrics --json carries every figure of a known history", async () => {
  await using q = await cliFixture();
  await knownHistory(q);
  const { code, stdout, stderr } = await q.run(["metrics", "--json"]);
  assert.equal(stderr, "");
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(stdout), {
    generated_at: new Date(NOW).toISOString(),
    window: { since: new Date(NOW - 86_400_000).toISOString(), seconds: 86_400 },
    counts: COUNTS,
    // Interrupted attempts are not finished attempts.
    success_rate: { ratio: 0.8333, succeeded_attempts: 20, finished_attempts: 24 },
    outcomes: {
      completed: 20,
      failed: 3,
      timeout: 1,
      spawn_failed: 0,
      lost: 0,
      interrupted: 1,
      cancelled: 0,
    },
    throughput: {
      unit: "completed jobs per minute",
      // Minute 120 so far (3), and half of minute 119 (2).
      last_1m: 4,
      // Minutes 106-120 (4 + 2 + 3), and half of minute 105 (2): 10 / 15.
      last_15m: 0.67,
      // Minutes 61-120 (5 + 2 + 4 + 2 + 3), and half of minute 60 (2): 17 / 60.
      last_60m: 0.28,
    },
    // 24 run times: 50 ms ×3, 100 ms ×7, 200 ms ×7, 400 ms ×4, 10 s ×2, 30 s. The 12th is 200 ms,
    // reported as its bucket's upper bound 1.25^24; the 23rd is 10 s, bucket bound 1.25^42.
    run_time: { unit: "ms", p50: 211.8, p95: 11754.9, max: 30_000 },
    // 24 waits: 0 ×17, 500 ms, 1 s ×4, 3 s ×2. The 12th is in bucket 0 ([0, 1 ms)); the 23rd is
    // 3 s, bucket bound 1.25^36.
    queue_wait: { unit: "ms", p50: 1, p95: 3081.5 },
    // 24 finished attempts, of which 23 first attempts.
    retries: { jobs_retried: 1, retry_attempts: 1, attempts_per_job: 1.043 },
    oldest_due: { job: "waiting", waiting_seconds: 300 },
    top_failing: TOP_FAILING,
  });
});

Deno.test("metrics prints the Metrics Dashboard with every figure", async () => {
  await using q = await cliFixture();
  await knownHistory(q);
  const { code, stdout } = await q.run(["metrics"]);
  assert.equal(code, 0);
  assert.equal(
    stdout,
    [
      "Metrics Dashboard (last 1d)",
      "===========================",
      "Jobs         pending 2  processing 0  completed 20  failed 0  dead 3  total 25",
      "Success      83.3% (20 of 24 finished attempts)",
      "Throughput   4.0/min (1m)  0.7/min (15m)  0.3/min (1h)",
      "Run time     p50 212ms  p95 11.8s  max 30s",
      "Queue wait   p50 1ms  p95 3.1s",
      "Retries      1 job retried, 1 retry attempt, 1.04 attempts per job",
      "Oldest due   job waiting, waiting 5m",
      "",
      "Top failing commands",
      "FAILURES  EXIT  LAST ERROR                     COMMAND",
      "3         4     exited with code 4             ./flaky.sh",
      "1         -     timed out after 30s (SIGTERM)  sleep 60",
      "",
    ].join("\n"),
  );
});

Deno.test("metrics --since narrows the window to whole minutes from that time", async () => {
  await using q = await cliFixture();
  await knownHistory(q);
  const m = JSON.parse((await q.run(["metrics", "--json", "--since", "1h"])).stdout);
  assert.deepEqual(m.window, { since: new Date(NOW - 3_600_000).toISOString(), seconds: 3600 });
  // From minute 60 (which "since" falls in) on: 18 completions and the failure of minute 100.
  assert.deepEqual(m.success_rate, {
    ratio: 0.9474,
    succeeded_attempts: 18,
    finished_attempts: 19,
  });
  assert.equal(m.outcomes.interrupted, 0);
  assert.deepEqual(m.retries, { jobs_retried: 0, retry_attempts: 0, attempts_per_job: 1 });
  // 19 run times: 50 ms, 100 ms ×5, 200 ms ×7, 400 ms ×4, 10 s ×2.
  assert.deepEqual(m.run_time, { unit: "ms", p50: 211.8, p95: 10_000, max: 10_000 });
  assert.deepEqual(m.top_failing, [
    { command: "./flaky.sh", failures: 1, last_error: "exited with code 4", last_exit_code: 4 },
  ]);
  // Throughput and counts do not depend on the window.
  assert.deepEqual(m.throughput.last_1m, 4);
  assert.deepEqual(m.counts, COUNTS);
  const human = await q.run(["metrics", "--since", "1h"]);
  assert.match(human.stdout, /^Metrics Dashboard \(last 1h\)\n={27}\n/);
  assert.match(human.stdout, /^Success {6}94\.7% \(18 of 19 finished attempts\)$/m);
});

Deno.test("metrics --since refuses a bad or too short window with exit 2", async () => {
  await using q = await cliFixture();
  await knownHistory(q);
  for (
    const [since, message] of [
      ["30s", "queuectl: --since must be at least 1m\n"],
      [
        "soon",
        'queuectl: Invalid value "soon" for --since: is not a duration; use e.g. 30s, 5m, 2h, 1d or 1h30m\n',
      ],
      ["-1h", 'queuectl: Invalid value "-1h" for --since: must not be negative\n'],
    ]
  ) {
    assert.deepEqual(await q.run(["metrics", "--since", since!]), {
      code: 2,
      stdout: "",
      stderr: message,
    });
  }
});

Deno.test("metrics --detailed adds workers (busy share, uptime) and 60 per-minute entries", async () => {
  await using q = await cliFixture();
  await knownHistory(q);
  const m = JSON.parse((await q.run(["metrics", "--json", "--detailed"])).stdout);
  // w-a ran every attempt: 54,850 ms of run time in its 7,230 s of uptime.
  assert.deepEqual(m.workers, [
    {
      id: WORKER,
      pid: Deno.pid,
      state: "idle",
      jobs_done: 20,
      jobs_failed: 4,
      busy_share: 0.008,
      uptime_seconds: 7230,
    },
    {
      id: "w-gone",
      pid: 2 ** 22 + 17,
      state: "gone",
      jobs_done: 0,
      jobs_failed: 0,
      busy_share: 0,
      uptime_seconds: 7230,
    },
  ]);
  assert.equal(m.per_minute.length, 60);
  assert.deepEqual(m.per_minute[0], {
    minute: new Date(T0 + 61 * MINUTE).toISOString(),
    finished: 0,
    completed: 0,
  });
  const busy = m.per_minute.filter((e: { finished: number }) => e.finished > 0);
  assert.deepEqual(busy, [
    { minute: new Date(T0 + 90 * MINUTE).toISOString(), finished: 5, completed: 5 },
    { minute: new Date(T0 + 100 * MINUTE).toISOString(), finished: 1, completed: 0 },
    { minute: new Date(T0 + 105 * MINUTE).toISOString(), finished: 2, completed: 2 },
    { minute: new Date(T0 + 110 * MINUTE).toISOString(), finished: 4, completed: 4 },
    { minute: new Date(T0 + 119 * MINUTE).toISOString(), finished: 2, completed: 2 },
    { minute: new Date(T0 + 120 * MINUTE).toISOString(), finished: 3, completed: 3 },
  ]);
  // The plain figures are the same as without --detailed.
  const plain = JSON.parse((await q.run(["metrics", "--json"])).stdout);
  const { workers: _w, per_minute: _p, ...rest } = m;
  assert.deepEqual(rest, plain);

  const human = await q.run(["metrics", "--detailed"]);
  assert.equal(human.code, 0);
  const workers = human.stdout.slice(human.stdout.indexOf("\nWorkers\n") + 1);
  const pid = String(Deno.pid);
  const gone = String(2 ** 22 + 17);
  const width = Math.max(pid.length, gone.length, 3);
  assert.equal(
    workers,
    [
      "Workers",
      `ID      ${"PID".padEnd(width)}  STATE  DONE  FAILED  BUSY  UPTIME`,
      `w-a     ${pid.padEnd(width)}  idle   20    4       1%    2h30s`,
      `w-gone  ${gone.padEnd(width)}  gone   0     0       0%    2h30s`,
      "",
      "Attempts finished per minute",
      // Minutes 61..120, scaled to the busiest (5): 5 → █, 4 → ▇, 3 → ▅, 2 → ▄, 1 → ▂.
      `  ${" ".repeat(29)}█${" ".repeat(9)}▂${" ".repeat(4)}▄${" ".repeat(4)}▇${" ".repeat(8)}▄▅` +
      "  max 5/min",
      `  ${"60 min ago".padEnd(57)}now`,
      "",
    ].join("\n"),
  );
});

Deno.test("metrics on an empty queue shows dashes, not zeros divided by zero", async () => {
  await using q = await cliFixture();
  q.clock.set(NOW);
  const { code, stdout } = await q.run(["metrics"]);
  assert.equal(code, 0);
  assert.equal(
    stdout,
    [
      "Metrics Dashboard (last 1d)",
      "===========================",
      "Jobs         pending 0  processing 0  completed 0  failed 0  dead 0  total 0",
      "Success      - (no attempts finished)",
      "Throughput   0.0/min (1m)  0.0/min (15m)  0.0/min (1h)",
      "Run time     p50 -  p95 -  max -",
      "Queue wait   p50 -  p95 -",
      "Retries      0 jobs retried, 0 retry attempts, - attempts per job",
      "Oldest due   nothing waiting",
      "",
    ].join("\n"),
  );
  const m = JSON.parse((await q.run(["metrics", "--json"])).stdout);
  assert.deepEqual(m.success_rate, { ratio: null, succeeded_attempts: 0, finished_attempts: 0 });
  assert.deepEqual(m.run_time, { unit: "ms", p50: null, p95: null, max: null });
  assert.deepEqual(m.retries, { jobs_retried: 0, retry_attempts: 0, attempts_per_job: null });
  assert.equal(m.oldest_due, null);
  assert.deepEqual(m.top_failing, []);
});

/**
 * Runs `metrics --watch` as a real process with stdout piped, waits until `ready(stdout)`, then
 * sends SIGINT; returns the exit code and everything it printed.
 */
async function watch(
  db: string,
  args: readonly string[],
  ready: (stdout: string) => boolean,
): Promise<{ code: number; stdout: string; stderr: string; readyAt: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "--db", db, "metrics", "--watch", ...args],
    env: { NO_COLOR: "1", TZ: "UTC" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let stdout = "";
  let readyAt = "";
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += decoder.decode(value, { stream: true });
      if (readyAt === "" && ready(stdout)) {
        readyAt = stdout;
        child.kill("SIGINT");
      }
    }
    const status = await child.status;
    return { code: status.code, stdout, stderr: await stderr, readyAt };
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

Deno.test("metrics --watch, piped, prints a block per second and exits 0 on SIGINT", async () => {
  await using q = await cliFixture();
  await knownHistory(q);
  // The process reads the real clock: a window of ten years reaches back to the fake history.
  // JSON: a line a second; the figures are read again only when the queue changed. After two
  // lines of an idle queue, a job is enqueued; the next reading shows it.
  let enqueued: Promise<unknown> | undefined;
  const jsonLines = (out: string) => out.split("\n").filter((l) => l !== "");
  const [text, json] = await Promise.all([
    watch(
      q.db,
      ["--since", "3650d"],
      (out) => count(out, "Metrics Dashboard") >= 2 && out.endsWith("\n\n"),
    ),
    watch(q.db, ["--since", "3650d", "--json"], (out) => {
      const lines = jsonLines(out);
      if (lines.length >= 2 && enqueued === undefined) {
        enqueued = q.store().then((store) => insertJob(store, q.clock, { id: "late" }));
      }
      return enqueued !== undefined &&
        lines.some((l) => JSON.parse(l).counts.pending === COUNTS.pending + 1);
    }),
  ]);
  await enqueued;

  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stderr, "");
  assert.ok(!text.stdout.includes("\x1b"), "no screen control codes when piped");
  const blocks = text.stdout.split(/(?=^Metrics Dashboard)/m);
  assert.ok(blocks.length >= 2, text.stdout);
  for (const block of blocks) {
    // (pending 3 once the JSON watch below has enqueued its job.)
    assert.match(block, /^Metrics Dashboard \(last 3650d\)\n={30}\nJobs {9}pending [23] /);
    assert.match(block, /\nSuccess {6}83\.3% \(20 of 24 finished attempts\)\n/);
    // Each block is a whole dashboard, followed by a blank line.
    assert.match(block, /\nTop failing commands\n(.+\n){3}\n$/);
  }

  assert.equal(json.code, 0, json.stderr);
  const lines = jsonLines(json.stdout);
  assert.ok(lines.length >= 3, json.stdout);
  const first = JSON.parse(lines[0]!);
  assert.deepEqual(first.counts, COUNTS);
  assert.deepEqual(first.top_failing, TOP_FAILING);
  for (const line of lines) assert.deepEqual(Object.keys(JSON.parse(line)), Object.keys(first));
  assert.equal(
    JSON.parse(lines[1]!).generated_at,
    first.generated_at,
    "an idle queue is not read again a second later",
  );
  const last = JSON.parse(lines[lines.length - 1]!);
  assert.equal(last.counts.pending, COUNTS.pending + 1);
  assert.ok(Date.parse(last.generated_at) > Date.parse(first.generated_at), "a new reading");
});
