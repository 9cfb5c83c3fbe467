/**
 * The dashboard in a real browser (Debian's chromium through playwright-core), served by a real
 * `queuectl dashboard` process, with jobs enqueued and run by real `queuectl` processes. Every
 * page is checked for CSP violations, console errors and dialogs; screenshots of the main pages
 * go to .tmp/artifacts/ (tests/helpers/browser.ts, artifactPath).
 */

import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- a full npm: specifier, so that `deno run` of a URL works
import type { BrowserContext, Page } from "npm:playwright-core@1.65.1";
import { artifactPath, assertCleanPage, launchBrowser, watchPage } from "../helpers/browser.ts";
import type { PageWatch } from "../helpers/browser.ts";
import { runProcess } from "../helpers/cli.ts";
import { tempDir } from "../helpers/temp.ts";
import type { TempDir } from "../helpers/temp.ts";
import { startDashboard } from "./_process.ts";
import type { DashboardProcess } from "./_process.ts";

// One browser for the file, a fresh context per test. Its pipe stays open between tests, so the
// tests do not check for ops and resources left open (each closes what it opens itself).
const launched = await launchBrowser();
addEventListener("unload", () => {
  launched.browser.close().catch(() => {});
});

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });
}

interface Setup extends AsyncDisposable {
  dir: TempDir;
  db: string;
  dashboard: DashboardProcess;
  context: BrowserContext;
  page: Page;
  watch: PageWatch;
  /** Runs `queuectl --db DB ARGS…` as a real process; asserts exit 0 unless told. */
  cli(args: string[], code?: number): Promise<string>;
}

async function setup(
  options: { args?: string[]; context?: Parameters<typeof launched.browser.newContext>[0] } = {},
): Promise<Setup> {
  const dir = await tempDir();
  const db = dir.db;
  const cli = async (args: string[], code = 0) => {
    const result = await runProcess(["--db", db, ...args]);
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  await cli(["status"]);
  const dashboard = await startDashboard(db, options.args ?? []);
  const context = await launched.browser.newContext({
    viewport: { width: 1280, height: 900 },
    ...options.context,
  });
  const page = await context.newPage();
  const watch = await watchPage(page);
  await page.goto(`${dashboard.base}/login#token=${dashboard.token}`);
  await page.waitForURL(`${dashboard.base}/`);
  await page.waitForSelector("#live[data-state=live]");
  return {
    dir,
    db,
    dashboard,
    context,
    page,
    watch,
    cli,
    async [Symbol.asyncDispose]() {
      await context.close();
      await dashboard[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
}

/** Goes to a page of the dashboard and waits until it has rendered its data. */
async function open(s: Setup, path: string): Promise<void> {
  await s.page.goto(`${s.dashboard.base}${path}`);
  await s.page.waitForSelector("#asof time");
  await s.page.waitForLoadState("networkidle").catch(() => {});
}

/** Polls an expression in the page until it is true (waitForFunction would need eval, which the CSP forbids). */
async function until(page: Page, expression: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await page.evaluate(expression))) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: artifactPath(name), fullPage: true });
}

const HOSTILE_OUT = `printf 'plain \\033[31mred\\033[0m \\033[1;32mbold green\\033[0m\\n' && ` +
  `printf '\\033]0;pwn\\007title \\033[2Jclear <script>alert(1)</script>\\n' && ` +
  `echo '"><img src=x onerror=alert(2)>' >&2 && exit 3`;

