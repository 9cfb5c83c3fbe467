/**
 * The PostgreSQL store: the whole store contract on a fresh database per test (shared server,
 * tests/helpers/pg.ts; a missing server fails these tests, never skips them), then what only
 * PostgreSQL has.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FakeClock } from "../../lib/clock.ts";
import { isTransient, StoreBusyError, StoreUnusableError } from "../../lib/errors.ts";
import { createPool, LIMITS, parseTarget } from "../../lib/store/postgres/connect.ts";
import { mapPgError } from "../../lib/store/postgres/errors.ts";
import type { NewJob } from "../../lib/job/job.ts";
import { MIGRATIONS } from "../../lib/store/postgres/migrations.ts";
import { openPostgresStore } from "../../lib/store/postgres/open.ts";
import type { Store } from "../../lib/store/store.ts";
import {
  BUCKET,
  compile,
  compileScript,
  JOB_CLAIM,
  JOB_FINISH_AND_CLAIM,
  MIGRATION_CREATE_SCHEMA,
  MIGRATION_CREATE_TABLE,
} from "../../lib/store/postgres/queries.ts";
import { PG_SCHEMA_VERSION } from "../../lib/store/postgres/version.ts";
import { runProcess } from "../helpers/cli.ts";
import { insertJob, moveQueueCounts, TEST_HOST_ID } from "../helpers/factory.ts";
import { poll, PROMPT_MS, within } from "../helpers/poll.ts";
import { pgDatabase, pgProgram, psql } from "../helpers/pg.ts";
import { pgServer } from "../helpers/pg_server.ts";
import type { PgServer } from "../helpers/pg_server.ts";
import { pgRawReads, pgStoreFixture } from "../helpers/pg_store.ts";
import { T0 } from "../helpers/temp.ts";
import { storeContract } from "./store_contract.ts";
import { bucketOf } from "../../lib/stats.ts";

function newJob(overrides: Partial<NewJob> = {}): NewJob {
  return {
    id: undefined,
    command: "true",
    priority: 5,
    maxRetries: 3,
    timeoutMs: null,
    cwd: "/tmp",
    env: {},
    runAt: T0,
    delayMs: 0,
    ...overrides,
  };
}

storeContract("postgres", async () => {
  const f = await pgStoreFixture();
  return {
    store: f.store,
    clock: f.clock,
    raw: pgRawReads(f.url),
    openAnother: (options = {}) =>
      f.open({
        ...(options.lossy
          ? { ignoreNotifications: true, safetyPollMs: { listening: 300, polling: 300 } }
          : {}),
        ...(options.slowPoll ? { safetyPollMs: { listening: 60_000, polling: 60_000 } } : {}),
      }),
    [Symbol.asyncDispose]: () => f[Symbol.asyncDispose](),
  };
}, { capabilities: { changeNotification: true, multiHost: true, pidRecovery: true } });

// ---------------------------------------------------------------------------------------------
// What only PostgreSQL has: schemas and migrations, deadlines, reconnects, notifications.
// ---------------------------------------------------------------------------------------------

/** Polls an async condition every 50 ms until it holds; fails after timeoutMs. */
async function waitForAsync(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!await condition()) {
    if (performance.now() > deadline) {
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Rows of a psql query, one string per row. */
async function rows(url: string, sql: string): Promise<string[]> {
  return (await psql(url, sql)).split("\n").filter(Boolean);
}

/** A digest of everything in the database's user schemas (tables and their rows). */
async function digest(url: string): Promise<string> {
  const tables = await rows(
    url,
    `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables
     WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  const parts = [tables.join(",")];
  for (const table of tables) {
    parts.push(
      await psql(
        url,
        `SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM ${table} t`,
      ),
    );
  }
  return parts.join("|");
}

Deno.test("openPostgresStore() creates the schema at the current version, once", async () => {
  await using f = await pgStoreFixture();
  assert.equal(PG_SCHEMA_VERSION, MIGRATIONS[MIGRATIONS.length - 1]!.version);
  const applied = await rows(f.url, "SELECT version, name FROM queuectl.queuectl_migrations");
  assert.deepEqual(applied, MIGRATIONS.map((m) => `${m.version}|${m.name}`));
  // Reopening migrates nothing; another schema is another queue.
  await insertJob(f.store, f.clock, { id: "in-default" });
  const again = await f.open();
  assert.equal((await again.jobGet({ id: "in-default" }))?.id, "in-default");
  const other = await openPostgresStore(`${f.url}?schema=second_queue`, {
    role: "cli",
    testClock: f.clock,
  });
  try {
    assert.equal(await other.jobGet({ id: "in-default" }), undefined);
    assert.notEqual(other.queueId, f.store.queueId);
    assert.equal(other.location, `${f.url}?schema=second_queue`);
  } finally {
    await other.close();
  }
  assert.deepEqual(
    await rows(f.url, "SELECT count(*) FROM queuectl.queuectl_migrations"),
    [String(MIGRATIONS.length)],
  );
  assert.deepEqual(
    await rows(
      f.url,
      "SELECT nspname FROM pg_namespace WHERE nspname IN ('queuectl', 'second_queue') ORDER BY 1",
    ),
    ["queuectl", "second_queue"],
  );
});

Deno.test("ten processes opening an empty database at once: one migrates, the others wait and go on", async () => {
  await using db = await pgDatabase();
  const runs = await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) =>
        runProcess(["enqueue", "-c", "true", "--id", `p${i}`], { env: { QUEUECTL_DB: db.url } }),
    ),
  );
  for (const [i, run] of runs.entries()) {
    assert.deepEqual([run.code, run.stdout, run.stderr], [0, `p${i}\n`, ""], `process ${i}`);
  }
  // Each migration applied once, by one of them.
  assert.deepEqual(
    await rows(db.url, "SELECT version FROM queuectl.queuectl_migrations ORDER BY version"),
    MIGRATIONS.map((m) => String(m.version)),
  );
  assert.equal(MIGRATIONS[MIGRATIONS.length - 1]!.version, PG_SCHEMA_VERSION);
  assert.deepEqual(await rows(db.url, "SELECT count(*) FROM queuectl.jobs"), ["10"]);
  assert.deepEqual(await rows(db.url, "SELECT count(*) FROM queuectl.meta"), ["1"]);
});

Deno.test("a newer schema is refused with exit 6, and nothing is written", async () => {
  await using f = await pgStoreFixture();
  await insertJob(f.store, f.clock, { id: "old" });
  await f.store.close();
  await psql(
    f.url,
    `INSERT INTO queuectl.queuectl_migrations VALUES (${
      PG_SCHEMA_VERSION + 1
    }, 'from the future', 0)`,
  );
  const before = await digest(f.url);
  await assert.rejects(
    openPostgresStore(f.url, { role: "cli" }),
    (error: unknown) => {
      assert.ok(error instanceof StoreUnusableError, String(error));
      assert.equal(error.exitCode, 6);
      assert.match(
        error.message,
        new RegExp(`^Database schema v${PG_SCHEMA_VERSION + 1} is newer than this queuectl`),
      );
      return true;
    },
  );
  for (const args of [["enqueue", "-c", "true"], ["worker", "run", "--once"], ["status"]]) {
    const run = await runProcess(args, { env: { QUEUECTL_DB: f.url } });
    assert.equal(run.code, 6, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, /is newer than this queuectl .*\(upgrade queuectl\)/);
  }
  assert.equal(await digest(f.url), before, "the database changed");
});

Deno.test("a read-only command on a database without the queue creates nothing", async () => {
  await using db = await pgDatabase();
  const before = await digest(db.url);
  const url = `${db.url}?schema=not_there`;
  const status = await runProcess(["status", "--json"], { env: { QUEUECTL_DB: url } });
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).counts.total, 0);
  const list = await runProcess(["list"], { env: { QUEUECTL_DB: url } });
  assert.equal(list.code, 0, list.stderr);
  assert.equal(await digest(db.url), before);
  assert.deepEqual(
    await rows(db.url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'not_there'"),
    ["0"],
  );
  // The first write creates it.
  const enqueue = await runProcess(["enqueue", "-c", "true"], { env: { QUEUECTL_DB: url } });
  assert.equal(enqueue.code, 0, enqueue.stderr);
  assert.deepEqual(await rows(db.url, "SELECT count(*) FROM not_there.jobs"), ["1"]);
});

Deno.test("jobClaim() never takes more than its limit, with many claims at once", async () => {
  await using f = await pgStoreFixture();
  const stores = [f.store, await f.open(), await f.open(), await f.open()];
  await f.store.jobInsertMany({
    jobs: Array.from({ length: 300 }, (_, i) => newJob({ id: `j${i}`, priority: 1 + (i % 10) })),
    defaultMaxRetries: 3,
  });
  const taken = new Map<string, number>();
  await Promise.all(stores.flatMap((store, s) =>
    [1, 2, 5, 7].map(async (limit) => {
      for (;;) {
        const jobs = await store.jobClaim({
          host: TEST_HOST_ID,
          workerId: `w${s}-${limit}`,
          leaseMs: 60_000,
          limit,
        });
        assert.ok(jobs.length <= limit, `a claim with limit ${limit} took ${jobs.length}`);
        if (jobs.length === 0) return;
        // Best first within a claim.
        const priorities = jobs.map((j) => j.priority);
        assert.deepEqual(priorities, [...priorities].sort((a, b) => b - a));
        for (const job of jobs) taken.set(job.id, (taken.get(job.id) ?? 0) + 1);
      }
    })
  ));
  assert.equal(taken.size, 300);
  assert.ok([...taken.values()].every((n) => n === 1), "a job was claimed twice");
  assert.deepEqual(await rows(f.url, "SELECT count(*) FROM queuectl.attempts"), ["300"]);
  assert.deepEqual(
    await rows(
      f.url,
      "SELECT count(*) FROM queuectl.jobs WHERE state = 'processing' AND attempts = 1",
    ),
    ["300"],
  );
});

Deno.test("the claim reads one index range per priority, however many jobs wait for later", async () => {
  await using f = await pgStoreFixture();
  await psql(
    f.url,
    `INSERT INTO queuectl.jobs (seq, id, command, state, priority, max_retries, cwd, run_at,
       created_at, updated_at)
     SELECT i, 'later' || i, 'true', 'pending', 10, 3, '/', ${T0} + 3600000, ${T0}, ${T0}
     FROM generate_series(1, 100000) i;
     SELECT setval('queuectl.job_seq', 100000);
     ANALYZE queuectl.jobs;`,
  );
  await insertJob(f.store, f.clock, { id: "due", priority: 1 });
  const statement = compile(JOB_CLAIM, "queuectl");
  const values: Record<string, string> = {
    now: String(T0),
    limit: "1",
    arm_first: "0",
    lease_ms: "1000",
    worker_id: "'w'",
    host: "'h'",
    queues: "NULL",
    limited: "false",
  };
  const explain = await psql(
    f.url,
    `PREPARE claim AS ${statement.text};
     EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE claim(${
      statement.names.map((n) => values[n]).join(", ")
    });`,
  );
  type PlanNode = { "Node Type": string; "Relation Name"?: string; Plans?: PlanNode[] };
  const [{ Plan: root }] = JSON.parse(explain.slice(explain.indexOf("["))) as [
    { Plan: PlanNode & { "Shared Hit Blocks": number; "Shared Read Blocks": number } },
  ];
  const nodes: PlanNode[] = [];
  const walk = (node: PlanNode) => {
    nodes.push(node);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(root);
  const scans = nodes.filter((n) => n["Node Type"] === "Seq Scan" && n["Relation Name"] === "jobs");
  assert.deepEqual(scans, [], "the claim scans the jobs table");
  assert.ok(JSON.stringify(nodes).includes("jobs_ready"), "the claim does not use jobs_ready");
  // 100,000 jobs of priority 10 wait for later: the claim of the due one reads a few pages only
  // (one ordered scan of jobs_ready would step over all of them, several hundred pages).
  const pages = root["Shared Hit Blocks"] + root["Shared Read Blocks"];
  assert.ok(pages < 150, `the claim read ${pages} pages`);
  const row = await rows(f.url, "SELECT id, state FROM queuectl.jobs WHERE id = 'due'");
  assert.deepEqual(row, ["due|processing"]);
});

/**
 * The step's plan (EXPLAIN ANALYZE of JOB_FINISH_AND_CLAIM) for the outcome of a job claimed just
 * before, after `setup` (SQL); `generic`: planned as worker connections do (plan_cache_mode
 * force_generic_plan). Returns the nodes that read the attempts table, and the attempt's outcome.
 */
async function outcomeLookups(setup: string, generic: boolean) {
  await using f = await pgStoreFixture();
  if (setup !== "") await psql(f.url, setup);
  const job = await insertJob(f.store, f.clock, { id: "running" });
  const [claimed] = await f.store.jobClaim({
    host: TEST_HOST_ID,
    workerId: "w",
    leaseMs: 60_000,
    limit: 1,
    armFirst: 1,
  });
  assert.equal(claimed?.id, job.id);
  const statement = compile(JOB_FINISH_AND_CLAIM, "queuectl");
  const finish = JSON.stringify([{
    ord: 0,
    job_id: job.id,
    attempt: 1,
    worker_id: "w",
    state: "completed",
    refund: 0,
    run_in_ms: null,
    terminal: true,
    error: null,
    exit_code: 0,
    outcome: "completed",
    outcome_code: 0,
    signal: null,
    require_expired: false,
  }]);
  const values: Record<string, string> = {
    now: String(T0 + 1000),
    finish: `'${finish}'`,
    arm: "'[]'",
    cancelled_code: "1",
    limit: "0",
    arm_first: "0",
    lease_ms: "0",
    worker_id: "''",
    host: "''",
    queues: "NULL",
    limited: "false",
  };
  const explain = await psql(
    f.url,
    `${generic ? "SET plan_cache_mode = force_generic_plan;" : ""}
     PREPARE step AS ${statement.text};
     EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE step(${
      statement.names.map((n) => values[n]).join(", ")
    });`,
  );
  type PlanNode = {
    "Node Type": string;
    "Relation Name"?: string;
    "Index Cond"?: string;
    Plans?: PlanNode[];
  };
  const [{ Plan: root }] = JSON.parse(explain.slice(explain.indexOf("["))) as [{ Plan: PlanNode }];
  const lookups: PlanNode[] = [];
  const walk = (node: PlanNode) => {
    if (node["Relation Name"] === "attempts" && node["Node Type"] !== "ModifyTable") {
      lookups.push(node);
    }
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(root);
  const outcome = await rows(
    f.url,
    `SELECT outcome FROM queuectl.attempts WHERE job_seq = ${job.seq}`,
  );
  return { lookups, outcome };
}

function assertByKey(lookups: { "Node Type": string; "Index Cond"?: string }[]): void {
  assert.ok(lookups.length > 0, "the outcome does not read the attempts");
  for (const node of lookups) {
    assert.match(node["Index Cond"] ?? node["Node Type"], /job_seq = /, JSON.stringify(node));
  }
}

Deno.test("an outcome looks its attempt row up by its whole key, also on a fresh queue", async () => {
  // A fresh queue (a few hundred jobs done, never analyzed): joined by the outcome's attempt
  // number, the planner looked the row up by that number alone and filtered by job, a walk of
  // every attempt with that number.
  const { lookups, outcome } = await outcomeLookups(
    `INSERT INTO queuectl.jobs (seq, id, command, state, priority, max_retries, cwd, run_at,
       created_at, updated_at, attempts, budget_used, finished_at)
     SELECT i, 'done' || i, 'true', 'completed', 5, 3, '/', ${T0}, ${T0}, ${T0}, 1, 1, ${T0}
     FROM generate_series(1, 1000) i;
     INSERT INTO queuectl.attempts (job_seq, attempt, worker_id, started_at, finished_at, outcome)
     SELECT i, 1, 'w0', ${T0}, ${T0}, 'completed' FROM generate_series(1, 1000) i;
     SELECT setval('queuectl.job_seq', 1000);`,
    false,
  );
  assertByKey(lookups);
  assert.deepEqual(outcome, ["completed"]);
});

Deno.test("an outcome looks its attempt row up by its key in a plan made on an empty attempts table", async () => {
  // A worker connection's generic plan is made at its first step, when a new queue's attempts
  // table is empty and never analyzed: given \`finished_at IS NULL\`, the planner read the whole
  // table per outcome (bench/RESULTS.md, PostgreSQL).
  const { lookups, outcome } = await outcomeLookups("", true);
  assertByKey(lookups);
  assert.deepEqual(outcome, ["completed"]);
});

Deno.test("a batch at least as large as the jobs table was at its last ANALYZE analyzes it", async () => {
  await using f = await pgStoreFixture();
  const reltuples = async () =>
    Number(
      (await rows(
        f.url,
        "SELECT reltuples FROM pg_class WHERE oid = 'queuectl.jobs'::regclass",
      ))[0],
    );
  const batch = (n: number, from: number) =>
    f.store.jobInsertMany({
      jobs: Array.from({ length: n }, (_, i) => newJob({ id: `b${from + i}` })),
      defaultMaxRetries: 3,
    });
  // Never analyzed (-1); small batches leave it to autovacuum.
  await batch(10, 0);
  assert.equal(await reltuples(), -1);
  await batch(600, 10);
  assert.equal(await reltuples(), 610);
  // Smaller than the table was: not again.
  await batch(600, 610);
  assert.equal(await reltuples(), 610);
});

Deno.test("the claim never steps over the jobs of a paused queue", async () => {
  await using f = await pgStoreFixture();
  await psql(
    f.url,
    `INSERT INTO queuectl.jobs (seq, id, command, state, priority, max_retries, cwd, run_at,
       created_at, updated_at, queue)
     SELECT i, 'held' || i, 'true', 'pending', 10, 3, '/', ${T0}, ${T0}, ${T0}, 'held'
     FROM generate_series(1, 20000) i;
     SELECT setval('queuectl.job_seq', 20000);
     INSERT INTO queuectl.queues (name, paused, created_at, updated_at)
       VALUES ('held', true, ${T0}, ${T0});
     ANALYZE queuectl.jobs;`,
  );
  await insertJob(f.store, f.clock, { id: "due", priority: 1 });
  const statement = compile(JOB_CLAIM, "queuectl");
  const values: Record<string, string> = {
    now: String(T0),
    limit: "1",
    lease_ms: "1000",
    worker_id: "'w'",
    host: "'h'",
    queues: "NULL",
    limited: "false",
    arm_first: "0",
  };
  const explain = await psql(
    f.url,
    `PREPARE claim AS ${statement.text};
     EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE claim(${
      statement.names.map((n) => values[n]).join(", ")
    });`,
  );
  const [{ Plan: root }] = JSON.parse(explain.slice(explain.indexOf("["))) as [
    { Plan: { "Shared Hit Blocks": number; "Shared Read Blocks": number } },
  ];
  // 20,000 due jobs of priority 10 in the paused queue: the claim reads a few pages only.
  const pages = root["Shared Hit Blocks"] + root["Shared Read Blocks"];
  assert.ok(pages < 150, `the claim read ${pages} pages`);
  const row = await rows(f.url, "SELECT id, state FROM queuectl.jobs WHERE id = 'due'");
  assert.deepEqual(row, ["due|processing"]);
});

/** Pids of the server processes serving this database's sessions named `app` (application_name). */
async function backends(url: string, app: string): Promise<number[]> {
  return (await rows(
    url,
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
       AND application_name = '${app}' AND pid <> pg_backend_pid()`,
  )).map(Number);
}

async function withPrivateDb(
  fn: (server: PgServer, url: string) => Promise<void>,
): Promise<void> {
  await using server = await pgServer();
  await psql(server.url(), "CREATE DATABASE q");
  await fn(server, server.url({ database: "q" }));
}

Deno.test({
  name:
    "every call has a client-side deadline: a server that stops answering fails it, then the store recovers",
  // A stopped backend's socket stays open until the server is disposed of.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPrivateDb(async (_server, url) => {
      const store = await openPostgresStore(url, { role: "worker", limits: { deadlineMs: 1500 } });
      let stopped: number[] = [];
      try {
        await store.configSet({ key: "max-retries", value: "4" });
        stopped = await backends(url, "queuectl worker");
        assert.ok(stopped.length > 0, "no backend of the store found");
        for (const pid of stopped) Deno.kill(pid, "SIGSTOP");
        const started = performance.now();
        await assert.rejects(store.configGetAll(), (error: unknown) => {
          assert.ok(error instanceof StoreUnusableError, String(error));
          assert.equal(error.reason, "unreachable");
          assert.match(
            error.message,
            /^Database server is unreachable: .*: no answer within 1\.5 s$/,
          );
          return true;
        });
        const ms = performance.now() - started;
        assert.ok(ms >= 1400 && ms < 5000, `failed after ${Math.round(ms)} ms`);
        // The pool was replaced: the next call gets a new session and an answer.
        assert.deepEqual(await store.configGetAll(), { "max-retries": "4" });
        const now = await backends(url, "queuectl worker");
        assert.ok(now.some((pid) => !stopped.includes(pid)), "the new session is the store's");
      } finally {
        for (const pid of stopped) Deno.kill(pid, "SIGCONT");
        await store.close();
      }
    });
  },
});

