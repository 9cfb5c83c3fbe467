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

export async function run(ctx: Context): Promise<number> {
  const ids = [...new Set(ctx.args.positionals.map(jobIdArg))];
  if (ids.length === 0) throw new UsageError("Missing ID for retry", { hint: "give job ids" });
  let jobs;
  try {
    jobs = await (await ctx.openQueue()).retry(ids, { force: flagBool(ctx.args, "force") });
  } catch (error) {
    if (error instanceof NotFoundError) error.hint ??= "`queuectl list` shows the jobs";
    throw error;
  }
  if (ctx.json) ctx.io.out(json(jobs.map(jobJson)));
  else ctx.io.out(jobs.map((job) => job.id).join("\n") + "\n");
  return EXIT.ok;
}
