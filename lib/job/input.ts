/**
 * Validates job input (the JSON users enqueue, and the flags that override it) into a `NewJob`.
 * Strict: unknown fields, wrong types and duplicate keys are refused, never coerced.
 *
 * @module
 */

import type { NewJob } from "./job.ts";
import { DEFAULT_QUEUE } from "./job.ts";
import type { Typo } from "../errors.ts";
import { resolvePath } from "../path.ts";
import { idProblem, queueNameProblem } from "./id.ts";
import { MAX_DURATION_MS, parseDuration, parseRunAt, RUN_AT_PAST_NOTE_MS } from "../time_parse.ts";
import { formatDuration } from "../time.ts";

/** Fields a job object may have. */
export const JOB_FIELDS = [
  "command",
  "id",
  "priority",
  "queue",
  "max_retries",
  "timeout",
  "run_at",
  "delay",
  "cwd",
  "env",
  "after",
  "unique_key",
] as const;

/**
 * Other names users give job fields (from other queues' job formats and from habit), so that a
 * "did you mean" goes by meaning: `cmd` is one edit from `cwd`, but it means `command`.
 */
export const FIELD_ALIASES: Readonly<Record<string, (typeof JOB_FIELDS)[number]>> = {
  cmd: "command",
  cmdline: "command",
  commandline: "command",
  run: "command",
  exec: "command",
  execute: "command",
  script: "command",
  shell: "command",
  name: "id",
  job_id: "id",
  key: "id",
  prio: "priority",
  pri: "priority",
  group: "queue",
  queue_name: "queue",
  channel: "queue",
  tube: "queue",
  retries: "max_retries",
  retry: "max_retries",
  max_attempts: "max_retries",
  attempts: "max_retries",
  tries: "max_retries",
  at: "run_at",
  when: "run_at",
  schedule: "run_at",
  scheduled_at: "run_at",
  start_at: "run_at",
  eta: "run_at",
  not_before: "run_at",
  countdown: "delay",
  depends_on: "after",
  dependencies: "after",
  needs: "after",
  singleton_key: "unique_key",
  unique: "unique_key",
  uniq: "unique_key",
  time_limit: "timeout",
  max_runtime: "timeout",
  dir: "cwd",
  workdir: "cwd",
  working_dir: "cwd",
  working_directory: "cwd",
  directory: "cwd",
  chdir: "cwd",
  cd: "cwd",
  pwd: "cwd",
  environment: "env",
  environ: "env",
  vars: "env",
  variables: "env",
};

export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 10;
export const DEFAULT_PRIORITY = 5;
export const MAX_RETRIES_LIMIT = 1000;
/** Linux refuses a single exec argument longer than this (MAX_ARG_STRLEN), and `sh -c` needs one. */
export const MAX_COMMAND_BYTES = 128 * 1024 - 1;

/** A problem with one field: `field` and what is wrong with it. */
export class JobInputError extends Error {
  constructor(
    readonly field: string | null,
    readonly problem: string,
    /** A misspelt field name, for a "did you mean" when the error is printed. */
    readonly typo?: Typo,
  ) {
    super(field === null ? problem : `field "${field}" ${problem}`);
    this.name = "JobInputError";
  }
}

/**
 * Values given as command-line flags, validated already; each replaces the JSON field of the same
 * meaning.
 */
export interface JobOverrides {
  id?: string;
  priority?: number;
  queue?: string;
  maxRetries?: number;
  timeoutMs?: number;
  runAt?: number;
  delayMs?: number;
  /** Resolved already. */
  cwd?: string;
  /** Added to the field's variables, replacing those of the same name. */
  env?: Record<string, string>;
  /** Replaces the field's list. */
  after?: readonly string[];
  uniqueKey?: string;
}

/** What fills the fields a job leaves out. */
export interface JobDefaults {
  cwd: string;
  now: number;
  /** For local `run_at` values; the system's zone when absent. */
  timeZone?: string;
  /**
   * Told about a value that is accepted but may not be what was meant (a run_at well in the
   * past): the field and what to say about it.
   */
  note?: (field: string, note: string) => void;
}

