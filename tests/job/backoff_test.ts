import assert from "node:assert/strict";
import { retryDelayMs } from "../../lib/job/backoff.ts";

const DEFAULTS = { base: 2, maxMs: 3_600_000 };

Deno.test("retryDelayMs() is backoff-base^n seconds: 2, 4, 8, 16 s with the defaults", () => {
  assert.deepEqual([1, 2, 3, 4].map((n) => retryDelayMs(n, DEFAULTS)), [2000, 4000, 8000, 16000]);
});

Deno.test("retryDelayMs() caps at backoff-max", () => {
  // 2^11 = 2048 s < 3600 s; 2^12 = 4096 s > 3600 s.
  assert.equal(retryDelayMs(11, DEFAULTS), 2_048_000);
  assert.equal(retryDelayMs(12, DEFAULTS), 3_600_000);
  assert.equal(retryDelayMs(3, { base: 10, maxMs: 500_000 }), 500_000);
  assert.equal(retryDelayMs(3, { base: 10, maxMs: 1_000_000 }), 1_000_000);
});

Deno.test("retryDelayMs() stays at the cap for huge attempt numbers (no Infinity, no NaN)", () => {
  for (const n of [100, 1024, 1075, 10_000, 1e9, Number.MAX_SAFE_INTEGER]) {
    assert.equal(retryDelayMs(n, DEFAULTS), 3_600_000, `n=${n}`);
    assert.equal(retryDelayMs(n, { base: 1000, maxMs: 30 * 86_400_000 }), 30 * 86_400_000);
  }
});

Deno.test("retryDelayMs() with base 1 waits one second every time", () => {
  for (const n of [1, 2, 50, 1e6]) assert.equal(retryDelayMs(n, { base: 1, maxMs: 60_000 }), 1000);
});

Deno.test("retryDelayMs() handles a fractional base and a zero cap", () => {
  assert.equal(retryDelayMs(2, { base: 1.5, maxMs: 60_000 }), 2250);
  assert.equal(retryDelayMs(5, { base: 2, maxMs: 0 }), 0);
});

Deno.test("retryDelayMs() is whole milliseconds", () => {
  const odd = retryDelayMs(3, { base: 1.1, maxMs: 60_000 }); // 1.331 s
  assert.equal(odd, 1331);
  assert.ok(Number.isInteger(retryDelayMs(7, { base: 1.37, maxMs: 600_000 })));
});
