/**
 * A supervisor and its workers whose output goes away (the reader of their pipe exits: `| head`,
 * a crashed log collector) keep working without it: a closed stderr (EPIPE) kills no process and
 * strands no job.
 */

import assert from "node:assert/strict";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning } from "../helpers/proc.ts";
import { MAIN, shellQuote } from "../helpers/process.ts";
import { Sandbox, type WorkerJson } from "../helpers/sandbox.ts";

Deno.test("worker start piped into `head -2` keeps running its workers and jobs after head exits", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const ids = await sb.enqueue([
    { command: sb.job("sleep 1") },
    { command: sb.job("sleep 1") },
  ]);
  const rc = `${sb.dir}/rc`;
  const queuectl = [Deno.execPath(), "run", "-A", "--quiet", MAIN, "--db", sb.db]
    .map(shellQuote).join(" ");
  // The pipeline: once head has its two lines, every later write hits a closed pipe.
  const pipeline = new Deno.Command("sh", {
    args: [
      "-c",
      `(${queuectl} worker start --count 2 2>&1; echo $? >${shellQuote(rc)}) | head -2`,
    ],
    cwd: sb.dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = pipeline.output();
  try {
    for (const id of ids) await sb.waitForState(id, "completed", 20_000);
    // head is gone; the supervisor and both workers are not.
    const workers = await poll(
      async () => {
        const list = await sb.json<WorkerJson[]>(["worker", "list"]);
        return list.length === 2 && list.every((w) => w.state === "idle") && list;
      },
      PROMPT_MS,
      "two idle workers",
    );
    const supervisor = sb.workerRows()[0]!.supervisor_pid!;
    assert.ok(isRunning(supervisor), "the supervisor died");
    assert.equal(await Deno.stat(rc).then(() => true, () => false), false, "it exited");
    // They still take new work, with nobody reading their output.
    const [later] = await sb.enqueue([{ command: "echo later" }]);
    await sb.waitForState(later!, "completed");

    const stop = await sb.ok(["worker", "stop"], { timeoutMs: 30_000 });
    assert.match(stop, /^Stopped 2 workers/m);
    for (const w of workers) assert.ok(!isRunning(w.pid), `worker ${w.pid} still runs`);
    await poll(() => Deno.readTextFile(rc).catch(() => false), PROMPT_MS, "the exit status");
    assert.equal((await Deno.readTextFile(rc)).trim(), "0", "the supervisor's exit status");
    const head = new TextDecoder().decode((await output).stdout).split("\n");
    assert.match(head[0]!, /supervisor \d+ starting 2 workers/);
  } finally {
    try {
      pipeline.kill("SIGKILL");
    } catch { /* exited */ }
    await output.catch(() => {});
  }
  assert.equal(sb.query("SELECT count(*) AS n FROM jobs WHERE state = 'processing'")[0]!.n, 0);
  await sb.assertNoLeftovers();
});

Deno.test("worker run whose stderr is closed finishes and records its jobs", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const ids = await sb.enqueue([{ command: "echo one" }, { command: "sleep 0.5; echo two" }]);
  const queuectl = [Deno.execPath(), "run", "-A", "--quiet", MAIN, "--db", sb.db]
    .map(shellQuote).join(" ");
  const rc = `${sb.dir}/rc`;
  // stderr is a pipe whose reader exits at once.
  const child = new Deno.Command("sh", {
    args: ["-c", `(${queuectl} worker run --once 2>&1; echo $? >${shellQuote(rc)}) | true`],
    cwd: sb.dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await child.status;
  assert.equal((await Deno.readTextFile(rc)).trim(), "0", "the worker's exit status");
  for (const id of ids) assert.equal(sb.state(id), "completed");
  assert.deepEqual(sb.workerRows(), [], "the worker deregistered");
  await sb.assertNoLeftovers();
});
