/**
 * Resource faults (RELIABILITY §2.3): a database that is corrupt in each way C4 lists, not SQLite,
 * from a newer schema, read-only, locked by another process past the busy timeout, or on a full
 * file system. The documented exit code and a one-line message; the file untouched; workers that
 * refuse to start on an unusable database, and back off and resume when a passing fault hits them
 * while they run.
 */

import assert from "node:assert/strict";
import { report, verify } from "./_checker.ts";
import { fileDigest, MISSING } from "../helpers/digest.ts";
import { poll, sleep } from "../helpers/poll.ts";
import { type Finished, type Proc, runProgram } from "../helpers/process.ts";
import { Sandbox } from "../helpers/sandbox.ts";
import { SINGLE } from "./_shapes.ts";

/** The commands every unusable database is tried with, and how long each may take. */
const COMMANDS: string[][] = [
  ["status"],
  ["list"],
  ["enqueue", "-c", "true"],
  ["dlq", "retry", "--all"],
  ["worker", "run", "--once"],
  ["worker", "run"],
  ["worker", "start", "--count", "1"],
];

/** sha-256 of nothing. */
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * The database file and its -wal, by checksum. An empty -wal holds nothing (SQLite reads it as
 * no -wal), so it counts as missing: a refusing command may leave one, never fill or delete one.
 */
async function snapshot(db: string): Promise<Record<string, string>> {
  const wal = await fileDigest(`${db}-wal`);
  return { db: await fileDigest(db), wal: wal === EMPTY ? MISSING : wal };
}

