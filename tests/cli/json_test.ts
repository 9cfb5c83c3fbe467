/**
 * --json across the command table: every command, with each flag that changes what it prints,
 * either prints exactly one JSON document on stdout or refuses --json with exit 2 and one line,
 * as its `noJson` entry in lib/cli/commands.ts says. A command missing from RUNS fails the test,
 * so a new command cannot ignore --json unnoticed.
 *
 * `metrics --watch --json` prints one document per line; tests/cli/metrics_test.ts runs it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { COMMANDS } from "../../lib/cli/commands.ts";
import type { CommandSpec } from "../../lib/cli/commands.ts";
import { FakeClock } from "../../lib/clock.ts";
import { runCli, runProcess } from "../helpers/cli.ts";
import type { CliResult } from "../helpers/cli.ts";
import { makeOneOfEach } from "../helpers/factory.ts";
import { moduleTempDir, openTestStore, T0, tempDir } from "../helpers/temp.ts";

interface Run {
  /** The command line after `--db PATH`; `--json` is added. */
  args: string[];
  stdin?: string;
  /** Exit code when --json is honoured (default 0). */
  code?: number;
  /** Runs as a real process: it may start workers, or would run for ever if --json were ignored. */
  process?: boolean;
}

const RUNS: Record<string, Run[]> = {
  "enqueue": [
    { args: ["enqueue", "-c", "true"] },
    { args: ["enqueue", '{"command":"true"}'] },
    { args: ["enqueue", "-"], stdin: '{"command":"a"}\n{"command":"b"}\n' },
    { args: ["enqueue", "-"], stdin: "" },
    // A finished job: --wait returns at once.
    { args: ["enqueue", "-c", "x", "--id", "c1", "--if-not-exists", "--wait"] },
  ],
  "list": [{ args: ["list"] }, { args: ["list", "--state", "dead", "--limit", "1"] }],
  "status": [{ args: ["status"] }],
  "show": [{ args: ["show", "c1"] }],
  "logs": [
    { args: ["logs", "c1"] },
    { args: ["logs", "c1", "--stdout"] },
    { args: ["logs", "c1", "--attempt", "1"] },
    { args: ["logs", "p1"] },
    { args: ["logs", "c1", "--follow"] },
    { args: ["logs", "c1", "--raw"] },
  ],
  "wait": [{ args: ["wait", "c1", "d1"], code: 1 }, { args: ["wait", "c1", "--timeout", "1s"] }],
  "worker start": [
    { args: ["worker", "start"], process: true },
    { args: ["worker", "start", "--count", "2", "--detach"], process: true },
  ],
  "worker stop": [{ args: ["worker", "stop"] }, { args: ["worker", "stop", "--force"] }],
  "worker list": [{ args: ["worker", "list"] }],
  "worker run": [
    { args: ["worker", "run"], process: true },
    { args: ["worker", "run", "--once"], process: true },
  ],
  "cancel": [
    { args: ["cancel", "p1", "f1", "r1", "--reason", "test"] },
    { args: ["cancel", "--state", "pending", "--all"] },
  ],
  "retry": [{ args: ["retry", "d1", "x1"] }, { args: ["retry", "c1", "--force"] }],
  "dlq list": [{ args: ["dlq", "list"] }],
  "dlq retry": [{ args: ["dlq", "retry", "d1"] }, { args: ["dlq", "retry", "--all"] }],
  "pause": [{ args: ["pause", "mail"] }, { args: ["pause"] }],
  "resume": [{ args: ["resume", "mail"] }, { args: ["resume"] }],
  "queue list": [{ args: ["queue", "list"] }],
  "queue set": [{ args: ["queue", "set", "mail", "--concurrency", "2"] }],
  "schedule add": [{ args: ["schedule", "add", "s", "--every", "1h", "-c", "true"] }],
  "schedule list": [{ args: ["schedule", "list"] }],
  "schedule pause": [{ args: ["schedule", "pause", "nightly"] }],
  "schedule resume": [{ args: ["schedule", "resume", "nightly"] }],
  "schedule remove": [{ args: ["schedule", "remove", "nightly"] }],
  "completions": [{ args: ["completions", "bash"] }],
  "metrics": [{ args: ["metrics"] }, { args: ["metrics", "--detailed", "--since", "1h"] }],
  "dashboard": [{ args: ["dashboard", "--port", "0"], process: true }],
  "prune": [{ args: ["prune", "--dry-run"] }, { args: ["prune", "--state", "dead"] }],
  "config get": [{ args: ["config", "get"] }, { args: ["config", "get", "max-retries"] }],
  "config set": [{ args: ["config", "set", "max-retries", "4"] }],
  "config unset": [{ args: ["config", "unset", "max-retries"] }],
};

