// deno-lint-ignore-file no-console -- a benchmark's job is to print
/**
 * `deno task bench`: every measurement against its floor, measured in the same run, written to
 * bench/RESULTS.md with the machine's description. Exits 1 when any target is missed (or a
 * measurement could not run), so the bench is a check, not a report.
 *
 *   deno task bench                      full run (under 10 minutes), writes bench/RESULTS.md
 *   deno task bench --quick              short run for CI (about 2 minutes once the 1M database is
 *                                        cached); prints only, unless --out is given
 *   deno task bench --only=startup,scale some measurements; prints only, unless --out is given
 *   deno task bench --out=FILE           write the results to FILE
 *
 * RESULTS.md ends with hand-written notes (what the profiles of missed targets showed), after the
 * NOTES_MARKER line; a rewrite keeps them.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import { DENO, formatFloor, formatRatio, formatResult, formatValue, REPO } from "./_common.ts";
import { startup } from "./startup.ts";
import { enqueueBulk } from "./enqueue_bulk.ts";
import { drain } from "./drain.ts";
import { peer } from "./peer.ts";
import { pickup } from "./pickup.ts";
import { scale } from "./scale.ts";
import { resources } from "./resources.ts";
import { idle } from "./idle.ts";
import { dashboard } from "./dashboard.ts";
import { postgresBench } from "./postgres.ts";
import { queues } from "./queues.ts";

const MODULES: Record<string, BenchModule> = {
  startup,
  enqueue_bulk: enqueueBulk,
  drain,
  peer,
  pickup,
  scale,
  resources,
  idle,
  dashboard,
  postgres: postgresBench,
  queues,
};

const NOTES_MARKER = "<!-- notes: everything below is hand-written and kept by bench/main.ts -->";

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  return Deno.args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function git(args: string[]): string {
  try {
    const out = new Deno.Command("git", { args, cwd: REPO, stderr: "null" }).outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

function machine(): string[] {
  const cpu = readText("/proc/cpuinfo")?.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  const memKb = Number(readText("/proc/meminfo")?.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  const db = new DatabaseSync(":memory:");
  const sqlite = (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
  db.close();
  const commit = git(["rev-parse", "--short", "HEAD"]);
  const dirty = git(["status", "--porcelain", "--untracked-files=no"]) !== "";
  return [
    `- CPUs (nproc): ${navigator.hardwareConcurrency}; CPU: ${cpu}; memory: ` +
    `${(memKb / 1024 / 1024).toFixed(1)} GiB`,
    `- Kernel: ${Deno.build.os} ${Deno.osRelease()} (${Deno.build.arch})`,
    `- Deno ${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript}), ` +
    `SQLite ${sqlite} (node:sqlite)`,
    `- Code: ${commit || "unknown commit"}${dirty ? " with uncommitted changes" : ""}`,
  ];
}

function loadAverage(): string {
  return readText("/proc/loadavg")?.split(" ").slice(0, 3).join(" ") ?? "unknown";
}

function escapeCell(text: string): string {
  return text.replaceAll("|", "\\|");
}

function table(figures: readonly Figure[]): string[] {
  const lines = [
    "| figure | value | floor (same run) | ratio | target | result |",
    "| --- | ---: | ---: | ---: | --- | --- |",
  ];
  for (const f of figures) {
    lines.push(
      `| ${escapeCell(f.name)} | ${formatValue(f)} | ${escapeCell(formatFloor(f))} | ` +
        `${formatRatio(f)} | ${escapeCell(f.target || "—")} | ${formatResult(f)} |`,
    );
  }
  return lines;
}

function minutes(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

async function main(): Promise<number> {
  const options: BenchOptions = { quick: Deno.args.includes("--quick") };
  const only = flag("only")?.split(",").filter((s) => s !== "");
  for (const name of only ?? []) {
    if (!(name in MODULES)) {
      console.error(`Unknown measurement "${name}"; known: ${Object.keys(MODULES).join(", ")}`);
      return 2;
    }
  }
  const selected = Object.entries(MODULES).filter(([name]) => !only || only.includes(name));
  const out = flag("out") ??
    (options.quick || only ? undefined : `${REPO}/bench/RESULTS.md`);

  const started = new Date();
  const loadBefore = loadAverage();
  const t0 = performance.now();
  console.log(`queuectl bench (${options.quick ? "quick" : "full"}), ${started.toISOString()}`);
  for (const line of machine()) console.log(line);

  const sections: {
    module: BenchModule;
    figures: Figure[];
    error?: string;
    ms: number;
    load: string;
  }[] = [];
  for (const [, module] of selected) {
    const load = loadAverage();
    console.log(`\n== ${module.title} (load average ${load})`);
    const m0 = performance.now();
    try {
      const figures = await module.run(options);
      sections.push({ module, figures, ms: performance.now() - m0, load });
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`!! ${module.title} could not run: ${message}`);
      sections.push({
        module,
        figures: [],
        error: message.split("\n")[0]!,
        ms: performance.now() - m0,
        load,
      });
    }
    console.log(`   (${((performance.now() - m0) / 1000).toFixed(1)} s)`);
  }
  const elapsed = performance.now() - t0;
  const missed = sections.flatMap((s) => s.figures.filter((f) => f.pass === false));
  const broken = sections.filter((s) => s.error !== undefined);
  const passed = sections.flatMap((s) => s.figures.filter((f) => f.pass === true)).length;

  const summary = `${passed} targets met, ${missed.length} missed` +
    (broken.length ? `, ${broken.length} measurement(s) failed to run` : "");
  console.log(`\n${summary}; bench time ${minutes(elapsed)}; load average ${loadAverage()}`);

  if (out !== undefined) {
    const lines = [
      "# Benchmark results",
      "",
      `Written by \`deno task bench\`${options.quick ? " --quick" : ""} on ` +
      `${started.toISOString().replace("T", " ").slice(0, 16)} UTC. Bench time: ` +
      `${minutes(elapsed)}. Result: ${summary}.`,
      "",
      "Machine:",
      "",
      ...machine(),
      `- Load average (1, 5, 15 min) at start: ${loadBefore}; at end: ${loadAverage()} ` +
      `(the machine is shared; this is why every figure is a ratio to a floor measured in the ` +
      `same run)`,
      "",
      "Every figure is printed with the floor it is compared with, measured in the same run, and " +
      "the ratio its target is stated in. Rows marked *info* have no target: they are there to " +
      "show where the time goes.",
    ];
    for (const s of sections) {
      lines.push("", `## ${s.module.title}`, "", s.module.method(options), "");
      if (s.error !== undefined) lines.push(`**Could not run:** ${s.error}`);
      else lines.push(...table(s.figures));
      lines.push("", `(${(s.ms / 1000).toFixed(0)} s; load average when it started: ${s.load})`);
    }
    const previous = readText(out);
    const at = previous?.indexOf(NOTES_MARKER) ?? -1;
    const notes = at >= 0 ? previous!.slice(at) : `${NOTES_MARKER}\n\n## Notes\n\n(none yet)\n`;
    lines.push("", notes.trimEnd(), "");
    Deno.writeTextFileSync(out, lines.join("\n"));
    // As `deno fmt` would lay it out, so that `deno fmt --check` stays clean after a run.
    new Deno.Command(DENO, { args: ["fmt", "--quiet", out], cwd: REPO, stdout: "null" })
      .outputSync();
    console.log(`Results written to ${out}`);
  }
  return missed.length === 0 && broken.length === 0 ? 0 : 1;
}

Deno.exit(await main());
