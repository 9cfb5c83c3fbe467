/**
 * `deno run <URL of main.ts>` must work: every import is a full specifier, and the commands,
 * loaded through computed dynamic imports, resolve against the URL too.
 *
 * @module
 */

import assert from "node:assert/strict";
import { REPO_DIR, runDeno } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";

const TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  json: "application/json",
};

Deno.test("deno run of main.ts served over HTTP runs status and enqueue", async () => {
  await using dir = await tempDir();
  const requested: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    requested.push(path);
    if (path.split("/").includes("..")) return new Response("no", { status: 403 });
    try {
      const body = await Deno.readFile(`${REPO_DIR}${path.slice(1)}`);
      const type = TYPES[path.slice(path.lastIndexOf(".") + 1)] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/main.ts`;
    // A fresh DENO_DIR and a directory without deno.json: nothing comes from a cache or the
    // checkout's lock file, everything over HTTP.
    const options = { cwd: dir.path, env: { DENO_DIR: `${dir.path}/deno-dir` } };
    const db = `${dir.path}/queue.db`;
    const status = await runDeno(["run", "-A", "--quiet", url, "--db", db, "status"], options);
    assert.equal(status.code, 0, status.stderr);
    assert.ok(
      status.stdout.startsWith("Job Queue Status\n================\nPending        0 jobs\n"),
    );
    const enqueue = await runDeno([
      "run",
      "-A",
      "--quiet",
      url,
      "--db",
      db,
      "enqueue",
      "-c",
      "echo hi",
    ], options);
    assert.deepEqual([enqueue.code, enqueue.stdout, enqueue.stderr], [0, "1\n", ""]);
    assert.ok(requested.includes("/lib/cli/commands/status.ts"), requested.join(" "));
    assert.ok(requested.includes("/lib/cli/commands/enqueue.ts"));
    assert.ok(requested.includes("/lib/store/sqlite/store.ts"));
  } finally {
    await server.shutdown();
  }
});
