/**
 * `queuectl dashboard`: serves the web dashboard (lib/web/) until SIGINT or SIGTERM.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagBool, flagInt, flagString } from "../args.ts";
import { VERSION } from "../commands.ts";
import { ConflictError, EXIT, UsageError } from "../../errors.ts";
import { resolvePath } from "../../path.ts";
import { Auth } from "../../web/auth.ts";
import type { Dashboard } from "../../web/handler.ts";
import { createHandler } from "../../web/handler.ts";
import { allowedHostNames, isLoopback } from "../../web/security.ts";
import { loadOrCreateToken, TOKEN_SUFFIX } from "../../web/token.ts";
import { besideQueue } from "../../store/location.ts";

/** The port without --port; when it is taken, the next few are tried. */
export const DEFAULT_PORT = 8642;
const PORT_TRIES = 10;

/** An address as Deno.serve takes it (`::1`, not `[::1]`), checked to be a name or an IP. */
function bindAddress(text: string): string {
  const bare = text.replace(/^\[(.*)\]$/, "$1");
  if (bare === "" || !/^[A-Za-z0-9.:-]+$/.test(bare) || bare.length > 253) {
    throw new UsageError(`Invalid value "${text}" for --host: give an address or a host name`, {
      hint: "e.g. --host 0.0.0.0 (every interface) or --host 192.168.1.5",
    });
  }
  return bare;
}

/** How the URL names the host: `[::1]`, `127.0.0.1`; a wildcard bind is named by hostname. */
function urlHost(address: string): string {
  if (address === "0.0.0.0" || address === "::") {
    try {
      return Deno.hostname();
    } catch {
      return address === "::" ? "[::1]" : "127.0.0.1";
    }
  }
  return address.includes(":") ? `[${address}]` : address;
}

function listen(
  hostname: string,
  ports: number[],
  handler: Deno.ServeHandler<Deno.NetAddr>,
  signal: AbortSignal,
): Deno.HttpServer<Deno.NetAddr> {
  for (const [i, port] of ports.entries()) {
    try {
      return Deno.serve({ hostname, port, signal, onListen() {} }, handler);
    } catch (error) {
      const last = i === ports.length - 1;
      if (error instanceof Deno.errors.AddrInUse) {
        if (!last) continue;
        throw new ConflictError(
          ports.length > 1
            ? `Ports ${ports[0]} to ${port} on ${hostname} are all in use`
            : `Port ${port} on ${hostname} is in use`,
          { hint: "choose another --port, or --port 0 for any free one" },
        );
      }
      if (error instanceof Deno.errors.PermissionDenied) {
        throw new UsageError(`Cannot listen on port ${port}: permission denied`, {
          hint: "ports below 1024 need privileges; choose --port 1024 or above",
        });
      }
      if (error instanceof Deno.errors.AddrNotAvailable || error instanceof Error) {
        throw new UsageError(`Cannot listen on ${hostname}:${port}: ${error.message}`, {
          hint: "--host takes an address of this machine, or 0.0.0.0 for every interface",
        });
      }
      throw error;
    }
  }
  throw new Error("unreachable");
}

/** Opens `url` in the desktop's browser; a failure is a note, not an error. */
async function openBrowser(url: string, ctx: Context): Promise<void> {
  const opener = Deno.build.os === "darwin" ? "open" : "xdg-open";
  try {
    const child = new Deno.Command(opener, {
      args: [url],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const { success } = await child.status;
    if (!success) ctx.io.err(`queuectl: ${opener} could not open a browser; open the link above\n`);
  } catch {
    ctx.io.err(`queuectl: no ${opener} here to open a browser; open the link above\n`);
  }
}

export async function run(ctx: Context): Promise<number> {
  const explicitPort = flagInt(ctx.args, "port", 0, 65_535);
  const hostFlag = flagString(ctx.args, "host");
  const hostname = hostFlag === undefined ? "127.0.0.1" : bindAddress(hostFlag);
  const readOnly = flagBool(ctx.args, "read-only");
  const open = flagBool(ctx.args, "open");
  const tokenFlag = flagString(ctx.args, "token-file");
  if (tokenFlag === "") throw new UsageError("--token-file is empty", { hint: "give a file path" });

  const queue = await ctx.openQueue();
  const tokenFile = tokenFlag === undefined
    ? besideQueue(ctx.location(), TOKEN_SUFFIX, (name) => ctx.io.env(name), ctx.io.cwd)
    : resolvePath(ctx.io.cwd, tokenFlag);
  const { token, created } = loadOrCreateToken(tokenFile);

  // Listening for signals before anything is printed: whoever reads "Ctrl-C to stop" may send one.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const ready = Promise.withResolvers<Dashboard>();
    const server = listen(
      hostname,
      explicitPort !== undefined
        ? [explicitPort]
        : Array.from({ length: PORT_TRIES }, (_, i) => DEFAULT_PORT + i),
      async (request, info) => (await ready.promise)(request, info),
      stop.signal,
    );
    const port = server.addr.port;
    const auth = new Auth(token, { clock: queue.clock, cookieName: `queuectl_${port}` });
    const dashboard = createHandler(queue, {
      auth,
      readOnly,
      hostNames: allowedHostNames(hostname),
      port,
      version: VERSION,
      log: (line) => ctx.io.err(`${line}\n`),
    });
    ready.resolve(dashboard);

    const base = `http://${urlHost(hostname)}:${port}`;
    const out: string[] = [
      `queuectl dashboard for ${queue.location}${readOnly ? " (read-only)" : ""}`,
    ];
    // The token goes to a terminal only: a log file or a pipe keeps no secret.
    if (ctx.io.stdoutIsTerminal) out.push(`Open ${base}/login#token=${token}`);
    else out.push(`Open ${base}/login and sign in with the token in ${tokenFile}`);
    if (created) out.push(`(a new token was made in ${tokenFile}; remove the file to change it)`);
    out.push("Ctrl-C to stop");
    ctx.io.out(`${out.join("\n")}\n`);
    ctx.io.flush();
    if (!isLoopback(hostname)) {
      const where = `${urlHost(hostname)}:${port}`;
      ctx.io.err(
        `queuectl: warning: the dashboard listens on ${where}, reachable from other machines, ` +
          "over plain HTTP: the token, job output and actions can be read and replayed on the " +
          `network. Prefer the default (127.0.0.1) and an SSH tunnel: ` +
          `ssh -L ${port}:127.0.0.1:${port} HOST\n`,
      );
    }
    if (open) await openBrowser(`${base}/login#code=${auth.loginCode()}`, ctx);
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      stop.signal.addEventListener("abort", () => resolve());
    });
    // Live streams end first: the server waits for open responses before it finishes.
    dashboard.close();
    await server.finished;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  ctx.io.err("Stopped the dashboard.\n");
  return EXIT.ok;
}
