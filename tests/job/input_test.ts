import assert from "node:assert/strict";
import {
  FIELD_ALIASES,
  findDuplicateKey,
  JOB_FIELDS,
  JobInputError,
  MAX_COMMAND_BYTES,
  parseJobJson,
  runAtValue,
  validateJob,
} from "../../lib/job/input.ts";
import type { JobDefaults, JobOverrides } from "../../lib/job/input.ts";
import { idProblem } from "../../lib/job/id.ts";

const NOW = Date.UTC(2026, 0, 1, 12);
const DEFAULTS: JobDefaults = { cwd: "/home/u/project", now: NOW, timeZone: "UTC" };

function valid(input: Record<string, unknown>, overrides: JobOverrides = {}) {
  return validateJob(input, overrides, DEFAULTS);
}

/** Asserts that validating `input` fails on `field` with a problem matching `problem`. */
function refuses(
  input: Record<string, unknown>,
  field: string | null,
  problem: RegExp,
  overrides: JobOverrides = {},
): void {
  assert.throws(() => valid(input, overrides), (error: unknown) => {
    assert.ok(error instanceof JobInputError, `not a JobInputError: ${error}`);
    assert.equal(error.field, field, JSON.stringify(input));
    assert.match(error.problem, problem);
    if (field !== null) assert.match(error.message, new RegExp(`^field "${field}" `));
    return true;
  });
}

Deno.test("validateJob() fills defaults for a job with only a command", () => {
  assert.deepEqual(valid({ command: "echo hi" }), {
    id: undefined,
    command: "echo hi",
    priority: 5,
    queue: "default",
    maxRetries: null,
    timeoutMs: null,
    cwd: "/home/u/project",
    env: {},
    runAt: null,
    delayMs: 0,
  });
});

Deno.test("validateJob() takes every field", () => {
  const job = valid({
    command: "make test",
    id: "build-1.2:x_y",
    priority: 10,
    queue: "mail",
    max_retries: 0,
    timeout: "10m",
    delay: 90,
    cwd: "sub/../dir",
    env: { A: "1", EMPTY: "", "WITH SPACE": "ok" },
  });
  assert.deepEqual(job, {
    id: "build-1.2:x_y",
    command: "make test",
    priority: 10,
    queue: "mail",
    maxRetries: 0,
    timeoutMs: 600_000,
    cwd: "/home/u/project/dir",
    env: { A: "1", EMPTY: "", "WITH SPACE": "ok" },
    runAt: null,
    delayMs: 90_000,
  });
  assert.equal(valid({ command: "x", run_at: "2026-01-02 00:00" }).runAt, Date.UTC(2026, 0, 2));
  assert.equal(valid({ command: "x", cwd: "/abs" }).cwd, "/abs");
  assert.equal(valid({ command: "x", timeout: 0 }).timeoutMs, 0);
});

Deno.test("validateJob() lets flags override fields", () => {
  const job = valid(
    { command: "x", priority: 2, max_retries: 9, timeout: 5, delay: 5 },
    { priority: 8, maxRetries: 1, timeoutMs: 7000, runAt: NOW + 3_600_000 },
  );
  assert.equal(job.priority, 8);
  assert.equal(job.maxRetries, 1);
  assert.equal(job.timeoutMs, 7000);
  assert.equal(job.runAt, NOW + 3_600_000);
  assert.equal(job.delayMs, 0);
  const delayed = valid({ command: "x", run_at: "2026-02-01 00:00" }, { delayMs: 1000 });
  assert.equal(delayed.runAt, null);
  assert.equal(delayed.delayMs, 1000);
});

Deno.test("validateJob() checks the queue like an id, and --queue overrides it", () => {
  refuses({ command: "x", queue: "" }, "queue", /is empty/);
  refuses({ command: "x", queue: "a b" }, "queue", /may hold only/);
  refuses({ command: "x", queue: 7 }, "queue", /must be a string, not a number/);
  refuses({ command: "x", queue: "-x" }, "queue", /must start with a letter or digit/, {
    queue: "ok",
  });
  assert.equal(valid({ command: "x", queue: "a" }, { queue: "b" }).queue, "b");
});

