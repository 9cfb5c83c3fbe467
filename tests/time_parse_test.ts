import assert from "node:assert/strict";
import { MAX_DURATION_MS, parseDuration, parseRunAt } from "../lib/time_parse.ts";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

Deno.test("parseDuration() reads the spec's forms", () => {
  const cases: [string | number, number][] = [
    ["45", 45 * S],
    ["30s", 30 * S],
    ["5m", 5 * M],
    ["2h", 2 * H],
    ["1d", D],
    ["1h30m", H + 30 * M],
    ["250ms", 250],
    ["1d2h3m4s5ms", D + 2 * H + 3 * M + 4 * S + 5],
    ["1.5", 1500],
    ["1.5h", 90 * M],
    ["0", 0],
    ["0s", 0],
    [" 30s ", 30 * S],
    [45, 45 * S],
    [0.25, 250],
    [0, 0],
  ];
  for (const [input, ms] of cases) assert.equal(parseDuration(input), ms, JSON.stringify(input));
});

Deno.test("parseDuration() tells m (minutes) from ms (milliseconds)", () => {
  assert.equal(parseDuration("1m"), M);
  assert.equal(parseDuration("1ms"), 1);
  assert.equal(parseDuration("1m5s"), M + 5 * S);
  assert.equal(parseDuration("1s500ms"), 1500);
});

Deno.test("parseDuration() refuses negatives", () => {
  for (const input of ["-5", "-5s", " -1m", -1, -0.001]) {
    assert.throws(
      () => parseDuration(input),
      { name: "RangeError", message: /negative/ },
      String(input),
    );
  }
});

Deno.test("parseDuration() refuses garbage with a message that shows the forms", () => {
  const garbage = [
    "",
    "  ",
    "abc",
    "5x",
    "5 s",
    "s",
    "1h 30m",
    "1e3",
    "0x10",
    "+5",
    "5S",
    "1.h",
    ".5s",
    "NaN",
    "Infinity",
    "1_000",
    "٣",
  ];
  for (const input of garbage) {
    assert.throws(
      () => parseDuration(input),
      { name: "RangeError", message: /empty|not a duration/ },
      JSON.stringify(input),
    );
  }
  assert.throws(() => parseDuration(NaN), /finite/);
  assert.throws(() => parseDuration(Infinity), /finite/);
});

Deno.test("parseDuration() refuses units out of order or repeated", () => {
  for (const input of ["30m1h", "5s1m", "1ms1s", "1h1h", "1m1m"]) {
    assert.throws(
      () => parseDuration(input),
      { name: "RangeError", message: /out of order/ },
      input,
    );
  }
});

Deno.test("parseDuration() refuses more than ten years, however it overflows", () => {
  assert.equal(parseDuration("3650d"), MAX_DURATION_MS);
  for (
    const input of [
      "3651d",
      "3650d1ms",
      "99999999999999999999d",
      "9".repeat(400),
      "1" + "0".repeat(400) + "s",
      1e300,
      315_360_001,
    ]
  ) {
    assert.throws(
      () => parseDuration(input),
      { name: "RangeError", message: /too long/ },
      String(input).slice(0, 20),
    );
  }
});

// Run-at times. Every local time gets an explicit zone, so the tests do not depend on the host's.

/** "Now" of the run-at tests: 2026-11-27 09:15:30 UTC, a Friday. */
const NOW = Date.UTC(2026, 10, 27, 9, 15, 30);
function at(timeZone: string, now = NOW) {
  return { now, timeZone };
}

Deno.test("parseRunAt() reads local YYYY-MM-DD HH:MM[:SS] in the given zone", () => {
  assert.equal(parseRunAt("2026-11-27 10:00", at("UTC")), Date.UTC(2026, 10, 27, 10));
  assert.equal(parseRunAt("2026-11-27 10:00:30", at("UTC")), Date.UTC(2026, 10, 27, 10, 0, 30));
  assert.equal(parseRunAt("2026-11-27T10:00", at("UTC")), Date.UTC(2026, 10, 27, 10));
  // Berlin is UTC+1 in winter, UTC+2 in summer.
  assert.equal(parseRunAt("2026-01-15 10:00", at("Europe/Berlin")), Date.UTC(2026, 0, 15, 9));
  assert.equal(parseRunAt("2026-07-15 10:00", at("Europe/Berlin")), Date.UTC(2026, 6, 15, 8));
  assert.equal(parseRunAt("2026-07-15 10:00", at("America/New_York")), Date.UTC(2026, 6, 15, 14));
});

