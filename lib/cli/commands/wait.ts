/**
 * `queuectl wait ID…`: block until jobs are completed, dead or cancelled.
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
import type { Queue, WaitResult } from "../../queue.ts";

/** What `wait` prints for each job: `ID state`, with the last error of a dead one. */
export function stateLines(jobs: readonly Job[]): string {
  return jobs.map((j) => `${j.id} ${j.state}${j.lastError ? ` (${j.lastError})` : ""}\n`).join("");
}

/**
 * The exit code of a wait: 0 when every job completed, 1 when any is dead or cancelled, 124 on
 * timeout.
 */
function exitCode(result: WaitResult): number {
  if (result.timedOut) return EXIT.timeout;
  return result.jobs.every((j) => j.state === "completed") ? EXIT.ok : 1;
}

/** How long a wait runs before it looks whether any worker could finish the jobs. */
const NO_WORKER_NOTICE_MS = 3000;

/** Whether any registered worker is alive and answering (judged by lib/worker/liveness.ts). */
export async function anyWorkerAlive(queue: Queue): Promise<boolean> {
  return (await queue.workers()).some((w) => w.liveness.health === "ok");
}

/** `--db PATH` as the user gave it, quoted for a shell where needed; "" without the flag. */
function dbFlag(ctx: Context): string {
  const db = ctx.args.flags.get("db");
  if (typeof db !== "string") return "";
  return ` --db ${/^[\w./~:+-]+$/.test(db) ? db : `'${db.replaceAll("'", `'\\''`)}'`}`;
}

/**
 * Waits for `ids`, drawing a progress line on a terminal; returns the jobs as they ended and the
 * exit code. Prints nothing on stdout: `wait` and `enqueue --wait` each print their own result.
 * On a terminal, after a few seconds, it says so if no worker runs for the queue (the jobs would
 * wait for ever).
 */
export async function waitForJobs(
  ctx: Context,
  queue: Queue,
  ids: readonly string[],
  timeoutMs: number | undefined,
): Promise<WaitResult & { code: number }> {
  let last = "";
  const progress = ctx.io.stderrIsTerminal && !ctx.json;
  const started = ctx.clock.now();
  let looked = !ctx.io.stderrIsTerminal;
  const result = await queue.waitFor(ids, {
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    onProgress: (jobs: Job[]) => {
      if (!looked && ctx.clock.now() - started >= NO_WORKER_NOTICE_MS) {
        looked = true;
        anyWorkerAlive(queue).then((alive) => {
          if (alive) return;
          ctx.io.err(
            `\r\x1b[2Kqueuectl: note: no worker is running for this queue; start one with ` +
              `\`queuectl worker start${dbFlag(ctx)}\`\n`,
          );
          last = ""; // draw the progress line again, below the note
        }).catch(() => {/* only a note: a busy database must not end the wait */});
      }
      if (!progress) return;
      const done = jobs.filter((j) => j.state === "completed").length;
      const dead = jobs.filter((j) => j.state === "dead").length;
      const cancelled = jobs.filter((j) => j.state === "cancelled").length;
      const line = `waiting: ${done} completed, ${dead} dead, ` +
        `${cancelled > 0 ? `${cancelled} cancelled, ` : ""}` +
        `${jobs.length - done - dead - cancelled} to go`;
      if (line !== last) ctx.io.err(`\r\x1b[2K${line}`);
      last = line;
    },
  });
  if (progress) ctx.io.err("\r\x1b[2K");
  return { ...result, code: exitCode(result) };
}

export async function run(ctx: Context): Promise<number> {
  const ids = [...new Set(ctx.args.positionals.map(jobIdArg))];
  const timeoutMs = flagDuration(ctx.args, "timeout");
  const result = await waitForJobs(ctx, await ctx.openQueue(), ids, timeoutMs);
  if (ctx.json) {
    ctx.io.out(json({ jobs: result.jobs.map(jobJson), timed_out: result.timedOut }));
  } else {
    ctx.io.out(stateLines(result.jobs));
  }
  return result.code;
}
