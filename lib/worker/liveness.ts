/**
 * Whether a registered worker is alive: judged here and nowhere else (status, worker list and
 * stop, metrics, recovery and the dashboard all ask this module).
 *
 * - A worker in this host's pid namespace (where the store can tell: `pidRecovery`) is `gone` when
 *   its process exited (pid and process start time compared, so a reused pid does not count) and
 *   `stale` when it is stopped (SIGSTOP, a debugger).
 * - Any worker is `stale` when its heartbeat is overdue: it renews it every sixth of the lease,
 *   so two missed beats and a margin mean it is hung, stalled or cut off. Past an hour (or ten
 *   leases) without a heartbeat, a worker on another host counts as `gone`.
 *
 * @module
 */

import type { WorkerRecord } from "../store/store.ts";
import { processAlive, processState } from "./process.ts";

export type Liveness = "alive" | "stale" | "gone";

export interface LivenessContext {
  /** This process's pid namespace (lib/worker/host.ts). */
  hostId: string;
  /** The store records host ids, so a worker in this namespace may be judged by its pid. */
  pidRecovery: boolean;
  /** The `lease-timeout` setting. */
  leaseMs: number;
}

export interface Judgement {
  liveness: Liveness;
  /** Why, in a few words, when not alive: "pid 42 exited", "stopped (SIGSTOP)". */
  why: string | null;
}

/** How often a worker renews its heartbeat (and its jobs' leases): a sixth of the lease. */
export function heartbeatEveryMs(leaseMs: number): number {
  return Math.max(100, Math.floor(leaseMs / 6));
}

/** A heartbeat older than this means the worker is not responding. */
export function staleAfterMs(leaseMs: number): number {
  return 2 * heartbeatEveryMs(leaseMs) + 2000;
}

/** A worker on another host, silent this long, is gone for good. */
export function goneAfterMs(leaseMs: number): number {
  return Math.max(3_600_000, 10 * leaseMs);
}

function ageText(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)}s` : `${Math.round(ms / 60_000)}m`;
}

/** Judges one worker. */
export function judgeWorker(worker: WorkerRecord, ctx: LivenessContext): Judgement {
  if (ctx.pidRecovery && worker.hostId === ctx.hostId) {
    if (!processAlive(worker.pid, worker.pidStart)) {
      return { liveness: "gone", why: `pid ${worker.pid} exited` };
    }
    const state = processState(worker.pid);
    if (state === "T" || state === "t") {
      return { liveness: "stale", why: `pid ${worker.pid} is stopped (SIGSTOP)` };
    }
  } else if (worker.heartbeatAgeMs > goneAfterMs(ctx.leaseMs)) {
    return { liveness: "gone", why: `no heartbeat for ${ageText(worker.heartbeatAgeMs)}` };
  }
  if (worker.heartbeatAgeMs > staleAfterMs(ctx.leaseMs)) {
    return {
      liveness: "stale",
      why: `not responding (no heartbeat for ${ageText(worker.heartbeatAgeMs)})`,
    };
  }
  return { liveness: "alive", why: null };
}

/** What people see as a worker's state. */
export type WorkerDisplayState = "idle" | "busy" | "stopping" | "stale" | "gone";

export function displayState(worker: WorkerRecord, judgement: Judgement): WorkerDisplayState {
  if (judgement.liveness !== "alive") return judgement.liveness;
  if (worker.state === "stopping") return "stopping";
  return worker.runningJobs.length > 0 ? "busy" : "idle";
}

/** Whether a worker's row may be deleted: gone, and holding no job any more. */
export function forgettable(worker: WorkerRecord, judgement: Judgement): boolean {
  return judgement.liveness === "gone" && worker.runningJobs.length === 0;
}
