import assert from "node:assert/strict";
import { MIGRATIONS } from "../../lib/store/sqlite/migrations.ts";
import { FakeClock } from "../../lib/clock.ts";
import { StoreUnusableError } from "../../lib/errors.ts";
import * as q from "../../lib/store/sqlite/queries.ts";
import { mapSqliteError } from "../../lib/store/sqlite/errors.ts";
import { openSqliteStore } from "../../lib/store/sqlite/open.ts";
import { APPLICATION_ID, SCHEMA_VERSION } from "../../lib/store/sqlite/version.ts";
import { openStore } from "../../lib/store/open.ts";
import { runDeno, runProcess } from "../helpers/cli.ts";
import { treeDigest } from "../helpers/digest.ts";
import { insertJob, makeOneOfEach, moveQueueCounts, PLAIN_JOB } from "../helpers/factory.ts";
import {
  countRowsByState,
  createSchemaThrough,
  makeForeignDb,
  setSchemaVersion,
  sqliteRawReads,
  withRawDb,
} from "../helpers/sqlite_raw.ts";
import { openTestStore, storeFixture, T0, tempDir } from "../helpers/temp.ts";
import { stateCounts, storeContract } from "./store_contract.ts";
import type { Store } from "../../lib/store/store.ts";

storeContract("sqlite", async () => {
  const f = await storeFixture();
  const others: Store[] = [];
  return {
    store: f.store,
    clock: f.clock,
    raw: sqliteRawReads(f.path),
    async openAnother(options = {}) {
      const store = await openTestStore(f.path, f.clock, {
        ...(options.lossy ? { ignoreNotifications: true } : {}),
      });
      others.push(store);
      return store;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(others.map((s) => s.close()));
      await f[Symbol.asyncDispose]();
    },
  };
}, { capabilities: { changeNotification: true, multiHost: false, pidRecovery: true } });

Deno.test("openSqliteStore() creates a WAL database marked as queuectl's, at the current schema", async () => {
  await using f = await storeFixture();
  f.store.close();
  withRawDb(f.path, (db) => {
    const pragma = (name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0];
    assert.equal(pragma("journal_mode"), "wal");
    assert.equal(pragma("application_id"), APPLICATION_ID);
    assert.equal(pragma("user_version"), SCHEMA_VERSION);
    const migrations = db.prepare("SELECT version, applied_at FROM queuectl_migrations").all();
    assert.deepEqual(
      migrations.map((m) => ({ ...m })),
      MIGRATIONS.map((m) => ({ version: m.version, applied_at: T0 })),
    );
    assert.equal(Object.values(db.prepare("PRAGMA integrity_check").get()!)[0], "ok");
  });
  // Nothing but the database is left in the directory (no half-built temp file).
  assert.deepEqual(Object.keys(await treeDigest(f.dir)), ["queue.db"]);
});

Deno.test("openSqliteStore() reopens an existing database without migrating it again", async () => {
  await using dir = await tempDir();
  const clock = new FakeClock(T0);
  const first = await openTestStore(dir.db, clock);
  await makeOneOfEach(first, clock);
  first.close();
  clock.advance(1000);
  const second = await openTestStore(dir.db, clock);
  try {
    assert.equal((await second.jobCountByState()).total, 6);
  } finally {
    second.close();
  }
  const applied = withRawDb(
    dir.db,
    (db) => db.prepare("SELECT count(*) AS n FROM queuectl_migrations").get(),
  );
  assert.equal(applied?.n, MIGRATIONS.length);
});

