/**
 * Named queues on PostgreSQL with real worker processes: a limit of 1 holds across 4 multi-slot
 * workers (their claims serialised on the queue's row), and a resume wakes idle workers through
 * NOTIFY.
 *
 * @module
 */

import assert from "node:assert/strict";
import { MAIN, runProcess } from "../helpers/cli.ts";
import { Ledger, ledgerJobScript } from "../helpers/ledger.ts";
import { pgDatabase, psql } from "../helpers/pg.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { shellQuote } from "../helpers/process.ts";
import { tempDir } from "../helpers/temp.ts";

async function ok(url: string, args: string[], stdin?: string): Promise<string> {
  const result = await runProcess(args, {
    env: { QUEUECTL_DB: url },
    ...(stdin !== undefined ? { stdin } : {}),
  });
  assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

function spawnWorker(url: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "worker", "run", ...args],
    env: { QUEUECTL_DB: url, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function stop(workers: Deno.ChildProcess[]): Promise<void> {
  for (const w of workers) w.kill("SIGTERM");
  for (const w of workers) assert.equal((await w.status).code, 0);
}

async function count(url: string, sql: string): Promise<number> {
  return Number(await psql(url, sql));
}

Deno.test("PostgreSQL: a queue limit of 1 holds across 4 multi-slot workers, 30 jobs never two at once", async () => {
  await using db = await pgDatabase();
  await using dir = await tempDir();
  const url = db.url;
  const script = `${dir.path}/job.sh`;
  const ledgerPath = `${dir.path}/ledger`;
  Deno.writeTextFileSync(script, ledgerJobScript(ledgerPath), { mode: 0o755 });
  Deno.writeTextFileSync(ledgerPath, "");
  await ok(url, ["queue", "set", "one", "--concurrency", "1"]);
  const job = (queue?: string) =>
    JSON.stringify({
      command: `exec ${script} ${shellQuote("sleep 0.01")}`,
      ...(queue ? { queue } : {}),
    });
  const limited = (await ok(
    url,
    ["enqueue", "-"],
    Array.from({ length: 30 }, () => job("one")).join("\n") + "\n",
  )).trim().split("\n");
  await ok(url, ["enqueue", "-"], Array.from({ length: 20 }, () => job()).join("\n") + "\n");
  const workers = Array.from({ length: 4 }, () => spawnWorker(url, ["--concurrency", "3"]));
  try {
    await poll(
      async () =>
        await count(
          url,
          "SELECT count(*) FROM queuectl.jobs WHERE state IN ('pending', 'processing')",
        ) === 0,
      90_000,
      "the queue to drain",
      { intervalMs: 200 },
    );
  } finally {
    await stop(workers);
  }
  const ledger = Ledger.parse(Deno.readTextFileSync(ledgerPath));
  const runs = limited.flatMap((id) => ledger.runs.get(id) ?? []);
  assert.equal(runs.length, 30, "every limited job ran once");
  runs.sort((a, b) => a.startUs - b.startUs);
  for (let i = 1; i < runs.length; i++) {
    const [prev, next] = [runs[i - 1]!, runs[i]!];
    assert.ok(next.startUs >= prev.endUs!, `${next.id} started before ${prev.id} ended`);
  }
});

Deno.test("PostgreSQL: a resume wakes idle workers at once", async () => {
  await using db = await pgDatabase();
  const url = db.url;
  await ok(url, ["config", "set", "lease-timeout", "30s"]);
  await ok(url, ["pause", "held"]);
  const [id] = (await ok(url, ["enqueue", "-c", "true", "--queue", "held"])).trim().split("\n");
  const worker = spawnWorker(url, []);
  try {
    await poll(
      async () => await count(url, "SELECT count(*) FROM queuectl.workers") === 1,
      PROMPT_MS * 2,
      "the worker to register",
      { intervalMs: 100 },
    );
    // Idle long enough to be listening; the held job stays.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(await psql(url, `SELECT state FROM queuectl.jobs WHERE id = '${id}'`), "pending");
    const t0 = performance.now();
    await ok(url, ["resume", "held"]);
    await poll(
      async () =>
        await psql(url, `SELECT state FROM queuectl.jobs WHERE id = '${id}'`) === "completed",
      PROMPT_MS,
      "the held job to run",
      { intervalMs: 10 },
    );
    // A resume through NOTIFY, not the idle worker's poll (slower while it listens).
    const ms = performance.now() - t0;
    assert.ok(ms < 1500, `the job ran ${ms.toFixed(0)} ms after the resume`);
  } finally {
    await stop([worker]);
  }
});
