/**
 * The liveness judgement every reader shares: pid and start time (gone), /proc state (stopped),
 * heartbeat age against the lease (silent), with real processes for the pid checks.
 */

import assert from "node:assert/strict";
import type { WorkerRecord } from "../../lib/store/store.ts";
import { formatAgo, formatLogTime } from "../../lib/time.ts";
import {
  heartbeatIntervalMs,
  judgeWorker,
  leaseTimeoutMs,
  staleAfterMs,
  workerGone,
} from "../../lib/worker/liveness.ts";
import { processStartTime } from "../../lib/worker/process.ts";
import { poll, PROMPT_MS } from "../helpers/poll.ts";
import { procStat } from "../helpers/proc.ts";

const HOST = "here";
const NOW = Date.UTC(2026, 11, 1, 21, 0, 0);

/** A worker record as the store gives it; `heartbeatAgeMs` is measured by the store's clock. */
function worker(fields: Partial<WorkerRecord> = {}): WorkerRecord {
  return {
    id: "w1",
    pid: Deno.pid,
    host: "here.example",
    hostId: HOST,
    pidStart: processStartTime(Deno.pid),
    state: "running",
    runningJobs: ["7"],
    startedAt: NOW - 60_000,
    heartbeatAt: NOW,
    heartbeatAgeMs: 0,
    jobsDone: 0,
    jobsFailed: 0,
    supervisorPid: null,
    busyMs: 0,
    ...fields,
  };
}

const options = { hostId: HOST, pidRecovery: true, leaseMs: 30_000 };

Deno.test("a worker that beats is idle, busy or stopping by what it says and holds", () => {
  assert.equal(judgeWorker(worker({ runningJobs: [] }), options).state, "idle");
  assert.equal(judgeWorker(worker({ state: "stopping" }), options).state, "stopping");

  const judged = judgeWorker(worker(), options);
  assert.deepEqual(judged, {
    health: "ok",
    state: "busy",
    local: true,
    heartbeatAgeMs: 0,
    problem: null,
  });
});

Deno.test("a worker is silent after three heartbeats, and never before 5 s", () => {
  assert.equal(heartbeatIntervalMs(30_000), 5000);
  assert.equal(staleAfterMs(30_000), 15_000);
  assert.equal(staleAfterMs(2000), 5000);
  const at = (ageMs: number) => judgeWorker(worker({ heartbeatAgeMs: ageMs }), options);
  assert.equal(at(15_000).health, "ok");
  const silent = at(15_001);
  assert.equal(silent.health, "silent");
  assert.equal(silent.state, "stale");
  assert.equal(silent.problem, "is not responding (last heartbeat 15s ago)");
  // Another host's worker is judged by its heartbeat alone; its pid means nothing here.
  const remote = { ...options, hostId: "elsewhere" };
  const far = judgeWorker(worker({ pid: 2 ** 22 + 17, heartbeatAgeMs: 1000 }), remote);
  assert.deepEqual([far.health, far.local], ["ok", false]);
  assert.equal(judgeWorker(worker({ heartbeatAgeMs: 60_000 }), remote).health, "silent");
  // Silent for an hour (ten leases at least), it is gone for good.
  assert.equal(judgeWorker(worker({ heartbeatAgeMs: 3_600_001 }), remote).health, "gone");
  // A store that cannot say which host a worker is on makes every worker remote.
  const noPids = { ...options, pidRecovery: false };
  assert.equal(judgeWorker(worker({ pid: 2 ** 22 + 17 }), noPids).local, false);
});

Deno.test("a worker whose pid died, or belongs to another process now, is gone", () => {
  const dead = worker({ pid: 2 ** 22 + 17, pidStart: 12345 });
  assert.equal(judgeWorker(dead, options).state, "gone");
  assert.equal(workerGone(dead, options), true);
  assert.equal(
    workerGone(dead, { ...options, hostId: "elsewhere" }),
    false,
    "no pid check for another host",
  );
  const reused = worker({ pidStart: (processStartTime(Deno.pid) ?? 0) + 1 });
  assert.equal(judgeWorker(reused, options).health, "gone");
});

Deno.test("a worker whose process is stopped is stale at once, whatever its heartbeat", async () => {
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const record = worker({ pid: sleeper.pid, pidStart: processStartTime(sleeper.pid) });
    assert.equal(judgeWorker(record, options).health, "ok");
    Deno.kill(sleeper.pid, "SIGSTOP");
    await poll(() => procStat(sleeper.pid)?.state === "T", PROMPT_MS, "the sleep to stop");
    const judged = judgeWorker(record, options);
    assert.deepEqual([judged.health, judged.state], ["stopped", "stale"]);
    assert.equal(judged.problem, "is stopped (SIGSTOP)");
    Deno.kill(sleeper.pid, "SIGCONT");
    await poll(() => procStat(sleeper.pid)?.state === "S", PROMPT_MS, "the sleep to resume");
    assert.equal(judgeWorker(record, options).health, "ok");
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
  }
});

Deno.test("the lease setting is read from stored settings, with its default", () => {
  assert.equal(leaseTimeoutMs({}), 30_000);
  assert.equal(leaseTimeoutMs({ "lease-timeout": "2000" }), 2000);
  assert.equal(leaseTimeoutMs({ "lease-timeout": "nonsense" }), 30_000);
});

Deno.test("log times are local with their offset; ages are whole seconds", () => {
  const ms = Date.UTC(2026, 11, 1, 20, 5, 3, 123);
  const local = new Date(ms);
  const offset = -local.getTimezoneOffset();
  const text = formatLogTime(ms);
  assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.123[+-]\d\d:\d\d$/);
  // Read back, it is the same instant.
  assert.equal(Date.parse(text), ms);
  const sign = offset < 0 ? "-" : "+";
  const hh = String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0");
  const mm = String(Math.abs(offset) % 60).padStart(2, "0");
  assert.ok(text.endsWith(`${sign}${hh}:${mm}`), text);
  assert.equal(formatAgo(NOW - 3400, NOW), "3s ago");
  assert.equal(formatAgo(NOW + 5000, NOW), "0s ago");
  assert.equal(formatAgo(NOW - 125_000, NOW), "2m5s ago");
});
