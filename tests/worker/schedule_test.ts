/**
 * Recurring jobs with real worker processes: three workers, one schedule firing every second,
 * for about ten seconds. Each fire time is enqueued exactly once (however many schedulers race
 * for it), none is skipped, and each job runs once (the ledger).
 */

import assert from "node:assert/strict";
import { checkLedger } from "../helpers/ledger.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { Sandbox } from "../helpers/sandbox.ts";
import { pgDatabase, psql } from "../helpers/pg.ts";

Deno.test("3 workers and a schedule --every 1s for 10 s: each fire time enqueued exactly once", async () => {
  await using sb = await Sandbox.create("schedule");
  await sb.fastConfig();
  await sb.ok(["schedule", "add", "tick", "--every", "1s", "-c", sb.job()]);
  const workers = [sb.worker(), sb.worker(), sb.worker()];
  const fires = () => Number(sb.query("SELECT fires FROM schedules")[0]!.fires);
  await poll(() => fires() >= 10, 30_000, "10 occurrences", {
    describe: () => `${fires()} fired`,
  });
  await sb.ok(["schedule", "pause", "tick"]);
  for (const worker of workers) worker.kill("SIGTERM");
  const stderr: string[] = [];
  for (const worker of workers) {
    const exit = await worker.wait(PROMPT_MS, "a worker to stop");
    assert.equal(exit.code, 0, exit.stderr);
    stderr.push(exit.stderr);
  }
  // What was enqueued and not run yet runs now (the schedule is paused: nothing new fires).
  await sb.workerOnce();

  const rows = sb.query<{ id: string; env: string }>("SELECT id, env FROM jobs ORDER BY seq");
  const at = rows.map((row) => Date.parse(JSON.parse(row.env).QUEUECTL_SCHEDULED_AT));
  assert.equal(rows.length, fires(), "one job per occurrence");
  assert.equal(new Set(at).size, at.length, `a fire time enqueued twice: ${at}`);
  for (let i = 1; i < at.length; i++) {
    assert.equal(at[i]! - at[i - 1]!, 1000, `fire times ${i - 1} and ${i}: none skipped`);
  }
  const logged = stderr.join("").match(/schedule tick: enqueued job/g)?.length ?? 0;
  assert.equal(logged, rows.length, "each occurrence logged once, by the worker that fired it");

  const ids = rows.map((row) => row.id);
  const report = checkLedger(sb.ledger(), ids);
  assert.deepEqual(report.lost, [], "lost");
  assert.deepEqual(report.duplicated, [], "duplicated");
  assert.deepEqual(report.overlap, [], "overlap");
  assert.equal(sb.counts().completed, ids.length);
  await sb.assertNoLeftovers();
});

Deno.test("3 workers on PostgreSQL and a schedule --every 1s: each fire time enqueued exactly once", async () => {
  await using db = await pgDatabase();
  await using sb = await Sandbox.create("schedule-pg");
  sb.db = db.url;
  await sb.fastConfig();
  await sb.ok(["schedule", "add", "tick", "--every", "1s", "-c", sb.job()]);
  const workers = [sb.worker(), sb.worker(), sb.worker()];
  const fires = async () => Number(await psql(db.url, "SELECT fires FROM queuectl.schedules"));
  let fired = 0;
  await poll(async () => (fired = await fires()) >= 6, 30_000, "6 occurrences", {
    describe: () => `${fired} fired`,
  });
  await sb.ok(["schedule", "pause", "tick"]);
  for (const worker of workers) worker.kill("SIGTERM");
  for (const worker of workers) {
    const exit = await worker.wait(PROMPT_MS, "a worker to stop");
    assert.equal(exit.code, 0, exit.stderr);
  }
  await sb.workerOnce();
  const rows = (await psql(
    db.url,
    "SELECT id || ' ' || (env->>'QUEUECTL_SCHEDULED_AT') || ' ' || state FROM queuectl.jobs " +
      "ORDER BY seq",
  )).split("\n").map((line) => line.split(" "));
  const at = rows.map(([, time]) => Date.parse(time!));
  assert.equal(rows.length, await fires(), "one job per occurrence");
  for (let i = 1; i < at.length; i++) {
    assert.equal(
      at[i]! - at[i - 1]!,
      1000,
      `fire times ${i - 1} and ${i}: once each, none skipped`,
    );
  }
  const ids = rows.map(([id]) => id!);
  const report = checkLedger(sb.ledger(), ids);
  assert.deepEqual(report.lost, [], "lost");
  assert.deepEqual(report.duplicated, [], "duplicated");
  assert.deepEqual(rows.map(([, , state]) => state), ids.map(() => "completed"));
  await sb.assertNoLeftovers();
});
