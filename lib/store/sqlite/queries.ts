/**
 * Every SQL statement of the SQLite store, one named constant per store method (or step of one).
 * Parameters are named (`:now`); times are epoch milliseconds from the store's clock.
 *
 * @module
 */

/** Every write is one of these transactions: the write lock is taken before anything is read. */
export const TX_BEGIN = "BEGIN IMMEDIATE";
export const TX_COMMIT = "COMMIT";
export const TX_ROLLBACK = "ROLLBACK";

/** Durability of this connection's commits (FULL for acknowledgements, NORMAL for workers). */
export function setSynchronous(mode: "FULL" | "NORMAL"): string {
  return `PRAGMA synchronous = ${mode}`;
}

/** Changes when another connection commits: what waits watch (watch.ts). */
export const DATA_VERSION = "PRAGMA data_version";

/** Resets the -wal file when no reader holds it; with readers it does what it can. */
export const WAL_TRUNCATE = "PRAGMA wal_checkpoint(TRUNCATE)";

/** The two numbers that say what a SQLite file is, read before anything else. */
export const DB_HEADER = "SELECT * FROM pragma_application_id(), pragma_user_version()";

/**
 * Claimable: waiting, and not for other jobs (deps_left = 0). jobs_ready holds exactly these
 * rows, so jobs that wait on dependencies cost a claim nothing.
 */
const READY = "state IN ('pending', 'failed') AND deps_left = 0";
/** Waiting, whether for its time or for other jobs. */
const WAITING = "state IN ('pending', 'failed')";
/** States in which a job holds its unique key (jobs_unique_key). */
const LIVE = "state IN ('pending', 'failed', 'processing')";

/** Fencing: only the worker that holds this very attempt may write about it. */
const OWNS = "id = :id AND state = 'processing' AND worker_id = :worker_id AND attempts = :attempt";
const PRIORITIES = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];

// The statements of the worker's hot path (claim, arm, finish) take numbered parameters
// (?1 …), bound by position: a named parameter costs about a microsecond each to look up, and a
// job goes through some fifty of them. Their order is in each statement's comment.

/**
 * The claim walks the ready index priority by priority, from the top, in the store (JS): the
 * highest priority below ?1 that has a ready job (due or not) is one seek at the end of
 * jobs_ready, and its due jobs one range scan. A queue uses few priorities, so a claim takes two
 * or three such steps where one statement with a seek per priority (ten, merged and sorted) cost
 * some 250 µs, the largest part of a job's store work (issue 10). Jobs scheduled for later sit
 * in the index ahead of due ones of lower priority; the walk steps past them a priority at a time.
 */
export const READY_PRIORITY_BELOW = `
SELECT priority FROM jobs INDEXED BY jobs_ready WHERE ${READY} AND priority < ?1
ORDER BY priority DESC LIMIT 1`;

/** Up to ?3 jobs of priority ?1 due by ?2, in claim order (due time, then enqueue order). */
export const DUE_OF_PRIORITY = `
SELECT seq FROM jobs WHERE ${READY} AND priority = ?1 AND run_at <= ?2
ORDER BY run_at, seq LIMIT ?3`;

/**
 * Claims job ?4 for worker ?1, lease until ?2, now ?3, if it is still ready. SQLite holds the write
 * lock from BEGIN IMMEDIATE, so the walk and the update see one state and no other writer slips
 * in between.
 */
export const JOB_CLAIM = `
UPDATE jobs SET state = 'processing', attempts = attempts + 1, budget_used = budget_used + 1,
  worker_id = ?1, lease_expires_at = ?2, updated_at = ?3
WHERE seq = ?4 AND ${READY}
RETURNING *`;

// Named queues (lib/queue.ts, "Queues"). A claim that has to leave queues out walks
// jobs_ready_queue once per queue it may take from, with the statements below; the plain walk
// above serves the common case (nothing paused or limited, a worker of every queue).

/** Every queue's settings: a few rows, read at each claim to know which queues it may take. */
export const QUEUE_SETTINGS = `SELECT name, paused, concurrency FROM queues`;

/** As READY_PRIORITY_BELOW, within queue ?2. */
export const QUEUE_READY_PRIORITY_BELOW = `
SELECT priority FROM jobs INDEXED BY jobs_ready_queue WHERE ${READY} AND queue = ?2
  AND priority < ?1
ORDER BY priority DESC LIMIT 1`;

/** As DUE_OF_PRIORITY, within queue ?4; with what the merge of the queues' candidates needs. */
export const QUEUE_DUE_OF_PRIORITY = `
SELECT seq, priority, run_at FROM jobs INDEXED BY jobs_ready_queue WHERE ${READY} AND queue = ?4
  AND priority = ?1 AND run_at <= ?2
ORDER BY run_at, seq LIMIT ?3`;

/** Jobs of queue ?1 in processing (claimed, reserved or started): what its limit counts. */
export const QUEUE_RUNNING = `
SELECT count(*) AS n FROM jobs INDEXED BY jobs_by_state
WHERE state = 'processing' AND queue = ?1`;

/** Earliest run_at among the waiting jobs of queue :queue: one seek per priority. */
export const QUEUE_NEXT_DUE = `SELECT min(run_at) AS next_at FROM (${
  PRIORITIES.map((p) =>
    `SELECT * FROM (SELECT run_at FROM jobs INDEXED BY jobs_ready_queue WHERE ${READY}
       AND queue = :queue AND priority = ${p} ORDER BY run_at LIMIT 1)`
  ).join(" UNION ALL ")
})`;

/**
 * A queue row for each queue a job is enqueued into; a new one starts paused when every queue
 * was paused (`pause` without names: the `pause:all` mark).
 */
