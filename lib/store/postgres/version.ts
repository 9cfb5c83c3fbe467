/**
 * The schema version this build of the PostgreSQL store writes: the last entry of `MIGRATIONS`
 * (migrations.ts, loaded only when a database needs migrating; a test checks the two agree).
 *
 * @module
 */

export const PG_SCHEMA_VERSION = 8;
