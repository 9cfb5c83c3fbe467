import assert from "node:assert/strict";
import {
  flagBool,
  flagInt,
  flagList,
  flagString,
  GLOBAL_FLAGS,
  parseArgs,
} from "../../lib/cli/args.ts";
import type { ArgSpec, FlagSpec } from "../../lib/cli/args.ts";
import { UsageError } from "../../lib/errors.ts";

const FLAGS: FlagSpec[] = [
  { name: "priority", value: "N", help: "" },
  { name: "command", short: "c", value: "CMD", help: "" },
  { name: "all", help: "" },
  ...GLOBAL_FLAGS,
];
const ONE: ArgSpec[] = [{ name: "JSON", optional: true, help: "" }];
const IDS: ArgSpec[] = [{ name: "ID", optional: true, variadic: true, help: "" }];

function parse(args: string[], positional: ArgSpec[] = ONE) {
  return parseArgs(args, FLAGS, positional, "enqueue");
}

function refuses(args: string[], message: RegExp, positional: ArgSpec[] = ONE): void {
  assert.throws(() => parse(args, positional), (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.equal(error.exitCode, 2);
    assert.match(error.message, message, args.join(" "));
    return true;
  });
}

Deno.test("parseArgs() reads --name value, --name=value, -x value, booleans and positionals", () => {
  const parsed = parse(["--priority", "7", "-c", "echo hi", "--all", "--db=/tmp/q.db", "job"]);
  assert.deepEqual(parsed.positionals, ["job"]);
  assert.equal(flagString(parsed, "priority"), "7");
  assert.equal(flagString(parsed, "command"), "echo hi");
  assert.equal(flagBool(parsed, "all"), true);
  assert.equal(flagBool(parsed, "json"), false);
  assert.equal(flagString(parsed, "db"), "/tmp/q.db");
  assert.equal(flagInt(parsed, "priority", 1, 10), 7);
  assert.equal(flagInt(parsed, "missing", 1, 10), undefined);
});

Deno.test("parseArgs() takes a value that looks like a flag, and - as a positional", () => {
  assert.equal(flagString(parse(["--priority", "-1"]), "priority"), "-1");
  assert.equal(flagString(parse(["-c", "--all"]), "command"), "--all");
  assert.equal(flagString(parse(["--priority="]), "priority"), "");
  assert.deepEqual(parse(["-"]).positionals, ["-"]);
});

Deno.test("parseArgs() treats everything after -- as positional", () => {
  assert.deepEqual(parse(["--", "--all"]).positionals, ["--all"]);
  assert.deepEqual(parse(["--all", "--", "-c"], IDS).positionals, ["-c"]);
});

Deno.test("parseArgs() refuses unknown flags, suggesting the near one", () => {
  refuses(["--priorty", "5"], /^Unknown flag "--priorty" for enqueue$/);
  // The suggestion is computed when the error is printed (tests/cli/bad_input_test.ts shows it).
  assert.throws(() => parse(["--priorty", "5"]), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.typo?.input, "--priorty");
    assert.ok(error.typo?.candidates.includes("--priority"));
    return true;
  });
  refuses(["--frobnicate"], /^Unknown flag "--frobnicate" for enqueue$/);
  refuses(["-x"], /^Unknown flag "-x" for enqueue$/);
  refuses(["-call"], /Unknown flag "-call"/);
  refuses(["--Priority", "5"], /Unknown flag "--Priority"/);
});

Deno.test("parseArgs() refuses missing values, repeated flags and values on booleans", () => {
  refuses(["--priority"], /^Flag --priority needs a value \(N\)$/);
  refuses(["-c"], /^Flag --command needs a value \(CMD\)$/);
  refuses(["--priority", "1", "--priority", "2"], /^Flag --priority is given twice$/);
  refuses(["-c", "a", "--command", "b"], /given twice/);
  refuses(["--all=yes"], /^Flag --all takes no value$/);
  refuses(["--json=false"], /^Flag --json takes no value$/);
});

Deno.test("parseArgs() refuses extra arguments and reports missing ones", () => {
  refuses(["a", "b"], /^Unexpected argument "b" for enqueue$/);
  assert.throws(
    () => parseArgs([], FLAGS, [{ name: "ID", help: "" }], "show"),
    { message: /^Missing ID for show$/ },
  );
  assert.deepEqual(parse(["a", "b", "c"], IDS).positionals, ["a", "b", "c"]);
  // What the shell makes of an unquoted {"command": "echo hi"}.
  assert.throws(() => parse(["{command:", "echo hi}"]), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.match(error.hint ?? "", /quote the whole JSON or command/);
    return true;
  });
});

Deno.test("flagInt() accepts whole numbers in range only", () => {
  const value = (text: string) => flagInt(parse(["--priority", text]), "priority", 1, 10);
  assert.equal(value("1"), 1);
  assert.equal(value("10"), 10);
  assert.equal(value("007"), 7);
  for (
    const bad of [
      "0",
      "11",
      "5.5",
      "five",
      "",
      " 5",
      "5 ",
      "1e1",
      "0x5",
      "+5",
      "99999999999999999999",
    ]
  ) {
    assert.throws(() => value(bad), {
      name: "UsageError",
      message: `Invalid value "${bad}" for --priority: must be a whole number from 1 to 10`,
    }, JSON.stringify(bad));
  }
});

Deno.test("parseArgs() collects every value of a repeatable flag, in order", () => {
  const flags: FlagSpec[] = [{ name: "env", value: "K=V", repeatable: true, help: "" }, ...FLAGS];
  const parsed = parseArgs(
    ["--env", "A=1", "--env=B=2", "-c", "x", "--env", "A=3"],
    flags,
    ONE,
    "e",
  );
  assert.deepEqual(flagList(parsed, "env"), ["A=1", "B=2", "A=3"]);
  assert.deepEqual(flagList(parsed, "command"), ["x"]);
  assert.deepEqual(flagList(parsed, "priority"), []);
  // Flags not marked repeatable stay single.
  assert.throws(() => parseArgs(["-c", "a", "-c", "b"], flags, ONE, "e"), /given twice/);
});

Deno.test("parseArgs() suggests a flag by another name, and names queuectl's own help", () => {
  const flags: FlagSpec[] = [{
    name: "command",
    short: "c",
    value: "CMD",
    help: "",
    aliases: ["cmd"],
  }];
  assert.throws(() => parseArgs(["--cmd", "x"], flags, [], "enqueue"), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.deepEqual(error.typo, {
      input: "--cmd",
      candidates: ["--command"],
      aliases: { "--cmd": "--command" },
    });
    return true;
  });
  assert.throws(() => parseArgs(["-x"], flags, [], ""), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.message, 'Unknown flag "-x"');
    assert.equal(error.hint, "see `queuectl --help`");
    return true;
  });
});
