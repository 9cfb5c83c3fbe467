/**
 * Forward-only schema migrations, keyed by version. The version lives in `PRAGMA user_version`
 * (read before anything else, so a newer database is refused without being touched) and in the
 * `queuectl_migrations` table (when each was applied). Each migration runs in one transaction.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { APPLICATION_ID } from "./version.ts";
import { MIGRATION_RECORD } from "./queries.ts";

type Row = Record<string, unknown>;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const STATES = "'pending', 'processing', 'completed', 'failed', 'dead'";
/** From version 6 on. */
const STATES_6 = `${STATES}, 'cancelled'`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "jobs, attempts, outputs, workers, config",
    sql: `
CREATE TABLE queuectl_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL,
  applied_at INTEGER NOT NULL
);

CREATE TABLE jobs (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT    NOT NULL UNIQUE,
  command          TEXT    NOT NULL CHECK (length(command) > 0),
  state            TEXT    NOT NULL CHECK (state IN (${STATES})),
  priority         INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 10),
  max_retries      INTEGER NOT NULL CHECK (max_retries >= 0),
  timeout_ms       INTEGER CHECK (timeout_ms >= 0),
  cwd              TEXT    NOT NULL,
  env              TEXT,
  run_at           INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  budget_used      INTEGER NOT NULL DEFAULT 0,
  worker_id        TEXT,
  lease_expires_at INTEGER,
  finished_at      INTEGER,
  last_error       TEXT,
  last_exit_code   INTEGER,
  CHECK ((state = 'processing') = (worker_id IS NOT NULL)),
  CHECK ((state = 'processing') = (lease_expires_at IS NOT NULL)),
  CHECK ((state IN ('completed', 'dead')) = (finished_at IS NOT NULL)),
  CHECK (budget_used >= 0 AND budget_used <= attempts)
);

-- The claim seeks this index once per priority (10 seeks), so it stays flat however many jobs are
-- scheduled for later or finished.
CREATE INDEX jobs_ready ON jobs (priority, run_at, seq) WHERE state IN ('pending', 'failed');
-- list --state, dlq list.
CREATE INDEX jobs_by_state ON jobs (state, seq);

-- Counts per state, kept by triggers so that status does not scan the table.
CREATE TABLE job_counts (
  state TEXT    PRIMARY KEY CHECK (state IN (${STATES})),
  n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO job_counts (state, n) VALUES
  ('pending', 0), ('processing', 0), ('completed', 0), ('failed', 0), ('dead', 0);

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
  UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs WHEN OLD.state <> NEW.state BEGIN
  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
  UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
END;

-- One row per attempt, written when it starts and completed when it ends.
CREATE TABLE attempts (
  job_seq     INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  worker_id   TEXT    NOT NULL,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  outcome     TEXT CHECK (outcome IN
                ('completed', 'failed', 'timeout', 'spawn_failed', 'lost', 'interrupted')),
  exit_code   INTEGER,
  signal      TEXT,
  error       TEXT,
  pid         INTEGER,
  pid_start   INTEGER,
  host        TEXT,
  PRIMARY KEY (job_seq, attempt),
  CHECK ((outcome IS NULL) = (finished_at IS NULL))
) WITHOUT ROWID;

-- Captured output per attempt and stream (1 stdout, 2 stderr): head, and the tail after a cut.
CREATE TABLE outputs (
  job_seq INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  stream  INTEGER NOT NULL CHECK (stream IN (1, 2)),
  head    BLOB    NOT NULL,
  tail    BLOB    NOT NULL,
  total   INTEGER NOT NULL,
  PRIMARY KEY (job_seq, attempt, stream)
);

CREATE TABLE workers (
  id           TEXT    PRIMARY KEY,
  pid          INTEGER NOT NULL,
  host         TEXT    NOT NULL,
  pid_start    INTEGER,
  state        TEXT    NOT NULL CHECK (state IN ('idle', 'busy', 'stopping')),
  current_job  TEXT,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  jobs_done    INTEGER NOT NULL DEFAULT 0,
  jobs_failed  INTEGER NOT NULL DEFAULT 0,
  supervisor_pid INTEGER
) WITHOUT ROWID;

CREATE TABLE config (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`,
  },
  {
    version: 2,
    name: "metrics per minute, queue wait, busy time, retention index",
    sql: `
-- When the attempt's job became due: queue wait = started_at - due_at.
ALTER TABLE attempts ADD COLUMN due_at INTEGER;
-- Time a worker spent running jobs, for its busy share.
ALTER TABLE workers ADD COLUMN busy_ms INTEGER NOT NULL DEFAULT 0;

-- Finished attempts folded into per-minute figures as they finish, so metrics never scan
-- attempts. metric 0: outcome counts (bucket = outcome code); 1: run time histogram; 2: queue
-- wait histogram (bucket = log-scale bucket of milliseconds); 3: longest run time (bucket 0,
-- n = milliseconds); 4: attempts that were retries (bucket 0).
CREATE TABLE stats_minute (
  minute INTEGER NOT NULL,
  metric INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  n      INTEGER NOT NULL,
  PRIMARY KEY (minute, metric, bucket)
) WITHOUT ROWID;

-- Failed attempts by finish time, for the top failing commands.
CREATE INDEX attempts_failures ON attempts (finished_at) WHERE outcome <> 'completed';

-- Retention: finished jobs by state and finish time.
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
`,
  },
  {
    version: 3,
    name: "queue id, worker host identity, reserved attempts",
    sql: `
-- Facts about the queue itself. queue_id marks the processes of its jobs (recovery finds them by
-- it), so that the marker does not have to be the database's location.
CREATE TABLE queuectl_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO queuectl_meta (key, value) VALUES ('queue_id', lower(hex(randomblob(16))));

-- The pid namespace a worker runs in (lib/worker/host.ts): who may judge it by its pid.
ALTER TABLE workers ADD COLUMN host_id TEXT;

-- A claim reserves an attempt (armed = 0); the worker arms it just before it spawns the job. A
-- dead worker's reserved attempt never started: recovery undoes it instead of charging it.
ALTER TABLE attempts ADD COLUMN armed INTEGER NOT NULL DEFAULT 1;
`,
  },
  {
    version: 4,
    name: "one index fewer per finished job",
    sql: `
-- Every finished job wrote this index (1.6 of some 10 pages per job written to the WAL, issue
-- 10). Retention walks the oldest finished jobs by jobs_by_state instead (queries.ts).
DROP INDEX jobs_finished;
`,
  },
  {
    version: 5,
    name: "job counts added once per enqueue",
    sql: `
-- A trigger ran one UPDATE of job_counts per inserted row: 40% of a bulk enqueue (issue 10). The
-- store adds the number it inserted in the same transaction instead (JOB_COUNT_ADD). Jobs are
-- inserted nowhere else; the update and delete triggers stay.
DROP TRIGGER jobs_count_insert;
`,
  },
  {
    version: 6,
    name: "cancelled jobs and cancel requests",
    // SQLite cannot change a CHECK constraint in place: the three tables whose CHECKs name states
    // or outcomes are rebuilt (create, copy, drop, rename), with their indexes and triggers, in
    // the migration's one transaction. The id sequence is carried over by hand: dropping jobs
    // drops its sqlite_sequence row, and ids of pruned jobs must never be handed out again.
    sql: `
CREATE TEMP TABLE queuectl_seq_6 AS SELECT seq FROM sqlite_sequence WHERE name = 'jobs';

CREATE TABLE jobs_6 (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT    NOT NULL UNIQUE,
  command          TEXT    NOT NULL CHECK (length(command) > 0),
  state            TEXT    NOT NULL CHECK (state IN (${STATES_6})),
  priority         INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 10),
  max_retries      INTEGER NOT NULL CHECK (max_retries >= 0),
  timeout_ms       INTEGER CHECK (timeout_ms >= 0),
  cwd              TEXT    NOT NULL,
  env              TEXT,
  run_at           INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  budget_used      INTEGER NOT NULL DEFAULT 0,
  worker_id        TEXT,
  lease_expires_at INTEGER,
  finished_at      INTEGER,
  last_error       TEXT,
  last_exit_code   INTEGER,
  -- Set on a processing job when a user cancels it (its owner kills it at its next look), and
  -- kept on the cancelled job: why it was cancelled.
  cancel_reason    TEXT,
  CHECK ((state = 'processing') = (worker_id IS NOT NULL)),
  CHECK ((state = 'processing') = (lease_expires_at IS NOT NULL)),
  CHECK ((state IN ('completed', 'dead', 'cancelled')) = (finished_at IS NOT NULL)),
  CHECK (budget_used >= 0 AND budget_used <= attempts)
);
INSERT INTO jobs_6 (seq, id, command, state, priority, max_retries, timeout_ms, cwd, env, run_at,
  created_at, updated_at, attempts, budget_used, worker_id, lease_expires_at, finished_at,
  last_error, last_exit_code)
SELECT seq, id, command, state, priority, max_retries, timeout_ms, cwd, env, run_at, created_at,
  updated_at, attempts, budget_used, worker_id, lease_expires_at, finished_at, last_error,
  last_exit_code
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_6 RENAME TO jobs;
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM queuectl_seq_6)) WHERE name = 'jobs';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'jobs', seq FROM queuectl_seq_6 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs');
DROP TABLE queuectl_seq_6;
CREATE INDEX jobs_ready ON jobs (priority, run_at, seq) WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_by_state ON jobs (state, seq);
-- A worker looks for cancel requests on its jobs: few rows, found without a scan.
CREATE INDEX jobs_cancel_requested ON jobs (worker_id) WHERE cancel_reason IS NOT NULL
  AND state = 'processing';

CREATE TABLE job_counts_6 (
  state TEXT    PRIMARY KEY CHECK (state IN (${STATES_6})),
  n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO job_counts_6 (state, n) SELECT state, n FROM job_counts;
INSERT INTO job_counts_6 (state, n) VALUES ('cancelled', 0);
DROP TABLE job_counts;
ALTER TABLE job_counts_6 RENAME TO job_counts;

CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs WHEN OLD.state <> NEW.state BEGIN
  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
  UPDATE job_counts SET n = n + 1 WHERE state = NEW.state;
END;

CREATE TABLE attempts_6 (
  job_seq     INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  worker_id   TEXT    NOT NULL,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  outcome     TEXT CHECK (outcome IN ('completed', 'failed', 'timeout', 'spawn_failed', 'lost',
                'interrupted', 'cancelled')),
  exit_code   INTEGER,
  signal      TEXT,
  error       TEXT,
  pid         INTEGER,
  pid_start   INTEGER,
  host        TEXT,
  due_at      INTEGER,
  armed       INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (job_seq, attempt),
  CHECK ((outcome IS NULL) = (finished_at IS NULL))
) WITHOUT ROWID;
INSERT INTO attempts_6 (job_seq, attempt, worker_id, started_at, finished_at, outcome, exit_code,
  signal, error, pid, pid_start, host, due_at, armed)
SELECT job_seq, attempt, worker_id, started_at, finished_at, outcome, exit_code, signal, error,
  pid, pid_start, host, due_at, armed
FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_6 RENAME TO attempts;
CREATE INDEX attempts_failures ON attempts (finished_at) WHERE outcome <> 'completed';
`,
  },
  {
    version: 7,
    name: "recurring jobs",
    sql: `
-- One row per schedule. next_at is what workers compare-and-swap when they fire it (the
-- store's clock); null: it never fires again. An interval counts from anchor.
CREATE TABLE schedules (
  name        TEXT    PRIMARY KEY,
  kind        TEXT    NOT NULL CHECK (kind IN ('cron', 'every')),
  cron        TEXT,
  time_zone   TEXT,
  every_ms    INTEGER CHECK (every_ms > 0),
  template    TEXT    NOT NULL,
  anchor      INTEGER NOT NULL,
  paused      INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  next_at     INTEGER,
  last_at     INTEGER,
  last_job_id TEXT,
  fires       INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  CHECK ((kind = 'cron') = (cron IS NOT NULL AND time_zone IS NOT NULL)),
  CHECK ((kind = 'every') = (every_ms IS NOT NULL))
) WITHOUT ROWID;
-- The scheduler's question: the active schedule that fires soonest.
CREATE INDEX schedules_due ON schedules (next_at) WHERE paused = 0 AND next_at IS NOT NULL;

-- Occurrences enqueued, one per schedule and fire time (the primary key is the second guard
-- against enqueueing one twice); kept for a day.
CREATE TABLE schedule_runs (
  schedule    TEXT    NOT NULL,
  fire_at     INTEGER NOT NULL,
  job_id      TEXT    NOT NULL,
  enqueued_at INTEGER NOT NULL,
  PRIMARY KEY (schedule, fire_at)
) WITHOUT ROWID;
`,
  },
  {
    version: 8,
    name: "named queues: pause and concurrency limits",
    sql: `
ALTER TABLE jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
-- A claim that must leave some queues out (paused, at their limit, or not the worker's) walks
-- this index per queue it may take from, as jobs_ready is walked for all: jobs of a paused queue
-- are never stepped over.
CREATE INDEX jobs_ready_queue ON jobs (queue, priority, run_at, seq)
  WHERE state IN ('pending', 'failed');
-- A limit counts the queue's jobs in processing through jobs_by_state: as many rows as jobs run
-- (a few), where an index of its own would cost every claim and finish a write.

-- One row per queue that has had a job or a setting. paused: workers claim nothing from it;
-- concurrency: at most this many of its jobs in processing at once (0: no limit).
CREATE TABLE queues (
  name        TEXT    PRIMARY KEY,
  paused      INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  concurrency INTEGER NOT NULL DEFAULT 0 CHECK (concurrency >= 0),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO queues (name, created_at, updated_at)
  VALUES ('default', CAST(strftime('%s', 'now') AS INTEGER) * 1000,
    CAST(strftime('%s', 'now') AS INTEGER) * 1000);
`,
  },
  {
    version: 9,
    name: "dependencies and unique keys",
    sql: `
-- What a job waits for, as given (a JSON array of ids; null: nothing), and how many of those
-- have not completed yet. A job with deps_left > 0 is pending but outside jobs_ready, so waiting
-- jobs cost a claim nothing. has_dependents: some job waits for this one, so its end (completed,
-- dead, cancelled) looks at job_deps; every other job's end does not.
ALTER TABLE jobs ADD COLUMN after_ids TEXT;
ALTER TABLE jobs ADD COLUMN deps_left INTEGER NOT NULL DEFAULT 0 CHECK (deps_left >= 0);
ALTER TABLE jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;
-- Held while the job is live (pending, failed, processing): jobs_unique_key decides.
ALTER TABLE jobs ADD COLUMN unique_key TEXT;

-- One row per dependency: job job_seq waits for job dep_seq (dep_id: its id, kept for show
-- after the dependency was deleted). met: the dependency completed, and deps_left counted it.
CREATE TABLE job_deps (
  dep_seq INTEGER NOT NULL,
  job_seq INTEGER NOT NULL,
  dep_id  TEXT    NOT NULL,
  met     INTEGER NOT NULL DEFAULT 0 CHECK (met IN (0, 1)),
  PRIMARY KEY (dep_seq, job_seq)
) WITHOUT ROWID;
CREATE INDEX job_deps_by_job ON job_deps (job_seq);

DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (priority, run_at, seq)
  WHERE state IN ('pending', 'failed') AND deps_left = 0;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'processing');
DROP INDEX jobs_ready_queue;
CREATE INDEX jobs_ready_queue ON jobs (queue, priority, run_at, seq)
  WHERE state IN ('pending', 'failed') AND deps_left = 0;
`,
  },
  {
    version: 10,
    name: "job counts per queue",
    // Rebuilt rather than altered: the key gains the queue. The counts are recounted from the
    // jobs (under the migration's write lock, so exactly), not carried over.
    sql: `
-- Counts per queue and state (issue 13: the dashboard's queue counts scanned every job). The
-- counts per state are their sums (a few queues: a few rows). Every queue has a row per state,
-- made with its row in queues (the trigger below; a job's queue has a row before the job is
-- counted, see the store's enqueue), so that a state change still costs two plain UPDATEs and
-- an enqueue one per queue. Rows at zero are kept.
CREATE TABLE job_counts_10 (
  queue TEXT    NOT NULL,
  state TEXT    NOT NULL CHECK (state IN (${STATES_6})),
  n     INTEGER NOT NULL,
  PRIMARY KEY (queue, state)
) WITHOUT ROWID;
-- One scan of the jobs; every queue that holds one has its row (the store made sure of it).
CREATE TEMP TABLE queuectl_counts_10 AS
  SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state;
INSERT INTO queues (name, created_at, updated_at)
SELECT DISTINCT queue, CAST(strftime('%s', 'now') AS INTEGER) * 1000,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000 FROM queuectl_counts_10 WHERE true
ON CONFLICT (name) DO NOTHING;
INSERT INTO job_counts_10 (queue, state, n)
SELECT q.name, s.state, coalesce(c.n, 0)
FROM queues q CROSS JOIN (SELECT state FROM job_counts) s
LEFT JOIN queuectl_counts_10 c ON c.queue = q.name AND c.state = s.state;
DROP TABLE queuectl_counts_10;
DROP TRIGGER jobs_count_delete;
DROP TRIGGER jobs_count_update;
DROP TABLE job_counts;
ALTER TABLE job_counts_10 RENAME TO job_counts;

CREATE TRIGGER queues_counts AFTER INSERT ON queues BEGIN
  INSERT INTO job_counts (queue, state, n) VALUES (NEW.name, 'pending', 0),
    (NEW.name, 'processing', 0), (NEW.name, 'completed', 0), (NEW.name, 'failed', 0),
    (NEW.name, 'dead', 0), (NEW.name, 'cancelled', 0)
  ON CONFLICT (queue, state) DO NOTHING;
END;
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
END;
-- No statement moves a job to another queue; the trigger would count it right if one did.
CREATE TRIGGER jobs_count_update AFTER UPDATE OF state, queue ON jobs
  WHEN OLD.state <> NEW.state OR OLD.queue <> NEW.queue BEGIN
  UPDATE job_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
  UPDATE job_counts SET n = n + 1 WHERE queue = NEW.queue AND state = NEW.state;
END;
`,
  },
];

