/**
 * Workers started by the supervisor run with a capped V8 young generation (DENO_V8_FLAGS), and
 * their jobs see DENO_V8_FLAGS as the user set it, not as the supervisor set it for the worker.
 *
 * Pure functions only: this suite runs in parallel with the spawner's, which counts the fds of
 * the test process, so it starts no process and opens no file.
 *
 * @module
 */

import { WORKER_V8_FLAGS, workerEnv } from "../../lib/worker/supervisor.ts";
import { inheritable } from "../../lib/worker/worker.ts";
import { assertEquals } from "../helpers/assert.ts";

const from = (env: Record<string, string>) => (name: string) => env[name];

Deno.test("workerEnv() adds the worker's V8 flags, after the user's own", () => {
  assertEquals(workerEnv(from({})), {
    QUEUECTL_SUPERVISOR: String(Deno.pid),
    DENO_V8_FLAGS: WORKER_V8_FLAGS,
  });
  assertEquals(workerEnv(from({ DENO_V8_FLAGS: "--stack-size=900" })), {
    QUEUECTL_SUPERVISOR: String(Deno.pid),
    DENO_V8_FLAGS: `--stack-size=900,${WORKER_V8_FLAGS}`,
    QUEUECTL_DENO_V8_FLAGS: "--stack-size=900",
  });
});

Deno.test("a supervised worker's jobs get DENO_V8_FLAGS as the user set it", () => {
  const supervised = (user: Record<string, string>) =>
    inheritable({ PATH: "/bin", ...user, ...workerEnv(from(user)) });
  assertEquals(supervised({}), { PATH: "/bin" });
  assertEquals(supervised({ DENO_V8_FLAGS: "--stack-size=900" }), {
    PATH: "/bin",
    DENO_V8_FLAGS: "--stack-size=900",
  });
});

Deno.test("a worker run by hand passes DENO_V8_FLAGS on untouched", () => {
  assertEquals(
    inheritable({ PATH: "/bin", DENO_V8_FLAGS: "--stack-size=900", QUEUECTL_TEST: "1" }),
    { PATH: "/bin", DENO_V8_FLAGS: "--stack-size=900" },
  );
});
