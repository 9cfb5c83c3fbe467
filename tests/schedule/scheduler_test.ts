/**
 * The scheduler on a fake clock, on a real SQLite store: cron schedules across daylight-saving
 * changes (Europe/Berlin: clocks forward on 29 March 2026 at 02:00 CET, back on 25 October 2026
 * at 03:00 CEST), what happens after downtime, and a template that no longer validates.
 */

import assert from "node:assert/strict";
import { FakeClock } from "../../lib/clock.ts";
import type { ScheduleSpec } from "../../lib/schedule/spec.ts";
import { nextFireAfter } from "../../lib/schedule/spec.ts";
import type { Store } from "../../lib/store/store.ts";
import { Scheduler } from "../../lib/worker/scheduler.ts";
import { openTestStore, tempDir } from "../helpers/temp.ts";

async function fixture(start: number) {
  const dir = await tempDir();
  const clock = new FakeClock(start);
  const store = await openTestStore(dir.db, clock);
  const log: string[] = [];
  const scheduler = new Scheduler({
    store,
    log: (line) => log.push(line),
    defaultMaxRetries: () => 3,
    monotonic: () => clock.monotonic(),
  });
  return {
    clock,
    store,
    scheduler,
    log,
    async [Symbol.asyncDispose]() {
      await store.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

async function add(store: Store, spec: ScheduleSpec, name = "s", template?: string) {
  const now = await store.now();
  await store.scheduleAdd({
    schedule: {
      name,
      spec,
      template: template ?? '{"command":"true","cwd":"/"}',
      anchor: now,
      nextAt: (await nextFireAfter(spec, now, now))!,
    },
  });
}

/** Fire times of the jobs enqueued so far, as ISO strings, in enqueue order. */
async function fired(store: Store): Promise<string[]> {
  const { jobs } = await store.jobList({ limit: 1000 });
  return jobs.map((job) => job.env.QUEUECTL_SCHEDULED_AT!);
}

/** Lets the scheduler run `count` occurrences, moving the clock to each fire time. */
async function drive(f: { clock: FakeClock; scheduler: Scheduler }, count: number) {
  for (let i = 0; i < count; i++) {
    const wait = await f.scheduler.pass();
    assert.ok(wait !== null && wait > 0, `occurrence ${i}: nothing scheduled (${wait})`);
    f.clock.advance(wait);
  }
  await f.scheduler.pass();
}

const BERLIN = "Europe/Berlin";

Deno.test("cron 30 2 * * * in Europe/Berlin: the skipped 02:30 fires at 03:00, the doubled one once", async () => {
  await using spring = await fixture(Date.UTC(2026, 2, 27, 12));
  await add(spring.store, { kind: "cron", cron: "30 2 * * *", timeZone: BERLIN });
  await drive(spring, 3);
  assert.deepEqual(await fired(spring.store), [
    "2026-03-28T01:30:00.000Z", // 02:30 CET
    "2026-03-29T01:00:00.000Z", // 02:30 does not exist: 03:00 CEST, the first time after the gap
    "2026-03-30T00:30:00.000Z", // 02:30 CEST
  ]);

  await using autumn = await fixture(Date.UTC(2026, 9, 23, 12));
  await add(autumn.store, { kind: "cron", cron: "30 2 * * *", timeZone: BERLIN });
  await drive(autumn, 3);
  assert.deepEqual(await fired(autumn.store), [
    "2026-10-24T00:30:00.000Z", // 02:30 CEST
    "2026-10-25T00:30:00.000Z", // 02:30 happens twice: once, the first (CEST)
    "2026-10-26T01:30:00.000Z", // 02:30 CET
  ]);
});

Deno.test("cron */30 and 0 * in Europe/Berlin follow real time through the DST changes", async () => {
  await using autumn = await fixture(Date.UTC(2026, 9, 24, 23, 50));
  await add(autumn.store, { kind: "cron", cron: "*/30 * * * *", timeZone: BERLIN });
  await drive(autumn, 5);
  assert.deepEqual(await fired(autumn.store), [
    "2026-10-25T00:00:00.000Z", // 02:00 CEST
    "2026-10-25T00:30:00.000Z", // 02:30 CEST
    "2026-10-25T01:00:00.000Z", // 02:00 CET: the repeated hour runs again
    "2026-10-25T01:30:00.000Z", // 02:30 CET
    "2026-10-25T02:00:00.000Z", // 03:00 CET
  ]);

  await using spring = await fixture(Date.UTC(2026, 2, 28, 23, 30));
  await add(spring.store, { kind: "cron", cron: "0 * * * *", timeZone: BERLIN });
  await drive(spring, 3);
  assert.deepEqual(await fired(spring.store), [
    "2026-03-29T00:00:00.000Z", // 01:00 CET
    "2026-03-29T01:00:00.000Z", // 03:00 CEST: 02:00 does not exist
    "2026-03-29T02:00:00.000Z", // 04:00 CEST
  ]);
});

Deno.test("after downtime a schedule fires once for what it missed, then keeps its pace", async () => {
  const start = Date.UTC(2026, 0, 1);
  await using f = await fixture(start);
  await add(f.store, { kind: "every", everyMs: 60_000 });
  await add(f.store, { kind: "cron", cron: "*/5 * * * *", timeZone: "UTC" }, "cron");
  // No worker ran for an hour and a half.
  f.clock.advance(90 * 60_000 + 20_000);
  const wait = await f.scheduler.pass();
  assert.deepEqual((await fired(f.store)).sort(), [
    "2026-01-01T00:01:00.000Z",
    "2026-01-01T00:05:00.000Z",
  ]);
  // The next fire times are the first ones after now, on the schedules' own pace.
  assert.equal((await f.store.scheduleGet({ name: "s" }))!.nextAt, start + 91 * 60_000);
  assert.equal((await f.store.scheduleGet({ name: "cron" }))!.nextAt, start + 95 * 60_000);
  assert.equal(wait, 40_000);
  assert.match(
    f.log.join("\n"),
    /schedule s: enqueued job \d+ for .*\(90 occurrences came while no worker ran; enqueued once\)/,
  );
  // Nothing more until then.
  f.clock.advance(39_000);
  await f.scheduler.pass();
  assert.equal((await fired(f.store)).length, 2);
});

Deno.test("a scheduler late by less than a minute enqueues every occurrence it missed", async () => {
  await using f = await fixture(Date.UTC(2026, 0, 1));
  await add(f.store, { kind: "every", everyMs: 10_000 });
  // A stalled machine: the first fire time passed 35 s ago.
  f.clock.advance(45_000);
  assert.equal(await f.scheduler.pass(), 5000);
  assert.deepEqual(await fired(f.store), [
    "2026-01-01T00:00:10.000Z",
    "2026-01-01T00:00:20.000Z",
    "2026-01-01T00:00:30.000Z",
    "2026-01-01T00:00:40.000Z",
  ]);
});

Deno.test("a paused schedule does not fire; resumed, it goes on from now", async () => {
  const start = Date.UTC(2026, 0, 1);
  await using f = await fixture(start);
  await add(f.store, { kind: "every", everyMs: 10_000 });
  await f.store.scheduleSetPaused({ name: "s", paused: true });
  f.clock.advance(60_000);
  assert.equal(await f.scheduler.pass(), null);
  assert.equal((await fired(f.store)).length, 0);
  const s = (await f.store.scheduleGet({ name: "s" }))!;
  await f.store.scheduleSetPaused({
    name: "s",
    paused: false,
    nextAt: await nextFireAfter(s.spec, s.anchor, await f.store.now()),
  });
  assert.equal(await f.scheduler.pass(), 10_000);
  f.clock.advance(10_000);
  await f.scheduler.pass();
  assert.deepEqual(await fired(f.store), ["2026-01-01T00:01:10.000Z"]);
});

Deno.test("a template that no longer validates is logged and tried again later, not in a loop", async () => {
  await using f = await fixture(Date.UTC(2026, 0, 1));
  // As if written by a queuectl that knew a field this one does not.
  await add(f.store, { kind: "every", everyMs: 1000 }, "s", '{"command":"true","colour":"red"}');
  f.clock.advance(1000);
  const wait = await f.scheduler.pass();
  assert.equal((await fired(f.store)).length, 0);
  assert.ok(wait !== null && wait >= 250, `waits ${wait} ms, not a busy loop`);
  assert.match(f.log[0]!, /schedule s: cannot fire: field "colour" is not a job field/);
  f.clock.advance(1000);
  await f.scheduler.pass();
  assert.equal(f.log.length, 1, "logged once");
});
