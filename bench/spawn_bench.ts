// deno-lint-ignore-file no-console -- a benchmark's job is to print
/**
 * Spawn throughput of `sh -c true`: each spawn waits for exit and for EOF on
 * both pipes. Compares bare `Deno.Command` (the floor, no process group),
 * ways to give the job its own group, and concurrency 2 and 4.
 *
 * Run: deno run -A bench/spawn_bench.ts [--n=300] [--rounds=5]
 *
 * Candidates run interleaved, in a rotating order, once per round; the table
 * shows each one's median rate over the rounds, which tames a noisy machine.
 */

import { openLibc } from "../lib/worker/_libc.ts";
import { DenoSpawner } from "../lib/worker/_spawn_deno.ts";
import { type PosixGroupMode, PosixSpawner } from "../lib/worker/_spawn_posix.ts";
import type { Spawner } from "../lib/worker/spawn.ts";

const args = Object.fromEntries(
  Deno.args.map((arg) => arg.replace(/^--/, "").split("=") as [string, string]),
);
const N = Number(args.n ?? 300);
const ROUNDS = Number(args.rounds ?? 5);
const WARMUP = 30;
const ENV = Deno.env.toObject();

/** One spawn, awaited until exit and EOF on both pipes. */
type SpawnOnce = () => Promise<void>;

async function drain(stream: ReadableStream<Uint8Array>): Promise<void> {
  for await (const _ of stream) { /* discard */ }
}

function command(program: string, args: string[], detached: boolean): SpawnOnce {
  return async () => {
    const child = new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached,
    }).spawn();
    await Promise.all([child.status, drain(child.stdout), drain(child.stderr)]);
  };
}

function ours(spawner: Spawner): SpawnOnce {
  const ignore = () => {};
  return async () => {
    const job = spawner.spawn({
      command: "true",
      cwd: Deno.cwd(),
      env: ENV,
      onStdout: ignore,
      onStderr: ignore,
    });
    await Promise.all([job.exited, job.outputDone]);
  };
}

function posix(group: PosixGroupMode): Spawner {
  const libc = openLibc();
  if (libc instanceof Error) throw libc;
  return new PosixSpawner(libc, { group });
}

interface Candidate {
  name: string;
  concurrency: number;
  once: SpawnOnce;
  rates: number[];
}

const plain = command("sh", ["-c", "true"], false);
const setsid = ours(posix("setsid"));
const candidates: Candidate[] = [
  { name: "Deno.Command plain (floor, no group)", concurrency: 1, once: plain },
  {
    name: "Deno.Command detached: true",
    concurrency: 1,
    once: command("sh", ["-c", "true"], true),
  },
  {
    name: "Deno.Command setsid wrapper",
    concurrency: 1,
    once: command("setsid", ["sh", "-c", "true"], false),
  },
  { name: "ours deno-detached (fallback)", concurrency: 1, once: ours(new DenoSpawner()) },
  { name: "ours posix_spawn SETPGROUP", concurrency: 1, once: ours(posix("setpgroup")) },
  { name: "ours posix_spawn SETSID (chosen)", concurrency: 1, once: setsid },
  { name: "Deno.Command plain, concurrency 2", concurrency: 2, once: plain },
  { name: "ours posix_spawn SETSID, concurrency 2", concurrency: 2, once: setsid },
  { name: "Deno.Command plain, concurrency 4", concurrency: 4, once: plain },
  { name: "ours posix_spawn SETSID, concurrency 4", concurrency: 4, once: setsid },
].map((c) => ({ ...c, rates: [] }));

/** Runs `total` spawns over `concurrency` lanes; returns spawns per second. */
async function measure(candidate: Candidate, total: number): Promise<number> {
  let started = 0;
  const lane = async () => {
    while (started < total) {
      started++;
      await candidate.once();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: candidate.concurrency }, lane));
  return total / ((performance.now() - t0) / 1000);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

for (const candidate of candidates) await measure(candidate, WARMUP);
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[(i + round) % candidates.length]!;
    candidate.rates.push(await measure(candidate, N));
  }
}

const floor = new Map<number, number>();
for (const c of candidates) {
  if (c.name.startsWith("Deno.Command plain")) floor.set(c.concurrency, median(c.rates));
}
console.log(
  `sh -c true, N=${N} per run, ${ROUNDS} rounds, median (min-max) spawns/s; ` +
    `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs`,
);
console.log(
  `${"candidate".padEnd(42)} ${"spawns/s".padStart(9)} ${"range".padStart(11)}  vs plain`,
);
for (const c of candidates) {
  const rate = median(c.rates);
  const range = `${Math.min(...c.rates).toFixed(0)}-${Math.max(...c.rates).toFixed(0)}`;
  const ratio = rate / floor.get(c.concurrency)!;
  console.log(
    `${c.name.padEnd(42)} ${rate.toFixed(0).padStart(9)} ${range.padStart(11)}  ${
      ratio.toFixed(2)
    }x`,
  );
}
