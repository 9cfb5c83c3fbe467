/**
 * Concurrency (RELIABILITY §2.1): many workers over many jobs, enqueuers racing workers, sixteen
 * processes racing for one id or one DLQ retry, and idle workers that leave the write lock alone.
 */

import assert from "node:assert/strict";
import { assertFigures, check, report, reportFigures } from "./_checker.ts";
import { poll } from "../helpers/poll.ts";
import { AttemptSampler } from "../helpers/proc.ts";
import type { Proc } from "../helpers/process.ts";
import { type JobSpec, Sandbox } from "../helpers/sandbox.ts";
import { PG_FOUR_SLOTS, PG_SINGLE, SHAPES, SINGLE, STORES } from "./_shapes.ts";
import type { Shape } from "./_shapes.ts";

/** Scale knob for local iteration only; CI runs the documented sizes. */
const SCALE = Number(Deno.env.get("QUEUECTL_REL_SCALE") ?? 1);

/** Eight slots in all: eight single-slot workers, or two of four slots. */
function workersFor(shape: Shape): number {
  return 8 / shape.slots;
}

function stopAll(workers: Proc[]): Promise<unknown> {
  for (const w of workers) w.kill("SIGTERM");
  return Promise.all(workers.map((w) => w.wait(30_000, "worker to stop")));
}

function busyLines(workers: Proc[]): string[] {
  return workers.flatMap((w) => w.lines.map((l) => l.text))
    .filter((t) => /database is locked|busy/i.test(t));
}

/**
 * A1 and A2 on PostgreSQL: a quarter of the jobs, to keep the suite's time. What they check
 * (each job exactly once, no busy error) does not grow with the count; PostgreSQL's throughput is
 * bench/'s to measure, on a server of its own.
 */
const PG_FRACTION = 0.25;

function sized(n: number, shape: Shape): number {
  return Math.round(n * SCALE * (shape.store === "postgres" ? PG_FRACTION : 1));
}

