/**
 * `queuectl schedule …` in process, on a fake clock: what add stores, what list shows, pause,
 * resume and remove, and bad input (one line, its exit code, the queue unchanged).
 */

import { PLAIN_JOB } from "../helpers/factory.ts";
import assert from "node:assert/strict";
import { cliFixture, localStamp } from "../helpers/cli_fixture.ts";
import { T0 } from "../helpers/temp.ts";

Deno.test("schedule add stores the job as a canonical template and prints the name", async () => {
  await using q = await cliFixture();
  const added = await q.run([
    "schedule",
    "add",
    "backup",
    "--cron",
    "30  2 * * *",
    "--tz",
    "Europe/Berlin",
    '{"priority":3,"command":"./backup.sh","env":{"B":"2"}}',
    "--priority",
    "8",
    "--env",
    "A=1",
    "--timeout",
    "10m",
  ]);
  assert.equal(added.code, 0, added.stderr);
  assert.equal(added.stdout, "backup\n");
  // T0 is 2026-01-01 00:00 UTC = 01:00 in Berlin: the next 02:30 there is 01:30 UTC.
  const next = T0 + 90 * 60_000;
  assert.equal(added.stderr, `queuectl: note: "backup" runs first at ${localStamp(next)}\n`);
  const s = (await (await q.store()).scheduleGet({ name: "backup" }))!;
  assert.deepEqual(s.spec, { kind: "cron", cron: "30 2 * * *", timeZone: "Europe/Berlin" });
  assert.equal(s.nextAt, next);
  assert.equal(
    s.template,
    `{"command":"./backup.sh","cwd":${JSON.stringify(q.dir)},"env":{"B":"2","A":"1"},` +
      `"priority":8,"timeout":"600000ms"}`,
  );
  const every = await q.run(["schedule", "add", "ping", "--every", "5m", "-c", "curl -fsS x"]);
  assert.equal(every.code, 0, every.stderr);
  assert.equal((await (await q.store()).scheduleGet({ name: "ping" }))!.nextAt, T0 + 300_000);
});

Deno.test("schedule list shows when each runs next, its last run and its job's state", async () => {
  await using q = await cliFixture();
  assert.equal(
    (await q.run(["schedule", "list"])).stdout,
    "No schedules. Add one with `queuectl schedule add NAME --every 1h -c CMD`.\n",
  );
  await q.run(["schedule", "add", "ping", "--every", "1m", "-c", "true"]);
  await q.run(["schedule", "add", "daily", "--cron", "@daily", "--tz", "UTC", "-c", "make"]);
  const store = await q.store();
  q.clock.advance(60_000);
  const fired = await store.scheduleFire({
    name: "ping",
    fireAt: T0 + 60_000,
    nextAt: T0 + 120_000,
    job: PLAIN_JOB,
    defaultMaxRetries: 3,
  });
  await q.run(["schedule", "pause", "daily"]);
  const { code, stdout } = await q.run(["schedule", "list"]);
  assert.equal(code, 0);
  assert.equal(
    stdout,
    [
      "NAME   WHEN               NEXT RUN             LAST RUN             LAST JOB   COMMAND",
      "daily  cron @daily (UTC)  paused               -                    -          make",
      `ping   every 1m           ${localStamp(T0 + 120_000)}  ${localStamp(T0 + 60_000)}  ` +
      `${fired.job!.id} pending  true`,
      "",
    ].join("\n"),
  );
  const json = JSON.parse((await q.run(["schedule", "list", "--json"])).stdout);
  assert.deepEqual(json[1], {
    name: "ping",
    cron: null,
    time_zone: null,
    every: 60,
    job: { command: "true", cwd: q.dir },
    paused: false,
    next_run_at: new Date(T0 + 120_000).toISOString(),
    last_run_at: new Date(T0 + 60_000).toISOString(),
    last_job_id: fired.job!.id,
    last_job_state: "pending",
    runs: 1,
    created_at: new Date(T0).toISOString(),
  });
  assert.equal(json[0].paused, true);
  assert.equal(json[0].next_run_at, null);
});

