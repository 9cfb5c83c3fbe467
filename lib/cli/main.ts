/**
 * The CLI entry: finds the command, parses its flags, runs it, and is the only place that turns
 * errors into exit codes and one-line messages.
 *
 * Start-up cost is a feature: every call starts a Deno process, so this module imports only what
 * every command needs, and each command loads the rest itself.
 *
 * @module
 */

import { GLOBAL_FLAGS, parseArgs, seeHelp } from "./args.ts";
import type { FlagSpec, ParsedArgs } from "./args.ts";
import type { CommandSpec } from "./commands.ts";
import { COMMANDS, GROUPS, VERSION } from "./commands.ts";
import type { Context, SelfCommand } from "./context.ts";
import type { Io } from "./io.ts";
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { EXIT, QueuectlError, UsageError } from "../errors.ts";
import { cliHint } from "./hints.ts";
import { faultHook } from "../fault.ts";
import type { Queue } from "../queue.ts";
import { testHooks } from "../test_hooks.ts";
import type { DbLocation } from "../store/location.ts";
import { resolveDbLocation } from "../store/location.ts";

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

/** Splits off the command words: global flags may come first; anything else starts the command. */
function findCommand(args: readonly string[]): { words: string[]; rest: string[] } {
  const rest: string[] = [];
  const words: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const token = args[i]!;
    if (token === "--" || token === "-" || !token.startsWith("-")) break;
    rest.push(token);
    const name = token.startsWith("--") ? token.slice(2) : token.slice(1);
    const flag = GLOBAL_FLAGS.find((f) => f.name === name || f.short === name);
    if (flag?.value !== undefined && i + 1 < args.length) rest.push(args[++i]!);
  }
  if (i < args.length && args[i] !== "--" && args[i] !== "-") {
    words.push(args[i++]!);
    if (GROUPS[words[0]!] !== undefined && i < args.length && !args[i]!.startsWith("-")) {
      words.push(args[i++]!);
    }
  }
  return { words, rest: [...rest, ...args.slice(i)] };
}

function lookup(words: readonly string[]): CommandSpec | "group" | undefined {
  const name = words.join(" ");
  const spec = COMMANDS.find((c) => c.name === name);
  if (spec) return spec;
  if (words.length === 1 && GROUPS[name] !== undefined) return "group";
  return undefined;
}

/** Other words for commands (`add` → `enqueue`), from the table; within `group` when given. */
function commandAliases(group?: string): Record<string, string> {
  const aliases: Record<string, string> = group === undefined ? { version: "--version" } : {};
  for (const c of COMMANDS) {
    if (c.hidden) continue;
    const [first, sub] = c.name.split(" ") as [string, string | undefined];
    for (const alias of c.aliases ?? []) {
      if (group === undefined) aliases[alias] ??= c.name;
      else if (first === group && sub !== undefined) aliases[alias] ??= sub;
    }
  }
  return aliases;
}

