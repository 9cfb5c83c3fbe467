/**
 * The dashboard's recurring jobs over HTTP: GET /api/schedules, and POST
 * /api/schedules/:name/pause, /resume and /run ("run now"). Authentication, the Host and origin
 * checks and --read-only are walked over the route table in handler_test.ts (these routes are in
 * it, as the first test here checks); here: what each does, and that bad requests change nothing.
 */

import assert from "node:assert/strict";
import { ROUTES } from "../../lib/web/handler.ts";
import { treeDigest } from "../helpers/digest.ts";
import { T0 } from "../helpers/temp.ts";
import { addSchedule, ORIGIN, webFixture } from "./_fixture.ts";
import type { WebFixture } from "./_fixture.ts";

const HOUR = 3_600_000;

/** The database's files without the shared-memory index (see actions_test.ts). */
async function committed(f: WebFixture): Promise<Record<string, string>> {
  const { "queue.db-shm": _shm, ...files } = await treeDigest(f.dir);
  return files;
}

Deno.test("the schedule actions are in the route table as POSTs that change the queue", () => {
  for (const action of ["pause", "resume", "run"]) {
    const route = ROUTES.find((r) => r.path === `/api/schedules/:name/${action}`);
    assert.ok(route, action);
    assert.equal(route.method, "POST");
    assert.equal(route.access, "session");
    assert.equal(route.changes, "queue", "so --read-only, CSRF and auth walks cover it");
  }
  assert.ok(ROUTES.some((r) => r.path === "/schedules" && r.method === "GET"));
});

Deno.test("GET /api/schedules lists schedules in the CLI's shape, without their job's env", async () => {
  await using f = await webFixture();
  assert.deepEqual((await f.json("/api/schedules")).schedules, []);
  await addSchedule(f);
  await addSchedule(f, {
    name: "berlin",
    spec: { kind: "cron", cron: "30 2 * * *", timeZone: "Europe/Berlin" },
    template: '{"command":"./backup.sh","cwd":"/srv"}',
  });
  const out = await f.json("/api/schedules");
  assert.equal(out.as_of, new Date(T0).toISOString());
  const [berlin, nightly] = out.schedules as Record<string, unknown>[];
  assert.deepEqual(nightly, {
    name: "nightly",
    cron: null,
    time_zone: null,
    every: 3600,
    job: { command: "echo nightly", cwd: "/tmp" },
    paused: false,
    next_run_at: new Date(T0 + HOUR).toISOString(),
    last_run_at: null,
    last_job_id: null,
    last_job_state: null,
    runs: 0,
    created_at: new Date(T0).toISOString(),
  });
  assert.equal(berlin!.cron, "30 2 * * *");
  assert.equal(berlin!.time_zone, "Europe/Berlin");
  assert.equal(berlin!.every, null);
  assert.doesNotMatch(JSON.stringify(out), /s3cret/);
});

Deno.test("POST /api/schedules/:name/run enqueues one occurrence now, as the schedule's last job", async () => {
  await using f = await webFixture();
  await addSchedule(f);
  f.clock.set(T0 + 60_000);
  const out = await f.json("/api/schedules/nightly/run", { body: {} });
  const job = out.job as Record<string, unknown>;
  const schedule = out.schedule as Record<string, unknown>;
  assert.equal(job.state, "pending");
  assert.equal(job.command, "echo nightly");
  assert.equal(job.env, undefined, "no env in the answer");
  assert.equal(schedule.last_job_id, job.id);
  assert.equal(schedule.last_job_state, "pending");
  assert.equal(schedule.last_run_at, new Date(T0 + 60_000).toISOString());
  assert.equal(schedule.next_run_at, new Date(T0 + HOUR).toISOString(), "its time stays");
  assert.equal(schedule.runs, 1);
  // The job is the template's, with the schedule's variables, due now.
  const stored = await f.queue.get(job.id as string);
  assert.deepEqual(stored.env, {
    TOKEN: "s3cret",
    QUEUECTL_SCHEDULE: "nightly",
    QUEUECTL_SCHEDULED_AT: new Date(T0 + 60_000).toISOString(),
  });
  assert.equal(stored.runAt, T0 + 60_000);
  // Each click is one more job; the list shows the last.
  const again = await f.json("/api/schedules/nightly/run", { body: {} });
  assert.notEqual((again.job as { id: string }).id, job.id);
  assert.equal((await f.queue.status()).counts.pending, 2);
  const [listed] = (await f.json("/api/schedules")).schedules as Record<string, unknown>[];
  assert.equal(listed!.last_job_id, (again.job as { id: string }).id);
  assert.ok(
    f.logs.some((l) => l.endsWith(` dashboard ran schedule nightly now: job ${job.id}`)),
    f.logs.join("\n"),
  );
});

