/**
 * Recurring jobs: what a schedule is (a cron expression in a time zone, or a fixed interval), how
 * its names and specs are checked, and when it fires next.
 *
 * An interval schedule (`--every D`) fires at its anchor (when it was added) plus whole multiples
 * of D, by the store's clock: its pace never drifts with how late a worker woke. A cron schedule
 * fires at the wall-clock times its expression names in its zone; the expression is parsed by
 * `croner` from npm (cron.ts), which this module loads only when a cron time is computed, so that
 * `status` and `enqueue` never load it.
 *
 * After downtime (no worker ran for more than a minute past a fire time) a schedule fires once
 * for the occurrences it missed, not once per missed occurrence: its next fire time is then the
 * first occurrence after now. A scheduler that is merely late (up to `CATCH_UP_MS`) enqueues
 * each occurrence (see `advance`).
 *
 * @module
 */

import { lazy } from "../lazy.ts";
import { ID_PATTERN } from "../job/id.ts";

/** When a schedule fires. */
export type ScheduleSpec =
  | { kind: "cron"; cron: string; timeZone: string }
  | { kind: "every"; everyMs: number };

/** The shortest interval: a worker's scheduler is not meant for sub-second timers. */
export const MIN_EVERY_MS = 1000;

/** Checks a schedule name (the rules of job ids); the problem, or undefined. */
export function scheduleNameProblem(name: string): string | undefined {
  if (name === "") return "is empty";
  if (name.length > 128) return `is ${name.length} characters long; the most is 128`;
  if (!ID_PATTERN.test(name)) {
    return "may hold only letters, digits and . _ : - and must start with a letter or digit";
  }
  return undefined;
}

/** Checks a time zone name (IANA, as `Europe/Berlin`, or `UTC`); the problem, or undefined. */
export function timeZoneProblem(zone: string): string | undefined {
  if (zone.trim() === "") return "is empty";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return undefined;
  } catch {
    return "is not a time zone (use an IANA name such as Europe/Berlin, or UTC)";
  }
}

/** The zone of this process (TZ, or the system's), as an IANA name. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC";
}

/** Cron nicknames croner understands that mean a time (not `@reboot`). */
export const CRON_NICKNAMES = [
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@daily",
  "@midnight",
  "@hourly",
] as const;

/**
 * The shape check a cron expression gets before croner parses it: five fields or a nickname
 * (croner would also take six or seven fields, with seconds and years; a schedule does not).
 */
export function cronShapeProblem(expr: string): string | undefined {
  const text = expr.trim();
  if (text === "") return "is empty";
  if (text.startsWith("@")) {
    return (CRON_NICKNAMES as readonly string[]).includes(text.toLowerCase())
      ? undefined
      : `is not a known nickname (${CRON_NICKNAMES.join(", ")})`;
  }
  const fields = text.split(/\s+/).length;
  if (fields !== 5) {
    return `has ${fields} field${fields === 1 ? "" : "s"}; give five: minute hour day-of-month ` +
      "month day-of-week";
  }
  return undefined;
}

type CronModule = typeof import("./cron.ts");
let cronModule: Promise<CronModule> | undefined;

/** The cron module (and croner), loaded on first use. */
export function loadCron(): Promise<CronModule> {
  cronModule ??= lazy<typeof import("./cron.ts")>(import.meta.url, "./cron.ts");
  return cronModule;
}

/**
 * The first fire time strictly after `after` (epoch ms), or null when there is none (a cron date
 * that never comes, such as 30 February). `anchor` is where an interval counts from.
 */
export async function nextFireAfter(
  spec: ScheduleSpec,
  anchor: number,
  after: number,
): Promise<number | null> {
  if (spec.kind === "every") {
    if (after < anchor) return anchor;
    return anchor + (Math.floor((after - anchor) / spec.everyMs) + 1) * spec.everyMs;
  }
  const { cronNext } = await loadCron();
  return cronNext(spec.cron, spec.timeZone, after);
}

/**
 * A scheduler this late (a busy machine, a worker restarting) still enqueues every occurrence;
 * later than this is downtime, and the missed occurrences are enqueued as one.
 */
export const CATCH_UP_MS = 60_000;

/**
 * What a schedule does when it is due at `fireAt` and the store's clock says `now`: it fires once
 * for `fireAt`, and its next fire time is the one after `fireAt` when it is at most `CATCH_UP_MS`
 * late (so each occurrence is enqueued), else the first occurrence after now (one job stands for
 * all it missed). Null: it never fires again.
 */
export function advance(
  spec: ScheduleSpec,
  anchor: number,
  fireAt: number,
  now: number,
): Promise<number | null> {
  return nextFireAfter(spec, anchor, now - fireAt <= CATCH_UP_MS ? fireAt : now);
}

/** The spec in words, as `schedule list` shows it. */
export function describeSpec(spec: ScheduleSpec): string {
  if (spec.kind === "cron") return `cron "${spec.cron}" ${spec.timeZone}`;
  return `every ${everyText(spec.everyMs)}`;
}

/** An interval in the largest whole unit that states it exactly (90s → 90s, 7200s → 2h). */
export function everyText(ms: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]]) {
    if (ms % (size as number) === 0) return `${ms / (size as number)}${unit}`;
  }
  return `${ms}ms`;
}
