import assert from "node:assert/strict";
import { main } from "../../lib/cli/main.ts";
import { MemoryIo } from "../../lib/cli/io.ts";
import { cliFixture, localStamp } from "../helpers/cli_fixture.ts";
import { insertJob, makeJob, makeOneOfEach } from "../helpers/factory.ts";
import { T0 } from "../helpers/temp.ts";

const JOB_KEYS = [
  "id",
  "command",
  "state",
  "priority",
  "queue",
  "attempts",
  "max_retries",
  "attempts_left",
  "timeout",
  "cwd",
  "env",
  "run_at",
  "created_at",
  "updated_at",
  "finished_at",
  "worker_id",
  "lease_expires_at",
  "last_error",
  "last_exit_code",
  "cancel_reason",
  "after",
  "waiting_on",
  "unique_key",
];
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

Deno.test("list says so when there are no jobs", async () => {
  await using q = await cliFixture();
  assert.deepEqual(await q.run(["list"]), { code: 0, stdout: "No jobs.\n", stderr: "" });
  assert.deepEqual(await q.run(["list", "--state", "dead"]), {
    code: 0,
    stdout: "No dead jobs.\n",
    stderr: "",
  });
  assert.deepEqual(await q.run(["list", "--json"]), { code: 0, stdout: "[]\n", stderr: "" });
});

Deno.test("list prints an aligned table in enqueue order with local times", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await insertJob(store, q.clock, { id: "build", command: "make all", priority: 8 });
  await insertJob(store, q.clock, {
    id: "nightly-backup",
    command: "./backup.sh --full",
    runAt: T0 + 3_600_000,
  });
  // A generated id is the next enqueue number, which counts the jobs with chosen ids too.
  await insertJob(store, q.clock, { command: "echo hi", priority: 10 });
  const { code, stdout } = await q.run(["list"]);
  assert.equal(code, 0);
  const now = localStamp(T0);
  const later = localStamp(T0 + 3_600_000);
  assert.equal(
    stdout,
    [
      "ID              STATE    PRI  ATTEMPTS  RUN AT               COMMAND",
      `build           pending  8    0         ${now}  make all`,
      `nightly-backup  pending  5    0         ${later}  ./backup.sh --full`,
      `3               pending  10   0         ${now}  echo hi`,
      "",
    ].join("\n"),
  );
});

Deno.test("list --limit N shows the newest N, oldest first, and says how to see older ones", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  for (const id of ["a", "b", "c", "d", "e"]) await insertJob(store, q.clock, { id });
  const ids = (stdout: string) => stdout.split("\n").slice(1, -2).map((l) => l.split(" ")[0]);
  const note = (stdout: string) => stdout.trimEnd().split("\n").at(-1);
  const newest = await q.run(["list", "--limit", "2"]);
  assert.deepEqual(ids(newest.stdout), ["d", "e"]);
  assert.equal(note(newest.stdout), "showing the newest 2 of 5 jobs (older: --before d)");
  // Paging back: keyset on the enqueue order.
  const back = await q.run(["list", "--limit", "2", "--before", "d"]);
  assert.deepEqual(ids(back.stdout), ["b", "c"]);
  assert.equal(note(back.stdout), "showing 2 of 5 jobs, before d (older: --before b)");
  const oldest = await q.run(["list", "--limit", "2", "--before", "b"]);
  assert.deepEqual(oldest.stdout.split("\n").slice(1, 2).map((l) => l.split(" ")[0]), ["a"]);
  assert.equal(note(oldest.stdout), "showing 1 of 5 jobs, before b (none older)");
  const none = await q.run(["list", "--before", "a"]);
  assert.deepEqual(none, { code: 0, stdout: "No jobs before a.\n", stderr: "" });
  // Everything fits: no note.
  assert.doesNotMatch((await q.run(["list", "--limit", "5"])).stdout, /showing/);
  // --json: the same page, oldest first.
  const json = JSON.parse(
    (await q.run(["list", "--limit", "2", "--before", "e", "--json"])).stdout,
  );
  assert.deepEqual(json.map((j: { id: string }) => j.id), ["c", "d"]);
  // An id that is not there: exit 4, as for show.
  const missing = await q.run(["list", "--before", "zz"]);
  assert.equal(missing.code, 4);
  assert.match(missing.stderr, /^queuectl: Job "zz" not found/);
});

Deno.test("list --state takes one state or several, and totals what it matched", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await makeOneOfEach(store, q.clock);
  await makeJob(store, q.clock, "pending", { id: "p2" });
  for (const state of ["processing", "completed", "failed", "dead"]) {
    const { code, stdout } = await q.run(["list", "--state", state]);
    assert.equal(code, 0);
    const rows = stdout.trimEnd().split("\n").slice(1);
    assert.equal(rows.length, 1, `${state}: ${stdout}`);
    assert.match(rows[0]!, new RegExp(`^\\w+\\s+${state}\\s`));
  }
  const cut = await q.run(["list", "--state", "pending", "--limit", "1"]);
  assert.match(cut.stdout, /^p2 /m);
  assert.match(cut.stdout, /showing the newest 1 of 2 pending jobs \(older: --before p2\)\n$/);
  const several = await q.run(["list", "--state", "pending,dead", "--json"]);
  assert.deepEqual(JSON.parse(several.stdout).map((j: { id: string }) => j.id), ["d1", "p1", "p2"]);
  const spaced = await q.run(["list", "--state", "dead, failed", "--limit", "1"]);
  assert.match(spaced.stdout, /^f1 /m);
  assert.match(spaced.stdout, /showing the newest 1 of 2 failed or dead jobs/);
  assert.deepEqual(await q.run(["list", "--state", "dead", "--before", "d1"]), {
    code: 0,
    stdout: "No dead jobs before d1.\n",
    stderr: "",
  });
  await using empty = await cliFixture();
  assert.deepEqual(await empty.run(["list", "--state", "failed,processing,dead"]), {
    code: 0,
    stdout: "No processing, failed or dead jobs.\n",
    stderr: "",
  });
});

