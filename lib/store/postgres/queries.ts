/**
 * Every SQL statement of the PostgreSQL store, one named constant per store method (or step of
 * one), named as in lib/store/sqlite/queries.ts where the two do the same thing. A comment says
 * where and why a statement must differ from SQLite's.
 *
 * Conventions:
 * - `{S}` is the queue's schema (quoted), filled in by `compile()`; tables are always qualified,
 *   so nothing depends on a connection's search_path (which a pooler may not keep).
 * - `:name` is a parameter, numbered by `compile()` (`$1`, `$2`, …; the same name the same
 *   number). Parameters whose type PostgreSQL cannot infer are cast.
 * - `{NOW}` is the store's clock in epoch ms: the database's `now()`, unless a test clock passed
 *   `:now` (River's `coalesce(@now, now())`). `now()` is the transaction's start, so every
 *   statement of one transaction stamps the same time, as SQLite's store does with one reading.
 * - Lists travel as one `jsonb` parameter (`jsonb_to_recordset`), not as arrays or many
 *   parameters: one prepared statement per method whatever the list's length.
 *
 * Why the claim and every fenced write are shaped as they are (unlike SQLite, which has one
 * writer at a time, PostgreSQL runs transactions side by side under READ COMMITTED):
 * - A claim locks the rows it takes with `FOR UPDATE SKIP LOCKED` inside a MATERIALIZED CTE that
 *   holds every eligibility condition, then updates what that CTE returned. Never
 *   `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`: the planner may run such a
 *   sub-select more than once and update more than n rows (oban-bg/oban#4); and a condition left
 *   outside the locked CTE lets rows that fail it eat the limit (oban-bg/oban#1498).
 * - A write about a running attempt first locks the job's row with the ownership check in the
 *   same statement (an UPDATE of it, or `FOR UPDATE`/`FOR SHARE` in a CTE, in job id order), so
 *   a takeover, a finish or an unclaim by another worker cannot slip in between the check and the
 *   write: the row lock serialises them, and PostgreSQL re-checks the condition on the row as the
 *   other transaction left it.
 *
 * @module
 */

/** A statement ready for postgres.js: `$n` placeholders and the parameter names in order. */
export interface Statement {
  text: string;
  names: readonly string[];
}

/** Double-quotes an identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The store's clock, epoch ms (see the module doc). */
const NOW = "coalesce(:now::bigint, floor(extract(epoch FROM now()) * 1000)::bigint)";

/** Fills in the schema and the clock, and numbers the named parameters. */
export function compile(template: string, schema: string): Statement {
  const names: string[] = [];
  const text = template
    .replaceAll("{NOW}", NOW)
    .replaceAll("{S}", quoteIdent(schema))
    .replace(/(?<![:\w]):([a-z_][a-z0-9_]*)/g, (_, name: string) => {
      let index = names.indexOf(name);
      if (index < 0) index = names.push(name) - 1;
      return `$${index + 1}`;
    });
  return { text, names };
}

/** A migration script: the schema filled in, nothing else (it has no parameters). */
export function compileScript(template: string, schema: string): string {
  return template.replaceAll("{S}", quoteIdent(schema));
}

/** Claimable: waiting, and not for other jobs (jobs_ready and jobs_waiting hold only these). */
const READY = "state IN ('pending', 'failed') AND deps_left = 0";
/** Waiting, whether for its time or for other jobs. */
const WAITING = "state IN ('pending', 'failed')";
/** States in which a job holds its unique key (jobs_unique_key). */
const LIVE = "state IN ('pending', 'failed', 'processing')";
const PRIORITIES = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];

/** Fencing: only the worker that holds this very attempt may write about it. */
const OWNS = "j.state = 'processing' AND j.worker_id = :worker_id AND j.attempts = :attempt";
/** The same, for a list of refs in `r` (job_id, attempt, worker_id). */
const OWNS_REF = "j.id = r.job_id AND j.state = 'processing' AND j.worker_id = r.worker_id " +
  "AND j.attempts = r.attempt";
const REFS = "jsonb_to_recordset(:refs::jsonb) AS r(job_id text, attempt integer, worker_id text)";

// ---------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------

/** The schema version and the queue's id; fails with 42P01 where the schema is not set up. */
export const STORE_VERSION = `
SELECT (SELECT max(version) FROM {S}.queuectl_migrations) AS version,
  (SELECT value FROM {S}.meta WHERE key = 'queue_id') AS queue_id`;

/**
 * One migrator at a time per schema, for the rest of the transaction. The key is derived from
 * the schema's name, so queues in other schemas of the database do not wait for each other.
 */
export const MIGRATION_LOCK = `
SELECT pg_advisory_xact_lock(hashtextextended('queuectl migrate ' || :schema::text, 0))`;

/** Migrators wait this long for each other before giving up busy (exit 5). */
export const MIGRATION_TIMEOUTS =
  "SET LOCAL lock_timeout = '60s'; SET LOCAL statement_timeout = '120s'";

/** Whether the schema and the migration table exist (looked up, so no CREATE is attempted). */
export const MIGRATION_STATE = `
SELECT to_regnamespace(:schema_ident::text) IS NOT NULL AS has_schema,
  to_regclass(:table_ident::text) IS NOT NULL AS has_table`;

export const MIGRATION_CREATE_SCHEMA = `CREATE SCHEMA {S}`;

export const MIGRATION_CREATE_TABLE = `
CREATE TABLE {S}.queuectl_migrations (
  version    integer PRIMARY KEY,
  name       text    NOT NULL,
  applied_at bigint  NOT NULL
)`;

export const MIGRATION_CURRENT =
  `SELECT coalesce(max(version), 0) AS version FROM {S}.queuectl_migrations`;

/**
 * Recorded before the migration's own statements: a second migrator that does not take the
 * advisory lock (another build) then fails on the primary key instead of applying it twice.
 */
export const MIGRATION_RECORD = `
INSERT INTO {S}.queuectl_migrations (version, name, applied_at) VALUES (:version, :name, {NOW})`;

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

/**
 * A queue row for each queue name `names` selects (a column `queue`), for jobs enqueued into
 * it; a new one starts paused while every queue is (`pause` without names: the `pause:all`
 * key). DO NOTHING on a row that exists takes no lock: a claim holding it does not block this.
 */
function QUEUE_ENSURE_FROM(names: string): string {
  return `INSERT INTO {S}.queues (name, paused, created_at, updated_at)
  SELECT n.queue, EXISTS (SELECT 1 FROM {S}.meta WHERE key = 'pause:all'), {NOW}, {NOW}
  FROM (${names}) n
  ON CONFLICT (name) DO NOTHING`;
}

/**
 * Inserts a batch from one jsonb array, in its order. Each row takes the next number of the
 * sequence, in input order (the sorted sub-select is a fence: `nextval` runs as its rows come
 * out); a job without an id gets that number as its id. A row whose id exists (or repeats one
 * earlier in the batch) is not inserted (`DO NOTHING`, which waits for a concurrent inserter of
 * the same id to finish first); the result says which, by `ord`. SQLite takes the sequence
 * under its write lock; here the sequence is what keeps concurrent inserters apart.
 */
export const JOB_INSERT = `
WITH input AS MATERIALIZED (
  SELECT nextval('{S}.job_seq') AS seq, r.*
  FROM (SELECT * FROM jsonb_to_recordset(:jobs::jsonb) AS x(ord integer, id text, command text,
      priority smallint, max_retries integer, timeout_ms bigint, cwd text, env jsonb,
      run_at bigint, delay_ms bigint, queue text, after_ids jsonb, unique_key text)
    ORDER BY ord OFFSET 0) r
),
inserted AS (
  INSERT INTO {S}.jobs (seq, id, command, state, priority, max_retries, timeout_ms, cwd, env,
    run_at, queue, created_at, updated_at, after_ids, unique_key)
  SELECT seq, coalesce(id, seq::text), command, 'pending', priority,
    coalesce(max_retries, :default_max_retries::integer), timeout_ms, cwd, coalesce(env, '{}'),
    coalesce(run_at, {NOW} + delay_ms), queue, {NOW}, {NOW}, after_ids, unique_key
  FROM input ORDER BY ord
  ON CONFLICT DO NOTHING
  RETURNING *
),
queue_rows AS (
  ${QUEUE_ENSURE_FROM("SELECT DISTINCT queue FROM input")}
)
SELECT input.ord AS input_ord, input.id AS input_id, inserted.*
FROM input LEFT JOIN inserted ON inserted.seq = input.seq
ORDER BY input.ord`;

export const JOB_GET = `SELECT * FROM {S}.jobs WHERE id = :id`;

/**
 * The live job holding unique key :key. After an insert that skipped a row for it (`DO NOTHING`
 * waits for the other inserter to commit or roll back), this statement's snapshot sees that
 * job, or none when it finished meanwhile (the caller inserts again).
 */
