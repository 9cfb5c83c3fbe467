/**
 * The test hooks, read in one place. They exist only when `QUEUECTL_TEST=1`, so a user's
 * environment can never turn one on by accident; each costs nothing otherwise.
 *
 * - `QUEUECTL_TEST_CLOCK_OFFSET_MS=N`: every wall-clock reading of this process is shifted by N
 *   ms (clocks that disagree between processes; lib/clock.ts).
 * - `QUEUECTL_FAULT=<point>`: the process kills itself with SIGKILL at that point (lib/fault.ts).
 * - `QUEUECTL_TEST_HOUSEKEEPING_MS=N`: worker housekeeping every N ms instead of about a minute.
 * - `QUEUECTL_TEST_NO_NOTIFY=1`: waits ignore file notifications, as on a file system without
 *   them (the safety poll alone must find changes).
 *
 * @module
 */

export interface TestHooks {
  clockOffsetMs: number;
  fault: string | undefined;
  housekeepingMs: number | undefined;
  ignoreNotifications: boolean;
}

const NONE: TestHooks = {
  clockOffsetMs: 0,
  fault: undefined,
  housekeepingMs: undefined,
  ignoreNotifications: false,
};

function positive(text: string | undefined): number | undefined {
  const n = Number(text);
  return text !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** The hooks this environment sets (none unless QUEUECTL_TEST=1). */
export function testHooks(env: (name: string) => string | undefined): TestHooks {
  if (env("QUEUECTL_TEST") !== "1") return NONE;
  const offset = Number(env("QUEUECTL_TEST_CLOCK_OFFSET_MS") ?? 0);
  return {
    clockOffsetMs: Number.isFinite(offset) ? offset : 0,
    fault: env("QUEUECTL_FAULT") || undefined,
    housekeepingMs: positive(env("QUEUECTL_TEST_HOUSEKEEPING_MS")),
    ignoreNotifications: env("QUEUECTL_TEST_NO_NOTIFY") === "1",
  };
}
