/**
 * Builds queue databases of a given size fast: an empty database made by queuectl itself (so the
 * schema is exactly the current one), then raw node:sqlite inserts with the secondary indexes and
 * triggers dropped, recreated from their own SQL afterwards. What the triggers and the store
 * maintain is filled in to match: `job_counts` (the count triggers) and `stats_minute` (what
 * `jobFinish` folds in per finished attempt), so `status` and `metrics` read what a real queue of
 * that size would have.
 *
 * The 1M database is cached under $TMPDIR/queuectl-bench-cache/, keyed by SCHEMA_VERSION, a hash
 * of the migrations' SQL and the generator's version, and rebuilt when older than 12 hours (its
 * attempts lie in the 12 hours before it was built, so all of them stay inside `metrics`' default
 * 24 h window). Never inside the repository.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { createQueueDb } from "./_common.ts";
import { MIGRATIONS } from "../lib/store/sqlite/migrations.ts";
import { SCHEMA_VERSION } from "../lib/store/sqlite/version.ts";
import { bucketOf, METRIC, OUTCOME_CODES } from "../lib/metrics.ts";
import { openSqliteStore } from "../lib/store/sqlite/open.ts";
import { STATS_MINUTES_KEPT_MS, STATS_RETENTION_MS } from "../lib/worker/housekeeping.ts";
import { FakeClock } from "../lib/clock.ts";

/** Bump when what the generator writes changes. */
const GENERATOR_VERSION = 2;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MAX_AGE_MS = 12 * HOUR;

export interface DbShape {
  /** Finished jobs, each with one finished attempt (98% completed, 2% dead). */
  finished: number;
  /** Pending jobs, including `scheduled`. */
  pending: number;
  /** Pending jobs at priority 10 due 1–7 days from now (every `pending/scheduled`-th one). */
  scheduled: number;
}

export const SMALL: DbShape = { finished: 1000, pending: 1000, scheduled: 100 };
export const BIG: DbShape = { finished: 1_000_000, pending: 1_000_000, scheduled: 100_000 };

export function describeShape(shape: DbShape): string {
  const n = (x: number) => x.toLocaleString("en");
  return `${n(shape.pending)} pending (${n(shape.scheduled)} of them at priority 10 due in ` +
    `1–7 days) + ${n(shape.finished)} finished jobs with ${n(shape.finished)} finished attempts`;
}

const JOB_COLUMNS = "seq, id, command, state, priority, max_retries, timeout_ms, cwd, env, " +
  "run_at, created_at, updated_at, attempts, budget_used, worker_id, lease_expires_at, " +
  "finished_at, last_error, last_exit_code";

