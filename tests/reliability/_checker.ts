/**
 * The checker, after Jepsen's total-queue checker (RELIABILITY §2.0), comparing three records of
 * the same history: what the enqueuers were told (acknowledged ids), what the jobs themselves
 * wrote (the ledger), and what the database says (jobs and their attempt rows). It also takes the
 * /proc sampler's sightings of each attempt's processes.
 *
 * @module
 */

import type { Run } from "../helpers/ledger.ts";
import type { AttemptSampler } from "../helpers/proc.ts";
import type { Sandbox } from "../helpers/sandbox.ts";

const encoder = new TextEncoder();

/** Prints one line of figures, outside the test runner's own output. */
export function report(line: string): void {
  Deno.stdout.writeSync(encoder.encode(`[reliability] ${line}\n`));
}

export interface CheckOptions {
  /** Ids whose enqueue exited 0. */
  acked: Iterable<string>;
  /** Ids whose enqueue was killed or failed: they may or may not exist ("recovered" if they do). */
  uncertain?: Iterable<string>;
  /**
   * Whether the scenario crashes or stalls processes. Without crashes every attempt must have
   * exactly one run and no run may repeat; with them an attempt the database marks `lost` or
   * `interrupted` may lack a run (killed before its first line) and may be run again.
   */
  crashes: boolean;
  sampler?: AttemptSampler;
  /** Jobs in the same database that are not ledger jobs and are checked by the scenario itself. */
  exclude?: Iterable<string>;
  /**
   * Jobs the scenario cancelled (issue 11): they may end `cancelled` (not lost: a user asked),
   * and their last attempt may be a `cancelled` one killed before its first ledger line.
   */
  cancelled?: Iterable<string>;
}

export interface Figures {
  jobs: number;
  /** Acknowledged, and not completed (after a successful run) or dead at the end. */
  lost: number;
  /** Runs repeated after an attempt that a crash, a lost lease or a shutdown ended. */
  duplicated: number;
  /** Runs repeated after an attempt that had completed, or with no cause in the database. */
  unexplained: number;
  /** Ledger or database ids nobody enqueued (acknowledged or uncertain). */
  unexpected: number;
  /** Attempt k+1 started before attempt k's end line, or while a process of it was alive. */
  overlaps: number;
  /** Jobs whose attempts in the database and runs in the ledger disagree. */
  attemptMismatch: number;
  /** Uncertain enqueues that exist (allowed). */
  recovered: number;
  /** Rows left in `processing`. */
  processing: number;
  /** Ledger lines that do not parse (torn appends). */
  torn: number;
  integrity: string;
  /** The first few problems, for the failure message. */
  details: string[];
}

interface DbAttempt {
  attempt: number;
  outcome: string | null;
}

interface DbJob {
  state: string;
  attempts: number;
  list: DbAttempt[];
}

const CRASH_OUTCOMES = new Set(["lost", "interrupted"]);

function loadDb(sandbox: Sandbox): Map<string, DbJob> {
  const jobs = new Map<string, DbJob>();
  const rows = sandbox.query<
    { id: string; state: string; attempts: number; attempt: number | null; outcome: string | null }
  >(
    `SELECT j.id AS id, j.state AS state, j.attempts AS attempts, a.attempt AS attempt,
       a.outcome AS outcome
     FROM jobs j LEFT JOIN attempts a ON a.job_seq = j.seq ORDER BY j.seq, a.attempt`,
  );
  for (const row of rows) {
    let job = jobs.get(row.id);
    if (!job) {
      job = { state: row.state, attempts: row.attempts, list: [] };
      jobs.set(row.id, job);
    }
    if (row.attempt !== null) job.list.push({ attempt: row.attempt, outcome: row.outcome });
  }
  return jobs;
}

