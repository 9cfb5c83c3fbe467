/**
 * Spawner that starts `sh -c` with glibc's posix_spawn through Deno FFI.
 *
 * posix_spawn uses clone(CLONE_VM | CLONE_VFORK), so there is no page-table
 * copy, and it puts the child in its own session (or group) itself; Deno's
 * `detached: true` needs a pre-exec hook, which forces a full fork.
 *
 * Waiting is done by one reactor per process: a single nonblocking FFI call
 * to epoll_pwait over every job's two pipe read ends and a pidfd for the
 * shell. Reads and waitpid(WNOHANG) are then synchronous FFI calls that
 * cannot block. So the worker pins at most one thread of Deno's blocking pool,
 * however many jobs run, and closing a job's fds never races a read that
 * another thread is blocked in.
 *
 * @module
 */

import {
  checkSpawnOptions,
  cwdError,
  type ExitStatus,
  type JobProcess,
  mergedEnv,
  type Spawner,
  SpawnError,
  type SpawnOptions,
} from "./_spawn_contract.ts";
import {
  EAGAIN,
  EINTR,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_EVENT_BYTES,
  EPOLL_EVENT_DATA_OFFSET,
  EPOLLIN,
  errnoName,
  F_SETFL,
  FILE_ACTIONS_BYTES,
  type Libc,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  POSIX_SPAWN_SETPGROUP,
  POSIX_SPAWN_SETSID,
  POSIX_SPAWN_SETSIGDEF,
  POSIX_SPAWN_SETSIGMASK,
  signalName,
  signalNumber,
  SIGSET_BYTES,
  SPAWNATTR_BYTES,
  SYS_PIDFD_OPEN,
  WNOHANG,
  X_OK,
} from "./_libc.ts";

/** How the job is detached from the worker. */
export type PosixGroupMode = "setsid" | "setpgroup";

const READ_BUFFER_BYTES = 64 * 1024;
/** Reads per stream per wake-up, so one chatty job cannot starve the others. */
const MAX_READS_PER_WAKE = 16;
const MAX_EVENTS = 64;
/** epoll_pwait failing this many times in a row is a bug, not EINTR. */
const MAX_WAIT_FAILURES = 100;
const SIGKILL = 9;

const encoder = new TextEncoder();
const SH = cString("/bin/sh");
const DEV_NULL = cString("/dev/null");

function cString(text: string): Uint8Array {
  // An explicit ArrayBuffer is never allocated on (and moved by) the V8 heap.
  const bytes = new Uint8Array(new ArrayBuffer(text.length * 3 + 1));
  const { written } = encoder.encodeInto(text, bytes);
  return bytes.subarray(0, written + 1);
}

/**
 * Builds a NULL-terminated `char *[]` from strings that are each already
 * followed by "\0" in `joined`. The strings are encoded once, into the same
 * ArrayBuffer after the pointers: passing the array to FFI keeps that buffer
 * alive for the call, which raw addresses alone would not.
 *
 * Returns null when `joined` holds more than `count` strings, that is when one
 * of them contained a NUL byte itself.
 */
function cStringArray(joined: string, count: number): BigUint64Array | null {
  const pointerBytes = (count + 1) * 8;
  const buffer = new ArrayBuffer(pointerBytes + joined.length * 3);
  const bytes = new Uint8Array(buffer, pointerBytes);
  const { written } = encoder.encodeInto(joined, bytes);
  // Pointers are written as 32-bit halves (little-endian hosts only): plain
  // numbers are exact below 2^53, and far cheaper than a BigInt per string.
  const halves = new Uint32Array(buffer, 0, count * 2);
  let address = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
  let found = 0;
  let start = 0;
  for (let i = 0; i < written; i++) {
    if (bytes[i] !== 0) continue;
    if (found === count) return null;
    halves[found * 2] = address % 0x1_0000_0000;
    halves[found * 2 + 1] = Math.floor(address / 0x1_0000_0000);
    found++;
    address += i + 1 - start;
    start = i + 1;
  }
  return found === count ? new BigUint64Array(buffer, 0, count + 1) : null;
}

/** A base environment encoded once: its "NAME=value\0" bytes and where each string starts. */
interface EncodedEnv {
  bytes: Uint8Array;
  offsets: number[];
  names: ReadonlySet<string>;
}

