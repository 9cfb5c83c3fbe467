/**
 * The ledger (RELIABILITY §2.0): every ledger job appends what it did to one file, as the job
 * itself saw it, so that a checker can compare that with what the database says. One format for
 * the worker tests and the reliability suite:
 *
 * ```
 * <id> <attempt> start <epoch_ns> <pid> <pgid>
 * <id> <attempt> scan <epoch_ns> [<pid>:<attempt> ...]     (attempts after the first)
 * <id> <attempt> end <epoch_ns> <pid> <pgid> <status>
 * ```
 *
 * `pid` is the job's shell, the leader of the attempt's process group. The `scan` line says the
 * job has looked, as it started, for live processes of any other attempt of the same job and the
 * same database (by their QUEUECTL_* environment), and lists those it found: none means no
 * overlap. Times have microsecond precision.
 *
 * `Ledger.parse` reads the file into runs; `checkLedger` is the quick ledger-only check of the
 * worker tests (the reliability suite's checker, tests/reliability/_checker.ts, also compares the
 * database).
 *
 * @module
 */

import assert from "node:assert/strict";
import { shellQuote } from "./process.ts";

/** One attempt's run as the job itself recorded it. Times are µs since the epoch. */
export interface Run {
  id: string;
  attempt: number;
  startUs: number;
  /** The job's shell: the leader of the attempt's process group. */
  pid: number;
  pgid: number;
  endUs: number | null;
  status: number | null;
  /** Whether the job has written its scan for other attempts' processes (attempt > 1). */
  scanned: boolean;
  /** Processes of other attempts the job found alive as it started: "pid:attempt". */
  overlapWith: string[];
}

function microseconds(ns: string): number {
  return Number(ns.slice(0, -3));
}

export class Ledger {
  /** Runs by job id, in attempt order. */
  readonly runs = new Map<string, Run[]>();
  /** Every run, in the order of the start lines. */
  readonly order: Run[] = [];
  /** Lines that do not parse: torn or interleaved appends. */
  readonly torn: string[] = [];
  lines = 0;

  static parse(text: string): Ledger {
    const ledger = new Ledger();
    const open = new Map<string, Run>();
    for (const line of text.split("\n")) {
      if (line === "") continue;
      ledger.lines++;
      const f = line.split(" ");
      const [id, attemptText, kind, ns] = f;
      const attempt = Number(attemptText);
      if (!id || !Number.isInteger(attempt) || !ns || !/^\d{16,}$/.test(ns)) {
        ledger.torn.push(line);
        continue;
      }
      const key = `${id}\0${attempt}`;
      if (kind === "start" && f.length === 6) {
        const run: Run = {
          id,
          attempt,
          startUs: microseconds(ns),
          pid: Number(f[4]),
          pgid: Number(f[5]),
          endUs: null,
          status: null,
          scanned: false,
          overlapWith: [],
        };
        open.set(key, run);
        const list = ledger.runs.get(id) ?? [];
        list.push(run);
        ledger.runs.set(id, list);
        ledger.order.push(run);
      } else if (kind === "end" && f.length === 7 && open.has(key)) {
        const run = open.get(key)!;
        run.endUs = microseconds(ns);
        run.status = Number(f[6]);
      } else if (kind === "scan" && open.has(key)) {
        const run = open.get(key)!;
        run.scanned = true;
        run.overlapWith.push(...f.slice(4));
      } else {
        ledger.torn.push(line);
      }
    }
    for (const list of ledger.runs.values()) list.sort((a, b) => a.attempt - b.attempt);
    return ledger;
  }

  starts(id: string): number {
    return this.runs.get(id)?.length ?? 0;
  }

  /** Run `attempt` of job `id`, if it started. */
  run(id: string, attempt: number): Run | undefined {
    return this.runs.get(id)?.find((r) => r.attempt === attempt);
  }
}

