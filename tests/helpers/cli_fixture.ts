/**
 * A temporary queue for CLI tests: a database file, a fake clock shared by the CLI and the
 * factory, and `run()` that calls the CLI in process with `--db` set.
 *
 * @module
 */

import { FakeClock } from "../../lib/clock.ts";
import type { SqliteStore } from "../../lib/store/sqlite/store.ts";
import { runCli } from "./cli.ts";
import type { CliResult, RunOptions } from "./cli.ts";
import { openTestStore, T0, tempDir } from "./temp.ts";

export interface CliFixture extends AsyncDisposable {
  readonly dir: string;
  readonly db: string;
  readonly clock: FakeClock;
  /** Runs `queuectl --db <db> <args>` in process on the fixture's clock. */
  run(args: readonly string[], options?: RunOptions): Promise<CliResult>;
  /** A store on the same file, for the factory; opened on first use. */
  store(): Promise<SqliteStore>;
  /** Closes the factory's store (so that the CLI's connection is the only one). */
  closeStore(): void;
}

export async function cliFixture(): Promise<CliFixture> {
  const dir = await tempDir();
  const clock = new FakeClock(T0);
  let store: SqliteStore | undefined;
  const closeStore = () => {
    store?.close();
    store = undefined;
  };
  return {
    dir: dir.path,
    db: dir.db,
    clock,
    run: (args, options = {}) =>
      runCli(["--db", dir.db, ...args], { cwd: dir.path, ...options, clock }),
    async store() {
      store ??= await openTestStore(dir.db, clock);
      return store;
    },
    closeStore,
    async [Symbol.asyncDispose]() {
      closeStore();
      await dir[Symbol.asyncDispose]();
    },
  };
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** `YYYY-MM-DD HH:MM:SS` in this process's time zone, as the human output shows times. */
export function localStamp(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
