/**
 * node:sqlite errors as the domain errors a user can act on. Hints here are about the SQLite file
 * itself; what to type next (a flag, a command) is added by the CLI, keyed by the error's reason.
 *
 * @module
 */

import {
  QueuectlError,
  StorageFullError,
  StoreBusyError,
  StoreUnusableError,
} from "../../errors.ts";

/** SQLite's primary result code of a node:sqlite error, when it has one. */
function resultCode(error: Error): number | undefined {
  const errcode = (error as { errcode?: unknown }).errcode;
  return typeof errcode === "number" ? errcode & 0xff : undefined;
}

/** Whether a node:sqlite error says the file is damaged or no database (SQLITE_CORRUPT, NOTADB). */
export function isDamage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = resultCode(error);
  return code === 11 || code === 26 || /malformed|not a database|corrupt/.test(error.message);
}

/** Maps a node:sqlite error to the domain error a user can act on; others pass through. */
export function mapSqliteError(error: unknown, path: string): unknown {
  if (error instanceof QueuectlError || !(error instanceof Error)) return error;
  const code = resultCode(error);
  const message = error.message;
  if (code === 5 || code === 6 || /database is locked|database table is locked/.test(message)) {
    return new StoreBusyError(`Database is busy: ${path}: another process held its lock too long`, {
      reason: "busy",
      cause: error,
    });
  }
  if (code === 13 || /database or disk is full/.test(message)) {
    return new StorageFullError(`Storage full: ${path}`, { reason: "full", cause: error });
  }
  if (code === 8 || /readonly|read-only/.test(message)) {
    return readOnly(path, error);
  }
  if (isDamage(error)) {
    return new StoreUnusableError(`Database is corrupt or not a queuectl database: ${path}`, {
      hint: 'check it with `sqlite3 FILE "PRAGMA integrity_check"` and restore a backup',
      reason: "damaged",
      cause: error,
    });
  }
  if (code === 14 || /unable to open/.test(message)) {
    return new StoreUnusableError(`Cannot open database: ${path}`, {
      hint: "check that the path and its directory exist and are writable",
      cause: error,
    });
  }
  if (code === 10 || /disk I\/O error/.test(message)) {
    return new StoreUnusableError(`Disk I/O error on database: ${path}`, {
      hint: "check the disk and free space",
      cause: error,
    });
  }
  return error;
}

/** The database file, or its directory, cannot be written. */
export function readOnly(path: string, cause?: unknown): StoreUnusableError {
  return new StoreUnusableError(`Database is read-only: ${path}`, {
    hint: "check the permissions of the file and of its directory (SQLite writes -wal and -shm)",
    reason: "read_only",
    ...(cause === undefined ? {} : { cause }),
  });
}
