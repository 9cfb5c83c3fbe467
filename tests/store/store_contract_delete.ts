/**
 * The store contract for `jobDelete` (the dashboard's delete of finished jobs): finished states
 * only, all or none, attempts and output with the job, and a delete racing a retry applies one of
 * the two. Run by storeContract on every store.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConflictError, NotFoundError } from "../../lib/errors.ts";
import { makeOneOfEach } from "../helpers/factory.ts";
import type { ContractTest } from "./store_contract.ts";

export function jobDeleteContract(test: ContractTest): void {
  test("jobDelete() deletes finished jobs with their attempts and output, each once", async ({ store, clock, raw }) => {
    await makeOneOfEach(store, clock);
    const before = await raw.tableCounts();
    assert.ok(before.attempts > 0);
    const deleted = await store.jobDelete({ ids: ["x1", "c1", "d1", "c1"] });
    assert.deepEqual(deleted, ["x1", "c1", "d1"]);
    for (const id of deleted) assert.equal(await store.jobGet({ id }), undefined, id);
    for (const id of deleted) assert.deepEqual(await store.attemptList({ jobId: id }), [], id);
    const counts = await store.jobCountByState();
    assert.deepEqual(
      [counts.completed, counts.dead, counts.cancelled, counts.total],
      [0, 0, 0, 3],
      "the maintained counts follow",
    );
    const after = await raw.tableCounts();
    assert.equal(after.orphans, 0, "no attempt or output is left without its job");
    assert.ok(after.attempts < before.attempts);
    assert.deepEqual(await store.jobDelete({ ids: [] }), []);
  });

  test("jobDelete() refuses unknown and unfinished jobs, changing nothing", async ({ store, clock, raw }) => {
    await makeOneOfEach(store, clock);
    const before = [await store.jobCountByState(), await raw.tableCounts()];
    for (const id of ["p1", "f1", "r1"]) {
      const error = await store.jobDelete({ ids: ["c1", id] }).catch((e) => e);
      assert.ok(error instanceof ConflictError, `${id}: ${error}`);
      assert.equal(error.reason, "not_finished");
      assert.equal(error.subject, id);
      assert.match(error.message, /only a finished job .* can be deleted/);
    }
    const missing = await store.jobDelete({ ids: ["d1", "nope"] }).catch((e) => e);
    assert.ok(missing instanceof NotFoundError, String(missing));
    assert.equal(missing.subject, "nope");
    assert.deepEqual([await store.jobCountByState(), await raw.tableCounts()], before);
    assert.ok(await store.jobGet({ id: "c1" }), "all or none");
    assert.ok(await store.jobGet({ id: "d1" }), "all or none");
  });

  test("jobDelete() racing jobRetry() from two stores: one of the two applies", async (f) => {
    const other = await f.openAnother();
    await makeOneOfEach(f.store, f.clock);
    const [deleted, retried] = await Promise.allSettled([
      f.store.jobDelete({ ids: ["d1"] }),
      other.jobRetry({ ids: ["d1"] }),
    ]);
    const job = await f.store.jobGet({ id: "d1" });
    if (deleted.status === "fulfilled") {
      assert.equal(job, undefined);
      assert.equal(retried.status, "rejected");
      assert.ok(
        retried.status === "rejected" && retried.reason instanceof NotFoundError,
        String(retried),
      );
    } else {
      assert.ok(deleted.reason instanceof ConflictError, String(deleted.reason));
      assert.equal(retried.status, "fulfilled");
      assert.equal(job?.state, "pending");
    }
  });
}
