/**
 * Opening the queue's store: SQLite for a file, PostgreSQL for a `postgres://` URL.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Store } from "./store.ts";
import { DatabaseSync } from "node:sqlite";
import { openSqliteStore } from "./sqlite/open.ts";
import { SqliteStore } from "./sqlite/store.ts";
import { StoreUnusableError } from "../errors.ts";
import { dirname } from "../path.ts";
import type { DbLocation } from "./location.ts";
import type { FaultHook } from "../fault.ts";
import type { openPostgresStore } from "./postgres/open.ts";
import { lazy } from "../lazy.ts";

export interface OpenStoreOptions {
  /** `cli`: acknowledges work to users (synchronous=FULL, waits 5 s for locks). `worker`: NORMAL. */
  role: "cli" | "worker";
  /**
   * The clock a SQLite store stamps and compares times with (see lib/store/store.ts, "Time"). A
   * PostgreSQL store uses the database's clock whatever this says.
   */
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

/** The PostgreSQL store's opener, loaded only for a URL (lib/lazy.ts says why). */
async function postgresOpener(): Promise<typeof openPostgresStore> {
  const module = await lazy<typeof import("./postgres/open.ts")>(
    import.meta.url,
    "./postgres/open.ts",
  );
  return module.openPostgresStore;
}

/** An empty queue in memory with the real schema, standing in for one that does not exist. */
async function emptyQueue(location: string, clock: Clock): Promise<Store> {
  const { migrate } = await lazy<typeof import("./sqlite/migrations.ts")>(
    import.meta.url,
    "./sqlite/migrations.ts",
  );
  const memory = new DatabaseSync(":memory:");
  migrate(memory, clock.now());
  return new SqliteStore(location, memory, { synchronous: "FULL", clock, memory: true });
}

export async function openStore(
  location: DbLocation,
  options: OpenStoreOptions,
): Promise<Store> {
  if (location.kind === "url") {
    const open = await postgresOpener();
    return await open(location.url, {
      role: options.role,
      create: options.create !== false,
      fault: options.fault,
      // A read-only command on a database without the queue's schema creates nothing: it sees
      // an empty queue, as for a missing SQLite file.
      emptyStandIn: (display) => emptyQueue(display, options.clock),
    });
  }
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
