/**
 * Whether a registered worker is alive, judged in one place for every reader (`status`, `worker
 * list`, `worker stop`, `metrics`, the dashboard) and for recovery:
 *
 * - in this host's pid namespace (where the store records it: `pidRecovery`), its pid together
 *   with the process start time: the worker is gone when its process exited (a pid reused by
 *   another process does not count as the worker);
 * - there too, the process state: a stopped process (SIGSTOP, Ctrl-Z, a debugger) cannot answer
 *   a signal or renew a lease until it is resumed;
 * - on any host, its heartbeat, measured by the store's clock: a worker beats every LEASE/6, so
 *   one whose last beat is three beats old (and at least 5 s) is not responding, and one silent
 *   for an hour (or ten leases) on another host is gone for good.
 *
 * Gone workers' jobs are recovered at once; stale workers keep their jobs until the lease expires
 * (see rescuer.ts), because a stopped worker may be resumed.
 *
 * @module
 */

import { DEFAULT_LEASE_TIMEOUT_MS } from "../job/job.ts";
import type { WorkerRecord } from "../store/store.ts";
import { formatAge } from "../time.ts";
import { processStatus } from "./process.ts";

/** ok: answers; stopped: its process is stopped; silent: no heartbeat for too long; gone: exited. */
export type Health = "ok" | "stopped" | "silent" | "gone";

/** A worker's state as `status` and `worker list` show it. */
export type ShownState = "idle" | "busy" | "stopping" | "stale" | "gone";

export interface Liveness {
  health: Health;
  state: ShownState;
  /** In this host's pid namespace: its process can be checked and signalled from here. */
  local: boolean;
  heartbeatAgeMs: number;
  /** What is wrong with a stale worker, to follow "worker ID (pid N) ": "is stopped (SIGSTOP)". */
  problem: string | null;
}

export interface JudgedWorker {
  worker: WorkerRecord;
  liveness: Liveness;
}

export interface LivenessOptions {
  /** This process's pid namespace (lib/worker/host.ts). */
  hostId: string;
  /** The store records host ids, so a worker in this namespace may be judged by its pid. */
  pidRecovery: boolean;
  /** The `lease-timeout` setting, which sets how often workers beat. */
  leaseMs: number;
}

/** How often a worker renews its running jobs' leases and records its heartbeat. */
export function heartbeatIntervalMs(leaseMs: number): number {
  return Math.max(100, Math.floor(leaseMs / 6));
}

/**
 * Heartbeat age past which a worker counts as not responding: three missed beats, and never less
 * than 5 s, so that a beat delayed by a busy database or a loaded machine does not count.
 */
export function staleAfterMs(leaseMs: number): number {
  return Math.max(5000, 3 * heartbeatIntervalMs(leaseMs));
}

/** A worker on another host, silent this long, is gone for good (its row may be deleted). */
export function goneAfterMs(leaseMs: number): number {
  return Math.max(3_600_000, 10 * leaseMs);
}

/** The `lease-timeout` setting from the stored settings (base units, as text), or its default. */
export function leaseTimeoutMs(settings: Readonly<Record<string, string>>): number {
  const value = Number(settings["lease-timeout"]);
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_LEASE_TIMEOUT_MS;
}

/** Whether `worker` runs in this pid namespace, where its pid means something. */
export function isLocal(
  worker: Pick<WorkerRecord, "hostId">,
  options: Pick<LivenessOptions, "hostId" | "pidRecovery">,
): boolean {
  return options.pidRecovery && worker.hostId === options.hostId;
}

/** Whether the worker runs here and its process has exited (pid and start time checked). */
export function workerGone(
  worker: Pick<WorkerRecord, "hostId" | "pid" | "pidStart">,
  options: Pick<LivenessOptions, "hostId" | "pidRecovery">,
): boolean {
  return isLocal(worker, options) && processStatus(worker.pid, worker.pidStart) === "gone";
}

/** How a worker is named in messages: `worker w123-ab4c (pid 123)`. */
export function workerName(worker: Pick<WorkerRecord, "id" | "pid">): string {
  return `worker ${worker.id} (pid ${worker.pid})`;
}

export function judgeWorker(worker: WorkerRecord, options: LivenessOptions): Liveness {
  const local = isLocal(worker, options);
  const heartbeatAgeMs = worker.heartbeatAgeMs;
  const process = local ? processStatus(worker.pid, worker.pidStart) : "running";
  const judged = (health: Health, problem: string | null): Liveness => ({
    health,
    state: health === "gone"
      ? "gone"
      : health !== "ok"
      ? "stale"
      : worker.state === "stopping"
      ? "stopping"
      : worker.runningJobs.length > 0
      ? "busy"
      : "idle",
    local,
    heartbeatAgeMs,
    problem,
  });
  if (process === "gone") return judged("gone", null);
  if (process === "stopped") return judged("stopped", "is stopped (SIGSTOP)");
  if (!local && heartbeatAgeMs > goneAfterMs(options.leaseMs)) return judged("gone", null);
  if (heartbeatAgeMs > staleAfterMs(options.leaseMs)) {
    return judged("silent", `is not responding (last heartbeat ${formatAge(heartbeatAgeMs)})`);
  }
  return judged("ok", null);
}

export function judgeWorkers(
  workers: readonly WorkerRecord[],
  options: LivenessOptions,
): JudgedWorker[] {
  return workers.map((worker) => ({ worker, liveness: judgeWorker(worker, options) }));
}

/** Whether a worker's row may be deleted: gone, and holding no job any more. */
export function forgettable(judged: JudgedWorker): boolean {
  return judged.liveness.health === "gone" && judged.worker.runningJobs.length === 0;
}

/**
 * One line per stale worker saying what is wrong and what to do, for under a table of workers:
 * `worker w1-ab (pid 12) is stopped (SIGSTOP): resume it with `kill -CONT 12`, or …`.
 */
export function problemLines(workers: readonly JudgedWorker[]): string[] {
  return workers.filter((w) => w.liveness.problem !== null).map(({ worker, liveness }) => {
    const what = `${workerName(worker)} ${liveness.problem}`;
    if (!liveness.local) return what;
    const stop = "stop the workers with `queuectl worker stop --force`";
    return liveness.health === "stopped"
      ? `${what}: resume it with \`kill -CONT ${worker.pid}\`, or ${stop}`
      : `${what}: ${stop}`;
  });
}
