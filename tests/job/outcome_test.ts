import assert from "node:assert/strict";
import type { Job } from "../../lib/job/job.ts";
import { attemptsLeft } from "../../lib/job/job.ts";
import { decide, describeResult } from "../../lib/job/outcome.ts";
import type { RunResult } from "../../lib/job/outcome.ts";
import { canTransition, TERMINAL_STATES, TRANSITIONS } from "../../lib/job/state.ts";
import { retryDelayMs } from "../../lib/job/backoff.ts";
import { Prng } from "../helpers/prng.ts";

const NOW = Date.UTC(2026, 0, 1, 12);
const BACKOFF = { base: 2, maxMs: 3_600_000 };

/** A job as a worker holds it after claiming attempt `budgetUsed` of 1 + maxRetries. */
function claimed(budgetUsed: number, maxRetries = 3): Job {
  return {
    id: "j1",
    seq: 1,
    command: "false",
    state: "processing",
    priority: 5,
    queue: "default",
    attempts: budgetUsed,
    budgetUsed,
    maxRetries,
    timeoutMs: null,
    cwd: "/tmp",
    env: {},
    runAt: NOW - 60_000,
    createdAt: NOW - 60_000,
    updatedAt: NOW - 1000,
    finishedAt: null,
    workerId: "w1",
    leaseExpiresAt: NOW + 30_000,
    lastError: null,
    lastExitCode: null,
    cancelReason: null,
    after: [],
    waitingOn: 0,
    uniqueKey: null,
  };
}

Deno.test("decide() completes a job that exited 0", () => {
  const d = decide(claimed(1), { kind: "exited", code: 0 }, BACKOFF);
  assert.deepEqual(d, {
    transition: "complete",
    state: "completed",
    runInMs: null,
    terminal: true,
    outcome: "completed",
    exitCode: 0,
    signal: null,
    error: null,
    refund: false,
  });
});

Deno.test("decide() completes on the last attempt too", () => {
  const d = decide(claimed(4, 3), { kind: "exited", code: 0 }, BACKOFF);
  assert.equal(d.state, "completed");
});

Deno.test("decide() schedules a retry after backoff-base^n seconds when retries are left", () => {
  for (const n of [1, 2, 3]) {
    const d = decide(claimed(n, 3), { kind: "exited", code: 7 }, BACKOFF);
    assert.equal(d.transition, "retry");
    assert.equal(d.state, "failed");
    assert.equal(d.runInMs, 2 ** n * 1000, `attempt ${n}`);
    assert.equal(d.terminal, false);
    assert.equal(d.outcome, "failed");
    assert.equal(d.exitCode, 7);
    assert.equal(d.error, "exited with code 7");
    assert.equal(d.refund, false);
  }
});

Deno.test("decide() marks job dead on last attempt", () => {
  const d = decide(claimed(4, 3), { kind: "exited", code: 1 }, BACKOFF);
  assert.equal(d.transition, "bury");
  assert.equal(d.state, "dead");
  assert.equal(d.terminal, true);
  assert.equal(d.runInMs, null);
  assert.equal(d.exitCode, 1);
  assert.equal(d.error, "exited with code 1");
});

Deno.test("decide() buries at once when max_retries is 0", () => {
  assert.equal(decide(claimed(1, 0), { kind: "exited", code: 1 }, BACKOFF).state, "dead");
  assert.equal(decide(claimed(1, 1), { kind: "exited", code: 1 }, BACKOFF).state, "failed");
  assert.equal(decide(claimed(2, 1), { kind: "exited", code: 1 }, BACKOFF).state, "dead");
});

Deno.test("decide() refunds an interrupted attempt and makes the job due now", () => {
  for (const used of [1, 4]) { // even on what would be the last attempt
    const d = decide(
      claimed(used, 3),
      { kind: "interrupted", error: "worker stopping" },
      BACKOFF,
    );
    assert.equal(d.transition, "interrupt");
    assert.equal(d.state, "pending");
    assert.equal(d.runInMs, 0);
    assert.equal(d.terminal, false);
    assert.equal(d.refund, true);
    assert.equal(d.outcome, "interrupted");
    assert.equal(d.error, "worker stopping");
  }
});

Deno.test("decide() treats a timeout as a failure that records the signal", () => {
  const result: RunResult = { kind: "timeout", afterMs: 90_000, signal: "SIGTERM" };
  const retry = decide(claimed(1), result, BACKOFF);
  assert.equal(retry.state, "failed");
  assert.equal(retry.outcome, "timeout");
  assert.equal(retry.signal, "SIGTERM");
  assert.equal(retry.exitCode, null);
  assert.equal(retry.error, "timed out after 1m30s (SIGTERM)");
  assert.equal(decide(claimed(4), result, BACKOFF).state, "dead");
});

