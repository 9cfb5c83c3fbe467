/**
 * Run as its own process: `deno run -A _lock_probe.ts DB SECONDS`. Takes the write lock with
 * `BEGIN IMMEDIATE` over and over (committing nothing) and prints, as JSON, how long it ever had
 * to wait for it, and how many commits of other connections it saw (`PRAGMA data_version`).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

const [path, secondsText] = Deno.args;
if (!path || !secondsText) throw new Error("usage: _lock_probe.ts DB SECONDS");
const db = new DatabaseSync(path, { timeout: 10_000 });
const version = db.prepare("PRAGMA data_version");
const begin = db.prepare("BEGIN IMMEDIATE");
const commit = db.prepare("COMMIT");
const waits: number[] = [];
let changes = 0;
let last = (version.get() as { data_version: number }).data_version;
const end = performance.now() + Number(secondsText) * 1000;
while (performance.now() < end) {
  const t0 = performance.now();
  begin.run();
  waits.push(performance.now() - t0);
  commit.run();
  const now = (version.get() as { data_version: number }).data_version;
  if (now !== last) changes++;
  last = now;
  // Leave the lock free most of the time, as a real writer would.
  await new Promise((resolve) => setTimeout(resolve, 2));
}
db.close();
waits.sort((a, b) => a - b);
const result = {
  probes: waits.length,
  maxMs: waits.at(-1) ?? 0,
  p99Ms: waits[Math.floor(waits.length * 0.99)] ?? 0,
  slow: waits.filter((ms) => ms > 5).length,
  changes,
};
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result) + "\n"));