test("the main pages load clean: no CSP violation, console error or dialog (screenshots)", async () => {
  await using s = await setup();
  await s.cli(["enqueue", "-c", "echo done", "--id", "done"]);
  await s.cli(["enqueue", "-c", "exit 4", "--id", "broken", "--max-retries", "0"]);
  await s.cli(["enqueue", "-c", "sleep 1", "--id", "later", "--run-at", "tomorrow 02:00"]);
  await s.cli(["worker", "run", "--once"]);
  await s.cli([
    "schedule",
    "add",
    "backup",
    "--cron",
    "30 2 * * *",
    "--tz",
    "Europe/Berlin",
    "-c",
    "./backup.sh",
  ]);
  await s.cli(["schedule", "add", "tick", "--every", "10m", "-c", "echo tick"]);
  await s.cli(["schedule", "pause", "tick"]);
  for (
    const [path, name, check] of [
      ["/", "dashboard-overview.png", "svg rect.ok"],
      ["/jobs", "dashboard-jobs.png", "a.id"],
      ["/jobs/broken", "dashboard-job.png", "#out-stderr, .pane"],
      ["/dlq", "dashboard-dlq.png", "#retry-all"],
      ["/scheduled", "dashboard-scheduled.png", 'a.id:text-is("later")'],
      ["/schedules", "dashboard-schedules.png", "main table"],
      ["/workers", "dashboard-workers.png", "main p, main table"],
      ["/settings", "dashboard-settings.png", "main table"],
    ] as const
  ) {
    await open(s, path);
    await s.page.waitForSelector(check);
    await shot(s.page, name);
    assertCleanPage(s.watch);
  }
  // A phone: the jobs table becomes cards; nothing wider than the screen.
  await s.page.setViewportSize({ width: 390, height: 844 });
  for (
    const [path, name] of [
      ["/", "dashboard-phone-overview.png"],
      ["/jobs", "dashboard-phone-jobs.png"],
      ["/scheduled", "dashboard-phone-scheduled.png"],
      ["/schedules", "dashboard-phone-schedules.png"],
    ]
  ) {
    await open(s, path!);
    const overflow = await s.page.evaluate("document.documentElement.scrollWidth - innerWidth");
    assert.ok((overflow as number) <= 0, `${path} is ${overflow}px wider than a phone`);
    await shot(s.page, name!);
  }
  assertCleanPage(s.watch);
});

test("a job enqueued from the CLI appears within 1 s, and the 'as of' time moves", async () => {
  await using s = await setup();
  await open(s, "/jobs");
  const before = await s.page.getAttribute("#asof time", "datetime");
  const t0 = performance.now();
  await s.cli(["enqueue", "-c", "echo live", "--id", "live-1"]);
  const enqueued = performance.now();
  await s.page.waitForSelector('a.id:text-is("live-1")', { timeout: 5000 });
  const seen = performance.now() - enqueued;
  assert.ok(seen < 1000, `appeared ${Math.round(seen)} ms after the enqueue returned`);
  const after = await s.page.getAttribute("#asof time", "datetime");
  assert.ok(after! > before!, `as of ${before} → ${after}`);
  assert.ok(performance.now() - t0 < 10_000);
  // The overview's counts follow too.
  await open(s, "/");
  await s.cli(["enqueue", "-c", "echo again"]);
  await until(
    s.page,
    `document.querySelector(".card.state-pending .n")?.textContent === "2"`,
    2000,
  );
  assertCleanPage(s.watch);
});

test("nothing is requested while the tab is hidden; it catches up when shown", async () => {
  await using s = await setup();
  await open(s, "/jobs");
  const requests: string[] = [];
  s.page.on("request", (r) => requests.push(r.url()));
  await s.page.evaluate(
    `Object.defineProperty(document, "hidden", { value: true, configurable: true });
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));`,
  );
  await s.page.waitForSelector("#live[data-state=paused]");
  await s.cli(["enqueue", "-c", "echo while hidden", "--id", "hidden-1"]);
  await s.cli(["enqueue", "-c", "echo while hidden", "--id", "hidden-2"]);
  // Long enough for a poll or a pushed change to show up, if there were any.
  await s.page.waitForTimeout(1500);
  assert.deepEqual(requests, [], "no request while hidden");
  assert.equal(await s.page.$('a.id:text-is("hidden-1")'), null);
  await s.page.evaluate(
    `Object.defineProperty(document, "hidden", { value: false, configurable: true });
    Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));`,
  );
  await s.page.waitForSelector('a.id:text-is("hidden-2")', { timeout: 2000 });
  await s.page.waitForSelector("#live[data-state=live]");
  assertCleanPage(s.watch);
});

