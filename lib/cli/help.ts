/**
 * Help text, generated from the command table.
 *
 * @module
 */

import { GLOBAL_FLAGS } from "./args.ts";
import type { FlagSpec } from "./args.ts";
import type { CommandSpec } from "./commands.ts";
import { COMMANDS, GROUPS, VERSION } from "./commands.ts";
import type { Palette } from "./render.ts";

function flagLines(flags: readonly FlagSpec[]): string {
  const labels = flags.map((f) =>
    `${f.short ? `-${f.short}, ` : "    "}--${f.name}${f.value ? ` ${f.value}` : ""}`
  );
  const width = Math.max(...labels.map((l) => l.length));
  return flags.map((f, i) => `  ${labels[i]!.padEnd(width)}  ${f.help}\n`).join("");
}

function usage(spec: CommandSpec): string {
  const args = spec.args.map((a) => {
    const name = a.variadic ? `${a.name}...` : a.name;
    return a.optional ? `[${name}]` : name;
  });
  return ["queuectl", spec.name, "[flags]", ...args].join(" ");
}

/** The overview: every command with its summary. */
export function overviewHelp(p: Palette): string {
  const visible = COMMANDS.filter((c) => !c.hidden);
  const width = Math.max(...visible.map((c) => c.name.length));
  return `queuectl ${VERSION}: a background job queue in one command\n\n` +
    `${p.bold("Usage:")} queuectl COMMAND [flags] [args]\n\n` +
    `${p.bold("Commands:")}\n` +
    visible.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}\n`).join("") +
    `\n${p.bold("Global flags:")}\n` + flagLines(GLOBAL_FLAGS) +
    `\nRun \`queuectl COMMAND --help\` for a command's flags and examples.\n` +
    `Exit codes: 0 ok, 1 internal error, 2 usage or invalid input, 3 conflict, 4 not found,\n` +
    `5 database busy, 6 database unusable, 7 storage full.\n`;
}

/** Help of one group: its subcommands. */
export function groupHelp(p: Palette, group: string): string {
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `) && !c.hidden);
  const width = Math.max(...subs.map((c) => c.name.length));
  return `queuectl ${group}: ${GROUPS[group]}\n\n${p.bold("Commands:")}\n` +
    subs.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}\n`).join("");
}

/** Help of one command: usage, arguments, flags, details, examples. */
export function commandHelp(p: Palette, spec: CommandSpec): string {
  let text = `queuectl ${spec.name}: ${spec.summary}\n\n${p.bold("Usage:")} ${usage(spec)}\n`;
  if (spec.args.length) {
    const width = Math.max(...spec.args.map((a) => a.name.length));
    text += `\n${p.bold("Arguments:")}\n` +
      spec.args.map((a) => `  ${a.name.padEnd(width)}  ${a.help}\n`).join("");
  }
  if (spec.flags.length) text += `\n${p.bold("Flags:")}\n${flagLines(spec.flags)}`;
  text += `\n${p.bold("Global flags:")}\n${flagLines(GLOBAL_FLAGS)}`;
  if (spec.details) text += `\n${spec.details}\n`;
  if (spec.examples?.length) {
    text += `\n${p.bold("Examples:")}\n` + spec.examples.map((e) => `  ${e}\n`).join("");
  }
  return text;
}
