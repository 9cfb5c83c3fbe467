/**
 * `logs` (and the output part of `show`) on jobs whose attempts and output are put in place with
 * the store, exactly as a worker saves them. Following a running job with a real worker is in
 * tests/worker/observability_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { main } from "../../lib/cli/main.ts";
import type { Io } from "../../lib/cli/io.ts";
import type { Job } from "../../lib/job/job.ts";
import { decide } from "../../lib/job/outcome.ts";
import type { RunResult } from "../../lib/job/outcome.ts";
import type { OutputCapture } from "../../lib/store/store.ts";
import { GUARD_DB } from "../helpers/cli.ts";
import { cliFixture, localStamp } from "../helpers/cli_fixture.ts";
import type { CliFixture } from "../helpers/cli_fixture.ts";
import { BACKOFF, insertJob, makeJob, TEST_LEASE_MS, TEST_WORKER } from "../helpers/factory.ts";
import { T0 } from "../helpers/temp.ts";

const encoder = new TextEncoder();

type Output = string | Uint8Array | OutputCapture;

function toCapture(output: Output | undefined): OutputCapture {
  if (output === undefined) return { head: new Uint8Array(), tail: new Uint8Array(), total: 0 };
  if (typeof output === "string" || output instanceof Uint8Array) {
    const head = typeof output === "string" ? encoder.encode(output) : output;
    return { head, tail: new Uint8Array(), total: head.length };
  }
  return output;
}

interface AttemptSpec {
  stdout?: Output;
  stderr?: Output;
  /** Default: exit 0 for the last attempt, exit 1 for earlier ones. */
  result?: RunResult;
  runMs?: number;
}

/**
 * A job whose attempts ran and finished with the given output (each attempt after the first
 * starts when its retry is due).
 */
async function jobWithAttempts(
  q: CliFixture,
  id: string,
  attempts: readonly AttemptSpec[],
  options: { command?: string } = {},
): Promise<Job> {
  const store = await q.store();
  let job = await insertJob(store, q.clock, {
    id,
    command: options.command ?? "make",
    maxRetries: attempts.length - 1,
  });
  for (const [i, spec] of attempts.entries()) {
    if (job.runAt > q.clock.now()) q.clock.set(job.runAt);
    const [claimed] = await store.jobClaim({
      workerId: TEST_WORKER,
      host: "test-host",
      leaseMs: TEST_LEASE_MS,
      limit: 1,
    });
    assert.equal(claimed?.id, id);
    q.clock.advance(spec.runMs ?? 250);
    const result = spec.result ??
      (i === attempts.length - 1 ? { kind: "exited", code: 0 } : { kind: "exited", code: 1 });
    const applied = await store.jobFinish({
      jobId: id,
      attempt: claimed!.attempts,
      workerId: TEST_WORKER,
      decision: decide(claimed!, result, BACKOFF),
      output: { stdout: toCapture(spec.stdout), stderr: toCapture(spec.stderr) },
    });
    assert.ok(applied);
    job = (await store.jobGet({ id }))!;
  }
  return job;
}

/** A job that is running, with the output its worker saved so far. */
async function runningJob(q: CliFixture, id: string, stdout: Output, stderr: Output = "") {
  const store = await q.store();
  const job = await makeJob(store, q.clock, "processing", { id });
  assert.ok(
    await store.attemptSaveOutput([{
      jobId: id,
      attempt: 1,
      workerId: TEST_WORKER,
      stdout: toCapture(stdout),
      stderr: toCapture(stderr),
    }]).then(([saved]) => saved),
  );
  return job;
}

