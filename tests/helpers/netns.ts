/**
 * Several "hosts" on one machine, for the multi-host PostgreSQL tests: each host is a network
 * namespace joined to the root namespace by a veth pair on a bridge, plus its own UTS namespace
 * (hostname), PID namespace and mount namespace with a /proc of its own.
 *
 * ```ts
 * await using net = await netns({ hosts: 2 });
 * await using server = await pgServer({ listen: [net.gateway], trust: [net.subnet] });
 * const [a, b] = net.hosts;
 * await a.run(["psql", "-d", server.url(), "-c", "select 1"]);
 * await net.cutLink(a);
 * ```
 *
 * Layout, for network slot N (0–254, taken atomically per test run, see `claimSlot`):
 * - bridge `qcNb` in the root namespace with 10.231.N.1/24 (`gateway`): bind servers here;
 * - host i (1-based): namespace `qcN-hi`, veth `qcNhi` on the bridge (root side) whose peer is
 *   `eth0` in the namespace with 10.231.N.(10+i)/24, and `lo` up. No default route: a host can
 *   reach only the subnet and its own loopback, nothing beyond the machine.
 *
 * Every host runs a tiny init (PID 1 of its PID namespace: a shell that reaps orphans, as init
 * does) started with `ip netns exec … unshare --uts --pid --fork --kill-child --mount-proc`;
 * commands enter the host with `nsenter` into that init's namespaces, so all the processes of one
 * host share its hostname, its pids and its /proc, as on a machine of its own. The fresh /proc is
 * not optional: inside a PID namespace getpid() and the pids a process learns are the
 * namespace's, and the root /proc would show other processes under those numbers. queuectl's
 * same-host recovery reads /proc to decide whether a worker or job still lives, so it must see
 * its host's processes and only those. SIGKILL to a host's init kills every process of the host
 * at once (the kernel does it), which is `killAll()`.
 *
 * Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2's `ip`, util-linux's `unshare` and
 * `nsenter`. Teardown (also after a failure) kills every process of every host, deletes the
 * namespaces, the veths and the bridge; what a killed test run left behind is removed by the next
 * run on this machine (the bridge's alias names its owner process).
 *
 * @module
 */

import { allPids, isRunning, procStat } from "./proc.ts";

/** Why netns tests cannot run here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (Deno.uid() !== 0) return "needs root for network and PID namespaces";
  return null;
}

export interface HostRunOptions {
  /** Added to the test's environment. */
  env?: Record<string, string>;
  /** Working directory inside the host (same filesystem; default: the test's cwd). */
  cwd?: string;
  stdin?: "piped" | "inherit" | "null";
  stdout?: "piped" | "inherit" | "null";
  stderr?: "piped" | "inherit" | "null";
  /** Aborting kills the command itself (not only nsenter) with SIGKILL. */
  signal?: AbortSignal;
}

