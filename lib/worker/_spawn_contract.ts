/**
 * The contract both spawners implement. `spawn.ts` is the public entry and
 * re-exports these; the implementations import them from here so that no
 * module imports its own importer.
 *
 * @module
 */

export interface SpawnOptions {
  /** Run as `sh -c command`. */
  command: string;
  cwd: string;
  /**
   * The environment of the child: `envBase` (when given) with `env` on top; otherwise `env` alone.
   */
  env: Record<string, string>;
  /**
   * A base environment shared by many spawns, never changed once passed (the worker's, as its
   * jobs inherit it): a spawner may encode it once and reuse that for every job.
   */
  envBase?: Readonly<Record<string, string>>;
  /** Called for each chunk read; the chunk's memory may be reused after the call returns (caller copies what it keeps). */
  onStdout: (chunk: Uint8Array) => void;
  onStderr: (chunk: Uint8Array) => void;
}

export type ExitStatus = { code: number; signal: null } | {
  code: null;
  signal: Deno.Signal | string;
};

export type SpawnMethod = "posix_spawn" | "deno-detached";

export interface JobProcess {
  /** The shell's pid. */
  readonly pid: number;
  /** Equals `pid`: the job leads its own process group (and session). */
  readonly pgid: number;
  readonly method: SpawnMethod;
  /** Resolves when the shell itself exits, NOT when the pipes close (a background grandchild may hold them). */
  readonly exited: Promise<ExitStatus>;
  /**
   * Resolves when both output streams reached EOF (or were abandoned by
   * closeOutput). Rejects with the error if onStdout or onStderr threw; that
   * stream is abandoned at once.
   */
  readonly outputDone: Promise<void>;
  /** Signal the whole process group; ignores ESRCH. */
  killGroup(signal: Deno.Signal): void;
  /** Stop reading output (after the group is dead and a short drain); must release fds. */
  closeOutput(): void;
}

export interface Spawner {
  readonly method: SpawnMethod;
  /** Starts the job; throws SpawnError when the process could not be started. */
  spawn(options: SpawnOptions): JobProcess;
}

/** Which part of starting the job failed. */
export type SpawnStep = "options" | "pipe" | "cwd" | "shell" | "watch";

/** The job's process could not be started. Nothing is left open or running. */
export class SpawnError extends Error {
  override name = "SpawnError";
  /** errno name, such as "ENOENT", or "EINVAL" for unusable options. */
  readonly code: string;
  readonly step: SpawnStep;

  constructor(
    message: string,
    options: { code: string; step: SpawnStep; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.step = options.step;
  }
}

/**
 * Rejects what no exec can carry: NUL bytes anywhere, and environment names
 * that are empty or contain "=". Both spawners call it, so both fail alike.
 */
export function checkSpawnOptions(options: SpawnOptions): void {
  if (options.command.includes("\0")) throw invalid("command contains a NUL byte");
  if (options.cwd.includes("\0")) throw invalid(`cwd "${options.cwd}" contains a NUL byte`);
  for (const [name, value] of Object.entries(mergedEnv(options))) {
    if (name === "" || name.includes("=") || name.includes("\0")) {
      throw invalid(`environment name "${name}" is empty or contains "=" or NUL`);
    }
    if (value.includes("\0")) throw invalid(`environment variable "${name}" contains a NUL byte`);
  }
}

/** The child's whole environment: the base with `env` on top. */
export function mergedEnv(options: SpawnOptions): Record<string, string> {
  return options.envBase === undefined ? options.env : { ...options.envBase, ...options.env };
}

function invalid(detail: string): SpawnError {
  return new SpawnError(`Cannot spawn job: ${detail}`, { code: "EINVAL", step: "options" });
}

export function cwdError(cwd: string, code: string, cause?: unknown): SpawnError {
  return new SpawnError(`Cannot change to directory "${cwd}": ${code}`, {
    code,
    step: "cwd",
    cause,
  });
}
