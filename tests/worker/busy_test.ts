/**
 * Lock contention as a worker sees it: brief contention is retried without a word, lasting
 * contention is logged. Real worker process, real SQLite file, the write lock held by the test.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { Sandbox } from "../helpers/sandbox.ts";

/** Longer than the worker's quiet window for contention (lib/worker/worker.ts BUSY_QUIET_MS). */
const PAST_QUIET_MS = 3500;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Holds the write lock from now until `holdMs` after job `id` falls due at `dueInMs` from now;
 * `whileHeld` runs inside the lock's transaction just before it is released.
 */
async function holdAcrossDue(
  path: string,
  id: string,
  dueInMs: number,
  holdMs: number,
  whileHeld: (db: DatabaseSync) => void,
): Promise<void> {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    db.prepare("UPDATE jobs SET run_at = ? WHERE id = ?").run(Date.now() + dueInMs, id);
    db.exec("BEGIN EXCLUSIVE");
    await delay(dueInMs + holdMs);
    whileHeld(db);
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

Deno.test("worker run: a brief busy claim long after an earlier one is not logged as lasting contention", async () => {
  await using sb = await Sandbox.create("busy");
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("true"), delay: "1h" }]);
  const worker = sb.worker();
  await sb.workerId(worker);
  const firstAt = Date.now();
  // 1. The job falls due while the lock is held: the worker's claims fail busy; then, still under
  //    the lock, the job is put off again, so the worker finds nothing due when the lock goes.
  await holdAcrossDue(sb.db, id!, 300, 700, (db) => {
    db.prepare("UPDATE jobs SET run_at = ? WHERE id = ?").run(Date.now() + 3_600_000, id!);
  });
  // 2. Long after, one more brief spell of contention as the job falls due; then it runs.
  await delay(Math.max(0, firstAt + PAST_QUIET_MS - Date.now()));
  await holdAcrossDue(sb.db, id!, 300, 700, () => {});
  await sb.waitForState(id!, "completed", PROMPT_MS);
  worker.kill("SIGTERM");
  await worker.wait(PROMPT_MS, "the worker to stop");
  const busy = worker.lines.map((l) => l.text).filter((t) => /busy|locked/i.test(t));
  assert.deepEqual(busy, [], "two brief spells of contention are not one lasting one");
});

Deno.test("worker run: contention that lasts past the quiet window is logged once", async () => {
  await using sb = await Sandbox.create("busylong");
  await sb.fastConfig();
  const [id] = await sb.enqueue([{ command: sb.job("true"), delay: "1h" }]);
  const worker = sb.worker();
  await sb.workerId(worker);
  await holdAcrossDue(sb.db, id!, 300, PAST_QUIET_MS + 500, () => {});
  await sb.waitForState(id!, "completed", PROMPT_MS);
  await poll(
    () => worker.lines.some((l) => /busy/i.test(l.text)),
    PROMPT_MS,
    "a line about the lasting contention",
    { describe: () => worker.lines.map((l) => l.text).join("\n") },
  );
  worker.kill("SIGTERM");
  await worker.wait(PROMPT_MS, "the worker to stop");
  const busy = worker.lines.filter((l) => /busy/i.test(l.text));
  assert.equal(busy.length, 1, busy.map((l) => l.text).join("\n"));
});

Deno.test("worker run: a heartbeat that meets the lock is tried again soon, not a beat later", async () => {
  await using sb = await Sandbox.create("busybeat");
  // Beats every 5 s (a sixth of the lease), each with the worker's short wait for the lock.
  await sb.config({ "lease-timeout": "30s" });
  const [id] = await sb.enqueue([{ command: sb.job("sleep 24") }]);
  const worker = sb.worker();
  await sb.waitForState(id!, "processing", PROMPT_MS);
  const beatAt = () => Number(sb.query("SELECT max(heartbeat_at) AS at FROM workers")[0]!.at);
  // The timer's beats land every 5 s from T (the second new heartbeat_at seen: the first may be
  // a write outside the timer's phase, as when the attempt starts).
  let seen = beatAt();
  for (let i = 0; i < 2; i++) {
    const last = seen;
    await poll(() => (seen = beatAt()) > last, 10_000, "a heartbeat");
  }
  const t = seen;
  // The lock is held over the next two beats' times, 1.3 s each: a worker that waits a whole beat
  // after a miss misses twice in a row (5 s of failing, logged as lasting); one that tries again
  // soon gets through after the first hold.
  const db = new DatabaseSync(sb.db, { timeout: 5000 });
  try {
    for (const from of [4500, 9600]) {
      await delay(Math.max(0, t + from - Date.now()));
      db.exec("BEGIN EXCLUSIVE");
      await delay(1300);
      db.exec("COMMIT");
    }
  } finally {
    db.close();
  }
  await sb.waitForState(id!, "completed", 30_000);
  worker.kill("SIGTERM");
  await worker.wait(PROMPT_MS, "the worker to stop");
  const busy = worker.lines.map((l) => l.text).filter((t) => /busy|locked/i.test(t));
  assert.deepEqual(busy, [], "two brief holds are not lasting contention");
});
