/**
 * The PostgreSQL store's schema: forward-only migrations, numbered as SQLite's are, applied by
 * `migrate()` in one transaction under an advisory lock (open.ts decides when).
 *
 * The store begins at the schema SQLite reached in three steps (v1 tables, v2 metrics, v3 queue
 * id, host ids and reserved attempts), so its first migration is number 3 and does all of that
 * at once: a schema version means the same in both stores, and the next change to both will be 4.
 *
 * Choices that differ from SQLite, and why:
 * - Times are `bigint` epoch milliseconds, as in SQLite and in the Store contract, rather than
 *   `timestamptz`: the contract speaks milliseconds, and a timestamptz holds microseconds, so a
 *   time read back into JavaScript (a Date, milliseconds) would no longer equal what the
 *   database compares (a job "due in 0.4 ms" that a claim does not take). Arithmetic (now +
 *   lease) stays the same in both dialects. In psql, `to_timestamp(run_at / 1000.0)` shows one.
 * - Job ids come from a sequence, which concurrent inserters cannot hand out twice; SQLite reads
 *   its sequence under the write lock.
 * - The job's row says whether its current attempt was armed (`jobs.armed`): arming and undoing a
 *   claim then contend for the same row lock (queries.ts, ATTEMPT_ARM).
 * - Counts per state are folded deltas (statement triggers append a row per statement; nothing
 *   waits for a shared row), and per-minute figures are written in shards: see queries.ts.
 * - Attempts and outputs reference their job (ON DELETE CASCADE): pruning deletes jobs only.
 * - Two partial indexes over the waiting jobs: `jobs_ready` in claim order (priority, due time,
 *   enqueue order), sought once per priority; `jobs_waiting` in due order per state, for the next
 *   due time, the scheduled count and the longest-waiting job.
 * - `jobs` leaves 10% of each page free (fillfactor 90), so lease renewals, which change no
 *   indexed column, can be HOT updates that touch no index.
 *
 * @module
 */

export interface Migration {
  version: number;
  name: string;
  /** Statements, with `{S}` for the schema (queries.ts `compile`); run as one script. */
  sql: string;
}

