/**
 * `queuectl dlq list|retry`: the dead letter queue.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { lazy } from "../../lazy.ts";
import { flagBool, flagInt } from "../args.ts";
import { clip, json, localTime, palette, table } from "../render.ts";
import { jobJson } from "../../json.ts";
import { jobIdArg } from "./show.ts";
import { DEFAULT_LIMIT } from "./list.ts";
import { EXIT, NotFoundError, UsageError } from "../../errors.ts";

export async function run(ctx: Context): Promise<number> {
  if (ctx.command === "dlq retry") return await retry(ctx);
  const limit = flagInt(ctx.args, "limit", 1, 1_000_000) ?? DEFAULT_LIMIT;
  const { jobs, total } = await (await ctx.openQueue()).list({ states: ["dead"], limit });
  if (ctx.json) {
    ctx.io.out(json(jobs.map(jobJson)));
    return EXIT.ok;
  }
  if (jobs.length === 0) {
    ctx.io.out("The dead letter queue is empty.\n");
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  ctx.io.out(table(
    p,
    ["ID", "ATTEMPTS", "DIED", "LAST ERROR", "COMMAND"],
    jobs.map((job) => [
      job.id,
      String(job.attempts),
      localTime(job.finishedAt),
      clip(job.lastError ?? "-", 40),
      clip(job.command, 50),
    ]),
  ));
  if (jobs.length < total) {
    ctx.io.out(
      p.dim(`showing the newest ${jobs.length} of ${total} dead jobs (use --limit N for more)`) +
        "\n",
    );
  }
  return EXIT.ok;
}

async function retry(ctx: Context): Promise<number> {
  const all = flagBool(ctx.args, "all");
  const ids = ctx.args.positionals;
  if (all && ids.length) throw new UsageError("Give job ids or --all, not both");
  if (!all && ids.length === 0) {
    throw new UsageError("Missing ID for dlq retry", { hint: "give job ids, or --all" });
  }
  const unique = [...new Set(ids.map(jobIdArg))];
  let jobs;
  const queue = await ctx.openQueue();
  try {
    jobs = await queue.dlqRetry(all ? "all" : unique);
  } catch (error) {
    if (error instanceof NotFoundError) {
      error.hint ??= "`queuectl dlq list` shows the dead letter queue";
    }
    throw error;
  }
  if (ctx.json) ctx.io.out(json(jobs.map(jobJson)));
  else if (jobs.length) ctx.io.out(jobs.map((job) => job.id).join("\n") + "\n");
  // Not an error (exit 0, no "queuectl:" prefix); on stderr, since stdout carries ids.
  else if (all) ctx.io.err("The dead letter queue is empty; nothing to retry.\n");
  const { noteCancelledDependents } = await lazy<typeof import("./retry.ts")>(
    import.meta.url,
    "./retry.ts",
  );
  await noteCancelledDependents(ctx, queue, jobs);
  return EXIT.ok;
}