Deno.test("validateJob() still refuses a bad field that a flag overrides", () => {
  // Strict input means a wrong value is an error even when a flag would replace it.
  refuses({ command: "x", priority: "high" }, "priority", /must be a number/, { priority: 3 });
  refuses({ command: "x", max_retries: -1 }, "max_retries", /whole number/, { maxRetries: 2 });
  refuses({ command: "x", timeout: "soon" }, "timeout", /not a duration/, { timeoutMs: 1000 });
  refuses({ command: "x", run_at: "garbage" }, "run_at", /not a time/, { delayMs: 5000 });
  refuses({ command: "x", delay: -5 }, "delay", /negative/, { runAt: NOW + 1000 });
});

Deno.test("validateJob() requires a non-empty string command", () => {
  refuses({}, "command", /is required/);
  refuses({ id: "a" }, "command", /is required/);
  refuses({ command: "" }, "command", /is empty/);
  refuses({ command: " \t\n" }, "command", /is empty/);
  refuses({ command: 42 }, "command", /must be a string, not a number/);
  refuses({ command: null }, "command", /must be a string, not null/);
  refuses({ command: ["echo", "hi"] }, "command", /not an array/);
  refuses({ command: { sh: "x" } }, "command", /not an object/);
  refuses({ command: true }, "command", /not a boolean/);
});

Deno.test("validateJob() refuses NUL, lone surrogates and over-long commands", () => {
  refuses({ command: "echo a\0b" }, "command", /NUL/);
  refuses({ command: "echo \ud800" }, "command", /unpaired surrogate/);
  refuses({ command: "echo \udc00x" }, "command", /unpaired surrogate/);
  assert.equal(valid({ command: "echo \ud83d\ude00" }).command, "echo 😀");
  assert.equal(valid({ command: "x".repeat(MAX_COMMAND_BYTES) }).command.length, MAX_COMMAND_BYTES);
  refuses({ command: "x".repeat(MAX_COMMAND_BYTES + 1) }, "command", /longer than 128 KiB/);
  // The limit is in bytes: 43,691 three-byte characters are 131,073 bytes.
  refuses({ command: "€".repeat(43_691) }, "command", /longer than 128 KiB/);
});

Deno.test("validateJob() checks every field's type without coercion", () => {
  refuses({ command: "x", priority: "5" }, "priority", /must be a number, not a string/);
  refuses({ command: "x", priority: null }, "priority", /not null/);
  refuses({ command: "x", priority: true }, "priority", /not a boolean/);
  refuses({ command: "x", max_retries: "3" }, "max_retries", /must be a number, not a string/);
  refuses({ command: "x", timeout: true }, "timeout", /must be a duration/);
  refuses({ command: "x", timeout: [5] }, "timeout", /not an array/);
  refuses({ command: "x", delay: {} }, "delay", /not an object/);
  refuses({ command: "x", run_at: 1764237600000 }, "run_at", /must be a string, not a number/);
  refuses({ command: "x", id: 7 }, "id", /must be a string, not a number/);
  refuses({ command: "x", id: null }, "id", /not null/);
  refuses({ command: "x", cwd: 1 }, "cwd", /must be a string/);
  refuses({ command: "x", cwd: "" }, "cwd", /is empty/);
  refuses({ command: "x", cwd: "/a\0b" }, "cwd", /NUL/);
  refuses({ command: "x", env: "A=1" }, "env", /object of strings, not a string/);
  refuses({ command: "x", env: ["A=1"] }, "env", /not an array/);
  refuses({ command: "x", env: null }, "env", /not null/);
  refuses({ command: "x", env: { A: 1 } }, "env", /value of A must be a string, not a number/);
  refuses({ command: "x", env: { A: null } }, "env", /not null/);
  refuses({ command: "x", env: { "": "v" } }, "env", /invalid variable name/);
  refuses({ command: "x", env: { "A=B": "v" } }, "env", /invalid variable name "A=B"/);
  refuses({ command: "x", env: { "A\0": "v" } }, "env", /invalid variable name/);
  refuses({ command: "x", env: { "\ud800": "v" } }, "env", /invalid variable name/);
  refuses({ command: "x", env: { A: "a\0b" } }, "env", /NUL/);
  refuses({ command: "x", env: { A: "\udfff" } }, "env", /unpaired surrogate/);
});

Deno.test("validateJob() keeps priority in 1..10 and retries in 0..1000, whole numbers only", () => {
  for (const p of [1, 10]) assert.equal(valid({ command: "x", priority: p }).priority, p);
  for (const p of [0, 11, -1, 5.5, 1e400, -0.5, Number.NaN]) {
    refuses({ command: "x", priority: p }, "priority", /whole number from 1 to 10/);
  }
  for (const r of [0, 1000]) assert.equal(valid({ command: "x", max_retries: r }).maxRetries, r);
  for (const r of [-1, 1001, 2.5]) {
    refuses({ command: "x", max_retries: r }, "max_retries", /whole number from 0 to 1000/);
  }
});

