/**
 * What the Sandbox adds to the processes it starts: the worker shape of `workerArgs`, and test
 * hooks only when asked for.
 */

import assert from "node:assert/strict";
import { hookEnv } from "./hooks.ts";
import { pgUrl, psql } from "./pg.ts";
import { Sandbox } from "./sandbox.ts";

Deno.test("Sandbox worker() and workerOnce() start `worker run` with the sandbox's workerArgs", async () => {
  await using sb = await Sandbox.create("shape", { workerArgs: ["--debug"] });
  await sb.init();
  await sb.workerOnce();
  assert.deepEqual(sb.procs.at(-1)!.args.slice(-4), ["worker", "run", "--debug", "--once"]);
  const worker = sb.worker({ args: ["--once"] });
  assert.deepEqual(worker.args.slice(-4), ["worker", "run", "--debug", "--once"]);
  assert.equal((await worker.wait(30_000)).code, 0, worker.stderr);
  const plain = await Sandbox.create("plain");
  await using _ = plain;
  assert.deepEqual(plain.worker({ args: ["--once"] }).args.slice(-3), ["worker", "run", "--once"]);
});

Deno.test("Sandbox env() sets the test hooks only when asked, through hookEnv()", async () => {
  await using sb = await Sandbox.create("hooks");
  const plain = sb.env({ env: { A: "1" } });
  assert.deepEqual(Object.keys(plain).filter((k) => k.startsWith("QUEUECTL")), []);
  assert.equal(plain.A, "1");
  assert.deepEqual(sb.env({ hooks: {} }).QUEUECTL_TEST, "1");
  assert.deepEqual(
    hookEnv({ fault: "claim:after-commit", clockOffsetMs: -5, housekeepingMs: 100 }),
    {
      QUEUECTL_TEST: "1",
      QUEUECTL_FAULT: "claim:after-commit",
      QUEUECTL_TEST_CLOCK_OFFSET_MS: "-5",
      QUEUECTL_TEST_HOUSEKEEPING_MS: "100",
    },
  );
  assert.deepEqual(hookEnv({ noNotify: true }), {
    QUEUECTL_TEST: "1",
    QUEUECTL_TEST_NO_NOTIFY: "1",
  });
});

Deno.test("Sandbox on PostgreSQL: a database of its own, rows as on SQLite, dropped on dispose", async () => {
  const rows: Record<string, unknown>[] = [];
  let name = "";
  for (const store of ["sqlite", "postgres"] as const) {
    await using sb = await Sandbox.create(`store-${store}`, { store });
    assert.equal(sb.store, store);
    if (store === "postgres") {
      assert.match(sb.db, /^postgres:\/\/.*\/queuectl_test_/);
      name = new URL(sb.db).pathname.slice(1);
    }
    await sb.init();
    const [id] = await sb.enqueue([{ id: "q:1", command: sb.job("exit 3"), max_retries: 0 }]);
    await sb.workerOnce();
    const job = sb.job1(id!)!;
    const [attempt] = sb.attempts(id!);
    assert.ok(typeof job.run_at === "number" && Math.abs(job.run_at - Date.now()) < 60_000);
    assert.ok(
      typeof attempt!.started_at === "number" && attempt!.finished_at! >= attempt!.started_at,
    );
    rows.push({
      job: { ...job, run_at: 0, worker_id: null },
      attempt: { ...attempt, started_at: 0, finished_at: 0, worker_id: "" },
      counts: sb.counts(),
      // The command holds quotes (shellQuote), the id a colon.
      named: sb.query("SELECT id, attempts FROM jobs WHERE command = :c AND attempts = :n", {
        c: sb.job("exit 3"),
        n: 1,
      }),
      integrity: sb.integrity(),
      written: sb.write("UPDATE jobs SET priority = ? WHERE id = ?", 7, "q:1"),
    });
    // A process of the sandbox is found by the sandbox's directory or database.
    const w = sb.worker();
    await sb.workerId(w);
    const left = sb.leftovers();
    assert.ok(left.some((p) => p.pid === w.pid), JSON.stringify(left));
    assert.ok(left.every((p) => !p.cmd.startsWith("postgres")), JSON.stringify(left));
  }
  // node:sqlite rows have a null prototype: compare what they hold.
  assert.deepEqual(JSON.parse(JSON.stringify(rows[1])), JSON.parse(JSON.stringify(rows[0])));
  assert.equal(
    await psql(pgUrl(), `select count(*) from pg_database where datname = '${name}'`),
    "0",
    "the database was dropped",
  );
});

Deno.test("Sandbox integrity() on PostgreSQL finds counters that disagree with the rows", async () => {
  await using sb = await Sandbox.create("pg-integrity", { store: "postgres" });
  await sb.enqueue([{ command: "true" }, { command: "true" }]);
  assert.equal(sb.integrity(), "ok");
  assert.deepEqual(sb.counts(), { pending: 2 });
  sb.exec("INSERT INTO job_count_deltas (queue, state, n) VALUES ('default', 'pending', -1)");
  assert.equal(sb.integrity(), "job_counts says pending 1, the rows say 2");
  assert.throws(() => sb.lock(), /SQLite's write lock/);
});
