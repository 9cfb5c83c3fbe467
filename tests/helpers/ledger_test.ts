/**
 * The ledger both suites check: the job script writes what the parser reads, the scan of an
 * attempt after the first finds a live process of another attempt, and checkLedger's
 * definitions.
 */

import assert from "node:assert/strict";
import { checkLedger, Ledger } from "./ledger.ts";
import { poll, PROMPT_MS } from "./poll.ts";
import { Sandbox } from "./sandbox.ts";

const NS = "1767225600000000000";
const LATER = "1767225601000000000";

Deno.test("Ledger.parse() reads start, scan and end lines into runs, and keeps torn lines apart", () => {
  const ledger = Ledger.parse(
    [
      `a 1 start ${NS} 10 10`,
      `b 1 start ${NS} 20 20`,
      `a 1 end ${LATER} 10 10 3`,
      `a 2 start ${LATER} 30 30`,
      `a 2 scan ${LATER} 11:1`,
      `b 1 end ${LATER} 20 20`,
      "a 2 sta",
      "",
    ].join("\n"),
  );
  assert.deepEqual(ledger.order.map((r) => `${r.id}/${r.attempt}`), ["a/1", "b/1", "a/2"]);
  const [a1, a2] = ledger.runs.get("a")!;
  assert.deepEqual(
    [a1!.startUs, a1!.endUs, a1!.status, a1!.pid, a1!.pgid, a1!.scanned],
    [1767225600000000, 1767225601000000, 3, 10, 10, false],
  );
  assert.deepEqual([a2!.scanned, a2!.overlapWith, a2!.endUs], [true, ["11:1"], null]);
  assert.equal(ledger.run("b", 1)!.endUs, null, "an end line with a field missing is torn");
  assert.deepEqual(ledger.torn, [`b 1 end ${LATER} 20 20`, "a 2 sta"]);
  assert.equal(ledger.starts("a"), 2);
  assert.equal(ledger.starts("c"), 0);
});

Deno.test("checkLedger() reports lost, duplicated, unexpected and overlapping jobs", () => {
  const ledger = Ledger.parse(
    [
      // ok: ran once and ended.
      `ok 1 start ${NS} 1 1`,
      `ok 1 end ${NS} 1 1 0`,
      // lost: started, never ended.
      `lost 1 start ${NS} 2 2`,
      // dup: attempt 1 started twice.
      `dup 1 start ${NS} 3 3`,
      `dup 1 start ${NS} 4 4`,
      `dup 1 end ${NS} 4 4 0`,
      // early: attempt 2 started before attempt 1 ended.
      `early 1 start ${NS} 5 5`,
      `early 2 start ${NS} 6 6`,
      `early 2 scan ${NS}`,
      `early 1 end ${LATER} 5 5 0`,
      `early 2 end ${LATER} 6 6 0`,
      // seen: attempt 2's scan found attempt 1's process alive.
      `seen 1 start ${NS} 7 7`,
      `seen 1 end ${NS} 7 7 1`,
      `seen 2 start ${LATER} 8 8`,
      `seen 2 scan ${LATER} 9:1`,
      `seen 2 end ${LATER} 8 8 0`,
      `stray 1 start ${NS} 9 9`,
    ].join("\n"),
  );
  const report = checkLedger(ledger, ["ok", "lost", "dup", "early", "seen"], 2);
  assert.deepEqual(report, {
    lost: ["lost"],
    duplicated: ["dup"],
    unexpected: ["stray"],
    overlap: ["early", "seen"],
  });
  assert.deepEqual(checkLedger(ledger, ["early"], 1).duplicated, ["early"], "more starts than 1");
  assert.throws(() => checkLedger(Ledger.parse("torn\n"), []), /torn ledger lines/);
});

Deno.test("the ledger job records its run, and its scan finds a live process of another attempt", async () => {
  await using sb = await Sandbox.create("ledger");
  const marker = { QUEUECTL_JOB_ID: "j", QUEUECTL_DB: sb.db };
  // Attempt 1 "still runs": a process with its marker.
  const first = sb.spawnRaw("sleep", ["600"], { env: { ...marker, QUEUECTL_ATTEMPT: "1" } });
  const second = sb.spawnRaw("sh", ["-c", sb.job("exit 3")], {
    env: { ...marker, QUEUECTL_ATTEMPT: "2" },
  });
  assert.equal((await second.wait(PROMPT_MS)).code, 3, "the job exits with the work's status");
  // The scan reads environments of processes that may exit meanwhile: not the job's business.
  assert.equal(second.stderr, "", "the ledger job adds nothing to the job's stderr");
  const run = sb.ledger().run("j", 2)!;
  assert.equal(run.pid, second.pid, "the job's shell is the one queuectl started");
  assert.equal(run.status, 3);
  assert.ok(run.endUs! >= run.startUs);
  assert.deepEqual(run.overlapWith, [`${first.pid}:1`]);

  first.kill("SIGKILL");
  await poll(() => first.exited, PROMPT_MS, "the sleep to die");
  const third = sb.spawnRaw("sh", ["-c", sb.job()], { env: { ...marker, QUEUECTL_ATTEMPT: "3" } });
  assert.equal((await third.wait(PROMPT_MS)).code, 0);
  const after = sb.ledger().run("j", 3)!;
  assert.deepEqual([after.scanned, after.overlapWith], [true, []]);
  assert.deepEqual(sb.ledger().torn, []);
});
