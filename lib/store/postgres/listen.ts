/**
 * `changeMark()` and `waitForChange()` of the PostgreSQL store: LISTEN/NOTIFY as the hint, a
 * safety poll as the truth.
 *
 * Writers announce changes on the queue's channel (one per schema) with a payload of `work`
 * (a job may have become due: enqueue, DLQ retry, a job handed back) or `change` (anything else a
 * waiter may care about: an outcome, output). An enqueue and a DLQ retry notify inside their
 * transaction, so a listener hears of the job the moment it is committed. Other writes notify
 * after their commit, debounced (`Notifier`): at most one NOTIFY per store per 25 ms, the last one
 * always sent, so that a busy worker does not serialise its commits on PostgreSQL's notification
 * queue lock. No trigger sends them.
 *
 * The waiting side (`ChangeWatcher`) keeps a local count of the changes it has heard of: a mark is
 * that count. Idle waiters need not fear a lost notification, because:
 * - the LISTEN connection is opened on the first wait, and counts as a change once it listens (a
 *   commit between the caller's read and the LISTEN would otherwise go unheard); so does every
 *   reconnect of it (the server restarted, a pooler cut it), and a health check replaces a
 *   connection that stopped answering;
 * - while anyone waits, a safety poll reads the server's transaction snapshot (queries.ts,
 *   SNAPSHOT), which changes whenever any transaction ends: every 2 s while listening works,
 *   every second without it (`listen=off`, for PgBouncer in transaction mode, or while the
 *   listener is down). A change no notification announced is seen within that.
 *
 * @module
 */

import type { PgPool, PgTarget, SessionLimits } from "./connect.ts";
import { createPool } from "./connect.ts";
import { PING } from "./queries.ts";

/** What a notification says changed. */
export type ChangeKind = "work" | "change";

/** The channel of a schema's queue (at most 63 bytes, an identifier's limit). */
export function channelName(schema: string): string {
  const plain = `queuectl_${schema}`;
  if (plain.length <= 63) return plain;
  let hash = 0;
  for (const c of schema) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `queuectl_${schema.slice(0, 44)}_${hash.toString(16).padStart(8, "0")}`;
}

/** Runs `promise`, rejecting after `ms` (and calling `onTimeout`) if it has not settled. */
export function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

export interface NotifierOptions {
  /** Sends one notification (a statement on the store's pool, with its deadline). */
  send: (kind: ChangeKind) => Promise<void>;
  /** At most one notification per this window (default 25 ms); the last one is always sent. */
  windowMs?: number;
}

/** Debounced notifications after commits (see the module doc). */
export class Notifier {
  readonly #o: NotifierOptions;
  #lastSent = -Infinity;
  #pending: ChangeKind | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = new Set<Promise<void>>();

  constructor(options: NotifierOptions) {
    this.#o = options;
  }

  /** Announces a committed change: now, or at the end of the window (`work` wins). */
  changed(kind: ChangeKind): void {
    this.#pending = this.#pending === "work" ? "work" : kind;
    if (this.#timer !== undefined) return;
    const wait = this.#lastSent + (this.#o.windowMs ?? 25) - performance.now();
    if (wait <= 0) this.#send();
    else this.#timer = setTimeout(() => this.#send(), wait);
  }

  /** The store sent one inside a transaction (enqueue): it counts for the window. */
  sentInTransaction(): void {
    this.#lastSent = performance.now();
  }

  #send(): void {
    this.#timer = undefined;
    const kind = this.#pending;
    this.#pending = null;
    if (kind === null) return;
    this.#lastSent = performance.now();
    // Best effort: a lost notification only delays waiters until their safety poll.
    const sending = this.#o.send(kind).catch(() => {});
    this.#inFlight.add(sending);
    sending.finally(() => this.#inFlight.delete(sending));
  }

  /**
   * Sends what is pending now and waits for what is in flight (before closing the pool), a
   * second at most: a server that does not answer must not hold up a process that is leaving.
   */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#send();
    if (this.#inFlight.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.#inFlight]),
      new Promise((resolve) => timer = setTimeout(resolve, 1000)),
    ]);
    clearTimeout(timer);
  }
}