export const QUEUE_ENSURE = `
INSERT INTO queues (name, paused, created_at, updated_at)
VALUES (:name, EXISTS (SELECT 1 FROM queuectl_meta WHERE key = 'pause:all'), :now, :now)
ON CONFLICT (name) DO NOTHING`;

/** Every queue; its counts per state are the maintained ones (job_counts, migration 10). */
export const QUEUE_LIST = `SELECT name, paused, concurrency, created_at, updated_at FROM queues
ORDER BY name`;
export const QUEUE_COUNTS = `SELECT queue, state, n FROM job_counts`;
export const QUEUE_COUNTS_OF = `SELECT state, n FROM job_counts WHERE queue = :name`;
export const QUEUE_PAUSED_ALL = `SELECT 1 AS yes FROM queuectl_meta WHERE key = 'pause:all'`;
export const QUEUE_PAUSED = `SELECT name FROM queues WHERE paused = 1 ORDER BY name`;

/** Pauses or resumes queue :name (creating its row); returns it. */
export const QUEUE_SET_PAUSED = `
INSERT INTO queues (name, paused, created_at, updated_at) VALUES (:name, :paused, :now, :now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,
  updated_at = CASE WHEN queues.paused = excluded.paused THEN queues.updated_at ELSE :now END
RETURNING name`;
export const QUEUE_SET_PAUSED_ALL = `
UPDATE queues SET paused = :paused, updated_at = :now WHERE paused <> :paused`;
export const QUEUE_NAMES = `SELECT name FROM queues ORDER BY name`;
export const QUEUE_PAUSE_ALL_MARK = `
INSERT INTO queuectl_meta (key, value) VALUES ('pause:all', CAST(:now AS TEXT))
ON CONFLICT (key) DO NOTHING`;
export const QUEUE_PAUSE_ALL_UNMARK = `DELETE FROM queuectl_meta WHERE key = 'pause:all'`;

/** Sets queue :name's limit (creating its row, paused as QUEUE_ENSURE says). */
export const QUEUE_SET_CONCURRENCY = `
INSERT INTO queues (name, paused, concurrency, created_at, updated_at)
VALUES (:name, EXISTS (SELECT 1 FROM queuectl_meta WHERE key = 'pause:all'), :concurrency, :now,
  :now)
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, updated_at = :now`;

/**
 * A claim reserves the attempt (job_seq ?1, attempt ?2, worker ?3, started ?4, host ?5, due ?6);
 * `ATTEMPT_ARM` marks it started.
 */
export const ATTEMPT_INSERT = `
INSERT INTO attempts (job_seq, attempt, worker_id, started_at, host, due_at, armed)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)`;

/** Fencing, positionally: job id ?1, worker ?2, attempt ?3. */
const OWNS_AT = "id = ?1 AND state = 'processing' AND worker_id = ?2 AND attempts = ?3";

/**
 * The worker is about to spawn attempt ?3 of job ?1, owned by worker ?2; now ?4. Fenced by
 * owner and attempt, and only once (armed = 0).
 */
export const ATTEMPT_ARM = `
UPDATE attempts SET armed = 1, started_at = ?4
WHERE job_seq = (SELECT seq FROM jobs WHERE ${OWNS_AT}) AND attempt = ?3 AND armed = 0`;

/**
 * Undoes a reserved attempt that never started: the job is as it was before the claim (failed
 * again if its last attempt before was charged as a failure, else pending), the attempt not
 * counted. Guarded by owner, attempt and armed = 0.
 */
export const JOB_UNCLAIM = `
UPDATE jobs SET
  state = CASE WHEN EXISTS (SELECT 1 FROM attempts p WHERE p.job_seq = jobs.seq
      AND p.attempt = jobs.attempts - 1 AND p.outcome IN ('failed', 'timeout', 'spawn_failed', 'lost'))
    THEN 'failed' ELSE 'pending' END,
  attempts = attempts - 1, budget_used = budget_used - 1, worker_id = NULL,
  lease_expires_at = NULL, updated_at = :now
WHERE ${OWNS}
  AND EXISTS (SELECT 1 FROM attempts a WHERE a.job_seq = jobs.seq AND a.attempt = :attempt
    AND a.armed = 0)
RETURNING seq`;

export const ATTEMPT_DELETE_ONE = `
DELETE FROM attempts WHERE job_seq = :job_seq AND attempt = :attempt AND armed = 0`;

/** Earliest run_at among waiting jobs: also one seek per priority. */
export const JOB_NEXT_DUE = `SELECT min(run_at) AS next_at FROM (${
  PRIORITIES.map((p) =>
    `SELECT * FROM (SELECT run_at FROM jobs WHERE ${READY} AND priority = ${p}
       ORDER BY run_at LIMIT 1)`
  ).join(" UNION ALL ")
})`;

/** The due job that has waited longest (smallest run_at), one seek per priority. */
export const JOB_OLDEST_DUE = `SELECT id, run_at FROM (${
  PRIORITIES.map((p) =>
    `SELECT * FROM (SELECT id, run_at FROM jobs WHERE ${READY} AND priority = ${p}
       AND run_at <= :now ORDER BY run_at LIMIT 1)`
  ).join(" UNION ALL ")
}) ORDER BY run_at LIMIT 1`;

/**
 * Waiting jobs (pending or failed) not due yet, counted in the ready index alone: one range per
 * priority, without reading a row.
 */
export const JOB_COUNT_WAITING_LATER = `SELECT ${
  PRIORITIES.map((p) =>
    `(SELECT count(*) FROM jobs WHERE ${READY} AND priority = ${p} AND run_at > :now)`
  ).join(" + ")
} AS n`;