Deno.test("openSqliteStore() upgrades a v4 database, whose counts a per-row trigger kept", async () => {
  await using dir = await tempDir();
  // A database as queuectl with schema v4 left it, with jobs it counted row by row.
  withRawDb(dir.db, (db) => {
    createSchemaThrough(db, 4);
    for (const id of ["old-1", "old-2", "old-3"]) {
      db.prepare(
        "INSERT INTO jobs (seq, id, command, state, priority, max_retries, cwd, run_at, " +
          "created_at, updated_at) VALUES (NULL, ?, 'true', 'pending', 5, 3, '/', 0, 0, 0)",
      ).run(id);
    }
  });
  const clock = new FakeClock(T0);
  const store = await openTestStore(dir.db, clock);
  try {
    assert.equal((await store.jobCountByState()).pending, 3);
    await insertJob(store, clock);
    await store.jobInsertMany({
      jobs: Array.from({ length: 120 }, (_, i) => ({
        id: undefined,
        command: `echo ${i}`,
        priority: 5,
        maxRetries: null,
        timeoutMs: null,
        cwd: "/",
        env: {},
        runAt: null,
        delayMs: 0,
      })),
      defaultMaxRetries: 3,
    });
    assert.equal((await store.jobCountByState()).pending, 124);
  } finally {
    store.close();
  }
  assert.deepEqual(countRowsByState(dir.db), { pending: 124 });
  withRawDb(dir.db, (db) => {
    assert.equal(Object.values(db.prepare("PRAGMA user_version").get()!)[0], SCHEMA_VERSION);
    const triggers = db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all();
    assert.deepEqual(triggers.map((t) => t.name).sort(), [
      "jobs_count_delete",
      "jobs_count_update",
      "queues_counts",
    ]);
  });
});

Deno.test("openSqliteStore() creates the database 0600", async () => {
  await using dir = await tempDir();
  const store = await openTestStore(dir.db, new FakeClock());
  try {
    await store.configSet({ key: "max-retries", value: "4" });
    for (const suffix of ["", "-wal", "-shm"]) {
      const mode = (await Deno.stat(`${dir.db}${suffix}`)).mode! & 0o777;
      assert.equal(mode.toString(8), "600", `queue.db${suffix}`);
    }
  } finally {
    store.close();
  }
});

Deno.test("openStore() creates the default directory 0700 and the database 0600 under umask 000", async () => {
  await using dir = await tempDir();
  const xdg = `${dir.path}/xdg`;
  // A real process, so the umask applies to it and not to the other tests of this process.
  const result = await runProcess(["enqueue", "-c", "true"], {
    umask: 0o000,
    env: { QUEUECTL_DB: undefined, XDG_DATA_HOME: xdg },
  });
  assert.equal(result.code, 0, result.stderr);
  const mode = async (path: string) => ((await Deno.stat(path)).mode! & 0o777).toString(8);
  assert.equal(await mode(`${xdg}/queuectl`), "700");
  assert.equal(await mode(`${xdg}/queuectl/queuectl.db`), "600");

  // -wal and -shm exist only while a connection is open: hold one open in a child under umask 000.
  const script = `
    import { openStore } from ${
    JSON.stringify(new URL("../../lib/store/open.ts", import.meta.url).href)
  };
    const store = await openStore({ path: Deno.args[0], isDefault: true }, { role: "cli", clock: { now: () => 0, monotonic: () => 0 } });
    await store.configSet({ key: "max-retries", value: "4" });
    const modes = {};
    for (const s of ["", "-wal", "-shm"]) modes[s] = (Deno.statSync(Deno.args[0] + s).mode & 0o777).toString(8);
    store.close();
    Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(modes)));
  `;
  await Deno.writeTextFile(`${dir.path}/hold.ts`, script);
  const fresh = `${dir.path}/xdg2/queuectl/queuectl.db`;
  const held = await runDeno(["run", "-A", "--quiet", "--no-check", `${dir.path}/hold.ts`, fresh], {
    umask: 0o000,
    cwd: dir.path,
  });
  assert.equal(held.code, 0, held.stderr);
  assert.deepEqual(JSON.parse(held.stdout), { "": "600", "-wal": "600", "-shm": "600" });
  assert.equal(await mode(`${dir.path}/xdg2/queuectl`), "700");
});

// Refusals: each of these must fail with StoreUnusableError and leave the directory untouched.
interface Refusal {
  name: string;
  /** Prepares the directory; returns the path to open. */
  setup(dir: string): Promise<string>;
  message: RegExp;
}

