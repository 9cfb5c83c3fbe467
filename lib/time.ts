/**
 * Durations and points in time as queuectl prints them. Parsing lives in `time_parse.ts`, which
 * only the commands that read times load.
 *
 * @module
 */

/** Formats milliseconds compactly: `250ms`, `1.5s`, `45s`, `5m`, `1h30m`, `2d3h`. */
export function formatDuration(ms: number): string {
  if (ms < 0) return "-" + formatDuration(-ms);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) {
    const s = Math.round(ms / 100) / 10;
    return `${Number.isInteger(s) ? s.toFixed(0) : s.toFixed(1)}s`;
  }
  let rest = Math.round(ms / 1000);
  let out = "";
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${n}${unit}`;
  }
  return out;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** `YYYY-MM-DD HH:MM:SS` in the local time zone, for people. */
export function formatLocal(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** ISO 8601 in UTC, for machines; `null` stays `null`. */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * A log line's time: local time with milliseconds and the zone's UTC offset, as in
 * `2026-12-01T21:05:03.123+01:00`. One format for every log line (workers, supervisors, `DB.log`),
 * readable as local time and exact across time zones and daylight-saving changes.
 */
export function formatLogTime(ms: number): string {
  const d = new Date(ms);
  const offset = -d.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
    `${pad(d.getMilliseconds(), 3)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** How long ago `ms` was, for people: `0s ago`, `3s ago`, `2m ago`, `1h5m ago`. */
export function formatAgo(ms: number, now: number): string {
  return formatAge(now - ms);
}

/** An age for people: `0s ago`, `3s ago`, `2m ago`, `1h5m ago`. */
export function formatAge(ageMs: number): string {
  const seconds = Math.max(0, Math.floor(ageMs / 1000));
  return `${seconds < 60 ? `${seconds}s` : formatDuration(seconds * 1000)} ago`;
}