/**
 * Failed jobs whose retry is not due yet, to tell them from the scheduled pending ones above
 * (through jobs_by_state: as many rows as there are failed jobs, usually few).
 */
export const JOB_COUNT_FAILED_LATER =
  `SELECT count(*) AS n FROM jobs WHERE state = 'failed' AND run_at > :now`;

/** When the next scheduled pending job is due: the first one after :now of each priority. */
export const JOB_NEXT_SCHEDULED = `SELECT min(run_at) AS next_at FROM (${
  PRIORITIES.map((p) =>
    `SELECT * FROM (SELECT run_at FROM jobs WHERE ${READY} AND priority = ${p}
       AND run_at > :now AND state = 'pending' ORDER BY run_at LIMIT 1)`
  ).join(" UNION ALL ")
})`;

export const JOB_SEQ_NEXT = `SELECT seq FROM sqlite_sequence WHERE name = 'jobs'`;

/**
 * One new pending job, positionally: ?1 now, then seq, id, command, priority, max_retries,
 * timeout_ms, cwd, env, run_at, queue, and after_ids, deps_left, unique_key. An id already taken
 * inserts nothing (the caller looks at changes); a unique key is checked before
 * (`JOB_UNIQUE_HOLDER`).
 */
export const JOB_INSERT = `
INSERT INTO jobs (seq, id, command, state, priority, max_retries, timeout_ms, cwd, env, run_at,
  queue, created_at, updated_at, after_ids, deps_left, unique_key)
VALUES (?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?1, ?1, ?12, ?13, ?14)
ON CONFLICT (id) DO NOTHING`;

/** Parameters per row of a job insert, after ?1 (now), in the bulk layout (`JOB_INSERT_ROWS`). */
export const JOB_INSERT_PARAMS = 10;

/** The live job holding unique key :key, if any (through jobs_unique_key). */
export const JOB_UNIQUE_HOLDER = `
SELECT * FROM jobs WHERE unique_key = :key AND ${LIVE}`;

/** A job named in `after`: what an enqueue needs of it. */
export const JOB_DEP_LOOK = `SELECT seq, id, state FROM jobs WHERE id = :id`;

export const JOB_DEP_INSERT = `
INSERT INTO job_deps (dep_seq, job_seq, dep_id, met) VALUES (:dep_seq, :job_seq, :dep_id, :met)
ON CONFLICT DO NOTHING`;

/** Some job waits for :seq now: its end looks at job_deps. */
export const JOB_MARK_HAS_DEPENDENTS = `
UPDATE jobs SET has_dependents = 1 WHERE seq = :seq AND has_dependents = 0`;

/**
 * Job ?1 completed: every job still waiting for it has one dependency fewer (a count kept by the
 * edges' met flag, so that a job completing twice, after `retry --force`, counts once).
 */
export const DEPS_RELEASE_COUNT = `
UPDATE jobs SET deps_left = deps_left - 1
WHERE seq IN (SELECT job_seq FROM job_deps WHERE dep_seq = ?1 AND met = 0) AND deps_left > 0`;
export const DEPS_RELEASE_MET = `UPDATE job_deps SET met = 1 WHERE dep_seq = ?1 AND met = 0`;

/**
 * Job :dep_seq ended dead or cancelled: the jobs still waiting for it are cancelled (guarded by
 * state: one a user cancelled, or that ran already, is left alone). Their own dependents follow
 * (the caller walks on from the rows returned).
 */
export const DEPENDENTS_CANCEL = `
UPDATE jobs SET state = 'cancelled', finished_at = :now, updated_at = :now,
  cancel_reason = :reason
WHERE seq IN (SELECT job_seq FROM job_deps WHERE dep_seq = :dep_seq AND met = 0)
  AND state = 'pending' AND deps_left > 0
RETURNING seq, id, has_dependents`;

/** A retried job's dependencies that have not completed, with their state now (null: deleted). */
export const JOB_DEPS_UNMET = `
SELECT e.dep_id, d.state FROM job_deps e LEFT JOIN jobs d ON d.seq = e.dep_seq
WHERE e.job_seq = :seq AND e.met = 0 ORDER BY e.dep_seq`;

/** A retried job waits again for what has not completed. */
export const JOB_SET_DEPS_LEFT = `
UPDATE jobs SET deps_left = (SELECT count(*) FROM job_deps WHERE job_seq = :seq AND met = 0)
WHERE seq = :seq
RETURNING *`;

/** What job :id waits for, in the order given, with each one's state now (null: deleted). */
export const JOB_DEPS_AFTER = `
SELECT e.dep_id AS id, d.state, e.met FROM jobs j JOIN job_deps e ON e.job_seq = j.seq
LEFT JOIN jobs d ON d.seq = e.dep_seq
WHERE j.id = :id ORDER BY e.dep_seq`;

/** The jobs that wait (or waited) for job :id, in enqueue order, at most :limit. */
export const JOB_DEPS_DEPENDENTS = `
SELECT w.id, w.state, e.met FROM jobs j JOIN job_deps e ON e.dep_seq = j.seq
JOIN jobs w ON w.seq = e.job_seq
WHERE j.id = :id ORDER BY e.job_seq LIMIT :limit`;

/** A deleted job's own dependencies (those on it stay: a dependent names what it waited for). */
export const JOB_DEPS_DELETE = `DELETE FROM job_deps WHERE job_seq = :seq`;

/** Rows per multi-row INSERT in a bulk enqueue (`JOB_INSERT_PARAMS` parameters each). */
export const JOB_INSERT_ROWS_MAX = 50;

