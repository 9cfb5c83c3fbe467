/**
 * Opening a PostgreSQL queue: connect, then one decision — use, migrate, or refuse — before the
 * store gets its pool.
 *
 * - A schema at this build's version is used as it is (one query: version and queue id).
 * - A schema that is missing or older is migrated (`migrate`): one transaction under an advisory
 *   transaction lock (one migrator per schema at a time; the others wait up to a minute, then
 *   see the work done and go on), with the version recorded before the migration's statements.
 * - A schema newer than this build is refused, exit 6, without a write: the version is read
 *   before anything else, and read again under the lock.
 * - A read-only command (`create: false`) on a database without the queue's schema creates
 *   nothing: it gets an empty queue (SQLite's in-memory stand-in, as for a missing file).
 *
 * @module
 */

import type { Clock } from "../../clock.ts";
import { StoreBusyError, StoreUnusableError } from "../../errors.ts";
import type { FaultHook } from "../../fault.ts";
import type { Store } from "../store.ts";
import type { Env, PgPool, PgQueryRunner, PgTarget, SessionLimits } from "./connect.ts";
import { createPool, LIMITS, parseTarget } from "./connect.ts";
import { errorCode, mapPgError, unreachable } from "./errors.ts";
import { withDeadline } from "./listen.ts";
import * as q from "./queries.ts";
import { num, str } from "./rows.ts";
import { lazy } from "../../lazy.ts";
import { PostgresStore } from "./store.ts";
import { PG_SCHEMA_VERSION } from "./version.ts";

export interface PostgresOpenOptions {
  /** `cli` (waits 5 s for locks, like SQLite's busy timeout) or `worker` (see connect.ts LIMITS). */
  role: "cli" | "worker";
  /** False for commands that only read: a missing schema is not created (see the module doc). */
  create?: boolean;
  /** Where PGPASSWORD, PGPASSFILE and HOME come from (default: this process's environment). */
  env?: Env;
  fault?: FaultHook | undefined;
  /** Tests only: stamp and compare times with this clock instead of the database's. */
  testClock?: Clock | undefined;
  /** Tests only: other session limits (a short deadline), poll intervals, lost notifications. */
  limits?: Partial<SessionLimits>;
  safetyPollMs?: { listening: number; polling: number };
  healthCheckMs?: number;
  ignoreNotifications?: boolean;
  /** A stand-in for a missing schema with `create: false` (lib/store/open.ts provides it). */
  emptyStandIn?: (location: string) => Promise<Store>;
}

/** What `STORE_VERSION` found: the schema's version and queue id, or nothing set up. */
type Found = { version: number; queueId: string | null } | null;

async function readVersion(pool: PgPool, target: PgTarget): Promise<Found> {
  const statement = q.compile(q.STORE_VERSION, target.schema);
  try {
    const [row] = await pool.unsafe(statement.text, [], { prepare: true });
    if (row!.version === null) return { version: 0, queueId: null };
    return {
      version: num(row!, "version"),
      queueId: row!.queue_id === null ? null : str(row!, "queue_id"),
    };
  } catch (error) {
    if (errorCode(error) === "42P01") return null; // no such table: not set up (yet)
    throw error;
  }
}

function newerSchema(version: number, location: string): StoreUnusableError {
  return new StoreUnusableError(
    `Database schema v${version} is newer than this queuectl (supports up to v${PG_SCHEMA_VERSION}): ${location}`,
    { hint: "upgrade queuectl" },
  );
}

/**
 * Applies the migrations the schema lacks, in one transaction: under the advisory lock, the
 * version is read again (another process may have migrated meanwhile, or a newer build), each
 * missing migration is recorded first, then run.
 */
