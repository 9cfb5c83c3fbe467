/**
 * The PostgreSQL test helper against the shared server (QUEUECTL_TEST_PG_URL or 127.0.0.1:5432).
 * These fail, never skip, when no server answers: .ci/run provides one.
 */

import assert from "node:assert/strict";
import {
  dropLeftoverDatabases,
  ownerTag,
  pgDatabase,
  PgUnavailableError,
  pgUrl,
  psql,
  PsqlError,
  redactUrl,
  withDatabase,
} from "./pg.ts";
import { procStat } from "./proc.ts";
import { poll, within } from "./poll.ts";

async function databaseExists(name: string): Promise<boolean> {
  return await psql(pgUrl(), `select count(*) from pg_database where datname = '${name}'`) === "1";
}

Deno.test("pgDatabase() gives each test an empty database of its own, dropped on dispose", async () => {
  let first: string;
  {
    await using a = await pgDatabase();
    await using b = await pgDatabase();
    first = a.name;
    assert.notEqual(a.name, b.name);
    assert.equal(await psql(a.url, "select current_database()"), a.name);
    assert.equal(
      await psql(a.url, "select count(*) from pg_tables where schemaname = 'public'"),
      "0",
    );
    await psql(a.url, "create table t (x int); insert into t values (1), (2);");
    assert.equal(await psql(a.url, "select x from t order by x"), "1\n2");
    await assert.rejects(psql(b.url, "select * from t"), PsqlError, "b must not see a's table");
    assert.equal(await databaseExists(a.name), true);
  }
  assert.equal(await databaseExists(first), false, "disposal dropped it");
});

Deno.test("pgDatabase() disposal terminates connections a test left open", async () => {
  let name: string;
  let session: Deno.ChildProcess;
  {
    await using db = await pgDatabase();
    name = db.name;
    session = new Deno.Command("psql", {
      args: ["-X", "-q", "-d", db.url, "-c", "select pg_sleep(60)"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const busy = () =>
      psql(
        pgUrl(),
        `select count(*) from pg_stat_activity where datname = '${name}' and query like '%pg_sleep%'`,
      );
    let seen = "0";
    const deadline = performance.now() + 10_000;
    while ((seen = await busy()) === "0" && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(seen, "1", "the open session shows in pg_stat_activity");
  }
  assert.equal(await databaseExists(name), false);
  const status = await within(session.status, 10_000, "the terminated psql to exit");
  assert.notEqual(status.code, 0, "its connection was terminated, not left to finish");
});

Deno.test("dropLeftoverDatabases() drops what a dead process on this machine left, nothing else", async () => {
  // A real process that has exited: its pid and start time name nobody alive any more.
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  let startTime = 0;
  await poll(() => (startTime = procStat(child.pid)?.startTime ?? 0) > 0, 5_000, "sleep");
  child.kill("SIGKILL");
  await child.status;
  const dead = `queuectl_test_leftover_${Deno.pid}`;
  const otherHost = `queuectl_test_elsewhere_${Deno.pid}`;
  await using live = await pgDatabase();
  await psql(
    pgUrl(),
    `create database ${dead}; comment on database ${dead} is '${
      ownerTag({ pid: child.pid, startTime })
    }';
     create database ${otherHost};
     comment on database ${otherHost} is 'queuectl test host=not-${Deno.hostname()} pid=1 start=1';`,
  );
  try {
    const dropped = await dropLeftoverDatabases(pgUrl());
    assert.deepEqual(dropped.filter((n) => n.endsWith(`_${Deno.pid}`)), [dead]);
    assert.equal(await databaseExists(dead), false);
    assert.equal(await databaseExists(live.name), true, "a live owner's database stays");
    assert.equal(await databaseExists(otherHost), true, "another machine's database stays");
  } finally {
    await psql(
      pgUrl(),
      `drop database if exists ${dead}; drop database if exists ${otherHost};`,
    );
  }
});

Deno.test("pgDatabase() fails with one line naming what to do when no server answers", async () => {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  const url = "postgres://postgres:secret@127.0.0.1:1/postgres";
  const error = await pgDatabase({ serverUrl: url }).then(
    () => assert.fail("expected PgUnavailableError"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof PgUnavailableError, String(error));
  assert.equal(error.message.includes("\n"), false, error.message);
  assert.match(error.message, /^no PostgreSQL server answers at postgres:\/\/postgres:\*\*\*@/);
  assert.match(error.message, /127\.0\.0\.1:1/);
  assert.match(error.message, /QUEUECTL_TEST_PG_URL/);
  assert.match(error.message, /pg_ctlcluster/);
  assert.equal(error.message.includes("secret"), false, "the password is not printed");
});

Deno.test("psql() reports SQL errors with psql's message and URLs keep their parts", async () => {
  await assert.rejects(psql(pgUrl(), "select nope"), (e: unknown) => {
    assert.ok(e instanceof PsqlError);
    assert.match(e.message, /column "nope" does not exist/);
    return true;
  });
  assert.equal(
    withDatabase("postgres://u:p@h:6/postgres?sslmode=disable", "x_1"),
    "postgres://u:p@h:6/x_1?sslmode=disable",
  );
  assert.equal(redactUrl("postgres://u:p@h/db"), "postgres://u:***@h/db");
});