/**
 * `JOB_INSERT_ROWS_MAX` new pending jobs in one statement, laid out as JOB_INSERT's parameters
 * row after row (after ?1, now). No ON CONFLICT: an id already taken aborts this statement, and
 * only it, so that the caller can insert these rows one by one and name the one at fault.
 */
export const JOB_INSERT_ROWS = `
INSERT INTO jobs (seq, id, command, state, priority, max_retries, timeout_ms, cwd, env, run_at,
  queue, created_at, updated_at)
VALUES ${
  Array.from({ length: JOB_INSERT_ROWS_MAX }, (_, r) => {
    const p = (k: number) => `?${2 + r * JOB_INSERT_PARAMS + k}`;
    return `(${p(0)}, ${p(1)}, ${p(2)}, 'pending', ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ` +
      `${p(8)}, ${p(9)}, ?1, ?1)`;
  }).join(",\n  ")
}`;

/**
 * Counts the ?2 jobs just inserted into queue ?1: there is no insert trigger, so one update per
 * queue an enqueue touches, not one per row. The queue's rows exist (made with its row in
 * queues, migration 10): QUEUE_ENSURE runs first.
 */
export const JOB_COUNT_ADD =
  `UPDATE job_counts SET n = n + ?2 WHERE queue = ?1 AND state = 'pending'`;

/** The page cache of a connection: pages, or KiB when negative (`PRAGMA cache_size`). */
export const CACHE_SIZE_GET = `PRAGMA cache_size`;
export function setCacheSize(value: number): string {
  return `PRAGMA cache_size = ${Math.trunc(value)}`;
}

export const JOB_GET = `SELECT * FROM jobs WHERE id = :id`;

/** The newest jobs before :before, backwards along the primary key. */
export const JOB_LIST = `SELECT * FROM jobs WHERE seq < :before ORDER BY seq DESC LIMIT :limit`;

/**
 * The same in some states: `JOB_LIST_BY_STATES[n - 1]` takes n states, :s0 … :s(n-1). One
 * backward walk of jobs_by_state (state, seq) per state, each cut at the limit, merged: a plain
 * `state IN (…) ORDER BY seq` would sort every matching row, a million in a big queue, to return
 * twenty.
 */
export const JOB_LIST_BY_STATES: readonly string[] = [1, 2, 3, 4, 5, 6].map((n) =>
  `SELECT * FROM (${
    Array.from({ length: n }, (_, i) =>
      `SELECT * FROM (SELECT * FROM jobs WHERE state = :s${i} AND seq < :before
         ORDER BY seq DESC LIMIT :limit)`).join(" UNION ALL ")
  }) ORDER BY seq DESC LIMIT :limit`
);

/** A read snapshot: the statements of one search see one state of the database. */
export const TX_BEGIN_READ = "BEGIN DEFERRED";

/**
 * The search walk's candidates: `JOB_SEARCH_WALK[n]` walks n states (0: every job, by the primary
 * key), newest first, between :from_seq (inclusive) and :before, at most :chunk of them. Each state
 * is one backward walk of jobs_by_state (state, seq), merged, as in `JOB_LIST_BY_STATES`; the walk
 * reads only the index.
 */
const JOB_SEARCH_WALK: readonly string[] = [0, 1, 2, 3, 4, 5, 6].map((n) =>
  n === 0
    ? `SELECT seq FROM jobs WHERE seq < :before AND seq >= :from_seq ORDER BY seq DESC LIMIT :chunk`
    : `SELECT seq FROM (${
      Array.from({ length: n }, (_, i) =>
        `SELECT * FROM (SELECT seq FROM jobs WHERE state = :s${i} AND seq < :before
           AND seq >= :from_seq ORDER BY seq DESC LIMIT :chunk)`).join(" UNION ALL ")
    }) ORDER BY seq DESC LIMIT :chunk`
);

/**
 * The conditions beyond the state, each off when its parameter is NULL. :priority_mask has bit p
 * set for each priority p kept; the command test is a case-sensitive substring.
 */
const JOB_SEARCH_MATCH = `(:priority_mask IS NULL OR (:priority_mask >> j.priority) & 1 = 1)
  AND (:command IS NULL OR instr(j.command, :command) > 0)
  AND (:created_from IS NULL OR j.created_at >= :created_from)
  AND (:created_to IS NULL OR j.created_at < :created_to)
  AND (:queues IS NULL OR j.queue IN (SELECT value FROM json_each(:queues)))
  AND (:due_after IS NULL OR (j.state IN ('pending', 'failed') AND j.deps_left = 0
    AND j.run_at > :due_after))
  AND (:due_by IS NULL OR (j.state IN ('pending', 'failed') AND j.deps_left = 0
    AND j.run_at <= :due_by))`;

/** One chunk of the walk, each candidate with whether it matches (reads the rows, returns two numbers each). */
export const JOB_SEARCH_CHUNK: readonly string[] = JOB_SEARCH_WALK.map((walk) => `
SELECT w.seq AS seq, (${JOB_SEARCH_MATCH}) AS hit FROM (${walk}) w JOIN jobs j ON j.seq = w.seq`);

/** One chunk of the walk, counted: how many candidates, the oldest, how many match. */
export const JOB_SEARCH_COUNT_CHUNK: readonly string[] = JOB_SEARCH_WALK.map((walk) => `
SELECT count(*) AS scanned, min(w.seq) AS low, coalesce(sum(${JOB_SEARCH_MATCH}), 0) AS hits
FROM (${walk}) w JOIN jobs j ON j.seq = w.seq`);