/**
 * Creates a new database: built and migrated under a temporary name beside `path`, then linked
 * into place, so no process ever sees a half-initialised file. Losing a race to another process
 * doing the same is fine: its file wins and ours is removed.
 */
export function createDatabase(path: string, now: number): void {
  const temp = `${path}.init-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    Deno.openSync(temp, { createNew: true, write: true, mode: 0o600 }).close();
    Deno.chmodSync(temp, 0o600);
    const db = new DatabaseSync(temp);
    try {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
      migrate(db, now);
    } finally {
      db.close();
    }
    try {
      Deno.linkSync(temp, path);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  } finally {
    for (const suffix of ["", "-wal", "-shm", "-journal"]) {
      try {
        Deno.removeSync(temp + suffix);
      } catch { /* not there */ }
    }
  }
}

/** Applies the migrations this database lacks, each in one transaction. */
export function migrate(db: DatabaseSync, now: number): void {
  for (const migration of MIGRATIONS) {
    db.exec("BEGIN IMMEDIATE");
    try {
      const current = (db.prepare("PRAGMA user_version").get() as Row).user_version as number;
      if (current >= migration.version) {
        db.exec("COMMIT");
        continue;
      }
      db.exec(migration.sql);
      db.prepare(MIGRATION_RECORD).run({
        version: migration.version,
        name: migration.name,
        now,
      });
      db.exec(`PRAGMA user_version = ${migration.version}`);
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }
}
