/**
 * Waiting in tests: poll a condition or race a promise, always with a bound, and fail saying what
 * was awaited. Tests never sleep to wait for something they can poll for.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Bound for things that take milliseconds, generous for a loaded 2-core machine. */
export const PROMPT_MS = 10_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface PollOptions {
  /** Pause between two probes; default 20 ms. */
  intervalMs?: number;
  /** Adds the last state seen to the failure message. */
  describe?: () => string;
}

/**
 * Calls `probe` until it returns something other than undefined, null or false, and returns
 * that (so 0 and "" count as an answer); fails after `timeoutMs` saying what was awaited.
 */
export async function poll<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs: number,
  what: string,
  options: PollOptions = {},
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (performance.now() > deadline) {
      const seen = options.describe ? `: ${options.describe()}` : "";
      assert.fail(`Timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
    }
    await sleep(options.intervalMs ?? 20);
  }
}

/** Resolves with the promise's value, or fails after `timeoutMs` saying what was awaited. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new assert.AssertionError({
            message: `Timed out after ${timeoutMs} ms waiting for ${what}`,
          }),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
