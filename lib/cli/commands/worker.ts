/**
 * `queuectl worker start|stop|list|run`.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagDuration } from "../duration_flag.ts";
import { flagBool, flagInt } from "../args.ts";
import { json, localTime, palette, table, workerJson } from "../render.ts";
import { EXIT, QueuectlError } from "../../errors.ts";
import type { WorkerRecord } from "../../store/store.ts";
import { processAlive } from "../../worker/process.ts";
import { TUNED, tunedEnv } from "../../worker/supervisor.ts";

export function run(ctx: Context): Promise<number> {
  switch (ctx.command) {
    case "worker run":
      return runWorker(ctx);
    case "worker start":
      return start(ctx);
    case "worker stop":
      return stop(ctx);
    default:
      return list(ctx);
  }
}

function log(ctx: Context): (line: string) => void {
  return (line) => ctx.io.err(line + "\n");
}

async function runWorker(ctx: Context): Promise<number> {
  const once = flagBool(ctx.args, "once");
  // Started on its own rather than by `worker start`: start again tuned (lib/worker/exec.ts).
  // `--once` leaves soon, and its memory does not matter.
  if (!once && ctx.reexec !== undefined && ctx.io.env(TUNED) === undefined) {
    const error = await ctx.reexec(tunedEnv((name) => ctx.io.env(name)));
    ctx.io.err(`worker: running without memory tuning: ${error.message}\n`);
  }
  const queue = await ctx.openQueue("worker");
  const [{ Worker }, { createSpawner }] = await Promise.all([
    import("../../worker/worker.ts"),
    import("../../worker/spawn.ts"),
  ]);
  const supervisor = Number(ctx.io.env("QUEUECTL_SUPERVISOR"));
  // Test hook (QUEUECTL_TEST=1, as in lib/clock.ts): housekeeping every N ms.
  const housekeepingMs = ctx.io.env("QUEUECTL_TEST") === "1"
    ? Number(ctx.io.env("QUEUECTL_TEST_HOUSEKEEPING_MS"))
    : Number.NaN;
  const worker = new Worker({
    store: queue.store,
    clock: ctx.clock,
    dbPath: ctx.location().path,
    spawner: createSpawner(),
    log: log(ctx),
    host: Deno.hostname(),
    once,
    supervisorPid: Number.isInteger(supervisor) && supervisor > 0 ? supervisor : null,
    fault: ctx.fault,
    ...(housekeepingMs > 0 ? { housekeepingMs } : {}),
  });
  let last: Deno.Signal | null = null;
  const handlers = {
    SIGINT: () => onSignal("SIGINT"),
    SIGTERM: () => onSignal("SIGTERM"),
    SIGQUIT: () => onSignal("SIGQUIT"),
  };
  function onSignal(signal: "SIGINT" | "SIGTERM" | "SIGQUIT") {
    const force = signal === "SIGQUIT" || last !== null;
    last = signal;
    worker.stop(force ? "force" : "graceful", signal);
  }
  for (const [signal, handler] of Object.entries(handlers)) {
    Deno.addSignalListener(signal as Deno.Signal, handler);
  }
  try {
    await worker.run();
  } finally {
    for (const [signal, handler] of Object.entries(handlers)) {
      Deno.removeSignalListener(signal as Deno.Signal, handler);
    }
  }
  if (worker.stopMode !== "force") return EXIT.ok;
  return last === "SIGINT" ? EXIT.sigint : EXIT.sigterm;
}

function workerArgs(ctx: Context, command: string[]): string[] {
  return [...ctx.self.args, "--db", ctx.location().path, ...command];
}

async function start(ctx: Context): Promise<number> {
  const count = flagInt(ctx.args, "count", 1, 256) ?? 1;
  // Refuse an unusable database here, once, rather than in N restarting workers. Opening succeeds
  // on a file this process may only read (SQLite falls back to read-only), so a write that
  // changes nothing (removing no worker) refuses that too, with exit 6.
  const queue = await ctx.openQueue();
  await queue.store.workerRemove({ id: "" });
  if (!flagBool(ctx.args, "detach")) {
    queue.close();
    const { supervise } = await import("../../worker/supervisor.ts");
    return await supervise({
      count,
      exec: ctx.self.exec,
      args: workerArgs(ctx, ["worker", "run"]),
      log: log(ctx),
    });
  }
  const logPath = `${ctx.location().path}.log`;
  Deno.writeFileSync(logPath, new Uint8Array(), { append: true, mode: 0o600 });
  // sh only redirects the output; `exec` makes the supervisor's pid the one printed.
  const child = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      'log="$1"; shift; exec "$@" >>"$log" 2>&1',
      "sh",
      logPath,
      ctx.self.exec,
      ...workerArgs(ctx, ["worker", "start", "--count", String(count)]),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  let exited: Deno.CommandStatus | null = null;
  child.status.then((status) => exited = status);
  const deadline = performance.now() + 15_000;
  for (;;) {
    const mine = (await queue.workers()).filter((w) => w.supervisorPid === child.pid);
    if (mine.length >= count) break;
    if (exited !== null || performance.now() > deadline) {
      throw new QueuectlError(
        `Workers did not start (supervisor ${child.pid} ${exited ? "exited" : "is silent"})`,
        EXIT.internal,
        { hint: `see ${logPath}` },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  if (ctx.json) ctx.io.out(json({ pid: child.pid, workers: count, log: logPath }));
  else ctx.io.out(`${child.pid}\n`);
  return EXIT.ok;
}

function liveHere(workers: WorkerRecord[]): WorkerRecord[] {
  const host = Deno.hostname();
  return workers.filter((w) => w.host === host && processAlive(w.pid, w.pidStart));
}

function send(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch { /* exited meanwhile */ }
}

