/**
 * The bad-input table (RELIABILITY.md 2.4): malformed input of every kind, each checked for its
 * exit code, a single stderr line that names what is wrong, no stack trace, nothing on stdout, and
 * a database left byte-identical (the whole directory is digested before and after).
 *
 * Every row runs in process through `main(args, io)`; a job given as JSON runs a second time as a
 * line of `enqueue -` (after a valid line, which must not be stored either). The last test runs
 * every row again as a real `deno run main.ts` process.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FakeClock } from "../../lib/clock.ts";
import { SCHEMA_VERSION } from "../../lib/store/sqlite/version.ts";
import { MAX_COMMAND_BYTES } from "../../lib/job/input.ts";
import { runCli, runProcess } from "../helpers/cli.ts";
import type { CliResult } from "../helpers/cli.ts";
import { dbDigest, treeDigest } from "../helpers/digest.ts";
import { makeOneOfEach } from "../helpers/factory.ts";
import { makeForeignDb, setSchemaVersion } from "../helpers/sqlite_raw.ts";
import { moduleTempDir, openTestStore, T0, tempDir } from "../helpers/temp.ts";

/** What `--db` points at. */
type DbKind =
  | "queue" // a queue with one job in every state (p1, r1, c1, f1, d1)
  | "none" // no --db flag at all
  | "directory"
  | "missing-dir"
  | "new" // a path where no database exists yet: a refused command must not create one
  | "read-only"
  | "read-only-dir" // a writable database in a directory where -wal and -shm cannot be created
  | "read-only-dir-new" // no database yet, in a directory where it cannot be created
  | "not-sqlite"
  | "empty"
  | "foreign"
  | "newer";

interface Row {
  name: string;
  /** Arguments after `--db PATH`. */
  args?: string[];
  /** A job's JSON: run as `enqueue JOB ...flags`, and as line 2 of `enqueue - ...flags`. */
  job?: string;
  /** Flags that follow the job in both forms. */
  flags?: string[];
  /** Standard input for `args`. */
  stdin?: string;
  db?: DbKind;
  env?: Record<string, string>;
  code: number;
  /** The single stderr line must match this (it names the offending field or value). */
  stderr: RegExp;
  /** Where the row can run, and why not elsewhere. */
  only?: { where: "in-process" | "process"; why: string };
}

const TOO_LONG_COMMAND = JSON.stringify({ command: "x".repeat(MAX_COMMAND_BYTES + 1) });

