/**
 * queuectl as real processes: exit codes, stdout and stderr as a shell sees them, the database
 * location rules, stdin from a pipe, colour only on a terminal, and exit 5 on a held lock.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { MAIN, runProcess } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

Deno.test("a real process enqueues from a pipe, lists and reports status as JSON", async () => {
  await using dir = await tempDir();
  const db = ["--db", dir.db];
  const enqueue = await runProcess([...db, "enqueue", "-"], {
    stdin: '{"command":"echo a","id":"a"}\n{"command":"echo b","priority":9}\n',
  });
  assert.deepEqual(enqueue, { code: 0, stdout: "a\n2\n", stderr: "" });
  const status = await runProcess([...db, "status", "--json"]);
  assert.equal(status.code, 0);
  assert.equal(
    status.stdout,
    '{"counts":{"pending":2,"processing":0,"completed":0,"failed":0,"dead":0,"cancelled":0,"total":2,' +
      '"scheduled":0},"workers":[],"next_scheduled_at":null,"paused_queues":[],"paused_all":false}\n',
  );
  const list = JSON.parse((await runProcess([...db, "list", "--json"])).stdout);
  assert.deepEqual(
    list.map((j: { id: string; priority: number; cwd: string }) => [j.id, j.priority]),
    [["a", 5], ["2", 9]],
  );
});

Deno.test("a real process exits with the documented codes and one stderr line", async () => {
  await using dir = await tempDir();
  const db = ["--db", dir.db];
  await runProcess([...db, "enqueue", "-c", "true", "--id", "j"]);
  const cases: [string[], number, RegExp][] = [
    [[...db, "status"], 0, /^$/],
    [[...db, "enqueue", "{"], 2, /^queuectl: job: is not valid JSON/],
    [[...db, "enqueue", "-c", "x", "--id", "j"], 3, /^queuectl: Job "j" already exists/],
    [[...db, "show", "nope"], 4, /^queuectl: Job "nope" not found/],
    [["--db", dir.path, "status"], 6, /^queuectl: Database path is a directory/],
  ];
  for (const [args, code, stderr] of cases) {
    const result = await runProcess(args);
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, stderr);
    if (code !== 0) {
      assert.equal(result.stdout, "");
      assert.equal(result.stderr.split("\n").length, 2, result.stderr);
    }
  }
});

Deno.test("--debug adds a stack trace to an error; without it there is none", async () => {
  await using dir = await tempDir();
  const plain = await runProcess(["--db", dir.path, "status"]);
  assert.doesNotMatch(plain.stderr, /^\s+at /m);
  const debug = await runProcess(["--db", dir.path, "status", "--debug"]);
  assert.equal(debug.code, 6);
  assert.match(debug.stderr, /^queuectl: Database path is a directory/);
  assert.match(debug.stderr, /^\s+at .*lib\/store\/.*\.ts/m);
});

Deno.test("the database is --db, else QUEUECTL_DB, else $XDG_DATA_HOME/queuectl, else ~/.local/share", async () => {
  await using dir = await tempDir();
  const env = {
    QUEUECTL_DB: `${dir.path}/env.db`,
    XDG_DATA_HOME: `${dir.path}/xdg`,
    HOME: `${dir.path}/home`,
  };
  await runProcess(["--db", `${dir.path}/flag.db`, "enqueue", "-c", "flag"], { env });
  await runProcess(["enqueue", "-c", "env"], { env });
  await runProcess(["enqueue", "-c", "xdg"], { env: { ...env, QUEUECTL_DB: undefined } });
  await runProcess(["enqueue", "-c", "home"], {
    env: { ...env, QUEUECTL_DB: undefined, XDG_DATA_HOME: undefined },
  });
  // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
  await runProcess(["enqueue", "-c", "relative-xdg"], {
    env: { ...env, QUEUECTL_DB: undefined, XDG_DATA_HOME: "relative" },
    cwd: dir.path,
  });
  // A relative --db is resolved against the working directory.
  await Deno.mkdir(`${dir.path}/cwd`);
  await runProcess(["--db", "rel.db", "enqueue", "-c", "relative"], { cwd: `${dir.path}/cwd` });
  const commands = async (path: string) => {
    const result = await runProcess(["--db", path, "list", "--json"]);
    return JSON.parse(result.stdout).map((j: { command: string }) => j.command);
  };
  assert.deepEqual(await commands(`${dir.path}/flag.db`), ["flag"]);
  assert.deepEqual(await commands(`${dir.path}/env.db`), ["env"]);
  assert.deepEqual(await commands(`${dir.path}/xdg/queuectl/queuectl.db`), ["xdg"]);
  assert.deepEqual(await commands(`${dir.path}/home/.local/share/queuectl/queuectl.db`), [
    "home",
    "relative-xdg",
  ]);
  assert.deepEqual(await commands(`${dir.path}/cwd/rel.db`), ["relative"]);
  assert.equal(
    ((await Deno.stat(`${dir.path}/home/.local/share/queuectl`)).mode! & 0o777).toString(8),
    "700",
  );
});

/** Runs queuectl on a pseudo-terminal through script(1), so stdout is a terminal. */
async function onTerminal(args: string[], env: Record<string, string>): Promise<string> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = [Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args].map(quote).join(" ");
  const { stdout } = await new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      ...env,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(stdout);
}