/** Whether the table says --json is refused for these arguments. */
function refused(spec: CommandSpec, args: readonly string[]): boolean {
  const rule = spec.noJson;
  if (rule === undefined) return false;
  if (rule.with?.some((flag) => args.includes(`--${flag}`))) return true;
  if (rule.unless !== undefined) return !args.includes(`--${rule.unless}`);
  return rule.with === undefined;
}

// One job in every state (p1, r1, c1, f1, d1, x1) and a schedule (nightly), copied for each run.
const template = await moduleTempDir("queuectl-json-");
{
  const clock = new FakeClock(T0);
  const store = await openTestStore(template.db, clock);
  await makeOneOfEach(store, clock);
  await store.scheduleAdd({
    schedule: {
      name: "nightly",
      spec: { kind: "every", everyMs: 86_400_000 },
      template: '{"command":"true","cwd":"/"}',
      anchor: T0,
      nextAt: T0 + 86_400_000,
    },
  });
  store.close();
}

/** What is wrong with a result (empty when it is as the table says). */
function problems(expectRefusal: boolean, run: Run, result: CliResult): string[] {
  const out: string[] = [];
  if (expectRefusal) {
    if (result.code !== 2) out.push(`exit ${result.code}, expected 2 (refused)`);
    if (result.stdout !== "") out.push(`stdout not empty: ${JSON.stringify(result.stdout)}`);
    if (!/^queuectl: [^\n]*--json[^\n]*\n$/.test(result.stderr)) {
      out.push(`not one line naming --json: ${JSON.stringify(result.stderr)}`);
    }
    return out;
  }
  if (result.code !== (run.code ?? 0)) {
    out.push(`exit ${result.code}, expected ${run.code ?? 0}: ${result.stderr}`);
  }
  if (!result.stdout.endsWith("\n") || result.stdout.indexOf("\n") !== result.stdout.length - 1) {
    out.push(`stdout is not one line: ${JSON.stringify(result.stdout)}`);
  }
  try {
    const value: unknown = JSON.parse(result.stdout);
    if (value === null || typeof value !== "object") out.push(`not an object or array: ${value}`);
  } catch {
    out.push(`stdout is not JSON: ${JSON.stringify(result.stdout.slice(0, 200))}`);
  }
  return out;
}

/** A real process, killed (and so failed) if it outlives `ms`. */
async function bounded(args: string[], ms: number): Promise<CliResult> {
  const child = runProcess(args);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<CliResult>((resolve) => {
    timer = setTimeout(() => resolve({ code: -1, stdout: "", stderr: "still running" }), ms);
  });
  try {
    return await Promise.race([child, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("every command is in the --json walk", () => {
  assert.deepEqual(
    COMMANDS.map((c) => c.name).filter((name) => RUNS[name] === undefined),
    [],
    "add the new commands to RUNS",
  );
  assert.deepEqual(Object.keys(RUNS).filter((name) => !COMMANDS.some((c) => c.name === name)), []);
});

for (const spec of COMMANDS) {
  Deno.test(`${spec.name} --json prints one JSON document, or refuses with exit 2`, async (t) => {
    for (const run of RUNS[spec.name] ?? []) {
      const expectRefusal = refused(spec, run.args);
      await t.step(`${run.args.join(" ")} --json${expectRefusal ? " (refused)" : ""}`, async () => {
        await using dir = await tempDir("queuectl-json-run-");
        await Deno.copyFile(template.db, dir.db);
        const args = ["--db", dir.db, ...run.args, "--json"];
        let result: CliResult;
        try {
          result = run.process ? await bounded(args, 20_000) : await runCli(args, {
            cwd: dir.path,
            ...(run.stdin !== undefined ? { stdin: run.stdin } : {}),
          });
        } finally {
          // Whatever this run started, stop it.
          if (run.process) await runProcess(["--db", dir.db, "worker", "stop", "--force"]);
        }
        const found = problems(expectRefusal, run, result);
        assert.deepEqual(found, [], found.join("\n"));
      });
    }
  });
}
