/**
 * `queuectl completions bash|zsh|fish`: each script parses in its real shell, registers itself,
 * and completes what the command table holds (bash: the function run as bash runs it; fish: its
 * own `complete -C`). A shell that is not installed skips its test, saying so in its name.
 */

import assert from "node:assert/strict";
import { runCli } from "../helpers/cli.ts";
import { COMMANDS, GROUPS } from "../../lib/cli/commands.ts";
import { tempDir } from "../helpers/temp.ts";

function has(program: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${program}`).isFile) return true;
    } catch { /* not there */ }
  }
  return false;
}

async function script(shell: string): Promise<string> {
  const result = await runCli(["completions", shell]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  return result.stdout;
}

const SHELL_TESTS = [["bash", "-n"], ["zsh", "-n"], ["fish", "--no-execute"]] as const;
for (const [shell, check] of SHELL_TESTS) {
  const missing = !has(shell);
  Deno.test({
    name: `completions ${shell} parses in ${shell}${missing ? ` (skipped: no ${shell})` : ""}`,
    ignore: missing,
    async fn() {
      await using dir = await tempDir();
      const file = `${dir.path}/queuectl.${shell}`;
      await Deno.writeTextFile(file, await script(shell));
      const result = await runProcess(shell, [check, file]);
      assert.equal(result.code, 0, result.stderr);
    },
  });
}

/** Runs a program to its end; its exit code and output. */
async function runProcess(
  program: string,
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(program, {
    args: [...args],
    stdin: "null",
    ...(options.env ? { env: options.env } : {}),
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Runs the bash completion for the words typed so far (the last one being completed). */
async function bashComplete(file: string, words: string[], path: string): Promise<string[]> {
  const quoted = words.map((w) => `'${w}'`).join(" ");
  const program = `source '${file}'
COMP_WORDS=(${quoted}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=()
_queuectl
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = await runProcess("bash", ["-c", program], { env: { PATH: path } });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.split("\n").filter((line) => line !== "");
}

Deno.test({
  name: `completions bash registers with complete and completes from the command table${
    has("bash") ? "" : " (skipped: no bash)"
  }`,
  ignore: !has("bash"),
  async fn() {
    await using dir = await tempDir();
    const file = `${dir.path}/queuectl.bash`;
    await Deno.writeTextFile(file, await script("bash"));
    // A stand-in queuectl on PATH answers `schedule list --json` as a queue with two schedules.
    await Deno.mkdir(`${dir.path}/bin`);
    await Deno.writeTextFile(
      `${dir.path}/bin/queuectl`,
      `#!/bin/sh\nif [ "$1" = queue ]; then\n` +
        `echo '{"queues":[{"name":"default","paused":false},{"name":"mail","paused":true}]}'\n` +
        `else echo '[{"name":"backup","cron":"30 2 * * *"},{"name":"ping","cron":null}]'; fi\n`,
    );
    await Deno.chmod(`${dir.path}/bin/queuectl`, 0o755);
    const path = `${dir.path}/bin:${Deno.env.get("PATH")}`;
    const registered = await runProcess("bash", ["-c", `source '${file}'; complete -p queuectl`]);
    assert.equal(registered.stdout.trim(), "complete -o default -F _queuectl queuectl");

    const top = [...new Set(COMMANDS.filter((c) => !c.hidden).map((c) => c.name.split(" ")[0]))];
    const first = await bashComplete(file, ["queuectl", ""], path);
    for (const name of top) assert.ok(first.includes(name!), `${name} in ${first}`);
    assert.ok(first.includes("schedule") && first.includes("completions"));
    for (const group of Object.keys(GROUPS)) {
      const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `))
        .map((c) => c.name.slice(group.length + 1));
      assert.deepEqual(await bashComplete(file, ["queuectl", group, ""], path), subs, group);
    }
    assert.deepEqual(await bashComplete(file, ["queuectl", "sch"], path), ["schedule"]);
    assert.deepEqual(
      await bashComplete(file, ["queuectl", "schedule", "add", "x", "--c"], path),
      ["--cron", "--command", "--cwd"],
    );
    assert.deepEqual(
      await bashComplete(file, ["queuectl", "--db", "q.db", "list", "--state", ""], path),
      ["pending", "processing", "completed", "failed", "dead", "cancelled"],
    );
    assert.deepEqual(
      await bashComplete(file, ["queuectl", "prune", "--state", "d"], path),
      ["dead"],
    );
    assert.deepEqual(await bashComplete(file, ["queuectl", "completions", ""], path), [
      "bash",
      "zsh",
      "fish",
    ]);
    assert.deepEqual(
      await bashComplete(file, ["queuectl", "schedule", "pause", ""], path),
      ["backup", "ping"],
    );
    assert.deepEqual(await bashComplete(file, ["queuectl", "pause", ""], path), [
      "default",
      "mail",
    ]);
    assert.deepEqual(
      await bashComplete(file, ["queuectl", "enqueue", "-c", "x", "--queue", "m"], path),
      ["mail"],
    );
    assert.ok((await bashComplete(file, ["queuectl", "config", "set", "max-"], path))
      .includes("max-retries"));
    // After the argument, nothing more is offered.
    assert.deepEqual(
      await bashComplete(file, ["queuectl", "schedule", "pause", "ping", ""], path),
      [],
    );
  },
});

Deno.test({
  name: `completions zsh registers through bashcompinit${has("zsh") ? "" : " (skipped: no zsh)"}`,
  ignore: !has("zsh"),
  async fn() {
    await using dir = await tempDir();
    const file = `${dir.path}/_queuectl`;
    await Deno.writeTextFile(file, await script("zsh"));
    const result = await runProcess("zsh", [
      "-f",
      "-c",
      `source '${file}' && print -r -- "\${_comps[queuectl]}"`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "_bash_complete -o default -F _queuectl");
  },
});

Deno.test({
  name: `completions fish completes commands and flags${has("fish") ? "" : " (skipped: no fish)"}`,
  ignore: !has("fish"),
  async fn() {
    await using dir = await tempDir();
    const file = `${dir.path}/queuectl.fish`;
    await Deno.writeTextFile(file, await script("fish"));
    const complete = async (line: string) => {
      const result = await runProcess("fish", [
        "--no-config",
        "-c",
        `source '${file}'; complete -C '${line}'`,
      ]);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.split("\n").filter((l) => l !== "").map((l) => l.split("\t")[0]);
    };
    assert.deepEqual(await complete("queuectl sch"), ["schedule"]);
    assert.deepEqual(await complete("queuectl schedule "), [
      "add",
      "list",
      "pause",
      "remove",
      "resume",
    ]);
    assert.deepEqual(await complete("queuectl prune --state "), [
      "all-finished",
      "completed",
      "dead",
    ]);
    const flags = await complete("queuectl worker start --c");
    assert.ok(flags.includes("--count") && flags.includes("--concurrency"), String(flags));
  },
});

Deno.test("completions refuses an unknown shell, exit 2", async () => {
  const result = await runCli(["completions", "tcsh"]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^queuectl: Unknown shell "tcsh" \(completions are made for bash/);
});
