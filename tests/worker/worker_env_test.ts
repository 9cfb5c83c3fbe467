/**
 * Workers (started by the supervisor, or re-executed by `worker run`) run with V8 flags and a malloc setting for a small, flat
 * memory (DENO_V8_FLAGS, MALLOC_ARENA_MAX), and their jobs see both as the user set them, not as
 * they were set for the worker.
 *
 * Pure functions only: it starts no process and opens no file.
 *
 * @module
 */

import { savedName, TUNED, WORKER_V8_FLAGS, workerEnv } from "../../lib/worker/tuning.ts";
import { inheritable } from "../../lib/worker/tuning.ts";
import assert from "node:assert/strict";
import { hookEnv } from "../helpers/hooks.ts";

const from = (env: Record<string, string>) => (name: string) => env[name];

Deno.test("workerEnv() adds the worker's V8 flags after the user's, and keeps their malloc setting", () => {
  assert.deepEqual(workerEnv(from({})), {
    QUEUECTL_SUPERVISOR: String(Deno.pid),
    [TUNED]: "1",
    DENO_V8_FLAGS: WORKER_V8_FLAGS,
    MALLOC_ARENA_MAX: "2",
  });
  assert.deepEqual(workerEnv(from({ DENO_V8_FLAGS: "--stack-size=900", MALLOC_ARENA_MAX: "8" })), {
    QUEUECTL_SUPERVISOR: String(Deno.pid),
    [TUNED]: "1",
    DENO_V8_FLAGS: `--stack-size=900,${WORKER_V8_FLAGS}`,
    [savedName("DENO_V8_FLAGS")]: "--stack-size=900",
    MALLOC_ARENA_MAX: "8",
    [savedName("MALLOC_ARENA_MAX")]: "8",
  });
});

Deno.test("a supervised worker's jobs get DENO_V8_FLAGS and MALLOC_ARENA_MAX as the user set them", () => {
  const supervised = (user: Record<string, string>) =>
    inheritable({ PATH: "/bin", ...user, ...workerEnv(from(user)) });
  assert.deepEqual(supervised({}), { PATH: "/bin" });
  assert.deepEqual(supervised({ DENO_V8_FLAGS: "--stack-size=900", MALLOC_ARENA_MAX: "4" }), {
    PATH: "/bin",
    DENO_V8_FLAGS: "--stack-size=900",
    MALLOC_ARENA_MAX: "4",
  });
});

Deno.test("a worker run by hand passes DENO_V8_FLAGS and MALLOC_ARENA_MAX on untouched", () => {
  assert.deepEqual(
    inheritable({
      PATH: "/bin",
      DENO_V8_FLAGS: "--stack-size=900",
      MALLOC_ARENA_MAX: "3",
      ...hookEnv(),
    }),
    { PATH: "/bin", DENO_V8_FLAGS: "--stack-size=900", MALLOC_ARENA_MAX: "3" },
  );
});