export const JOB_UNIQUE_HOLDER = `SELECT * FROM {S}.jobs WHERE unique_key = :key AND ${LIVE}`;

/**
 * The jobs named in `after` that are not in the batch, locked in id order and marked as having
 * dependents: a concurrent finish of one waits for this transaction (and then sees its edges),
 * or this waits for that finish (and then reads the state it left).
 */
export const JOB_DEPS_LOCK = `
WITH locked AS MATERIALIZED (
  SELECT seq FROM {S}.jobs WHERE id IN (SELECT jsonb_array_elements_text(:ids::jsonb))
  ORDER BY id FOR UPDATE
)
UPDATE {S}.jobs j SET has_dependents = true FROM locked WHERE j.seq = locked.seq
RETURNING j.seq, j.id, j.state`;

/** Edges and counts of a batch's waiting jobs: (job_seq, dep_seq, dep_id, met) rows. */
export const JOB_DEPS_INSERT = `
WITH e AS (SELECT * FROM jsonb_to_recordset(:edges::jsonb)
    AS e(job_seq bigint, dep_seq bigint, dep_id text, met boolean)),
added AS (
  INSERT INTO {S}.job_deps (dep_seq, job_seq, dep_id, met)
  SELECT dep_seq, job_seq, dep_id, met FROM e ORDER BY job_seq, dep_seq
  ON CONFLICT DO NOTHING
)
UPDATE {S}.jobs j SET deps_left = c.n
FROM (SELECT job_seq, count(*) FILTER (WHERE NOT met) AS n FROM e GROUP BY job_seq) c
WHERE j.seq = c.job_seq AND c.n > 0
RETURNING j.seq, j.deps_left`;

/** Jobs of this batch that others in it wait for. */
export const JOB_MARK_HAS_DEPENDENTS = `
UPDATE {S}.jobs SET has_dependents = true
WHERE seq IN (SELECT jsonb_array_elements_text(:seqs::jsonb)::bigint) AND NOT has_dependents`;

/**
 * Job :seq completed: the jobs still waiting for it have one dependency fewer, counted once per
 * edge (its met flag), so a job that completes again after a forced retry counts once.
 */
export const DEPS_RELEASE = `
WITH met AS (
  UPDATE {S}.job_deps SET met = true WHERE dep_seq = :seq AND NOT met RETURNING job_seq
)
UPDATE {S}.jobs j SET deps_left = j.deps_left - 1 FROM met
WHERE j.seq = met.job_seq AND j.deps_left > 0
RETURNING j.seq`;

/** As SQLite's: the jobs still waiting for job :dep_seq, which ended dead or cancelled. */
export const DEPENDENTS_CANCEL = `
UPDATE {S}.jobs SET state = 'cancelled', finished_at = {NOW}, updated_at = {NOW},
  cancel_reason = :reason
WHERE seq IN (SELECT job_seq FROM {S}.job_deps WHERE dep_seq = :dep_seq AND NOT met)
  AND state = 'pending' AND deps_left > 0
RETURNING seq, id, has_dependents`;

/** A retried job's dependencies that have not completed, with their state now (null: deleted). */
export const JOB_DEPS_UNMET = `
SELECT e.dep_id, d.state FROM {S}.job_deps e LEFT JOIN {S}.jobs d ON d.seq = e.dep_seq
WHERE e.job_seq = :seq AND NOT e.met ORDER BY e.dep_seq`;

/** A retried job waits again for what has not completed. */
export const JOB_SET_DEPS_LEFT = `
UPDATE {S}.jobs j SET deps_left = (SELECT count(*) FROM {S}.job_deps e
    WHERE e.job_seq = j.seq AND NOT e.met)
WHERE j.seq = :seq
RETURNING *`;

export const JOB_DEPS_AFTER = `
SELECT e.dep_id AS id, d.state, e.met FROM {S}.jobs j JOIN {S}.job_deps e ON e.job_seq = j.seq
LEFT JOIN {S}.jobs d ON d.seq = e.dep_seq
WHERE j.id = :id ORDER BY e.dep_seq`;

export const JOB_DEPS_DEPENDENTS = `
SELECT w.id, w.state, e.met FROM {S}.jobs j JOIN {S}.job_deps e ON e.dep_seq = j.seq
JOIN {S}.jobs w ON w.seq = e.job_seq
WHERE j.id = :id ORDER BY e.job_seq LIMIT :limit::integer`;

/** The newest jobs before :before, backwards along the primary key. */
export const JOB_LIST =
  `SELECT * FROM {S}.jobs WHERE seq < :before::bigint ORDER BY seq DESC LIMIT :limit::integer`;

/**
 * The same in some states: `JOB_LIST_BY_STATES[n - 1]` takes n states, :s0 … :s(n-1), one
 * backward walk of jobs_by_state per state, merged (as SQLite's, for the same reason).
 */
export const JOB_LIST_BY_STATES: readonly string[] = [1, 2, 3, 4, 5, 6].map((n) =>
  `SELECT * FROM (${
    Array.from({ length: n }, (_, i) =>
      `(SELECT * FROM {S}.jobs WHERE state = :s${i}::text AND seq < :before::bigint
         ORDER BY seq DESC LIMIT :limit::integer)`).join(" UNION ALL ")
  }) x ORDER BY seq DESC LIMIT :limit::integer`
);

/**
 * The search walk's candidates: `SEARCH_WALK[n]` walks n states (0: every job, by the primary
 * key), newest first, before :before, at most :scan of them; each state is one backward walk of
 * jobs_by_state, merged, as in `JOB_LIST_BY_STATES`. Time bounds do not narrow the walk here (the
 * contract allows either): they are conditions like the others.
 */
const SEARCH_WALK: readonly string[] = [0, 1, 2, 3, 4, 5, 6].map((n) =>
  n === 0
    ? `SELECT seq FROM {S}.jobs WHERE seq < :before::bigint ORDER BY seq DESC LIMIT :scan::integer`
    : `SELECT seq FROM (${
      Array.from({ length: n }, (_, i) =>
        `(SELECT seq FROM {S}.jobs WHERE state = :s${i}::text AND seq < :before::bigint
           ORDER BY seq DESC LIMIT :scan::integer)`).join(" UNION ALL ")
    }) x ORDER BY seq DESC LIMIT :scan::integer`
);

/** The conditions beyond the state, each off when its parameter is NULL (as SQLite's). */
const SEARCH_MATCH = `(:priority_mask::integer IS NULL
    OR ((:priority_mask::integer >> j.priority) & 1) = 1)
  AND (:command::text IS NULL OR strpos(j.command, :command::text) > 0)
  AND (:created_from::bigint IS NULL OR j.created_at >= :created_from::bigint)
  AND (:created_to::bigint IS NULL OR j.created_at < :created_to::bigint)
  AND (:queues::jsonb IS NULL OR j.queue IN (SELECT jsonb_array_elements_text(:queues::jsonb)))
  AND (:due_after::bigint IS NULL OR (j.state IN ('pending', 'failed') AND j.deps_left = 0
    AND j.run_at > :due_after::bigint))
  AND (:due_by::bigint IS NULL OR (j.state IN ('pending', 'failed') AND j.deps_left = 0
    AND j.run_at <= :due_by::bigint))`;

/** The first :want matches among the walk's candidates, newest first. */
export const JOB_SEARCH: readonly string[] = SEARCH_WALK.map((walk) => `
WITH walk AS MATERIALIZED (${walk})
SELECT j.* FROM walk w JOIN {S}.jobs j ON j.seq = w.seq WHERE ${SEARCH_MATCH}
ORDER BY j.seq DESC LIMIT :want::integer`);

/** The walk counted: how many candidates, the oldest of them, how many match. */
export const JOB_SEARCH_SCAN: readonly string[] = SEARCH_WALK.map((walk) => `
WITH walk AS MATERIALIZED (${walk})
SELECT count(*) AS scanned, min(w.seq) AS low, count(*) FILTER (WHERE ${SEARCH_MATCH}) AS hits
FROM walk w JOIN {S}.jobs j ON j.seq = w.seq`);

/**
 * The Scheduled page's walk: jobs waiting for a time, soonest first, after the cursor
 * (:after_run_at, :after_seq), at most :scan. One forward walk of jobs_ready (priority, run_at,
 * seq) per priority from the cursor (a row comparison on the index, so a million jobs due at the
 * same instant are stepped into, not over), merged (a Merge Append: the index orders by priority
 * first, so one walk of all of it would sort every waiting job). A priority left out by
 * :priority_mask is not walked.
 */
const SCHEDULED_WALK = `SELECT seq, run_at FROM (${
  PRIORITIES.map((p) =>
    `(SELECT seq, run_at FROM {S}.jobs WHERE ${READY} AND priority = ${p}
       AND (run_at, seq) > (:after_run_at::bigint, :after_seq::bigint)
       AND (:priority_mask::integer IS NULL OR ((:priority_mask::integer >> ${p}) & 1) = 1)
       ORDER BY run_at, seq LIMIT :scan::integer)`
  ).join(" UNION ALL ")
}) x ORDER BY run_at, seq LIMIT :scan::integer`;

