/**
 * Named queues: `queuectl pause [QUEUE…]`, `resume [QUEUE…]`, `queue list` and
 * `queue set QUEUE --concurrency N`. The core API (lib/queue.ts) does the work; this validates
 * and renders.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagInt } from "../args.ts";
import { json, palette, table } from "../render.ts";
import { queueJson } from "../../json.ts";
import { EXIT, UsageError } from "../../errors.ts";
import { queueNameProblem } from "../../job/id.ts";
import { MAX_QUEUE_CONCURRENCY } from "../../queue.ts";
import type { QueueRecord } from "../../store/store.ts";

export function run(ctx: Context): Promise<number> {
  switch (ctx.command) {
    case "pause":
      return pauseOrResume(ctx, true);
    case "resume":
      return pauseOrResume(ctx, false);
    case "queue list":
      return list(ctx);
    case "queue set":
      return set(ctx);
  }
  throw new Error(`No such command: ${ctx.command}`);
}

/** The queue names given, checked like ids; a bad one is a usage error naming it. */
function namesArg(ctx: Context): string[] {
  const names = [...new Set(ctx.args.positionals)];
  for (const name of names) {
    const problem = queueNameProblem(name);
    if (problem) {
      throw new UsageError(`Invalid queue name ${JSON.stringify(name)}: ${problem}`, {
        hint: "`queuectl queue list` shows the queues",
      });
    }
  }
  return names;
}

async function pauseOrResume(ctx: Context, pause: boolean): Promise<number> {
  const names = namesArg(ctx);
  const queue = await ctx.openQueue();
  const which = names.length === 0 ? "all" : names;
  const done = pause ? await queue.queuePause(which) : await queue.queueResume(which);
  if (ctx.json) {
    ctx.io.out(json({ [pause ? "paused" : "resumed"]: done, all: which === "all" }));
    return EXIT.ok;
  }
  const verb = pause ? "Paused" : "Resumed";
  if (which === "all") {
    ctx.io.out(
      pause
        ? `Paused every queue${done.length ? ` (${done.join(", ")})` : ""}; new queues start ` +
          "paused too. Running jobs go on.\n"
        : `Resumed every queue${done.length ? ` (${done.join(", ")})` : ""}.\n`,
    );
  } else {
    const note = pause ? " Running jobs go on." : "";
    ctx.io.out(`${verb} ${done.length === 1 ? "queue" : "queues"} ${done.join(", ")}.${note}\n`);
  }
  return EXIT.ok;
}

/** "-" for no limit, else the number. */
function limitText(q: QueueRecord): string {
  return q.concurrency === 0 ? "-" : String(q.concurrency);
}

async function list(ctx: Context): Promise<number> {
  const { queues, pausedAll } = await (await ctx.openQueue()).queueList();
  if (ctx.json) {
    ctx.io.out(json({ queues: queues.map(queueJson), paused_all: pausedAll }));
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  let out = table(
    p,
    [
      "QUEUE",
      "STATE",
      "LIMIT",
      "PENDING",
      "PROCESSING",
      "FAILED",
      "COMPLETED",
      "DEAD",
      "CANCELLED",
    ],
    queues.map((q) => [
      q.name,
      q.paused ? p.yellow("paused") : "active",
      limitText(q),
      String(q.counts.pending),
      String(q.counts.processing),
      String(q.counts.failed),
      String(q.counts.completed),
      String(q.counts.dead),
      String(q.counts.cancelled),
    ]),
  );
  if (pausedAll) out += "Every queue is paused: new queues start paused (`queuectl resume`).\n";
  ctx.io.out(out);
  return EXIT.ok;
}

async function set(ctx: Context): Promise<number> {
  const [name] = namesArg(ctx);
  const concurrency = flagInt(ctx.args, "concurrency", 0, MAX_QUEUE_CONCURRENCY);
  if (concurrency === undefined) {
    throw new UsageError("Missing --concurrency for queue set", {
      hint: "give the most jobs of the queue that may run at once, 0 for no limit",
    });
  }
  const record = await (await ctx.openQueue()).queueSetConcurrency(name!, concurrency);
  if (ctx.json) ctx.io.out(json(queueJson(record)));
  else {
    ctx.io.out(
      concurrency === 0
        ? `Queue ${record.name}: no limit.\n`
        : `Queue ${record.name}: at most ${concurrency} ${
          concurrency === 1 ? "job runs" : "jobs run"
        } at once, across all workers.\n`,
    );
  }
  return EXIT.ok;
}