const REFUSALS: Refusal[] = [
  {
    name: "a directory",
    setup: async (dir) => {
      await Deno.mkdir(`${dir}/queue.db`);
      return `${dir}/queue.db`;
    },
    message: /^Database path is a directory: .*\/queue\.db$/,
  },
  {
    name: "a missing parent directory",
    setup: (dir) => Promise.resolve(`${dir}/missing/queue.db`),
    message: /^Database directory does not exist: .*\/missing$/,
  },
  {
    name: "an empty file",
    setup: async (dir) => {
      await Deno.writeFile(`${dir}/queue.db`, new Uint8Array(0), { mode: 0o600 });
      return `${dir}/queue.db`;
    },
    message: /^Database file is empty: /,
  },
  {
    name: "a file that is not SQLite",
    setup: async (dir) => {
      const png = new Uint8Array(8192).map((_, i) => (i * 31 + 7) & 0xff);
      png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      await Deno.writeFile(`${dir}/queue.db`, png);
      return `${dir}/queue.db`;
    },
    message: /^Database is corrupt or not a queuectl database: /,
  },
  {
    name: "a text file",
    setup: async (dir) => {
      await Deno.writeTextFile(`${dir}/notes.txt`, "hello\n".repeat(100));
      return `${dir}/notes.txt`;
    },
    message: /corrupt or not a queuectl database/,
  },
  {
    name: "another program's SQLite database",
    setup: (dir) => {
      makeForeignDb(`${dir}/app.db`);
      return Promise.resolve(`${dir}/app.db`);
    },
    message: /^Not a queuectl database: .*\/app\.db$/,
  },
  {
    name: "another program's SQLite database in WAL mode",
    setup: (dir) => {
      makeForeignDb(`${dir}/app.db`, { wal: true });
      return Promise.resolve(`${dir}/app.db`);
    },
    message: /^Not a queuectl database: /,
  },
  {
    name: "another program's database with a hot WAL (it crashed)",
    setup: async (dir) => {
      await Deno.mkdir(`${dir}/live`);
      const live = `${dir}/live/app.db`;
      // Copying the files while the program has the database open leaves what a crash would.
      withRawDb(live, (db) => {
        db.exec("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0");
        db.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('unsaved')");
        for (const suffix of ["", "-wal", "-shm"]) {
          Deno.copyFileSync(live + suffix, `${dir}/app.db${suffix}`);
        }
      });
      await Deno.remove(`${dir}/live`, { recursive: true });
      return `${dir}/app.db`;
    },
    message: /^Not a queuectl database: /,
  },
  {
    name: "a database of a newer queuectl (higher user_version)",
    setup: async (dir) => {
      const store = await openTestStore(`${dir}/queue.db`, new FakeClock(T0));
      store.close();
      setSchemaVersion(`${dir}/queue.db`, SCHEMA_VERSION + 1);
      return `${dir}/queue.db`;
    },
    message: new RegExp(
      `^Database schema v${
        SCHEMA_VERSION + 1
      } is newer than this queuectl \\(supports up to v${SCHEMA_VERSION}\\)`,
    ),
  },
];

for (const refusal of REFUSALS) {
  Deno.test(`openSqliteStore() refuses ${refusal.name} and changes nothing`, async () => {
    await using dir = await tempDir();
    const path = await refusal.setup(dir.path);
    const before = await treeDigest(dir.path);
    await assert.rejects(
      openSqliteStore(path, { synchronous: "FULL", busyTimeoutMs: 1000, clock: new FakeClock(T0) }),
      (error: unknown) => {
        assert.ok(error instanceof StoreUnusableError, String(error));
        assert.equal(error.exitCode, 6);
        assert.match(error.message, refusal.message);
        return true;
      },
    );
    assert.deepEqual(await treeDigest(dir.path), before);
  });
}