Deno.test("parseRunAt() reads ISO 8601 with Z or an offset, whatever the zone", () => {
  const instant = Date.UTC(2026, 10, 27, 10);
  for (
    const text of [
      "2026-11-27T10:00:00Z",
      "2026-11-27T10:00:00z",
      "2026-11-27T11:00:00+01:00",
      "2026-11-27T05:00:00-05:00",
      "2026-11-27T11:00:00+0100",
      "2026-11-27T10:00Z",
    ]
  ) {
    assert.equal(parseRunAt(text, at("Asia/Tokyo")), instant, text);
  }
  assert.equal(parseRunAt("2026-11-27T10:00:00.250Z", at("UTC")), instant + 250);
});

Deno.test("parseRunAt() refuses impossible dates and times", () => {
  const impossible = [
    "2026-02-30 10:00",
    "2026-02-29 10:00", // 2026 is not a leap year
    "2026-13-01 10:00",
    "2026-00-10 10:00",
    "2026-04-31 10:00",
    "2026-11-27 24:00",
    "2026-11-27 10:60",
    "2026-11-27 10:00:60",
    "2026-02-30T10:00:00Z",
    "2026-11-27T25:00:00+01:00",
  ];
  for (const text of impossible) {
    assert.throws(() => parseRunAt(text, at("UTC")), {
      name: "RangeError",
      message: /not a valid date/,
    }, text);
  }
  assert.equal(parseRunAt("2028-02-29 10:00", at("UTC")), Date.UTC(2028, 1, 29, 10));
});

Deno.test("parseRunAt() refuses text that is not a time", () => {
  const garbage = [
    "",
    "tomorrow",
    "yesterday 10:00",
    "next tuesday",
    "10",
    "10:0",
    "100:00",
    "10:00:0",
    "tomorrow10:00",
    "2026-11",
    "27/11/2026 10:00",
    "2026-11-27 10",
    "2026-11-27 10:00 ",
    "2026-11-27  10:00",
    "2026-1-27 10:00",
    "1764237600",
    "2026-11-27 10:00:00Z",
    "2026-11-27T10:00:00.5",
  ];
  for (const text of garbage) {
    assert.throws(() => parseRunAt(text, at("UTC")), {
      name: "RangeError",
      message: /not a (valid date|time)/,
    }, JSON.stringify(text));
  }
});

Deno.test("parseRunAt() refuses a local time that a DST change skips (Europe/Berlin spring)", () => {
  // 2026-03-29: clocks go from 02:00 to 03:00 in Berlin; 02:30 never happens.
  assert.throws(() => parseRunAt("2026-03-29 02:30", at("Europe/Berlin")), {
    name: "RangeError",
    message: /ambiguous or does not exist in time zone Europe\/Berlin/,
  });
  assert.equal(parseRunAt("2026-03-29 01:59", at("Europe/Berlin")), Date.UTC(2026, 2, 29, 0, 59));
  assert.equal(parseRunAt("2026-03-29 03:00", at("Europe/Berlin")), Date.UTC(2026, 2, 29, 1));
  // With an offset there is nothing to guess.
  assert.equal(
    parseRunAt("2026-03-29T02:30:00+01:00", at("Europe/Berlin")),
    Date.UTC(2026, 2, 29, 1, 30),
  );
});

Deno.test("parseRunAt() refuses a local time that a DST change repeats (Europe/Berlin autumn)", () => {
  // 2026-10-25: clocks go from 03:00 back to 02:00; 02:30 happens twice.
  assert.throws(() => parseRunAt("2026-10-25 02:30", at("Europe/Berlin")), {
    name: "RangeError",
    message: /ambiguous/,
  });
  assert.equal(parseRunAt("2026-10-25 03:30", at("Europe/Berlin")), Date.UTC(2026, 9, 25, 2, 30));
  // The same wall time is fine in a zone without DST.
  assert.equal(parseRunAt("2026-10-25 02:30", at("UTC")), Date.UTC(2026, 9, 25, 2, 30));
});

