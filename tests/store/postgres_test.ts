/**
 * The PostgreSQL store: the whole store contract on a fresh database per test (shared server,
 * tests/helpers/pg.ts; a missing server fails these tests, never skips them), then what only
 * PostgreSQL has.
 *
 * @module
 */

import { pgRawReads, pgStoreFixture } from "../helpers/pg_store.ts";
import { storeContract } from "./store_contract.ts";

storeContract("postgres", async () => {
  const f = await pgStoreFixture();
  return {
    store: f.store,
    clock: f.clock,
    raw: pgRawReads(f.url),
    openAnother: (options = {}) =>
      f.open(
        options.lossy
          ? { ignoreNotifications: true, safetyPollMs: { listening: 300, polling: 300 } }
          : {},
      ),
    [Symbol.asyncDispose]: () => f[Symbol.asyncDispose](),
  };
}, { capabilities: { changeNotification: true, multiHost: true, pidRecovery: true } });
