/**
 * Errors of postgres.js and of the server as the domain errors a user can act on, named by the
 * queue's location: the URL without its password. No message built here quotes a password; the
 * driver's own text is kept only as the `cause` (shown with --debug), and the driver never puts
 * the password in it.
 *
 * @module
 */

import {
  QueuectlError,
  StorageFullError,
  StoreBusyError,
  StoreUnusableError,
} from "../../errors.ts";

/** The SQLSTATE of a server error, or the driver's code of a connection error. */
export function errorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/** Connection failures of the socket and of postgres.js itself: the server may come back. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EPIPE",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  // The server is shutting down, crashed, or is starting up; or our session was terminated
  // (pg_terminate_backend, idle_in_transaction_session_timeout).
  "57P01",
  "57P02",
  "57P03",
  "57P05",
  "25P03",
]);

/** The server could not be reached, or stopped answering: transient for a worker (exit 6). */
export function unreachable(location: string, detail: string, cause?: unknown): StoreUnusableError {
  return new StoreUnusableError(`Database server is unreachable: ${location}: ${detail}`, {
    hint: "check that the server runs and that host and port are right; workers keep retrying",
    reason: "unreachable",
    ...(cause === undefined ? {} : { cause }),
  });
}

/** What the driver said, without anything that could be a secret (it never holds one anyway). */
function brief(error: Error): string {
  return error.message.split("\n")[0]!.replace(/^write /, "").slice(0, 200);
}

/** Maps a postgres.js or server error to the domain error a user can act on; others pass. */
export function mapPgError(error: unknown, location: string): unknown {
  if (error instanceof QueuectlError || !(error instanceof Error)) return error;
  const code = errorCode(error) ?? "";
  const cause = { cause: error };
  if (code === "40001" || code === "40P01" || code === "55P03" || code === "57014") {
    const what = code === "57014"
      ? "a statement ran past statement_timeout"
      : code === "55P03"
      ? "another session held a lock past lock_timeout"
      : code === "40P01"
      ? "a deadlock was broken"
      : "a serialization conflict";
    return new StoreBusyError(`Database is busy: ${location}: ${what}`, {
      reason: "busy",
      ...cause,
    });
  }
  if (code === "53100") {
    return new StorageFullError(`Storage full: ${location}`, { reason: "full", ...cause });
  }
  if (code === "53300" || code === "53400") {
    return new StoreBusyError(`Database is busy: ${location}: too many connections`, {
      hint: "try again, or raise max_connections (or put PgBouncer in front)",
      reason: "busy",
      ...cause,
    });
  }
  if (code === "25006") {
    return new StoreUnusableError(`Database is read-only: ${location}`, {
      hint: "connect to the primary server, not a standby (or unset default_transaction_read_only)",
      reason: "read_only",
      ...cause,
    });
  }
  if (code === "42501") {
    return new StoreUnusableError(`Permission denied on database: ${location}: ${brief(error)}`, {
      hint: "use a role that owns the queue's schema, or grant it CREATE on the database",
      reason: "read_only",
      ...cause,
    });
  }
  if (code === "28P01" || code === "28000") {
    return new StoreUnusableError(`Database refused the login: ${location}: ${brief(error)}`, {
      hint: "check the user and the password (in the URL, PGPASSWORD or ~/.pgpass) and pg_hba.conf",
      ...cause,
    });
  }
  if (code === "3D000") {
    return new StoreUnusableError(`Database does not exist: ${location}`, {
      hint: "create it first (createdb), or fix the database name in the URL",
      reason: "bad_path",
      ...cause,
    });
  }
  if (code === "ENOTFOUND") {
    return new StoreUnusableError(`Database host not found: ${location}`, {
      hint: "check the host name in the URL",
      reason: "bad_path",
      ...cause,
    });
  }
  if (UNREACHABLE_CODES.has(code) || code.startsWith("08")) {
    return unreachable(location, brief(error), error);
  }
  if (code === "SASL_SIGNATURE_MISMATCH" || code === "AUTH_TYPE_NOT_IMPLEMENTED") {
    return new StoreUnusableError(`Database login failed: ${location}: ${brief(error)}`, cause);
  }
  if (code.startsWith("22") || code.startsWith("23") || code.startsWith("42")) {
    // A data or schema error is a bug of ours or a schema someone changed: say where it happened.
    return new StoreUnusableError(`Database error: ${location}: ${brief(error)}`, {
      hint: "the queue's schema may have been changed by hand; run again with --debug for details",
      ...cause,
    });
  }
  return error;
}
