/**
 * What to type next, added to errors from the core by their reason: the core says what went
 * wrong; only the CLI knows its flags and commands.
 *
 * @module
 */

import type { ErrorReason, QueuectlError } from "../errors.ts";

const HINTS: Partial<Record<ErrorReason, string>> = {
  id_exists: "choose another id, or use --if-not-exists to keep the existing job",
  job_not_found: "`queuectl list` shows the jobs",
  not_dead: "only dead jobs can be retried",
  busy: "try again; a long-running write elsewhere is holding it",
  full: "free disk space, or delete finished jobs with `queuectl prune`",
};

/** The hint to print with `error`: its own, then the CLI's for its reason. */
export function cliHint(error: QueuectlError): string | undefined {
  if (error.reason === "bad_path") {
    return error.hint ? `${error.hint}, or choose another --db path` : "choose another --db path";
  }
  return error.hint ?? (error.reason === undefined ? undefined : HINTS[error.reason]);
}
