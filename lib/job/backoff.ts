/**
 * When a failed job runs again.
 *
 * @module
 */

export interface BackoffOptions {
  /** Seconds are `base ** attempt`. */
  base: number;
  /** Upper bound of the delay, in milliseconds. */
  maxMs: number;
}

/**
 * Delay before the retry that follows attempt `attempt` (1-based):
 * `min(backoff-max, backoff-base ^ attempt)` seconds, in whole milliseconds. No jitter: users can predict it, and a local
 * queue has no fleet of clients to spread out.
 */
export function retryDelayMs(attempt: number, options: BackoffOptions): number {
  const seconds = Math.pow(options.base, attempt);
  // Infinity and huge powers are capped too; the multiplication below cannot overflow after min().
  return Math.round(Math.min(options.maxMs, Number.isFinite(seconds) ? seconds * 1000 : Infinity));
}