test("a failing job's hostile output and command show literally; no dialog, no markup", async () => {
  await using s = await setup();
  await s.cli(["enqueue", "-c", HOSTILE_OUT, "--id", "xss", "--max-retries", "0"]);
  await s.cli(["enqueue", "-c", `echo '<script>alert(3)</script>'`, "--id", "xss2"]);
  await s.cli(["worker", "run", "--once"]);
  await open(s, "/jobs/xss");
  await s.page.waitForSelector("#out-stdout");
  const stdout = await s.page.textContent("#out-stdout");
  assert.equal(
    stdout,
    "plain red bold green\n\\x1b]0;pwn\\x07title \\x1b[2Jclear <script>alert(1)</script>\n",
  );
  assert.equal(await s.page.textContent("#out-stdout span.fg1"), "red");
  assert.equal(await s.page.textContent("#out-stdout span.fg2.b"), "bold green");
  assert.deepEqual(
    await s.page.$$eval("#out-stdout span.ctl", (els) => els.map((e) => e.textContent)),
    ["\\x1b]0;pwn\\x07", "\\x1b[2J"],
  );
  assert.equal(await s.page.textContent("#out-stderr"), '"><img src=x onerror=alert(2)>\n');
  assert.equal(await s.page.textContent("pre.cmd-full"), HOSTILE_OUT);
  // Nothing in the page is markup from the job: the only image is the header's icon, the only
  // scripts the dashboard's module.
  assert.equal(await s.page.$$eval("main img, main script", (els) => els.length), 0);
  assert.deepEqual(
    await s.page.$$eval("script", (els) => els.map((e) => e.getAttribute("src"))),
    ["/assets/app.js"],
  );
  assert.equal(await s.page.title(), "Job xss · queuectl", "the title is not the job's");
  await shot(s.page, "dashboard-hostile-output.png");
  await open(s, "/jobs");
  await s.page.waitForSelector('a.id:text-is("xss2")');
  assert.equal(await s.page.$$eval("main img, main script", (els) => els.length), 0);
  // The raw log is a download, not a page.
  const download = s.page.waitForEvent("download");
  await open(s, "/jobs/xss");
  await s.page.click(".pane:first-of-type a.download");
  const file = await download;
  assert.equal(file.suggestedFilename(), "job-xss-attempt-1.stdout.log");
  assert.deepEqual(s.watch.dialogs, []);
  assertCleanPage(s.watch);
});

test("a running job's output follows live on its page, and stops following when it ends", async () => {
  await using s = await setup();
  await s.cli([
    "enqueue",
    "-c",
    "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.4; done",
    "--id",
    "tail",
  ]);
  await open(s, "/jobs/tail");
  await s.page.waitForSelector("text=It has not run yet.");
  await s.cli(["worker", "start", "--detach"]);
  try {
    await s.page.waitForSelector(".tail-note", { timeout: 10_000 });
    await until(s.page, `/line 2/.test(document.querySelector("#out-stdout")?.textContent ?? "")`);
    const early = await s.page.textContent("#out-stdout");
    assert.ok(!early!.includes("line 8"), `still running: ${early}`);
    assert.equal(await s.page.textContent("main .badge"), "processing");
    await until(
      s.page,
      `document.querySelector("#out-stdout")?.textContent.includes("line 8") &&
        !document.querySelector(".tail-note")`,
      15_000,
    );
    assert.equal(
      await s.page.textContent("#out-stdout"),
      Array.from({ length: 8 }, (_, i) => `line ${i + 1}\n`).join(""),
    );
    await until(s.page, `document.querySelector("main .badge")?.textContent === "completed"`);
  } finally {
    await s.cli(["worker", "stop", "--force"]);
  }
  assertCleanPage(s.watch);
});

