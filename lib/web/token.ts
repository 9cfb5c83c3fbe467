/**
 * The dashboard's token file: made once, mode 0600, beside the queue (`DB.dashboard-token`) or
 * where `--token-file` says; read on every start, so a printed link keeps working across
 * restarts, and replacing the file signs everyone out.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { newToken } from "./auth.ts";

/** The default place of the token: beside the queue (lib/store/location.ts, `besideQueue`). */
export const TOKEN_SUFFIX = ".dashboard-token";

/** The default token file of a database file. */
export function defaultTokenFile(dbPath: string): string {
  return `${dbPath}${TOKEN_SUFFIX}`;
}

/** Letters a token may hold; at least `MIN_TOKEN_LENGTH` of them (128 bits as hex). */
const TOKEN = /^[A-Za-z0-9._~+/=-]+$/;
export const MIN_TOKEN_LENGTH = 32;

function readToken(path: string): string {
  const info = Deno.statSync(path);
  if (!info.isFile) {
    throw new UsageError(`Token file is not a file: ${path}`, { hint: "give --token-file FILE" });
  }
  // Like ssh with its keys: a token others can read is no secret.
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw new UsageError(
      `Token file ${path} can be read by others (mode ${(info.mode & 0o777).toString(8)})`,
      { hint: `chmod 600 ${path}` },
    );
  }
  const uid = Deno.uid();
  if (uid !== null && info.uid !== null && info.uid !== uid && uid !== 0) {
    throw new UsageError(`Token file ${path} belongs to another user`, {
      hint: "give --token-file FILE of your own",
    });
  }
  const token = Deno.readTextFileSync(path).trim();
  if (token.length < MIN_TOKEN_LENGTH || !TOKEN.test(token)) {
    throw new UsageError(
      `Token file ${path} holds no usable token (${MIN_TOKEN_LENGTH} or more letters, digits or ._~+/=-)`,
      { hint: "remove the file to have a new token made" },
    );
  }
  return token;
}

/**
 * The token in `path`, made first (256 random bits) if the file does not exist. The file is
 * written under a temporary name and linked into place, so two dashboards starting at once agree
 * on one token and nobody reads a half-written file.
 */
export function loadOrCreateToken(path: string): { token: string; created: boolean } {
  try {
    return { token: readToken(path), created: false };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw wrap(error, path);
  }
  const temp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const file = Deno.openSync(temp, { createNew: true, write: true, mode: 0o600 });
    try {
      Deno.chmodSync(temp, 0o600);
      file.writeSync(new TextEncoder().encode(`${newToken()}\n`));
      file.syncSync();
    } finally {
      file.close();
    }
    let created = true;
    try {
      Deno.linkSync(temp, path);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      created = false;
    }
    return { token: readToken(path), created };
  } catch (error) {
    throw wrap(error, path);
  } finally {
    try {
      Deno.removeSync(temp);
    } catch { /* not there */ }
  }
}

function wrap(error: unknown, path: string): unknown {
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotFound) {
    const why = error instanceof Deno.errors.NotFound
      ? "its directory does not exist"
      : "permission denied";
    return new UsageError(`Cannot use the token file ${path}: ${why}`, {
      hint: "give --token-file FILE in a directory you can write to",
      cause: error,
    });
  }
  return error;
}
