/**
 * The PostgreSQL store: the whole store contract on a fresh database per test (shared server,
 * tests/helpers/pg.ts; a missing server fails these tests, never skips them), then what only
 * PostgreSQL has.
 *
 * @module
 */

import { pgRowCounts, pgStoreFixture } from "../helpers/pg_store.ts";
import { storeContract } from "./store_contract.ts";

storeContract("postgres", async () => {
  const f = await pgStoreFixture();
  return {
    store: f.store,
    clock: f.clock,
    rowCounts: () => pgRowCounts(f.url),
    [Symbol.asyncDispose]: () => f[Symbol.asyncDispose](),
  };
});