/**
 * The Scheduled page's walk: jobs waiting for a time, soonest first, after the cursor
 * (:after_run_at, :after_seq), at most :chunk. One forward walk of jobs_ready (priority, run_at,
 * seq) per priority from the cursor, merged: the index orders by priority first, so one walk of all
 * of it would sort every waiting job. Each priority's walk is two ranges, the rest of the cursor's
 * instant (run_at = :after_run_at AND seq > :after_seq) and then what comes after it: SQLite bounds
 * a row-value range `(run_at, seq) > (…)` by run_at alone, so a deep page among 300,000 jobs due at
 * one instant stepped over the first ones (290 ms); as two ranges it enters at the cursor. A
 * priority left out by :priority_mask is not walked (the test is constant, decided before the
 * walk). Each candidate comes with whether it meets the other conditions, as in
 * `JOB_SEARCH_CHUNK`.
 */
export const JOB_SEARCH_SCHEDULED_CHUNK = `
SELECT w.seq AS seq, w.run_at AS run_at, (${JOB_SEARCH_MATCH}
  AND (:states IS NULL OR j.state IN (SELECT value FROM json_each(:states)))) AS hit
FROM (SELECT seq, run_at FROM (${
  PRIORITIES.map((p) =>
    `SELECT * FROM (SELECT * FROM (SELECT seq, run_at FROM jobs WHERE ${READY}
       AND priority = ${p} AND run_at = :after_run_at AND seq > :after_seq
       AND (:priority_mask IS NULL OR (:priority_mask >> ${p}) & 1 = 1)
       ORDER BY seq LIMIT :chunk)
     UNION ALL SELECT * FROM (SELECT seq, run_at FROM jobs WHERE ${READY}
       AND priority = ${p} AND run_at > :after_run_at
       AND (:priority_mask IS NULL OR (:priority_mask >> ${p}) & 1 = 1)
       ORDER BY run_at, seq LIMIT :chunk) ORDER BY run_at, seq LIMIT :chunk)`
  ).join(" UNION ALL ")
}) ORDER BY run_at, seq LIMIT :chunk) w JOIN jobs j ON j.seq = w.seq`;

export const JOB_GET_BY_SEQ = `SELECT * FROM jobs WHERE seq = :seq`;

/** The first job at or after a sequence number: a probe of the search's time-bound lookup. */
export const JOB_FIRST_FROM_SEQ =
  `SELECT seq, created_at FROM jobs WHERE seq >= :seq ORDER BY seq LIMIT 1`;

/** Two statements: SQLite answers a lone min() or max() from the end of the index, not both at once. */
export const JOB_SEQ_MIN = `SELECT min(seq) AS seq FROM jobs`;
export const JOB_SEQ_MAX = `SELECT max(seq) AS seq FROM jobs`;

export const JOB_COUNTS = `SELECT state, sum(n) AS n FROM job_counts GROUP BY state`;

/** A waiting job due now (an earlier due time stays): guarded by state, as a retry is. */
export const JOB_RUN_NOW = `
UPDATE jobs SET run_at = min(run_at, :now), updated_at = :now
WHERE id = :id AND ${WAITING} RETURNING *`;

export const JOB_DLQ_RETRY = `
UPDATE jobs SET state = 'pending', budget_used = 0, run_at = :now, finished_at = NULL,
  updated_at = :now
WHERE id = :id AND state = 'dead'
RETURNING *`;

export const JOB_DLQ_RETRY_ALL = `
UPDATE jobs SET state = 'pending', budget_used = 0, run_at = :now, finished_at = NULL,
  updated_at = :now
WHERE state = 'dead'
RETURNING *`;

/** Renews a lease (fenced); returns the cancel request, if any, so the owner sees it. */
export const JOB_RENEW_LEASE = `
UPDATE jobs SET lease_expires_at = :lease_expires_at WHERE ${OWNS}
RETURNING cancel_reason`;

/**
 * For `cancel`, all-or-none: each id's state, and for a processing job whether its current
 * attempt was armed (started) or only reserved by a claim.
 */
export const JOB_CANCEL_LOOK = `
SELECT j.seq, j.id, j.state, j.attempts, coalesce(a.armed, 1) AS armed FROM jobs j
LEFT JOIN attempts a ON j.state = 'processing' AND a.job_seq = j.seq AND a.attempt = j.attempts
WHERE j.id = :id`;

/** Every job in one state, for `cancel --state S --all`, oldest first (through jobs_by_state). */
export const JOB_IDS_IN_STATE = `SELECT id FROM jobs WHERE state = :state ORDER BY seq`;

/** A waiting job is cancelled at once (guarded by its state). */
export const JOB_CANCEL_WAITING = `
UPDATE jobs SET state = 'cancelled', finished_at = :now, updated_at = :now,
  cancel_reason = :reason
WHERE seq = :seq AND ${WAITING}
RETURNING *`;

/**
 * A claimed job whose attempt was reserved and never started is cancelled at once: the reserved
 * attempt is undone (as `JOB_UNCLAIM` does), so the worker's arm, fenced by owner, finds nothing.
 */
export const JOB_CANCEL_RESERVED = `
UPDATE jobs SET state = 'cancelled', attempts = attempts - 1, budget_used = budget_used - 1,
  worker_id = NULL, lease_expires_at = NULL, finished_at = :now, updated_at = :now,
  cancel_reason = :reason
WHERE seq = :seq AND state = 'processing' AND attempts = :attempt
  AND EXISTS (SELECT 1 FROM attempts a WHERE a.job_seq = jobs.seq AND a.attempt = :attempt
    AND a.armed = 0)
RETURNING *`;

