/**
 * A worker's upkeep of the queue, about once a minute (staggered across workers): retention of
 * completed jobs in small batches (each a short transaction, so claims interleave), compaction of
 * the per-minute metric figures, the store's own upkeep (SQLite: truncating the write-ahead log),
 * and forgetting workers that are gone for good, on any host.
 *
 * @module
 */

import type { Config } from "../config.ts";
import type { Store } from "../store/store.ts";
import { forgettable, judgeWorker } from "./liveness.ts";

/** Retention and WAL upkeep run about this often per worker. */
export const HOUSEKEEPING_MS = 60_000;
/** Jobs deleted per transaction by retention, and transactions per round. */
const PRUNE_BATCH = 500;
const PRUNE_BATCHES = 20;
/** Retention looks at this many of the oldest completed jobs per batch (see `jobPrune`). */
const PRUNE_SCAN = 5000;
/** Per-minute metric figures are kept this long. */
export const STATS_RETENTION_MS = 30 * 86_400_000;
/** Per-minute metric figures older than this are kept per hour (the chart shows the last hour). */
export const STATS_MINUTES_KEPT_MS = 2 * 3_600_000;

export interface HousekeepingOptions {
  store: Store;
  workerId: string;
  hostId: string;
  log: (line: string) => void;
  /** Whether to go on (false once the worker is stopping). */
  goOn: () => boolean;
}

/** One round of upkeep. */
export async function housekeeping(options: HousekeepingOptions, config: Config): Promise<void> {
  const { store } = options;
  const retain = config.retainCompletedMs;
  if (retain > 0) {
    let deleted = 0;
    for (let i = 0; i < PRUNE_BATCHES && options.goOn(); i++) {
      const ids = await store.jobPrune({
        // Cancelled jobs go the way of completed ones; dead ones wait in the DLQ for a person.
        states: ["completed", "cancelled"],
        olderThanMs: retain,
        limit: PRUNE_BATCH,
        scanLimit: PRUNE_SCAN,
      });
      deleted += ids.length;
      if (ids.length < PRUNE_BATCH) break;
    }
    if (deleted > 0) options.log(`retention: deleted ${deleted} completed or cancelled jobs`);
  }
  await store.statsCompact({
    retainMs: STATS_RETENTION_MS,
    minutesKeptMs: STATS_MINUTES_KEPT_MS,
  });
  await store.maintain();
}

/** Deletes the rows of workers that are gone for good and hold no job. */
export async function forgetGoneWorkers(
  options: HousekeepingOptions,
  config: Config,
): Promise<void> {
  const ctx = {
    hostId: options.hostId,
    pidRecovery: options.store.capabilities.pidRecovery,
    leaseMs: config.leaseTimeoutMs,
  };
  const gone = (await options.store.workerList()).filter((worker) =>
    worker.id !== options.workerId && forgettable({ worker, liveness: judgeWorker(worker, ctx) })
  );
  if (gone.length) await options.store.workerRemove({ ids: gone.map((w) => w.id) });
}
