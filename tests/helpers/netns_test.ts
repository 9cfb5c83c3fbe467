/**
 * Several hosts on one machine (network + UTS + PID + mount namespaces), with a private
 * PostgreSQL server bound to the bridge. Root only: skipped visibly elsewhere, never in CI.
 */

import assert from "node:assert/strict";
import { type Host, netns, netnsUnavailable, removeLeftoverNetworks } from "./netns.ts";
import { pgServer } from "./pg_server.ts";
import { pgProgram, psql } from "./pg.ts";
import { isRunning } from "./proc.ts";
import { poll, within } from "./poll.ts";

const UNAVAILABLE = Deno.env.get("QUEUECTL_CI") === "1" ? null : netnsUnavailable();

function netnsTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: UNAVAILABLE ? `${name} (skipped: ${UNAVAILABLE})` : name,
    ignore: UNAVAILABLE !== null,
    fn,
  });
}

const PSQL = pgProgram("psql") ?? "psql";

/** One query from inside `host`; connecting gives up after `connectTimeoutS`. */
function query(host: Host, url: string, sql: string, connectTimeoutS = 5) {
  return host.run([PSQL, "-X", "-w", "-q", "-A", "-t", "-d", url, "-c", sql], {
    env: { PGCONNECT_TIMEOUT: String(connectTimeoutS) },
  });
}

function namespaceNames(): string[] {
  const out = new Deno.Command("ip", { args: ["netns", "list"] }).outputSync();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0] ?? "");
}

function linkExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

netnsTest(
  "netns() hosts reach a PostgreSQL server bound to the bridge, and nothing beyond",
  async () => {
    await using net = await netns({ hosts: 2 });
    await using other = await netns({ hosts: 1 });
    await using server = await pgServer({ listen: [net.gateway], trust: [net.subnet] });
    const [a, b] = net.hosts as [Host, Host];
    assert.notEqual(a.address, b.address);
    assert.notEqual(net.subnet, other.subnet, "parallel networks get subnets of their own");
    for (const host of [a, b]) {
      const out = await query(
        host,
        server.url(),
        "select inet_client_addr() || ' ' || inet_server_addr()",
      );
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout.trim(), `${host.address}/32 ${net.gateway}/32`);
    }
    // The server listens on the bridge only, and the hosts have no route off their subnet.
    const loopback = await query(
      a,
      `postgres://postgres@127.0.0.1:${server.port}/postgres`,
      "select 1",
    );
    assert.notEqual(loopback.code, 0, "the host's own loopback has no server");
    const ping = await a.run(["ip", "route", "get", other.gateway]);
    assert.notEqual(ping.code, 0, `no route to another network: ${ping.stdout}`);
    assert.match(ping.stderr, /unreachable/i);
  },
);

netnsTest("netns() host runs Deno under its own hostname, pids and /proc", async () => {
  await using net = await netns({ hosts: 2 });
  const [a, b] = net.hosts as [Host, Host];
  await using marker = a.spawn(["sleep", "86401"]);
  const markerPid = await marker.pid();
  assert.ok(markerPid !== null && isRunning(markerPid));

  const script = `
    const pids = [...Deno.readDirSync("/proc")].map((e) => Number(e.name)).filter((n) => n > 0);
    const cmdlines = pids.map((p) => { try { return Deno.readTextFileSync("/proc/" + p + "/cmdline"); } catch { return ""; } });
    console.log(JSON.stringify({ hostname: Deno.hostname(), pid: Deno.pid, pids,
      sees: cmdlines.some((c) => c.includes(["864", "01"].join(""))) }));`;
  const seen: Record<string, { hostname: string; pid: number; pids: number[]; sees: boolean }> = {};
  for (const host of [a, b]) {
    const out = await host.run([Deno.execPath(), "eval", script]);
    assert.equal(out.code, 0, out.stderr);
    seen[host.name] = JSON.parse(out.stdout);
  }
  assert.equal(seen.host1?.hostname, "host1");
  assert.equal(seen.host2?.hostname, "host2");
  assert.equal(Deno.hostname() === "host1", false, "the test itself keeps the machine's name");
  assert.equal(seen.host1?.sees, true, "host1 sees its own sleep");
  assert.equal(seen.host2?.sees, false, "host2 does not see host1's processes");
  // host1's /proc: its init (pid 1), the init's sleep, the marker, and deno itself; host2's
  // has no marker.
  assert.ok(seen.host1!.pids.includes(1) && seen.host1!.pids.includes(seen.host1!.pid));
  assert.equal(seen.host1!.pids.length, seen.host2!.pids.length + 1, JSON.stringify(seen));
  assert.ok(seen.host1!.pid < 100, `a pid of the host's own numbering, got ${seen.host1!.pid}`);
  assert.ok(a.pids().includes(markerPid), "pids() lists the host's processes, root numbering");
  assert.equal(b.pids().includes(markerPid), false);
});

