/**
 * Clock offsets (RELIABILITY §2.2 B10): one worker's clock an hour ahead or behind the others'
 * (`QUEUECTL_TEST_CLOCK_OFFSET_MS`). Leases and run_at are wall-clock times written by one process
 * and read by another, so a skewed worker misjudges them; what must hold regardless is safety:
 * nothing lost, never two attempts at once, every repeat explained by a lost lease, and a dead
 * worker's job recovered by the pid check whatever the clocks say. What the skew does to
 * duplicates and to scheduled jobs is measured and printed (the README's Guarantees section describes it).
 *
 * On PostgreSQL leases, `run_at` and recovery use the database's `now()` (issue 12: "one
 * clock"), so the skewed worker's clock changes nothing there, and more is asserted: no live job
 * is taken (no lease-expired rescue, the only repeated run is the killed worker's job), and the
 * scheduled job starts neither before it is due nor later than a busy worker's next claim.
 */

import assert from "node:assert/strict";
import { verify } from "./_checker.ts";
import { AttemptSampler } from "../helpers/proc.ts";
import type { Proc } from "../helpers/process.ts";
import { type JobSpec, Sandbox, SWEEP_MS } from "../helpers/sandbox.ts";
import { STORES } from "./_shapes.ts";

const HOUR = 3_600_000;
const R_FAST_MS = SWEEP_MS + 2000;
const LONG_FIRST = 'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then sleep 60; fi';

async function stop(workers: Proc[]): Promise<void> {
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.wait(30_000, "worker to stop")));
}

for (const shape of STORES) {
  for (const offset of [HOUR, -HOUR]) {
    const label = offset > 0 ? "+1h" : "-1h";
    Deno.test(`B10: a worker at ${label} loses nothing and never overlaps${shape.label}`, async () => {
      await using sb = await Sandbox.create(`b10${label}`, shape.options);
      await sb.config({
        "lease-timeout": "6s",
        "backoff-base": "1",
        "backoff-max": "0",
        "max-retries": "10",
      });
      const sampler = new AttemptSampler(sb.db, 50).start();
      const specs: JobSpec[] = Array.from({ length: 8 }, (_, i) => ({
        id: `b10-${i}`,
        command: sb.job("sleep 1.5"),
      }));
      // Highest priority: a worker that thinks it is due takes it before anything else.
      specs.push({ id: "scheduled", command: sb.job(), delay: "6s", priority: 10 });
      const enqueuedAt = Date.now();
      const ids = await sb.enqueue(specs);
      const dueAt = sb.job1("scheduled")!.run_at;
      const normal = sb.worker();
      await sb.waitRun("b10-0", 1, 30_000);
      const skewed = sb.worker({ hooks: { clockOffsetMs: offset } });
      await sb.settle(90_000);
      const scheduledStart = sb.ledger().runs.get("scheduled")![0]!.startUs / 1000;

      // A dead worker's job is recovered by a skewed one through the pid check, within R_fast
      // (measured from the kill, so including the new worker's start-up).
      await stop([skewed]);
      ids.push(...await sb.enqueue([{ id: "orphaned", command: sb.job(LONG_FIRST) }]));
      await sb.waitRun("orphaned", 1, 30_000);
      const killedAt = Date.now();
      normal.kill("SIGKILL");
      await normal.wait(10_000);
      const rescuer = sb.worker({ hooks: { clockOffsetMs: offset } });
      const rerun = await sb.waitRun("orphaned", 2, R_FAST_MS + 10_000);
      const recoveryMs = rerun.startUs / 1000 - killedAt;
      await sb.settle(30_000);
      sampler.stop();
      await stop([rescuer]);
      const attempts = sb.attempts();
      const reasons = attempts.filter((a) => a.outcome === "lost").map((a) => a.error);
      // The jobs never fail by themselves: an attempt that did not complete was taken from its
      // worker, and the record must say so ("lost"), not blame the job ("killed by SIGKILL").
      const misrecorded = attempts.filter((a) => a.outcome !== "completed" && a.outcome !== "lost")
        .map((a) => `${a.id}#${a.attempt} ${a.outcome} (${a.error})`);
      const early = dueAt - scheduledStart;
      verify(sb, `B10 worker clock ${label}`, { acked: ids, crashes: true, sampler }, {
        lease_expired_rescues: reasons.filter((r) => /lease expired/.test(r ?? "")).length,
        worker_lost_rescues: reasons.filter((r) => /worker lost/.test(r ?? "")).length,
        dead_jobs: sb.jobs().filter((j) => j.state === "dead").length,
        scheduled_started_early_s: (Math.max(0, early) / 1000).toFixed(1),
        scheduled_delay_s: ((scheduledStart - enqueuedAt) / 1000).toFixed(1),
        dead_worker_recovery_s: (recoveryMs / 1000).toFixed(2),
        misrecorded: misrecorded.length,
      }, { maxDuplicated: 100 });
      assert.deepEqual(misrecorded, [], "attempts taken from a live worker are recorded as lost");
      assert.ok(recoveryMs <= R_FAST_MS, `dead worker's job recovered after ${recoveryMs} ms`);
    });
  }
}