/** A running job: the request its owner sees at its next look (the first reason is kept). */
export const JOB_CANCEL_REQUEST = `
UPDATE jobs SET cancel_reason = coalesce(cancel_reason, :reason), updated_at = :now
WHERE seq = :seq AND state = 'processing'
RETURNING *`;

/** Cancel requests on a worker's running jobs (through jobs_cancel_requested). */
export const JOB_CANCEL_REQUESTS = `
SELECT id, attempts, worker_id, cancel_reason FROM jobs
WHERE worker_id = :worker_id AND cancel_reason IS NOT NULL AND state = 'processing'`;

/**
 * `retry`: a finished job back to pending with a fresh retry budget, guarded by the states the
 * caller allows (:s0 … :s2; a state repeated where fewer are allowed).
 */
export const JOB_RETRY = `
UPDATE jobs SET state = 'pending', budget_used = 0, run_at = :now, finished_at = NULL,
  cancel_reason = NULL, updated_at = :now
WHERE id = :id AND state IN (:s0, :s1, :s2)
RETURNING *`;

export const JOB_OWNED_SEQ = `SELECT seq FROM jobs WHERE ${OWNS}`;

/** Recovery takes an attempt from its owner (fencing it out) before killing its processes. */
export const JOB_TAKE_OVER = `
UPDATE jobs SET worker_id = :new_worker_id, lease_expires_at = :lease_expires_at, updated_at = :now
WHERE ${OWNS} AND (:require_expired = 0 OR lease_expires_at <= :now)`;

/**
 * A cancel was asked for while the attempt ran and the attempt did not complete: the job ends
 * `cancelled` whatever the outcome would have made of it (a retry, the DLQ, pending again after
 * a shutdown, or recovery after its worker died). A completion that got in first wins, and the
 * request is dropped: exactly one of the two outcomes.
 */
const CANCEL_WINS = (state: string) => `(cancel_reason IS NOT NULL AND ${state} <> 'completed')`;
const CANCELLED_UNLESS_DONE = (state: string) =>
  `CASE WHEN ${CANCEL_WINS(state)} THEN 'cancelled' ELSE ${state} END`;

/**
 * The outcome of attempt ?3 of job ?1 owned by worker ?2 (fenced), now ?4: state ?5, refund ?6,
 * due again ?7 ms after now (null: unchanged), terminal ?8, error ?9, exit code ?10; only after
 * the lease ran out when ?11 is 1.
 */
export const JOB_FINISH = `
UPDATE jobs SET state = ${CANCELLED_UNLESS_DONE("?5")}, budget_used = budget_used - ?6,
  run_at = CASE WHEN ?7 IS NULL THEN run_at ELSE ?4 + ?7 END,
  finished_at = CASE WHEN ?8 OR ${CANCEL_WINS("?5")} THEN ?4 END, worker_id = NULL,
  lease_expires_at = NULL, last_error = ?9, last_exit_code = ?10, updated_at = ?4,
  cancel_reason = CASE WHEN ?5 = 'completed' THEN NULL ELSE cancel_reason END
WHERE ${OWNS_AT} AND (?11 = 0 OR lease_expires_at <= ?4)
RETURNING seq, state, has_dependents`;

/**
 * Attempt ?2 of job_seq ?1 ends now (?3): outcome ?4, exit code ?5, signal ?6, error ?7.
 */
export const ATTEMPT_FINISH = `
UPDATE attempts SET finished_at = ?3, outcome = ?4, exit_code = ?5, signal = ?6, error = ?7
WHERE job_seq = ?1 AND attempt = ?2 AND finished_at IS NULL
RETURNING started_at, due_at`;

/**
 * Whether an attempt is a retry: an earlier attempt of the job finished and was charged (an
 * interrupted one gave its attempt back, so the run after it is not a retry).
 */
export const ATTEMPT_IS_RETRY = `
SELECT count(*) AS earlier FROM attempts WHERE job_seq = :job_seq AND attempt < :attempt
  AND outcome IS NOT NULL AND outcome <> 'interrupted'`;

/**
 * Adds to per-minute figures: `STATS_ADD[k - 1]` takes k rows of (minute, metric, bucket, n)
 * positionally; metric 3 (the longest run) keeps its maximum, the others add up. One statement
 * for all that an outcome (or a batch of them) adds.
 */
export const STATS_ADD: readonly string[] = Array.from({ length: 16 }, (_, i) => `
INSERT INTO stats_minute (minute, metric, bucket, n) VALUES ${
  Array.from({ length: i + 1 }, () => "(?, ?, ?, ?)").join(", ")
}
ON CONFLICT (minute, metric, bucket) DO UPDATE SET
  n = CASE WHEN metric = 3 THEN max(n, excluded.n) ELSE n + excluded.n END`);

/** :from is a minute; figures compacted into hours are counted when their hour starts at or after it. */
export const STATS_WINDOW = `
SELECT metric, bucket, CASE WHEN metric = 3 THEN max(n) ELSE sum(n) END AS n
FROM stats_minute WHERE minute >= :from GROUP BY metric, bucket`;

export const STATS_PER_MINUTE = `
SELECT minute, bucket, n FROM stats_minute WHERE minute >= :from AND metric = 0`;

export const STATS_PRUNE = `DELETE FROM stats_minute WHERE minute < :before`;

/**
 * Folds the per-minute figures of whole hours before :before (a minute number) into the hour's
 * first minute, then deletes the other minutes. Counts add up; the longest run time (metric 3)
 * keeps its maximum. `WHERE true` keeps SQLite from reading ON CONFLICT as a join's ON.
 */