export interface ChangeWatcherOptions {
  target: PgTarget;
  limits: SessionLimits;
  channel: string;
  /** Reads the server's snapshot through the store's pool (queries.ts SNAPSHOT). */
  snapshot: () => Promise<string>;
  /** Open a LISTEN connection (false: `listen=off`, poll only). */
  listen: boolean;
  /** Safety poll while listening works (default 2000 ms) and while it does not (1000 ms). */
  safetyPollMs?: { listening: number; polling: number };
  /** How often the LISTEN connection must answer a ping (default 30 s). */
  healthCheckMs?: number;
  /** Tests only: notifications are received but ignored, as if every one were lost. */
  ignoreNotifications?: boolean;
}

interface Waiter {
  since: number;
  interest: "work" | "any";
  settle(changed: boolean): void;
}

export class ChangeWatcher {
  readonly #o: ChangeWatcherOptions;
  readonly #waiters = new Set<Waiter>();
  /** Changes heard of so far: a mark. */
  #seen = 0;
  /** `#seen` as of the last change that may have made work (any change of unknown kind). */
  #lastWork = 0;
  /** The server's snapshot at the last safety poll; null: none yet, or the poll failed. */
  #snapshot: string | null = null;
  #listener: PgPool | null = null;
  #listening = false;
  #starting = false;
  #retryMs = 500;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #healthTimer: ReturnType<typeof setTimeout> | undefined;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #polling = false;
  /** When the last safety poll and the last ping started (monotonic ms). */
  #lastPoll = -Infinity;
  #lastPing = -Infinity;
  #closed = false;

  constructor(options: ChangeWatcherOptions) {
    this.#o = options;
  }

  /** Whether the LISTEN connection is up and listening. */
  get listening(): boolean {
    return this.#listening;
  }

  mark(): number {
    return this.#seen;
  }

