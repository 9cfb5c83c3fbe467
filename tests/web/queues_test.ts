/**
 * The dashboard's queues and dependencies over HTTP: the overview's queues, POST
 * /api/queues/:name/pause and /resume, and a job page's links to what it waits for and what
 * waits for it. Authentication, the Host and origin checks and --read-only are walked over the
 * route table in handler_test.ts (these routes are in it, as the first test here checks).
 */

import assert from "node:assert/strict";
import { ROUTES } from "../../lib/web/handler.ts";
import { PLAIN_JOB } from "../helpers/factory.ts";
import { webFixture } from "./_fixture.ts";

Deno.test("the queue actions are in the route table as POSTs that change the queue", () => {
  for (const action of ["pause", "resume"]) {
    const route = ROUTES.find((r) => r.path === `/api/queues/:name/${action}`);
    assert.ok(route, action);
    assert.equal(route.method, "POST");
    assert.equal(route.access, "session");
    assert.equal(route.changes, "queue", "so --read-only, CSRF and auth walks cover it");
  }
});

Deno.test("the overview lists each queue with its counts, pause state and limit; pause and resume by POST", async () => {
  await using f = await webFixture();
  await f.queue.enqueue([{ ...PLAIN_JOB }, { ...PLAIN_JOB, queue: "mail" }]);
  await f.queue.queueSetConcurrency("mail", 2);
  type QueueJson = { name: string; paused: boolean; concurrency: number; counts: object };
  const queues = async () => (await f.json("/api/overview")).queues as QueueJson[];
  const before = await queues();
  assert.deepEqual(before.map((q) => [q.name, q.paused, q.concurrency]), [
    ["default", false, 0],
    ["mail", false, 2],
  ]);
  assert.equal((before[1]!.counts as Record<string, number>).pending, 1);

  const paused = await f.json("/api/queues/mail/pause", { body: {} });
  assert.equal((paused.queue as QueueJson).paused, true);
  assert.deepEqual((await f.queue.queueList()).queues.map((q) => [q.name, q.paused]), [
    ["default", false],
    ["mail", true],
  ]);
  assert.equal((await queues())[1]!.paused, true);
  await f.json("/api/queues/mail/resume", { body: {} });
  assert.equal((await f.queue.queueList()).queues[1]!.paused, false);

  // A bad name changes nothing.
  await f.json("/api/queues/no%20such/pause", { body: {}, status: 400 });
  assert.ok((await f.queue.queueList()).queues.every((q) => !q.paused));
});

Deno.test("a job's page lists what it waits for and what waits for it, with their states", async () => {
  await using f = await webFixture();
  await f.queue.enqueue([{ ...PLAIN_JOB, id: "build" }]);
  await f.queue.enqueue([{ ...PLAIN_JOB, id: "deploy", after: ["build"] }]);
  const deploy = await f.json("/api/jobs/deploy");
  assert.deepEqual(deploy.waits_for, [{ id: "build", state: "pending", met: false }]);
  assert.deepEqual(deploy.dependents, []);
  const build = await f.json("/api/jobs/build");
  assert.deepEqual(build.waits_for, []);
  assert.deepEqual(build.dependents, [{ id: "deploy", state: "pending", met: false }]);
});
