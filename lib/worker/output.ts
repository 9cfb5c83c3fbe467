/**
 * Bounded capture of one output stream: the first half of the limit (head) and the last half
 * (tail, a ring buffer), so a job that prints a gigabyte leaves memory flat. What falls between is
 * counted, not kept.
 *
 * @module
 */

import type { OutputCapture } from "../store/store.ts";

export class OutputBuffer {
  readonly #headCap: number;
  readonly #tailCap: number;
  #head: Uint8Array = new Uint8Array(0);
  #headLen = 0;
  #tail: Uint8Array | null = null;
  /** Next write position in the ring. */
  #tailPos = 0;
  /** Bytes in the ring (≤ tailCap). */
  #tailLen = 0;
  #total = 0;
  #dirty = false;

  constructor(limit: number) {
    this.#headCap = Math.ceil(limit / 2);
    this.#tailCap = Math.floor(limit / 2);
  }

  /** Bytes written in all. */
  get total(): number {
    return this.#total;
  }

  /** Whether anything arrived since the last `snapshot()`. */
  get dirty(): boolean {
    return this.#dirty;
  }

  write(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#total += chunk.length;
    this.#dirty = true;
    let data = chunk;
    if (this.#headLen < this.#headCap) {
      const take = Math.min(this.#headCap - this.#headLen, data.length);
      this.#growHead(this.#headLen + take);
      this.#head.set(data.subarray(0, take), this.#headLen);
      this.#headLen += take;
      data = data.subarray(take);
      if (data.length === 0) return;
    }
    if (this.#tailCap === 0) return;
    this.#tail ??= new Uint8Array(this.#tailCap);
    if (data.length >= this.#tailCap) {
      this.#tail.set(data.subarray(data.length - this.#tailCap));
      this.#tailPos = 0;
      this.#tailLen = this.#tailCap;
      return;
    }
    const first = Math.min(data.length, this.#tailCap - this.#tailPos);
    this.#tail.set(data.subarray(0, first), this.#tailPos);
    this.#tail.set(data.subarray(first), 0);
    this.#tailPos = (this.#tailPos + data.length) % this.#tailCap;
    this.#tailLen = Math.min(this.#tailCap, this.#tailLen + data.length);
  }

  #growHead(needed: number): void {
    if (needed <= this.#head.length) return;
    // Grow by doubling, so `true` costs nothing and a chatty job few copies.
    const size = Math.min(this.#headCap, Math.max(needed, this.#head.length * 2, 4096));
    const grown = new Uint8Array(size);
    grown.set(this.#head.subarray(0, this.#headLen));
    this.#head = grown;
  }

  /** A copy of what is kept, for storing. */
  snapshot(): OutputCapture {
    this.#dirty = false;
    const tail = new Uint8Array(this.#tailLen);
    if (this.#tail && this.#tailLen > 0) {
      const start = (this.#tailPos - this.#tailLen + this.#tailCap) % this.#tailCap;
      const first = Math.min(this.#tailLen, this.#tailCap - start);
      tail.set(this.#tail.subarray(start, start + first));
      tail.set(this.#tail.subarray(0, this.#tailLen - first), first);
    }
    return { head: this.#head.slice(0, this.#headLen), tail, total: this.#total };
  }
}

/** Bytes left out between head and tail. */
export function cutBytes(capture: OutputCapture): number {
  return capture.total - capture.head.length - capture.tail.length;
}
