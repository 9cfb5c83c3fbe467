import assert from "node:assert/strict";
import {
  CONFIG_KEYS,
  configKey,
  DEFAULT_CONFIG,
  formatConfigValue,
  formatSize,
  jsonConfigValue,
  parseConfigValue,
  resolveConfig,
} from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";

Deno.test("CONFIG_KEYS has the spec's keys and defaults", () => {
  assert.deepEqual(Object.keys(CONFIG_KEYS), [
    "max-retries",
    "backoff-base",
    "backoff-max",
    "job-timeout",
    "lease-timeout",
    "output-limit",
    "retain-completed",
  ]);
  assert.deepEqual(DEFAULT_CONFIG, {
    maxRetries: 3,
    backoffBase: 2,
    backoffMaxMs: 3_600_000,
    jobTimeoutMs: 300_000,
    leaseTimeoutMs: 30_000,
    outputLimitBytes: 1024 * 1024,
    retainCompletedMs: 7 * 86_400_000,
  });
});

Deno.test("configKey() refuses an unknown key, suggesting the near one and listing all", () => {
  assert.throws(() => configKey("max-retry"), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.exitCode, 2);
    assert.equal(error.message, 'Unknown config key "max-retry"');
    assert.equal(error.typo?.input, "max-retry");
    assert.equal(
      error.hint,
      "valid keys: max-retries, backoff-base, backoff-max, job-timeout, lease-timeout, " +
        "output-limit, retain-completed",
    );
    return true;
  });
  for (const key of ["", "toString", "__proto__", "constructor", "hasOwnProperty", "MAX-RETRIES"]) {
    assert.throws(() => configKey(key), UsageError, JSON.stringify(key));
  }
});

Deno.test("parseConfigValue() reads counts, factors, durations and sizes into base units", () => {
  const cases: [string, string, number][] = [
    ["max-retries", "0", 0],
    ["max-retries", "5", 5],
    ["max-retries", "1000", 1000],
    ["backoff-base", "1", 1],
    ["backoff-base", "1.5", 1.5],
    ["backoff-base", "3", 3],
    ["backoff-max", "10m", 600_000],
    ["backoff-max", "90", 90_000],
    ["backoff-max", "0", 0],
    ["job-timeout", "0", 0],
    ["job-timeout", "1h30m", 5_400_000],
    ["lease-timeout", "1s", 1000],
    ["lease-timeout", "1d", 86_400_000],
    ["output-limit", "1024", 1024],
    ["output-limit", "512KiB", 512 * 1024],
    ["output-limit", "2m", 2 * 1024 * 1024],
    ["output-limit", "1GiB", 1024 ** 3],
    ["output-limit", "1.5k", 1536],
  ];
  for (const [key, text, value] of cases) {
    assert.equal(parseConfigValue(key, text), value, `${key} ${text}`);
  }
});

Deno.test("parseConfigValue() refuses bad values, naming the key and the value", () => {
  const cases: [string, string, RegExp][] = [
    ["max-retries", "-1", /whole number/],
    ["max-retries", "1.5", /whole number/],
    ["max-retries", "three", /whole number/],
    ["max-retries", "", /whole number/],
    ["max-retries", "1001", /between 0 and 1000/],
    ["max-retries", "99999999999999999999999", /between 0 and 1000/],
    ["backoff-base", "0", /between 1 and 1000/],
    ["backoff-base", "0.5", /between 1 and 1000/],
    ["backoff-base", "1e3", /must be a number/],
    ["backoff-base", "-2", /must be a number/],
    ["backoff-max", "-1s", /negative/],
    ["backoff-max", "forever", /not a duration/],
    ["backoff-max", "31d", /between 0 and 30d/],
    ["job-timeout", "5 m", /not a duration/],
    ["lease-timeout", "0", /between 1s and 1d/],
    ["lease-timeout", "999ms", /between 1s and 1d/],
    ["output-limit", "1TiB", /not a size/],
    ["output-limit", "1023", /between 1KiB and 1GiB/],
    ["output-limit", "2GiB", /between 1KiB and 1GiB/],
    ["output-limit", "-1", /not a size/],
  ];
  for (const [key, text, problem] of cases) {
    assert.throws(() => parseConfigValue(key, text), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${key} ${text}`);
      assert.ok(error.message.startsWith(`Invalid value "${text}" for ${key}: `), error.message);
      assert.match(error.message, problem, `${key} ${text}`);
      assert.match(error.hint ?? "", new RegExp(`^${key}: `));
      return true;
    });
  }
});

Deno.test("formatConfigValue() and jsonConfigValue() show base units for people and machines", () => {
  assert.equal(formatConfigValue("backoff-max", 3_600_000), "1h");
  assert.equal(formatConfigValue("job-timeout", 0), "0");
  assert.equal(formatConfigValue("output-limit", 1024 * 1024), "1MiB");
  assert.equal(formatConfigValue("max-retries", 3), "3");
  assert.equal(formatConfigValue("backoff-base", 1.5), "1.5");
  assert.equal(jsonConfigValue("backoff-max", 3_600_000), 3600);
  assert.equal(jsonConfigValue("output-limit", 2048), 2048);
  assert.equal(jsonConfigValue("max-retries", 3), 3);
  assert.equal(formatSize(1000), "1000B");
  assert.equal(formatSize(1536), "1.5KiB");
  assert.equal(formatSize(1024 ** 3), "1GiB");
});

Deno.test("resolveConfig() applies valid stored overrides and ignores broken ones", () => {
  assert.deepEqual(resolveConfig({}), DEFAULT_CONFIG);
  const config = resolveConfig({
    "max-retries": "7",
    "backoff-max": "60000",
    "lease-timeout": "5", // below its minimum: ignored
    "output-limit": "lots", // not a number: ignored
    "no-such-key": "1", // from a newer version: ignored
  });
  assert.deepEqual(config, { ...DEFAULT_CONFIG, maxRetries: 7, backoffMaxMs: 60_000 });
});
