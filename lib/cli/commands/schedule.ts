/**
 * `queuectl schedule add|list|remove|pause|resume`: recurring jobs. Workers enqueue their
 * occurrences (lib/worker/scheduler.ts); this command only stores and changes schedules.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagString } from "../args.ts";
import { clip, json, localTime, palette, table } from "../render.ts";
import { scheduleJson } from "../../json.ts";
import { EXIT, NotFoundError, UsageError } from "../../errors.ts";
import type { JobDefaults } from "../../job/input.ts";
import { JobInputError, parseJobJson } from "../../job/input.ts";
import { flagDuration } from "../duration_flag.ts";
import type { ScheduleSpec } from "../../schedule/spec.ts";
import {
  cronShapeProblem,
  everyText,
  loadCron,
  localTimeZone,
  MIN_EVERY_MS,
  nextFireAfter,
  scheduleNameProblem,
  timeZoneProblem,
} from "../../schedule/spec.ts";
import { templateFrom } from "../../schedule/template.ts";
import { overridesFrom } from "./enqueue.ts";
import { MAX_DURATION_MS } from "../../time_parse.ts";

/** The NAME argument, checked. */
function nameArg(ctx: Context): string {
  const name = ctx.args.positionals[0]!;
  const problem = scheduleNameProblem(name);
  if (problem) throw new UsageError(`Invalid schedule name ${JSON.stringify(name)}: ${problem}`);
  return name;
}

function notFound(name: string): NotFoundError {
  return new NotFoundError(`Schedule "${name}" not found`, {
    subject: name,
    reason: "schedule_not_found",
    hint: "`queuectl schedule list` shows the schedules",
  });
}

/** The spec from --cron/--every/--tz, checked completely (croner parses a cron expression). */
async function specFrom(ctx: Context): Promise<ScheduleSpec> {
  const cron = flagString(ctx.args, "cron");
  const everyMs = flagDuration(ctx.args, "every");
  const zone = flagString(ctx.args, "tz");
  if (cron !== undefined && everyMs !== undefined) {
    throw new UsageError("--cron and --every cannot be combined", { hint: "give one of them" });
  }
  if (cron === undefined && everyMs === undefined) {
    throw new UsageError("Missing when the schedule fires", {
      hint: 'give --cron "EXPR" (e.g. --cron "0 2 * * *") or --every D (e.g. --every 10m)',
    });
  }
  if (everyMs !== undefined) {
    if (zone !== undefined) {
      throw new UsageError("--tz applies to --cron only: an interval does not depend on a zone");
    }
    if (everyMs < MIN_EVERY_MS || everyMs % 1000 !== 0) {
      throw new UsageError(
        `Invalid value "${flagString(ctx.args, "every")}" for --every: ` +
          "give whole seconds, at least 1s",
      );
    }
    if (everyMs > MAX_DURATION_MS) {
      throw new UsageError(`Invalid value for --every: more than 10 years`);
    }
    return { kind: "every", everyMs };
  }
  const expr = cron!.trim().replace(/\s+/g, " ");
  const shape = cronShapeProblem(expr);
  if (shape) throw new UsageError(`Invalid value ${JSON.stringify(cron)} for --cron: ${shape}`);
  const timeZone = zone ?? localTimeZone();
  const zoneProblem = timeZoneProblem(timeZone);
  if (zoneProblem) {
    throw new UsageError(`Invalid value ${JSON.stringify(zone)} for --tz: ${zoneProblem}`);
  }
  const { cronCheck } = await loadCron();
  try {
    cronCheck(expr, timeZone);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new UsageError(`Invalid value ${JSON.stringify(cron)} for --cron: ${error.message}`);
  }
  return { kind: "cron", cron: expr, timeZone };
}

