/**
 * The dashboard's job actions over HTTP: POST /api/jobs/cancel, /api/jobs/retry and
 * /api/jobs/delete, on selected ids (all or none) and on "all matching" a search in capped steps.
 * Authentication, origin checks and --read-only for these routes are walked over the route table
 * in handler_test.ts; here: what each does, and that bad requests change nothing.
 */

import assert from "node:assert/strict";
import { BULK_CAP } from "../../lib/web/handler.ts";
import { treeDigest } from "../helpers/digest.ts";
import { makeJob, makeOneOfEach } from "../helpers/factory.ts";
import { webFixture } from "./_fixture.ts";
import type { WebFixture } from "./_fixture.ts";

/**
 * The database's files, without the shared-memory index (a transaction that rolled back may touch
 * it): an unchanged write-ahead log and database file mean nothing was committed.
 */
async function committed(f: WebFixture): Promise<Record<string, string>> {
  const { "queue.db-shm": _shm, ...files } = await treeDigest(f.dir);
  return files;
}

async function states(f: WebFixture, ids: string[]): Promise<(string | undefined)[]> {
  return await Promise.all(ids.map(async (id) => (await f.store.jobGet({ id }))?.state));
}

Deno.test("POST /api/jobs/cancel: waiting jobs at once, a running one by a request to its owner", async () => {
  await using f = await webFixture();
  await makeOneOfEach(f.store, f.clock);
  const out = await f.json("/api/jobs/cancel", { body: { ids: ["p1", "f1", "r1", "p1"] } });
  assert.deepEqual(out, { cancelled: ["p1", "f1"], requested: ["r1"], next_before: null });
  assert.deepEqual(await states(f, ["p1", "f1", "r1"]), ["cancelled", "cancelled", "processing"]);
  assert.equal((await f.queue.get("p1")).cancelReason, "cancelled from the dashboard");
  const [request] = await f.store.jobCancelRequests({
    workerId: (await f.queue.get("r1")).workerId!,
  });
  assert.equal(request?.jobId, "r1");
  // A reason given is kept.
  await makeJob(f.store, f.clock, "pending", { id: "p2" });
  await f.json("/api/jobs/cancel", { body: { ids: ["p2"], reason: "wrong input" } });
  assert.equal((await f.queue.get("p2")).cancelReason, "wrong input");
  assert.ok(
    f.logs.some((l) =>
      / dashboard cancelled 2 jobs and asked 1 running job to stop \(by id\)$/.test(l)
    ),
    f.logs.join("\n"),
  );
});

Deno.test("POST /api/jobs/retry brings dead and cancelled jobs back; a completed one is a conflict", async () => {
  await using f = await webFixture();
  await makeOneOfEach(f.store, f.clock);
  const out = await f.json("/api/jobs/retry", { body: { ids: ["x1", "d1"] } });
  assert.deepEqual(out, { retried: ["x1", "d1"], next_before: null });
  assert.deepEqual(await states(f, ["x1", "d1"]), ["pending", "pending"]);
  const conflict = await f.json("/api/jobs/retry", { body: { ids: ["c1"] }, status: 409 });
  assert.match(conflict.error as string, /Job "c1" cannot be retried: it completed/);
});

Deno.test("POST /api/jobs/delete deletes finished jobs with their history; a live one is a conflict", async () => {
  await using f = await webFixture();
  await makeOneOfEach(f.store, f.clock);
  const out = await f.json("/api/jobs/delete", { body: { ids: ["c1", "d1", "x1"] } });
  assert.deepEqual(out, { deleted: ["c1", "d1", "x1"], next_before: null });
  assert.deepEqual(await states(f, ["c1", "d1", "x1"]), [undefined, undefined, undefined]);
  await f.json("/api/jobs/c1", { status: 404 });
  assert.ok(f.logs.some((l) => / dashboard deleted 3 jobs \(by id\)$/.test(l)), f.logs.join("\n"));
});