export function check(sandbox: Sandbox, options: CheckOptions, ledger = sandbox.ledger()): Figures {
  const acked = new Set(options.acked);
  const cancelled = new Set(options.cancelled ?? []);
  const uncertain = new Set(options.uncertain ?? []);
  const db = loadDb(sandbox);
  for (const id of options.exclude ?? []) db.delete(id);
  const f: Figures = {
    jobs: acked.size,
    lost: 0,
    duplicated: 0,
    unexplained: 0,
    unexpected: 0,
    overlaps: 0,
    attemptMismatch: 0,
    recovered: 0,
    processing: 0,
    torn: ledger.torn.length,
    integrity: sandbox.integrity(),
    details: [],
  };
  const note = (text: string) => {
    if (f.details.length < 20) f.details.push(text);
  };
  for (const line of ledger.torn.slice(0, 3)) note(`torn ledger line: ${JSON.stringify(line)}`);

  for (const [id, job] of db) {
    if (job.state === "processing") f.processing++;
    if (!acked.has(id) && !uncertain.has(id)) {
      f.unexpected++;
      note(`job ${id} is in the database but was never enqueued`);
    }
    if (uncertain.has(id) && !acked.has(id)) f.recovered++;
  }
  for (const id of ledger.runs.keys()) {
    if (!db.has(id) || (!acked.has(id) && !uncertain.has(id))) {
      f.unexpected++;
      note(`job ${id} ran but is unknown`);
    }
  }

  for (const id of acked) {
    const job = db.get(id);
    const runs = ledger.runs.get(id) ?? [];
    const lastRun = runs.at(-1);
    if (!job) {
      f.lost++;
      note(`job ${id} was acknowledged but is not in the database`);
      continue;
    }
    if (job.state === "completed" && lastRun?.status !== 0) {
      f.lost++;
      note(`job ${id} is completed but its last run ${runDesc(lastRun)} did not end with 0`);
    } else if (
      job.state !== "completed" && job.state !== "dead" &&
      !(job.state === "cancelled" && cancelled.has(id))
    ) {
      f.lost++;
      note(`job ${id} ended ${job.state}, not completed or dead`);
    }
  }

  for (const [id, job] of db) {
    const runs = ledger.runs.get(id) ?? [];
    checkAttempts(id, job, runs, options, f, note);
    checkRepeats(id, job, runs, f, note);
    checkOverlaps(id, runs, options.sampler, f, note);
  }
  return f;
}

function runDesc(run: Run | undefined): string {
  if (!run) return "(none)";
  return `(attempt ${run.attempt}, status ${run.status ?? "no end line"})`;
}

function checkAttempts(
  id: string,
  job: DbJob,
  runs: Run[],
  options: CheckOptions,
  f: Figures,
  note: (text: string) => void,
): void {
  const problems: string[] = [];
  if (job.attempts !== job.list.length) {
    problems.push(`jobs.attempts = ${job.attempts} but ${job.list.length} attempt rows`);
  }
  const byNumber = new Map(job.list.map((a) => [a.attempt, a]));
  const seen = new Set<number>();
  for (const run of runs) {
    if (seen.has(run.attempt)) problems.push(`attempt ${run.attempt} ran twice`);
    seen.add(run.attempt);
    if (!byNumber.has(run.attempt)) problems.push(`attempt ${run.attempt} ran but has no row`);
  }
  for (const a of job.list) {
    if (seen.has(a.attempt)) continue;
    const explained = (options.crashes &&
      (a.outcome === null
        ? job.state === "processing"
        : CRASH_OUTCOMES.has(a.outcome) || a.outcome === "spawn_failed")) ||
      (a.outcome === "cancelled" && new Set(options.cancelled ?? []).has(id));
    if (!explained) problems.push(`attempt ${a.attempt} (${a.outcome}) has no run in the ledger`);
  }
  if (problems.length) {
    f.attemptMismatch++;
    note(`job ${id}: ${problems.join("; ")}`);
  }
}

function checkRepeats(
  id: string,
  job: DbJob,
  runs: Run[],
  f: Figures,
  note: (text: string) => void,
): void {
  for (let i = 1; i < runs.length; i++) {
    const before = runs[i - 1]!;
    const outcome = job.list.find((a) => a.attempt === before.attempt)?.outcome ?? null;
    if (outcome !== null && CRASH_OUTCOMES.has(outcome)) {
      f.duplicated++;
    } else if (outcome === "completed" || outcome === null) {
      f.unexplained++;
      note(
        `job ${id} ran again (attempt ${runs[i]!.attempt}) after attempt ${before.attempt} ` +
          `ended ${outcome ?? "without an outcome"}`,
      );
    }
    // failed / timeout / spawn_failed: an ordinary retry, not a duplicate.
  }
}

