/**
 * Opening the queue's store.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Store } from "./store.ts";
import { openSqliteStore } from "./sqlite/open.ts";
import { StoreUnusableError } from "../errors.ts";
import { dirname } from "../path.ts";
import type { DbLocation } from "./location.ts";
import type { FaultHook } from "../fault.ts";

export interface OpenStoreOptions {
  /** `cli`: acknowledges work to users (synchronous=FULL, waits 5 s for locks). `worker`: NORMAL. */
  role: "cli" | "worker";
  /** The clock the store stamps and compares times with (see lib/store/store.ts, "Time"). */
  clock: Clock;
  fault?: FaultHook | undefined;
  busyTimeoutMs?: number;
  /** False: do not create a missing database (read-only commands see an empty queue). */
  create?: boolean;
}

/** Busy timeout of CLI connections: past it a command exits 5. */
export const CLI_BUSY_TIMEOUT_MS = 5000;
/**
 * Busy timeout of worker connections. node:sqlite waits synchronously, which would stall the
 * worker's timers (lease renewal among them), so workers wait briefly and retry asynchronously.
 */
export const WORKER_BUSY_TIMEOUT_MS = 100;

export async function openStore(
  location: DbLocation,
  options: OpenStoreOptions,
): Promise<Store> {
  if (location.isDefault && options.create !== false) {
    const dir = dirname(location.path);
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StoreUnusableError(`Cannot create the data directory: ${dir}`, {
        reason: "bad_path",
        cause: error,
      });
    }
  }
  return await openSqliteStore(location.path, {
    synchronous: options.role === "cli" ? "FULL" : "NORMAL",
    busyTimeoutMs: options.busyTimeoutMs ??
      (options.role === "cli" ? CLI_BUSY_TIMEOUT_MS : WORKER_BUSY_TIMEOUT_MS),
    clock: options.clock,
    fault: options.fault,
    create: options.create !== false,
    missingDirIsEmpty: location.isDefault,
  });
}
