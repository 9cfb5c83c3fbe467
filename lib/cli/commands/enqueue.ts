/**
 * `queuectl enqueue`: validate job input completely, then store it in one transaction.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagBool, flagInt, flagList, flagString } from "../args.ts";
import { json } from "../render.ts";
import { jobJson } from "../../json.ts";
import { ConflictError, EXIT, UsageError } from "../../errors.ts";
import type { NewJob } from "../../job/job.ts";
import type { JobDefaults, JobOverrides } from "../../job/input.ts";
import {
  afterProblem,
  cwdProblem,
  envNameProblem,
  JobInputError,
  MAX_PRIORITY,
  MAX_RETRIES_LIMIT,
  MIN_PRIORITY,
  parseJobJson,
  runAtValue,
  textProblem,
  uniqueKeyProblem,
  validateJob,
} from "../../job/input.ts";
import { resolvePath } from "../../path.ts";
import { flagDuration } from "../duration_flag.ts";
import { idProblem, queueNameProblem } from "../../job/id.ts";
import { lazy } from "../../lazy.ts";

/** A value quoted for a message, shortened: a command may be 128 KiB long. */
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? value.slice(0, 39) + "…" : value);
}

/** Reads the flags that override job fields; a bad value is blamed on its flag. */
export function overridesFrom(ctx: Context, defaults: JobDefaults): JobOverrides {
  const overrides: JobOverrides = {};
  const id = flagString(ctx.args, "id");
  if (id !== undefined) {
    const problem = idProblem(id);
    if (problem) throw new UsageError(`Invalid value ${quote(id)} for --id: ${problem}`);
    overrides.id = id;
  }
  const queue = flagString(ctx.args, "queue");
  if (queue !== undefined) {
    const problem = queueNameProblem(queue);
    if (problem) throw new UsageError(`Invalid value ${quote(queue)} for --queue: ${problem}`);
    overrides.queue = queue;
  }
  const envPairs = flagList(ctx.args, "env");
  if (envPairs.length > 0) {
    overrides.env = {};
    for (const pair of envPairs) {
      const eq = pair.indexOf("=");
      const problem = eq <= 0 ? "must be NAME=VALUE" : envNameProblem(pair.slice(0, eq)) ??
        textProblem(pair.slice(eq + 1), "an environment variable cannot hold it");
      if (problem) {
        throw new UsageError(
          `Invalid value ${quote(pair)} for --env: ${
            problem.startsWith("contains") ? `the value ${problem}` : problem
          }`,
          eq <= 0 ? { hint: "e.g. --env STAGE=prod" } : {},
        );
      }
      overrides.env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  const afterValues = flagList(ctx.args, "after");
  if (afterValues.length > 0) {
    const ids = [...new Set(afterValues.flatMap((v) => v.split(",")).map((id) => id.trim()))];
    const problem = afterProblem(ids);
    if (problem) {
      throw new UsageError(`Invalid value for --after: it ${problem}`, {
        hint: "e.g. --after 12,build (ids of jobs enqueued before)",
      });
    }
    if (overrides.id !== undefined && ids.includes(overrides.id)) {
      throw new UsageError(`--after names the job itself ("${overrides.id}")`, {
        hint: "a job cannot wait for itself",
      });
    }
    overrides.after = ids;
  }
  const uniqueKey = flagString(ctx.args, "unique-key");
  if (uniqueKey !== undefined) {
    const problem = uniqueKeyProblem(uniqueKey);
    if (problem) {
      throw new UsageError(`Invalid value ${quote(uniqueKey)} for --unique-key: it ${problem}`);
    }
    overrides.uniqueKey = uniqueKey;
  }
  const cwd = flagString(ctx.args, "cwd");
  if (cwd !== undefined) {
    const problem = cwdProblem(cwd);
    if (problem) throw new UsageError(`Invalid value ${quote(cwd)} for --cwd: ${problem}`);
    overrides.cwd = resolvePath(defaults.cwd, cwd);
  }
  const priority = flagInt(ctx.args, "priority", MIN_PRIORITY, MAX_PRIORITY);
  if (priority !== undefined) overrides.priority = priority;
  const maxRetries = flagInt(ctx.args, "max-retries", 0, MAX_RETRIES_LIMIT);
  if (maxRetries !== undefined) overrides.maxRetries = maxRetries;
  const timeoutMs = flagDuration(ctx.args, "timeout");
  if (timeoutMs !== undefined) overrides.timeoutMs = timeoutMs;
  const delayMs = flagDuration(ctx.args, "delay");
  const runAtText = flagString(ctx.args, "run-at");
  if (delayMs !== undefined && runAtText !== undefined) {
    throw new UsageError("--delay and --run-at cannot be combined", { hint: "give one of them" });
  }
  if (delayMs !== undefined) overrides.delayMs = delayMs;
  if (runAtText !== undefined) {
    try {
      overrides.runAt = runAtValue("run-at", runAtText, defaults);
    } catch (error) {
      if (error instanceof JobInputError) {
        throw new UsageError(`Invalid value for --run-at: ${error.problem}`);
      }
      throw error;
    }
  }
  return overrides;
}

/** The most notes printed one by one; the rest are counted. */
const MAX_NOTES = 3;

/** Notes (`note: …`, `warning: …`) on stderr: the first few, then how many more. */
function printNotes(ctx: Context, notes: readonly string[]): void {
  for (const note of notes.slice(0, MAX_NOTES)) ctx.io.err(`queuectl: ${note}\n`);
  if (notes.length > MAX_NOTES) {
    ctx.io.err(`queuectl: note: … and ${notes.length - MAX_NOTES} more like these\n`);
  }
}

/**
 * Directories of new jobs that are not directories here. Not an error: a job may create it for
 * the next one, or it may be mounted by the time the job runs.
 */
function cwdWarnings(jobs: readonly NewJob[]): string[] {
  const warnings: string[] = [];
  for (const cwd of new Set(jobs.map((job) => job.cwd))) {
    let isDirectory: boolean;
    try {
      isDirectory = Deno.statSync(cwd).isDirectory;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) continue; // not ours to judge
      warnings.push(
        `warning: cwd ${JSON.stringify(cwd)} does not exist here; ` +
          "the job fails to start unless it exists when it runs",
      );
      continue;
    }
    if (!isDirectory) {
      warnings.push(
        `warning: cwd ${JSON.stringify(cwd)} is not a directory; ` +
          "the job fails to start unless it is one when it runs",
      );
    }
  }
  return warnings;
}

/** A job given as JSON was refused: say where, and show what a job looks like. */
function toUsage(error: unknown, where: string): unknown {
  if (!(error instanceof JobInputError)) return error;
  return new UsageError(`${where}: ${error.message}`, {
    hint: error.typo
      ? `job fields: ${error.typo.candidates.join(", ")}`
      : 'a job looks like {"command":"echo hi","priority":5}; see `queuectl enqueue --help`',
    ...(error.typo ? { typo: error.typo } : {}),
  });
}

export async function run(ctx: Context): Promise<number> {
  const source = ctx.args.positionals[0];
  const command = flagString(ctx.args, "command");
  const id = flagString(ctx.args, "id");
  if (source !== undefined && command !== undefined) {
    throw new UsageError("Give the job as JSON or with --command, not both");
  }
  if (source === undefined && command === undefined) {
    throw new UsageError("Missing the job to enqueue", {
      hint: `give JSON like '{"command":"echo hi"}', - to read JSON lines, or -c COMMAND`,
    });
  }
  if (source === "-" && id !== undefined) {
    throw new UsageError("--id cannot be used with -, which may read many jobs", {
      hint: 'put "id" in each JSON line',
    });
  }
  if (source === "-" && flagString(ctx.args, "unique-key") !== undefined) {
    throw new UsageError("--unique-key cannot be used with -, which may read many jobs", {
      hint: 'put "unique_key" in each JSON line',
    });
  }

  // Notes about accepted values (a run_at in the past), printed once the jobs are stored.
  const notes: string[] = [];
  let where = "";
  const defaults: JobDefaults = {
    cwd: ctx.io.cwd,
    now: ctx.clock.now(),
    note: (field, note) =>
      notes.push(`note: ${where}${field === "run-at" ? "--run-at" : `field "${field}"`} ${note}`),
  };
  const overrides = overridesFrom(ctx, defaults);
  const jobs: NewJob[] = [];
  const lineOf = new Map<string, number>();
  const jobLines: number[] = [];
  if (source === "-") {
    const lines = (await ctx.io.readStdin()).split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === "") continue;
      where = `stdin line ${i + 1}: `;
      try {
        const job = validateJob(parseJobJson(line), overrides, defaults);
        if (job.id !== undefined) lineOf.set(job.id, i + 1);
        jobs.push(job);
        jobLines.push(i + 1);
      } catch (error) {
        throw toUsage(error, `stdin line ${i + 1}`);
      }
    }
    // A pipeline that produced no jobs is not an error: nothing to store, nothing to open.
    if (jobs.length === 0) {
      if (ctx.json) ctx.io.out(json([]));
      return EXIT.ok;
    }
    const seen = new Set<string>();
    for (const [index, job] of jobs.entries()) {
      // A job waits only for jobs before it: so no cycle can be built.
      for (const dep of job.after ?? []) {
        const later = lineOf.get(dep);
        if (later !== undefined && !seen.has(dep)) {
          throw new UsageError(
            `stdin line ${jobLines[index]}: field "after" names job "${dep}", ` +
              `which comes later (stdin line ${later})`,
            { hint: "a job can only wait for jobs that exist or come on an earlier line" },
          );
        }
      }
      if (job.id === undefined) continue;
      if (seen.has(job.id)) {
        throw new UsageError(`Job id "${job.id}" appears twice on standard input`);
      }
      seen.add(job.id);
    }
  } else {
    if (command !== undefined) {
      // Every other field comes from a flag, checked already: only the command can be wrong.
      try {
        jobs.push(validateJob({ command }, overrides, defaults));
      } catch (error) {
        if (!(error instanceof JobInputError)) throw error;
        throw new UsageError(`Invalid value ${quote(command)} for --command: ${error.problem}`);
      }
    } else {
      try {
        jobs.push(validateJob(parseJobJson(source!), overrides, defaults));
      } catch (error) {
        if (
          error instanceof JobInputError && error.field === null &&
          error.problem.startsWith("is not valid JSON") && !source!.trimStart().startsWith("{")
        ) {
          throw new UsageError(`The job is not JSON: ${JSON.stringify(source)}`, {
            hint: `to run a shell command, use -c ${JSON.stringify(source)}`,
          });
        }
        throw toUsage(error, "job");
      }
    }
  }

  const queue = await ctx.openQueue();
  let result;
  try {
    result = await queue.enqueue(jobs, {
      ifExists: flagBool(ctx.args, "if-not-exists") ? "keep" : "fail",
    });
  } catch (error) {
    // Name the line of a conflicting id when the jobs came from stdin (a unique key's subject
    // is the job holding it, not the line that asked for it).
    if (
      source === "-" && error instanceof ConflictError && error.subject !== undefined &&
      error.reason !== "unique_key_held"
    ) {
      const line = lineOf.get(error.subject);
      if (line !== undefined) error.message = `stdin line ${line}: ${error.message}`;
    }
    throw error;
  }
  ctx.fault?.("enqueue:after-commit-before-print");
  const kept = new Set(result.kept);
  for (const i of result.kept) {
    const key = jobs[i]?.uniqueKey;
    if (
      key !== undefined && result.jobs[i]!.uniqueKey === key && result.jobs[i]!.id !== jobs[i]!.id
    ) {
      notes.push(
        `note: job "${result.jobs[i]!.id}" holds unique key ${quote(key)}: its id is printed`,
      );
    }
  }
  notes.push(...cwdWarnings(result.inserted > 0 ? jobs : []));
  printNotes(ctx, notes);
  if (flagBool(ctx.args, "wait")) {
    // The ids first (a script may want them at once), then what `wait` prints; with --json, the
    // jobs as they ended, shaped as without --wait.
    const ids = result.jobs.map((job) => job.id);
    if (!ctx.json) {
      ctx.io.out(ids.join("\n") + "\n");
      ctx.io.flush();
    }
    const { stateLines, waitForJobs } = await lazy<typeof import("./wait.ts")>(
      import.meta.url,
      "./wait.ts",
    );
    const waited = await waitForJobs(ctx, queue, ids, undefined);
    if (ctx.json) {
      const objects = waited.jobs.map(jobJson);
      ctx.io.out(json(source === "-" ? objects : objects[0]));
    } else {
      ctx.io.out(stateLines(waited.jobs));
    }
    return waited.code;
  }
  if (ctx.json) {
    // `existed`: an existing job stands for this one (--if-not-exists: its id or key was held).
    const objects = result.jobs.map((job, i) => ({ ...jobJson(job), existed: kept.has(i) }));
    ctx.io.out(json(source === "-" ? objects : objects[0]));
  } else {
    ctx.io.out(result.jobs.map((job) => job.id).join("\n") + "\n");
  }
  return EXIT.ok;
}
