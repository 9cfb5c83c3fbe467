/**
 * Pickup latency: one idle worker; jobs enqueued one at a time (`queuectl enqueue -c true`, a
 * process each) at random intervals of 20–200 ms. Latency = the attempt's `started_at` − the job's
 * `created_at`, both written with the same clock, read from the database afterwards.
 *
 * The floor is measured at the same moments: a watcher in the bench process polls the database's
 * `PRAGMA data_version` every millisecond and notes when each job becomes visible. Its latency is
 * what any other process must wait for (the enqueue's commit, with its fsync, and a 1 ms poll); the
 * worker's adds its own polling interval, the claim and the spawn.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  createQueueDb,
  printFigure,
  quantile,
  queuectl,
  Reader,
  sleep,
  standalone,
  startWorkers,
  stopAll,
  tempDir,
  waitCompleted,
  waitIdle,
} from "./_common.ts";
import type { Background } from "./_common.ts";

/** Issue 14: waking on change must not make pickup slower than polling made it (p95 ≤ 1.35×). */
const TARGET_P95_RATIO = 1.35;

function jobs(options: BenchOptions): number {
  return options.quick ? 40 : 100;
}

/** Polls data_version every millisecond; records when each job seq was first seen (Date.now()). */
function watch(path: string): { seen: Map<number, number>; stop(): void } {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 });
  const version = db.prepare("PRAGMA data_version");
  const newer = db.prepare("SELECT seq FROM jobs WHERE seq > :last ORDER BY seq");
  const seen = new Map<number, number>();
  let last = 0;
  let token = -1;
  const timer = setInterval(() => {
    const now = Date.now();
    const current = Number((version.get() as Record<string, unknown>).data_version);
    if (current === token) return;
    token = current;
    for (const row of newer.all({ last }) as Record<string, unknown>[]) {
      last = Number(row.seq);
      seen.set(last, now);
    }
  }, 1);
  return {
    seen,
    stop() {
      clearInterval(timer);
      db.close();
    },
  };
}

export const pickup: BenchModule = {
  title: "Pickup latency",
  method: (options) =>
    `One idle worker (\`queuectl worker start\`); ${jobs(options)} jobs enqueued one at a time ` +
    `(\`queuectl enqueue -c true\`, each a new process) at random intervals of 20–200 ms. ` +
    `Latency = attempt started_at − job created_at (one clock; created_at is read before the ` +
    `insert commits, so the enqueue's commit and fsync are included). Floor, same jobs, same ` +
    `moments: when a watcher polling \`PRAGMA data_version\` every 1 ms in the bench process first ` +
    `saw the job (Deno fires a 1 ms interval every 1–3 ms). Percentiles are interpolated; ` +
    `ratio = ours / floor.`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("pickup");
    let workers: Background | undefined;
    let watcher: { seen: Map<number, number>; stop(): void } | undefined;
    const db = `${dir.path}/q.db`;
    await createQueueDb(db);
    const reader = new Reader(db);
    try {
      workers = startWorkers(db, 1, dir.path);
      await waitIdle(reader, workers, 1, 1000);
      watcher = watch(db);
      const n = jobs(options);
      for (let i = 0; i < n; i++) {
        await sleep(20 + Math.random() * 180);
        await queuectl(db, ["enqueue", "-c", "true"], { stdout: "null" });
      }
      await waitCompleted(reader, n, workers, 30_000);
      await sleep(20);
      const rows = reader.all(
        `SELECT j.seq AS seq, j.created_at AS created, a.started_at AS started
         FROM jobs j JOIN attempts a ON a.job_seq = j.seq AND a.attempt = 1`,
      );
      const ours = rows.map((r) => Number(r.started) - Number(r.created));
      const floor = rows.map((r) => {
        const seen = watcher!.seen.get(Number(r.seq));
        if (seen === undefined) throw new Error(`the watcher never saw job ${r.seq}`);
        return seen - Number(r.created);
      });
      const figures: Figure[] = [];
      for (const [label, q] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]] as const) {
        const value = quantile(ours, q);
        const floorValue = quantile(floor, q);
        const figure: Figure = {
          section: "Pickup latency",
          name: `enqueue → start, ${label} (${n} jobs)`,
          value,
          unit: "ms",
          floor: floorValue,
          floorName: "commit visible to a 1 ms poller",
          ratio: value / Math.max(floorValue, 1),
          target: label === "p95" ? `≤ ${TARGET_P95_RATIO}×` : "",
          pass: label === "p95" ? value / Math.max(floorValue, 1) <= TARGET_P95_RATIO : null,
        };
        printFigure(figure);
        figures.push(figure);
      }
      const max: Figure = {
        section: "Pickup latency",
        name: "context: enqueue → start, max",
        value: Math.max(...ours),
        unit: "ms",
        floor: Math.max(...floor),
        floorName: "commit visible to a 1 ms poller",
        ratio: Math.max(...ours) / Math.max(Math.max(...floor), 1),
        target: "",
        pass: null,
      };
      printFigure(max);
      figures.push(max);
      return figures;
    } finally {
      watcher?.stop();
      await stopAll([workers]);
      reader.close();
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(pickup);
