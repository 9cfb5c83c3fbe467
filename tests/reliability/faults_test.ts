/**
 * Crash faults at exact points (RELIABILITY §2.2 B3, B4): SIGKILL of `enqueue` at random moments,
 * and the fault hook (`QUEUECTL_FAULT`) at each named point of enqueue, claim, run, the outcome
 * transitions and dlq retry.
 */

import assert from "node:assert/strict";
import { report, verify } from "./_checker.ts";
import type { FaultPoint } from "../helpers/hooks.ts";
import { poll, sleep } from "../helpers/poll.ts";
import { AttemptSampler } from "../helpers/proc.ts";
import type { Proc } from "../helpers/process.ts";
import { Sandbox, SWEEP_MS } from "../helpers/sandbox.ts";
import { SHAPES_BOTH_STORES, STORES } from "./_shapes.ts";

const R_FAST_MS = SWEEP_MS + 2000;

async function stop(workers: Proc[]): Promise<void> {
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.wait(30_000, "worker to stop")));
}

for (const shape of STORES) {
  Deno.test(`B3: SIGKILL of enqueue at random moments: exit 0 means stored, always intact${shape.label}`, async () => {
    await using sb = await Sandbox.create("b3", shape.options);
    await sb.init();
    const iterations = 250;
    const acked: string[] = [];
    const uncertain: string[] = [];
    const present: string[] = [];
    let killedAbsent = 0;
    let killedPresent = 0;
    const problems: string[] = [];
    for (let i = 0; i < iterations; i++) {
      const id = `b3-${i}`;
      const command = `echo ${i}`;
      const proc = sb.spawn(["enqueue", "--id", id, "-c", command]);
      // Even iterations: 0-50 ms after the spawn, mostly during start-up. Odd ones: 0-15 ms after
      // the process opened the database (SQLite: the file), when it reads, writes, commits and
      // prints; on PostgreSQL 0-25 ms after its connection to the server is established, since
      // from there it takes 15-20 ms to its exit here (schema check, insert, commit, print).
      const afterOpenMs = shape.store === "postgres" ? 25 : 15;
      const isOpen = () =>
        shape.store === "postgres" ? connected(proc.pid, sb.db) : opened(proc.pid, sb.db);
      const killer = i % 2 === 0
        ? sleep(Math.random() * 50)
        : poll(() => proc.exited || isOpen(), 30_000, "the open", { intervalMs: 1 })
          .then(() => sleep(Math.random() * afterOpenMs));
      await killer;
      proc.kill("SIGKILL");
      const result = await proc.wait(30_000);
      const integrity = sb.integrity();
      if (integrity !== "ok") problems.push(`iteration ${i}: integrity ${integrity}`);
      const rows = sb.query<{ command: string; state: string }>(
        "SELECT command, state FROM jobs WHERE id = :id",
        { id },
      );
      if (rows.length === 1 && (rows[0]!.command !== command || rows[0]!.state !== "pending")) {
        problems.push(`iteration ${i}: a partial row ${JSON.stringify(rows[0])}`);
      }
      if (result.code === 0) {
        acked.push(id);
        if (rows.length !== 1) problems.push(`iteration ${i}: exit 0 but no row`);
      } else if (result.signal === "SIGKILL") {
        uncertain.push(id);
        if (rows.length === 1) killedPresent++;
        else killedAbsent++;
      } else {
        problems.push(`iteration ${i}: exit ${result.code}: ${result.stderr.trim()}`);
      }
      if (rows.length === 1) present.push(id);
    }
    // Re-running an enqueue with the same id is idempotent: exit 3, or exit 0 with
    // --if-not-exists, which also stores the ones whose first try was killed before the commit.
    const conflicts = await Promise.all(
      present.slice(0, 8).map((id) => sb.run(["enqueue", "--id", id, "-c", "echo again"])),
    );
    const lines = Array.from(
      { length: iterations },
      (_, i) => JSON.stringify({ id: `b3-${i}`, command: `echo ${i}` }),
    ).join("\n");
    const again = await sb.run(["enqueue", "-", "--if-not-exists"], { stdin: lines + "\n" });
    const stored = sb.query<{ n: number }>(
      "SELECT count(*) AS n FROM jobs WHERE id LIKE 'b3-%'",
    )[0]!;
    const unchanged = sb.query<{ n: number }>(
      "SELECT count(*) AS n FROM jobs WHERE id LIKE 'b3-%' AND command = 'echo ' || substr(id, 4)",
    )[0]!;
    report(
      `B3 SIGKILL enqueue x${iterations}: acked=${acked.length} killed_absent=${killedAbsent} ` +
        `killed_present(recovered)=${killedPresent} lost=${
          acked.filter((id) => !present.includes(id)).length
        } problems=${problems.length}`,
    );
    assert.deepEqual(problems, []);
    assert.ok(
      killedPresent + acked.length > 0 && killedAbsent > 0,
      "kills before and after the commit",
    );
    for (const c of conflicts) {
      assert.equal(c.code, 3, c.stderr);
      assert.equal(c.stderr.trim().split("\n").length, 1, c.stderr);
    }
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim().split("\n").length, iterations);
    assert.equal(stored.n, iterations);
    assert.equal(unchanged.n, iterations, "--if-not-exists kept every existing job as it was");
  });
}