/**
 * Finds the first key that appears twice in one JSON object (JSON.parse keeps the last silently).
 * Expects text that JSON.parse accepted.
 */
export function findDuplicateKey(text: string): string | undefined {
  // One frame per open object or array: its keys so far (null for arrays), and its name in the
  // parent (the key it is the value of), to name a nested duplicate as "env.HOME".
  const stack: { keys: Set<string> | null; name: string | null; lastKey: string | null }[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
      const frame = stack[stack.length - 1];
      if (expectKey && frame?.keys) {
        const raw = text.slice(start, i + 1);
        const key = raw.includes("\\") ? JSON.parse(raw) as string : raw.slice(1, -1);
        if (frame.keys.has(key)) {
          return [...stack.map((f) => f.name).filter((n) => n !== null), key].join(".")
            .replaceAll(".[]", "[]");
        }
        frame.keys.add(key);
        frame.lastKey = key;
        expectKey = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      const name = parent?.keys ? parent.lastKey : parent ? "[]" : null;
      stack.push({ keys: c === 0x7b ? new Set() : null, name, lastKey: null });
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1]?.keys instanceof Set;
    }
  }
  return undefined;
}

const encoder = new TextEncoder();

function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/** Parses one job's JSON text into a plain object, refusing what JSON.parse lets through. */
export function parseJobJson(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof SyntaxError ? error.message.replace(/^JSON\.parse: /, "") : "";
    throw new JobInputError(null, `is not valid JSON${detail ? ` (${detail})` : ""}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw new JobInputError(null, `must be a JSON object like {"command":"echo hi"}, not ${kind}`);
  }
  // Text exactly as JSON.stringify writes the object cannot hold a key twice (the object holds
  // each once); most generated lines are that, and the check is native. Others are scanned.
  const duplicate = JSON.stringify(value) === text ? undefined : findDuplicateKey(text);
  if (duplicate !== undefined) {
    throw new JobInputError(duplicate, "appears twice; give each field once");
  }
  return value as Record<string, unknown>;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** What is wrong with text a job passes to the system (NUL, lone surrogates), if anything. */
export function textProblem(value: string, what: string): string | undefined {
  if (value.includes("\0")) return `contains a NUL character; ${what}`;
  if (!value.isWellFormed()) return `contains an unpaired surrogate (invalid Unicode); ${what}`;
  return undefined;
}

function checkText(field: string, value: string, what: string): void {
  const problem = textProblem(value, what);
  if (problem) throw new JobInputError(field, problem);
}

/** What is wrong with an environment variable's name, if anything. */
export function envNameProblem(name: string): string | undefined {
  if (name === "" || name.includes("=") || name.includes("\0") || !name.isWellFormed()) {
    return `has an invalid variable name ${JSON.stringify(name)}`;
  }
  return undefined;
}

/** What is wrong with a job's directory as given, if anything. */
export function cwdProblem(cwd: string): string | undefined {
  return cwd === "" ? "is empty" : textProblem(cwd, "a directory name cannot hold it");
}

function integerField(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number") {
    throw new JobInputError(field, `must be a number, not ${typeName(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new JobInputError(field, `must be a whole number from ${min} to ${max}, not ${value}`);
  }
  return value;
}

function durationField(field: string, value: unknown): number {
  if (typeof value !== "number" && typeof value !== "string") {
    throw new JobInputError(
      field,
      `must be a duration (seconds as a number, or a string like "30s"), not ${typeName(value)}`,
    );
  }
  try {
    return parseDuration(value);
  } catch (error) {
    if (error instanceof RangeError) throw new JobInputError(field, error.message);
    throw error;
  }
}

function envField(value: unknown): Record<string, string> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new JobInputError("env", `must be an object of strings, not ${typeName(value)}`);
  }
  const env: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    const problem = envNameProblem(key);
    if (problem) throw new JobInputError("env", problem);
    if (typeof item !== "string") {
      throw new JobInputError("env", `value of ${key} must be a string, not ${typeName(item)}`);
    }
    checkText("env", item, `remove it from ${key}`);
    env[key] = item;
  }
  return env;
}

