/**
 * glibc bindings for the posix_spawn spawner, plus the Linux errno and signal
 * numbers both spawners share. Linux only: the numbers below are the generic
 * Linux ones (x86_64 and aarch64 agree on every value used here).
 *
 * @module
 */

const SYMBOLS = {
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setpgroup: { parameters: ["buffer", "i32"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // glibc >= 2.29. Loading fails on older glibc, and createSpawner falls back.
  posix_spawn_file_actions_addchdir_np: { parameters: ["buffer", "buffer"], result: "i32" },
  // glibc >= 2.34 (close_range in the child). Without it, fds the worker
  // inherited without close-on-exec reach the job, as with Deno.Command.
  posix_spawn_file_actions_addclosefrom_np: {
    parameters: ["buffer", "i32"],
    result: "i32",
    optional: true,
  },
  sigfillset: { parameters: ["buffer"], result: "i32" },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // fcntl and syscall are variadic; on the SysV x86_64 and AAPCS64 ABIs
  // integer arguments are passed the same way as for a fixed signature.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  syscall: { parameters: ["i64", "i64", "i64"], result: "i64" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  access: { parameters: ["buffer", "i32"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // The only call that waits. It runs on Deno's blocking thread pool and
  // returns a Promise; one is in flight per process while any job is watched.
  epoll_pwait: {
    parameters: ["i32", "buffer", "i32", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // Used once, by a `worker run` started on its own, to re-execute itself tuned (exec.ts).
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

export interface Libc {
  readonly symbols: LibcSymbols;
  /** errno of the calling (main) thread; read it right after the failing call. */
  errno(): number;
}

let opened: Libc | Error | undefined;

/**
 * Opens glibc once per process, or returns the reason it cannot be used.
 * Needs unscoped --allow-ffi: with `--allow-ffi=libc.so.6` Deno 2.9 resolves
 * the name against the cwd instead of searching the library path.
 */
export function openLibc(): Libc | Error {
  opened ??= load();
  return opened;
}

function load(): Libc | Error {
  let library: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    library = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch (error: unknown) {
    return new Error("Cannot load libc.so.6", { cause: error });
  }
  const symbols = library.symbols;
  const location = symbols.__errno_location();
  if (location === null) return new Error("Cannot locate errno");
  const errnoView = new Deno.UnsafePointerView(location);
  return { symbols, errno: () => errnoView.getInt32() };
}

// fcntl.h / sys/epoll.h / sys/eventfd.h / sys/wait.h (generic Linux values).
export const O_RDONLY = 0;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
export const O_DIRECTORY = Deno.build.arch === "x86_64" ? 0o200000 : 0o40000;
export const F_SETFL = 4;
export const X_OK = 1;
export const WNOHANG = 1;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLLIN = 0x001;
export const SYS_PIDFD_OPEN = 434n;

// spawn.h (glibc). POSIX_SPAWN_SETSID is a glibc (and musl) extension.
export const POSIX_SPAWN_SETPGROUP = 0x02;
export const POSIX_SPAWN_SETSIGDEF = 0x04;
export const POSIX_SPAWN_SETSIGMASK = 0x08;
export const POSIX_SPAWN_SETSID = 0x80;

/** Bytes to allocate for opaque glibc structs (real sizes on x86_64 in comments). */
export const SPAWNATTR_BYTES = 1024; // posix_spawnattr_t: 336
export const FILE_ACTIONS_BYTES = 256; // posix_spawn_file_actions_t: 80
export const SIGSET_BYTES = 256; // sigset_t: 128

/** struct epoll_event is packed on x86_64 only. */
export const EPOLL_EVENT_BYTES = Deno.build.arch === "x86_64" ? 12 : 16;
export const EPOLL_EVENT_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;

export const EINTR = 4;
export const EAGAIN = 11;

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  7: "E2BIG",
  8: "ENOEXEC",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  20: "ENOTDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  26: "ETXTBSY",
  28: "ENOSPC",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  40: "ELOOP",
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** Linux signal numbers 1..31, indexed by number. */
const SIGNAL_NAMES: readonly Deno.Signal[] = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];
const SIGRTMIN = 34;

export function signalName(signal: number): Deno.Signal | string {
  const name = SIGNAL_NAMES[signal - 1];
  if (name !== undefined) return name;
  return signal >= SIGRTMIN ? `SIGRTMIN+${signal - SIGRTMIN}` : `SIG${signal}`;
}

export function signalNumber(signal: Deno.Signal): number {
  if (signal === "SIGPOLL") return 29;
  if (signal === "SIGUNUSED") return 31;
  const index = SIGNAL_NAMES.indexOf(signal);
  if (index < 0) throw new TypeError(`Cannot send signal "${signal}": not a Linux signal`);
  return index + 1;
}
