// deno-lint-ignore-file no-console -- a benchmark's job is to print
/**
 * Scale: what a big queue costs.
 *
 * - Claim cost: `jobClaim` + `jobFinish` through the store API (`openSqliteStore` as a worker
 *   opens it), in this process, on a database with 1,000 pending jobs and on one with 1,000,000
 *   (100,000 of them scheduled for later at priority 10, so they sit ahead of every due job in the
 *   ready index), each also holding as many finished jobs. Interleaved blocks; medians.
 * - CLI wall time of `status`, `list --limit 20` (also by several states, and a page back with
 *   `--before`), `list --state pending --limit 20` and `metrics` on the big database, with the
 *   same commands on the small one as their floor.
 *
 * The big database is built once and cached (see _bigdb.ts); the bench works on a copy.
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import { DENO, median, printFigure, runProcess, standalone, tempDir } from "./_common.ts";
import { BIG, buildDb, cachedDb, describeShape, SMALL } from "./_bigdb.ts";
import { openSqliteStore } from "../lib/store/sqlite/open.ts";
import type { SqliteStore } from "../lib/store/sqlite/store.ts";
import { systemClock } from "../lib/clock.ts";
import { decide } from "../lib/job/outcome.ts";

const CLAIM_TARGET = 1.5;
const CLI_TARGET_MS = 250;

function claims(options: BenchOptions): { blocks: number; perBlock: number } {
  return options.quick ? { blocks: 4, perBlock: 50 } : { blocks: 8, perBlock: 50 };
}

function cliRounds(options: BenchOptions): number {
  return options.quick ? 5 : 11;
}

interface ClaimTimes {
  pair: number[];
  claim: number[];
}

async function openWorkerStore(path: string): Promise<SqliteStore> {
  const store = await openSqliteStore(path, {
    synchronous: "NORMAL",
    busyTimeoutMs: 100,
    clock: systemClock(),
  });
  await store.workerRegister({
    worker: {
      id: "w-bench",
      pid: Deno.pid,
      host: "bench",
      hostId: "bench",
      pidStart: null,
      supervisorPid: null,
    },
  });
  return store;
}

/** `n` claim + finish pairs; times in microseconds. */
async function claimBlock(store: SqliteStore, n: number, times: ClaimTimes): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const now = Date.now();
    const [job] = await store.jobClaim({
      workerId: "w-bench",
      host: "bench",
      leaseMs: 30_000,
      limit: 1,
    });
    const t1 = performance.now();
    if (!job) throw new Error("no job to claim");
    if (job.runAt > now || job.priority === 10) {
      throw new Error(`claimed job ${job.id} is not due (run_at ${job.runAt}, now ${now})`);
    }
    const applied = await store.jobFinish({
      jobId: job.id,
      attempt: job.attempts,
      workerId: "w-bench",
      decision: decide(job, { kind: "exited", code: 0 }, { base: 2, maxMs: 3_600_000 }),
      output: {
        stdout: { head: new Uint8Array(0), tail: new Uint8Array(0), total: 0 },
        stderr: { head: new Uint8Array(0), tail: new Uint8Array(0), total: 0 },
      },
    });
    const t2 = performance.now();
    if (!applied) throw new Error(`finish of ${job.id} was not applied`);
    times.claim.push((t1 - t0) * 1000);
    times.pair.push((t2 - t0) * 1000);
  }
}

/** `target`: whether the 250 ms budget is a target for it, or the figure is context. */
const CLI_COMMANDS: { name: string; args: string[]; target: boolean }[] = [
  { name: "status", args: ["status"], target: true },
  { name: "list --limit 20", args: ["list", "--limit", "20"], target: true },
  {
    name: "list --state pending --limit 20",
    args: ["list", "--state", "pending", "--limit", "20"],
    target: false,
  },
  {
    name: "list --state pending,dead --limit 20",
    args: ["list", "--state", "pending,dead", "--limit", "20"],
    target: false,
  },
  {
    name: "list --limit 20 --before 1500",
    args: ["list", "--limit", "20", "--before", "1500"],
    target: false,
  },
  { name: "metrics", args: ["metrics"], target: true },
];