export interface HostOutput {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** A command running inside a host. */
export interface HostProcess extends AsyncDisposable {
  /** The `nsenter` process that waits for the command and passes its status on. */
  readonly child: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;
  /**
   * The command's pid in the root namespace (nsenter's child), once it is forked; null when it
   * ended before it could be seen.
   */
  pid(): Promise<number | null>;
  /** Sends `signal` to the command itself: nsenter does not forward signals. */
  kill(signal?: Deno.Signal): Promise<void>;
}

export interface Host {
  /** 1-based. */
  readonly index: number;
  /** Its hostname: `host1`, `host2`, … */
  readonly name: string;
  /** The network namespace (`ip netns exec` takes it). */
  readonly netns: string;
  /** Its address on the bridge. */
  readonly address: string;
  /** The root-namespace end of its veth pair: down means the host is cut off. */
  readonly link: string;
  spawn(args: readonly string[], options?: HostRunOptions): HostProcess;
  /** Runs to completion and returns the output as text. */
  run(args: readonly string[], options?: HostRunOptions): Promise<HostOutput>;
  /** Root-namespace pids of every live process of the host (its init included). */
  pids(): number[];
  /** SIGKILLs every process of the host, waits until they are gone, and boots a fresh init. */
  killAll(): Promise<void>;
}

export interface Network extends AsyncDisposable {
  readonly hosts: readonly Host[];
  /** The root namespace's address on the bridge: bind servers the hosts use to it. */
  readonly gateway: string;
  /** The hosts' subnet in CIDR form, for pg_hba.conf and the like. */
  readonly subnet: string;
  readonly bridge: string;
  /** Takes the host's link down: its packets go nowhere, nobody is told (a pulled cable). */
  cutLink(host: Host): Promise<void>;
  /**
   * Brings the link back, forgets the failed address lookups of the cut, and waits until the
   * bridge forwards on it again.
   */
  restoreLink(host: Host): Promise<void>;
}

export interface NetworkOptions {
  /** How many hosts (1–200). */
  hosts: number;
}

export class NetnsError extends Error {
  override name = "NetnsError";
}

const decoder = new TextDecoder();

async function ip(...args: string[]): Promise<string> {
  const { success, code, stdout, stderr } = await new Deno.Command("ip", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!success) {
    const why = decoder.decode(stderr).trim() || `exit ${code}`;
    throw new NetnsError(`ip ${args.join(" ")}: ${why}`);
  }
  return decoder.decode(stdout);
}

async function ipQuiet(...args: string[]): Promise<void> {
  await ip(...args).catch(() => {});
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return null;
  }
}

function linkExists(name: string): boolean {
  return readText(`/sys/class/net/${name}/ifindex`) !== null;
}

