/**
 * Running the documentation's examples (README.md, and the command table's `examples` that
 * `--help` shows) as real shell command lines, with `queuectl` on PATH, against a temporary queue
 * with real worker processes. tests/docs/readme_test.ts and tests/docs/help_examples_test.ts use
 * it; they are two files so that `deno test --parallel` runs them side by side.
 *
 * - A ```sh block whose lines all start with `queuectl` runs as is, on a queue of its own; every
 *   command must exit 0.
 * - A plain ``` block of `$ command` lines followed by their output is a session: all such blocks
 *   run in order, on one queue. Each command must exit 0, unless the next one is `echo $?`, whose
 *   shown output is then the expected code. Output (stdout and stderr, in order, as a terminal
 *   shows them) must have the shown shape: the same lines with the same words, where numbers,
 *   times, durations, worker ids and absolute paths may differ (see `shape`).
 * - The command table's examples run in table order on one queue where a worker runs and jobs 42
 *   and 43 have run; each must exit 0. A foreground example (`worker start` without `--detach`,
 *   `dashboard`) runs until it is up, then gets SIGINT, as from Ctrl-C, and must exit 0.
 *
 * @module
 */

import { MAIN } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";
import type { TempDir } from "../helpers/temp.ts";
import { poll } from "../helpers/poll.ts";

/** One command line of an example, with what it is shown to print (session blocks only). */
export interface Step {
  command: string;
  /** Lines shown after the command, up to the next `$` line; undefined: not compared. */
  output?: string[];
  /** Where it is, for messages. */
  where: string;
}

export interface Blocks {
  /** ```sh blocks of `queuectl` lines: each runs on its own queue. */
  scripts: Step[][];
  /** The `$` steps of every session block, in order. */
  session: Step[];
}

/** Finds the README's runnable blocks. */
export function readmeBlocks(text: string): Blocks {
  const blocks: Blocks = { scripts: [], session: [] };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\w*)$/.exec(lines[i]!);
    if (!fence) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end] !== "```") end++;
    const body = lines.slice(start, end);
    i = end;
    const where = (n: number) => `README.md:${start + n + 1}`;
    if (body.some((l) => l.startsWith("$ "))) {
      let output: string[] | undefined;
      body.forEach((line, n) => {
        if (line.startsWith("$ ")) {
          output = [];
          blocks.session.push({ command: line.slice(2), output, where: where(n) });
        } else {
          output?.push(line);
        }
      });
    } else if (
      fence[1] === "sh" && body.length > 0 && body.every((l) => l.startsWith("queuectl "))
    ) {
      blocks.scripts.push(body.map((command, n) => ({ command, where: where(n) })));
    }
  }
  return blocks;
}

/**
 * What may differ between a shown line and a real one: absolute paths (the queue's directory),
 * worker ids, times, durations, pids and other numbers. Words, their order and the line structure
 * may not; runs of spaces count as one (column widths follow the values).
 */
export function shape(line: string): string {
  return line
    .replace(/(?<![\w.])\/[^\s"')]+/g, "<path>")
    .replace(/\bw\d+-[0-9a-z]+\b/g, "<worker>")
    .replace(/\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?/g, "<time>")
    .replace(/\b\d+(\.\d+)?(ms|s|m|h|d)(\d+(ms|s|m|h|d))*\b/g, "<duration>")
    .replace(/\d+/g, "N")
    .replace(/\s+/g, " ")
    .trim();
}

/** A directory with `queuectl` on PATH for the examples, a home, and a queue. */
export interface Sandbox {
  dir: TempDir;
  env: Record<string, string>;
}

export async function sandbox(): Promise<Sandbox> {
  const dir = await tempDir("queuectl-docs-");
  await Deno.mkdir(`${dir.path}/bin`);
  await Deno.mkdir(`${dir.path}/home`);
  const shim = `${dir.path}/bin/queuectl`;
  await Deno.writeTextFile(
    shim,
    `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet '${MAIN}' "$@"\n`,
  );
  await Deno.chmod(shim, 0o755);
  const cache = Deno.env.get("DENO_DIR") ??
    `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache`}/deno`;
  return {
    dir,
    env: {
      PATH: `${dir.path}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
      HOME: `${dir.path}/home`,
      DENO_DIR: cache,
      TZ: "UTC",
      NO_COLOR: "1",
      QUEUECTL_DB: dir.db,
    },
  };
}

export interface ShellResult {
  code: number;
  /** stdout and stderr together, in the order written (one pipe, as a terminal shows them). */
  output: string;
}

const COMMAND_TIMEOUT_MS = 60_000;

