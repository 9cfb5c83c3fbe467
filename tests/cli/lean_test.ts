/**
 * The short start-up path (lib/cli/lean.ts): which command lines it takes, and that what it does
 * with them is exactly what the full CLI does.
 *
 * @module
 */

import assert from "node:assert/strict";
import { leanMain, leanParse } from "../../lib/cli/lean.ts";
import { main } from "../../lib/cli/main.ts";
import { MemoryIo } from "../../lib/cli/io.ts";
import { FakeClock } from "../../lib/clock.ts";
import { T0, tempDir } from "../helpers/temp.ts";

Deno.test("leanParse() takes the plain form of status, show and enqueue", () => {
  const taken: [string[], string][] = [
    [["status"], "status"],
    [["--db", "/q.db", "status", "--json"], "status"],
    [["--db=/q.db", "--json", "show", "42"], "show"],
    [["--debug", "show", "--db", "/q.db", "7"], "show"],
    [["enqueue", "-c", "true"], "enqueue"],
    [
      ["enqueue", "-c", "make test", "--priority", "8", "--timeout", "10m", "--env", "A=1"],
      "enqueue",
    ],
    [["enqueue", '{"command":"echo hi"}', "--wait"], "enqueue"],
    [["--db", "/q.db", "enqueue", "-"], "enqueue"],
  ];
  for (const [argv, name] of taken) assert.equal(leanParse(argv)?.spec.name, name, argv.join(" "));
  const args = leanParse(["--db", "/q.db", "enqueue", "-c", "true", "--priority", "8"])!.args;
  assert.equal(args.flags.get("db"), "/q.db");
  assert.equal(args.flags.get("command"), "true");
  assert.equal(args.flags.get("priority"), "8");
});

Deno.test("leanParse() leaves everything else to the full CLI", () => {
  const left: string[][] = [
    [],
    ["--version"],
    ["list"],
    ["worker", "start"],
    ["st"], // an alias: the full CLI says what it is
    ["add", "-c", "true"],
    ["status", "--help"],
    ["-h", "enqueue"],
    ["help", "status"],
    ["status", "--verbose"], // an unknown flag: the full CLI suggests one
    ["enqueue", "-c", "true", "--prio", "3"],
    ["enqueue", "-c"], // a missing value
    ["show"], // a missing argument
    ["show", "1", "2"],
    ["--db"],
    ["-x", "status"],
    ["--nope", "status"],
  ];
  for (const argv of left) assert.equal(leanParse(argv), undefined, argv.join(" "));
});

/** Runs `argv` on the short path and on the full CLI, each on its own copy of `db`. */
async function bothWays(dir: string, db: string, argv: string[], stdin = "") {
  const results = [];
  for (const [which, run] of [["lean", leanMain], ["full", main]] as const) {
    const copy = `${dir}/${which}.db`;
    for (const suffix of ["", "-wal", "-shm"]) {
      await Deno.remove(copy + suffix).catch(() => {});
      await Deno.copyFile(db + suffix, copy + suffix).catch(() => {});
    }
    const io = new MemoryIo({ stdin, env: { QUEUECTL_DB: copy, TZ: "UTC" }, cwd: dir });
    const code = (await run(argv, io, { clock: new FakeClock(T0 + 60_000) })) ?? -1;
    results.push({
      code,
      stdout: io.stdout.replaceAll(copy, "DB"),
      stderr: io.stderr.replaceAll(copy, "DB"),
    });
  }
  return results;
}

Deno.test("leanMain() prints and exits exactly as the full CLI does", async () => {
  await using dir = await tempDir();
  // A queue with a little of everything: jobs in several states, a scheduled one.
  const seed = new MemoryIo({ env: { QUEUECTL_DB: dir.db }, cwd: dir.path });
  const clock = new FakeClock(T0);
  for (
    const argv of [
      ["enqueue", "-c", "echo one", "--id", "one"],
      ["enqueue", "-c", "echo two", "--priority", "9"],
      ["enqueue", "-c", "later", "--delay", "1h"],
    ]
  ) assert.equal(await main(argv, seed, { clock }), 0, seed.stderr);
  const cases: { argv: string[]; stdin?: string }[] = [
    { argv: ["status"] },
    { argv: ["status", "--json"] },
    { argv: ["show", "one"] },
    { argv: ["show", "one", "--json"] },
    { argv: ["show", "missing"] }, // exit 4 and its message
    { argv: ["show", "bad id!"] }, // exit 2
    { argv: ["enqueue", "-c", "true"] },
    { argv: ["enqueue", "-c", "true", "--json", "--priority", "3", "--env", "A=1"] },
    { argv: ["enqueue", "-c", "true", "--id", "one"] }, // exit 3, the id is taken
    { argv: ["enqueue", "-c", "true", "--delay", "soon"] }, // exit 2, a bad duration
    { argv: ["enqueue", '{"command":"x","prio":1}'] }, // exit 2, with a suggestion
    { argv: ["enqueue", "-"], stdin: '{"command":"a"}\n{"command":"b","id":"one"}\n' },
    { argv: ["enqueue", "-"], stdin: '{"command":"a"}\n{"command":"b"}\n' },
  ];
  const codes = new Set<number>();
  for (const { argv, stdin } of cases) {
    assert.ok(leanParse(argv) !== undefined, `not on the short path: ${argv.join(" ")}`);
    const [lean, full] = await bothWays(dir.path, dir.db, argv, stdin);
    assert.deepEqual(lean, full, argv.join(" "));
    codes.add(full!.code);
  }
  // The cases reach success and each kind of refusal.
  assert.deepEqual([...codes].sort(), [0, 2, 3, 4]);
});
