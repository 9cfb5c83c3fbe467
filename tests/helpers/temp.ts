/**
 * Temporary directories and stores that clean up after themselves: hold them with `await using`.
 *
 * @module
 */

import { FakeClock } from "../../lib/clock.ts";
import { openSqliteStore } from "../../lib/store/sqlite/open.ts";
import type { SqliteStore } from "../../lib/store/sqlite/store.ts";

/** A fresh directory, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  readonly path: string;
  /** `<path>/queue.db`: where a test's database goes unless it needs another name. */
  readonly db: string;
}

async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    // A test may have made something read-only (0444 file, 0500 directory): undo it and retry.
    await new Deno.Command("chmod", { args: ["-R", "u+rwx", path] }).output();
    await Deno.remove(path, { recursive: true });
  }
}

/** Creates a temporary directory (0700, from `Deno.makeTempDir`). */
export async function tempDir(prefix = "queuectl-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    db: `${path}/queue.db`,
    [Symbol.asyncDispose]: () => removeTree(path),
  };
}

/** The start of every FakeClock in the tests: 2026-01-01T00:00:00Z. */
export const T0 = Date.UTC(2026, 0, 1);

/** A store on a new database file in its own temporary directory, with a fake clock. */
export interface StoreFixture extends AsyncDisposable {
  readonly dir: string;
  readonly path: string;
  readonly store: SqliteStore;
  readonly clock: FakeClock;
}

/** Opens a store the way the CLI does (synchronous=FULL, 5 s busy timeout) on a new file. */
export async function storeFixture(): Promise<StoreFixture> {
  const dir = await tempDir();
  const clock = new FakeClock(T0);
  const store = await openTestStore(dir.db, clock);
  return {
    dir: dir.path,
    path: dir.db,
    store,
    clock,
    async [Symbol.asyncDispose]() {
      await store.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

/** Opens (creating on first use) the store at `path` like a CLI connection, on `clock`. */
export function openTestStore(
  path: string,
  clock: FakeClock,
  options: { busyTimeoutMs?: number; ignoreNotifications?: boolean } = {},
): Promise<SqliteStore> {
  return openSqliteStore(path, {
    synchronous: "FULL",
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    clock,
    ...(options.ignoreNotifications ? { ignoreNotifications: true } : {}),
  });
}

/**
 * A temporary directory shared by the tests of one module, removed when the module's test run
 * ends (`await using` at module level would remove it before the tests run).
 */
export async function moduleTempDir(
  prefix = "queuectl-test-",
): Promise<{ path: string; db: string }> {
  const path = await Deno.makeTempDir({ prefix });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch { /* already gone */ }
  });
  return { path, db: `${path}/queue.db` };
}
