/**
 * `queuectl wait ID…`: block until jobs are completed or dead.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagDuration } from "../duration_flag.ts";
import { json } from "../render.ts";
import { jobJson } from "../../json.ts";
import { jobIdArg } from "./show.ts";
import { EXIT } from "../../errors.ts";
import type { Job } from "../../job/job.ts";
import type { Queue } from "../../queue.ts";

/** Waits for `ids`, drawing a progress line on a terminal; returns the exit code. */
export async function waitAndReport(
  ctx: Context,
  queue: Queue,
  ids: readonly string[],
  timeoutMs: number | undefined,
  printStates: boolean,
): Promise<number> {
  let last = "";
  const progress = ctx.io.stderrIsTerminal && !ctx.json;
  const { jobs, timedOut } = await queue.waitFor(ids, {
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    onProgress: (jobs: Job[]) => {
      if (!progress) return;
      const done = jobs.filter((j) => j.state === "completed").length;
      const dead = jobs.filter((j) => j.state === "dead").length;
      const line = `waiting: ${done} completed, ${dead} dead, ${jobs.length - done - dead} to go`;
      if (line !== last) ctx.io.err(`\r\x1b[2K${line}`);
      last = line;
    },
  });
  if (progress) ctx.io.err("\r\x1b[2K");
  if (ctx.json) {
    ctx.io.out(json({ jobs: jobs.map(jobJson), timed_out: timedOut }));
  } else if (printStates) {
    ctx.io.out(
      jobs.map((j) => `${j.id} ${j.state}${j.lastError ? ` (${j.lastError})` : ""}`).join("\n") +
        "\n",
    );
  }
  if (timedOut) return EXIT.timeout;
  return jobs.every((j) => j.state === "completed") ? EXIT.ok : 1;
}

export async function run(ctx: Context): Promise<number> {
  const ids = [...new Set(ctx.args.positionals.map(jobIdArg))];
  const timeoutMs = flagDuration(ctx.args, "timeout");
  return await waitAndReport(ctx, await ctx.openQueue(), ids, timeoutMs, true);
}
