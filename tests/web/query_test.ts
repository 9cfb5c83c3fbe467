import assert from "node:assert/strict";
import { parseQuery, QueryError } from "../../lib/web/query.ts";

const NOW = Date.UTC(2026, 10, 15, 12, 0, 0); // 2026-11-15T12:00:00Z
const parse = (text: string, timeZone?: string) =>
  parseQuery(text, { now: NOW, ...(timeZone === undefined ? {} : { timeZone }) });

Deno.test("parseQuery() reads each qualifier", () => {
  assert.deepEqual(parse(""), {});
  assert.deepEqual(parse("state:dead,failed"), { states: ["failed", "dead"] });
  assert.deepEqual(parse("state:dead state:pending"), { states: ["pending", "dead"] });
  assert.deepEqual(parse("STATE:Dead"), { states: ["dead"] });
  assert.deepEqual(parse("priority:8"), { priorities: [8] });
  assert.deepEqual(parse("priority:7..10"), { priorities: [7, 8, 9, 10] });
  assert.deepEqual(parse("priority:>=9"), { priorities: [9, 10] });
  assert.deepEqual(parse("priority:>8"), { priorities: [9, 10] });
  assert.deepEqual(parse("priority:<3"), { priorities: [1, 2] });
  assert.deepEqual(parse("priority:1,3"), { priorities: [1, 3] });
  assert.deepEqual(parse("priority:>=5 priority:<7"), { priorities: [5, 6] });
  assert.deepEqual(parse("cmd:backup"), { commandContains: "backup" });
  assert.deepEqual(parse('cmd:"make test"'), { commandContains: "make test" });
  assert.deepEqual(parse("make   test"), { commandContains: "make test" });
  assert.deepEqual(parse('"a  b"'), { commandContains: "a  b" });
  assert.deepEqual(parse("http://x:80/y"), { commandContains: "http://x:80/y" });
  assert.deepEqual(parse("id:nightly state:dead"), { id: "nightly", states: ["dead"] });
});

Deno.test("parseQuery() reads time bounds: relative, dates in the browser's zone, ISO instants", () => {
  assert.deepEqual(parse("created:>2h"), { createdFrom: NOW - 7_200_000 });
  assert.deepEqual(parse("created:2h"), { createdFrom: NOW - 7_200_000 });
  assert.deepEqual(parse("created:<1d"), { createdTo: NOW - 86_400_000 });
  const day = Date.UTC(2026, 10, 1);
  assert.deepEqual(parse("created:2026-11-01"), { createdFrom: day, createdTo: day + 86_400_000 });
  assert.deepEqual(parse("created:>=2026-11-01"), { createdFrom: day });
  assert.deepEqual(parse("created:>2026-11-01"), { createdFrom: day + 86_400_000 });
  assert.deepEqual(parse("created:<2026-11-01"), { createdTo: day });
  assert.deepEqual(parse("created:<=2026-11-01"), { createdTo: day + 86_400_000 });
  assert.deepEqual(parse("created:2026-11-01..2026-11-02"), {
    createdFrom: day,
    createdTo: day + 2 * 86_400_000,
  });
  // Tokyo is UTC+9; Berlin leaves summer time on 2026-10-25, a day of 25 hours.
  assert.deepEqual(parse("created:2026-11-01", "Asia/Tokyo"), {
    createdFrom: day - 9 * 3_600_000,
    createdTo: day + 15 * 3_600_000,
  });
  const dst = parse("created:2026-10-25", "Europe/Berlin");
  assert.equal(dst.createdFrom, Date.UTC(2026, 9, 24, 22));
  assert.equal(dst.createdTo! - dst.createdFrom!, 25 * 3_600_000);
  assert.deepEqual(parse("created:>=2026-11-01T14:30", "Asia/Tokyo"), {
    createdFrom: Date.UTC(2026, 10, 1, 5, 30),
  });
  assert.deepEqual(parse("created:<=2026-11-01T14:30:10"), {
    createdTo: Date.UTC(2026, 10, 1, 14, 30, 11),
  });
  assert.deepEqual(parse("created:>=2026-11-01T14:30+01:00", "Asia/Tokyo"), {
    createdFrom: Date.UTC(2026, 10, 1, 13, 30),
  });
  assert.deepEqual(parse("created:>=2026-11-01T14:30Z"), {
    createdFrom: Date.UTC(2026, 10, 1, 14, 30),
  });
});

Deno.test("parseQuery() reads queue: as any of the queues named", () => {
  assert.deepEqual(parse("queue:mail state:pending"), { queues: ["mail"], states: ["pending"] });
  assert.deepEqual(parse("queue:mail,reports queue:mail backup"), {
    queues: ["mail", "reports"],
    commandContains: "backup",
  });
});

Deno.test("parseQuery() reads due:later and due:now as bounds on run_at at the store's now", () => {
  assert.deepEqual(parse("due:later"), { dueAfter: NOW });
  assert.deepEqual(parse("DUE:Later queue:mail"), { dueAfter: NOW, queues: ["mail"] });
  assert.deepEqual(parse("due:now state:failed"), { dueBy: NOW, states: ["failed"] });
});

Deno.test("parseQuery() refuses what it cannot read, saying what to write", () => {
  const cases: [string, RegExp][] = [
    ["state:done", /Unknown state "done": states are pending, processing/],
    ["status:dead", /Unknown qualifier "status:": did you mean "state:"\?/],
    ["prio:5", /did you mean "priority:"/],
    ["stat:dead", /did you mean "state:"/],
    ["priority:11", /priorities are 1\.\.10/],
    ["priority:x", /priorities are 1\.\.10/],
    ["cmd:a cmd:b", /Give one command text/],
    ["cmd:a b", /Give the command text once/],
    ["created:yesterday", /is not a time: use a date/],
    ["created:2026-02-30", /"2026-02-30" is not a valid date/],
    ['cmd:"open', /A quote \(\"\) is not closed/],
    ["state:", /state: needs a value/],
    ["queue:a,,b", /Queue name "" is empty/],
    ["queue:-x", /Queue name "-x" may hold only/],
    ["queues:mail", /did you mean "queue:"/],
    ["due:soon", /give due:later \(waits for a time\) or due:now .*did you mean due:later\?/],
    ["due:future", /did you mean due:later\?/],
    ["due:2026-11-01", /give due:later/],
    ["run_at:later", /did you mean "due:"/],
    ["scheduled:later", /did you mean "due:"/],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parse(text),
      (e: unknown) => e instanceof QueryError && message.test(e.message),
      text,
    );
  }
});