test("cancel of a running job by click: its process is gone and it ends cancelled; then delete by click", async () => {
  await using s = await setup();
  const marker = `qctl-cancel-${crypto.randomUUID()}`;
  await s.cli(["enqueue", "-c", `sleep 300 # ${marker}`, "--id", "long"]);
  await s.cli(["worker", "start", "--detach"]);
  try {
    await open(s, "/jobs/long");
    await until(
      s.page,
      `document.querySelector("main .badge")?.textContent === "processing"`,
      15_000,
    );
    const running = async () =>
      (await new Deno.Command("pgrep", { args: ["-f", marker], stdout: "null" }).output()).success;
    assert.ok(await running(), "the job's process runs");
    await s.page.click("#cancel");
    await s.page.waitForSelector("dialog#confirm[open]");
    await s.page.click("#confirm-yes");
    await until(
      s.page,
      `document.querySelector("main .badge")?.textContent === "cancelled"`,
      15_000,
    );
    assert.equal(JSON.parse(await s.cli(["show", "long", "--json"])).state, "cancelled");
    assert.equal(await running(), false, "the job's process is gone");
    await s.page.click("#delete");
    await s.page.waitForSelector("dialog#confirm[open]");
    await s.page.click("#confirm-yes");
    await s.page.waitForSelector("text=Job long deleted");
    await s.cli(["show", "long"], 4);
  } finally {
    await s.cli(["worker", "stop", "--force"]);
  }
  assertCleanPage(s.watch);
});

test("retry from the dead letter queue by click: one selected, then all matching after a confirmation", async () => {
  await using s = await setup();
  for (const id of ["d1", "d2", "d3", "d4"]) {
    await s.cli(["enqueue", "-c", "exit 1", "--id", id, "--max-retries", "0"]);
  }
  await s.cli(["worker", "run", "--once"]);
  await open(s, "/dlq");
  await s.page.waitForSelector('a.id:text-is("d4")');
  await s.page.check('input[aria-label="select job d2"]');
  assert.equal(await s.page.textContent("#retry-selected"), "Retry 1 selected");
  await s.page.click("#retry-selected");
  await s.page.waitForSelector("#action-result.ok");
  assert.equal(await s.page.textContent("#action-result"), "Retried 1 job.");
  assert.equal(JSON.parse(await s.cli(["show", "d2", "--json"])).state, "pending");
  await until(s.page, `!document.querySelector('input[aria-label="select job d2"]')`);
  // All matching: the confirmation names the exact count.
  await s.page.click("#retry-all");
  await s.page.waitForSelector("dialog#confirm[open]");
  assert.equal(await s.page.textContent("dialog#confirm h2"), "Retry 3 dead jobs?");
  // A new action clears the last one's outcome: "Retried 1 job." must not sit beside this one.
  assert.equal(await s.page.textContent("#action-result"), "");
  await shot(s.page, "dashboard-dlq-confirm.png");
  await s.page.click("#confirm-yes");
  await s.page.waitForSelector("#action-result.ok");
  assert.equal(await s.page.textContent("#action-result"), "Retried 3 jobs.");
  const states = JSON.parse(await s.cli(["list", "--json"])).map((j: { state: string }) => j.state);
  assert.deepEqual(states, ["pending", "pending", "pending", "pending"]);
  await s.page.waitForSelector("text=The dead letter queue is empty.");
  assertCleanPage(s.watch);
});