/** Writes a database of `shape` at `path` (which must not exist), with times around `now`. */
export async function buildDb(path: string, shape: DbShape, now: number): Promise<void> {
  await createQueueDb(path);
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = OFF");
    db.exec("PRAGMA synchronous = OFF");
    db.exec("PRAGMA cache_size = -262144");
    db.exec("PRAGMA temp_store = MEMORY");
    const derived = db.prepare(
      `SELECT type, name, sql FROM sqlite_master
       WHERE type IN ('index', 'trigger') AND tbl_name IN ('jobs', 'attempts') AND sql IS NOT NULL`,
    ).all() as { type: string; name: string; sql: string }[];
    for (const d of derived) db.exec(`DROP ${d.type.toUpperCase()} ${d.name}`);

    const count = (n: number) =>
      `WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ${n - 1})`;
    const completed = OUTCOME_CODES.indexOf("completed");
    const failed = OUTCOME_CODES.indexOf("failed");
    const cwd = "'/srv/app'";
    db.exec("BEGIN");
    if (shape.finished > 0) {
      // Finished jobs first (older), finishing in seq order over the 12 hours before `now`; run
      // times of 1 ms to 2 s, queue waits up to 2 s; every 50th job failed into the DLQ.
      db.exec(`CREATE TEMP TABLE f AS ${count(shape.finished)}
        SELECT i, ${now - 12 * HOUR} + (i * ${12 * HOUR}) / ${shape.finished} AS finished_at,
          1 + abs(random()) % 2000 AS run_ms, abs(random()) % 2000 AS wait_ms,
          (i % 50 = 49) AS dead
        FROM c`);
      db.exec(`INSERT INTO jobs (${JOB_COLUMNS})
        SELECT i + 1, CAST(i + 1 AS TEXT),
          CASE WHEN dead THEN './flaky.sh --case ' || (i % 20) ELSE './task.sh ' || (i % 5000) END,
          CASE WHEN dead THEN 'dead' ELSE 'completed' END, 5, CASE WHEN dead THEN 0 ELSE 3 END,
          NULL, ${cwd}, NULL, finished_at - run_ms - wait_ms, finished_at - run_ms - wait_ms,
          finished_at, 1, 1, NULL, NULL, finished_at,
          CASE WHEN dead THEN 'exited with code 1' END, dead
        FROM f`);
      db.exec(`INSERT INTO attempts (job_seq, attempt, worker_id, started_at, finished_at, outcome,
          exit_code, signal, error, pid, pid_start, host, due_at)
        SELECT i + 1, 1, 'w1-bench', finished_at - run_ms, finished_at,
          CASE WHEN dead THEN 'failed' ELSE 'completed' END, dead, NULL,
          CASE WHEN dead THEN 'exited with code 1' END, NULL, NULL, 'bench',
          finished_at - run_ms - wait_ms
        FROM f`);
      // Buckets through a lookup table: one JS call per distinct millisecond value, not per row.
      db.exec("CREATE TEMP TABLE bk (ms INTEGER PRIMARY KEY, b INTEGER NOT NULL)");
      const bucket = db.prepare("INSERT INTO bk (ms, b) VALUES (?, ?)");
      for (let ms = 0; ms <= 2000; ms++) bucket.run(ms, bucketOf(ms));
      db.exec(`INSERT INTO stats_minute (minute, metric, bucket, n)
        SELECT finished_at / 60000, ${METRIC.outcome},
          CASE WHEN dead THEN ${failed} ELSE ${completed} END, count(*)
        FROM f GROUP BY 1, 3
        UNION ALL
        SELECT finished_at / 60000, ${METRIC.runTime}, bk.b, count(*)
        FROM f JOIN bk ON bk.ms = f.run_ms GROUP BY 1, 3
        UNION ALL
        SELECT finished_at / 60000, ${METRIC.queueWait}, bk.b, count(*)
        FROM f JOIN bk ON bk.ms = f.wait_ms GROUP BY 1, 3
        UNION ALL
        SELECT finished_at / 60000, ${METRIC.maxRunTime}, 0, max(run_ms) FROM f GROUP BY 1`);
      db.exec("DROP TABLE bk");
      db.exec("DROP TABLE f");
    }
    if (shape.pending > 0) {
      // Due jobs at priorities 1–9 (due over the last 12 hours), and every n-th one scheduled for
      // 1–7 days from now at priority 10, so they sit in the ready index ahead of every due job.
      const every = shape.scheduled > 0 ? Math.floor(shape.pending / shape.scheduled) : 0;
      const scheduled = every > 0 ? `(i % ${every} = 0)` : "0";
      db.exec(`INSERT INTO jobs (${JOB_COLUMNS})
        SELECT ${shape.finished} + i + 1, CAST(${shape.finished} + i + 1 AS TEXT),
          './task.sh ' || (i % 5000), 'pending',
          CASE WHEN s THEN 10 ELSE 1 + abs(random()) % 9 END, 3, NULL, ${cwd}, NULL,
          CASE WHEN s THEN ${now + DAY} + abs(random()) % ${6 * DAY} ELSE created END,
          created, created, 0, 0, NULL, NULL, NULL, NULL, NULL
        FROM (${count(shape.pending)}
          SELECT i, ${scheduled} AS s,
            ${now - 12 * HOUR} + (i * ${12 * HOUR}) / ${shape.pending} AS created
          FROM c)`);
    }
    // What the count triggers would have kept.
    db.exec(
      `UPDATE job_counts SET n = (SELECT count(*) FROM jobs ` +
        `WHERE jobs.queue = job_counts.queue AND jobs.state = job_counts.state)`,
    );
    db.exec("COMMIT");
    for (const d of derived) db.exec(d.sql);
    db.exec("PRAGMA journal_mode = WAL");
  } finally {
    db.close();
  }
}

async function sha8(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].slice(0, 4).map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** The cached database of `shape` (built if missing or stale); callers copy it before writing. */
export async function cachedDb(shape: DbShape, log: (line: string) => void): Promise<string> {
  const hash = await sha8(MIGRATIONS.map((m) => m.sql).join("\n"));
  const base = Deno.env.get("TMPDIR") ?? "/tmp";
  const dir = `${base}/queuectl-bench-cache/schema-v${SCHEMA_VERSION}-${hash}`;
  const name = `g${GENERATOR_VERSION}-${shape.finished}-${shape.pending}-${shape.scheduled}.db`;
  const path = `${dir}/${name}`;
  try {
    const info = Deno.statSync(path);
    if (info.mtime && Date.now() - info.mtime.getTime() < MAX_AGE_MS) return path;
    log(`  cached database is older than 12 h; rebuilding ${path}`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    log(`  building ${path} (once; cached for 12 h)`);
  }
  Deno.mkdirSync(dir, { recursive: true });
  const temp = `${path}.tmp-${Deno.pid}`;
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      Deno.removeSync(temp + suffix);
    } catch { /* not there */ }
  }
  const t0 = performance.now();
  const now = Date.now();
  await buildDb(temp, shape, now);
  // What workers' housekeeping keeps it like: per-minute figures older than two hours per hour.
  const store = await openSqliteStore(temp, {
    synchronous: "NORMAL",
    busyTimeoutMs: 5000,
    clock: new FakeClock(now),
  });
  try {
    await store.statsCompact({
      retainMs: STATS_RETENTION_MS,
      minutesKeptMs: STATS_MINUTES_KEPT_MS,
    });
    await store.maintain();
  } finally {
    await store.close();
  }
  Deno.renameSync(temp, path);
  log(`  built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}
