/**
 * Connecting to PostgreSQL: what the URL says (server, database, user, password, the queue's own
 * parameters), where a password comes from, and the settings every connection gets.
 *
 * The queue's own URL parameters are taken out before the URL reaches postgres.js (which would
 * send any parameter it does not know to the server as a setting):
 *
 * - `schema=NAME`: the schema the queue lives in (default `queuectl`);
 * - `listen=off`: no LISTEN connection; waits poll instead (for PgBouncer in transaction mode).
 *
 * Everything else (`sslmode`, `application_name`, `prepare=false`, …) is postgres.js's.
 *
 * @module
 */

import { UsageError } from "../../errors.ts";
import { withoutPassword } from "../location.ts";

/** Where the queue's database is, parsed once. */
export interface PgTarget {
  /** The URL for postgres.js: no password, none of the queue's own parameters. */
  url: string;
  /** The URL without its password: `Store.location`. */
  display: string;
  host: string;
  port: number;
  database: string;
  user: string;
  schema: string;
  /** LISTEN/NOTIFY wakes waiters (off: polling only). */
  listen: boolean;
  /** The password from the URL, PGPASSWORD or a pgpass file; undefined when none was found. */
  password: string | undefined;
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const OWN_PARAMS = ["schema", "listen"];

/** The environment a connection reads (PGPASSWORD, PGPASSFILE, PGUSER, HOME, USER). */
export type Env = (name: string) => string | undefined;

/** Parses a `postgres://` URL (the store is opened only for those). */
export function parseTarget(text: string, env: Env): PgTarget {
  const url = new URL(text);
  const display = withoutPassword(url);
  const schema = url.searchParams.get("schema") ?? "queuectl";
  if (!SCHEMA_NAME.test(schema)) {
    throw new UsageError(`Invalid schema name in the database URL: "${schema}"`, {
      hint: "use letters, digits and _ (at most 63), starting with a letter or _",
    });
  }
  const listenParam = (url.searchParams.get("listen") ?? "on").toLowerCase();
  if (!["on", "off", "true", "false", "1", "0"].includes(listenParam)) {
    throw new UsageError(`Invalid listen value in the database URL: "${listenParam}"`, {
      hint: "listen=on (the default) or listen=off",
    });
  }
  const clean = new URL(url.href);
  clean.password = "";
  for (const name of OWN_PARAMS) clean.searchParams.delete(name);
  const host = decodeURIComponent(url.hostname.replace(/^\[(.*)\]$/, "$1")) ||
    env("PGHOST") || "localhost";
  const port = Number(url.port || env("PGPORT") || 5432);
  const user = decodeURIComponent(url.username) || env("PGUSER") || env("USER") ||
    env("LOGNAME") || "postgres";
  const database = decodeURIComponent(url.pathname.slice(1)) || env("PGDATABASE") || user;
  const target = {
    url: clean.href,
    display,
    host,
    port,
    database,
    user,
    schema,
    listen: ["on", "true", "1"].includes(listenParam),
  };
  const password = url.password !== ""
    ? decodeURIComponent(url.password)
    : env("PGPASSWORD") ?? pgpassPassword(target, env);
  return { ...target, password };
}

/** One field of a pgpass line: `*` matches anything; `\:` and `\\` are escapes. */
function splitPgpassLine(line: string): string[] {
  const fields: string[] = [];
  let current = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "\\" && i + 1 < line.length) {
      current += line[++i];
    } else if (c === ":" && fields.length < 4) {
      fields.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  fields.push(current);
  return fields;
}

/**
 * The password for `target` from the pgpass file (`PGPASSFILE`, else `~/.pgpass`), as libpq
 * reads it: the first line whose host, port, database and user match (`*` matches any), and only
 * from a file that the group and others cannot read.
 */
export function pgpassPassword(
  target: Pick<PgTarget, "host" | "port" | "database" | "user">,
  env: Env,
): string | undefined {
  const home = env("HOME");
  const file = env("PGPASSFILE") ?? (home ? `${home}/.pgpass` : undefined);
  if (file === undefined) return undefined;
  let text: string;
  try {
    const info = Deno.statSync(file);
    // libpq ignores a pgpass file others may read (with a warning): so do we.
    if (!info.isFile || (info.mode !== null && (info.mode & 0o077) !== 0)) return undefined;
    text = Deno.readTextFileSync(file);
  } catch {
    return undefined;
  }
  // A Unix-socket host matches "localhost", as in libpq.
  const host = target.host.startsWith("/") ? "localhost" : target.host;
  const wanted = [host, String(target.port), target.database, target.user];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const fields = splitPgpassLine(line.replace(/\r$/, ""));
    if (fields.length < 5) continue;
    if (wanted.every((value, i) => fields[i] === "*" || fields[i] === value)) return fields[4];
  }
  return undefined;
}

