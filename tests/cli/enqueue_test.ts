import assert from "node:assert/strict";
import { runProcess } from "../helpers/cli.ts";
import { cliFixture } from "../helpers/cli_fixture.ts";
import { insertJob, makeJob } from "../helpers/factory.ts";
import { hookEnv } from "../helpers/hooks.ts";
import { T0 } from "../helpers/temp.ts";

type JobJson = Record<string, unknown>;

async function listJson(
  q: { run(args: string[]): Promise<{ stdout: string }> },
): Promise<JobJson[]> {
  return JSON.parse((await q.run(["list", "--json"])).stdout);
}

Deno.test("enqueue JSON prints the new id and stores the job with defaults", async () => {
  await using q = await cliFixture();
  assert.deepEqual(await q.run(["enqueue", '{"command":"echo hi"}']), {
    code: 0,
    stdout: "1\n",
    stderr: "",
  });
  const [job] = await listJson(q);
  assert.deepEqual(job, {
    id: "1",
    command: "echo hi",
    state: "pending",
    priority: 5,
    queue: "default",
    attempts: 0,
    max_retries: 3,
    attempts_left: 4,
    timeout: null,
    cwd: q.dir,
    env: {},
    run_at: "2026-01-01T00:00:00.000Z",
    created_at: "2026-01-01T00:00:00.000Z",
    updated_at: "2026-01-01T00:00:00.000Z",
    finished_at: null,
    worker_id: null,
    lease_expires_at: null,
    last_error: null,
    last_exit_code: null,
    cancel_reason: null,
    after: [],
    waiting_on: 0,
    unique_key: null,
  });
});

Deno.test("enqueue generates increasing ids", async () => {
  await using q = await cliFixture();
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await q.run(["enqueue", "-c", "true"])).stdout);
  assert.deepEqual(ids, ["1\n", "2\n", "3\n"]);
});

Deno.test("enqueue takes every JSON field", async () => {
  await using q = await cliFixture();
  const job = {
    id: "deploy:web-1.2",
    command: "./deploy.sh",
    priority: 9,
    max_retries: 0,
    timeout: "90s",
    delay: "1h30m",
    cwd: "sub/dir",
    env: { STAGE: "prod", EMPTY: "" },
  };
  const { code, stdout } = await q.run(["enqueue", JSON.stringify(job), "--json"]);
  assert.equal(code, 0);
  const printed = JSON.parse(stdout);
  assert.equal(printed.id, "deploy:web-1.2");
  assert.equal(printed.priority, 9);
  assert.equal(printed.max_retries, 0);
  assert.equal(printed.attempts_left, 1);
  assert.equal(printed.timeout, 90);
  assert.equal(printed.run_at, "2026-01-01T01:30:00.000Z");
  assert.equal(printed.cwd, `${q.dir}/sub/dir`);
  assert.deepEqual(printed.env, { STAGE: "prod", EMPTY: "" });
  const { existed, ...stored } = printed;
  assert.equal(existed, false);
  assert.deepEqual((await listJson(q))[0], stored, "--json prints what was stored");
});

Deno.test("enqueue -c with flags sets priority, delay, retries and timeout", async () => {
  await using q = await cliFixture();
  const { code, stdout } = await q.run([
    "enqueue",
    "-c",
    "make test",
    "--id",
    "t1",
    "--priority",
    "8",
    "--delay",
    "5m",
    "--max-retries",
    "7",
    "--timeout",
    "0",
  ]);
  assert.equal(code, 0);
  assert.equal(stdout, "t1\n");
  const [job] = await listJson(q);
  assert.equal(job?.command, "make test");
  assert.equal(job?.priority, 8);
  assert.equal(job?.run_at, "2026-01-01T00:05:00.000Z");
  assert.equal(job?.max_retries, 7);
  assert.equal(job?.timeout, 0);
});

