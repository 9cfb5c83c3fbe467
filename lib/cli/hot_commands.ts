/**
 * The table entries of the commands that scripts call in loops (`status`, `show`, `enqueue`), in a
 * module of their own: the short start-up path (lean.ts) parses their arguments with the same
 * specs the full table (commands.ts) holds, without loading the rest of it.
 *
 * @module
 */

import type { FlagSpec } from "./args.ts";
import type { CommandSpec } from "./commands.ts";
import type { CommandRun } from "./context.ts";
import { lazy } from "../lazy.ts";

/** Imports a command module when its command runs (lib/lazy.ts says why not before). */
export function load(name: string): Promise<{ run: CommandRun }> {
  return lazy(import.meta.url, `./commands/${name}.ts`);
}

const SCHEDULE_FLAGS: FlagSpec[] = [
  {
    name: "priority",
    value: "N",
    help: "1..10, higher runs first (default 5)",
    aliases: ["prio", "pri", "p"],
  },
  {
    name: "queue",
    value: "Q",
    help: "the named queue (default: default)",
    aliases: ["group", "queue-name", "channel", "tube"],
  },
  {
    name: "delay",
    value: "D",
    help: "run after a delay: 45, 30s, 5m, 2h, 1d, 1h30m",
    aliases: ["in", "countdown"],
  },
  {
    name: "run-at",
    value: "T",
    help: 'when: HH:MM, "tomorrow HH:MM", "YYYY-MM-DD [HH:MM]", ISO 8601 or now',
    aliases: ["at", "when", "schedule", "start-at", "eta"],
  },
  {
    name: "max-retries",
    value: "N",
    help: "retries after the first attempt (default: config)",
    aliases: ["retries", "retry", "max-attempts", "attempts", "tries"],
  },
  {
    name: "timeout",
    value: "D",
    help: "time limit per attempt, 0 = none (default: config)",
    aliases: ["t", "time-limit", "max-runtime"],
  },
];

export const ENQUEUE: CommandSpec = {
  name: "enqueue",
  aliases: ["add", "push", "submit", "put", "new", "create"],
  summary: "add jobs to the queue",
  args: [{
    name: "JSON",
    optional: true,
    help: 'a job object, e.g. \'{"command":"echo hi"}\', or - for JSON lines on stdin',
  }],
  flags: [
    {
      name: "command",
      short: "c",
      value: "CMD",
      help: "the shell command (instead of JSON)",
      aliases: ["cmd", "cmdline", "run", "exec", "script", "shell"],
    },
    {
      name: "id",
      value: "ID",
      help: "the job id (default: the next number)",
      aliases: ["name", "job-id"],
    },
    {
      name: "env",
      value: "K=V",
      repeatable: true,
      help: "set a variable in the job's environment (repeatable)",
      aliases: ["environment", "var", "set-env", "e"],
    },
    {
      name: "cwd",
      value: "DIR",
      help: "the job's directory (default: the current one)",
      aliases: ["dir", "workdir", "chdir", "directory", "working-dir", "C"],
    },
    ...SCHEDULE_FLAGS,
    {
      name: "after",
      value: "ID[,ID…]",
      repeatable: true,
      help: "run once these jobs have completed (cancelled if one is dead or cancelled)",
      aliases: ["depends-on", "needs", "wait-for"],
    },
    {
      name: "unique-key",
      value: "K",
      help: "refuse (exit 3) while a pending, failed or processing job holds the key",
      aliases: ["unique", "singleton-key", "key"],
    },
    {
      name: "if-not-exists",
      help: "an id or unique key held already is not an error: print that job's id",
    },
    { name: "wait", help: "wait until the job is completed (exit 0) or dead (exit 1)" },
  ],
  details:
    "Job fields: command (required), id, priority, queue (default: default), max_retries,\n" +
    "timeout, run_at, delay, cwd (default: the current directory), env (object of strings),\n" +
    "after (array of job ids), unique_key. A queue name is like an id. Flags override fields\n" +
    "(--env variable by variable). A cwd that does not exist here is kept, with a warning.\n" +
    "run_at and --run-at: HH:MM[:SS] is the next such time (today or tomorrow); also\n" +
    '"today HH:MM", "tomorrow HH:MM", YYYY-MM-DD (midnight), "YYYY-MM-DD HH:MM[:SS]", now,\n' +
    "all local time, or ISO 8601 with an offset. A time in the past is due at once.\n" +
    "With -, every line of stdin is one job, stored in one transaction: all or none (no\n" +
    "lines: nothing to do, exit 0).\n" +
    "--after: each id must exist, or come on an earlier line of -; the job stays pending\n" +
    "(waiting on N) until all have completed, and is cancelled if one ends dead or cancelled.\n" +
    "--unique-key: while a job with the key is pending, failed or processing, another is a\n" +
    "conflict (exit 3) naming it; with --if-not-exists its id is printed instead (exit 0).\n" +
    "Prints each new job's id on its own line.",
  examples: [
    `queuectl enqueue '{"command":"echo hello"}'`,
    `queuectl enqueue -c 'make test' --priority 8 --timeout 10m`,
    `queuectl enqueue -c './send-mail.sh' --queue mail`,
    `queuectl enqueue -c 'make deploy' --env STAGE=prod --env REGION=eu --cwd ~/site`,
    `queuectl enqueue '{"id":"nightly","command":"./backup.sh"}' --run-at 02:00`,
    `queuectl enqueue -c 'make release' --run-at "2027-01-04 09:00"`,
    `printf '%s\\n' '{"command":"true"}' '{"command":"false"}' | queuectl enqueue -`,
    `queuectl enqueue -c 'make deploy' --after 42,43`,
    `queuectl enqueue -c './sync.sh' --unique-key sync --if-not-exists`,
  ],
  load: () => load("enqueue"),
};

export const STATUS: CommandSpec = {
  name: "status",
  aliases: ["st", "summary", "overview", "counts"],
  readsOnly: true,
  summary: "job counts per state, and the workers",
  args: [],
  flags: [],
  examples: [`queuectl status`, `queuectl status --json`],
  load: () => load("status"),
};

export const SHOW: CommandSpec = {
  name: "show",
  aliases: ["info", "inspect", "get", "describe", "view", "job"],
  readsOnly: true,
  summary: "every field of a job and its attempt history",
  args: [{ name: "ID", help: "the job id" }],
  flags: [],
  examples: [`queuectl show 42`, `queuectl show 42 --json`],
  load: () => load("show"),
};
