/**
 * `queuectl cancel ID… [--reason TEXT]` and `cancel --state S --all`: waiting jobs end
 * `cancelled` at once; a running one is killed by its worker at its next look (within a second:
 * SIGTERM, SIGKILL after the grace) and ends `cancelled`, unless it exited 0 first.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagBool, flagString } from "../args.ts";
import { json } from "../render.ts";
import { jobJson } from "../../json.ts";
import { jobIdArg } from "./show.ts";
import { EXIT, NotFoundError, UsageError } from "../../errors.ts";
import { CANCELLABLE_STATES, isJobState } from "../../job/state.ts";
import type { JobState } from "../../job/state.ts";

/** What `--reason` says when it is not given. */
export const DEFAULT_CANCEL_REASON = "cancelled by a user";

function states(ctx: Context): JobState[] | undefined {
  const text = flagString(ctx.args, "state");
  if (text === undefined) return undefined;
  const names = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!isJobState(name) || !CANCELLABLE_STATES.includes(name)) {
      throw new UsageError(`Invalid state "${name}" for --state`, {
        hint: `states a job can be cancelled in: ${CANCELLABLE_STATES.join(", ")}`,
        typo: { input: name, candidates: CANCELLABLE_STATES },
      });
    }
  }
  if (names.length === 0) throw new UsageError("--state needs at least one state");
  return names as JobState[];
}

export async function run(ctx: Context): Promise<number> {
  const all = flagBool(ctx.args, "all");
  const ids = ctx.args.positionals.map(jobIdArg);
  const inStates = states(ctx);
  if (all && ids.length) throw new UsageError("Give job ids or --state S --all, not both");
  if (all && inStates === undefined) {
    throw new UsageError("--all needs --state", {
      hint: "say which jobs: --state pending,failed,processing --all",
    });
  }
  if (!all && inStates !== undefined) {
    throw new UsageError("--state needs --all", { hint: "to cancel every job in those states" });
  }
  if (!all && ids.length === 0) {
    throw new UsageError("Missing ID for cancel", { hint: "give job ids, or --state S --all" });
  }
  const reason = flagString(ctx.args, "reason") ?? DEFAULT_CANCEL_REASON;
  if (reason.trim() === "") throw new UsageError("--reason must not be empty");
  let result;
  try {
    result = await (await ctx.openQueue()).cancel(all ? { states: inStates! } : ids, reason);
  } catch (error) {
    if (error instanceof NotFoundError) error.hint ??= "`queuectl list` shows the jobs";
    throw error;
  }
  if (ctx.json) {
    ctx.io.out(json({
      cancelled: result.cancelled.map(jobJson),
      requested: result.requested.map(jobJson),
      dependents: result.dependents,
    }));
    return EXIT.ok;
  }
  const every = [...result.cancelled, ...result.requested];
  if (every.length) ctx.io.out(every.map((job) => job.id).join("\n") + "\n");
  else if (all) ctx.io.err("No job is in those states; nothing to cancel.\n");
  // Notes on stderr: stdout carries ids.
  if (result.dependents.length > 0) {
    const shown = result.dependents.slice(0, 10).join(", ");
    const more = result.dependents.length > 10 ? `, … (${result.dependents.length} in all)` : "";
    ctx.io.err(`also cancelled, as they waited for it: ${shown}${more}\n`);
  }
  for (const job of result.requested) {
    ctx.io.err(
      `job ${job.id} is running on ${job.workerId}: its worker kills it within a second ` +
        `(SIGTERM, then SIGKILL after the grace)\n`,
    );
  }
  return EXIT.ok;
}
