/**
 * Recovery of jobs whose worker is gone. Every live worker runs a sweep now and then:
 *
 * - a job whose owner process on this host has exited (pid and start time checked) is recovered
 *   at once, without waiting for its lease;
 * - a job whose lease expired is recovered whoever owned it (a stopped or hung worker).
 *
 * Before a job is made runnable again, every process left of its old attempt is killed and
 * confirmed gone, so two attempts never run at once. Recovery counts as an attempt, so a job that
 * kills its own worker ends in the dead letter queue instead of a loop.
 *
 * @module
 */

import type { BackoffOptions } from "../job/backoff.ts";
import { decide } from "../job/outcome.ts";
import type { ProcessingJob, Store } from "../store/store.ts";
import { workerGone } from "./liveness.ts";
import { attemptMarker, killAttempt } from "./process.ts";

export interface RescueOptions {
  store: Store;
  /** The sweeping worker: it takes over the jobs it recovers. */
  workerId: string;
  /** The job the sweeping worker is running, never rescued by itself. */
  running: string | null;
  /** Lease of a taken-over job while its old processes are killed. */
  leaseMs: number;
  host: string;
  /** Database path, part of every job process's environment marker. */
  dbPath: string;
  now: () => number;
  backoff: BackoffOptions;
  log: (line: string) => void;
}

export interface RescueReport {
  recovered: string[];
  /** Jobs whose old processes could not be killed in time; tried again next sweep. */
  stuck: string[];
}

/** Why a processing job may be recovered now, or null if it must be left alone. */
export function rescueReason(p: ProcessingJob, host: string, now: number): string | null {
  const owner = p.owner;
  if (owner && workerGone(owner, host)) {
    return `worker lost (pid ${owner.pid} exited)`;
  }
  if (p.job.leaseExpiresAt !== null && p.job.leaseExpiresAt <= now) return "lease expired";
  return null;
}

/** One sweep: recovers what may be recovered. */
export async function rescue(options: RescueOptions): Promise<RescueReport> {
  const report: RescueReport = { recovered: [], stuck: [] };
  const { store } = options;
  for (const p of await store.jobListProcessing()) {
    if (p.job.workerId === options.workerId && p.job.id === options.running) continue;
    const reason = rescueReason(p, options.host, options.now());
    if (reason === null) continue;
    const attempt = p.job.attempts;
    // Fence the owner out before killing anything: an owner that is alive (stalled, or with
    // another clock) would otherwise see its job killed and record that as the job's failure.
    // If this worker dies now, the job is its own and recovered like any of its jobs.
    const taken = await store.jobTakeOver({
      jobId: p.job.id,
      attempt,
      workerId: p.job.workerId!,
      newWorkerId: options.workerId,
      now: options.now(),
      leaseMs: options.leaseMs,
      requireLeaseExpired: reason === "lease expired",
    });
    if (!taken) continue;
    // Only processes on this host can be killed from here (SQLite queues are single-host).
    if (p.host === null || p.host === options.host) {
      const gone = await killAttempt({
        marker: attemptMarker(options.dbPath, p.job.id, attempt),
        pid: p.pid,
        pidStart: p.pidStart,
      });
      if (!gone) {
        // The job stays this worker's until its lease ends; then a sweep takes it over again.
        options.log(`job ${p.job.id} attempt ${attempt}: old processes survive SIGKILL; retrying`);
        report.stuck.push(p.job.id);
        continue;
      }
    }
    const now = options.now();
    const decision = decide(p.job, { kind: "lost", error: reason }, now, options.backoff);
    const applied = await store.jobFinish({
      jobId: p.job.id,
      attempt,
      workerId: options.workerId,
      decision,
      now,
    });
    if (applied) {
      options.log(
        `job ${p.job.id} attempt ${attempt}: recovered (${reason}); now ${decision.state}`,
      );
      report.recovered.push(p.job.id);
    }
  }
  return report;
}
