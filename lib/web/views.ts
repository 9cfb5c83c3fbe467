/**
 * What the dashboard's API prints beyond the shapes of lib/json.ts: a job's output as a page shows
 * it (bounded), its raw log, and the command that enqueues the same job again.
 *
 * @module
 */

import type { Job } from "../job/job.ts";
import type { OutputCapture } from "../store/store.ts";

/** Bytes of each end of a stream a page shows; the rest is in the download. */
export const SHOWN_BYTES = 256 * 1024;

const decoder = new TextDecoder();

/** Drops the continuation bytes a cut left at the start, so the text does not open with U+FFFD. */
function fromCharStart(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < 3 && i < bytes.length && (bytes[i]! & 0xc0) === 0x80) i++;
  return bytes.subarray(i);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * One stream for a page: its head and tail as text (at most `shown` bytes each), how many bytes
 * were never kept (`cut_bytes`) and how many are kept but only in the download (`hidden_bytes`).
 * The text is what the job wrote, control characters included: the page escapes them.
 */
export function streamView(
  capture: OutputCapture | undefined,
  shown = SHOWN_BYTES,
): { bytes: number; cut_bytes: number; hidden_bytes: number; head: string; tail: string } {
  if (capture === undefined) return { bytes: 0, cut_bytes: 0, hidden_bytes: 0, head: "", tail: "" };
  const cut = Math.max(0, capture.total - capture.head.length - capture.tail.length);
  // Nothing cut: the tail only continues the head (a character may straddle them).
  const [a, b] = cut > 0
    ? [capture.head, capture.tail]
    : [concat(capture.head, capture.tail), undefined];
  let head: Uint8Array;
  let tail: Uint8Array;
  if (b === undefined) {
    head = a.length <= 2 * shown ? a : a.subarray(0, shown);
    tail = a.length <= 2 * shown ? new Uint8Array() : fromCharStart(a.subarray(a.length - shown));
  } else {
    head = a.subarray(0, shown);
    tail = fromCharStart(b.subarray(Math.max(0, b.length - shown)));
  }
  const kept = capture.total - cut;
  return {
    bytes: capture.total,
    cut_bytes: cut,
    hidden_bytes: Math.max(0, kept - head.length - tail.length),
    head: decoder.decode(head),
    tail: decoder.decode(tail),
  };
}

/** A stream's kept bytes as a file: head, a line marking the cut, tail. */
export function rawLog(
  capture: OutputCapture | undefined,
  stream: "stdout" | "stderr",
): Uint8Array<ArrayBuffer> {
  if (capture === undefined) return new Uint8Array();
  const cut = capture.total - capture.head.length - capture.tail.length;
  if (cut <= 0) return concat(capture.head, capture.tail);
  const note = new TextEncoder().encode(`\n[… ${cut} bytes of ${stream} not kept …]\n`);
  return concat(concat(capture.head, note), capture.tail);
}

/** Single quotes for sh: the text stays exactly as it is. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The `queuectl enqueue` command line that makes a job like this one (without its id). */
export function enqueueCommandLine(job: Job): string {
  const fields: Record<string, unknown> = { command: job.command };
  if (job.priority !== 5) fields.priority = job.priority;
  fields.max_retries = job.maxRetries;
  if (job.timeoutMs !== null) fields.timeout = job.timeoutMs / 1000;
  fields.cwd = job.cwd;
  if (Object.keys(job.env).length > 0) fields.env = job.env;
  return `queuectl enqueue ${shellQuote(JSON.stringify(fields))}`;
}
