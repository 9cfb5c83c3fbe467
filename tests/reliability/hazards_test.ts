/**
 * Job process hazards (RELIABILITY §2.5, C7, C8): a gigabyte of output, a stderr flood, a job
 * that leaves a daemon behind, one that ignores SIGTERM, one that reads stdin, one that kills its
 * own worker, and ten thousand quick jobs with no zombie, no fd and no memory growth.
 */

import assert from "node:assert/strict";
import { report, verify } from "./_checker.ts";
import { poll } from "../helpers/poll.ts";
import { fdCount, jobProcesses, rssBytes, zombieChildren } from "../helpers/proc.ts";
import type { Proc } from "../helpers/process.ts";
import { Sandbox } from "../helpers/sandbox.ts";
import { STORES } from "./_shapes.ts";

const MiB = 1024 * 1024;

/** Resident memory of a process that must still run, in KiB. */
function rssKiB(pid: number): number {
  const bytes = rssBytes(pid);
  assert.ok(bytes !== null, `process ${pid} is gone`);
  return bytes / 1024;
}

async function stop(workers: Proc[]): Promise<void> {
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.wait(60_000, "worker to stop")));
}

interface Output {
  stream: number;
  total: number;
  kept: number;
}

/** [stdout, stderr] of a job's output rows; a stream that stayed empty has no row. */
/** How long the job's output count may stand still before the worker counts as stalled. */
const STALL_MS = 15_000;

function outputs(sb: Sandbox, id: string): (Output | undefined)[] {
  const rows = sb.query<Output>(
    `SELECT o.stream, o.total, length(o.head) + length(o.tail) AS kept
     FROM outputs o JOIN jobs j ON j.seq = o.job_seq WHERE j.id = :id ORDER BY o.stream`,
    { id },
  );
  return [1, 2].map((stream) => rows.find((row) => row.stream === stream));
}

function duration(sb: Sandbox, id: string): number {
  const [a] = sb.attempts(id);
  return (a!.finished_at ?? NaN) - a!.started_at;
}

/** The database's size: the file and its -wal, or on PostgreSQL the database's relations. */
function dbBytes(sb: Sandbox): number {
  if (sb.store === "postgres") {
    return sb.query<{ n: number }>("SELECT pg_database_size(current_database()) AS n")[0]!.n;
  }
  let total = 0;
  for (const suffix of ["", "-wal"]) {
    try {
      total += Deno.statSync(sb.db + suffix).size;
    } catch { /* absent */ }
  }
  return total;
}

