import assert from "node:assert/strict";
import { COMMANDS, GROUPS, VERSION } from "../../lib/cli/commands.ts";
import { runCli } from "../helpers/cli.ts";

const OVERVIEW = `queuectl ${VERSION}: a background job queue in one command

Usage: queuectl COMMAND [flags] [args]

Commands:
  enqueue          add jobs to the queue
  list             list the newest jobs, in enqueue order
  status           job counts per state, and the workers
  show             every field of a job and its attempt history
  logs             the output of a job's latest (or given) attempt
  wait             wait until jobs are completed or dead
  worker start     start worker processes (in the foreground, or --detach)
  worker stop      stop the workers of this database on this host
  worker list      the workers and what they are doing
  worker run       run one worker in this process (what worker start runs N times)
  cancel           cancel jobs: waiting ones at once, running ones killed by their worker
  retry            put dead or cancelled jobs back in the queue with a fresh retry budget
  pause            hold queues: workers claim none of their jobs (no names: every queue)
  resume           let workers claim from paused queues again (no names: every queue)
  queue list       each named queue: jobs per state, paused or not, its limit
  queue set        cap how many jobs of a queue run at once, across all workers
  dlq list         jobs that used up their retries
  dlq retry        put dead jobs back in the queue with a fresh retry budget
  schedule add     add a recurring job: on a cron expression or every D
  schedule list    the schedules: when they run next, their last run and its job's state
  schedule pause   stop a schedule from firing until it is resumed
  schedule resume  let a paused schedule fire again, from now on
  schedule remove  delete a schedule (the jobs it enqueued stay)
  metrics          the metrics dashboard: rates, run times, queue wait, failures
  dashboard        the web dashboard: live jobs, search, output, retries
  prune            delete finished jobs with their attempts and output
  completions      print a shell completion script: bash, zsh or fish
  config get       show settings (all, or one value)
  config set       change a setting
  config unset     return a setting to its default

Global flags:
      --db PATH|URL  database file or postgres:// URL (default: $QUEUECTL_DB, else XDG data dir)
      --json         print JSON on stdout
      --debug        show stack traces of errors
  -h, --help         show help

Run \`queuectl COMMAND --help\` for a command's flags and examples.
Exit codes: 0 ok, 1 internal error, 2 usage or invalid input, 3 conflict, 4 not found,
5 database busy, 6 database unusable, 7 storage full.
`;

Deno.test("--help prints the overview of every command on stdout", async () => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    assert.deepEqual(await runCli(args), { code: 0, stdout: OVERVIEW, stderr: "" }, args.join(" "));
  }
});

Deno.test("--version prints the version", async () => {
  assert.deepEqual(await runCli(["--version"]), {
    code: 0,
    stdout: `queuectl ${VERSION}\n`,
    stderr: "",
  });
});

Deno.test("queuectl without a command says so in one line and exits 2", async () => {
  assert.deepEqual(await runCli([]), {
    code: 2,
    stdout: "",
    stderr: "queuectl: Missing command (`queuectl --help` lists the commands)\n",
  });
});

Deno.test("enqueue --help shows usage, arguments, flags, details and examples", async () => {
  const { code, stdout } = await runCli(["enqueue", "--help"]);
  assert.equal(code, 0);
  assert.equal(
    stdout.slice(0, stdout.indexOf("\nGlobal flags:")),
    `queuectl enqueue: add jobs to the queue

Usage: queuectl enqueue [flags] [JSON]

Arguments:
  JSON  a job object, e.g. '{"command":"echo hi"}', or - for JSON lines on stdin

Flags:
  -c, --command CMD     the shell command (instead of JSON)
      --id ID           the job id (default: the next number)
      --env K=V         set a variable in the job's environment (repeatable)
      --cwd DIR         the job's directory (default: the current one)
      --priority N      1..10, higher runs first (default 5)
      --queue Q         the named queue (default: default)
      --delay D         run after a delay: 45, 30s, 5m, 2h, 1d, 1h30m
      --run-at T        when: HH:MM, "tomorrow HH:MM", "YYYY-MM-DD [HH:MM]", ISO 8601 or now
      --max-retries N   retries after the first attempt (default: config)
      --timeout D       time limit per attempt, 0 = none (default: config)
      --after ID[,ID…]  run once these jobs have completed (cancelled if one is dead or cancelled)
      --unique-key K    refuse (exit 3) while a pending, failed or processing job holds the key
      --if-not-exists   an id or unique key held already is not an error: print that job's id
      --wait            wait until the job is completed (exit 0) or dead (exit 1)
`,
  );
  assert.ok(stdout.includes(`\nExamples:\n  queuectl enqueue '{"command":"echo hello"}'\n`));
});

