/**
 * `worker start`: runs N worker processes, each a copy of queuectl itself, in the foreground.
 * Signals reach the supervisor (workers lead their own process groups, so a terminal's Ctrl-C is
 * not delivered twice) and are forwarded: the first SIGINT/SIGTERM stops workers gracefully, a
 * second one, or SIGQUIT, makes them kill running jobs. A worker that dies unexpectedly is started
 * again after a delay that grows with each quick failure.
 *
 * @module
 */

import { workerEnv } from "./tuning.ts";

export interface SuperviseOptions {
  count: number;
  /** The program and arguments that start one worker (`queuectl --db X worker run`). */
  exec: string;
  args: string[];
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

/** Runs the workers until all have exited after a stop signal. Returns the exit code. */
export function supervise(options: SuperviseOptions): Promise<number> {
  let stopping: Forwarded | null = null;
  let signals = 0;
  const slots: Slot[] = [];
  let finish: (code: number) => void;
  const finished = new Promise<number>((resolve) => finish = resolve);

  const log = (message: string) =>
    options.log(`${new Date().toISOString()} supervisor ${Deno.pid} ${message}`);

  function start(slot: Slot): void {
    slot.startedAt = performance.now();
    try {
      slot.child = new Deno.Command(options.exec, {
        args: options.args,
        env: workerEnv((name) => Deno.env.get(name)),
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
      if (stopping !== null || status.code === 0) {
        if (stopping === null) log(`worker ${slot.index} (pid ${child.pid}) exited`);
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
      if (stopping === null) start(slot);
      else checkDone();
    }, slot.delay);
  }

  function checkDone(): void {
    if (slots.every((s) => s.child === null && s.restartTimer === undefined)) {
      for (const signal of FORWARDED) Deno.removeSignalListener(signal, handlers[signal]);
      finish(0);
    }
  }

  const handlers = Object.fromEntries(FORWARDED.map((signal) => [signal, () => {
    signals++;
    stopping ??= signal;
    const forward: Deno.Signal = signal === "SIGQUIT" || signals > 1 ? "SIGQUIT" : signal;
    log(`${signal}: ${forward === "SIGQUIT" ? "stopping workers now" : "stopping workers"}`);
    for (const slot of slots) {
      if (slot.restartTimer !== undefined) {
        clearTimeout(slot.restartTimer);
        slot.restartTimer = undefined;
      }
      try {
        slot.child?.kill(forward);
      } catch { /* exited meanwhile */ }
    }
    checkDone();
  }])) as Record<Forwarded, () => void>;
  for (const signal of FORWARDED) Deno.addSignalListener(signal, handlers[signal]);

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
  log(`started ${options.count} worker${options.count === 1 ? "" : "s"}`);
  return finished;
}
