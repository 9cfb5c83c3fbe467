/**
 * Keeping a worker's leases: one heartbeat every sixth of the lease renews the worker's liveness
 * and the leases of all its running attempts in one transaction, and stores its totals.
 *
 * A worker that cannot renew must stop its jobs before anyone else may take them. It measures, on
 * its own monotonic clock from the moment it *sent* its last renewal that succeeded, how long the
 * lease has surely lasted; once that is within a margin of the lease, it kills the attempt and
 * logs `lease lost`. A renewal that comes back lost (another worker recovered the job) kills it at
 * once.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { QueuectlError } from "../errors.ts";
import type { Store } from "../store/store.ts";
import type { RunningAttempt } from "./attempt.ts";

/** A worker's running totals, stored with every heartbeat. */
export interface WorkerTotals {
  jobsDone: number;
  jobsFailed: number;
  busyMs: number;
}

export interface LeaseKeeperOptions {
  store: Store;
  workerId: string;
  clock: Clock;
  /** Reports a store call that failed (throttled by the caller). */
  trouble: (key: string, error: QueuectlError, message: string) => void;
  /** Told at once when an attempt is killed for its lease (before anything is written). */
  onLost: (attempt: RunningAttempt) => void;
  /** Told of a cancel request a renewal returned, for an attempt still running. */
  onCancel?: (attempt: RunningAttempt, reason: string) => void;
  /** Kill this long before the lease could run out (default: 1 s, at most a tenth of the lease). */
  marginMs?: number;
}

export class LeaseKeeper {
  readonly #o: LeaseKeeperOptions;
  #beating = false;

  constructor(options: LeaseKeeperOptions) {
    this.#o = options;
  }

  /** Kills the attempts whose lease may run out before a renewal could land. */
  fence(attempts: Iterable<RunningAttempt>): void {
    const now = this.#o.clock.monotonic();
    for (const attempt of attempts) {
      if (attempt.leaseLost !== null || attempt.result !== null) continue;
      const margin = this.#o.marginMs ?? Math.min(1000, attempt.leaseMs / 10);
      if (now - attempt.renewSentMono >= attempt.leaseMs - margin) {
        this.#lose(attempt, "could not renew it in time");
      }
    }
  }

  /**
   * One heartbeat: fences first (a heartbeat still in flight may never return), then renews.
   * Returns false when the store could not be reached.
   */
  async beat(attempts: readonly RunningAttempt[], totals: WorkerTotals): Promise<boolean> {
    this.fence(attempts);
    if (this.#beating) return true;
    this.#beating = true;
    const live = attempts.filter((a) => a.leaseLost === null && a.result === null);
    const sent = this.#o.clock.monotonic();
    try {
      const { lost, cancel } = await this.#o.store.workerHeartbeat({
        id: this.#o.workerId,
        leases: live.map((a) => ({ ...a.ref, leaseMs: a.leaseMs })),
        totals,
      });
      const gone = new Set(lost.map((ref) => `${ref.jobId}\0${ref.attempt}`));
      for (const attempt of live) {
        if (gone.has(`${attempt.ref.jobId}\0${attempt.ref.attempt}`)) {
          this.#lose(attempt, "another worker recovered it");
        } else {
          attempt.renewSentMono = sent;
        }
      }
      for (const request of cancel) {
        const attempt = live.find((a) =>
          a.ref.jobId === request.jobId && a.ref.attempt === request.attempt
        );
        if (attempt) this.#o.onCancel?.(attempt, request.reason);
      }
      return true;
    } catch (error) {
      if (!(error instanceof QueuectlError)) throw error;
      this.#o.trouble("heartbeat", error, `heartbeat: ${error.message}`);
      this.fence(attempts);
      return false;
    } finally {
      this.#beating = false;
    }
  }

  #lose(attempt: RunningAttempt, why: string): void {
    if (attempt.loseLease(why)) this.#o.onLost(attempt);
  }
}
