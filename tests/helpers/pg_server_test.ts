/**
 * The private PostgreSQL server helper: real initdb, real pg_ctl, real connections.
 */

import assert from "node:assert/strict";
import { FAST_TEST_SETTINGS, pgServer, removeLeftoverServers } from "./pg_server.ts";
import { PgUnavailableError, psql } from "./pg.ts";
import { isRunning } from "./proc.ts";
import { poll, within } from "./poll.ts";

function uidOf(pid: number): number {
  const line = Deno.readTextFileSync(`/proc/${pid}/status`).split("\n").find((l) =>
    l.startsWith("Uid:")
  );
  return Number(line?.split(/\s+/)[1]);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("pgServer() runs a private server as an unprivileged user, with the test settings", async () => {
  let dir: string;
  let pid: number;
  let url: string;
  {
    await using server = await pgServer();
    dir = server.dir;
    url = server.url();
    pid = server.pid() ?? 0;
    assert.ok(pid > 0, "the postmaster runs");
    assert.notEqual(uidOf(pid), 0, "PostgreSQL runs as an unprivileged user");
    if (Deno.uid() !== 0) assert.equal(uidOf(pid), Deno.uid());
    assert.equal(url, `postgres://postgres@127.0.0.1:${server.port}/postgres`);
    assert.equal(
      await psql(
        url,
        "select current_setting('fsync'), current_setting('synchronous_commit'), " +
          "current_setting('listen_addresses'), current_setting('port'), current_user",
      ),
      `off|on|127.0.0.1|${server.port}|postgres`,
    );
    assert.equal(FAST_TEST_SETTINGS.fsync, "off");
  }
  assert.equal(exists(dir), false, "disposal removed the directory");
  assert.equal(isRunning(pid), false, "disposal stopped the postmaster");
  await assert.rejects(psql(url, "select 1"), PgUnavailableError);
});

Deno.test("pgServer() restart() cuts sessions, keeps the port and the data, stop()/start() too", async () => {
  await using server = await pgServer();
  const url = server.url();
  await psql(url, "create table t (x int); insert into t values (1);");
  const session = new Deno.Command("psql", {
    args: ["-X", "-q", "-d", url, "-c", "select pg_sleep(60)"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const before = server.pid();
  const port = server.port;
  // Wait until the session is really inside the server, so the restart has one to cut.
  const deadline = performance.now() + 10_000;
  while (
    await psql(url, "select count(*) from pg_stat_activity where query like 'select pg_sleep%'") ===
      "0"
  ) {
    assert.ok(performance.now() < deadline, "the session never showed up");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await server.restart();
  const status = await within(session.status, 10_000, "the cut session to end");
  assert.notEqual(status.code, 0, "the session was cut by the restart");
  assert.notEqual(server.pid(), before, "a new postmaster");
  assert.equal(server.port, port);
  await psql(url, "insert into t values (2)");
  // An immediate shutdown is a crash for the server: committed rows must survive it.
  await server.restart({ mode: "immediate" });
  assert.equal(await psql(url, "select string_agg(x::text, ',' order by x) from t"), "1,2");
  await server.stop();
  assert.equal(server.pid(), null);
  await assert.rejects(psql(url, "select 1"), PgUnavailableError);
  await server.start();
  assert.equal(await psql(url, "select count(*) from t"), "2");
});

Deno.test("pgServer() lets in over TCP only the addresses it trusts; its socket always", async () => {
  await using server = await pgServer({ trust: [] });
  await assert.rejects(psql(server.url(), "select 1"), (error: unknown) => {
    assert.ok(error instanceof PgUnavailableError, String(error));
    assert.match(
      error.message,
      /refuses the connection .*no pg_hba\.conf entry for host "127\.0\.0\.1"/,
    );
    assert.equal(error.message.includes("\n"), false);
    return true;
  });
  const socketUrl = `postgresql://postgres@/postgres?host=${server.dir}&port=${server.port}`;
  assert.equal(await psql(socketUrl, "select 1"), "1");
});

Deno.test("pgServer() disposal stops the server and removes its directory when the test throws", async () => {
  let dir = "";
  let pid = 0;
  await assert.rejects(async () => {
    await using server = await pgServer();
    dir = server.dir;
    pid = server.pid() ?? 0;
    throw new Error("the test failed");
  }, /the test failed/);
  assert.ok(dir !== "" && pid > 0);
  assert.equal(exists(dir), false);
  assert.equal(isRunning(pid), false);
});

Deno.test("removeLeftoverServers() stops and removes the server of a test process that was killed", async () => {
  const script = `
    import { pgServer } from ${JSON.stringify(new URL("./pg_server.ts", import.meta.url).href)};
    const server = await pgServer();
    console.log(JSON.stringify({ dir: server.dir, pid: server.pid() }));
    await new Promise(() => {});`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await within(reader.read(), 30_000, "the child's server");
  const { dir, pid } = JSON.parse(value ?? "{}") as { dir: string; pid: number };
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  assert.ok(isRunning(pid), "the killed test process left its server running");
  const removed = await removeLeftoverServers();
  assert.ok(removed.includes(dir), `removed: ${removed.join(", ")}`);
  assert.equal(exists(dir), false);
  await poll(() => !isRunning(pid), 10_000, "the leftover postmaster to go");
});

Deno.test("pgBinDir() finds Debian's /usr/lib/postgresql/N/bin when PATH has no initdb", async () => {
  const script = `
    import { pgBinDir, pgProgram } from ${JSON.stringify(new URL("./pg.ts", import.meta.url).href)};
    console.log(JSON.stringify({ dir: pgBinDir(), initdb: pgProgram("initdb") }));`;
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/", ...denoDirEnv() },
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  const found = JSON.parse(new TextDecoder().decode(stdout)) as { dir: string; initdb: string };
  assert.match(found.dir, /^\/usr\/lib\/postgresql\/\d+\/bin$/);
  assert.equal(found.initdb, `${found.dir}/initdb`);
});

function denoDirEnv(): Record<string, string> {
  const dir = Deno.env.get("DENO_DIR");
  return dir ? { DENO_DIR: dir } : {};
}
