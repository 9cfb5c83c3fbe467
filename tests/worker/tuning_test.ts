/**
 * A `worker run` started on its own, as systemd or a shell would, re-executes itself with the
 * worker's memory settings (lib/worker/exec.ts): same pid, same command line, tuned environment,
 * and jobs still see the environment the user set.
 *
 * Regression: CI saw such a worker grow from 59 to 122 MB over 10,000 jobs, because only workers
 * started by `worker start` had the settings.
 */

import assert from "node:assert/strict";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { Sandbox } from "../helpers/sandbox.ts";
import { WORKER_V8_FLAGS } from "../../lib/worker/tuning.ts";

/** The environment of a live process, from /proc. */
function environOf(pid: number): Map<string, string> {
  const text = Deno.readTextFileSync(`/proc/${pid}/environ`);
  return new Map(
    text.split("\0").filter((entry) => entry.includes("=")).map((entry) => {
      const at = entry.indexOf("=");
      return [entry.slice(0, at), entry.slice(at + 1)] as [string, string];
    }),
  );
}

Deno.test("worker run on its own re-executes itself tuned, keeping its pid and the jobs' environment", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const worker = sb.spawn(["worker", "run"], { env: { DENO_V8_FLAGS: "--stack-size=900" } });
  const seen = `${sb.dir}/seen`;
  await sb.enqueue([{
    command: `printf '%s|%s|%s' "$DENO_V8_FLAGS" "\${MALLOC_ARENA_MAX-unset}" "$PPID" > '${seen}'`,
  }]);
  const text = await poll(
    () => {
      try {
        const text = Deno.readTextFileSync(seen);
        return text.split("|").length === 3 ? text : false;
      } catch {
        return false;
      }
    },
    PROMPT_MS,
    "the job's report",
  );
  const [flags, arena, parent] = text.split("|");
  assert.equal(flags, "--stack-size=900", "the job sees the user's V8 flags, not the worker's");
  assert.equal(arena, "unset", "the job does not see the worker's malloc setting");
  assert.equal(Number(parent), worker.pid, "the job's parent is the process that was started");

  const env = environOf(worker.pid);
  assert.equal(env.get("DENO_V8_FLAGS"), `--stack-size=900,${WORKER_V8_FLAGS}`);
  assert.equal(env.get("MALLOC_ARENA_MAX"), "2");
  const cmdline = Deno.readTextFileSync(`/proc/${worker.pid}/cmdline`).split("\0");
  assert.deepEqual(cmdline.slice(-5, -1), ["--db", sb.db, "worker", "run"]);
  assert.doesNotMatch(worker.stderr, /without memory tuning/);

  worker.kill("SIGTERM");
  const done = await worker.wait(PROMPT_MS);
  assert.equal(done.code, 0, done.stderr);
  await sb.assertNoLeftovers();
});

Deno.test("worker run --once does not re-execute itself: it leaves soon", async () => {
  await using sb = await Sandbox.create();
  const seen = `${sb.dir}/seen`;
  await sb.enqueue([{
    command: `tr '\\0' '\\n' < /proc/$PPID/environ | grep -c '^QUEUECTL_WORKER_TUNED=' > '${seen}'`,
  }]);
  const worker = sb.spawn(["worker", "run", "--once"]);
  const done = await worker.wait(PROMPT_MS * 3);
  assert.equal(done.code, 0, done.stderr);
  assert.equal(Deno.readTextFileSync(seen).trim(), "0");
});