const SCHEDULED_MATCH = `${SEARCH_MATCH}
  AND (:states::jsonb IS NULL OR j.state IN (SELECT jsonb_array_elements_text(:states::jsonb)))`;

/**
 * The first :want matches among the walk's candidates, soonest first. Not materialized: the join
 * pulls candidates only until the page is full.
 */
export const JOB_SEARCH_SCHEDULED = `
SELECT j.* FROM (${SCHEDULED_WALK}) w JOIN {S}.jobs j ON j.seq = w.seq WHERE ${SCHEDULED_MATCH}
ORDER BY w.run_at, w.seq LIMIT :want::integer`;

/** The walk counted: how many candidates, and the last of them (where a next walk starts). */
export const JOB_SEARCH_SCHEDULED_SCAN = `
WITH walk AS MATERIALIZED (${SCHEDULED_WALK})
SELECT (SELECT count(*) FROM walk) AS scanned, last.run_at AS last_run_at, last.seq AS last_seq
FROM (SELECT 1) one
LEFT JOIN (SELECT run_at, seq FROM walk ORDER BY run_at DESC, seq DESC LIMIT 1) last ON true`;

/**
 * Counts per state: the folded counts plus the deltas not folded yet. SQLite keeps one row per
 * state updated by row triggers; here every transaction that moved a job would then wait for the
 * same five rows, so statement triggers append deltas instead (migrations.ts) and `maintain()`
 * folds them in.
 */
export const JOB_COUNTS = `
SELECT state, sum(n)::bigint AS n, sum(delta)::bigint AS deltas FROM (
  SELECT state, n, 0 AS delta FROM {S}.job_counts
  UNION ALL SELECT state, n, 1 FROM {S}.job_count_deltas
) x GROUP BY state`;

/** Lets one session fold at a time; the others skip (the next fold takes their rows). */
export const JOB_COUNTS_FOLD_LOCK = `
SELECT pg_try_advisory_xact_lock(hashtextextended('queuectl fold ' || :schema::text, 0))
  AS locked`;

/**
 * Moves the deltas into the counts (per queue and state, migration 8): a delta deleted here is
 * added here, exactly once. A queue's first delta for a state creates its row.
 */
export const JOB_COUNTS_FOLD = `
WITH moved AS (DELETE FROM {S}.job_count_deltas RETURNING queue, state, n)
INSERT INTO {S}.job_counts AS c (queue, state, n)
SELECT queue, state, sum(n) FROM moved GROUP BY queue, state
ON CONFLICT (queue, state) DO UPDATE SET n = c.n + excluded.n`;

/**
 * The queues a claim may take from, each with its room (how many of its jobs it may claim): not
 * paused, in the worker's :queues (jsonb array; null: every queue), and, when it has a limit,
 * only once the claim holds its row lock (:limited, see QUEUE_LOCK_LIMITED), room being the
 * limit less its jobs in processing (reserved ones count). The named fragment every statement
 * that asks "may a worker take this queue's jobs" shares.
 */
const QUEUE_ELIGIBLE = `
SELECT qu.name, CASE WHEN qu.concurrency = 0 THEN :limit::integer
    ELSE least(:limit::integer, qu.concurrency - (SELECT count(*) FROM {S}.jobs r
      WHERE r.queue = qu.name AND r.state = 'processing')::integer) END AS room
FROM {S}.queues qu
WHERE NOT qu.paused
  AND (:queues::jsonb IS NULL OR qu.name IN (SELECT jsonb_array_elements_text(:queues::jsonb)))
  AND (qu.concurrency = 0 OR :limited::boolean)`;

const PRIORITY_VALUES = `(VALUES ${PRIORITIES.map((p) => `(${p})`).join(", ")}) AS p(priority)`;

/**
 * Locks the rows of the limited queues a claim may take from, in name order (two claims never
 * wait for each other crosswise), before the claim's statement: claims of a limited queue take
 * turns, and the next one's statement, which starts after the lock is granted, counts the jobs
 * the last one claimed (READ COMMITTED: a new snapshot per statement; a count in the same
 * statement as the lock would read the snapshot from before the wait). Unlimited queues take no
 * lock.
 */
export const QUEUE_LOCK_LIMITED = `
SELECT name FROM {S}.queues
WHERE concurrency > 0 AND NOT paused
  AND (:queues::jsonb IS NULL OR name IN (SELECT jsonb_array_elements_text(:queues::jsonb)))
ORDER BY name FOR NO KEY UPDATE`;

/** Whether a limited queue exists among those a claim may take from (QUEUE_LOCK_LIMITED's). */
export const QUEUE_LIMITED_EXISTS = `
SELECT EXISTS (SELECT 1 FROM {S}.queues WHERE concurrency > 0 AND NOT paused
  AND (:queues::jsonb IS NULL OR name IN (SELECT jsonb_array_elements_text(:queues::jsonb))))
  AS limited`;

/**
 * What makes a job claimable, on the row the claim locks (alias `j`): every eligibility
 * condition sits here, inside the locked CTE (`CLAIM_CTES`), so that PostgreSQL re-checks all of
 * them on the row version it locks and rows that fail one never eat the limit
 * (oban-bg/oban#1498): waiting, due, and of a queue the claim may take from with room left
 * (`eligible`, from QUEUE_ELIGIBLE). The whole is wrapped in `IS TRUE` (the same truth for a
 * WHERE clause) so that the planner cannot match it to the partial indexes of the waiting jobs:
 * it would rather read every due job through one of them and filter by the few candidates (a
 * read of the whole ready set per claim) than look the candidates up by key.
 */
const CLAIM_ELIGIBLE = `(j.${READY} AND j.run_at <= {NOW}
  AND j.queue IN (SELECT name FROM eligible WHERE room > 0)) IS TRUE`;

/**
 * The claim as CTEs (`claimed` holds the rows taken), shared by `JOB_CLAIM` and
 * `JOB_FINISH_AND_CLAIM`. The candidates are, for each queue it may take from (QUEUE_ELIGIBLE)
 * and each priority, the first due jobs up to the queue's room (one range of jobs_ready_queue
 * each, as SQLite's walk, so that jobs scheduled for later, or of a paused queue, are never
 * stepped over), cut to the queue's room across its priorities. Only a pre-selection: the locked
 * CTE takes the best of them that no other claim holds, under `CLAIM_ELIGIBLE`, looking them up
 * by key (`= ANY`). The update reserves an attempt of each, and arms the first :arm_first of them
 * at once (they go straight into free slots, as if `ATTEMPT_ARM` ran in the same transaction);
 * the attempt rows are inserted, started now. :limit 0 claims nothing (every room is 0).
 */
const CLAIM_CTES = `
eligible AS MATERIALIZED (${QUEUE_ELIGIBLE}),
candidates AS MATERIALIZED (
  SELECT c.seq, c.priority, c.run_at, e.name AS queue, e.room
  FROM eligible e CROSS JOIN ${PRIORITY_VALUES}
  CROSS JOIN LATERAL (SELECT seq, priority, run_at FROM {S}.jobs
    WHERE ${READY} AND queue = e.name AND priority = p.priority AND run_at <= {NOW}
    ORDER BY run_at, seq LIMIT e.room) c
  WHERE e.room > 0
),
capped AS MATERIALIZED (
  SELECT seq FROM (SELECT seq, room, row_number() OVER (PARTITION BY queue
      ORDER BY priority DESC, run_at, seq) AS n FROM candidates) x
  WHERE n <= room
),
locked AS MATERIALIZED (
  SELECT j.seq, j.priority, j.run_at FROM {S}.jobs j
  WHERE j.seq = ANY (ARRAY(SELECT seq FROM capped)) AND ${CLAIM_ELIGIBLE}
  ORDER BY j.priority DESC, j.run_at, j.seq
  LIMIT :limit::integer
  FOR UPDATE OF j SKIP LOCKED
),
ranked AS (
  SELECT seq, row_number() OVER (ORDER BY priority DESC, run_at, seq) <= :arm_first::integer
    AS arm
  FROM locked
),
claimed AS (
  UPDATE {S}.jobs j SET state = 'processing', attempts = j.attempts + 1,
    budget_used = j.budget_used + 1, worker_id = :worker_id, lease_expires_at = {NOW} + :lease_ms,
    armed = ranked.arm, updated_at = {NOW}
  FROM ranked WHERE j.seq = ranked.seq
  RETURNING j.*
),
reserved AS (
  INSERT INTO {S}.attempts (job_seq, attempt, worker_id, started_at, host, due_at)
  SELECT seq, attempts, :worker_id, {NOW}, :host, run_at FROM claimed
)`;

