/**
 * The only place that reads the clocks. Everything that stores or compares a time takes a
 * `Clock`, so tests can move time instead of sleeping.
 *
 * @module
 */

import type { TestHooks } from "./test_hooks.ts";

export interface Clock {
  /** Wall-clock time: milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Milliseconds on a clock that only goes forward (never stepped by NTP or a user), for what a
   * process measures on its own: how long since it renewed a lease, how long a job ran.
   */
  monotonic(): number;
}

/** The system clock; the test hook `QUEUECTL_TEST_CLOCK_OFFSET_MS` shifts its wall-clock time. */
export function systemClock(hooks?: TestHooks): Clock {
  const offset = hooks?.clockOffsetMs ?? 0;
  const monotonic = () => performance.now();
  if (offset === 0) return { now: () => Date.now(), monotonic };
  return { now: () => Date.now() + offset, monotonic };
}

/** A clock that moves only when told to; both of its readings move together. */
export class FakeClock implements Clock {
  #now: number;
  #monotonic = 0;
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  monotonic(): number {
    return this.#monotonic;
  }
  advance(ms: number): void {
    this.#now += ms;
    this.#monotonic += ms;
  }
  /** Sets the wall-clock time (a clock step: the monotonic reading does not move). */
  set(ms: number): void {
    this.#now = ms;
  }
}