/** Encodes `env`, or null when a name or value cannot be passed (NUL, "=" in a name). */
function encodeEnv(env: Readonly<Record<string, string>>): EncodedEnv | null {
  let joined = "";
  for (const name in env) {
    if (name === "" || name.includes("=")) return null;
    joined += `${name}=${env[name]}\0`;
  }
  const buffer = new Uint8Array(new ArrayBuffer(joined.length * 3));
  const { written } = encoder.encodeInto(joined, buffer);
  const bytes = buffer.subarray(0, written);
  const offsets: number[] = [];
  let start = 0;
  for (let i = 0; i < written; i++) {
    if (bytes[i] !== 0) continue;
    offsets.push(start);
    start = i + 1;
  }
  if (offsets.length !== Object.keys(env).length) return null; // a value held a NUL
  return { bytes: bytes.slice(), offsets, names: new Set(Object.keys(env)) };
}

/** Bases seen so far, by identity (callers pass one object for all their spawns). */
const encodedBases = new WeakMap<object, EncodedEnv | null>();

/**
 * envp of a base encoded once plus `extra`: the base's bytes are copied, its pointers computed
 * from the stored offsets, and only `extra` is encoded and scanned. Null when `extra` holds a
 * NUL or a bad name.
 */
function envWithBase(base: EncodedEnv, extra: Record<string, string>): BigUint64Array | null {
  let joined = "";
  let extraCount = 0;
  for (const name in extra) {
    if (name === "" || name.includes("=")) return null;
    joined += `${name}=${extra[name]}\0`;
    extraCount++;
  }
  const count = base.offsets.length + extraCount;
  const pointerBytes = (count + 1) * 8;
  const buffer = new ArrayBuffer(pointerBytes + base.bytes.length + joined.length * 3);
  const bytes = new Uint8Array(buffer, pointerBytes);
  bytes.set(base.bytes);
  const { written } = encoder.encodeInto(joined, bytes.subarray(base.bytes.length));
  const halves = new Uint32Array(buffer, 0, count * 2);
  const address = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
  let n = 0;
  const point = (offset: number) => {
    const at = address + offset;
    halves[n * 2] = at % 0x1_0000_0000;
    halves[n * 2 + 1] = Math.floor(at / 0x1_0000_0000);
    n++;
  };
  for (const offset of base.offsets) point(offset);
  let start = base.bytes.length;
  const end = base.bytes.length + written;
  for (let i = start; i < end; i++) {
    if (bytes[i] !== 0) continue;
    if (n === count) return null;
    point(start);
    start = i + 1;
  }
  return n === count ? new BigUint64Array(buffer, 0, count + 1) : null;
}

/** argv and envp for `sh -c command`, or null if a string contains NUL. */
function execStrings(options: SpawnOptions): [BigUint64Array, BigUint64Array] | null {
  const argv = cStringArray(`sh\0-c\0${options.command}\0`, 3);
  let envp: BigUint64Array | null;
  const base = options.envBase;
  let encoded: EncodedEnv | null | undefined;
  if (base !== undefined) {
    encoded = encodedBases.get(base);
    if (encoded === undefined) encodedBases.set(base, encoded = encodeEnv(base));
  }
  if (encoded && !Object.keys(options.env).some((name) => encoded.names.has(name))) {
    envp = envWithBase(encoded, options.env);
  } else {
    // No base, or a job's own variable replaces one of the base's: encode the merged whole.
    const env = mergedEnv(options);
    let joined = "";
    let count = 0;
    for (const name in env) {
      if (name === "" || name.includes("=")) return null;
      joined += `${name}=${env[name]}\0`;
      count++;
    }
    envp = cStringArray(joined, count);
  }
  return argv === null || envp === null ? null : [argv, envp];
}

interface Watcher {
  ready(): void;
  fail(error: Error): void;
}

/** One epoll set and the single in-flight epoll_pwait that serves it. */
class Reactor {
  readonly #libc: Libc;
  readonly #epfd: number;
  readonly #wakeFd: number;
  readonly #events = new Uint8Array(new ArrayBuffer(MAX_EVENTS * EPOLL_EVENT_BYTES));
  readonly #eventsView = new DataView(this.#events.buffer);
  readonly #control = new Uint8Array(new ArrayBuffer(16));
  readonly #controlView = new DataView(this.#control.buffer);
  /** Blocks every signal during the wait, so the pool thread sees no EINTR. */
  readonly #waitMask = new Uint8Array(new ArrayBuffer(SIGSET_BYTES));
  readonly #watchers = new Map<number, Watcher>();
  #nextToken = 1;
  #running = false;
  #waiting = false;

