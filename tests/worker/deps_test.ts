/**
 * Dependencies (`enqueue --after`) and unique keys (`enqueue --unique-key`) with real processes:
 * a chain and a diamond run in order under two workers, a dead dependency cancels its dependents
 * down the chain, a cancel of a dependency takes its dependents, 16 processes racing for one
 * unique key create exactly one job, and bad input changes nothing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Sandbox } from "../helpers/sandbox.ts";

/** Jobs as JSON lines for `enqueue -`: each appends its id to `order` when it runs. */
function lines(sb: Sandbox, jobs: { id: string; after?: string[] }[]): string {
  return jobs.map((j) =>
    JSON.stringify({
      id: j.id,
      command: `sleep 0.1; echo ${j.id} >> '${sb.dir}/order'`,
      ...(j.after ? { after: j.after } : {}),
    })
  ).join("\n") + "\n";
}

Deno.test("enqueue --after: a chain and a diamond run in order under two workers", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const jobs = [
    { id: "c1" },
    { id: "c2", after: ["c1"] },
    { id: "c3", after: ["c2"] },
    { id: "top" },
    { id: "left", after: ["top"] },
    { id: "right", after: ["top"] },
    { id: "join", after: ["left", "right"] },
  ];
  await sb.ok(["enqueue", "-"], { stdin: lines(sb, jobs) });
  // Before any worker: the waiting ones are pending, each with what it waits on.
  const listed = await sb.json<{ id: string; state: string; waiting_on: number }[]>([
    "list",
  ]);
  assert.deepEqual(
    listed.map((j) => [j.id, j.state, j.waiting_on]),
    jobs.map((j) => [j.id, "pending", j.after?.length ?? 0]),
  );
  assert.match(await sb.ok(["list"]), /join\s+pending\s+5\s+0\s+waiting on 2/);
  const workers = [sb.worker(), sb.worker()];
  for (const job of jobs) await sb.waitForState(job.id, "completed", 30_000);
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.done));
  const order = (await Deno.readTextFile(`${sb.dir}/order`)).trim().split("\n");
  const at = (id: string) => order.indexOf(id);
  assert.equal(order.length, jobs.length);
  assert.ok(at("c1") < at("c2") && at("c2") < at("c3"), order.join(" "));
  assert.ok(at("top") < at("left") && at("top") < at("right"), order.join(" "));
  assert.ok(at("left") < at("join") && at("right") < at("join"), order.join(" "));
  const shown = await sb.ok(["show", "top"]);
  assert.match(shown, /waited on by {0,2}left \(completed\), right \(completed\)/);
  assert.match(
    await sb.ok(["show", "join"]),
    /waits for +left \(completed\), right \(completed\)\n/,
  );
});

Deno.test("enqueue --after: a dead dependency cancels its dependents, down the chain", async () => {
  await using sb = await Sandbox.create();
  await sb.fastConfig();
  const a = (await sb.ok(["enqueue", "-c", "exit 3", "--max-retries", "0"])).trim();
  const b = (await sb.ok(["enqueue", "-c", "echo never", "--after", a])).trim();
  const c = (await sb.ok(["enqueue", "-c", "echo never", "--after", `${b},${a}`])).trim();
  const other = (await sb.ok(["enqueue", "-c", "true"])).trim();
  const worker = sb.worker();
  await sb.waitForState(c, "cancelled", 30_000);
  await sb.waitForState(other, "completed");
  worker.kill("SIGTERM");
  await worker.done;
  assert.equal(sb.state(a), "dead");
  assert.equal(sb.state(b), "cancelled");
  const shownB = await sb.show(b);
  assert.equal(shownB.cancel_reason, `dependency "${a}" is dead`);
  assert.deepEqual(shownB.history, [], "it never ran");
  // A retry of the dead job does not revive them, and says so.
  const retried = await sb.run(["retry", a]);
  assert.equal(retried.code, 0, retried.stderr);
  assert.equal(retried.stdout, `${a}\n`);
  assert.match(retried.stderr, new RegExp(`jobs ${b}, ${c} waited for it and stay cancelled`));
  assert.equal(sb.state(b), "cancelled");
  // Enqueueing after a dead or cancelled job is a conflict.
  await sb.ok(["cancel", a]);
  const late = await sb.run(["enqueue", "-c", "true", "--after", a]);
  assert.equal(late.code, 3);
  assert.ok(late.stderr.startsWith(`queuectl: Cannot wait for job "${a}": it is cancelled`));
});

