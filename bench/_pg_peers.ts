/**
 * The PostgreSQL bench's peers (issue 12): pg-boss and graphile-worker from npm, each through its
 * own insert and fetch API in this one process, with its documented settings, on the same server
 * and the same no-op work as queuectl's claim + complete. Loaded only by bench/postgres.ts.
 *
 * - pg-boss: `insert` of the jobs in one call, then `fetch` (one job, the default batch) and
 *   `complete` per job until the queue is empty: its documented manual-fetch loop.
 * - graphile-worker: `addJobs` of the jobs in one call, then `runOnce` with concurrency 1 and a
 *   no-op task, which claims and completes jobs one at a time until none is left (its `--once`);
 *   its logger silenced, as queuectl's store logs nothing per job.
 *
 * Each returns jobs per second, from the first fetch to the last completion.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix
import { PgBoss } from "npm:pg-boss@12.38.0";
// deno-lint-ignore no-import-prefix
import { Logger, makeWorkerUtils, runOnce } from "npm:graphile-worker@0.18.0";

/** pg-boss: claim + complete rate in process, jobs/s. */
export async function pgBossRate(url: string, jobs: number): Promise<number> {
  const boss = new PgBoss({ connectionString: url, schema: "pgboss" });
  const errors: unknown[] = [];
  boss.on("error", (error: unknown) => errors.push(error));
  await boss.start();
  try {
    await boss.createQueue("bench");
    for (let i = 0; i < jobs; i += 1000) {
      await boss.insert(
        "bench",
        Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ data: { n: i + k } })),
      );
    }
    const t0 = performance.now();
    let done = 0;
    for (;;) {
      const [job] = await boss.fetch("bench");
      if (job === undefined) break;
      await boss.complete("bench", job.id);
      done++;
    }
    if (done !== jobs) throw new Error(`pg-boss completed ${done} of ${jobs}`);
    if (errors.length > 0) throw new Error(`pg-boss: ${String(errors[0])}`);
    return jobs / ((performance.now() - t0) / 1000);
  } finally {
    await boss.stop({ graceful: false });
  }
}

/** graphile-worker: claim + complete rate in process (runOnce, concurrency 1), jobs/s. */
export async function graphileRate(url: string, jobs: number): Promise<number> {
  const schema = "graphile_worker";
  const logger = new Logger(() => () => {});
  const utils = await makeWorkerUtils({ connectionString: url, schema, logger });
  try {
    await utils.migrate();
    for (let i = 0; i < jobs; i += 1000) {
      await utils.addJobs(
        Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({
          identifier: "noop",
          payload: { n: i + k },
        })),
      );
    }
    let done = 0;
    const t0 = performance.now();
    await runOnce({
      connectionString: url,
      schema,
      concurrency: 1,
      noHandleSignals: true,
      logger,
      taskList: {
        noop: () => {
          done++;
        },
      },
    });
    const rate = jobs / ((performance.now() - t0) / 1000);
    if (done !== jobs) throw new Error(`graphile-worker ran ${done} of ${jobs}`);
    return rate;
  } finally {
    await utils.release();
  }
}