export const scale: BenchModule = {
  title: "Scale",
  method: (options) => {
    const c = claims(options);
    return `Small database: ${describeShape(SMALL)}. Big database: ${describeShape(BIG)} ` +
      `(built with raw node:sqlite inserts into queuectl's schema, job_counts and stats_minute ` +
      `filled in to match; cached for 12 h; the bench works on a copy). Claim cost: ` +
      `\`jobClaim\` + \`jobFinish\` (completed, as a worker writes it) through ` +
      `\`openSqliteStore\` in the bench process, ${c.blocks} blocks of ${c.perBlock} per ` +
      `database, alternating, after 20 warm-up claims each; median per pair; ratio = big / ` +
      `small. CLI: each command a new process, ${cliRounds(options)} rounds round-robin over ` +
      `both databases; median wall time; floor = the same command on the small database.`;
  },

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("scale");
    const stores: SqliteStore[] = [];
    try {
      const small = `${dir.path}/small.db`;
      await buildDb(small, SMALL, Date.now());
      const cached = await cachedDb(BIG, (line) => console.log(line));
      const big = `${dir.path}/big.db`;
      Deno.copyFileSync(cached, big);

      // Claim cost.
      const smallStore = await openWorkerStore(small);
      stores.push(smallStore);
      const bigStore = await openWorkerStore(big);
      stores.push(bigStore);
      const warm: ClaimTimes = { pair: [], claim: [] };
      await claimBlock(smallStore, 20, warm);
      await claimBlock(bigStore, 20, warm);
      const smallTimes: ClaimTimes = { pair: [], claim: [] };
      const bigTimes: ClaimTimes = { pair: [], claim: [] };
      const { blocks, perBlock } = claims(options);
      for (let b = 0; b < blocks; b++) {
        if (b % 2 === 0) {
          await claimBlock(smallStore, perBlock, smallTimes);
          await claimBlock(bigStore, perBlock, bigTimes);
        } else {
          await claimBlock(bigStore, perBlock, bigTimes);
          await claimBlock(smallStore, perBlock, smallTimes);
        }
      }
      await Promise.all(stores.map((store) => store.close()));
      stores.length = 0;

      const figures: Figure[] = [];
      const pairRatio = median(bigTimes.pair) / median(smallTimes.pair);
      const pair: Figure = {
        section: "Scale",
        name: "claim + finish, 1M pending (µs per job)",
        value: median(bigTimes.pair),
        unit: "µs",
        floor: median(smallTimes.pair),
        floorName: "1k pending",
        ratio: pairRatio,
        target: `≤ ${CLAIM_TARGET}×`,
        pass: pairRatio <= CLAIM_TARGET,
      };
      printFigure(pair);
      figures.push(pair);
      const claimOnly: Figure = {
        section: "Scale",
        name: "context: claim alone, 1M pending",
        value: median(bigTimes.claim),
        unit: "µs",
        floor: median(smallTimes.claim),
        floorName: "1k pending",
        ratio: median(bigTimes.claim) / median(smallTimes.claim),
        target: "",
        pass: null,
      };
      printFigure(claimOnly);
      figures.push(claimOnly);

      // CLI wall time.
      const runs: { key: string; db: string; args: string[] }[] = [];
      for (const c of CLI_COMMANDS) {
        runs.push({ key: `small ${c.name}`, db: small, args: c.args });
        runs.push({ key: `big ${c.name}`, db: big, args: c.args });
      }
      const times = new Map<string, number[]>(runs.map((r) => [r.key, []]));
      const rounds = cliRounds(options);
      for (let round = -1; round < rounds; round++) {
        for (let i = 0; i < runs.length; i++) {
          const r = runs[(i + Math.max(round, 0)) % runs.length]!;
          const result = await runProcess(
            DENO,
            ["run", "-A", "main.ts", "--db", r.db, ...r.args],
            { stdout: "null" },
          );
          if (result.code !== 0) {
            throw new Error(`${r.key} exited ${result.code}: ${result.stderr.slice(0, 500)}`);
          }
          if (round >= 0) times.get(r.key)!.push(result.ms);
        }
      }
      for (const c of CLI_COMMANDS) {
        const value = median(times.get(`big ${c.name}`)!);
        const floor = median(times.get(`small ${c.name}`)!);
        const figure: Figure = {
          section: "Scale",
          name: `${c.target ? "" : "context: "}${c.name} at 1M`,
          value,
          unit: "ms",
          floor,
          floorName: "same at 1k",
          ratio: value / floor,
          target: c.target ? `≤ ${CLI_TARGET_MS} ms` : "",
          pass: c.target ? value <= CLI_TARGET_MS : null,
        };
        printFigure(figure);
        figures.push(figure);
      }
      return figures;
    } finally {
      await Promise.all(stores.map((store) => store.close()));
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(scale);