Deno.test("cancel of a dependency cancels its dependents and names them", async () => {
  await using sb = await Sandbox.create();
  await sb.ok(["enqueue", "-"], {
    stdin: lines(sb, [{ id: "a" }, { id: "b", after: ["a"] }, { id: "c", after: ["b"] }]),
  });
  const out = await sb.run(["cancel", "a"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, "a\n");
  assert.equal(out.stderr, "also cancelled, as they waited for it: b, c\n");
  assert.equal(
    (await sb.show("c")).cancel_reason,
    'dependency "b" was cancelled (dependency "a" was cancelled)',
  );
  const json = await sb.json<{ dependents: string[] }>([
    "cancel",
    "--state",
    "pending",
    "--all",
  ]);
  assert.deepEqual(json.dependents, []);
});

Deno.test("enqueue --unique-key: 16 processes at once create exactly one job", async () => {
  await using sb = await Sandbox.create();
  await sb.init();
  const race = (extra: string[]) =>
    Promise.all(
      Array.from({ length: 16 }, () =>
        sb.run(["enqueue", "-c", "true", "--unique-key", "k", ...extra])),
    );
  const results = await race([]);
  const won = results.filter((r) => r.code === 0);
  assert.equal(won.length, 1, results.map((r) => `${r.code} ${r.stderr}`).join("\n"));
  const id = won[0]!.stdout.trim();
  for (const lost of results.filter((r) => r.code !== 0)) {
    assert.equal(lost.code, 3, lost.stderr);
    assert.ok(
      lost.stderr.startsWith(`queuectl: Unique key "k" is held by job "${id}" (pending)`),
      lost.stderr,
    );
  }
  // With --if-not-exists every one of them prints that job's id, and --json says it existed.
  const again = await race(["--if-not-exists"]);
  assert.deepEqual(again.map((r) => [r.code, r.stdout]), again.map(() => [0, `${id}\n`]));
  const json = await sb.json<{ id: string; existed: boolean }>([
    "enqueue",
    "-c",
    "true",
    "--unique-key",
    "k",
    "--if-not-exists",
  ]);
  assert.deepEqual([json.id, json.existed], [id, true]);
  assert.equal(
    (await sb.json<{ counts: { total: number } }>(["status"])).counts.total,
    1,
  );
  // Once the holder finished, the key is free.
  await sb.workerOnce();
  assert.equal(sb.state(id), "completed");
  const next = await sb.run(["enqueue", "-c", "true", "--unique-key", "k"]);
  assert.equal(next.code, 0, next.stderr);
  assert.notEqual(next.stdout.trim(), id);
});

Deno.test("enqueue --after and --unique-key: bad input exits 2 or 4, one line, queue unchanged", async () => {
  await using sb = await Sandbox.create();
  await sb.ok(["enqueue", "-c", "true", "--id", "a"]);
  const cases: [string[], string | undefined, number, RegExp][] = [
    [
      ["enqueue", "-c", "true", "--after", "nope"],
      undefined,
      4,
      /^queuectl: Job "nope" named in "after" not found/,
    ],
    [
      ["enqueue", "-c", "true", "--after", "a,b c"],
      undefined,
      2,
      /^queuectl: Invalid value for --after/,
    ],
    [["enqueue", "-c", "true", "--id", "x", "--after", "x"], undefined, 2, /names the job itself/],
    [
      ["enqueue", "-c", "true", "--unique-key", " "],
      undefined,
      2,
      /Invalid value " " for --unique-key: it is empty/,
    ],
    [
      ["enqueue", "-", "--unique-key", "k"],
      '{"command":"true"}\n',
      2,
      /--unique-key cannot be used with -/,
    ],
    [
      ["enqueue", "-"],
      '{"id":"p","command":"true","after":["q"]}\n{"id":"q","command":"true"}\n',
      2,
      /^queuectl: stdin line 1: field "after" names job "q", which comes later \(stdin line 2\)/,
    ],
    [
      ["enqueue", "-"],
      '{"command":"true","after":"a"}\n',
      2,
      /field "after" must be an array of job ids/,
    ],
    [
      ["enqueue", "-"],
      '{"command":"true"}\n{"command":"true","after":["zz"]}\n',
      4,
      /"zz" named in "after" not found/,
    ],
  ];
  for (const [args, stdin, code, message] of cases) {
    const result = await sb.run(args, stdin === undefined ? {} : { stdin });
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr.split("\n")[0]!, message);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  }
  assert.equal(
    (await sb.json<{ counts: { total: number } }>(["status"])).counts.total,
    1,
  );
});