test("the Recurring page: a schedule added from the CLI appears; run now and pause by click", async () => {
  await using s = await setup();
  await open(s, "/schedules");
  await s.page.waitForSelector("text=No recurring jobs yet.");
  await s.cli(["schedule", "add", "nightly", "--every", "1h", "-c", "echo nightly"]);
  // Live: it appears without a reload, its next run in local time with UTC on hover.
  await s.page.waitForSelector('td strong:text-is("nightly")', { timeout: 2000 });
  const [listed] = JSON.parse(await s.cli(["schedule", "list", "--json"]));
  const next = s.page.locator('td[data-label="Next run"] time');
  assert.equal(await next.getAttribute("datetime"), listed.next_run_at);
  assert.match((await next.getAttribute("title"))!, / UTC$/);
  assert.equal(await s.page.textContent('td[data-label="When"]'), "every 1h");
  assert.equal(await s.page.textContent('td[data-label="Last job"]'), "-");
  // Run now: one job, enqueued at once, shown as the last job with a link to it.
  await s.page.click('button[data-action=run][data-schedule="nightly"]');
  await s.page.waitForSelector("#action-result.ok");
  const jobs = JSON.parse(await s.cli(["list", "--json"]));
  assert.equal(jobs.length, 1);
  const id = jobs[0].id as string;
  assert.equal(jobs[0].command, "echo nightly");
  assert.equal(await s.page.textContent("#action-result"), `Enqueued job ${id} from nightly.`);
  await s.page.waitForSelector(`td[data-label="Last job"] a.id:text-is("${id}")`);
  assert.equal(
    await s.page.textContent('td[data-label="Last job"] .badge'),
    "pending",
  );
  // Its state follows live as a worker runs it.
  await s.cli(["worker", "run", "--once"]);
  await s.page.waitForSelector('td[data-label="Last job"] .badge.state-completed', {
    timeout: 2000,
  });
  // Pause by click: shown paused, and paused in the queue.
  await s.page.click('button[data-action=pause][data-schedule="nightly"]');
  await s.page.waitForSelector('td[data-label="Status"] .badge.state-paused');
  assert.equal(await s.page.textContent('td[data-label="Next run"]'), "paused");
  assert.equal(await s.page.textContent("#action-result"), "Paused nightly.");
  assert.equal(JSON.parse(await s.cli(["schedule", "list", "--json"]))[0].paused, true);
  await shot(s.page, "dashboard-recurring.png");
  // Resume by click; a resume from the CLI shows up live as well (pause again from there).
  await s.page.click('button[data-action=resume][data-schedule="nightly"]');
  await s.page.waitForSelector('td[data-label="Status"] .badge.state-active');
  await s.cli(["schedule", "pause", "nightly"]);
  await s.page.waitForSelector('td[data-label="Status"] .badge.state-paused', { timeout: 2000 });
  // The last job's link leads to its page.
  await s.page.click(`td[data-label="Last job"] a.id`);
  await s.page.waitForURL(`${s.dashboard.base}/jobs/${id}`);
  await s.page.waitForSelector("#enqueue-command");
  assertCleanPage(s.watch);
});

test("the Scheduled page: a job enqueued with a delay appears live, soonest first, with why it waits; run now and cancel by click", async () => {
  await using s = await setup();
  await open(s, "/scheduled");
  await s.page.waitForSelector("text=Nothing is scheduled.");
  // A retry waiting out its backoff (a minute: long enough to stay for the test).
  await s.cli(["config", "set", "backoff-base", "60"]);
  await s.cli(["enqueue", "-c", "exit 1", "--id", "flaky", "--max-retries", "2"]);
  await s.cli(["worker", "run", "--once"]);
  await s.cli(["enqueue", "-c", "echo in two hours", "--id", "in-2h", "--delay", "2h"]);
  await s.cli(["enqueue", "-c", "echo soon", "--id", "soon", "--delay", "10m", "--queue", "mail"]);
  await s.cli(["enqueue", "-c", "echo now", "--id", "now"]);
  // Live, without a reload: soonest first; the job due now is not there.
  await until(s.page, `document.querySelectorAll("main tbody tr").length === 3`, 2000);
  const ids = await s.page.locator("main tbody a.id").allTextContents();
  assert.deepEqual(ids, ["flaky", "soon", "in-2h"]);
  const shown = JSON.parse(await s.cli(["show", "soon", "--json"]));
  const due = s.page.locator('td[data-label="Due"] time').nth(1);
  assert.equal(await due.getAttribute("datetime"), shown.run_at);
  assert.match((await due.getAttribute("title"))!, / UTC$/);
  assert.deepEqual(await s.page.locator('td[data-label="Why"]').allTextContents(), [
    "retry 1 of 2 (backoff)",
    "delayed",
    "delayed",
  ]);
  assert.equal(await s.page.locator('td[data-label="Queue"]').nth(1).textContent(), "mail");
  // The search is in the URL: a bookmark of the mail queue's scheduled jobs.
  await s.page.fill('input[type="search"]', "queue:mail");
  await s.page.press('input[type="search"]', "Enter");
  await s.page.waitForURL(/\/scheduled\?q=queue%3Amail$/);
  await until(s.page, `document.querySelectorAll("main tbody tr").length === 1`, 2000);
  await s.page.goBack();
  await until(s.page, `document.querySelectorAll("main tbody tr").length === 3`, 2000);
  await shot(s.page, "dashboard-scheduled-live.png");
  // Run now by click: the job is due at once, so it leaves the page; a worker runs it.
  await s.page.check('input[aria-label="select job in-2h"]');
  await s.page.click("#run-now-selected");
  await s.page.waitForSelector("#action-result.ok");
  await until(s.page, `document.querySelectorAll("main tbody tr").length === 2`, 2000);
  const ran = JSON.parse(await s.cli(["show", "in-2h", "--json"]));
  assert.ok(Date.parse(ran.run_at) <= Date.now(), `due now: ${ran.run_at}`);
  // Cancel the soonest by click, after the confirmation.
  await s.page.check('input[aria-label="select job soon"]');
  await s.page.click("#cancel-selected");
  await s.page.click("#confirm-yes");
  await s.page.waitForSelector("#action-result.ok");
  await until(s.page, `document.querySelectorAll("main tbody tr").length === 1`, 2000);
  assert.equal(JSON.parse(await s.cli(["show", "soon", "--json"])).state, "cancelled");
  // The retry, from its own page: Run now, and the button goes (it is due now).
  await open(s, "/jobs/flaky");
  await s.page.click("#run-now");
  await s.page.waitForSelector("#run-now", { state: "detached" });
  const flaky = JSON.parse(await s.cli(["show", "flaky", "--json"]));
  assert.deepEqual([flaky.state, flaky.attempts], ["failed", 1]);
  assert.ok(Date.parse(flaky.run_at) <= Date.now(), `due now: ${flaky.run_at}`);
  await open(s, "/scheduled");
  await s.page.waitForSelector("text=Nothing is scheduled.");
  assertCleanPage(s.watch);
});

