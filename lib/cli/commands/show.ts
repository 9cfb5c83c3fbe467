/**
 * `queuectl show ID`: every field of a job and its attempt history.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { escapeControls, json, localTime, palette, stateColor, table } from "../render.ts";
import { attemptJson, jobJson, jobLinkJson } from "../../json.ts";
import type { JobLink, OutputCapture } from "../../store/store.ts";
import { EXIT, UsageError } from "../../errors.ts";
import type { Job } from "../../job/job.ts";
import { attemptsLeft } from "../../job/job.ts";
import { idProblem } from "../../job/id.ts";
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
  const links = await queue.dependencies(id, DEPENDENTS_SHOWN);
  const latest = attempts[attempts.length - 1];
  const output = latest ? await queue.output(id, latest.attempt) : undefined;
  const tails = output
    ? { stdout: tailLines(output.stdout), stderr: tailLines(output.stderr) }
    : { stdout: "", stderr: "" };
  if (ctx.json) {
    ctx.io.out(json({
      ...jobJson(job),
      waits_for: links.after.map(jobLinkJson),
      dependents: links.dependents.map(jobLinkJson),
      history: attempts.map(attemptJson),
      output: latest
        ? {
          attempt: latest.attempt,
          stdout_bytes: output?.stdout.total ?? 0,
          stderr_bytes: output?.stderr.total ?? 0,
          stdout_tail: tails.stdout,
          stderr_tail: tails.stderr,
        }
        : null,
    }));
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
    ["command", escapeControls(job.command)],
    ["state", stateColor(p, job.state)(job.state)],
    ["priority", String(job.priority)],
    ["queue", job.queue],
    ["attempts", attemptsText(job)],
    ["timeout", timeout],
    ["cwd", escapeControls(job.cwd)],
    ["env", Object.keys(job.env).length ? escapeControls(JSON.stringify(job.env)) : "-"],
    ["run at", localTime(job.runAt)],
    ["created", localTime(job.createdAt)],
    ["updated", localTime(job.updatedAt)],
    ["finished", localTime(job.finishedAt)],
  ];
  if (job.workerId) {
    fields.push(["worker", job.workerId], ["lease until", localTime(job.leaseExpiresAt)]);
  }
  if (job.uniqueKey !== null) fields.push(["unique key", escapeControls(job.uniqueKey)]);
  if (links.after.length > 0) {
    const waiting = job.waitingOn > 0 ? ` ${p.dim(`(waiting on ${job.waitingOn})`)}` : "";
    fields.push(["waits for", linksText(links.after) + waiting]);
  }
  if (links.dependents.length > 0) {
    const more = links.dependents.length === DEPENDENTS_SHOWN ? ", …" : "";
    fields.push(["waited on by", linksText(links.dependents) + more]);
  }
  if (job.cancelReason !== null) {
    const label = job.state === "processing" ? "cancelling" : "cancelled";
    fields.push([label, escapeControls(job.cancelReason)]);
  }
  if (job.lastError) fields.push(["last error", escapeControls(job.lastError)]);
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
  for (const stream of ["stdout", "stderr"] as const) {
    if (!tails[stream]) continue;
    out += `\n${p.bold(`Output of attempt ${latest!.attempt}, ${stream}`)} ` +
      p.dim(`(last ${TAIL_LINES} lines; \`queuectl logs ${id}\` for all)`) + "\n" +
      escapeControls(tails[stream]) + (tails[stream].endsWith("\n") ? "" : "\n");
  }
  ctx.io.out(out);
  return EXIT.ok;
}

/**
 * The attempts line: what is left only while the job can still run. (A finished job's "3 left"
 * read as if it could still run, or had failed.)
 */
export function attemptsText(job: Job): string {
  if (job.state === "completed") return `${job.attempts} (completed on attempt ${job.attempts})`;
  if (job.state === "dead") return `${job.attempts} (1 + ${job.maxRetries} retries, all failed)`;
  if (job.state === "cancelled") return `${job.attempts} (cancelled; \`retry\` runs it again)`;
  return `${job.attempts} (${attemptsLeft(job)} left of 1 + ${job.maxRetries} retries)`;
}

const TAIL_LINES = 10;
/** Jobs that wait for this one, listed at most. */
const DEPENDENTS_SHOWN = 20;

/** `build (completed), test (pending)`; a deleted job as `(deleted)`. */
function linksText(links: readonly JobLink[]): string {
  return links.map((l) => `${l.id} (${l.state ?? "deleted"})`).join(", ");
}

/** The last lines of a capture, decoded (invalid UTF-8 becomes U+FFFD). */
function tailLines(capture: OutputCapture): string {
  let bytes = capture.tail.length ? capture.tail : capture.head;
  if (bytes === capture.tail && capture.total === capture.head.length + capture.tail.length) {
    // Nothing was cut: the tail only continues the head, and may hold just the last few bytes.
    const head = capture.head.subarray(Math.max(0, capture.head.length - 4096));
    bytes = new Uint8Array(head.length + capture.tail.length);
    bytes.set(head);
    bytes.set(capture.tail, head.length);
  }
  const text = new TextDecoder().decode(bytes.subarray(Math.max(0, bytes.length - 4096)));
  const lines = text.split("\n");
  const keep = text.endsWith("\n") ? TAIL_LINES + 1 : TAIL_LINES;
  return lines.slice(-keep).join("\n");
}
