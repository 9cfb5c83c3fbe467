/**
 * Every example in README.md runs and prints what the README shows (see tests/docs/_examples.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { REPO_DIR } from "../helpers/cli.ts";
import { readmeBlocks, runSteps, sandbox, shape, stopWorkers } from "./_examples.ts";

const README = await Deno.readTextFile(`${REPO_DIR}README.md`);

Deno.test("shape() keeps words and lines, and lets numbers, times and ids vary", () => {
  assert.equal(
    shape("w3057-222n  3057  idle   -    2     2       2026-11-28 00:59:39"),
    shape("w12-abcd 98765 idle - 10 0 2027-01-02 13:14:15"),
  );
  assert.equal(shape("cwd         /tmp/rd"), shape("cwd /tmp/queuectl-docs-x1y2/sub"));
  assert.equal(
    shape("Run time     p50 6ms  p95 1s  max 1s"),
    shape("Run time p50 12ms p95 2.5s max 3s"),
  );
  assert.notEqual(shape("Pending        1 job"), shape("Pending 1 jobs"));
  assert.notEqual(shape("ID  STATE  PRI"), shape("ID  STATE  PRIORITY"));
  assert.notEqual(shape("attempts    2 (0 left of 1 + 1 retries)"), shape("attempts 2 (of 2)"));
  assert.equal(shape("echo one ./backup.sh"), "echo one ./backup.sh");
});

Deno.test("the README has examples to run", () => {
  const { scripts, session } = readmeBlocks(README);
  assert.ok(scripts.length >= 1, "the quick start");
  assert.ok(session.length >= 15, `${session.length} session steps`);
  for (const needed of ["worker start", "wait", "worker stop", "enqueue -", "logs", "list"]) {
    assert.ok(session.some((s) => s.command.includes(`queuectl ${needed}`)), needed);
  }
});

Deno.test("every example in the README runs and prints what it shows", async () => {
  const { scripts, session } = readmeBlocks(README);
  const failures: string[] = [];
  for (const script of [...scripts, session]) {
    const box = await sandbox();
    try {
      failures.push(...await runSteps(box, script));
    } finally {
      await stopWorkers(box);
      await box.dir[Symbol.asyncDispose]();
    }
  }
  assert.deepEqual(failures, [], `\n${failures.join("\n")}`);
});