netnsTest("netns() host init reaps the orphans a command leaves, as PID 1 must", async () => {
  await using net = await netns({ hosts: 1 });
  const [a] = net.hosts as [Host];
  // The sh exits at once; its sleep is reparented to the host's init and exits a moment later.
  assert.equal((await a.run(["sh", "-c", "sleep 0.2 & exit 0"])).code, 0);
  const processes = async () => {
    const { stdout } = await a.run(["sh", "-c", "cat /proc/[0-9]*/stat"]);
    return stdout.trim().split("\n").map((line) => {
      const name = line.slice(line.indexOf("(") + 1, line.lastIndexOf(")"));
      return `${name}:${line.slice(line.lastIndexOf(")") + 2).split(" ")[0]}`;
    });
  };
  // Running, the orphan is a second sleep beside the init's own; unreaped, it would stay one as
  // a zombie (state Z).
  const sleeps = (seen: string[]) => seen.filter((p) => p.startsWith("sleep:"));
  const deadline = performance.now() + 10_000;
  let seen = await processes();
  while (sleeps(seen).length > 1 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    seen = await processes();
  }
  assert.deepEqual(sleeps(seen), ["sleep:S"], seen.join(", "));
  assert.deepEqual(seen.filter((p) => p.endsWith(":Z")), [], "no zombie in the host");
});

netnsTest(
  "netns() cutLink() makes a host's queries fail in bounded time, restoreLink() heals",
  async () => {
    await using net = await netns({ hosts: 2 });
    await using server = await pgServer({ listen: [net.gateway], trust: [net.subnet] });
    const [a, b] = net.hosts as [Host, Host];
    assert.equal((await query(a, server.url(), "select 1")).stdout.trim(), "1");
    await net.cutLink(a);
    const cut = await within(
      query(a, server.url(), "select 1", 2),
      15_000,
      "a query from the cut-off host to give up",
    );
    assert.notEqual(cut.code, 0, "no answer across a cut link");
    // Dropped silently, as by a pulled cable: the client waits out its own timeout.
    assert.match(cut.stderr, /timeout expired/, cut.stderr);
    const meanwhile = await query(b, server.url(), "select 2");
    assert.equal(meanwhile.stdout.trim(), "2", "the other host is not affected");
    await net.restoreLink(a);
    const healed = await query(a, server.url(), "select 3");
    assert.equal(healed.code, 0, healed.stderr);
    assert.equal(healed.stdout.trim(), "3");
  },
);

