/**
 * Where the queue lives: a SQLite file, or a PostgreSQL database named by a URL. Resolving a
 * location opens and creates nothing, and loads nothing of either store: it runs on every command.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { resolvePath } from "../path.ts";

/** A SQLite database file. */
export interface FileLocation {
  readonly kind?: "file";
  /** Absolute path of the SQLite file. */
  path: string;
  /** True when no --db or QUEUECTL_DB chose it: its directory is created on first use. */
  isDefault: boolean;
}

/** A PostgreSQL database (`postgres://` or `postgresql://`). */
export interface UrlLocation {
  readonly kind: "url";
  /** The URL as given, password and all: only for connecting, never for showing. */
  url: string;
  /** The URL without its password: for messages, logs, JSON and a job's `QUEUECTL_DB`. */
  display: string;
  isDefault: false;
}

export type DbLocation = FileLocation | UrlLocation;

/** The schemes of the PostgreSQL store. */
const PG_SCHEMES = ["postgres:", "postgresql:"];

/** `url` without its password (and without the `:` that introduced it). */
export function withoutPassword(url: URL): string {
  if (url.password === "") return url.href;
  const copy = new URL(url.href);
  copy.password = "";
  return copy.href;
}

function urlLocation(text: string): UrlLocation {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The text may hold a password: name what is wrong without repeating it.
    throw new UsageError("Database URL is not a valid URL", {
      hint: "give postgres://USER@HOST[:PORT]/DATABASE (percent-encode @ : / in the password)",
    });
  }
  const display = withoutPassword(url);
  if (!PG_SCHEMES.includes(url.protocol)) {
    throw new UsageError(`Unsupported database URL: ${display}`, {
      hint: "give a file path (SQLite) or a postgres:// URL",
    });
  }
  return { kind: "url", url: text, display, isDefault: false };
}

/**
 * `--db PATH|URL`, else `QUEUECTL_DB`, else `$XDG_DATA_HOME/queuectl/queuectl.db`
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
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(chosen)) return urlLocation(chosen);
    return { path: resolvePath(cwd, chosen), isDefault: false };
  }
  return { path: `${dataDir(env, cwd)}/queuectl.db`, isDefault: true };
}

/** `$XDG_DATA_HOME/queuectl`, or `~/.local/share/queuectl`: the default database's directory. */
export function dataDir(env: (name: string) => string | undefined, cwd: string): string {
  const xdg = env("XDG_DATA_HOME");
  const base = xdg && xdg.startsWith("/") ? xdg : `${env("HOME") ?? cwd}/.local/share`;
  return `${base}/queuectl`;
}

/**
 * A file that belongs with the queue, named by `suffix` (".log", ".dashboard-token"): beside the
 * database file, or for a PostgreSQL queue in the data directory, named after its server,
 * database and schema (the URL's password never is part of it).
 */
export function besideQueue(
  location: DbLocation,
  suffix: string,
  env: (name: string) => string | undefined,
  cwd: string,
): string {
  if (location.kind !== "url") return `${location.path}${suffix}`;
  const url = new URL(location.display);
  const safe = (text: string) => decodeURIComponent(text).replace(/[^A-Za-z0-9._-]+/g, "_");
  const parts = [
    "postgres",
    safe(url.hostname || "localhost"),
    url.port || "5432",
    safe(url.pathname.slice(1)) || "default",
    safe(url.searchParams.get("schema") ?? "queuectl"),
  ];
  return `${dataDir(env, cwd)}/${parts.join("-")}${suffix}`;
}

/** Where `worker start --detach` writes its log (see `besideQueue`). */
export function detachLogPath(
  location: DbLocation,
  env: (name: string) => string | undefined,
  cwd: string,
): string {
  return besideQueue(location, ".log", env, cwd);
}