/** Captures stdout and stderr as bytes, to check `--raw` byte for byte. */
class BytesIo implements Io {
  readonly stdoutIsTerminal = false;
  readonly stderrIsTerminal = false;
  readonly cwd = "/";
  #out: Uint8Array[] = [];
  #err: Uint8Array[] = [];
  out(text: string): void {
    this.#out.push(encoder.encode(text));
  }
  outBytes(bytes: Uint8Array): void {
    this.#out.push(bytes.slice());
  }
  err(text: string): void {
    this.#err.push(encoder.encode(text));
  }
  errBytes(bytes: Uint8Array): void {
    this.#err.push(bytes.slice());
  }
  flush(): void {}
  readStdin(): Promise<string> {
    return Promise.resolve("");
  }
  env(name: string): string | undefined {
    return name === "QUEUECTL_DB" ? GUARD_DB : undefined;
  }
  get stdout(): Uint8Array {
    return concat(this.#out);
  }
  get stderr(): Uint8Array {
    return concat(this.#err);
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

async function runBytes(q: CliFixture, args: readonly string[]) {
  const io = new BytesIo();
  const code = await main(["--db", q.db, ...args], io, { clock: q.clock });
  return { code, stdout: io.stdout, stderr: io.stderr };
}

Deno.test("logs prints both streams of the latest attempt, each under a label", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "build", [{ stdout: "compiling\ndone\n", stderr: "warning: x\n" }]);
  assert.deepEqual(await q.run(["logs", "build"]), {
    code: 0,
    stdout: [
      "==> stdout of job build, attempt 1 (15 B) <==",
      "compiling",
      "done",
      "==> stderr of job build, attempt 1 (11 B) <==",
      "warning: x",
      "",
    ].join("\n"),
    stderr: "",
  });
});

Deno.test("logs ends a labelled stream that lacks a final newline, and skips an empty one", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "p", [{ stdout: "50%", stderr: "" }]);
  const { code, stdout } = await q.run(["logs", "p"]);
  assert.equal(code, 0);
  assert.equal(stdout, "==> stdout of job p, attempt 1 (3 B) <==\n50%\n");
  await jobWithAttempts(q, "e", [{ stdout: "", stderr: "only errors" }]);
  assert.equal(
    (await q.run(["logs", "e"])).stdout,
    "==> stderr of job e, attempt 1 (11 B) <==\nonly errors\n",
  );
});

Deno.test("logs --stdout and --stderr print one stream, unlabelled and exactly", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "j", [{ stdout: "out 1\nout 2", stderr: "err\n" }]);
  assert.deepEqual(await q.run(["logs", "j", "--stdout"]), {
    code: 0,
    stdout: "out 1\nout 2",
    stderr: "",
  });
  assert.deepEqual(await q.run(["logs", "j", "--stderr"]), {
    code: 0,
    stdout: "err\n",
    stderr: "",
  });
  const both = await q.run(["logs", "j", "--stdout", "--stderr"]);
  assert.equal(both.code, 2);
  assert.equal(both.stderr, "queuectl: Give --stdout or --stderr, not both\n");
});

Deno.test("logs --attempt N prints that attempt; one that does not exist exits 4", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "r", [
    { stdout: "first try\n", result: { kind: "exited", code: 2 } },
    { stdout: "second try\n" },
  ]);
  assert.equal((await q.run(["logs", "r", "--stdout"])).stdout, "second try\n", "latest");
  assert.equal((await q.run(["logs", "r", "--stdout", "--attempt", "1"])).stdout, "first try\n");
  assert.equal(
    (await q.run(["logs", "r", "--attempt", "1"])).stdout,
    "==> stdout of job r, attempt 1 (10 B) <==\nfirst try\n",
  );
  assert.deepEqual(await q.run(["logs", "r", "--attempt", "3"]), {
    code: 4,
    stdout: "",
    stderr: 'queuectl: Job "r" has no attempt 3 (it has 1 to 2)\n',
  });
  const zero = await q.run(["logs", "r", "--attempt", "0"]);
  assert.equal(zero.code, 2);
  assert.match(zero.stderr, /Invalid value "0" for --attempt/);
  const unknown = await q.run(["logs", "nope"]);
  assert.equal(unknown.code, 4);
  assert.equal(unknown.stderr, 'queuectl: Job "nope" not found (`queuectl list` shows the jobs)\n');
});

Deno.test("logs of a job that has not run says so; --attempt 1 of it exits 4", async () => {
  await using q = await cliFixture();
  await insertJob(await q.store(), q.clock, { id: "later", runAt: T0 + 3_600_000 });
  assert.deepEqual(await q.run(["logs", "later"]), {
    code: 0,
    stdout: "",
    stderr: 'queuectl: job "later" has not run yet; no output\n',
  });
  assert.deepEqual(await q.run(["logs", "later", "--attempt", "1"]), {
    code: 4,
    stdout: "",
    stderr: 'queuectl: Job "later" has no attempt 1 (it has not run yet)\n',
  });
});

Deno.test("logs of an attempt that printed nothing says so, and marks a running one", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "quiet", [{}]);
  assert.deepEqual(await q.run(["logs", "quiet"]), {
    code: 0,
    stdout: "",
    stderr: 'queuectl: attempt 1 of job "quiet" wrote no output\n',
  });
  await runningJob(q, "busy", "step 1\n");
  assert.deepEqual(await q.run(["logs", "busy"]), {
    code: 0,
    stdout: "==> stdout of job busy, attempt 1 (7 B, running) <==\nstep 1\n",
    stderr: "",
  });
});