test("queues on the overview: a pause from the CLI shows live, resume by click; a job's page links its dependencies", async () => {
  await using s = await setup();
  await s.cli(["enqueue", "-c", "make", "--id", "build", "--queue", "mail", "--delay", "1h"]);
  await s.cli(["enqueue", "-c", "deploy", "--id", "deploy", "--after", "build"]);
  await open(s, "/");
  await s.page.waitForSelector('#queues a.id:text-is("mail")');
  const mailRow = '#queues tr:has(a.id:text-is("mail"))';
  await s.page.waitForSelector(`${mailRow} .badge.state-active`);
  await s.cli(["pause", "mail"]);
  await s.page.waitForSelector(`${mailRow} .badge.state-paused`, { timeout: 2000 });
  await s.page.click('button[data-action=resume][data-queue="mail"]');
  await s.page.waitForSelector("#queue-result.ok");
  await s.page.waitForSelector(`${mailRow} .badge.state-active`);
  const { queues } = JSON.parse(await s.cli(["queue", "list", "--json"])) as {
    queues: { name: string; paused: boolean }[];
  };
  assert.equal(queues.find((q) => q.name === "mail")?.paused, false);
  // The job page: what deploy waits for, linked, with its state; and back from build.
  await open(s, "/jobs/deploy");
  await s.page.waitForSelector('dd ul.links a.id:text-is("build")');
  await s.page.click('dd ul.links a.id:text-is("build")');
  await s.page.waitForURL(`${s.dashboard.base}/jobs/build`);
  await s.page.waitForSelector('dd ul.links a.id:text-is("deploy")');
  assertCleanPage(s.watch);
});

