/**
 * How a worker process is tuned (V8 flags and malloc arenas, for a small and flat memory), and
 * how jobs get the environment the user set rather than the tuned one.
 *
 * @module
 */

/**
 * V8 flags for workers, for a flat and small resident memory (measured by bench/resources.ts):
 * - `--max-semi-space-size=1`: a worker allocates many short-lived objects per job, and V8
 *   answers by growing the young generation up to 16 MiB semi-spaces, about 30 MB more after a
 *   few thousand jobs, for no speed we could measure.
 * - `--max-opt=2`: V8's baseline compilers only (Sparkplug and Maglev, not Turbofan). Chosen by
 *   measurement (bench/RESULTS.md, issue 10): against `--lite-mode` (no optimising compiler at
 *   all), a worker draining `true` jobs in-process went from about 700 to 800 jobs a second for a
 *   few megabytes more; full optimisation was no faster than this and grew the heap further.
 */
export const WORKER_V8_FLAGS = "--max-semi-space-size=1,--max-opt=2";

/**
 * Variables set for workers, each from the user's value (undefined when unset). glibc's malloc
 * keeps an arena per thread; two are plenty for a worker.
 */
const WORKER_ENV: Record<string, (user: string | undefined) => string> = {
  DENO_V8_FLAGS: (user) => user ? `${user},${WORKER_V8_FLAGS}` : WORKER_V8_FLAGS,
  MALLOC_ARENA_MAX: (user) => user ?? "2",
};

/**
 * Present in a worker's environment once WORKER_ENV is applied: by the supervisor, or by a
 * `worker run` started on its own, which re-executes itself with them (lib/worker/exec.ts).
 */
export const TUNED = "QUEUECTL_WORKER_TUNED";

/** Where the user's own value of a variable in WORKER_ENV is kept for the worker's jobs. */
export function savedName(name: string): string {
  return `QUEUECTL_USER_${name}`;
}

/** The names `tunedEnv` changes: the worker gives jobs the user's values of these back. */
export const WORKER_ENV_NAMES: readonly string[] = Object.keys(WORKER_ENV);

/**
 * The variables that tune a worker, on top of the environment `env` reads. The user's own values
 * are kept (their V8 flags come first, so ours win) and saved under `savedName()`, so that the
 * worker can hand jobs the environment the user set.
 */
export function tunedEnv(env: (name: string) => string | undefined): Record<string, string> {
  const out: Record<string, string> = { [TUNED]: "1" };
  for (const [name, value] of Object.entries(WORKER_ENV)) {
    const user = env(name);
    out[name] = value(user);
    if (user !== undefined) out[savedName(name)] = user;
  }
  return out;
}

/** The environment a worker gets on top of the supervisor's: tuned, and naming its supervisor. */
export function workerEnv(env: (name: string) => string | undefined): Record<string, string> {
  return { QUEUECTL_SUPERVISOR: String(Deno.pid), ...tunedEnv(env) };
}

/** Variables that hold the database's password: a job never sees them. */
const SECRETS = new Set(["PGPASSWORD"]);

/**
 * The worker's environment as jobs inherit it: without the worker's own variables (test hooks,
 * supervision), without the database's password, and with what was set to tune the worker
 * (DENO_V8_FLAGS, MALLOC_ARENA_MAX) as the user had it.
 */
export function inheritable(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith("QUEUECTL_") && !SECRETS.has(key)) out[key] = value;
  }
  if (env[TUNED] !== undefined) {
    for (const name of WORKER_ENV_NAMES) {
      const user = env[savedName(name)];
      if (user === undefined) delete out[name];
      else out[name] = user;
    }
  }
  return out;
}
