import assert from "node:assert/strict";
import { cliFixture } from "../helpers/cli_fixture.ts";

Deno.test("config get lists every key with its value, default and meaning", async () => {
  await using q = await cliFixture();
  const { code, stdout, stderr } = await q.run(["config", "get"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.equal(
    stdout,
    [
      "KEY               VALUE  DEFAULT  MEANING",
      "max-retries       3      3        retries after the first attempt, for jobs enqueued without max_retries",
      "backoff-base      2      2        retry n waits min(backoff-max, backoff-base^n) seconds",
      "backoff-max       1h     1h       longest wait between retries",
      "job-timeout       5m     5m       time limit of a job without its own timeout (0 = none)",
      "lease-timeout     30s    30s      a job whose worker stops renewing its lease this long is recovered",
      "output-limit      1MiB   1MiB     output kept per stream and attempt (head and tail, the middle cut)",
      "retain-completed  7d     7d       workers delete completed and cancelled jobs this long after they finished (0 = keep)",
      "",
    ].join("\n"),
  );
});

Deno.test("config set stores a value that config get then shows", async () => {
  await using q = await cliFixture();
  assert.deepEqual(await q.run(["config", "set", "backoff-max", "90m"]), {
    code: 0,
    stdout: "backoff-max = 1h30m\n",
    stderr: "",
  });
  assert.equal(
    (await q.run(["config", "set", "output-limit", "512KiB"])).stdout,
    "output-limit = 512KiB\n",
  );
  assert.equal((await q.run(["config", "set", "max-retries", "0"])).stdout, "max-retries = 0\n");
  assert.equal((await q.run(["config", "get", "backoff-max"])).stdout, "1h30m\n");
  assert.equal((await q.run(["config", "get", "max-retries"])).stdout, "0\n");
  const table = (await q.run(["config", "get"])).stdout;
  assert.equal(
    table,
    [
      "KEY               VALUE   DEFAULT  MEANING",
      "max-retries       0       3        retries after the first attempt, for jobs enqueued without max_retries",
      "backoff-base      2       2        retry n waits min(backoff-max, backoff-base^n) seconds",
      "backoff-max       1h30m   1h       longest wait between retries",
      "job-timeout       5m      5m       time limit of a job without its own timeout (0 = none)",
      "lease-timeout     30s     30s      a job whose worker stops renewing its lease this long is recovered",
      "output-limit      512KiB  1MiB     output kept per stream and attempt (head and tail, the middle cut)",
      "retain-completed  7d      7d       workers delete completed and cancelled jobs this long after they finished (0 = keep)",
      "",
    ].join("\n"),
  );
});

Deno.test("config unset returns a key to its default and says whether it was set", async () => {
  await using q = await cliFixture();
  await q.run(["config", "set", "job-timeout", "10m"]);
  assert.equal(
    (await q.run(["config", "unset", "job-timeout"])).stdout,
    "job-timeout = 5m (default)\n",
  );
  assert.equal(
    (await q.run(["config", "unset", "job-timeout"])).stdout,
    "job-timeout = 5m (default; it was not set)\n",
  );
  assert.equal((await q.run(["config", "get", "job-timeout"])).stdout, "5m\n");
});

Deno.test("config --json prints values in seconds and bytes", async () => {
  await using q = await cliFixture();
  const set = await q.run(["config", "set", "backoff-max", "90m", "--json"]);
  assert.equal(
    set.stdout,
    '{"key":"backoff-max","value":5400,"unit":"seconds","default":3600,"set":true}\n',
  );
  assert.equal(
    (await q.run(["config", "get", "backoff-max", "--json"])).stdout,
    '{"key":"backoff-max","value":5400,"unit":"seconds","default":3600,"set":true}\n',
  );
  assert.deepEqual(JSON.parse((await q.run(["config", "get", "--json"])).stdout), {
    "max-retries": { value: 3, unit: "count", default: 3, set: false },
    "backoff-base": { value: 2, unit: "factor", default: 2, set: false },
    "backoff-max": { value: 5400, unit: "seconds", default: 3600, set: true },
    "job-timeout": { value: 300, unit: "seconds", default: 300, set: false },
    "lease-timeout": { value: 30, unit: "seconds", default: 30, set: false },
    "output-limit": { value: 1048576, unit: "bytes", default: 1048576, set: false },
    "retain-completed": { value: 604800, unit: "seconds", default: 604800, set: false },
  });
  assert.equal(
    (await q.run(["config", "unset", "backoff-max", "--json"])).stdout,
    '{"key":"backoff-max","value":3600,"unit":"seconds","default":3600,"set":false,"was_set":true}\n',
  );
});

Deno.test("config refuses unknown keys and bad values without storing anything", async () => {
  await using q = await cliFixture();
  const unknown = await q.run(["config", "set", "retries", "5"]);
  assert.equal(unknown.code, 2);
  assert.equal(
    unknown.stderr,
    'queuectl: Unknown config key "retries" (valid keys: max-retries, backoff-base, backoff-max, ' +
      "job-timeout, lease-timeout, output-limit, retain-completed)\n",
  );
  const bad = await q.run(["config", "set", "max-retries", "many"]);
  assert.equal(bad.code, 2);
  assert.equal(
    bad.stderr,
    'queuectl: Invalid value "many" for max-retries: must be a whole number ' +
      "(max-retries: retries after the first attempt, for jobs enqueued without max_retries)\n",
  );
  const all = JSON.parse((await q.run(["config", "get", "--json"])).stdout);
  assert.ok(Object.values(all).every((v) => (v as { set: boolean }).set === false));
});
