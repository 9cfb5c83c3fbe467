/**
 * The one way tests turn on queuectl's test hooks in a process they start: `hookEnv()` builds the
 * environment that lib/test_hooks.ts reads (the only module that reads it). Fault points are the
 * typed union of lib/fault.ts, so a misspelt point fails the type check instead of never firing.
 *
 * @module
 */

import type { FaultPoint } from "../../lib/fault.ts";

export type { FaultPoint };

/** Which hooks a process gets; an empty object turns the hooks on with none set. */
export interface TestHooks {
  /** `QUEUECTL_FAULT`: the process SIGKILLs itself on reaching this point. */
  fault?: FaultPoint;
  /** `QUEUECTL_TEST_CLOCK_OFFSET_MS`: every wall-clock reading is shifted by this much. */
  clockOffsetMs?: number;
  /** `QUEUECTL_TEST_HOUSEKEEPING_MS`: worker housekeeping this often instead of once a minute. */
  housekeepingMs?: number;
  /** `QUEUECTL_TEST_NO_NOTIFY`: waits ignore file notifications (the safety poll alone). */
  noNotify?: boolean;
}

/** The environment variables that turn on `hooks` (QUEUECTL_TEST=1 and one per hook set). */
export function hookEnv(hooks: TestHooks = {}): Record<string, string> {
  const env: Record<string, string> = { QUEUECTL_TEST: "1" };
  if (hooks.fault !== undefined) env.QUEUECTL_FAULT = hooks.fault;
  if (hooks.clockOffsetMs !== undefined) {
    env.QUEUECTL_TEST_CLOCK_OFFSET_MS = String(hooks.clockOffsetMs);
  }
  if (hooks.housekeepingMs !== undefined) {
    env.QUEUECTL_TEST_HOUSEKEEPING_MS = String(hooks.housekeepingMs);
  }
  if (hooks.noNotify) env.QUEUECTL_TEST_NO_NOTIFY = "1";
  return env;
}