Deno.test("job actions refuse bad requests with a one-line JSON error, all or none, changing nothing", async () => {
  await using f = await webFixture();
  await makeOneOfEach(f.store, f.clock);
  const before = await committed(f);
  const tooMany = Array.from({ length: BULK_CAP + 1 }, (_, i) => `x${i}`);
  const cases: [string, unknown, number, RegExp][] = [
    [
      "cancel",
      { ids: ["p1", "c1"] },
      409,
      /Job "c1" is completed: only a waiting or running job can be cancelled/,
    ],
    ["cancel", { ids: ["p1", "nope"] }, 404, /Job "nope" not found/],
    ["cancel", { ids: ["p1"], reason: "" }, 400, /reason must be text/],
    ["cancel", { ids: ["p1"], reason: 7 }, 400, /reason must be text/],
    ["retry", { ids: ["d1", "p1"] }, 409, /Job "p1" cannot be retried/],
    ["delete", { ids: ["c1", "p1"] }, 409, /Job "p1" is pending: only a finished job/],
    ["delete", { ids: ["c1", "r1"] }, 409, /Job "r1" is processing/],
    ["delete", { ids: ["c1", "nope"] }, 404, /Job "nope" not found/],
    ["delete", { ids: ["../x"] }, 400, /Invalid job id "\.\.\/x"/],
    ["delete", { ids: [] }, 400, /ids must be a list of job ids/],
    ["delete", { ids: "c1" }, 400, /ids must be a list of job ids/],
    ["delete", { ids: [1] }, 400, /ids must be a list of job ids/],
    ["delete", { ids: tooMany }, 413, /At most 1000 jobs per request/],
    ["delete", {}, 400, /Give ids, or a query with a limit/],
    ["delete", { query: "", limit: BULK_CAP + 1 }, 413, /limit must be a number from 1 to 1000/],
    ["delete", { query: "", limit: 0 }, 400, /limit must be a number from 1 to 1000/],
    ["delete", { query: "" }, 400, /limit must be a number/],
    ["cancel", { query: "", limit: 5, before: "x" }, 400, /before must be a position/],
    ["cancel", { query: "status:pending", limit: 5 }, 400, /did you mean "state:"/],
    ["retry", { query: 5, limit: 5 }, 400, /query must be text/],
  ];
  for (const [action, body, status, message] of cases) {
    const response = await f.request(`/api/jobs/${action}`, { body });
    const text = await response.text();
    const what = `${action} ${JSON.stringify(body).slice(0, 80)}`;
    assert.equal(response.status, status, `${what}: ${text}`);
    assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8", what);
    assert.ok(!text.includes("\n"), `${what}: one line`);
    assert.match(JSON.parse(text).error, message, what);
  }
  for (const action of ["cancel", "retry", "delete"]) {
    const form = await f.request(`/api/jobs/${action}`, {
      body: "ids=c1",
      type: "application/x-www-form-urlencoded",
    });
    assert.equal(form.status, 415, action);
    await form.body?.cancel();
  }
  assert.deepEqual(await committed(f), before, "nothing changed");
});

Deno.test("job actions on all matching go in steps of at most `limit`, only on jobs they apply to", async () => {
  await using f = await webFixture();
  for (let i = 0; i < 3; i++) {
    await makeJob(f.store, f.clock, "completed", { id: `c${i}`, command: `./batch.sh c${i}` });
  }
  for (let i = 0; i < 12; i++) {
    await makeJob(f.store, f.clock, "pending", { id: `p${i}`, command: `./batch.sh ${i}` });
  }
  await makeJob(f.store, f.clock, "pending", { id: "other", command: "./other.sh" });
  const walk = async (action: string, query: string, limit: number) => {
    const ids: string[] = [];
    let before: number | null = null;
    let steps = 0;
    for (;;) {
      const data = await f.json(`/api/jobs/${action}`, { body: { query, limit, before } });
      const key = Object.keys(data).find((k) => k !== "next_before" && k !== "requested")!;
      const got = data[key] as string[];
      assert.ok(got.length <= limit, `${got.length} > ${limit}`);
      ids.push(...got);
      steps++;
      before = data.next_before as number | null;
      if (before === null) return { ids, steps };
    }
  };
  // Cancel every job matching batch: the 12 pending ones; the completed ones are not touched.
  const cancelled = await walk("cancel", "cmd:batch", 5);
  assert.equal(cancelled.ids.length, 12);
  assert.equal(new Set(cancelled.ids).size, 12);
  assert.equal(cancelled.steps, 3);
  assert.equal((await f.queue.get("c0")).state, "completed");
  assert.equal((await f.queue.get("other")).state, "pending");
  // Retry the cancelled ones among them, then delete what finished (completed, not pending).
  const retried = await walk("retry", "state:cancelled cmd:batch", 100);
  assert.equal(retried.ids.length, 12);
  const deleted = await walk("delete", "cmd:batch", 2);
  assert.deepEqual(deleted.ids.sort(), ["c0", "c1", "c2"]);
  const counts = await f.queue.status();
  assert.deepEqual([counts.counts.pending, counts.counts.total], [13, 13]);
  // A search for states an action does not apply to acts on nothing.
  assert.deepEqual(
    await f.json("/api/jobs/delete", { body: { query: "state:pending", limit: 5 } }),
    {
      deleted: [],
      next_before: null,
    },
  );
});