Deno.test("decide() retries a spawn failure and keeps its message", () => {
  const result: RunResult = { kind: "spawn_failed", error: 'cwd "/nope" does not exist' };
  const d = decide(claimed(1), result, BACKOFF);
  assert.equal(d.state, "failed");
  assert.equal(d.outcome, "spawn_failed");
  assert.equal(d.error, 'cwd "/nope" does not exist');
  assert.equal(decide(claimed(4), result, BACKOFF).state, "dead");
});

Deno.test("decide() counts a signal and a lost worker as failures", () => {
  const signaled = decide(claimed(1), { kind: "signaled", signal: "SIGKILL" }, BACKOFF);
  assert.equal(signaled.state, "failed");
  assert.equal(signaled.outcome, "failed");
  assert.equal(signaled.signal, "SIGKILL");
  assert.equal(signaled.error, "killed by SIGKILL");
  const lost = decide(claimed(4), { kind: "lost", error: "worker lost" }, BACKOFF);
  assert.equal(lost.state, "dead");
  assert.equal(lost.outcome, "lost");
  assert.equal(lost.error, "worker lost");
});

Deno.test("describeResult() says nothing for success", () => {
  assert.equal(describeResult({ kind: "exited", code: 0 }), null);
  assert.equal(describeResult({ kind: "exited", code: 127 }), "exited with code 127");
});

// Property test: a seeded PRNG instead of fast-check (npm would cost start-up and is not needed).
const RESULTS: ((p: Prng) => RunResult)[] = [
  (p) => ({ kind: "exited", code: p.int(0, 255) }),
  () => ({ kind: "exited", code: 0 }),
  (p) => ({ kind: "signaled", signal: p.pick(["SIGKILL", "SIGSEGV", "SIGTERM"]) }),
  (p) => ({ kind: "timeout", afterMs: p.int(1, 1e9), signal: "SIGKILL" }),
  () => ({ kind: "spawn_failed", error: "no such directory" }),
  () => ({ kind: "lost", error: "worker lost" }),
  () => ({ kind: "interrupted", error: "shutdown" }),
];

for (const seed of [1, 42, 20260101]) {
  Deno.test(`decide() stays inside the transition table (seed ${seed})`, () => {
    const p = new Prng(seed);
    for (let i = 0; i < 2000; i++) {
      const maxRetries = p.int(0, 12);
      const used = p.int(1, maxRetries + 1);
      const job = claimed(used, maxRetries);
      const result = p.pick(RESULTS)(p);
      const backoff = { base: p.pick([1, 1.5, 2, 3, 10, 1000]), maxMs: p.int(0, 30 * 86_400_000) };
      const d = decide(job, result, backoff);
      const where = `seed ${seed} case ${i}: ${JSON.stringify({ used, maxRetries, result })}`;
      const t = TRANSITIONS[d.transition];
      assert.ok((t.from as readonly string[]).includes("processing"), where);
      assert.equal(d.state, t.to, where);
      assert.ok(canTransition("processing", d.state), where);
      assert.equal(d.terminal, TERMINAL_STATES.includes(d.state), where);
      if (d.state === "failed") {
        assert.ok(d.runInMs !== null && d.runInMs >= 0 && d.runInMs <= backoff.maxMs, where);
        assert.ok(attemptsLeft(job) > 0, where);
      }
      if (d.state === "dead") assert.equal(attemptsLeft(job), 0, where);
      assert.equal(d.refund, result.kind === "interrupted", where);
      const success = result.kind === "exited" && result.code === 0;
      assert.equal(d.state === "completed", success, where);
    }
  });

  Deno.test(`retryDelayMs() is monotonic in n up to its cap (seed ${seed})`, () => {
    const p = new Prng(seed);
    for (let i = 0; i < 300; i++) {
      const backoff = {
        base: p.pick([1, 1.01, 1.5, 2, 3, 7, 1000]),
        maxMs: p.int(0, 30 * 86_400_000),
      };
      let previous = -1;
      for (let n = 1; n <= 80; n++) {
        const delay = retryDelayMs(n, backoff);
        const where = `seed ${seed} case ${i} n=${n} ${JSON.stringify(backoff)}`;
        assert.ok(delay >= previous, where);
        assert.ok(delay <= backoff.maxMs, where);
        assert.ok(Number.isFinite(delay), where);
        assert.equal(delay, Math.round(Math.min(backoff.maxMs, backoff.base ** n * 1000)), where);
        previous = delay;
      }
    }
  });
}
