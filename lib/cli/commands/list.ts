/**
 * `queuectl list`: the newest jobs (of some states), oldest first, a page at a time.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { queuesFlag } from "../queues_flag.ts";
import { flagInt, flagString } from "../args.ts";
import { clip, json, localTime, palette, stateColor, table } from "../render.ts";
import { jobJson } from "../../json.ts";
import { jobIdArg } from "./show.ts";
import { EXIT, UsageError } from "../../errors.ts";
import type { Job } from "../../job/job.ts";
import { DEFAULT_QUEUE } from "../../job/job.ts";
import type { JobState } from "../../job/state.ts";
import { isJobState, JOB_STATES } from "../../job/state.ts";

export const DEFAULT_LIMIT = 100;
/** The command column off a terminal, where no width is known. */
const COMMAND_WIDTH = 60;

/** `--state S[,S…]`: the states asked for, in table order; undefined when absent. */
export function statesFlag(ctx: Context): JobState[] | undefined {
  const text = flagString(ctx.args, "state");
  if (text === undefined) return undefined;
  const wanted = new Set<JobState>();
  for (const part of text.split(",")) {
    const state = part.trim();
    if (state === "") {
      throw new UsageError(`Invalid value ${JSON.stringify(text)} for --state`, {
        hint: "give states separated by commas, e.g. --state pending,failed",
      });
    }
    if (!isJobState(state)) {
      throw new UsageError(`Unknown state "${state}"`, {
        hint: `states: ${JOB_STATES.join(", ")}`,
        typo: { input: state, candidates: JOB_STATES },
      });
    }
    wanted.add(state);
  }
  return JOB_STATES.filter((state) => wanted.has(state));
}

/** "jobs", "dead jobs", "pending or failed jobs". */
function jobsOf(states: readonly JobState[] | undefined): string {
  if (states === undefined || states.length === JOB_STATES.length) return "jobs";
  const names = states.length === 1
    ? states[0]!
    : `${states.slice(0, -1).join(", ")} or ${states[states.length - 1]}`;
  return `${names} jobs`;
}

/** The human table of jobs, fitted to the terminal's width when stdout is one. */
export function renderJobs(ctx: Context, jobs: readonly Job[]): void {
  const p = palette(ctx.color);
  const columns = ctx.io.stdoutIsTerminal ? ctx.io.terminalColumns?.() : undefined;
  // A QUEUE column only once a job of the page is in a named queue: the seed's table otherwise.
  const queueColumn = jobs.some((job) => job.queue !== DEFAULT_QUEUE);
  ctx.io.out(table(
    p,
    ["ID", "STATE", ...(queueColumn ? ["QUEUE"] : []), "PRI", "ATTEMPTS", "RUN AT", "COMMAND"],
    jobs.map((job) => [
      job.id,
      stateColor(p, job.state)(job.state),
      ...(queueColumn ? [job.queue] : []),
      String(job.priority),
      String(job.attempts),
      // A job waiting for others runs when they complete, not at a time.
      job.waitingOn > 0 ? p.dim(`waiting on ${job.waitingOn}`) : localTime(job.runAt),
      // On a terminal the table clips it to the width left; elsewhere to a fixed width.
      clip(job.command, columns === undefined ? COMMAND_WIDTH : Infinity),
    ]),
    columns === undefined ? {} : { width: columns },
  ));
}

export async function run(ctx: Context): Promise<number> {
  const queues = queuesFlag(ctx);
  if (queues !== undefined) return await listOfQueues(ctx, queues);
  const states = statesFlag(ctx);
  const limit = flagInt(ctx.args, "limit", 1, 1_000_000) ?? DEFAULT_LIMIT;
  const beforeText = flagString(ctx.args, "before");
  const before = beforeText === undefined ? undefined : jobIdArg(beforeText);
  const queue = await ctx.openQueue();
  // Pages are keyed on the enqueue order (the sequence number), never an offset.
  const beforeSeq = before === undefined ? undefined : (await queue.get(before)).seq;
  const { jobs, total, older } = await queue.list({
    limit,
    ...(states === undefined ? {} : { states }),
    ...(beforeSeq === undefined ? {} : { beforeSeq }),
  });
  if (ctx.json) {
    ctx.io.out(json(jobs.map(jobJson)));
    return EXIT.ok;
  }
  const what = jobsOf(states);
  if (jobs.length === 0) {
    ctx.io.out(`No ${what}${before === undefined ? "" : ` before ${before}`}.\n`);
    return EXIT.ok;
  }
  renderJobs(ctx, jobs);
  if (jobs.length < total) {
    const which = before === undefined
      ? `the newest ${jobs.length} of ${total} ${what}`
      : `${jobs.length} of ${total} ${what}, before ${before}`;
    const more = older ? `older: --before ${jobs[0]!.id}` : "none older";
    ctx.io.out(palette(ctx.color).dim(`showing ${which} (${more})`) + "\n");
  }
  return EXIT.ok;
}

/**
 * `list --queue`: the newest jobs of some queues (and states), found by the bounded search the
 * dashboard uses (maintained counts are per state, not per queue), so a page says how many it
 * shows, not of how many.
 */
async function listOfQueues(ctx: Context, queues: string[]): Promise<number> {
  const states = statesFlag(ctx);
  const limit = flagInt(ctx.args, "limit", 1, 1_000_000) ?? DEFAULT_LIMIT;
  const beforeText = flagString(ctx.args, "before");
  const before = beforeText === undefined ? undefined : jobIdArg(beforeText);
  const queue = await ctx.openQueue();
  const beforeSeq = before === undefined ? undefined : (await queue.get(before)).seq;
  const found = await queue.search(
    { queues, ...(states === undefined ? {} : { states }) },
    { limit, ...(beforeSeq === undefined ? {} : { beforeSeq }) },
  );
  const jobs = [...found.jobs].reverse();
  if (ctx.json) {
    ctx.io.out(json(jobs.map(jobJson)));
    return EXIT.ok;
  }
  const what = `${jobsOf(states)} in ${queues.length === 1 ? "queue" : "queues"} ${
    queues.join(", ")
  }`;
  if (jobs.length === 0) {
    ctx.io.out(`No ${what}${before === undefined ? "" : ` before ${before}`}.\n`);
    return EXIT.ok;
  }
  renderJobs(ctx, jobs);
  if (found.nextBeforeSeq !== null) {
    ctx.io.out(
      palette(ctx.color).dim(`showing ${jobs.length} ${what} (older: --before ${jobs[0]!.id})`) +
        "\n",
    );
  }
  return EXIT.ok;
}
