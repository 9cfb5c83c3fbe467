/**
 * Fault injection for the reliability suite: with the test hook `QUEUECTL_FAULT=<point>`
 * (lib/test_hooks.ts), the process kills itself with SIGKILL when it reaches that point. Every
 * store fires the same points, so a scenario runs unchanged on each.
 *
 * @module
 */

import type { TestHooks } from "./test_hooks.ts";

/** Outcome transitions and user operations whose commit is a fault point. */
export type Committed =
  | "enqueue"
  | "claim"
  | "arm"
  | "complete"
  | "retry"
  | "bury"
  | "interrupt"
  | "dlq-retry"
  | "cancel"
  | "cancelRunning"
  /** A schedule's occurrence enqueued (lib/worker/scheduler.ts). */
  | "schedule";

/** Every point a fault can be injected at. */
export type FaultPoint =
  | `${Committed}:before-commit`
  | `${Committed}:after-commit`
  | "enqueue:after-commit-before-print"
  | "run:after-spawn"
  /** A worker saw a cancel request on a running job and has not killed it yet. */
  | "cancel:seen";

export type FaultHook = (point: FaultPoint) => void;

/** The hook for this process, or `undefined` outside tests (the usual case: zero cost). */
export function faultHook(hooks: TestHooks): FaultHook | undefined {
  const target = hooks.fault;
  if (target === undefined) return undefined;
  return (point) => {
    if (point === target) Deno.kill(Deno.pid, "SIGKILL");
  };
}
