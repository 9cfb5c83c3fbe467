/**
 * Workers started by the supervisor run with a capped V8 young generation (DENO_V8_FLAGS), and
 * their jobs see DENO_V8_FLAGS as the user set it, not as the supervisor set it for the worker.
 *
 * @module
 */

import { WORKER_V8_FLAGS, workerEnv } from "../../lib/worker/supervisor.ts";
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

Deno.test("a supervised worker's jobs get DENO_V8_FLAGS as the user set it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "queuectl-worker-env-" });
  try {
    const db = `${dir}/q.db`;
    const main = new URL("../../main.ts", import.meta.url).pathname;
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", main, "--db", db, ...args],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout).trim();
    };
    const seen = async (userFlags: string | undefined) => {
      const file = `${dir}/env-${userFlags ?? "none"}.txt`;
      const id = await run([
        "enqueue",
        "-c",
        `printf '%s' "\${DENO_V8_FLAGS-unset}" > '${file}'`,
      ]);
      // What `worker start` gives its workers, with this process as their supervisor.
      const env = workerEnv(from(userFlags === undefined ? {} : { DENO_V8_FLAGS: userFlags }));
      await run(["worker", "run", "--once"], env);
      assertEquals(await run(["show", id, "--json"]).then((t) => JSON.parse(t).state), "completed");
      return await Deno.readTextFile(file);
    };
    assertEquals(await seen(undefined), "unset");
    assertEquals(await seen("--stack-size=900"), "--stack-size=900");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