for (const shape of [...SHAPES, PG_SINGLE, PG_FOUR_SLOTS]) {
  const n = workersFor(shape);
  const total = sized(20_000, shape);
  Deno.test(`A1: ${n} workers run ${total.toLocaleString("en")} jobs, each exactly once${shape.label}`, async () => {
    await using sb = await Sandbox.create(`a1${shape.slots}`, shape.options);
    const specs: JobSpec[] = [];
    for (let i = 1; i <= total; i++) specs.push({ id: `a1-${i}`, command: sb.job() });
    const ids = await sb.enqueue(specs, { batch: 5000 });
    assert.equal(ids.length, total);

    const sampler = new AttemptSampler(sb.db, 250).start();
    const started = performance.now();
    const workers = Array.from({ length: n }, () => sb.worker());
    try {
      await sb.settle(600_000, `${total} jobs to finish`);
    } finally {
      sampler.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    await stopAll(workers);
    for (const w of workers) {
      assert.equal(w.result?.code, 0, `worker exit: ${w.stderr.slice(-500)}`);
    }

    const f = check(sb, { acked: ids, crashes: false, sampler });
    const perAttempt = sb.query<{ n: number }>(
      "SELECT count(*) AS n FROM jobs WHERE state = 'completed' AND attempts = 1",
    )[0]!.n;
    reportFigures(`A1 ${n} workers x ${shape.slots} slots x jobs`, f, {
      completed_once: perAttempt,
      seconds: seconds.toFixed(1),
      throughput_per_s: (total / seconds).toFixed(0),
      busy_log_lines: busyLines(workers).length,
    });
    assertFigures("A1", f);
    assert.equal(perAttempt, total, "every job completed with attempts = 1");
    assert.deepEqual(busyLines(workers), [], "no busy error surfaced");
  });
}

// On PostgreSQL with workers of 4 slots only: racing claimers are A1's (eight single-slot
// workers there too), the enqueuers racing them A2's own, and the single-slot run would add
// about 40 s to the suite for what the other two show.
for (const shape of [...SHAPES, PG_FOUR_SLOTS]) {
  const n = workersFor(shape);
  const perEnqueuer = sized(5000, shape);
  Deno.test(`A2: 4 enqueuers x ${perEnqueuer.toLocaleString("en")} jobs race ${n} workers; every acknowledged job runs once${shape.label}`, async () => {
    await using sb = await Sandbox.create(`a2${shape.slots}`, shape.options);
    const batch = 100;
    // Bring the database up before the race, so the enqueuers do not race to create it.
    await sb.init();
    const sampler = new AttemptSampler(sb.db, 250).start();
    const started = performance.now();
    const workers = Array.from({ length: n }, () => sb.worker());
    const latencies: number[] = [];
    const acked: string[] = [];
    const failures: string[] = [];
    const enqueuers = Array.from({ length: 4 }, async (_, e) => {
      for (let i = 0; i < perEnqueuer; i += batch) {
        const lines: string[] = [];
        for (let j = i; j < Math.min(perEnqueuer, i + batch); j++) {
          lines.push(JSON.stringify({ id: `a2-${e}-${j}`, command: sb.job() }));
        }
        const result = await sb.run(["enqueue", "-"], { stdin: lines.join("\n") + "\n" });
        latencies.push(result.ms);
        if (result.code === 0) acked.push(...result.stdout.trim().split("\n"));
        else failures.push(`exit ${result.code}: ${result.stderr.trim()}`);
      }
    });
    try {
      await Promise.all(enqueuers);
      await sb.settle(600_000, "every job to finish");
    } finally {
      sampler.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    await stopAll(workers);
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
    const f = check(sb, { acked, crashes: false, sampler });
    reportFigures(`A2 4 enqueuers racing ${n} workers x ${shape.slots} slots`, f, {
      enqueue_calls: latencies.length,
      enqueue_failures: failures.length,
      enqueue_p50_ms: (latencies[Math.floor(latencies.length / 2)] ?? 0).toFixed(0),
      enqueue_p99_ms: p99.toFixed(0),
      enqueue_max_ms: (latencies.at(-1) ?? 0).toFixed(0),
      seconds: seconds.toFixed(1),
      throughput_per_s: (acked.length / seconds).toFixed(0),
      busy_log_lines: busyLines(workers).length,
    });
    assert.deepEqual(failures, [], "every enqueue exits 0");
    assert.deepEqual(busyLines(workers), [], "no busy error surfaced");
    assert.equal(acked.length, 4 * perEnqueuer);
    assertFigures("A2", f);
    assert.ok(p99 < 5000, `enqueue p99 ${p99.toFixed(0)} ms must stay below the busy timeout`);
    for (const w of workers) {
      assert.equal(w.result?.code, 0, `worker exit: ${w.stderr.slice(-500)}`);
    }
  });
}

/**
 * Holds the write lock from another process (the sqlite3 CLI) until `release()`: processes that
 * start meanwhile all pile up in SQLite's busy wait, and then race for real when it is released.
 * On PostgreSQL psql holds a SHARE lock on the jobs table, which every insert and update of a job
 * waits for (within the CLI's lock_timeout of 5 s, as SQLite's busy timeout).
 */
async function holdWriteLock(sb: Sandbox): Promise<{ release(): Promise<void>; proc: Proc }> {
  const proc = sb.sqlShell();
  // sqlite3 waits out a write in progress (its busy timeout is 0 by default) and stops at an
  // error, so "locked" is printed only once the lock is held.
  await proc.write(
    sb.store === "postgres"
      ? "BEGIN;\nLOCK TABLE jobs IN SHARE MODE;\nSELECT 'locked';\n"
      : ".timeout 10000\n.bail on\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n",
  );
  await poll(() => proc.stdout.includes("locked"), 10_000, "the shell to take the lock");
  return {
    proc,
    async release() {
      await proc.write(sb.store === "postgres" ? "COMMIT;\n\\q\n" : "COMMIT;\n.quit\n");
      await proc.closeStdin();
      await proc.wait(10_000, "the shell to exit");
    },
  };
}

/** Whether the process sleeps in a syscall (SQLite's busy wait), or has exited. */
function waitingOrGone(proc: Proc): boolean {
  if (proc.exited) return true;
  try {
    const nr = Number(Deno.readTextFileSync(`/proc/${proc.pid}/syscall`).split(" ")[0]);
    // x86_64: nanosleep 35, clock_nanosleep 230 (usleep), futex 202 would be a lock wait.
    return nr === 35 || nr === 230;
  } catch {
    return true;
  }
}

/** How many sessions of the sandbox's PostgreSQL database wait for a lock. */
function lockWaiters(sb: Sandbox): number {
  return sb.query<{ n: number }>(
    `SELECT count(*) AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  )[0]!.n;
}

/** Starts `n` copies of a command while the write lock is held, then lets them race. */
async function race(
  sb: Sandbox,
  n: number,
  args: (i: number) => string[],
): Promise<{ procs: Proc[]; barrier: string }> {
  const lock = await holdWriteLock(sb);
  const procs = Array.from({ length: n }, (_, i) => sb.spawn(args(i)));
  // All of them should be waiting for the lock before it is released; otherwise the "race" is
  // just a queue. (If /proc/PID/syscall cannot tell, the lock is released after 4 s; on
  // PostgreSQL the server says who waits for a lock.)
  const allWaiting = sb.store === "postgres"
    ? () => lockWaiters(sb) + procs.filter((p) => p.exited).length >= n
    : () => procs.every(waitingOrGone);
  const barrier = await poll(allWaiting, 4000, "racers")
    .then(() => "all-waiting", () => "timeout");
  await lock.release();
  await Promise.all(procs.map((p) => p.wait(30_000)));
  return { procs, barrier };
}

for (const shape of STORES) {
  Deno.test(`A4: 16 processes enqueue the same id at once: one wins, 15 get exit 3${shape.label}`, async () => {
    await using sb = await Sandbox.create("a4", shape.options);
    await sb.init();
    const { procs, barrier } = await race(
      sb,
      16,
      (i) => ["enqueue", "--id", "same", "-c", `echo racer-${i}`],
    );
    const codes = procs.map((p) => p.result!.code);
    const winners = procs.filter((p) => p.result!.code === 0);
    const rows = sb.query<{ command: string }>("SELECT command FROM jobs WHERE id = 'same'");
    report(
      `A4 16 enqueuers, one id: exit0=${winners.length} exit3=${
        codes.filter((c) => c === 3).length
      } ` +
        `rows=${rows.length} barrier=${barrier}`,
    );
    assert.equal(winners.length, 1, `exit codes ${codes}`);
    assert.equal(codes.filter((c) => c === 3).length, 15, `exit codes ${codes}`);
    assert.equal(rows.length, 1);
    const winner = procs.indexOf(winners[0]!);
    assert.equal(rows[0]!.command, `echo racer-${winner}`, "the winner's command is stored");
    for (const p of procs.filter((p) => p.result!.code === 3)) {
      const lines = p.result!.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `one line: ${p.result!.stderr}`);
      assert.ok(/already exists/.test(lines[0]!), lines[0]);
    }
    assert.equal(sb.integrity(), "ok");
  });

  Deno.test(`D34: 16 concurrent \`dlq retry\` of one dead job re-run it exactly once${shape.label}`, async () => {
    await using sb = await Sandbox.create("dlq16", shape.options);
    // Fails on attempt 1, succeeds after: the re-run's outcome proves which attempt ran.
    const [id] = await sb.enqueue([{
      id: "dead-1",
      command: sb.job('test "$QUEUECTL_ATTEMPT" -gt 1'),
      max_retries: 0,
    }]);
    await sb.workerOnce();
    assert.equal(sb.job1(id!)?.state, "dead");
    const { procs, barrier } = await race(sb, 16, () => ["dlq", "retry", id!]);
    const codes = procs.map((p) => p.result!.code);
    await sb.workerOnce();
    const f = check(sb, { acked: [id!], crashes: false });
    const starts = sb.ledger().starts(id!);
    reportFigures("D34 16 concurrent dlq retry", f, {
      exit0: codes.filter((c) => c === 0).length,
      exit3: codes.filter((c) => c === 3).length,
      runs: starts,
      barrier,
    });
    assert.equal(codes.filter((c) => c === 0).length, 1, `exit codes ${codes}`);
    assert.equal(codes.filter((c) => c === 3).length, 15, `exit codes ${codes}`);
    assert.equal(starts, 2, "one run before the retry, exactly one after");
    assert.equal(sb.job1(id!)?.state, "completed");
    assertFigures("D34", f);
  });
}

// A5 is SQLite's alone: the database-wide write lock idle pollers must not take, and the -wal.
Deno.test("A5: idle workers do not take the write lock", async () => {
  await using sb = await Sandbox.create("a5", SINGLE.options);
  await sb.init();
  const workers = Array.from({ length: 8 }, () => sb.worker());
  await poll(() => sb.query("SELECT id FROM workers").length === 8, 30_000, "8 workers");
  const walBefore = walSize(sb.db);
  const cpuBefore = workers.map((w) => cpuTicks(w.pid));
  const seconds = 10;
  const probe = sb.spawnRaw(Deno.execPath(), [
    "run",
    "-A",
    new URL("./_lock_probe.ts", import.meta.url).pathname,
    sb.db,
    String(seconds),
  ]);
  const result = await probe.wait(seconds * 1000 + 30_000, "lock probe");
  assert.equal(result.code, 0, result.stderr);
  const figures = JSON.parse(result.stdout) as {
    probes: number;
    maxMs: number;
    p99Ms: number;
    slow: number;
    changes: number;
  };
  const cpuSeconds = workers.reduce((sum, w, i) => sum + cpuTicks(w.pid) - cpuBefore[i]!, 0) /
    100;
  const walAfter = walSize(sb.db);
  await stopAll(workers);
  const writesPerWorkerPerSecond = figures.changes / 8 / seconds;
  report(
    `A5 8 idle workers for ${seconds}s: probes=${figures.probes} max_wait_ms=${
      figures.maxMs.toFixed(1)
    } p99_wait_ms=${
      figures.p99Ms.toFixed(2)
    } waits_over_5ms=${figures.slow} commits_seen=${figures.changes} ` +
      `writes_per_worker_s=${
        writesPerWorkerPerSecond.toFixed(2)
      } wal_bytes=${walBefore}->${walAfter} ` +
      `worker_cpu_s=${cpuSeconds.toFixed(2)}`,
  );
  assert.ok(figures.probes > 100, "the probe ran");
  // Polling never takes the lock; what does is a heartbeat (well under a millisecond, every
  // lease/6) and housekeeping, once a minute per worker, whose TRUNCATE checkpoint holds writers
  // out for an fsync. So: almost every wait is instant, a few (at most one per worker in the
  // window) last a checkpoint, none is long.
  assert.ok(figures.p99Ms < 2, `p99 wait ${figures.p99Ms.toFixed(2)} ms`);
  assert.ok(figures.slow <= 8, `${figures.slow} waits over 5 ms`);
  assert.ok(figures.maxMs < 100, `the write lock was held ${figures.maxMs.toFixed(1)} ms`);
  assert.ok(writesPerWorkerPerSecond < 1, "idle workers write less than once a second each");
  assert.ok(walAfter < 1024 * 1024, "the -wal stays below 1 MB");
});

function walSize(db: string): number {
  try {
    return Deno.statSync(`${db}-wal`).size;
  } catch {
    return 0;
  }
}

/** utime + stime of a process, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}