Deno.test("openStore() refuses a default location it cannot create, naming the directory", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/file`, "x");
  await assert.rejects(
    // openStore() throws synchronously here (it is not async); the wrapper turns that into a
    // rejection. Store methods themselves must reject, see the contract.
    async () =>
      await openStore({ path: `${dir.path}/file/queuectl/queuectl.db`, isDefault: true }, {
        role: "cli",
        clock: new FakeClock(T0),
      }),
    {
      name: "StoreUnusableError",
      message: /^Cannot create the data directory: .*\/file\/queuectl$/,
    },
  );
});

/** EXPLAIN QUERY PLAN of `sql`, one line per step. */
function plan(
  path: string,
  sql: string,
  params: Record<string, number | string> | (number | string)[],
): string[] {
  return withRawDb(path, (db) => {
    const statement = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
    const rows = Array.isArray(params) ? statement.all(...params) : statement.all(params);
    return rows.map((row) => String(row.detail));
  });
}

function assertNoTableScan(steps: string[], index: string): void {
  const text = steps.join("\n");
  assert.doesNotMatch(text, /\bSCAN jobs\b/, text);
  assert.match(text, new RegExp(`SEARCH jobs USING (COVERING )?INDEX ${index}\\b`), text);
}

Deno.test("the claim walks the jobs_ready index, never scanning jobs or a state's jobs", async () => {
  await using f = await storeFixture();
  // The next priority that has ready jobs: one seek from the end of the index, not the pending
  // jobs of jobs_by_state (which SQLite picks for this without being told).
  const below = plan(f.path, q.READY_PRIORITY_BELOW, [11]);
  assertNoTableScan(below, "jobs_ready");
  assert.doesNotMatch(below.join("\n"), /jobs_by_state|TEMP B-TREE/, below.join("\n"));
  const due = plan(f.path, q.DUE_OF_PRIORITY, [5, 1, 4]);
  assertNoTableScan(due, "jobs_ready");
  assert.doesNotMatch(due.join("\n"), /TEMP B-TREE/, due.join("\n"));
  assert.match(
    plan(f.path, q.JOB_CLAIM, ["w", 1, 1, 1]).join("\n"),
    /SEARCH jobs USING INTEGER PRIMARY KEY \(rowid=\?\)/,
  );
  assertNoTableScan(plan(f.path, q.JOB_NEXT_DUE, {}), "jobs_ready");
});

Deno.test("JOB_LIST walks the primary key backwards, without sorting", async () => {
  await using f = await storeFixture();
  const steps = plan(f.path, q.JOB_LIST, { before: 100, limit: 10 }).join("\n");
  assert.match(steps, /SEARCH jobs USING INTEGER PRIMARY KEY \(rowid<\?\)/, steps);
  assert.doesNotMatch(steps, /TEMP B-TREE|\bSCAN jobs\b/, steps);
});

Deno.test("JOB_LIST_BY_STATES (list --state, dlq list) walks jobs_by_state once per state", async () => {
  await using f = await storeFixture();
  const one = plan(f.path, q.JOB_LIST_BY_STATES[0]!, { s0: "dead", before: 100, limit: 10 });
  assertNoTableScan(one, "jobs_by_state");
  assert.doesNotMatch(one.join("\n"), /TEMP B-TREE/, "sorts instead of reading the index in order");
  for (let n = 2; n <= 5; n++) {
    const params: Record<string, number | string> = { before: 100, limit: 10 };
    for (let i = 0; i < n; i++) {
      params[`s${i}`] = ["pending", "failed", "dead", "completed", "processing"][i]!;
    }
    const steps = plan(f.path, q.JOB_LIST_BY_STATES[n - 1]!, params);
    assertNoTableScan(steps, "jobs_by_state");
    // Each state is a range of the index in seq order, cut at the limit; only those few rows are
    // merged (and sorted), never the matching rows of the whole table.
    assert.equal(
      steps.filter((s) => /SEARCH jobs USING INDEX jobs_by_state \(state=\? AND seq<\?\)/.test(s))
        .length,
      n,
      steps.join("\n"),
    );
  }
});

Deno.test("JOB_COUNTS reads the trigger-kept counts, not the jobs table", async () => {
  await using f = await storeFixture();
  const steps = plan(f.path, q.JOB_COUNTS, {}).join("\n");
  assert.doesNotMatch(steps, /\bjobs\b/, steps);
  assert.match(steps, /job_counts/);
});

Deno.test("openSqliteStore() handles a path with spaces, #, ?, % and non-ASCII characters", async () => {
  await using dir = await tempDir();
  const sub = `${dir.path}/my queue #1?x=%41 ü`;
  await Deno.mkdir(sub);
  const path = `${sub}/q?.db`;
  const clock = new FakeClock(T0);
  for (let i = 0; i < 2; i++) { // create, then reopen (which probes the existing file)
    const store = await openTestStore(path, clock);
    try {
      if (i === 0) await makeOneOfEach(store, clock);
      assert.equal((await store.jobCountByState()).total, 6);
    } finally {
      store.close();
    }
  }
  assert.deepEqual(Object.keys(await treeDigest(sub)), ["q?.db"]);
});