/** The job template from JSON or -c, with the job flags folded in. */
function templateArg(ctx: Context): string {
  const source = ctx.args.positionals[1];
  const command = flagString(ctx.args, "command");
  if (source !== undefined && command !== undefined) {
    throw new UsageError("Give the job as JSON or with --command, not both");
  }
  if (source === undefined && command === undefined) {
    throw new UsageError("Missing the job to run", {
      hint: `give JSON like '{"command":"./backup.sh"}' after the name, or -c COMMAND`,
    });
  }
  const defaults: JobDefaults = { cwd: ctx.io.cwd, now: ctx.clock.now() };
  const overrides = overridesFrom(ctx, defaults);
  let input: Record<string, unknown>;
  if (command !== undefined) input = { command };
  else {
    try {
      input = parseJobJson(source!);
    } catch (error) {
      if (!(error instanceof JobInputError)) throw error;
      if (!source!.trimStart().startsWith("{")) {
        throw new UsageError(`The job is not JSON: ${JSON.stringify(source)}`, {
          hint: `to run a shell command, use -c ${JSON.stringify(source)}`,
        });
      }
      throw new UsageError(`job: ${error.message}`);
    }
  }
  try {
    return templateFrom(input, overrides, defaults);
  } catch (error) {
    if (!(error instanceof JobInputError)) throw error;
    throw new UsageError(
      command !== undefined && error.field === "command"
        ? `Invalid value for --command: ${error.problem}`
        : `job: ${error.message}`,
      error.typo
        ? { hint: `job fields: ${error.typo.candidates.join(", ")}`, typo: error.typo }
        : { hint: "see `queuectl schedule add --help`" },
    );
  }
}

async function add(ctx: Context): Promise<number> {
  const name = nameArg(ctx);
  // Everything is checked before the database is opened: bad input changes nothing.
  const spec = await specFrom(ctx);
  const template = templateArg(ctx);
  const local = ctx.clock.now();
  if (await nextFireAfter(spec, local, local) === null) {
    throw new UsageError(`--cron "${flagString(ctx.args, "cron")}" names no date that comes`, {
      hint: "check the day-of-month and month fields",
    });
  }
  const queue = await ctx.openQueue();
  const now = await queue.schedules.now();
  const nextAt = (await nextFireAfter(spec, now, now))!;
  const stored = await queue.schedules.scheduleAdd({
    schedule: { name, spec, template, anchor: now, nextAt },
  });
  if (ctx.json) ctx.io.out(json(scheduleJson(stored)));
  else {
    ctx.io.out(`${name}\n`);
    ctx.io.err(`queuectl: note: "${name}" runs first at ${localTime(nextAt)}\n`);
  }
  return EXIT.ok;
}

async function list(ctx: Context): Promise<number> {
  const schedules = await (await ctx.openQueue()).schedules.scheduleList();
  if (ctx.json) {
    ctx.io.out(json(schedules.map(scheduleJson)));
    return EXIT.ok;
  }
  if (schedules.length === 0) {
    ctx.io.out("No schedules. Add one with `queuectl schedule add NAME --every 1h -c CMD`.\n");
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  ctx.io.out(table(
    p,
    ["NAME", "WHEN", "NEXT RUN", "LAST RUN", "LAST JOB", "COMMAND"],
    schedules.map((s) => {
      const job = JSON.parse(s.template) as { command?: unknown };
      return [
        s.name,
        s.spec.kind === "cron"
          ? `cron ${s.spec.cron} (${s.spec.timeZone})`
          : `every ${everyText(s.spec.everyMs)}`,
        s.paused ? "paused" : s.nextAt === null ? "never" : localTime(s.nextAt),
        localTime(s.lastAt),
        s.lastJobId === null ? "-" : `${s.lastJobId} ${s.lastJobState ?? "(pruned)"}`,
        clip(typeof job.command === "string" ? job.command : "?", 50),
      ];
    }),
  ));
  return EXIT.ok;
}

async function remove(ctx: Context): Promise<number> {
  const name = nameArg(ctx);
  const removed = await (await ctx.openQueue()).schedules.scheduleRemove({ name });
  if (!removed) throw notFound(name);
  if (ctx.json) ctx.io.out(json({ name, removed: true }));
  else ctx.io.out(`${name}\n`);
  return EXIT.ok;
}

async function setPaused(ctx: Context, paused: boolean): Promise<number> {
  const name = nameArg(ctx);
  const queue = await ctx.openQueue();
  // What it missed while paused does not fire: a resume goes on from now (the core's rule).
  const result = await queue.scheduleSetPaused(name, paused);
  if (ctx.json) ctx.io.out(json(scheduleJson(result)));
  else {
    ctx.io.out(`${name}\n`);
    if (!paused && result.nextAt !== null) {
      ctx.io.err(`queuectl: note: "${name}" runs next at ${localTime(result.nextAt)}\n`);
    }
  }
  return EXIT.ok;
}

export function run(ctx: Context): Promise<number> {
  switch (ctx.command) {
    case "schedule add":
      return add(ctx);
    case "schedule remove":
      return remove(ctx);
    case "schedule pause":
      return setPaused(ctx, true);
    case "schedule resume":
      return setPaused(ctx, false);
    default:
      return list(ctx);
  }
}
