/**
 * `prune`: which finished jobs it deletes (by state and age, the default age being the
 * retain-completed setting), `--dry-run`, `--json`, and refusals that leave the database as it was.
 *
 * @module
 */

import assert from "node:assert/strict";
import { treeDigest } from "../helpers/digest.ts";
import { cliFixture, localStamp } from "../helpers/cli_fixture.ts";
import type { CliFixture } from "../helpers/cli_fixture.ts";
import { insertJob, makeJob } from "../helpers/factory.ts";
import { countRowsByState } from "../helpers/sqlite_raw.ts";
import { T0 } from "../helpers/temp.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Now in every test: 8 days and 1 hour after T0. */
const NOW = T0 + 8 * DAY + HOUR;

/**
 * Finished: c-old and d-old at T0, c-mid at T0 + 2 d, c-new and d-new at T0 + 8 d 30 min.
 * Unfinished: f (failed, retry due), r (processing) and p (pending). Ends at NOW with the
 * factory's connection closed.
 */
async function history(q: CliFixture): Promise<void> {
  const store = await q.store();
  await makeJob(store, q.clock, "completed", { id: "c-old" });
  await makeJob(store, q.clock, "dead", { id: "d-old", maxRetries: 0 });
  q.clock.set(T0 + 2 * DAY);
  await makeJob(store, q.clock, "completed", { id: "c-mid" });
  q.clock.set(T0 + 8 * DAY + HOUR / 2);
  await makeJob(store, q.clock, "completed", { id: "c-new" });
  await makeJob(store, q.clock, "dead", { id: "d-new", maxRetries: 0 });
  await makeJob(store, q.clock, "processing", { id: "r" });
  await makeJob(store, q.clock, "failed", { id: "f" });
  await insertJob(store, q.clock, { id: "p", runAt: NOW + DAY });
  q.clock.set(NOW);
  q.closeStore();
}

async function ids(q: CliFixture): Promise<string[]> {
  const jobs = JSON.parse((await q.run(["list", "--json"])).stdout) as { id: string }[];
  return jobs.map((j) => j.id).sort();
}

const ALL = ["c-mid", "c-new", "c-old", "d-new", "d-old", "f", "p", "r"];

Deno.test("prune deletes completed jobs older than retain-completed (7 days) by default", async () => {
  await using q = await cliFixture();
  await history(q);
  assert.deepEqual(await q.run(["prune"]), {
    code: 0,
    stdout: `Deleted 1 completed job finished before ${
      localStamp(NOW - 7 * DAY)
    } (older than 7d)\n`,
    stderr: "",
  });
  assert.deepEqual(await ids(q), ALL.filter((id) => id !== "c-old"));
  // The attempts went with it; the maintained counts agree with the rows.
  assert.equal((await q.run(["logs", "c-old"])).code, 4);
  const status = JSON.parse((await q.run(["status", "--json"])).stdout);
  const rows = countRowsByState(q.db);
  assert.deepEqual(status.counts, {
    pending: rows.pending ?? 0,
    processing: rows.processing ?? 0,
    completed: rows.completed ?? 0,
    failed: rows.failed ?? 0,
    dead: rows.dead ?? 0,
    cancelled: rows.cancelled ?? 0,
    total: ALL.length - 1,
    scheduled: 1, // p, due in a day
  });
  assert.equal(status.counts.completed, 2);
});

Deno.test("prune takes its default age from the retain-completed setting", async () => {
  await using q = await cliFixture();
  await history(q);
  await q.run(["config", "set", "retain-completed", "1d"]);
  const { stdout } = await q.run(["prune"]);
  assert.equal(
    stdout,
    `Deleted 2 completed jobs finished before ${localStamp(NOW - DAY)} (older than 1d)\n`,
  );
  assert.deepEqual(await ids(q), ["c-new", "d-new", "d-old", "f", "p", "r"]);
  // retain-completed 0 keeps completed jobs from workers; prune then falls back to 7 days.
  await q.run(["config", "set", "retain-completed", "0"]);
  assert.match(
    (await q.run(["prune"])).stdout,
    /^Deleted 0 completed jobs .* \(older than 7d\)\n$/,
  );
});