export async function migrate(pool: PgPool, target: PgTarget, location: string): Promise<void> {
  const { MIGRATIONS } = await lazy<typeof import("./migrations.ts")>(
    import.meta.url,
    "./migrations.ts",
  );
  const run = (runner: PgQueryRunner, template: string, values: Record<string, unknown> = {}) => {
    const statement = q.compile(template, target.schema);
    // :now stays null: migrations are stamped with the database's clock.
    const params = statement.names.map((name) => values[name] ?? null);
    return runner.unsafe(statement.text, params, { prepare: false });
  };
  await pool.begin(async (tx) => {
    await tx.unsafe(q.MIGRATION_TIMEOUTS);
    await run(tx, q.MIGRATION_LOCK, { schema: target.schema });
    const [state] = await run(tx, q.MIGRATION_STATE, {
      schema_ident: q.quoteIdent(target.schema),
      table_ident: `${q.quoteIdent(target.schema)}.queuectl_migrations`,
    });
    if (state!.has_schema !== true) await run(tx, q.MIGRATION_CREATE_SCHEMA);
    if (state!.has_table !== true) await run(tx, q.MIGRATION_CREATE_TABLE);
    const [current] = await run(tx, q.MIGRATION_CURRENT);
    const version = num(current!, "version");
    if (version > PG_SCHEMA_VERSION) throw newerSchema(version, location);
    for (const migration of MIGRATIONS) {
      if (migration.version <= version) continue;
      await run(tx, q.MIGRATION_RECORD, { version: migration.version, name: migration.name });
      await tx.unsafe(q.compileScript(migration.sql, target.schema));
    }
  });
}

/** Connects to the queue at `url`, migrating or refusing its schema first (see the module doc). */
export async function openPostgresStore(url: string, options: PostgresOpenOptions): Promise<Store> {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const target = parseTarget(url, env);
  const location = target.display;
  const limits: SessionLimits = { ...LIMITS[options.role], ...options.limits };
  const name = `queuectl ${options.role}`;
  const pool = createPool(target, { limits, name });
  const fail = async (error: unknown): Promise<never> => {
    await pool.end({ timeout: 0 }).catch(() => {});
    throw mapPgError(error, location);
  };
  const deadline = <T>(promise: Promise<T>, ms = limits.deadlineMs) =>
    withDeadline(promise, ms, () => unreachable(location, `no answer within ${ms / 1000} s`));
  let found: Found;
  try {
    found = await deadline(readVersion(pool, target));
    // Known once connected (the server reports it at connection start), before any write.
    const server = Number.parseInt(pool.parameters.server_version ?? "", 10);
    if (Number.isFinite(server) && server < 13) {
      throw new StoreUnusableError(`PostgreSQL ${server} is too old: ${location}`, {
        hint: "queuectl needs PostgreSQL 13 or newer",
      });
    }
    if (found !== null && found.version > PG_SCHEMA_VERSION) {
      throw newerSchema(found.version, location);
    }
    if (found === null && options.create === false && options.emptyStandIn) {
      await pool.end({ timeout: 0 }).catch(() => {});
      return await options.emptyStandIn(location);
    }
    if (found === null || found.version < PG_SCHEMA_VERSION || found.queueId === null) {
      // Waiting for another migrator is bounded by the lock timeout (60 s), not the deadline.
      await deadline(migrate(pool, target, location), 130_000);
      found = await deadline(readVersion(pool, target));
    }
  } catch (error) {
    if (errorCode(error) === "55P03") {
      await pool.end({ timeout: 0 }).catch(() => {});
      throw new StoreBusyError(`Database is busy: ${location}: another process is migrating it`, {
        reason: "busy",
        cause: error,
      });
    }
    if (errorCode(error) === "23505") {
      // Another build applied the same migration meanwhile without waiting for the lock.
      await pool.end({ timeout: 0 }).catch(() => {});
      throw new StoreBusyError(`Database is busy: ${location}: another process migrated it`, {
        hint: "try again",
        reason: "busy",
        cause: error,
      });
    }
    return await fail(error);
  }
  if (found === null || found.queueId === null) {
    return await fail(new StoreUnusableError(`Database schema is incomplete: ${location}`));
  }
  return new PostgresStore({
    target,
    limits,
    pool,
    name,
    queueId: found.queueId,
    testClock: options.testClock,
    fault: options.fault,
    ...(options.safetyPollMs ? { safetyPollMs: options.safetyPollMs } : {}),
    ...(options.healthCheckMs ? { healthCheckMs: options.healthCheckMs } : {}),
    ...(options.ignoreNotifications ? { ignoreNotifications: true } : {}),
  });
}