/** What a role's connections are allowed: server-side limits and the client-side deadline. */
export interface SessionLimits {
  /** `lock_timeout`: past it a statement fails busy (exit 5), like SQLite's busy timeout. */
  lockTimeoutMs: number;
  /** `statement_timeout`. */
  statementTimeoutMs: number;
  /** `idle_in_transaction_session_timeout`: a client that stalls mid-transaction loses it. */
  idleInTransactionMs: number;
  /** Client side: a call that has not answered by then fails, and the pool is replaced. */
  deadlineMs: number;
  /** Connections in the pool (the LISTEN connection is another). */
  poolSize: number;
  /** postgres.js connect_timeout, in seconds. */
  connectTimeoutS: number;
  /**
   * `plan_cache_mode = force_generic_plan`: the prepared statements are planned once per
   * connection instead of at every execution. A worker runs the same few statements thousands of
   * times, and PostgreSQL kept choosing a custom plan for its step (JOB_FINISH_AND_CLAIM, some
   * twenty CTEs), whose making cost about half as much as running it (bench/RESULTS.md,
   * PostgreSQL). A generic plan is remade when the tables' statistics change, which a large batch
   * of jobs sees to (store.ts, `jobInsertMany`). CLI calls run each statement once, where a
   * generic plan saves nothing.
   */
  genericPlans: boolean;
}

/**
 * CLI calls acknowledge work to a user: they wait for locks as long as SQLite's busy timeout and
 * need one connection (their queries are few and in sequence). A worker needs two: one for its
 * loop's transactions and one so that heartbeats (lease renewals) and progress records never
 * queue behind a claim; more would only let one process hold more of the server's connections.
 */
export const LIMITS: Record<"cli" | "worker", SessionLimits> = {
  cli: {
    lockTimeoutMs: 5000,
    statementTimeoutMs: 30_000,
    idleInTransactionMs: 10_000,
    deadlineMs: 35_000,
    poolSize: 1,
    connectTimeoutS: 10,
    genericPlans: false,
  },
  worker: {
    lockTimeoutMs: 2000,
    statementTimeoutMs: 10_000,
    idleInTransactionMs: 10_000,
    deadlineMs: 15_000,
    poolSize: 2,
    connectTimeoutS: 5,
    genericPlans: true,
  },
};

// Pinned inline (a versioned specifier works when queuectl runs from a URL); deno.lock holds its
// integrity. Only this module imports it, and only the PostgreSQL store imports this module, which
// lib/store/open.ts loads by a computed import: the SQLite path never loads the driver.
// deno-lint-ignore no-import-prefix
import postgres from "npm:postgres@3.4.9";

/** The part of postgres.js the store uses, typed narrowly. */
export interface PgQueryRunner {
  unsafe(query: string, params?: unknown[], options?: { prepare?: boolean }): Promise<Row[]>;
}

export interface PgPool extends PgQueryRunner {
  begin<T>(fn: (tx: PgQueryRunner) => Promise<T>): Promise<T>;
  end(options?: { timeout?: number }): Promise<void>;
  /** Server parameters reported at connection start (`server_version`, …). */
  readonly parameters: Record<string, string>;
}

type Row = Record<string, unknown>;

export interface PoolOptions {
  limits: SessionLimits;
  /** application_name, for pg_stat_activity. */
  name: string;
  /** Connections in this pool (default the role's). */
  max?: number;
  /** Called for each NOTIFY received on one of this pool's connections. */
  onNotify?: (channel: string, payload: string) => void;
  /** Called when one of this pool's connections closes (server restart, network, end). */
  onClose?: () => void;
}

/**
 * Whether postgres.js prepares named statements on this URL (not with `prepare=false`, as for
 * PgBouncer before 1.21): without them every execution is planned anyway, and a generic plan
 * would only know less than a custom one.
 */
function prepares(target: PgTarget): boolean {
  const params = new URL(target.url).searchParams;
  const prepare = (params.get("prepare") ?? "true").toLowerCase();
  return !params.has("no_prepare") && !["false", "0", "off", "no"].includes(prepare);
}

/** A postgres.js pool for `target`, with the session limits set at connection start. */
export function createPool(target: PgTarget, options: PoolOptions): PgPool {
  const limits = options.limits;
  const sql = postgres(target.url, {
    max: options.max ?? limits.poolSize,
    user: target.user,
    pass: target.password ?? "",
    // No array parameters are used (lists travel as jsonb), so the type query each new
    // connection would run is not needed.
    fetch_types: false,
    connect_timeout: limits.connectTimeoutS,
    // TCP keepalive from 10 s idle on: a dead peer is noticed by the kernel, not only by the
    // deadlines of lib/store/postgres/store.ts.
    keep_alive: 10,
    idle_timeout: undefined,
    // A NOTICE ("schema exists, skipping") is not for users; postgres.js would console.log it.
    onnotice: () => {},
    ...(options.onNotify ? { onnotify: options.onNotify } : {}),
    ...(options.onClose ? { onclose: options.onClose } : {}),
    connection: {
      application_name: options.name,
      lock_timeout: limits.lockTimeoutMs,
      statement_timeout: limits.statementTimeoutMs,
      idle_in_transaction_session_timeout: limits.idleInTransactionMs,
      ...(limits.genericPlans && prepares(target) ? { plan_cache_mode: "force_generic_plan" } : {}),
    },
  });
  return sql as unknown as PgPool;
}
