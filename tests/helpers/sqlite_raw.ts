/**
 * RAW SQL for SQLite-only checks: bypasses the store, for what no store method can or should do
 * (a foreign database, a newer schema, plain table counts to check the triggers against).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { MIGRATIONS } from "../../lib/store/sqlite/migrations.ts";
import { APPLICATION_ID } from "../../lib/store/sqlite/version.ts";
import type { RawReads } from "../store/store_contract.ts";

/** Runs `fn` on a plain node:sqlite connection to `path`, then closes it. */
export function withRawDb<T>(path: string, fn: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(path);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/**
 * Makes `db` a queuectl database as a queuectl of schema `version` left it (WAL, the application
 * id, the migrations up to and with `version`), for the upgrade tests.
 */
export function createSchemaThrough(db: DatabaseSync, version: number): void {
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA application_id = ${APPLICATION_ID}`);
  for (const migration of MIGRATIONS.filter((m) => m.version <= version)) {
    db.exec(migration.sql);
    db.exec(`PRAGMA user_version = ${migration.version}`);
  }
}

/** Marks a queuectl database as written by a newer queuectl (`PRAGMA user_version`). */
export function setSchemaVersion(path: string, version: number): void {
  withRawDb(path, (db) => db.exec(`PRAGMA user_version = ${version}`));
}

/** Creates a SQLite database of some other program (no queuectl application_id). */
export function makeForeignDb(path: string, options: { wal?: boolean } = {}): void {
  withRawDb(path, (db) => {
    if (options.wal) db.exec("PRAGMA journal_mode = WAL");
    db.exec(
      "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('x')",
    );
  });
}

/** Counts rows per state by scanning `jobs`, to check the trigger-kept `job_counts`. */
export function countRowsByState(path: string): Record<string, number> {
  return withRawDb(path, (db) => {
    const out: Record<string, number> = {};
    for (const row of db.prepare("SELECT state, count(*) AS n FROM jobs GROUP BY state").all()) {
      out[row.state as string] = row.n as number;
    }
    return out;
  });
}

/** The store contract's raw reads (store_contract.ts) of the database at `path`. */
export function sqliteRawReads(path: string): RawReads {
  return {
    rowCounts: () => Promise.resolve(countRowsByState(path)),
    queueRowCounts: () =>
      Promise.resolve(withRawDb(path, (db) => {
        const out: Record<string, number> = {};
        const sql =
          "SELECT queue || ':' || state AS k, count(*) AS n FROM jobs GROUP BY queue, state";
        for (const row of db.prepare(sql).all()) out[row.k as string] = row.n as number;
        return out;
      })),
    tableCounts: () =>
      Promise.resolve(withRawDb(path, (db) => {
        const n = (sql: string) => Number((db.prepare(sql).get() as { n: number }).n);
        return {
          attempts: n("SELECT count(*) AS n FROM attempts"),
          outputs: n("SELECT count(*) AS n FROM outputs"),
          orphans: n(
            "SELECT (SELECT count(*) FROM attempts WHERE job_seq NOT IN (SELECT seq FROM jobs)) + " +
              "(SELECT count(*) FROM outputs WHERE job_seq NOT IN (SELECT seq FROM jobs)) AS n",
          ),
        };
      })),
    statsRowKeys: () =>
      Promise.resolve(
        withRawDb(path, (db) =>
          db.prepare("SELECT minute, metric, bucket FROM stats_minute").all().map((r) =>
            [Number(r.minute), Number(r.metric), Number(r.bucket)] as const
          )),
      ),
  };
}
