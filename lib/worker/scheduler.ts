/**
 * A worker's scheduler: enqueues the occurrences of recurring jobs (lib/schedule/) when they
 * are due. Every worker runs one, on every host; each occurrence is enqueued once all the same,
 * because the store fires it with a compare-and-swap of the schedule's next fire time in the same
 * transaction as the enqueue (`Store.scheduleFire`): the schedulers that lose the race change
 * nothing.
 *
 * It never polls in a loop: it sleeps in the store's wait primitive until the next fire time (by
 * the store's clock) or a change that may bring one sooner (a schedule added or resumed), at most
 * `RECHECK_MS`. Other commits wake it too where the store cannot tell them apart (SQLite); it then
 * looks at most every `SETTLE_MS`, one indexed read of a small table. croner loads only when a
 * cron schedule fires (spec.ts).
 *
 * After downtime a schedule fires once for what it missed (`advance` in spec.ts), and the
 * log line says how many occurrences that one stands for, when it can tell.
 *
 * @module
 */

import { isTransient, QueuectlError } from "../errors.ts";
import { JobInputError } from "../job/input.ts";
import type { NewJob } from "../job/job.ts";
import { advance, CATCH_UP_MS } from "../schedule/spec.ts";
import { occurrenceJob } from "../schedule/template.ts";
import type { ScheduleRecord, Store } from "../store/store.ts";
import { formatDuration, iso } from "../time.ts";

/** The longest sleep: clock steps and missed changes are caught this often. */
const RECHECK_MS = 60_000;
/** Woken by a change, the scheduler looks again no sooner than this after its last look. */
const SETTLE_MS = 250;
/** Due schedules read per round. */
const DUE_BATCH = 50;
/** A schedule that cannot fire (its template no longer validates) is tried again after this. */
const BROKEN_RETRY_MS = 60_000;

export interface SchedulerOptions {
  store: Store;
  log: (line: string) => void;
  /** `max_retries` of jobs whose template leaves it out (the `max-retries` setting). */
  defaultMaxRetries: () => number;
  /** Monotonic milliseconds (the worker's clock). */
  monotonic: () => number;
  /**
   * Told of each job this scheduler enqueued: its own commits may not wake the worker's wait
   * (a store need not report a connection's own writes).
   */
  onEnqueued?: () => void;
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #abort = new AbortController();
  /** Schedules that could not fire, and when to try them again (monotonic). */
  readonly #broken = new Map<string, number>();
  #lastLog = new Map<string, number>();

  constructor(options: SchedulerOptions) {
    this.#o = options;
  }

  /** Stops `run()` at once (a sleep ends; a fire in flight completes or rolls back). */
  stop(): void {
    this.#abort.abort();
  }

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /**
   * Fires every schedule that is due; how long until the next one is (null: none will), or 0
   * when there may be more to fire at once.
   */
  async pass(): Promise<number | null> {
    const { store } = this.#o;
    for (let round = 0; round < 100 && !this.#stopped; round++) {
      const result = await store.scheduleDue({ limit: DUE_BATCH + this.#broken.size });
      const now = this.#o.monotonic();
      const due = result.due.filter((s) => (this.#broken.get(s.name) ?? -Infinity) <= now);
      if (due.length === 0) {
        // Only broken ones are due: look again when the first may be fixed.
        const brokenWait = result.due.length > 0
          ? Math.max(0, Math.min(...this.#broken.values()) - now)
          : Infinity;
        const next = Math.min(result.nextDueInMs ?? Infinity, brokenWait);
        return result.due.length > 0 ? Math.max(next, SETTLE_MS) : result.nextDueInMs;
      }
      for (const schedule of due) {
        if (this.#stopped) return 0;
        await this.#fire(schedule, result.now);
      }
    }
    return 0;
  }

  async #fire(schedule: ScheduleRecord, now: number): Promise<void> {
    const fireAt = schedule.nextAt!;
    let nextAt: number | null;
    let job: NewJob;
    try {
      nextAt = await advance(schedule.spec, schedule.anchor, fireAt, now);
      job = occurrenceJob(schedule.template, { name: schedule.name, fireAt, now });
    } catch (error) {
      if (!(error instanceof JobInputError) && !(error instanceof RangeError)) throw error;
      this.#broken.set(schedule.name, this.#o.monotonic() + BROKEN_RETRY_MS);
      this.#logThrottled(
        `broken:${schedule.name}`,
        `schedule ${schedule.name}: cannot fire: ${error.message}; trying again in a minute ` +
          "(fix it with `queuectl schedule remove` and `schedule add`)",
      );
      return;
    }
    this.#broken.delete(schedule.name);
    const result = await this.#o.store.scheduleFire({
      name: schedule.name,
      fireAt,
      nextAt,
      job,
      defaultMaxRetries: this.#o.defaultMaxRetries(),
    });
    if (!result.fired) return;
    this.#o.onEnqueued?.();
    const missed = schedule.spec.kind === "every"
      ? Math.floor((now - fireAt) / schedule.spec.everyMs)
      : 0;
    const late = now - fireAt <= CATCH_UP_MS
      ? ""
      : missed > 0
      ? ` (${missed + 1} occurrences came while no worker ran; enqueued once)`
      : ` (due since ${formatDuration(now - fireAt)} ago, while no worker ran)`;
    this.#o.log(
      `schedule ${schedule.name}: enqueued job ${result.job!.id} for ${iso(fireAt)}${late}`,
    );
  }

  /** Runs until `stop()`: fires what is due, then sleeps until the next fire time or a change. */
  async run(): Promise<void> {
    const { store } = this.#o;
    const signal = this.#abort.signal;
    while (!this.#stopped) {
      const mark = store.changeMark();
      const looked = this.#o.monotonic();
      let wait: number;
      try {
        wait = Math.min((await this.pass()) ?? Infinity, RECHECK_MS);
      } catch (error) {
        if (error instanceof QueuectlError) {
          this.#logThrottled("store", `scheduler: ${error.message}; trying again`);
          wait = isTransient(error) ? 1000 : 5000;
        } else {
          this.#logThrottled(
            "internal",
            `scheduler: internal error: ${error instanceof Error ? error.message : error}`,
          );
          wait = 5000;
        }
        await sleep(wait, signal);
        continue;
      }
      if (wait <= 0 || this.#stopped) continue;
      const changed = await store.waitForChange({
        since: mark,
        timeoutMs: wait,
        signal,
        interest: "work",
      });
      if (changed) {
        // Many commits in a row (a drain) wake this as often: look at most every SETTLE_MS.
        const elapsed = this.#o.monotonic() - looked;
        await sleep(Math.min(SETTLE_MS - elapsed, wait - elapsed), signal);
      }
    }
  }

  #logThrottled(key: string, message: string): void {
    const now = this.#o.monotonic();
    if ((this.#lastLog.get(key) ?? -Infinity) + 10_000 > now) return;
    this.#lastLog.set(key, now);
    this.#o.log(message);
  }
}

/** Sleeps `ms` (nothing when not positive), ending early when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
