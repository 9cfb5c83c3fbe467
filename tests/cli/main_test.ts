import assert from "node:assert/strict";
import { describeError } from "../../lib/cli/main.ts";
import {
  ConflictError,
  NotFoundError,
  StorageFullError,
  StoreBusyError,
  StoreUnusableError,
  UsageError,
} from "../../lib/errors.ts";

Deno.test("describeError() gives each error class its exit code and one line", () => {
  const cases: [Error, number][] = [
    [new UsageError("Bad"), 2],
    [new ConflictError("Taken"), 3],
    [new NotFoundError("Gone"), 4],
    [new StoreBusyError("Busy"), 5],
    [new StoreUnusableError("Broken"), 6],
    [new StorageFullError("Full"), 7],
    [new Error("boom"), 1],
    [new TypeError("x is undefined"), 1],
  ];
  for (const [error, code] of cases) {
    const described = describeError(error, false);
    assert.equal(described.code, code, error.message);
    assert.match(described.text, /^queuectl: [^\n]+\n$/);
  }
});

Deno.test("describeError() puts the hint in parentheses after the message", () => {
  const { text } = describeError(
    new NotFoundError('Job "x" not found', { hint: "try list" }),
    false,
  );
  assert.equal(text, 'queuectl: Job "x" not found (try list)\n');
});

Deno.test("describeError() calls an unknown error internal and keeps only its first line", () => {
  const { text, code } = describeError(new Error("first line\nsecond line"), false);
  assert.equal(code, 1);
  assert.equal(
    text,
    "queuectl: internal error: first line (run again with --debug for details, and please report it)\n",
  );
  assert.equal(describeError("a thrown string", false).code, 1);
});

Deno.test("describeError() adds stack traces only with --debug", () => {
  const cause = new Error("sqlite said no");
  const error = new StoreUnusableError("Broken", { cause });
  assert.doesNotMatch(describeError(error, false).text, /^\s+at /m);
  const debug = describeError(error, true).text;
  assert.match(debug, /^queuectl: Broken\n/);
  assert.match(debug, /^\s+at /m);
  assert.match(debug, /sqlite said no/);
  assert.match(describeError(new Error("boom"), true).text, /^\s+at /m);
});

Deno.test("describeError() escapes control characters so the message stays one line", () => {
  const { text } = describeError(
    new UsageError('Unknown command "a\nb\r\tc\x1b[31m\x07\x7f\x9b"', { hint: "x\ny" }),
    false,
  );
  assert.equal(
    text,
    'queuectl: Unknown command "a\\nb\\r\\tc\\u001b[31m\\u0007\\u007f\\u009b" (x\\ny)\n',
  );
  assert.equal(describeError(new Error("a\x1b]0;t\x07"), false).text.split("\n").length, 2);
  // Printable non-ASCII text is left alone.
  assert.equal(
    describeError(new UsageError("Ünïcödé ✓ 😀"), false).text,
    "queuectl: Ünïcödé ✓ 😀\n",
  );
});