Deno.test("logs says how much of a truncated stream was cut", async () => {
  await using q = await cliFixture();
  const cut: OutputCapture = {
    head: encoder.encode("first lines\n"),
    tail: encoder.encode("last lines\n"),
    total: 12 + 3 * 1024 + 11,
  };
  await jobWithAttempts(q, "big", [{ stdout: cut, stderr: "e\n" }]);
  assert.equal(
    (await q.run(["logs", "big", "--stdout"])).stdout,
    "first lines\n\n[… 3.0 KiB of stdout not kept …]\nlast lines\n",
  );
  assert.equal(
    (await q.run(["logs", "big"])).stdout,
    "==> stdout of job big, attempt 1 (3.0 KiB) <==\n" +
      "first lines\n\n[… 3.0 KiB of stdout not kept …]\nlast lines\n" +
      "==> stderr of job big, attempt 1 (2 B) <==\ne\n",
  );
  // --raw keeps stdout byte for byte and says it on stderr instead.
  const raw = await runBytes(q, ["logs", "big", "--stdout", "--raw"]);
  assert.equal(raw.code, 0);
  assert.deepEqual(raw.stdout, encoder.encode("first lines\nlast lines\n"));
  assert.equal(new TextDecoder().decode(raw.stderr), "[… 3.0 KiB of stdout not kept …]\n");
});

/** Everything a hostile job might print: OSC title, clear screen, C1 CSI, bidi, CR, NUL, bad UTF-8. */
const HOSTILE = concat([
  encoder.encode("title\x1b]0;pwn\x07|clear\x1b[2J|c1\u009b31m|bidi\u202eevil\u2066x\u2069|"),
  encoder.encode("cr over\rwrite|nul\x00|del\x7f|bell\x07|tab\tok|crlf\r\n"),
  Uint8Array.of(0x62, 0x61, 0x64, 0xff, 0xfe, 0x9b, 0x0a), // "bad", two invalid bytes, lone 0x9b
  encoder.encode("é→ unicode stays\n"),
]);

const HOSTILE_ESCAPED =
  "title\\x1b]0;pwn\\x07|clear\\x1b[2J|c1\\x9b31m|bidi\\u{202e}evil\\u{2066}x" +
  "\\u{2069}|cr over\\x0dwrite|nul\\x00|del\\x7f|bell\\x07|tab\tok|crlf\n" +
  "bad\ufffd\ufffd\ufffd\né→ unicode stays\n";

/** No control character a terminal would act on (newline and tab aside), and no bidi control. */
function assertInert(text: string): void {
  // deno-lint-ignore no-control-regex
  const live = text.match(/[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g)?.filter((
    c,
  ) => c !== "\n");
  assert.deepEqual(live ?? [], [], "live control characters in the output");
}

Deno.test("logs escapes control sequences, C1 controls, bidi overrides and CR; bad UTF-8 is U+FFFD", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "evil", [{ stdout: HOSTILE, stderr: "\x1b[31mred\x1b[0m\n" }]);
  const one = await q.run(["logs", "evil", "--stdout"]);
  assert.equal(one.code, 0);
  assert.equal(one.stdout, HOSTILE_ESCAPED);
  assertInert(one.stdout);
  const both = await q.run(["logs", "evil"]);
  assert.equal(
    both.stdout,
    `==> stdout of job evil, attempt 1 (${HOSTILE.length} B) <==\n${HOSTILE_ESCAPED}` +
      "==> stderr of job evil, attempt 1 (13 B) <==\n\\x1b[31mred\\x1b[0m\n",
  );
  assertInert(both.stdout);
});

Deno.test("logs --raw writes the captured bytes as they are, invalid UTF-8 and NUL included", async () => {
  await using q = await cliFixture();
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  await jobWithAttempts(q, "raw", [{ stdout: HOSTILE, stderr: binary }]);
  const out = await runBytes(q, ["logs", "raw", "--stdout", "--raw"]);
  assert.equal(out.code, 0);
  assert.deepEqual(out.stdout, HOSTILE);
  assert.deepEqual(out.stderr, new Uint8Array());
  const err = await runBytes(q, ["logs", "raw", "--stderr", "--raw"]);
  assert.deepEqual(err.stdout, binary);
  // Both streams: labels, and each stream's bytes untouched.
  const both = await runBytes(q, ["logs", "raw", "--raw"]);
  assert.deepEqual(
    both.stdout,
    concat([
      encoder.encode(`==> stdout of job raw, attempt 1 (${HOSTILE.length} B) <==\n`),
      HOSTILE,
      encoder.encode("==> stderr of job raw, attempt 1 (256 B) <==\n"),
      binary,
      encoder.encode("\n"),
    ]),
  );
});