Deno.test("validateJob() refuses bad durations in timeout and delay", () => {
  refuses({ command: "x", timeout: -1 }, "timeout", /negative/);
  refuses({ command: "x", timeout: "-5m" }, "timeout", /negative/);
  refuses({ command: "x", timeout: "5 minutes" }, "timeout", /not a duration/);
  refuses({ command: "x", timeout: "3651d" }, "timeout", /too long/);
  refuses({ command: "x", delay: "1e9" }, "delay", /not a duration/);
  refuses({ command: "x", delay: 1e12 }, "delay", /too long/);
  refuses({ command: "x", delay: "" }, "delay", /empty/);
});

Deno.test("validateJob() refuses run_at together with delay", () => {
  refuses(
    { command: "x", run_at: "2026-01-02 00:00", delay: "5m" },
    "delay",
    /cannot be combined with "run_at"/,
  );
});

Deno.test("validateJob() refuses unknown fields, offering the known ones for a suggestion", () => {
  for (const field of ["comand", "priorty", "maxRetries", "runAt", "enviroment", "__proto__x"]) {
    refuses({ command: "x", [field]: 1 }, field, /^is not a job field$/);
    assert.throws(() => valid({ command: "x", [field]: 1 }), (error: unknown) => {
      assert.ok(error instanceof JobInputError);
      assert.deepEqual(error.typo, {
        input: field,
        candidates: JOB_FIELDS,
        aliases: FIELD_ALIASES,
      });
      return true;
    });
  }
  assert.deepEqual([...JOB_FIELDS], [
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
  ]);
});

Deno.test("idProblem() accepts letters, digits and ._:- up to 128 characters", () => {
  for (const id of ["a", "1", "42", "job.1", "a_b", "ns:name", "x-y", "A".repeat(128), "0.0"]) {
    assert.equal(idProblem(id), undefined, id);
  }
});

Deno.test("idProblem() refuses empty, long, control, NUL, surrogate, shell, path and option-like ids", () => {
  const bad: [string, RegExp][] = [
    ["", /empty/],
    ["a".repeat(129), /129 characters long; the most is 128/],
    ["a\nb", /only letters/],
    ["a\tb", /only letters/],
    ["a\0", /only letters/],
    ["x\ud800", /only letters/],
    ["a b", /only letters/],
    ["a;rm -rf /", /only letters/],
    ["$(reboot)", /only letters/],
    ["`id`", /only letters/],
    ["a|b", /only letters/],
    ["../etc/passwd", /only letters/],
    ["a/b", /only letters/],
    [".hidden", /start with a letter or digit/],
    ["--x", /start with a letter or digit/],
    ["-x", /start with a letter or digit/],
    ["é", /only letters/],
    ["a\n", /only letters/],
  ];
  for (const [id, problem] of bad) {
    assert.match(idProblem(id) ?? "(accepted)", problem, JSON.stringify(id));
  }
  refuses({ command: "x", id: "a/b" }, "id", /only letters/);
});

Deno.test("parseJobJson() refuses what is not a JSON object, naming no field", () => {
  const cases: [string, RegExp][] = [
    ['{"command":"x"', /not valid JSON/],
    ["", /not valid JSON/],
    ["{'command':'x'}", /not valid JSON/],
    ['{"command":"x",}', /not valid JSON/],
    ["echo hi", /not valid JSON/],
    ["[]", /not an array/],
    ['[{"command":"x"}]', /not an array/],
    ["null", /not null/],
    ['"x"', /not string/],
    ["42", /not number/],
    ["true", /not boolean/],
  ];
  for (const [text, problem] of cases) {
    assert.throws(() => parseJobJson(text), (error: unknown) => {
      assert.ok(error instanceof JobInputError);
      assert.equal(error.field, null);
      assert.match(error.problem, problem, text);
      return true;
    });
  }
});

