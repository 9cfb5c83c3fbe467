/**
 * Fault injection for the reliability suite: with `QUEUECTL_TEST=1` and `QUEUECTL_FAULT=<point>`,
 * the process kills itself with SIGKILL when it reaches that point. Points: enqueue:before-commit,
 * enqueue:after-commit, enqueue:after-commit-before-print, claim:after-commit, run:after-spawn,
 * and before-commit / after-commit of each outcome transition (complete, retry, bury,
 * interrupt) and of dlq-retry.
 *
 * @module
 */

export type FaultHook = (point: string) => void;

/** The hook for this process, or `undefined` outside tests (the usual case: zero cost). */
export function faultHook(env: (name: string) => string | undefined): FaultHook | undefined {
  if (env("QUEUECTL_TEST") !== "1") return undefined;
  const target = env("QUEUECTL_FAULT");
  if (!target) return undefined;
  return (point) => {
    if (point === target) Deno.kill(Deno.pid, "SIGKILL");
  };
}
