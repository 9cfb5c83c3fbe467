/**
 * The floor for a worker's memory: a Deno process that loads nothing and waits until killed.
 *
 * @module
 */

setInterval(() => {}, 60_000);
