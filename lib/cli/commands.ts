/**
 * The command table: names, arguments, flags and help text of every command, and where its code
 * lives. Command modules are imported only when their command runs, so start-up stays small.
 *
 * @module
 */

import type { ArgSpec, FlagSpec } from "./args.ts";
import type { CommandRun } from "./context.ts";
import { ENQUEUE, load, SHOW, STATUS } from "./hot_commands.ts";

export interface CommandSpec {
  /** One word, or `group sub`. */
  name: string;
  /**
   * Other words users type for it (`add` for `enqueue`; for `worker list`, `ls` within its group),
   * for "did you mean" only: they are not accepted as commands.
   */
  aliases?: readonly string[];
  summary: string;
  args: ArgSpec[];
  flags: FlagSpec[];
  /** Paragraphs shown by --help after the flags. */
  details?: string;
  examples?: string[];
  /** Not listed in the overview (internal commands). */
  hidden?: boolean;
  /** Only reads the queue: a missing database is not created for it. */
  readsOnly?: boolean;
  /**
   * Where --json is refused (exit 2) instead of honoured with one JSON document on stdout: always
   * (only `reason`), when one of the `with` flags is given, or unless the `unless` flag is.
   */
  noJson?: { reason: string; with?: readonly string[]; unless?: string };
  load(): Promise<{ run: CommandRun }>;
}

export const VERSION = "0.1.0";

/** Command groups and what they are about. */
export const GROUPS: Record<string, string> = {
  config: "read and change queue settings",
  dlq: "the dead letter queue",
  queue: "named queues: their counts, pauses and limits",
  schedule: "recurring jobs: add, list, pause, resume, remove",
  worker: "run, stop and list worker processes",
};

/** How many jobs one worker process runs at once. */
const CONCURRENCY_FLAG: FlagSpec = {
  name: "concurrency",
  short: "j",
  value: "N",
  help: "jobs one worker runs at once (default: the number of CPU cores)",
  aliases: ["parallel", "slots", "jobs"],
};

/** Which named queues a worker claims from. */
const WORKER_QUEUE_FLAG: FlagSpec = {
  name: "queue",
  value: "Q[,Q…]",
  help: "claim only jobs of these queues, comma-separated (default: every queue)",
  aliases: ["queues", "group", "groups"],
};

/** The job flags `schedule add` shares with `enqueue` (not --id, --run-at, --delay). */
const SCHEDULE_JOB_FLAGS: readonly FlagSpec[] = ENQUEUE.flags.filter((flag) =>
  ["command", "env", "cwd", "priority", "queue", "max-retries", "timeout"].includes(flag.name)
);

