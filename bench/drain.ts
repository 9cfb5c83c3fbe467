/**
 * End-to-end: 1,000 `true` jobs drained by 1, 2 and 4 workers, against a bare `Deno.Command` loop
 * spawning `sh -c true` (plain: no process group, output piped and drained, each one awaited) at
 * the same concurrency, in this one process.
 *
 * The workers are started first and left to go idle, so their start-up is not measured; the jobs
 * then arrive in one `enqueue -`. The time is taken from the database, written by one clock: from
 * the jobs' `created_at` (read before their insert commits) to the last `finished_at`.
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  createQueueDb,
  jobLines,
  median,
  printFigure,
  queuectl,
  Reader,
  standalone,
  startWorkers,
  stopAll,
  tempDir,
  waitCompleted,
  waitIdle,
} from "./_common.ts";
import type { Background } from "./_common.ts";
import { quantile } from "./_common.ts";

const JOBS = 1000;

/** How the jobs are drained, the floor's lanes, and the target ratio (issue 10). */
interface Shape {
  name: string;
  /** Worker processes (`--count`). */
  count: number;
  /** Slots per worker (`--concurrency`). */
  concurrency: number;
  lanes: number;
  target: number;
}

const SHAPES: readonly Shape[] = [
  { name: "1 process × 1 slot", count: 1, concurrency: 1, lanes: 1, target: 0.85 },
  { name: "1 process × 2 slots", count: 1, concurrency: 2, lanes: 2, target: 0.75 },
  { name: "1 process × 4 slots", count: 1, concurrency: 4, lanes: 4, target: 0.70 },
  // Several processes, for isolation: no worse than one slot each was before (0.35×).
  { name: "2 processes × 1 slot (--count 2)", count: 2, concurrency: 1, lanes: 2, target: 0.35 },
];

function rounds(options: BenchOptions): number {
  return options.quick ? 1 : 5;
}

async function drainStream(stream: ReadableStream<Uint8Array>): Promise<void> {
  for await (const _ of stream) { /* discard */ }
}

/** The floor: `total` spawns of `sh -c true` over `lanes` concurrent loops; returns ms. */
export async function bareLoop(total: number, lanes: number): Promise<number> {
  let started = 0;
  const lane = async () => {
    while (started < total) {
      started++;
      const child = new Deno.Command("/bin/sh", {
        args: ["-c", "true"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const [status] = await Promise.all([
        child.status,
        drainStream(child.stdout),
        drainStream(child.stderr),
      ]);
      if (!status.success) throw new Error(`sh -c true exited ${status.code}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: lanes }, lane));
  return performance.now() - t0;
}

/** Our time for `JOBS` jobs with idle workers of `shape`, ms (from the database's timestamps). */
async function drainOnce(dir: string, shape: Shape, round: number): Promise<number> {
  const db = `${dir}/drain-${shape.count}x${shape.concurrency}-${round}.db`;
  await createQueueDb(db);
  const reader = new Reader(db);
  let workers: Background | undefined;
  try {
    workers = startWorkers(db, shape.count, dir, shape.concurrency);
    await waitIdle(reader, workers, shape.count);
    await queuectl(db, ["enqueue", "-"], { stdin: jobLines(JOBS, () => "true"), stdout: "null" });
    await waitCompleted(reader, JOBS, workers, 120_000);
    const row = reader.get("SELECT min(created_at) AS t0, max(finished_at) AS t1 FROM jobs");
    const attempts = reader.num("SELECT count(*) FROM attempts");
    if (attempts !== JOBS) throw new Error(`${attempts} attempts for ${JOBS} jobs`);
    return Number(row.t1) - Number(row.t0);
  } finally {
    await stopAll([workers]);
    reader.close();
  }
}

export const drain: BenchModule = {
  title: "End-to-end drain",
  method: (options) =>
    `${JOBS} \`true\` jobs, drained by idle workers (\`worker start --count P --concurrency S\`: ` +
    `${SHAPES.map((s) => `${s.count}×${s.concurrency}`).join(", ")}), ` +
    `enqueued in one \`enqueue -\`; time from the jobs' created_at (taken before ` +
    `their insert commits) to the last finished_at, both from the database. Floor: ${JOBS} ` +
    `\`/bin/sh -c true\` spawned by a bare \`Deno.Command\` loop in the bench process (no process ` +
    `group, stdout/stderr piped and drained, each awaited) over P×S concurrent loops. ` +
    `${rounds(options)} round(s) per N; each round runs the floor (${JOBS / 2} spawns), ours, ` +
    `and the floor again, and its ratio is our rate / the mean of its two floor rates. Figures ` +
    `are medians over the rounds; the ratio is the median of the rounds' ratios, so a machine ` +
    `that drifts between rounds moves both sides of each ratio alike.`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("drain");
    try {
      await bareLoop(50, 1); // warm-up
      const figures: Figure[] = [];
      for (const shape of SHAPES) {
        const ours: number[] = [];
        const floor: number[] = [];
        const ratios: number[] = [];
        for (let round = 0; round < rounds(options); round++) {
          const before = (JOBS / 2) / (await bareLoop(JOBS / 2, shape.lanes) / 1000);
          const rate = JOBS / (await drainOnce(dir.path, shape, round) / 1000);
          const after = (JOBS / 2) / (await bareLoop(JOBS / 2, shape.lanes) / 1000);
          ours.push(rate);
          floor.push(before, after);
          ratios.push(rate / ((before + after) / 2));
        }
        const ratio = quantile(ratios, 0.5);
        const figure: Figure = {
          section: "End-to-end",
          name: `${JOBS} true jobs, ${shape.name}`,
          value: median(ours),
          unit: "jobs/s",
          floor: median(floor),
          floorName: `Deno.Command loop ×${shape.lanes}`,
          ratio,
          target: `≥ ${shape.target}×`,
          pass: ratio >= shape.target,
        };
        printFigure(figure);
        figures.push(figure);
      }
      return figures;
    } finally {
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(drain);
