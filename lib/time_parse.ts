/**
 * Durations and points in time as users write them.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
const UNIT_ORDER = ["d", "h", "m", "s", "ms"];
/** Ten years: longer durations are almost certainly typos, and they keep sums far from overflow. */
export const MAX_DURATION_MS = 10 * 365 * 86_400_000;
const PART = /(\d+(?:\.\d+)?)(ms|d|h|m|s)/y;

/**
 * Parses a duration: a number of seconds (`45`, `1.5`) or amounts with units in descending order
 * (`30s`, `5m`, `2h`, `1d`, `1h30m`, `250ms`). Returns milliseconds, rounded.
 * Throws `RangeError` with a message that says what is wrong; callers prefix the field name.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === "number") {
    if (!Number.isFinite(input)) throw new RangeError("must be a finite number of seconds");
    if (input < 0) throw new RangeError("must not be negative");
    return checkRange(Math.round(input * 1000));
  }
  const text = input.trim();
  if (text === "") throw new RangeError("is empty; use e.g. 30s, 5m, 2h, 1d or 1h30m");
  if (text.startsWith("-")) throw new RangeError("must not be negative");
  if (/^\d+(\.\d+)?$/.test(text)) return checkRange(Math.round(Number(text) * 1000));
  let total = 0;
  let pos = 0;
  let lastUnit = -1;
  while (pos < text.length) {
    PART.lastIndex = pos;
    const match = PART.exec(text);
    if (!match) throw new RangeError("is not a duration; use e.g. 30s, 5m, 2h, 1d or 1h30m");
    const unitIndex = UNIT_ORDER.indexOf(match[2]!);
    if (unitIndex <= lastUnit) {
      throw new RangeError("has units out of order; write the largest first, e.g. 1h30m");
    }
    lastUnit = unitIndex;
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    pos = PART.lastIndex;
  }
  return checkRange(Math.round(total));
}

function checkRange(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms > MAX_DURATION_MS) {
    throw new RangeError("is too long; the most is 10 years (3650d)");
  }
  return ms;
}

/** How far in the past a run-at may lie before enqueue notes that it is probably a mistake. */
export const RUN_AT_PAST_NOTE_MS = 60_000;

export interface RunAtOptions {
  /** The time relative forms (`10:00`, `tomorrow 10:00`, `now`) count from. */
  now: number;
  /** For local times; the system's zone when absent. */
  timeZone?: string;
}

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/;
const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** `HH:MM[:SS]`, alone or after `today` or `tomorrow`; the hour may have one digit. */
const TIME_OF_DAY = /^(?:(today|tomorrow) +)?(\d{1,2}):(\d{2})(?::(\d{2}))?$/i;

const FORMS = 'use HH:MM, "tomorrow HH:MM", YYYY-MM-DD, "YYYY-MM-DD HH:MM[:SS]" (local time), ' +
  "or ISO 8601 with an offset";

/** A local date and time as an instant; refuses one a daylight-saving change skips or repeats. */
function zoned(plain: Temporal.PlainDateTime, zone: string): number {
  try {
    return plain.toZonedDateTime(zone, { disambiguation: "reject" }).epochMilliseconds;
  } catch {
    throw new RangeError(
      `is ambiguous or does not exist in time zone ${zone} (a daylight-saving change); ` +
        "give an offset, e.g. 2026-03-29T02:30:00+01:00",
    );
  }
}

/**
 * Parses a run-at value, as `--run-at` and the `run_at` field take it. Local time in the zone
 * (the system's unless given):
 * - `YYYY-MM-DD HH:MM[:SS]` (or with `T`), and `YYYY-MM-DD` alone, its midnight;
 * - `HH:MM[:SS]`: the next such time, today or tomorrow (a time this very second is tomorrow's);
 * - `today HH:MM[:SS]` (which may lie in the past) and `tomorrow HH:MM[:SS]`;
 * - `now`.
 * Or ISO 8601 with an offset (`2026-11-27T10:00:00Z`, `…+01:00`). A local time that a
 * daylight-saving change makes ambiguous or skips is refused rather than guessed. Returns epoch
 * milliseconds. Throws `RangeError` with a message that says what is wrong.
 */
export function parseRunAt(text: string, options: RunAtOptions): number {
  const zone = options.timeZone ?? Temporal.Now.timeZoneId();
  if (text.toLowerCase() === "now") return options.now;
  const local = LOCAL_TIME.exec(text) ?? LOCAL_DATE.exec(text);
  const ofDay = TIME_OF_DAY.exec(text);
  try {
    if (local) {
      const [, y, mo, d, h, mi, s] = local;
      const plain = Temporal.PlainDateTime.from({
        year: Number(y),
        month: Number(mo),
        day: Number(d),
        hour: Number(h ?? 0),
        minute: Number(mi ?? 0),
        second: Number(s ?? 0),
      }, { overflow: "reject" });
      return zoned(plain, zone);
    }
    if (ofDay) {
      const [, day, h, mi, s] = ofDay;
      const time = Temporal.PlainTime.from(
        { hour: Number(h), minute: Number(mi), second: Number(s ?? 0) },
        { overflow: "reject" },
      );
      const here = Temporal.Instant.fromEpochMilliseconds(options.now).toZonedDateTimeISO(zone);
      // The next such time goes by the wall clock: a time of day not after now's is tomorrow's.
      const tomorrow = day?.toLowerCase() === "tomorrow" ||
        (day === undefined && Temporal.PlainTime.compare(time, here.toPlainTime()) <= 0);
      const date = tomorrow ? here.toPlainDate().add({ days: 1 }) : here.toPlainDate();
      return zoned(date.toPlainDateTime(time), zone);
    }
    if (/[Zz]|[+-]\d{2}(:?\d{2})?$/.test(text) && /^\d{4}-\d{2}-\d{2}T/.test(text)) {
      return Temporal.Instant.from(text).epochMilliseconds;
    }
  } catch (error) {
    if (error instanceof RangeError && error.message.startsWith("is ambiguous")) throw error;
    throw new RangeError("is not a valid date and time (check the day, month and hour)");
  }
  throw new RangeError(`is not a time; ${FORMS}`);
}