/** Claims up to :limit due jobs (see `CLAIM_CTES`), best first. */
export const JOB_CLAIM = `
WITH ${CLAIM_CTES}
SELECT * FROM claimed ORDER BY priority DESC, run_at, seq`;

/**
 * When the next waiting job that a claim of :queues could take is due (queues paused or at
 * their limit left out), and the store's now: the first entry of jobs_ready_queue per eligible
 * queue and priority. Read-only, no lock.
 */
export const QUEUE_NEXT_DUE = `
WITH eligible AS MATERIALIZED (${
  QUEUE_ELIGIBLE.replaceAll(":limit::integer", "1")
    .replace(":limited::boolean", "true")
})
SELECT (SELECT min(x.run_at) FROM eligible e CROSS JOIN ${PRIORITY_VALUES}
    CROSS JOIN LATERAL (SELECT run_at FROM {S}.jobs WHERE ${READY} AND queue = e.name
      AND priority = p.priority ORDER BY run_at LIMIT 1) x
    WHERE e.room > 0) AS next_at,
  {NOW} AS now`;

/** Every queue by name; counts per queue and state: the folded counts plus the deltas. */
export const QUEUE_LIST = `
SELECT name, paused, concurrency, created_at, updated_at,
  EXISTS (SELECT 1 FROM {S}.meta WHERE key = 'pause:all') AS paused_all
FROM {S}.queues ORDER BY name`;
export const QUEUE_COUNTS = `
SELECT queue, state, sum(n)::bigint AS n, sum(delta)::bigint AS deltas FROM (
  SELECT queue, state, n, 0 AS delta FROM {S}.job_counts
  UNION ALL SELECT queue, state, n, 1 FROM {S}.job_count_deltas
) x GROUP BY queue, state`;
export const QUEUE_PAUSED = `SELECT name FROM {S}.queues WHERE paused ORDER BY name`;
export const QUEUE_PAUSED_ALL = `
SELECT EXISTS (SELECT 1 FROM {S}.meta WHERE key = 'pause:all') AS paused_all`;

/** Pauses or resumes the queues named in :names (jsonb array), creating their rows. */
export const QUEUE_SET_PAUSED = `
INSERT INTO {S}.queues (name, paused, created_at, updated_at)
SELECT n, :paused::boolean, {NOW}, {NOW} FROM jsonb_array_elements_text(:names::jsonb) AS n
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,
  updated_at = CASE WHEN {S}.queues.paused = excluded.paused THEN {S}.queues.updated_at
    ELSE {NOW} END
RETURNING name`;
/** Every queue, and the mark new queues read (`pause:all`, set or removed). */
export const QUEUE_SET_PAUSED_ALL = `
WITH changed AS (
  UPDATE {S}.queues SET paused = :paused::boolean, updated_at = {NOW}
  WHERE paused <> :paused::boolean
),
marked AS (
  INSERT INTO {S}.meta (key, value) SELECT 'pause:all', ({NOW})::text WHERE :paused::boolean
  ON CONFLICT (key) DO NOTHING
),
unmarked AS (DELETE FROM {S}.meta WHERE key = 'pause:all' AND NOT :paused::boolean)
SELECT name FROM {S}.queues ORDER BY name`;

/** Sets a queue's limit, creating its row (paused as new queues start); returns it. */
export const QUEUE_SET_CONCURRENCY = `
INSERT INTO {S}.queues (name, paused, concurrency, created_at, updated_at)
VALUES (:name, EXISTS (SELECT 1 FROM {S}.meta WHERE key = 'pause:all'), :concurrency::integer,
  {NOW}, {NOW})
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, updated_at = {NOW}
RETURNING *`;
export const QUEUE_COUNTS_OF = `
SELECT state, sum(n)::bigint AS n FROM (
  SELECT state, n FROM {S}.job_counts WHERE queue = :name
  UNION ALL SELECT state, n FROM {S}.job_count_deltas WHERE queue = :name
) x GROUP BY state`;

/**
 * Arms reserved attempts just before their spawn. SQLite marks the attempt row; here the mark is
 * on the job's row (`jobs.armed`), so that arming and `JOB_UNCLAIM` contend for the same row lock
 * and exactly one of them wins. The attempt's start time moves to now (queue wait counts to here).
 */
export const ATTEMPT_ARM = `
WITH r AS (SELECT * FROM ${REFS}),
owned AS MATERIALIZED (
  SELECT j.seq, j.id, j.attempts FROM {S}.jobs j JOIN r ON ${OWNS_REF}
  WHERE NOT j.armed ORDER BY j.id FOR UPDATE OF j
),
armed AS (
  UPDATE {S}.jobs j SET armed = true FROM owned WHERE j.seq = owned.seq
  RETURNING j.seq, j.id, j.attempts
),
started AS (
  UPDATE {S}.attempts a SET started_at = {NOW} FROM armed
  WHERE a.job_seq = armed.seq AND a.attempt = armed.attempts
)
SELECT id AS job_id, attempts AS attempt FROM armed`;

/**
 * Undoes a reserved attempt that never started: the job is as it was before the claim (failed
 * again if its previous attempt was charged as a failure, else pending), the attempt row gone.
 * Guarded by owner, attempt and `NOT armed` on the job's row (see ATTEMPT_ARM).
 */
export const JOB_UNCLAIM = `
WITH undone AS (
  UPDATE {S}.jobs j SET
    state = CASE WHEN EXISTS (SELECT 1 FROM {S}.attempts p WHERE p.job_seq = j.seq
        AND p.attempt = j.attempts - 1
        AND p.outcome IN ('failed', 'timeout', 'spawn_failed', 'lost'))
      THEN 'failed' ELSE 'pending' END,
    attempts = j.attempts - 1, budget_used = j.budget_used - 1, worker_id = NULL,
    lease_expires_at = NULL, updated_at = {NOW}
  WHERE j.id = :id AND ${OWNS} AND NOT j.armed
  RETURNING j.seq
),
deleted AS (
  DELETE FROM {S}.attempts a USING undone WHERE a.job_seq = undone.seq AND a.attempt = :attempt
)
SELECT seq FROM undone`;

/**
 * When the next waiting job is due, and the store's now: the first entry of jobs_waiting for
 * each of the two waiting states. Read-only, no lock.
 */
export const JOB_NEXT_DUE = `
SELECT least(
    (SELECT min(run_at) FROM {S}.jobs WHERE state = 'pending' AND deps_left = 0),
    (SELECT min(run_at) FROM {S}.jobs WHERE state = 'failed' AND deps_left = 0)) AS next_at,
  {NOW} AS now`;

/**
 * Pending jobs not due yet, and when the first is due: one range of jobs_waiting (state, run_at).
 * SQLite needs a count of the failed ones to subtract; this index has the state first.
 */
export const JOB_COUNT_SCHEDULED = `
SELECT count(*) AS scheduled, min(run_at) AS next_at
FROM {S}.jobs WHERE state = 'pending' AND deps_left = 0 AND run_at > {NOW}`;

/** The due job that has waited longest: the first due entry of each waiting state. */
export const JOB_OLDEST_DUE = `
SELECT id, run_at FROM (
  (SELECT id, run_at FROM {S}.jobs WHERE state = 'pending' AND deps_left = 0
   AND run_at <= {NOW} ORDER BY run_at LIMIT 1)
  UNION ALL
  (SELECT id, run_at FROM {S}.jobs WHERE state = 'failed' AND deps_left = 0
   AND run_at <= {NOW} ORDER BY run_at LIMIT 1)
) x ORDER BY run_at LIMIT 1`;

/** A waiting job due now (an earlier due time stays): guarded by state, as a retry is. */
export const JOB_RUN_NOW = `
UPDATE {S}.jobs SET run_at = LEAST(run_at, {NOW}), updated_at = {NOW}
WHERE id = :id AND ${WAITING} RETURNING *`;

/** Guarded by state: of two concurrent retries of one job, the second finds it pending. */
export const JOB_DLQ_RETRY = `
UPDATE {S}.jobs SET state = 'pending', budget_used = 0, run_at = {NOW}, finished_at = NULL,
  updated_at = {NOW}
WHERE id = :id AND state = 'dead'
RETURNING *`;

/** Whether any dead job has a unique key (then `dlq retry --all` checks them one by one). */
export const JOB_DEAD_KEYED = `
SELECT 1 AS one FROM {S}.jobs WHERE state = 'dead' AND unique_key IS NOT NULL LIMIT 1`;

export const JOB_DLQ_RETRY_ALL = `
UPDATE {S}.jobs SET state = 'pending', budget_used = 0, run_at = {NOW}, finished_at = NULL,
  updated_at = {NOW}
WHERE state = 'dead'
RETURNING *`;

