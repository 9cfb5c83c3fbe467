/**
 * What a command loads when it starts. Every command is a new process, so a module in the start-up
 * graph is paid for by every call (docs/startup.md); these tests keep modules that only some paths
 * run out of it. Times are the benchmark's business (bench/startup.ts); this checks the graph.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runDeno } from "../helpers/cli.ts";

const ROOT = new URL("../../", import.meta.url);

interface InfoModule {
  specifier: string;
  dependencies?: { specifier: string; code?: { specifier: string } }[];
}

/** The modules Deno loads before `entry` runs: its static imports and literal `import()`s. */
async function startupGraph(entry: string): Promise<string[]> {
  const result = await runDeno(["info", "--json", new URL(entry, ROOT).pathname]);
  assert.equal(result.code, 0, result.stderr);
  const modules = new Map<string, InfoModule>();
  for (const m of (JSON.parse(result.stdout) as { modules: InfoModule[] }).modules) {
    modules.set(m.specifier, m);
  }
  const root = new URL(entry, ROOT).href;
  const seen = new Set<string>([root]);
  const todo = [root];
  while (todo.length > 0) {
    for (const dep of modules.get(todo.pop()!)?.dependencies ?? []) {
      const code = dep.code?.specifier;
      if (code !== undefined && !seen.has(code)) {
        seen.add(code);
        todo.push(code);
      }
    }
  }
  return [...seen].map((s) => s.startsWith(ROOT.href) ? s.slice(ROOT.href.length) : s).sort();
}

/** Modules no CLI start-up needs: each is loaded by the command or the moment that uses it. */
const NEVER_AT_START = [
  /^lib\/worker\/(worker|executor|attempt|lease|progress|rescuer|housekeeping|supervisor|stop)\.ts$/,
  /^lib\/worker\/_(spawn_posix|spawn_deno|libc)\.ts$/,
  /^lib\/store\/sqlite\/migrations\.ts$/,
  // croner, and the scheduler that fires schedules: only `schedule` and workers load them.
  /^lib\/schedule\/cron\.ts$/,
  /^lib\/worker\/scheduler\.ts$/,
  /^lib\/(config|suggest|time_parse)\.ts$/,
  /^lib\/cli\/(help|render)\.ts$/,
  // The full CLI: status, show and enqueue start without it (lib/cli/lean.ts).
  /^lib\/cli\/(main|commands|hints)\.ts$/,
  /^lib\/cli\/commands\//,
  /^lib\/web\//,
  /^npm:/,
];

Deno.test("main.ts starts without the full CLI, the worker, migrations, help, commands or npm packages", async () => {
  const graph = await startupGraph("main.ts");
  const loaded = graph.filter((m) => NEVER_AT_START.some((re) => re.test(m)));
  assert.deepEqual(loaded, [], `in main.ts's start-up graph: ${loaded.join(", ")}`);
  // node:sqlite costs ~2.5 ms: only commands that open the queue load it.
  assert.ok(!graph.includes("node:sqlite"), "node:sqlite is loaded at start-up");
});

Deno.test("opening the queue loads no worker, migrations, help or npm package", async () => {
  for (const entry of ["lib/queue.ts", "lib/store/open.ts"]) {
    const graph = await startupGraph(entry);
    const loaded = graph.filter((m) => NEVER_AT_START.some((re) => re.test(m)));
    assert.deepEqual(loaded, [], `in ${entry}'s graph: ${loaded.join(", ")}`);
  }
});

Deno.test("status, enqueue and schedule do not load croner: only a cron schedule's times do", async () => {
  for (
    const entry of [
      "lib/cli/commands/status.ts",
      "lib/cli/commands/enqueue.ts",
      "lib/cli/commands/schedule.ts",
      "lib/worker/worker.ts",
    ]
  ) {
    const graph = await startupGraph(entry);
    const croner = graph.filter((m) => m.startsWith("npm:") || m === "lib/schedule/cron.ts");
    assert.deepEqual(croner, [], `in ${entry}'s graph: ${croner.join(", ")}`);
  }
  // ... and the one module that does load it names it, pinned.
  const cron = await startupGraph("lib/schedule/cron.ts");
  assert.ok(cron.some((m) => /^npm:\/?croner@\d+\.\d+\.\d+/.test(m)), cron.join(", "));
});

/** `import("./x.ts")` with a literal, outside a type position (`typeof import(...)`). */
const LITERAL_IMPORT = /(?<!typeof )\bimport\(\s*["'`]/;
/** `lazy<typeof import("A")>(import.meta.url, "B")`: A and B. */
const LAZY_CALL = /lazy<typeof import\("([^"]+)"\)>\(\s*import\.meta\.url,\s*"([^"]+)",?\s*\)/g;

async function* sources(dir: URL): AsyncGenerator<{ path: string; text: string }> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* sources(url);
    else if (entry.name.endsWith(".ts")) {
      yield { path: url.href.slice(ROOT.href.length), text: await Deno.readTextFile(url) };
    }
  }
}

Deno.test("lib/ imports modules it may not need by lazy(), naming the same module as its type", async () => {
  const literal: string[] = [];
  const mismatched: string[] = [];
  let lazyCalls = 0;
  for await (const { path, text } of sources(new URL("lib/", ROOT))) {
    text.split("\n").forEach((line, i) => {
      if (LITERAL_IMPORT.test(line) && !line.trimStart().startsWith("*")) {
        literal.push(`${path}:${i + 1}`);
      }
    });
    for (const [, typePath, path2] of text.matchAll(LAZY_CALL)) {
      lazyCalls++;
      if (typePath !== path2) mismatched.push(`${path}: ${typePath} vs ${path2}`);
    }
  }
  assert.deepEqual(literal, [], "literal import() (Deno loads it at start-up): use lazy()");
  assert.deepEqual(mismatched, []);
  assert.ok(lazyCalls > 10, `found only ${lazyCalls} lazy() calls: is LAZY_CALL still right?`);
});