Deno.test("POST /api/schedules/:name/pause and /resume: a resume goes on from now, skipping what it missed", async () => {
  await using f = await webFixture();
  await addSchedule(f);
  const paused = (await f.json("/api/schedules/nightly/pause", { body: {} })).schedule as Record<
    string,
    unknown
  >;
  assert.equal(paused.paused, true);
  assert.equal(paused.next_run_at, null);
  // Pausing again is no error and no change.
  assert.equal(
    ((await f.json("/api/schedules/nightly/pause", { body: {} })).schedule as { paused: boolean })
      .paused,
    true,
  );
  // Run now works while paused, and leaves it paused.
  const ran = await f.json("/api/schedules/nightly/run", { body: {} });
  assert.equal((ran.schedule as { paused: boolean }).paused, true);
  f.clock.set(T0 + 3 * HOUR + 60_000);
  const resumed = (await f.json("/api/schedules/nightly/resume", { body: {} })).schedule as Record<
    string,
    unknown
  >;
  assert.equal(resumed.paused, false);
  assert.equal(resumed.next_run_at, new Date(T0 + 4 * HOUR).toISOString());
  assert.ok(f.logs.some((l) => l.endsWith(" dashboard paused schedule nightly")));
  assert.ok(f.logs.some((l) => l.endsWith(" dashboard resumed schedule nightly")));
});

Deno.test("schedule actions refuse bad requests with a one-line JSON error, changing nothing", async () => {
  await using f = await webFixture();
  await addSchedule(f);
  const before = await committed(f);
  const missing = await f.json("/api/schedules/nope/run", { body: {}, status: 404 });
  assert.deepEqual(missing, {
    error: 'Schedule "nope" not found',
    hint: "`queuectl schedule list` shows the schedules",
  });
  for (const action of ["pause", "resume"]) {
    await f.json(`/api/schedules/nope/${action}`, { body: {}, status: 404 });
  }
  const bad = await f.json("/api/schedules/no%20such/run", { body: {}, status: 400 });
  assert.match(bad.error as string, /^Invalid schedule name "no such": may hold only/);
  // A form's body type, or no JSON: refused before anything runs.
  const form = await f.request("/api/schedules/nightly/run", {
    body: "x=1",
    type: "application/x-www-form-urlencoded",
  });
  assert.equal(form.status, 415);
  await form.body?.cancel();
  await f.json("/api/schedules/nightly/run", { body: "{", status: 400 });
  // GET never runs anything.
  const get = await f.request("/api/schedules/nightly/run");
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  await get.body?.cancel();
  assert.deepEqual(await committed(f), before);
  assert.equal((await f.queue.status()).counts.total, 0);
});

Deno.test("schedule actions: --read-only answers 405, another origin 403, no session 401; nothing runs", async () => {
  await using f = await webFixture({ readOnly: true });
  await addSchedule(f);
  const before = await committed(f);
  for (const action of ["pause", "resume", "run"]) {
    const path = `/api/schedules/nightly/${action}`;
    const ro = await f.request(path, { body: {} });
    assert.equal(ro.status, 405, path);
    assert.match(await ro.text(), /--read-only/);
    const csrf = await f.request(path, {
      body: {},
      origin: "http://evil.example",
      headers: { "sec-fetch-site": "cross-site" },
    });
    assert.equal(csrf.status, 403, path);
    await csrf.body?.cancel();
    const anon = await f.request(path, { body: {}, auth: "none", origin: ORIGIN });
    assert.equal(anon.status, 401, path);
    await anon.body?.cancel();
  }
  assert.deepEqual(await committed(f), before);
  // Reading still works.
  assert.equal(((await f.json("/api/schedules")).schedules as unknown[]).length, 1);
});