/**
 * For `cancel`, all or none: the jobs asked for, locked in id order (so two cancels, or a
 * cancel and a finish, of the same jobs wait for each other instead of deadlocking), each with
 * its state and whether its current attempt was armed. Under the lock nothing changes them
 * until this transaction ends.
 */
export const JOB_CANCEL_LOCK = `
SELECT j.seq, j.id, j.state, j.attempts, j.armed FROM {S}.jobs j
WHERE j.id IN (SELECT jsonb_array_elements_text(:ids::jsonb))
ORDER BY j.id FOR UPDATE`;

/** Ids of the jobs in some states, for `cancel --state S --all`, oldest first. */
export const JOB_IDS_IN_STATES = `
SELECT id FROM {S}.jobs WHERE state IN (SELECT jsonb_array_elements_text(:states::jsonb))
ORDER BY seq`;

/** A waiting job is cancelled at once (guarded by its state; the row is locked). */
export const JOB_CANCEL_WAITING = `
UPDATE {S}.jobs SET state = 'cancelled', finished_at = {NOW}, updated_at = {NOW},
  cancel_reason = :reason
WHERE seq = :seq AND ${WAITING}
RETURNING *`;

/**
 * A claim reserved the attempt and its worker never started it: undone (as JOB_UNCLAIM) and
 * cancelled, so that the worker's arm, fenced by owner and `NOT armed`, finds nothing.
 */
export const JOB_CANCEL_RESERVED = `
WITH undone AS (
  UPDATE {S}.jobs j SET state = 'cancelled', attempts = j.attempts - 1,
    budget_used = j.budget_used - 1, worker_id = NULL, lease_expires_at = NULL,
    finished_at = {NOW}, updated_at = {NOW}, cancel_reason = :reason
  WHERE j.seq = :seq AND j.state = 'processing' AND NOT j.armed AND j.attempts = :attempt
  RETURNING j.*
),
deleted AS (
  DELETE FROM {S}.attempts a USING undone WHERE a.job_seq = undone.seq AND a.attempt = :attempt
)
SELECT * FROM undone`;

/** A running job: the request its owner sees at its next look (the first reason is kept). */
export const JOB_CANCEL_REQUEST = `
UPDATE {S}.jobs SET cancel_reason = coalesce(cancel_reason, :reason), updated_at = {NOW}
WHERE seq = :seq AND state = 'processing'
RETURNING *`;

/** Cancel requests on a worker's running jobs (through jobs_cancel_requested). */
export const JOB_CANCEL_REQUESTS = `
SELECT id, attempts, worker_id, cancel_reason FROM {S}.jobs
WHERE worker_id = :worker_id AND cancel_reason IS NOT NULL AND state = 'processing'`;

/** `retry`: back to pending with a fresh budget, guarded by the states allowed (a jsonb array). */
export const JOB_RETRY = `
UPDATE {S}.jobs SET state = 'pending', budget_used = 0, run_at = {NOW}, finished_at = NULL,
  cancel_reason = NULL, updated_at = {NOW}
WHERE id = :id AND state IN (SELECT jsonb_array_elements_text(:states::jsonb))
RETURNING *`;

/** Recovery takes an attempt from its owner (fencing it out) before killing its processes. */
export const JOB_TAKE_OVER = `
UPDATE {S}.jobs j SET worker_id = :new_worker_id, lease_expires_at = {NOW} + :lease_ms,
  updated_at = {NOW}
WHERE j.id = :id AND ${OWNS} AND (NOT :require_expired::boolean OR j.lease_expires_at <= {NOW})
RETURNING j.seq`;

/**
 * A cancel was asked for while the attempt ran and the attempt did not complete: the job ends
 * `cancelled` (as in SQLite's queries.ts, CANCEL_WINS). The row lock of the update orders it
 * with `JOB_CANCEL_REQUEST`: whichever commits first is what the other sees.
 */
const CANCEL_WINS = "(j.cancel_reason IS NOT NULL AND f.state <> 'completed')";

/**
 * An attempt not closed yet (finish times are epoch ms, never negative). Written so rather than
 * \`a.finished_at IS NULL\`, which is the same here: on a never-analyzed attempts table (a new
 * queue, and the generic plans of worker connections are made at their first step) the planner,
 * given \`IS NULL\`, read the whole table per outcome instead of the row by its key, a cost
 * growing with every attempt kept (bench/RESULTS.md, PostgreSQL: 0.04 ms at the start of a
 * 3000-job run, 0.17 ms at its end).
 */
const OPEN_ATTEMPT = "coalesce(a.finished_at, -1) < 0";

/**
 * The histogram bucket of a duration in ms, as lib/stats.ts `bucketOf` computes it (the same
 * formula in double precision; tests/store/postgres_test.ts checks that the two agree).
 */
export const BUCKET = (ms: string): string =>
  `(CASE WHEN (${ms}) >= 1 THEN 1 + floor(ln((${ms})::float8) / ln(1.25::float8) + 1e-9::float8)
     ELSE 0 END)::integer`;

/**
 * A worker's step, as one statement (one round trip, one commit, and the jobs table's count
 * trigger fires once for all of it): the outcomes in :finish, the arming of the reserved attempts
 * in :arm, and a claim (`CLAIM_CTES`; :limit 0 claims nothing). `jobFinish` is the same with
 * nothing to arm or claim.
 *
 * - The jobs of the outcomes and of the arms are locked first, together, in job id order (so this
 *   and a cancel, a heartbeat or another finish of the same jobs wait for each other instead of
 *   deadlocking), each under its fence: owner and attempt (and for an outcome that requires it, an
 *   expired lease; for an arm, not armed yet). A ref that no longer matches locks nothing and
 *   changes nothing.
 * - Each outcome applies as `jobFinish` says (a cancel requested meanwhile wins unless the
 *   attempt completed: `CANCEL_WINS`), closes its attempt, saves its final output (streams that
 *   stayed empty are skipped: readers treat a missing row as empty), and adds to the per-minute
 *   figures what lib/stats.ts `statIncrements` adds (summed per metric and bucket, in that order:
 *   one upsert changes a row once, and concurrent upserts lock rows in the same order). SQLite
 *   has one writer; here every finish of every worker would wait for the same few rows of the
 *   current minute, so each session writes its own shard of them (the backend pid mod 8) and
 *   readers add the shards up. Metric 3 (the longest run time) keeps the maximum.
 * - Outcomes, arms and claims touch different rows: the claim only sees rows that were waiting
 *   when the statement began, and the others are processing.
 *
 * One row comes back per claimed job (none claimed: one row of NULL job columns), each carrying
 * `finish_applied` (the :finish ords that applied) and `arm_applied` (the [id, attempt] armed).
 */