Deno.test("enqueue flags override JSON fields", async () => {
  await using q = await cliFixture();
  await q.run([
    "enqueue",
    '{"command":"x","id":"from-json","priority":2,"max_retries":1,"delay":"1d"}',
    "--id",
    "from-flag",
    "--priority",
    "10",
    "--max-retries",
    "4",
    "--run-at",
    "2026-01-01T00:10:00Z",
  ]);
  const [job] = await listJson(q);
  assert.equal(job?.id, "from-flag");
  assert.equal(job?.priority, 10);
  assert.equal(job?.max_retries, 4);
  assert.equal(job?.run_at, "2026-01-01T00:10:00.000Z");
});

Deno.test("enqueue --run-at reads ISO 8601 with an offset", async () => {
  await using q = await cliFixture();
  await q.run(["enqueue", "-c", "x", "--run-at", "2026-03-01T09:30:00+02:00"]);
  assert.equal((await listJson(q))[0]?.run_at, "2026-03-01T07:30:00.000Z");
});

Deno.test("enqueue --run-at reads local time in the TZ of the process", async () => {
  await using q = await cliFixture();
  const env = { TZ: "Europe/Berlin" };
  const summer = await runProcess([
    "--db",
    q.db,
    "enqueue",
    "-c",
    "x",
    "--run-at",
    "2030-07-01 10:00",
    "--json",
  ], { env });
  assert.equal(summer.code, 0, summer.stderr);
  assert.equal(JSON.parse(summer.stdout).run_at, "2030-07-01T08:00:00.000Z");
  const winter = await runProcess([
    "--db",
    q.db,
    "enqueue",
    "-c",
    "x",
    "--run-at",
    "2030-01-15 10:00:30",
    "--json",
  ], { env });
  assert.equal(JSON.parse(winter.stdout).run_at, "2030-01-15T09:00:30.000Z");
  // Human output shows local times too.
  const list = await runProcess(["--db", q.db, "list"], { env });
  assert.match(list.stdout, /2030-07-01 10:00:00/);
  assert.match(list.stdout, /2030-01-15 10:00:30/);
});

Deno.test("enqueue uses the max-retries setting for jobs without max_retries", async () => {
  await using q = await cliFixture();
  await q.run(["config", "set", "max-retries", "6"]);
  await q.run(["enqueue", "-c", "a"]);
  await q.run(["enqueue", '{"command":"b","max_retries":1}']);
  const jobs = await listJson(q);
  assert.deepEqual(jobs.map((j) => j.max_retries), [6, 1]);
});

Deno.test("enqueue - stores every line in one go and prints each id", async () => {
  await using q = await cliFixture();
  const stdin = [
    '{"command":"echo a","id":"a"}',
    "",
    '{"command":"echo b","priority":9}',
    "   ",
    '{"command":"echo c","delay":60}\r',
    '{"command":"echo d"}',
  ].join("\n");
  const { code, stdout, stderr } = await q.run(["enqueue", "-"], { stdin });
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "a\n2\n3\n4\n");
  const jobs = await listJson(q);
  assert.deepEqual(jobs.map((j) => j.command), ["echo a", "echo b", "echo c", "echo d"]);
  assert.equal(jobs[2]?.run_at, "2026-01-01T00:01:00.000Z");
});

Deno.test("enqueue - --json prints an array; flags apply to every line", async () => {
  await using q = await cliFixture();
  const stdin = '{"command":"a"}\n{"command":"b","priority":1}\n';
  const { stdout } = await q.run(["enqueue", "-", "--json", "--priority", "7"], { stdin });
  const printed = JSON.parse(stdout) as JobJson[];
  assert.ok(Array.isArray(printed));
  assert.deepEqual(printed.map((j) => [j.command, j.priority]), [["a", 7], ["b", 7]]);
});

