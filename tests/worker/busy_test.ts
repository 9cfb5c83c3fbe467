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