export const JOB_FINISH_AND_CLAIM = `
WITH f AS (
  SELECT * FROM jsonb_to_recordset(:finish::jsonb) AS f(ord integer, job_id text, attempt integer,
    worker_id text, state text, refund integer, run_in_ms bigint, terminal boolean, error text,
    exit_code integer, outcome text, outcome_code integer, signal text, require_expired boolean,
    out_head text, out_tail text, out_total bigint, err_head text, err_tail text, err_total bigint)
),
arm AS (SELECT * FROM jsonb_to_recordset(:arm::jsonb)
  AS a(job_id text, attempt integer, worker_id text)),
targets AS (
  SELECT job_id, attempt, worker_id, ord, require_expired, false AS arm FROM f
  UNION ALL SELECT job_id, attempt, worker_id, NULL, false, true FROM arm
),
owned AS MATERIALIZED (
  SELECT j.seq, t.ord, t.arm, j.has_dependents AS deps FROM {S}.jobs j
    JOIN targets t ON j.id = t.job_id
    AND j.state = 'processing' AND j.worker_id = t.worker_id AND j.attempts = t.attempt
  WHERE CASE WHEN t.arm THEN NOT j.armed
    ELSE NOT t.require_expired OR j.lease_expires_at <= {NOW} END
  ORDER BY j.id FOR UPDATE OF j
),
finished AS (
  UPDATE {S}.jobs j SET
    state = CASE WHEN ${CANCEL_WINS} THEN 'cancelled' ELSE f.state END,
    budget_used = j.budget_used - f.refund,
    run_at = CASE WHEN f.run_in_ms IS NULL THEN j.run_at ELSE {NOW} + f.run_in_ms END,
    finished_at = CASE WHEN f.terminal OR ${CANCEL_WINS} THEN {NOW} END, worker_id = NULL,
    lease_expires_at = NULL, last_error = f.error, last_exit_code = f.exit_code,
    updated_at = {NOW},
    cancel_reason = CASE WHEN f.state = 'completed' THEN NULL ELSE j.cancel_reason END
  FROM owned o JOIN f ON f.ord = o.ord
  WHERE j.seq = o.seq AND NOT o.arm AND NOT o.deps
  RETURNING j.seq, j.state, f.ord, j.attempts AS attempt
),
-- The attempt row by its whole key from \`finished\` alone: joined by f's attempt instead, the
-- planner (on a small or never-analyzed table) looked it up by the attempt number only and
-- filtered by job, a walk of every attempt with that number per outcome. Not closed yet is
-- ${OPEN_ATTEMPT}: with \`finished_at IS NULL\` the planner read the whole table instead.
closed AS (
  UPDATE {S}.attempts a SET finished_at = {NOW},
    outcome = CASE WHEN d.state = 'cancelled' THEN 'cancelled' ELSE f.outcome END,
    exit_code = f.exit_code, signal = f.signal, error = f.error
  FROM finished d JOIN f ON f.ord = d.ord
  WHERE a.job_seq = d.seq AND a.attempt = d.attempt AND ${OPEN_ATTEMPT}
  RETURNING d.ord, a.started_at, a.due_at
),
facts AS (
  SELECT CASE WHEN d.state = 'cancelled' THEN :cancelled_code::integer ELSE f.outcome_code END
      AS code,
    d.state <> 'cancelled' AND f.outcome = 'interrupted' AS interrupted,
    greatest(0, {NOW} - c.started_at) AS run_ms, c.started_at - c.due_at AS wait_ms,
    CASE WHEN f.attempt > 1 AND f.outcome <> 'interrupted' THEN (
      SELECT count(*) FROM {S}.attempts p WHERE p.job_seq = d.seq
        AND p.attempt < f.attempt AND p.outcome IS NOT NULL AND p.outcome <> 'interrupted')
    ELSE 0 END AS earlier
  FROM closed c JOIN finished d ON d.ord = c.ord JOIN f ON f.ord = c.ord
  WHERE c.started_at IS NOT NULL
),
increments AS (
  SELECT 0 AS metric, code AS bucket, 1::bigint AS n FROM facts
  UNION ALL SELECT 1, ${BUCKET("run_ms")}, 1 FROM facts WHERE NOT interrupted
  UNION ALL SELECT 2, ${BUCKET("greatest(0, wait_ms)")}, 1 FROM facts
    WHERE NOT interrupted AND wait_ms IS NOT NULL
  UNION ALL SELECT 4, 0, 1 FROM facts WHERE NOT interrupted AND earlier > 0
  UNION ALL SELECT 4, 1, 1 FROM facts WHERE NOT interrupted AND earlier = 1
  UNION ALL SELECT 3, 0, run_ms FROM facts WHERE NOT interrupted
),
stats AS (
  INSERT INTO {S}.stats_minute (minute, metric, bucket, shard, n)
  SELECT {NOW} / 60000, metric, bucket, pg_backend_pid() % 8,
    CASE WHEN metric = 3 THEN max(n) ELSE sum(n) END
  FROM increments GROUP BY metric, bucket ORDER BY metric, bucket
  ON CONFLICT (minute, metric, bucket, shard) DO UPDATE SET
    n = CASE WHEN excluded.metric = 3 THEN greatest({S}.stats_minute.n, excluded.n)
        ELSE {S}.stats_minute.n + excluded.n END
),
saved AS (
  INSERT INTO {S}.outputs (job_seq, attempt, stream, head, tail, total)
  SELECT d.seq, f.attempt, s.stream, decode(s.head, 'base64'), decode(s.tail, 'base64'), s.total
  FROM finished d JOIN f ON f.ord = d.ord CROSS JOIN LATERAL (VALUES
    (1, f.out_head, f.out_tail, f.out_total),
    (2, f.err_head, f.err_tail, f.err_total)) AS s(stream, head, tail, total)
  WHERE s.total > 0
  ORDER BY d.seq, f.attempt, s.stream
  ON CONFLICT (job_seq, attempt, stream) DO UPDATE SET
    head = excluded.head, tail = excluded.tail, total = excluded.total
),
armed AS (
  UPDATE {S}.jobs j SET armed = true FROM owned o WHERE j.seq = o.seq AND o.arm
  RETURNING j.seq, j.id, j.attempts
),
started AS (
  UPDATE {S}.attempts a SET started_at = {NOW} FROM armed
  WHERE a.job_seq = armed.seq AND a.attempt = armed.attempts
),
${CLAIM_CTES}
SELECT r.finish_applied, r.arm_applied, r.finish_deferred, c.*
FROM (SELECT
    (SELECT coalesce(jsonb_agg(ord), '[]') FROM finished) AS finish_applied,
    (SELECT coalesce(jsonb_agg(jsonb_build_array(id, attempts)), '[]') FROM armed) AS arm_applied,
    -- Outcomes of jobs that others wait for: left to the caller (JOB_FINISH), see jobFinishAndClaim.
    (SELECT coalesce(jsonb_agg(ord), '[]') FROM owned WHERE NOT arm AND deps) AS finish_deferred
  ) r
LEFT JOIN claimed c ON true
ORDER BY c.priority DESC, c.run_at, c.seq`;

/**
 * A cancel was asked for while the attempt ran and the attempt did not complete: the job ends
 * `cancelled` (as in SQLite's queries.ts, CANCEL_WINS_ONE). The row lock of the update orders it
 * with `JOB_CANCEL_REQUEST`: whichever commits first is what the other sees.
 */
const CANCEL_WINS_ONE = "(j.cancel_reason IS NOT NULL AND :state::text <> 'completed')";
const CANCELLED_UNLESS_DONE = `CASE WHEN ${CANCEL_WINS_ONE} THEN 'cancelled' ELSE :state::text END`;

/**
 * For a job that others wait for (`has_dependents`), whose end must release or cancel them in the
 * same transaction, which the one-statement step leaves to its caller (`finish_deferred`):
 * applies an outcome (fenced, and only after the lease ran out when required) and closes the
 * attempt, in one statement; returns what the figures need: the attempt's start and due time,
 * and how many earlier attempts were charged (for a later attempt that counts).
 */
export const JOB_FINISH = `
WITH finished AS (
  UPDATE {S}.jobs j SET state = ${CANCELLED_UNLESS_DONE}, budget_used = j.budget_used - :refund::integer,
    run_at = CASE WHEN :run_in_ms::bigint IS NULL THEN j.run_at ELSE {NOW} + :run_in_ms END,
    finished_at = CASE WHEN :terminal::boolean OR ${CANCEL_WINS_ONE} THEN {NOW} END, worker_id = NULL,
    lease_expires_at = NULL, last_error = :error, last_exit_code = :exit_code::integer,
    updated_at = {NOW},
    cancel_reason = CASE WHEN :state::text = 'completed' THEN NULL ELSE j.cancel_reason END
  WHERE j.id = :id AND ${OWNS}
    AND (NOT :require_expired::boolean OR j.lease_expires_at <= {NOW})
  RETURNING j.seq, j.state, j.has_dependents
),
closed AS (
  UPDATE {S}.attempts a SET finished_at = {NOW},
    outcome = CASE WHEN finished.state = 'cancelled' THEN 'cancelled' ELSE :outcome END,
    exit_code = :exit_code, signal = :signal, error = :error
  FROM finished WHERE a.job_seq = finished.seq AND a.attempt = :attempt AND ${OPEN_ATTEMPT}
  RETURNING a.started_at, a.due_at
)
SELECT finished.seq, finished.state, finished.has_dependents, closed.started_at, closed.due_at,
  {NOW} AS now,
  CASE WHEN :attempt > 1 AND :outcome <> 'interrupted' THEN (
    SELECT count(*) FROM {S}.attempts p WHERE p.job_seq = finished.seq
      AND p.attempt < :attempt AND p.outcome IS NOT NULL AND p.outcome <> 'interrupted')
  ELSE 0 END AS earlier_charged
FROM finished LEFT JOIN closed ON true`;

/**
 * Adds to the per-minute figures (increments summed per metric and bucket by the caller, in
 * that order, so concurrent writers lock rows in the same order). SQLite has one writer; here
 * every finish of every worker would wait for the same few rows of the current minute, so each
 * session writes its own shard of them (the backend pid mod 8) and readers add the shards up.
 * Metric 3 (the longest run time) keeps the maximum.
 */
export const STATS_ADD = `
INSERT INTO {S}.stats_minute (minute, metric, bucket, shard, n)
SELECT {NOW} / 60000, r.metric, r.bucket, pg_backend_pid() % 8, r.n
FROM jsonb_to_recordset(:increments::jsonb) AS r(metric smallint, bucket integer, n bigint)
ORDER BY r.metric, r.bucket
ON CONFLICT (minute, metric, bucket, shard) DO UPDATE SET
  n = CASE WHEN excluded.metric = 3 THEN greatest({S}.stats_minute.n, excluded.n)
      ELSE {S}.stats_minute.n + excluded.n END`;

