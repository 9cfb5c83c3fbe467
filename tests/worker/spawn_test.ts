/**
 * Behaviour of both spawners, with real processes and real signals. Every
 * behavioural test runs once per method.
 */

import {
  createSpawner,
  type ExitStatus,
  type JobProcess,
  type Spawner,
  SpawnError,
  type SpawnOptions,
} from "../../lib/worker/spawn.ts";
import assert from "node:assert/strict";
import { poll, within } from "../helpers/poll.ts";
import {
  fdCount,
  isRunning,
  parseStat,
  procStat,
  rssBytes,
  zombieChildren,
} from "../helpers/proc.ts";

// Created outside any test: the FFI library handle and the reactor's fds live
// as long as the spawner, which is meant to be the whole worker's life.
const SPAWNERS: readonly Spawner[] = [
  createSpawner({ prefer: "posix_spawn" }),
  createSpawner({ prefer: "deno-detached" }),
];
const SKIP_SLOW = Deno.env.get("QUEUECTL_SKIP_SLOW") === "1";
/** Generous bound for things that take milliseconds, on a noisy 2-core machine. */
const PROMPT_MS = 5_000;
const decoder = new TextDecoder();

interface Started {
  job: JobProcess;
  stdout(): string;
  stderr(): string;
}

function start(spawner: Spawner, command: string, options: Partial<SpawnOptions> = {}): Started {
  const stdout: Uint8Array[] = [];
  const stderr: Uint8Array[] = [];
  const job = spawner.spawn({
    command,
    cwd: "/",
    env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
    // The chunk's memory is reused after the call: keep a copy.
    onStdout: (chunk) => stdout.push(chunk.slice()),
    onStderr: (chunk) => stderr.push(chunk.slice()),
    ...options,
  });
  const text = (chunks: Uint8Array[]) => chunks.map((c) => decoder.decode(c)).join("");
  return { job, stdout: () => text(stdout), stderr: () => text(stderr) };
}

interface Finished {
  status: ExitStatus;
  stdout: string;
  stderr: string;
}

async function run(
  spawner: Spawner,
  command: string,
  options: Partial<SpawnOptions> = {},
): Promise<Finished> {
  const started = start(spawner, command, options);
  const [status] = await within(
    Promise.all([started.job.exited, started.job.outputDone]),
    PROMPT_MS,
    `"${command}" to finish`,
  );
  return { status, stdout: started.stdout(), stderr: started.stderr() };
}

/** Gone, or a zombie waiting for whoever inherited it. */
function isDead(pid: number): boolean {
  return !isRunning(pid);
}

function openFdCount(): number {
  return fdCount("self");
}