for (const shape of STORES) {
  Deno.test(`E1: a gigabyte of stdout: flat worker memory, capped output, others keep going${shape.label}`, async () => {
    await using sb = await Sandbox.create("e1", shape.options);
    const command = "head -c 1G /dev/zero | tr '\\0' a";
    const direct = performance.now();
    const plain = await new Deno.Command("sh", { args: ["-c", `${command} > /dev/null`] }).output();
    const directMs = performance.now() - direct;
    assert.ok(plain.success);
    await sb.enqueue([{ id: "big", command }]);
    const sizeBefore = dbBytes(sb);
    const big = sb.worker();
    await sb.waitForState("big", "processing", 30_000);
    const quick = await sb.enqueue(
      Array.from({ length: 20 }, (_, i) => ({ id: `q-${i}`, command: sb.job("sleep 0.05") })),
    );
    const other = sb.worker();
    let maxRss = 0;
    let quickDoneWhileBig = 0;
    // A stall (the worker no longer reading the job's pipe) shows as a count of output that stops
    // growing: the worker saves it every half second while the job runs.
    let counted = -1;
    let countedAt = performance.now();
    await poll(
      () => {
        maxRss = Math.max(maxRss, rssKiB(big.pid));
        const state = sb.job1("big")!.state;
        if (state === "processing") {
          quickDoneWhileBig = sb.jobs().filter((j) =>
            j.id.startsWith("q-") && j.state === "completed"
          )
            .length;
          const total = outputs(sb, "big")[0]?.total ?? 0;
          if (total !== counted) [counted, countedAt] = [total, performance.now()];
          assert.ok(
            performance.now() - countedAt < STALL_MS,
            `the output count stayed at ${counted} bytes for ${STALL_MS} ms while the job ran`,
          );
        }
        return state === "completed";
      },
      300_000,
      "the gigabyte job",
      { intervalMs: 100 },
    );
    await sb.settle(60_000);
    await stop([big, other]);
    const [stdout] = outputs(sb, "big");
    const growth = dbBytes(sb) - sizeBefore;
    const jobMs = duration(sb, "big");
    report(
      `E1 1 GiB stdout: job_s=${(jobMs / 1000).toFixed(1)} direct_s=${
        (directMs / 1000).toFixed(1)
      } ` +
        `worker_max_rss_mb=${(maxRss / 1024).toFixed(0)} stored_kib=${
          ((stdout?.kept ?? 0) / 1024).toFixed(0)
        } counted_mib=${((stdout?.total ?? 0) / MiB).toFixed(0)} db_growth_mib=${
          (growth / MiB).toFixed(2)
        } quick_jobs_done_meanwhile=${quickDoneWhileBig}/20`,
    );
    verify(sb, "E1 other worker's jobs", { acked: quick, crashes: false, exclude: ["big"] });
    assert.ok(maxRss < 200 * 1024, `worker RSS reached ${maxRss} KiB`);
    assert.equal(stdout?.total, 1024 * MiB, "every byte counted");
    assert.ok((stdout?.kept ?? Infinity) <= MiB, "at most the output limit kept");
    assert.ok(growth < 2 * MiB, `database grew ${growth} bytes`);
    assert.ok(quickDoneWhileBig > 0, "the other worker completed jobs meanwhile");
  });
}

for (const shape of STORES) {
  Deno.test(`E2: a stderr-only flood is drained at once${shape.label}`, async () => {
    await using sb = await Sandbox.create("e2", shape.options);
    await sb.enqueue([{ id: "err", command: "head -c 1M /dev/zero | tr '\\0' e >&2" }]);
    await sb.workerOnce();
    const ms = duration(sb, "err");
    const [stdout, stderr] = outputs(sb, "err");
    report(
      `E2 1 MiB stderr only: job_ms=${ms} stderr_counted=${stderr?.total} stdout=${stdout?.total}`,
    );
    assert.equal(sb.job1("err")?.state, "completed");
    assert.equal(stderr?.total, MiB);
    assert.ok(ms < 1000, `took ${ms} ms`);
  });
}

for (const shape of STORES) {
  Deno.test(`E3: a job that leaves a daemon behind completes at once; the daemon is killed${shape.label}`, async () => {
    await using sb = await Sandbox.create("e3", shape.options);
    await sb.enqueue([
      { id: "daemon", command: "sleep 300 & echo started" },
      { id: "escaped", command: "setsid sleep 300 & echo started" },
    ]);
    await sb.workerOnce();
    const ms = duration(sb, "daemon");
    const left = await poll(
      () => jobProcesses(sb.db, "daemon").length === 0 ? "none" : null,
      2000,
      "the daemon to be killed",
    ).catch(() => `${jobProcesses(sb.db, "daemon").length} process(es)`);
    const escaped = jobProcesses(sb.db, "escaped").length;
    report(
      `E3 daemon: job_ms=${ms} state=${sb.job1("daemon")?.state} left_in_group=${left} ` +
        `setsid_escapee_alive=${escaped > 0} (documented: outside process-group control)`,
    );
    assert.equal(sb.job1("daemon")?.state, "completed");
    assert.ok(ms < 2000, `completed after ${ms} ms`);
    assert.equal(left, "none");
  });
}

