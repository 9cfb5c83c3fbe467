import assert from "node:assert/strict";
import { cliFixture } from "../helpers/cli_fixture.ts";

Deno.test("enqueue --queue stores the queue; list --queue shows only its jobs, with a QUEUE column", async () => {
  await using q = await cliFixture();
  assert.equal((await q.run(["enqueue", "-c", "echo a", "--id", "a"])).code, 0);
  assert.equal((await q.run(["enqueue", "-c", "echo m", "--id", "m", "--queue", "mail"])).code, 0);
  const batch = await q.run(["enqueue", "-"], {
    stdin: '{"command":"echo b","id":"b","queue":"mail"}\n{"command":"echo c","id":"c"}\n',
  });
  assert.equal(batch.code, 0);
  const flagged = await q.run(["enqueue", "-", "--queue", "reports"], {
    stdin: '{"command":"echo r","id":"r","queue":"mail"}\n',
  });
  assert.equal(flagged.code, 0);
  const show = await q.run(["show", "r", "--json"]);
  assert.equal(JSON.parse(show.stdout).queue, "reports");
  const list = await q.run(["list", "--queue", "mail"]);
  assert.equal(list.code, 0);
  const lines = list.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^ID\s+STATE\s+QUEUE\s+PRI/);
  assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3)), [
    ["m", "pending", "mail"],
    ["b", "pending", "mail"],
  ]);
  const json = JSON.parse((await q.run(["list", "--queue", "mail,reports", "--json"])).stdout);
  assert.deepEqual(json.map((j: { id: string }) => j.id), ["m", "b", "r"]);
  assert.equal((await q.run(["list", "--queue", "nope"])).stdout, "No jobs in queue nope.\n");
});

Deno.test("pause, resume, queue set and queue list keep their settings in the database", async () => {
  await using q = await cliFixture();
  await q.run(["enqueue", "-c", "true", "--queue", "mail"]);
  assert.deepEqual(await q.run(["pause", "mail", "later"]), {
    code: 0,
    stdout: "Paused queues later, mail. Running jobs go on.\n",
    stderr: "",
  });
  assert.equal(
    (await q.run(["queue", "set", "mail", "--concurrency", "3"])).stdout,
    "Queue mail: at most 3 jobs run at once, across all workers.\n",
  );
  const list = await q.run(["queue", "list"]);
  assert.equal(
    list.stdout,
    [
      "QUEUE    STATE   LIMIT  PENDING  PROCESSING  FAILED  COMPLETED  DEAD  CANCELLED",
      "default  active  -      0        0           0       0          0     0",
      "later    paused  -      0        0           0       0          0     0",
      "mail     paused  3      1        0           0       0          0     0",
      "",
    ].join("\n"),
  );
  const status = await q.run(["status"]);
  assert.match(status.stdout, /\nPaused queues: later, mail\n/);
  assert.deepEqual(JSON.parse((await q.run(["status", "--json"])).stdout).paused_queues, [
    "later",
    "mail",
  ]);
  assert.equal((await q.run(["resume", "mail"])).stdout, "Resumed queue mail.\n");
  const json = JSON.parse((await q.run(["queue", "list", "--json"])).stdout);
  assert.deepEqual(
    json.queues.map((x: { name: string; paused: boolean; concurrency: number }) => [
      x.name,
      x.paused,
      x.concurrency,
    ]),
    [["default", false, 0], ["later", true, 0], ["mail", false, 3]],
  );
  assert.equal(json.queues[2].counts.pending, 1);
  assert.equal(json.paused_all, false);
  // Every queue, and the ones created later.
  assert.match((await q.run(["pause"])).stdout, /^Paused every queue \(default, later, mail\)/);
  await q.run(["enqueue", "-c", "true", "--queue", "fresh"]);
  const all = JSON.parse((await q.run(["queue", "list", "--json"])).stdout);
  assert.ok(all.paused_all);
  assert.ok(all.queues.every((x: { paused: boolean }) => x.paused));
  assert.match((await q.run(["status"])).stdout, /\nPaused: every queue \(new ones too\)\n/);
  assert.equal(
    (await q.run(["resume"])).stdout,
    "Resumed every queue (default, fresh, later, mail).\n",
  );
  assert.doesNotMatch((await q.run(["status"])).stdout, /Paused/);
});

Deno.test("schedule add --queue puts the schedule's jobs in that queue", async () => {
  await using q = await cliFixture();
  const added = await q.run([
    "schedule",
    "add",
    "mails",
    "--every",
    "1h",
    "-c",
    "true",
    "--queue",
    "mail",
  ]);
  assert.equal(added.code, 0, added.stderr);
  const list = JSON.parse((await q.run(["schedule", "list", "--json"])).stdout);
  assert.equal(list[0].job.queue, "mail");
});
