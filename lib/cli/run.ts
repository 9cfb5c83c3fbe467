/**
 * Running one command once its arguments are parsed: the context it gets (its queue opened on
 * first use and closed by the caller), shared by the full CLI (main.ts) and the short start-up
 * path (lean.ts), so both run a command the same way.
 *
 * @module
 */

import type { ParsedArgs } from "./args.ts";
import type { CommandSpec } from "./commands.ts";
import type { Context, SelfCommand } from "./context.ts";
import type { Io } from "./io.ts";
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { faultHook } from "../fault.ts";
import { lazy } from "../lazy.ts";
import type { Queue } from "../queue.ts";
import type { DbLocation } from "../store/location.ts";
import { resolveDbLocation } from "../store/location.ts";
import { testHooks } from "../test_hooks.ts";

export interface MainOptions {
  clock?: Clock;
  /** How to run this program again; defaults to this process's own command line. */
  self?: SelfCommand;
  /** This call is the process's entry (main.ts): argv is the process's own, and may be re-run. */
  entry?: boolean;
}

/** The command line that starts this program: the compiled binary, or deno running main.ts. */
export function selfCommand(): SelfCommand {
  if (Deno.build.standalone) return { exec: Deno.execPath(), args: [] };
  return { exec: Deno.execPath(), args: ["run", "-A", "--quiet", Deno.mainModule] };
}

/** `argv` without `--name VALUE` and `--name=VALUE` (before any `--`). */
function withoutFlag(argv: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (token === `--${name}`) i++;
    else if (!token.startsWith(`--${name}=`)) out.push(token);
  }
  return out;
}

/** Runs `spec` with parsed `args`; `opened` is told of the queue once it is open, to close it. */
export async function runCommand(
  spec: CommandSpec,
  args: ParsedArgs,
  argv: readonly string[],
  io: Io,
  options: MainOptions,
  opened: (queue: Queue) => void,
): Promise<number> {
  const color = io.stdoutIsTerminal && io.env("NO_COLOR") === undefined;
  const hooks = testHooks((name) => io.env(name));
  const clock = options.clock ?? systemClock(hooks);
  const fault = faultHook(hooks);
  const dbFlag = args.flags.get("db");
  let location: DbLocation | undefined;
  let queue: Queue | undefined;
  const ctx: Context = {
    command: spec.name,
    io,
    args,
    json: args.flags.get("json") === true,
    color,
    clock,
    fault,
    hooks,
    location() {
      location ??= resolveDbLocation(
        typeof dbFlag === "string" ? dbFlag : undefined,
        (name) => io.env(name),
        io.cwd,
      );
      return location;
    },
    async openQueue(role = "cli") {
      if (queue === undefined) {
        const { openQueue } = await lazy<typeof import("../queue.ts")>(
          import.meta.url,
          "../queue.ts",
        );
        queue = await openQueue(ctx.location(), {
          role,
          clock,
          fault,
          create: spec.readsOnly !== true,
        });
        opened(queue);
      }
      return queue;
    },
    get self() {
      return options.self ?? selfCommand();
    },
    ...(options.entry === true
      ? {
        async reexec(env: Readonly<Record<string, string>>, reexecOptions = {}) {
          const { execve } = await lazy<typeof import("../worker/exec.ts")>(
            import.meta.url,
            "../worker/exec.ts",
          );
          const self = ctx.self;
          const args = reexecOptions.withoutDb ? withoutFlag(argv, "db") : argv;
          return execve(self.exec, [self.exec, ...self.args, ...args], {
            ...Deno.env.toObject(),
            ...env,
          });
        },
      }
      : {}),
  };
  const module = await spec.load();
  return await module.run(ctx);
}
