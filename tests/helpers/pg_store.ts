/**
 * The PostgreSQL store on a fresh database of the shared server (pg.ts), on a fake clock, held in
 * an `await using` disposable: the store is closed and the database dropped afterwards.
 *
 * @module
 */

import { FakeClock } from "../../lib/clock.ts";
import type { PostgresOpenOptions } from "../../lib/store/postgres/open.ts";
import { openPostgresStore } from "../../lib/store/postgres/open.ts";
import type { Store } from "../../lib/store/store.ts";
import { pgDatabase, psql } from "./pg.ts";
import type { PgDatabase } from "./pg.ts";
import { T0 } from "./temp.ts";
import type { RawReads } from "../store/store_contract.ts";

export interface PgStoreFixture extends AsyncDisposable {
  readonly db: PgDatabase;
  /** The database's URL (the queue in the default schema `queuectl`). */
  readonly url: string;
  readonly store: Store;
  readonly clock: FakeClock;
  /** Opens another store on the same queue (closed with the fixture). */
  open(options?: Partial<PostgresOpenOptions>): Promise<Store>;
}

/** A new database with a queue in it, opened like a CLI connection, on a fake clock. */
export async function pgStoreFixture(
  options: Partial<PostgresOpenOptions> & { clock?: FakeClock | null } = {},
): Promise<PgStoreFixture> {
  const { clock: given, ...openOptions } = options;
  const db = await pgDatabase();
  const clock = given ?? new FakeClock(T0);
  const opened: Store[] = [];
  const open = async (more: Partial<PostgresOpenOptions> = {}) => {
    const store = await openPostgresStore(db.url, {
      role: "cli",
      testClock: given === null ? undefined : clock,
      ...openOptions,
      ...more,
    });
    opened.push(store);
    return store;
  };
  let store: Store;
  try {
    store = await open();
  } catch (error) {
    await db[Symbol.asyncDispose]();
    throw error;
  }
  return {
    db,
    url: db.url,
    store,
    clock,
    open,
    async [Symbol.asyncDispose]() {
      try {
        await Promise.all(opened.map((s) => s.close()));
      } finally {
        await db[Symbol.asyncDispose]();
      }
    },
  };
}

/** The store contract's raw reads (store_contract.ts) of the queue at `url`, through psql. */
export function pgRawReads(url: string, schema = "queuectl"): RawReads {
  const s = `"${schema}"`;
  const rows = async (sql: string) => (await psql(url, sql)).split("\n").filter(Boolean);
  return {
    async rowCounts() {
      const out: Record<string, number> = {};
      for (const line of await rows(`SELECT state, count(*) FROM ${s}.jobs GROUP BY state`)) {
        const [state, n] = line.split("|");
        out[state!] = Number(n);
      }
      return out;
    },
    async queueRowCounts() {
      const out: Record<string, number> = {};
      for (
        const line of await rows(
          `SELECT queue || ':' || state, count(*) FROM ${s}.jobs GROUP BY queue, state`,
        )
      ) {
        const [key, n] = line.split("|");
        out[key!] = Number(n);
      }
      return out;
    },
    async tableCounts() {
      const [line] = await rows(
        `SELECT (SELECT count(*) FROM ${s}.attempts), (SELECT count(*) FROM ${s}.outputs),
           (SELECT count(*) FROM ${s}.attempts WHERE job_seq NOT IN (SELECT seq FROM ${s}.jobs))
           + (SELECT count(*) FROM ${s}.outputs WHERE job_seq NOT IN (SELECT seq FROM ${s}.jobs))`,
      );
      const [attempts, outputs, orphans] = line!.split("|").map(Number);
      return { attempts: attempts!, outputs: outputs!, orphans: orphans! };
    },
    async statsRowKeys() {
      return (await rows(`SELECT minute, metric, bucket FROM ${s}.stats_minute`)).map((line) => {
        const [minute, metric, bucket] = line.split("|").map(Number);
        return [minute!, metric!, bucket!] as const;
      });
    },
  };
}
