/**
 * Whether a registered worker is alive, judged in one place for every reader (`status`, `worker
 * list`, `worker stop`, `metrics`) and for recovery:
 *
 * - on this host, its pid together with the process start time: the worker is gone when its
 *   process exited (a pid reused by another process does not count as the worker);
 * - on this host, the process state: a stopped process (SIGSTOP, Ctrl-Z, a debugger) cannot
 *   answer a signal or renew a lease until it is resumed;
 * - on any host, its heartbeat: a worker beats every LEASE/6, so one whose last beat is three
 *   beats old (and at least 5 s) is not responding.
 *
 * Gone workers' jobs are recovered at once; stale workers keep their jobs until the lease expires
 * (see rescuer.ts), because a stopped worker may be resumed.
 *
 * @module
 */

import { DEFAULT_LEASE_TIMEOUT_MS } from "../job/job.ts";
import type { WorkerRecord, WorkerState } from "../store/store.ts";
import { formatAgo } from "../time.ts";
import { processStatus } from "./process.ts";

/** ok: answers; stopped: its process is stopped; silent: no heartbeat for too long; gone: exited. */
export type Health = "ok" | "stopped" | "silent" | "gone";

/** A worker's state as `status` and `worker list` show it. */
export type ShownState = WorkerState | "stale" | "gone";

export interface Liveness {
  health: Health;
  state: ShownState;
  /** On this host: its process can be checked and signalled from here. */
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
  /** This host's name: only workers registered from it have a pid that means something here. */
  host: string;
  now: number;
  /** The `lease-timeout` setting, which sets how often workers beat. */
  leaseMs: number;
}

/** How often a worker renews its running job's lease and records its heartbeat. */
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

/** The `lease-timeout` setting from the stored settings (base units, as text), or its default. */
export function leaseTimeoutMs(settings: Readonly<Record<string, string>>): number {
  const value = Number(settings["lease-timeout"]);
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_LEASE_TIMEOUT_MS;
}

/** Whether the worker ran on `host` and its process has exited (pid and start time checked). */
export function workerGone(
  worker: Pick<WorkerRecord, "host" | "pid" | "pidStart">,
  host: string,
): boolean {
  return worker.host === host && processStatus(worker.pid, worker.pidStart) === "gone";
}

/** How a worker is named in messages: `worker w123-ab4c (pid 123)`. */
export function workerName(worker: Pick<WorkerRecord, "id" | "pid">): string {
  return `worker ${worker.id} (pid ${worker.pid})`;
}

export function judgeWorker(worker: WorkerRecord, options: LivenessOptions): Liveness {
  const local = worker.host === options.host;
  const heartbeatAgeMs = Math.max(0, options.now - worker.heartbeatAt);
  const process = local ? processStatus(worker.pid, worker.pidStart) : "running";
  const judged = (health: Health, problem: string | null): Liveness => ({
    health,
    state: health === "gone" ? "gone" : health === "ok" ? worker.state : "stale",
    local,
    heartbeatAgeMs,
    problem,
  });
  if (process === "gone") return judged("gone", null);
  if (process === "stopped") return judged("stopped", "is stopped (SIGSTOP)");
  if (heartbeatAgeMs > staleAfterMs(options.leaseMs)) {
    return judged(
      "silent",
      `is not responding (last heartbeat ${formatAgo(worker.heartbeatAt, options.now)})`,
    );
  }
  return judged("ok", null);
}

export function judgeWorkers(
  workers: readonly WorkerRecord[],
  options: LivenessOptions,
): JudgedWorker[] {
  return workers.map((worker) => ({ worker, liveness: judgeWorker(worker, options) }));
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
