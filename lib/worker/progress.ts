/**
 * What a worker records about its running attempts while they run, on one worker-level tick
 * rather than timers per job: output saved about every half second (so `logs --follow` and other
 * hosts can read it), and the job's process recorded once it has run a moment (a quick job ends
 * before that matters; until then recovery finds its processes by their environment marker).
 * Each kind of record is one batched transaction per tick.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { QueuectlError, StoreBusyError } from "../errors.ts";
import type { AttemptOutputParams, AttemptProcessParams, Store } from "../store/store.ts";
import type { RunningAttempt } from "./attempt.ts";
import { processStartTime } from "./process.ts";

/** How often output of a running attempt is saved. */
export const OUTPUT_SAVE_MS = 500;
/** A job running this long gets its process recorded. */
export const PID_RECORD_DELAY_MS = 100;

export interface ProgressOptions {
  store: Store;
  clock: Clock;
  trouble: (key: string, error: QueuectlError, message: string) => void;
}

export class ProgressRecorder {
  readonly #o: ProgressOptions;
  #busy = false;

  constructor(options: ProgressOptions) {
    this.#o = options;
  }

  /** Records what is due for `attempts`; skips a tick while the previous one is still writing. */
  async tick(attempts: Iterable<RunningAttempt>): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const now = this.#o.clock.monotonic();
      const pids: AttemptProcessParams[] = [];
      const outputs: AttemptOutputParams[] = [];
      for (const a of attempts) {
        if (a.result !== null || a.leaseLost !== null) continue;
        if (!a.pidRecorded && a.pid !== null && now - a.startedMono >= PID_RECORD_DELAY_MS) {
          a.pidRecorded = true;
          pids.push({ ...a.ref, pid: a.pid, pidStart: processStartTime(a.pid) });
        }
        if (a.dirty && now - a.savedMono >= OUTPUT_SAVE_MS) {
          const output = a.output();
          if (output) {
            a.savedMono = now;
            outputs.push({ ...a.ref, ...output });
          }
        }
      }
      // Best effort: a failed save is tried again with the next output, and the final output is
      // saved with the outcome anyway.
      if (pids.length) await this.#o.store.attemptSetProcess(pids).catch(this.#report("pids"));
      if (outputs.length) {
        await this.#o.store.attemptSaveOutput(outputs).catch(this.#report("output"));
      }
    } finally {
      this.#busy = false;
    }
  }

  #report(what: string): (error: unknown) => void {
    return (error) => {
      if (!(error instanceof QueuectlError)) throw error;
      // Lock contention only delays a record that the next tick (or the outcome) writes anyway;
      // lasting contention shows in the heartbeat's log line.
      if (error instanceof StoreBusyError) return;
      this.#o.trouble(what, error, `saving ${what}: ${error.message}`);
    };
  }
}
