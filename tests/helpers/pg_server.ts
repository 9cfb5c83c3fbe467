/**
 * A private PostgreSQL server for one test: for tests that need a server of their own (several
 * hosts against one server bound to a veth address, restarts under load, settings of their own)
 * rather than a database on the shared one (`pg.ts`).
 *
 * ```ts
 * await using server = await pgServer({ listen: ["127.0.0.1"] });
 * await psql(server.url(), "select 1");
 * await server.restart();
 * ```
 *
 * `initdb` runs as an unprivileged OS user (`postgres` when the tests run as root, else the
 * current user) in a temporary directory; the server listens where it is told, trusts exactly the
 * addresses it is given, uses the test-only settings of `FAST_TEST_SETTINGS`, and disposal stops it
 * and removes the directory, also when the test failed. A directory a killed test run left behind
 * (its server may still run) is stopped and removed by the next run on this machine.
 *
 * @module
 */

import { pgProgram } from "./pg.ts";
import { isRunning, procStat } from "./proc.ts";

/**
 * Settings that make a throwaway cluster fast, and why each is safe *for tests*:
 * - `fsync = off`, `full_page_writes = off`: only an operating-system crash or power loss can
 *   lose or corrupt data because of them, and no test survives one anyway; a killed or
 *   `-m immediate` stopped server still loses nothing (the OS has the writes).
 * - `wal_level = minimal`: no replication here; less WAL to write.
 * - `synchronous_commit` stays `on` on purpose: with it off, a commit the client saw could vanish
 *   when a test crashes the server (`restart({ mode: "immediate" })`), and a "nothing lost" test
 *   would fail for a reason that is the harness's, not the code's.
 */
export const FAST_TEST_SETTINGS: Readonly<Record<string, string | number>> = {
  fsync: "off",
  full_page_writes: "off",
  wal_level: "minimal",
  max_wal_senders: 0,
  shared_buffers: "32MB",
  max_connections: 200,
  checkpoint_timeout: "30min",
  max_wal_size: "1GB",
  lc_messages: "C",
  timezone: "UTC",
};

export type ShutdownMode = "smart" | "fast" | "immediate";

export interface PgServerOptions {
  /** `listen_addresses` (default `["127.0.0.1"]`). The addresses must exist when it starts. */
  listen?: readonly string[];
  /**
   * Client addresses (CIDR) allowed in without a password (default `["127.0.0.1/32"]`); any
   * other TCP client is refused. Unix-socket connections (in the server's directory) are trusted.
   */
  trust?: readonly string[];
  /** The port (default: one free on the first listen address, chosen again if taken meanwhile). */
  port?: number;
  /** Settings over `FAST_TEST_SETTINGS`, written to postgresql.conf. */
  settings?: Readonly<Record<string, string | number | boolean>>;
  /** The OS user that owns and runs the cluster when the tests run as root (default postgres). */
  osUser?: string;
}

export interface PgServer extends AsyncDisposable {
  /** The temporary directory: `data/`, `server.log`, the Unix socket. */
  readonly dir: string;
  readonly port: number;
  /** The first listen address. */
  readonly host: string;
  /** postgres://postgres@HOST:PORT/DATABASE (defaults: this server's host, `postgres`). */
  url(options?: { host?: string; database?: string }): string;
  /** The postmaster's pid while it runs, else null. */
  pid(): number | null;
  start(): Promise<void>;
  /** `pg_ctl stop -m MODE` (default fast); does nothing when it is not running. */
  stop(options?: { mode?: ShutdownMode }): Promise<void>;
  /** Stops (`-m MODE`, default fast) and starts again on the same port: sessions are cut. */
  restart(options?: { mode?: ShutdownMode }): Promise<void>;
  /** The server log so far (for failure messages). */
  log(): Promise<string>;
}

/** Thrown when the server cannot be set up or started; the message says why in one line. */
export class PgServerError extends Error {
  override name = "PgServerError";
}

interface OsUser {
  uid: number;
  gid: number;
}

