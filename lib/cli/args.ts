/**
 * A small, strict argument parser: unknown flags, missing values, repeated flags (unless marked
 * repeatable) and extra arguments are errors. The same specs generate `--help`.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

export interface FlagSpec {
  /** Long name without dashes: `priority`. */
  name: string;
  /** One letter, without the dash. */
  short?: string;
  /** Placeholder of the value (`N`, `D`); absent for a boolean flag. */
  value?: string;
  help: string;
  /** May be given more than once (`--env A=1 --env B=2`); read with `flagList`. */
  repeatable?: boolean;
  /** Other names users type for it (`cmd` for `command`), for "did you mean" only. */
  aliases?: readonly string[];
}

export interface ArgSpec {
  name: string;
  help: string;
  optional?: boolean;
  /** Takes every remaining argument (at least one unless optional). */
  variadic?: boolean;
}

export interface ParsedArgs {
  positionals: string[];
  /** Flag name → value (`true` for booleans, every value in order for repeatable flags). */
  flags: Map<string, string | true | string[]>;
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: "db",
    value: "PATH|URL",
    help: "database file or postgres:// URL (default: $QUEUECTL_DB, else XDG data dir)",
  },
  { name: "json", help: "print JSON on stdout" },
  { name: "debug", help: "show stack traces of errors" },
  { name: "help", short: "h", help: "show help" },
];

/** The hint of a usage error: where the help of `commandName` is ("" for queuectl itself). */
export function seeHelp(commandName: string): string {
  return commandName === "" ? "see `queuectl --help`" : `see \`queuectl ${commandName} --help\``;
}

function findFlag(specs: readonly FlagSpec[], token: string): FlagSpec | undefined {
  if (token.startsWith("--")) return specs.find((s) => s.name === token.slice(2));
  return specs.find((s) => s.short !== undefined && s.short === token.slice(1));
}

/**
 * Parses `args` against `flags` and `positional` specs. `--name=value`, `--name value`, `-x value`
 * and `--` (everything after is positional) are understood; `-` alone is a positional.
 * `commandName` names the command in messages; "" is queuectl itself (flags before a command).
 */
export function parseArgs(
  args: readonly string[],
  flags: readonly FlagSpec[],
  positional: readonly ArgSpec[],
  commandName: string,
): ParsedArgs {
  const result: ParsedArgs = { positionals: [], flags: new Map() };
  let onlyPositionals = false;
  for (let i = 0; i < args.length; i++) {
    const token = args[i]!;
    // A negative number is a value (`config set x -5`), for the command to judge, not a flag.
    if (onlyPositionals || token === "-" || !token.startsWith("-") || /^-\d/.test(token)) {
      result.positionals.push(token);
      continue;
    }
    if (token === "--") {
      onlyPositionals = true;
      continue;
    }
    const eq = token.startsWith("--") ? token.indexOf("=") : -1;
    const name = eq === -1 ? token : token.slice(0, eq);
    const spec = findFlag(flags, name);
    if (!spec) {
      const aliases: Record<string, string> = {};
      for (const f of flags) for (const a of f.aliases ?? []) aliases[`--${a}`] = `--${f.name}`;
      throw new UsageError(`Unknown flag "${name}"${commandName ? ` for ${commandName}` : ""}`, {
        hint: seeHelp(commandName),
        // Spelling says nothing about a one-letter flag; what it stands for may.
        typo: {
          input: name,
          candidates: name.startsWith("--") ? flags.map((f) => `--${f.name}`) : [],
          aliases,
        },
      });
    }
    if (result.flags.has(spec.name) && !spec.repeatable) {
      throw new UsageError(`Flag --${spec.name} is given twice`, { hint: "give it once" });
    }
    if (spec.value === undefined) {
      if (eq !== -1) throw new UsageError(`Flag --${spec.name} takes no value`);
      result.flags.set(spec.name, true);
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = token.slice(eq + 1);
    else if (i + 1 < args.length) value = args[++i];
    if (value === undefined) {
      throw new UsageError(`Flag --${spec.name} needs a value (${spec.value})`, {
        hint: `e.g. --${spec.name} ${spec.value}`,
      });
    }
    if (spec.repeatable) {
      const list = result.flags.get(spec.name);
      if (Array.isArray(list)) list.push(value);
      else result.flags.set(spec.name, [value]);
    } else {
      result.flags.set(spec.name, value);
    }
  }

  const required = positional.filter((p) => !p.optional).length;
  const variadic = positional.some((p) => p.variadic);
  if (result.positionals.length < required) {
    const missing = positional[result.positionals.length]!;
    throw new UsageError(`Missing ${missing.name} for ${commandName}`, {
      hint: seeHelp(commandName),
    });
  }
  if (!variadic && result.positionals.length > positional.length) {
    const extra = result.positionals[positional.length]!;
    throw new UsageError(`Unexpected argument "${extra}" for ${commandName}`, {
      hint: extra.startsWith("{") || /\s/.test(extra)
        ? "quote the whole JSON or command as one argument"
        : seeHelp(commandName),
    });
  }
  return result;
}

/** A flag's string value, or undefined when absent. */
export function flagString(parsed: ParsedArgs, name: string): string | undefined {
  const value = parsed.flags.get(name);
  return typeof value === "string" ? value : undefined;
}

/** Every value of a repeatable flag, in the order given (empty when absent). */
export function flagList(parsed: ParsedArgs, name: string): string[] {
  const value = parsed.flags.get(name);
  return Array.isArray(value) ? value : typeof value === "string" ? [value] : [];
}

/** Whether a boolean flag is present. */
export function flagBool(parsed: ParsedArgs, name: string): boolean {
  return parsed.flags.get(name) === true;
}

/** An integer flag within bounds, or a usage error naming the flag. */
export function flagInt(
  parsed: ParsedArgs,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const text = flagString(parsed, name);
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(
      `Invalid value "${text}" for --${name}: must be a whole number from ${min} to ${max}`,
    );
  }
  return Number(text);
}