netnsTest(
  "netns() cutLink() leaves an open session hanging, restoreLink() lets it finish",
  async () => {
    await using net = await netns({ hosts: 1 });
    await using server = await pgServer({ listen: [net.gateway], trust: [net.subnet] });
    const [a] = net.hosts as [Host];
    const activity = (state: string) =>
      psql(
        server.url(),
        `select count(*) from pg_stat_activity where query like 'select pg_sleep(1)%' and state = '${state}'`,
      );
    await using session = a.spawn([
      PSQL,
      "-X",
      "-w",
      "-A",
      "-t",
      "-d",
      server.url(),
      "-c",
      "select pg_sleep(1), 'answered'",
    ]);
    await poll(
      async () => await activity("active") === "1",
      15_000,
      "the session's query to start",
    );
    await net.cutLink(a);
    // The server finishes the query and sends the answer into the cut link...
    await poll(
      async () => await activity("idle") === "1",
      15_000,
      "the server to finish the query",
    );
    let ended = false;
    void session.status.then(() => ended = true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(ended, false, "the answer cannot reach a cut-off host");
    // ...and TCP delivers it when the link is back: a half-open connection, not a reset.
    await net.restoreLink(a);
    const { code, stdout } = await within(session.child.output(), 60_000, "the answer");
    assert.equal(code, 0);
    assert.equal(new TextDecoder().decode(stdout).trim(), "|answered");
  },
);

netnsTest(
  "netns() killAll() kills every process of one host and leaves the others running",
  async () => {
    await using net = await netns({ hosts: 2 });
    const [a, b] = net.hosts as [Host, Host];
    await using victim = a.spawn(["sh", "-c", "sleep 86402 & sleep 86403 & wait"]);
    await using survivor = b.spawn(["sleep", "86404"]);
    const survivorPid = await survivor.pid();
    await poll(() => a.pids().length >= 5, 10_000, "host1's sh and two sleeps");
    const victims = a.pids();
    await a.killAll();
    assert.deepEqual(victims.filter(isRunning), [], "every process of host1 is gone");
    const status = await victim.status;
    assert.equal(status.success, false);
    assert.ok(survivorPid !== null && isRunning(survivorPid), "host2's process still runs");
    // The host boots again: a new init, the same name and address.
    const after = await a.run(["sh", "-c", "hostname; echo $$"]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout.split("\n")[0], "host1");
    await survivor.kill("SIGTERM");
    assert.equal((await survivor.status).success, false, "kill() reaches the command itself");
  },
);

netnsTest(
  "netns() teardown removes namespaces, links and processes when the test throws",
  async () => {
    let names: string[] = [];
    let links: string[] = [];
    let pids: number[] = [];
    let bridge = "";
    await assert.rejects(async () => {
      await using net = await netns({ hosts: 2 });
      names = net.hosts.map((h) => h.netns);
      links = net.hosts.map((h) => h.link);
      bridge = net.bridge;
      net.hosts[0]!.spawn(["sleep", "86405"], { stdout: "null", stderr: "null" });
      await poll(() => net.hosts[0]!.pids().length >= 3, 10_000, "the sleep");
      pids = net.hosts.flatMap((h) => h.pids());
      throw new Error("the test failed");
    }, /the test failed/);
    assert.ok(names.length === 2 && pids.length >= 5);
    assert.deepEqual(namespaceNames().filter((n) => names.includes(n)), []);
    assert.deepEqual([bridge, ...links].filter(linkExists), []);
    assert.deepEqual(pids.filter(isRunning), []);
  },
);

netnsTest("removeLeftoverNetworks() removes what a killed test run left", async () => {
  const script = `
    import { netns } from ${JSON.stringify(new URL("./netns.ts", import.meta.url).href)};
    const net = await netns({ hosts: 1 });
    console.log(JSON.stringify({ bridge: net.bridge, ns: net.hosts[0].netns, link: net.hosts[0].link,
      pids: net.hosts[0].pids() }));
    await new Promise(() => {});`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await within(reader.read(), 30_000, "the child's network");
  const left = JSON.parse(value ?? "{}") as {
    bridge: string;
    ns: string;
    link: string;
    pids: number[];
  };
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  assert.ok(linkExists(left.bridge) && left.pids.some(isRunning), "the kill left it all behind");
  const slot = Number(/^qc(\d+)b$/.exec(left.bridge)?.[1]);
  assert.ok((await removeLeftoverNetworks()).includes(slot));
  assert.equal(linkExists(left.bridge), false);
  assert.equal(linkExists(left.link), false);
  assert.equal(namespaceNames().includes(left.ns), false);
  assert.deepEqual(left.pids.filter(isRunning), []);
});