Deno.test("schedule pause, resume and remove; resume goes on from now", async () => {
  await using q = await cliFixture();
  await q.run(["schedule", "add", "ping", "--every", "1m", "-c", "true"]);
  assert.deepEqual(await q.run(["schedule", "pause", "ping"]), {
    code: 0,
    stdout: "ping\n",
    stderr: "",
  });
  q.clock.advance(10 * 60_000 + 5000);
  const resumed = await q.run(["schedule", "resume", "ping"]);
  assert.equal(resumed.stdout, "ping\n");
  const next = T0 + 11 * 60_000;
  assert.equal(resumed.stderr, `queuectl: note: "ping" runs next at ${localStamp(next)}\n`);
  assert.equal((await (await q.store()).scheduleGet({ name: "ping" }))!.nextAt, next);
  assert.deepEqual(await q.run(["schedule", "remove", "ping"]), {
    code: 0,
    stdout: "ping\n",
    stderr: "",
  });
  assert.deepEqual(await (await q.store()).scheduleList(), []);
});

Deno.test("schedule commands refuse bad input with one line and an exit code, changing nothing", async () => {
  await using q = await cliFixture();
  await q.run(["schedule", "add", "taken", "--every", "1h", "-c", "true"]);
  const before = JSON.stringify(await (await q.store()).scheduleList());
  const cases: [string[], number, RegExp][] = [
    [["add", "x", "-c", "true"], 2, /^Missing when the schedule fires/],
    [["add", "x", "--every", "1s"], 2, /^Missing the job to run/],
    [["add", "bad/name", "--every", "1s", "-c", "t"], 2, /^Invalid schedule name "bad\/name"/],
    [["add", "x", "--every", "1s", "--cron", "@daily", "-c", "t"], 2, /cannot be combined/],
    [["add", "x", "--every", "1s", "--tz", "UTC", "-c", "t"], 2, /^--tz applies to --cron only/],
    [["add", "x", "--every", "500ms", "-c", "t"], 2, /whole seconds, at least 1s/],
    [["add", "x", "--every", "soon", "-c", "t"], 2, /^Invalid value "soon" for --every/],
    [["add", "x", "--cron", "* * *", "-c", "t"], 2, /has 3 fields; give five/],
    [["add", "x", "--cron", "* * * * * *", "-c", "t"], 2, /has 6 fields; give five/],
    [["add", "x", "--cron", "61 * * * *", "-c", "t"], 2, /for --cron: .*minute/],
    [["add", "x", "--cron", "@reboot", "-c", "t"], 2, /is not a known nickname/],
    [["add", "x", "--cron", "0 0 30 2 *", "-c", "t"], 2, /names no date that comes/],
    [["add", "x", "--cron", "@daily", "--tz", "Mars/Base", "-c", "t"], 2, /is not a time zone/],
    [["add", "x", "--every", "1s", '{"id":"a","command":"t"}'], 2, /field "id" cannot be set/],
    [["add", "x", "--every", "1s", '{"command":"t","delay":5}'], 2, /field "delay" cannot be/],
    [["add", "x", "--every", "1s", '{"comand":"t"}'], 2, /"comand" is not a job field/],
    [["add", "x", "--every", "1s", "echo hi"], 2, /^The job is not JSON.*use -c/],
    [["add", "x", "--every", "1s", "-c", "t", "--run-at", "10:00"], 2, /Unknown flag "--run-at"/],
    [["add", "x", "--every", "1s", "-c", "t", "--priority", "11"], 2, /--priority/],
    [["add", "taken", "--every", "1s", "-c", "t"], 3, /^Schedule "taken" already exists/],
    [["remove", "nope"], 4, /^Schedule "nope" not found/],
    [["pause", "nope"], 4, /^Schedule "nope" not found/],
    [["resume", "nope"], 4, /^Schedule "nope" not found/],
    [["remove"], 2, /Missing NAME/],
    [["frobnicate"], 2, /^Unknown command "schedule frobnicate"/],
  ];
  for (const [args, code, message] of cases) {
    const result = await q.run(["schedule", ...args]);
    const what = `schedule ${args.join(" ")}`;
    assert.equal(result.code, code, `${what}: exit ${result.code}, ${result.stderr}`);
    assert.equal(result.stdout, "", what);
    assert.equal(result.stderr.split("\n").length, 2, `${what}: one line: ${result.stderr}`);
    assert.match(result.stderr.replace(/^queuectl: /, ""), message, what);
  }
  assert.equal(JSON.stringify(await (await q.store()).scheduleList()), before);
  assert.equal((await (await q.store()).jobCountByState()).total, 0);
});
