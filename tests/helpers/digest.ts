/**
 * Fingerprints of files and directories, to prove a refused command left the database
 * byte-identical (and created nothing beside it).
 *
 * @module
 */

/** What `fileDigest` returns for a path that does not exist. */
export const MISSING = "missing";

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * SHA-256 (hex) of a file's bytes; `"missing"` when there is no such file, and `"directory"` for a
 * directory, so that each of those is a distinct value too.
 */
export async function fileDigest(path: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return MISSING;
    throw error;
  }
  if (info.isDirectory) return "directory";
  return await sha256(await Deno.readFile(path));
}

/** Digests of a SQLite database and its -wal and -shm files. */
export async function dbDigest(path: string): Promise<{ db: string; wal: string; shm: string }> {
  const [db, wal, shm] = await Promise.all([
    fileDigest(path),
    fileDigest(`${path}-wal`),
    fileDigest(`${path}-shm`),
  ]);
  return { db, wal, shm };
}

/**
 * Every entry under `dir` (recursively) → its digest and permission bits. Catches changed bytes,
 * changed modes and stray files (a half-created database, a leftover -wal).
 */
export async function treeDigest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(path: string, prefix: string): Promise<void> {
    for await (const entry of Deno.readDir(path)) {
      const full = `${path}/${entry.name}`;
      const name = `${prefix}${entry.name}`;
      const mode = ((await Deno.lstat(full)).mode ?? 0) & 0o7777;
      if (entry.isDirectory) {
        out[name] = `directory ${mode.toString(8)}`;
        await walk(full, `${name}/`);
      } else {
        out[name] = `${await fileDigest(full)} ${mode.toString(8)}`;
      }
    }
  }
  await walk(dir, "");
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a < b ? -1 : 1));
}
