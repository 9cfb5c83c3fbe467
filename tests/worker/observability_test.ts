/**
 * Observability against a live queue, end to end with real processes: `logs --follow` while a
 * worker runs the job (streaming, waiting for a job that has not started, exit codes, escaping),
 * `logs` and `show` of a real run with cut output, and retention by workers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import type { Proc } from "../helpers/process.ts";
import { Sandbox } from "../helpers/sandbox.ts";

/** Whether process `pid` holds `path` open: it got past start-up and opened the queue. */
function holdsOpen(pid: number, path: string): boolean {
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        if (Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`) === path) return true;
      } catch { /* closed meanwhile */ }
    }
  } catch { /* exited */ }
  return false;
}

/**
 * Waits until a `logs --follow` process has opened the queue. Its job cannot have started (no
 * worker runs yet), so from then on it is waiting for it.
 */
async function waitingFollower(sb: Sandbox, proc: Proc): Promise<void> {
  await poll(
    () =>
      proc.exited
        ? assert.fail(`follower exited early: ${proc.stderr}`)
        : holdsOpen(proc.pid, sb.db),
    PROMPT_MS,
    `logs --follow (pid ${proc.pid}) to open the database`,
  );
}

/** Waits for `text` in what `proc` printed on stdout. */
function waitForStdout(proc: Proc, text: string): Promise<true> {
  return poll(
    () =>
      proc.stdout.includes(text) || (proc.exited ? assert.fail(`exited: ${proc.stderr}`) : false),
    PROMPT_MS * 2,
    `${JSON.stringify(text)} from ${proc.args.join(" ")}`,
    { describe: () => `stdout so far: ${JSON.stringify(proc.stdout)}` },
  );
}

Deno.test("logs --follow streams a running job as it writes and exits with the job's code", async () => {
  await using sb = await Sandbox.create();
  // "stream" prints line 1, then waits for a file the test creates only once the follower has
  // shown line 1, then prints a line every 200 ms for ~2 s. The others exit 3 and time out.
  const stream = "echo 'line 1'; i=0; while [ ! -e go ]; do i=$((i+1)); " +
    "if [ $i -gt 600 ]; then exit 99; fi; sleep 0.05; done; " +
    'for n in 2 3 4 5 6 7 8 9 10; do sleep 0.2; echo "line $n"; done; echo done >&2';
  await sb.enqueue([
    { id: "stream", command: stream, priority: 10 },
    { id: "three", command: "echo before; sleep 0.3; echo after >&2; exit 3", max_retries: 0 },
    {
      id: "slow",
      command: "echo started; exec sleep 30",
      timeout: "1s",
      max_retries: 0,
      priority: 1,
    },
  ]);
  // Followers first: none of the jobs has started, and each must wait for its job.
  const follow = {
    stream: sb.spawn(["logs", "stream", "--follow"]),
    three: sb.spawn(["logs", "three", "--follow"]),
    slow: sb.spawn(["logs", "slow", "--follow"]),
  };
  for (const proc of Object.values(follow)) await waitingFollower(sb, proc);
  const worker = sb.spawn(["worker", "run"]);

  await waitForStdout(follow.stream, "line 1\n");
  // Seen while the job runs: it cannot end before "go" exists.
  assert.equal(sb.state("stream"), "processing");
  assert.equal(follow.stream.stdout, "line 1\n");
  assert.equal(follow.stream.exited, false);
  await Deno.writeTextFile(`${sb.dir}/go`, "");

  const streamed = await follow.stream.wait(PROMPT_MS * 2, "logs stream --follow");
  assert.equal(streamed.code, 0, streamed.stderr);
  assert.equal(streamed.stdout, Array.from({ length: 10 }, (_, i) => `line ${i + 1}\n`).join(""));
  assert.equal(streamed.stderr, "done\n", "stderr to stderr");

  const three = await follow.three.wait(PROMPT_MS * 2, "logs three --follow");
  assert.deepEqual([three.code, three.stdout, three.stderr], [3, "before\n", "after\n"]);

  const slow = await follow.slow.wait(PROMPT_MS * 2, "logs slow --follow");
  assert.deepEqual([slow.code, slow.stdout, slow.stderr], [124, "started\n", ""]);
  assert.equal((await sb.show("slow")).history[0]!.outcome, "timeout");

  // Following an attempt that has ended prints it and exits with its code at once.
  const again = await sb.run(["logs", "three", "--follow", "--stdout"]);
  assert.deepEqual([again.code, again.stdout], [3, "before\n"]);

  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("logs --follow escapes a job's control sequences; logs and show read the real run", async () => {
  await using sb = await Sandbox.create();
  await sb.config({ "output-limit": "1KiB" });
  // Escape sequences on both streams, then 3,893 bytes of numbers: more than the limit.
  const evil = "printf 'title\\033]0;pwn\\007|clear\\033[2J|bidi\\342\\200\\256x|cr\\rover\\n'; " +
    "printf 'err\\033[31mred\\n' >&2; seq 1 1000";
  const [id] = await sb.enqueue([{ id: "evil", command: evil }]);
  const follower = sb.spawn(["logs", id!, "--follow"]);
  await waitingFollower(sb, follower);
  const worker = sb.spawn(["worker", "run"]);
  const followed = await follower.wait(PROMPT_MS * 2, "logs evil --follow");
  worker.kill("SIGTERM");

  const firstLine = "title\\x1b]0;pwn\\x07|clear\\x1b[2J|bidi\\u{202e}x|cr\\x0dover\n";
  assert.equal(followed.code, 0, followed.stderr);
  assert.ok(followed.stdout.startsWith(firstLine + "1\n2\n"), followed.stdout);
  assert.equal(followed.stderr, "err\\x1b[31mred\n");
  // deno-lint-ignore no-control-regex
  const live = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/;
  assert.doesNotMatch(followed.stdout + followed.stderr, live);

  // The stored stdout: 512 bytes of head and 512 of tail of 3,934 (41 bytes of escapes and
  // 3,893 of numbers), and the 2,910 bytes cut between them said in words.
  const shown = await sb.json<{ output: { stdout_bytes: number; stdout_tail: string } }>([
    "show",
    id!,
  ]);
  assert.equal(shown.output.stdout_bytes, 3934);
  const logs = await sb.ok(["logs", id!, "--stdout"]);
  assert.ok(logs.startsWith(firstLine + "1\n2\n"), logs);
  assert.ok(logs.includes("\n[… 2.8 KiB of stdout not kept …]\n"), logs);
  assert.ok(logs.endsWith("\n999\n1000\n"), logs);
  const raw = await sb.run(["logs", id!, "--stdout", "--raw"]);
  assert.equal(new TextEncoder().encode(raw.stdout).length, 1024, "--raw: head and tail, 1 KiB");
  assert.ok(raw.stdout.startsWith("title\x1b]0;pwn\x07|clear\x1b[2J|bidi\u202ex|cr\rover\n"));
  assert.equal(raw.stderr, "[… 2.8 KiB of stdout not kept …]\n");
  assert.ok(
    shown.output.stdout_tail.endsWith("991\n992\n993\n994\n995\n996\n997\n998\n999\n1000\n"),
  );

  const human = await sb.ok(["show", id!]);
  assert.match(
    human,
    /\nAttempts\n# {2}STARTED +DURATION +OUTCOME +EXIT +WORKER +ERROR\n1 {2}.* completed +0 +w\d+-\w+\n/,
  );
  assert.match(
    human,
    /\nOutput of attempt 1, stdout \(last 10 lines; `queuectl logs evil` for all\)\n991\n/,
  );
  assert.match(human, /\nOutput of attempt 1, stderr .*\nerr\\x1b\[31mred\n$/);
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

Deno.test("workers delete completed jobs past retain-completed and truncate the WAL", async () => {
  await using sb = await Sandbox.create();
  await sb.config({ "retain-completed": "1s" });
  // Each job prints 300 kB: 16 of them write several MB of WAL.
  const ids = await sb.enqueue(
    Array.from({ length: 16 }, (_, i) => ({ id: `big${i}`, command: "head -c 300000 /dev/zero" })),
  );
  await sb.enqueue([{ id: "kept", command: "exit 1", max_retries: 0 }]);
  // This connection stays open, so no process's close checkpoints and deletes the WAL: only
  // housekeeping can shrink it.
  using _reader = openReader(sb.db);
  const drained = await sb.run(["worker", "run", "--once"], {
    hooks: { housekeepingMs: 3_600_000 },
  });
  assert.equal(drained.code, 0, drained.stderr);
  assert.equal(sb.counts().completed, 16);
  const walBefore = Deno.statSync(`${sb.db}-wal`).size;
  assert.ok(walBefore > 2_000_000, `WAL after the jobs: ${walBefore} bytes`);

  // A worker whose housekeeping runs at its first sweeps.
  const worker = sb.spawn(["worker", "run"], { hooks: { housekeepingMs: 100 } });
  await worker.waitForStderr(
    /retention: deleted 16 completed or cancelled jobs/,
    PROMPT_MS * 2,
    "retention",
  );
  assert.deepEqual(sb.counts(), { dead: 1 });
  for (const id of ids) assert.equal((await sb.run(["show", id])).code, 4);
  // The WAL is reset to (nearly) nothing while the worker runs.
  const walAfter = await poll(
    () => {
      const size = Deno.statSync(`${sb.db}-wal`).size;
      return size < 100_000 && size;
    },
    PROMPT_MS,
    "the WAL to be truncated",
    { describe: () => `${Deno.statSync(`${sb.db}-wal`).size} bytes` },
  );
  assert.ok(walAfter < walBefore / 20, `WAL ${walBefore} -> ${walAfter} bytes`);
  // Dead jobs are kept until pruned by hand.
  assert.equal(sb.state("kept"), "dead");

  worker.kill("SIGTERM");
  assert.equal((await worker.wait(PROMPT_MS)).code, 0);
  await sb.assertNoLeftovers();
});

/** A read-only connection to the database, held open until disposed (it never checkpoints). */
function openReader(path: string): Disposable {
  const db = new DatabaseSync(path, { readOnly: true });
  db.prepare("SELECT count(*) FROM jobs").get();
  return { [Symbol.dispose]: () => db.close() };
}
