/**
 * `queuectl retry ID… [--force]`: dead and cancelled jobs (completed ones with --force) back to
 * `pending` with a fresh retry budget. `dlq retry` is the dead letter queue's spelling of it.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagBool } from "../args.ts";
import { json } from "../render.ts";
import { jobJson } from "../../json.ts";
import { jobIdArg } from "./show.ts";
import { EXIT, NotFoundError, UsageError } from "../../errors.ts";
import type { Job } from "../../job/job.ts";
import type { Queue } from "../../queue.ts";

export async function run(ctx: Context): Promise<number> {
  const ids = [...new Set(ctx.args.positionals.map(jobIdArg))];
  if (ids.length === 0) throw new UsageError("Missing ID for retry", { hint: "give job ids" });
  let jobs;
  const queue = await ctx.openQueue();
  try {
    jobs = await queue.retry(ids, { force: flagBool(ctx.args, "force") });
  } catch (error) {
    if (error instanceof NotFoundError) error.hint ??= "`queuectl list` shows the jobs";
    throw error;
  }
  if (ctx.json) ctx.io.out(json(jobs.map(jobJson)));
  else ctx.io.out(jobs.map((job) => job.id).join("\n") + "\n");
  await noteCancelledDependents(ctx, queue, jobs);
  return EXIT.ok;
}

/** Retried jobs this many at most are looked at for dependents left cancelled. */
const DEPENDENTS_CHECKED = 100;

/**
 * A retry does not revive the jobs that were cancelled because they waited for a retried job:
 * say so (on stderr), and how to retry them too.
 */
export async function noteCancelledDependents(
  ctx: Context,
  queue: Queue,
  jobs: readonly Job[],
): Promise<void> {
  const retried = new Set(jobs.map((job) => job.id));
  const left = new Set<string>();
  for (const job of jobs.slice(0, DEPENDENTS_CHECKED)) {
    for (const link of (await queue.dependencies(job.id)).dependents) {
      if (link.state === "cancelled" && !link.met && !retried.has(link.id)) left.add(link.id);
    }
  }
  if (left.size === 0) return;
  const ids = [...left];
  ctx.io.err(
    `queuectl: note: ${ids.length === 1 ? "job" : "jobs"} ${ids.slice(0, 10).join(", ")}` +
      `${ids.length > 10 ? ", …" : ""} waited for ${retried.size === 1 ? "it" : "them"} ` +
      `and stay cancelled; retry them too: queuectl retry ${ids.slice(0, 10).join(" ")}\n`,
  );
}