/** fds above 2 that this process holds without O_CLOEXEC. */
function inheritedFds(): number[] {
  const O_CLOEXEC = 0o2000000;
  const fds: number[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(entry.name);
    if (fd <= 2) continue;
    try {
      const flags = Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`).match(/^flags:\s+(\d+)/m);
      if (flags !== null && (parseInt(flags[1]!, 8) & O_CLOEXEC) === 0) fds.push(fd);
    } catch {
      // The directory listing's own fd is gone by now.
    }
  }
  return fds;
}

function vmRssBytes(): number {
  const bytes = rssBytes("self");
  assert.ok(bytes !== null, "VmRSS missing from /proc/self/status");
  return bytes;
}

Deno.test("createSpawner() picks posix_spawn on Linux with FFI allowed", () => {
  assert.deepEqual(SPAWNERS.map((s) => s.method), ["posix_spawn", "deno-detached"]);
  // The library and the reactor are per process, so more spawners cost no fd. Other test
  // modules run in this process too (--parallel) and open and close fds at any moment, so a count
  // that moved is measured again: a leak would show every time.
  let counts: [number, number] = [0, 0];
  for (let attempt = 0; attempt < 5; attempt++) {
    const fdsBefore = openFdCount();
    for (let i = 0; i < 10; i++) assert.equal(createSpawner().method, "posix_spawn");
    counts = [fdsBefore, openFdCount()];
    if (counts[0] === counts[1]) break;
  }
  assert.equal(counts[1], counts[0], "open fds after creating 10 spawners");
});

for (const spawner of SPAWNERS) {
  const test = (name: string, fn: () => Promise<void> | void, ignore = false) =>
    Deno.test({ name: `[${spawner.method}] ${name}`, fn, ignore });

  test("spawn() reports exit codes 0, 1, 126 and 127", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const notExecutable = `${dir}/script`;
      await Deno.writeTextFile(notExecutable, "echo never\n", { mode: 0o644 });
      assert.deepEqual((await run(spawner, "exit 0")).status, { code: 0, signal: null });
      assert.deepEqual((await run(spawner, "exit 1")).status, { code: 1, signal: null });
      assert.deepEqual((await run(spawner, notExecutable)).status, { code: 126, signal: null });
      const missing = await run(spawner, "no-such-command-queuectl");
      assert.deepEqual(missing.status, { code: 127, signal: null });
      assert.ok(missing.stderr.includes("not found"), `stderr: ${missing.stderr}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  test("spawn() reports the signal that killed the shell", async () => {
    const { status } = await run(spawner, "kill -SEGV $$");
    assert.deepEqual(status, { code: null, signal: "SIGSEGV" });
  });

  test("spawn() captures stdout and stderr separately", async () => {
    const result = await run(spawner, "echo out; echo err >&2; echo out2");
    assert.equal(result.stdout, "out\nout2\n");
    assert.equal(result.stderr, "err\n");
  });

  test("spawn() drains 1 MiB on stderr alone without deadlock", async () => {
    let bytes = 0;
    const { status } = await run(spawner, "head -c 1048576 /dev/zero >&2", {
      onStderr: (chunk) => bytes += chunk.length,
    });
    assert.deepEqual(status, { code: 0, signal: null });
    assert.equal(bytes, 1048576);
  });

  test("spawn() drains both pipes concurrently when the job alternates large writes", async () => {
    // Each write is bigger than a pipe's 64 KiB: reading one stream at a time deadlocks.
    const counts = [0, 0];
    const { status } = await run(
      spawner,
      "for i in 1 2 3 4; do head -c 200000 /dev/zero; head -c 200000 /dev/zero >&2; done",
      {
        onStdout: (chunk) => counts[0]! += chunk.length,
        onStderr: (chunk) => counts[1]! += chunk.length,
      },
    );
    assert.deepEqual(status, { code: 0, signal: null });
    assert.deepEqual(counts, [800000, 800000]);
  });

  test("spawn() gives the job /dev/null as stdin", async () => {
    const cat = await run(spawner, "cat; echo cat-done");
    assert.equal(cat.stdout, "cat-done\n");
    const read = await run(spawner, 'read x; echo "rc=$? x=$x"; readlink /proc/$$/fd/0');
    assert.equal(read.stdout, "rc=1 x=\n/dev/null\n");
  });

  test("spawn() passes the job no fd of the worker but 0, 1 and 2", async () => {
    // ls opens fd 3 itself to list the directory.
    const { stdout } = await run(spawner, "exec ls /proc/self/fd");
    const fds = stdout.split("\n").filter((fd) => fd !== "").map(Number);
    const expected = [0, 1, 2, 3];
    if (spawner.method === "deno-detached") {
      // Deno.Command passes on fds that the worker itself inherited without
      // close-on-exec (posix_spawn closes them with addclosefrom_np).
      expected.push(...inheritedFds());
    }
    assert.deepEqual(fds.filter((fd) => !expected.includes(fd)), []);
    assert.ok([0, 1, 2, 3].every((fd) => fds.includes(fd)), `job fds: ${fds.join(" ")}`);
  });

  test("spawn() applies cwd and exactly the given environment", async () => {
    const dir = await Deno.realPath(await Deno.makeTempDir());
    Deno.env.set("QUEUECTL_TEST_PARENT_ONLY", "leak");
    try {
      const result = await run(spawner, "pwd; env", {
        cwd: dir,
        env: { QUEUECTL_JOB_ID: "42", SPACED: "a b=c" },
      });
      const [pwd, ...env] = result.stdout.trimEnd().split("\n");
      assert.equal(pwd, dir);
      // dash adds PWD itself; nothing else may appear, PATH included.
      assert.deepEqual(env.sort(), [`PWD=${dir}`, "QUEUECTL_JOB_ID=42", "SPACED=a b=c"]);
    } finally {
      Deno.env.delete("QUEUECTL_TEST_PARENT_ONLY");
      await Deno.remove(dir);
    }
  });

  test("spawn() puts env on top of a shared envBase, each variable once", async () => {
    const base = { SHARED: "from base", REPLACED: "base", UNI: "ä\u00e9 ☃" };
    const env = (extra: Record<string, string>) =>
      run(spawner, "env", { cwd: "/", envBase: base, env: extra }).then((r) =>
        r.stdout.trimEnd().split("\n").filter((l) => !l.startsWith("PWD=")).sort()
      );
    // The same base, spawn after spawn (a spawner may keep its encoding).
    for (const id of ["1", "2"]) {
      assert.deepEqual(await env({ QUEUECTL_JOB_ID: id }), [
        `QUEUECTL_JOB_ID=${id}`,
        "REPLACED=base",
        "SHARED=from base",
        "UNI=ä\u00e9 ☃",
      ]);
    }
    // A job's own variable replaces the base's, and appears once.
    assert.deepEqual(await env({ REPLACED: "job" }), [
      "REPLACED=job",
      "SHARED=from base",
      "UNI=ä\u00e9 ☃",
    ]);
    // What no exec can carry is refused, in the base as in the job's own variables.
    for (const bad of [{ envBase: { A: "x\0y" }, env: {} }, { envBase: base, env: { B: "\0" } }]) {
      assert.throws(
        () => spawner.spawn({ ...bad, command: "true", cwd: "/", onStdout() {}, onStderr() {} }),
        SpawnError,
      );
    }
  });

  test("spawn() makes the job lead its own session and process group", async () => {
    const { stdout } = await run(spawner, "cat /proc/$$/stat");
    const stat = parseStat(stdout);
    const self = procStat("self");
    assert.ok(self !== null);
    assert.ok(stat.pgrp !== self.pgrp, "the job shares the worker's process group");
    assert.equal(stat.session, stat.pgrp, "session id");
    assert.equal(stat.ppid, Deno.pid, "parent");
  });

  test("spawn() returns pid and pgid of the shell", async () => {
    const started = start(spawner, "cat /proc/$$/stat");
    await within(Promise.all([started.job.exited, started.job.outputDone]), PROMPT_MS, "job");
    const stat = parseStat(started.stdout());
    assert.equal(started.job.pgid, started.job.pid);
    assert.equal(stat.pgrp, started.job.pid);
    assert.equal(stat.session, started.job.pid);
  });

  test("killGroup() kills a background grandchild", async () => {
    const { job, stdout } = start(spawner, "sleep 300 & echo $!; wait");
    await poll(() => stdout().endsWith("\n"), PROMPT_MS, "the grandchild's pid");
    const grandchild = Number(stdout().trim());
    assert.ok(!isDead(grandchild), "grandchild should be running");
    job.killGroup("SIGTERM");
    assert.deepEqual(await within(job.exited, PROMPT_MS, "exit"), {
      code: null,
      signal: "SIGTERM",
    });
    await within(job.outputDone, PROMPT_MS, "pipe EOF once the group is dead");
    await poll(() => isDead(grandchild), PROMPT_MS, "the grandchild to die");
  });

  test("exited resolves when the shell exits although a grandchild holds the pipes", async () => {
    const { job, stdout } = start(spawner, "sleep 300 & echo started");
    let outputDone = false;
    job.outputDone.then(() => outputDone = true);
    assert.deepEqual(await within(job.exited, 2_000, "exit"), { code: 0, signal: null });
    await poll(() => stdout() === "started\n", PROMPT_MS, "output");
    assert.ok(!outputDone, "outputDone must wait for the grandchild's end of the pipe");
    job.killGroup("SIGTERM");
    await within(job.outputDone, PROMPT_MS, "EOF after killGroup");
    job.closeOutput(); // harmless once the streams are over
  });

  test("closeOutput() abandons pipes that a live grandchild holds, releasing the fds", async () => {
    const fdsBefore = openFdCount();
    const { job, stdout } = start(spawner, "sleep 300 & echo $!");
    await within(job.exited, PROMPT_MS, "exit");
    await poll(() => stdout().endsWith("\n"), PROMPT_MS, "output");
    const grandchild = Number(stdout().trim());
    job.closeOutput();
    await within(job.outputDone, PROMPT_MS, "outputDone after closeOutput");
    await poll(() => openFdCount() <= fdsBefore, PROMPT_MS, "fds to be released");
    assert.ok(!isDead(grandchild), "closeOutput must not depend on the grandchild dying");
    job.killGroup("SIGKILL");
    await poll(() => isDead(grandchild), PROMPT_MS, "the grandchild to die");
  });

  test("killGroup() with SIGKILL ends a job that ignores SIGTERM", async () => {
    const { job, stdout } = start(spawner, "trap '' TERM; echo ready; sleep 300");
    await poll(() => stdout() === "ready\n", PROMPT_MS, "ready");
    job.killGroup("SIGTERM");
    const early = await Promise.race([
      job.exited,
      new Promise<"alive">((resolve) => setTimeout(() => resolve("alive"), 300)),
    ]);
    assert.equal(early, "alive", "SIGTERM should have been ignored");
    job.killGroup("SIGKILL");
    assert.deepEqual(await within(job.exited, PROMPT_MS, "exit"), {
      code: null,
      signal: "SIGKILL",
    });
    await within(job.outputDone, PROMPT_MS, "EOF");
  });

  test("killGroup() ignores a group that no longer exists", async () => {
    const { job } = start(spawner, "exit 0");
    await within(Promise.all([job.exited, job.outputDone]), PROMPT_MS, "job");
    job.killGroup("SIGTERM");
  });

  test("spawn() resets signal dispositions and the mask in the job", async () => {
    // Deno ignores SIGPIPE. An ignored-at-entry signal cannot be reset by sh,
    // so if it leaked, `kill -PIPE $$` would do nothing and sh would exit 0.
    const pipe = await run(spawner, "kill -PIPE $$; echo survived");
    assert.deepEqual(pipe.status, { code: null, signal: "SIGPIPE" });
    // grep reads its own status: dash blocks every signal while it waits for
    // a child, so /proc/$$/status could show that instead of what it got.
    const masks = await run(spawner, "exec grep -E '^Sig(Ign|Blk)' /proc/self/status");
    // posix_spawn resets every signal. Deno.Command (the fallback) resets only SIGPIPE, so its
    // job inherits whatever else this process ignores (under `deno task`, signal 32 is ignored).
    const ownIgnored = BigInt(
      "0x" + /SigIgn:\s*([0-9a-f]+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1],
    );
    const expectedIgnored = spawner.method === "posix_spawn" ? 0n : ownIgnored & ~(1n << 12n);
    assert.equal(
      masks.stdout,
      `SigBlk:\t0000000000000000\nSigIgn:\t${expectedIgnored.toString(16).padStart(16, "0")}\n`,
    );
    const yes = await run(spawner, "yes | head -1");
    assert.deepEqual([yes.status, yes.stdout, yes.stderr], [{ code: 0, signal: null }, "y\n", ""]);
  });

  test("spawn() throws SpawnError for a missing cwd and leaks no fd", () => {
    const fdsBefore = openFdCount();
    assert.throws(() => start(spawner, "true", { cwd: "/nope" }), (error) => {
      assert.ok(error instanceof SpawnError, `Expected SpawnError, got: ${String(error)}`);
      assert.deepEqual(
        [error.message, error.code, error.step],
        ['Cannot change to directory "/nope": ENOENT', "ENOENT", "cwd"],
      );
      return true;
    });
    assert.throws(() => start(spawner, "true", { cwd: "/etc/passwd" }), (error) => {
      assert.ok(error instanceof SpawnError, `Expected SpawnError, got: ${String(error)}`);
      assert.deepEqual([error.code, error.step], ["ENOTDIR", "cwd"]);
      return true;
    });
    assert.equal(openFdCount(), fdsBefore);
  });

  test("spawn() throws SpawnError for options no exec can carry", () => {
    for (
      const options of [
        { env: { "A=B": "1" } },
        { env: { "": "1" } },
        { env: { A: "x\0y" } },
        { command: "echo \0" },
      ]
    ) {
      assert.throws(() => start(spawner, "true", options), (error) => {
        assert.ok(error instanceof SpawnError, `Expected SpawnError, got: ${String(error)}`);
        assert.deepEqual([error.code, error.step], ["EINVAL", "options"]);
        return true;
      });
    }
  });

  test("outputDone rejects when an output callback throws", async () => {
    const failure = new Error("callback failed");
    const { job } = start(spawner, "echo out; echo err >&2", {
      onStdout: () => {
        throw failure;
      },
    });
    const outcome = await within(
      job.outputDone.then(() => "resolved", (error: unknown) => error),
      PROMPT_MS,
      "outputDone",
    );
    assert.equal(outcome === failure, true, `outputDone settled with ${String(outcome)}`);
    await within(job.exited, PROMPT_MS, "exit");
  });

  test("spawn() streams 1 GB with flat memory", async () => {
    let bytes = 0;
    const rssBefore = vmRssBytes();
    let rssPeak = rssBefore;
    let chunks = 0;
    const { status } = await within(
      run(spawner, "head -c 1G /dev/zero", {
        onStdout: (chunk) => {
          bytes += chunk.length;
          // Sampling every chunk would cost more than the copy it measures.
          if (++chunks % 256 === 0) rssPeak = Math.max(rssPeak, vmRssBytes());
        },
      }),
      60_000,
      "1 GB of output",
    );
    rssPeak = Math.max(rssPeak, vmRssBytes());
    assert.deepEqual(status, { code: 0, signal: null });
    assert.equal(bytes, 1024 ** 3);
    const growth = rssPeak - rssBefore;
    assert.ok(growth < 50 * 1024 * 1024, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`);
  }, SKIP_SLOW);

  test("spawn() keeps Deno's blocking pool free while 40 jobs wait", async () => {
    // Deno runs async file ops and nonblocking FFI calls on one pool of about
    // 32 threads. A spawner that parked a blocking read or waitpid there per
    // job would stall the whole worker, this read included.
    const jobs = Array.from({ length: 40 }, () => start(spawner, "exec sleep 300").job);
    try {
      await within(Deno.readTextFile("/proc/self/status"), PROMPT_MS, "a file read");
      assert.equal((await run(spawner, "echo hi")).stdout, "hi\n");
    } finally {
      for (const job of jobs) job.killGroup("SIGKILL");
      await within(
        Promise.all(jobs.map((job) => Promise.all([job.exited, job.outputDone]))),
        PROMPT_MS,
        "the jobs to die",
      );
    }
  });

  test("spawn() leaves no zombie and no fd after 2,000 jobs", async () => {
    const fdsBefore = openFdCount();
    // Four at a time: faster, and it exercises the shared reactor.
    const jobs = 2_000;
    let next = 0;
    const lane = async () => {
      while (next < jobs) {
        next++;
        const { job } = start(spawner, "true");
        await within(Promise.all([job.exited, job.outputDone]), PROMPT_MS, "job");
      }
    };
    await Promise.all([lane(), lane(), lane(), lane()]);
    assert.deepEqual(zombieChildren(Deno.pid), []);
    const fdsAfter = openFdCount();
    assert.ok(Math.abs(fdsAfter - fdsBefore) <= 3, `fds: ${fdsBefore} before, ${fdsAfter} after`);
  });
}