for (const spec of COMMANDS) {
  Deno.test(`${spec.name} --help lists its usage and every flag`, async () => {
    const words = spec.name.split(" ");
    const { code, stdout, stderr } = await runCli([...words, "--help"]);
    assert.equal(code, 0);
    assert.equal(stderr, "");
    assert.ok(stdout.startsWith(`queuectl ${spec.name}: ${spec.summary}\n`), stdout);
    assert.match(stdout, new RegExp(`\nUsage: queuectl ${spec.name} \\[flags\\]`));
    for (const flag of spec.flags) assert.ok(stdout.includes(`--${flag.name}`), `--${flag.name}`);
    for (const arg of spec.args) assert.ok(stdout.includes(arg.name), arg.name);
    for (const global of ["--db PATH|URL", "--json", "--debug", "-h, --help"]) {
      assert.ok(stdout.includes(global), global);
    }
    // The same text three ways.
    assert.equal((await runCli([...words, "-h"])).stdout, stdout);
    assert.equal((await runCli(["help", ...words])).stdout, stdout);
    // --help wins over anything else on the line, and opens no database.
    assert.equal((await runCli([...words, "--bogus", "x", "--help"])).code, 0);
  });
}

for (const group of Object.keys(GROUPS)) {
  Deno.test(`${group} --help lists its subcommands; ${group} alone exits 2`, async () => {
    const { code, stdout } = await runCli([group, "--help"]);
    assert.equal(code, 0);
    const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
    assert.ok(subs.length > 0);
    for (const sub of subs) {
      const line = stdout.split("\n").find((l) => l.startsWith(`  ${sub.name} `));
      assert.equal(line?.replace(/ +/g, " "), ` ${sub.name} ${sub.summary}`);
    }
    assert.equal((await runCli(["help", group])).stdout, stdout);
    const bare = await runCli([group]);
    assert.equal(bare.code, 2);
    assert.equal(bare.stdout, "");
    assert.equal(
      bare.stderr,
      `queuectl: Missing ${group} command (${group} commands: ${
        subs.map((c) => c.name.slice(group.length + 1)).join(", ")
      })\n`,
    );
  });
}

Deno.test("a mistyped command gets the nearest one suggested", async () => {
  const cases: [string[], string][] = [
    [["enqeue"], 'Unknown command "enqeue": did you mean "enqueue"?'],
    [["stauts"], 'Unknown command "stauts": did you mean "status"?'],
    [["lst"], 'Unknown command "lst": did you mean "list"?'],
    [["shwo", "1"], 'Unknown command "shwo": did you mean "show"?'],
    [["confg", "get"], 'Unknown command "confg": did you mean "config"?'],
    [["dql", "list"], 'Unknown command "dql": did you mean "dlq"?'],
    [["config", "gte"], 'Unknown command "config gte": did you mean "get"?'],
    [["dlq", "retyr", "x"], 'Unknown command "dlq retyr": did you mean "retry"?'],
    [["help", "stats"], 'Unknown command "stats": did you mean "status"?'],
  ];
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await runCli(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stdout, "");
    assert.ok(stderr.startsWith(`queuectl: ${message}`), stderr);
    assert.equal(stderr.split("\n").length, 2, "one line");
  }
});

Deno.test("a mistyped flag gets the nearest one suggested", async () => {
  const cases: [string[], RegExp][] = [
    [["list", "--stat", "dead"], /Unknown flag "--stat" for list: did you mean "--state"\?/],
    [
      ["enqueue", "-c", "x", "--priorty", "3"],
      /Unknown flag "--priorty" for enqueue: did you mean "--priority"\?/,
    ],
    [
      ["enqueue", "-c", "x", "--run_at", "x"],
      /Unknown flag "--run_at" for enqueue: did you mean "--run-at"\?/,
    ],
    [["enqueue", "-c", "x", "--if-not-exist"], /did you mean "--if-not-exists"\?/],
    [["status", "--jsno"], /Unknown flag "--jsno" for status: did you mean "--json"\?/],
    [["dlq", "retry", "--al"], /Unknown flag "--al" for dlq retry: did you mean "--all"\?/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await runCli(args);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, message);
    assert.match(stderr, /\(see `queuectl [a-z ]+ --help`\)\n$/);
  }
});

Deno.test("help reads past global flags given before or after it", async () => {
  const list = (await runCli(["list", "--help"])).stdout;
  const overview = (await runCli(["--help"])).stdout;
  const cases: [string[], string][] = [
    [["help", "list", "--json"], list],
    [["--db", "/tmp/x.db", "help", "list"], list],
    [["help", "--debug", "list"], list],
    [["help", "--json"], overview],
    [["--db", "/tmp/x.db", "help"], overview],
  ];
  for (const [args, stdout] of cases) {
    assert.deepEqual(await runCli(args), { code: 0, stdout, stderr: "" }, args.join(" "));
  }
});
