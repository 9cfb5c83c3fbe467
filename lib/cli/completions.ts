/**
 * Shell completion scripts for bash, zsh and fish, generated from the command table
 * (commands.ts): commands and subcommands, their flags, the values some flags take (states,
 * files, directories), setting names, shells, and schedule and queue names (read from the queue
 * when the shell asks: `queuectl schedule list --json`, `queuectl queue list --json`).
 *
 * bash gets a completion function; zsh gets the same function through zsh's own bash
 * compatibility (`bashcompinit`), so both behave alike; fish gets `complete` rules with each
 * command's and flag's help text.
 *
 * @module
 */

import type { FlagSpec } from "./args.ts";
import { GLOBAL_FLAGS } from "./args.ts";
import type { CommandSpec } from "./commands.ts";
import { COMMANDS, GROUPS } from "./commands.ts";
import { JOB_STATES } from "../job/state.ts";
import { CONFIG_KEYS } from "../config.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = typeof SHELLS[number];

/** What a flag's value or a positional argument completes to. */
type Values = { words: readonly string[] } | "files" | "dirs" | "schedules" | "queues" | null;

/** Values of a flag of a command. */
function flagValues(command: string, flag: FlagSpec): Values {
  if (flag.value === undefined) return null;
  if (flag.name === "db") return "files";
  if (flag.name === "cwd") return "dirs";
  if (flag.name === "token-file") return "files";
  if (flag.name === "queue") return "queues";
  if (flag.name === "state") {
    return { words: command === "prune" ? ["completed", "dead", "all-finished"] : JOB_STATES };
  }
  return null;
}

/** Values of a command's first positional argument. */
function argValues(command: string): Values {
  if (command === "completions") return { words: SHELLS };
  if (command === "config get" || command === "config set" || command === "config unset") {
    return { words: Object.keys(CONFIG_KEYS) };
  }
  if (/^schedule (remove|pause|resume)$/.test(command)) return "schedules";
  if (command === "pause" || command === "resume" || command === "queue set") return "queues";
  return null;
}

const visible = (): CommandSpec[] => COMMANDS.filter((c) => !c.hidden);

function topWords(): string[] {
  return [...new Set(visible().map((c) => c.name.split(" ")[0]!))];
}

function flagWords(flags: readonly FlagSpec[]): string[] {
  return flags.flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]);
}

