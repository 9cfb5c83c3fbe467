/**
 * Stopping the workers of a database on this host (`worker stop`): signal their supervisors (or
 * lone workers), wait until every one has exited, and never wait without bound once told to
 * force: a worker that cannot answer (stopped with SIGSTOP) or does not (hung) is killed, and its
 * jobs are recovered as after a crash.
 *
 * - graceful: SIGTERM; running jobs finish; waits as long as they take, saying after a few
 *   seconds what it waits for;
 * - forced (`--force`, or `--timeout` run out): SIGQUIT; running jobs are killed and go back to
 *   pending. A worker that is stopped is killed at once, one that has not exited after
 *   FORCE_GRACE_MS is killed too; recovery then kills what is left of its jobs and records their
 *   attempts as lost.
 *
 * @module
 */

import type { Queue } from "../queue.ts";
import { formatDuration } from "../time.ts";
import type { JudgedWorker } from "./liveness.ts";
import { judgeWorker, problemLines, workerGone, workerName } from "./liveness.ts";
import { parentOf, processStartTime, processStatus } from "./process.ts";

/** How long a worker told to stop at once may take before it counts as not responding. */
export const FORCE_GRACE_MS = 3000;
/** When a stop that is still waiting first says what for, and how often after that. */
const PROGRESS_AFTER_MS = 3000;
const PROGRESS_EVERY_MS = 10_000;
const POLL_MS = 25;

export interface StopOptions {
  force: boolean;
  /** Force after this long. */
  timeoutMs?: number | undefined;
  /** Progress and warnings, one line each (stderr). */
  note: (line: string) => void;
}

export interface StopReport {
  /** The workers that ran when the stop began, as they are now (gone). */
  stopped: JudgedWorker[];
  forced: boolean;
  /** Workers that did not respond and were killed. */
  killed: JudgedWorker[];
  /**
   * `--all-hosts`: workers on other hosts that did not respond (no heartbeat) and cannot be
   * killed from here; their jobs are recovered once their leases expire.
   */
  unreachable?: JudgedWorker[];
}

interface Target {
  pid: number;
  start: number | null;
  /** A supervisor passes signals on to its workers; a lone worker gets them itself. */
  supervisor: boolean;
}