/** Whether `pid` has `path` open. */
function opened(pid: number, path: string): boolean {
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        if (Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`) === path) return true;
      } catch { /* closed meanwhile */ }
    }
  } catch { /* exited */ }
  return false;
}

/** Whether `pid` has a TCP connection open to the server of the PostgreSQL URL `url`. */
function connected(pid: number, url: string): boolean {
  const port = Number(new URL(url).port || 5432).toString(16).toUpperCase().padStart(4, "0");
  const sockets = new Set<string>();
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        const link = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
        const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
        if (inode) sockets.add(inode);
      } catch { /* closed meanwhile */ }
    }
    if (sockets.size === 0) return false;
    for (const table of ["tcp", "tcp6"]) {
      for (const line of Deno.readTextFileSync(`/proc/${pid}/net/${table}`).split("\n").slice(1)) {
        const fields = line.trim().split(/\s+/);
        // local_address rem_address st … inode (field 9); 01 = ESTABLISHED.
        if (fields[2]?.endsWith(`:${port}`) && fields[3] === "01" && sockets.has(fields[9]!)) {
          return true;
        }
      }
    }
  } catch { /* exited */ }
  return false;
}

/** Enqueue fault points: the process dies; only a commit that happened is visible. */
for (const shape of STORES) {
  for (
    const [point, stored] of [
      ["enqueue:before-commit", false],
      ["enqueue:after-commit", true],
      ["enqueue:after-commit-before-print", true],
    ] as const
  ) {
    Deno.test(`B4 ${point}: ${stored ? "the job is stored" : "nothing is stored"}${shape.label}`, async () => {
      await using sb = await Sandbox.create(point, shape.options);
      await sb.init();
      const died = await sb.run(["enqueue", "--id", "j", "-c", "echo j"], {
        hooks: { fault: point },
      });
      const rows = sb.jobs();
      const rerun = await sb.run(["enqueue", "--id", "j", "-c", "echo j"]);
      report(
        `B4 ${point}: enqueue=${died.signal ?? died.code} stored=${rows.length} ` +
          `rerun_exit=${rerun.code} integrity=${sb.integrity()}`,
      );
      assert.equal(died.signal, "SIGKILL");
      assert.equal(died.stdout, "", "nothing was acknowledged");
      assert.equal(rows.length, stored ? 1 : 0);
      assert.equal(rerun.code, stored ? 3 : 0, rerun.stderr);
      assert.equal(sb.integrity(), "ok");
    });
  }
}

interface WorkerPoint {
  point: FaultPoint;
  /** Ledger job work. */
  work: string;
  maxRetries: number;
  /** The worker that carries the fault gets SIGQUIT once its job runs (interrupt points). */
  quit?: boolean;
  /** Runs of the job in the ledger at the end. */
  runs: number;
  final: "completed" | "dead";
  /** Whether a second worker must recover the job from the dead one (lost attempt). */
  recovers: boolean;
  /**
   * The dead worker held a claim it never started: the second worker undoes it (within R_fast),
   * charging and recording nothing.
   */
  undone?: boolean;
}

const FAIL = "exit 1";
const QUIT_FIRST = '[ "$QUEUECTL_ATTEMPT" = 1 ] && sleep 60; true';

const WORKER_POINTS: WorkerPoint[] = [
  // Dies holding an uncommitted claim: it rolls back, the job was never taken.
  {
    point: "claim:before-commit",
    work: "true",
    maxRetries: 0,
    runs: 1,
    final: "completed",
    recovers: false,
  },
  // Dies right after its claim, before it armed the attempt: nothing ran, so the claim is
  // undone within R_fast and the next worker runs the job as its first attempt.
  {
    point: "claim:after-commit",
    work: "true",
    maxRetries: 0,
    runs: 1,
    final: "completed",
    recovers: false,
    undone: true,
  },
  // Dies after arming, before the spawn: the attempt counts (it is recorded as lost).
  {
    point: "arm:after-commit",
    work: "true",
    maxRetries: 1,
    runs: 1,
    final: "completed",
    recovers: true,
  },
  // Dies as its job starts: the job's processes are killed before the re-run.
  {
    point: "run:after-spawn",
    work: QUIT_FIRST,
    maxRetries: 1,
    runs: 2,
    final: "completed",
    recovers: true,
  },
  // The job finished, its completion was never written: it runs again (at-least-once).
  {
    point: "complete:before-commit",
    work: "true",
    maxRetries: 1,
    runs: 2,
    final: "completed",
    recovers: true,
  },
  // The completion was written: no re-run.
  {
    point: "complete:after-commit",
    work: "true",
    maxRetries: 1,
    runs: 1,
    final: "completed",
    recovers: false,
  },
  {
    point: "retry:before-commit",
    work: FAIL,
    maxRetries: 1,
    runs: 2,
    final: "dead",
    recovers: true,
  },
  {
    point: "retry:after-commit",
    work: FAIL,
    maxRetries: 1,
    runs: 2,
    final: "dead",
    recovers: false,
  },
  {
    point: "bury:before-commit",
    work: FAIL,
    maxRetries: 0,
    runs: 1,
    final: "dead",
    recovers: true,
  },
  {
    point: "bury:after-commit",
    work: FAIL,
    maxRetries: 0,
    runs: 1,
    final: "dead",
    recovers: false,
  },
  {
    point: "interrupt:before-commit",
    work: QUIT_FIRST,
    maxRetries: 1,
    runs: 2,
    final: "completed",
    recovers: true,
    quit: true,
  },
  {
    point: "interrupt:after-commit",
    work: QUIT_FIRST,
    maxRetries: 1,
    runs: 2,
    final: "completed",
    recovers: false,
    quit: true,
  },
];

for (const shape of SHAPES_BOTH_STORES) {
  for (const p of WORKER_POINTS) {
    Deno.test(`B4 ${p.point}: ${p.final} after ${p.runs} run(s), nothing lost${shape.label}`, async () => {
      await using sb = await Sandbox.create(`${p.point}-${shape.slots}`, shape.options);
      await sb.config({ "lease-timeout": "6s", "backoff-base": "1", "backoff-max": "0" });
      const ids = await sb.enqueue([{
        id: "j",
        command: sb.job(p.work),
        max_retries: p.maxRetries,
      }]);
      const sampler = new AttemptSampler(sb.db, 50).start();
      const faulty = sb.worker({ hooks: { fault: p.point } });
      if (p.quit) {
        await sb.waitRun("j", 1, 30_000);
        faulty.kill("SIGQUIT");
      }
      const died = await faulty.wait(30_000, "the worker to reach the fault");
      const diedAt = Date.now();
      const afterDeath = sb.job1("j")!;
      const runsAtDeath = sb.ledger().starts("j");
      const rescuer = sb.worker();
      await sb.settle(30_000);
      const settledAt = Date.now();
      sampler.stop();
      await stop([rescuer]);
      const attempts = sb.attempts("j");
      const lastStart = Math.max(...(sb.ledger().runs.get("j") ?? []).map((r) => r.startUs / 1000));
      const recoveryMs = (p.recovers || p.undone) && sb.ledger().starts("j") > runsAtDeath
        ? lastStart - diedAt
        : null;
      verify(sb, `B4 ${p.point}`, { acked: ids, crashes: true, sampler }, {
        worker: died.signal ?? String(died.code),
        state_after_death: `${afterDeath.state}/${afterDeath.attempts}`,
        runs: sb.ledger().starts("j"),
        attempts: attempts.map((a) => a.outcome).join(","),
        recovery_s: recoveryMs === null ? "-" : (recoveryMs / 1000).toFixed(2),
        settle_s: ((settledAt - diedAt) / 1000).toFixed(2),
      }, { maxDuplicated: 1 });
      assert.equal(died.signal, "SIGKILL", `the fault fired: ${died.stderr.slice(-300)}`);
      assert.equal(sb.ledger().starts("j"), p.runs);
      assert.equal(sb.job1("j")?.state, p.final);
      if (p.recovers) {
        assert.equal(afterDeath.state, "processing", "the dead worker's job was left processing");
        const lost = attempts.find((a) => a.outcome === "lost");
        assert.ok(
          /worker lost/.test(lost?.error ?? ""),
          `recovered as "worker lost": ${lost?.error}`,
        );
        if (recoveryMs !== null) {
          assert.ok(recoveryMs <= R_FAST_MS + 1000, `re-run ${recoveryMs} ms after the death`);
        }
      } else {
        assert.ok(attempts.every((a) => a.outcome !== "lost"), "no attempt needed recovery");
      }
      if (p.undone) {
        assert.equal(afterDeath.state, "processing", "the dead worker's claim was left");
        assert.equal(attempts.length, 1, "the undone claim left no attempt behind");
        assert.ok(
          recoveryMs !== null && recoveryMs <= R_FAST_MS + 1000,
          `re-run ${recoveryMs} ms after`,
        );
      }
    });
  }
}

/** dlq retry fault points: a second retry after the crash does what the first did not. */
for (const shape of STORES) {
  for (
    const [point, committed] of [["dlq-retry:before-commit", false], [
      "dlq-retry:after-commit",
      true,
    ]] as const
  ) {
    Deno.test(`B4 ${point}: a second dlq retry is ${committed ? "a no-op" : "the one"}${shape.label}`, async () => {
      await using sb = await Sandbox.create(point, shape.options);
      const ids = await sb.enqueue([{
        id: "d",
        command: sb.job('test "$QUEUECTL_ATTEMPT" -gt 1'),
        max_retries: 0,
      }]);
      await sb.workerOnce();
      assert.equal(sb.job1("d")?.state, "dead");
      const died = await sb.run(["dlq", "retry", "d"], { hooks: { fault: point } });
      const afterCrash = sb.job1("d")!.state;
      const second = await sb.run(["dlq", "retry", "d"]);
      await sb.workerOnce();
      const runs = sb.ledger().starts("d");
      verify(sb, `B4 ${point}`, { acked: ids, crashes: false }, {
        dlq_retry: died.signal ?? String(died.code),
        state_after_crash: afterCrash,
        second_retry_exit: second.code,
        runs,
      });
      assert.equal(died.signal, "SIGKILL");
      assert.equal(afterCrash, committed ? "pending" : "dead");
      assert.equal(second.code, committed ? 3 : 0, second.stderr);
      assert.equal(runs, 2, "exactly one re-run");
      assert.equal(sb.job1("d")?.state, "completed");
    });
  }
}

/**
 * Schedule fault points: a scheduler killed while it enqueues an occurrence, before or after the
 * commit. The occurrence ends up enqueued exactly once (by the next worker when the first one's
 * transaction never committed), and its job runs once.
 */
for (const shape of STORES) {
  for (
    const [point, committed] of [["schedule:before-commit", false], [
      "schedule:after-commit",
      true,
    ]] as const
  ) {
    Deno.test(`B4 ${point}: the occurrence is enqueued exactly once${shape.label}`, async () => {
      await using sb = await Sandbox.create(point, shape.options);
      await sb.fastConfig();
      await sb.ok(["schedule", "add", "tick", "--every", "1h", "-c", sb.job()]);
      // Due now (an hour is too long to wait; the next one is an hour after this one).
      const fireAt = Date.now();
      sb.write("UPDATE schedules SET next_at = ?", fireAt);
      const died = await sb.worker({ hooks: { fault: point } }).wait(30_000, "the fault");
      const afterCrash = sb.query<{ fires: number }>("SELECT fires FROM schedules")[0]!.fires;
      // The next worker fires what is still due and runs what is pending.
      await sb.workerOnce();
      await sb.workerOnce();
      // SQLite keeps env as JSON text, PostgreSQL as jsonb (which arrives parsed).
      const rows = sb.query<{ id: string; env: string | Record<string, string> }>(
        "SELECT id, env FROM jobs",
      );
      const at = rows.map((row) =>
        (typeof row.env === "string" ? JSON.parse(row.env) : row.env).QUEUECTL_SCHEDULED_AT
      );
      verify(sb, `B4 ${point}`, { acked: rows.map((r) => r.id), crashes: true }, {
        worker: died.signal ?? String(died.code),
        fired_before_restart: afterCrash,
        occurrences: rows.length,
      });
      assert.equal(died.signal, "SIGKILL", `the fault fired: ${died.stderr.slice(-300)}`);
      assert.equal(afterCrash, committed ? 1 : 0);
      assert.deepEqual(at, [new Date(fireAt).toISOString()], "exactly one occurrence");
      assert.equal(sb.ledger().starts(rows[0]!.id), 1);
      assert.equal(sb.job1(rows[0]!.id)?.state, "completed");
      const next = sb.query<{ next_at: number }>("SELECT next_at FROM schedules")[0]!.next_at;
      assert.ok(next > fireAt, "the schedule moved on");
    });
  }
}
