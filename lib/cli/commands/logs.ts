/**
 * `queuectl logs ID`: the captured output of an attempt; `--follow` streams a running one.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagBool, flagInt } from "../args.ts";
import { escapeControls, formatBytes, json } from "../render.ts";
import { jobIdArg } from "./show.ts";
import { EXIT, NotFoundError, UsageError } from "../../errors.ts";
import type { Attempt } from "../../job/job.ts";
import type { Queue } from "../../queue.ts";
import type { OutputCapture } from "../../store/store.ts";

type Stream = "stdout" | "stderr";

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** The exit code `logs --follow` ends with: the job's, as a shell would report it. */
export function attemptExitCode(attempt: Attempt): number {
  switch (attempt.outcome) {
    case "completed":
      return 0;
    case "timeout":
      return EXIT.timeout;
    case "failed":
      if (attempt.exitCode !== null) return attempt.exitCode;
      return attempt.signal !== null && SIGNALS[attempt.signal]
        ? 128 + SIGNALS[attempt.signal]!
        : 1;
    default:
      return 1;
  }
}

/** Writes one stream's bytes from an absolute offset on, as text (escaped) or raw. */
class StreamPrinter {
  #printed = 0;
  readonly #decoder = new TextDecoder();
  constructor(
    readonly stream: Stream,
    readonly write: (text: string) => void,
    readonly writeBytes: (bytes: Uint8Array) => void,
    readonly raw: boolean,
  ) {}

