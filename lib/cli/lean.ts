/**
 * The short start-up path of the commands that scripts call in loops: `status`, `show ID` and
 * `enqueue`. Every call is a new process, and the full CLI (main.ts) loads the whole command table,
 * its lookup by alias and its help before it runs anything. This path recognises only the plain
 * form of these three (global flags, then the command's own name), parses it with the same flag
 * specs (hot_commands.ts) and the same parser, and runs the same command module through the same
 * runner (run.ts). Anything else, including every usage error, is left to the full CLI, which
 * then handles the whole command line as if this path did not exist: nothing has happened by then.
 *
 * @module
 */

import { GLOBAL_FLAGS, parseArgs } from "./args.ts";
import type { ParsedArgs } from "./args.ts";
import type { CommandSpec } from "./commands.ts";
import { ENQUEUE, SHOW, STATUS } from "./hot_commands.ts";
import type { Io } from "./io.ts";
import type { MainOptions } from "./run.ts";
import { runCommand } from "./run.ts";
import { lazy } from "../lazy.ts";
import type { Queue } from "../queue.ts";

const HOT: Readonly<Record<string, CommandSpec>> = {
  status: STATUS,
  show: SHOW,
  enqueue: ENQUEUE,
};

/**
 * The command and its parsed arguments when `argv` is the plain form of a hot command; undefined
 * for anything the full CLI must look at (help, an alias, a flag it does not know, a bad value).
 */
export function leanParse(
  argv: readonly string[],
): { spec: CommandSpec; args: ParsedArgs } | undefined {
  if (argv.includes("--help") || argv.includes("-h")) return undefined;
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith("-"); i++) {
    const token = argv[i]!;
    const eq = token.indexOf("=");
    const name = token.slice(2, eq === -1 ? undefined : eq);
    const flag = token.startsWith("--") ? GLOBAL_FLAGS.find((f) => f.name === name) : undefined;
    if (flag === undefined) return undefined;
    if (flag.value !== undefined && eq === -1) i++;
  }
  const spec = HOT[argv[i] ?? ""];
  if (spec === undefined || spec.noJson !== undefined) return undefined;
  try {
    const rest = [...argv.slice(0, i), ...argv.slice(i + 1)];
    return { spec, args: parseArgs(rest, [...spec.flags, ...GLOBAL_FLAGS], spec.args, spec.name) };
  } catch {
    return undefined;
  }
}

/** Runs `argv` when it is a hot command and returns its exit code; undefined otherwise. */
export async function leanMain(
  argv: readonly string[],
  io: Io,
  options: MainOptions = {},
): Promise<number | undefined> {
  const parsed = leanParse(argv);
  if (parsed === undefined) return undefined;
  let queue: Queue | undefined;
  try {
    return await runCommand(parsed.spec, parsed.args, argv, io, options, (q) => queue = q);
  } catch (error) {
    // Errors are the rare path: the full CLI's reporting is loaded for them.
    const { reportError } = await lazy<typeof import("./main.ts")>(import.meta.url, "./main.ts");
    return await reportError(error, argv, io);
  } finally {
    try {
      io.flush();
    } catch { /* stdout closed */ }
    await queue?.close();
  }
}
