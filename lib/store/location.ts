/**
 * Where the queue lives. Resolving a location opens and creates nothing.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { resolvePath } from "../path.ts";

export interface DbLocation {
  /** Absolute path of the SQLite file. */
  path: string;
  /** True when no --db or QUEUECTL_DB chose it: its directory is created on first use. */
  isDefault: boolean;
}

/**
 * `--db PATH`, else `QUEUECTL_DB`, else `$XDG_DATA_HOME/queuectl/queuectl.db`
 * (`~/.local/share/queuectl/queuectl.db` when XDG_DATA_HOME is unset).
 */
export function resolveDbLocation(
  flag: string | undefined,
  env: (name: string) => string | undefined,
  cwd: string,
): DbLocation {
  const chosen = flag ?? env("QUEUECTL_DB");
  if (chosen !== undefined) {
    if (chosen === "") throw new UsageError("Database path is empty", { hint: "give --db PATH" });
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(chosen)) {
      throw new UsageError(`Unsupported database URL: ${chosen}`, {
        hint: "this build stores queues in SQLite files; give a file path",
      });
    }
    return { path: resolvePath(cwd, chosen), isDefault: false };
  }
  const xdg = env("XDG_DATA_HOME");
  const base = xdg && xdg.startsWith("/") ? xdg : `${env("HOME") ?? cwd}/.local/share`;
  return { path: `${base}/queuectl/queuectl.db`, isDefault: true };
}