/**
 * The ledger job's script. bash for $EPOCHREALTIME (no fork per timestamp); every line is one
 * append under 4 KiB, so lines never interleave. It runs its one argument (shell text) in a
 * subshell between its start and end lines, and exits with the work's status. On attempts after
 * the first it looks for live processes of any other attempt of the same job and the same
 * database right after its start line, and writes its `scan` line with what it found.
 */
export function ledgerJobScript(ledger: string): string {
  return `#!/bin/bash
L=${shellQuote(ledger)}
read -r _ _ _ _ pgid _ < /proc/$$/stat
t=$EPOCHREALTIME
printf '%s %s start %s%s000 %s %s\\n' "$QUEUECTL_JOB_ID" "$QUEUECTL_ATTEMPT" "\${t%.*}" "\${t#*.}" $$ "$pgid" >> "$L"
if [ "$QUEUECTL_ATTEMPT" -gt 1 ]; then
  others=
  for f in $(grep -lzxF "QUEUECTL_JOB_ID=$QUEUECTL_JOB_ID" /proc/[0-9]*/environ 2>/dev/null); do
    { mapfile -d '' -t vars < "$f"; } 2>/dev/null || continue
    db= attempt=
    for v in "\${vars[@]}"; do
      case $v in QUEUECTL_DB=*) db=\${v#*=} ;; QUEUECTL_ATTEMPT=*) attempt=\${v#*=} ;; esac
    done
    if [ "$db" = "$QUEUECTL_DB" ] && [ -n "$attempt" ] && [ "$attempt" != "$QUEUECTL_ATTEMPT" ]; then
      p=\${f#/proc/}; others="$others \${p%/environ}:$attempt"
    fi
  done
  printf '%s %s scan %s%s000%s\\n' "$QUEUECTL_JOB_ID" "$QUEUECTL_ATTEMPT" "\${t%.*}" "\${t#*.}" "$others" >> "$L"
fi
status=0
if [ $# -gt 0 ]; then
  ( eval "$1" )
  status=$?
fi
t=$EPOCHREALTIME
printf '%s %s end %s%s000 %s %s %s\\n' "$QUEUECTL_JOB_ID" "$QUEUECTL_ATTEMPT" "\${t%.*}" "\${t#*.}" $$ "$pgid" $status >> "$L"
exit $status
`;
}

export interface LedgerReport {
  /** Expected ids with no end line. */
  lost: string[];
  /** Ids with more than one start line for the same attempt, or more starts than allowed. */
  duplicated: string[];
  /** Ledger ids that were never enqueued. */
  unexpected: string[];
  /**
   * Ids whose attempt k+1 started before attempt k ended, or while a process of another attempt
   * lived.
   */
  overlap: string[];
}

/**
 * The worker tests' check of the ledger alone against the ids that were enqueued. `maxStarts` is
 * how many starts an id may have (1 for exactly-once). A torn line fails at once.
 */
export function checkLedger(
  ledger: Ledger,
  expected: readonly string[],
  maxStarts = 1,
): LedgerReport {
  assert.deepEqual(ledger.torn, [], "torn ledger lines");
  const wanted = new Set(expected);
  const report: LedgerReport = { lost: [], duplicated: [], unexpected: [], overlap: [] };
  for (const id of ledger.runs.keys()) {
    if (!wanted.has(id)) report.unexpected.push(id);
  }
  for (const id of expected) {
    const runs = ledger.runs.get(id) ?? [];
    const attempts = runs.map((r) => r.attempt);
    if (runs.length > maxStarts || new Set(attempts).size !== attempts.length) {
      report.duplicated.push(id);
    }
    if (!runs.some((r) => r.endUs !== null)) report.lost.push(id);
    for (let i = 1; i < runs.length; i++) {
      const prev = runs[i - 1]!;
      const next = runs[i]!;
      if (next.overlapWith.length > 0 || (prev.endUs !== null && prev.endUs > next.startUs)) {
        report.overlap.push(id);
      }
    }
  }
  return report;
}