Deno.test("mapSqliteError() turns SQLite result codes into the documented exit codes", () => {
  const sqlite = (errcode: number, message: string) =>
    Object.assign(new Error(message), { errcode });
  const cases: [Error, string, number, RegExp][] = [
    [sqlite(5, "database is locked"), "StoreBusyError", 5, /^Database is busy: \/q\.db/],
    [sqlite(517, "database is locked"), "StoreBusyError", 5, /busy/], // SQLITE_BUSY_SNAPSHOT
    [sqlite(6, "database table is locked"), "StoreBusyError", 5, /busy/],
    [sqlite(13, "database or disk is full"), "StorageFullError", 7, /^Storage full: \/q\.db$/],
    [
      sqlite(8, "attempt to write a readonly database"),
      "StoreUnusableError",
      6,
      /^Database is read-only/,
    ],
    [sqlite(11, "database disk image is malformed"), "StoreUnusableError", 6, /corrupt/],
    [sqlite(26, "file is not a database"), "StoreUnusableError", 6, /corrupt or not a queuectl/],
    [sqlite(14, "unable to open database file"), "StoreUnusableError", 6, /^Cannot open database/],
    [sqlite(10, "disk I/O error"), "StoreUnusableError", 6, /^Disk I\/O error/],
  ];
  for (const [error, name, code, message] of cases) {
    const mapped = mapSqliteError(error, "/q.db") as Error & { exitCode: number; cause: unknown };
    assert.equal(mapped.name, name, error.message);
    assert.equal(mapped.exitCode, code, error.message);
    assert.match(mapped.message, message);
    assert.equal(mapped.cause, error, "the driver error is kept as the cause");
  }
  const other = new Error("no such table: x");
  assert.equal(mapSqliteError(other, "/q.db"), other, "an unknown error passes through");
});

