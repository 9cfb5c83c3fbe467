/**
 * `wait` in process: what it prints, and the notice on a terminal when no worker runs. (Waiting
 * on real workers is in tests/worker/.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { main } from "../../lib/cli/main.ts";
import { MemoryIo } from "../../lib/cli/io.ts";
import { anyWorkerAlive } from "../../lib/cli/commands/wait.ts";
import { Queue } from "../../lib/queue.ts";
import { cliFixture } from "../helpers/cli_fixture.ts";
import type { CliFixture } from "../helpers/cli_fixture.ts";
import { finishAttempt, makeJob, makeWorker } from "../helpers/factory.ts";
import { poll } from "../helpers/poll.ts";

const NOTICE = "queuectl: note: no worker is running for this queue; start one with " +
  "`queuectl worker start --db ";

/** Starts `wait ...args` on a terminal; returns its io and the running command. */
function startWait(q: CliFixture, args: string[]) {
  // Standard error is a terminal, as when a person runs `wait`.
  const io = new MemoryIo({ cwd: q.dir, stderrIsTerminal: true });
  const done = main(["--db", q.db, "wait", ...args], io, { clock: q.clock });
  return { io, done };
}

Deno.test("wait says so on a terminal when no worker runs for the queue", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  // A worker that died without deregistering does not count.
  await makeWorker(store, q.clock, { id: "w-dead", alive: false });
  const job = await makeJob(store, q.clock, "processing", { id: "j1" });
  const { io, done } = startWait(q, ["j1"]);
  await poll(() => io.stderr.includes("waiting:"), 5000, "the progress line");
  assert.ok(!io.stderr.includes("no worker"), "not before a few seconds have passed");
  q.clock.advance(4000);
  await poll(() => io.stderr.includes(NOTICE), 5000, "the notice", { describe: () => io.stderr });
  await finishAttempt(store, q.clock, job, { kind: "exited", code: 0 });
  assert.equal(await done, 0);
  assert.equal(io.stdout, "j1 completed\n");
  const notice = io.stderr.split(/[\r\n]/).filter((l) => l.includes("no worker"));
  assert.deepEqual(notice, [
    `\x1b[2K${NOTICE}${q.db}\``,
  ], "once, on a line of its own");
});

Deno.test("wait says nothing about workers when one is alive, or off a terminal", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await makeJob(store, q.clock, "pending", { id: "j1" });
  // This very process, registered as a worker with a fresh heartbeat.
  await makeWorker(store, q.clock, { id: "w-alive", alive: true });
  const { io, done } = startWait(q, ["j1", "--timeout", "1s"]);
  await poll(() => io.stderr.includes("waiting:"), 5000, "the progress line");
  q.clock.advance(4000);
  assert.equal(await done, 124);
  assert.ok(!io.stderr.includes("no worker"), io.stderr);
  // Piped: nothing on stderr at all.
  const piped = new MemoryIo({ cwd: q.dir });
  const code = main(["--db", q.db, "wait", "j1", "--timeout", "1s"], piped, { clock: q.clock });
  q.clock.advance(4000);
  assert.equal(await code, 124);
  assert.equal(piped.stderr, "");
});

Deno.test("anyWorkerAlive() goes by the process on this host and the heartbeat's age", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  const queue = new Queue(store, { clock: q.clock });
  assert.equal(await anyWorkerAlive(queue), false, "no workers");
  await makeWorker(store, q.clock, { id: "w-gone", alive: false });
  assert.equal(await anyWorkerAlive(queue), false, "a dead pid");
  await makeWorker(store, q.clock, { id: "w-here", alive: true });
  assert.equal(await anyWorkerAlive(queue), true, "this process");
  // Without a heartbeat for long, even a live process is not working the queue.
  q.clock.advance(31_000);
  assert.equal(await anyWorkerAlive(queue), false, "a stale heartbeat");
});
