/**
 * Errors that carry an exit code. Only `lib/cli/main.ts` turns them into stderr text and a
 * process exit status; everything else throws them.
 *
 * @module
 */

/** Documented exit codes of every command. */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  conflict: 3,
  notFound: 4,
  busy: 5,
  unusable: 6,
  full: 7,
  /** `wait` gave up before the jobs finished. */
  timeout: 124,
  sigint: 130,
  sigterm: 143,
} as const;

/** A mistyped name, what it could have been, and other words users type for those. */
export interface Typo {
  input: string;
  candidates: readonly string[];
  /** Alias → candidate, tried before spelling (see `closest()` in lib/suggest.ts). */
  aliases?: Readonly<Record<string, string>>;
}

export interface QueuectlErrorOptions {
  /** What the user can do about it; printed after the message. */
  hint?: string;
  cause?: unknown;
  /**
   * A mistyped name and what it could have been: the CLI appends "did you mean" when it prints
   * the error (computed then, so the suggestion code loads only when someone mistypes).
   */
  typo?: Typo;
  /** The id or value the error is about, for callers that add where it came from. */
  subject?: string;
  /**
   * What went wrong, for code: the layer that talks to users adds its hint by it (the CLI says
   * which flag or command helps; a dashboard would say it differently).
   */
  reason?: ErrorReason;
}

/** Reasons that callers tell apart (see `QueuectlErrorOptions.reason`). */
export type ErrorReason =
  | "id_exists"
  | "job_not_found"
  | "not_dead"
  | "not_retryable"
  | "finished"
  | "schedule_exists"
  /** A unique key that a live job holds (the subject is that job). */
  | "unique_key_held"
  /** A job named in `after` does not exist. */
  | "dependency_not_found"
  /** A job named in `after` ended dead or cancelled: it will never complete. */
  | "dependency_failed"
  | "schedule_not_found"
  /** A delete of a job that has not finished (pending, failed, processing). */
  | "not_finished"
  /** A "run now" of a job that does not wait to run (processing, or finished). */
  | "not_waiting"
  | "bad_path"
  | "busy"
  | "full"
  | "read_only"
  | "damaged"
  /** The database server could not be reached or stopped answering (it may come back). */
  | "unreachable";

/** Base of every error a user is meant to read. */
export class QueuectlError extends Error {
  readonly exitCode: number;
  /** Set by the layer that knows what helps, when the code that threw could not know. */
  hint: string | undefined;
  readonly typo: QueuectlErrorOptions["typo"];
  readonly subject: string | undefined;
  readonly reason: ErrorReason | undefined;

  constructor(message: string, exitCode: number, options: QueuectlErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.hint = options.hint;
    this.typo = options.typo;
    this.subject = options.subject;
    this.reason = options.reason;
  }
}

/** Bad arguments, flags or job input (exit 2). */
export class UsageError extends QueuectlError {
  constructor(message: string, options?: QueuectlErrorOptions) {
    super(message, EXIT.usage, options);
  }
}

/** The id exists already, or the job is not in the state the operation needs (exit 3). */
export class ConflictError extends QueuectlError {
  constructor(message: string, options?: QueuectlErrorOptions) {
    super(message, EXIT.conflict, options);
  }
}

/** No such job (exit 4). */
export class NotFoundError extends QueuectlError {
  constructor(message: string, options?: QueuectlErrorOptions) {
    super(message, EXIT.notFound, options);
  }
}

/** Another process held the database lock past the busy timeout (exit 5). Transient. */
export class StoreBusyError extends QueuectlError {
  constructor(message: string, options?: QueuectlErrorOptions) {
    super(message, EXIT.busy, options);
  }
}

/** The database cannot be used: read-only, corrupt, not ours, newer schema, a directory (exit 6). */
export class StoreUnusableError extends QueuectlError {
  constructor(message: string, options?: QueuectlErrorOptions) {
    super(message, EXIT.unusable, options);
  }
}

/** The file system or database is full (exit 7). */
export class StorageFullError extends QueuectlError {
  constructor(message: string, options?: QueuectlErrorOptions) {
    super(message, EXIT.full, options);
  }
}

/**
 * True for store errors that may go away by themselves (busy, full, a database server that is
 * restarting or out of reach), so a worker may retry. A command still exits with the error's code.
 */
export function isTransient(error: unknown): boolean {
  return error instanceof StoreBusyError || error instanceof StorageFullError ||
    (error instanceof StoreUnusableError && error.reason === "unreachable");
}
