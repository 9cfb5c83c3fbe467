/**
 * Live updates: a server-sent event stream that says "changed" whenever the queue may have
 * changed, woken by `Queue.waitForChange` (inotify on SQLite, LISTEN/NOTIFY elsewhere), never by
 * polling the database. The page then reads what it shows again. The stream sends nothing else
 * but a comment every `keepaliveMs`, by which a closed connection is noticed.
 *
 * @module
 */

import type { Queue } from "../queue.ts";
import { iso } from "../time.ts";

/**
 * Wakes the streams after this process's own writes, which a store's change mark need not show
 * (a connection does not see its own commits as another's).
 */
export class Kick {
  readonly #waiters = new Set<() => void>();
  /** Counts wakes, so that a wake while nobody waited is not lost. */
  generation = 0;

  wake(): void {
    this.generation++;
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Resolves once `generation` differs from `since`, or when `signal` aborts. */
  wait(since: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || this.generation !== since) return resolve();
      const done = () => {
        this.#waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

export interface EventStreamOptions {
  /** Ends the stream: the client left, or the server stops. */
  signal: AbortSignal;
  kick: Kick;
  /** At most one change event this often (a busy queue changes hundreds of times a second). */
  minIntervalMs?: number;
  keepaliveMs?: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The `text/event-stream` body: `hello`, then `change` events, each with the store's time. */
export function eventStream(queue: Queue, options: EventStreamOptions): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const minInterval = options.minIntervalMs ?? 200;
  const keepalive = options.keepaliveMs ?? 15_000;
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          stop.abort(); // the stream was closed under us
        }
      };
      (async () => {
        // Reconnect after 2 s when the connection drops (EventSource does it by itself).
        send(
          `retry: 2000\nevent: hello\ndata: ${
            JSON.stringify({ as_of: iso(await queue.now()) })
          }\n\n`,
        );
        let mark = queue.changeMark();
        let kicked = options.kick.generation;
        while (!signal.aborted) {
          const waiting = new AbortController();
          const both = AbortSignal.any([signal, waiting.signal]);
          const changed = await Promise.race([
            queue.waitForChange(mark, keepalive, both),
            options.kick.wait(kicked, both).then(() => !signal.aborted),
          ]);
          waiting.abort();
          if (signal.aborted) break;
          if (!changed) {
            send(": keepalive\n\n");
            continue;
          }
          mark = queue.changeMark();
          kicked = options.kick.generation;
          send(`event: change\ndata: ${JSON.stringify({ as_of: iso(await queue.now()) })}\n\n`);
          await sleep(minInterval, signal);
        }
      })().catch(() => {}).finally(() => {
        try {
          controller.close();
        } catch { /* closed already */ }
      });
    },
    cancel() {
      stop.abort();
    },
  });
}