test("search and paging live in the URL: submit, tabs, older, back and forward", async () => {
  await using s = await setup();
  const lines = Array.from(
    { length: 60 },
    (_, i) =>
      JSON.stringify({ command: i % 3 === 0 ? `./alpha.sh ${i}` : `./beta.sh ${i}`, id: `j${i}` }),
  );
  const result = await runProcess(["--db", s.db, "enqueue", "-"], { stdin: lines.join("\n") });
  assert.equal(result.code, 0, result.stderr);
  await open(s, "/jobs");
  // "/" goes to the search box from anywhere on the page, and types nothing.
  await s.page.locator("h1").click();
  await s.page.keyboard.press("/");
  assert.equal(await s.page.evaluate(`document.activeElement?.getAttribute("type")`), "search");
  assert.equal(await s.page.inputValue('input[type="search"]'), "");
  const ids = () => s.page.$$eval("main a.id", (els) => els.map((e) => e.textContent));
  assert.equal((await ids()).length, 50);
  await s.page.click("#older");
  await s.page.waitForURL(/\/jobs\?before=\d+$/, { waitUntil: "commit" });
  await until(s.page, `document.querySelectorAll("main a.id").length === 10`);
  assert.equal((await ids())[0], "j9");
  await s.page.goBack();
  await s.page.waitForURL(`${s.dashboard.base}/jobs`, { waitUntil: "commit" });
  await until(s.page, `document.querySelectorAll("main a.id").length === 50`);
  await s.page.fill('input[name="q"]', "cmd:alpha priority:5");
  await s.page.press('input[name="q"]', "Enter");
  await s.page.waitForURL(/\/jobs\?q=cmd%3Aalpha\+priority%3A5$/, { waitUntil: "commit" });
  await until(s.page, `document.querySelectorAll("main a.id").length === 20`);
  assert.deepEqual((await ids()).slice(0, 3), ["j57", "j54", "j51"]);
  await s.page.click('nav.tabs a:has-text("pending")');
  await s.page.waitForURL(/q=state%3Apending\+cmd%3Aalpha\+priority%3A5$/, { waitUntil: "commit" });
  await until(s.page, `document.querySelectorAll("main a.id").length === 20`);
  assert.equal(
    await s.page.getAttribute('nav.tabs a[aria-current="page"]', "href"),
    "/jobs?q=state%3Apending+cmd%3Aalpha+priority%3A5",
  );
  await s.page.fill('input[name="q"]', "status:dead");
  await s.page.press('input[name="q"]', "Enter");
  await s.page.waitForSelector(".error");
  assert.match(
    (await s.page.textContent(".error"))!,
    /Unknown qualifier "status:": did you mean "state:"\?/,
  );
  // The refused search is a 400, which the browser notes in the console; nothing else may be there.
  assert.deepEqual(s.watch.consoleErrors.splice(0), [
    "Failed to load resource: the server responded with a status of 400 (Bad Request)",
  ]);
  await s.page.goBack();
  await s.page.waitForURL(/q=state%3Apending/, { waitUntil: "commit" });
  await until(s.page, `document.querySelectorAll("main a.id").length === 20`);
  assert.equal(await s.page.inputValue('input[name="q"]'), "state:pending cmd:alpha priority:5");
  await s.page.goBack();
  await s.page.waitForURL(/q=cmd%3Aalpha\+priority%3A5$/, { waitUntil: "commit" });
  await s.page.goForward();
  await s.page.waitForURL(/q=state%3Apending/, { waitUntil: "commit" });
  // A bookmark: the same URL in a new page shows the same view.
  const again = await s.context.newPage();
  await again.goto(s.page.url());
  await until(again, `document.querySelectorAll("main a.id").length === 20`);
  await again.close();
  assertCleanPage(s.watch);
});

