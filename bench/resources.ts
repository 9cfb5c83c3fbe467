/**
 * Resources: a worker's resident memory (VmRSS from /proc/PID/status) idle, after 1,000 and after
 * 10,000 `true` jobs, and its peak (VmHWM, and samples every 10 ms) while a job prints 1 GiB. The
 * floor is an idle Deno process that loads nothing (bench/_idle.ts).
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  Background,
  createQueueDb,
  DENO,
  jobLines,
  memoryOf,
  printFigure,
  queuectl,
  Reader,
  sleep,
  standalone,
  startWorkers,
  stopAll,
  tempDir,
  waitCompleted,
  waitIdle,
  workerPids,
} from "./_common.ts";

/** Issue 10: after 10,000 jobs, one slot ≤ 75 MB, eight slots ≤ 90 MB. */
const RSS_TARGET_MB = 75;
const RSS_8_TARGET_MB = 90;
const GROWTH_TARGET_MB = 5;
const OUTPUT_TARGET_MB = 200;
const FIRST = 1000;

function many(options: BenchOptions): number {
  return options.quick ? 3000 : 10_000;
}

export const resources: BenchModule = {
  title: "Resources",
  method: (options) =>
    `One worker (\`queuectl worker start --concurrency 1\`, then again with 8 slots): VmRSS when ` +
    `idle (1 s after it registered), after ` +
    `${FIRST.toLocaleString("en")} \`true\` jobs, after ${
      (many(options) / 2).toLocaleString("en")
    } ` +
    `and after ${
      many(options).toLocaleString("en")
    } (each read 500 ms after the last job completed; jobs ` +
    `enqueued with \`enqueue -\`). Then a fresh worker runs \`head -c 1G /dev/zero\`: peak = ` +
    `max(VmHWM, VmRSS sampled every 10 ms). Floor: VmRSS of an idle Deno process that loads ` +
    `nothing (bench/_idle.ts); ratio = worker / floor. Growth = RSS after ` +
    `${many(options).toLocaleString("en")} − after ${FIRST.toLocaleString("en")}.`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("resources");
    const processes: Background[] = [];
    const readers: Reader[] = [];
    try {
      const idle = new Background(DENO, ["run", "-A", "bench/_idle.ts"], `${dir.path}/idle.log`);
      processes.push(idle);
      await sleep(1000);
      const floor = memoryOf(idle.pid).rss;
      await idle.stop();

      const total = many(options);
      const half = total / 2;
      /** RSS of one worker with `slots` slots: idle, then after FIRST, half and all the jobs. */
      const series = async (slots: number) => {
        const db = `${dir.path}/q-${slots}.db`;
        await createQueueDb(db);
        const reader = new Reader(db);
        readers.push(reader);
        const supervisor = startWorkers(db, 1, dir.path, slots);
        processes.push(supervisor);
        await waitIdle(reader, supervisor, 1, 1000);
        const [pid] = workerPids(reader);
        const idle = memoryOf(pid!).rss;
        const after: number[] = [];
        let done = 0;
        for (const upTo of [FIRST, half, total]) {
          await queuectl(db, ["enqueue", "-"], {
            stdin: jobLines(upTo - done, () => "true"),
            stdout: "null",
          });
          await waitCompleted(reader, upTo, supervisor, 300_000);
          done = upTo;
          await sleep(500);
          after.push(memoryOf(pid!).rss);
        }
        await supervisor.stop();
        return { idle, after1k: after[0]!, afterHalf: after[1]!, afterMany: after[2]! };
      };
      const one = await series(1);
      const idleRss = one.idle;
      const { after1k, afterHalf } = one;
      const afterMany = { rss: one.afterMany };
      const eight = await series(8);

      // A fresh worker for the gigabyte, so its peak is this job's alone.
      const db2 = `${dir.path}/q2.db`;
      await createQueueDb(db2);
      const reader2 = new Reader(db2);
      readers.push(reader2);
      const big = startWorkers(db2, 1, dir.path);
      processes.push(big);
      await waitIdle(reader2, big, 1, 1000);
      const [bigPid] = workerPids(reader2);
      const bigIdle = memoryOf(bigPid!).rss;
      let peak = bigIdle;
      const t0 = performance.now();
      await queuectl(db2, ["enqueue", "-c", "head -c 1G /dev/zero"], { stdout: "null" });
      const sampler = setInterval(() => {
        try {
          peak = Math.max(peak, memoryOf(bigPid!).rss);
        } catch { /* exited */ }
      }, 10);
      try {
        await waitCompleted(reader2, 1, big, 120_000, 10);
      } finally {
        clearInterval(sampler);
      }
      const seconds = (performance.now() - t0) / 1000;
      const total1g = Number(
        reader2.get("SELECT total FROM outputs WHERE stream = 1").total,
      );
      if (total1g !== 1024 ** 3) throw new Error(`the job's stdout counted ${total1g} bytes`);
      peak = Math.max(peak, memoryOf(bigPid!).hwm);
      await big.stop();

      const fig = (
        name: string,
        value: number,
        target: string,
        pass: boolean | null,
        floorValue = floor,
        floorName = "idle Deno",
      ): Figure => {
        const f: Figure = {
          section: "Resources",
          name,
          value,
          unit: "MB",
          floor: floorValue,
          floorName,
          ratio: value / floorValue,
          target,
          pass,
        };
        printFigure(f);
        return f;
      };
      const n = total.toLocaleString("en");
      const growth = (from: number, rss: number, target: boolean): Figure => {
        const f: Figure = {
          section: "Resources",
          name: `${target ? "" : "context: "}growth from ${from.toLocaleString("en")} to ${n} jobs`,
          value: afterMany.rss - rss,
          unit: "MB",
          floor: null,
          floorName: "",
          ratio: null,
          target: target ? `≤ ${GROWTH_TARGET_MB} MB` : "",
          pass: target ? afterMany.rss - rss <= GROWTH_TARGET_MB : null,
        };
        printFigure(f);
        return f;
      };
      return [
        fig("worker RSS, idle", idleRss, "", null),
        fig(`worker RSS after ${FIRST.toLocaleString("en")} jobs`, after1k, "", null),
        fig(
          `worker RSS after ${n} jobs, 1 slot`,
          afterMany.rss,
          `≤ ${RSS_TARGET_MB} MB`,
          afterMany.rss <= RSS_TARGET_MB,
        ),
        fig(`context: worker RSS idle, 8 slots`, eight.idle, "", null),
        fig(
          `worker RSS after ${n} jobs, 8 slots`,
          eight.afterMany,
          `≤ ${RSS_8_TARGET_MB} MB`,
          eight.afterMany <= RSS_8_TARGET_MB,
        ),
        growth(FIRST, after1k, true),
        growth(half, afterHalf, false),
        fig(
          `worker peak RSS while a job prints 1 GiB (${seconds.toFixed(1)} s)`,
          peak,
          `< ${OUTPUT_TARGET_MB} MB`,
          peak < OUTPUT_TARGET_MB,
        ),
      ];
    } finally {
      await stopAll(processes);
      for (const r of readers) r.close();
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(resources);
