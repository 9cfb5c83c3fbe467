/**
 * PostgreSQL for tests: the shared server's URL, `psql` through Deno.Command, and a disposable
 * fresh database per test. Deliberately no client library: the store will bring postgres.js, and
 * the helper that checks the store must not depend on it.
 *
 * ```ts
 * await using db = await pgDatabase();
 * await psql(db.url, "create table t (x int)");
 * ```
 *
 * The server is `QUEUECTL_TEST_PG_URL`, else postgres://postgres@127.0.0.1:5432/postgres (what
 * `.ci/run` provides). No server means the test fails with one line saying what to do: a store
 * test that silently passes without a database proves nothing.
 *
 * @module
 */

import { procStat } from "./proc.ts";

export const DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/postgres";

/** The server the PostgreSQL tests use. */
export function pgUrl(): string {
  return Deno.env.get("QUEUECTL_TEST_PG_URL") || DEFAULT_PG_URL;
}

/** Thrown when no server answers, or it refuses us: one line naming what to do. */
export class PgUnavailableError extends Error {
  override name = "PgUnavailableError";
}

/** Thrown when psql ran but the SQL failed; `stderr` holds psql's error. */
export class PsqlError extends Error {
  override name = "PsqlError";
  constructor(message: string, readonly stderr: string) {
    super(message);
  }
}

/** A URL with the password, if any, replaced by `***`, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.href;
  } catch {
    return "(unparsable URL)";
  }
}

/** `url` pointing at `database` instead, everything else kept. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.href;
}

let binDirCache: string | null | undefined;

function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

function realPath(path: string): string | null {
  try {
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}

/**
 * The directory with PostgreSQL's programs (psql, initdb, pg_ctl, postgres): `QUEUECTL_TEST_PG_BIN`
 * if set; else the directory of `initdb` found on PATH (following symlinks); else Debian's newest
 * /usr/lib/postgresql/N/bin, where the server package puts them without touching PATH. Null when
 * none has `psql`. Debian's /usr/bin/psql (a Perl wrapper that picks a version, ~30 ms a call) is
 * used only as the last resort, by `pgProgram`.
 */
export function pgBinDir(): string | null {
  if (binDirCache !== undefined) return binDirCache;
  const candidates: string[] = [];
  const explicit = Deno.env.get("QUEUECTL_TEST_PG_BIN");
  if (explicit) candidates.push(explicit);
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir || !isExecutable(`${dir}/initdb`)) continue;
    const resolved = realPath(`${dir}/initdb`);
    if (resolved) candidates.push(resolved.slice(0, resolved.lastIndexOf("/")));
  }
  try {
    const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
      .map((entry) => entry.name)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    for (const version of versions) candidates.push(`/usr/lib/postgresql/${version}/bin`);
  } catch { /* no Debian packages */ }
  binDirCache = candidates.find((dir) => isExecutable(`${dir}/psql`)) ?? null;
  return binDirCache;
}

/** The path of one of PostgreSQL's programs, or null when it is not installed. */
export function pgProgram(name: string): string | null {
  const dir = pgBinDir();
  if (dir && isExecutable(`${dir}/${name}`)) return `${dir}/${name}`;
  for (const pathDir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (pathDir && isExecutable(`${pathDir}/${name}`)) return `${pathDir}/${name}`;
  }
  return null;
}

export interface PsqlOptions {
  /** Kills psql after this long (default 30 s); connecting alone gives up after `connectTimeoutS`. */
  timeoutMs?: number;
  /** PGCONNECT_TIMEOUT (default 5 s). */
  connectTimeoutS?: number;
}

const decoder = new TextDecoder();
const CONNECT_FAILURE = /connection to server .* failed|could not connect|could not translate host/;

/** The advice every "no server" message ends with. */
export function noServerAdvice(): string {
  return "start PostgreSQL (pg_ctlcluster --skip-systemctl-redirect VERSION main start; .ci/run " +
    "installs and starts one) or set QUEUECTL_TEST_PG_URL";
}

/**
 * Runs `sql` (one or more statements, each in its own implicit transaction, stopping at the
 * first error) through psql against `url`; resolves with the rows, unaligned, `|` between
 * fields, one line per row, without the final newline.
 */