Deno.test("openSqliteStore() upgrades a v5 database to v6: every row kept, ids never reused", async () => {
  await using dir = await tempDir();
  // A v5 database with jobs in every state, their attempts, and a pruned job whose number the
  // sequence must remember.
  const clock = new FakeClock(T0);
  withRawDb(dir.db, (db) => {
    createSchemaThrough(db, 5);
  });
  withRawDb(dir.db, (db) => {
    const insert = db.prepare(
      "INSERT INTO jobs (seq, id, command, state, priority, max_retries, cwd, run_at, " +
        "created_at, updated_at, attempts, budget_used, worker_id, lease_expires_at, " +
        "finished_at, last_error) VALUES (?, ?, 'true', ?, 5, 3, '/', 0, 0, 0, ?, ?, ?, ?, ?, ?)",
    );
    insert.run(1, "1", "pending", 0, 0, null, null, null, null);
    insert.run(2, "2", "processing", 1, 1, "w1", 99, null, null);
    insert.run(3, "3", "completed", 1, 1, null, null, 5, null);
    insert.run(4, "4", "dead", 4, 4, null, null, 6, "exited with code 1");
    insert.run(5, "5", "failed", 1, 1, null, null, null, "exited with code 1");
    insert.run(9, "9", "completed", 1, 1, null, null, 7, null);
    db.exec("DELETE FROM jobs WHERE seq = 9");
    db.exec(
      "UPDATE job_counts SET n = 1 WHERE state IN ('pending', 'processing', 'completed', 'dead', 'failed')",
    );
    db.exec(
      "INSERT INTO attempts (job_seq, attempt, worker_id, started_at, finished_at, outcome) " +
        "VALUES (3, 1, 'w0', 1, 5, 'completed'), (4, 4, 'w0', 1, 6, 'failed')",
    );
    db.exec(
      "INSERT INTO attempts (job_seq, attempt, worker_id, started_at, armed) VALUES (2, 1, 'w1', 1, 1)",
    );
  });
  const store = await openTestStore(dir.db, clock);
  try {
    const counts = await store.jobCountByState();
    assert.deepEqual(counts, {
      pending: 1,
      processing: 1,
      completed: 1,
      failed: 1,
      dead: 1,
      cancelled: 0,
      total: 5,
    });
    assert.equal((await store.jobGet({ id: "4" }))?.lastError, "exited with code 1");
    assert.deepEqual((await store.attemptList({ jobId: "4" })).map((a) => a.outcome), ["failed"]);
    // The pruned job's number is not handed out again.
    const [next] = (await store.jobInsertMany({
      jobs: [PLAIN_JOB],
      defaultMaxRetries: 3,
    })).jobs;
    assert.equal(next?.id, "10");
    // The new state works on the old rows.
    const cancel = await store.jobCancel({ ids: ["1", "5", "2"], reason: "upgrade test" });
    assert.deepEqual(cancel.cancelled.map((j) => j.id), ["1", "5"]);
    assert.deepEqual(cancel.requested.map((j) => j.id), ["2"]);
    assert.equal((await store.jobCountByState()).cancelled, 2);
    assert.deepEqual((await store.jobRetry({ ids: ["1", "4"] })).map((j) => j.state), [
      "pending",
      "pending",
    ]);
  } finally {
    store.close();
  }
  withRawDb(dir.db, (db) => {
    assert.equal(Object.values(db.prepare("PRAGMA user_version").get()!)[0], SCHEMA_VERSION);
    const names = (type: string) =>
      db.prepare(
        `SELECT name FROM sqlite_master WHERE type = '${type}' AND name NOT LIKE 'sqlite_%'`,
      )
        .all().map((t) => t.name).sort();
    assert.deepEqual(names("trigger"), [
      "jobs_count_delete",
      "jobs_count_update",
      "queues_counts",
    ]);
    assert.deepEqual(names("index"), [
      "attempts_failures",
      "job_deps_by_job",
      "jobs_by_state",
      "jobs_cancel_requested",
      "jobs_ready",
      "jobs_ready_queue",
      "jobs_unique_key",
      "schedules_due",
    ]);
    assert.deepEqual(names("table"), [
      "attempts",
      "config",
      "job_counts",
      "job_deps",
      "jobs",
      "outputs",
      "queuectl_meta",
      "queuectl_migrations",
      "queues",
      "schedule_runs",
      "schedules",
      "stats_minute",
      "workers",
    ]);
    assert.equal(db.prepare("PRAGMA integrity_check").get()!.integrity_check, "ok");
  });
});

Deno.test("openSqliteStore() upgrades a database from before schedules, keeping its jobs", async () => {
  await using dir = await tempDir();
  const schedules = MIGRATIONS.find((m) => m.name === "recurring jobs")!;
  withRawDb(dir.db, (db) => {
    createSchemaThrough(db, schedules.version - 1);
    db.prepare(
      "INSERT INTO jobs (seq, id, command, state, priority, max_retries, cwd, run_at, " +
        "created_at, updated_at) VALUES (NULL, 'old', 'true', 'pending', 5, 3, '/', 0, 0, 0)",
    ).run();
    db.exec("UPDATE job_counts SET n = 1 WHERE state = 'pending'");
  });
  const clock = new FakeClock(T0);
  const store = await openTestStore(dir.db, clock);
  try {
    assert.equal((await store.jobGet({ id: "old" }))?.state, "pending");
    await store.scheduleAdd({
      schedule: {
        name: "tick",
        spec: { kind: "every", everyMs: 1000 },
        template: '{"command":"true"}',
        anchor: T0,
        nextAt: T0,
      },
    });
    const fired = await store.scheduleFire({
      name: "tick",
      fireAt: T0,
      nextAt: T0 + 1000,
      job: PLAIN_JOB,
      defaultMaxRetries: 3,
    });
    assert.equal(fired.fired, true);
    assert.equal((await store.jobCountByState()).pending, 2);
  } finally {
    store.close();
  }
  withRawDb(dir.db, (db) => {
    assert.equal(Object.values(db.prepare("PRAGMA user_version").get()!)[0], SCHEMA_VERSION);
  });
});

