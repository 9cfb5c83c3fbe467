/**
 * Start-up: `queuectl status` and `queuectl enqueue -c true` against `deno run` of an empty file,
 * each a fresh process started from the repository root (so all see deno.json). The commands run
 * round-robin, in a rotating order, so that a drifting machine moves all of them alike; each figure
 * is the median over the rounds.
 *
 * Context rows, without targets, show where the time goes: the spawn itself (`/bin/true`), the
 * CLI's module graph without a database (`--version`), and node:sqlite opening the database and
 * reading the counts with no queuectl code at all.
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import {
  createQueueDb,
  DENO,
  median,
  printFigure,
  runProcess,
  standalone,
  tempDir,
} from "./_common.ts";

/** Issue 10: `status` ≤ 1.15×, `enqueue -c` ≤ 1.25× an empty `deno run`. */
const STATUS_TARGET = 1.15;
const ENQUEUE_TARGET = 1.25;

function rounds(options: BenchOptions): number {
  return options.quick ? 30 : 60;
}

export const startup: BenchModule = {
  title: "Start-up",
  method: (options) =>
    `Each command is a new process (\`deno run -A …\` from the repository root, stdout to ` +
    `/dev/null), timed from spawn to exit by the bench. ${rounds(options)} rounds (after 3 ` +
    `warm-up rounds); in each round every command runs once, in a rotating order. Figures are ` +
    `medians; ratio = command / empty file. Context rows have no target.`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("startup");
    try {
      const db = `${dir.path}/q.db`;
      await createQueueDb(db);
      // Job 1, for `show 1`.
      await runProcess(DENO, ["run", "-A", "main.ts", "--db", db, "enqueue", "-c", "true"], {
        stdout: "null",
      });
      const commands: { key: string; program: string; args: string[] }[] = [
        { key: "empty", program: DENO, args: ["run", "-A", "bench/empty.ts"] },
        { key: "status", program: DENO, args: ["run", "-A", "main.ts", "--db", db, "status"] },
        {
          key: "enqueue",
          program: DENO,
          args: ["run", "-A", "main.ts", "--db", db, "enqueue", "-c", "true"],
        },
        { key: "show", program: DENO, args: ["run", "-A", "main.ts", "--db", db, "show", "1"] },
        { key: "true", program: "/bin/true", args: [] },
        { key: "version", program: DENO, args: ["run", "-A", "main.ts", "--version"] },
        { key: "sqlite", program: DENO, args: ["run", "-A", "bench/_sqlite_open.ts", db] },
      ];
      const times = new Map<string, number[]>(commands.map((c) => [c.key, []]));
      const total = rounds(options);
      for (let round = -3; round < total; round++) {
        for (let i = 0; i < commands.length; i++) {
          const c = commands[(i + Math.max(round, 0)) % commands.length]!;
          const result = await runProcess(c.program, c.args, { stdout: "null" });
          if (result.code !== 0) {
            throw new Error(`${c.key} exited ${result.code}: ${result.stderr.slice(0, 500)}`);
          }
          if (round >= 0) times.get(c.key)!.push(result.ms);
        }
      }
      const m = (key: string) => median(times.get(key)!);
      const empty = m("empty");
      const figures: Figure[] = [];
      const add = (name: string, key: string, target: number | null) => {
        const value = m(key);
        const ratio = value / empty;
        const figure: Figure = {
          section: "Start-up",
          name,
          value,
          unit: "ms",
          floor: empty,
          floorName: "deno run empty.ts",
          ratio,
          target: target !== null ? `≤ ${target}×` : "",
          pass: target !== null ? ratio <= target : null,
        };
        figures.push(figure);
        printFigure(figure);
      };
      add("queuectl status", "status", STATUS_TARGET);
      add("queuectl enqueue -c true", "enqueue", ENQUEUE_TARGET);
      add("context: queuectl show 1", "show", null);
      add("context: queuectl --version (no database)", "version", null);
      add("context: node:sqlite open + read counts", "sqlite", null);
      add("context: spawn of /bin/true (bench overhead)", "true", null);
      return figures;
    } finally {
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(startup);
