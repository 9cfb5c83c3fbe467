/**
 * `queuectl worker start|stop|list|run`.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { queuesFlag } from "../queues_flag.ts";
import { flagDuration } from "../duration_flag.ts";
import { flagBool, flagInt } from "../args.ts";
import { heartbeatAgo, json, localTime, palette, table, workerState } from "../render.ts";
import { EXIT, QueuectlError } from "../../errors.ts";
import { workerJson } from "../../json.ts";
import type { Queue } from "../../queue.ts";
import type { JudgedWorker } from "../../worker/liveness.ts";
import { problemLines } from "../../worker/liveness.ts";
import { TUNED, tunedEnv } from "../../worker/tuning.ts";
import { lazy } from "../../lazy.ts";
import { detachLogPath } from "../../store/location.ts";

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

/**
 * Log lines on stderr, for workers and supervisors: never throws. One whose stderr was closed
 * (`| head`, a log collector that died) keeps working without its output instead of dying with
 * jobs running; any other failed write loses that line only.
 */
function log(ctx: Context): (line: string) => void {
  let closed = false;
  return (line) => {
    if (closed) return;
    try {
      ctx.io.err(line + "\n");
    } catch (error) {
      if (error instanceof Deno.errors.BrokenPipe) closed = true;
    }
  };
}

/** Jobs one worker runs at once: --concurrency, else the number of CPU cores. */
function concurrency(ctx: Context): number {
  return flagInt(ctx.args, "concurrency", 1, 1024) ??
    Math.max(1, navigator.hardwareConcurrency || 1);
}

/** The `--queue` flag as the workers of `worker start` get it (checked here first). */
function queueArgs(ctx: Context): string[] {
  const queues = queuesFlag(ctx);
  return queues === undefined ? [] : ["--queue", queues.join(",")];
}

