/**
 * The database file as the operating system sees it: its URI, whether we may write it, and a
 * close that never checkpoints a file that must not be written.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

/** A SQLite URI for a path (`%`, `?` and `#` escaped). */
export function fileUri(path: string): string {
  return "file:" + path.replace(/[%?#]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
}

export function statIfExists(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * False only when the permission bits rule out writing the file: owned by us without u+w, or
 * owned by another user without g+w or o+w. Root, and anything unknown, may write.
 */
export function mayWrite(info: Deno.FileInfo): boolean {
  let uid: number | null;
  try {
    uid = Deno.uid();
  } catch {
    return true; // no --allow-sys: let SQLite find out
  }
  if (uid === null || uid === 0 || info.mode === null || info.uid === null) return true;
  if (info.uid === uid) return (info.mode & 0o200) !== 0;
  return (info.mode & 0o022) !== 0;
}

/**
 * Closes without the checkpoint SQLite runs when the last connection to a file closes. A file
 * that is damaged, or not ours, must not be written: with a -wal of another database beside it,
 * that checkpoint would copy the foreign pages into the file and delete the -wal. A read-only
 * connection holding the file's shared lock makes the close skip it, and a read-only connection
 * never checkpoints when it closes itself.
 */
export function closeWithoutCheckpoint(db: DatabaseSync, path: string): void {
  let guard: DatabaseSync | undefined;
  try {
    guard = new DatabaseSync(fileUri(path), { readOnly: true });
    guard.prepare("PRAGMA user_version").get();
  } catch {
    // A damaged file fails the read, but only after the shared lock was taken.
  }
  db.close();
  guard?.close();
}
