/**
 * Portable spawner on `Deno.Command` with `detached: true` (setsid in a
 * pre-exec hook). Slower than posix_spawn, because the hook forces a full
 * fork, but it needs only --allow-run and works wherever Deno does.
 *
 * `child.status` resolves when the shell exits even while a grandchild holds
 * the pipes (checked on Deno 2.9.6 and covered by the shared tests), so
 * `exited` is simply derived from it.
 *
 * @module
 */

import {
  checkSpawnOptions,
  cwdError,
  type ExitStatus,
  type JobProcess,
  mergedEnv,
  type Spawner,
  SpawnError,
  type SpawnOptions,
} from "./_spawn_contract.ts";

const READ_BUFFER_BYTES = 64 * 1024;

export class DenoSpawner implements Spawner {
  readonly method = "deno-detached";

  spawn(options: SpawnOptions): JobProcess {
    checkSpawnOptions(options);
    let child: Deno.ChildProcess;
    try {
      // "/bin/sh", not "sh" from the worker's PATH: the same shell as posix_spawn.
      child = new Deno.Command("/bin/sh", {
        args: ["-c", options.command],
        cwd: options.cwd,
        env: mergedEnv(options),
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        detached: true,
      }).spawn();
    } catch (error: unknown) {
      throw diagnose(error, options.cwd);
    }
    return new DenoJobProcess(child, options);
  }
}

/** Deno checks cwd itself before forking; its errors carry an errno `code`. */
function diagnose(error: unknown, cwd: string): SpawnError {
  const code = errorCode(error);
  let cwdProblem: string | null = null;
  try {
    if (!Deno.statSync(cwd).isDirectory) cwdProblem = "ENOTDIR";
  } catch (statError: unknown) {
    // Without --allow-read the stat proves nothing; fall through to the shell.
    if (!(statError instanceof Deno.errors.NotCapable)) cwdProblem = errorCode(statError);
  }
  if (cwdProblem !== null) return cwdError(cwd, cwdProblem, error);
  return new SpawnError(`Cannot run "/bin/sh": ${code}`, { code, step: "shell", cause: error });
}

function errorCode(error: unknown): string {
  if (error instanceof Error && "code" in error && typeof error.code === "string") {
    return error.code;
  }
  return "EIO";
}

class DenoJobProcess implements JobProcess {
  readonly method = "deno-detached";
  readonly pid: number;
  readonly pgid: number;
  readonly exited: Promise<ExitStatus>;
  readonly outputDone: Promise<void>;
  readonly #readers: ReadableStreamBYOBReader[];

  constructor(child: Deno.ChildProcess, options: SpawnOptions) {
    this.pid = child.pid;
    this.pgid = child.pid;
    this.exited = child.status.then((status): ExitStatus =>
      status.signal === null
        ? { code: status.code, signal: null }
        : { code: null, signal: status.signal }
    );
    const stdout = child.stdout.getReader({ mode: "byob" });
    const stderr = child.stderr.getReader({ mode: "byob" });
    this.#readers = [stdout, stderr];
    // Like the posix spawner: a throwing callback abandons its own stream only,
    // and outputDone rejects once both streams are over.
    this.outputDone = Promise.allSettled([
      drain(stdout, options.onStdout),
      drain(stderr, options.onStderr),
    ]).then((results) => {
      for (const result of results) if (result.status === "rejected") throw result.reason;
    });
  }

  killGroup(signal: Deno.Signal): void {
    try {
      Deno.kill(-this.pgid, signal);
    } catch (error: unknown) {
      // Deno reports ESRCH as NotFound (without an errno code); kill has no other ENOENT.
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
  }

  closeOutput(): void {
    // Cancelling closes the pipe's resource (its fd) and ends the pending read.
    for (const reader of this.#readers) reader.cancel().catch(() => {});
  }
}

/** Reads until EOF or cancel, reusing one buffer; a throwing callback cancels. */
async function drain(
  reader: ReadableStreamBYOBReader,
  onChunk: (chunk: Uint8Array) => void,
): Promise<void> {
  let buffer = new Uint8Array(READ_BUFFER_BYTES);
  for (;;) {
    const { value, done } = await reader.read(buffer);
    if (done || value === undefined) return;
    try {
      onChunk(value);
    } catch (error: unknown) {
      await reader.cancel().catch(() => {});
      throw error;
    }
    // read() transferred the buffer into `value`; take it back for the next read.
    buffer = new Uint8Array(value.buffer);
  }
}