  constructor(libc: Libc) {
    const s = libc.symbols;
    this.#libc = libc;
    s.sigfillset(this.#waitMask);
    this.#epfd = s.epoll_create1(O_CLOEXEC);
    if (this.#epfd < 0) throw new Error(`Cannot create epoll set: ${errnoName(libc.errno())}`);
    this.#wakeFd = s.eventfd(0, O_CLOEXEC | O_NONBLOCK);
    if (this.#wakeFd < 0) throw new Error(`Cannot create eventfd: ${errnoName(libc.errno())}`);
    // Token 0 is the wake-up fd; it is never counted as a watcher.
    const errno = this.#ctl(EPOLL_CTL_ADD, this.#wakeFd, 0);
    if (errno !== 0) throw new Error(`Cannot watch eventfd: ${errnoName(errno)}`);
  }

  /** Watches fd for readability; returns a token for unwatch or throws the errno name. */
  watch(fd: number, watcher: Watcher): number {
    const token = this.#nextToken;
    this.#nextToken = token >= 0xffff_ffff ? 1 : token + 1;
    const errno = this.#ctl(EPOLL_CTL_ADD, fd, token);
    if (errno !== 0) throw new Error(errnoName(errno));
    this.#watchers.set(token, watcher);
    if (!this.#running) void this.#run();
    return token;
  }

  /** Stops watching fd; the caller closes it afterwards. */
  unwatch(fd: number, token: number): void {
    this.#ctl(EPOLL_CTL_DEL, fd, token);
    this.#watchers.delete(token);
    // Nothing left to wait for, but a pool thread is parked in epoll_pwait:
    // wake it so the pending call ends and no longer keeps Deno alive.
    if (this.#watchers.size === 0 && this.#waiting) {
      this.#libc.symbols.write(this.#wakeFd, new BigUint64Array([1n]), 8n);
    }
  }

  #ctl(operation: number, fd: number, token: number): number {
    this.#controlView.setUint32(0, EPOLLIN, true);
    this.#controlView.setUint32(EPOLL_EVENT_DATA_OFFSET, token, true);
    this.#controlView.setUint32(EPOLL_EVENT_DATA_OFFSET + 4, 0, true);
    const result = this.#libc.symbols.epoll_ctl(this.#epfd, operation, fd, this.#control);
    return result === 0 ? 0 : this.#libc.errno();
  }

  async #run(): Promise<void> {
    this.#running = true;
    const s = this.#libc.symbols;
    let failures = 0;
    try {
      while (this.#watchers.size > 0) {
        this.#waiting = true;
        const count = await s.epoll_pwait(this.#epfd, this.#events, MAX_EVENTS, -1, this.#waitMask);
        this.#waiting = false;
        if (count < 0) {
          // errno lives on the pool thread and cannot be read here. With all
          // signals blocked, the expected cause is a SIGSTOP/SIGCONT EINTR.
          if (++failures >= MAX_WAIT_FAILURES) throw new Error("epoll_pwait keeps failing");
          continue;
        }
        failures = 0;
        for (let i = 0; i < count; i++) {
          const token = this.#eventsView.getUint32(
            i * EPOLL_EVENT_BYTES + EPOLL_EVENT_DATA_OFFSET,
            true,
          );
          if (token === 0) {
            s.read(this.#wakeFd, this.#control, 8n);
            continue;
          }
          // An earlier handler in this batch may have unwatched this token.
          this.#watchers.get(token)?.ready();
        }
      }
    } catch (error: unknown) {
      const failure = new Error("Cannot wait for job processes", { cause: error });
      const watchers = [...this.#watchers.values()];
      this.#watchers.clear();
      for (const watcher of watchers) watcher.fail(failure);
    } finally {
      this.#running = false;
      this.#waiting = false;
    }
  }
}

/** Everything a job needs from its spawner. */
interface Shared {
  readonly libc: Libc;
  readonly reactor: Reactor;
  /** One read buffer for every stream: chunks are handed out synchronously. */
  readonly readBuffer: Uint8Array;
  readonly waitStatus: Int32Array;
}

/** One reactor per process: spawners are cheap, and their fds are not leaked. */
const sharedByLibc = new WeakMap<Libc, Shared>();

function sharedState(libc: Libc): Shared {
  let shared = sharedByLibc.get(libc);
  if (shared !== undefined) return shared;
  // pidfd_open needs Linux 5.3 and may be blocked by seccomp: probe it once.
  const s = libc.symbols;
  const probe = Number(s.syscall(SYS_PIDFD_OPEN, BigInt(Deno.pid), 0n));
  if (probe < 0) throw new Error(`pidfd_open is unavailable: ${errnoName(libc.errno())}`);
  s.close(probe);
  shared = {
    libc,
    reactor: new Reactor(libc),
    readBuffer: new Uint8Array(new ArrayBuffer(READ_BUFFER_BYTES)),
    waitStatus: new Int32Array(1),
  };
  sharedByLibc.set(libc, shared);
  return shared;
}

export class PosixSpawner implements Spawner {
  readonly method = "posix_spawn";
  readonly #shared: Shared;
  readonly #attr = new Uint8Array(new ArrayBuffer(SPAWNATTR_BYTES));
  readonly #fileActions = new Uint8Array(new ArrayBuffer(FILE_ACTIONS_BYTES));
  readonly #fds = new Int32Array(2);
  readonly #pid = new Int32Array(1);

  /** Throws when this kernel or libc lacks what the spawner needs. */
  constructor(libc: Libc, options: { group?: PosixGroupMode } = {}) {
    const s = libc.symbols;
    this.#shared = sharedState(libc);

    // The attributes never change, so they are built once and shared by all
    // spawns (posix_spawnattr_destroy is a no-op in glibc; the buffer is GC'd).
    const group = options.group === "setpgroup" ? POSIX_SPAWN_SETPGROUP : POSIX_SPAWN_SETSID;
    const all = new Uint8Array(new ArrayBuffer(SIGSET_BYTES));
    const none = new Uint8Array(new ArrayBuffer(SIGSET_BYTES));
    s.sigfillset(all);
    // sigfillset leaves out glibc's internal signals 32 and 33, and for those
    // posix_spawn sets SIG_IGN in the child, which exec keeps. Setting every
    // bit of signals 1-64 makes them default too, as in a Deno.Command child.
    all.fill(0xff, 0, 8);
    s.sigemptyset(none);
    const failed = s.posix_spawnattr_init(this.#attr) ||
      s.posix_spawnattr_setflags(
        this.#attr,
        group | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK,
      ) ||
      s.posix_spawnattr_setpgroup(this.#attr, 0) ||
      // Deno ignores SIGPIPE; with every signal reset to default, no job
      // inherits that (or any handler's "ignore") from the worker.
      s.posix_spawnattr_setsigdefault(this.#attr, all) ||
      s.posix_spawnattr_setsigmask(this.#attr, none);
    if (failed !== 0) throw new Error(`Cannot set spawn attributes: ${errnoName(failed)}`);
  }

  spawn(options: SpawnOptions): JobProcess {
    // Work before posix_spawn delays every job, so the options are checked
    // while the strings are encoded; checkSpawnOptions then names the problem.
    const strings = options.cwd.includes("\0") ? null : execStrings(options);
    if (strings === null) {
      checkSpawnOptions(options);
      throw new TypeError("execStrings() and checkSpawnOptions() disagree");
    }
    const s = this.#shared.libc.symbols;
    const [stdoutRead, stdoutWrite] = this.#pipe();
    let stderrRead: number, stderrWrite: number;
    try {
      [stderrRead, stderrWrite] = this.#pipe();
    } catch (error: unknown) {
      s.close(stdoutRead);
      s.close(stdoutWrite);
      throw error;
    }

    const fileActions = this.#fileActions;
    s.posix_spawn_file_actions_init(fileActions);
    let failed = s.posix_spawn_file_actions_addopen(fileActions, 0, DEV_NULL, O_RDONLY, 0) ||
      s.posix_spawn_file_actions_adddup2(fileActions, stdoutWrite, 1) ||
      s.posix_spawn_file_actions_adddup2(fileActions, stderrWrite, 2) ||
      s.posix_spawn_file_actions_addchdir_np(fileActions, cString(options.cwd)) ||
      (s.posix_spawn_file_actions_addclosefrom_np?.(fileActions, 3) ?? 0);
    if (failed === 0) {
      failed = s.posix_spawn(
        this.#pid,
        SH,
        fileActions,
        this.#attr,
        strings[0],
        strings[1],
      );
    }
    s.posix_spawn_file_actions_destroy(fileActions);
    // The child has its copies (or never started); ours must go, or EOF never comes.
    s.close(stdoutWrite);
    s.close(stderrWrite);
    if (failed !== 0) {
      s.close(stdoutRead);
      s.close(stderrRead);
      throw this.#diagnose(failed, options.cwd);
    }
    const job = new PosixJobProcess(this.#shared, this.#pid[0]!, {
      stdout: new OutputStream(this.#shared, stdoutRead, options.onStdout),
      stderr: new OutputStream(this.#shared, stderrRead, options.onStderr),
    });
    job.start();
    return job;
  }

  /** A pipe with both ends close-on-exec and only the read end nonblocking. */
  #pipe(): [number, number] {
    const { libc } = this.#shared;
    if (libc.symbols.pipe2(this.#fds, O_CLOEXEC) !== 0) {
      const code = errnoName(libc.errno());
      throw new SpawnError(`Cannot create output pipe: ${code}`, { code, step: "pipe" });
    }
    const [read, write] = [this.#fds[0]!, this.#fds[1]!];
    libc.symbols.fcntl(read, F_SETFL, O_NONBLOCK);
    return [read, write];
  }

  /** posix_spawn returns one errno for all its steps: find the step that fails. */
  #diagnose(errno: number, cwd: string): SpawnError {
    const { libc } = this.#shared;
    const s = libc.symbols;
    const path = cString(cwd);
    const directory = s.open(path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (directory < 0) return cwdError(cwd, errnoName(libc.errno()));
    s.close(directory);
    if (s.access(path, X_OK) !== 0) return cwdError(cwd, errnoName(libc.errno()));
    const code = errnoName(errno);
    if (s.access(SH, X_OK) !== 0) {
      return new SpawnError(`Cannot run "/bin/sh": ${errnoName(libc.errno())}`, {
        code,
        step: "shell",
      });
    }
    return new SpawnError(`Cannot spawn "sh -c": ${code}`, { code, step: "shell" });
  }
}

/** A pipe read end being drained into a callback. */
class OutputStream implements Watcher {
  readonly #shared: Shared;
  readonly #fd: number;
  readonly #onChunk: (chunk: Uint8Array) => void;
  #token = 0;
  #open = true;
  #onEnd: (error: unknown) => void = () => {};

  constructor(shared: Shared, fd: number, onChunk: (chunk: Uint8Array) => void) {
    this.#shared = shared;
    this.#fd = fd;
    this.#onChunk = onChunk;
  }

  get open(): boolean {
    return this.#open;
  }

  /** Starts reading; throws the errno name if the fd cannot be watched. */
  start(onEnd: (error: unknown) => void): void {
    this.#onEnd = onEnd;
    this.#token = this.#shared.reactor.watch(this.#fd, this);
  }

  ready(): void {
    const { libc, readBuffer } = this.#shared;
    for (let i = 0; i < MAX_READS_PER_WAKE && this.#open; i++) {
      const count = Number(libc.symbols.read(this.#fd, readBuffer, BigInt(readBuffer.length)));
      if (count > 0) {
        try {
          this.#onChunk(readBuffer.subarray(0, count));
        } catch (error: unknown) {
          this.#end(error);
          return;
        }
        continue;
      }
      if (count < 0) {
        const errno = libc.errno();
        if (errno === EAGAIN) return;
        if (errno === EINTR) continue;
      }
      // EOF, or a read error that will not go away: either way the stream is over.
      this.#end(undefined);
      return;
    }
  }

  fail(error: Error): void {
    this.#end(error);
  }

  /** Stops reading and closes the fd; idempotent. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.#token !== 0) this.#shared.reactor.unwatch(this.#fd, this.#token);
    this.#shared.libc.symbols.close(this.#fd);
  }

  #end(error: unknown): void {
    this.close();
    this.#onEnd(error);
  }
}

class PosixJobProcess implements JobProcess {
  readonly method = "posix_spawn";
  readonly pid: number;
  readonly pgid: number;
  readonly exited: Promise<ExitStatus>;
  readonly outputDone: Promise<void>;
  readonly #shared: Shared;
  readonly #streams: readonly OutputStream[];
  #pidfd = -1;
  #pidToken = 0;
  #exitSettled = false;
  #outputError: unknown = undefined;
  #settleExited: (status: ExitStatus | Error) => void = () => {};
  #settleOutput: () => void = () => {};

  constructor(
    shared: Shared,
    pid: number,
    streams: { stdout: OutputStream; stderr: OutputStream },
  ) {
    this.#shared = shared;
    this.pid = pid;
    this.pgid = pid;
    this.#streams = [streams.stdout, streams.stderr];
    this.exited = new Promise((resolve, reject) => {
      this.#settleExited = (status) => status instanceof Error ? reject(status) : resolve(status);
    });
    this.outputDone = new Promise((resolve, reject) => {
      this.#settleOutput = () =>
        this.#outputError === undefined ? resolve() : reject(this.#outputError);
    });
  }

  /**
   * Watches the shell's exit and both pipes. If that fails (out of fds or
   * epoll watches) the job is killed and reaped, every fd is closed, and
   * SpawnError is thrown: no job may run unobserved.
   */
  start(): void {
    const { libc } = this.#shared;
    const s = libc.symbols;
    try {
      // The pid cannot be reused before we reap it, so opening the pidfd
      // after posix_spawn returned is race-free.
      const pidfd = Number(s.syscall(SYS_PIDFD_OPEN, BigInt(this.pid), 0n));
      if (pidfd < 0) throw new Error(errnoName(libc.errno()));
      this.#pidfd = pidfd;
      this.#pidToken = this.#shared.reactor.watch(pidfd, {
        ready: () => this.#reap(WNOHANG),
        fail: (error) => this.#settleExit(error),
      });
      const onEnd = (error: unknown) => this.#streamEnded(error);
      for (const stream of this.#streams) stream.start(onEnd);
    } catch (error: unknown) {
      for (const stream of this.#streams) stream.close();
      s.kill(-this.pid, SIGKILL);
      // Nobody will hold this job: a failed reap must not become an unhandled rejection.
      this.exited.catch(() => {});
      this.#reap(0);
      const code = error instanceof Error ? error.message : "EIO";
      throw new SpawnError(`Cannot watch job process ${this.pid}: ${code}`, {
        code,
        step: "watch",
        cause: error,
      });
    }
  }

  killGroup(signal: Deno.Signal): void {
    const { libc } = this.#shared;
    if (libc.symbols.kill(-this.pgid, signalNumber(signal)) === 0) return;
    const code = errnoName(libc.errno());
    if (code === "ESRCH") return;
    throw new Error(`Cannot send ${signal} to process group ${this.pgid}: ${code}`);
  }

  closeOutput(): void {
    for (const stream of this.#streams) stream.close();
    this.#streamEnded(undefined);
  }

  #streamEnded(error: unknown): void {
    if (error !== undefined && this.#outputError === undefined) this.#outputError = error;
    if (this.#streams.every((stream) => !stream.open)) this.#settleOutput();
  }

  #reap(flags: number): void {
    const { libc, waitStatus } = this.#shared;
    const result = libc.symbols.waitpid(this.pid, waitStatus, flags);
    if (result === 0) return; // woken early; the pidfd fires again on exit
    if (result > 0) {
      this.#settleExit(decodeWaitStatus(waitStatus[0]!));
      return;
    }
    const errno = libc.errno();
    if (errno === EINTR) {
      if (flags === WNOHANG) return; // the pidfd is still readable: retried on the next wake
      this.#reap(flags);
      return;
    }
    // ECHILD: someone else reaped our child. Nothing more can be learned.
    this.#settleExit(new Error(`Cannot wait for job process ${this.pid}: ${errnoName(errno)}`));
  }

  #settleExit(status: ExitStatus | Error): void {
    if (this.#exitSettled) return;
    this.#exitSettled = true;
    if (this.#pidToken !== 0) this.#shared.reactor.unwatch(this.#pidfd, this.#pidToken);
    if (this.#pidfd >= 0) this.#shared.libc.symbols.close(this.#pidfd);
    this.#settleExited(status);
  }
}

function decodeWaitStatus(status: number): ExitStatus {
  const signal = status & 0x7f;
  if (signal === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: signalName(signal) };
}