/**
 * Saves the output of attempts, one jsonb entry per attempt with both streams (bytes as base64).
 * A running attempt's save (`fenced`) checks its ownership in the statement, holding the job's
 * row FOR SHARE until commit; an outcome's output (`fenced` false) is saved by the transaction
 * that just applied the fenced outcome, and skips a stream that stayed empty (readers treat a
 * missing row as empty, as in SQLite).
 */
export const OUTPUT_SAVE = `
WITH r AS (SELECT * FROM jsonb_to_recordset(:outputs::jsonb) AS r(job_id text, attempt integer,
    worker_id text, fenced boolean, out_head text, out_tail text, out_total bigint,
    err_head text, err_tail text, err_total bigint)),
owned AS MATERIALIZED (
  SELECT j.seq, r.* FROM {S}.jobs j JOIN r ON j.id = r.job_id
  WHERE NOT r.fenced OR (${OWNS_REF})
  ORDER BY j.id FOR SHARE OF j
),
saved AS (
  INSERT INTO {S}.outputs (job_seq, attempt, stream, head, tail, total)
  SELECT owned.seq, owned.attempt, s.stream, decode(s.head, 'base64'), decode(s.tail, 'base64'),
    s.total
  FROM owned CROSS JOIN LATERAL (VALUES
    (1, owned.out_head, owned.out_tail, owned.out_total),
    (2, owned.err_head, owned.err_tail, owned.err_total)) AS s(stream, head, tail, total)
  WHERE owned.fenced OR s.total > 0
  ORDER BY owned.seq, owned.attempt, s.stream
  ON CONFLICT (job_seq, attempt, stream) DO UPDATE SET
    head = excluded.head, tail = excluded.tail, total = excluded.total
)
SELECT job_id, attempt, worker_id FROM owned`;

/** Records the job's process of attempts whose ownership the statement checked (FOR SHARE). */
export const ATTEMPT_SET_PROCESS = `
WITH r AS (SELECT * FROM jsonb_to_recordset(:refs::jsonb) AS r(job_id text, attempt integer,
    worker_id text, pid integer, pid_start bigint)),
owned AS MATERIALIZED (
  SELECT j.seq, j.id, r.attempt, r.worker_id, r.pid, r.pid_start FROM {S}.jobs j
  JOIN r ON ${OWNS_REF}
  ORDER BY j.id FOR SHARE OF j
),
recorded AS (
  UPDATE {S}.attempts a SET pid = owned.pid, pid_start = owned.pid_start FROM owned
  WHERE a.job_seq = owned.seq AND a.attempt = owned.attempt
)
SELECT id AS job_id, attempt, worker_id FROM owned`;

export const ATTEMPT_LIST = `
SELECT a.*, j.id AS job_id FROM {S}.attempts a JOIN {S}.jobs j ON j.seq = a.job_seq
WHERE j.id = :id ORDER BY a.attempt`;

export const OUTPUT_GET = `
SELECT o.stream, o.head, o.tail, o.total FROM {S}.outputs o JOIN {S}.jobs j ON j.seq = o.job_seq
WHERE j.id = :id AND o.attempt = :attempt::integer`;

export const JOB_LIST_PROCESSING = `
SELECT j.*,
  w.id AS w_id, w.pid AS w_pid, w.host AS w_host, w.host_id AS w_host_id,
  w.pid_start AS w_pid_start, w.state AS w_state, w.started_at AS w_started_at,
  w.heartbeat_at AS w_heartbeat_at, w.jobs_done AS w_jobs_done, w.jobs_failed AS w_jobs_failed,
  w.supervisor_pid AS w_supervisor_pid, w.busy_ms AS w_busy_ms,
  (SELECT string_agg(o.id, ',' ORDER BY o.updated_at, o.seq) FROM {S}.jobs o
    WHERE o.state = 'processing' AND o.worker_id = w.id) AS w_running,
  a.pid AS a_pid, a.pid_start AS a_pid_start, a.host AS a_host, j.armed AS a_armed,
  (j.lease_expires_at <= {NOW}) AS lease_expired, {NOW} AS now
FROM {S}.jobs j
LEFT JOIN {S}.workers w ON w.id = j.worker_id
LEFT JOIN {S}.attempts a ON a.job_seq = j.seq AND a.attempt = j.attempts
WHERE j.state = 'processing'
ORDER BY j.seq`;

/**
 * Retention: deletes up to :limit finished jobs of one state (attempts and output go with them:
 * foreign keys, ON DELETE CASCADE). Rows another transaction holds (a DLQ retry) are skipped.
 */
/**
 * Deletes up to :limit jobs of :state finished before the cutoff, the first enqueued first; with
 * :scan > 0 only among the :scan oldest jobs of the state (housekeeping's bounded batches, as in
 * the SQLite store).
 */
export const JOB_PRUNE = `
WITH victims AS MATERIALIZED (
  SELECT seq FROM {S}.jobs WHERE seq IN (
    SELECT seq FROM {S}.jobs WHERE state = :state ORDER BY seq
    LIMIT CASE WHEN :scan::integer > 0 THEN :scan::integer END
  ) AND finished_at < {NOW} - :older_than_ms
  ORDER BY seq LIMIT :limit::integer
  FOR UPDATE SKIP LOCKED
)
DELETE FROM {S}.jobs j USING victims v WHERE j.seq = v.seq
RETURNING j.id, j.seq`;

/** Deletes the jobs with these sequence numbers (`delete`, after `JOB_CANCEL_LOCK` judged them). */
export const JOB_DELETE_SEQS = `
DELETE FROM {S}.jobs WHERE seq IN (SELECT jsonb_array_elements_text(:seqs::jsonb)::bigint)`;

export const JOB_PRUNE_COUNT = `
SELECT count(*) AS n FROM {S}.jobs WHERE state = :state AND finished_at < {NOW} - :older_than_ms`;

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

/** :from is a minute; shards add up (metric 3 keeps its maximum). */
export const STATS_WINDOW = `
SELECT metric, bucket, (CASE WHEN metric = 3 THEN max(n) ELSE sum(n) END)::bigint AS n
FROM {S}.stats_minute WHERE minute >= :from::bigint GROUP BY metric, bucket`;

export const STATS_PER_MINUTE = `
SELECT minute, bucket, sum(n)::bigint AS n FROM {S}.stats_minute
WHERE minute >= :from::bigint AND metric = 0 GROUP BY minute, bucket`;

export const STATS_PRUNE = `DELETE FROM {S}.stats_minute WHERE minute < :before::bigint`;

/**
 * Folds the figures of whole hours before :before (a minute number), every shard, into the
 * hour's first minute in shard 0, in one statement: a row deleted here is added here, once, even
 * with two workers compacting at the same time.
 */
export const STATS_COMPACT = `
WITH moved AS (
  DELETE FROM {S}.stats_minute
  WHERE minute < :before::bigint AND (minute % 60 <> 0 OR shard <> 0)
  RETURNING minute, metric, bucket, n
),
folded AS (
  SELECT (minute / 60) * 60 AS hour, metric, bucket,
    CASE WHEN metric = 3 THEN max(n) ELSE sum(n) END AS n
  FROM moved GROUP BY 1, 2, 3
)
INSERT INTO {S}.stats_minute (minute, metric, bucket, shard, n)
SELECT hour, metric, bucket, 0, n FROM folded
ORDER BY hour, metric, bucket
ON CONFLICT (minute, metric, bucket, shard) DO UPDATE SET
  n = CASE WHEN excluded.metric = 3 THEN greatest({S}.stats_minute.n, excluded.n)
      ELSE {S}.stats_minute.n + excluded.n END`;

/**
 * Commands that failed most in the window, among its most recent failures (bounded, as in
 * SQLite). SQLite takes the latest error from the bare columns next to max(); PostgreSQL has no
 * such rule, so a lateral join picks the latest failure of each command.
 */
export const TOP_FAILING = `
WITH recent AS MATERIALIZED (
  SELECT r.finished_at, r.error, r.exit_code, j.command FROM (
    SELECT job_seq, attempt, finished_at, error, exit_code FROM {S}.attempts
    WHERE outcome <> 'completed' AND outcome NOT IN ('interrupted', 'cancelled') AND finished_at >= :since::bigint
    ORDER BY finished_at DESC LIMIT :scan::integer
  ) r JOIN {S}.jobs j ON j.seq = r.job_seq
),
grouped AS (
  SELECT command, count(*) AS failures, max(finished_at) AS last_at FROM recent GROUP BY command
)
SELECT g.command, g.failures, l.error AS last_error, l.exit_code AS last_exit_code
FROM grouped g
CROSS JOIN LATERAL (SELECT error, exit_code FROM recent WHERE recent.command = g.command
  ORDER BY finished_at DESC LIMIT 1) l
ORDER BY g.failures DESC, g.last_at DESC LIMIT :limit::integer`;

// ---------------------------------------------------------------------------------------------
// Workers
// ---------------------------------------------------------------------------------------------

