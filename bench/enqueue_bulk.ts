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

const TARGET = 0.5;

function jobs(options: BenchOptions): number {
  return options.quick ? 20_000 : 100_000;
}

function rounds(options: BenchOptions): number {
  return options.quick ? 1 : 3;
}

const command = (i: number) => `echo job ${i}`;

/**
 * The floor: the bare cost of storing these lines with node:sqlite, as a program written for
 * nothing else would: each line parsed as JSON, one positional INSERT per row into a table with
 * one index (the unique id), one transaction, synchronous=FULL like the CLI. Timed from the bytes
 * to the commit, in this process (no start-up).
 */
function insertRaw(path: string, input: Uint8Array): number {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec(
      "CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, command TEXT NOT " +
        "NULL, state TEXT NOT NULL, priority INTEGER NOT NULL, max_retries INTEGER NOT NULL, " +
        "timeout_ms INTEGER, cwd TEXT NOT NULL, env TEXT, run_at INTEGER NOT NULL, created_at " +
        "INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
    );
    const t0 = performance.now();
    const lines = new TextDecoder().decode(input).split("\n");
    const insert = db.prepare(
      "INSERT INTO jobs VALUES (?, ?, ?, 'pending', ?, ?, NULL, ?, NULL, ?, ?, ?)",
    );
    const now = Date.now();
    db.exec("BEGIN IMMEDIATE");
    let seq = 0;
    for (const line of lines) {
      if (line === "") continue;
      const job = JSON.parse(line) as { command: string };
      seq++;
      insert.run(seq, String(seq), job.command, 5, 3, REPO, now, now, now);
    }
    db.exec("COMMIT");
    return performance.now() - t0;
  } finally {
    db.close();
  }
}

function countRows(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number((db.prepare("SELECT count(*) AS n FROM jobs").get() as { n: number }).n);
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
    `spawn to exit, so start-up is included) against the floor: the same lines parsed as JSON and ` +
    `inserted in this process with node:sqlite (positional parameters, the columns queuectl stores in a table with one index (the unique id), ` +
    `one transaction, synchronous=FULL; no start-up). ${
      rounds(options)
    } round(s), which of the two goes first ` +
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
        const measureOurs = async () => {
          const result = await queuectl(a, ["enqueue", "-"], { stdin: input, stdout: "null" });
          checkCount(a, n);
          return result.ms;
        };
        const measureFloor = () => {
          const ms = insertRaw(b, input);
          const rows = countRows(b);
          if (rows !== n) throw new Error(`floor: expected ${n} rows, found ${rows}`);
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
        floorName: "bare node:sqlite insert",
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
