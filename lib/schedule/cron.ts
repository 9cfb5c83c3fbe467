/**
 * Cron expressions, through `croner` from npm. Loaded only by `loadCron()` (spec.ts), never by a
 * static import on a command's path: `status` and `enqueue` must not pay for it.
 *
 * Daylight saving, as croner does it and the tests pin down (tests/schedule/dst_test.ts):
 * - a wall-clock time that does not exist on the day the clocks go forward (02:30 in
 *   Europe/Berlin on the last Sunday of March) fires once, at the first time after the gap
 *   (03:00 local);
 * - a wall-clock time that happens twice on the day the clocks go back (02:30 in Europe/Berlin
 *   on the last Sunday of October) fires once, at its first occurrence (summer time);
 * - expressions that name every hour or minute (`*` and steps in those fields) follow real time:
 *   they fire in both copies of the repeated hour, and never in the skipped one.
 *
 * @module
 */

// Pinned inline, as the PostgreSQL driver is (lib/store/postgres/connect.ts says why); deno.lock
// holds its integrity.
// deno-lint-ignore no-import-prefix
import { Cron } from "npm:croner@11.0.0";

/** Parses an expression (the shape checked first: spec.ts); throws `RangeError` saying why. */
function parse(expr: string, timeZone: string): Cron {
  try {
    return new Cron(expr.trim(), { timezone: timeZone, paused: true, mode: "5-part" });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new RangeError(message.replace(/^CronPattern: /, ""));
  }
}

/** Throws `RangeError` (croner's reason) when croner refuses the expression. */
export function cronCheck(expr: string, timeZone: string): void {
  parse(expr, timeZone).stop();
}

/** The first time the expression names strictly after `after` (epoch ms), or null: never. */
export function cronNext(expr: string, timeZone: string, after: number): number | null {
  const cron = parse(expr, timeZone);
  try {
    return cron.nextRun(new Date(after))?.getTime() ?? null;
  } finally {
    cron.stop();
  }
}
