/**
 * The dashboard's search box: one line of text with qualifiers, parsed into a `JobFilter`.
 *
 *   state:dead,failed   priority:8  priority:7..10  priority:>=8   cmd:backup  cmd:"make test"
 *   id:nightly          created:>2h  created:<2026-11-01  created:2026-11-01  created:A..B
 *   queue:mail          queue:mail,reports
 *   due:later           due:now
 *
 * Bare words are command text, as one phrase (`make test` finds commands containing "make test").
 * Local dates and times are read in the browser's time zone (`tz`); relative times (`2h`, `1d`)
 * reach back from now. `due:later` keeps the jobs that wait for a time (delayed ones and retries in
their backoff: pending or failed, waiting for no other job, run_at after now); `due:now` those
whose time has come. The text lives in the page's URL, so a search is a bookmark.
 *
 * @module
 */

import type { JobFilter } from "../job/filter.ts";
import { queueNameProblem } from "../job/id.ts";
import type { JobState } from "../job/state.ts";
import { isJobState, JOB_STATES } from "../job/state.ts";
import { closest } from "../suggest.ts";
import { parseDuration } from "../time_parse.ts";

/** The qualifiers the box knows, for help texts and suggestions. */
export const QUALIFIERS = ["state", "priority", "cmd", "id", "created", "queue", "due"] as const;

/** The values `due:` takes. */
export const DUE_VALUES = ["later", "now"] as const;

/** Other names people type for them (suggested, not accepted: one spelling keeps URLs uniform). */
const QUALIFIER_ALIASES: Readonly<Record<string, string>> = {
  status: "state",
  is: "state",
  prio: "priority",
  pri: "priority",
  queues: "queue",
  group: "queue",
  p: "priority",
  command: "cmd",
  cmdline: "cmd",
  job: "id",
  created_at: "created",
  enqueued: "created",
  date: "created",
  since: "created",
  run_at: "due",
  runat: "due",
  scheduled: "due",
};

export interface ParseOptions {
  /** The store's clock now, for relative times. */
  now: number;
  /** IANA time zone of local dates and times (the browser's); absent: UTC. */
  timeZone?: string;
}

export class QueryError extends Error {
  override name = "QueryError";
}

/** Splits on spaces, keeping double-quoted parts together (`cmd:"a b"`, `"a b"`). */
function tokens(text: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  let started = false;
  for (const char of text) {
    if (char === '"') {
      quoted = !quoted;
      started = true;
    } else if (!quoted && /\s/.test(char)) {
      if (started) out.push(current);
      current = "";
      started = false;
    } else {
      current += char;
      started = true;
    }
  }
  if (quoted) throw new QueryError('A quote (") is not closed');
  if (started) out.push(current);
  return out;
}

/** The offset of `zone` from UTC at instant `ms`, in ms. */
function zoneOffset(ms: number, zone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(ms);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(
    get("year"),
    get("month") - 1,
    get("day"),
    get("hour"),
    get("minute"),
    get("second"),
  );
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** A wall-clock time in `zone` as an instant (in a gap or overlap of a DST change: the nearest). */
function zonedTime(fields: number[], zone: string): number {
  const [y, mo, d, h = 0, mi = 0, s = 0] = fields as [number, number, number, ...number[]];
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  const first = wall - zoneOffset(wall, zone);
  const second = wall - zoneOffset(first, zone);
  return second;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** A point in time and the span it names (a day, a minute, a second), or a relative time. */
function parseTime(
  text: string,
  options: ParseOptions,
): { from: number; to: number; ago: boolean } {
  const match = DATE.exec(text);
  if (match) {
    const fields = match.slice(1, 7).filter((f) => f !== undefined).map(Number);
    const [, mo, d, h, mi, s] = fields;
    const day = new Date(Date.UTC(fields[0]!, mo! - 1, d!));
    if (
      day.getUTCMonth() !== mo! - 1 || day.getUTCDate() !== d! || (h ?? 0) > 23 ||
      (mi ?? 0) > 59 || (s ?? 0) > 59
    ) {
      throw new QueryError(`"${text}" is not a valid date`);
    }
    const zone = match[7];
    let from: number;
    if (zone !== undefined) {
      const utc = Date.UTC(fields[0]!, mo! - 1, d!, h ?? 0, mi ?? 0, s ?? 0);
      const sign = zone === "Z" ? 0 : zone.startsWith("-") ? -1 : 1;
      const digits = zone.replace(/[^0-9]/g, "");
      const offset = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0)) *
        60_000;
      from = utc - offset;
    } else {
      from = zonedTime(fields, options.timeZone ?? "UTC");
    }
    // The span is the unit given: a whole day, minute or second (DST days are 23 or 25 hours).
    let to: number;
    if (fields.length === 3) {
      to = zone !== undefined
        ? from + 86_400_000
        : zonedTime([fields[0]!, mo!, d! + 1], options.timeZone ?? "UTC");
    } else to = from + (fields.length === 5 ? 60_000 : 1000);
    return { from, to, ago: false };
  }
  try {
    const ms = parseDuration(text);
    return { from: options.now - ms, to: options.now - ms, ago: true };
  } catch {
    throw new QueryError(
      `"${text}" is not a time: use a date (2026-11-01), a local time (2026-11-01T14:30), ` +
        `or how long ago (30m, 2h, 7d)`,
    );
  }
}

