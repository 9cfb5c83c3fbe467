/**
 * The identity of the database file (device and inode), so that a process with the file open can
 * tell when the path no longer leads to it: the file was deleted, or another file was renamed over
 * it. The open connection goes on reading and writing the old file, which nobody else sees.
 *
 * @module
 */

/** What became of the file at a path since its identity was taken. */
export type FileChange = "deleted" | "replaced";

function identity(path: string): string | null | undefined {
  try {
    const info = Deno.statSync(path);
    return info.dev === null || info.ino === null ? undefined : `${info.dev}:${info.ino}`;
  } catch (error) {
    // Missing means deleted; anything else (a permission change, say) says nothing either way.
    return error instanceof Deno.errors.NotFound ? null : undefined;
  }
}

export class DatabaseFile {
  readonly path: string;
  readonly #identity: string | undefined;

  /** Takes the identity of the file at `path` now (the one just opened). */
  constructor(path: string) {
    this.path = path;
    this.#identity = identity(path) ?? undefined;
  }

  /** Whether the path still leads to the same file; null when it does, or nothing can be said. */
  change(): FileChange | null {
    if (this.#identity === undefined) return null;
    const now = identity(this.path);
    if (now === undefined) return null;
    if (now === null) return "deleted";
    return now === this.#identity ? null : "replaced";
  }
}
