/**
 * `queuectl dashboard` as a process: where it listens, its token file, what it prints, how it
 * stops, and how it refuses what it cannot do. (The pages themselves: tests/web/.)
 */

import assert from "node:assert/strict";
import { DEFAULT_PORT } from "../../lib/cli/commands/dashboard.ts";
import { REPO_DIR, runProcess } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";
import { startDashboard } from "../web/_process.ts";

/** Local addresses listening on `port`, from /proc/net/tcp and tcp6 (what `ss -ltn` shows). */
function listeners(port: number): string[] {
  const out: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(file).split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (local === undefined || state !== "0A") continue; // 0A: LISTEN
      const [address, hexPort] = local.split(":") as [string, string];
      if (parseInt(hexPort, 16) === port) out.push(address);
    }
  }
  return out;
}

Deno.test("dashboard listens on 127.0.0.1 only, keeps its token 0600 beside the queue, and stops on a signal with exit 0", async () => {
  await using dir = await tempDir();
  const tokenFile = `${dir.db}.dashboard-token`;
  let token: string;
  {
    await using d = await startDashboard(dir.db);
    assert.deepEqual(listeners(d.port), ["0100007F"], "127.0.0.1 and nothing else");
    const info = Deno.statSync(tokenFile);
    assert.equal(info.mode! & 0o777, 0o600);
    token = d.token;
    assert.match(token, /^[0-9a-f]{64}$/, "256 random bits");
    assert.equal(
      d.banner,
      `queuectl dashboard for ${dir.db}\n` +
        `Open http://127.0.0.1:${d.port}/login and sign in with the token in ${tokenFile}\n` +
        `(a new token was made in ${tokenFile}; remove the file to change it)\n` +
        "Ctrl-C to stop\n",
      "off a terminal the token is not printed",
    );
    const session = await fetch(`${d.base}/api/session`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(session.status, 200);
    assert.equal((await session.json()).location, dir.db);
    const refused = await fetch(`${d.base}/api/session`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    assert.equal(await d.stop("SIGINT"), 0);
    assert.equal(d.stderr(), "Stopped the dashboard.\n");
  }
  // The same token next time; SIGTERM stops it too.
  await using again = await startDashboard(dir.db, ["--read-only"]);
  assert.equal(again.token, token);
  assert.match(
    again.banner,
    /^queuectl dashboard for .* \(read-only\)\nOpen .*\nCtrl-C to stop\n$/,
  );
  assert.equal(await again.stop("SIGTERM"), 0);
  assert.ok(!again.stderr().includes(token));
});

Deno.test("dashboard refuses a port in use (exit 3), a token file others can read (exit 2) and a bad --host (exit 2)", async () => {
  await using dir = await tempDir();
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port;
  const taken = await runProcess(["--db", dir.db, "dashboard", "--port", String(port)]);
  assert.equal(taken.code, 3);
  assert.equal(
    taken.stderr,
    `queuectl: Port ${port} on 127.0.0.1 is in use (choose another --port, or --port 0 for any free one)\n`,
  );
  const tokenFile = `${dir.path}/token`;
  Deno.writeTextFileSync(tokenFile, "x".repeat(40), { mode: 0o644 });
  Deno.chmodSync(tokenFile, 0o644);
  const open = await runProcess(["--db", dir.db, "dashboard", "--token-file", tokenFile]);
  assert.equal(open.code, 2);
  assert.equal(
    open.stderr,
    `queuectl: Token file ${tokenFile} can be read by others (mode 644) (chmod 600 ${tokenFile})\n`,
  );
  Deno.chmodSync(tokenFile, 0o600);
  Deno.writeTextFileSync(tokenFile, "short\n");
  const short = await runProcess(["--db", dir.db, "dashboard", "--token-file", tokenFile]);
  assert.equal(short.code, 2);
  assert.match(short.stderr, /holds no usable token \(32 or more letters/);
  const host = await runProcess(["--db", dir.db, "dashboard", "--host", "bad host"]);
  assert.equal(host.code, 2);
  assert.match(host.stderr, /^queuectl: Invalid value "bad host" for --host/);
  const missing = await runProcess([
    "--db",
    dir.db,
    "dashboard",
    "--token-file",
    `${dir.path}/no/such/dir/token`,
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Cannot use the token file .*: its directory does not exist/);
});

Deno.test("dashboard --host 0.0.0.0 warns that it is reachable from elsewhere; --token-file keeps the token there", async () => {
  await using dir = await tempDir();
  const tokenFile = `${dir.path}/my-token`;
  await using d = await startDashboard(dir.db, ["--host", "0.0.0.0", "--token-file", tokenFile], {
    tokenFile,
  });
  assert.equal(Deno.statSync(tokenFile).mode! & 0o777, 0o600);
  assert.deepEqual(listeners(d.port), ["00000000"]);
  // The warning comes just after the banner; wait for it.
  for (let i = 0; i < 100 && !d.stderr().includes("warning"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.match(
    d.stderr(),
    /^queuectl: warning: the dashboard listens on .*:\d+, reachable from other machines, over plain HTTP: .* ssh -L \d+:127\.0\.0\.1:\d+ HOST\n$/,
  );
  const response = await fetch(`http://127.0.0.1:${d.port}/api/session`, {
    headers: { authorization: `Bearer ${d.token}` },
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  assert.equal(await d.stop(), 0);
});

Deno.test("dashboard without --port takes 8642, or the next free port after it", async () => {
  await using dir = await tempDir();
  let held: Deno.Listener | undefined;
  try {
    held = Deno.listen({ hostname: "127.0.0.1", port: DEFAULT_PORT });
  } catch { /* in use already (another test's dashboard): just as good */ }
  try {
    await using d = await startDashboard(dir.db, [], { defaultPort: true });
    assert.ok(d.port > DEFAULT_PORT && d.port < DEFAULT_PORT + 10, `port ${d.port}`);
  } finally {
    held?.close();
  }
});

Deno.test("dashboard runs from a URL (deno run http://…/main.ts), serving the assets it embeds", async () => {
  await using dir = await tempDir();
  const requested: string[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      requested.push(path);
      if (path.split("/").includes("..")) return new Response("no", { status: 403 });
      try {
        const body = await Deno.readFile(`${REPO_DIR}${path.slice(1)}`);
        return new Response(body, {
          headers: { "content-type": "application/typescript; charset=utf-8" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  await using d = await startDashboard(dir.db, [], {
    main: `http://127.0.0.1:${server.addr.port}/main.ts`,
    env: { DENO_DIR: `${dir.path}/deno-dir` },
  });
  for (const name of ["app.js", "app.css", "dom.js", "chart.js", "icon.svg"]) {
    const response = await fetch(`${d.base}/assets/${name}`);
    assert.equal(response.status, 200, name);
    assert.equal(await response.text(), Deno.readTextFileSync(`${REPO_DIR}lib/web/client/${name}`));
  }
  assert.ok(requested.includes("/lib/web/assets.ts"));
  assert.deepEqual(requested.filter((p) => p.startsWith("/lib/web/client/")), [], "no file read");
  assert.equal(await d.stop(), 0);
});