Deno.test("logs does not join the bytes on the two sides of a cut into one character", async () => {
  await using q = await cliFixture();
  // The head ends inside "中" (e4 b8 ad) and the tail starts inside another character: the cut
  // bytes must not combine into a character that was never printed.
  const cut: OutputCapture = {
    head: Uint8Array.of(0x78, 0xe4, 0xb8),
    tail: Uint8Array.of(0xad, 0x20, 0x79, 0x0a),
    total: 1000,
  };
  await jobWithAttempts(q, "cjk", [{ stdout: cut }]);
  assert.equal(
    (await q.run(["logs", "cjk", "--stdout"])).stdout,
    "x\ufffd\n[… 993 B of stdout not kept …]\n\ufffd y\n",
  );
});

Deno.test("show prints the attempt history and the escaped tail of the latest output", async () => {
  await using q = await cliFixture();
  const lines = Array.from({ length: 15 }, (_, i) => `line ${i + 1}`);
  lines[13] = "line 14 \x1b]0;pwn\x07";
  await jobWithAttempts(q, "hist", [
    { stdout: "old\n", result: { kind: "timeout", afterMs: 1000, signal: "SIGTERM" }, runMs: 1000 },
    { stdout: "old 2\n", result: { kind: "signaled", signal: "SIGKILL" }, runMs: 40 },
    { stdout: lines.join("\n") + "\n", stderr: "warn\n", runMs: 1500 },
  ], { command: "./deploy.sh" });
  const { code, stdout } = await q.run(["show", "hist"]);
  assert.equal(code, 0);
  const t1 = localStamp(T0);
  // Retries wait 2 s after attempt 1 (ended at 0:01) and 4 s after attempt 2 (ended at 0:03.04).
  const t2 = localStamp(T0 + 3000);
  const t3 = localStamp(T0 + 7040);
  const history = stdout.slice(stdout.indexOf("\nAttempts\n") + 1);
  assert.equal(
    history,
    [
      "Attempts",
      "#  STARTED              DURATION  OUTCOME    EXIT     WORKER  ERROR",
      `1  ${t1}  1s        timeout    SIGTERM  w-test  timed out after 1s (SIGTERM)`,
      `2  ${t2}  40ms      failed     SIGKILL  w-test  killed by SIGKILL`,
      `3  ${t3}  1.5s      completed  0        w-test`,
      "",
      "Output of attempt 3, stdout (last 10 lines; `queuectl logs hist` for all)",
      "line 6",
      "line 7",
      "line 8",
      "line 9",
      "line 10",
      "line 11",
      "line 12",
      "line 13",
      "line 14 \\x1b]0;pwn\\x07",
      "line 15",
      "",
      "Output of attempt 3, stderr (last 10 lines; `queuectl logs hist` for all)",
      "warn",
      "",
    ].join("\n"),
  );
  assertInert(stdout);
});

Deno.test("show takes the last lines from head and tail when the output was not cut", async () => {
  await using q = await cliFixture();
  // Output a little longer than half the limit is kept whole, split between head and tail.
  const whole: OutputCapture = {
    head: encoder.encode("l1\nl2\nl3\nl"),
    tail: encoder.encode("4\n"),
    total: 12,
  };
  await jobWithAttempts(q, "split", [{ stdout: whole }]);
  const { stdout } = await q.run(["show", "split"]);
  assert.ok(stdout.endsWith("for all)\nl1\nl2\nl3\nl4\n"), stdout);
  const shown = JSON.parse((await q.run(["show", "split", "--json"])).stdout);
  assert.equal(shown.output.stdout_tail, "l1\nl2\nl3\nl4\n");
});

