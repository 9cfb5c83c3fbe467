/**
 * `worker start`: runs N worker processes, each a copy of queuectl itself, in the foreground.
 * Signals reach the supervisor (workers lead their own process groups, so a terminal's Ctrl-C is
 * not delivered twice) and are forwarded: the first SIGINT/SIGTERM stops workers gracefully, a
 * second one, or SIGQUIT, makes them kill running jobs. A worker that dies unexpectedly is started
 * again after a delay that grows with each quick failure, unless the database file it worked on
 * was deleted or replaced: then the supervisor stops too.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { EXIT } from "../errors.ts";
import { formatLogTime } from "../time.ts";
import { DatabaseFile } from "./db_file.ts";
import { workerEnv } from "./tuning.ts";

export interface SuperviseOptions {
  count: number;
  /** The program and arguments that start one worker (`queuectl --db X worker run`). */
  exec: string;
  args: string[];
  /** Set in the workers' environment (where the queue is, when that is a URL). */
  env?: Record<string, string>;
  /** The database file the workers use (opened by the caller just before); null for a URL. */
  dbPath: string | null;
  clock: Clock;
  /** Must not throw (the output may be gone). */
  log: (line: string) => void;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGQUIT"] as const;
type Forwarded = typeof FORWARDED[number];
const MIN_RESTART_MS = 500;
const MAX_RESTART_MS = 30_000;
/** A worker that ran this long before dying restarts with the shortest delay again. */
const HEALTHY_MS = 60_000;
interface Slot {
  index: number;
  child: Deno.ChildProcess | null;
  startedAt: number;
  delay: number;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Runs the workers until all have exited after a stop signal. Returns the exit code, as
 * `worker run` would: 0 after a graceful stop, 130 when forced after SIGINT, 143 when forced
 * after SIGTERM or SIGQUIT, 6 when the database file was deleted or replaced.
 */
export function supervise(options: SuperviseOptions): Promise<number> {
  let stopping: Forwarded | null = null;
  let signals = 0;
  let lastSignal: Forwarded | null = null;
  let forced = false;
  let databaseLost = false;
  const database = options.dbPath === null ? null : new DatabaseFile(options.dbPath);
  const slots: Slot[] = [];
  let finish: (code: number) => void;
  const finished = new Promise<number>((resolve) => finish = resolve);

  const log = (message: string) =>
    options.log(`${formatLogTime(options.clock.now())} supervisor ${Deno.pid} ${message}`);

  function start(slot: Slot): void {
    slot.startedAt = performance.now();
    try {
      slot.child = new Deno.Command(options.exec, {
        args: options.args,
        env: { ...options.env, ...workerEnv((name) => Deno.env.get(name)) },
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
        detached: true,
      }).spawn();
    } catch (error) {
      log(`cannot start worker ${slot.index}: ${error instanceof Error ? error.message : error}`);
      slot.child = null;
      scheduleRestart(slot);
      return;
    }
    const child = slot.child;
    child.status.then((status) => {
      slot.child = null;
      if (stopping === null && !databaseLost) {
        const change = database?.change() ?? null;
        if (change !== null) loseDatabase(change);
      }
      if (stopping !== null || databaseLost || status.code === 0) {
        if (stopping === null && !databaseLost) {
          log(`worker ${slot.index} (pid ${child.pid}) exited`);
        }
        checkDone();
        return;
      }
      const how = status.signal ? `was killed by ${status.signal}` : `exited with ${status.code}`;
      log(`worker ${slot.index} (pid ${child.pid}) ${how}`);
      scheduleRestart(slot);
    });
  }

  function scheduleRestart(slot: Slot): void {
    const ranFor = performance.now() - slot.startedAt;
    slot.delay = ranFor > HEALTHY_MS
      ? MIN_RESTART_MS
      : Math.min(MAX_RESTART_MS, Math.max(MIN_RESTART_MS, slot.delay * 2));
    log(`restarting worker ${slot.index} in ${slot.delay} ms`);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      // A worker started on a deleted database would create a new, empty one.
      const change = stopping === null && !databaseLost ? database?.change() ?? null : null;
      if (change !== null) loseDatabase(change);
      if (stopping === null && !databaseLost) start(slot);
      else checkDone();
    }, slot.delay);
  }

  /** The workers notice it themselves and exit; none is started again. */
  function loseDatabase(change: string): void {
    databaseLost = true;
    log(
      `database ${options.dbPath} was ${change}; not restarting workers, exiting once they ` +
        `have (start workers again to use the queue now at that path)`,
    );
    cancelRestarts();
  }

  function cancelRestarts(): void {
    for (const slot of slots) {
      if (slot.restartTimer !== undefined) {
        clearTimeout(slot.restartTimer);
        slot.restartTimer = undefined;
      }
    }
  }

  function checkDone(): void {
    if (slots.every((s) => s.child === null && s.restartTimer === undefined)) {
      for (const signal of FORWARDED) Deno.removeSignalListener(signal, handlers[signal]);
      if (databaseLost) finish(EXIT.unusable);
      else if (forced) finish(lastSignal === "SIGINT" ? EXIT.sigint : EXIT.sigterm);
      else finish(EXIT.ok);
    }
  }

  const handlers = Object.fromEntries(FORWARDED.map((signal) => [signal, () => {
    signals++;
    stopping ??= signal;
    lastSignal = signal;
    const forward: Deno.Signal = signal === "SIGQUIT" || signals > 1 ? "SIGQUIT" : signal;
    if (forward === "SIGQUIT") forced = true;
    const again = signal === "SIGINT" ? "Ctrl-C" : signal;
    log(
      forward === "SIGQUIT"
        ? `${signal}: stopping workers now (killing running jobs)`
        : `${signal}: stopping workers after their running jobs; ${again} again kills the ` +
          `running jobs`,
    );
    cancelRestarts();
    for (const slot of slots) {
      try {
        slot.child?.kill(forward);
      } catch { /* exited meanwhile */ }
    }
    checkDone();
  }])) as Record<Forwarded, () => void>;
  for (const signal of FORWARDED) Deno.addSignalListener(signal, handlers[signal]);

  // Before the spawns: a worker's own first line may otherwise beat it to a shared output, and
  // `worker start | head -1` should always show the supervisor's.
  log(`starting ${options.count} worker${options.count === 1 ? "" : "s"}`);
  for (let i = 0; i < options.count; i++) {
    const slot: Slot = {
      index: i + 1,
      child: null,
      startedAt: 0,
      delay: MIN_RESTART_MS / 2,
      restartTimer: undefined,
    };
    slots.push(slot);
    start(slot);
  }
  return finished;
}
