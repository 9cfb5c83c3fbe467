/**
 * `queuectl prune`: delete finished jobs (with their attempts and output).
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagDuration } from "../duration_flag.ts";
import { flagBool, flagString } from "../args.ts";
import { json, localTime } from "../render.ts";
import { EXIT, UsageError } from "../../errors.ts";
import type { JobState } from "../../job/state.ts";
import { formatDuration, iso } from "../../time.ts";

const STATES: Record<string, JobState[]> = {
  completed: ["completed"],
  dead: ["dead"],
  cancelled: ["cancelled"],
  "all-finished": ["completed", "dead", "cancelled"],
};

export async function run(ctx: Context): Promise<number> {
  const stateText = flagString(ctx.args, "state") ?? "completed";
  const states = STATES[stateText];
  if (!states || !Object.hasOwn(STATES, stateText)) {
    throw new UsageError(`Invalid value "${stateText}" for --state`, {
      hint: "use completed, dead, cancelled or all-finished",
    });
  }
  let olderMs = flagDuration(ctx.args, "older-than");
  const dryRun = flagBool(ctx.args, "dry-run");
  const queue = await ctx.openQueue();
  if (olderMs === undefined) {
    const retain = (await queue.config()).retainCompletedMs;
    olderMs = retain > 0 ? retain : 7 * 86_400_000;
  }
  const finishedBefore = await queue.now() - olderMs;
  const count = await queue.prune({ states, olderThanMs: olderMs, dryRun });
  if (ctx.json) {
    ctx.io.out(json({
      deleted: dryRun ? 0 : count,
      matched: count,
      dry_run: dryRun,
      states,
      finished_before: iso(finishedBefore),
    }));
  } else {
    const names = states.length > 1
      ? `${states.slice(0, -1).join(", ")} and ${states.at(-1)}`
      : states[0]!;
    const what = `${count} ${names} job${count === 1 ? "" : "s"}`;
    ctx.io.out(
      `${dryRun ? "Would delete" : "Deleted"} ${what} finished before ` +
        `${localTime(finishedBefore)} (older than ${formatDuration(olderMs)})\n`,
    );
  }
  return EXIT.ok;
}
