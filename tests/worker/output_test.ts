/**
 * `OutputBuffer`: the bounded capture of one output stream. Everything up to the limit is kept;
 * beyond it, exactly the first ceil(limit/2) and the last floor(limit/2) bytes, and `total`
 * counts every byte.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cutBytes, OutputBuffer } from "../../lib/worker/output.ts";
import type { OutputCapture } from "../../lib/store/store.ts";
import { Prng } from "../helpers/prng.ts";

/** Bytes 0, 1, 2, … (mod 251, so no period lines up with a power of two), from `start`. */
function bytes(length: number, start = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (start + i) % 251);
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** What a capture of `written` must hold, by the definition. */
function expected(written: Uint8Array, limit: number): OutputCapture {
  const headCap = Math.ceil(limit / 2);
  const tailCap = Math.floor(limit / 2);
  const head = written.slice(0, Math.min(headCap, written.length));
  const rest = written.slice(head.length);
  return { head, tail: rest.slice(Math.max(0, rest.length - tailCap)), total: written.length };
}

function assertCapture(actual: OutputCapture, want: OutputCapture, what: string): void {
  assert.equal(actual.total, want.total, `${what}: total`);
  assert.deepEqual([...actual.head], [...want.head], `${what}: head`);
  assert.deepEqual([...actual.tail], [...want.tail], `${what}: tail`);
}

Deno.test("OutputBuffer keeps every byte up to the limit, in order", () => {
  for (const limit of [1, 2, 7, 8, 64]) {
    const buffer = new OutputBuffer(limit);
    const written: Uint8Array[] = [];
    for (let i = 0; i < limit; i++) {
      written.push(bytes(1, i));
      buffer.write(written[written.length - 1]!);
      const all = concat(written);
      const snap = buffer.snapshot();
      assert.deepEqual([...concat([snap.head, snap.tail])], [...all], `limit ${limit}, ${i + 1} B`);
      assert.equal(cutBytes(snap), 0);
    }
  }
});

Deno.test("OutputBuffer keeps the first ceil(limit/2) and last floor(limit/2) bytes beyond it", () => {
  // Odd and even limits; the first write already crosses the limit.
  for (const limit of [9, 10]) {
    const buffer = new OutputBuffer(limit);
    const data = bytes(1000);
    buffer.write(data);
    const snap = buffer.snapshot();
    assert.deepEqual([...snap.head], [...data.subarray(0, Math.ceil(limit / 2))]);
    assert.deepEqual([...snap.tail], [...data.subarray(1000 - Math.floor(limit / 2))]);
    assert.equal(snap.total, 1000);
    assert.equal(cutBytes(snap), 1000 - limit);
  }
});

Deno.test("OutputBuffer handles chunks of 1 byte, exactly the cap, more than the cap, and ring wraps", () => {
  const limit = 16; // head 8, tail ring 8
  const cases: [string, number[]][] = [
    ["1-byte chunks", Array(40).fill(1)],
    ["chunks of exactly the head cap, then the tail cap", [8, 8, 8, 8, 8]],
    ["one chunk bigger than the whole limit", [100]],
    ["a chunk that fills the head and spills into the ring", [5, 9]],
    ["chunks that wrap the ring at every offset", [8, 3, 3, 3, 3, 3, 3, 3, 3, 7, 1, 5]],
    ["a chunk bigger than the ring after a partial ring", [8, 3, 20, 2]],
    ["the ring filled exactly to its end, then one byte", [8, 8, 1]],
  ];
  for (const [what, sizes] of cases) {
    const buffer = new OutputBuffer(limit);
    const written: Uint8Array[] = [];
    let offset = 0;
    for (const size of sizes) {
      const chunk = bytes(size, offset);
      offset += size;
      written.push(chunk);
      buffer.write(chunk);
      assertCapture(buffer.snapshot(), expected(concat(written), limit), what);
      assert.equal(buffer.total, offset, `${what}: total getter`);
    }
  }
});

Deno.test("OutputBuffer matches the definition for random limits and chunk sizes", () => {
  const seed = 0x5eed0b5;
  const rng = new Prng(seed);
  for (let round = 0; round < 300; round++) {
    const limit = rng.int(0, 40);
    const buffer = new OutputBuffer(limit);
    const written: Uint8Array[] = [];
    let offset = 0;
    const writes = rng.int(0, 12);
    for (let i = 0; i < writes; i++) {
      // Sizes around the interesting points: 0, 1, the caps, the limit, and more.
      const size =
        rng.pick([0, 1, 2, Math.floor(limit / 2), Math.ceil(limit / 2), limit, limit + 1]) +
        rng.pick([0, 0, 1, rng.int(0, 3 * limit + 3)]);
      const chunk = bytes(size, offset);
      offset += size;
      written.push(chunk);
      buffer.write(chunk);
      // Snapshots taken between writes must not disturb the ring.
      if (rng.next() < 0.5) {
        assertCapture(
          buffer.snapshot(),
          expected(concat(written), limit),
          `seed ${seed} round ${round} limit ${limit} sizes ${written.map((c) => c.length)}`,
        );
      }
    }
    assertCapture(
      buffer.snapshot(),
      expected(concat(written), limit),
      `seed ${seed} round ${round} limit ${limit} sizes ${written.map((c) => c.length)}`,
    );
  }
});

Deno.test("OutputBuffer with limit 0 counts bytes and keeps none; limit 1 keeps one head byte", () => {
  const none = new OutputBuffer(0);
  none.write(bytes(10));
  assertCapture(
    none.snapshot(),
    { head: new Uint8Array(), tail: new Uint8Array(), total: 10 },
    "0",
  );
  const one = new OutputBuffer(1);
  one.write(bytes(10));
  assertCapture(one.snapshot(), { head: bytes(1), tail: new Uint8Array(), total: 10 }, "1");
});

Deno.test("OutputBuffer.dirty is set by a non-empty write and cleared by snapshot()", () => {
  const buffer = new OutputBuffer(4);
  assert.equal(buffer.dirty, false, "new buffer");
  buffer.write(new Uint8Array(0));
  assert.equal(buffer.dirty, false, "an empty write changes nothing");
  assert.equal(buffer.total, 0);
  buffer.write(bytes(1));
  assert.equal(buffer.dirty, true, "after a write");
  buffer.snapshot();
  assert.equal(buffer.dirty, false, "after snapshot()");
  buffer.write(bytes(100));
  buffer.snapshot();
  // Past the limit only the count changes (or the ring); still something new to save.
  buffer.write(bytes(1));
  assert.equal(buffer.dirty, true, "a write that is only counted (cut) still marks it dirty");
  assert.equal(buffer.total, 102);
});

Deno.test("OutputBuffer.snapshot() returns copies that later writes do not change", () => {
  const buffer = new OutputBuffer(8);
  const chunk = bytes(6);
  buffer.write(chunk);
  chunk.fill(0xff); // the writer reuses its chunk
  const first = buffer.snapshot();
  assert.deepEqual([...concat([first.head, first.tail])], [...bytes(6)]);
  buffer.write(bytes(20, 100));
  assert.deepEqual([...concat([first.head, first.tail])], [...bytes(6)], "earlier snapshot");
  first.head.fill(0);
  first.tail.fill(0);
  const second = buffer.snapshot();
  assert.deepEqual([...second.head], [...bytes(4)], "snapshot is not a view of the buffer");
  assert.deepEqual([...second.tail], [...bytes(20, 100).subarray(16)]);
  assert.equal(cutBytes(second), 26 - 8);
});