export const WORKER_INSERT = `
INSERT INTO {S}.workers (id, pid, host, host_id, pid_start, state, started_at, heartbeat_at,
  jobs_done, jobs_failed, busy_ms, supervisor_pid)
VALUES (:id, :pid, :host, :host_id, :pid_start, 'running', {NOW}, {NOW}, 0, 0, 0, :supervisor_pid)
ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host,
  host_id = excluded.host_id, pid_start = excluded.pid_start, state = 'running',
  started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, jobs_done = 0,
  jobs_failed = 0, busy_ms = 0, supervisor_pid = excluded.supervisor_pid`;

/**
 * The worker's heartbeat and lease renewals in one statement: its own row, then the leases it
 * still holds (locked in job id order); the ones not returned are lost.
 */
export const WORKER_HEARTBEAT = `
WITH beat AS (
  UPDATE {S}.workers SET heartbeat_at = {NOW}, jobs_done = :jobs_done, jobs_failed = :jobs_failed,
    busy_ms = :busy_ms
  WHERE id = :id
),
r AS (SELECT * FROM jsonb_to_recordset(:leases::jsonb) AS r(job_id text, attempt integer,
    worker_id text, lease_ms bigint)),
owned AS MATERIALIZED (
  SELECT j.seq, r.lease_ms FROM {S}.jobs j JOIN r ON ${OWNS_REF}
  ORDER BY j.id FOR UPDATE OF j
),
renewed AS (
  UPDATE {S}.jobs j SET lease_expires_at = {NOW} + owned.lease_ms FROM owned
  WHERE j.seq = owned.seq
  RETURNING j.id, j.attempts, j.worker_id, j.cancel_reason
)
SELECT id AS job_id, attempts AS attempt, worker_id, cancel_reason FROM renewed`;

export const WORKER_SET_STATE = `
UPDATE {S}.workers SET state = :state, heartbeat_at = {NOW} WHERE id = :id`;

export const WORKER_DELETE = `
DELETE FROM {S}.workers WHERE id IN (SELECT jsonb_array_elements_text(:ids::jsonb))`;

/** Every worker, with the jobs it holds (through jobs_processing). */
export const WORKER_LIST = `
SELECT w.*, (SELECT string_agg(j.id, ',' ORDER BY j.updated_at, j.seq) FROM {S}.jobs j
    WHERE j.state = 'processing' AND j.worker_id = w.id) AS running,
  {NOW} AS now
FROM {S}.workers w ORDER BY started_at, id`;

/** A write that changes nothing: fails when the session may not write (read-only, privileges). */
export const WRITE_PROBE = `DELETE FROM {S}.workers WHERE id = ''`;

// ---------------------------------------------------------------------------------------------
// Settings, clock, notifications
// ---------------------------------------------------------------------------------------------

export const CONFIG_ALL = `SELECT key, value FROM {S}.config`;
export const CONFIG_SET = `
INSERT INTO {S}.config (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
export const CONFIG_UNSET = `DELETE FROM {S}.config WHERE key = :key RETURNING key`;

export const STORE_NOW = `SELECT {NOW} AS now`;

/** Tells listeners of the queue's channel that something changed ('work' or 'change'). */
export const NOTIFY = `SELECT pg_notify(:channel, :payload)`;

/**
 * The jobs table's row count as of its last ANALYZE (-1: never analyzed); see
 * `jobInsertMany`, which analyzes the table after a batch at least as large.
 */
export const JOBS_ANALYZED_ROWS = `
SELECT c.reltuples::float8 AS reltuples FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relname = 'jobs'`;
/** Skips the table while another ANALYZE or a VACUUM holds it (no wait for the lock). */
export const JOBS_ANALYZE = `ANALYZE (SKIP_LOCKED) {S}.jobs`;

/**
 * Changes whenever any transaction of the server ends (xmax moves, or an xid leaves the
 * in-progress list): the safety poll compares it with its last reading, so a change that sent
 * no notification (or whose notification was lost) still wakes waiters. Cheap, no table read.
 */
export const SNAPSHOT = `SELECT pg_current_snapshot()::text AS snapshot`;

export const PING = `SELECT 1 AS ok`;

// ---------------------------------------------------------------------------------------------
// Schedules (recurring jobs)
// ---------------------------------------------------------------------------------------------

/** A schedule row comes with its last job's state. */
const SCHEDULE_SELECT = `
SELECT s.*, j.state AS last_job_state
FROM {S}.schedules s LEFT JOIN {S}.jobs j ON j.id = s.last_job_id`;

export const SCHEDULE_INSERT = `
INSERT INTO {S}.schedules (name, kind, cron, time_zone, every_ms, template, anchor, next_at,
  created_at, updated_at)
VALUES (:name, :kind, :cron, :time_zone, :every_ms, :template, :anchor, :next_at, {NOW}, {NOW})
ON CONFLICT (name) DO NOTHING
RETURNING name`;
export const SCHEDULE_GET = `${SCHEDULE_SELECT} WHERE s.name = :name`;
export const SCHEDULE_LIST = `${SCHEDULE_SELECT} ORDER BY s.name COLLATE "C"`;
export const SCHEDULE_DELETE = `
WITH runs AS (DELETE FROM {S}.schedule_runs WHERE schedule = :name)
DELETE FROM {S}.schedules WHERE name = :name RETURNING name`;
export const SCHEDULE_PAUSE = `
UPDATE {S}.schedules SET paused = true, updated_at = {NOW} WHERE name = :name RETURNING name`;
export const SCHEDULE_RESUME = `
UPDATE {S}.schedules SET paused = false, next_at = :next_at, updated_at = {NOW}
WHERE name = :name RETURNING name`;
/** Due schedules, soonest first (schedules_due), and when the first active one fires. */
export const SCHEDULE_DUE = `
${SCHEDULE_SELECT}
WHERE NOT s.paused AND s.next_at IS NOT NULL AND s.next_at <= :at::bigint
ORDER BY s.next_at LIMIT :limit`;
export const SCHEDULE_NEXT = `
SELECT (SELECT min(next_at) FROM {S}.schedules WHERE NOT paused AND next_at IS NOT NULL)
  AS next_at, {NOW} AS now`;
/**
 * The compare-and-swap of a fire: only from the fire time the caller saw, only while active. A
 * concurrent fire waits for this row's lock, then finds next_at moved and updates nothing.
 */
export const SCHEDULE_ADVANCE = `
UPDATE {S}.schedules SET next_at = :next_at, last_at = :fire_at, fires = fires + 1,
  updated_at = {NOW}
WHERE name = :name AND NOT paused AND next_at = :fire_at
RETURNING name`;
export const SCHEDULE_SET_LAST_JOB = `
UPDATE {S}.schedules SET last_job_id = :job_id WHERE name = :name`;
/** "Run now": an extra occurrence, counted as one; the next fire time stays. */
export const SCHEDULE_RUN_NOW = `
UPDATE {S}.schedules SET last_at = {NOW}, fires = fires + 1, updated_at = {NOW}
WHERE name = :name RETURNING name`;
export const SCHEDULE_RUN_INSERT = `
INSERT INTO {S}.schedule_runs (schedule, fire_at, job_id, enqueued_at)
VALUES (:name, :fire_at, :job_id, {NOW}) ON CONFLICT DO NOTHING RETURNING fire_at`;
export const SCHEDULE_RUN_SET_JOB = `
UPDATE {S}.schedule_runs SET job_id = :job_id WHERE schedule = :name AND fire_at = :fire_at`;
/** Runs are kept for a day: enough for the second guard, which only stale views need. */
export const SCHEDULE_RUNS_TRIM = `
DELETE FROM {S}.schedule_runs WHERE schedule = :name AND fire_at < :fire_at::bigint - 86400000`;
// Stop requests for every host, leaderless upkeep rounds (meta keys `stop:graceful`,
// `stop:force`, `round:<name>`)
// ---------------------------------------------------------------------------------------------

export const STOP_REQUEST = `
INSERT INTO {S}.meta (key, value) VALUES (:key, ({NOW})::text)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
RETURNING value::bigint AS at`;

/** The stop requests stored at or after worker :id registered. */
export const STOP_REQUESTED = `
SELECT m.key FROM {S}.meta m JOIN {S}.workers w ON w.id = :id
WHERE m.key IN ('stop:graceful', 'stop:force') AND m.value::bigint >= w.started_at`;

/**
 * Begins a round when the last one began at least :every ms ago (or in the future); returns a row
 * only then. Two hosts at once: the second waits for the first's row lock, then re-checks the
 * WHERE against the row the first wrote (READ COMMITTED), and gets nothing.
 */
export const MAINTENANCE_TURN = `
INSERT INTO {S}.meta (key, value) VALUES (:key, ({NOW})::text)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
  WHERE {S}.meta.value::bigint <= ({NOW}) - :every::bigint OR {S}.meta.value::bigint > ({NOW})
RETURNING key`;