Deno.test("openSqliteStore() upgrades a database from before counts per queue, recounting them from the jobs", async () => {
  await using dir = await tempDir();
  const perQueue = MIGRATIONS.find((m) => m.name === "job counts per queue")!;
  withRawDb(dir.db, (db) => {
    createSchemaThrough(db, perQueue.version - 1);
    db.exec("INSERT INTO queues (name, created_at, updated_at) VALUES ('mail', 0, 0)");
    const insert = db.prepare(
      "INSERT INTO jobs (seq, id, command, state, priority, max_retries, cwd, run_at, " +
        "created_at, updated_at, attempts, budget_used, finished_at, queue) " +
        "VALUES (NULL, ?, 'true', ?, 5, 3, '/', 0, 0, 0, ?, ?, ?, ?)",
    );
    insert.run("d1", "pending", 0, 0, null, "default");
    insert.run("d2", "completed", 1, 1, 5, "default");
    insert.run("m1", "pending", 0, 0, null, "mail");
    insert.run("m2", "pending", 0, 0, null, "mail");
    insert.run("m3", "dead", 4, 4, 6, "mail");
    insert.run("m4", "failed", 1, 1, null, "mail");
    // A queue without its row in queues (none is made outside the store, but the count is kept).
    insert.run("o1", "pending", 0, 0, null, "orphan");
    // The counters as a bug might have left them: the upgrade counts the rows, not these.
    db.exec("UPDATE job_counts SET n = 7");
  });
  const store = await openTestStore(dir.db, new FakeClock(T0));
  try {
    const byQueue = (await store.queueList()).queues.map((q) => [q.name, q.counts]);
    assert.deepEqual(byQueue, [
      ["default", stateCounts({ pending: 1, completed: 1, total: 2 })],
      ["mail", stateCounts({ pending: 2, dead: 1, failed: 1, total: 4 })],
      ["orphan", stateCounts({ pending: 1, total: 1 })],
    ]);
    assert.deepEqual(
      await store.jobCountByState(),
      stateCounts({ pending: 4, completed: 1, failed: 1, dead: 1, total: 7 }),
    );
    // The counters move per queue from here on: an enqueue into a new queue, a claim, a delete.
    await moveQueueCounts(store, "m5");
    await store.jobDelete({ ids: ["d2"] });
    const after = Object.fromEntries(
      (await store.queueList()).queues.map((
        q,
      ) => [q.name, [q.counts.pending, q.counts.processing, q.counts.total]]),
    );
    assert.deepEqual(after, {
      default: [1, 0, 1],
      mail: [3, 0, 5],
      orphan: [1, 0, 1],
      report: [0, 1, 1],
    });
  } finally {
    store.close();
  }
  withRawDb(dir.db, (db) => {
    assert.equal(Object.values(db.prepare("PRAGMA user_version").get()!)[0], SCHEMA_VERSION);
    const kept = db.prepare(
      "SELECT queue || ':' || state || '=' || n AS c FROM job_counts ORDER BY 1",
    )
      .all().map((r) => r.c);
    const rows = db.prepare(
      "SELECT queue || ':' || state || '=' || count(*) AS c FROM jobs GROUP BY queue, state ORDER BY 1",
    ).all().map((r) => r.c);
    // Rows at zero are kept (default:completed here); the rest is the jobs grouped.
    assert.deepEqual(kept.filter((c) => !String(c).endsWith("=0")), rows);
    assert.equal(db.prepare("PRAGMA integrity_check").get()!.integrity_check, "ok");
  });
});