async function runWorker(ctx: Context): Promise<number> {
  const once = flagBool(ctx.args, "once");
  const slots = concurrency(ctx);
  const queues = queuesFlag(ctx);
  const say = log(ctx);
  // Started on its own rather than by `worker start`: start again tuned (lib/worker/exec.ts).
  // `--once` leaves soon, and its memory does not matter.
  const location = ctx.location();
  if (!once && ctx.reexec !== undefined && ctx.io.env(TUNED) === undefined) {
    // A URL given with --db moves to the environment: it may hold a password, and the command
    // line of a long-running worker is anyone's to read (`ps`).
    const url = location.kind === "url" && typeof ctx.args.flags.get("db") === "string";
    const error = await ctx.reexec(
      { ...tunedEnv((name) => ctx.io.env(name)), ...(url ? { QUEUECTL_DB: location.url } : {}) },
      { withoutDb: url },
    );
    say(`worker: running without memory tuning: ${error.message}`);
  }
  const queue = await ctx.openQueue("worker");
  const [{ createSpawner }, { thisHost }] = await Promise.all([
    lazy<typeof import("../../worker/spawn.ts")>(import.meta.url, "../../worker/spawn.ts"),
    lazy<typeof import("../../worker/host.ts")>(import.meta.url, "../../worker/host.ts"),
  ]);
  const supervisor = Number(ctx.io.env("QUEUECTL_SUPERVISOR"));
  const housekeepingMs = ctx.hooks.housekeepingMs;
  const worker = await queue.createWorker({
    spawner: createSpawner(),
    log: say,
    host: thisHost(),
    concurrency: slots,
    once,
    ...(queues === undefined ? {} : { queues }),
    supervisorPid: Number.isInteger(supervisor) && supervisor > 0 ? supervisor : null,
    fault: ctx.fault,
    ...(location.kind === "url" ? {} : { databaseFile: location.path }),
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
  // The database file was deleted or replaced: restarting this worker would not help.
  if (worker.databaseLost) return EXIT.unusable;
  // A forced stop asked for through the database (`worker stop --all-hosts`) is no failure: a
  // supervisor must not restart the worker.
  if (worker.stopMode !== "force" || last === null) return EXIT.ok;
  return last === "SIGINT" ? EXIT.sigint : EXIT.sigterm;
}

/**
 * The command line of the workers and the detached supervisor. A database file is named with
 * `--db`; a URL travels in their environment instead (`workerDbEnv`), since it may hold a
 * password and a command line is anyone's to read (`ps`).
 */
function workerArgs(ctx: Context, command: string[]): string[] {
  const location = ctx.location();
  return location.kind === "url"
    ? [...ctx.self.args, ...command]
    : [...ctx.self.args, "--db", location.path, ...command];
}

/** What the workers' environment must say where the queue is (a URL only; see workerArgs). */
function workerDbEnv(ctx: Context): Record<string, string> {
  const location = ctx.location();
  return location.kind === "url" ? { QUEUECTL_DB: location.url } : {};
}

async function start(ctx: Context): Promise<number> {
  const count = flagInt(ctx.args, "count", 1, 256) ?? 1;
  queuesFlag(ctx);
  // Refuse an unusable database here, once, rather than in N restarting workers. Opening succeeds
  // on a file this process may only read (SQLite falls back to read-only), so a write that
  // changes nothing (removing no worker) refuses that too, with exit 6.
  const queue = await ctx.openQueue();
  await queue.checkWritable();
  await noteRunning(ctx, queue, count);
  if (!flagBool(ctx.args, "detach")) {
    await queue.close();
    const { supervise } = await lazy<typeof import("../../worker/supervisor.ts")>(
      import.meta.url,
      "../../worker/supervisor.ts",
    );
    const location = ctx.location();
    return await supervise({
      count,
      exec: ctx.self.exec,
      args: workerArgs(ctx, [
        "worker",
        "run",
        "--concurrency",
        String(concurrency(ctx)),
        ...queueArgs(ctx),
      ]),
      env: workerDbEnv(ctx),
      dbPath: location.kind === "url" ? null : location.path,
      clock: ctx.clock,
      log: log(ctx),
    });
  }
  const logPath = detachLogPath(ctx.location(), (name) => ctx.io.env(name), ctx.io.cwd);
  if (ctx.location().kind === "url") {
    // Beside the default database: a directory of the user's own.
    const dir = logPath.slice(0, logPath.lastIndexOf("/"));
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new QueuectlError(`Cannot create the log directory: ${dir}`, EXIT.unusable, {
        hint: "set XDG_DATA_HOME to a directory you can write to",
        cause: error,
      });
    }
  }
  Deno.writeFileSync(logPath, new Uint8Array(), { append: true, mode: 0o600 });
  // sh only redirects the output; `exec` makes the supervisor's pid the one printed.
  const child = new Deno.Command("/bin/sh", {
    args: [
      "-c",
      'log="$1"; shift; exec "$@" >>"$log" 2>&1',
      "sh",
      logPath,
      ctx.self.exec,
      ...workerArgs(ctx, [
        "worker",
        "start",
        "--count",
        String(count),
        "--concurrency",
        String(concurrency(ctx)),
        ...queueArgs(ctx),
      ]),
    ],
    env: workerDbEnv(ctx),
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

/** Says on stderr when workers of this database already run here: more are started anyway. */
async function noteRunning(ctx: Context, queue: Queue, count: number): Promise<void> {
  const running = (await queue.workers()).filter((w) =>
    w.liveness.local && w.liveness.health !== "gone"
  );
  if (running.length === 0) return;
  const n = running.length;
  ctx.io.err(
    `queuectl: ${n} worker${n === 1 ? " already runs" : "s already run"} on this database on ` +
      `this host (pid ${running.map((w) => w.worker.pid).join(", ")}); starting ${count} more ` +
      `(\`queuectl worker list\` shows them)\n`,
  );
}

async function stop(ctx: Context): Promise<number> {
  const force = flagBool(ctx.args, "force");
  const timeoutMs = flagDuration(ctx.args, "timeout");
  const queue = await ctx.openQueue();
  const allHosts = flagBool(ctx.args, "all-hosts");
  const { stopAllHosts, stopWorkers } = await lazy<typeof import("../../worker/stop.ts")>(
    import.meta.url,
    "../../worker/stop.ts",
  );
  // Progress and warnings; a closed stderr must not end the stop half way.
  const say = log(ctx);
  const report = await (allHosts ? stopAllHosts : stopWorkers)(queue, {
    force,
    timeoutMs,
    note: (line) => say(`queuectl: ${line}`),
  });
  const { stopped, killed } = report;
  const unreachable = report.unreachable ?? [];
  if (ctx.json) {
    ctx.io.out(json({
      stopped: stopped.map(workerJson),
      forced: report.forced,
      killed: killed.map((w) => w.worker.id),
      ...(allHosts ? { unreachable: unreachable.map((w) => w.worker.id) } : {}),
    }));
  } else if (stopped.length === 0 && unreachable.length === 0) {
    ctx.io.out("No workers are running.\n");
  } else {
    const pids = (workers: readonly JudgedWorker[]) => workers.map((w) => w.worker.pid).join(", ");
    const hosts = [...new Set(stopped.map((w) => w.worker.host))];
    let line = `Stopped ${stopped.length} worker${stopped.length === 1 ? "" : "s"} ` +
      (allHosts
        ? `on ${hosts.length} host${hosts.length === 1 ? "" : "s"} (${hosts.join(", ")})`
        : `(pid ${pids(stopped)})`);
    if (report.forced) line += ", killing running jobs";
    if (killed.length > 0) {
      line += `; killed ${killed.length} that did not respond (pid ${pids(killed)})`;
    }
    if (unreachable.length > 0) {
      line += `; ${unreachable.length} on ${
        [...new Set(unreachable.map((w) => w.worker.host))].join(", ")
      } did not respond (their jobs come back when their leases expire)`;
    }
    ctx.io.out(`${line}\n`);
  }
  return EXIT.ok;
}

async function list(ctx: Context): Promise<number> {
  const queue = await ctx.openQueue();
  const workers = await queue.workers();
  if (ctx.json) {
    ctx.io.out(json(workers.map(workerJson)));
    return EXIT.ok;
  }
  if (workers.length === 0) {
    ctx.io.out("No workers are running.\n");
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  ctx.io.out(
    table(
      p,
      ["ID", "PID", "HOST", "STATE", "JOB", "STARTED", "HEARTBEAT", "DONE", "FAILED"],
      workers.map((w) => [
        w.worker.id,
        String(w.worker.pid),
        w.worker.host,
        workerState(p, w),
        w.worker.runningJobs.join(",") || "-",
        localTime(w.worker.startedAt),
        heartbeatAgo(w),
        String(w.worker.jobsDone),
        String(w.worker.jobsFailed),
      ]),
    ) + problemLines(workers).map((line) => `${line}\n`).join(""),
  );
  return EXIT.ok;
}
