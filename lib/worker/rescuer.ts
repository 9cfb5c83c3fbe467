/**
 * Recovery of jobs whose worker is gone. Every live worker runs a sweep now and then:
 *
 * - a job whose owner runs in this host's pid namespace and has exited (pid and start time
 *   checked) is recovered at once, without waiting for its lease;
 * - a job whose lease expired (by the store's clock) is recovered whoever owned it (a stopped or
 *   hung worker, or one on a host that is cut off).
 *
 * Before a job is made runnable again, every process left of its old attempt on this host is
 * killed and confirmed gone, so two attempts never run at once. Recovery counts as an attempt, so
 * a job that kills its own worker ends in the dead letter queue instead of a loop.
 *
 * With several hosts (a store with `multiHost`), only a worker on the attempt's own host can kill
 * its processes, so a lease that expired is left to that host's workers for `CROSS_HOST_GRACE_MS`
 * more; a host that is down or cut off leaves it to any other host after that (its own workers
 * killed their jobs before the lease could run out: lease.ts). And each host reaps its own
 * orphans (`reapOrphans`): processes of an attempt that no worker of this host runs any more
 * (the job was recovered elsewhere, or moved on to another attempt).
 *
 * @module
 */

import type { BackoffOptions } from "../job/backoff.ts";
import { decide } from "../job/outcome.ts";
import type { ProcessingJob, Store } from "../store/store.ts";
import { workerGone } from "./liveness.ts";
import { attemptMarker, killAttempt, killGroups, markedAttempts } from "./process.ts";

/**
 * How long past its expiry a lease of an attempt that ran on another host is left to that host's
 * workers (who can kill its processes, and sweep every second) before this host recovers it.
 */
export const CROSS_HOST_GRACE_MS = 3000;

export interface RescueOptions {
  store: Store;
  /** The sweeping worker: it takes over the jobs it recovers. */
  workerId: string;
  /** Jobs the sweeping worker runs itself: never rescued by it. */
  running: ReadonlySet<string>;
  /** Lease of a taken-over job while its old processes are killed. */
  leaseMs: number;
  /** This process's pid namespace (lib/worker/host.ts). */
  hostId: string;
  backoff: BackoffOptions;
  log: (line: string) => void;
}

export interface RescueReport {
  recovered: string[];
  /** Jobs whose old processes could not be killed in time; tried again next sweep. */
  stuck: string[];
}

/** Why a processing job may be recovered now, or null if it must be left alone. */
export function rescueReason(
  p: ProcessingJob,
  hostId: string,
  pidRecovery: boolean,
  multiHost = false,
): string | null {
  const owner = p.owner;
  if (owner && workerGone(owner, { hostId, pidRecovery })) {
    return `worker lost (pid ${owner.pid} exited)`;
  }
  if (!p.leaseExpired) return null;
  const elsewhere = multiHost && p.host !== null && p.host !== hostId;
  if (elsewhere && (p.leaseOverdueMs ?? 0) < CROSS_HOST_GRACE_MS) return null;
  return "lease expired";
}

export interface ReapOptions {
  store: Store;
  hostId: string;
  log: (line: string) => void;
}

/**
 * Kills this host's processes of attempts that no worker of this host runs any more: the job is
 * no longer processing that attempt here, or another host's worker took it over. Processes are
 * found before the jobs are read, so an attempt started meanwhile is never taken for an orphan
 * (a worker arms an attempt before it spawns it). Returns the attempts whose processes it killed.
 */
export async function reapOrphans(options: ReapOptions): Promise<string[]> {
  const marked = markedAttempts(options.store.queueId);
  if (marked.length === 0) return [];
  const here = new Map<string, ProcessingJob>();
  for (const p of await options.store.jobListProcessing()) {
    if (p.host === options.hostId) here.set(`${p.job.id}\0${p.job.attempts}`, p);
  }
  const reaped: string[] = [];
  for (const m of marked) {
    const p = here.get(`${m.jobId}\0${m.attempt}`);
    const owner = p?.owner ?? null;
    // Still this host's: its owner runs here (or is unknown yet: recovery judges that).
    if (p !== undefined && (owner === null || owner.hostId === options.hostId)) continue;
    killGroups(m.groups);
    reaped.push(`${m.jobId}/${m.attempt}`);
    options.log(
      `job ${m.jobId} attempt ${m.attempt}: orphaned processes killed (${
        p === undefined ? "the attempt is over" : `taken over on host ${owner!.host}`
      })`,
    );
  }
  return reaped;
}

/** One sweep: recovers what may be recovered. */
export async function rescue(options: RescueOptions): Promise<RescueReport> {
  const report: RescueReport = { recovered: [], stuck: [] };
  const { store } = options;
  for (const p of await store.jobListProcessing()) {
    if (p.job.workerId === options.workerId && options.running.has(p.job.id)) continue;
    const reason = rescueReason(
      p,
      options.hostId,
      store.capabilities.pidRecovery,
      store.capabilities.multiHost,
    );
    if (reason === null) continue;
    const attempt = p.job.attempts;
    if (!p.armed) {
      // Claimed but never started (its worker died or stalled before the spawn): nothing ran,
      // so nothing is killed or charged. An owner that arms it meanwhile keeps it.
      const owner = { jobId: p.job.id, attempt, workerId: p.job.workerId! };
      if (await store.jobUnclaim(owner)) {
        options.log(`job ${p.job.id} attempt ${attempt}: claim undone (${reason}; never started)`);
        report.recovered.push(p.job.id);
      }
      continue;
    }
    // Fence the owner out before killing anything: an owner that is alive (stalled, or with
    // another clock) would otherwise see its job killed and record that as the job's failure.
    // If this worker dies now, the job is its own and recovered like any of its jobs.
    const taken = await store.jobTakeOver({
      jobId: p.job.id,
      attempt,
      workerId: p.job.workerId!,
      newWorkerId: options.workerId,
      leaseMs: options.leaseMs,
      requireLeaseExpired: reason === "lease expired",
    });
    if (!taken) continue;
    // Only processes in this pid namespace can be killed from here; another host's workers kill
    // their own (they fence themselves when they cannot renew). A single-host store's attempts
    // all run here.
    if (!store.capabilities.multiHost || p.host === null || p.host === options.hostId) {
      const gone = await killAttempt({
        marker: attemptMarker(store.queueId, p.job.id, attempt),
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
    const decision = decide(p.job, { kind: "lost", error: reason }, options.backoff);
    const applied = await store.jobFinish({
      jobId: p.job.id,
      attempt,
      workerId: options.workerId,
      decision,
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
