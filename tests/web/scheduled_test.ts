/**
 * The dashboard's Scheduled page over HTTP, on both stores: GET /api/scheduled lists the jobs that
 * wait for a time (delayed ones and retries in their backoff), soonest first, in keyset pages
 * (`next_after`), and the `due:` qualifier finds the same jobs in every search (/api/jobs,
 * /api/count, the "all matching" actions). Authentication, the Host check and --read-only are
 * walked over the route table in handler_test.ts (the new routes are in it, as checked here).
 */

import assert from "node:assert/strict";
import type { FakeClock } from "../../lib/clock.ts";
import { Queue, SEARCH_SCAN_LIMIT } from "../../lib/queue.ts";
import type { Store } from "../../lib/store/store.ts";
import { Auth } from "../../lib/web/auth.ts";
import { createHandler, ROUTES } from "../../lib/web/handler.ts";
import { allowedHostNames } from "../../lib/web/security.ts";
import { insertJob, makeJob } from "../helpers/factory.ts";
import { pgStoreFixture } from "../helpers/pg_store.ts";
import { storeFixture } from "../helpers/temp.ts";
import { ORIGIN, PORT, TOKEN } from "./_fixture.ts";

type JobJson = { id: string; state: string; run_at: string; attempts_left: number };

/** The dashboard over `store`, and GET/POST of its JSON as the signed-in browser. */
async function dashboard(store: Store, clock: FakeClock) {
  const queue = new Queue(store, { clock });
  const auth = new Auth(TOKEN, { clock, cookieName: `queuectl_${PORT}` });
  const handler = createHandler(queue, {
    auth,
    readOnly: false,
    hostNames: allowedHostNames("127.0.0.1"),
    port: PORT,
    version: "test",
  });
  const cookie = `${auth.cookieName}=${await auth.session()}`;
  async function call(path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { host: `127.0.0.1:${PORT}`, cookie };
    if (body !== undefined) {
      headers.origin = ORIGIN;
      headers["content-type"] = "application/json";
    }
    return await handler(
      new Request(`${ORIGIN}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );
  }
  async function json(path: string, body?: unknown): Promise<Record<string, unknown>> {
    const response = await call(path, body);
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  }
  return { queue, call, json, close: () => handler.close() };
}

/** Every page of /api/scheduled for `q`, `limit` at a time: the ids in order, and the pages. */
async function walk(
  json: (path: string) => Promise<Record<string, unknown>>,
  q: string,
  limit: number,
): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const params = new URLSearchParams({ q, limit: String(limit) });
    if (after !== null) params.set("after", after);
    const page = await json(`/api/scheduled?${params}`);
    assert.equal(page.truncated, false);
    ids.push(...(page.jobs as JobJson[]).map((j) => j.id));
    after = page.next_after as string | null;
    pages++;
    assert.ok(pages < 100, "the walk ends");
  } while (after !== null);
  return { ids, pages };
}

const MINUTE = 60_000;

/**
 * The jobs of the test: a retry in its backoff (made first: making it moves the clock), delayed
 * jobs at several times (three at the very same instant, told apart by enqueue order), and jobs
 * that do not wait for a time: one due now, one waiting for another job, one finished. Returns
 * the ids the Scheduled page lists, in its order.
 */
async function seed(store: Store, clock: FakeClock): Promise<string[]> {
  const retry = await makeJob(store, clock, "failed", { id: "retry", command: "false" });
  const now = clock.now();
  assert.ok(retry.runAt > now, "the retry waits for its backoff");
  await makeJob(store, clock, "completed", { id: "done" });
  const at = (minutes: number) => now + minutes * MINUTE;
  await insertJob(store, clock, { id: "in-30m", runAt: at(30), priority: 1 });
  await insertJob(store, clock, { id: "in-10m-a", runAt: at(10), priority: 9 });
  await insertJob(store, clock, { id: "in-10m-b", runAt: at(10), priority: 2 });
  await insertJob(store, clock, { id: "in-10m-c", runAt: at(10), priority: 9 });
  await insertJob(store, clock, { id: "in-2h", runAt: at(120), command: "backup --all" });
  await insertJob(store, clock, { id: "due", runAt: now });
  await store.jobInsertMany({
    jobs: [{
      id: "waits",
      command: "echo after",
      priority: 5,
      maxRetries: 0,
      timeoutMs: null,
      cwd: "/tmp",
      env: {},
      runAt: at(5),
      delayMs: 0,
      after: ["in-30m"],
    }],
    defaultMaxRetries: 3,
  });
  const later = [
    { id: "retry", runAt: retry.runAt },
    { id: "in-30m", runAt: at(30) },
    { id: "in-10m-a", runAt: at(10) },
    { id: "in-10m-b", runAt: at(10) },
    { id: "in-10m-c", runAt: at(10) },
    { id: "in-2h", runAt: at(120) },
  ];
  // Soonest first; at one instant, in enqueue order (the order listed above).
  return later.map((j, i) => ({ ...j, i })).sort((a, b) => a.runAt - b.runAt || a.i - b.i)
    .map((j) => j.id);
}

function scheduledTests(
  name: string,
  open: () => Promise<{ store: Store; clock: FakeClock } & AsyncDisposable>,
) {
  Deno.test(`${name}: /api/scheduled lists the jobs waiting for a time, soonest first, in keyset pages`, async () => {
    await using f = await open();
    const expected = await seed(f.store, f.clock);
    const d = await dashboard(f.store, f.clock);
    try {
      const first = await d.json("/api/scheduled");
      assert.deepEqual((first.jobs as JobJson[]).map((j) => j.id), expected);
      assert.equal(first.next_after, null);
      assert.deepEqual(first.counts, { delayed: 5, retrying: 1 });
      const retry = (first.jobs as JobJson[]).find((j) => j.id === "retry")!;
      assert.equal(retry.state, "failed");
      // Every page size gives the same jobs once each, in the same order.
      for (const limit of [1, 2, 4, 5]) {
        const { ids, pages } = await walk(d.json, "", limit);
        assert.deepEqual(ids, expected, `limit ${limit}`);
        assert.equal(pages, Math.ceil(expected.length / limit), `limit ${limit}`);
      }
      // The other conditions hold as in any search.
      assert.deepEqual((await walk(d.json, "state:failed", 2)).ids, ["retry"]);
      assert.deepEqual(
        (await walk(d.json, "state:pending", 2)).ids,
        expected.filter((id) => id !== "retry"),
      );
      assert.deepEqual((await walk(d.json, "priority:9", 1)).ids, ["in-10m-a", "in-10m-c"]);
      assert.deepEqual((await walk(d.json, "backup", 1)).ids, ["in-2h"]);
      assert.deepEqual((await walk(d.json, "state:dead", 1)).ids, []);
      assert.deepEqual((await walk(d.json, "id:in-30m", 1)).ids, ["in-30m"]);
      assert.deepEqual((await walk(d.json, "id:due", 1)).ids, []);
      // A bad cursor is a 400 naming it.
      await assert.rejects(
        d.json("/api/scheduled?after=12"),
        /400.*Invalid after .*12.*position from next_after/,
      );

      // The same jobs through the due: qualifier of every search, newest enqueued first.
      const jobs = await d.json("/api/jobs?q=due:later");
      assert.deepEqual(
        (jobs.jobs as JobJson[]).map((j) => j.id).sort(),
        [...expected].sort(),
      );
      const now = await d.json("/api/jobs?q=due:now");
      assert.deepEqual((now.jobs as JobJson[]).map((j) => j.id), ["due"]);
      const count = await d.json("/api/count?q=due:later&for=cancel");
      assert.deepEqual([count.count, count.complete], [expected.length, true]);

      // Time passes: what came due leaves the page.
      f.clock.advance(15 * MINUTE);
      const left = expected.filter((id) => ["in-30m", "in-2h"].includes(id));
      assert.deepEqual((await walk(d.json, "", 1)).ids, left);
      // The retry is due now: still failed, no longer waiting for a time, nor counted as such.
      assert.equal((await f.store.jobGet({ id: "retry" }))!.state, "failed");
      assert.deepEqual((await d.json("/api/scheduled")).counts, { delayed: 2, retrying: 0 });
      // A cursor from before now starts at now.
      const stale = await d.json(`/api/scheduled?after=1.1`);
      assert.deepEqual((stale.jobs as JobJson[]).map((j) => j.id), left);

      // "Cancel all matching" on due:later cancels exactly those.
      const cancelled = await d.json("/api/jobs/cancel", { query: "due:later", limit: 100 });
      assert.deepEqual((cancelled.cancelled as string[]).sort(), [...left].sort());
      assert.deepEqual((await d.json("/api/scheduled")).jobs, []);
    } finally {
      d.close();
    }
  });

  Deno.test(`${name}: POST /api/jobs/run-now makes waiting jobs due now, all or none`, async () => {
    await using f = await open();
    const expected = await seed(f.store, f.clock);
    const d = await dashboard(f.store, f.clock);
    try {
      const now = f.clock.now();
      // A finished job among them: nothing changes, and the answer names it.
      const refused = await d.call("/api/jobs/run-now", { ids: ["in-30m", "done"] });
      assert.equal(refused.status, 409);
      assert.match(
        (await refused.json()).error,
        /Job "done" is not waiting to run: it is completed/,
      );
      assert.equal((await f.store.jobGet({ id: "in-30m" }))!.runAt, now + 30 * MINUTE);
      const missing = await d.call("/api/jobs/run-now", { ids: ["nope"] });
      assert.equal(missing.status, 404);
      await missing.body?.cancel();

      const out = await d.json("/api/jobs/run-now", { ids: ["in-2h", "retry", "due"] });
      assert.deepEqual(out.due, ["in-2h", "retry", "due"]);
      for (const id of ["in-2h", "retry", "due"]) {
        const job = (await f.store.jobGet({ id }))!;
        assert.equal(job.runAt, now, id);
      }
      const retry = (await f.store.jobGet({ id: "retry" }))!;
      assert.deepEqual([retry.state, retry.attempts], ["failed", 1], "a retry keeps its count");
      assert.deepEqual(
        (await walk(d.json, "", 10)).ids,
        expected.filter((id) => id !== "in-2h" && id !== "retry"),
      );
      // What was made due is what a worker claims next (by priority, then due time).
      const claimed = await f.store.jobClaim({
        host: "test-host",
        workerId: "w-test",
        leaseMs: 30_000,
        limit: 10,
      });
      assert.deepEqual(claimed.map((j) => j.id).sort(), ["due", "in-2h", "retry"]);
    } finally {
      d.close();
    }
  });

  Deno.test(`${name}: the scheduled walk is bounded by its budget and says where it stopped`, async () => {
    await using f = await open();
    const now = f.clock.now();
    const jobs = Array.from({ length: 30 }, (_, i) => ({
      id: `j${i}`,
      command: i === 27 ? "needle" : "hay",
      priority: 1 + (i % 10),
      maxRetries: 0,
      timeoutMs: null,
      cwd: "/tmp",
      env: {},
      runAt: now + 1000 + Math.floor(i / 3) * 1000,
      delayMs: 0,
    }));
    await f.store.jobInsertMany({ jobs, defaultMaxRetries: 0 });
    const queue = new Queue(f.store, { clock: f.clock });
    const found: string[] = [];
    let after = undefined;
    let steps = 0;
    for (;;) {
      const page = await queue.scheduled(
        { commandContains: "needle" },
        { limit: 5, scanLimit: 8, ...(after === undefined ? {} : { after }) },
      );
      found.push(...page.jobs.map((j) => j.id));
      steps++;
      if (page.next === null) break;
      if (found.length === 0) assert.equal(page.truncated, true);
      after = page.next;
      assert.ok(steps < 20);
    }
    assert.deepEqual(found, ["j27"]);
    assert.ok(steps >= 4, `a budget of 8 needs steps to reach the 28th job (took ${steps})`);
    assert.ok(SEARCH_SCAN_LIMIT >= 1000);
  });
}

scheduledTests("SQLite", storeFixture);
scheduledTests("PostgreSQL", () => pgStoreFixture());

Deno.test("the Scheduled page and its API are GET routes that change nothing; run-now changes the queue", () => {
  const runNow = ROUTES.find((r) => r.path === "/api/jobs/run-now");
  assert.ok(runNow);
  assert.deepEqual([runNow.method, runNow.access, runNow.changes], ["POST", "session", "queue"]);
  for (const path of ["/scheduled", "/api/scheduled"]) {
    const route = ROUTES.find((r) => r.path === path);
    assert.ok(route, path);
    assert.equal(route.method, "GET");
    assert.equal(route.access, "session");
    assert.equal(route.changes, "nothing");
  }
});
