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

/** RAW SQL: counts rows per state by scanning `jobs`, to check the folded counts against. */
export async function pgRowCounts(
  url: string,
  schema = "queuectl",
): Promise<Record<string, number>> {
  const rows = await psql(url, `SELECT state, count(*) FROM "${schema}".jobs GROUP BY state`);
  const out: Record<string, number> = {};
  for (const line of rows.split("\n").filter(Boolean)) {
    const [state, n] = line.split("|");
    out[state!] = Number(n);
  }
  return out;
}