export async function psql(url: string, sql: string, options: PsqlOptions = {}): Promise<string> {
  const program = pgProgram("psql");
  if (!program) {
    throw new PgUnavailableError(
      "psql not found (no PostgreSQL client on PATH or in /usr/lib/postgresql/*/bin): " +
        "apt-get install postgresql-client, or run .ci/run",
    );
  }
  const command = new Deno.Command(program, {
    // -X: ignore ~/.psqlrc; -w: never prompt for a password; -At: bare rows; the script on stdin, so CREATE DATABASE and friends
    // may follow other statements (with -c they would share one transaction).
    args: ["-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
    env: { PGCONNECT_TIMEOUT: String(options.connectTimeoutS ?? 5) },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const child = command.spawn();
  const writer = child.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(sql));
    await writer.close();
  } catch (error) {
    // psql that cannot connect exits before it reads its script: its exit says why, below.
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
  const { code, signal, stdout, stderr } = await child.output();
  const err = decoder.decode(stderr).trim();
  if (code !== 0) {
    const firstLine = err.split("\n")[0] ?? "";
    if (CONNECT_FAILURE.test(err) && err.includes("FATAL:")) {
      // The server answered and said no (authentication, pg_hba.conf, unknown role or database).
      throw new PgUnavailableError(
        `PostgreSQL at ${redactUrl(url)} refuses the connection (${
          firstLine.replace(/^psql: error: connection to server .* failed: /, "")
        }): set QUEUECTL_TEST_PG_URL to a URL it accepts`,
      );
    }
    if (CONNECT_FAILURE.test(err)) {
      throw new PgUnavailableError(
        `no PostgreSQL server answers at ${redactUrl(url)} (${
          firstLine.replace(/^psql: /, "")
        }): ` +
          noServerAdvice(),
      );
    }
    throw new PsqlError(
      `psql failed (${signal ? `killed by ${signal} after the timeout` : `exit ${code}`}) on ${
        redactUrl(url)
      }: ${firstLine}`,
      err,
    );
  }
  return decoder.decode(stdout).replace(/\n$/, "");
}

/** A database of its own for one test; dropped (connections and all) when disposed. */
export interface PgDatabase extends AsyncDisposable {
  readonly name: string;
  /** The server URL pointing at this database. */
  readonly url: string;
}

export interface PgDatabaseOptions {
  /** The server to create it on (default `pgUrl()`). */
  serverUrl?: string;
}

// A database's comment names the process that made it, so a later run can drop what a killed
// run left behind, and only that: another machine's or a live process's databases stay.
const NAME_PREFIX = "queuectl_test_";
let counter = 0;
const swept = new Set<string>();

/** The comment naming a database's owner: this process unless told otherwise. */
export function ownerTag(
  owner: { pid: number; startTime: number } = {
    pid: Deno.pid,
    startTime: procStat(Deno.pid)?.startTime ?? 0,
  },
): string {
  return `queuectl test host=${Deno.hostname()} pid=${owner.pid} start=${owner.startTime}`;
}

function isLeftover(comment: string): boolean {
  const match = /^queuectl test host=(\S+) pid=(\d+) start=(\d+)$/.exec(comment);
  if (!match || match[1] !== Deno.hostname()) return false;
  return procStat(Number(match[2]))?.startTime !== Number(match[3]);
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Drops the test databases on the server that a process on this machine made and did not drop
 * because it died. `pgDatabase()` calls it once per server and process.
 */
export async function dropLeftoverDatabases(serverUrl: string): Promise<string[]> {
  const dropped: string[] = [];
  const rows = await psql(
    serverUrl,
    `select datname || '|' || coalesce(shobj_description(oid, 'pg_database'), '')
       from pg_database where datname like '${NAME_PREFIX}%'`,
  );
  for (const row of rows.split("\n").filter(Boolean)) {
    const [name = "", comment = ""] = row.split("|");
    if (isLeftover(comment)) {
      await psql(serverUrl, `drop database if exists ${quoteIdent(name)} with (force)`);
      dropped.push(name);
    }
  }
  return dropped;
}

/**
 * Creates an empty database (from template0, so nothing added to template1 leaks in) and returns
 * its URL. Disposal drops it `WITH (FORCE)` (PostgreSQL ≥ 13), which terminates connections a
 * test left open. Throws PgUnavailableError, one line, when no server answers.
 */
export async function pgDatabase(options: PgDatabaseOptions = {}): Promise<PgDatabase> {
  const serverUrl = options.serverUrl ?? pgUrl();
  if (!swept.has(serverUrl)) {
    await dropLeftoverDatabases(serverUrl);
    swept.add(serverUrl);
  }
  const random = crypto.getRandomValues(new Uint8Array(3));
  const suffix = [...random].map((b) => b.toString(16).padStart(2, "0")).join("");
  const name = `${NAME_PREFIX}${Deno.pid}_${++counter}_${suffix}`;
  await psql(
    serverUrl,
    `create database ${quoteIdent(name)} template template0 encoding 'UTF8';
     comment on database ${quoteIdent(name)} is '${ownerTag()}';`,
  );
  return {
    name,
    url: withDatabase(serverUrl, name),
    async [Symbol.asyncDispose]() {
      await psql(serverUrl, `drop database if exists ${quoteIdent(name)} with (force)`);
    },
  };
}