/** A word list as a single-quoted shell word. */
function q(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** The shell pipeline that prints schedule names, one a line (nothing when it fails). */
const SCHEDULE_NAMES =
  `queuectl schedule list --json 2>/dev/null | tr ',' '\\n' | sed -n 's/.*"name":"\\([^"]*\\)".*/\\1/p'`;

/** The same for queue names (`queuectl queue list --json`). */
const QUEUE_NAMES =
  `queuectl queue list --json 2>/dev/null | tr ',' '\\n' | sed -n 's/.*"name":"\\([^"]*\\)".*/\\1/p'`;

/** The bash completion function, also used by zsh. */
function bashFunction(): string {
  const valued = new Set<string>();
  for (const flag of [...GLOBAL_FLAGS, ...COMMANDS.flatMap((c) => c.flags)]) {
    if (flag.value === undefined) continue;
    valued.add(`--${flag.name}`);
    if (flag.short) valued.add(`-${flag.short}`);
  }
  const groups = Object.keys(GROUPS);
  const compgen = (values: Values): string => {
    if (values === null) return "return 0";
    if (values === "files") return 'COMPREPLY=($(compgen -f -- "$cur")); return 0';
    if (values === "dirs") return 'COMPREPLY=($(compgen -d -- "$cur")); return 0';
    if (values === "schedules" || values === "queues") {
      const names = values === "schedules" ? SCHEDULE_NAMES : QUEUE_NAMES;
      return `COMPREPLY=($(compgen -W "$(${names})" -- "$cur")); return 0`;
    }
    return `COMPREPLY=($(compgen -W ${q(values.words.join(" "))} -- "$cur")); return 0`;
  };
  const valueCases: string[] = [];
  for (const spec of visible()) {
    for (const flag of spec.flags) {
      const values = flagValues(spec.name, flag);
      if (values === null) continue;
      const patterns = [`--${flag.name}`, ...(flag.short ? [`-${flag.short}`] : [])]
        .map((f) => `${q(`${spec.name} ${f}`)}`).join("|");
      valueCases.push(`      ${patterns}) ${compgen(values)} ;;`);
    }
  }
  for (const flag of GLOBAL_FLAGS) {
    const values = flagValues("", flag);
    if (values !== null) valueCases.push(`      *${q(` --${flag.name}`)}) ${compgen(values)} ;;`);
  }
  const commandCases: string[] = [];
  for (const group of groups) {
    const subs = visible().filter((c) => c.name.startsWith(`${group} `))
      .map((c) => c.name.slice(group.length + 1));
    commandCases.push(
      `      ${q(group)}) COMPREPLY=($(compgen -W ${q(subs.join(" "))} -- "$cur")) ;;`,
    );
  }
  for (const spec of visible()) {
    const flags = flagWords([...spec.flags, ...GLOBAL_FLAGS]).join(" ");
    const args = argValues(spec.name);
    const positional = args === null ? ":" : compgen(args).replace(/; return 0$/, "");
    commandCases.push(
      `      ${q(spec.name)})\n` +
        `        if [[ $cur == -* ]]; then\n` +
        `          COMPREPLY=($(compgen -W ${q(flags)} -- "$cur"))\n` +
        `        elif [[ $npos -eq 0 ]]; then\n` +
        `          ${positional}\n` +
        `        fi ;;`,
    );
  }
  const top = [...topWords(), ...flagWords(GLOBAL_FLAGS), "--version"].join(" ");
  return `_queuectl() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=
  (( COMP_CWORD > 0 )) && prev=\${COMP_WORDS[COMP_CWORD-1]}
  local valued=${q(` ${[...valued].sort().join(" ")} `)}
  local groups=${q(` ${groups.join(" ")} `)}
  local cmd= npos=0 skip= i w
  COMPREPLY=()
  # The command words so far (flag values skipped), and how many arguments follow them.
  for (( i = 1; i < COMP_CWORD; i++ )); do
    w=\${COMP_WORDS[i]}
    if [[ -n $skip ]]; then skip=; continue; fi
    if [[ $valued == *" $w "* ]]; then skip=1; continue; fi
    [[ $w == -* ]] && continue
    if [[ -z $cmd ]]; then cmd=$w
    elif [[ $cmd != *" "* && $groups == *" $cmd "* ]]; then cmd="$cmd $w"
    else npos=$((npos + 1))
    fi
  done
  # The value of a flag.
  if [[ $valued == *" $prev "* ]]; then
    case "$cmd $prev" in
${valueCases.join("\n")}
      *) return 0 ;;
    esac
  fi
  case "$cmd" in
      '') COMPREPLY=($(compgen -W ${q(top)} -- "$cur")) ;;
${commandCases.join("\n")}
  esac
  return 0
}
`;
}

export function bashScript(): string {
  return `# bash completion for queuectl, generated by \`queuectl completions bash\`.
# Install: queuectl completions bash > ~/.local/share/bash-completion/completions/queuectl
${bashFunction()}complete -o default -F _queuectl queuectl
`;
}

export function zshScript(): string {
  return `#compdef queuectl
# zsh completion for queuectl, generated by \`queuectl completions zsh\`: the bash completion,
# through zsh's bash compatibility. Install: queuectl completions zsh > ~/.zfunc/_queuectl, with
# fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc; or: source <(queuectl completions zsh)
autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }
autoload -U +X bashcompinit && bashcompinit
${bashFunction()}complete -o default -F _queuectl queuectl
`;
}

/** Text for a fish description: one line, quoted. */
function fishText(text: string): string {
  return q(text.replace(/\s+/g, " ").slice(0, 100));
}

export function fishScript(): string {
  const lines = [
    "# fish completion for queuectl, generated by `queuectl completions fish`.",
    "# Install: queuectl completions fish > ~/.config/fish/completions/queuectl.fish",
    "complete -c queuectl -f",
    "",
    "# The command words given so far: 'enqueue', 'worker start', … ('' before any).",
    "function __queuectl_cmd",
    "    set -l words (commandline -opc)",
    "    set -e words[1]",
    "    set -l cmd",
    "    set -l skip 0",
    `    set -l valued ${
      [
        ...new Set(
          [...GLOBAL_FLAGS, ...COMMANDS.flatMap((c) => c.flags)]
            .filter((f) => f.value !== undefined)
            .flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]),
        ),
      ].join(" ")
    }`,
    `    set -l groups ${Object.keys(GROUPS).join(" ")}`,
    "    for w in $words",
    "        if test $skip = 1",
    "            set skip 0",
    "            continue",
    "        end",
    "        if contains -- $w $valued",
    "            set skip 1",
    "            continue",
    "        end",
    "        string match -q -- '-*' $w; and continue",
    "        if test (count $cmd) -eq 0",
    "            set cmd $w",
    "        else if test (count $cmd) -eq 1; and contains -- $cmd[1] $groups",
    "            set cmd $cmd $w",
    "        else",
    "            break",
    "        end",
    "    end",
    '    echo "$cmd"',
    "end",
    "",
    "function __queuectl_is",
    "    set -l cmd (__queuectl_cmd)",
    '    test "$cmd" = "$argv"',
    "end",
    "",
  ];
  const cond = (command: string) => `'__queuectl_is ${command}'`;
  for (const name of topWords()) {
    const spec = visible().find((c) => c.name === name);
    const summary = spec?.summary ?? GROUPS[name] ?? "";
    lines.push(`complete -c queuectl -n ${cond("")} -a ${q(name)} -d ${fishText(summary)}`);
  }
  for (const group of Object.keys(GROUPS)) {
    for (const spec of visible().filter((c) => c.name.startsWith(`${group} `))) {
      lines.push(
        `complete -c queuectl -n ${cond(group)} -a ${q(spec.name.slice(group.length + 1))} ` +
          `-d ${fishText(spec.summary)}`,
      );
    }
  }
  const flagLine = (condition: string, command: string, flag: FlagSpec) => {
    const values = flagValues(command, flag);
    let value = "";
    if (flag.value !== undefined) {
      value = values === "files"
        ? " -r -F"
        : values === "dirs"
        ? " -r -a '(__fish_complete_directories)'"
        : values === "queues"
        ? ` -x -a "(${QUEUE_NAMES.replaceAll('"', '\\"')})"`
        : values !== null && typeof values === "object"
        ? ` -x -a ${q(values.words.join(" "))}`
        : " -x";
    }
    return `complete -c queuectl -n ${condition} -l ${flag.name}` +
      `${flag.short ? ` -s ${flag.short}` : ""}${value} -d ${fishText(flag.help)}`;
  };
  for (const flag of GLOBAL_FLAGS) lines.push(flagLine("'true'", "", flag));
  lines.push("complete -c queuectl -n " + cond("") + " -l version -d 'print the version'");
  for (const spec of visible()) {
    for (const flag of spec.flags) lines.push(flagLine(cond(spec.name), spec.name, flag));
    const args = argValues(spec.name);
    if (args === "schedules" || args === "queues") {
      const names = args === "schedules" ? SCHEDULE_NAMES : QUEUE_NAMES;
      lines.push(
        `complete -c queuectl -n ${cond(spec.name)} -a "(${names.replaceAll('"', '\\"')})"`,
      );
    } else if (args !== null && typeof args === "object") {
      lines.push(`complete -c queuectl -n ${cond(spec.name)} -a ${q(args.words.join(" "))}`);
    }
  }
  return lines.join("\n") + "\n";
}

export function completionScript(shell: Shell): string {
  return shell === "bash" ? bashScript() : shell === "zsh" ? zshScript() : fishScript();
}
