/**
 * Child processes of a test: `Proc` starts one and collects its stdout and stderr (stderr also
 * line by line, with the time each line arrived) while it runs; `runProgram` runs a helper
 * program (mount, sqlite3, chattr…) that must succeed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { poll, within } from "./poll.ts";

const encoder = new TextEncoder();

/** The repository root (no trailing slash). */
export const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
/** The CLI's entry point. */
export const MAIN = `${REPO}/main.ts`;

/** Shell-quotes one word. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export interface Finished {
  /** Exit code, or 128 + signal number when killed by a signal. */
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface ProcOptions {
  env?: Record<string, string>;
  /**
   * Text for stdin (then closed); "pipe" keeps it open for `write()` and `closeStdin()` (a
   * process that reads it blocks until then); default /dev/null.
   */
  stdin?: string | "pipe";
  /** Default: this process's. */
  cwd?: string;
}

export interface LogLine {
  /** Date.now() when the line arrived. */
  at: number;
  text: string;
}

/** A child process with its output collected while it runs. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  readonly args: readonly string[];
  readonly startedAt = performance.now();
  /** stderr, line by line, as it arrives. */
  readonly lines: LogLine[] = [];
  /** Resolves once the process exited and both streams are read to the end. */
  readonly done: Promise<Finished>;
  result: Finished | null = null;
  #stdout = "";
  #stderr = "";
  #partial = "";
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null = null;

  constructor(command: string, args: readonly string[], options: ProcOptions = {}) {
    this.args = args;
    this.child = new Deno.Command(command, {
      args: [...args],
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.child.pid;
    if (options.stdin !== undefined) {
      this.#stdin = this.child.stdin.getWriter();
      if (options.stdin !== "pipe") {
        const text = options.stdin;
        const writer = this.#stdin;
        this.#stdin = null;
        // A process that exits without reading stdin breaks the pipe: not an error here.
        writer.write(encoder.encode(text)).then(() => writer.close()).catch(() => {});
      }
    }
    const out = pump(this.child.stdout, (text) => this.#stdout += text);
    const err = pump(this.child.stderr, (text) => this.#onStderr(text));
    this.done = Promise.all([this.child.status, out, err]).then(([status]) => {
      if (this.#partial) this.lines.push({ at: Date.now(), text: this.#partial });
      this.#partial = "";
      this.result = {
        code: status.code,
        signal: status.signal,
        stdout: this.#stdout,
        stderr: this.#stderr,
        ms: performance.now() - this.startedAt,
      };
      // Nothing is written to a held stdin any more: close our end.
      this.#stdin?.close().catch(() => {});
      this.#stdin = null;
      return this.result;
    });
  }

  #onStderr(text: string): void {
    this.#stderr += text;
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop()!;
    const at = Date.now();
    for (const line of parts) this.lines.push({ at, text: line });
  }

  /** Whether it exited (and its output is read to the end). */
  get exited(): boolean {
    return this.result !== null;
  }
  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }

  /** Sends a signal unless the process has exited. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.result !== null) return;
    try {
      this.child.kill(signal);
    } catch { /* exited meanwhile */ }
  }

  /** Waits for exit; fails if it takes longer than `timeoutMs`. */
  wait(timeoutMs: number, what = `process ${this.pid} to exit`): Promise<Finished> {
    return within(this.done, timeoutMs, what).catch((error: unknown) => {
      if (this.result !== null || !(error instanceof assert.AssertionError)) throw error;
      throw new assert.AssertionError({
        message: `${error.message}; stderr so far:\n${this.#stderr}`,
      });
    });
  }

  /** Waits for stderr to match `pattern`; fails at once if the process exits first. */
  waitForStderr(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
    return poll(
      () => this.#stderr.match(pattern) ?? (this.exited ? assert.fail(this.#gone(what)) : false),
      timeoutMs,
      what,
      { describe: () => `stderr so far:\n${this.#stderr}` },
    );
  }

  #gone(what: string): string {
    return `Process ${this.pid} (${this.args.join(" ")}) exited before ${what}; stderr:\n` +
      this.#stderr;
  }

  /** Writes to stdin (spawned with `stdin: "pipe"`). */
  async write(text: string): Promise<void> {
    if (this.#stdin === null) throw new Error("stdin is not a pipe");
    await this.#stdin.write(encoder.encode(text));
  }

  async closeStdin(): Promise<void> {
    const writer = this.#stdin;
    this.#stdin = null;
    await writer?.close().catch(() => {});
  }
}

async function pump(stream: ReadableStream<Uint8Array>, onText: (text: string) => void) {
  const decoder = new TextDecoder();
  for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
}

/** Runs a helper program that must succeed; returns its stdout. */
export async function runProgram(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, { args, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}