export const STATS_COMPACT = `
INSERT INTO stats_minute (minute, metric, bucket, n)
SELECT (minute / 60) * 60 AS hour, metric, bucket,
  CASE WHEN metric = 3 THEN max(n) ELSE sum(n) END
FROM stats_minute WHERE minute < :before AND minute % 60 <> 0
GROUP BY hour, metric, bucket
ON CONFLICT (minute, metric, bucket) DO UPDATE SET
  n = CASE WHEN metric = 3 THEN max(n, excluded.n) ELSE n + excluded.n END`;

export const STATS_COMPACT_DELETE = `
DELETE FROM stats_minute WHERE minute < :before AND minute % 60 <> 0`;

/**
 * Commands that failed most in the window, among its most recent failures (bounded, so a window
 * of a million failures costs no more than one of ten thousand). Bare columns next to max() come
 * from the row holding the maximum: the latest failure's error.
 */
export const TOP_FAILING = `
WITH recent AS (
  SELECT job_seq, finished_at, error, exit_code FROM attempts
  WHERE outcome <> 'completed' AND outcome NOT IN ('interrupted', 'cancelled') AND finished_at >= :since
  ORDER BY finished_at DESC LIMIT :scan
)
SELECT j.command AS command, count(*) AS failures, max(r.finished_at) AS last_at,
  r.error AS last_error, r.exit_code AS last_exit_code
FROM recent r JOIN jobs j ON j.seq = r.job_seq
GROUP BY j.command ORDER BY failures DESC, last_at DESC LIMIT :limit`;

/**
 * Finished jobs in :state that finished before :before, oldest first by enqueue order, walking
 * jobs_by_state. With :window > 0 only the :window oldest jobs in the state are looked at, so
 * that the housekeeping of a queue with nothing old enough costs a bounded scan, not one of
 * every finished job; jobs enqueue order and finish order mostly agree, and what is left behind
 * comes up on a later round. `prune` passes 0: every job is looked at.
 */
export const JOB_PRUNE_SELECT = `
SELECT seq, id FROM jobs WHERE seq IN (
  SELECT seq FROM jobs WHERE state = :state
  ORDER BY seq LIMIT CASE WHEN :window > 0 THEN :window ELSE -1 END
) AND finished_at < :before
ORDER BY seq LIMIT :limit`;
export const JOB_PRUNE_COUNT = `
SELECT count(*) AS n FROM jobs WHERE state = :state AND finished_at < :before`;
export const OUTPUT_DELETE = `DELETE FROM outputs WHERE job_seq = :seq`;
export const ATTEMPT_DELETE = `DELETE FROM attempts WHERE job_seq = :seq`;
export const JOB_DELETE = `DELETE FROM jobs WHERE seq = :seq`;

export const ATTEMPT_SET_PROCESS = `
UPDATE attempts SET pid = :pid, pid_start = :pid_start
WHERE job_seq = :job_seq AND attempt = :attempt`;

export const ATTEMPT_LIST = `
SELECT a.*, j.id AS job_id FROM attempts a JOIN jobs j ON j.seq = a.job_seq
WHERE j.id = :id ORDER BY a.attempt`;

export const OUTPUT_UPSERT = `
INSERT INTO outputs (job_seq, attempt, stream, head, tail, total)
VALUES (:job_seq, :attempt, :stream, :head, :tail, :total)
ON CONFLICT (job_seq, attempt, stream) DO UPDATE SET
  head = excluded.head, tail = excluded.tail, total = excluded.total`;

export const OUTPUT_GET = `
SELECT o.stream, o.head, o.tail, o.total FROM outputs o JOIN jobs j ON j.seq = o.job_seq
WHERE j.id = :id AND o.attempt = :attempt`;

export const JOB_LIST_PROCESSING = `
SELECT j.*,
  w.id AS w_id, w.pid AS w_pid, w.host AS w_host, w.host_id AS w_host_id,
  w.pid_start AS w_pid_start, w.state AS w_state, w.started_at AS w_started_at,
  w.heartbeat_at AS w_heartbeat_at, w.jobs_done AS w_jobs_done, w.jobs_failed AS w_jobs_failed,
  w.supervisor_pid AS w_supervisor_pid, w.busy_ms AS w_busy_ms,
  (SELECT group_concat(id) FROM jobs o WHERE o.state = 'processing' AND o.worker_id = w.id)
    AS w_running,
  a.pid AS a_pid, a.pid_start AS a_pid_start, a.host AS a_host, a.armed AS a_armed
FROM jobs j
LEFT JOIN workers w ON w.id = j.worker_id
LEFT JOIN attempts a ON a.job_seq = j.seq AND a.attempt = j.attempts
WHERE j.state = 'processing'`;

export const WORKER_INSERT = `
INSERT OR REPLACE INTO workers (id, pid, host, host_id, pid_start, state, current_job, started_at,
  heartbeat_at, jobs_done, jobs_failed, supervisor_pid)
VALUES (:id, :pid, :host, :host_id, :pid_start, 'idle', NULL, :now, :now, 0, 0, :supervisor_pid)`;

/** The worker's totals are its own count, stored as they are with each heartbeat. */
export const WORKER_HEARTBEAT = `
UPDATE workers SET heartbeat_at = :now, jobs_done = :jobs_done, jobs_failed = :jobs_failed,
  busy_ms = :busy_ms
WHERE id = :id`;

/** v1's CHECK allows idle, busy and stopping; 'idle' stands for running. */
export const WORKER_SET_STATE = `
UPDATE workers SET state = CASE :state WHEN 'stopping' THEN 'stopping' ELSE 'idle' END,
  heartbeat_at = :now WHERE id = :id`;

export const WORKER_DELETE = `DELETE FROM workers WHERE id = :id`;