test("dark mode and a time zone come from the browser; the toggle overrides and is kept", async () => {
  await using s = await setup({ context: { colorScheme: "dark", timezoneId: "Asia/Tokyo" } });
  await s.cli(["enqueue", "-c", "true", "--id", "tz"]);
  await open(s, "/jobs/tz");
  const background = () =>
    s.page.evaluate("getComputedStyle(document.documentElement).backgroundColor");
  assert.equal(await background(), "rgb(13, 17, 23)", "dark");
  const created = JSON.parse(await s.cli(["show", "tz", "--json"])).created_at as string;
  const tokyo = new Intl.DateTimeFormat("sv-SE", {
    timeZone: "Asia/Tokyo",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).format(new Date(created));
  const time = s.page.locator(`time[datetime="${created}"]`).first();
  assert.equal(await time.textContent(), tokyo);
  assert.equal(await time.getAttribute("title"), `${created.slice(0, 19).replace("T", " ")} UTC`);
  await shot(s.page, "dashboard-dark-job.png");
  // auto → dark → light, kept across a reload.
  await s.page.click("#theme");
  await s.page.click("#theme");
  assert.equal(await s.page.textContent("#theme"), "theme: light");
  assert.equal(await background(), "rgb(247, 248, 250)", "light");
  await s.page.reload();
  await s.page.waitForSelector("#asof time");
  assert.equal(await background(), "rgb(247, 248, 250)", "still light");
  await s.page.click("#theme");
  assert.equal(await background(), "rgb(13, 17, 23)", "back to the system's dark");
  await open(s, "/");
  await shot(s.page, "dashboard-dark-overview.png");
  assertCleanPage(s.watch);
});

test("a cross-site form POST is refused, although the browser sends the session cookie", async () => {
  await using s = await setup();
  await s.cli(["enqueue", "-c", "exit 1", "--id", "victim", "--max-retries", "0"]);
  await s.cli(["worker", "run", "--once"]);
  // Another origin on the same host: same site, so SameSite=Strict lets the cookie through; the
  // Origin check is what must refuse it.
  const target = `${s.dashboard.base}/api/dlq/retry`;
  await using evil = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/go.js") {
      const go = `if (location.hash === "#go") document.getElementById("f").submit();`;
      return new Response(go, {
        headers: { "content-type": "text/javascript" },
      });
    }
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    return new Response(
      `<!doctype html><form id="f" method="POST" action="${target}">
        <input name="ids" value="victim"></form><script src="/go.js"></script>`,
      { headers: { "content-type": "text/html" } },
    );
  });
  const page = await s.context.newPage();
  const answered = page.waitForResponse(target);
  await page.goto(`http://127.0.0.1:${evil.addr.port}/#go`);
  const response = await answered;
  assert.equal(response.status(), 403);
  await page.waitForURL(target, { waitUntil: "commit" });
  const sent = await response.request().allHeaders();
  assert.match(sent["cookie"] ?? "", /queuectl_\d+=s1\./, "the browser sent the session cookie");
  assert.equal(JSON.parse(await s.cli(["show", "victim", "--json"])).state, "dead");
  // A fetch from that origin, in every mode, gets nowhere either.
  const other = await s.context.newPage();
  await other.goto(`http://127.0.0.1:${evil.addr.port}/`);
  const results = await other.evaluate(`Promise.all([
    fetch(${JSON.stringify(target)}, { method: "POST", mode: "no-cors", credentials: "include",
      headers: { "content-type": "text/plain" }, body: '{"ids":["victim"]}' })
      .then(() => "answered", () => "blocked"),
    fetch(${JSON.stringify(`${s.dashboard.base}/api/jobs`)}, { credentials: "include" })
      .then(() => "read", () => "blocked"),
  ])`);
  // No CORS header lets the page read anything, and Cross-Origin-Resource-Policy keeps even an
  // opaque answer from it; the POST reached the server, which refused it.
  assert.deepEqual(results, ["blocked", "blocked"]);
  assert.equal(JSON.parse(await s.cli(["show", "victim", "--json"])).state, "dead");
  const refusals = s.dashboard.stderr().match(/refused a cross-site POST \/api\/dlq\/retry/g);
  assert.equal(refusals?.length, 2, s.dashboard.stderr());
  await other.close();
  await page.close();
  await evil.shutdown();
});

test("--read-only shows no actions, and says so", async () => {
  await using s = await setup({ args: ["--read-only"] });
  await s.cli(["enqueue", "-c", "exit 1", "--id", "d", "--max-retries", "0"]);
  await s.cli(["worker", "run", "--once"]);
  await open(s, "/dlq");
  await s.page.waitForSelector('a.id:text-is("d")');
  assert.equal(await s.page.$("#retry-all"), null);
  assert.equal(await s.page.$("input[type=checkbox]"), null);
  assert.ok(await s.page.isVisible(".badge.ro"));
  await open(s, "/jobs/d");
  assert.equal(await s.page.$("#retry"), null);
  await s.cli(["schedule", "add", "nightly", "--every", "1h", "-c", "echo nightly"]);
  await open(s, "/schedules");
  await s.page.waitForSelector('td strong:text-is("nightly")');
  assert.equal(await s.page.$("button[data-action]"), null);
  await s.page.waitForSelector("text=Read-only: actions are switched off");
  assertCleanPage(s.watch);
});