for (const shape of STORES) {
  Deno.test(`E4: a job that ignores SIGTERM is SIGKILLed after the grace; the worker goes on${shape.label}`, async () => {
    await using sb = await Sandbox.create("e4", shape.options);
    await sb.enqueue([{
      id: "stubborn",
      command: "trap '' TERM; sleep 600",
      timeout: "2s",
      max_retries: 0,
    }]);
    const next = await sb.enqueue([{ id: "next", command: sb.job(), priority: 1 }]);
    const worker = sb.worker();
    await sb.waitForState("stubborn", "processing", 30_000);
    const started = performance.now();
    await poll(() => jobProcesses(sb.db, "stubborn").length === 0, 20_000, "the group to die");
    const goneMs = performance.now() - started;
    await sb.settle(30_000);
    await stop([worker]);
    const [a] = sb.attempts("stubborn");
    report(
      `E4 ignores SIGTERM, timeout 2s: group_gone_s=${(goneMs / 1000).toFixed(1)} ` +
        `outcome=${a?.outcome} signal=${a?.signal} state=${sb.job1("stubborn")?.state} ` +
        `error=${JSON.stringify(sb.job1("stubborn")?.last_error)}`,
    );
    verify(sb, "E4 the next job on that worker", {
      acked: next,
      crashes: false,
      exclude: ["stubborn"],
    });
    // 2 s limit + 5 s from SIGTERM to SIGKILL + 1 s.
    assert.ok(goneMs < 2000 + 5000 + 1000, `group gone after ${goneMs} ms`);
    assert.deepEqual([a?.outcome, a?.signal], ["timeout", "SIGKILL"]);
    assert.equal(sb.job1("stubborn")?.state, "dead");
  });
}

for (const shape of STORES) {
  Deno.test(`E5: jobs that read stdin see EOF at once, never the worker's stdin${shape.label}`, async () => {
    await using sb = await Sandbox.create("e5", shape.options);
    await sb.enqueue([
      { id: "cat", command: "cat" },
      { id: "read", command: 'read x; echo "[$x]"' },
    ]);
    // The worker's own stdin is an open pipe nobody writes to: a job reading it would hang.
    const worker = sb.worker({ stdin: "pipe" });
    await sb.settle(10_000);
    await stop([worker]);
    const ms = ["cat", "read"].map((id) => duration(sb, id));
    report(`E5 stdin: cat_ms=${ms[0]} read_ms=${ms[1]} states=${sb.jobs().map((j) => j.state)}`);
    assert.deepEqual(sb.jobs().map((j) => j.state), ["completed", "completed"]);
    assert.ok(ms.every((m) => m < 1000), `took ${ms} ms`);
  });
}

for (const shape of STORES) {
  Deno.test(`E8: a job that kills its own worker ends dead as 'worker lost', no endless loop${shape.label}`, async () => {
    await using sb = await Sandbox.create("e8", shape.options);
    await sb.config({ "backoff-base": "1" });
    await sb.enqueue([{ id: "poison", command: "kill -9 $PPID", max_retries: 2 }]);
    const others = await sb.enqueue(
      Array.from({ length: 20 }, (_, i) => ({ id: `o-${i}`, command: sb.job("sleep 0.1") })),
    );
    const supervisor = sb.spawn(["worker", "start", "--count", "2"]);
    await sb.waitForState("poison", "dead", 60_000);
    await sb.settle(60_000);
    supervisor.kill("SIGTERM");
    await supervisor.wait(30_000);
    const poison = sb.job1("poison")!;
    const deaths = supervisor.lines.filter((l) => /was killed by SIGKILL/.test(l.text)).length;
    report(
      `E8 poison pill: state=${poison.state} attempts=${poison.attempts} worker_deaths=${deaths} ` +
        `error=${JSON.stringify(poison.last_error)}`,
    );
    verify(sb, "E8 the other jobs", { acked: others, crashes: true, exclude: ["poison"] }, {}, {
      maxDuplicated: 2,
    });
    assert.equal(poison.attempts, 3, "1 + max_retries attempts, each a crash");
    assert.ok(/worker lost/.test(poison.last_error ?? ""), poison.last_error ?? "");
    assert.equal(deaths, 3);
  });
}

