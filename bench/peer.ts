/**
 * Against the fastest peer: task-spooler (Debian's `task-spooler`, the `tsp` C server) with two
 * slots, side by side with queuectl's default workers, on the same 900 queued `true` jobs.
 *
 * Both are measured the same way: the jobs are queued first, held back, then released, and the
 * time runs from the release to the last finish. tsp holds them behind a job that takes both
 * slots (`-N 2`) and waits on a FIFO; the release is the write to the FIFO and the end is when
 * `tsp -w` (wait for the last job) returns. queuectl holds them by a due time (`"delay"` in each
 * job, the workers already idle) and the times come from its database: from the jobs' run_at to
 * the last finished_at. Both keep the jobs' output (tsp in a file per job, queuectl in its
 * database). Rounds alternate which one goes first; the ratio (ours / tsp, rates) is the median of
 * the rounds' ratios.
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  createQueueDb,
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

const JOBS = 900;
const TARGET = 1.0;
/** How long queuectl's jobs are held: enough to store them and let the workers settle. */
const HOLD_MS = 1500;

function rounds(options: BenchOptions): number {
  return options.quick ? 1 : 3;
}

function tspPath(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/tsp`).isFile) return `${dir}/tsp`;
    } catch { /* not here */ }
  }
  return undefined;
}

async function run(program: string, args: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(program, { args, env, stdin: "null", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${program} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** task-spooler's time for JOBS released jobs with two slots, in ms. */
async function tspOnce(tsp: string, dir: string, round: number): Promise<number> {
  const home = `${dir}/tsp-${round}`;
  Deno.mkdirSync(home);
  const env = {
    TS_SOCKET: `${home}/socket`,
    TMPDIR: home,
    TS_MAXFINISHED: String(JOBS + 10),
  };
  const fifo = `${home}/release`;
  await run("mkfifo", [fifo], env);
  try {
    await run(tsp, ["-S", "2"], env);
    await run(tsp, ["-N", "2", "sh", "-c", `read x < ${fifo}`], env);
    for (let i = 0; i < JOBS - 1; i++) await run(tsp, ["true"], env);
    // The last job takes both slots, so it starts only once every other job has finished, and
    // `tsp -w` (which waits for the last job queued) returns when all are done.
    await run(tsp, ["-N", "2", "true"], env);
    const queued = (await run(tsp, ["-l"], env)).split("\n").filter((l) => / queued /.test(l));
    if (queued.length !== JOBS) throw new Error(`tsp: ${queued.length} of ${JOBS} jobs queued`);
    const t0 = performance.now();
    const writer = await Deno.open(fifo, { write: true });
    await writer.write(new TextEncoder().encode("go\n"));
    writer.close();
    await run(tsp, ["-w"], env);
    const ms = performance.now() - t0;
    const finished = (await run(tsp, ["-l"], env)).split("\n").filter((l) => / finished /.test(l));
    if (finished.length !== JOBS + 1) {
      throw new Error(`tsp: ${finished.length} of ${JOBS + 1} jobs finished`);
    }
    return ms;
  } finally {
    await run(tsp, ["-K"], env).catch(() => {});
  }
}

/** queuectl's time for JOBS released jobs with default workers, in ms (database times). */
async function oursOnce(dir: string, round: number): Promise<number> {
  const db = `${dir}/peer-${round}.db`;
  await createQueueDb(db);
  const reader = new Reader(db);
  let workers: Background | undefined;
  try {
    workers = startWorkers(db, 1, dir);
    await waitIdle(reader, workers, 1);
    const lines = Array.from({ length: JOBS }, () => `{"command":"true","delay":"${HOLD_MS}ms"}`);
    await queuectl(db, ["enqueue", "-"], {
      stdin: new TextEncoder().encode(lines.join("\n") + "\n"),
      stdout: "null",
    });
    const stored = reader.get("SELECT min(run_at) AS due, max(created_at) AS last FROM jobs");
    if (Number(stored.due) <= Date.now()) {
      throw new Error(`the jobs were due before they were all stored: raise HOLD_MS`);
    }
    await waitCompleted(reader, JOBS, workers, 120_000);
    const row = reader.get("SELECT min(run_at) AS t0, max(finished_at) AS t1 FROM jobs");
    return Number(row.t1) - Number(row.t0);
  } finally {
    await stopAll([workers]);
    reader.close();
  }
}

export const peer: BenchModule = {
  title: "Against task-spooler",
  method: (options) =>
    `${JOBS} queued \`true\` jobs, held, then released; time from the release to the last ` +
    `finish. task-spooler (Debian's \`tsp\`, ${"`tsp -S 2`"}): held behind a job that takes ` +
    `both slots and waits on a FIFO, released by writing to it, ended when \`tsp -w\` returns ` +
    `for the last job (which takes both slots too, so it runs after all the others). ` +
    `queuectl with default workers (\`worker start\`: one process, a slot per core), idle ` +
    `before the jobs arrive: held by a due time ${HOLD_MS} ms after their insert, timed from ` +
    `the jobs' run_at to the last finished_at in the database. Both keep every job's output. ` +
    `${rounds(options)} round(s), alternating which goes first; ratio = our rate / tsp's, the ` +
    `median of the rounds' ratios.`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const tsp = tspPath();
    if (tsp === undefined) {
      throw new Error(
        "tsp not found: install Debian's task-spooler (apt-get install task-spooler)",
      );
    }
    const dir = await tempDir("peer");
    try {
      const ours: number[] = [];
      const theirs: number[] = [];
      const ratios: number[] = [];
      for (let round = 0; round < rounds(options); round++) {
        let a: number, b: number;
        if (round % 2 === 0) {
          a = JOBS / (await oursOnce(dir.path, round) / 1000);
          b = JOBS / (await tspOnce(tsp, dir.path, round) / 1000);
        } else {
          b = JOBS / (await tspOnce(tsp, dir.path, round) / 1000);
          a = JOBS / (await oursOnce(dir.path, round) / 1000);
        }
        ours.push(a);
        theirs.push(b);
        ratios.push(a / b);
      }
      const ratio = median(ratios);
      const figure: Figure = {
        section: "Against task-spooler",
        name: `${JOBS} true jobs, default workers`,
        value: median(ours),
        unit: "jobs/s",
        floor: median(theirs),
        floorName: "tsp -S 2",
        ratio,
        target: `≥ ${TARGET}×`,
        pass: ratio >= TARGET,
      };
      printFigure(figure);
      return [figure];
    } finally {
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(peer);