Deno.test("list keeps each command on one line, marks newlines, and clips it at 60 characters", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await insertJob(store, q.clock, { id: "multi", command: "echo one\necho two\r\n\x1b[2J" });
  await insertJob(store, q.clock, { id: "long", command: "x".repeat(100) });
  const { stdout } = await q.run(["list"]);
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.ok(lines[1]!.endsWith("echo one⏎echo two⏎ [2J"), lines[1]);
  assert.ok(lines[2]!.endsWith(`${"x".repeat(59)}…`), lines[2]);
  assert.ok(!stdout.includes("\x1b"), "an escape character reached the terminal");
});

Deno.test("list fits the terminal's width: the command column shrinks", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await insertJob(store, q.clock, { id: "short", command: "true" });
  await insertJob(store, q.clock, { id: "wide", command: `./deploy.sh ${"--flag ".repeat(30)}` });
  await insertJob(store, q.clock, {
    id: "cjk",
    command: "echo 日本語のテキスト日本語のテキスト日本語",
  });
  const listAt = async (columns: number) => {
    const io = new MemoryIo({ cwd: q.dir, columns, env: { NO_COLOR: "1" } });
    assert.equal(await main(["--db", q.db, "list"], io, { clock: q.clock }), 0);
    return io.stdout.trimEnd().split("\n");
  };
  for (const columns of [80, 70, 120]) {
    const lines = await listAt(columns);
    for (const line of lines) assert.ok(displayWidth(line) <= columns, `${columns}: ${line}`);
    assert.ok(lines[2]!.endsWith("…"), lines[2]);
    assert.ok(lines[1]!.endsWith("true"));
  }
  // Wider than 60: the terminal's width, not the pipe's 60 characters.
  assert.ok(displayWidth((await listAt(200))[2]!) > 120);
  // Too narrow for the other columns: the command keeps a few characters and the line wraps.
  const narrow = await listAt(40);
  assert.match(narrow[2]!, /\s\.\/deploy\.\S*…$/);
});

/** Columns a line takes on a terminal: East Asian wide characters take two. */
function displayWidth(text: string): number {
  let width = 0;
  for (const c of text) {
    width += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\uff00-\uff60]/.test(c) ? 2 : 1;
  }
  return width;
}

Deno.test("list --json prints job objects with every documented field, times in UTC", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  const jobs = await makeOneOfEach(store, q.clock);
  const { code, stdout, stderr } = await q.run(["list", "--json"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  const list = JSON.parse(stdout) as Record<string, unknown>[];
  assert.deepEqual(list.map((j) => j.id), ["d1", "c1", "f1", "r1", "x1", "p1"]);
  for (const job of list) {
    assert.deepEqual(Object.keys(job), JOB_KEYS);
    for (const key of ["run_at", "created_at", "updated_at"]) {
      assert.match(job[key] as string, ISO_UTC);
    }
  }
  const byId = Object.fromEntries(list.map((j) => [j.id, j]));
  assert.deepEqual(byId.r1, {
    id: "r1",
    command: "sleep 60",
    state: "processing",
    priority: 5,
    queue: "default",
    attempts: 1,
    max_retries: 3,
    attempts_left: 3,
    timeout: null,
    cwd: "/tmp",
    env: {},
    run_at: new Date(jobs.processing.runAt).toISOString(),
    created_at: new Date(jobs.processing.createdAt).toISOString(),
    updated_at: new Date(jobs.processing.updatedAt).toISOString(),
    finished_at: null,
    worker_id: "w-test",
    lease_expires_at: new Date(jobs.processing.leaseExpiresAt!).toISOString(),
    last_error: null,
    last_exit_code: null,
    cancel_reason: null,
    after: [],
    waiting_on: 0,
    unique_key: null,
  });
  assert.equal(byId.d1?.state, "dead");
  assert.equal(byId.d1?.attempts_left, 0);
  assert.equal(byId.d1?.last_exit_code, 1);
  assert.equal(byId.d1?.finished_at, new Date(jobs.dead.finishedAt!).toISOString());
  assert.equal(byId.f1?.state, "failed");
  assert.equal(byId.f1?.last_error, "exited with code 1");
  assert.equal(byId.c1?.finished_at, new Date(jobs.completed.finishedAt!).toISOString());
  const dead = JSON.parse((await q.run(["list", "--json", "--state", "dead"])).stdout);
  assert.deepEqual(dead.map((j: { id: string }) => j.id), ["d1"]);
});
