import assert from "node:assert/strict";
import {
  canTransition,
  isJobState,
  JOB_STATES,
  READY_STATES,
  TERMINAL_STATES,
  TRANSITIONS,
} from "../../lib/job/state.ts";
import type { JobState } from "../../lib/job/state.ts";

/** The spec's state machine, written out independently of lib/job/state.ts. */
const ALLOWED: readonly [JobState, JobState][] = [
  ["pending", "processing"], // claim
  ["failed", "processing"], // claim of a retry that is due
  ["processing", "completed"], // exited 0
  ["processing", "failed"], // failed, retries left
  ["processing", "dead"], // failed, budget used up
  ["processing", "pending"], // interrupted by a worker shutdown
  ["dead", "pending"], // dlq retry, retry
  ["pending", "cancelled"], // cancel
  ["failed", "cancelled"], // cancel of a job waiting for its retry
  ["processing", "cancelled"], // cancel of a running (or reserved) job
  ["cancelled", "pending"], // retry
  ["completed", "pending"], // retry --force
];

Deno.test("JOB_STATES are the seed's five names in reading order, then cancelled", () => {
  assert.deepEqual([...JOB_STATES], [
    "pending",
    "processing",
    "completed",
    "failed",
    "dead",
    "cancelled",
  ]);
  assert.deepEqual([...TERMINAL_STATES].sort(), ["cancelled", "completed", "dead"]);
  assert.deepEqual([...READY_STATES].sort(), ["failed", "pending"]);
});

for (const from of JOB_STATES) {
  for (const to of JOB_STATES) {
    const allowed = ALLOWED.some(([f, t]) => f === from && t === to);
    Deno.test(`canTransition() ${allowed ? "allows" : "forbids"} ${from} → ${to}`, () => {
      assert.equal(canTransition(from, to), allowed);
    });
  }
}

Deno.test("TRANSITIONS lists exactly the allowed edges, each under one name", () => {
  const edges = Object.values(TRANSITIONS).flatMap((t) =>
    (t.from as readonly JobState[]).map((from) => `${from}->${t.to}`)
  );
  assert.deepEqual(edges.sort(), ALLOWED.map(([f, t]) => `${f}->${t}`).sort());
  assert.equal(new Set(edges).size, edges.length, "an edge appears under two names");
});

Deno.test("TRANSITIONS leaves a terminal state only for pending, by a user's retry", () => {
  const byUser: Record<string, string> = {
    dead: "dlqRetry",
    cancelled: "requeue",
    completed: "rerun",
  };
  for (const [name, t] of Object.entries(TRANSITIONS)) {
    for (const from of t.from as readonly JobState[]) {
      if (!TERMINAL_STATES.includes(from)) continue;
      assert.equal(name, byUser[from], `${name} leaves ${from}`);
      assert.equal(t.to, "pending");
    }
  }
});

Deno.test("TRANSITIONS names the transitions the worker and the CLI use", () => {
  assert.deepEqual(TRANSITIONS.claim.from, READY_STATES);
  assert.equal(TRANSITIONS.claim.to, "processing");
  assert.equal(TRANSITIONS.complete.to, "completed");
  assert.equal(TRANSITIONS.retry.to, "failed");
  assert.equal(TRANSITIONS.bury.to, "dead");
  assert.equal(TRANSITIONS.interrupt.to, "pending");
  assert.deepEqual(TRANSITIONS.dlqRetry.from, ["dead"]);
  assert.equal(TRANSITIONS.dlqRetry.to, "pending");
});

Deno.test("isJobState() accepts the six states and nothing else", () => {
  for (const state of JOB_STATES) assert.ok(isJobState(state));
  for (const other of ["", "Pending", "running", "retryable", "dead ", "canceled", "__proto__"]) {
    assert.equal(isJobState(other), false, other);
  }
});