/**
 * Builds a `NewJob` from a parsed job object, the flags that override its fields, and defaults.
 * Throws `JobInputError` naming the field at fault.
 */
export function validateJob(
  input: Record<string, unknown>,
  overrides: JobOverrides,
  defaults: JobDefaults,
): NewJob {
  for (const key of Object.keys(input)) {
    if (!(JOB_FIELDS as readonly string[]).includes(key)) {
      throw new JobInputError(key, "is not a job field", {
        input: key,
        candidates: JOB_FIELDS,
        aliases: FIELD_ALIASES,
      });
    }
  }

  const command = input.command;
  if (command === undefined) throw new JobInputError("command", "is required");
  if (typeof command !== "string") {
    throw new JobInputError("command", `must be a string, not ${typeName(command)}`);
  }
  if (command.trim() === "") throw new JobInputError("command", "is empty");
  checkText("command", command, "a shell command cannot hold it");
  // A UTF-16 unit is at most 3 UTF-8 bytes: only a command that may be too long is encoded.
  if (command.length * 3 > MAX_COMMAND_BYTES && utf8Length(command) > MAX_COMMAND_BYTES) {
    throw new JobInputError(
      "command",
      "is longer than 128 KiB, the most one shell argument can hold; put it in a script",
    );
  }

  let id: string | undefined;
  if (input.id !== undefined) {
    if (typeof input.id !== "string") {
      throw new JobInputError("id", `must be a string, not ${typeName(input.id)}`);
    }
    const problem = idProblem(input.id);
    if (problem) throw new JobInputError("id", problem);
    id = input.id;
  }
  if (overrides.id !== undefined) id = overrides.id;

  // Every field is validated even when a flag overrides it: a wrong value is an error, not
  // something a flag quietly hides.
  const fieldPriority = input.priority === undefined
    ? DEFAULT_PRIORITY
    : integerField("priority", input.priority, MIN_PRIORITY, MAX_PRIORITY);
  const priority = overrides.priority ?? fieldPriority;
  let fieldQueue: string | undefined;
  if (input.queue !== undefined) {
    if (typeof input.queue !== "string") {
      throw new JobInputError("queue", `must be a string, not ${typeName(input.queue)}`);
    }
    const problem = queueNameProblem(input.queue);
    if (problem) throw new JobInputError("queue", problem);
    fieldQueue = input.queue;
  }
  const queue = overrides.queue ?? fieldQueue ?? DEFAULT_QUEUE;
  const fieldMaxRetries = input.max_retries === undefined
    ? null
    : integerField("max_retries", input.max_retries, 0, MAX_RETRIES_LIMIT);
  const maxRetries = overrides.maxRetries ?? fieldMaxRetries;
  const fieldTimeoutMs = input.timeout === undefined
    ? null
    : durationField("timeout", input.timeout);
  const timeoutMs = overrides.timeoutMs ?? fieldTimeoutMs;

  if (input.run_at !== undefined && input.delay !== undefined) {
    throw new JobInputError("delay", 'cannot be combined with "run_at"; give one of them');
  }
  // A delay counts from when the job is stored, by the store's clock; a time is as given.
  let runAt: number | null = null;
  let delayMs = 0;
  if (input.delay !== undefined) delayMs = durationField("delay", input.delay);
  else if (input.run_at !== undefined) {
    if (typeof input.run_at !== "string") {
      throw new JobInputError("run_at", `must be a string, not ${typeName(input.run_at)}`);
    }
    runAt = runAtValue("run_at", input.run_at, defaults);
  }
  if (overrides.runAt !== undefined) {
    runAt = overrides.runAt;
    delayMs = 0;
  } else if (overrides.delayMs !== undefined) {
    runAt = null;
    delayMs = overrides.delayMs;
  }

  let cwd = defaults.cwd;
  if (input.cwd !== undefined) {
    if (typeof input.cwd !== "string") {
      throw new JobInputError("cwd", `must be a string, not ${typeName(input.cwd)}`);
    }
    const problem = cwdProblem(input.cwd);
    if (problem) throw new JobInputError("cwd", problem);
    cwd = resolvePath(defaults.cwd, input.cwd);
  }
  if (overrides.cwd !== undefined) cwd = overrides.cwd;
  let env = input.env === undefined ? {} : envField(input.env);
  if (overrides.env !== undefined) env = { ...env, ...overrides.env };

  const fieldAfter = input.after === undefined ? undefined : afterField(input.after);
  const after = overrides.after ?? fieldAfter;
  const fieldKey = input.unique_key === undefined
    ? undefined
    : uniqueKeyField("unique_key", input.unique_key);
  const uniqueKey = overrides.uniqueKey ?? fieldKey;
  if (after !== undefined && id !== undefined && after.includes(id)) {
    throw new JobInputError(
      "after",
      `names the job itself ("${id}"); a job cannot wait for itself`,
    );
  }

  const job: NewJob = {
    id,
    command,
    priority,
    queue,
    maxRetries,
    timeoutMs,
    cwd,
    env,
    runAt,
    delayMs,
  };
  if (after !== undefined && after.length > 0) job.after = after;
  if (uniqueKey !== undefined) job.uniqueKey = uniqueKey;
  return job;
}

