/**
 * Starts one job process: `sh -c command` in its own session (so its own
 * process group, with no controlling terminal), stdin from /dev/null, stdout
 * and stderr streamed to callbacks with bounded memory.
 *
 * On Linux with glibc and --allow-ffi this uses posix_spawn through FFI; else
 * `Deno.Command` with `detached: true`. See docs/spawn.md for measurements.
 *
 * @module
 */

import { openLibc } from "./_libc.ts";
import { DenoSpawner } from "./_spawn_deno.ts";
import { PosixSpawner } from "./_spawn_posix.ts";
import type { Spawner, SpawnMethod } from "./_spawn_contract.ts";

export { SpawnError } from "./_spawn_contract.ts";
export type {
  ExitStatus,
  JobProcess,
  Spawner,
  SpawnMethod,
  SpawnOptions,
  SpawnStep,
} from "./_spawn_contract.ts";

export interface CreateSpawnerOptions {
  /** "deno-detached" forces the fallback; "posix_spawn" (default) is used only where it works. */
  prefer?: SpawnMethod;
}

/** Picks posix_spawn via FFI on Linux when FFI is permitted and libc loads; else the Deno.Command fallback. */
export function createSpawner(options: CreateSpawnerOptions = {}): Spawner {
  if (options.prefer !== "deno-detached") {
    const posix = tryPosixSpawner();
    if (posix !== null) return posix;
  }
  return new DenoSpawner();
}

function tryPosixSpawner(): Spawner | null {
  if (Deno.build.os !== "linux") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  const libc = openLibc();
  if (libc instanceof Error) return null;
  try {
    return new PosixSpawner(libc);
  } catch {
    // No pidfd_open (Linux < 5.3 or seccomp) or no epoll: use the fallback.
    return null;
  }
}