Deno.test("parseJobJson() refuses duplicate keys, also nested and escaped", () => {
  const cases: [string, string][] = [
    ['{"command":"a","command":"b"}', "command"],
    ['{"id":"a","command":"x","id":"b"}', "id"],
    ['{"command":"x","\\u0069d":"a","id":"b"}', "id"],
    ['{"command":"x","env":{"A":"1","A":"2"}}', "env.A"],
    ['{"command":"x","env":{"A":"1","\\u0041":"2"}}', "env.A"],
    ['{"env":{"B":"{\\"x\\":1,\\"x\\":2}"},"command":"a","command":"b"}', "command"],
  ];
  for (const [text, key] of cases) {
    assert.throws(() => parseJobJson(text), (error: unknown) => {
      assert.ok(error instanceof JobInputError);
      assert.equal(error.field, key, text);
      assert.match(error.problem, /appears twice/);
      return true;
    });
  }
});

Deno.test("findDuplicateKey() is not fooled by strings, arrays and sibling objects", () => {
  const fine = [
    '{"command":"a \\"command\\": b","id":"x"}',
    '{"command":"{\\"a\\":1,\\"a\\":2}"}',
    '{"a":[{"k":1},{"k":2}],"b":{"k":3}}',
    '{"a":{"x":1},"b":{"x":2}}',
    '{"a":["a","a"]}',
    '{"a\\\\":1,"a":2}',
  ];
  for (const text of fine) assert.equal(findDuplicateKey(text), undefined, text);
  assert.equal(findDuplicateKey('{"a":{"x":1,"y":[1,{"z":1,"z":2}]}}'), "a.y[].z");
  assert.equal(findDuplicateKey('{"a":[1,2],"a":3}'), "a");
});

Deno.test("runAtValue() accepts a time in the past, with a note past a minute", () => {
  const notes: string[] = [];
  const defaults = {
    ...DEFAULTS,
    note: (field: string, note: string) => notes.push(`${field}: ${note}`),
  };
  assert.equal(runAtValue("run_at", "2026-01-01 11:59:00", defaults), NOW - 60_000);
  assert.deepEqual(notes, []);
  assert.equal(runAtValue("run_at", "2026-01-01 11:58:59", defaults), NOW - 61_000);
  assert.equal(runAtValue("run-at", "2025-12-29T12:00:00Z", defaults), NOW - 3 * 86_400_000);
  assert.deepEqual(notes, [
    'run_at: "2026-01-01 11:58:59" is 1m1s in the past; the job is due now',
    'run-at: "2025-12-29T12:00:00Z" is 3d in the past; the job is due now',
  ]);
  // Without a listener the note goes nowhere; the value is the same.
  assert.equal(runAtValue("run_at", "2020-01-01T00:00:00Z", DEFAULTS), Date.UTC(2020, 0, 1));
});

Deno.test("runAtValue() refuses times more than 10 years ahead, and what is not a time", () => {
  assert.equal(runAtValue("run_at", "2035-12-30 12:00", DEFAULTS), Date.UTC(2035, 11, 30, 12));
  assert.throws(
    () => runAtValue("run_at", "2036-01-01 12:00", DEFAULTS),
    /more than 10 years ahead/,
  );
  assert.throws(() => runAtValue("run-at", "2026-02-30 10:00", DEFAULTS), {
    message: /field "run-at" "2026-02-30 10:00" is not a valid date/,
  });
  assert.throws(
    () => runAtValue("run_at", "2026-03-29 02:30", { ...DEFAULTS, timeZone: "Europe/Berlin" }),
    /ambiguous or does not exist/,
  );
});

Deno.test("validateJob() takes the everyday run_at forms in the JSON field too", () => {
  // NOW is 2026-01-01 12:00 UTC.
  assert.equal(valid({ command: "x", run_at: "13:30" }).runAt, Date.UTC(2026, 0, 1, 13, 30));
  assert.equal(valid({ command: "x", run_at: "11:00" }).runAt, Date.UTC(2026, 0, 2, 11));
  assert.equal(valid({ command: "x", run_at: "tomorrow 08:00" }).runAt, Date.UTC(2026, 0, 2, 8));
  assert.equal(valid({ command: "x", run_at: "2026-01-05" }).runAt, Date.UTC(2026, 0, 5));
  assert.equal(valid({ command: "x", run_at: "now" }).runAt, NOW);
  const notes: string[] = [];
  const job = validateJob({ command: "x", run_at: "today 06:00" }, {}, {
    ...DEFAULTS,
    note: (field, note) => notes.push(`${field}: ${note}`),
  });
  assert.equal(job.runAt, Date.UTC(2026, 0, 1, 6));
  assert.deepEqual(notes, ['run_at: "today 06:00" is 6h in the past; the job is due now']);
});