function pidNamespace(pid: number): string | null {
  try {
    return Deno.readLinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new NetnsError(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const OWNER_TAG = "queuectl-test";

function ownerAlias(): string {
  return `${OWNER_TAG} ${Deno.hostname()} ${Deno.pid} ${procStat(Deno.pid)?.startTime ?? 0}`;
}

/** True when the slot's bridge belongs to a process on this machine that is gone. */
function slotIsLeftover(bridge: string): boolean {
  const alias = readText(`/sys/class/net/${bridge}/ifalias`);
  if (alias === null) return false; // gone meanwhile
  const [tag, host, pid, start] = alias.split(" ");
  // No alias yet: another run is setting it up this instant.
  if (tag !== OWNER_TAG || host !== Deno.hostname()) return false;
  return procStat(Number(pid))?.startTime !== Number(start);
}

function slotNames(slot: number): { bridge: string; nsPrefix: string; linkPrefix: string } {
  return { bridge: `qc${slot}b`, nsPrefix: `qc${slot}-h`, linkPrefix: `qc${slot}h` };
}

async function namespaces(): Promise<string[]> {
  return (await ip("netns", "list")).split("\n").map((line) => line.split(" ")[0] ?? "")
    .filter(Boolean);
}

/** Kills the processes in a network namespace, deletes it; ignores what is already gone. */
async function deleteNamespace(ns: string): Promise<void> {
  const pids = (await ip("netns", "pids", ns).catch(() => "")).split("\n").map(Number)
    .filter((pid) => pid > 0);
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
  await waitUntil(() => pids.every((pid) => !isRunning(pid)), 10_000, `${ns}'s processes`);
  await ipQuiet("netns", "del", ns);
}

/**
 * Removes the namespaces, links and processes of slots whose owning test process died. Also
 * namespaces of a slot without a bridge: setup makes the bridge first and teardown deletes it
 * last, so those are leftovers too. Returns the slots cleaned.
 */
export async function removeLeftoverNetworks(): Promise<number[]> {
  const cleaned = new Set<number>();
  const bridges = new Set<number>();
  // Namespaces first, bridges second: a run setting up a slot makes its bridge before its
  // namespaces, so a namespace listed here whose bridge is missing below is really orphaned.
  const namespacesBefore = await namespaces();
  for (const entry of Deno.readDirSync("/sys/class/net")) {
    const match = /^qc(\d+)b$/.exec(entry.name);
    if (!match) continue;
    const slot = Number(match[1]);
    bridges.add(slot);
    if (slotIsLeftover(entry.name)) cleaned.add(slot);
  }
  for (const ns of namespacesBefore) {
    const match = /^qc(\d+)-h\d+$/.exec(ns);
    if (match && !bridges.has(Number(match[1]))) cleaned.add(Number(match[1]));
  }
  const allNamespaces = await namespaces();
  for (const slot of cleaned) {
    const { bridge, nsPrefix, linkPrefix } = slotNames(slot);
    for (const ns of allNamespaces.filter((n) => n.startsWith(nsPrefix))) {
      await deleteNamespace(ns);
    }
    for (const entry of Deno.readDirSync("/sys/class/net")) {
      if (new RegExp(`^${linkPrefix}\\d+$`).test(entry.name)) {
        await ipQuiet("link", "del", entry.name);
      }
    }
    await ipQuiet("link", "del", bridge);
  }
  return [...cleaned];
}

/** Whether an address of 10.231.N.0/24 is on some interface already (not ours to take). */
async function subnetInUse(slot: number): Promise<boolean> {
  return (await ip("-o", "-4", "addr", "show")).includes(` 10.231.${slot}.`);
}

/**
 * Takes a free slot: creating the bridge is the atomic claim (the kernel refuses a second link
 * of the same name), so parallel test files never share one.
 */
async function claimSlot(): Promise<number> {
  const start = Math.floor(Math.random() * 255);
  const existing = await namespaces();
  for (let i = 0; i < 255; i++) {
    const slot = (start + i) % 255;
    const { bridge, nsPrefix } = slotNames(slot);
    if (linkExists(bridge)) continue;
    // Orphaned namespaces of a dead run keep their slot until a sweep removes them.
    if (existing.some((ns) => ns.startsWith(nsPrefix))) continue;
    try {
      await ip("link", "add", bridge, "type", "bridge");
    } catch (error) {
      if (error instanceof NetnsError && /File exists/.test(error.message)) continue;
      throw error;
    }
    await ip("link", "set", bridge, "alias", ownerAlias());
    if (await subnetInUse(slot)) {
      await ipQuiet("link", "del", bridge);
      continue;
    }
    return slot;
  }
  throw new NetnsError("no free network slot (qc0b…qc254b all taken)");
}

interface Init {
  /** `unshare`, our child; its child is the host's PID 1. */
  unshare: Deno.ChildProcess;
  /** The host's PID 1, seen from the root namespace. */
  pid: number;
  /** /proc/PID/ns/pid of the host's processes. */
  pidNs: string;
  /** Resolves when unshare's stderr closes (it is passed on, see `passStderr`). */
  stderrDone: Promise<void>;
}

// util-linux < 2.40 unshare prints this when its child dies of SIGKILL, which is how hosts end
// (util-linux/util-linux#2614): expected, so dropped; anything else unshare says is passed on.
const UNSHARE_NOISE = "unshare: sigprocmask unblock failed: Invalid argument";

async function passStderr(stream: ReadableStream<Uint8Array>): Promise<void> {
  let pending = "";
  const encoder = new TextEncoder();
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (line !== UNSHARE_NOISE) Deno.stderr.writeSync(encoder.encode(line + "\n"));
    }
  }
  if (pending && pending !== UNSHARE_NOISE) Deno.stderr.writeSync(encoder.encode(pending + "\n"));
}

const INIT_SCRIPT =
  // PID 1 must reap what is orphaned in the host: `wait` for a child the shell started blocks in
  // waitpid(-1), which reaps any child, reparented orphans included.
  `hostname "$0" && echo ready && while :; do sleep 3600 & wait $!; done`;

async function bootInit(ns: string, hostname: string): Promise<Init> {
  const unshare = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      "unshare",
      "--uts",
      "--pid",
      "--fork",
      "--kill-child",
      "--mount-proc",
      "sh",
      "-c",
      INIT_SCRIPT,
      hostname,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrDone = passStderr(unshare.stderr);
  const reader = unshare.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await Promise.race([
    reader.read(),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000)),
  ]);
  await reader.cancel();
  if (!first?.value?.startsWith("ready")) {
    try {
      unshare.kill("SIGKILL");
    } catch { /* gone */ }
    const status = await unshare.status;
    await stderrDone;
    throw new NetnsError(`${hostname}'s init did not start (exit ${status.code})`);
  }
  const children = readText(`/proc/${unshare.pid}/task/${unshare.pid}/children`) ?? "";
  const pid = Number(children.split(" ")[0]);
  const pidNs = pidNamespace(pid);
  if (!pid || !pidNs) throw new NetnsError(`${hostname}'s init has no pid`);
  return { unshare, pid, pidNs, stderrDone };
}