export const COMMANDS: readonly CommandSpec[] = [
  ENQUEUE,
  {
    name: "list",
    aliases: ["ls", "jobs", "ps"],
    readsOnly: true,
    summary: "list the newest jobs, in enqueue order",
    args: [],
    flags: [
      {
        name: "state",
        value: "S",
        help: "states, comma-separated: pending, processing, completed, failed, dead, cancelled",
        aliases: ["status", "s"],
      },
      {
        name: "queue",
        value: "Q[,Q…]",
        help: "only jobs of these queues, comma-separated",
        aliases: ["queues", "group"],
      },
      {
        name: "limit",
        value: "N",
        help: "show the newest N jobs (default 100)",
        aliases: ["n", "count", "max", "last", "tail"],
      },
      {
        name: "before",
        value: "ID",
        help: "only jobs enqueued before job ID (the next page back)",
        aliases: ["older-than", "after", "from", "until", "page"],
      },
    ],
    details: "Jobs are listed oldest first within the page; the page holds the newest N jobs\n" +
      "that match. When some are left out, the last line says how many, and the --before ID\n" +
      "that shows the page before. --state takes several states separated by commas.\n" +
      "On a terminal the command column is cut to fit its width; line breaks show as ⏎.",
    examples: [
      "queuectl list",
      "queuectl list --state pending,failed --limit 20",
      "queuectl list --limit 20 --before 42",
    ],
    load: () => load("list"),
  },
  STATUS,
  SHOW,
  {
    name: "logs",
    aliases: ["output", "out", "tail"],
    readsOnly: true,
    noJson: { with: ["follow", "raw"], reason: "it writes output as it comes, not one document" },
    summary: "the output of a job's latest (or given) attempt",
    args: [{ name: "ID", help: "the job id" }],
    flags: [
      { name: "attempt", value: "N", help: "that attempt instead of the latest" },
      { name: "stdout", help: "only standard output (unlabelled, for pipes)" },
      { name: "stderr", help: "only standard error (unlabelled, for pipes)" },
      {
        name: "follow",
        short: "f",
        help: "stream a running attempt until it ends; exit with its code",
      },
      { name: "raw", help: "write bytes as captured (control sequences are escaped otherwise)" },
    ],
    details: "Output beyond output-limit keeps its head and tail; the cut is marked.\n" +
      "--follow waits for a job that has not started, prints stdout to stdout and stderr to\n" +
      "stderr as the worker saves them, and exits with the attempt's exit code.",
    examples: ["queuectl logs 42", "queuectl logs 42 --stdout > out.txt", "queuectl logs 42 -f"],
    load: () => load("logs"),
  },
  {
    name: "wait",
    aliases: ["await", "join"],
    readsOnly: true,
    summary: "wait until jobs are completed or dead",
    args: [{ name: "ID", variadic: true, help: "the jobs to wait for" }],
    flags: [{ name: "timeout", value: "D", help: "give up after D (exit 124)" }],
    details: "Exits 0 when every job completed, 1 when any is dead, 124 on timeout. On a\n" +
      "terminal it says so after a few seconds when no worker is running for the queue.",
    examples: [
      'id=$(queuectl enqueue -c \'sleep 1 && date\') && queuectl wait "$id" && queuectl logs "$id"',
      "queuectl wait 42 43 --timeout 10m",
    ],
    load: () => load("wait"),
  },
  {
    name: "worker start",
    aliases: ["start", "up", "serve", "begin"],
    noJson: { unless: "detach", reason: "in the foreground it only logs, on stderr" },
    summary: "start worker processes (in the foreground, or --detach)",
    args: [],
    flags: [
      {
        name: "count",
        value: "N",
        help: "how many worker processes (default 1)",
        aliases: ["workers", "processes", "n"],
      },
      CONCURRENCY_FLAG,
      WORKER_QUEUE_FLAG,
      {
        name: "detach",
        help: "run in the background; print the supervisor's pid",
        aliases: ["daemon", "daemonize", "background", "bg", "d"],
      },
    ],
    details: "Each worker runs up to --concurrency jobs at once; --count starts several worker\n" +
      "processes (for isolation). Runs until SIGINT/SIGTERM: workers finish their running jobs,\n" +
      "then exit. A second signal, or SIGQUIT, kills running jobs (they go back to pending\n" +
      "without using an attempt). With --detach, output goes to a log file beside the database\n" +
      "(DB.log).",
    examples: [
      "queuectl worker start --concurrency 4",
      "queuectl worker start --count 2 --detach",
      "queuectl worker start --queue mail,reports --concurrency 2",
    ],
    load: () => load("worker"),
  },
  {
    name: "worker stop",
    aliases: ["stop", "kill", "down", "shutdown", "halt"],
    readsOnly: true,
    summary: "stop the workers of this database on this host",
    args: [],
    flags: [
      { name: "force", help: "do not wait for running jobs: kill them, return them to pending" },
      { name: "timeout", value: "D", help: "after D, stop as with --force" },
      {
        name: "all-hosts",
        help: "stop the workers on every host (a request stored in the database)",
      },
    ],
    examples: [`queuectl worker stop --timeout 30s`, `queuectl worker stop --all-hosts`],
    load: () => load("worker"),
  },
  {
    name: "worker list",
    aliases: ["workers", "ls", "ps", "status"],
    readsOnly: true,
    summary: "the workers and what they are doing",
    args: [],
    flags: [],
    examples: [`queuectl worker list`],
    load: () => load("worker"),
  },
  {
    name: "worker run",
    aliases: ["work", "exec"],
    noJson: { reason: "a worker only logs, on stderr" },
    summary: "run one worker in this process (what worker start runs N times)",
    args: [],
    flags: [
      { name: "once", help: "exit when no job is due instead of waiting" },
      CONCURRENCY_FLAG,
      WORKER_QUEUE_FLAG,
    ],
    load: () => load("worker"),
  },
  {
    name: "cancel",
    aliases: ["abort", "kill-job", "terminate"],
    summary: "cancel jobs: waiting ones at once, running ones killed by their worker",
    args: [{ name: "ID", optional: true, variadic: true, help: "jobs to cancel" }],
    flags: [
      { name: "reason", value: "TEXT", help: "why (kept on the job; shown by show)" },
      {
        name: "state",
        value: "S",
        help: "with --all: every job in these states (pending, failed, processing)",
      },
      { name: "all", help: "every job in the --state states" },
    ],
    details: "A pending or failed job (waiting for a retry) ends cancelled and never runs. A\n" +
      "processing job is killed by its worker within a second (SIGTERM to its process group,\n" +
      "SIGKILL after the grace) and ends cancelled, its attempt recorded as cancelled; if it\n" +
      "exited 0 first, it stays completed. Cancelled jobs are not retried; `retry` puts them\n" +
      "back. All ids or none: an unknown id is exit 4, a finished job exit 3.",
    examples: [
      `queuectl cancel nightly --reason "not tonight"`,
      "queuectl cancel --state pending,failed --all",
    ],
    load: () => load("cancel"),
  },
  {
    name: "retry",
    aliases: ["rerun", "requeue", "redo", "resubmit"],
    summary: "put dead or cancelled jobs back in the queue with a fresh retry budget",
    args: [{ name: "ID", variadic: true, help: "jobs to retry" }],
    flags: [{ name: "force", help: "also completed jobs (they run again)" }],
    details:
      "All ids or none. A pending, failed or running job is exit 3, as is a completed one\n" +
      "without --force. Jobs that were cancelled because this one died are not revived: retry\n" +
      "them too.",
    examples: ["queuectl retry nightly", "queuectl retry 42 --force"],
    load: () => load("retry"),
  },
  {
    name: "pause",
    aliases: ["hold", "suspend", "freeze"],
    summary: "hold queues: workers claim none of their jobs (no names: every queue)",
    args: [{ name: "QUEUE", optional: true, variadic: true, help: "the queues (default: all)" }],
    flags: [],
    details:
      "Workers claim no more jobs of a paused queue; its running jobs go on. The pause is\n" +
      "stored in the database: it holds for every worker and outlives restarts. Without names,\n" +
      "every queue pauses, and so do queues created later, until `queuectl resume` without\n" +
      "names. A queue that has no job yet may be paused before its first one.",
    examples: ["queuectl pause mail", "queuectl pause"],
    load: () => load("queue"),
  },
  {
    name: "resume",
    aliases: ["unpause", "continue", "unfreeze"],
    summary: "let workers claim from paused queues again (no names: every queue)",
    args: [{ name: "QUEUE", optional: true, variadic: true, help: "the queues (default: all)" }],
    flags: [],
    details:
      "Idle workers wake at once. Without names, every queue resumes and new queues start\n" +
      "active again.",
    examples: ["queuectl resume mail", "queuectl resume"],
    load: () => load("queue"),
  },
  {
    name: "queue list",
    aliases: ["ls", "show", "queues"],
    readsOnly: true,
    summary: "each named queue: jobs per state, paused or not, its limit",
    args: [],
    flags: [],
    details: "A queue exists once it has had a job or a setting. LIMIT - means no limit.",
    examples: ["queuectl queue list", "queuectl queue list --json"],
    load: () => load("queue"),
  },
  {
    name: "queue set",
    aliases: ["limit", "config", "concurrency"],
    summary: "cap how many jobs of a queue run at once, across all workers",
    args: [{ name: "QUEUE", help: "the queue (created if it has no job yet)" }],
    flags: [{
      name: "concurrency",
      value: "N",
      help: "at most N of its jobs run at once; 0 = no limit",
      aliases: ["limit", "max", "parallel"],
    }],
    details: "The limit counts every job of the queue in processing on every worker of the\n" +
      "database, jobs claimed and about to start included; it is enforced where jobs are\n" +
      "claimed, so a burst of claims cannot exceed it. Lowering it stops no running job.",
    examples: [
      "queuectl queue set deploy --concurrency 1",
      "queuectl queue set deploy --concurrency 0",
    ],
    load: () => load("queue"),
  },
  {
    name: "dlq list",
    aliases: ["dead", "deadletter", "dead-letter"],
    readsOnly: true,
    summary: "jobs that used up their retries",
    args: [],
    flags: [{ name: "limit", value: "N", help: "show at most N jobs (default 100)" }],
    examples: [`queuectl dlq list --limit 20`],
    load: () => load("dlq"),
  },
  {
    name: "dlq retry",
    aliases: ["requeue-dead", "redo-dead"],
    readsOnly: true,
    summary: "put dead jobs back in the queue with a fresh retry budget",
    args: [{ name: "ID", optional: true, variadic: true, help: "jobs to retry" }],
    flags: [{ name: "all", help: "retry every dead job" }],
    examples: [`queuectl dlq retry --all`],
    load: () => load("dlq"),
  },

  {
    name: "schedule add",
    aliases: ["cron", "every", "recurring", "periodic", "repeat"],
    summary: "add a recurring job: on a cron expression or every D",
    args: [
      { name: "NAME", help: "the schedule's name (letters, digits and . _ : -)" },
      {
        name: "JSON",
        optional: true,
        help: 'the job, as for enqueue: \'{"command":"./backup.sh"}\' (or -c CMD)',
      },
    ],
    flags: [
      {
        name: "cron",
        value: "EXPR",
        help: 'five fields "min hour dom month dow", or @hourly, @daily, @weekly, @monthly',
        aliases: ["at", "crontab", "when"],
      },
      {
        name: "every",
        value: "D",
        help: "an interval: 30s, 5m, 1h, 1d (whole seconds, at least 1s)",
        aliases: ["interval", "period"],
      },
      {
        name: "tz",
        value: "ZONE",
        help: "the cron expression's time zone (default: this system's)",
        aliases: ["timezone", "time-zone", "zone"],
      },
      ...SCHEDULE_JOB_FLAGS,
    ],
    details: "Workers enqueue each occurrence once, however many run on however many hosts.\n" +
      "After downtime (no worker running) a schedule fires once for what it missed, not\n" +
      "once per missed occurrence. --every counts from when the schedule was added.\n" +
      "The job takes the fields of enqueue except id, run_at and delay; it is checked now and\n" +
      "again at every fire. Each job gets QUEUECTL_SCHEDULE (the name) and\n" +
      "QUEUECTL_SCHEDULED_AT (the fire time, ISO 8601 UTC) in its environment.\n" +
      "Daylight saving (--tz): a time the clocks skip fires at the first time after the gap;\n" +
      "a time that happens twice fires once, the first time. Prints the name.",
    examples: [
      `queuectl schedule add backup --cron "30 2 * * *" --tz Europe/Berlin -c ./backup.sh`,
      `queuectl schedule add ping --every 5m -c 'curl -fsS https://example.com/health'`,
      `queuectl schedule add report --cron @daily '{"command":"make report","priority":8}'`,
    ],
    load: () => load("schedule"),
  },
  {
    name: "schedule list",
    aliases: ["ls", "show"],
    readsOnly: true,
    summary: "the schedules: when they run next, their last run and its job's state",
    args: [],
    flags: [],
    examples: [`queuectl schedule list`, `queuectl schedule list --json`],
    load: () => load("schedule"),
  },
  {
    name: "schedule pause",
    aliases: ["stop", "disable", "hold"],
    summary: "stop a schedule from firing until it is resumed",
    args: [{ name: "NAME", help: "the schedule" }],
    flags: [],
    examples: [`queuectl schedule pause backup`],
    load: () => load("schedule"),
  },
  {
    name: "schedule resume",
    aliases: ["start", "enable", "unpause"],
    summary: "let a paused schedule fire again, from now on",
    args: [{ name: "NAME", help: "the schedule" }],
    flags: [],
    details: "What it would have run while paused does not run: it fires next at its first\n" +
      "time after now.",
    examples: [`queuectl schedule resume backup`],
    load: () => load("schedule"),
  },
  {
    name: "schedule remove",
    aliases: ["rm", "delete", "del"],
    summary: "delete a schedule (the jobs it enqueued stay)",
    args: [{ name: "NAME", help: "the schedule" }],
    flags: [],
    examples: [`queuectl schedule remove backup`],
    load: () => load("schedule"),
  },
  {
    name: "metrics",
    aliases: ["top", "perf"],
    readsOnly: true,
    summary: "the metrics dashboard: rates, run times, queue wait, failures",
    args: [],
    flags: [
      { name: "detailed", help: "add per-worker figures and a per-minute chart" },
      { name: "watch", help: "redraw every second until Ctrl-C" },
      { name: "since", value: "D", help: "window of the figures (default 24h)" },
    ],
    examples: [`queuectl metrics --detailed --since 1h`],
    load: () => load("metrics"),
  },
  {
    name: "dashboard",
    aliases: ["web", "ui", "serve-web", "gui", "browser"],
    noJson: { reason: "it serves web pages until Ctrl-C" },
    summary: "the web dashboard: live jobs, search, output, retries",
    args: [],
    flags: [
      {
        name: "port",
        value: "N",
        help: "port (default 8642, or the next free one; 0 = any free port)",
        aliases: ["p", "listen"],
      },
      {
        name: "host",
        value: "ADDR",
        help: "address to listen on (default 127.0.0.1; others are reachable from outside)",
        aliases: ["bind", "address", "addr", "hostname", "interface"],
      },
      {
        name: "read-only",
        help: "refuse every action (retry) on the server",
        aliases: ["readonly", "ro", "view-only"],
      },
      { name: "open", help: "open it in the desktop's browser", aliases: ["browse", "launch"] },
      {
        name: "token-file",
        value: "F",
        help: "where the sign-in token is kept (default: DB.dashboard-token, made 0600)",
        aliases: ["token", "auth-file"],
      },
    ],
    details: "Serves the dashboard until Ctrl-C (or SIGTERM), then exits 0. It prints the link\n" +
      "that signs you in: on a terminal with the token in its #fragment, otherwise with the\n" +
      "name of the token file. Only 127.0.0.1 listens unless --host says otherwise (with a\n" +
      "warning: plain HTTP). Exit 3 when --port is in use.",
    examples: [
      "queuectl dashboard",
      "queuectl dashboard --read-only --token-file ~/dashboard.token",
    ],
    load: () => load("dashboard"),
  },
  {
    name: "prune",
    aliases: ["clean", "cleanup", "purge", "gc", "delete", "rm", "remove", "clear"],
    readsOnly: true,
    summary: "delete finished jobs with their attempts and output",
    args: [],
    flags: [
      {
        name: "older-than",
        value: "D",
        help: "finished more than D ago (default: retain-completed, else 7d)",
      },
      {
        name: "state",
        value: "S",
        help: "completed (default), dead, cancelled or all-finished",
      },
      { name: "dry-run", help: "count, delete nothing" },
    ],
    examples: [`queuectl prune --state all-finished --older-than 1d --dry-run`],
    load: () => load("prune"),
  },
  {
    name: "completions",
    aliases: ["completion", "complete", "shell"],
    readsOnly: true,
    noJson: { reason: "it prints a shell script" },
    summary: "print a shell completion script: bash, zsh or fish",
    args: [{ name: "SHELL", help: "bash, zsh or fish" }],
    flags: [],
    details:
      "Completes commands, subcommands, flags, states, settings, schedule and queue names\n" +
      '(asked of the queue as you type). The README\'s "Shell completion" section says where\n' +
      "to put it.",
    examples: [
      "queuectl completions bash > ~/.local/share/bash-completion/completions/queuectl",
      "queuectl completions zsh > ~/.zfunc/_queuectl",
      "queuectl completions fish > ~/.config/fish/completions/queuectl.fish",
    ],
    load: () => load("completions"),
  },
  {
    name: "config get",
    aliases: ["settings", "conf", "cfg", "show"],
    readsOnly: true,
    summary: "show settings (all, or one value)",
    args: [{ name: "KEY", optional: true, help: "one setting; prints just its value" }],
    flags: [],
    examples: [`queuectl config get`, `queuectl config get backoff-max`],
    load: () => load("config"),
  },
  {
    name: "config set",
    aliases: ["set"],
    summary: "change a setting",
    args: [{ name: "KEY", help: "the setting" }, { name: "VALUE", help: "its new value" }],
    flags: [],
    examples: ["queuectl config set max-retries 5", "queuectl config set backoff-max 10m"],
    load: () => load("config"),
  },
  {
    name: "config unset",
    aliases: ["unset", "reset", "rm", "delete"],
    summary: "return a setting to its default",
    args: [{ name: "KEY", help: "the setting" }],
    flags: [],
    load: () => load("config"),
  },
];