  /** Resolves true once a change (of interest) was heard of after `since`; false on timeout. */
  wait(
    since: number,
    timeoutMs: number,
    options: { signal?: AbortSignal | undefined; interest?: "work" | undefined } = {},
  ): Promise<boolean> {
    const { signal } = options;
    const interest = options.interest ?? "any";
    if (this.#closed || signal?.aborted) return Promise.resolve(false);
    if (this.#satisfied(since, interest)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => waiter.settle(false), Math.max(0, timeoutMs));
      const onAbort = () => waiter.settle(false);
      const waiter: Waiter = {
        since,
        interest,
        settle: (changed) => {
          if (!this.#waiters.delete(waiter)) return;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if (this.#waiters.size === 0) this.#idle();
          resolve(changed);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
      this.#start();
    });
  }

  /** Stops listening and polling; pending waits resolve false. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.settle(false);
    this.#idle();
    clearTimeout(this.#restartTimer);
    const listener = this.#listener;
    this.#listener = null;
    this.#listening = false;
    if (listener) await listener.end({ timeout: 0 }).catch(() => {});
  }

  /** Something changed (heard, polled, or unknown). */
  changed(kind: ChangeKind | "unknown"): void {
    this.#seen++;
    if (kind !== "change") this.#lastWork = this.#seen;
    for (const waiter of [...this.#waiters]) {
      if (this.#satisfied(waiter.since, waiter.interest)) waiter.settle(true);
    }
  }

  #satisfied(since: number, interest: "work" | "any"): boolean {
    return (interest === "work" ? this.#lastWork : this.#seen) > since;
  }

  /** A waiter arrived: make sure someone listens and polls. */
  #start(): void {
    if (this.#o.listen && this.#listener === null && !this.#starting) void this.#listen();
    if (!this.#o.listen && this.#snapshot === null && !this.#polling) {
      // No baseline yet: take one now. It cannot tell what happened before it, so it counts as
      // a change, and the caller looks once more.
      void this.#poll();
    }
    this.#schedulePoll();
    this.#scheduleHealthCheck();
  }

  async #listen(): Promise<void> {
    this.#starting = true;
    const pool = createPool(this.#o.target, {
      limits: this.#o.limits,
      name: "queuectl listen",
      max: 1,
      onNotify: (_channel, payload) => {
        if (this.#o.ignoreNotifications || this.#listener !== pool) return;
        this.changed(payload === "work" ? "work" : "change");
      },
      onClose: () => {
        if (this.#listener !== pool || this.#closed) return;
        // The session (and its LISTEN) is gone; LISTEN again on a new connection.
        this.#listening = false;
        this.#scheduleRestart(pool, false);
      },
    });
    this.#listener = pool;
    await this.#subscribe(pool);
    this.#starting = false;
  }

  /** Issues LISTEN on `pool`; on success, counts as a change (see the module doc). */
  async #subscribe(pool: PgPool): Promise<void> {
    const channel = `"${this.#o.channel.replaceAll('"', '""')}"`;
    try {
      await withDeadline(
        pool.unsafe(`LISTEN ${channel}`),
        this.#o.limits.deadlineMs,
        () => new Error("LISTEN did not answer in time"),
      );
    } catch {
      if (this.#listener === pool && !this.#closed) this.#scheduleRestart(pool, true);
      return;
    }
    if (this.#listener !== pool || this.#closed) return;
    this.#listening = true;
    this.#retryMs = 500;
    this.#lastPing = performance.now();
    // A baseline for the safety poll, taken now that notifications are heard.
    await this.#poll(false);
    this.changed("unknown");
    this.#schedulePoll();
  }

  /**
   * LISTEN again after the connection closed or failed: on the same pool (postgres.js reconnects
   * it), or on a new one when the old one may be wedged (`replace`).
   */
  #scheduleRestart(pool: PgPool, replace: boolean): void {
    if (this.#restartTimer !== undefined || this.#closed) return;
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, 30_000);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#listener !== pool || this.#closed) return;
      if (this.#waiters.size === 0) {
        // Nobody waits: stop; the next waiter starts listening again.
        this.#listener = null;
        void pool.end({ timeout: 0 }).catch(() => {});
        return;
      }
      if (replace) {
        this.#listener = null;
        void pool.end({ timeout: 0 }).catch(() => {});
        void this.#listen();
      } else {
        void this.#subscribe(pool);
      }
    }, delay);
  }

  /**
   * The next safety poll, one interval after the last one (not after this wait began: callers
   * that wait a second at a time, as `wait` does, would otherwise never reach a 2 s poll).
   */
  #schedulePoll(): void {
    if (this.#pollTimer !== undefined || this.#closed || this.#waiters.size === 0) return;
    const every = this.#listening
      ? this.#o.safetyPollMs?.listening ?? 2000
      : this.#o.safetyPollMs?.polling ?? 1000;
    const delay = Math.max(0, this.#lastPoll + every - performance.now());
    this.#pollTimer = setTimeout(async () => {
      this.#pollTimer = undefined;
      await this.#poll();
      this.#schedulePoll();
    }, delay);
  }

  /** Reads the snapshot; a difference from the last one (or none to compare) is a change. */
  async #poll(countMissing = true): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    this.#lastPoll = performance.now();
    try {
      const snapshot = await this.#o.snapshot();
      const before = this.#snapshot;
      this.#snapshot = snapshot;
      if (before === null ? countMissing : before !== snapshot) this.changed("unknown");
    } catch {
      // The server is away: the next successful poll counts as a change (its baseline is gone).
      this.#snapshot = null;
    } finally {
      this.#polling = false;
    }
  }

  /**
   * While listening, the connection must answer now and then, or it is replaced: one ping an
   * interval after the last (while anyone waits, as for the safety poll).
   */
  #scheduleHealthCheck(): void {
    if (this.#healthTimer !== undefined || this.#closed || !this.#o.listen) return;
    if (this.#waiters.size === 0) return;
    const delay = Math.max(
      0,
      this.#lastPing + (this.#o.healthCheckMs ?? 30_000) - performance.now(),
    );
    this.#healthTimer = setTimeout(async () => {
      this.#healthTimer = undefined;
      const pool = this.#listener;
      if (pool !== null && this.#listening) {
        this.#lastPing = performance.now();
        try {
          await withDeadline(
            pool.unsafe(PING),
            Math.min(5000, this.#o.limits.deadlineMs),
            () => new Error("ping"),
          );
        } catch {
          if (this.#listener === pool && !this.#closed) {
            this.#listening = false;
            this.#scheduleRestart(pool, true);
          }
        }
      }
      this.#scheduleHealthCheck();
    }, delay);
  }

  /** Nobody waits: no timer may keep the process alive (the LISTEN connection stays). */
  #idle(): void {
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    clearTimeout(this.#healthTimer);
    this.#healthTimer = undefined;
  }
}