async function killInit(init: Init): Promise<void> {
  try {
    // SIGKILL to a PID namespace's init kills every process in the namespace.
    Deno.kill(init.pid, "SIGKILL");
  } catch { /* already gone */ }
  await init.unshare.status;
  await init.stderrDone;
}

class NetHost implements Host {
  #init: Init;
  readonly #running = new Set<HostProcess>();

  constructor(
    readonly index: number,
    readonly name: string,
    readonly netns: string,
    readonly address: string,
    readonly link: string,
    init: Init,
  ) {
    this.#init = init;
  }

  spawn(args: readonly string[], options: HostRunOptions = {}): HostProcess {
    if (args.length === 0) throw new NetnsError("spawn() needs a command");
    const child = new Deno.Command("nsenter", {
      args: [
        `--target=${this.#init.pid}`,
        "--net",
        "--uts",
        "--pid",
        "--mount",
        // Entering the mount namespace moves to its root: go back to where the test is.
        `--wd=${options.cwd ?? Deno.cwd()}`,
        "--",
        ...args,
      ],
      ...(options.env ? { env: options.env } : {}),
      stdin: options.stdin ?? "null",
      stdout: options.stdout ?? "piped",
      stderr: options.stderr ?? "piped",
    }).spawn();
    let settled = false;
    const status = child.status.finally(() => {
      settled = true;
    });
    const pid = async (): Promise<number | null> => {
      const deadline = performance.now() + 10_000;
      for (;;) {
        const found = Number(
          (readText(`/proc/${child.pid}/task/${child.pid}/children`) ?? "").split(" ")[0],
        );
        if (found > 0) return found;
        if (settled) return null;
        if (performance.now() > deadline) throw new NetnsError("nsenter never forked");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const kill = async (signal: Deno.Signal = "SIGTERM") => {
      const inner = await pid();
      if (inner === null) return;
      try {
        Deno.kill(inner, signal);
      } catch { /* exited meanwhile */ }
    };
    const onAbort = () => void kill("SIGKILL");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const process: HostProcess = {
      child,
      status,
      pid,
      kill,
      [Symbol.asyncDispose]: async () => {
        options.signal?.removeEventListener("abort", onAbort);
        if (!settled) await kill("SIGKILL");
        await status;
        this.#running.delete(process);
      },
    };
    this.#running.add(process);
    void status.then(() => this.#running.delete(process));
    return process;
  }

  async run(args: readonly string[], options: HostRunOptions = {}): Promise<HostOutput> {
    await using process = this.spawn(args, {
      ...options,
      stdout: options.stdout ?? "piped",
      stderr: options.stderr ?? "piped",
    });
    const { code, signal, stdout, stderr } = await process.child.output();
    return { code, signal, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  }

  pids(): number[] {
    return allPids().filter((pid) => isRunning(pid) && pidNamespace(pid) === this.#init.pidNs);
  }

  async killAll(): Promise<void> {
    const pidNs = this.#init.pidNs;
    await killInit(this.#init);
    await waitUntil(
      () => !allPids().some((pid) => isRunning(pid) && pidNamespace(pid) === pidNs),
      10_000,
      `${this.name}'s processes to die`,
    );
    await Promise.all([...this.#running].map((process) => process.status));
    this.#init = await bootInit(this.netns, this.name);
  }

  async shutdown(): Promise<void> {
    await killInit(this.#init);
    await Promise.all([...this.#running].map((process) => process[Symbol.asyncDispose]()));
  }
}

let sweptLeftovers = false;

/** Creates the bridge and `options.hosts` hosts on it; dispose to remove everything. */
export async function netns(options: NetworkOptions): Promise<Network> {
  const reason = netnsUnavailable();
  if (reason) throw new NetnsError(`netns(): ${reason}`);
  if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > 200) {
    throw new NetnsError(`netns(): hosts must be 1–200, got ${options.hosts}`);
  }
  if (!sweptLeftovers) {
    sweptLeftovers = true;
    await removeLeftoverNetworks();
  }
  const slot = await claimSlot();
  const { bridge, nsPrefix, linkPrefix } = slotNames(slot);
  const gateway = `10.231.${slot}.1`;
  const hosts: NetHost[] = [];
  const madeNamespaces: string[] = [];

  async function teardown(): Promise<void> {
    const errors: unknown[] = [];
    for (const host of hosts) await host.shutdown().catch((e) => errors.push(e));
    for (const ns of madeNamespaces) await deleteNamespace(ns).catch((e) => errors.push(e));
    for (let i = 1; i <= options.hosts; i++) {
      if (linkExists(`${linkPrefix}${i}`)) await ipQuiet("link", "del", `${linkPrefix}${i}`);
    }
    await ip("link", "del", bridge).catch((e) => errors.push(e));
    if (errors.length > 0) {
      throw new NetnsError(`netns teardown: ${errors.map((e) => String(e)).join("; ")}`);
    }
  }

  try {
    await ip("addr", "add", `${gateway}/24`, "dev", bridge);
    await ip("link", "set", bridge, "up");
    for (let i = 1; i <= options.hosts; i++) {
      const ns = `${nsPrefix}${i}`;
      const link = `${linkPrefix}${i}`;
      const peer = `qc${slot}p${i}`;
      const address = `10.231.${slot}.${10 + i}`;
      await ip("netns", "add", ns);
      madeNamespaces.push(ns);
      await ip("link", "add", link, "type", "veth", "peer", "name", peer, "netns", ns);
      await ip("link", "set", link, "master", bridge);
      await ip("link", "set", link, "up");
      await ip("-n", ns, "link", "set", peer, "name", "eth0");
      await ip("-n", ns, "addr", "add", `${address}/24`, "dev", "eth0");
      await ip("-n", ns, "link", "set", "eth0", "up");
      await ip("-n", ns, "link", "set", "lo", "up");
      const name = `host${i}`;
      hosts.push(new NetHost(i, name, ns, address, link, await bootInit(ns, name)));
    }
  } catch (error) {
    await teardown().catch(() => {});
    throw error;
  }

  let disposed = false;
  return {
    hosts,
    gateway,
    subnet: `10.231.${slot}.0/24`,
    bridge,
    async cutLink(host) {
      await ip("link", "set", host.link, "down");
    },
    async restoreLink(host) {
      await ip("link", "set", host.link, "up");
      // ARP lookups made during the cut left FAILED neighbour entries, which answer "No route
      // to host" for a while after the cable is back; forget them on both ends so a restored
      // link is usable at once and the tests need not guess how long that while is.
      await ip("-n", host.netns, "neigh", "flush", "dev", "eth0");
      await ip("neigh", "flush", "dev", bridge, "to", host.address);
      // Without STP the bridge forwards as soon as the port is up; wait for exactly that
      // (brport state 3 = forwarding) rather than guessing a delay.
      await waitUntil(
        () =>
          readText(`/sys/class/net/${host.link}/brport/state`) === "3" &&
          readText(`/sys/class/net/${host.link}/carrier`) === "1",
        10_000,
        `${host.link} to forward again`,
      );
    },
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      await teardown();
    },
  };
}
