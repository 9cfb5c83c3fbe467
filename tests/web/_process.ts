/**
 * `queuectl dashboard` as a real process, as a user starts it: on a temporary queue, on a free
 * port, its first lines read from stdout and its token from the token file.
 *
 * @module
 */

import { MAIN } from "../helpers/cli.ts";

export interface DashboardProcess extends AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly base: string;
  readonly token: string;
  readonly tokenFile: string;
  /** What it printed on stdout before it was up. */
  readonly banner: string;
  /** Everything it has written to stderr so far. */
  stderr(): string;
  /** Sends `signal` and returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** The environment of the tests' child processes: no QUEUECTL_* leaks in from outside. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const cache = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache`;
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${cache}/deno`,
    TZ: "UTC",
    NO_COLOR: "1",
    ...extra,
  };
}

/** Starts `queuectl --db DB dashboard --port 0 ARGS…` and waits until it says it is up. */
export async function startDashboard(
  db: string,
  args: readonly string[] = [],
  options: {
    tokenFile?: string;
    env?: Record<string, string>;
    /** The program to run instead of the checkout's main.ts (a URL, say). */
    main?: string;
    /** Leave --port out (the default port and its fallbacks). */
    defaultPort?: boolean;
  } = {},
): Promise<DashboardProcess> {
  const portArgs = options.defaultPort ? [] : ["--port", "0"];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      options.main ?? MAIN,
      "--db",
      db,
      "dashboard",
      ...portArgs,
      ...args,
    ],
    env: childEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) err += chunk;
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    while (!out.includes("Ctrl-C to stop\n")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`the dashboard exited before it was up: ${out}${err}`);
      out += value;
    }
  } finally {
    clearTimeout(deadline);
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const port = Number(/http:\/\/[^:]+:(\d+)\//.exec(out)?.[1]);
  const tokenFile = options.tokenFile ?? `${db}.dashboard-token`;
  const token = Deno.readTextFileSync(tokenFile).trim();
  let status: Promise<Deno.CommandStatus> | undefined;
  const stop = async (signal: Deno.Signal = "SIGINT") => {
    if (status === undefined) {
      try {
        child.kill(signal);
      } catch { /* exited already */ }
      status = child.status;
    }
    return (await status).code;
  };
  return {
    child,
    port,
    base: `http://127.0.0.1:${port}`,
    token,
    tokenFile,
    banner: out,
    stderr: () => err,
    stop,
    async [Symbol.asyncDispose]() {
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      try {
        await stop();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
