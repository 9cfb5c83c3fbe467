/**
 * `queuectl list`: jobs in enqueue order, optionally of one state.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagInt, flagString } from "../args.ts";
import { clip, json, localTime, palette, stateColor, table } from "../render.ts";
import { jobJson } from "../../json.ts";
import { EXIT, UsageError } from "../../errors.ts";
import type { Job } from "../../job/job.ts";
import type { JobState } from "../../job/state.ts";
import { isJobState, JOB_STATES } from "../../job/state.ts";

export const DEFAULT_LIMIT = 100;

export function stateFlag(ctx: Context): JobState | undefined {
  const state = flagString(ctx.args, "state");
  if (state === undefined) return undefined;
  if (!isJobState(state)) {
    throw new UsageError(`Unknown state "${state}"`, {
      hint: `states: ${JOB_STATES.join(", ")}`,
      typo: { input: state, candidates: JOB_STATES },
    });
  }
  return state;
}

/** The human table of jobs, with a note when the list was cut. */
export function renderJobs(ctx: Context, jobs: Job[], total: number, what: string): void {
  if (jobs.length === 0) {
    ctx.io.out(`No ${what}.\n`);
    return;
  }
  const p = palette(ctx.color);
  ctx.io.out(table(
    p,
    ["ID", "STATE", "PRI", "ATTEMPTS", "RUN AT", "COMMAND"],
    jobs.map((job) => [
      job.id,
      stateColor(p, job.state)(job.state),
      String(job.priority),
      String(job.attempts),
      localTime(job.runAt),
      clip(job.command, 60),
    ]),
  ));
  if (jobs.length < total) {
    ctx.io.out(p.dim(`showing ${jobs.length} of ${total} ${what} (use --limit N for more)`) + "\n");
  }
}

export async function run(ctx: Context): Promise<number> {
  const state = stateFlag(ctx);
  const limit = flagInt(ctx.args, "limit", 1, 1_000_000) ?? DEFAULT_LIMIT;
  const { jobs, total } = await (await ctx.openQueue()).list(
    state ? { states: [state], limit } : { limit },
  );
  if (ctx.json) {
    ctx.io.out(json(jobs.map(jobJson)));
  } else {
    renderJobs(ctx, jobs, total, state ? `${state} jobs` : "jobs");
  }
  return EXIT.ok;
}