function lookupUser(name: string): OsUser | null {
  for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name) return { uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

/** Who runs initdb and the server: never root (PostgreSQL refuses to). */
function serverUser(name: string): OsUser | null {
  if (Deno.uid() !== 0) return null; // ourselves
  const user = lookupUser(name);
  if (!user) {
    throw new PgServerError(
      `running as root, and there is no OS user "${name}" to own the test cluster ` +
        "(apt-get install postgresql creates it): create one or pass osUser",
    );
  }
  return user;
}

function program(name: string): string {
  const path = pgProgram(name);
  if (!path) {
    throw new PgServerError(
      `${name} not found (not on PATH, not in /usr/lib/postgresql/*/bin, QUEUECTL_TEST_PG_BIN ` +
        "unset): apt-get install postgresql, or run .ci/run",
    );
  }
  return path;
}

const decoder = new TextDecoder();

async function runAs(
  user: OsUser | null,
  command: string,
  args: string[],
  cwd: string,
): Promise<{ ok: boolean; output: string }> {
  const { success, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    env: { LC_ALL: "C", TZ: "UTC" },
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  return { ok: success, output: (decoder.decode(stdout) + decoder.decode(stderr)).trim() };
}

/** A TCP port nothing listens on at `hostname` right now (the kernel's pick). */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function quoteConf(value: string | number | boolean): string {
  if (typeof value !== "string") return String(value);
  return `'${value.replaceAll("'", "''")}'`;
}

function postmasterPid(dataDir: string): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dataDir}/postmaster.pid`);
  } catch {
    return null;
  }
  const pid = Number(text.split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  if (!isRunning(pid)) return null;
  // A stale file after a SIGKILL may name a pid some other process has now: check it is ours.
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(dataDir) ? pid : null;
  } catch {
    return null;
  }
}

const DIR_PREFIX = "queuectl-pg-";
let sweptLeftovers = false;

/** The owner line of a server directory: this machine, this process, its start time. */
function ownerLine(): string {
  return `${Deno.hostname()} ${Deno.pid} ${procStat(Deno.pid)?.startTime ?? 0}\n`;
}

function tempRoot(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

/**
 * Stops and removes the server directories of test processes on this machine that died without
 * disposing of them. Returns the directories removed.
 */
export async function removeLeftoverServers(): Promise<string[]> {
  const removed: string[] = [];
  const root = tempRoot();
  for (const entry of Deno.readDirSync(root)) {
    if (!entry.isDirectory || !entry.name.startsWith(DIR_PREFIX)) continue;
    const dir = `${root}/${entry.name}`;
    let owner: string;
    try {
      owner = Deno.readTextFileSync(`${dir}/owner`);
    } catch {
      continue; // being set up right now, or not ours
    }
    const [host, pid, start] = owner.trim().split(" ");
    if (host !== Deno.hostname()) continue;
    if (procStat(Number(pid))?.startTime === Number(start)) continue; // its owner lives
    const postmaster = postmasterPid(`${dir}/data`);
    if (postmaster) {
      try {
        Deno.kill(postmaster, "SIGQUIT"); // immediate shutdown; the directory goes anyway
      } catch {
        continue; // not ours to stop (another user's): leave it
      }
      const deadline = performance.now() + 10_000;
      while (postmasterPid(`${dir}/data`) && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (postmasterPid(`${dir}/data`)) Deno.kill(postmaster, "SIGKILL");
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    removed.push(dir);
  }
  return removed;
}

/** Creates, configures and starts a private server. */
export async function pgServer(options: PgServerOptions = {}): Promise<PgServer> {
  const initdb = program("initdb");
  const pgCtl = program("pg_ctl");
  const user = serverUser(options.osUser ?? "postgres");
  if (!sweptLeftovers) {
    sweptLeftovers = true;
    await removeLeftoverServers();
  }
  const listen = options.listen ?? ["127.0.0.1"];
  const host = listen[0] ?? "127.0.0.1";
  const probeHost = host === "*" || host === "0.0.0.0" ? "127.0.0.1" : host;
  const fixedPort = options.port;
  let port = fixedPort ?? freePort(probeHost);

  const dir = await Deno.makeTempDir({ dir: tempRoot(), prefix: DIR_PREFIX });
  const dataDir = `${dir}/data`;
  const logFile = `${dir}/server.log`;
  let disposed = false;
  // Only the first start may move to another port: clients of a restarted server keep their URL.
  let mayMovePort = fixedPort === undefined;

  async function removeDir(): Promise<void> {
    await Deno.remove(dir, { recursive: true }).catch((error: unknown) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }

  function writeConfig(): void {
    const settings: Record<string, string | number | boolean> = {
      ...FAST_TEST_SETTINGS,
      ...options.settings,
      listen_addresses: listen.join(","),
      port,
      unix_socket_directories: dir,
    };
    const lines = Object.entries(settings).map(([key, value]) => `${key} = ${quoteConf(value)}`);
    Deno.writeTextFileSync(`${dataDir}/queuectl_test.conf`, lines.join("\n") + "\n");
  }

  async function logTail(): Promise<string> {
    const text = await Deno.readTextFile(logFile).catch(() => "");
    return text.trim().split("\n").slice(-5).join(" / ");
  }

  async function start(): Promise<void> {
    for (let attempt = 1;; attempt++) {
      writeConfig();
      const { ok, output } = await runAs(user, pgCtl, [
        "start",
        "-D",
        dataDir,
        "-l",
        logFile,
        "-w",
        "-t",
        "60",
        "-s",
      ], dir);
      if (ok) {
        mayMovePort = false;
        return;
      }
      const tail = await logTail();
      // Another process took the free port between our probe and the server's bind: pick again.
      if (mayMovePort && attempt < 5 && /could not bind|already in use/.test(tail)) {
        port = freePort(probeHost);
        continue;
      }
      throw new PgServerError(`pg_ctl start failed: ${output.split("\n")[0]} (log: ${tail})`);
    }
  }

  async function stop(mode: ShutdownMode): Promise<void> {
    if (!postmasterPid(dataDir)) return;
    const { ok, output } = await runAs(user, pgCtl, [
      "stop",
      "-D",
      dataDir,
      "-m",
      mode,
      "-w",
      "-t",
      "60",
      "-s",
    ], dir);
    if (!ok && postmasterPid(dataDir)) {
      throw new PgServerError(`pg_ctl stop -m ${mode} failed: ${output.split("\n")[0]}`);
    }
  }

  try {
    Deno.writeTextFileSync(`${dir}/owner`, ownerLine());
    if (user) await Deno.chown(dir, user.uid, user.gid);
    const init = await runAs(user, initdb, [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "-A",
      "trust",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions",
    ], dir);
    if (!init.ok) {
      throw new PgServerError(`initdb failed: ${init.output.split("\n").slice(-3).join(" / ")}`);
    }
    const hba = ["local all all trust"];
    for (const cidr of options.trust ?? ["127.0.0.1/32"]) hba.push(`host all all ${cidr} trust`);
    Deno.writeTextFileSync(`${dataDir}/pg_hba.conf`, hba.join("\n") + "\n");
    Deno.writeTextFileSync(`${dataDir}/postgresql.conf`, "include 'queuectl_test.conf'\n", {
      append: true,
    });
    await start();
  } catch (error) {
    await stop("immediate").catch(() => {});
    await removeDir();
    throw error;
  }

  const server: PgServer = {
    dir,
    get port() {
      return port;
    },
    host,
    url(urlOptions = {}) {
      const target = urlOptions.host ?? probeHost;
      const hostPart = target.includes(":") ? `[${target}]` : target;
      return `postgres://postgres@${hostPart}:${port}/${urlOptions.database ?? "postgres"}`;
    },
    pid: () => postmasterPid(dataDir),
    start: async () => {
      if (!postmasterPid(dataDir)) await start();
    },
    stop: (stopOptions = {}) => stop(stopOptions.mode ?? "fast"),
    async restart(restartOptions = {}) {
      await stop(restartOptions.mode ?? "fast");
      await start();
    },
    log: () => Deno.readTextFile(logFile).catch(() => ""),
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      try {
        await stop("fast").catch(() => stop("immediate"));
      } finally {
        const postmaster = postmasterPid(dataDir);
        if (postmaster) Deno.kill(postmaster, "SIGKILL");
        await removeDir();
      }
    },
  };
  return server;
}