Deno.test("prune --older-than and --state choose which finished jobs go", async () => {
  await using q = await cliFixture();
  await history(q);
  // Finished more than an hour ago: c-old and c-mid, not c-new (30 minutes ago).
  assert.equal(
    (await q.run(["prune", "--older-than", "1h"])).stdout,
    `Deleted 2 completed jobs finished before ${localStamp(NOW - HOUR)} (older than 1h)\n`,
  );
  assert.deepEqual(await ids(q), ["c-new", "d-new", "d-old", "f", "p", "r"]);
  assert.equal(
    (await q.run(["prune", "--state", "dead", "--older-than", "1d"])).stdout,
    `Deleted 1 dead job finished before ${localStamp(NOW - DAY)} (older than 1d)\n`,
  );
  assert.deepEqual(await ids(q), ["c-new", "d-new", "f", "p", "r"]);
  // Unfinished jobs are never pruned, however old.
  assert.equal(
    (await q.run(["prune", "--state", "all-finished", "--older-than", "0"])).stdout,
    `Deleted 2 completed, dead and cancelled jobs finished before ${
      localStamp(NOW)
    } (older than 0ms)\n`,
  );
  assert.deepEqual(await ids(q), ["f", "p", "r"]);
});

Deno.test("prune --dry-run counts what it would delete and changes nothing", async () => {
  await using q = await cliFixture();
  await history(q);
  const before = await treeDigest(q.dir);
  assert.deepEqual(await q.run(["prune", "--dry-run", "--state", "all-finished"]), {
    code: 0,
    stdout: `Would delete 2 completed, dead and cancelled jobs finished before ${
      localStamp(NOW - 7 * DAY)
    } (older than 7d)\n`,
    stderr: "",
  });
  const json = JSON.parse(
    (await q.run(["prune", "--dry-run", "--older-than", "1h", "--json"])).stdout,
  );
  assert.deepEqual(json, {
    deleted: 0,
    matched: 2,
    dry_run: true,
    states: ["completed"],
    finished_before: new Date(NOW - HOUR).toISOString(),
  });
  assert.deepEqual(await treeDigest(q.dir), before, "the database is byte for byte the same");
  assert.deepEqual(await ids(q), ALL);
});

Deno.test("prune --json reports what it deleted", async () => {
  await using q = await cliFixture();
  await history(q);
  const { code, stdout } = await q.run(["prune", "--state", "all-finished", "--json"]);
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(stdout), {
    deleted: 2,
    matched: 2,
    dry_run: false,
    states: ["completed", "dead", "cancelled"],
    finished_before: new Date(NOW - 7 * DAY).toISOString(),
  });
  assert.deepEqual(await ids(q), ["c-mid", "c-new", "d-new", "f", "p", "r"]);
});

Deno.test("prune refuses bad values with exit 2 and leaves the database as it was", async () => {
  await using q = await cliFixture();
  await history(q);
  const before = await treeDigest(q.dir);
  const cases: [string[], string][] = [
    [
      ["--state", "pending"],
      'queuectl: Invalid value "pending" for --state (use completed, dead, cancelled or all-finished)\n',
    ],
    [
      ["--state", "failed"],
      'queuectl: Invalid value "failed" for --state (use completed, dead, cancelled or all-finished)\n',
    ],
    [
      ["--state", "constructor"],
      'queuectl: Invalid value "constructor" for --state (use completed, dead, cancelled or all-finished)\n',
    ],
    [
      ["--older-than", "soon"],
      'queuectl: Invalid value "soon" for --older-than: is not a duration; use e.g. 30s, 5m, 2h, 1d or 1h30m\n',
    ],
    [
      ["--older-than", "-1d"],
      'queuectl: Invalid value "-1d" for --older-than: must not be negative\n',
    ],
  ];
  for (const [args, stderr] of cases) {
    assert.deepEqual(
      await q.run(["prune", ...args]),
      { code: 2, stdout: "", stderr },
      args.join(" "),
    );
  }
  for (const args of [["--older-than"], ["--all"], ["extra"]]) {
    const result = await q.run(["prune", ...args]);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.equal(result.stdout, "");
  }
  assert.deepEqual(await treeDigest(q.dir), before);
  assert.deepEqual(await ids(q), ALL);
});
