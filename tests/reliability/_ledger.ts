/**
 * The ledger the job script appends to, parsed into runs, and the checker modelled on Jepsen's
 * total-queue checker: lost, duplicated, unexpected, overlapping, and attempts that the database
 * and the ledger disagree about.
 *
 * @module
 */

/** One attempt's run as the job itself recorded it. Times are µs since the epoch. */
export interface Run {
  id: string;
  attempt: number;
  startUs: number;
  pid: number;
  pgid: number;
  endUs: number | null;
  status: number | null;
  /** Processes of other attempts the job found alive as it started: "pid:attempt". */
  overlapWith: string[];
}

function microseconds(ns: string): number {
  return Number(ns.slice(0, -3));
}

export class Ledger {
  /** Runs by job id, in attempt order. */
  readonly runs = new Map<string, Run[]>();
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
          overlapWith: [],
        };
        open.set(key, run);
        const list = ledger.runs.get(id) ?? [];
        list.push(run);
        ledger.runs.set(id, list);
      } else if (kind === "end" && f.length === 7 && open.has(key)) {
        const run = open.get(key)!;
        run.endUs = microseconds(ns);
        run.status = Number(f[6]);
      } else if (kind === "overlap" && open.has(key)) {
        open.get(key)!.overlapWith.push(...f.slice(4));
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
}