Deno.test("a lock held past lock_timeout fails a write busy (exit 5), and the store goes on", async () => {
  await using f = await pgStoreFixture({ limits: { lockTimeoutMs: 300 } });
  await f.store.configSet({ key: "max-retries", value: "1" });
  const holder = new Deno.Command(pgProgram("psql")!, {
    args: [
      "-X",
      "-q",
      "-d",
      f.url,
      "-c",
      "BEGIN; LOCK TABLE queuectl.config IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(5); COMMIT;",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForAsync(
      async () =>
        (await rows(
          f.url,
          "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'queuectl.config'::regclass",
        ))[0] === "1",
      5000,
      "the lock",
    );
    await assert.rejects(
      f.store.configSet({ key: "max-retries", value: "2" }),
      (error: unknown) => {
        assert.ok(error instanceof StoreBusyError, String(error));
        assert.equal(error.exitCode, 5);
        assert.match(error.message, /lock_timeout/);
        return true;
      },
    );
  } finally {
    // The holder's session would keep the lock through its pg_sleep even after psql is gone.
    await psql(
      f.url,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'psql' AND datname = current_database() AND pid <> pg_backend_pid()",
    );
    await holder.status;
  }
  await f.store.configSet({ key: "max-retries", value: "3" });
  assert.deepEqual(await f.store.configGetAll(), { "max-retries": "3" });
});

Deno.test("the store reconnects after the server restarts, and so does its LISTEN", async () => {
  await withPrivateDb(async (server, url) => {
    const clock = new FakeClock(T0);
    const store = await openPostgresStore(url, { role: "worker", testClock: clock });
    const writer = await openPostgresStore(url, { role: "cli", testClock: clock });
    try {
      await insertJob(store, clock, { id: "before" });
      // Listening before the restart.
      let mark = store.changeMark();
      while (await store.waitForChange({ since: mark, timeoutMs: 200 })) mark = store.changeMark();
      await server.restart();
      // The first calls may fail while sessions are re-established (unreachable, transient).
      await waitForAsync(
        async () => {
          try {
            return (await store.jobGet({ id: "before" }))?.id === "before";
          } catch (error) {
            if (isTransient(error)) return false;
            throw error;
          }
        },
        15_000,
        "the store to answer again",
      );
      // The listener came back and counts as a change; then another commit wakes it at once.
      await waitForAsync(
        async () => !await store.waitForChange({ since: store.changeMark(), timeoutMs: 150 }),
        15_000,
        "quiet",
      );
      const since = store.changeMark();
      const started = performance.now();
      const woken = store.waitForChange({ since, timeoutMs: 10_000, interest: "work" });
      await insertJob(writer, clock, { id: "after" });
      assert.equal(await woken, true);
      assert.ok(performance.now() - started < 1500, "woken by the safety poll, not a notification");
    } finally {
      await Promise.all([store.close(), writer.close()]);
    }
  });
});

Deno.test("pg_terminate_backend of a store's sessions: calls fail transiently, then go on", async () => {
  await using f = await pgStoreFixture({ role: "worker" });
  const writer = await f.open({ role: "cli" });
  await insertJob(writer, f.clock, { id: "a" });
  // Wait once so that the LISTEN session exists too.
  await f.store.waitForChange({ since: f.store.changeMark(), timeoutMs: 100 });
  await waitForAsync(
    async () => (await backends(f.url, "queuectl listen")).length === 1,
    5000,
    "LISTEN",
  );
  const terminated = await rows(
    f.url,
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()
       AND application_name IN ('queuectl worker', 'queuectl listen')`,
  );
  assert.ok(terminated.length >= 2, `terminated ${terminated.length} sessions`);
  await waitForAsync(
    async () => {
      try {
        return (await f.store.jobClaim({
          host: TEST_HOST_ID,
          workerId: "w",
          leaseMs: 60_000,
          limit: 1,
        }))
          .length === 1;
      } catch (error) {
        if (isTransient(error)) return false;
        throw error;
      }
    },
    10_000,
    "a claim after the terminations",
  );
  // The next wait listens again (nobody waited meanwhile, so nobody listened): a new job then
  // wakes a waiter for work within moments.
  await waitForAsync(
    async () => {
      await f.store.waitForChange({ since: f.store.changeMark(), timeoutMs: 100 });
      return (await backends(f.url, "queuectl listen")).length === 1;
    },
    10_000,
    "LISTEN again",
  );
  await waitForAsync(
    async () => !await f.store.waitForChange({ since: f.store.changeMark(), timeoutMs: 150 }),
    10_000,
    "quiet",
  );
  const since = f.store.changeMark();
  const started = performance.now();
  const woken = f.store.waitForChange({ since, timeoutMs: 10_000, interest: "work" });
  await insertJob(writer, f.clock, { id: "b" });
  assert.equal(await woken, true);
  assert.ok(performance.now() - started < 1500, "woken by the safety poll, not a notification");
});

Deno.test("waitForChange() for work sleeps through outcomes and output, and wakes for new work", async () => {
  await using f = await pgStoreFixture();
  const worker = await f.open({ role: "worker" });
  const idle = await f.open({
    role: "worker",
    safetyPollMs: { listening: 60_000, polling: 60_000 },
  });
  await insertJob(worker, f.clock, { id: "r" });
  const [job] = await worker.jobClaim({
    host: TEST_HOST_ID,
    workerId: "w",
    leaseMs: 60_000,
    limit: 1,
  });
  assert.equal(job?.id, "r");
  await worker.attemptArm([{ jobId: job!.id, attempt: job!.attempts, workerId: "w" }]);
  await waitForAsync(
    async () => !await idle.waitForChange({ since: idle.changeMark(), timeoutMs: 150 }),
    10_000,
    "quiet",
  );
  const anything = idle.waitForChange({ since: idle.changeMark(), timeoutMs: 10_000 });
  const work = idle.waitForChange({ since: idle.changeMark(), timeoutMs: 1500, interest: "work" });
  const bytes = new TextEncoder().encode("progress\n");
  const capture = { head: bytes, tail: new Uint8Array(), total: bytes.length };
  const ref = { jobId: job!.id, attempt: job!.attempts, workerId: "w" };
  assert.deepEqual(await worker.attemptSaveOutput([{ ...ref, stdout: capture, stderr: capture }]), [
    true,
  ]);
  assert.equal(await within(anything, 5000, "a wait for any change"), true, "output woke nobody");
  assert.equal(await work, false, "a wait for work woke for output");
  const waitWork = idle.waitForChange({
    since: idle.changeMark(),
    timeoutMs: 10_000,
    interest: "work",
  });
  await insertJob(worker, f.clock, { id: "new-work" });
  assert.equal(await within(waitWork, 5000, "a wait for work"), true);
});

Deno.test("listen=off: no LISTEN session; waits poll and still see changes within about a second", async () => {
  await using f = await pgStoreFixture();
  const polling = await f.open({ role: "worker" });
  const url = `${f.url}?listen=off`;
  const store = await openPostgresStore(url, { role: "worker", testClock: f.clock });
  try {
    assert.equal(store.capabilities.changeNotification, false);
    assert.equal(polling.capabilities.changeNotification, true);
    assert.equal(store.location, url);
    await waitForAsync(
      async () => !await store.waitForChange({ since: store.changeMark(), timeoutMs: 100 }),
      10_000,
      "quiet",
    );
    const since = store.changeMark();
    const started = performance.now();
    const woken = store.waitForChange({ since, timeoutMs: 10_000 });
    await insertJob(f.store, f.clock, { id: "polled" });
    assert.equal(await woken, true);
    assert.ok(performance.now() - started < 2500, "the poll took too long");
    assert.deepEqual(
      await rows(
        f.url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'queuectl listen'",
      ),
      ["0"],
    );
  } finally {
    await store.close();
  }
});

Deno.test("times are the database's: a store without a test clock stamps the server's now()", async () => {
  await using f = await pgStoreFixture({ clock: null });
  const [serverBefore] = await rows(
    f.url,
    "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
  );
  const job = await f.store.jobInsertMany({
    jobs: [newJob({ runAt: null, delayMs: 10_000 })],
    defaultMaxRetries: 3,
  });
  const [serverAfter] = await rows(
    f.url,
    "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
  );
  const created = job.jobs[0]!.createdAt;
  assert.ok(created >= Number(serverBefore) && created <= Number(serverAfter), `${created}`);
  assert.equal(job.jobs[0]!.runAt, created + 10_000);
  const now = await f.store.now();
  assert.ok(now >= created && now <= Number(serverAfter) + 1000);
});

Deno.test("mapPgError() turns driver and server errors into the documented exit codes", () => {
  const pg = (code: string, message = "x") => Object.assign(new Error(message), { code });
  const cases: [Error, string, number, RegExp][] = [
    [pg("40001"), "StoreBusyError", 5, /^Database is busy: L: a serialization conflict$/],
    [pg("40P01"), "StoreBusyError", 5, /deadlock/],
    [pg("55P03"), "StoreBusyError", 5, /lock_timeout/],
    [pg("57014"), "StoreBusyError", 5, /statement_timeout/],
    [pg("53300"), "StoreBusyError", 5, /too many connections/],
    [pg("53100"), "StorageFullError", 7, /^Storage full: L$/],
    [pg("25006"), "StoreUnusableError", 6, /^Database is read-only: L$/],
    [pg("42501", "permission denied for schema q"), "StoreUnusableError", 6, /^Permission denied/],
    [
      pg("28P01", 'password authentication failed for user "u"'),
      "StoreUnusableError",
      6,
      /refused the login/,
    ],
    [pg("3D000"), "StoreUnusableError", 6, /^Database does not exist: L$/],
    [
      pg("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1"),
      "StoreUnusableError",
      6,
      /^Database server is unreachable: L: connect ECONNREFUSED/,
    ],
    [
      pg("CONNECTION_CLOSED", "write CONNECTION_CLOSED h:5432"),
      "StoreUnusableError",
      6,
      /unreachable: L: CONNECTION_CLOSED/,
    ],
    [
      pg("57P01", "terminating connection due to administrator command"),
      "StoreUnusableError",
      6,
      /unreachable/,
    ],
    [pg("ENOTFOUND"), "StoreUnusableError", 6, /^Database host not found: L$/],
  ];
  for (const [error, name, code, message] of cases) {
    const mapped = mapPgError(error, "L") as Error & { exitCode: number; cause: unknown };
    assert.equal(mapped.name, name, (error as Error & { code: string }).code);
    assert.equal(mapped.exitCode, code, error.message);
    assert.match(mapped.message, message);
    assert.equal(mapped.cause, error, "the driver error is kept as the cause");
  }
  const unreachableError = mapPgError(pg("ECONNRESET"), "L");
  assert.equal(isTransient(unreachableError), true, "a worker waits out an unreachable server");
  assert.equal(isTransient(mapPgError(pg("28P01"), "L")), false);
  const other = new Error("something else");
  assert.equal(mapPgError(other, "L"), other, "an unknown error passes through");
});

Deno.test("maintain() folds the count deltas: counts stay right, the deltas table empties", async () => {
  await using f = await pgStoreFixture();
  await f.store.jobInsertMany({
    jobs: Array.from({ length: 20 }, () => newJob()),
    defaultMaxRetries: 3,
  });
  await f.store.jobClaim({ host: TEST_HOST_ID, workerId: "w", leaseMs: 60_000, limit: 5 });
  assert.notDeepEqual(await rows(f.url, "SELECT count(*) FROM queuectl.job_count_deltas"), ["0"]);
  await f.store.maintain();
  assert.deepEqual(await rows(f.url, "SELECT count(*) FROM queuectl.job_count_deltas"), ["0"]);
  assert.deepEqual(
    await rows(
      f.url,
      "SELECT queue || ':' || state || '=' || n FROM queuectl.job_counts WHERE n <> 0 ORDER BY 1",
    ),
    ["default:pending=15", "default:processing=5"],
  );
  const counts = await f.store.jobCountByState();
  assert.deepEqual([counts.pending, counts.processing, counts.total], [15, 5, 20]);
});

for (
  const [read, call] of [
    ["the global counts", (store: Store) => store.jobCountByState()],
    ["the per-queue counts", (store: Store) => store.queueList()],
  ] as const
) {
  Deno.test(`a read of ${read} folds the deltas once they pile up (no worker folds them)`, async () => {
    await using f = await pgStoreFixture();
    await f.store.jobInsertMany({ jobs: [newJob(), newJob()], defaultMaxRetries: 3 });
    // 1,200 delta rows that cancel out: the counts stay as they are, the table grows past the
    // fold threshold (FOLD_AFTER_DELTAS), as many enqueues with no worker running would leave it.
    await psql(
      f.url,
      `INSERT INTO queuectl.job_count_deltas (queue, state, n)
       SELECT 'default', 'pending', CASE WHEN i % 2 = 0 THEN 1 ELSE -1 END
       FROM generate_series(1, 1200) AS i`,
    );
    const before = await call(f.store);
    await poll(
      async () => (await rows(f.url, "SELECT count(*) FROM queuectl.job_count_deltas"))[0] === "0",
      PROMPT_MS,
      `the deltas folded after a read of ${read}`,
      { intervalMs: 50 },
    );
    assert.deepEqual(await call(f.store), before, "folding changed no count");
    assert.equal((await f.store.jobCountByState()).pending, 2);
  });
}

Deno.test({
  name: "a LISTEN session that stops answering is replaced by the health check",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPrivateDb(async (_server, url) => {
      const clock = new FakeClock(T0);
      const store = await openPostgresStore(url, {
        role: "worker",
        testClock: clock,
        healthCheckMs: 300,
        limits: { deadlineMs: 1000 },
        // Only notifications can wake it quickly.
        safetyPollMs: { listening: 60_000, polling: 60_000 },
      });
      const writer = await openPostgresStore(url, { role: "cli", testClock: clock });
      let stopped: number[] = [];
      try {
        const quiet = () =>
          waitForAsync(
            async () => !await store.waitForChange({ since: store.changeMark(), timeoutMs: 150 }),
            10_000,
            "quiet",
          );
        await quiet();
        stopped = await backends(url, "queuectl listen");
        assert.equal(stopped.length, 1);
        for (const pid of stopped) Deno.kill(pid, "SIGSTOP");
        // Waiting, the ping fails, a new session listens (and counts as a change).
        await waitForAsync(
          async () => {
            await store.waitForChange({ since: store.changeMark(), timeoutMs: 200 });
            const now = await backends(url, "queuectl listen");
            return now.some((pid) => !stopped.includes(pid));
          },
          15_000,
          "a new LISTEN session",
        );
        await quiet();
        const since = store.changeMark();
        const started = performance.now();
        const woken = store.waitForChange({ since, timeoutMs: 10_000, interest: "work" });
        await insertJob(writer, clock, { id: "heard" });
        assert.equal(await woken, true);
        assert.ok(performance.now() - started < 1500, "not woken by a notification");
      } finally {
        for (const pid of stopped) Deno.kill(pid, "SIGCONT");
        await Promise.all([store.close(), writer.close()]);
      }
    });
  },
});

Deno.test("the safety poll runs on its own schedule: waits of a second at a time (as `wait` does) still reach it", async () => {
  await using f = await pgStoreFixture();
  // Hears nothing, and polls every 2 s: only the poll can see the change.
  const lossy = await f.open({ ignoreNotifications: true });
  await waitForAsync(
    async () => !await lossy.waitForChange({ since: lossy.changeMark(), timeoutMs: 200 }),
    10_000,
    "quiet",
  );
  const since = lossy.changeMark();
  await insertJob(f.store, f.clock, { id: "unheard" });
  const started = performance.now();
  let seen = false;
  while (!seen && performance.now() - started < 8000) {
    seen = await lossy.waitForChange({ since, timeoutMs: 900 });
  }
  assert.ok(seen, "waits that end before the poll interval never saw the change");
});

Deno.test("every session starts with the role's lock, statement and idle-in-transaction timeouts and plan cache mode", async () => {
  await using db = await pgDatabase();
  for (const role of ["cli", "worker"] as const) {
    const pool = createPool(parseTarget(db.url, (name) => Deno.env.get(name)), {
      limits: LIMITS[role],
      name: `queuectl ${role}`,
    });
    try {
      const [row] = await pool.unsafe(
        `SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement,
           current_setting('idle_in_transaction_session_timeout') AS idle,
           current_setting('application_name') AS app, current_setting('plan_cache_mode') AS plans`,
      );
      // Workers plan their prepared statements once (connect.ts, genericPlans); the CLI does not.
      assert.equal(row!.plans, role === "worker" ? "force_generic_plan" : "auto");
      // Without prepared statements (prepare=false) every execution is planned: left to PostgreSQL.
      const unprepared = createPool(
        parseTarget(
          `${db.url}${db.url.includes("?") ? "&" : "?"}prepare=false`,
          (name) => Deno.env.get(name),
        ),
        { limits: LIMITS[role], name: `queuectl ${role}` },
      );
      try {
        const [plain] = await unprepared.unsafe(
          "SELECT current_setting('plan_cache_mode') AS plans",
        );
        assert.equal(plain!.plans, "auto");
      } finally {
        await unprepared.end();
      }
      const ms = (text: unknown) => {
        const m = /^(\d+)(ms|s|min)$/.exec(String(text))!;
        return Number(m[1]) * ({ ms: 1, s: 1000, min: 60_000 } as Record<string, number>)[m[2]!]!;
      };
      assert.deepEqual(
        [ms(row!.lock), ms(row!.statement), ms(row!.idle), row!.app],
        [
          LIMITS[role].lockTimeoutMs,
          LIMITS[role].statementTimeoutMs,
          LIMITS[role].idleInTransactionMs,
          `queuectl ${role}`,
        ],
      );
      assert.ok(
        LIMITS[role].deadlineMs > LIMITS[role].statementTimeoutMs,
        "the deadline comes last",
      );
    } finally {
      await pool.end();
    }
  }
});

Deno.test("a statement past statement_timeout fails busy (exit 5)", async () => {
  await using f = await pgStoreFixture({
    limits: { lockTimeoutMs: 10_000, statementTimeoutMs: 300 },
  });
  const holder = new Deno.Command(pgProgram("psql")!, {
    args: [
      "-X",
      "-q",
      "-d",
      f.url,
      "-c",
      "BEGIN; LOCK TABLE queuectl.config IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(10); COMMIT;",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForAsync(
      async () =>
        (await rows(
          f.url,
          "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'queuectl.config'::regclass",
        ))[0] === "1",
      5000,
      "the lock",
    );
    await assert.rejects(f.store.configGetAll(), (error: unknown) => {
      assert.ok(error instanceof StoreBusyError, String(error));
      assert.match(error.message, /statement_timeout/);
      return true;
    });
  } finally {
    await psql(
      f.url,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'psql' AND datname = current_database() AND pid <> pg_backend_pid()",
    );
    await holder.status;
  }
});

Deno.test("openPostgresStore() upgrades a v3 schema to v4: rows kept, cancelled jobs allowed", async () => {
  await using db = await pgDatabase();
  const v3 = MIGRATIONS.find((m) => m.version === 3)!;
  await psql(
    db.url,
    `CREATE SCHEMA queuectl;
     CREATE TABLE queuectl.queuectl_migrations (version integer PRIMARY KEY, name text NOT NULL,
       applied_at bigint NOT NULL);
     INSERT INTO queuectl.queuectl_migrations VALUES (3, '${v3.name}', 0);
     ${compileScript(v3.sql, "queuectl")}
     INSERT INTO queuectl.jobs (seq, id, command, state, priority, max_retries, cwd, run_at,
       created_at, updated_at, attempts, budget_used, finished_at)
     VALUES (1, '1', 'true', 'pending', 5, 3, '/', 0, 0, 0, 0, 0, NULL),
            (2, '2', 'false', 'dead', 5, 0, '/', 0, 0, 0, 1, 1, 5);
     INSERT INTO queuectl.attempts (job_seq, attempt, worker_id, started_at, finished_at, outcome)
     VALUES (2, 1, 'w0', 1, 5, 'failed');
     SELECT setval('queuectl.job_seq', 2);`,
  );
  const clock = new FakeClock(T0);
  const store = await openPostgresStore(db.url, { role: "cli", testClock: clock });
  try {
    assert.deepEqual(
      await rows(db.url, "SELECT version FROM queuectl.queuectl_migrations ORDER BY version"),
      MIGRATIONS.map((m) => String(m.version)),
    );
    const counts = await store.jobCountByState();
    assert.deepEqual([counts.pending, counts.dead, counts.cancelled, counts.total], [1, 1, 0, 2]);
    const { cancelled } = await store.jobCancel({ ids: ["1"], reason: "upgrade test" });
    assert.deepEqual(cancelled.map((j) => [j.id, j.state, j.cancelReason]), [
      ["1", "cancelled", "upgrade test"],
    ]);
    assert.equal((await store.jobCountByState()).cancelled, 1);
    assert.deepEqual((await store.jobRetry({ ids: ["2", "1"] })).map((j) => j.state), [
      "pending",
      "pending",
    ]);
    assert.deepEqual((await store.attemptList({ jobId: "2" })).map((a) => a.outcome), ["failed"]);
  } finally {
    await store.close();
  }
});

/**
 * The statements that leave schema `queuectl` as a queuectl from before migration `version` left
 * it: the migrations table and every migration older than `version`, each recorded.
 */
function schemaBefore(version: number): string[] {
  return [
    compileScript(MIGRATION_CREATE_SCHEMA, "queuectl"),
    compileScript(MIGRATION_CREATE_TABLE, "queuectl"),
    ...MIGRATIONS.filter((m) => m.version < version).map((m) =>
      `INSERT INTO queuectl.queuectl_migrations VALUES (${m.version}, '${m.name}', 0);\n` +
      compileScript(m.sql, "queuectl")
    ),
  ];
}

Deno.test("openPostgresStore() upgrades a schema from before schedules, keeping its jobs", async () => {
  await using db = await pgDatabase();
  const schedules = MIGRATIONS.find((m) => m.name === "recurring jobs")!;
  await psql(
    db.url,
    [
      ...schemaBefore(schedules.version),
      "INSERT INTO queuectl.jobs (seq, id, command, state, priority, max_retries, cwd, run_at, " +
      "created_at, updated_at) VALUES (nextval('queuectl.job_seq'), 'old', 'true', 'pending', " +
      "5, 3, '/', 0, 0, 0)",
    ].join(";\n"),
  );
  const clock = new FakeClock(T0);
  const store = await openPostgresStore(db.url, { role: "cli", testClock: clock });
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
      job: newJob({ runAt: null }),
      defaultMaxRetries: 3,
    });
    assert.equal(fired.fired, true);
    assert.equal((await store.jobCountByState()).pending, 2);
  } finally {
    await store.close();
  }
  assert.deepEqual(
    await rows(db.url, "SELECT max(version) FROM queuectl.queuectl_migrations"),
    [String(PG_SCHEMA_VERSION)],
  );
});

Deno.test("the histogram buckets computed in SQL are those of bucketOf()", async () => {
  await using db = await pgDatabase();
  // Every boundary up to a day (and either side of it), plus a spread of plain values.
  const values = new Set<number>([0, 1, 2, 3, 86_400_000, 3_600_000_000]);
  for (let b = 1; Math.pow(1.25, b) < 100_000_000; b++) {
    const edge = Math.pow(1.25, b);
    for (
      const v of [Math.floor(edge) - 1, Math.floor(edge), Math.ceil(edge), Math.ceil(edge) + 1]
    ) {
      if (v >= 0) values.add(v);
    }
  }
  for (let v = 0; v < 5000; v += 7) values.add(v);
  const list = [...values];
  const got = await rows(
    db.url,
    `SELECT ${BUCKET("v")} FROM unnest(ARRAY[${
      list.join(",")
    }]::bigint[]) WITH ORDINALITY AS x(v, i)
     ORDER BY i`,
  );
  assert.deepEqual(got.map(Number), list.map(bucketOf));
});

Deno.test("openPostgresStore() upgrades a schema from before counts per queue, recounting them from the jobs", async () => {
  await using db = await pgDatabase();
  const perQueue = MIGRATIONS.find((m) => m.name.startsWith("job counts per queue"))!;
  const insert = (rowsSql: string) =>
    "INSERT INTO queuectl.jobs (seq, id, command, state, priority, max_retries, cwd, run_at, " +
    `created_at, updated_at, attempts, budget_used, finished_at, queue) VALUES ${rowsSql}`;
  await psql(
    db.url,
    [
      ...schemaBefore(perQueue.version),
      "INSERT INTO queuectl.queues (name, created_at, updated_at) VALUES ('mail', 0, 0)",
      insert(
        "(nextval('queuectl.job_seq'), 'd1', 'true', 'pending', 5, 3, '/', 0, 0, 0, 0, 0, NULL, 'default'), " +
          "(nextval('queuectl.job_seq'), 'd2', 'true', 'completed', 5, 3, '/', 0, 0, 0, 1, 1, 5, 'default'), " +
          "(nextval('queuectl.job_seq'), 'm1', 'true', 'pending', 5, 3, '/', 0, 0, 0, 0, 0, NULL, 'mail')",
      ),
      // Some deltas folded (as maintain() of the old schema folds them), the later ones not.
      "WITH moved AS (DELETE FROM queuectl.job_count_deltas RETURNING state, n), " +
      "summed AS (SELECT state, sum(n) AS n FROM moved GROUP BY state) " +
      "UPDATE queuectl.job_counts c SET n = c.n + s.n FROM summed s WHERE c.state = s.state",
      insert(
        "(nextval('queuectl.job_seq'), 'm2', 'true', 'pending', 5, 3, '/', 0, 0, 0, 0, 0, NULL, 'mail'), " +
          "(nextval('queuectl.job_seq'), 'm3', 'true', 'dead', 5, 3, '/', 0, 0, 0, 4, 4, 6, 'mail')",
      ),
      "UPDATE queuectl.jobs SET state = 'failed', attempts = 1, budget_used = 1 WHERE id = 'm1'",
    ].join(";\n"),
  );
  const clock = new FakeClock(T0);
  const store = await openPostgresStore(db.url, { role: "cli", testClock: clock });
  try {
    const listed = async () =>
      Object.fromEntries(
        (await store.queueList()).queues.map((q) => [
          q.name,
          [q.counts.pending, q.counts.failed, q.counts.completed, q.counts.dead, q.counts.total],
        ]),
      );
    assert.deepEqual(await listed(), { default: [1, 0, 1, 0, 2], mail: [1, 1, 0, 1, 3] });
    const counts = await store.jobCountByState();
    assert.deepEqual(
      [counts.pending, counts.failed, counts.completed, counts.dead, counts.total],
      [2, 1, 1, 1, 5],
    );
    assert.deepEqual(await rows(db.url, "SELECT count(*) FROM queuectl.job_count_deltas"), ["0"]);
    // From here on the deltas carry the queue, and maintain() folds them per queue.
    await moveQueueCounts(store, "m4");
    const want = { default: [1, 0, 1, 0, 2], mail: [2, 1, 0, 1, 4], report: [0, 0, 0, 0, 1] };
    assert.deepEqual(await listed(), want);
    await store.maintain();
    assert.deepEqual(await rows(db.url, "SELECT count(*) FROM queuectl.job_count_deltas"), ["0"]);
    assert.deepEqual(await listed(), want);
    assert.deepEqual(
      await rows(
        db.url,
        "SELECT queue || ':' || state || '=' || n FROM queuectl.job_counts WHERE n <> 0 ORDER BY 1",
      ),
      await rows(
        db.url,
        "SELECT queue || ':' || state || '=' || count(*) FROM queuectl.jobs GROUP BY queue, state ORDER BY 1",
      ),
    );
  } finally {
    await store.close();
  }
});
