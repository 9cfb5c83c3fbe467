/**
 * What waiting costs: CPU time (user + system, from /proc/PID/stat) of processes that have
 * nothing to do, over a window (60 s; 20 s with --quick, the target scaled to it):
 *
 * - one idle `queuectl worker start` (its supervisor and its worker), nothing enqueued;
 * - eight idle workers (`worker start --count 8`), per worker and in all;
 * - `queuectl wait` on a job that no worker runs.
 *
 * Target (issue 14): an idle worker and an idle `wait` each at most 0.3 % of a core
 * (180 ms of CPU per 60 s). There is no floor: the figure is absolute.
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  Background,
  createQueueDb,
  DENO,
  MAIN,
  printFigure,
  queuectl,
  Reader,
  sleep,
  standalone,
  startWorkers,
  stopAll,
  tempDir,
  waitIdle,
  workerPids,
} from "./_common.ts";

/** Share of one core an idle process may use. */
const TARGET_SHARE = 0.003;

function windowMs(options: BenchOptions): number {
  return options.quick ? 20_000 : 60_000;
}

/** Clock ticks per second of /proc's utime and stime (Linux: 100). */
const CLK_TCK = 100;

/** CPU time of `pid` so far (user + system, ms), from /proc. */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** CPU each of `pids` used over `ms`. */
async function cpuOver(pids: readonly number[], ms: number): Promise<number[]> {
  const before = pids.map(cpuMs);
  await sleep(ms);
  return pids.map((pid, i) => cpuMs(pid) - before[i]!);
}

function figure(name: string, usedMs: number, window: number, target: boolean): Figure {
  const limit = TARGET_SHARE * window;
  return {
    section: "Idle cost",
    name,
    value: usedMs,
    unit: "ms",
    floor: null,
    floorName: "",
    ratio: null,
    target: target ? `≤ ${Math.round(limit)} ms (0.3 % of a core)` : "",
    pass: target ? usedMs <= limit : null,
  };
}

export const idle: BenchModule = {
  title: "Idle cost",
  method: (options) =>
    `CPU time (user + system, /proc/PID/stat, 10 ms ticks) over ${windowMs(options) / 1000} s ` +
    `of processes with nothing to do, after a 2 s settle: one idle worker (\`worker start\`: ` +
    `the supervisor and its worker), eight idle workers (\`worker start --count 8\`), and ` +
    `\`queuectl wait\` on a pending job that no worker runs. Target: at most 0.3 % of one core ` +
    `each (${Math.round(TARGET_SHARE * windowMs(options))} ms in the window).`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const window = windowMs(options);
    const figures: Figure[] = [];
    const add = (f: Figure) => {
      printFigure(f);
      figures.push(f);
    };
    const dir = await tempDir("idle");
    const processes: Background[] = [];
    try {
      // One worker.
      const one = `${dir.path}/one.db`;
      await createQueueDb(one);
      const reader1 = new Reader(one);
      try {
        const workers = startWorkers(one, 1, dir.path);
        processes.push(workers);
        await waitIdle(reader1, workers, 1, 2000);
        const [worker] = workerPids(reader1);
        const [supervisor, used] = await cpuOver([workers.pid, worker!], window);
        add(figure("one idle worker", used!, window, true));
        add(figure("context: its supervisor", supervisor!, window, false));
        await workers.stop();
      } finally {
        reader1.close();
      }

      // Eight workers.
      const eight = `${dir.path}/eight.db`;
      await createQueueDb(eight);
      const reader8 = new Reader(eight);
      try {
        const workers = startWorkers(eight, 8, dir.path);
        processes.push(workers);
        await waitIdle(reader8, workers, 8, 2000);
        const used = await cpuOver(workerPids(reader8), window);
        const total = used.reduce((a, b) => a + b, 0);
        add(figure("eight idle workers, the busiest of them", Math.max(...used), window, true));
        add(figure("context: eight idle workers, in all", total, window, false));
        await workers.stop();
      } finally {
        reader8.close();
      }

      // wait on a job nobody runs.
      const waitDb = `${dir.path}/wait.db`;
      await createQueueDb(waitDb);
      const id = (await queuectl(waitDb, ["enqueue", "-c", "true"])).stdout.trim();
      const waiter = new Background(
        DENO,
        ["run", "-A", "--quiet", MAIN, "--db", waitDb, "wait", id],
        `${dir.path}/wait.log`,
      );
      processes.push(waiter);
      await sleep(2000);
      if (waiter.exited) throw new Error(`wait exited: ${waiter.logTail()}`);
      const [used] = await cpuOver([waiter.pid], window);
      add(figure("idle `wait` on a pending job", used!, window, true));
      return figures;
    } finally {
      await stopAll(processes);
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(idle);
