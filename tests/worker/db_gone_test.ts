/**
 * The database file deleted or replaced (renamed over) under running workers: they notice within
 * about a second, stop claiming, hand their running job back (to the old file), say so in one
 * line and exit 6; their supervisor does not restart them into the void but exits 6 too.
 */

import assert from "node:assert/strict";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { isRunning, waitForGroup } from "../helpers/proc.ts";
import { MAIN } from "../helpers/process.ts";
import { Sandbox } from "../helpers/sandbox.ts";

const GONE = /database .*q\.db was (deleted|replaced)/;

Deno.test("worker start exits 6 when its database is deleted, killing the running job", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("sleep 30") }]);
  const pool = sb.spawn(["worker", "start", "--count", "2"]);
  const start = await sb.waitRun(id!, 1);
  const members = await waitForGroup(start.pid);
  const workers = await poll(
    () => {
      const rows = sb.workerRows();
      return rows.length === 2 && rows;
    },
    PROMPT_MS,
    "two workers",
  );

  const deletedAt = performance.now();
  for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(sb.db + suffix).catch(() => {});
  const exit = await pool.wait(PROMPT_MS, "the supervisor to exit");
  assert.equal(exit.code, 6, exit.stderr);
  assert.ok(performance.now() - deletedAt < 5000, "the workers noticed late");
  for (const w of workers) {
    assert.ok(!isRunning(w.pid), `worker ${w.pid} still runs`);
    // One line per worker says what happened.
    assert.equal(
      exit.stderr.split("\n").filter((l) => l.includes(w.id) && GONE.test(l)).length,
      1,
      exit.stderr,
    );
  }
  for (const pid of members) assert.ok(!isRunning(pid), `job process ${pid} survived`);
  assert.doesNotMatch(exit.stderr, /restarting worker \d/);
  assert.match(exit.stderr, /supervisor \d+ .*database .*q\.db was deleted/);
  // Nothing re-created the file behind the user's back.
  assert.equal(await Deno.stat(sb.db).then(() => true, () => false), false);
  await sb.assertNoLeftovers();
});

Deno.test("worker run exits 6 when its database is replaced, and the new one is usable", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  // The replacement: another queue, made and closed beforehand, with a job of its own.
  const other = `${sb.dir}/other.db`;
  const made = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "--db", other, "enqueue", "--id", "fresh", "-c", "true"],
    stdin: "null",
  }).output();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
  const [id] = await sb.enqueue([{ command: sb.job("sleep 30") }]);
  const worker = sb.spawn(["worker", "run"]);
  const start = await sb.waitRun(id!, 1);
  const members = await waitForGroup(start.pid);

  await Deno.rename(other, sb.db);
  const exit = await worker.wait(PROMPT_MS, "the worker to exit");
  assert.equal(exit.code, 6, exit.stderr);
  assert.match(exit.stderr, /database .*q\.db was replaced/);
  for (const pid of members) assert.ok(!isRunning(pid), `job process ${pid} survived`);

  // The new file is the queue now: its job runs, and no worker of the old one is listed.
  assert.equal((await sb.ok(["worker", "list"])).trim(), "No workers are running.");
  const once = await sb.run(["worker", "run", "--once"], { timeoutMs: 30_000 });
  assert.equal(once.code, 0, once.stderr);
  assert.equal(sb.state("fresh"), "completed");
  await sb.assertNoLeftovers();
});
