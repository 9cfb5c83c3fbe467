/**
 * Runs one attempt of a job: `sh -c COMMAND` as the leader of its own process group, output
 * captured within bounds while it runs, the time limit enforced on the whole group, and leftovers
 * of the group killed when the shell exits. Never throws because a job failed: how it ended is
 * returned as data.
 *
 * @module
 */

import type { RunResult } from "../job/outcome.ts";
import type { OutputCapture } from "../store/store.ts";
import { OutputBuffer } from "./output.ts";
import type { JobProcess, Spawner } from "./spawn.ts";
import { SpawnError } from "./spawn.ts";

/** Time from SIGTERM to SIGKILL when a job's time limit passes. */
export const KILL_GRACE_MS = 5000;
/** How long to keep reading output after the shell exited and its group was killed. */
const DRAIN_MS = 1000;

export interface ExecuteOptions {
  command: string;
  cwd: string;
  env: Record<string, string>;
  /** A base environment shared by every attempt of the worker (see `SpawnOptions.envBase`). */
  envBase?: Readonly<Record<string, string>>;
  /** 0 = no limit. */
  timeoutMs: number;
  outputLimit: number;
  spawner: Spawner;
  /** Aborting kills the job's group at once; the reason becomes the result (`interrupted`). */
  signal?: AbortSignal;
  /**
   * Aborting cancels the job: SIGTERM to its group, SIGKILL after the grace; the result is
   * `cancelled` with the abort's reason (unless `signal` ended it first).
   */
  cancelSignal?: AbortSignal;
  killGraceMs?: number;
  /** Called once the process exists (to record its pid). */
  onSpawn?: (process: JobProcess) => void;
}

export interface Execution {
  /** Snapshot of the output so far, for saving while the job runs. */
  output(): { stdout: OutputCapture; stderr: OutputCapture } | null;
  /** Whether output arrived since the last `output()`. */
  readonly dirty: boolean;
  readonly done: Promise<ExecutionResult>;
}

export interface ExecutionResult {
  result: RunResult;
  stdout: OutputCapture;
  stderr: OutputCapture;
  durationMs: number;
}

/** Starts the attempt; `done` resolves with how it ended. */
export function execute(options: ExecuteOptions): Execution {
  const stdout = new OutputBuffer(options.outputLimit);
  const stderr = new OutputBuffer(options.outputLimit);
  const started = performance.now();
  const done = run(options, stdout, stderr).then((result) => ({
    result,
    stdout: stdout.snapshot(),
    stderr: stderr.snapshot(),
    durationMs: performance.now() - started,
  }));
  return {
    output: () => ({ stdout: stdout.snapshot(), stderr: stderr.snapshot() }),
    get dirty() {
      return stdout.dirty || stderr.dirty;
    },
    done,
  };
}

async function run(
  options: ExecuteOptions,
  stdout: OutputBuffer,
  stderr: OutputBuffer,
): Promise<RunResult> {
  if (options.signal?.aborted) return interrupted(options.signal);
  let child: JobProcess;
  try {
    child = options.spawner.spawn({
      command: options.command,
      cwd: options.cwd,
      env: options.env,
      ...(options.envBase === undefined ? {} : { envBase: options.envBase }),
      onStdout: (chunk) => stdout.write(chunk),
      onStderr: (chunk) => stderr.write(chunk),
    });
  } catch (error) {
    if (error instanceof SpawnError) return { kind: "spawn_failed", error: error.message };
    return { kind: "spawn_failed", error: error instanceof Error ? error.message : String(error) };
  }
  options.onSpawn?.(child);

  const grace = options.killGraceMs ?? KILL_GRACE_MS;
  let timedOut: { signal: string } | null = null;
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (options.timeoutMs > 0) {
    timers.push(setTimeout(() => {
      timedOut = { signal: "SIGTERM" };
      child.killGroup("SIGTERM");
      timers.push(setTimeout(() => {
        timedOut = { signal: "SIGKILL" };
        child.killGroup("SIGKILL");
      }, grace));
    }, options.timeoutMs));
  }
  const onAbort = () => child.killGroup("SIGKILL");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let cancelled: { signal: string } | null = null;
  const onCancel = () => {
    cancelled = { signal: "SIGTERM" };
    child.killGroup("SIGTERM");
    timers.push(setTimeout(() => {
      cancelled = { signal: "SIGKILL" };
      child.killGroup("SIGKILL");
    }, grace));
  };
  if (options.cancelSignal?.aborted) onCancel();
  else options.cancelSignal?.addEventListener("abort", onCancel, { once: true });

  let status;
  try {
    status = await child.exited;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    options.cancelSignal?.removeEventListener("abort", onCancel);
  }
  // The shell is gone; whatever it left behind in its group goes too (a background `sleep`
  // would otherwise hold the pipes open and outlive the attempt).
  child.killGroup("SIGKILL");
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    // A failed stream was abandoned by the spawner; what was captured so far is kept.
    child.outputDone.catch(() => {}),
    new Promise((resolve) => drainTimer = setTimeout(resolve, DRAIN_MS)),
  ]);
  clearTimeout(drainTimer);
  child.closeOutput();

  // An abort interrupts the attempt only if it is what ended the shell. A shell that exited by
  // itself (a code, or a signal other than the abort's SIGKILL) had finished before the abort
  // could act, for instance while its worker was stopped and the stop request waited with the
  // exit status: that status is the outcome, and the job must not run again.
  if (options.signal?.aborted && status.code === null && status.signal === "SIGKILL") {
    return interrupted(options.signal);
  }
  if (cancelled !== null) {
    // Whatever the shell made of the signals: the user asked for it to stop.
    const { signal } = cancelled as { signal: string };
    const reason = options.cancelSignal?.reason;
    return {
      kind: "cancelled",
      error: `cancelled${typeof reason === "string" && reason !== "" ? `: ${reason}` : ""}`,
      signal,
    };
  }
  if (timedOut !== null) {
    const { signal } = timedOut as { signal: string };
    return { kind: "timeout", afterMs: options.timeoutMs, signal };
  }
  if (status.code !== null) return { kind: "exited", code: status.code };
  return { kind: "signaled", signal: String(status.signal) };
}

function interrupted(signal: AbortSignal): RunResult {
  const reason = signal.reason;
  return { kind: "interrupted", error: typeof reason === "string" ? reason : "interrupted" };
}