function send(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch { /* exited meanwhile */ }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Stops this host's workers of the queue; resolves once none of them (or their supervisors) runs. */
export async function stopWorkers(queue: Queue, options: StopOptions): Promise<StopReport> {
  const workers = (await queue.workers()).filter((w) =>
    w.liveness.local && w.liveness.health !== "gone"
  );
  if (workers.length === 0) return { stopped: [], forced: false, killed: [] };
  // A worker's supervisor is the process it is a child of (a supervisor that died, whose pid
  // another process now has, is not).
  const targets = new Map<number, Target>();
  const targetOf = new Map<JudgedWorker, Target>();
  for (const w of workers) {
    const supervisor = w.worker.supervisorPid;
    const pid = supervisor !== null && parentOf(w.worker.pid) === supervisor
      ? supervisor
      : w.worker.pid;
    const target = targets.get(pid) ??
      {
        pid,
        start: pid === w.worker.pid ? w.worker.pidStart : processStartTime(pid),
        supervisor: pid !== w.worker.pid,
      };
    targets.set(pid, target);
    targetOf.set(w, target);
  }
  const judge = await queue.livenessOptions();
  const workerLeft = (w: JudgedWorker) => !workerGone(w.worker, judge);
  const workerStopped = (w: JudgedWorker) =>
    processStatus(w.worker.pid, w.worker.pidStart) === "stopped";

  const signalAll = (signal: Deno.Signal) => {
    for (const target of targets.values()) send(target.pid, signal);
    if (signal !== "SIGQUIT") return;
    // A stopped supervisor passes nothing on: its workers get the forced stop directly (a
    // second graceful signal would be one too many, so only the forced one goes this way).
    for (const w of workers) {
      const target = targetOf.get(w)!;
      if (target.supervisor && processStatus(target.pid, target.start) === "stopped") {
        send(w.worker.pid, signal);
      }
    }
  };

  const started = performance.now();
  let forcedAt = options.force ? started : null;
  signalAll(options.force ? "SIGQUIT" : "SIGTERM");
  const killed: JudgedWorker[] = [];
  const killedTargets = new Set<Target>();
  let progressAt = started + PROGRESS_AFTER_MS;
  for (;;) {
    const left = workers.filter(workerLeft);
    const targetsLeft = [...targets.values()].filter((t) =>
      t.supervisor && processStatus(t.pid, t.start) !== "gone"
    );
    if (left.length === 0 && targetsLeft.length === 0) break;
    const now = performance.now();
    if (
      forcedAt === null && options.timeoutMs !== undefined && now - started >= options.timeoutMs
    ) {
      forcedAt = now;
      options.note(
        `waited ${formatDuration(options.timeoutMs)}; killing the running jobs`,
      );
      signalAll("SIGQUIT");
    }
    if (forcedAt !== null) {
      const late = now - forcedAt >= FORCE_GRACE_MS;
      for (const w of left) {
        if (killed.includes(w)) continue;
        const stopped = workerStopped(w);
        if (!stopped && !late) continue;
        options.note(
          `${workerName(w.worker)} ${
            stopped
              ? "is stopped (SIGSTOP)"
              : `is not responding (still running ${formatDuration(FORCE_GRACE_MS)} after SIGQUIT)`
          }; killing it, then recovering its jobs`,
        );
        send(w.worker.pid, "SIGKILL");
        killed.push(w);
      }
      // A supervisor whose workers are all gone has nothing left to do but exit.
      for (const target of targetsLeft) {
        if (killedTargets.has(target)) continue;
        if (workers.some((w) => targetOf.get(w) === target && workerLeft(w))) continue;
        const stopped = processStatus(target.pid, target.start) === "stopped";
        if (!stopped && now - forcedAt < 2 * FORCE_GRACE_MS) continue;
        options.note(
          `supervisor ${target.pid} ${stopped ? "is stopped (SIGSTOP)" : "is not responding"}; ` +
            `killing it (its workers are gone)`,
        );
        send(target.pid, "SIGKILL");
        killedTargets.add(target);
      }
    }
    if (now >= progressAt) {
      progressAt = now + PROGRESS_EVERY_MS;
      await progress(queue, left, targetsLeft, forcedAt !== null, options);
    }
    await sleep(POLL_MS);
  }
  if (killed.length > 0) await recover(queue, killed, options);
  const asNow = (w: JudgedWorker) => ({ worker: w.worker, liveness: judgeWorker(w.worker, judge) });
  return { stopped: workers.map(asNow), forced: forcedAt !== null, killed: killed.map(asNow) };
}

/** Says what the stop still waits for, and why. */
async function progress(
  queue: Queue,
  left: readonly JudgedWorker[],
  targetsLeft: readonly Target[],
  forced: boolean,
  options: StopOptions,
): Promise<void> {
  // Fresh rows: what each worker is doing now.
  const fresh = new Map((await queue.workers()).map((w) => [w.worker.id, w]));
  const judged = left.map((w) => fresh.get(w.worker.id) ?? w);
  const lines = [
    `waiting for ${judged.length} worker${judged.length === 1 ? "" : "s"} to stop${
      forced ? "" : " after their running jobs (`--force` kills the jobs)"
    }:`,
  ];
  const problems = new Set(problemLines(judged));
  for (const line of problems) lines.push(`  ${line}`);
  for (const w of judged) {
    if (w.liveness.problem !== null) continue;
    const jobs = w.worker.runningJobs;
    lines.push(
      `  ${workerName(w.worker)}: ${
        jobs.length === 0 ? "stopping" : `finishing job${jobs.length === 1 ? "" : "s"} ${jobs}`
      }`,
    );
  }
  for (const target of targetsLeft) {
    if (processStatus(target.pid, target.start) === "stopped") {
      lines.push(
        `  supervisor ${target.pid} is stopped (SIGSTOP) and passes no signal on: resume it ` +
          `with \`kill -CONT ${target.pid}\`, or use \`--force\``,
      );
    }
  }
  for (const line of lines) options.note(line);
}

/**
 * Recovers the jobs of the workers just killed, as a live worker's sweep would, and forgets the
 * workers (recovery took their jobs over, so no row refers to them).
 */
async function recover(
  queue: Queue,
  killed: readonly JudgedWorker[],
  options: StopOptions,
): Promise<void> {
  await queue.recoverNow({
    workerId: `stop-${Deno.pid}`,
    forget: killed.map((w) => w.worker.id),
    log: options.note,
  });
}

/**
 * Stops the workers of the queue on every host (`worker stop --all-hosts`): a stop request stored
 * in the database, which every worker registered before it reads at its next sweep (about a
 * second) and obeys as it would a signal. Waits until they are gone. Forced (at once, or after
 * the timeout), a local worker that does not answer within FORCE_GRACE_MS is killed as
 * `stopWorkers` kills it. One on another host that does not beat cannot be waited for or
 * killed, and is reported at once instead: its jobs come back when their leases expire, by the
 * database's clock, and it obeys the stored request if it comes back.
 */
export async function stopAllHosts(queue: Queue, options: StopOptions): Promise<StopReport> {
  const workers = (await queue.workers()).filter((w) => w.liveness.health !== "gone");
  if (workers.length === 0) return { stopped: [], forced: false, killed: [], unreachable: [] };
  const started = performance.now();
  let forcedAt = options.force ? started : null;
  await queue.requestStop(options.force ? "force" : "graceful");
  const killed: JudgedWorker[] = [];
  const unreachable: JudgedWorker[] = [];
  let progressAt = started + PROGRESS_AFTER_MS;
  let last = workers;
  for (;;) {
    const fresh = new Map(
      (await queue.workers()).filter((w) => w.liveness.health !== "gone").map((w) => [
        w.worker.id,
        w,
      ]),
    );
    const left = workers.flatMap((w) => {
      const now = fresh.get(w.worker.id);
      return now === undefined || unreachable.some((u) => u.worker.id === w.worker.id) ? [] : [now];
    });
    last = workers.map((w) => fresh.get(w.worker.id) ?? w);
    if (left.length === 0) break;
    const now = performance.now();
    if (
      forcedAt === null && options.timeoutMs !== undefined && now - started >= options.timeoutMs
    ) {
      forcedAt = now;
      options.note(`waited ${formatDuration(options.timeoutMs)}; killing the running jobs`);
      await queue.requestStop("force");
    }
    // A worker on another host that does not beat (down, cut off) cannot be waited for, nor
    // killed from here; the request stays stored, so it stops if it comes back.
    for (const w of left) {
      if (w.liveness.local || w.liveness.health === "ok") continue;
      options.note(
        `${workerName(w.worker)} on ${w.worker.host} ${w.liveness.problem}; not waiting for ` +
          `it: its jobs are recovered when their leases expire, and it stops if it comes back`,
      );
      unreachable.push(w);
    }
    if (forcedAt !== null && now - forcedAt >= FORCE_GRACE_MS) {
      for (const w of left) {
        if (w.liveness.health === "ok" || killed.includes(w) || unreachable.includes(w)) continue;
        if (w.liveness.local) {
          options.note(
            `${workerName(w.worker)} ${w.liveness.problem}; killing it, then recovering its jobs`,
          );
          send(w.worker.pid, "SIGKILL");
          killed.push(w);
        } else {
          options.note(
            `${workerName(w.worker)} on ${w.worker.host} ${w.liveness.problem}; not waiting ` +
              `for it: its jobs are recovered when their leases expire`,
          );
          unreachable.push(w);
        }
      }
    }
    if (now >= progressAt) {
      progressAt = now + PROGRESS_EVERY_MS;
      const hosts = new Set(left.map((w) => w.worker.host));
      options.note(
        `waiting for ${left.length} worker${left.length === 1 ? "" : "s"} on ${hosts.size} ` +
          `host${hosts.size === 1 ? "" : "s"} to stop${
            forcedAt === null ? " after their running jobs (`--force` kills the jobs)" : ""
          }:`,
      );
      for (const line of problemLines(left)) options.note(`  ${line}`);
      for (const w of left) {
        if (w.liveness.problem !== null) continue;
        const jobs = w.worker.runningJobs;
        options.note(
          `  ${workerName(w.worker)} on ${w.worker.host}: ${
            jobs.length === 0 ? "stopping" : `finishing job${jobs.length === 1 ? "" : "s"} ${jobs}`
          }`,
        );
      }
    }
    await sleep(100);
  }
  if (killed.length > 0) await recover(queue, killed, options);
  const ids = (list: readonly JudgedWorker[]) => new Set(list.map((w) => w.worker.id));
  const gone = ids(unreachable);
  return {
    stopped: last.filter((w) => !gone.has(w.worker.id)),
    forced: forcedAt !== null,
    killed: last.filter((w) => ids(killed).has(w.worker.id)),
    unreachable: last.filter((w) => gone.has(w.worker.id)),
  };
}