Deno.test("enqueue - stores nothing when a line is bad, and names the line", async () => {
  await using q = await cliFixture();
  const stdin =
    '{"command":"a"}\n{"command":"b"}\n\n{"command":"c","prority":3}\n{"command":"d"}\n';
  const { code, stdout, stderr } = await q.run(["enqueue", "-"], { stdin });
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(
    stderr,
    /^queuectl: stdin line 4: field "prority" is not a job field: did you mean "priority"\?/,
  );
  assert.deepEqual(await listJson(q), []);
});

Deno.test("enqueue - stores nothing when one id exists already", async () => {
  await using q = await cliFixture();
  await insertJob(await q.store(), q.clock, { id: "old" });
  const stdin = '{"command":"a","id":"new1"}\n{"command":"b","id":"old"}\n{"command":"c"}\n';
  const { code, stderr } = await q.run(["enqueue", "-"], { stdin });
  assert.equal(code, 3);
  assert.match(stderr, /Job "old" already exists/);
  assert.deepEqual((await listJson(q)).map((j) => j.id), ["old"]);
});

Deno.test("enqueue --if-not-exists keeps the existing job and prints its id", async () => {
  await using q = await cliFixture();
  const old = await makeJob(await q.store(), q.clock, "completed", { id: "once", command: "old" });
  const again = await q.run(["enqueue", '{"id":"once","command":"new"}', "--if-not-exists"]);
  assert.deepEqual(again, { code: 0, stdout: "once\n", stderr: "" });
  const json = JSON.parse(
    (await q.run(["enqueue", "-c", "new", "--id", "once", "--if-not-exists", "--json"])).stdout,
  );
  assert.equal(json.command, "old");
  assert.equal(json.state, "completed");
  assert.equal(json.updated_at, new Date(old.updatedAt).toISOString());
  // On stdin: existing ids are kept, new ones stored.
  const mixed = await q.run(["enqueue", "-", "--if-not-exists"], {
    stdin: '{"id":"once","command":"x"}\n{"id":"fresh","command":"y"}\n',
  });
  assert.equal(mixed.stdout, "once\nfresh\n");
  assert.deepEqual((await listJson(q)).map((j) => [j.id, j.command]), [["once", "old"], [
    "fresh",
    "y",
  ]]);
  // Without the flag it is a conflict.
  assert.equal((await q.run(["enqueue", "-c", "x", "--id", "once"])).code, 3);
});

Deno.test("enqueue accepts a run_at in the past: due at once, with a note past a minute", async () => {
  await using q = await cliFixture();
  const minute = await q.run([
    "enqueue",
    "-c",
    "x",
    "--run-at",
    new Date(T0 - 60_000).toISOString(),
  ]);
  assert.deepEqual(minute, { code: 0, stdout: "1\n", stderr: "" });
  const late = new Date(T0 - 3 * 86_400_000 - 7_200_000).toISOString();
  assert.deepEqual(await q.run(["enqueue", "-c", "x", "--run-at", late]), {
    code: 0,
    stdout: "2\n",
    stderr: `queuectl: note: --run-at "${late}" is 3d2h in the past; the job is due now\n`,
  });
  // The JSON field, and on stdin with the line named; --json keeps the note on stderr.
  const stdin = [
    '{"command":"a"}',
    '{"command":"b","run_at":"2025-12-31T23:00:00Z"}',
    '{"command":"c","run_at":"2025-12-31T23:59:30Z"}',
  ].join("\n");
  const batch = await q.run(["enqueue", "-", "--json"], { stdin });
  assert.equal(batch.code, 0);
  assert.equal(
    batch.stderr,
    'queuectl: note: stdin line 2: field "run_at" "2025-12-31T23:00:00Z" is 1h in the past; ' +
      "the job is due now\n",
  );
  assert.deepEqual(
    (JSON.parse(batch.stdout) as JobJson[]).map((j) => j.run_at),
    ["2026-01-01T00:00:00.000Z", "2025-12-31T23:00:00.000Z", "2025-12-31T23:59:30.000Z"],
  );
  // Many such lines: three notes, then a count.
  const many = Array.from({ length: 5 }, () => '{"command":"d","run_at":"2025-06-01 00:00"}');
  const noisy = await q.run(["enqueue", "-"], { stdin: many.join("\n"), env: { TZ: "UTC" } });
  assert.equal(noisy.code, 0);
  const lines = noisy.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^queuectl: note: stdin line 1: field "run_at" "2025-06-01 00:00" is /);
  assert.equal(lines[3], "queuectl: note: … and 2 more like these");
  // A past job is due: it is the first a worker claims.
  const store = await q.store();
  q.clock.set(T0);
  const next = await store.jobNextDue();
  assert.equal(next.dueNow, true);
});