/** Every worker, with the jobs it holds (few: only processing jobs are looked at). */
export const WORKER_LIST = `
SELECT w.*, (SELECT group_concat(id) FROM (SELECT id FROM jobs
    WHERE state = 'processing' AND worker_id = w.id ORDER BY updated_at, seq)) AS running
FROM workers w ORDER BY started_at, id`;

/** A write that changes nothing: fails when the database cannot be written. */
export const WRITE_PROBE = `DELETE FROM workers WHERE id = ''`;

export const CONFIG_ALL = `SELECT key, value FROM config`;
export const CONFIG_GET = `SELECT value FROM config WHERE key = :key`;
export const CONFIG_SET = `
INSERT INTO config (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
export const CONFIG_UNSET = `DELETE FROM config WHERE key = :key`;

export const QUEUE_ID = `SELECT value FROM queuectl_meta WHERE key = 'queue_id'`;

export const MIGRATION_RECORD = `
INSERT INTO queuectl_migrations (version, name, applied_at) VALUES (:version, :name, :now)`;

// Schedules (recurring jobs): schedule* methods. A schedule row comes with its last job's state.
const SCHEDULE_COLUMNS = `s.*, j.state AS last_job_state`;
const SCHEDULE_FROM = `schedules s LEFT JOIN jobs j ON j.id = s.last_job_id`;

export const SCHEDULE_INSERT = `
INSERT INTO schedules (name, kind, cron, time_zone, every_ms, template, anchor, next_at,
  created_at, updated_at)
VALUES (:name, :kind, :cron, :time_zone, :every_ms, :template, :anchor, :next_at, :now, :now)
ON CONFLICT (name) DO NOTHING`;
export const SCHEDULE_GET = `SELECT ${SCHEDULE_COLUMNS} FROM ${SCHEDULE_FROM} WHERE s.name = :name`;
export const SCHEDULE_LIST = `SELECT ${SCHEDULE_COLUMNS} FROM ${SCHEDULE_FROM} ORDER BY s.name`;
export const SCHEDULE_DELETE = `DELETE FROM schedules WHERE name = :name`;
export const SCHEDULE_RUNS_DELETE = `DELETE FROM schedule_runs WHERE schedule = :name`;
export const SCHEDULE_PAUSE = `
UPDATE schedules SET paused = 1, updated_at = :now WHERE name = :name`;
export const SCHEDULE_RESUME = `
UPDATE schedules SET paused = 0, next_at = :next_at, updated_at = :now WHERE name = :name`;
/** Due schedules, soonest first, through schedules_due. */
export const SCHEDULE_DUE = `
SELECT ${SCHEDULE_COLUMNS} FROM ${SCHEDULE_FROM}
WHERE s.paused = 0 AND s.next_at IS NOT NULL AND s.next_at <= :now
ORDER BY s.next_at LIMIT :limit`;
export const SCHEDULE_NEXT = `
SELECT min(next_at) AS next_at FROM schedules WHERE paused = 0 AND next_at IS NOT NULL`;
/** The compare-and-swap of a fire: only from the fire time the caller saw, only while active. */
export const SCHEDULE_ADVANCE = `
UPDATE schedules SET next_at = :next_at, last_at = :fire_at, fires = fires + 1, updated_at = :now
WHERE name = :name AND paused = 0 AND next_at = :fire_at`;
export const SCHEDULE_SET_LAST_JOB =
  `UPDATE schedules SET last_job_id = :job_id WHERE name = :name`;
/** "Run now": an extra occurrence, counted as one; the next fire time stays. */
export const SCHEDULE_RUN_NOW = `
UPDATE schedules SET last_at = :now, fires = fires + 1, updated_at = :now WHERE name = :name`;
export const SCHEDULE_RUN_INSERT = `
INSERT INTO schedule_runs (schedule, fire_at, job_id, enqueued_at)
VALUES (:name, :fire_at, :job_id, :now) ON CONFLICT DO NOTHING`;
export const SCHEDULE_RUN_SET_JOB = `
UPDATE schedule_runs SET job_id = :job_id WHERE schedule = :name AND fire_at = :fire_at`;
/** Runs are kept for a day: enough for the second guard, which only stale views need. */
export const SCHEDULE_RUNS_TRIM = `
DELETE FROM schedule_runs WHERE schedule = :name AND fire_at < :fire_at - 86400000`;
// Stop requests for every host and leaderless upkeep rounds: facts about the queue, kept in
// queuectl_meta under keys of their own (`stop:graceful`, `stop:force`, `round:<name>`).

export const STOP_REQUEST = `
INSERT INTO queuectl_meta (key, value) VALUES (:key, CAST(:now AS TEXT))
ON CONFLICT (key) DO UPDATE SET value = excluded.value`;

/** The stop requests stored at or after worker :id registered. */
export const STOP_REQUESTED = `
SELECT m.key FROM queuectl_meta m JOIN workers w ON w.id = :id
WHERE m.key IN ('stop:graceful', 'stop:force') AND CAST(m.value AS INTEGER) >= w.started_at`;

/**
 * Begins a round when the last one began at least :every ms ago (or in the future: a clock
 * stepped back); returns a row only then. The upsert's WHERE is the compare-and-set.
 */
export const MAINTENANCE_TURN = `
INSERT INTO queuectl_meta (key, value) VALUES (:key, CAST(:now AS TEXT))
ON CONFLICT (key) DO UPDATE SET value = excluded.value
  WHERE CAST(queuectl_meta.value AS INTEGER) <= :now - :every
     OR CAST(queuectl_meta.value AS INTEGER) > :now
RETURNING key`;