Deno.test("show --json has the latest attempt's output sizes and tails", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "j", [
    { stdout: "a\n", result: { kind: "exited", code: 3 } },
    { stdout: "x\x1b[2J\ny\n", stderr: Uint8Array.of(0x62, 0xff, 0x0a) },
  ]);
  const shown = JSON.parse((await q.run(["show", "j", "--json"])).stdout);
  assert.deepEqual(shown.output, {
    attempt: 2,
    stdout_bytes: 8,
    stderr_bytes: 3,
    // JSON escapes control characters itself; invalid UTF-8 is U+FFFD.
    stdout_tail: "x\x1b[2J\ny\n",
    stderr_tail: "b\ufffd\n",
  });
  assert.deepEqual(
    shown.history.map((a: { attempt: number; outcome: string; exit_code: number | null }) => [
      a.attempt,
      a.outcome,
      a.exit_code,
    ]),
    [[1, "failed", 3], [2, "completed", 0]],
  );
  await insertJob(await q.store(), q.clock, { id: "new" });
  const fresh = JSON.parse((await q.run(["show", "new", "--json"])).stdout);
  assert.equal(fresh.output, null);
  assert.deepEqual(fresh.history, []);
});

Deno.test("logs --json prints the attempt's streams as text decoded from UTF-8", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "j", [
    { stdout: "first\n", stderr: "e1\n" },
    { stdout: Uint8Array.of(0x6f, 0x6b, 0xff, 0x0a), stderr: "" },
  ]);
  const { code, stdout, stderr } = await q.run(["logs", "j", "--json"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.equal(stdout.split("\n").length, 2, "one JSON document on one line");
  assert.deepEqual(JSON.parse(stdout), {
    job: "j",
    attempt: 2,
    running: false,
    stdout: { bytes: 4, cut_bytes: 0, text: "ok\ufffd\n" },
    stderr: { bytes: 0, cut_bytes: 0, text: "" },
  });
  assert.deepEqual(JSON.parse((await q.run(["logs", "j", "--attempt", "1", "--json"])).stdout), {
    job: "j",
    attempt: 1,
    running: false,
    stdout: { bytes: 6, cut_bytes: 0, text: "first\n" },
    stderr: { bytes: 3, cut_bytes: 0, text: "e1\n" },
  });
  // One stream: only its key.
  assert.deepEqual(
    Object.keys(JSON.parse((await q.run(["logs", "j", "--stderr", "--json"])).stdout)),
    ["job", "attempt", "running", "stderr"],
  );
  // Control characters are JSON's to escape, not logs': the text is the output itself.
  await jobWithAttempts(q, "ctl", [{ stdout: HOSTILE }]);
  const hostile = JSON.parse((await q.run(["logs", "ctl", "--json"])).stdout);
  assert.equal(hostile.stdout.text, new TextDecoder().decode(HOSTILE));
});

Deno.test("logs --json marks a cut stream, a running attempt, and a job that has not run", async () => {
  await using q = await cliFixture();
  const cut: OutputCapture = {
    head: encoder.encode("first lines\n"),
    tail: encoder.encode("last lines\n"),
    total: 12 + 3 * 1024 + 11,
  };
  await jobWithAttempts(q, "big", [{ stdout: cut }]);
  assert.deepEqual(JSON.parse((await q.run(["logs", "big", "--json", "--stdout"])).stdout).stdout, {
    bytes: 12 + 3 * 1024 + 11,
    cut_bytes: 3 * 1024,
    text: "first lines\n\n[… 3.0 KiB of stdout not kept …]\nlast lines\n",
  });
  await runningJob(q, "busy", "so far\n");
  const running = JSON.parse((await q.run(["logs", "busy", "--json"])).stdout);
  assert.equal(running.running, true);
  assert.equal(running.stdout.text, "so far\n");
  await insertJob(await q.store(), q.clock, { id: "later" });
  assert.deepEqual(await q.run(["logs", "later", "--json"]), {
    code: 0,
    stdout: JSON.stringify({
      job: "later",
      attempt: null,
      running: false,
      stdout: { bytes: 0, cut_bytes: 0, text: "" },
      stderr: { bytes: 0, cut_bytes: 0, text: "" },
    }) + "\n",
    stderr: "",
  });
});

Deno.test("logs --json refuses --follow and --raw, which print no one document", async () => {
  await using q = await cliFixture();
  await jobWithAttempts(q, "j", [{ stdout: "x\n" }]);
  for (const flag of ["--follow", "--raw"]) {
    const { code, stdout, stderr } = await q.run(["logs", "j", flag, "--json"]);
    assert.equal(code, 2, flag);
    assert.equal(stdout, "");
    assert.match(stderr, new RegExp(`^queuectl: --json cannot be combined with ${flag}: .*\\n$`));
  }
});