const ROWS: Row[] = [
  // JSON shape
  { name: "truncated JSON", job: '{"command":"echo hi"', code: 2, stderr: /is not valid JSON/ },
  { name: "JSON cut inside a string", job: '{"command":"ec', code: 2, stderr: /is not valid JSON/ },
  { name: "single-quoted JSON", job: "{'command':'x'}", code: 2, stderr: /is not valid JSON/ },
  { name: "a trailing comma", job: '{"command":"x",}', code: 2, stderr: /is not valid JSON/ },
  {
    name: "a JSON string, not an object",
    job: '"echo hi"',
    code: 2,
    stderr: /must be a JSON object.*not string/,
  },
  {
    name: "a JSON array of jobs",
    job: '[{"command":"x"}]',
    code: 2,
    stderr: /must be a JSON object.*not an array/,
  },
  { name: "a JSON number", job: "42", code: 2, stderr: /must be a JSON object.*not number/ },
  { name: "JSON null", job: "null", code: 2, stderr: /must be a JSON object.*not null/ },
  { name: "an empty object", job: "{}", code: 2, stderr: /field "command" is required/ },
  {
    name: "a duplicate key",
    job: '{"command":"a","command":"b"}',
    code: 2,
    stderr: /field "command" appears twice/,
  },
  {
    name: "a duplicate key spelt with an escape",
    job: '{"command":"a","\\u0063ommand":"b"}',
    code: 2,
    stderr: /field "command" appears twice/,
  },
  {
    name: "a duplicate id key",
    job: '{"id":"a1","command":"x","id":"a2"}',
    code: 2,
    stderr: /field "id" appears twice/,
  },
  {
    name: "a duplicate key inside env",
    job: '{"command":"x","env":{"HOME":"/a","HOME":"/b"}}',
    code: 2,
    stderr: /"env.HOME" appears twice/,
  },
  {
    name: "a misspelt field",
    job: '{"comand":"echo hi"}',
    code: 2,
    stderr: /field "comand" is not a job field: did you mean "command"\?/,
  },
  {
    // One edit from "cwd", but it means "command".
    name: "cmd for command",
    job: '{"cmd":"echo hi"}',
    code: 2,
    stderr: /field "cmd" is not a job field: did you mean "command"\?/,
  },
  {
    name: "retries for max_retries",
    job: '{"command":"x","retries":2}',
    code: 2,
    stderr: /field "retries" is not a job field: did you mean "max_retries"\?/,
  },
  {
    name: "when for run_at",
    job: '{"command":"x","when":"10:00"}',
    code: 2,
    stderr: /field "when" is not a job field: did you mean "run_at"\?/,
  },
  {
    name: "dir for cwd",
    job: '{"command":"x","dir":"/tmp"}',
    code: 2,
    stderr: /field "dir" is not a job field: did you mean "cwd"\?/,
  },
  {
    name: "environment for env",
    job: '{"command":"x","environment":{}}',
    code: 2,
    stderr: /field "environment" is not a job field: did you mean "env"\?/,
  },
  {
    name: "a camelCase field",
    job: '{"command":"x","maxRetries":2}',
    code: 2,
    stderr: /field "maxRetries" is not a job field: did you mean "max_retries"\?/,
  },
  {
    name: "an unknown field",
    job: '{"command":"x","tags":["a"]}',
    code: 2,
    stderr: /field "tags" is not a job field/,
  },
  {
    name: "a queue name with a space",
    job: '{"command":"x","queue":"my queue"}',
    code: 2,
    stderr: /field "queue" may hold only letters, digits/,
  },
  {
    name: "a queue that is not a string",
    job: '{"command":"x","queue":3}',
    code: 2,
    stderr: /field "queue" must be a string, not a number/,
  },
  // Types: no coercion
  {
    name: "a number as command",
    job: '{"command":42}',
    code: 2,
    stderr: /field "command" must be a string, not a number/,
  },
  {
    name: "an argv array as command",
    job: '{"command":["ls","-l"]}',
    code: 2,
    stderr: /field "command" must be a string, not an array/,
  },
  {
    name: "an empty command",
    job: '{"command":"  "}',
    code: 2,
    stderr: /field "command" is empty/,
  },
  {
    name: 'priority "5" (a string)',
    job: '{"command":"x","priority":"5"}',
    code: 2,
    stderr: /field "priority" must be a number, not a string/,
  },
  {
    name: 'max_retries "3" (a string)',
    job: '{"command":"x","max_retries":"3"}',
    code: 2,
    stderr: /field "max_retries" must be a number, not a string/,
  },
  {
    name: "run_at as epoch milliseconds",
    job: '{"command":"x","run_at":1798761600000}',
    code: 2,
    stderr: /field "run_at" must be a string, not a number/,
  },
  {
    name: "timeout true",
    job: '{"command":"x","timeout":true}',
    code: 2,
    stderr: /field "timeout" must be a duration/,
  },
  {
    name: "env as a list",
    job: '{"command":"x","env":["A=1"]}',
    code: 2,
    stderr: /field "env" must be an object of strings, not an array/,
  },
  {
    name: "an env value that is a number",
    job: '{"command":"x","env":{"PORT":8080}}',
    code: 2,
    stderr: /field "env" value of PORT must be a string, not a number/,
  },
  {
    name: "an env name with =",
    job: '{"command":"x","env":{"A=B":"1"}}',
    code: 2,
    stderr: /field "env" has an invalid variable name "A=B"/,
  },
  {
    name: "cwd null",
    job: '{"command":"x","cwd":null}',
    code: 2,
    stderr: /field "cwd" must be a string, not null/,
  },
  // Ranges
  {
    name: "priority 0",
    job: '{"command":"x","priority":0}',
    code: 2,
    stderr: /field "priority" must be a whole number from 1 to 10, not 0/,
  },
  {
    name: "priority 11",
    job: '{"command":"x","priority":11}',
    code: 2,
    stderr: /field "priority" must be a whole number from 1 to 10, not 11/,
  },
  {
    name: "priority 5.5",
    job: '{"command":"x","priority":5.5}',
    code: 2,
    stderr: /field "priority" must be a whole number from 1 to 10, not 5\.5/,
  },
  {
    name: "max_retries -1",
    job: '{"command":"x","max_retries":-1}',
    code: 2,
    stderr: /field "max_retries" must be a whole number from 0 to 1000, not -1/,
  },
  {
    name: "max_retries 1001",
    job: '{"command":"x","max_retries":1001}',
    code: 2,
    stderr: /field "max_retries" .* not 1001/,
  },
  {
    name: "--queue with a slash",
    args: ["enqueue", "-c", "x", "--queue", "a/b"],
    code: 2,
    stderr: /Invalid value "a\/b" for --queue: may hold only letters/,
  },
  {
    name: "pause of a bad queue name",
    args: ["pause", "ok", "no way"],
    code: 2,
    stderr: /Invalid queue name "no way": may hold only letters/,
  },
  {
    name: "resume of an empty queue name",
    args: ["resume", ""],
    code: 2,
    stderr: /Invalid queue name "": is empty/,
  },
  {
    name: "queue set with a negative concurrency",
    args: ["queue", "set", "mail", "--concurrency", "-1"],
    code: 2,
    stderr: /Invalid value "-1" for --concurrency: must be a whole number from 0 to 100000/,
  },
  {
    name: "queue set with a fractional concurrency",
    args: ["queue", "set", "mail", "--concurrency", "1.5"],
    code: 2,
    stderr: /Invalid value "1.5" for --concurrency/,
  },
  {
    name: "queue set without --concurrency",
    args: ["queue", "set", "mail"],
    code: 2,
    stderr: /Missing --concurrency for queue set/,
  },
  {
    name: "queue set with an unknown flag",
    args: ["queue", "set", "mail", "--limit-to", "2"],
    code: 2,
    stderr: /Unknown flag "--limit-to" for queue set/,
  },
  {
    name: "queue set of two queues",
    args: ["queue", "set", "a", "b", "--concurrency", "1"],
    code: 2,
    stderr: /queue set/,
  },
  {
    name: "worker run --queue with an empty name",
    args: ["worker", "run", "--once", "--queue", "mail,,x"],
    code: 2,
    stderr: /Invalid value "mail,,x" for --queue: queue name "" is empty/,
  },
  {
    name: "worker start --queue with a bad name",
    args: ["worker", "start", "--queue", "-mail"],
    code: 2,
    stderr: /for --queue/,
  },
  {
    name: "list --queue with a bad name",
    args: ["list", "--queue", "a b"],
    code: 2,
    stderr: /Invalid value "a b" for --queue/,
  },
  {
    name: "--priority 0",
    args: ["enqueue", "-c", "x", "--priority", "0"],
    code: 2,
    stderr: /Invalid value "0" for --priority: must be a whole number from 1 to 10/,
  },
  {
    name: "--priority 11",
    args: ["enqueue", "-c", "x", "--priority", "11"],
    code: 2,
    stderr: /Invalid value "11" for --priority/,
  },
  {
    name: "--priority 5.5",
    args: ["enqueue", "-c", "x", "--priority", "5.5"],
    code: 2,
    stderr: /Invalid value "5\.5" for --priority/,
  },
  {
    name: "--priority high",
    args: ["enqueue", "-c", "x", "--priority", "high"],
    code: 2,
    stderr: /Invalid value "high" for --priority/,
  },
  {
    name: "--max-retries -1",
    args: ["enqueue", "-c", "x", "--max-retries", "-1"],
    code: 2,
    stderr: /Invalid value "-1" for --max-retries: must be a whole number from 0 to 1000/,
  },
  {
    name: "a bad field that a flag would override",
    job: '{"command":"x","priority":"high"}',
    flags: ["--priority", "3"],
    code: 2,
    stderr: /field "priority" must be a number, not a string/,
  },
  // Durations
  {
    name: "a negative timeout",
    job: '{"command":"x","timeout":-5}',
    code: 2,
    stderr: /field "timeout" must not be negative/,
  },
  {
    name: "timeout in words",
    job: '{"command":"x","timeout":"5 minutes"}',
    code: 2,
    stderr: /field "timeout" is not a duration/,
  },
  {
    name: "an overflowing delay",
    job: '{"command":"x","delay":"99999999999999999999d"}',
    code: 2,
    stderr: /field "delay" is too long/,
  },
  {
    name: "delay units out of order",
    job: '{"command":"x","delay":"30m1h"}',
    code: 2,
    stderr: /field "delay" has units out of order/,
  },
  {
    name: "--delay -5s",
    args: ["enqueue", "-c", "x", "--delay", "-5s"],
    code: 2,
    stderr: /Invalid value "-5s" for --delay: must not be negative/,
  },
  {
    name: "--timeout abc",
    args: ["enqueue", "-c", "x", "--timeout", "abc"],
    code: 2,
    stderr: /Invalid value "abc" for --timeout: is not a duration/,
  },
  {
    name: "--timeout past ten years",
    args: ["enqueue", "-c", "x", "--timeout", "3651d"],
    code: 2,
    stderr: /Invalid value "3651d" for --timeout: is too long/,
  },
  {
    name: "--delay 1e9",
    args: ["enqueue", "-c", "x", "--delay", "1e9"],
    code: 2,
    stderr: /Invalid value "1e9" for --delay/,
  },
  // Dates
  {
    name: "an unparsable run_at",
    job: '{"command":"x","run_at":"next tuesday"}',
    code: 2,
    stderr: /field "run_at" "next tuesday" is not a time/,
  },
  {
    name: "an impossible run_at (Feb 30)",
    job: '{"command":"x","run_at":"2027-02-30 10:00"}',
    code: 2,
    stderr: /field "run_at" "2027-02-30 10:00" is not a valid date/,
  },
  {
    name: "a run_at centuries ahead",
    job: '{"command":"x","run_at":"2999-01-01T00:00:00Z"}',
    code: 2,
    stderr: /field "run_at" .* more than 10 years ahead/,
  },
  {
    name: "run_at and delay together",
    job: '{"command":"x","run_at":"2030-01-01 00:00","delay":"5m"}',
    code: 2,
    stderr: /field "delay" cannot be combined with "run_at"/,
  },
  {
    name: "--run-at yesterday",
    args: ["enqueue", "-c", "x", "--run-at", "yesterday"],
    code: 2,
    stderr: /Invalid value for --run-at: "yesterday" is not a time/,
  },
  {
    name: "--env without =",
    args: ["enqueue", "-c", "x", "--env", "STAGE"],
    code: 2,
    stderr:
      /^queuectl: Invalid value "STAGE" for --env: must be NAME=VALUE \(e\.g\. --env STAGE=prod\)\n$/,
  },
  {
    name: "--env with an empty name",
    args: ["enqueue", "-c", "x", "--env", "=prod"],
    code: 2,
    stderr: /^queuectl: Invalid value "=prod" for --env: must be NAME=VALUE/,
  },
  {
    name: "--env with NUL in the value",
    args: ["enqueue", "-c", "x", "--env", "A=a\0b"],
    code: 2,
    stderr: /^queuectl: Invalid value "A=a\\u0000b" for --env: the value contains a NUL character/,
    only: { where: "in-process", why: "execve cannot pass NUL in an argument" },
  },
  {
    name: "--env twice on stdin, one bad",
    args: ["enqueue", "-", "--env", "A=1", "--env", "B"],
    stdin: '{"command":"x"}\n',
    code: 2,
    stderr: /Invalid value "B" for --env/,
  },
  {
    name: "--cwd empty",
    args: ["enqueue", "-c", "x", "--cwd", ""],
    code: 2,
    stderr: /^queuectl: Invalid value "" for --cwd: is empty\n$/,
  },
  {
    name: "--run-at tomorrow without a time",
    args: ["enqueue", "-c", "x", "--run-at", "tomorrow"],
    code: 2,
    stderr: /--run-at: "tomorrow" is not a time; use HH:MM, "tomorrow HH:MM", YYYY-MM-DD/,
  },
  {
    name: "--run-at 25:00",
    args: ["enqueue", "-c", "x", "--run-at", "25:00"],
    code: 2,
    stderr: /--run-at: "25:00" is not a valid date and time/,
  },
  {
    name: "run_at tomorrow at 24:00",
    job: '{"command":"x","run_at":"tomorrow 24:00"}',
    code: 2,
    stderr: /field "run_at" "tomorrow 24:00" is not a valid date and time/,
  },
  {
    name: "--run-at month 13",
    args: ["enqueue", "-c", "x", "--run-at", "2030-13-01 00:00"],
    code: 2,
    stderr: /--run-at: "2030-13-01 00:00" is not a valid date/,
  },
  {
    name: "--run-at 24:00",
    args: ["enqueue", "-c", "x", "--run-at", "2030-01-01T24:00:00Z"],
    code: 2,
    stderr: /--run-at: "2030-01-01T24:00:00Z" is not a valid date/,
  },
  {
    name: "--delay with --run-at",
    args: ["enqueue", "-c", "x", "--delay", "5m", "--run-at", "2030-01-01 00:00"],
    code: 2,
    stderr: /--delay and --run-at cannot be combined/,
  },
  {
    name: "--run-at in a DST gap (Europe/Berlin)",
    args: ["enqueue", "-c", "x", "--run-at", "2030-03-31 02:30"],
    env: { TZ: "Europe/Berlin" },
    code: 2,
    stderr: /"2030-03-31 02:30" is ambiguous or does not exist in time zone Europe\/Berlin/,
    only: { where: "process", why: "the local time zone is set through TZ of a new process" },
  },
  {
    name: "run_at in a DST overlap (Europe/Berlin)",
    job: '{"command":"x","run_at":"2030-10-27 02:30"}',
    env: { TZ: "Europe/Berlin" },
    code: 2,
    stderr: /field "run_at" "2030-10-27 02:30" is ambiguous/,
    only: { where: "process", why: "the local time zone is set through TZ of a new process" },
  },
  // Ids
  { name: "an empty id", job: '{"command":"x","id":""}', code: 2, stderr: /field "id" is empty/ },
  {
    name: "a 129-character id",
    job: JSON.stringify({ command: "x", id: "a".repeat(129) }),
    code: 2,
    stderr: /field "id" is 129 characters long; the most is 128/,
  },
  {
    name: "an id with a tab",
    job: '{"command":"x","id":"a\\tb"}',
    code: 2,
    stderr: /field "id" may hold only letters, digits/,
  },
  {
    name: "an id with NUL",
    job: '{"command":"x","id":"a\\u0000b"}',
    code: 2,
    stderr: /field "id" may hold only/,
  },
  {
    name: "an id with a lone surrogate",
    job: '{"command":"x","id":"a\\ud800"}',
    code: 2,
    stderr: /field "id" may hold only/,
  },
  {
    name: "an id with shell metacharacters",
    job: '{"command":"x","id":"x;rm -rf ~"}',
    code: 2,
    stderr: /field "id" may hold only/,
  },
  {
    name: "a path-like id",
    job: '{"command":"x","id":"../../etc/passwd"}',
    code: 2,
    stderr: /field "id" may hold only/,
  },
  {
    name: "an option-like id",
    job: '{"command":"x","id":"--x"}',
    code: 2,
    stderr: /field "id" .*must start with a letter or digit/,
  },
  {
    // The flag is at fault, not --command, and there is no JSON to show an example of.
    name: "--id with a space",
    args: ["enqueue", "-c", "x", "--id", "a b"],
    code: 2,
    stderr:
      /^queuectl: Invalid value "a b" for --id: may hold only letters, digits and \. _ : - and must start with a letter or digit\n$/,
  },
  {
    name: "--id with a space, overriding a JSON id",
    args: ["enqueue", '{"command":"x","id":"fine"}', "--id", "a b"],
    code: 2,
    stderr: /^queuectl: Invalid value "a b" for --id: may hold only letters/,
  },
  {
    name: "an empty -c",
    args: ["enqueue", "-c", " "],
    code: 2,
    stderr: /^queuectl: Invalid value " " for --command: is empty\n$/,
  },
  {
    name: "show an option-like id",
    args: ["show", "--", "--x"],
    code: 2,
    stderr: /Invalid job id "--x"/,
  },
  {
    name: "show an id with a newline",
    args: ["show", "a\nb"],
    code: 2,
    stderr: /Invalid job id "a\\nb"/,
  },
  {
    name: "show a path-like id",
    args: ["show", "../queue.db"],
    code: 2,
    stderr: /Invalid job id "\.\.\/queue\.db"/,
  },
  {
    name: "show an id with NUL",
    args: ["show", "a\0b"],
    code: 2,
    stderr: /Invalid job id "a\\u0000b"/,
    only: { where: "in-process", why: "execve cannot pass NUL in an argument" },
  },
  {
    name: "show an id with a lone surrogate",
    args: ["show", "a\ud800"],
    code: 2,
    stderr: /Invalid job id "a/,
  },
  {
    name: "a command with NUL",
    job: '{"command":"echo a\\u0000b"}',
    code: 2,
    stderr: /field "command" contains a NUL character/,
  },
  {
    name: "a command with a lone surrogate",
    job: '{"command":"echo \\udc00"}',
    code: 2,
    stderr: /field "command" contains an unpaired surrogate/,
  },
  {
    name: "a command over 128 KiB",
    job: TOO_LONG_COMMAND,
    code: 2,
    stderr: /field "command" is longer than 128 KiB/,
  },
  // Duplicate ids, in every state: exit 3, and a batch stores nothing
  {
    name: "the id of a pending job",
    job: '{"command":"x","id":"p1"}',
    code: 3,
    stderr: /Job "p1" already exists/,
  },
  {
    name: "the id of a processing job",
    job: '{"command":"x","id":"r1"}',
    code: 3,
    stderr: /Job "r1" already exists/,
  },
  {
    name: "the id of a completed job",
    job: '{"command":"x","id":"c1"}',
    code: 3,
    stderr: /Job "c1" already exists/,
  },
  {
    name: "the id of a failed job",
    job: '{"command":"x","id":"f1"}',
    code: 3,
    stderr: /Job "f1" already exists/,
  },
  {
    name: "the id of a dead job",
    job: '{"command":"x","id":"d1"}',
    code: 3,
    stderr: /Job "d1" already exists/,
  },
  {
    name: "--id of a dead job",
    args: ["enqueue", "-c", "x", "--id", "d1"],
    code: 3,
    stderr: /Job "d1" already exists.*--if-not-exists/,
  },
  {
    // Past the first multi-row insert of a bulk enqueue: the line is still named.
    name: "stdin of 120 jobs whose 75th takes the id of a dead job",
    args: ["enqueue", "-"],
    stdin: Array.from(
      { length: 120 },
      (_, i) => JSON.stringify(i === 74 ? { command: "x", id: "d1" } : { command: `echo ${i}` }),
    ).join("\n"),
    code: 3,
    stderr: /stdin line 75: Job "d1" already exists/,
  },
  {
    name: "one id twice on stdin",
    args: ["enqueue", "-"],
    stdin: '{"command":"a","id":"twin"}\n{"command":"b","id":"twin"}\n',
    code: 2,
    stderr: /Job id "twin" appears twice on standard input/,
  },
  {
    name: "stdin with a bad third line",
    args: ["enqueue", "-"],
    stdin: '{"command":"a"}\n\n{"command":"b","priority":99}\n',
    code: 2,
    stderr: /stdin line 3: field "priority"/,
  },
  // Config
  {
    name: "config set of an unknown key",
    args: ["config", "set", "max-retry", "5"],
    code: 2,
    stderr:
      /Unknown config key "max-retry": did you mean "max-retries"\?.*valid keys: max-retries, backoff-base/,
  },
  {
    name: "config get of an unknown key",
    args: ["config", "get", "colour"],
    code: 2,
    stderr: /Unknown config key "colour".*valid keys/,
  },
  {
    name: "config unset of an unknown key",
    args: ["config", "unset", "nope"],
    code: 2,
    stderr: /Unknown config key "nope"/,
  },
  {
    name: "config set max-retries abc",
    args: ["config", "set", "max-retries", "abc"],
    code: 2,
    stderr: /Invalid value "abc" for max-retries: must be a whole number/,
  },
  {
    name: "config set max-retries 1001",
    args: ["config", "set", "max-retries", "1001"],
    code: 2,
    stderr: /Invalid value "1001" for max-retries: must be between 0 and 1000/,
  },
  {
    name: "config set backoff-base 0",
    args: ["config", "set", "backoff-base", "0"],
    code: 2,
    stderr: /Invalid value "0" for backoff-base/,
  },
  {
    name: "config set backoff-max 1x",
    args: ["config", "set", "backoff-max", "1x"],
    code: 2,
    stderr: /Invalid value "1x" for backoff-max: is not a duration/,
  },
  {
    name: "config set lease-timeout 0",
    args: ["config", "set", "lease-timeout", "0"],
    code: 2,
    stderr: /Invalid value "0" for lease-timeout: must be between 1s and 1d/,
  },
  {
    name: "config set output-limit 1TiB",
    args: ["config", "set", "output-limit", "1TiB"],
    code: 2,
    stderr: /Invalid value "1TiB" for output-limit: is not a size/,
  },
  {
    name: "config set without a value",
    args: ["config", "set", "max-retries"],
    code: 2,
    stderr: /Missing VALUE for config set/,
  },
  {
    name: "config set a negative value",
    args: ["config", "set", "job-timeout", "-5"],
    code: 2,
    stderr: /"-5"/,
  },
  // DLQ
  {
    name: "dlq retry of an unknown job",
    args: ["dlq", "retry", "ghost"],
    code: 4,
    stderr: /Job "ghost" not found/,
  },
  {
    name: "dlq retry of a pending job",
    args: ["dlq", "retry", "p1"],
    code: 3,
    stderr: /Job "p1" is not in the dead letter queue: it is pending/,
  },
  {
    name: "dlq retry of a processing job",
    args: ["dlq", "retry", "r1"],
    code: 3,
    stderr: /Job "r1" is not in the dead letter queue: it is processing/,
  },
  {
    name: "dlq retry of a completed job",
    args: ["dlq", "retry", "c1"],
    code: 3,
    stderr: /Job "c1" .* it is completed/,
  },
  {
    name: "dlq retry of a failed job",
    args: ["dlq", "retry", "f1"],
    code: 3,
    stderr: /Job "f1" .* it is failed/,
  },
  {
    name: "dlq retry of a dead and an unknown job",
    args: ["dlq", "retry", "d1", "ghost"],
    code: 4,
    stderr: /Job "ghost" not found/,
  },
  {
    name: "dlq retry of a dead and a live job",
    args: ["dlq", "retry", "d1", "p1"],
    code: 3,
    stderr: /Job "p1" is not in the dead letter queue/,
  },
  {
    name: "dlq retry with ids and --all",
    args: ["dlq", "retry", "d1", "--all"],
    code: 2,
    stderr: /Give job ids or --all, not both/,
  },
  {
    name: "dlq retry with nothing",
    args: ["dlq", "retry"],
    code: 2,
    stderr: /Missing ID for dlq retry/,
  },
  {
    name: "dlq retry of a bad id",
    args: ["dlq", "retry", "d1", "$(reboot)"],
    code: 2,
    stderr: /Invalid job id "\$\(reboot\)"/,
  },
  // Commands, flags, arguments
  {
    name: "a misspelt command",
    args: ["enqeue", "-c", "x"],
    code: 2,
    stderr: /Unknown command "enqeue": did you mean "enqueue"\?/,
  },
  {
    name: "an unknown command",
    args: ["frobnicate"],
    code: 2,
    stderr: /Unknown command "frobnicate" \(`queuectl --help` lists the commands\)/,
  },
  {
    name: "a misspelt subcommand",
    args: ["config", "sett", "max-retries", "5"],
    code: 2,
    stderr: /Unknown command "config sett": did you mean "set"\?/,
  },
  {
    name: "an unknown dlq subcommand",
    args: ["dlq", "purge"],
    code: 2,
    stderr: /Unknown command "dlq purge".*dlq commands: list, retry/,
  },
  {
    name: "a command with a newline in it",
    args: ["sta\ntus"],
    code: 2,
    stderr: /Unknown command "sta\\ntus"/,
  },
  {
    // Not "see `queuectl queuectl --help`".
    name: "-v for --version",
    args: ["-v"],
    code: 2,
    stderr: /^queuectl: Unknown flag "-v": did you mean "--version"\? \(see `queuectl --help`\)\n$/,
  },
  {
    name: "version as a command",
    args: ["version"],
    code: 2,
    stderr: /^queuectl: Unknown command "version": did you mean "--version"\?/,
  },
  {
    name: "a command by another name",
    args: ["add", "-c", "x"],
    code: 2,
    stderr: /^queuectl: Unknown command "add": did you mean "enqueue"\?/,
  },
  {
    name: "a subcommand by another name",
    args: ["worker", "ls"],
    code: 2,
    stderr: /^queuectl: Unknown command "worker ls": did you mean "list"\?/,
  },
  {
    name: "a flag by another name",
    args: ["enqueue", "--cmd", "x"],
    code: 2,
    stderr: /^queuectl: Unknown flag "--cmd" for enqueue: did you mean "--command"\?/,
  },
  {
    name: "help of a command with an extra word",
    args: ["help", "enqueue", "now"],
    code: 2,
    stderr: /^queuectl: Unexpected argument "now" for help \(see `queuectl --help`\)\n$/,
  },
  {
    name: "a misspelt flag",
    args: ["list", "--stat", "dead"],
    code: 2,
    stderr: /Unknown flag "--stat" for list: did you mean "--state"\?/,
  },
  {
    name: "an unknown short flag",
    args: ["list", "-s", "dead"],
    code: 2,
    stderr: /Unknown flag "-s" for list/,
  },
  {
    name: "a flag with an escape sequence",
    args: ["list", "--\x1b[2J"],
    code: 2,
    stderr: /Unknown flag "--\\u001b\[2J" for list/,
  },
  {
    name: "a state with an escape sequence",
    args: ["list", "--state", "\x1b]0;pwned\x07dead"],
    code: 2,
    stderr: /Unknown state "\\u001b\]0;pwned\\u0007dead"/,
  },
  {
    name: "an unknown state",
    args: ["list", "--state", "dea"],
    code: 2,
    stderr: /Unknown state "dea": did you mean "dead"\?/,
  },
  {
    name: "an unknown state among several",
    args: ["list", "--state", "pending,faild"],
    code: 2,
    stderr: /^queuectl: Unknown state "faild": did you mean "failed"\?/,
  },
  {
    name: "an empty state among several",
    args: ["list", "--state", "pending,,dead"],
    code: 2,
    stderr:
      /^queuectl: Invalid value "pending,,dead" for --state \(give states separated by commas/,
  },
  {
    name: "list --before an unknown job",
    args: ["list", "--before", "nope"],
    code: 4,
    stderr: /^queuectl: Job "nope" not found/,
  },
  {
    name: "list --before an invalid id",
    args: ["list", "--before", "../x"],
    code: 2,
    stderr: /^queuectl: Invalid job id "\.\.\/x"/,
  },
  {
    name: "--limit 0",
    args: ["list", "--limit", "0"],
    code: 2,
    stderr: /Invalid value "0" for --limit/,
  },
  {
    name: "--limit without a value",
    args: ["list", "--limit"],
    code: 2,
    stderr: /Flag --limit needs a value \(N\)/,
  },
  {
    name: "-c without a value",
    args: ["enqueue", "-c"],
    code: 2,
    stderr: /Flag --command needs a value/,
  },
  {
    name: "logs --follow --json",
    args: ["logs", "c1", "--follow", "--json"],
    code: 2,
    stderr: /^queuectl: --json cannot be combined with --follow: /,
  },
  {
    name: "worker run --json",
    args: ["worker", "run", "--json"],
    code: 2,
    stderr: /^queuectl: worker run does not take --json: /,
  },
  {
    name: "worker start --json in the foreground",
    args: ["worker", "start", "--count", "2", "--json"],
    code: 2,
    stderr: /^queuectl: worker start --json needs --detach: /,
  },
  {
    name: "--db without a value",
    args: ["status", "--db"],
    db: "none",
    code: 2,
    stderr: /Flag --db needs a value \(PATH\|URL\)/,
  },
  {
    name: "a flag given twice",
    args: ["enqueue", "-c", "x", "--priority", "1", "--priority", "2"],
    code: 2,
    stderr: /Flag --priority is given twice/,
  },
  {
    name: "a value on a boolean flag",
    args: ["status", "--json=yes"],
    code: 2,
    stderr: /Flag --json takes no value/,
  },
  {
    name: "an extra argument",
    args: ["status", "now"],
    code: 2,
    stderr: /Unexpected argument "now" for status/,
  },
  {
    name: "a second job argument",
    args: ["enqueue", '{"command":"a"}', '{"command":"b"}'],
    code: 2,
    stderr:
      /Unexpected argument "\{\\"command\\":\\"b\\"\}" for enqueue|Unexpected argument .* for enqueue/,
  },
  {
    name: "an unquoted JSON job",
    args: ["enqueue", "{command:", "echo hi}"],
    code: 2,
    stderr: /Unexpected argument "echo hi\}" for enqueue \(quote the whole JSON/,
  },
  {
    name: "show with two ids",
    args: ["show", "p1", "c1"],
    code: 2,
    stderr: /Unexpected argument "c1" for show/,
  },
  { name: "show without an id", args: ["show"], code: 2, stderr: /Missing ID for show/ },
  {
    name: "show of an unknown job",
    args: ["show", "ghost"],
    code: 4,
    stderr: /Job "ghost" not found/,
  },
  {
    name: "enqueue without a job",
    args: ["enqueue"],
    code: 2,
    stderr: /Missing the job to enqueue/,
  },
  {
    name: "enqueue of JSON and -c",
    args: ["enqueue", '{"command":"a"}', "-c", "b"],
    code: 2,
    stderr: /Give the job as JSON or with --command, not both/,
  },
  {
    name: "enqueue - with --id",
    args: ["enqueue", "-", "--id", "x"],
    stdin: '{"command":"a"}\n',
    code: 2,
    stderr: /--id cannot be used with -/,
  },
  {
    name: "a shell command instead of JSON",
    args: ["enqueue", "echo hi"],
    code: 2,
    stderr: /The job is not JSON: "echo hi" \(to run a shell command, use -c "echo hi"\)/,
  },
  // Database paths
  {
    name: "--db a directory",
    args: ["enqueue", "-c", "x"],
    db: "directory",
    code: 6,
    stderr: /Database path is a directory: .*\/queue\.db/,
  },
  {
    name: "--db a directory (status)",
    args: ["status"],
    db: "directory",
    code: 6,
    stderr: /Database path is a directory/,
  },
  {
    name: "--db in a missing directory",
    args: ["enqueue", "-c", "x"],
    db: "missing-dir",
    code: 6,
    stderr: /Database directory does not exist: .*\/missing/,
  },
  {
    name: "--db in a missing directory (list)",
    args: ["list"],
    db: "missing-dir",
    code: 6,
    stderr: /Database directory does not exist/,
  },
  {
    name: "--db a read-only file (chmod 0444)",
    args: ["enqueue", "-c", "x"],
    db: "read-only",
    code: 6,
    stderr: /Database is read-only: .*\/queue\.db/,
    only: { where: "process", why: "it must run as a user that 0444 stops (not root)" },
  },
  {
    name: "--db a read-only file (chmod 0444, status)",
    args: ["status"],
    db: "read-only",
    code: 6,
    stderr: /Database is read-only: .*\/queue\.db/,
    only: { where: "process", why: "it must run as a user that 0444 stops (not root)" },
  },
  {
    name: "--db in a read-only directory (enqueue)",
    args: ["enqueue", "-c", "x"],
    db: "read-only-dir",
    code: 6,
    stderr: /Database is read-only: .*\/data\/queue\.db/,
    only: { where: "process", why: "it must run as a user that 0555 stops (not root)" },
  },
  {
    name: "--db in a read-only directory (list)",
    args: ["list"],
    db: "read-only-dir",
    code: 6,
    stderr: /Database is read-only: .*\/data\/queue\.db/,
    only: { where: "process", why: "it must run as a user that 0555 stops (not root)" },
  },
  {
    name: "--db new in a read-only directory",
    args: ["enqueue", "-c", "x"],
    db: "read-only-dir-new",
    code: 6,
    stderr: /Cannot create database: .*\/data\/queue\.db: permission denied/,
    only: { where: "process", why: "it must run as a user that 0555 stops (not root)" },
  },
  {
    name: "--db a file that is not SQLite",
    args: ["enqueue", "-c", "x"],
    db: "not-sqlite",
    code: 6,
    stderr: /Database is corrupt or not a queuectl database: .*\/queue\.db/,
  },
  {
    name: "--db an empty file",
    args: ["status"],
    db: "empty",
    code: 6,
    stderr: /Database file is empty: .*\/queue\.db/,
  },
  {
    name: "--db another program's SQLite file",
    args: ["enqueue", "-c", "x"],
    db: "foreign",
    code: 6,
    stderr: /Not a queuectl database: .*\/queue\.db/,
  },
  {
    name: "--db a newer schema",
    args: ["enqueue", "-c", "x"],
    db: "newer",
    code: 6,
    stderr: new RegExp(`Database schema v${SCHEMA_VERSION + 1} is newer than this queuectl`),
  },
  {
    name: "--db a newer schema (list)",
    args: ["list"],
    db: "newer",
    code: 6,
    stderr: /is newer than this queuectl.*upgrade queuectl/,
  },
  {
    name: "--db empty",
    args: ["status", "--db", ""],
    db: "none",
    code: 2,
    stderr: /Database path is empty/,
  },
  {
    name: "--db a URL of another database",
    args: ["status", "--db", "mysql://root:hunter2@localhost/q"],
    db: "none",
    code: 2,
    stderr: /^queuectl: Unsupported database URL: mysql:\/\/root@localhost\/q \(/,
  },
  {
    name: "--db a PostgreSQL URL that does not parse",
    args: ["status", "--db", "postgres://u:hunter2@[oops/q"],
    db: "none",
    code: 2,
    stderr: /^queuectl: Database URL is not a valid URL \(give postgres:\/\/USER@HOST/,
  },
  {
    name: "--db a PostgreSQL URL with a bad schema name",
    args: ["status", "--db", "postgres://u:hunter2@localhost/q?schema=my-queue"],
    db: "none",
    code: 2,
    stderr: /^queuectl: Invalid schema name in the database URL: "my-queue"/,
  },
];

/** A valid line that comes first on stdin: it must not be stored when a later line fails. */
const GOOD_LINE = '{"command":"echo fine","id":"good-line"}';

// The queue every "queue" row starts from, built once and copied for each run.
const template = await moduleTempDir("queuectl-bad-input-");
{
  const clock = new FakeClock(T0);
  const store = await openTestStore(template.db, clock);
  await makeOneOfEach(store, clock);
  await store.configSet({ key: "max-retries", value: "2" });
  store.close();
}

/** A home and Deno cache for runs as `nobody`. */
const nobodyHome = await moduleTempDir("queuectl-nobody-");
await Deno.chmod(nobodyHome.path, 0o777);

/** Can this process write to a 0444 file? Root can, which makes the read-only rows moot. */
const ROOT = Deno.uid() === 0;
const SETPRIV = ROOT &&
  (await new Deno.Command("setpriv", { args: ["--version"] }).output().catch(() => ({ code: 1 })))
      .code === 0;

/** Prepares a row's directory; returns the `--db` path. */
async function prepare(dir: string, kind: DbKind): Promise<string> {
  const db = `${dir}/queue.db`;
  switch (kind) {
    case "queue":
    case "none":
      await Deno.copyFile(template.db, db);
      break;
    case "directory":
      await Deno.mkdir(db);
      break;
    case "missing-dir":
      return `${dir}/missing/queue.db`;
    case "new":
      return db;
    case "read-only":
      await Deno.copyFile(template.db, db);
      await Deno.chmod(db, 0o444);
      break;
    case "read-only-dir": {
      await Deno.mkdir(`${dir}/data`);
      const path = `${dir}/data/queue.db`;
      await Deno.copyFile(template.db, path);
      // As root the rows run as nobody, who must own the file for this to be about the directory.
      if (ROOT) await Deno.chown(path, 65534, null);
      await Deno.chmod(`${dir}/data`, 0o555);
      return path;
    }
    case "read-only-dir-new":
      await Deno.mkdir(`${dir}/data`);
      await Deno.chmod(`${dir}/data`, 0o555);
      return `${dir}/data/queue.db`;
    case "not-sqlite":
      await Deno.writeFile(db, new Uint8Array(4096).map((_, i) => (i * 7 + 3) & 0xff));
      break;
    case "empty":
      await Deno.writeFile(db, new Uint8Array(0));
      break;
    case "foreign":
      makeForeignDb(db);
      break;
    case "newer":
      await Deno.copyFile(template.db, db);
      setSchemaVersion(db, SCHEMA_VERSION + 1);
      break;
  }
  return db;
}

interface Run {
  label: string;
  args: string[];
  stdin?: string;
  /** Extra pattern for this form (the stdin form names the line). */
  also?: RegExp;
}

/** The forms a row runs in: its arguments, or its job as an argument and on stdin. */
function runsOf(row: Row): Run[] {
  if (row.job === undefined) {
    return [{
      label: "arguments",
      args: row.args!,
      ...(row.stdin !== undefined ? { stdin: row.stdin } : {}),
    }];
  }
  const flags = row.flags ?? [];
  return [
    { label: "argument", args: ["enqueue", row.job, ...flags] },
    {
      label: "stdin",
      args: ["enqueue", "-", ...flags],
      stdin: `${GOOD_LINE}\n${row.job}\n`,
      ...(row.code === 2 ? { also: /stdin line 2: / } : {}),
    },
  ];
}

/** Checks one result against the row; returns the problems found (empty when all is well). */
function problems(
  row: Row,
  run: Run,
  result: CliResult,
  before: unknown,
  after: unknown,
): string[] {
  const out: string[] = [];
  if (result.code !== row.code) out.push(`exit code ${result.code}, expected ${row.code}`);
  if (result.stdout !== "") out.push(`stdout not empty: ${JSON.stringify(result.stdout)}`);
  const lines = result.stderr.split("\n");
  if (lines.length !== 2 || lines[1] !== "") {
    out.push(`stderr is not one line: ${JSON.stringify(result.stderr)}`);
  }
  if (!result.stderr.startsWith("queuectl: ")) out.push(`stderr does not start with "queuectl: "`);
  if (/^\s+at /m.test(result.stderr)) out.push("stderr holds a stack trace");
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x09\x0b-\x1f\x7f]/.test(result.stderr)) out.push("stderr holds control characters");
  if (!row.stderr.test(result.stderr)) {
    out.push(`stderr does not match ${row.stderr}: ${JSON.stringify(result.stderr)}`);
  }
  if (run.also && !run.also.test(result.stderr)) out.push(`stderr does not match ${run.also}`);
  try {
    assert.deepEqual(after, before);
  } catch {
    out.push(`the directory changed: ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
  }
  return out;
}

type Runner = (args: string[], run: Run, row: Row, dir: string) => Promise<CliResult>;

async function check(row: Row, run: Run, runner: Runner): Promise<string[]> {
  await using dir = await tempDir("queuectl-bad-");
  const db = await prepare(dir.path, row.db ?? "queue");
  const args = row.db === "none" ? run.args : ["--db", db, ...run.args];
  // The database and its -wal and -shm, and everything else in the directory.
  const before = { files: await dbDigest(db), tree: await treeDigest(dir.path) };
  const result = await runner(args, run, row, dir.path);
  const after = { files: await dbDigest(db), tree: await treeDigest(dir.path) };
  return problems(row, run, result, before, after);
}

const inProcess: Runner = (args, run, row, dir) =>
  runCli(args, {
    cwd: dir,
    clock: new FakeClock(Date.now()),
    ...(run.stdin !== undefined ? { stdin: run.stdin } : {}),
    ...(row.env ? { env: row.env } : {}),
  });

/** A real process; read-only rows run as `nobody` when this is root. */
const asProcess: Runner = async (args, run, row, dir) => {
  const options = {
    cwd: dir,
    ...(run.stdin !== undefined ? { stdin: run.stdin } : {}),
    ...(row.env ? { env: row.env } : {}),
  };
  if (!row.db?.startsWith("read-only") || !ROOT) return await runProcess(args, options);
  // As root, 0444 stops nothing: become nobody, with a Deno cache nobody may write.
  await Deno.chmod(dir, 0o777);
  return await runProcess(args, {
    ...options,
    env: { ...row.env, DENO_DIR: `${nobodyHome.path}/deno`, HOME: nobodyHome.path },
    wrap: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"],
  });
};

/**
 * Rows whose database is a 0444 file cannot be checked as root (root writes anyway) unless
 * setpriv can drop to nobody; then they are skipped, and say why.
 */
function unrunnable(row: Row): string | undefined {
  if (!row.db?.startsWith("read-only") || !ROOT || SETPRIV) return undefined;
  return "running as root without setpriv: chmod 0444 does not stop root from writing";
}

for (const row of ROWS) {
  // Rows that need a process of their own (a TZ, another user) run as one here too.
  const runner = row.only?.where === "process" ? asProcess : inProcess;
  const skip = unrunnable(row);
  Deno.test({
    name: `bad input: ${row.name} → exit ${row.code}${skip ? ` (skipped: ${skip})` : ""}`,
    ignore: skip !== undefined,
    async fn(t) {
      for (const run of runsOf(row)) {
        await t.step(run.label, async () => {
          const found = await check(row, run, runner);
          assert.deepEqual(found, [], `${row.name} (${run.label}):\n  ${found.join("\n  ")}`);
        });
      }
      // Invalid input is refused before the store is touched: no database appears for it.
      if (row.code === 2 && (row.db ?? "queue") === "queue" && !row.only) {
        const fresh: Row = { ...row, db: "new" };
        const [run] = runsOf(fresh);
        await t.step("on a path with no database yet", async () => {
          const found = await check(fresh, run!, runner);
          assert.deepEqual(found, [], `${row.name} (new database):\n  ${found.join("\n  ")}`);
        });
      }
    },
  });
}

Deno.test("the bad-input table has at least 40 rows, each naming what is wrong", () => {
  assert.ok(ROWS.length >= 40, `${ROWS.length} rows`);
  assert.equal(new Set(ROWS.map((r) => r.name)).size, ROWS.length, "two rows share a name");
});

Deno.test("bad input: every row again as a real process", async () => {
  const runs = ROWS.filter((row) => row.only?.where !== "in-process")
    .filter((row) => unrunnable(row) === undefined)
    .flatMap((row) => runsOf(row).map((run) => ({ row, run })))
    // A command over 128 KiB cannot be one argument of a real process (E2BIG): stdin only.
    .filter(({ row, run }) => !(row.job === TOO_LONG_COMMAND && run.label === "argument"));
  const failures: string[] = [];
  let next = 0;
  async function worker() {
    while (next < runs.length) {
      const { row, run } = runs[next++]!;
      const found = await check(row, run, asProcess);
      if (found.length) failures.push(`${row.name} (${run.label}):\n    ${found.join("\n    ")}`);
    }
  }
  await Promise.all([worker(), worker(), worker()]);
  assert.deepEqual(
    failures,
    [],
    `${failures.length} of ${runs.length} runs failed:\n  ${failures.join("\n  ")}`,
  );
});