Deno.test("enqueue --run-at and run_at take everyday forms", async () => {
  await using q = await cliFixture();
  // T0 is 2026-01-01 00:00 UTC; TZ of the in-process run is the test process's, so use offsets of
  // a real process for local forms.
  const env = { TZ: "Asia/Tokyo" };
  const cases: [string, string][] = [
    ["10:00", "2026-01-01T01:00:00.000Z"],
    ["tomorrow 08:30", "2026-01-01T23:30:00.000Z"],
    ["2026-02-01", "2026-01-31T15:00:00.000Z"],
  ];
  for (const [text, iso] of cases) {
    const { code, stdout, stderr } = await runProcess(
      ["--db", q.db, "enqueue", "-c", "x", "--run-at", text, "--json"],
      {
        env: { ...env, ...hookEnv({ clockOffsetMs: T0 - Date.now() }) },
      },
    );
    assert.equal(code, 0, stderr);
    assert.equal(JSON.parse(stdout).run_at, iso, text);
  }
});

Deno.test("enqueue --env K=V (repeatable) and --cwd DIR set the job's environment and directory", async () => {
  await using q = await cliFixture();
  await Deno.mkdir(`${q.dir}/site`);
  const { code, stdout, stderr } = await q.run([
    "enqueue",
    "-c",
    "make deploy",
    "--env",
    "STAGE=prod",
    "--env",
    "URL=https://x.example/?a=b",
    "--env",
    "EMPTY=",
    "--cwd",
    "site",
    "--json",
  ]);
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  const job = JSON.parse(stdout);
  assert.deepEqual(job.env, { STAGE: "prod", URL: "https://x.example/?a=b", EMPTY: "" });
  assert.equal(job.cwd, `${q.dir}/site`);
  // With JSON, the flags override the fields: --env key by key, --cwd the whole field.
  const merged = await q.run([
    "enqueue",
    '{"command":"x","env":{"A":"json","B":"json"},"cwd":"/nowhere"}',
    "--env",
    "A=flag",
    "--cwd",
    "/tmp",
    "--json",
  ]);
  assert.equal(merged.code, 0, merged.stderr);
  assert.equal(merged.stderr, "", "the overridden /nowhere is not warned about");
  assert.deepEqual(JSON.parse(merged.stdout).env, { A: "flag", B: "json" });
  assert.equal(JSON.parse(merged.stdout).cwd, "/tmp");
  // On stdin they apply to every line.
  const batch = await q.run(["enqueue", "-", "--env", "K=v", "--json"], {
    stdin: '{"command":"a"}\n{"command":"b","env":{"J":"w"}}\n',
  });
  assert.deepEqual((JSON.parse(batch.stdout) as JobJson[]).map((j) => j.env), [
    { K: "v" },
    { J: "w", K: "v" },
  ]);
});

