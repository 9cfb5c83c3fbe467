/**
 * Bulk enqueue: 100,000 jobs through `queuectl enqueue -` (JSON lines on stdin, one process, one
 * transaction) against inserting the same rows with node:sqlite in one transaction, in this
 * process, into a database with the same schema, through the store's own INSERT statement.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  createQueueDb,
  jobLines,
  median,
  printFigure,
  queuectl,
  Reader,
  REPO,
  standalone,
  tempDir,
} from "./_common.ts";
import { JOB_INSERT } from "../lib/store/sqlite/queries.ts";

const TARGET = 0.5;

function jobs(options: BenchOptions): number {
  return options.quick ? 20_000 : 100_000;
}

function rounds(options: BenchOptions): number {
  return options.quick ? 1 : 3;
}

const command = (i: number) => `echo job ${i}`;

/** The floor: the same rows, the store's INSERT, one transaction, synchronous=FULL like the CLI. */
function insertRaw(path: string, n: number): number {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    db.exec("PRAGMA synchronous = FULL");
    const t0 = performance.now();
    const insert = db.prepare(JOB_INSERT);
    const now = Date.now();
    db.exec("BEGIN IMMEDIATE");
    for (let i = 0; i < n; i++) {
      insert.run({
        seq: i + 1,
        id: String(i + 1),
        command: command(i),
        priority: 5,
        max_retries: 3,
        timeout_ms: null,
        cwd: REPO,
        env: null,
        run_at: now,
        now,
      });
    }
    db.exec("COMMIT");
    return performance.now() - t0;
  } finally {
    db.close();
  }
}

function checkCount(path: string, expected: number): void {
  const reader = new Reader(path);
  try {
    const n = reader.count("pending");
    if (n !== expected) throw new Error(`expected ${expected} pending jobs, found ${n}`);
  } finally {
    reader.close();
  }
}

export const enqueueBulk: BenchModule = {
  title: "Bulk enqueue",
  method: (options) =>
    `${jobs(options).toLocaleString("en")} jobs (\`{"command":"echo job N"}\`) through ` +
    `\`queuectl enqueue -\` (one process, stdin from the bench, ids to /dev/null; timed from ` +
    `spawn to exit, so start-up is included) against the floor: the same rows inserted in this ` +
    `process with node:sqlite, the store's INSERT statement, one transaction, synchronous=FULL, ` +
    `into a fresh queuectl database. ${rounds(options)} round(s), which of the two goes first ` +
    `alternating; times are medians; the ratio (floor time / our time) is the median of the ` +
    `rounds' ratios.`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("enqueue");
    try {
      const n = jobs(options);
      const input = jobLines(n, command);
      const ours: number[] = [];
      const floor: number[] = [];
      const ratios: number[] = [];
      for (let round = 0; round < rounds(options); round++) {
        const a = `${dir.path}/ours-${round}.db`;
        const b = `${dir.path}/floor-${round}.db`;
        await createQueueDb(a);
        await createQueueDb(b);
        const measureOurs = async () => {
          const result = await queuectl(a, ["enqueue", "-"], { stdin: input, stdout: "null" });
          checkCount(a, n);
          return result.ms;
        };
        const measureFloor = () => {
          const ms = insertRaw(b, n);
          checkCount(b, n);
          return ms;
        };
        let oursMs: number, floorMs: number;
        if (round % 2 === 0) {
          oursMs = await measureOurs();
          floorMs = measureFloor();
        } else {
          floorMs = measureFloor();
          oursMs = await measureOurs();
        }
        ours.push(oursMs);
        floor.push(floorMs);
        ratios.push(floorMs / oursMs);
        for (const path of [a, b]) {
          for (const suffix of ["", "-wal", "-shm"]) {
            try {
              Deno.removeSync(path + suffix);
            } catch { /* not there */ }
          }
        }
      }
      const value = median(ours);
      const floorMs = median(floor);
      const ratio = median(ratios);
      const figure: Figure = {
        section: "Bulk enqueue",
        name: `enqueue - of ${n.toLocaleString("en")} jobs`,
        value,
        unit: "ms",
        floor: floorMs,
        floorName: "node:sqlite, 1 transaction",
        ratio,
        target: `≥ ${TARGET}× (floor/ours)`,
        pass: ratio >= TARGET,
      };
      printFigure(figure);
      const rate: Figure = {
        section: "Bulk enqueue",
        name: "context: enqueue - rate",
        value: n / (value / 1000),
        unit: "jobs/s",
        floor: n / (floorMs / 1000),
        floorName: "node:sqlite",
        ratio,
        target: "",
        pass: null,
      };
      printFigure(rate);
      return [figure, rate];
    } finally {
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(enqueueBulk);