function parseCreated(value: string, options: ParseOptions): { from?: number; to?: number } {
  const range = value.split("..");
  if (range.length === 2) {
    const [a, b] = range as [string, string];
    const out: { from?: number; to?: number } = {};
    if (a !== "") out.from = parseTime(a, options).from;
    if (b !== "") out.to = parseTime(b, options).to;
    return out;
  }
  const op = /^(>=|<=|>|<)?(.*)$/.exec(value)!;
  const time = parseTime(op[2]!, options);
  switch (op[1]) {
    case ">":
      return { from: time.ago ? time.from : time.to };
    case ">=":
      return { from: time.from };
    case "<":
      return { to: time.from };
    case "<=":
      return { to: time.to };
    default:
      // `created:2h` is the last two hours; `created:2026-11-01` that day.
      return time.ago ? { from: time.from } : { from: time.from, to: time.to };
  }
}

function parsePriorities(value: string): number[] {
  const check = (text: string) => {
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 10) {
      throw new QueryError(`priority:${value}: priorities are 1..10`);
    }
    return Number(text);
  };
  const span = (lo: number, hi: number) =>
    Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => lo + i);
  const op = /^(>=|<=|>|<)(.+)$/.exec(value);
  if (op) {
    const n = check(op[2]!);
    if (op[1] === ">") return span(n + 1, 10);
    if (op[1] === ">=") return span(n, 10);
    if (op[1] === "<") return span(1, n - 1);
    return span(1, n);
  }
  const out = new Set<number>();
  for (const part of value.split(",")) {
    const range = part.split("..");
    if (range.length === 2) {
      for (const p of span(check(range[0]!), check(range[1]!))) out.add(p);
    } else out.add(check(part));
  }
  return [...out].sort((a, b) => a - b);
}

/** What a search says, as a filter; throws `QueryError` with a sentence for people. */
export function parseQuery(text: string, options: ParseOptions): JobFilter {
  const filter: JobFilter = {};
  const words: string[] = [];
  let command: string | undefined;
  let states: Set<JobState> | undefined;
  let priorities: number[] | undefined;
  for (const token of tokens(text)) {
    const colon = token.indexOf(":");
    const name = colon > 0 ? token.slice(0, colon).toLowerCase() : "";
    const value = token.slice(colon + 1);
    if (!(QUALIFIERS as readonly string[]).includes(name)) {
      const meant = /^[a-z_]+$/.test(name)
        ? closest(name, QUALIFIERS, QUALIFIER_ALIASES)
        : undefined;
      if (meant !== undefined) {
        throw new QueryError(`Unknown qualifier "${name}:": did you mean "${meant}:"?`);
      }
      words.push(token);
      continue;
    }
    if (value === "") throw new QueryError(`${name}: needs a value`);
    switch (name) {
      case "state": {
        states ??= new Set();
        for (const state of value.toLowerCase().split(",")) {
          if (!isJobState(state)) {
            throw new QueryError(`Unknown state "${state}": states are ${JOB_STATES.join(", ")}`);
          }
          states.add(state);
        }
        break;
      }
      case "priority": {
        const these = parsePriorities(value);
        priorities = priorities === undefined ? these : priorities.filter((p) => these.includes(p));
        break;
      }
      case "cmd":
        if (command !== undefined) {
          throw new QueryError('Give one command text (put it in quotes: cmd:"make test")');
        }
        command = value;
        break;
      case "id":
        if (filter.id !== undefined && filter.id !== value) {
          throw new QueryError("Give one id:");
        }
        filter.id = value;
        break;
      case "queue": {
        // Several queue: qualifiers add up (a job is in one queue: "any of these").
        const these = new Set(filter.queues ?? []);
        for (const q of value.split(",")) {
          const problem = q === "" ? "is empty" : queueNameProblem(q);
          if (problem) throw new QueryError(`Queue name "${q}" ${problem}`);
          these.add(q);
        }
        filter.queues = [...these];
        break;
      }
      case "created": {
        const { from, to } = parseCreated(value, options);
        if (from !== undefined) {
          filter.createdFrom = Math.max(from, filter.createdFrom ?? -Infinity);
        }
        if (to !== undefined) filter.createdTo = Math.min(to, filter.createdTo ?? Infinity);
        break;
      }
      case "due": {
        const when = value.toLowerCase();
        if (when === "later") filter.dueAfter = options.now;
        else if (when === "now") filter.dueBy = options.now;
        else {
          const meant = closest(when, DUE_VALUES, { future: "later", soon: "later", past: "now" });
          throw new QueryError(
            `due:${value}: give due:later (waits for a time) or due:now (its time has come)` +
              (meant === undefined ? "" : `; did you mean due:${meant}?`),
          );
        }
        break;
      }
    }
  }
  if (words.length > 0) {
    if (command !== undefined) {
      throw new QueryError("Give the command text once: either cmd:… or bare words");
    }
    command = words.join(" ");
  }
  if (command !== undefined) filter.commandContains = command;
  if (states !== undefined) filter.states = JOB_STATES.filter((s) => states!.has(s));
  if (priorities !== undefined) filter.priorities = priorities;
  return filter;
}