/** One line on stderr, no stack trace. */
function oneLine(result: Finished): string {
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got: ${result.stderr}`);
  assert.ok(!/\n\s+at /.test(result.stderr), "no stack trace");
  return lines[0]!;
}

/** A queuectl database with some history: 300 jobs, half of them run. */
async function populated(sb: Sandbox): Promise<void> {
  await sb.enqueue(Array.from({ length: 300 }, (_, i) => ({ id: `p-${i}`, command: "true" })));
  await sb.config({ "max-retries": "1" });
  await sb.workerOnce();
}

/**
 * Every command exits 6 with the expected message and changes nothing: not the file, not its
 * -wal. Workers refuse at once rather than retrying an unusable file.
 */
async function refusedEverywhere(sb: Sandbox, name: string, message: RegExp): Promise<void> {
  const before = await snapshot(sb.db);
  const outcomes: string[] = [];
  for (const args of COMMANDS) {
    const result = await sb.run(args, { timeoutMs: 20_000 });
    const line = result.stderr.trim().split("\n").at(-1) ?? "";
    outcomes.push(`${args.slice(0, 2).join(" ")}=${result.code}`);
    assert.equal(result.code, 6, `${args.join(" ")}: ${result.stderr}`);
    oneLine(result);
    assert.ok(message.test(line), `${args.join(" ")}: message ${JSON.stringify(line)}`);
    assert.ok(line.includes(sb.db), `the message names the file: ${line}`);
    assert.deepEqual(await snapshot(sb.db), before, `${args.join(" ")} changed the database`);
  }
  report(`C4 ${name}: ${outcomes.join(" ")} files_untouched=yes`);
}

Deno.test("C4: a database truncated to half is refused by every command, untouched", async () => {
  await using sb = await Sandbox.create("c4-truncated", SINGLE.options);
  await populated(sb);
  const size = (await Deno.stat(sb.db)).size;
  await Deno.truncate(sb.db, Math.floor(size / 2));
  await refusedEverywhere(sb, "truncated to half", /corrupt/i);
});

Deno.test("C4: a zero-length database file is refused by every command, untouched", async () => {
  await using sb = await Sandbox.create("c4-empty", SINGLE.options);
  await populated(sb);
  await Deno.truncate(sb.db, 0);
  await refusedEverywhere(sb, "zero-length", /empty/i);
});

Deno.test("C4: a PNG where the database should be is refused, untouched", async () => {
  await using sb = await Sandbox.create("c4-png", SINGLE.options);
  const png = new Uint8Array(4096);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  crypto.getRandomValues(png.subarray(8));
  await Deno.writeFile(sb.db, png);
  await refusedEverywhere(sb, "a PNG", /corrupt|not a queuectl/i);
});

Deno.test("C4: another program's SQLite database is refused, untouched", async () => {
  await using sb = await Sandbox.create("c4-foreign-sqlite", SINGLE.options);
  await runProgram("sqlite3", [
    sb.db,
    "PRAGMA journal_mode=WAL; CREATE TABLE notes(x); INSERT INTO notes VALUES (1);",
  ]);
  await refusedEverywhere(sb, "another program's SQLite file", /not a queuectl/i);
});

Deno.test("C10: a database from a newer queuectl is refused, untouched", async () => {
  await using sb = await Sandbox.create("c10-newer", SINGLE.options);
  await populated(sb);
  await runProgram("sqlite3", [sb.db, "PRAGMA user_version = 99"]);
  await refusedEverywhere(sb, "schema v99", /schema v99 is newer than this queuectl/);
});

Deno.test("C4: a -wal from another queuectl database is refused; database and -wal untouched", async () => {
  await using sb = await Sandbox.create("c4-foreign-wal", SINGLE.options);
  await populated(sb);
  // Another queuectl database whose -wal still holds commits: a reader pins it open while they
  // are made, so they are not checkpointed away, and it is copied beside ours.
  const ours = sb.db;
  const other = sb.db = `${sb.dir}/other.db`;
  await sb.ok(["enqueue", "-c", "echo other"]);
  const pin = sb.spawnRaw("sqlite3", [other], { stdin: "pipe" });
  await pin.write("BEGIN; SELECT count(*) FROM jobs;\n");
  await poll(() => pin.stdout.trim() !== "", 10_000, "the reader to pin the -wal");
  for (let i = 0; i < 3; i++) await sb.ok(["enqueue", "-c", `echo other ${i}`]);
  sb.db = ours;
  await Deno.copyFile(`${other}-wal`, `${sb.db}-wal`);
  await pin.write("COMMIT;\n.quit\n");
  await pin.closeStdin();
  await pin.wait(10_000);
  await refusedEverywhere(sb, "a foreign -wal", /corrupt/i);
  assert.ok((await Deno.stat(`${sb.db}-wal`)).size > 0, "the -wal is still there");
});

Deno.test("C4: a page overwritten with random bytes: commands that meet it exit 6 and write nothing", async () => {
  await using sb = await Sandbox.create("c4-page", SINGLE.options);
  await populated(sb);
  // A random leaf page of the jobs table: every command that reads jobs meets it.
  const pages = (await runProgram("sqlite3", [
    sb.db,
    "SELECT pageno FROM dbstat WHERE name = 'jobs' AND pagetype = 'leaf'",
  ])).trim().split("\n").map(Number);
  const page = pages[Math.floor(Math.random() * pages.length)]!;
  const file = await Deno.open(sb.db, { write: true });
  try {
    const bytes = crypto.getRandomValues(new Uint8Array(4096));
    await file.seek((page - 1) * 4096, Deno.SeekMode.Start);
    await file.write(bytes);
  } finally {
    file.close();
  }
  const outcomes: string[] = [];
  // list of everything reads every leaf, so one command at least must meet the damage.
  for (const args of [...COMMANDS, ["list", "--limit", "1000000"]]) {
    const before = await snapshot(sb.db);
    const proc = sb.spawn(args);
    // A worker that never meets the damaged page has nothing due and waits, as it should: after
    // a few seconds it is stopped, and must stop cleanly.
    const daemon = args[0] === "worker" && args.at(-1) !== "--once";
    if (daemon) {
      await Promise.race([proc.done, sleep(3000)]);
      proc.kill("SIGTERM");
    }
    const result = await proc.wait(20_000);
    outcomes.push(`${args.slice(0, 2).join(" ")}=${result.code}`);
    assert.ok(
      result.code === 0 || result.code === 6,
      `${args.join(" ")} exited ${result.code}: ${result.stderr}`,
    );
    if (result.code === 6) {
      const line = result.stderr.trim().split("\n").at(-1)!;
      assert.ok(/corrupt/i.test(line), `${args.join(" ")}: ${line}`);
      assert.deepEqual(
        await snapshot(sb.db),
        before,
        `${args.join(" ")} reported corruption but wrote`,
      );
    }
  }
  const header = new Uint8Array(16);
  const f = await Deno.open(sb.db);
  await f.read(header);
  f.close();
  report(`C4 random page ${page} of ${pages.length} jobs leaves: ${outcomes.join(" ")}`);
  assert.equal(new TextDecoder().decode(header), "SQLite format 3\0", "never re-initialised");
  assert.ok(outcomes.some((o) => o.endsWith("=6")), "the damage was noticed");
});

Deno.test("C2: a read-only mount: every command exits 6 with one line, nothing changes", async () => {
  await using sb = await Sandbox.create("c2-ro-mount", SINGLE.options);
  const source = `${sb.dir}/data`;
  await Deno.mkdir(source);
  sb.db = `${source}/q.db`;
  await populated(sb);
  await sb.mountReadOnly(source, `${sb.dir}/ro`);
  sb.db = `${sb.dir}/ro/q.db`;
  await refusedEverywhere(sb, "read-only mount", /read-only|writable/i);
});

Deno.test("C2: an immutable database file: writers exit 6, readers work, nothing changes", async () => {
  await using sb = await Sandbox.create("c2-immutable", SINGLE.options);
  await populated(sb);
  await sb.setImmutable(sb.db, true);
  const before = await fileDigest(sb.db);
  const outcomes: string[] = [];
  for (const args of COMMANDS) {
    const result = await sb.run(args, { timeoutMs: 20_000 });
    outcomes.push(`${args.slice(0, 2).join(" ")}=${result.code}`);
    const reader = args[0] === "status" || args[0] === "list";
    if (reader) {
      assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
    } else {
      assert.equal(result.code, 6, `${args.join(" ")}: ${result.stderr}`);
      assert.ok(/read-only/i.test(oneLine(result)), result.stderr);
    }
    assert.equal(await fileDigest(sb.db), before);
  }
  report(`C2 immutable file: ${outcomes.join(" ")} file_untouched=yes`);
});

/** The most lines matching `pattern` that any one process logged in one second. */
function maxLinesPerSecond(procs: Proc[], from: number, to: number, pattern: RegExp): number {
  let max = 0;
  for (const p of procs) {
    const perSecond = new Map<number, number>();
    for (const line of p.lines) {
      if (line.at < from || line.at > to || !pattern.test(line.text)) continue;
      const second = Math.floor(line.at / 1000);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    max = Math.max(max, ...perSecond.values());
  }
  return max;
}

Deno.test("C3: locked past the busy timeout: enqueue exits 5, workers wait and resume", async () => {
  await using sb = await Sandbox.create("c3-locked", SINGLE.options);
  const ids = await sb.enqueue(
    Array.from({ length: 2 }, (_, i) => ({ id: `long-${i}`, command: sb.job("sleep 10") })),
  );
  const workers = [sb.worker(), sb.worker()];
  await Promise.all([sb.waitRun("long-0", 1, 30_000), sb.waitRun("long-1", 1, 30_000)]);
  ids.push(
    ...await sb.enqueue(
      Array.from({ length: 20 }, (_, i) => ({ id: `quick-${i}`, command: sb.job() })),
    ),
  );
  // Both workers are busy with the long jobs; the quick ones wait for the lock to go.
  const holdMs = 8000;
  // The shell waits out a worker's write in progress (its busy timeout is 0 by default) and
  // stops at an error, so "locked" is printed only once the lock is held.
  const lock = sb.spawnRaw("sqlite3", [sb.db], { stdin: "pipe" });
  await lock.write(".timeout 10000\n.bail on\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n");
  await poll(() => lock.stdout.includes("locked"), 10_000, "the lock");
  const lockedAt = Date.now();
  // `worker run --once` started now: jobs are due, so it must not leave before it could look.
  const once = sb.worker({ args: ["--once"] });
  let onceExitedAt = 0;
  once.done.then(() => onceExitedAt = Date.now());
  const enqueue = await sb.run(["enqueue", "-c", "true"]);
  await sleep(Math.max(0, lockedAt + holdMs - Date.now()));
  const stillRunning = workers.filter((w) => !w.exited).length;
  await lock.write("COMMIT;\n.quit\n");
  await lock.closeStdin();
  await lock.wait(10_000);
  const releasedAt = Date.now();
  await sb.settle(60_000);
  const firstQuick = Math.min(
    ...[...sb.ledger().runs.entries()].filter(([id]) => id.startsWith("quick-"))
      .map(([, runs]) => runs[0]!.startUs / 1000),
  );
  const onceResult = await once.wait(30_000);
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.wait(30_000)));
  const errorRate = maxLinesPerSecond([...workers, once], lockedAt, releasedAt, /busy/i);
  verify(sb, "C3 locked past the busy timeout", { acked: ids, crashes: false }, {
    enqueue_exit: enqueue.code,
    enqueue_s: (enqueue.ms / 1000).toFixed(1),
    workers_alive: `${stillRunning}/2`,
    busy_logs_max_per_s: errorRate,
    resumed_after_release_s: ((firstQuick - releasedAt) / 1000).toFixed(2),
    once_exit_after_release_s: ((onceExitedAt - releasedAt) / 1000).toFixed(1),
  });
  assert.equal(enqueue.code, 5, enqueue.stderr);
  assert.ok(/busy/i.test(oneLine(enqueue)), enqueue.stderr);
  assert.ok(
    enqueue.ms > 4000 && enqueue.ms < 6000 + 1000,
    `enqueue gave up after ${enqueue.ms} ms`,
  );
  assert.equal(stillRunning, 2, "workers keep running through the lock");
  assert.ok(errorRate <= 1, `${errorRate} busy lines in one second`);
  assert.ok(errorRate >= 1, "a lock held for seconds is logged");
  assert.ok(firstQuick - releasedAt < 2000, "workers resume within a poll of the release");
  assert.equal(onceResult.code, 0, onceResult.stderr);
  assert.ok(onceExitedAt > releasedAt, "worker run --once did not give up while jobs were due");
  assert.equal(sb.attempts().filter((a) => a.id.startsWith("long-")).length, 2, "not re-run");
});

Deno.test("C1: a full file system: enqueue exits 7, workers back off, all drains once freed", async () => {
  await using sb = await Sandbox.create("c1-full", SINGLE.options);
  const fs = `${sb.dir}/fs`;
  await sb.mountTmpfs(fs, "16m");
  sb.db = `${fs}/q.db`;
  const acked = await sb.enqueue(
    Array.from({ length: 60 }, (_, i) => ({ id: `before-${i}`, command: sb.job("sleep 0.2") })),
  );
  const workers = [sb.worker(), sb.worker()];
  await sb.waitRun("before-0", 1, 30_000);
  // Fill what is left with a ballast file, then enqueue jobs with bulky environments.
  const ballast = await Deno.open(`${fs}/ballast`, { write: true, create: true });
  const chunk = new Uint8Array(64 * 1024).fill(7);
  try {
    for (;;) await ballast.write(chunk);
  } catch (error) {
    if (!(error instanceof Error) || !/space|ENOSPC|os error 28/i.test(error.message)) throw error;
  } finally {
    ballast.close();
  }
  const fullAt = Date.now();
  let full: Finished | null = null;
  const uncertain: string[] = [];
  for (let batch = 0; batch < 200 && full === null; batch++) {
    const jobs = Array.from({ length: 20 }, (_, i) => ({
      id: `full-${batch}-${i}`,
      command: sb.job(),
      env: { PAD: "x".repeat(4000) },
    }));
    const lines = jobs.map((j) => JSON.stringify(j)).join("\n") + "\n";
    const result = await sb.run(["enqueue", "-"], { stdin: lines });
    if (result.code === 0) acked.push(...result.stdout.trim().split("\n"));
    else {
      uncertain.push(...jobs.map((j) => j.id));
      if (result.code === 7) full = result;
      else throw new Error(`enqueue exited ${result.code}: ${result.stderr}`);
    }
  }
  assert.ok(full !== null, "the file system filled up");
  const line = oneLine(full);
  // Workers run on for a while with no space: they must neither exit nor flood their logs.
  await sleep(3000);
  const alive = workers.filter((w) => !w.exited).length;
  const freedAt = Date.now();
  await Deno.remove(`${fs}/ballast`);
  await sb.settle(120_000);
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.wait(30_000)));
  const errorRate = maxLinesPerSecond(workers, fullAt, freedAt, /full|I\/O|error/i);
  verify(sb, "C1 full file system", { acked, uncertain, crashes: false }, {
    enqueue_exit: full.code,
    workers_alive: `${alive}/2`,
    error_logs_max_per_s: errorRate,
    message: JSON.stringify(line.slice(0, 60)),
  });
  assert.equal(full.code, 7);
  assert.ok(/storage full/i.test(line) && line.includes(sb.db), line);
  assert.equal(alive, 2, `workers keep running: ${workers.map((w) => w.stderr.slice(-300))}`);
  assert.ok(errorRate <= 1, `${errorRate} error lines in one second`);
});

Deno.test("C2: the file turns immutable under running workers: they go on, enqueue exits 6", async () => {
  await using sb = await Sandbox.create("c2-immutable-live", SINGLE.options);
  const acked = await sb.enqueue(
    Array.from({ length: 40 }, (_, i) => ({ id: `j-${i}`, command: sb.job("sleep 0.1") })),
  );
  const workers = [sb.worker(), sb.worker()];
  await sb.waitRun("j-0", 1, 30_000);
  const before = await fileDigest(sb.db);
  await sb.setImmutable(sb.db, true);
  const turnedAt = Date.now();
  // Workers hold the file open for writing and commit to the -wal; a new process cannot open it
  // for writing at all.
  const enqueue = await sb.run(["enqueue", "-c", "true"]);
  const done = sb.counts().completed ?? 0;
  await poll(() => (sb.counts().completed ?? 0) > done, 10_000, "workers to go on");
  const unchanged = (await fileDigest(sb.db)) === before;
  await sb.setImmutable(sb.db, false);
  const freedAt = Date.now();
  await sb.settle(60_000);
  for (const w of workers) w.kill("SIGTERM");
  await Promise.all(workers.map((w) => w.wait(30_000)));
  const errorRate = maxLinesPerSecond(workers, turnedAt, freedAt, /error|read-only|retry|backing/i);
  verify(sb, "C2 immutable under running workers", { acked, crashes: false }, {
    enqueue_exit: enqueue.code,
    db_file_unchanged_while_immutable: String(unchanged),
    error_logs_max_per_s: errorRate,
  });
  assert.equal(enqueue.code, 6, enqueue.stderr);
  assert.ok(/read-only/i.test(oneLine(enqueue)), enqueue.stderr);
  assert.ok(errorRate <= 1, `${errorRate} error lines in one second`);
  for (const w of workers) assert.equal(w.result?.code, 0, w.stderr.slice(-400));
});