/** The most dependencies one job may have. */
export const MAX_AFTER = 1000;
/** The longest unique key, in characters. */
export const MAX_UNIQUE_KEY = 200;

/** What is wrong with a list of dependency ids, if anything (repeats are dropped, not refused). */
export function afterProblem(ids: readonly string[]): string | undefined {
  if (ids.length > MAX_AFTER) return `names ${ids.length} jobs; the most is ${MAX_AFTER}`;
  for (const id of ids) {
    const problem = idProblem(id);
    if (problem) return `has an invalid job id ${JSON.stringify(id)}: it ${problem}`;
  }
  return undefined;
}

function afterField(value: unknown): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
    throw new JobInputError(
      "after",
      `must be an array of job ids like ["12","build"], not ${typeName(value)}`,
    );
  }
  const ids = [...new Set(value as string[])];
  const problem = afterProblem(ids);
  if (problem) throw new JobInputError("after", problem);
  return ids;
}

/** What is wrong with a unique key, if anything. */
export function uniqueKeyProblem(key: string): string | undefined {
  if (key.trim() === "") return "is empty";
  if (key.length > MAX_UNIQUE_KEY) {
    return `is ${key.length} characters long; the most is ${MAX_UNIQUE_KEY}`;
  }
  return textProblem(key, "a key cannot hold it");
}

function uniqueKeyField(field: string, value: unknown): string {
  if (typeof value !== "string") {
    throw new JobInputError(field, `must be a string, not ${typeName(value)}`);
  }
  const problem = uniqueKeyProblem(value);
  if (problem) throw new JobInputError(field, problem);
  return value;
}

/**
 * Parses a run-at time. One in the past is due at once (as in River, Oban and pg-boss: a script
 * that computes a time must not fail because a second went by); more than a minute past, it is
 * accepted with a note, since it may be a mistake. More than ten years ahead is refused.
 */
export function runAtValue(field: string, text: string, defaults: JobDefaults): number {
  let value: number;
  try {
    value = parseRunAt(text, {
      now: defaults.now,
      ...(defaults.timeZone !== undefined ? { timeZone: defaults.timeZone } : {}),
    });
  } catch (error) {
    if (error instanceof RangeError) throw new JobInputError(field, `"${text}" ${error.message}`);
    throw error;
  }
  if (value < defaults.now - RUN_AT_PAST_NOTE_MS) {
    defaults.note?.(
      field,
      `"${text}" is ${formatDuration(defaults.now - value)} in the past; the job is due now`,
    );
  }
  if (value > defaults.now + MAX_DURATION_MS) {
    throw new JobInputError(field, `"${text}" is more than 10 years ahead`);
  }
  return value;
}
