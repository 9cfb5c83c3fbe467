/**
 * Running queuectl as a user does: in process through `main(args, io)` with captured output, or as
 * a real `deno run main.ts` process.
 *
 * @module
 */

import { main } from "../../lib/cli/main.ts";
import { MemoryIo } from "../../lib/cli/io.ts";
import type { Clock } from "../../lib/clock.ts";

/** The checkout's root directory, with a trailing slash. */
export const REPO_DIR: string = decodeURIComponent(new URL("../../", import.meta.url).pathname);
/** `main.ts` of the checkout. */
export const MAIN: string = `${REPO_DIR}main.ts`;

/**
 * Where a command that was given no `--db` would go: a directory that does not exist, so a test
 * that forgets `--db` fails loudly instead of writing to the user's real queue.
 */
export const GUARD_DB = "/nonexistent/queuectl-test-forgot-db/queue.db";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Standard input (read by `enqueue -`). */
  stdin?: string;
  /**
   * Environment variables on top of the defaults (`QUEUECTL_DB` pointing nowhere). `undefined`
   * removes a variable.
   */
  env?: Record<string, string | undefined>;
  /** Working directory the command sees. */
  cwd?: string;
}

function environment(
  extra: Record<string, string | undefined> | undefined,
  base: Record<string, string>,
) {
  const env: Record<string, string> = { QUEUECTL_DB: GUARD_DB, ...base };
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Runs `main(args, io)` in this process with a `MemoryIo`, optionally on a fake clock. */
export async function runCli(
  args: readonly string[],
  options: RunOptions & { clock?: Clock } = {},
): Promise<CliResult> {
  const io = new MemoryIo({
    ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
    env: environment(options.env, {}),
    cwd: options.cwd ?? REPO_DIR.replace(/\/$/, ""),
  });
  const code = await main(args, io, options.clock ? { clock: options.clock } : {});
  return { code, stdout: io.stdout, stderr: io.stderr };
}

/** The Deno cache this process uses, so that child processes share it (and stay fast). */
function denoDir(): string {
  const explicit = Deno.env.get("DENO_DIR");
  if (explicit) return explicit;
  const cache = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache`;
  return `${cache}/deno`;
}

export interface ProcessOptions extends RunOptions {
  /** Runs the process under this umask (through `sh -c 'umask …; exec …'`). */
  umask?: number;
  /** A command that runs deno, e.g. `["setpriv", "--reuid=65534", "--"]`. */
  wrap?: string[];
}

/**
 * Runs `deno <denoArgs>` as a child process with a clean environment (PATH, HOME, DENO_DIR,
 * TZ=UTC unless given, and the `QUEUECTL_DB` guard), and collects its exit code and output.
 */
export async function runDeno(
  denoArgs: readonly string[],
  options: ProcessOptions = {},
): Promise<CliResult> {
  const env = environment(options.env, {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    DENO_DIR: denoDir(),
    TZ: "UTC",
    NO_COLOR: "1",
  });
  let command = [...(options.wrap ?? []), Deno.execPath(), ...denoArgs];
  if (options.umask !== undefined) {
    const umask = options.umask.toString(8).padStart(3, "0");
    command = ["sh", "-c", `umask ${umask}; exec "$@"`, "sh", ...command];
  }
  const [program, ...args] = command as [string, ...string[]];
  const child = new Deno.Command(program, {
    args,
    env,
    clearEnv: true,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    stdin: options.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Runs `deno run -A --quiet main.ts <args>` as a real process. */
export function runProcess(
  args: readonly string[],
  options: ProcessOptions = {},
): Promise<CliResult> {
  return runDeno(["run", "-A", "--quiet", MAIN, ...args], options);
}

/** The lines of a text, without the empty string after a final newline. */
export function lines(text: string): string[] {
  const parts = text.split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}
