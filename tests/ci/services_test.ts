/**
 * .ci/services.sh, run for real: the checks CI does before the tests. The install branch
 * (apt-get install postgresql) is not run here, since it would change the machine; the pieces
 * around it are (finding, starting and opening up a Debian cluster).
 */

import assert from "node:assert/strict";
import { freePort, pgServer } from "../helpers/pg_server.ts";
import { pgUrl } from "../helpers/pg.ts";
import { isRunning } from "../helpers/proc.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const IS_ROOT = Deno.uid() === 0;
const IN_CI = Deno.env.get("QUEUECTL_CI") === "1";

interface Run {
  code: number;
  /** stdout and stderr, interleaved as bash wrote them. */
  lines: string[];
  /** QUEUECTL_TEST_PG_URL as the function left it. */
  exported: string;
}

/** Sources .ci/services.sh in a clean bash and calls `fn`, as .ci/run does. */
async function services(fn: string, env: Record<string, string> = {}): Promise<Run> {
  const script = `set -uo pipefail; . .ci/services.sh; ${fn} 2>&1; rc=$?
    echo "exported=\${QUEUECTL_TEST_PG_URL:-}"; exit $rc`;
  const { code, stdout } = await new Deno.Command("bash", {
    args: ["-c", script],
    cwd: REPO,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/",
      ...env,
    },
    stderr: "inherit",
  }).output();
  const lines = new TextDecoder().decode(stdout).trimEnd().split("\n");
  const exported = (lines.pop() ?? "").replace(/^exported=/, "");
  return { code, lines, exported };
}