Deno.test("enqueue accepts a cwd that does not exist here, with a one-line warning", async () => {
  await using q = await cliFixture();
  const missing = `${q.dir}/not-yet`;
  assert.deepEqual(await q.run(["enqueue", "-c", "x", "--cwd", "not-yet"]), {
    code: 0,
    stdout: "1\n",
    stderr: `queuectl: warning: cwd "${missing}" does not exist here; ` +
      "the job fails to start unless it exists when it runs\n",
  });
  await Deno.writeTextFile(`${q.dir}/file`, "");
  const file = await q.run(["enqueue", '{"command":"x","cwd":"file"}']);
  assert.equal(file.code, 0);
  assert.equal(
    file.stderr,
    `queuectl: warning: cwd "${q.dir}/file" is not a directory; ` +
      "the job fails to start unless it is one when it runs\n",
  );
  // One warning per directory, however many jobs name it; nothing for one that exists.
  const stdin = ['{"command":"a","cwd":"gone"}', '{"command":"b","cwd":"gone"}', '{"command":"c"}']
    .join("\n");
  const batch = await q.run(["enqueue", "-"], { stdin });
  assert.equal(batch.stdout, "3\n4\n5\n");
  assert.equal(batch.stderr.split("\n").length, 2, batch.stderr);
  assert.match(batch.stderr, /^queuectl: warning: cwd ".*\/gone" does not exist here/);
  assert.equal((await listJson(q)).length, 5);
});

Deno.test("enqueue - with no jobs on stdin succeeds and enqueues nothing", async () => {
  await using q = await cliFixture();
  for (const stdin of ["", "\n", "\n  \n\t\n"]) {
    assert.deepEqual(await q.run(["enqueue", "-"], { stdin }), { code: 0, stdout: "", stderr: "" });
    assert.deepEqual(await q.run(["enqueue", "-", "--json"], { stdin }), {
      code: 0,
      stdout: "[]\n",
      stderr: "",
    });
    assert.deepEqual(await q.run(["enqueue", "-", "--wait", "--json"], { stdin }), {
      code: 0,
      stdout: "[]\n",
      stderr: "",
    });
  }
  // Nothing to store: the database is not even created.
  await assert.rejects(() => Deno.stat(q.db), Deno.errors.NotFound);
});

Deno.test("enqueue --wait prints the ids, then what wait prints; --json the final job", async () => {
  await using q = await cliFixture();
  const store = await q.store();
  await makeJob(store, q.clock, "dead", { id: "d1", command: "exit 1", maxRetries: 0 });
  await makeJob(store, q.clock, "completed", { id: "c1", command: "true" });
  // --if-not-exists on finished jobs: the wait ends at once, no worker needed.
  const args = (id: string) => ["enqueue", "-c", "x", "--id", id, "--if-not-exists", "--wait"];
  assert.deepEqual(await q.run(args("c1")), { code: 0, stdout: "c1\nc1 completed\n", stderr: "" });
  assert.deepEqual(await q.run(args("d1")), {
    code: 1,
    stdout: "d1\nd1 dead (exited with code 1)\n",
    stderr: "",
  });
  // --json: the job object the README promises, as it ended.
  const one = await q.run([...args("c1"), "--json"]);
  assert.equal(one.code, 0);
  const job = JSON.parse(one.stdout);
  assert.equal(job.id, "c1");
  assert.equal(job.state, "completed");
  assert.equal(Object.keys(job).length, 23);
  // enqueue -: an array, in input order.
  const many = await q.run(["enqueue", "-", "--if-not-exists", "--wait", "--json"], {
    stdin: '{"id":"c1","command":"x"}\n{"id":"d1","command":"x"}\n',
  });
  assert.equal(many.code, 1);
  assert.deepEqual((JSON.parse(many.stdout) as JobJson[]).map((j) => [j.id, j.state]), [
    ["c1", "completed"],
    ["d1", "dead"],
  ]);
  const text = await q.run(["enqueue", "-", "--if-not-exists", "--wait"], {
    stdin: '{"id":"c1","command":"x"}\n{"id":"d1","command":"x"}\n',
  });
  assert.equal(text.stdout, "c1\nd1\nc1 completed\nd1 dead (exited with code 1)\n");
});