for (const shape of STORES) {
  Deno.test(`C7/C8/E7: 10,000 quick jobs under ulimit -n 64: no zombie, no fd or memory growth${shape.label}`, async () => {
    await using sb = await Sandbox.create("c7", shape.options);
    const total = Math.round(10_000 * Number(Deno.env.get("QUEUECTL_REL_SCALE") ?? 1));
    await sb.enqueue(
      Array.from({ length: total }, () => ({ command: "echo out; echo err >&2" })),
      { batch: 5000 },
    );
    const worker = sb.spawnRaw("prlimit", [
      "--nofile=64:64",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `${new URL("../../main.ts", import.meta.url).pathname}`,
      "--db",
      sb.db,
      "worker",
      "run",
    ], { env: sb.env() });
    let baseline: { fds: number; rss: number } | null = null;
    let half: number | null = null;
    let maxZombies = 0;
    const started = performance.now();
    await poll(
      () => {
        const done = sb.counts().completed ?? 0;
        maxZombies = Math.max(maxZombies, zombieChildren(worker.pid).length);
        if (baseline === null && done >= 100) {
          baseline = { fds: fdCount(worker.pid), rss: rssKiB(worker.pid) };
        }
        if (half === null && done >= total / 2) half = rssKiB(worker.pid);
        return done === total;
      },
      600_000,
      `${total} jobs`,
      { intervalMs: 200 },
    );
    const seconds = (performance.now() - started) / 1000;
    const end = { fds: fdCount(worker.pid), rss: rssKiB(worker.pid) };
    const zombies = zombieChildren(worker.pid).length;
    await stop([worker]);
    const base = baseline as { fds: number; rss: number } | null;
    const mb = (kib: number | null | undefined) => ((kib ?? 0) / 1024).toFixed(1);
    report(
      `C7/C8/E7 ${total} quick jobs, nofile=64: fds_at_100=${base?.fds} fds_at_end=${end.fds} ` +
        `rss_mb_at_100=${mb(base?.rss)} rss_mb_at_half=${mb(half)} rss_mb_at_end=${mb(end.rss)} ` +
        `zombies_end=${zombies} zombies_max_seen=${maxZombies} throughput_per_s=${
          (total / seconds).toFixed(0)
        } emfile=${/EMFILE|Too many open files/.test(worker.stderr)}`,
    );
    assert.ok(base !== null && half !== null);
    // Growth is what a leak shows. At job 100 the worker's slots are busy, each running job holding
    // its pipes (two slots, about three fds each); at the end it is idle, so fewer is no fault (CI
    // once saw 39 -> 32).
    assert.ok(end.fds - base.fds <= 5, `fds ${base.fds} -> ${end.fds}`);
    // `worker run` re-executes itself with the worker's V8 flags (lib/worker/exec.ts): measured
    // 53 MB at job 100, 60 at 5,000 and 61 at 10,000. Untuned, as CI once ran it, it went 59, 101,
    // 122 MB. The young generation settles over the first thousand jobs, so growth from job 100 is
    // bounded loosely, and a leak is looked for in the second half, where it would show as a slope.
    assert.ok(end.rss - base.rss < 25 * 1024, `RSS grew ${end.rss - base.rss} KiB from job 100`);
    assert.ok(end.rss - half < 10 * 1024, `RSS grew ${end.rss - half} KiB in the second half`);
    assert.equal(zombies, 0);
    assert.ok(!/EMFILE|Too many open files/.test(worker.stderr), "no EMFILE");
    assert.equal(sb.counts().completed, total);
  });
}
