/**
 * The store contract, part three: schedules (recurring jobs). Adding, listing, pausing and
 * removing them, and the fire: a compare-and-swap of the next fire time in the same transaction
 * as the enqueue, so an occurrence is enqueued once however many stores race for it. Registered
 * by `storeContract` (store_contract.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConflictError } from "../../lib/errors.ts";
import type { NewJob } from "../../lib/job/job.ts";
import type { NewSchedule, Store } from "../../lib/store/store.ts";
import { T0 } from "../helpers/temp.ts";
import type { ContractTest } from "./store_contract.ts";

function schedule(overrides: Partial<NewSchedule> = {}): NewSchedule {
  return {
    name: "tick",
    spec: { kind: "every", everyMs: 1000 },
    template: '{"command":"echo tick","cwd":"/tmp"}',
    anchor: T0,
    nextAt: T0 + 1000,
    ...overrides,
  };
}

function occurrence(fireAt: number): NewJob {
  return {
    id: undefined,
    command: "echo tick",
    priority: 5,
    maxRetries: null,
    timeoutMs: null,
    cwd: "/tmp",
    env: { QUEUECTL_SCHEDULE_AT: String(fireAt) },
    runAt: null,
    delayMs: 0,
  };
}

function fire(store: Store, fireAt: number, nextAt: number | null, name = "tick") {
  return store.scheduleFire({
    name,
    fireAt,
    nextAt,
    job: occurrence(fireAt),
    defaultMaxRetries: 3,
  });
}

export function schedulesContract(test: ContractTest): void {
  test("scheduleAdd() stores a schedule; scheduleGet() and scheduleList() return it", async (f) => {
    const { store } = f;
    const every = await store.scheduleAdd({ schedule: schedule() });
    assert.deepEqual(every, {
      name: "tick",
      spec: { kind: "every", everyMs: 1000 },
      template: '{"command":"echo tick","cwd":"/tmp"}',
      anchor: T0,
      paused: false,
      nextAt: T0 + 1000,
      lastAt: null,
      lastJobId: null,
      lastJobState: null,
      fires: 0,
      createdAt: T0,
      updatedAt: T0,
    });
    const cron = await store.scheduleAdd({
      schedule: schedule({
        name: "nightly",
        spec: { kind: "cron", cron: "30 2 * * *", timeZone: "Europe/Berlin" },
        nextAt: T0 + 5000,
      }),
    });
    assert.deepEqual(cron.spec, { kind: "cron", cron: "30 2 * * *", timeZone: "Europe/Berlin" });
    assert.deepEqual(await store.scheduleGet({ name: "tick" }), every);
    assert.equal(await store.scheduleGet({ name: "nope" }), undefined);
    assert.deepEqual((await store.scheduleList()).map((s) => s.name), ["nightly", "tick"]);
  });

  test("scheduleAdd() refuses a taken name, changing nothing", async ({ store }) => {
    await store.scheduleAdd({ schedule: schedule() });
    await assert.rejects(
      store.scheduleAdd({ schedule: schedule({ nextAt: T0 + 9000 }) }),
      (error: unknown) =>
        error instanceof ConflictError && error.reason === "schedule_exists" &&
        error.subject === "tick",
    );
    assert.equal((await store.scheduleGet({ name: "tick" }))!.nextAt, T0 + 1000);
  });

  test("scheduleDue() returns what is due by the store's clock, and when the next is", async (f) => {
    const { store, clock } = f;
    assert.deepEqual(await store.scheduleDue({ limit: 10 }), {
      due: [],
      nextDueInMs: null,
      now: T0,
    });
    await store.scheduleAdd({ schedule: schedule() });
    await store.scheduleAdd({ schedule: schedule({ name: "later", nextAt: T0 + 60_000 }) });
    let due = await store.scheduleDue({ limit: 10 });
    assert.deepEqual(due.due, []);
    assert.equal(due.nextDueInMs, 1000);
    clock.set(T0 + 1500);
    due = await store.scheduleDue({ limit: 10 });
    assert.deepEqual(due.due.map((s) => s.name), ["tick"]);
    assert.equal(due.now, T0 + 1500);
    assert.equal(due.nextDueInMs, 0);
    await store.scheduleSetPaused({ name: "tick", paused: true });
    due = await store.scheduleDue({ limit: 10 });
    assert.deepEqual(due.due, [], "a paused schedule is never due");
    assert.equal(due.nextDueInMs, 58_500);
  });

  test("scheduleFire() enqueues the occurrence and moves the next fire time", async (f) => {
    const { store, clock } = f;
    await store.scheduleAdd({ schedule: schedule() });
    clock.set(T0 + 1200);
    const result = await fire(store, T0 + 1000, T0 + 2000);
    assert.equal(result.fired, true);
    assert.equal(result.job!.state, "pending");
    assert.equal(result.job!.command, "echo tick");
    assert.equal(result.job!.maxRetries, 3);
    assert.equal(result.job!.runAt, T0 + 1200);
    assert.deepEqual(await store.jobGet({ id: result.job!.id }), result.job);
    const stored = (await store.scheduleGet({ name: "tick" }))!;
    assert.equal(stored.nextAt, T0 + 2000);
    assert.equal(stored.lastAt, T0 + 1000);
    assert.equal(stored.lastJobId, result.job!.id);
    assert.equal(stored.lastJobState, "pending");
    assert.equal(stored.fires, 1);
    assert.equal((await store.jobCountByState()).pending, 1);
  });

  test("scheduleFire() from a stale view, or of a paused schedule, changes nothing", async (f) => {
    const { store, clock } = f;
    await store.scheduleAdd({ schedule: schedule() });
    clock.set(T0 + 1200);
    assert.equal((await fire(store, T0 + 1000, T0 + 2000)).fired, true);
    // The same occurrence again (a second scheduler that read before the first fired).
    assert.deepEqual(await fire(store, T0 + 1000, T0 + 2000), { fired: false, job: null });
    // A fire time that was never the next one.
    assert.equal((await fire(store, T0 + 1500, T0 + 2000)).fired, false);
    await store.scheduleSetPaused({ name: "tick", paused: true });
    clock.set(T0 + 2100);
    assert.equal((await fire(store, T0 + 2000, T0 + 3000)).fired, false);
    assert.equal((await fire(store, T0 + 2000, T0 + 3000, "gone")).fired, false);
    assert.equal((await store.jobCountByState()).total, 1);
  });

  test("scheduleFire() never enqueues one schedule's fire time twice (second guard)", async (f) => {
    const { store, clock } = f;
    await store.scheduleAdd({ schedule: schedule() });
    clock.set(T0 + 1200);
    assert.equal((await fire(store, T0 + 1000, T0 + 2000)).fired, true);
    // A resume that set next_at back to a fire time already enqueued: the run row refuses it.
    await store.scheduleSetPaused({ name: "tick", paused: true });
    await store.scheduleSetPaused({ name: "tick", paused: false, nextAt: T0 + 1000 });
    assert.deepEqual(await fire(store, T0 + 1000, T0 + 2000), { fired: false, job: null });
    assert.equal((await store.jobCountByState()).total, 1);
    const stored = (await store.scheduleGet({ name: "tick" }))!;
    assert.equal(stored.nextAt, T0 + 1000, "the refused fire was rolled back");
    assert.equal(stored.fires, 1);
  });

  test("scheduleFire() with no next time leaves the schedule without one", async (f) => {
    const { store, clock } = f;
    await store.scheduleAdd({ schedule: schedule() });
    clock.set(T0 + 1000);
    assert.equal((await fire(store, T0 + 1000, null)).fired, true);
    assert.equal((await store.scheduleGet({ name: "tick" }))!.nextAt, null);
    clock.set(T0 + 100_000);
    assert.deepEqual(await store.scheduleDue({ limit: 10 }), {
      due: [],
      nextDueInMs: null,
      now: T0 + 100_000,
    });
  });

  test("scheduleSetPaused() pauses and resumes with a new next fire time", async (f) => {
    const { store, clock } = f;
    await store.scheduleAdd({ schedule: schedule() });
    clock.set(T0 + 500);
    const paused = (await store.scheduleSetPaused({ name: "tick", paused: true }))!;
    assert.equal(paused.paused, true);
    assert.equal(paused.updatedAt, T0 + 500);
    const resumed = (await store.scheduleSetPaused({
      name: "tick",
      paused: false,
      nextAt: T0 + 7000,
    }))!;
    assert.equal(resumed.paused, false);
    assert.equal(resumed.nextAt, T0 + 7000);
    assert.equal(await store.scheduleSetPaused({ name: "nope", paused: true }), undefined);
  });

  test("scheduleRemove() deletes the schedule and keeps its jobs", async (f) => {
    const { store, clock } = f;
    await store.scheduleAdd({ schedule: schedule() });
    clock.set(T0 + 1000);
    const { job } = await fire(store, T0 + 1000, T0 + 2000);
    assert.equal(await store.scheduleRemove({ name: "tick" }), true);
    assert.equal(await store.scheduleRemove({ name: "tick" }), false);
    assert.equal(await store.scheduleGet({ name: "tick" }), undefined);
    assert.ok(await store.jobGet({ id: job!.id }));
    // The name can be taken again, and its runs start afresh.
    await store.scheduleAdd({ schedule: schedule({ nextAt: T0 + 1000 }) });
    assert.equal((await fire(store, T0 + 1000, T0 + 2000)).fired, true);
  });

  test("scheduleRunNow() enqueues an extra occurrence, paused or not; the next fire time stays", async (f) => {
    const { store, clock } = f;
    await store.scheduleAdd({ schedule: schedule({ nextAt: T0 + 60_000 }) });
    clock.set(T0 + 500);
    const runNow = () =>
      store.scheduleRunNow({ name: "tick", job: occurrence(T0 + 500), defaultMaxRetries: 2 });
    const first = (await runNow())!;
    assert.equal(first.job.state, "pending");
    assert.equal(first.job.command, "echo tick");
    assert.equal(first.job.maxRetries, 2);
    assert.equal(first.job.runAt, T0 + 500);
    assert.deepEqual(await store.jobGet({ id: first.job.id }), first.job);
    assert.equal(first.schedule.nextAt, T0 + 60_000, "the next fire time does not move");
    assert.equal(first.schedule.lastAt, T0 + 500);
    assert.equal(first.schedule.lastJobId, first.job.id);
    assert.equal(first.schedule.lastJobState, "pending");
    assert.equal(first.schedule.fires, 1);
    assert.equal(first.schedule.updatedAt, T0 + 500);
    assert.deepEqual(await store.scheduleGet({ name: "tick" }), first.schedule);
    // Paused: it still runs now when asked, and stays paused.
    await store.scheduleSetPaused({ name: "tick", paused: true });
    clock.set(T0 + 900);
    const second = (await runNow())!;
    assert.notEqual(second.job.id, first.job.id);
    assert.equal(second.schedule.paused, true);
    assert.equal(second.schedule.fires, 2);
    assert.equal(second.schedule.lastJobId, second.job.id);
    // The scheduled occurrence still fires at its time, once.
    await store.scheduleSetPaused({ name: "tick", paused: false, nextAt: T0 + 60_000 });
    clock.set(T0 + 60_000);
    assert.equal((await fire(store, T0 + 60_000, T0 + 61_000)).fired, true);
    assert.equal((await store.jobCountByState()).pending, 3);
  });

  test("scheduleRunNow() of a schedule that does not exist inserts nothing", async (f) => {
    const { store } = f;
    assert.equal(
      await store.scheduleRunNow({ name: "nope", job: occurrence(T0), defaultMaxRetries: 2 }),
      undefined,
    );
    assert.equal((await store.jobCountByState()).total, 0);
  });

  test("scheduleFire() racing from two stores enqueues each occurrence once", async (f) => {
    const { store, clock } = f;
    const other = await f.openAnother();
    await store.scheduleAdd({ schedule: schedule({ nextAt: T0 }) });
    let fired = 0;
    for (let i = 0; i < 20; i++) {
      const at = T0 + i * 1000;
      clock.set(at);
      const results = await Promise.all(
        [store, other, store, other].map((s) => fire(s, at, at + 1000)),
      );
      const won = results.filter((r) => r.fired).length;
      assert.equal(won, 1, `fire time ${i}: ${won} fired`);
      fired += won;
    }
    assert.equal((await store.jobCountByState()).pending, fired);
    assert.equal((await store.scheduleGet({ name: "tick" }))!.fires, 20);
  });
}
