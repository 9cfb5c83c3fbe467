/**
 * The only place that reads the wall clock. Everything that stores or compares a time takes a
 * `Clock`, so tests can move time instead of sleeping.
 *
 * @module
 */

/** Milliseconds since the Unix epoch. */
export interface Clock {
  now(): number;
}

/**
 * The system clock. With `QUEUECTL_TEST=1`, `QUEUECTL_TEST_CLOCK_OFFSET_MS` shifts every reading,
 * which the reliability suite uses to simulate clocks that disagree between processes.
 */
export function systemClock(env: (name: string) => string | undefined): Clock {
  const offset = env("QUEUECTL_TEST") === "1"
    ? Number(env("QUEUECTL_TEST_CLOCK_OFFSET_MS") ?? 0)
    : 0;
  if (!Number.isFinite(offset) || offset === 0) return { now: () => Date.now() };
  return { now: () => Date.now() + offset };
}

/** A clock that moves only when told to. */
export class FakeClock implements Clock {
  #now: number;
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}
