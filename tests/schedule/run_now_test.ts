/**
 * The core's schedule calls the dashboard uses: `Queue.scheduleRunNow()` ("run now") and
 * `Queue.scheduleSetPaused()`. The store's half (`scheduleRunNow`) is in the store contract.
 */

import assert from "node:assert/strict";
import { NotFoundError, UsageError } from "../../lib/errors.ts";
import { Queue } from "../../lib/queue.ts";
import { storeFixture, T0 } from "../helpers/temp.ts";

const HOUR = 3_600_000;

async function fixture() {
  const f = await storeFixture();
  const queue = new Queue(f.store, { clock: f.clock });
  await f.store.scheduleAdd({
    schedule: {
      name: "nightly",
      spec: { kind: "every", everyMs: HOUR },
      template: '{"command":"echo nightly","cwd":"/tmp"}',
      anchor: T0,
      nextAt: T0 + HOUR,
    },
  });
  return Object.assign(f, { queue });
}

Deno.test("Queue.scheduleRunNow() enqueues the template's job with the schedule's variables and the max-retries setting", async () => {
  await using f = await fixture();
  await f.queue.configSet("max-retries", "7");
  f.clock.set(T0 + 1234);
  const { job, schedule } = await f.queue.scheduleRunNow("nightly");
  assert.equal(job.command, "echo nightly");
  assert.equal(job.cwd, "/tmp");
  assert.equal(job.maxRetries, 7);
  assert.deepEqual(job.env, {
    QUEUECTL_SCHEDULE: "nightly",
    QUEUECTL_SCHEDULED_AT: new Date(T0 + 1234).toISOString(),
  });
  assert.equal(schedule.lastJobId, job.id);
  assert.equal(schedule.nextAt, T0 + HOUR);
});

Deno.test("Queue.scheduleRunNow() refuses an unknown schedule and one whose job no longer validates", async () => {
  await using f = await fixture();
  await assert.rejects(
    f.queue.scheduleRunNow("nope"),
    (e: unknown) => e instanceof NotFoundError && e.message === 'Schedule "nope" not found',
  );
  await f.store.scheduleAdd({
    schedule: {
      name: "broken",
      spec: { kind: "every", everyMs: HOUR },
      template: '{"command":"","cwd":"/tmp"}',
      anchor: T0,
      nextAt: T0 + HOUR,
    },
  });
  await assert.rejects(
    f.queue.scheduleRunNow("broken"),
    (e: unknown) =>
      e instanceof UsageError &&
      /^Cannot run schedule "broken": its job is invalid: /.test(e.message),
  );
  assert.equal((await f.queue.status()).counts.total, 0);
});

Deno.test("Queue.scheduleSetPaused() pauses, and resumes from now without the missed occurrences", async () => {
  await using f = await fixture();
  assert.equal((await f.queue.scheduleSetPaused("nightly", true)).paused, true);
  assert.equal((await f.queue.scheduleSetPaused("nightly", true)).paused, true, "no-op");
  f.clock.set(T0 + 5 * HOUR + 1);
  const resumed = await f.queue.scheduleSetPaused("nightly", false);
  assert.equal(resumed.paused, false);
  assert.equal(resumed.nextAt, T0 + 6 * HOUR);
  await assert.rejects(f.queue.scheduleSetPaused("nope", false), NotFoundError);
});
