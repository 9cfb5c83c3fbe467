/**
 * Opening a SQLite queue: one decision — create, migrate or open — then a ready connection for
 * the store. A file that is not ours, damaged, empty, read-only or newer than this build is
 * refused without a byte written.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { Clock } from "../../clock.ts";
import { StoreUnusableError } from "../../errors.ts";
import type { FaultHook } from "../../fault.ts";
import { dirname } from "../../path.ts";
import { mapSqliteError, readOnly } from "./errors.ts";
import { DB_HEADER } from "./queries.ts";
import type { Row } from "./rows.ts";
import { closeWithoutCheckpoint, fileUri, mayWrite, statIfExists } from "./file.ts";
import { SqliteStore } from "./store.ts";
import { APPLICATION_ID, SCHEMA_VERSION } from "./version.ts";
import { lazy } from "../../lazy.ts";

export interface SqliteOpenOptions {
  /** FULL for connections that acknowledge work to users, NORMAL for workers. */
  synchronous: "FULL" | "NORMAL";
  /** How long a statement waits for another process's lock before failing busy. */
  busyTimeoutMs: number;
  /** The store's clock: every time it stores or compares. */
  clock: Clock;
  /** Test hook: called at named points (see lib/fault.ts). */
  fault?: FaultHook | undefined;
  /**
   * False for commands that only read: a missing database is then not created (so a mistyped
   * --db leaves nothing behind); they see an empty queue instead.
   */
  create?: boolean;
  /** With `create: false`: a missing directory is an empty queue too (the default location). */
  missingDirIsEmpty?: boolean;
  /** Tests only: waits ignore file notifications (as on a file system without them). */
  ignoreNotifications?: boolean;
}

/** Refuses a database of another program or of a newer queuectl; returns its schema version. */
function checkIdentity(applicationId: number, version: number, path: string): number {
  if (applicationId !== APPLICATION_ID) {
    throw new StoreUnusableError(`Not a queuectl database: ${path}`, {
      hint: "it is a SQLite file of another program",
      reason: "bad_path",
    });
  }
  if (version > SCHEMA_VERSION) {
    throw new StoreUnusableError(
      `Database schema v${version} is newer than this queuectl (supports up to v${SCHEMA_VERSION}): ${path}`,
      { hint: "upgrade queuectl" },
    );
  }
  return version;
}

/** Checks that `db` is a queuectl database this build can use; returns its schema version. */
function identify(db: DatabaseSync, path: string): number {
  const header = db.prepare(DB_HEADER).get() as Row;
  return checkIdentity(header.application_id as number, header.user_version as number, path);
}

/** The first bytes of every SQLite database file. */
const SQLITE_MAGIC = "SQLite format 3\0";

/**
 * Identifies an existing file before opening it for writing: closing a read-write connection
 * checkpoints a hot WAL into the database file, which must never happen to a file that is not
 * ours (another program's, or a newer queuectl's). The two numbers are read from the file's
 * 100-byte header (user_version at offset 60, application_id at 68, big-endian), where SQLite
 * keeps them; a second SQLite connection would parse the whole schema to read them. Anything
 * that is not a readable SQLite header is left to the real open, which decides under SQLite's
 * locks (and closes without a checkpoint). A newer schema committed only to a hot WAL is caught
 * after the real open, by `identify`.
 */
function probe(path: string): void {
  const header = new Uint8Array(100);
  let read = 0;
  try {
    using file = Deno.openSync(path, { read: true });
    while (read < header.length) {
      const n = file.readSync(header.subarray(read));
      if (n === null) break;
      read += n;
    }
  } catch {
    return;
  }
  if (read < header.length) return;
  if (String.fromCharCode(...header.subarray(0, 16)) !== SQLITE_MAGIC) return;
  const view = new DataView(header.buffer);
  checkIdentity(view.getInt32(68), view.getInt32(60), path);
}

/**
 * Opens (creating on first use) the database at `path`. Refuses, without writing anything, a
 * directory, a missing parent directory, an empty, read-only or foreign file and a newer schema.
 */
export async function openSqliteStore(
  path: string,
  options: SqliteOpenOptions,
): Promise<SqliteStore> {
  const info = statIfExists(path);
  if (info?.isDirectory) {
    throw new StoreUnusableError(`Database path is a directory: ${path}`, {
      hint: "give a file path, e.g. DIR/queuectl.db",
      reason: "bad_path",
    });
  }
  if (info === undefined) {
    const dir = dirname(path);
    const dirExists = statIfExists(dir)?.isDirectory === true;
    if (options.create === false && (options.missingDirIsEmpty || dirExists)) {
      // An empty queue in memory, with the real schema, stands in for the missing file (a
      // missing directory is still an error below: more likely a mistyped path).
      const { migrate } = await lazy<typeof import("./migrations.ts")>(
        import.meta.url,
        "./migrations.ts",
      );
      const memory = new DatabaseSync(":memory:");
      migrate(memory, options.clock.now());
      return new SqliteStore(path, memory, { ...options, memory: true });
    }
    if (!dirExists) {
      throw new StoreUnusableError(`Database directory does not exist: ${dir}`, {
        hint: "create it first",
        reason: "bad_path",
      });
    }
    try {
      const { createDatabase } = await lazy<typeof import("./migrations.ts")>(
        import.meta.url,
        "./migrations.ts",
      );
      createDatabase(path, options.clock.now());
    } catch (error) {
      if (error instanceof Deno.errors.PermissionDenied) {
        throw new StoreUnusableError(`Cannot create database: ${path}: permission denied`, {
          hint: "choose a directory you can write to",
          reason: "bad_path",
        });
      }
      throw mapSqliteError(error, path);
    }
  } else if (info.size === 0) {
    throw new StoreUnusableError(`Database file is empty: ${path}`, {
      hint: "it may be truncated; restore it, or remove the empty file to start a new queue",
    });
  } else if (!mayWrite(info)) {
    // SQLite would open it read-only and leave a -wal and -shm behind: refuse it untouched.
    throw readOnly(path);
  } else {
    probe(path);
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(`${fileUri(path)}?mode=rw`, { timeout: options.busyTimeoutMs });
  } catch {
    throw new StoreUnusableError(`Cannot open database: ${path}`, {
      hint: "check the permissions of the file and of its directory",
    });
  }
  try {
    // Identified again under SQLite's locks: a file just created here may be another
    // process's, which won the race to link it into place.
    const version = identify(db, path);
    if (version < SCHEMA_VERSION) {
      (await lazy<typeof import("./migrations.ts")>(import.meta.url, "./migrations.ts")).migrate(
        db,
        options.clock.now(),
      );
    }
  } catch (error) {
    closeWithoutCheckpoint(db, path);
    throw mapSqliteError(error, path);
  }
  return new SqliteStore(path, db, { ...options, memory: false });
}
