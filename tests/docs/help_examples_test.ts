/**
 * Every example in `--help` (the command table's `examples`) runs (see tests/docs/_examples.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { COMMANDS } from "../../lib/cli/commands.ts";
import { FOREGROUND, runForeground, sandbox, shell, stopWorkers } from "./_examples.ts";

Deno.test("every example in --help runs", async () => {
  const examples = COMMANDS.flatMap((spec) =>
    (spec.examples ?? []).map((command) => ({ spec: spec.name, command }))
  );
  assert.ok(examples.length >= 10, `${examples.length} examples`);
  for (const { command } of examples) assert.match(command, /\bqueuectl /);
  const box = await sandbox();
  const failures: string[] = [];
  try {
    // What the examples take for granted: a worker, jobs 42 and 43 that have run, and the
    // directories shells read completions from.
    for (
      const setup of [
        "mkdir -p ~/.local/share/bash-completion/completions ~/.zfunc ~/.config/fish/completions",
        "queuectl worker start --detach",
        `queuectl enqueue -c 'echo "the answer"; echo "a warning" >&2' --id 42 --wait`,
        "queuectl enqueue -c true --id 43 --wait",
      ]
    ) {
      const result = await shell(box, setup, 0);
      assert.equal(result.code, 0, `${setup}: ${result.output}`);
    }
    for (const { spec, command } of examples) {
      const result = FOREGROUND[command] !== undefined
        ? { code: await runForeground(box, command, FOREGROUND[command]!), output: "" }
        : await shell(box, command, 0);
      if (result.code !== 0) {
        failures.push(`${spec}: ${command}: exit ${result.code}\n    ${result.output}`);
      }
    }
  } finally {
    await stopWorkers(box);
    await box.dir[Symbol.asyncDispose]();
  }
  assert.deepEqual(failures, []);
});
