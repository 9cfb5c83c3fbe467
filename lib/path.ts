/**
 * Path arithmetic without importing a path library into the start-up path.
 *
 * @module
 */

/** Resolves `path` against `base` (absolute) and removes `.` and `..` segments. */
export function resolvePath(base: string, path: string): string {
  const joined = path.startsWith("/") ? path : `${base}/${path}`;
  const out: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** The directory part of an absolute path. */
export function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}
