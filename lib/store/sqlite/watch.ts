/**
 * Waiting for another process's commit to a SQLite file without polling it.
 *
 * A commit by another connection appends frames to the `-wal` file, and Linux tells a watcher of
 * that file at once (inotify, through `Deno.watchFs`). The notification is only a hint, and an
 * early one: it comes with the write of the frames, before the writer has published the commit
 * in the shared WAL index. So on each notification the watcher reads `PRAGMA data_version` (which
 * changes when another connection has committed) and, if it has not changed yet, reads it again a
 * few milliseconds later. What notifications miss (a file system without inotify, another kernel,
 * a commit that reached the file some other way) a slow safety poll catches: nothing waits longer
 * than `safetyPollMs` for a change that happened.
 *
 * Idle, this costs nothing but the safety poll: one pragma a second per waiting process.
 *
 * @module
 */

/** Reads the connection's `PRAGMA data_version`. */
export type VersionReader = () => number;

export interface ChangeWatcherOptions {
  /** Files whose writes signal a commit (the database's `-wal`). */
  files: readonly string[];
  readVersion: VersionReader;
  /** Look anyway this often while someone waits (default 1000 ms). */
  safetyPollMs?: number;
  /** Poll this often when notifications cannot be had at all (default 50 ms). */
  fallbackPollMs?: number;
  /** Tests only: ignore notifications, as a file system without them would. */
  ignoreNotifications?: boolean;
}

interface Waiter {
  since: number;
  settle(changed: boolean): void;
}

/** Delays of the re-reads after a notification that did not show a change yet. */
const RECHECK_MS = [1, 5, 20, 100];

export class ChangeWatcher {
  readonly #o: ChangeWatcherOptions;
  readonly #waiters = new Set<Waiter>();
  #watcher: Deno.FsWatcher | null = null;
  /** Notifications are unavailable: poll fast instead. */
  #blind = false;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #recheckTimer: ReturnType<typeof setTimeout> | undefined;
  #recheckStep = 0;
  #closed = false;

  constructor(options: ChangeWatcherOptions) {
    this.#o = options;
  }

  /** The current version: a mark for `wait`. */
  mark(): number {
    return this.#o.readVersion();
  }

  /** Resolves true once the version differs from `since`; false on timeout or abort. */
  wait(since: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#closed || signal?.aborted) return Promise.resolve(false);
    if (this.#o.readVersion() !== since) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => waiter.settle(false), Math.max(0, timeoutMs));
      const onAbort = () => waiter.settle(false);
      const waiter: Waiter = {
        since,
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
      this.#schedulePoll();
    });
  }

  /** Stops watching; pending waits resolve false. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.settle(false);
    this.#idle();
    try {
      this.#watcher?.close();
    } catch { /* closed already */ }
    this.#watcher = null;
  }

  /** Starts the file watch, once per store: a watch costs a thread, so it is kept. */
  #start(): void {
    if (this.#watcher !== null || this.#blind || this.#o.ignoreNotifications) return;
    let watcher: Deno.FsWatcher;
    try {
      watcher = Deno.watchFs([...this.#o.files], { recursive: false });
    } catch {
      // No inotify (limits reached, no such file, not Linux): polling must do.
      this.#blind = true;
      return;
    }
    this.#watcher = watcher;
    (async () => {
      try {
        for await (const _event of watcher) {
          if (this.#waiters.size > 0) this.#check(true);
        }
      } catch {
        if (!this.#closed) this.#blind = true;
      }
      // The watch ended (the file went away, or close): the safety poll covers it from now on.
      if (this.#watcher === watcher) this.#watcher = null;
    })();
  }

  #schedulePoll(): void {
    if (this.#pollTimer !== undefined || this.#closed) return;
    const every = this.#blind || this.#o.ignoreNotifications
      ? this.#o.fallbackPollMs ?? 50
      : this.#o.safetyPollMs ?? 1000;
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = undefined;
      this.#check(false);
      if (this.#waiters.size > 0) {
        // A watch that ended is started again (a new -wal file after the last connection closed).
        this.#start();
        this.#schedulePoll();
      }
    }, every);
  }

  /** Reads the version and wakes every waiter it changed for. */
  #check(notified: boolean): void {
    let version: number;
    try {
      version = this.#o.readVersion();
    } catch {
      // The connection failed (closed, damaged): wake everyone to find out by a real query.
      for (const waiter of [...this.#waiters]) waiter.settle(true);
      return;
    }
    let unchanged = false;
    for (const waiter of [...this.#waiters]) {
      if (waiter.since !== version) waiter.settle(true);
      else unchanged = true;
    }
    if (notified && unchanged) {
      this.#recheckStep = 0;
      this.#scheduleRecheck();
    } else if (!unchanged) {
      clearTimeout(this.#recheckTimer);
      this.#recheckTimer = undefined;
    }
  }

  /** After a notification: the commit it announced may become visible a moment later. */
  #scheduleRecheck(): void {
    if (this.#recheckTimer !== undefined) return;
    const delay = RECHECK_MS[this.#recheckStep];
    if (delay === undefined) return;
    this.#recheckTimer = setTimeout(() => {
      this.#recheckTimer = undefined;
      this.#recheckStep++;
      if (this.#waiters.size === 0) return;
      const before = this.#waiters.size;
      this.#check(false);
      if (this.#waiters.size === before) this.#scheduleRecheck();
    }, delay);
  }

  /**
   * Nobody waits: no timers may keep the process alive. (Only timers that exist are cleared: the
   * first timer call of a process loads Deno's timer code, some 5 ms that a command which never
   * waited must not pay when it closes the store.)
   */
  #idle(): void {
    if (this.#pollTimer !== undefined) clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    if (this.#recheckTimer !== undefined) clearTimeout(this.#recheckTimer);
    this.#recheckTimer = undefined;
  }
}
