/**
 * What the Sandbox adds to the processes it starts: the worker shape of `workerArgs`, and test
 * hooks only when asked for.
 */

import assert from "node:assert/strict";
import { hookEnv } from "./hooks.ts";
import { Sandbox } from "./sandbox.ts";

Deno.test("Sandbox worker() and workerOnce() start `worker run` with the sandbox's workerArgs", async () => {
  await using sb = await Sandbox.create("shape", { workerArgs: ["--debug"] });
  await sb.init();
  await sb.workerOnce();
  assert.deepEqual(sb.procs.at(-1)!.args.slice(-4), ["worker", "run", "--debug", "--once"]);
  const worker = sb.worker({ args: ["--once"] });
  assert.deepEqual(worker.args.slice(-4), ["worker", "run", "--debug", "--once"]);
  assert.equal((await worker.wait(30_000)).code, 0, worker.stderr);
  const plain = await Sandbox.create("plain");
  await using _ = plain;
  assert.deepEqual(plain.worker({ args: ["--once"] }).args.slice(-3), ["worker", "run", "--once"]);
});

Deno.test("Sandbox env() sets the test hooks only when asked, through hookEnv()", async () => {
  await using sb = await Sandbox.create("hooks");
  const plain = sb.env({ env: { A: "1" } });
  assert.deepEqual(Object.keys(plain).filter((k) => k.startsWith("QUEUECTL")), []);
  assert.equal(plain.A, "1");
  assert.deepEqual(sb.env({ hooks: {} }).QUEUECTL_TEST, "1");
  assert.deepEqual(
    hookEnv({ fault: "claim:after-commit", clockOffsetMs: -5, housekeepingMs: 100 }),
    {
      QUEUECTL_TEST: "1",
      QUEUECTL_FAULT: "claim:after-commit",
      QUEUECTL_TEST_CLOCK_OFFSET_MS: "-5",
      QUEUECTL_TEST_HOUSEKEEPING_MS: "100",
    },
  );
  assert.deepEqual(hookEnv({ noNotify: true }), {
    QUEUECTL_TEST: "1",
    QUEUECTL_TEST_NO_NOTIFY: "1",
  });
});