async function stop(ctx: Context): Promise<number> {
  const force = flagBool(ctx.args, "force");
  const timeoutMs = flagDuration(ctx.args, "timeout");
  const queue = await ctx.openQueue();
  const workers = liveHere(await queue.workers());
  if (workers.length === 0) {
    if (ctx.json) ctx.io.out(json({ stopped: [] }));
    else ctx.io.out("No workers are running.\n");
    return EXIT.ok;
  }
  // Supervisors forward the signal (and stop restarting); lone workers get it directly.
  const targets = new Set<number>();
  for (const w of workers) {
    const supervisor = w.supervisorPid;
    targets.add(supervisor !== null && processAlive(supervisor, null) ? supervisor : w.pid);
  }
  const signalAll = (signal: Deno.Signal) => targets.forEach((pid) => send(pid, signal));
  signalAll(force ? "SIGQUIT" : "SIGTERM");
  const started = performance.now();
  let escalated = force;
  while (workers.some((w) => processAlive(w.pid, w.pidStart))) {
    if (!escalated && timeoutMs !== undefined && performance.now() - started >= timeoutMs) {
      escalated = true;
      signalAll("SIGQUIT");
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  while ([...targets].some((pid) => processAlive(pid, null))) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  if (ctx.json) {
    ctx.io.out(json({ stopped: workers.map((w) => workerJson(w, false)), forced: escalated }));
  } else {
    ctx.io.out(
      `Stopped ${workers.length} worker${workers.length === 1 ? "" : "s"} ` +
        `(pid ${workers.map((w) => w.pid).join(", ")})${
          escalated ? ", killing running jobs" : ""
        }\n`,
    );
  }
  return EXIT.ok;
}

async function list(ctx: Context): Promise<number> {
  const workers = await (await ctx.openQueue()).workers();
  const host = Deno.hostname();
  const alive = workers.map((w) => w.host === host ? processAlive(w.pid, w.pidStart) : null);
  if (ctx.json) {
    ctx.io.out(json(workers.map((w, i) => workerJson(w, alive[i]!))));
    return EXIT.ok;
  }
  if (workers.length === 0) {
    ctx.io.out("No workers are running.\n");
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  ctx.io.out(table(
    p,
    ["ID", "PID", "HOST", "STATE", "JOB", "STARTED", "HEARTBEAT", "DONE", "FAILED"],
    workers.map((w, i) => [
      w.id,
      String(w.pid),
      w.host,
      alive[i] === false ? p.red("gone") : w.state,
      w.currentJob ?? "-",
      localTime(w.startedAt),
      localTime(w.heartbeatAt),
      String(w.jobsDone),
      String(w.jobsFailed),
    ]),
  ));
  return EXIT.ok;
}
