/**
 * What a command receives: its parsed arguments, the IO to use, and a lazily opened queue.
 *
 * @module
 */

import type { ParsedArgs } from "./args.ts";
import type { Io } from "./io.ts";
import type { Clock } from "../clock.ts";
import type { FaultHook } from "../fault.ts";
import type { Queue } from "../queue.ts";
import type { TestHooks } from "../test_hooks.ts";
import type { DbLocation } from "../store/location.ts";

export interface Context {
  /** The command's name as in the table: `enqueue`, `config set`. */
  command: string;
  io: Io;
  args: ParsedArgs;
  /** `--json` was given: stdout carries JSON only. */
  json: boolean;
  /** Colour on stdout: a terminal, and NO_COLOR unset. */
  color: boolean;
  clock: Clock;
  fault: FaultHook | undefined;
  /** Test hooks (none unless QUEUECTL_TEST=1; lib/test_hooks.ts). */
  hooks: TestHooks;
  /** Where the database is (resolving does not open or create it). */
  location(): DbLocation;
  /** Opens the queue on first call (creating the database on first use); closed when the command ends. */
  openQueue(role?: "cli" | "worker"): Promise<Queue>;
  /** How to start this program again (workers, detach). */
  readonly self: SelfCommand;
  /**
   * Replaces this process (same pid) with the same command line and `env` added to its
   * environment; returns only on failure, with the reason. `withoutDb` leaves `--db` out of the
   * new command line (the caller moves it to `env`). Absent unless this call is the process's own
   * entry (main.ts), so that tests running commands in process are never replaced.
   */
  readonly reexec?: (
    env: Readonly<Record<string, string>>,
    options?: { withoutDb?: boolean },
  ) => Promise<Error>;
}

/** The command line that runs this very program: the binary, or `deno run -A <main module>`. */
export interface SelfCommand {
  exec: string;
  args: string[];
}

export type CommandRun = (ctx: Context) => Promise<number>;
