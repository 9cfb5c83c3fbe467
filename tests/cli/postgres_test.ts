/**
 * queuectl end to end on PostgreSQL: real `deno run main.ts` processes (CLI commands, `worker
 * run`, `worker start`) against a database of the shared server, or a private server that asks
 * for a password. Passwords must never reach a command line, a job's environment, a log line, an
 * error message or JSON output.
 *
 * @module
 */

import assert from "node:assert/strict";
import { MAIN, REPO_DIR, runDeno, runProcess } from "../helpers/cli.ts";
import type { CliResult } from "../helpers/cli.ts";
import { pgDatabase, psql } from "../helpers/pg.ts";
import { pgServer } from "../helpers/pg_server.ts";
import type { PgServer } from "../helpers/pg_server.ts";
import { isRunning } from "../helpers/proc.ts";
import { tempDir } from "../helpers/temp.ts";

/** Polls an async condition every 50 ms until it holds; fails after timeoutMs. */
async function waitForAsync(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!await condition()) {
    if (performance.now() > deadline) {
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A queuectl command against `url` (through QUEUECTL_DB), in a directory of its own. */
function q(
  url: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return runProcess(args, { env: { QUEUECTL_DB: url, ...env } });
}

async function ok(url: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await q(url, args, env);
  assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

function cmdline(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trimEnd();
}

function environ(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0").join("\n");
}

Deno.test("the CLI works on a PostgreSQL queue: enqueue, worker run, wait, status, logs, metrics, dlq, prune", async () => {
  await using db = await pgDatabase();
  const url = db.url;
  assert.equal(
    await ok(url, ["enqueue", '{"id":"hello","command":"echo hello; echo oops >&2"}']),
    "hello\n",
  );
  assert.equal(
    await ok(url, ["enqueue", "-c", "exit 3", "--id", "doomed", "--max-retries", "0"]),
    "doomed\n",
  );
  assert.equal(
    await ok(url, ["enqueue", "-c", "true", "--id", "later", "--delay", "1h"]),
    "later\n",
  );
  const status = JSON.parse(await ok(url, ["status", "--json"]));
  assert.deepEqual(
    [status.counts.pending, status.counts.total, status.counts.scheduled],
    [3, 3, 1],
  );
  const run = await q(url, ["worker", "run", "--once"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /job hello attempt 1: completed \(exit 0\)/);
  assert.match(run.stderr, /job doomed attempt 1: failed \(exited with code 3\) .* -> dead/);
  const wait = await q(url, ["wait", "hello", "--timeout", "10s"]);
  assert.equal(wait.code, 0, wait.stderr);
  assert.equal(
    await ok(url, ["logs", "hello"]),
    "==> stdout of job hello, attempt 1 (6 B) <==\nhello\n==> stderr of job hello, attempt 1 (5 B) <==\noops\n",
  );
  assert.equal(await ok(url, ["logs", "hello", "--stdout"]), "hello\n");
  const show = JSON.parse(await ok(url, ["show", "doomed", "--json"]));
  assert.equal(show.state, "dead");
  assert.match(await ok(url, ["dlq", "list"]), /doomed\s+1\s+.*exited with code 3/);
  const metrics = JSON.parse(await ok(url, ["metrics", "--json"]));
  assert.deepEqual([metrics.counts.completed, metrics.counts.dead], [1, 1]);
  assert.equal(metrics.outcomes.completed, 1);
  assert.deepEqual(
    JSON.parse(await ok(url, ["dlq", "retry", "doomed", "--json"])).map((j: { id: string }) =>
      j.id
    ),
    ["doomed"],
  );
  const again = await q(url, ["worker", "run", "--once"]);
  assert.match(again.stderr, /job doomed attempt 2: failed/);
  const pruned = await q(url, ["prune", "--older-than", "0s", "--state", "all-finished"]);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /^Deleted 2 /);
  const after = JSON.parse(await ok(url, ["status", "--json"]));
  assert.deepEqual([after.counts.total, after.counts.pending], [1, 1]);
  assert.equal(await ok(url, ["config", "set", "max-retries", "5"]), "max-retries = 5\n");
  assert.match(await ok(url, ["config", "get", "max-retries"]), /^5\n?$/);
});

/** `queuectl worker run` on the queue at `url`, a real process; its stderr is kept for the test. */
function spawnWorker(url: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "worker", "run"],
    env: { QUEUECTL_DB: url, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

Deno.test("an idle worker starts a new job within moments: it hears the enqueue (NOTIFY)", async () => {
  await using db = await pgDatabase();
  const url = db.url;
  await ok(url, ["config", "set", "lease-timeout", "6s"]);
  const worker = spawnWorker(url);
  try {
    await waitForAsync(
      async () => (await psql(url, "SELECT count(*) FROM queuectl.workers")) === "1",
      20_000,
      "the worker to register",
    );
    // Let its first idle wait listen.
    await waitForAsync(
      async () =>
        (await psql(
          url,
          "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'queuectl listen'",
        )) === "1",
      20_000,
      "the worker's LISTEN",
    );
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      await ok(url, ["enqueue", "-c", "true", "--id", `n${i}`]);
      const wait = await q(url, ["wait", `n${i}`, "--timeout", "20s"]);
      assert.equal(wait.code, 0, wait.stderr);
      const [created, started] = (await psql(
        url,
        `SELECT j.created_at, a.started_at FROM queuectl.jobs j JOIN queuectl.attempts a
         ON a.job_seq = j.seq WHERE j.id = 'n${i}'`,
      )).split("|").map(Number);
      delays.push(started! - created!);
    }
    // The worker's safety poll is 2 s and its idle wake-up 5 s: only a notification is this quick.
    assert.ok(delays.every((ms) => ms < 1000), `pickup delays ${delays.join(", ")} ms`);
  } finally {
    worker.kill("SIGTERM");
    const { code, stderr } = await worker.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
  }
});

Deno.test("times come from the database: a host clock an hour ahead changes no stored time", async () => {
  await using db = await pgDatabase();
  const url = db.url;
  const ahead = { QUEUECTL_TEST: "1", QUEUECTL_TEST_CLOCK_OFFSET_MS: String(3_600_000) };
  await ok(url, ["enqueue", "-c", "true", "--id", "soon", "--delay", "30m"]);
  await ok(url, ["enqueue", "-c", "true", "--id", "ahead", "--delay", "10s"], ahead);
  const [created, runAt, now] = (await psql(
    url,
    `SELECT created_at, run_at, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
     FROM queuectl.jobs WHERE id = 'ahead'`,
  )).split("|").map(Number);
  assert.ok(Math.abs(now! - created!) < 60_000, `created ${created}, database now ${now}`);
  assert.equal(runAt! - created!, 10_000);
  // A worker an hour ahead does not start a job due in 30 minutes (database time).
  const run = await q(url, ["worker", "run", "--once"], ahead);
  assert.equal(run.code, 0, run.stderr);
  assert.doesNotMatch(run.stderr, /job soon/);
  assert.equal(await psql(url, "SELECT state FROM queuectl.jobs WHERE id = 'soon'"), "pending");
});

/** A private server that asks TCP clients for a password (scram), with role `app` owning `q`. */
async function passwordServer(): Promise<
  { server: PgServer; url: string; password: string } & AsyncDisposable
> {
  const server = await pgServer({ trust: [] });
  const socket = `postgresql:///postgres?host=${
    encodeURIComponent(server.dir)
  }&port=${server.port}&user=postgres`;
  const password = "s3cr@t:pw/x";
  await psql(socket, `CREATE ROLE app LOGIN PASSWORD '${password}'`);
  await psql(socket, "CREATE DATABASE q OWNER app");
  Deno.writeTextFileSync(
    `${server.dir}/data/pg_hba.conf`,
    "host all all 127.0.0.1/32 scram-sha-256\n",
    { append: true },
  );
  await psql(socket, "SELECT pg_reload_conf()");
  const url = `postgres://app:${encodeURIComponent(password)}@127.0.0.1:${server.port}/q`;
  return { server, url, password, [Symbol.asyncDispose]: () => server[Symbol.asyncDispose]() };
}

Deno.test("a password comes from the URL, PGPASSWORD or a pgpass file, and is never printed", async () => {
  await using pg = await passwordServer();
  await using dir = await tempDir();
  const bare = pg.url.replace(/:[^:@/]+@/, "@");
  assert.ok(!bare.includes(encodeURIComponent(pg.password)), bare);
  // From the URL.
  assert.equal(await ok(pg.url, ["enqueue", "-c", "true", "--id", "by-url"]), "by-url\n");
  // From PGPASSWORD.
  assert.equal(
    await ok(bare, ["enqueue", "-c", "true", "--id", "by-env"], { PGPASSWORD: pg.password }),
    "by-env\n",
  );
  // From a pgpass file (escaped ':'), and only one that others cannot read.
  const pgpass = `${dir.path}/pgpass`;
  const line = `127.0.0.1:${pg.server.port}:q:app:${pg.password.replaceAll(":", "\\:")}\n`;
  Deno.writeTextFileSync(pgpass, `# comment\nother:*:*:*:nope\n${line}`, { mode: 0o600 });
  Deno.chmodSync(pgpass, 0o600);
  assert.equal(
    await ok(bare, ["enqueue", "-c", "true", "--id", "by-pgpass"], { PGPASSFILE: pgpass }),
    "by-pgpass\n",
  );
  Deno.chmodSync(pgpass, 0o644);
  const open = await q(bare, ["status"], { PGPASSFILE: pgpass, HOME: dir.path });
  assert.equal(open.code, 6, "a pgpass file others may read is ignored, as libpq does");
  // A wrong password: exit 6, one line, the hint, and no password (given or right) anywhere.
  const wrong = pg.url.replace(encodeURIComponent(pg.password), "wrong-pw-123");
  const refused = await q(wrong, ["status", "--json"]);
  assert.equal(refused.code, 6);
  assert.match(
    refused.stderr,
    /^queuectl: Database refused the login: postgres:\/\/app@127\.0\.0\.1:\d+\/q: password authentication failed for user "app" \(check the user and the password/,
  );
  assert.equal(refused.stderr.split("\n").length, 2, refused.stderr);
  for (const output of [refused.stdout, refused.stderr]) {
    assert.ok(!output.includes("wrong-pw-123") && !output.includes(pg.password), output);
  }
  const debug = await q(wrong, ["status", "--debug"]);
  assert.ok(!debug.stderr.includes("wrong-pw-123"), "--debug shows the password");
  assert.deepEqual(
    (await q(pg.url, ["list", "--json"])).stdout.includes(pg.password),
    false,
  );
});

Deno.test("workers get a URL's password through their environment: never on a command line, in a job, a log or JSON", async () => {
  await using pg = await passwordServer();
  await using dir = await tempDir();
  const secret = encodeURIComponent(pg.password);
  const home = { XDG_DATA_HOME: `${dir.path}/data`, HOME: dir.path };
  // --db on the command line of `worker start` (the user's own), --detach: the supervisor and
  // its workers must not carry it on theirs.
  const start = await runProcess(
    ["--db", pg.url, "worker", "start", "--count", "2", "--detach", "--json"],
    { env: { ...home, QUEUECTL_DB: undefined } },
  );
  assert.equal(start.code, 0, start.stderr);
  const started = JSON.parse(start.stdout) as { pid: number; log: string };
  assert.ok(!start.stdout.includes(pg.password) && !start.stdout.includes(secret), start.stdout);
  assert.equal(
    started.log,
    `${dir.path}/data/queuectl/postgres-127.0.0.1-${pg.server.port}-q-queuectl.log`,
  );
  try {
    const list = await runProcess(["worker", "list", "--json"], {
      env: { ...home, QUEUECTL_DB: pg.url },
    });
    assert.equal(list.code, 0, list.stderr);
    const workers = JSON.parse(list.stdout) as { pid: number }[];
    assert.equal(workers.length, 2);
    for (const pid of [started.pid, ...workers.map((w) => w.pid)]) {
      const line = cmdline(pid);
      assert.ok(!line.includes(secret) && !line.includes(pg.password), `pid ${pid}: ${line}`);
      assert.ok(!line.includes("postgres://"), `pid ${pid} names the URL: ${line}`);
    }
    // A job sees where the queue is, without the password, and no PGPASSWORD.
    const id = (await ok(pg.url, ["enqueue", "-c", "env | sort"])).trim();
    const wait = await runProcess(["wait", id, "--timeout", "20s"], {
      env: { QUEUECTL_DB: pg.url },
    });
    assert.equal(wait.code, 0, wait.stderr);
    const env = await ok(pg.url, ["logs", id, "--stdout"]);
    assert.match(
      env,
      new RegExp(`^QUEUECTL_DB=postgres://app@127\\.0\\.0\\.1:${pg.server.port}/q$`, "m"),
    );
    assert.ok(!env.includes(pg.password) && !env.includes(secret), env);
    assert.doesNotMatch(env, /^PGPASSWORD=/m);
    for (const command of [["status", "--json"], ["show", id, "--json"], ["metrics", "--json"]]) {
      const out = await ok(pg.url, command);
      assert.ok(!out.includes(pg.password) && !out.includes(secret), command.join(" "));
    }
  } finally {
    const stop = await runProcess(["worker", "stop"], { env: { ...home, QUEUECTL_DB: pg.url } });
    assert.equal(stop.code, 0, stop.stderr);
  }
  assert.equal(isRunning(started.pid), false);
  const log = Deno.readTextFileSync(started.log);
  assert.match(log, /supervisor \d+ starting 2 workers/);
  assert.ok(!log.includes(pg.password) && !log.includes(secret), log);
});

Deno.test("worker run --db URL moves the URL out of its command line when it re-executes itself", async () => {
  await using pg = await passwordServer();
  const secret = encodeURIComponent(pg.password);
  const worker = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "--db", pg.url, "worker", "run"],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stopped: Promise<Deno.CommandOutput> | undefined;
  try {
    let line = "";
    await waitForAsync(
      () => {
        line = cmdline(worker.pid);
        return Promise.resolve(environ(worker.pid).includes("QUEUECTL_WORKER_TUNED=1"));
      },
      20_000,
      "the worker to re-execute itself",
    );
    assert.ok(!line.includes(secret) && !line.includes(pg.password), line);
    assert.match(line, /main\.ts worker run$/);
    // It still works: it runs a job.
    const id = (await ok(pg.url, ["enqueue", "-c", "echo ran"])).trim();
    const wait = await runProcess(["wait", id, "--timeout", "20s"], {
      env: { QUEUECTL_DB: pg.url },
    });
    assert.equal(wait.code, 0, wait.stderr);
    worker.kill("SIGTERM");
    stopped = worker.output();
    const { code, stderr } = await stopped;
    const text = new TextDecoder().decode(stderr);
    assert.equal(code, 0, text);
    assert.match(text, /started \(pid/);
    assert.ok(!text.includes(pg.password) && !text.includes(secret), text);
  } finally {
    if (stopped === undefined) {
      worker.kill("SIGKILL");
      await worker.output();
    }
  }
});

Deno.test("deno task demo --db postgres://… runs unchanged and leaves no schema behind", async () => {
  await using db = await pgDatabase();
  const demo = await runDeno(["run", "-A", `${REPO_DIR}docs/demo.ts`, "--db", db.url], {
    env: { QUEUECTL_DB: undefined },
  });
  assert.equal(demo.code, 0, demo.stderr);
  assert.match(
    demo.stdout,
    /^queuectl demo: a fresh queue in postgres:\/\/.*\?schema=queuectl_demo_\d+\n/,
  );
  for (
    const step of [
      /\$ queuectl wait hello slow urgent doomed later --timeout 30s\n/,
      /hello\s+completed/,
      /doomed\s+dead/,
      /Stopped 2 workers/,
    ]
  ) {
    assert.match(demo.stdout, step);
  }
  // `wait` exits 1 when a job it waits for is dead (doomed is); nothing else fails.
  assert.deepEqual(demo.stdout.match(/\(exit \d+\)/g), ["(exit 1)"]);
  assert.match(demo.stdout, /--timeout 30s\n(.*\n)*\(exit 1\)\n\n\$ queuectl status\n/);
  assert.equal(
    await psql(db.url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'queuectl_demo_%'"),
    "0",
  );
});

Deno.test("a worker rides out a server restart and pg_terminate_backend: its job finishes, the next runs", async () => {
  await using server = await pgServer();
  await psql(server.url(), "CREATE DATABASE q");
  const url = server.url({ database: "q" });
  await ok(url, ["config", "set", "lease-timeout", "30s"]);
  const first = (await ok(url, ["enqueue", "-c", "sleep 3; echo survived"])).trim();
  const worker = spawnWorker(url);
  let log = "";
  try {
    await waitForAsync(
      async () =>
        (await psql(url, `SELECT state FROM queuectl.jobs WHERE id = '${first}'`)) === "processing",
      20_000,
      "the job to start",
    );
    await server.restart();
    await psql(
      url,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'q' AND application_name LIKE 'queuectl%'",
    );
    const wait = await q(url, ["wait", first, "--timeout", "30s"]);
    assert.equal(wait.code, 0, wait.stderr);
    assert.equal(await ok(url, ["logs", first, "--stdout"]), "survived\n");
    const attempts = await psql(
      url,
      `SELECT count(*) FROM queuectl.attempts a JOIN queuectl.jobs j ON j.seq = a.job_seq WHERE j.id = '${first}'`,
    );
    assert.equal(attempts, "1", "the job ran again");
    const second = (await ok(url, ["enqueue", "-c", "echo next"])).trim();
    const next = await q(url, ["wait", second, "--timeout", "30s"]);
    assert.equal(next.code, 0, next.stderr);
  } finally {
    worker.kill("SIGTERM");
    const { code, stderr } = await worker.output();
    log = new TextDecoder().decode(stderr);
    assert.equal(code, 0, log);
  }
  assert.match(log, /job \S+ attempt 1: completed \(exit 0\)/);
  assert.doesNotMatch(log, /lease lost/);
});

Deno.test("deno run of main.ts served over HTTP reaches a PostgreSQL queue (the driver's specifier is versioned)", async () => {
  await using db = await pgDatabase();
  await using dir = await tempDir();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    if (path.split("/").includes("..")) return new Response("no", { status: 403 });
    try {
      return new Response(await Deno.readFile(`${REPO_DIR}${path.slice(1)}`), {
        headers: { "content-type": "application/typescript; charset=utf-8" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}/main.ts`;
    // A fresh DENO_DIR and no deno.json: the modules come over HTTP, the driver from npm.
    // What reaching the registry takes here (a proxy, a custom CA) passes through.
    const network = Object.fromEntries(
      Object.entries(Deno.env.toObject()).filter(([name]) =>
        /^(https?_proxy|no_proxy|all_proxy|deno_cert|deno_tls_ca_store|node_extra_ca_certs|npm_config_registry)$/i
          .test(name)
      ),
    );
    const options = {
      cwd: dir.path,
      env: { ...network, DENO_DIR: `${dir.path}/deno-dir`, QUEUECTL_DB: db.url },
    };
    const enqueue = await runDeno(["run", "-A", "--quiet", url, "enqueue", "-c", "true"], options);
    assert.deepEqual([enqueue.code, enqueue.stdout, enqueue.stderr], [0, "1\n", ""]);
    const status = await runDeno(["run", "-A", "--quiet", url, "status", "--json"], options);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).counts.pending, 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("cancel and retry on a PostgreSQL queue: a running job's tree is killed within a second", async () => {
  await using db = await pgDatabase();
  await using dir = await tempDir();
  const url = db.url;
  const pids = `${dir.path}/pids`;
  await ok(url, ["config", "set", "lease-timeout", "6s"]);
  await ok(url, ["enqueue", "-c", "true", "--id", "later", "--delay", "1h"]);
  await ok(url, [
    "enqueue",
    "-c",
    `echo $$ > '${pids}'; sleep 300 & echo $! >> '${pids}'; sleep 300`,
    "--id",
    "hang",
  ]);
  const worker = spawnWorker(url);
  try {
    let procs: number[] = [];
    await waitForAsync(
      async () => {
        try {
          procs = (await Deno.readTextFile(pids)).split("\n").filter(Boolean).map(Number);
        } catch {
          return false;
        }
        return procs.length === 2;
      },
      20_000,
      "the job's processes",
    );
    assert.equal(await ok(url, ["cancel", "later", "hang", "--reason", "stuck"]), "later\nhang\n");
    const asked = performance.now();
    await waitForAsync(() => Promise.resolve(procs.every((p) => !isRunning(p))), 5000, "the kill");
    const took = performance.now() - asked;
    assert.ok(took < 1000, `the job's processes outlived the cancel by ${Math.round(took)} ms`);
    await waitForAsync(
      async () => JSON.parse(await ok(url, ["show", "hang", "--json"])).state === "cancelled",
      5000,
      "the job to be cancelled",
    );
    const show = JSON.parse(await ok(url, ["show", "hang", "--json"]));
    assert.deepEqual(show.history.map((a: { outcome: string }) => a.outcome), ["cancelled"]);
    assert.equal(show.cancel_reason, "stuck");
    const status = JSON.parse(await ok(url, ["status", "--json"]));
    assert.equal(status.counts.cancelled, 2);
    const again = await q(url, ["cancel", "hang"]);
    assert.equal(again.code, 3, again.stderr);
    // Back with a fresh budget and due now: the worker runs it.
    assert.equal(await ok(url, ["retry", "later"]), "later\n");
    const wait = await q(url, ["wait", "later", "--timeout", "20s"]);
    assert.equal(wait.code, 0, wait.stderr);
  } finally {
    worker.kill("SIGTERM");
    const { code, stderr } = await worker.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
  }
});

Deno.test("status names each worker's host on a PostgreSQL queue shared with another host", async () => {
  await using db = await pgDatabase();
  const url = db.url;
  // The queue's schema exists before anyone looks at its tables.
  await ok(url, ["config", "set", "lease-timeout", "6s"]);
  const worker = spawnWorker(url);
  try {
    await waitForAsync(
      async () => (await psql(url, "SELECT count(*) FROM queuectl.workers")) === "1",
      20_000,
      "the worker to register",
    );
    // Alone on this host, the table keeps its narrow form.
    assert.doesNotMatch(await ok(url, ["status"], { NO_COLOR: "1" }), /\bHOST\b/);
    // A worker of another machine (another pid namespace), heartbeating by the database's clock.
    await psql(
      url,
      `INSERT INTO queuectl.workers (id, pid, host, host_id, pid_start, state, started_at,
         heartbeat_at, jobs_done, jobs_failed, busy_ms)
       SELECT 'w-far', 4242, 'far-away', 'another-pid-namespace', NULL, 'running', t, t, 7, 0, 0
       FROM (SELECT floor(extract(epoch FROM now()) * 1000)::bigint AS t) now`,
    );
    const text = await ok(url, ["status"], { NO_COLOR: "1" });
    const header = text.split("\n").find((l) => /^\s*ID\s+PID\s/.test(l));
    assert.ok(header, `no worker table in:\n${text}`);
    assert.match(header, /^\s*ID\s+PID\s+HOST\s+STATE\s/);
    assert.match(text, /w-far\s+4242\s+far-away\s/);
    const local = Deno.hostname();
    assert.match(text, new RegExp(`w${worker.pid}-\\w+\\s+${worker.pid}\\s+${local}\\s`));
  } finally {
    worker.kill("SIGTERM");
    const { code, stderr } = await worker.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
  }
});