  #emit(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.raw) this.writeBytes(bytes);
    else this.write(escapeControls(this.#decoder.decode(bytes, { stream: true })));
  }

  /** Prints what `capture` holds beyond what was printed, marking bytes that were cut. */
  update(capture: OutputCapture, note: (text: string) => void): void {
    const headEnd = capture.head.length;
    const tailStart = capture.total - capture.tail.length;
    if (this.#printed < headEnd) {
      this.#emit(capture.head.subarray(this.#printed));
      this.#printed = headEnd;
    }
    if (this.#printed < tailStart) {
      // A character the cut split ends here (as U+FFFD), not glued to bytes after the cut.
      this.end();
      note(cutNote(this.stream, tailStart - this.#printed));
      this.#printed = tailStart;
    }
    if (this.#printed < capture.total) {
      this.#emit(capture.tail.subarray(this.#printed - tailStart));
      this.#printed = capture.total;
    }
  }

  end(): void {
    if (!this.raw) this.write(escapeControls(this.#decoder.decode()));
  }
}

/** The cut as `logs` marks it in text. */
function cutNote(stream: Stream, bytes: number): string {
  return `[… ${formatBytes(bytes)} of ${stream} not kept …]`;
}

/**
 * One stream for `logs --json`: its size, how much of it was not kept, and the kept bytes as text
 * (invalid UTF-8 as U+FFFD), with the cut marked on a line of its own as in the text form.
 */
function streamJson(stream: Stream, capture: OutputCapture | undefined): Record<string, unknown> {
  if (capture === undefined) return { bytes: 0, cut_bytes: 0, text: "" };
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const cut = capture.total - capture.head.length - capture.tail.length;
  const text = cut > 0
    ? `${decode(capture.head)}\n${cutNote(stream, cut)}\n${decode(capture.tail)}`
    : decode(concatBytes(capture.head, capture.tail));
  return { bytes: capture.total, cut_bytes: cut, text };
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function pickAttempt(
  queue: Queue,
  id: string,
  wanted: number | undefined,
  follow: boolean,
): Promise<Attempt | undefined> {
  for (;;) {
    const mark = queue.changeMark();
    const attempts = await queue.attempts(id);
    if (wanted !== undefined) {
      const found = attempts.find((a) => a.attempt === wanted);
      if (found) return found;
      const job = await queue.get(id);
      if (!follow || wanted <= job.attempts || job.state === "completed" || job.state === "dead") {
        throw new NotFoundError(
          `Job "${id}" has no attempt ${wanted}` +
            (attempts.length ? ` (it has 1 to ${attempts.length})` : " (it has not run yet)"),
        );
      }
    } else if (attempts.length > 0) {
      return attempts[attempts.length - 1];
    } else if (!follow) {
      return undefined;
    }
    // --follow on a job that has not started: wait for its attempt.
    await queue.waitForChange(mark, 60_000);
  }
}

export async function run(ctx: Context): Promise<number> {
  const id = jobIdArg(ctx.args.positionals[0]!);
  const wanted = flagInt(ctx.args, "attempt", 1, 1_000_000_000);
  const onlyOut = flagBool(ctx.args, "stdout");
  const onlyErr = flagBool(ctx.args, "stderr");
  if (onlyOut && onlyErr) throw new UsageError("Give --stdout or --stderr, not both");
  const follow = flagBool(ctx.args, "follow");
  const raw = flagBool(ctx.args, "raw");
  const queue = await ctx.openQueue();
  await queue.get(id);
  const attempt = await pickAttempt(queue, id, wanted, follow);
  const streams: Stream[] = onlyOut ? ["stdout"] : onlyErr ? ["stderr"] : ["stdout", "stderr"];
  if (ctx.json) {
    // --follow and --raw are refused with --json (lib/cli/commands.ts).
    const output = attempt ? await queue.output(id, attempt.attempt) : undefined;
    const document: Record<string, unknown> = {
      job: id,
      attempt: attempt?.attempt ?? null,
      running: attempt !== undefined && attempt.outcome === null,
    };
    for (const stream of streams) document[stream] = streamJson(stream, output?.[stream]);
    ctx.io.out(json(document));
    return EXIT.ok;
  }
  if (attempt === undefined) {
    ctx.io.err(`queuectl: job "${id}" has not run yet; no output\n`);
    return EXIT.ok;
  }
  const note = (text: string) => raw ? ctx.io.err(text + "\n") : ctx.io.out(`\n${text}\n`);

  if (!follow) {
    const output = await queue.output(id, attempt.attempt);
    const empty = { head: new Uint8Array(), tail: new Uint8Array(), total: 0 };
    // Both streams: show those that said something (or say that neither did).
    const shown = streams.length > 1
      ? streams.filter((s) => (output?.[s].total ?? 0) > 0)
      : streams;
    if (shown.length === 0) {
      ctx.io.err(
        `queuectl: attempt ${attempt.attempt} of job "${id}" wrote no output` +
          `${attempt.outcome === null ? " yet" : ""}\n`,
      );
    }
    for (const stream of shown) {
      const capture = output?.[stream] ?? empty;
      if (streams.length > 1) {
        const header = `==> ${stream} of job ${id}, attempt ${attempt.attempt} ` +
          `(${formatBytes(capture.total)}${attempt.outcome === null ? ", running" : ""}) <==\n`;
        ctx.io.out(header);
      }
      const printer = new StreamPrinter(
        stream,
        (t) => ctx.io.out(t),
        (b) => ctx.io.outBytes(b),
        raw,
      );
      printer.update(capture, note);
      printer.end();
      if (streams.length > 1 && capture.total > 0) {
        const last = capture.tail.length ? capture.tail : capture.head;
        if (last[last.length - 1] !== 0x0a) ctx.io.out("\n");
      }
    }
    return EXIT.ok;
  }

  // Follow: stdout to stdout and stderr to stderr (or the one chosen stream to stdout), as the
  // worker saves it, until the attempt ends.
  const printers = streams.map((stream) =>
    stream === "stderr" && streams.length > 1
      ? new StreamPrinter(
        stream,
        (t) => ctx.io.err(t),
        (b) => ctx.io.errBytes(b),
        raw,
      )
      : new StreamPrinter(stream, (t) => ctx.io.out(t), (b) => ctx.io.outBytes(b), raw)
  );
  for (;;) {
    const mark = queue.changeMark();
    const current = (await queue.attempts(id)).find((a) => a.attempt === attempt.attempt)!;
    const output = await queue.output(id, attempt.attempt);
    if (output) { for (const printer of printers) printer.update(output[printer.stream], note); }
    ctx.io.flush();
    if (current.finishedAt !== null) {
      for (const printer of printers) printer.end();
      return attemptExitCode(current);
    }
    // Sleep until the next commit to the database (the worker saves output every half second).
    await queue.waitForChange(mark, 60_000);
  }
}