const HAS_SCRIPT =
  (await new Deno.Command("script", { args: ["--version"] }).output().catch(() => ({ code: 1 })))
    .code === 0;

Deno.test({
  name: "colour appears only on a terminal, and never with NO_COLOR",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using dir = await tempDir();
    const cache = Deno.env.get("DENO_DIR");
    const env: Record<string, string> = cache ? { DENO_DIR: cache } : {};
    const args = ["--db", dir.db, "status"];
    const terminal = await onTerminal(args, env);
    assert.ok(terminal.includes("\x1b[1mJob Queue Status\x1b[0m"), JSON.stringify(terminal));
    const noColor = await onTerminal(args, { ...env, NO_COLOR: "1" });
    assert.match(noColor, /Job Queue Status/);
    assert.ok(!noColor.includes("\x1b["), JSON.stringify(noColor));
    const piped = await runProcess(args, { env: { NO_COLOR: undefined } });
    assert.ok(!piped.stdout.includes("\x1b["), "colour on a pipe");
  },
});

Deno.test("a write exits 5 when another process holds the lock past the busy timeout", async () => {
  await using dir = await tempDir();
  await runProcess(["--db", dir.db, "enqueue", "-c", "x", "--id", "first"]);
  const holder = new DatabaseSync(dir.db);
  try {
    holder.exec("BEGIN EXCLUSIVE");
    const started = Date.now();
    const result = await runProcess(["--db", dir.db, "enqueue", "-c", "y", "--id", "second"]);
    const waited = Date.now() - started;
    assert.equal(result.code, 5, result.stderr);
    assert.match(
      result.stderr,
      /^queuectl: Database is busy: .*queue\.db: another process held its lock too long/,
    );
    assert.equal(result.stderr.split("\n").length, 2);
    assert.ok(waited >= 4500, `gave up after ${waited} ms, before the 5 s busy timeout`);
    holder.exec("ROLLBACK");
  } finally {
    holder.close();
  }
  const list = JSON.parse((await runProcess(["--db", dir.db, "list", "--json"])).stdout);
  assert.deepEqual(list.map((j: { id: string }) => j.id), ["first"]);
});

Deno.test("processes that create the same new database at once all succeed", async () => {
  await using dir = await tempDir();
  const results = await Promise.all(
    [0, 1, 2, 3, 4, 5].map((i) => runProcess(["--db", dir.db, "enqueue", "-c", `echo ${i}`])),
  );
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const ids = results.map((r) => r.stdout.trim()).sort((a, b) => Number(a) - Number(b));
  assert.deepEqual(ids, ["1", "2", "3", "4", "5", "6"]);
  // The losers of the creation race left no temporary files behind. (SQLite's own -wal and -shm
  // may outlive processes that close at the same moment: each saw the other's connection.)
  const names = [];
  for await (const entry of Deno.readDir(dir.path)) {
    if (!/^queue\.db-(wal|shm)$/.test(entry.name)) names.push(entry.name);
  }
  assert.deepEqual(names, ["queue.db"]);
});

Deno.test("processes enqueuing the same id at once: one wins, the others exit 3", async () => {
  await using dir = await tempDir();
  await runProcess(["--db", dir.db, "status"]);
  const results = await Promise.all(
    [0, 1, 2, 3, 4, 5].map((i) =>
      runProcess(["--db", dir.db, "enqueue", "-c", `echo ${i}`, "--id", "same"])
    ),
  );
  const winners = results.filter((r) => r.code === 0);
  assert.equal(winners.length, 1, JSON.stringify(results));
  assert.equal(results.filter((r) => r.code === 3).length, 5);
  const [job] = JSON.parse((await runProcess(["--db", dir.db, "list", "--json"])).stdout);
  assert.equal(job.id, "same");
  assert.equal(
    job.command,
    `echo ${results.indexOf(winners[0]!)}`,
    "the stored command is the winner's",
  );
});