Deno.test("parseRunAt() reads HH:MM[:SS] as the next such local time, today or tomorrow", () => {
  // Later today.
  assert.equal(parseRunAt("10:00", at("UTC")), Date.UTC(2026, 10, 27, 10));
  assert.equal(parseRunAt("9:16", at("UTC")), Date.UTC(2026, 10, 27, 9, 16));
  assert.equal(parseRunAt("09:15:31", at("UTC")), Date.UTC(2026, 10, 27, 9, 15, 31));
  // Passed already, or this very second: tomorrow.
  assert.equal(parseRunAt("09:15:30", at("UTC")), Date.UTC(2026, 10, 28, 9, 15, 30));
  assert.equal(parseRunAt("02:00", at("UTC")), Date.UTC(2026, 10, 28, 2));
  assert.equal(parseRunAt("00:00", at("UTC")), Date.UTC(2026, 10, 28));
  // In the zone's own day: 09:15 UTC is 18:15 in Tokyo, so 10:00 there is tomorrow (01:00 UTC).
  assert.equal(parseRunAt("10:00", at("Asia/Tokyo")), Date.UTC(2026, 10, 28, 1));
  assert.equal(parseRunAt("20:00", at("Asia/Tokyo")), Date.UTC(2026, 10, 27, 11));
  // Across the end of a month and a year.
  const newYearsEve = Date.UTC(2026, 11, 31, 23, 0);
  assert.equal(parseRunAt("01:00", at("UTC", newYearsEve)), Date.UTC(2027, 0, 1, 1));
});

Deno.test("parseRunAt() reads today HH:MM, tomorrow HH:MM, a date alone, and now", () => {
  assert.equal(parseRunAt("tomorrow 10:00", at("UTC")), Date.UTC(2026, 10, 28, 10));
  assert.equal(parseRunAt("tomorrow 02:00:15", at("UTC")), Date.UTC(2026, 10, 28, 2, 0, 15));
  assert.equal(parseRunAt("Tomorrow 7:05", at("UTC")), Date.UTC(2026, 10, 28, 7, 5));
  assert.equal(parseRunAt("tomorrow 10:00", at("America/New_York")), Date.UTC(2026, 10, 28, 15));
  // today may lie in the past (the caller says so); it never moves to tomorrow.
  assert.equal(parseRunAt("today 08:00", at("UTC")), Date.UTC(2026, 10, 27, 8));
  assert.equal(parseRunAt("today 23:59", at("UTC")), Date.UTC(2026, 10, 27, 23, 59));
  // A date alone is its local midnight.
  assert.equal(parseRunAt("2026-12-24", at("UTC")), Date.UTC(2026, 11, 24));
  assert.equal(parseRunAt("2026-12-24", at("Europe/Berlin")), Date.UTC(2026, 11, 23, 23));
  assert.equal(parseRunAt("now", at("UTC")), NOW);
  assert.equal(parseRunAt("NOW", at("Asia/Tokyo")), NOW);
});

Deno.test("parseRunAt() refuses impossible times of day", () => {
  for (const text of ["24:00", "10:60", "10:00:60", "tomorrow 25:00", "today 9:99"]) {
    assert.throws(() => parseRunAt(text, at("UTC")), {
      name: "RangeError",
      message: /not a valid date/,
    }, text);
  }
  assert.throws(() => parseRunAt("2026-02-30", at("UTC")), { message: /not a valid date/ });
});

Deno.test("parseRunAt() refuses the new forms where a DST change makes them ambiguous", () => {
  // 2026-03-29 in Berlin: 02:30 does not happen. At 00:30 local (23:30 UTC the day before), the
  // next 02:30 is that one.
  const beforeGap = Date.UTC(2026, 2, 28, 23, 30);
  assert.throws(() => parseRunAt("02:30", at("Europe/Berlin", beforeGap)), {
    message: /ambiguous or does not exist in time zone Europe\/Berlin/,
  });
  assert.throws(() => parseRunAt("tomorrow 02:30", at("Europe/Berlin", beforeGap - 86_400_000)), {
    message: /ambiguous/,
  });
  // Once it has passed, the next 02:30 is the following day's, which exists.
  const afterGap = Date.UTC(2026, 2, 29, 8);
  assert.equal(parseRunAt("02:30", at("Europe/Berlin", afterGap)), Date.UTC(2026, 2, 30, 0, 30));
  // 2026-10-25 in Berlin: 02:30 happens twice.
  assert.throws(() => parseRunAt("today 02:30", at("Europe/Berlin", Date.UTC(2026, 9, 25, 0))), {
    message: /ambiguous/,
  });
  // Santiago moves its clocks at midnight: 2026-09-06 00:00 does not exist there.
  assert.throws(() => parseRunAt("2026-09-06", at("America/Santiago")), { message: /ambiguous/ });
  assert.equal(parseRunAt("2026-09-05", at("America/Santiago")), Date.UTC(2026, 8, 5, 4));
});
