/**
 * `queuectl worker start|stop|list|run`.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagDuration } from "../duration_flag.ts";
import { flagBool, flagInt } from "../args.ts";
import { json, localTime, palette, table } from "../render.ts";
import { workerJson } from "../../json.ts";
import { EXIT, QueuectlError } from "../../errors.ts";
import type { WorkerView } from "../../queue.ts";
import { processAlive } from "../../worker/process.ts";
import { TUNED, tunedEnv } from "../../worker/tuning.ts";

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
  const [{ createSpawner }, { thisHost }] = await Promise.all([
    import("../../worker/spawn.ts"),
    import("../../worker/host.ts"),
  ]);
  const supervisor = Number(ctx.io.env("QUEUECTL_SUPERVISOR"));
  const housekeepingMs = ctx.hooks.housekeepingMs;
  const worker = await queue.createWorker({
    spawner: createSpawner(),
    log: log(ctx),
    host: thisHost(),
    once,
    supervisorPid: Number.isInteger(supervisor) && supervisor > 0 ? supervisor : null,
    fault: ctx.fault,
    ...(housekeepingMs !== undefined ? { housekeepingMs } : {}),
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
  await queue.checkWritable();
  if (!flagBool(ctx.args, "detach")) {
    await queue.close();
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
    const mine = (await queue.workers()).filter((w) => w.worker.supervisorPid === child.pid);
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

/** Workers of this queue whose process runs in this host's pid namespace. */
async function liveHere(views: WorkerView[]): Promise<WorkerView[]> {
  const { thisHost } = await import("../../worker/host.ts");
  const here = thisHost().id;
  return views.filter((v) => v.worker.hostId === here && v.judgement.liveness !== "gone");
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
  const workers = (await liveHere(await queue.workers())).map((v) => v.worker);
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
    ctx.io.out(json({
      stopped: workers.map((worker) =>
        workerJson({ worker, judgement: { liveness: "gone", why: null }, state: "gone" })
      ),
      forced: escalated,
    }));
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
  const views = await (await ctx.openQueue()).workers();
  if (ctx.json) {
    ctx.io.out(json(views.map(workerJson)));
    return EXIT.ok;
  }
  if (views.length === 0) {
    ctx.io.out("No workers are running.\n");
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  ctx.io.out(table(
    p,
    ["ID", "PID", "HOST", "STATE", "JOB", "STARTED", "HEARTBEAT", "DONE", "FAILED"],
    views.map(({ worker: w, state }) => [
      w.id,
      String(w.pid),
      w.host,
      state === "gone" || state === "stale" ? p.red(state) : state,
      w.runningJobs.join(",") || "-",
      localTime(w.startedAt),
      localTime(w.heartbeatAt),
      String(w.jobsDone),
      String(w.jobsFailed),
    ]),
  ));
  return EXIT.ok;
}