/**
 * Runs one command line with `sh`, `$?` set to `previous` first (so `echo $?` reports the
 * command before it); a command that outlives the timeout fails the test.
 */
export async function shell(box: Sandbox, command: string, previous: number): Promise<ShellResult> {
  const child = new Deno.Command("sh", {
    args: ["-c", '(exit "$1"); eval "$2" 2>&1', "sh", String(previous), command],
    cwd: box.dir.path,
    env: box.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
    // Its own process group: a timeout kills what the example started too (a worker left in
    // the foreground would otherwise hold the pipe open for ever).
    detached: true,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* gone */ }
  }, COMMAND_TIMEOUT_MS);
  try {
    const { code, stdout } = await child.output();
    return { code, output: new TextDecoder().decode(stdout) };
  } finally {
    clearTimeout(timer);
  }
}

/** Stops whatever workers the examples left running. */
export async function stopWorkers(box: Sandbox): Promise<void> {
  await shell(box, "queuectl worker stop --force >/dev/null", 0);
}

/** Runs steps in order; returns what went wrong, one entry per failing step. */
export async function runSteps(box: Sandbox, steps: readonly Step[]): Promise<string[]> {
  const failures: string[] = [];
  let previous = 0;
  for (const [i, step] of steps.entries()) {
    const result = await shell(box, step.command, previous);
    previous = result.code;
    const next = steps[i + 1];
    const expected = next?.command === "echo $?" ? Number(next.output?.[0]) : 0;
    const problems: string[] = [];
    if (result.code !== expected) problems.push(`exit ${result.code}, expected ${expected}`);
    if (step.output !== undefined) {
      const actual = result.output.replace(/\n$/, "").split("\n");
      const shown = step.output.length === 0 ? [] : step.output;
      const got = result.output === "" ? [] : actual;
      if (got.length !== shown.length || got.some((l, n) => shape(l) !== shape(shown[n]!))) {
        problems.push(
          `output differs from the README (in shape):\n      shown:\n        ${
            shown.join("\n        ")
          }\n      printed:\n        ${got.join("\n        ")}`,
        );
      }
    }
    if (problems.length) {
      failures.push(`${step.where}: $ ${step.command}\n    ${problems.join("\n    ")}`);
    }
  }
  return failures;
}

/**
 * Examples that run in the foreground until interrupted, and how to tell they are up: the number
 * of workers they start, or a line they print on stdout.
 */
export const FOREGROUND: Record<string, { workers: number } | { prints: string }> = {
  "queuectl worker start --count 4": { workers: 4 },
  "queuectl worker start --concurrency 4": { workers: 1 },
  "queuectl worker start --queue mail,reports --concurrency 2": { workers: 1 },
  "queuectl dashboard": { prints: "Ctrl-C to stop" },
  "queuectl dashboard --read-only --token-file ~/dashboard.token": {
    prints: "Ctrl-C to stop",
  },
};

/** Live workers of the sandbox's queue, from `worker list --json`. */
async function liveWorkers(box: Sandbox): Promise<number> {
  const { output } = await shell(box, "queuectl worker list --json", 0);
  try {
    return (JSON.parse(output) as { state: string }[]).filter((w) => w.state !== "gone").length;
  } catch {
    return 0;
  }
}

/** Reads `stream` until it has printed `line` (or ends); then drains the rest in the background. */
async function untilPrinted(stream: ReadableStream<Uint8Array>, line: string): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`it ended without printing "${line}": ${text}`);
    text += value;
    if (text.split("\n").includes(line)) break;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
}

/** Runs a foreground example until it is up (see FOREGROUND), then sends SIGINT. */
export async function runForeground(
  box: Sandbox,
  command: string,
  ready: { workers: number } | { prints: string },
): Promise<number> {
  const before = await liveWorkers(box);
  const child = new Deno.Command("sh", {
    args: ["-c", `exec ${command}`],
    cwd: box.dir.path,
    env: box.env,
    clearEnv: true,
    stdin: "null",
    stdout: "prints" in ready ? "piped" : "null",
    stderr: "null",
  }).spawn();
  try {
    if ("prints" in ready) {
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      try {
        await untilPrinted(child.stdout, ready.prints);
      } finally {
        clearTimeout(timer);
      }
    } else {
      await poll(
        async () => (await liveWorkers(box)) >= before + ready.workers,
        30_000,
        `${command} up`,
      );
    }
  } finally {
    try {
      child.kill("SIGINT");
    } catch { /* it exited by itself: its status says how */ }
  }
  return (await child.status).code;
}
