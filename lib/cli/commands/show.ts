/**
 * `queuectl show ID`: every field of a job and its attempt history.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { attemptJson, jobJson, json, localTime, palette, stateColor, table } from "../render.ts";
import { EXIT, UsageError } from "../../errors.ts";
import { attemptsLeft } from "../../job/job.ts";
import { idProblem } from "../../job/input.ts";
import { formatDuration } from "../../time.ts";

/** The id argument, validated like enqueue validates ids. */
export function jobIdArg(id: string): string {
  const problem = idProblem(id);
  if (problem) throw new UsageError(`Invalid job id ${JSON.stringify(id)}: ${problem}`);
  return id;
}

export async function run(ctx: Context): Promise<number> {
  const id = jobIdArg(ctx.args.positionals[0]!);
  const queue = await ctx.openQueue();
  const job = await queue.get(id);
  const attempts = await queue.attempts(id);
  if (ctx.json) {
    ctx.io.out(json({ ...jobJson(job), history: attempts.map(attemptJson) }));
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  const timeout = job.timeoutMs === null
    ? "default (job-timeout)"
    : job.timeoutMs === 0
    ? "none"
    : formatDuration(job.timeoutMs);
  const fields: [string, string][] = [
    ["id", job.id],
    ["command", job.command],
    ["state", stateColor(p, job.state)(job.state)],
    ["priority", String(job.priority)],
    ["attempts", `${job.attempts} (${attemptsLeft(job)} left of 1 + ${job.maxRetries} retries)`],
    ["timeout", timeout],
    ["cwd", job.cwd],
    ["env", Object.keys(job.env).length ? JSON.stringify(job.env) : "-"],
    ["run at", localTime(job.runAt)],
    ["created", localTime(job.createdAt)],
    ["updated", localTime(job.updatedAt)],
    ["finished", localTime(job.finishedAt)],
  ];
  if (job.workerId) {
    fields.push(["worker", job.workerId], ["lease until", localTime(job.leaseExpiresAt)]);
  }
  if (job.lastError) fields.push(["last error", job.lastError]);
  let out = fields.map(([k, v]) => `${p.bold(k.padEnd(12))}${v}\n`).join("");
  if (attempts.length) {
    out += `\n${p.bold("Attempts")}\n` + table(
      p,
      ["#", "STARTED", "DURATION", "OUTCOME", "EXIT", "WORKER", "ERROR"],
      attempts.map((a) => [
        String(a.attempt),
        localTime(a.startedAt),
        a.finishedAt === null ? "-" : formatDuration(a.finishedAt - a.startedAt),
        a.outcome ?? "running",
        a.exitCode !== null ? String(a.exitCode) : a.signal ?? "-",
        a.workerId,
        a.error ?? "",
      ]),
    );
  }
  ctx.io.out(out);
  return EXIT.ok;
}
