/**
 * `execve(2)` for a worker that re-executes itself: the same pid, parent, process group, limits and
 * standard streams, with a new program image. Deno has no exec of its own, so it goes through libc
 * (FFI), which the posix_spawn spawner loads anyway.
 *
 * A `worker run` started on its own (by systemd, a shell, a test) has not got the V8 flags and
 * malloc setting that keep a worker's memory small and flat (supervisor.ts: about 60 MB after
 * 10,000 jobs, against about 100 MB and still growing without). V8 reads its heap flags once, at
 * start, and changing them later has no effect (measured: node:v8 `setFlagsFromString`), so the
 * worker starts itself again with them before it opens the database. Keeping the pid matters:
 * whoever started the worker watches and signals that pid.
 *
 * @module
 */

import { openLibc } from "./_libc.ts";

const encoder = new TextEncoder();

function cString(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`${text}\0`);
}

/** A NULL-terminated array of pointers to `strings`, which must stay alive until the call. */
function pointerArray(strings: readonly Uint8Array<ArrayBuffer>[]): BigUint64Array<ArrayBuffer> {
  const array = new BigUint64Array(strings.length + 1);
  strings.forEach((s, i) => {
    array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s)));
  });
  return array;
}

/**
 * Replaces this process with `path` run as `args` (argv[0] included) in `env`. Returns only when
 * that failed, with the reason: no FFI permission, no glibc, or the error execve reported.
 */
export function execve(
  path: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): Error {
  const libc = openLibc();
  if (libc instanceof Error) return libc;
  const argv = args.map(cString);
  const envp = Object.entries(env)
    .filter(([name, value]) => !name.includes("=") && !`${name}${value}`.includes("\0"))
    .map(([name, value]) => cString(`${name}=${value}`));
  const file = cString(path);
  libc.symbols.execve(file, pointerArray(argv), pointerArray(envp));
  const errno = libc.errno();
  // Keep the strings reachable until here: the pointer arrays do not hold them for the GC.
  return new Error(`execve ${path} failed (errno ${errno}, ${argv.length + envp.length} strings)`);
}
