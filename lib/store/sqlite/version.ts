/**
 * What a queuectl SQLite file is, in two numbers read before anything else is touched.
 *
 * @module
 */

/** Marks a SQLite file as a queuectl database: "QCTL" in `PRAGMA application_id`. */
export const APPLICATION_ID = 0x5143544c;

/** The schema version this build writes; the last entry of `MIGRATIONS`. */
export const SCHEMA_VERSION = 10;