const STATES = "'pending', 'processing', 'completed', 'failed', 'dead'";

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 3,
    name: "jobs, attempts, outputs, workers, config, metrics, queue id (SQLite v1-v3)",
    sql: `
CREATE TABLE {S}.meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);
-- Marks the processes of the queue's jobs (recovery finds them by it), instead of its location.
INSERT INTO {S}.meta (key, value) VALUES ('queue_id', replace(gen_random_uuid()::text, '-', ''));

CREATE SEQUENCE {S}.job_seq AS bigint;

CREATE TABLE {S}.jobs (
  seq              bigint   PRIMARY KEY,
  id               text     NOT NULL UNIQUE,
  command          text     NOT NULL CHECK (length(command) > 0),
  state            text     NOT NULL CHECK (state IN (${STATES})),
  priority         smallint NOT NULL CHECK (priority BETWEEN 1 AND 10),
  max_retries      integer  NOT NULL CHECK (max_retries >= 0),
  timeout_ms       bigint   CHECK (timeout_ms >= 0),
  cwd              text     NOT NULL,
  env              jsonb    NOT NULL DEFAULT '{}',
  run_at           bigint   NOT NULL,
  created_at       bigint   NOT NULL,
  updated_at       bigint   NOT NULL,
  attempts         integer  NOT NULL DEFAULT 0,
  budget_used      integer  NOT NULL DEFAULT 0,
  worker_id        text,
  lease_expires_at bigint,
  armed            boolean  NOT NULL DEFAULT false,
  finished_at      bigint,
  last_error       text,
  last_exit_code   integer,
  CHECK ((state = 'processing') = (worker_id IS NOT NULL)),
  CHECK ((state = 'processing') = (lease_expires_at IS NOT NULL)),
  CHECK ((state IN ('completed', 'dead')) = (finished_at IS NOT NULL)),
  CHECK (budget_used >= 0 AND budget_used <= attempts)
) WITH (fillfactor = 90);

CREATE INDEX jobs_ready ON {S}.jobs (priority, run_at, seq) WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_waiting ON {S}.jobs (state, run_at) WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_by_state ON {S}.jobs (state, seq);
CREATE INDEX jobs_processing ON {S}.jobs (worker_id) WHERE state = 'processing';
CREATE INDEX jobs_finished ON {S}.jobs (state, finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE {S}.job_counts (
  state text   PRIMARY KEY CHECK (state IN (${STATES})),
  n     bigint NOT NULL
);
INSERT INTO {S}.job_counts (state, n) VALUES
  ('pending', 0), ('processing', 0), ('completed', 0), ('failed', 0), ('dead', 0);
-- Appended by the statement triggers below, folded into job_counts by maintain().
CREATE TABLE {S}.job_count_deltas (
  state text   NOT NULL,
  n     bigint NOT NULL
);

CREATE FUNCTION {S}.jobs_count_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO {S}.job_count_deltas (state, n)
    SELECT state, count(*) FROM new_rows GROUP BY state;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO {S}.job_count_deltas (state, n)
    SELECT state, -count(*) FROM old_rows GROUP BY state;
  ELSE
    INSERT INTO {S}.job_count_deltas (state, n)
    SELECT state, sum(d) FROM (
      SELECT state, -1 AS d FROM old_rows UNION ALL SELECT state, 1 FROM new_rows
    ) x GROUP BY state HAVING sum(d) <> 0;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER jobs_count_insert AFTER INSERT ON {S}.jobs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {S}.jobs_count_changes();
CREATE TRIGGER jobs_count_delete AFTER DELETE ON {S}.jobs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {S}.jobs_count_changes();
CREATE TRIGGER jobs_count_update AFTER UPDATE ON {S}.jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {S}.jobs_count_changes();

CREATE TABLE {S}.attempts (
  job_seq     bigint  NOT NULL REFERENCES {S}.jobs (seq) ON DELETE CASCADE,
  attempt     integer NOT NULL,
  worker_id   text    NOT NULL,
  started_at  bigint  NOT NULL,
  finished_at bigint,
  outcome     text CHECK (outcome IN
                ('completed', 'failed', 'timeout', 'spawn_failed', 'lost', 'interrupted')),
  exit_code   integer,
  signal      text,
  error       text,
  pid         integer,
  pid_start   bigint,
  host        text,
  -- When the job became due: queue wait = started_at - due_at.
  due_at      bigint,
  PRIMARY KEY (job_seq, attempt),
  CHECK ((outcome IS NULL) = (finished_at IS NULL))
);
-- Failed attempts by finish time, for the top failing commands.
CREATE INDEX attempts_failures ON {S}.attempts (finished_at) WHERE outcome <> 'completed';

-- Captured output per attempt and stream (1 stdout, 2 stderr): head, and the tail after a cut.
CREATE TABLE {S}.outputs (
  job_seq bigint   NOT NULL REFERENCES {S}.jobs (seq) ON DELETE CASCADE,
  attempt integer  NOT NULL,
  stream  smallint NOT NULL CHECK (stream IN (1, 2)),
  head    bytea    NOT NULL,
  tail    bytea    NOT NULL,
  total   bigint   NOT NULL,
  PRIMARY KEY (job_seq, attempt, stream)
);

CREATE TABLE {S}.workers (
  id             text    PRIMARY KEY,
  pid            integer NOT NULL,
  -- The host's name, for people, and the pid namespace it runs in (lib/worker/host.ts).
  host           text    NOT NULL,
  host_id        text    NOT NULL,
  pid_start      bigint,
  state          text    NOT NULL CHECK (state IN ('running', 'stopping')),
  started_at     bigint  NOT NULL,
  heartbeat_at   bigint  NOT NULL,
  jobs_done      bigint  NOT NULL DEFAULT 0,
  jobs_failed    bigint  NOT NULL DEFAULT 0,
  busy_ms        bigint  NOT NULL DEFAULT 0,
  supervisor_pid integer
);

CREATE TABLE {S}.config (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- Finished attempts folded into per-minute figures as they finish (lib/metrics.ts says what
-- metric and bucket mean), in shards: see queries.ts, STATS_ADD.
CREATE TABLE {S}.stats_minute (
  minute bigint   NOT NULL,
  metric smallint NOT NULL,
  bucket integer  NOT NULL,
  shard  smallint NOT NULL,
  n      bigint   NOT NULL,
  PRIMARY KEY (minute, metric, bucket, shard)
);
`,
  },
  {
    version: 4,
    name: "cancelled jobs and cancel requests (SQLite v6)",
    sql: `
-- The CHECKs that name states and outcomes learn 'cancelled' (their names are PostgreSQL's own
-- for the v3 definitions). A new CHECK validates the rows once, under the migration's lock.
ALTER TABLE {S}.jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE {S}.jobs ADD CONSTRAINT jobs_state_check CHECK (state IN (${STATES}, 'cancelled'));
ALTER TABLE {S}.jobs DROP CONSTRAINT jobs_check2;
ALTER TABLE {S}.jobs ADD CONSTRAINT jobs_finished_check
  CHECK ((state IN ('completed', 'dead', 'cancelled')) = (finished_at IS NOT NULL));
-- Set on a processing job when a user cancels it (its owner kills it at its next look), and
-- kept on the cancelled job: why it was cancelled.
ALTER TABLE {S}.jobs ADD COLUMN cancel_reason text;
-- A worker looks for cancel requests on its jobs: few rows, found without a scan.
CREATE INDEX jobs_cancel_requested ON {S}.jobs (worker_id)
  WHERE cancel_reason IS NOT NULL AND state = 'processing';

ALTER TABLE {S}.job_counts DROP CONSTRAINT job_counts_state_check;
ALTER TABLE {S}.job_counts ADD CONSTRAINT job_counts_state_check
  CHECK (state IN (${STATES}, 'cancelled'));
INSERT INTO {S}.job_counts (state, n) VALUES ('cancelled', 0);

ALTER TABLE {S}.attempts DROP CONSTRAINT attempts_outcome_check;
ALTER TABLE {S}.attempts ADD CONSTRAINT attempts_outcome_check CHECK (outcome IN
  ('completed', 'failed', 'timeout', 'spawn_failed', 'lost', 'interrupted', 'cancelled'));
`,
  },
  {
    version: 5,
    name: "recurring jobs",
    sql: `
-- One row per schedule. next_at is what workers compare-and-swap when they fire it (the store's
-- clock); null: it never fires again. An interval counts from anchor.
CREATE TABLE {S}.schedules (
  name        text    PRIMARY KEY,
  kind        text    NOT NULL CHECK (kind IN ('cron', 'every')),
  cron        text,
  time_zone   text,
  every_ms    bigint  CHECK (every_ms > 0),
  template    text    NOT NULL,
  anchor      bigint  NOT NULL,
  paused      boolean NOT NULL DEFAULT false,
  next_at     bigint,
  last_at     bigint,
  last_job_id text,
  fires       bigint  NOT NULL DEFAULT 0,
  created_at  bigint  NOT NULL,
  updated_at  bigint  NOT NULL,
  CHECK ((kind = 'cron') = (cron IS NOT NULL AND time_zone IS NOT NULL)),
  CHECK ((kind = 'every') = (every_ms IS NOT NULL))
);
CREATE INDEX schedules_due ON {S}.schedules (next_at) WHERE NOT paused AND next_at IS NOT NULL;

-- Occurrences enqueued, one per schedule and fire time (the primary key is the second guard
-- against enqueueing one twice); kept for a day.
CREATE TABLE {S}.schedule_runs (
  schedule    text   NOT NULL,
  fire_at     bigint NOT NULL,
  job_id      text   NOT NULL,
  enqueued_at bigint NOT NULL,
  PRIMARY KEY (schedule, fire_at)
);
`,
  },
  {
    version: 6,
    name: "named queues: pause and concurrency limits (SQLite v8)",
    sql: `
-- A constant default: no table rewrite, existing jobs are in the default queue.
ALTER TABLE {S}.jobs ADD COLUMN queue text NOT NULL DEFAULT 'default';
-- A claim that leaves queues out (paused, at their limit, not the worker's) seeks this index per
-- queue and priority it may take from: jobs of a paused queue are never stepped over.
CREATE INDEX jobs_ready_queue ON {S}.jobs (queue, priority, run_at, seq)
  WHERE state IN ('pending', 'failed');
-- A limit counts the queue's jobs in processing through jobs_processing (as many rows as jobs
-- run), where an index of its own would cost every claim and finish a write.

-- One row per queue that has had a job or a setting. A claim of a limited queue locks its row,
-- so claims of it take turns and its count cannot be read stale (queries.ts, QUEUE_LOCK_LIMITED).
CREATE TABLE {S}.queues (
  name        text    PRIMARY KEY,
  paused      boolean NOT NULL DEFAULT false,
  concurrency integer NOT NULL DEFAULT 0 CHECK (concurrency >= 0),
  created_at  bigint  NOT NULL,
  updated_at  bigint  NOT NULL
);
INSERT INTO {S}.queues (name, created_at, updated_at) VALUES ('default',
  floor(extract(epoch FROM now()) * 1000)::bigint, floor(extract(epoch FROM now()) * 1000)::bigint);
`,
  },
  {
    version: 7,
    name: "dependencies and unique keys (SQLite v9)",
    sql: `
-- As in SQLite v9: what a job waits for (ids as given), how many have not completed (a job
-- with deps_left > 0 is outside jobs_ready and jobs_waiting), whether some job waits for it,
-- and the unique key it holds while live.
ALTER TABLE {S}.jobs ADD COLUMN after_ids jsonb,
  ADD COLUMN deps_left integer NOT NULL DEFAULT 0 CHECK (deps_left >= 0),
  ADD COLUMN has_dependents boolean NOT NULL DEFAULT false,
  ADD COLUMN unique_key text;

-- Job job_seq waits for job dep_seq. The edge goes with its dependent (the foreign key); one
-- on a deleted dependency stays, so that the dependent still names what it waited for.
CREATE TABLE {S}.job_deps (
  dep_seq bigint  NOT NULL,
  job_seq bigint  NOT NULL REFERENCES {S}.jobs (seq) ON DELETE CASCADE,
  dep_id  text    NOT NULL,
  met     boolean NOT NULL DEFAULT false,
  PRIMARY KEY (dep_seq, job_seq)
);
CREATE INDEX job_deps_by_job ON {S}.job_deps (job_seq);

DROP INDEX {S}.jobs_ready;
CREATE INDEX jobs_ready ON {S}.jobs (priority, run_at, seq)
  WHERE state IN ('pending', 'failed') AND deps_left = 0;
DROP INDEX {S}.jobs_waiting;
CREATE INDEX jobs_waiting ON {S}.jobs (state, run_at)
  WHERE state IN ('pending', 'failed') AND deps_left = 0;
CREATE UNIQUE INDEX jobs_unique_key ON {S}.jobs (unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'processing');
DROP INDEX {S}.jobs_ready_queue;
CREATE INDEX jobs_ready_queue ON {S}.jobs (queue, priority, run_at, seq)
  WHERE state IN ('pending', 'failed') AND deps_left = 0;
`,
  },
  {
    version: 8,
    name: "job counts per queue (SQLite v10)",
    sql: `
-- As in SQLite v10: counts per queue and state, the counts per state being their sums. The
-- deltas gain the queue too, and the fold adds them per queue and state (queries.ts). Recounted
-- from the jobs: the share lock lets no job change meanwhile, so the deltas not folded yet are
-- all in the recount and are dropped.
LOCK TABLE {S}.jobs IN SHARE MODE;
DELETE FROM {S}.job_count_deltas;
ALTER TABLE {S}.job_count_deltas ADD COLUMN queue text NOT NULL;
DELETE FROM {S}.job_counts;
ALTER TABLE {S}.job_counts DROP CONSTRAINT job_counts_pkey, ADD COLUMN queue text NOT NULL,
  ADD PRIMARY KEY (queue, state);
INSERT INTO {S}.job_counts (queue, state, n)
SELECT queue, state, count(*) FROM {S}.jobs GROUP BY queue, state;

CREATE OR REPLACE FUNCTION {S}.jobs_count_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO {S}.job_count_deltas (queue, state, n)
    SELECT queue, state, count(*) FROM new_rows GROUP BY queue, state;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO {S}.job_count_deltas (queue, state, n)
    SELECT queue, state, -count(*) FROM old_rows GROUP BY queue, state;
  ELSE
    INSERT INTO {S}.job_count_deltas (queue, state, n)
    SELECT queue, state, sum(d) FROM (
      SELECT queue, state, -1 AS d FROM old_rows UNION ALL SELECT queue, state, 1 FROM new_rows
    ) x GROUP BY queue, state HAVING sum(d) <> 0;
  END IF;
  RETURN NULL;
END
$$;
`,
  },
];
