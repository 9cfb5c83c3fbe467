/**
 * queuectl run from a URL (`deno run -A http://…/main.ts`): the computed dynamic imports of the
 * command modules must resolve against the URL, and `worker start` must start its workers from
 * the same URL.
 */

import assert from "node:assert/strict";
import { PROMPT_MS } from "../helpers/poll.ts";
import { isRunning } from "../helpers/proc.ts";
import { REPO } from "../helpers/process.ts";
import { Sandbox, type WorkerJson } from "../helpers/sandbox.ts";

const TYPES: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".json": "application/json",
};

/** Serves the repository read-only on 127.0.0.1 (a random port). */
function serveRepository(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    const type = TYPES[path.slice(path.lastIndexOf("."))];
    if (path.includes("..") || type === undefined) return new Response("no", { status: 404 });
    try {
      return new Response(await Deno.readFile(`${REPO}${path}`), {
        headers: { "content-type": type },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

Deno.test("queuectl from a URL runs a worker, and worker start --detach starts workers from it", async () => {
  await using sb = await Sandbox.create();
  const server = serveRepository();
  try {
    const url = `http://127.0.0.1:${server.addr.port}/main.ts`;
    // A fresh module cache in the sandbox: every module really comes over HTTP.
    const fromUrl = { main: url, env: { DENO_DIR: `${sb.dir}/deno_dir` }, timeoutMs: 120_000 };
    await sb.fastConfig();

    const [first] = await sb.enqueue([{ command: "echo from-url" }]);
    const once = await sb.run(["worker", "run", "--once"], fromUrl);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stderr, new RegExp(`job ${first} attempt 1: completed`));
    assert.equal(sb.state(first!), "completed");

    const out = await sb.ok(["worker", "start", "--count", "1", "--detach"], fromUrl);
    const supervisor = Number(out);
    assert.ok(supervisor > 0 && isRunning(supervisor), `worker start printed ${out}`);
    const cmdline = Deno.readTextFileSync(`/proc/${supervisor}/cmdline`).split("\0");
    assert.ok(cmdline.includes(url), `the supervisor runs ${cmdline.join(" ")}`);
    const [worker] = await sb.json<WorkerJson[]>(["worker", "list"]);
    assert.ok(worker, "no worker registered");
    const workerCmd = Deno.readTextFileSync(`/proc/${worker.pid}/cmdline`).split("\0");
    assert.ok(workerCmd.includes(url), `the worker runs ${workerCmd.join(" ")}`);

    const [second] = await sb.enqueue([{ command: "echo from-url-pool" }]);
    await sb.waitForState(second!, "completed", PROMPT_MS);
    assert.match(await sb.ok(["worker", "stop"]), /^Stopped 1 worker/);
    assert.ok(!isRunning(worker.pid));
    await sb.assertNoLeftovers();
  } finally {
    await server.shutdown();
  }
});