function checkOverlaps(
  id: string,
  runs: Run[],
  sampler: AttemptSampler | undefined,
  f: Figures,
  note: (text: string) => void,
): void {
  let found = false;
  for (const run of runs) {
    if (run.overlapWith.length) {
      found = true;
      note(`job ${id} attempt ${run.attempt} started while ${run.overlapWith.join(",")} lived`);
    }
  }
  const sorted = [...runs].sort((a, b) => a.startUs - b.startUs);
  let busyUntil = -Infinity;
  let busyAttempt = 0;
  for (const run of sorted) {
    if (run.startUs < busyUntil) {
      found = true;
      note(
        `job ${id} attempt ${run.attempt} started ${
          ((busyUntil - run.startUs) / 1000).toFixed(1)
        } ms before attempt ${busyAttempt} was over`,
      );
    }
    const seenMs = sampler?.lastSeen.get(`${id}\0${run.attempt}`);
    const until = Math.max(
      run.endUs ?? -Infinity,
      seenMs === undefined ? -Infinity : seenMs * 1000,
    );
    if (until > busyUntil) {
      busyUntil = until;
      busyAttempt = run.attempt;
    }
  }
  if (found) f.overlaps++;
}

export interface Expect {
  /** Repeated runs allowed (explained by crashes); default 0. */
  maxDuplicated?: number;
}

/** The global invariants (RELIABILITY §2.0); throws with the checker's details. */
export function assertFigures(name: string, f: Figures, expect: Expect = {}): void {
  const failures: string[] = [];
  if (f.lost !== 0) failures.push(`lost = ${f.lost}`);
  if (f.unexpected !== 0) failures.push(`unexpected = ${f.unexpected}`);
  if (f.overlaps !== 0) failures.push(`overlaps = ${f.overlaps}`);
  if (f.unexplained !== 0) failures.push(`unexplained repeated runs = ${f.unexplained}`);
  if (f.duplicated > (expect.maxDuplicated ?? 0)) {
    failures.push(`duplicated = ${f.duplicated} > ${expect.maxDuplicated ?? 0}`);
  }
  if (f.attemptMismatch !== 0) failures.push(`attempt mismatches = ${f.attemptMismatch}`);
  if (f.processing !== 0) failures.push(`left processing = ${f.processing}`);
  if (f.torn !== 0) failures.push(`torn ledger lines = ${f.torn}`);
  if (f.integrity !== "ok") failures.push(`integrity_check = ${f.integrity}`);
  if (failures.length) {
    throw new Error(`${name}: ${failures.join(", ")}\n  ${f.details.join("\n  ")}`);
  }
}

/** Prints the scenario's line of figures. */
export function reportFigures(
  name: string,
  f: Figures,
  extra: Record<string, string | number> = {},
): void {
  const parts = [
    `jobs=${f.jobs}`,
    `lost=${f.lost}`,
    `duplicated=${f.duplicated}`,
    `unexplained=${f.unexplained}`,
    `unexpected=${f.unexpected}`,
    `overlaps=${f.overlaps}`,
    `attempt_mismatch=${f.attemptMismatch}`,
    `integrity=${f.integrity}`,
    ...Object.entries(extra).map(([k, v]) => `${k}=${v}`),
  ];
  if (f.recovered) parts.push(`recovered=${f.recovered}`);
  report(`${name}: ${parts.join(" ")}`);
}

/** check + report + assert, the usual ending of a scenario. */
export function verify(
  sandbox: Sandbox,
  name: string,
  options: CheckOptions,
  extra: Record<string, string | number> = {},
  expect: Expect = {},
): Figures {
  const f = check(sandbox, options);
  reportFigures(name, f, extra);
  assertFigures(name, f, expect);
  return f;
}
