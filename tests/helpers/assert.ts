/**
 * The few assertions the tests need. @std/assert lives on JSR, which this
 * project cannot reach.
 *
 * @module
 */

export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(condition: unknown, message = "Assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    throw new AssertionError(`${message ?? "Values differ"}:\n  actual:   ${a}\n  expected: ${e}`);
  }
}

/** Returns the error thrown by fn, which must be an instance of ErrorClass. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any -- any constructor signature is accepted
  ErrorClass: new (...args: any[]) => E,
): E {
  try {
    fn();
  } catch (error: unknown) {
    if (error instanceof ErrorClass) return error;
    throw new AssertionError(`Expected ${ErrorClass.name}, got: ${String(error)}`);
  }
  throw new AssertionError(`Expected ${ErrorClass.name} to be thrown`);
}

/** Resolves with the promise's value, or rejects after timeoutMs saying what was awaited. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AssertionError(`Timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls condition every few ms until it holds; fails after timeoutMs. */
export async function waitFor(
  condition: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) {
      throw new AssertionError(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