Deno.test("ensure_postgres uses a given QUEUECTL_TEST_PG_URL that answers, and fails on one that does not", async () => {
  const ok = await services("ensure_postgres", {
    QUEUECTL_TEST_PG_URL: pgUrl(),
    QUEUECTL_CI_NO_INSTALL: "1",
  });
  assert.equal(ok.code, 0, ok.lines.join("\n"));
  assert.equal(ok.lines.length, 1, "one line when all is there");
  assert.match(ok.lines[0]!, /^== postgres: QUEUECTL_TEST_PG_URL answers \(server \d+/);
  assert.equal(ok.exported, pgUrl());

  const bad = await services("ensure_postgres", {
    QUEUECTL_TEST_PG_URL: `postgres://postgres@127.0.0.1:${freePort()}/postgres`,
    QUEUECTL_CI_NO_INSTALL: "1",
  });
  assert.equal(bad.code, 1);
  assert.equal(bad.lines.length, 1, bad.lines.join("\n"));
  assert.match(bad.lines[0]!, /^!! postgres: QUEUECTL_TEST_PG_URL does not answer: .*refused/);
});

Deno.test("ensure_postgres takes the server on its port, exports the URL, and names one that refuses", async () => {
  {
    await using server = await pgServer();
    const run = await services("ensure_postgres", {
      QUEUECTL_CI_PG_PORT: String(server.port),
      QUEUECTL_CI_NO_INSTALL: "1",
    });
    assert.equal(run.code, 0, run.lines.join("\n"));
    const url = `postgres://postgres@127.0.0.1:${server.port}/postgres`;
    assert.equal(run.exported, url);
    assert.match(run.lines.join("\n"), new RegExp(`^== postgres: ${url} \\(server \\d+`));
  }
  {
    await using server = await pgServer({ trust: [] });
    const run = await services("ensure_postgres", {
      QUEUECTL_CI_PG_PORT: String(server.port),
      QUEUECTL_CI_NO_INSTALL: "1",
    });
    assert.equal(run.code, 1);
    assert.equal(run.exported, "");
    assert.deepEqual(run.lines.length, 1, run.lines.join("\n"));
    assert.match(
      run.lines[0]!,
      /^!! postgres: a server answers on 127\.0\.0\.1:\d+ but refuses .*no pg_hba\.conf entry.*; set QUEUECTL_TEST_PG_URL/,
    );
  }
});

Deno.test("ensure_postgres fails with one line when nothing answers and it may not install", async () => {
  const run = await services("ensure_postgres", {
    QUEUECTL_CI_PG_PORT: String(freePort()),
    QUEUECTL_CI_NO_INSTALL: "1",
  });
  assert.equal(run.code, 1);
  assert.equal(run.lines.length, 1, run.lines.join("\n"));
  assert.match(run.lines[0]!, /^!! postgres: nothing answers on 127\.0\.0\.1:\d+ and no cluster/);
  assert.match(run.lines[0]!, /QUEUECTL_TEST_PG_URL/);
});

Deno.test("ensure_chromium and ensure_net_tools find what the browser and netns tests need", async () => {
  const chromium = await services("ensure_chromium", { QUEUECTL_CI_NO_INSTALL: "1" });
  assert.equal(chromium.code, 0, chromium.lines.join("\n"));
  assert.deepEqual(chromium.lines, ["== chromium: /usr/bin/chromium"]);
  const net = await services("ensure_net_tools", { QUEUECTL_CI_NO_INSTALL: "1" });
  assert.equal(net.code, 0, net.lines.join("\n"));
  assert.equal(net.lines.filter(Boolean).length, 0, "nothing to say when the tools are there");
});

// A Debian cluster of its own, made and dropped by the test (pg_createcluster needs root).
const CLUSTER_PREFIX = "queuectl_ci_";

async function sh(command: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("sh", { args: ["-c", command] })
    .output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(`${command}: exit ${code}: ${out.trim()}`);
  return out;
}

async function dropLeftoverClusters(): Promise<void> {
  for (const line of (await sh("pg_lsclusters -h || true")).split("\n")) {
    const [version, name] = line.split(/\s+/);
    const pid = Number(name?.startsWith(CLUSTER_PREFIX) ? name.slice(CLUSTER_PREFIX.length) : NaN);
    if (Number.isInteger(pid) && !isRunning(pid)) {
      await sh(`pg_dropcluster --stop ${version} ${name}`);
    }
  }
}

Deno.test({
  name: `ensure_postgres starts the installed cluster on its port${
    IS_ROOT || IN_CI ? "" : " (skipped: pg_createcluster needs root)"
  }`,
  ignore: !IS_ROOT && !IN_CI,
  async fn() {
    await dropLeftoverClusters();
    const version = (await sh("ls /usr/lib/postgresql | sort -n | tail -1")).trim();
    const name = `${CLUSTER_PREFIX}${Deno.pid}`;
    const port = freePort();
    // As Debian makes it: TCP clients must give a password, which the tests' URL has not.
    await sh(`pg_createcluster -p ${port} ${version} ${name} >/dev/null`);
    try {
      const env = { QUEUECTL_CI_PG_PORT: String(port), QUEUECTL_CI_NO_INSTALL: "1" };
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      const refused = await services("ensure_postgres", env);
      assert.equal(refused.code, 1, refused.lines.join("\n"));
      assert.equal(refused.lines[0], `== starting PostgreSQL cluster ${version}/${name}`);
      assert.match(
        refused.lines[1] ?? "",
        new RegExp(`^!! postgres: cluster ${version}/${name} runs but ${url} fails: .*password`),
      );
      assert.match(await sh(`pg_lsclusters -h ${version} ${name}`), /online/);

      // What CI does to a cluster it installed itself, then: the next run takes it as it is.
      const opened = await services(
        `ci_pg_trust_local ${version} ${name} && ` +
          `pg_ctlcluster --skip-systemctl-redirect ${version} ${name} stop && ensure_postgres`,
        env,
      );
      assert.equal(opened.code, 0, opened.lines.join("\n"));
      assert.equal(opened.exported, url);
      assert.equal(opened.lines[0], `== starting PostgreSQL cluster ${version}/${name}`);
      assert.match(
        opened.lines[1] ?? "",
        new RegExp(`^== postgres: ${url} \\(server ${version}\\.`),
      );
      const again = await services(
        "ci_pg_trust_local " + `${version} ${name} && ensure_postgres`,
        env,
      );
      assert.equal(again.code, 0);
      assert.equal(again.lines.length, 1, "started and opened once; the next run just uses it");
      assert.equal(
        (await sh(`grep -c '^# queuectl CI' /etc/postgresql/${version}/${name}/pg_hba.conf`))
          .trim(),
        "1",
        "the trust lines are added once",
      );
    } finally {
      await sh(`pg_dropcluster --stop ${version} ${name}`);
    }
  },
});