function unknownCommand(words: readonly string[]): UsageError {
  const group = GROUPS[words[0]!] !== undefined ? words[0]! : undefined;
  if (group !== undefined) {
    const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `)).map((c) =>
      c.name.slice(group.length + 1)
    );
    return new UsageError(`Unknown command "${words.join(" ")}"`, {
      hint: `${group} commands: ${subs.join(", ")}`,
      typo: { input: words[1]!, candidates: subs, aliases: commandAliases(group) },
    });
  }
  const names = [...new Set(COMMANDS.filter((c) => !c.hidden).map((c) => c.name.split(" ")[0]!))];
  return new UsageError(`Unknown command "${words[0]}"`, {
    hint: "`queuectl --help` lists the commands",
    typo: { input: words[0]!, candidates: names, aliases: commandAliases() },
  });
}

/** Flags that may come before a command: the global ones, and --version. */
const TOP_FLAGS: readonly FlagSpec[] = [
  ...GLOBAL_FLAGS,
  { name: "version", help: "print the version", aliases: ["v"] },
];

/**
 * What `queuectl help …` is asked about: its words, without global flags (given before or after
 * `help`) and their values. Throws for a word that is no command, or one too many.
 */
function helpTarget(tokens: readonly string[]): CommandSpec | string | undefined {
  const words: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === "-" || !token.startsWith("-")) {
      words.push(token);
      continue;
    }
    const flag = TOP_FLAGS.find((f) => `--${f.name}` === token || `-${f.short}` === token);
    if (flag?.value !== undefined) i++;
  }
  if (words.length === 0) return undefined;
  const group = GROUPS[words[0]!] !== undefined ? words[0]! : undefined;
  const used = group !== undefined && words.length > 1 ? 2 : 1;
  const target = lookup(words.slice(0, used));
  if (target === undefined) throw unknownCommand(words.slice(0, used));
  if (words.length > used) {
    throw new UsageError(`Unexpected argument "${words[used]}" for help`, {
      hint: seeHelp(""),
    });
  }
  return target === "group" ? group : target;
}

/**
 * Escapes control characters (C0, DEL, C1) as in JSON strings: messages quote what users typed,
 * and a newline must not split the one line, nor an escape sequence reach the terminal.
 */
function oneLine(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    const escaped = JSON.stringify(c).slice(1, -1);
    return escaped.length > 1 ? escaped : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** Formats an error as the one line users see (plus a stack with --debug). */
export function describeError(error: unknown, debug: boolean): { text: string; code: number } {
  if (error instanceof QueuectlError) {
    const hint = cliHint(error);
    let text = `queuectl: ${oneLine(error.message)}${hint ? ` (${oneLine(hint)})` : ""}\n`;
    if (debug) text += `${error.stack}\n${error.cause instanceof Error ? error.cause.stack : ""}\n`;
    return { text, code: error.exitCode };
  }
  const message = error instanceof Error ? error.message : String(error);
  let text = `queuectl: internal error: ${oneLine(message.split("\n")[0]!)} ` +
    `(run again with --debug for details, and please report it)\n`;
  if (debug && error instanceof Error) text += `${error.stack}\n`;
  return { text, code: EXIT.internal };
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

/** Runs one command line and returns its exit code. */
export async function main(
  argv: readonly string[],
  io: Io,
  options: MainOptions = {},
): Promise<number> {
  const debug = argv.includes("--debug");
  let queue: Queue | undefined;
  try {
    return await dispatch(argv, io, options, (q) => queue = q);
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return 141;
    if (error instanceof QueuectlError && error.typo) {
      const { didYouMean } = await import("../suggest.ts");
      const hint = didYouMean(error.typo.input, error.typo.candidates, error.typo.aliases);
      if (hint) error.message += `: ${hint}`;
    }
    const { text, code } = describeError(error, debug);
    io.err(text);
    return code;
  } finally {
    try {
      io.flush();
    } catch { /* stdout closed */ }
    await queue?.close();
  }
}

/** Throws when the command refuses --json with these flags (`noJson` in the table). */
function refuseJson(spec: CommandSpec, args: ParsedArgs): void {
  const rule = spec.noJson;
  if (rule === undefined) return;
  const hint = { hint: seeHelp(spec.name) };
  const clash = rule.with?.find((flag) => args.flags.has(flag));
  if (clash !== undefined) {
    throw new UsageError(`--json cannot be combined with --${clash}: ${rule.reason}`, hint);
  }
  if (rule.unless !== undefined) {
    if (args.flags.has(rule.unless)) return;
    throw new UsageError(`${spec.name} --json needs --${rule.unless}: ${rule.reason}`, hint);
  }
  if (rule.with === undefined) {
    throw new UsageError(`${spec.name} does not take --json: ${rule.reason}`, hint);
  }
}

async function help(color: boolean, target: CommandSpec | string | undefined): Promise<string> {
  const { commandHelp, groupHelp, overviewHelp } = await import("./help.ts");
  const { palette } = await import("./render.ts");
  const p = palette(color);
  return target === undefined
    ? overviewHelp(p)
    : typeof target === "string"
    ? groupHelp(p, target)
    : commandHelp(p, target);
}

async function dispatch(
  argv: readonly string[],
  io: Io,
  options: MainOptions,
  opened: (queue: Queue) => void,
): Promise<number> {
  const color = io.stdoutIsTerminal && io.env("NO_COLOR") === undefined;
  const wantsHelp = (tokens: readonly string[]) =>
    tokens.includes("--help") || tokens.includes("-h");
  const { words, rest } = findCommand(argv);
  if (words.length === 0) {
    if (rest.includes("--version")) {
      io.out(rest.includes("--json") ? `{"version":"${VERSION}"}\n` : `queuectl ${VERSION}\n`);
      return EXIT.ok;
    }
    if (wantsHelp(rest)) {
      io.out(await help(color, undefined));
      return EXIT.ok;
    }
    parseArgs(rest, TOP_FLAGS, [], "");
    throw new UsageError("Missing command", { hint: "`queuectl --help` lists the commands" });
  }
  if (words[0] === "help") {
    io.out(await help(color, helpTarget(rest)));
    return EXIT.ok;
  }
  const spec = lookup(words);
  if (spec === "group") {
    if (wantsHelp(rest)) {
      io.out(await help(color, words[0]!));
      return EXIT.ok;
    }
    const subs = COMMANDS.filter((c) => c.name.startsWith(`${words[0]} `))
      .map((c) => c.name.slice(words[0]!.length + 1));
    throw new UsageError(`Missing ${words[0]} command`, {
      hint: `${words[0]} commands: ${subs.join(", ")}`,
    });
  }
  if (spec === undefined) throw unknownCommand(words);
  if (wantsHelp(rest)) {
    io.out(await help(color, spec));
    return EXIT.ok;
  }

  const flags: FlagSpec[] = [...spec.flags, ...GLOBAL_FLAGS];
  const args = parseArgs(rest, flags, spec.args, spec.name);
  if (args.flags.get("json") === true) refuseJson(spec, args);
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
        const { openQueue } = await import("../queue.ts");
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
          const { execve } = await import("../worker/exec.ts");
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
